//! The verdict banner at the top of the summary: the headline with the verdict's emoji and
//! exit code, one sentence saying why the run ended so ([`reason`]), and the facts line
//! (workflow run, policy, change, merge base, gated commit). It does not render the task,
//! files, violations or checks sections below it, nor escape text itself (`markdown` does).

use std::fmt::Write as _;

use super::SummaryContext;
use super::markdown::{code, first_line, inline, url_text};
use super::violations::{violation_kind_name, violation_priority};
use crate::core::report::{Report, Verdict, ViolationKind, short};

/// One sentence saying why the run ended with its verdict (untrusted parts escaped).
pub fn reason(report: &Report) -> String {
    let state = || {
        report
            .task
            .as_ref()
            .map_or_else(|| "unknown".to_string(), |t| code(&t.state))
    };
    let first_error = || report.errors.first().map(|e| inline(&first_line(e, 200)));
    match report.verdict {
        Verdict::DryRun => {
            "A dry run: the inputs and the policy were checked and the prompt built; no task was started and nothing was gated.".to_string()
        }
        Verdict::Passed => {
            let what = if report.task.is_some() {
                "The task completed, the change stays in scope"
            } else {
                "The change stays in scope"
            };
            format!(
                "{what} and every required check passed ({} file{}, +{} −{}).",
                report.totals.files,
                if report.totals.files == 1 { "" } else { "s" },
                report.totals.lines_added,
                report.totals.lines_deleted
            )
        }
        Verdict::ChecksFailed => checks_failed(report),
        Verdict::CheckError => check_error(report),
        Verdict::ScopeViolation => scope_violation(report),
        Verdict::AgentFailed => match (&report.task, first_error()) {
            (_, Some(e)) => format!("The agent did not deliver: {e}"),
            (Some(_), None) => format!("The agent task ended {}.", state()),
            (None, None) => "The agent produced no change to gate.".to_string(),
        },
        Verdict::TimedOut => format!(
            "The gate's deadline passed while the task was {}; see the stop actions below.",
            state()
        ),
        Verdict::OverBudget => first_error().map_or_else(
            || "A daily budget of the policy would be exceeded; nothing was started.".to_string(),
            |e| format!("Nothing was started: {e}"),
        ),
        Verdict::Cancelled => format!(
            "The gate was interrupted (SIGINT/SIGTERM); the task was left {}.",
            state()
        ),
        Verdict::ConfigError => first_error().map_or_else(
            || "Bad input or policy; nothing was started.".to_string(),
            |e| format!("Bad input or policy; nothing was started: {e}"),
        ),
        Verdict::ApiError => first_error().map_or_else(
            || "The GitHub API failed and retries could not cure it.".to_string(),
            |e| format!("The GitHub API failed: {e}"),
        ),
    }
}

/// The required checks that failed, named.
fn checks_failed(report: &Report) -> String {
    let names: Vec<String> = report
        .checks
        .iter()
        .filter(|c| c.fails_gate())
        .map(|c| code(&c.name))
        .collect();
    format!(
        "Required check{} failed: {}.",
        if names.len() == 1 { "" } else { "s" },
        names.join(", ")
    )
}

/// The required checks that could not run, named: the repository's setup, not the change.
fn check_error(report: &Report) -> String {
    let unavailable: Vec<String> = report
        .checks
        .iter()
        .filter(|c| c.required && c.status == crate::core::report::CheckStatus::Unavailable)
        .map(|c| code(&c.name))
        .collect();
    format!(
        "Required check{} could not run: a program {} is missing where {} — the repository's setup, not the change; nothing was sent back to the agent: {}.",
        if unavailable.len() == 1 { "" } else { "s" },
        if unavailable.len() == 1 {
            "it needs"
        } else {
            "they need"
        },
        if unavailable.len() == 1 {
            "it runs"
        } else {
            "they run"
        },
        unavailable.join(", ")
    )
}

/// How many violations of each kind, the most serious first.
fn scope_violation(report: &Report) -> String {
    let mut kinds: Vec<(&ViolationKind, usize)> = Vec::new();
    for v in &report.violations {
        match kinds.iter_mut().find(|(k, _)| *k == &v.kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((&v.kind, 1)),
        }
    }
    kinds.sort_by_key(|(k, _)| std::cmp::Reverse(violation_priority(k)));
    let parts: Vec<String> = kinds
        .iter()
        .map(|(k, n)| format!("{n} {}", violation_kind_name(k)))
        .collect();
    format!(
        "The change breaks the scope policy: {} violation{} ({}).",
        report.violations.len(),
        if report.violations.len() == 1 {
            ""
        } else {
            "s"
        },
        parts.join(", ")
    )
}

fn emoji(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Passed => "✅",
        Verdict::DryRun => "📝",
        Verdict::ChecksFailed => "❌",
        Verdict::CheckError => "🧰",
        Verdict::ScopeViolation => "⛔",
        Verdict::AgentFailed => "🤖",
        Verdict::TimedOut => "⏱️",
        Verdict::OverBudget => "💸",
        Verdict::Cancelled => "🛑",
        Verdict::ConfigError => "⚙️",
        Verdict::ApiError => "🔌",
    }
}

pub(super) fn banner(out: &mut String, report: &Report, ctx: &SummaryContext) {
    let _ = writeln!(
        out,
        "## {} agent-gate: `{}` (exit {})\n",
        emoji(report.verdict),
        report.verdict,
        report.exit_code
    );
    let _ = writeln!(out, "{}\n", reason(report));
    let mut facts = Vec::new();
    if let Some(url) = &ctx.run_url {
        facts.push(format!("[workflow run]({})", url_text(url)));
    }
    if let Some(policy) = ctx.policy_path.as_ref().or(report.policy.as_ref()) {
        match &ctx.policy_url {
            Some(url) => facts.push(format!("policy [{}]({})", code(policy), url_text(url))),
            None => facts.push(format!("policy {}", code(policy))),
        }
    }
    if let (Some(base), Some(head)) = (&report.base, &report.head) {
        facts.push(format!("change {}…{}", code(base), code(head)));
    }
    if let Some(mb) = &report.merge_base {
        facts.push(format!("merge base {}", code(&short(mb))));
    }
    if let Some(sha) = &report.head_sha {
        facts.push(format!("gated commit {}", code(&short(sha))));
    }
    if !facts.is_empty() {
        let _ = writeln!(out, "{}", facts.join(" · "));
    }
}
