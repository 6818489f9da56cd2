//! The checks section of the summary: why checks were skipped, the table of checks with
//! status, kind, duration and detail, and the tail of each failed check's output in a
//! `<details>` block, capped at `SummaryContext::max_output_lines` and `max_output_bytes`.
//! It does not run checks (`crate::checks` does) nor clean or fence text itself (`markdown`
//! does).

use std::fmt::Write as _;

use super::SummaryContext;
use super::markdown::{clean_output, fence_for, inline, millis};
use crate::report::{CheckEntry, CheckStatus, Report};

pub(super) fn checks_section(out: &mut String, report: &Report, ctx: &SummaryContext) {
    if report.checks.is_empty() && report.checks_skipped.is_none() {
        return;
    }
    out.push_str("\n### Checks\n\n");
    if let Some(why) = &report.checks_skipped {
        let _ = writeln!(out, "Checks skipped: {}\n", inline(why));
    }
    if !report.checks.is_empty() {
        out.push_str("| Status | Check | Kind | Duration | Detail |\n|---|---|---|---|---|\n");
        for c in &report.checks {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                check_status(c.status),
                inline(&c.name),
                if c.required { "required" } else { "advisory" },
                if c.status == CheckStatus::Skipped {
                    "–".to_string()
                } else {
                    millis(c.duration_ms)
                },
                c.detail.as_deref().map(super::prose).unwrap_or_default()
            );
        }
    }
    for c in report.checks.iter().filter(|c| {
        matches!(
            c.status,
            CheckStatus::Failed | CheckStatus::TimedOut | CheckStatus::Error
        ) && !c.output_tail.is_empty()
    }) {
        output_tail(out, c, ctx);
    }
}

fn check_status(status: CheckStatus) -> &'static str {
    match status {
        CheckStatus::Passed => "✅ passed",
        CheckStatus::Failed => "❌ failed",
        CheckStatus::TimedOut => "⏱️ timed-out",
        CheckStatus::Skipped => "⏭️ skipped",
        CheckStatus::Cancelled => "🛑 cancelled",
        CheckStatus::Error => "⚠️ error",
        CheckStatus::Unavailable => "🧰 unavailable",
    }
}

fn output_tail(out: &mut String, c: &CheckEntry, ctx: &SummaryContext) {
    let cleaned = clean_output(&c.output_tail);
    let all: Vec<&str> = cleaned.lines().collect();
    let mut start = all.len().saturating_sub(ctx.max_output_lines);
    while start < all.len()
        && all[start..].iter().map(|l| l.len() + 1).sum::<usize>() > ctx.max_output_bytes
    {
        start += 1;
    }
    let mut shown: Vec<&str> = all[start..].to_vec();
    // A single line longer than the byte cap keeps only its end.
    if shown.is_empty()
        && let Some(last) = all.last()
    {
        let mut cut = last.len().saturating_sub(ctx.max_output_bytes);
        while !last.is_char_boundary(cut) {
            cut += 1;
        }
        shown.push(&last[cut..]);
    }
    let hidden_lines = all.len() - shown.len().min(all.len());
    let _ = writeln!(
        out,
        "\n<details><summary>Output of {} ({}, last {})</summary>\n",
        inline(&c.name),
        c.status.as_str(),
        if shown.len() == 1 {
            "line".to_string()
        } else {
            format!("{} lines", shown.len())
        }
    );
    if c.truncated_bytes > 0 || hidden_lines > 0 {
        let mut note = Vec::new();
        if c.truncated_bytes > 0 {
            note.push(if c.truncated_bytes == 1 {
                "1 earlier byte was not captured".to_string()
            } else {
                format!("{} earlier bytes were not captured", c.truncated_bytes)
            });
        }
        if hidden_lines > 0 {
            note.push(if hidden_lines == 1 {
                "1 earlier line is not shown here".to_string()
            } else {
                format!("{hidden_lines} earlier lines are not shown here")
            });
        }
        let _ = writeln!(out, "_{}._\n", note.join("; "));
    }
    let body = shown.join("\n");
    let fence = fence_for(&body);
    let _ = writeln!(out, "{fence}text\n{body}\n{fence}\n\n</details>");
}
