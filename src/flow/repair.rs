//! Repair rounds (`agent.repair-rounds`): when a change fails the gate on `checks-failed` or
//! `scope-violation`, the follow-up prompt that tells the agent what went wrong — the failing
//! required checks with the tail of their output, the paths that left the scope with the rule
//! that denied each, the limits exceeded — and asks for a fix on the same branch, within the
//! scope. Also the round keys of the idempotency scheme (`<key>-r<N>`), the cost of a round,
//! and the per-round record the report lists. Pure: no I/O, no clock; the flow starts the
//! follow-up task, polls it and gates it again.
//!
//! A protected-path violation is never sent back for repair (it ends the run), nor is a
//! failure the agent cannot fix (a check the gate could not run, or that was cancelled).

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::adapters::github::types::{CreateTaskRequest, Task};
use crate::adapters::github::{Cost, create_task_request, task_cost};
use crate::core::prompt::{MARKER_PREFIX, marker};
pub use crate::core::report::RoundRecord;
use crate::core::report::{CheckEntry, CheckStatus, Report, Verdict, ViolationKind};

/// At most this many lines of a failing check's output go into the prompt…
pub const TAIL_LINES: usize = 60;
/// …and at most this many bytes.
pub const TAIL_BYTES: usize = 8 * 1024;
/// Failing checks listed at most.
const MAX_CHECKS: usize = 10;
/// Violations listed at most (per section).
const MAX_VIOLATIONS: usize = 50;

/// Would this report be sent back to the agent for repair (rounds permitting)? Yes for
/// `checks-failed` and `scope-violation`, unless a protected path was touched, or a failing
/// required check ended `error` (the gate could not run it) or `cancelled`, or waits on workflow runs
/// held for a person's approval: the agent cannot
/// fix those.
pub fn is_repairable(report: &Report) -> bool {
    if !matches!(
        report.verdict,
        Verdict::ChecksFailed | Verdict::ScopeViolation
    ) {
        return false;
    }
    if report
        .violations
        .iter()
        .any(|v| v.kind == ViolationKind::Protected)
    {
        return false;
    }
    // An error, an interruption or runs held for a person's approval: nothing the agent
    // can fix in its change.
    !report.checks.iter().filter(|c| c.fails_gate()).any(|c| {
        matches!(c.status, CheckStatus::Error | CheckStatus::Cancelled)
            || c.github.as_ref().is_some_and(|g| !g.held.is_empty())
    })
}

/// The instruction of the next repair round, or `None` when the report is not repairable
/// (see [`is_repairable`]) or `rounds_done >= max_rounds`. `rounds_done` is the number of
/// repair rounds already made (0 after the first task). The text is an instruction, not the
/// whole prompt: wrap it with [`crate::core::prompt::build_prompt`] under
/// [`round_key`]`(key, rounds_done + 1)` so it carries the scope preamble and the round's
/// idempotency marker.
pub fn repair_prompt(
    original_instruction: &str,
    report: &Report,
    rounds_done: u32,
    max_rounds: u32,
) -> Option<String> {
    if rounds_done >= max_rounds || !is_repairable(report) {
        return None;
    }
    let mut p = String::new();
    let branch = report
        .task
        .as_ref()
        .and_then(|t| t.branch.clone())
        .or_else(|| report.head.clone());
    let on_branch = branch
        .as_deref()
        .map(|b| format!(" on branch `{}`", one_line(b)))
        .unwrap_or_default();
    let _ = writeln!(
        p,
        "Repair round {} of {max_rounds}. Your previous change{on_branch} did not pass agent-gate (verdict: {}). Fix what is listed below by pushing new commits to the same branch{}; do not open another branch or pull request.",
        rounds_done + 1,
        report.verdict,
        branch
            .as_deref()
            .map(|b| format!(" `{}`", one_line(b)))
            .unwrap_or_default(),
    );
    p.push_str("\nThe original task, which must still be done:\n");
    for line in neutralize(original_instruction.trim()).lines() {
        let _ = writeln!(p, "> {line}");
    }

    failing_checks(&mut p, report);
    scope_section(&mut p, report);

    p.push_str("\nRules for this round:\n");
    p.push_str("- Change only paths the scope below allows; revert every change outside it to its state on the base branch.\n");
    p.push_str(
        "- Do not delete, skip or weaken tests or checks to make them pass; fix the code.\n",
    );
    p.push_str("- Keep the change as small as the task allows. If part of the task cannot be done within the scope, leave it undone and say why in the pull request description.\n");
    Some(p)
}

