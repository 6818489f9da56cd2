//! The task section of the summary: the agent task's link, state, origin, idempotency key,
//! pull request or branch, time queued and working, cost and prompt hash, and what the gate
//! did to stop it. It does not draw the timeline chart (`timeline` does) nor decide anything
//! about the task.

use std::fmt::Write as _;

use super::markdown::{code, inline, number, seconds, url_text};
use super::timeline::state_spans;

pub(super) fn task_section(out: &mut String, task: &crate::core::report::TaskInfo) {
    out.push_str("\n### Task\n\n");
    // The task row is the table's header row: no empty header above the facts.
    if task.id.is_empty() {
        // Nothing was started or attached: no id, state or origin to show.
        out.push_str("| Task | not started |\n|---|---|\n");
        if !task.key.is_empty() {
            let _ = writeln!(out, "| Idempotency key | {} |", code(&task.key));
        }
        instruction(out, task);
        return;
    }
    let id = match &task.url {
        Some(url) => format!("[{}]({})", code(&task.id), url_text(url)),
        None => code(&task.id),
    };
    let _ = writeln!(out, "| Task | {id} |\n|---|---|");
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
    time_row(out, task);
    cost_row(out, task);
    if let Some(sha) = &task.prompt_sha256 {
        let _ = writeln!(out, "| Prompt SHA-256 | {} |", code(sha));
    }
    instruction(out, task);
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

/// The task's time: queued and working by its own timestamps, else its total, else as
/// the gate's polls saw it.
fn time_row(out: &mut String, task: &crate::core::report::TaskInfo) {
    if let Some((queued, working)) = own_times(task) {
        let _ = writeln!(
            out,
            "| Time | queued {} · working {} · total {} (the task's own timestamps) |",
            seconds(queued),
            seconds(working),
            seconds(queued + working)
        );
    } else if let Some(total) = own_total(task) {
        // No poll saw it in progress: the split is unknown, the whole is not.
        let _ = writeln!(
            out,
            "| Time | total {} from creation to the end (the task's own timestamps) |",
            seconds(total)
        );
    } else {
        // Without the task's timestamps: as the gate's polls saw it.
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
                "| Time | queued {} · working {} · total {} (as the gate's polls saw it) |",
                seconds(queued),
                seconds(working),
                seconds(total)
            );
        }
    }
}

/// What the task cost, as GitHub reported it.
fn cost_row(out: &mut String, task: &crate::core::report::TaskInfo) {
    let mut cost = Vec::new();
    if task.ai_credits > 0.0 {
        cost.push(crate::core::report::credits_phrase(task.ai_credits));
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
}

/// Seconds queued (from the task's `created_at` to its `updated_at` when it was first seen
/// `in_progress`) and working (from then to when it finished), by the task's own
/// timestamps; `None` when one of them is missing or they are out of order.
fn own_times(task: &crate::core::report::TaskInfo) -> Option<(f64, f64)> {
    let time = |s: &str| s.parse::<jiff::Timestamp>().ok();
    let created = time(task.created_at.as_deref()?)?;
    let started = task
        .timeline
        .iter()
        .find(|e| e.state == "in_progress")
        .and_then(|e| time(e.task_at.as_deref()?))?;
    let finished = time(task.finished_at.as_deref()?)?;
    let secs = |from: jiff::Timestamp, to: jiff::Timestamp| {
        let d = to.duration_since(from);
        (!d.is_negative()).then(|| d.as_secs_f64())
    };
    Some((secs(created, started)?, secs(started, finished)?))
}

/// Seconds from the task's `created_at` to when it finished, by its own timestamps.
fn own_total(task: &crate::core::report::TaskInfo) -> Option<f64> {
    let time = |s: &str| s.parse::<jiff::Timestamp>().ok();
    let created = time(task.created_at.as_deref()?)?;
    let finished = time(task.finished_at.as_deref()?)?;
    let d = finished.duration_since(created);
    (!d.is_negative()).then(|| d.as_secs_f64())
}

/// Lines of the instruction shown before the rest is folded.
const INSTRUCTION_LINES: usize = 5;

/// The instruction as the run was given it: its first lines, the rest folded.
fn instruction(out: &mut String, task: &crate::core::report::TaskInfo) {
    let Some(text) = task.instruction.as_deref().map(str::trim_end) else {
        return;
    };
    if text.trim().is_empty() {
        return;
    }
    let text = super::clean_output(text);
    let lines: Vec<&str> = text.lines().collect();
    let (head, rest) = lines.split_at(lines.len().min(INSTRUCTION_LINES));
    let shown = head.join("\n");
    let fence = super::fence_for(&text);
    let _ = writeln!(out, "\n**Instruction**\n\n{fence}text\n{shown}\n{fence}");
    if !rest.is_empty() {
        let more = rest.join("\n");
        let _ = writeln!(
            out,
            "\n<details><summary>{} more line{} of the instruction</summary>\n\n{fence}text\n{more}\n{fence}\n\n</details>",
            rest.len(),
            if rest.len() == 1 { "" } else { "s" }
        );
    }
}
