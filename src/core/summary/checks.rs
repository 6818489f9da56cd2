//! The checks section of the summary: why checks were skipped, the table of checks with
//! status, kind, duration and detail, the repository's own checks a `github-checks` check
//! awaited (state, time, link, and the runs held for approval), and the tail of each failed check's output in a
//! `<details>` block, capped at `SummaryContext::max_output_lines` and `max_output_bytes`.
//! It does not run checks (`crate::adapters::checks` does) nor clean or fence text itself (`markdown`
//! does).

use std::fmt::Write as _;

use super::SummaryContext;
use super::markdown::{clean_output, fence_for, inline, millis};
use crate::core::report::{AwaitedCi, CheckEntry, CheckStatus, Report};

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
    for c in &report.checks {
        if let Some(ci) = &c.github {
            awaited_section(out, &c.name, ci);
        }
    }
    for c in report.checks.iter().filter(|c| {
        c.github.is_none()
            && matches!(
                c.status,
                CheckStatus::Failed | CheckStatus::TimedOut | CheckStatus::Error
            )
            && !c.output_tail.is_empty()
    }) {
        output_tail(out, c, ctx);
    }
}

/// The repository's own checks a `github-checks` check awaited: state, conclusion, time and
/// link of each, a failed check run's summary, and the runs held for approval with who must
/// approve them and where.
fn awaited_section(out: &mut String, check: &str, ci: &AwaitedCi) {
    let _ = writeln!(
        out,
        "\n**{}** awaited on `{}` ({} {}, {}):\n",
        inline(check),
        crate::core::report::short(&ci.sha),
        ci.polls,
        if ci.polls == 1 { "read" } else { "reads" },
        millis(ci.waited_ms)
    );
    if !ci.checks.is_empty() {
        out.push_str("| GitHub check | Kind | State | Took |\n|---|---|---|---|\n");
        for a in &ci.checks {
            let state = match &a.conclusion {
                Some(c) => format!("{} ({c})", a.state),
                None => a.state.clone(),
            };
            let name = match &a.url {
                Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
                    format!(
                        "[{}]({})",
                        inline(&a.name),
                        url.replace(' ', "%20").replace(')', "%29")
                    )
                }
                _ => inline(&a.name),
            };
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} |",
                a.kind,
                inline(&state),
                a.duration_ms.map_or_else(|| "–".to_string(), millis)
            );
        }
    }
    for a in ci
        .checks
        .iter()
        .filter(|a| a.conclusion.as_deref().is_some_and(|c| c != "success") && a.summary.is_some())
    {
        let summary = clean_output(a.summary.as_deref().unwrap_or_default());
        let fence = fence_for(&summary);
        let _ = writeln!(
            out,
            "\n<details><summary>Summary of {}</summary>\n\n{fence}text\n{summary}\n{fence}\n\n</details>",
            inline(&a.name)
        );
    }
    if !ci.held.is_empty() {
        let runs: Vec<String> = ci
            .held
            .iter()
            .map(|h| format!("{} ({})", inline(&h.name), inline(&h.url)))
            .collect();
        let _ = writeln!(out, "\n⏸️ Held for approval: {}.", runs.join(", "));
        if let Some(approval) = &ci.approval {
            let _ = writeln!(out, "{}", super::prose(approval));
        }
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