fn failing_checks(p: &mut String, report: &Report) {
    let failing: Vec<&CheckEntry> = report.checks.iter().filter(|c| c.fails_gate()).collect();
    if !failing.is_empty() {
        p.push_str("\nRequired checks that failed:\n");
        for c in failing.iter().take(MAX_CHECKS) {
            let detail = c
                .detail
                .as_deref()
                .map(|d| format!(" ({})", one_line(d)))
                .unwrap_or_default();
            let _ = writeln!(
                p,
                "\n- `{}`: {}{detail}",
                one_line(&c.name),
                c.status.as_str()
            );
            let (tail, cut) = tail(&c.output_tail, TAIL_LINES, TAIL_BYTES);
            if tail.trim().is_empty() {
                p.push_str("  (it printed nothing)\n");
                continue;
            }
            let earlier = if cut || c.truncated_bytes > 0 {
                "the end of its output (earlier lines not shown)"
            } else {
                "its output"
            };
            let fence = fence_for(&tail);
            let _ = writeln!(p, "  {earlier}:\n{fence}text\n{tail}\n{fence}");
        }
        if failing.len() > MAX_CHECKS {
            let _ = writeln!(
                p,
                "- … and {} more failing checks",
                failing.len() - MAX_CHECKS
            );
        }
    }
    if let Some(why) = &report.checks_skipped {
        let _ = writeln!(
            p,
            "\nThe checks did not run: {}. They run on your next change, so make it pass them.",
            one_line(why)
        );
    }
}

fn scope_section(p: &mut String, report: &Report) {
    let policy = report
        .policy
        .as_deref()
        .map(|f| format!(" `{}`", one_line(f)))
        .unwrap_or_default();
    let (paths, limits): (Vec<_>, Vec<_>) = report
        .violations
        .iter()
        .partition(|v| v.kind == ViolationKind::OutOfScope);
    if !paths.is_empty() {
        let _ = writeln!(
            p,
            "\nPaths outside the scope, each with the rule that decided (\"line N\" is a line of the policy file{policy}):"
        );
        for v in paths.iter().take(MAX_VIOLATIONS) {
            let _ = writeln!(p, "- {}", one_line(&v.message));
        }
        if paths.len() > MAX_VIOLATIONS {
            let _ = writeln!(p, "- … and {} more", paths.len() - MAX_VIOLATIONS);
        }
    }
    if !limits.is_empty() {
        p.push_str("\nLimits exceeded:\n");
        for v in limits.iter().take(MAX_VIOLATIONS) {
            let _ = writeln!(p, "- {}", one_line(&v.message));
        }
        if limits.len() > MAX_VIOLATIONS {
            let _ = writeln!(p, "- … and {} more", limits.len() - MAX_VIOLATIONS);
        }
    }
}

/// The last `max_lines` lines of `text`, at most `max_bytes` bytes (cut at a character
/// boundary), cleaned for a prompt: ANSI escapes and control characters removed, markers
/// neutralized. The flag says whether anything was cut.
pub fn tail(text: &str, max_lines: usize, max_bytes: usize) -> (String, bool) {
    let clean = neutralize(&strip_control(text));
    let trimmed = clean.trim_end_matches(['\n', ' ', '\t']);
    let mut start = 0;
    let mut cut = false;
    // Line cap.
    let mut seen = 0;
    for (i, b) in trimmed.bytes().enumerate().rev() {
        if b == b'\n' {
            seen += 1;
            if seen == max_lines {
                start = i + 1;
                cut = true;
                break;
            }
        }
    }
    // Byte cap.
    if trimmed.len() - start > max_bytes {
        let mut s = trimmed.len() - max_bytes;
        while !trimmed.is_char_boundary(s) {
            s += 1;
        }
        // Start at a whole line when one begins inside the window.
        if let Some(nl) = trimmed[s..].find('\n')
            && nl + 1 < trimmed.len() - s
        {
            s += nl + 1;
        }
        start = s;
        cut = true;
    }
    (trimmed[start..].to_string(), cut)
}

/// Remove ANSI escape sequences and control characters other than newline and tab.
fn strip_control(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI: ESC [ params final(0x40–0x7e); OSC: ESC ] … BEL or ESC \; else one char.
                match chars.peek() {
                    Some('[') => {
                        chars.next();
                        for c in chars.by_ref() {
                            if ('\u{40}'..='\u{7e}').contains(&c) {
                                break;
                            }
                        }
                    }
                    Some(']') => {
                        chars.next();
                        while let Some(c) = chars.next() {
                            if c == '\u{7}' {
                                break;
                            }
                            if c == '\u{1b}' {
                                chars.next();
                                break;
                            }
                        }
                    }
                    Some(_) => {
                        chars.next();
                    }
                    None => {}
                }
            }
            '\r' => {
                // A bare CR (progress bars) ends a line for a reader.
                if chars.peek() != Some(&'\n') {
                    out.push('\n');
                }
            }
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Text from outside (check output, the instruction) must not carry an idempotency marker
/// into the prompt: a marker there would make the task findable under another key.
fn neutralize(text: &str) -> String {
    text.replace(MARKER_PREFIX, "[agent-gate task key (quoted): ")
}

