//! The violations section of the summary: the list of violations, most important kinds
//! first and capped at `SummaryContext::max_violations`, each with agent-chosen paths in
//! `<code>`; and the order and names of violation kinds ([`violation_priority`],
//! [`violation_kind_name`]) the banner's reason also uses. It does not find violations
//! (`assessment` does) nor word decisions itself (`files` does).

use std::fmt::Write as _;

use super::files::decision;
use super::markdown::{code, inline};
use super::{SummaryContext, more_note};
use crate::core::report::{Report, ViolationKind};

/// The importance of a violation kind, for ordering (higher first): protected paths, then
/// paths out of scope, then limits, then the file-kind switches.
pub fn violation_priority(kind: &ViolationKind) -> u32 {
    match kind {
        ViolationKind::Protected => 40,
        ViolationKind::OutOfScope => 30,
        ViolationKind::MaxFiles | ViolationKind::MaxChangedLines => 20,
        ViolationKind::BinaryFile
        | ViolationKind::Symlink
        | ViolationKind::Submodule
        | ViolationKind::ModeChange => 10,
    }
}

/// The kebab-case name of a violation kind.
pub fn violation_kind_name(kind: &ViolationKind) -> &'static str {
    match kind {
        ViolationKind::OutOfScope => "out-of-scope",
        ViolationKind::Protected => "protected",
        ViolationKind::MaxFiles => "max-files",
        ViolationKind::MaxChangedLines => "max-changed-lines",
        ViolationKind::BinaryFile => "binary-file",
        ViolationKind::Symlink => "symlink",
        ViolationKind::Submodule => "submodule",
        ViolationKind::ModeChange => "mode-change",
    }
}

pub(super) fn violations_section(out: &mut String, report: &Report, ctx: &SummaryContext) {
    if report.violations.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n### Violations ({})\n", report.violations.len());
    let mut ordered: Vec<_> = report.violations.iter().collect();
    ordered.sort_by_key(|v| std::cmp::Reverse(violation_priority(&v.kind)));
    for v in ordered.iter().take(ctx.max_violations) {
        let what = violation_text(v, report, ctx);
        let _ = writeln!(out, "- **{}**: {what}", violation_kind_name(&v.kind));
    }
    more_note(
        out,
        report.violations.len(),
        ctx.max_violations,
        "violations",
        ctx,
    );
}

/// One violation for humans. Agent-chosen paths are always in `<code>`; for scope
/// decisions the text is built from the file entry (both sides of a rename), otherwise the
/// message is used with each occurrence of the path put in `<code>`.
fn violation_text(
    v: &crate::core::report::Violation,
    report: &Report,
    ctx: &SummaryContext,
) -> String {
    let Some(path) = v.path.as_deref().filter(|p| !p.is_empty()) else {
        return inline(&v.message);
    };
    if matches!(v.kind, ViolationKind::Protected | ViolationKind::OutOfScope) {
        if let Some(f) = report.files.iter().find(|f| f.path == path) {
            return format!("{} — {}", code(path), decision(&f.decision, ctx));
        }
        let old_side = report
            .files
            .iter()
            .find(|f| f.old_path.as_deref() == Some(path));
        if let Some((f, old)) = old_side.and_then(|f| f.old_decision.as_ref().map(|d| (f, d))) {
            return format!(
                "{} ({} to {}) — {}",
                code(path),
                inline(&f.status),
                code(&f.path),
                decision(old, ctx)
            );
        }
    }
    v.message
        .split(path)
        .map(inline)
        .collect::<Vec<_>>()
        .join(&code(path))
}
