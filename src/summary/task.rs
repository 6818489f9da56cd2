//! The task section of the summary: the agent task's link, state, origin, idempotency key,
//! pull request or branch, time queued and working, cost and prompt hash, and what the gate
//! did to stop it. It does not draw the timeline chart (`timeline` does) nor decide anything
//! about the task.

use std::fmt::Write as _;

use super::markdown::{code, inline, number, seconds, url_text};
use super::timeline::state_spans;

pub(super) fn task_section(out: &mut String, task: &crate::report::TaskInfo) {
    out.push_str("\n### Task\n\n| | |\n|---|---|\n");
    if task.id.is_empty() {
        // Nothing was started or attached: no id, state or origin to show.
        out.push_str("| Task | not started |\n");
        if !task.key.is_empty() {
            let _ = writeln!(out, "| Idempotency key | {} |", code(&task.key));
        }
        return;
    }
    let id = match &task.url {
        Some(url) => format!("[{}]({})", code(&task.id), url_text(url)),
        None => code(&task.id),
    };
    let _ = writeln!(out, "| Task | {id} |");
    let _ = writeln!(out, "| State | {} |", code(&task.state));
    let _ = writeln!(
        out,
        "| Started | {} |",
        if task.attached {
            "attached to an existing task (re-run or `task-id`)"
        } else {
            "created by this run"
        }
    );
    if !task.key.is_empty() {
        let _ = writeln!(out, "| Idempotency key | {} |", code(&task.key));
    }
    if let Some(pr) = task.pr_number {
        let link = match &task.pr_url {
            Some(url) => format!("[#{pr}]({})", url_text(url)),
            None => format!("&#35;{pr}"),
        };
        let branch = task
            .branch
            .as_ref()
            .map(|b| format!(" from {}", code(b)))
            .unwrap_or_default();
        let _ = writeln!(out, "| Pull request | {link}{branch} |");
    } else if let Some(branch) = &task.branch {
        let _ = writeln!(out, "| Branch | {} |", code(branch));
    }
    let spans = state_spans(&task.timeline);
    let mut queued = 0.0;
    let mut working = 0.0;
    for (state, start, end) in &spans {
        if state == "queued" {
            queued += end - start;
        } else {
            working += end - start;
        }
    }
    if !spans.is_empty() {
        let total = task.timeline.last().map_or(0.0, |e| e.elapsed_s);
        let _ = writeln!(
            out,
            "| Time | queued {} · working {} · total {} |",
            seconds(queued),
            seconds(working),
            seconds(total)
        );
    }
    let mut cost = Vec::new();
    if task.ai_credits > 0.0 {
        cost.push(crate::report::credits_phrase(task.ai_credits));
    }
    if task.premium_requests > 0.0 {
        cost.push(format!(
            "{} premium requests",
            number(task.premium_requests)
        ));
    }
    let _ = writeln!(
        out,
        "| Cost | {} |",
        if cost.is_empty() {
            "none reported".to_string()
        } else {
            cost.join(" · ")
        }
    );
    if let Some(sha) = &task.prompt_sha256 {
        let _ = writeln!(out, "| Prompt SHA-256 | {} |", code(sha));
    }
    if !task.stop_actions.is_empty() {
        out.push_str(
            "\nGitHub offers no way to cancel a task; the gate did this instead (a person can \
             stop the session from its log):\n\n",
        );
        for action in &task.stop_actions {
            let _ = writeln!(out, "- {}", inline(action));
        }
    }
}