/// One line for a list item: control characters (a path may hold a newline) escaped.
fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in neutralize(text).chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A code fence longer than any run of backticks in `body`.
fn fence_for(body: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in body.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    "`".repeat(longest.max(2) + 1)
}

/// The idempotency key of a round: round 0 (the first task) uses `key`, repair round N uses
/// `<key>-r<N>`. A re-run finds the round in flight by its marker.
pub fn round_key(key: &str, round: u32) -> String {
    if round == 0 {
        key.to_string()
    } else {
        format!("{key}-r{round}")
    }
}

/// Every key in the markers of `text`.
fn marker_keys(text: &str) -> impl Iterator<Item = &str> {
    text.match_indices(MARKER_PREFIX).filter_map(move |(i, _)| {
        let rest = &text[i + MARKER_PREFIX.len()..];
        rest.find(']').map(|end| &rest[..end])
    })
}

/// The round of `key` a session prompt belongs to: 0 for `key`, N for `<key>-r<N>`.
fn round_of(found: &str, key: &str) -> Option<u32> {
    if found == key {
        return Some(0);
    }
    found
        .strip_prefix(key)?
        .strip_prefix("-r")?
        .parse::<u32>()
        .ok()
        .filter(|n| *n > 0)
}

/// The highest round of `key` whose marker is in one of `task`'s session prompts (`None`
/// when no session carries the key). After a re-run attaches, this is the round in flight.
pub fn latest_round(task: &Task, key: &str) -> Option<u32> {
    task.sessions
        .iter()
        .flatten()
        .filter_map(|s| s.prompt.as_deref())
        .flat_map(marker_keys)
        .filter_map(|k| round_of(k, key))
        .max()
}

/// The cost of one round: the usage of `task`'s sessions whose prompt carries the round's
/// marker (GitHub adds a follow-up as a session of the task it continues, so a task's total
/// would count earlier rounds again).
pub fn round_cost(task: &Task, key: &str, round: u32) -> Cost {
    let m = marker(&round_key(key, round));
    let sessions = task
        .sessions
        .iter()
        .flatten()
        .filter(|s| s.prompt.as_deref().is_some_and(|p| p.contains(&m)))
        .cloned()
        .collect();
    task_cost(&Task {
        sessions: Some(sessions),
        ..task.clone()
    })
}

/// The cost of a run over all its rounds: each distinct task counted once (its last-seen
/// version, which holds every session so far), summed.
pub fn total_cost(tasks: &[Task]) -> Cost {
    let mut last: HashMap<&str, &Task> = HashMap::new();
    for t in tasks {
        last.insert(t.id.as_str(), t);
    }
    let mut ids: Vec<&str> = last.keys().copied().collect();
    ids.sort_unstable();
    let mut cost = Cost::default();
    for id in ids {
        let c = task_cost(last[id]);
        cost.ai_credits_nano = cost.ai_credits_nano.saturating_add(c.ai_credits_nano);
        cost.premium_requests += c.premium_requests;
    }
    cost
}

/// The follow-up request of a repair round: the agent commits to `head_ref` (its branch),
/// whose pull request targets `base_ref` (reference §3.1).
pub fn follow_up_request(
    prompt: impl Into<String>,
    head_ref: &str,
    base_ref: &str,
) -> CreateTaskRequest {
    CreateTaskRequest {
        head_ref: Some(head_ref.to_string()),
        ..create_task_request(prompt, Some(base_ref.to_string()))
    }
}

impl RoundRecord {
    /// The record of `round` from the report of its gate.
    pub fn from_report(
        round: u32,
        key: &str,
        prompt_sha256: impl Into<String>,
        task_id: impl Into<String>,
        report: &Report,
        cost: Cost,
    ) -> RoundRecord {
        RoundRecord {
            round,
            key: round_key(key, round),
            prompt_sha256: prompt_sha256.into(),
            task_id: task_id.into(),
            head_sha: report.head_sha.clone(),
            verdict: report.verdict,
            files: report.files.iter().map(|f| f.path.clone()).collect(),
            violations: report
                .violations
                .iter()
                .map(|v| v.message.clone())
                .collect(),
            checks_failed: report
                .checks
                .iter()
                .filter(|c| c.fails_gate())
                .map(|c| c.name.clone())
                .collect(),
            ai_credits: cost.ai_credits(),
            premium_requests: cost.premium_requests,
        }
    }
}
