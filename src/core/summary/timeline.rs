//! The Mermaid `gantt` chart of a run: one bar per task state (from the task's
//! timeline) and one per check that ran (checks start when the task's timeline ends; the
//! report keeps their durations, not their start times, so parallel checks share a start).
//! Times are shown as `HH:MM:SS` since the start of the run. Labels are reduced to
//! characters Mermaid cannot read as syntax.

use std::fmt::Write as _;

use crate::core::report::{CheckEntry, CheckStatus, Report, TimelineEntry};

/// `(state, start, end)` for every interval between consecutive timeline entries.
pub(super) fn state_spans(timeline: &[TimelineEntry]) -> Vec<(String, f64, f64)> {
    timeline
        .windows(2)
        .map(|w| {
            (
                w[0].state.clone(),
                w[0].elapsed_s.max(0.0),
                w[1].elapsed_s.max(w[0].elapsed_s).max(0.0),
            )
        })
        .collect()
}

pub(super) fn timeline(out: &mut String, report: &Report) {
    let spans = report
        .task
        .as_ref()
        .map(|t| state_spans(&t.timeline))
        .unwrap_or_default();
    let ran: Vec<&CheckEntry> = report
        .checks
        .iter()
        .filter(|c| c.status != CheckStatus::Skipped)
        .collect();
    if spans.is_empty() && ran.is_empty() {
        return;
    }
    out.push_str("\n### Timeline\n\n```mermaid\ngantt\n");
    out.push_str("    title Run timeline (h:m:s since the start)\n");
    out.push_str("    dateFormat HH:mm:ss\n    axisFormat %H:%M:%S\n");
    let mut checks_start = 0.0_f64;
    if !spans.is_empty() {
        out.push_str("    section Task\n");
        for (i, (state, start, end)) in spans.iter().enumerate() {
            let tag = if state == "queued" { "" } else { "active, " };
            let (s, e) = bar(*start, *end);
            let _ = writeln!(
                out,
                "    {} :{tag}t{i}, {s}, {e}",
                mermaid_label(&state.replace('_', " "))
            );
        }
        checks_start = report
            .task
            .as_ref()
            .and_then(|t| t.timeline.last())
            .map_or(0.0, |e| e.elapsed_s.max(0.0));
    }
    if !ran.is_empty() {
        out.push_str("    section Checks\n");
        for (i, c) in ran.iter().enumerate() {
            let tag = match c.status {
                CheckStatus::Passed => "done, ",
                CheckStatus::Failed
                | CheckStatus::TimedOut
                | CheckStatus::Error
                | CheckStatus::Unavailable => "crit, ",
                CheckStatus::Skipped | CheckStatus::Cancelled => "",
            };
            #[allow(clippy::cast_precision_loss, reason = "durations far below 2^52 ms")]
            let (s, e) = bar(checks_start, checks_start + c.duration_ms as f64 / 1000.0);
            let _ = writeln!(out, "    {} :{tag}c{i}, {s}, {e}", mermaid_label(&c.name));
        }
    }
    out.push_str("```\n");
}

/// Start and end of a chart bar as `HH:MM:SS`, at least one second long.
fn bar(start: f64, end: f64) -> (String, String) {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "clamped to 0..86399 first"
    )]
    let clock = |s: f64| s.clamp(0.0, 86_399.0).round() as u64;
    let s = clock(start);
    let e = clock(end).max(s + 1).min(86_399);
    let hms = |t: u64| format!("{:02}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60);
    (hms(s), hms(e))
}

/// A Mermaid task name: only characters that cannot end the name or start a directive.
fn mermaid_label(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, ' ' | '.' | '-' | '_' | '/' | '+' | '=') {
                c
            } else {
                ' '
            }
        })
        .take(48)
        .collect();
    let cleaned = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    if cleaned.is_empty() {
        "unnamed".to_string()
    } else {
        cleaned
    }
}
