//! The files section of the summary: the table of changed files (capped at
//! `SummaryContext::max_files`) with each path's status, line counts and the scope decision
//! with the rule that made it, linked to its policy line when the policy's URL is known. It
//! also words a single decision for the violations list. It does not decide scope
//! (`crate::core::scope` does) nor list violations.

use std::fmt::Write as _;

use super::markdown::{code, inline, url_text};
use super::{SummaryContext, more_note};
use crate::core::report::{FileEntry, Report};
use crate::core::scope::{Decision, Reason, RuleOrigin, RuleRef};

pub(super) fn files_section(out: &mut String, report: &Report, ctx: &SummaryContext) {
    if report.files.is_empty() {
        return;
    }
    let t = &report.totals;
    let _ = writeln!(
        out,
        "\n### Files\n\n{} changed, +{} −{}, {} out of scope.\n",
        t.files,
        t.lines_added,
        t.lines_deleted,
        report.files.iter().filter(|f| !f.in_scope).count()
    );
    out.push_str("| In scope | Status | Path | Lines | Decided by |\n|---|---|---|---|---|\n");
    for f in report.files.iter().take(ctx.max_files) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            if f.in_scope { "✅ yes" } else { "⛔ no" },
            inline(&f.status),
            file_path(f),
            lines(f),
            file_decision(f, ctx)
        );
    }
    more_note(out, report.files.len(), ctx.max_files, "files", ctx);
}

fn file_path(f: &FileEntry) -> String {
    match &f.old_path {
        Some(old) => format!("{} → {}", code(old), code(&f.path)),
        None => code(&f.path),
    }
}

fn lines(f: &FileEntry) -> String {
    match (f.added, f.deleted) {
        (Some(a), Some(d)) if !f.binary => format!("+{a} −{d}"),
        _ => "binary".to_string(),
    }
}

fn file_decision(f: &FileEntry, ctx: &SummaryContext) -> String {
    let new = decision(&f.decision, ctx);
    match &f.old_decision {
        Some(old) if f.old_path.is_some() => format!("new: {new}<br>old: {}", decision(old, ctx)),
        _ => new,
    }
}

pub(super) fn decision(d: &Decision, ctx: &SummaryContext) -> String {
    match &d.reason {
        Reason::Protected { rule } => format!("protected by {}", rule_ref(rule, ctx)),
        Reason::Denied { rule } => format!("denied by {}", rule_ref(rule, ctx)),
        Reason::Allowed { rule } => format!("allowed by {}", rule_ref(rule, ctx)),
        Reason::OutsideScopeInput => "outside the <code>scope</code> input".to_string(),
        Reason::NoAllowRule => "no allow rule matches".to_string(),
        Reason::AllowedByDefault => "allowed (no allow rules)".to_string(),
    }
}

/// `` `src/**` (line 4) `` with the line linked to the policy file when its URL is known.
fn rule_ref(rule: &RuleRef, ctx: &SummaryContext) -> String {
    let origin = match &rule.origin {
        RuleOrigin::Policy { line, .. } => match &ctx.policy_url {
            Some(url) => format!("[line {line}]({}#L{line})", url_text(url)),
            None => format!("line {line}"),
        },
        RuleOrigin::AlwaysProtected => "always protected".to_string(),
        RuleOrigin::ScopeInput { index } => format!("<code>scope</code> input #{}", index + 1),
    };
    format!("{} ({origin})", code(&rule.text))
}
