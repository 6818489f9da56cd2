//! Scope assessment of a change (DESIGN §1 step 6): every changed path — both sides of a
//! rename — decided against the scope, plus the limits (files, lines) and the switches
//! (binary files, symlinks, submodules, mode changes). Pure logic over the compiled policy
//! and a list of changes; it runs no git and no checks.

use std::collections::BTreeMap;

use bstr::{BString, ByteSlice};

use crate::core::change::{Change, ChangeKind};
use crate::core::policy::{Allowance, Limits};
use crate::core::report::{FileEntry, Violation, ViolationKind};
use crate::core::scope::{Decision, Reason, RuleRef, Scope, display_path};

/// The scope part of a report.
#[derive(Debug, Clone, Default)]
pub struct Assessment {
    pub files: Vec<FileEntry>,
    pub violations: Vec<Violation>,
}

fn status_name(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Added => "added",
        ChangeKind::Modified => "modified",
        ChangeKind::Deleted => "deleted",
        ChangeKind::Renamed => "renamed",
        ChangeKind::Copied => "copied",
        ChangeKind::TypeChanged => "type-changed",
    }
}

fn scope_violation(path: &str, decision: &Decision, side: &str) -> Option<Violation> {
    if decision.in_scope {
        return None;
    }
    let (kind, rule, why) = match &decision.reason {
        Reason::Protected { rule } => (
            ViolationKind::Protected,
            Some(rule.clone()),
            crate::core::report::describe_decision(decision),
        ),
        Reason::Denied { rule } => (
            ViolationKind::OutOfScope,
            Some(rule.clone()),
            crate::core::report::describe_decision(decision),
        ),
        _ => (
            ViolationKind::OutOfScope,
            None,
            crate::core::report::describe_decision(decision),
        ),
    };
    Some(Violation {
        kind,
        path: Some(path.to_string()),
        rule,
        message: format!(
            "{side}{}: {why}",
            crate::core::report::escape_for_humans(path)
        ),
    })
}

/// A symbolic link at `path` that is a way into protected paths: at a directory holding
/// some (a link named `.github`), or leading — its target read relative to the link's
/// directory, as the file system does — to a protected path or a directory holding some.
/// A target that leaves the repository (absolute, or `..` above the root) leads to no
/// repository path; the isolated checks never follow it (docs/checks.md).
fn link_violation(
    scope: &Scope,
    path: &[u8],
    shown: &str,
    target: Option<&[u8]>,
) -> Option<Violation> {
    let protected = |rule: RuleRef, what: String| Violation {
        kind: ViolationKind::Protected,
        path: Some(display_path(path)),
        message: format!(
            "{shown}: {what} (protected by \"{}\" ({}))",
            rule.text,
            crate::core::report::describe_origin(&rule.origin)
        ),
        rule: Some(rule),
    };
    if let Some(rule) = scope.protected_at_or_below(path) {
        return Some(protected(
            rule,
            "symbolic link in the place of a directory that holds protected paths".to_string(),
        ));
    }
    let resolved = resolve_link(path, target?)?;
    let to = crate::core::report::escape_for_humans(&display_path(&resolved));
    let to = if to.is_empty() {
        "the repository root".to_string()
    } else {
        format!("`{to}`")
    };
    if let Reason::Protected { rule } = scope.decide(&resolved).reason {
        return Some(protected(
            rule,
            format!("symbolic link to {to}, a protected path"),
        ));
    }
    scope.protected_at_or_below(&resolved).map(|rule| {
        protected(
            rule,
            format!("symbolic link to {to}, a directory that holds protected paths"),
        )
    })
}

/// The repository path a link at `link` with target text `target` points to, resolved
/// lexically (`.` and `..` against the link's directory); `None` when it leaves the
/// repository. The empty path is the repository root.
fn resolve_link(link: &[u8], target: &[u8]) -> Option<Vec<u8>> {
    if target.first() == Some(&b'/') || target.is_empty() {
        return None;
    }
    let mut parts: Vec<&[u8]> = link.split(|&b| b == b'/').collect();
    parts.pop();
    for part in target.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop()?;
            }
            name => parts.push(name),
        }
    }
    Some(parts.join(&b'/'))
}

/// Decide every change against `scope` and `limits`. `link_targets` holds the target text
/// of the symbolic links the change adds (by path): a link at, or leading to, a protected
/// path — or to a directory holding protected paths — is itself a protected violation,
/// whatever `scope.symlinks` says.
pub fn assess(
    scope: &Scope,
    limits: &Limits,
    changes: &[Change],
    link_targets: &BTreeMap<BString, BString>,
) -> Assessment {
    let mut a = Assessment {
        files: Vec::with_capacity(changes.len()),
        violations: Vec::new(),
    };
    let mut lines: u64 = 0;
    for c in changes {
        let path = display_path(&c.path);
        let shown = crate::core::report::escape_for_humans(&path);
        let decision = scope.decide(&c.path);
        let old_decision = c.old_path.as_ref().map(|p| scope.decide(p));
        let old_display = c.old_path.as_ref().map(|p| display_path(p));
        if let Some(v) = scope_violation(&path, &decision, "") {
            a.violations.push(v);
        }
        if let (Some(od), Some(op)) = (&old_decision, &old_display) {
            let side = if c.kind == ChangeKind::Renamed {
                "renamed from "
            } else {
                "copied from "
            };
            if let Some(mut v) = scope_violation(op, od, side) {
                v.message = format!("{} (to {shown})", v.message);
                a.violations.push(v);
            }
        }
        a.violations
            .extend(switch_violations(c, limits, &path, &shown));
        let mut link_protected = false;
        if c.adds_symlink() && decision.in_scope {
            let target = link_targets.get(&c.path);
            if let Some(v) = link_violation(scope, &c.path, &shown, target.map(|t| t.as_slice())) {
                a.violations.push(v);
                link_protected = true;
            }
        }
        lines += c.added.unwrap_or(0) + c.deleted.unwrap_or(0);
        let in_scope = decision.in_scope
            && !link_protected
            && old_decision.as_ref().is_none_or(|d| d.in_scope);
        a.files.push(FileEntry {
            path,
            path_bytes: c.path.to_str().is_err().then(|| c.path.to_vec()),
            old_path: old_display,
            status: status_name(c.kind).to_string(),
            added: c.added,
            deleted: c.deleted,
            binary: c.is_binary(),
            in_scope,
            decision,
            old_decision,
        });
    }
    a.violations
        .extend(limit_violations(limits, changes.len(), lines));
    a
}

/// What the change puts in the tree that a switch denies (`scope.binary-files`,
/// `scope.symlinks`, `scope.submodules`, `scope.mode-changes`). Removing a binary file, a
/// symbolic link or a submodule is allowed whatever they say (docs/policy.md).
fn switch_violations(c: &Change, limits: &Limits, path: &str, shown: &str) -> Vec<Violation> {
    let switch = |allow: Allowance, kind: ViolationKind, what: String| {
        (allow == Allowance::Deny).then(|| Violation {
            kind,
            path: Some(path.to_string()),
            rule: None,
            message: what,
        })
    };
    let mut found = Vec::new();
    if c.adds_binary() {
        found.extend(switch(
            limits.binary_files,
            ViolationKind::BinaryFile,
            format!("{shown}: binary file (scope.binary-files: deny)"),
        ));
    }
    if c.adds_symlink() {
        found.extend(switch(
            limits.symlinks,
            ViolationKind::Symlink,
            format!("{shown}: symbolic link (scope.symlinks: deny)"),
        ));
    }
    if c.adds_submodule() {
        found.extend(switch(
            limits.submodules,
            ViolationKind::Submodule,
            format!("{shown}: submodule (scope.submodules: deny)"),
        ));
    }
    if c.mode_changed() {
        found.extend(switch(
            limits.mode_changes,
            ViolationKind::ModeChange,
            format!(
                "{shown}: mode change {:o} -> {:o} (scope.mode-changes: deny)",
                c.old_mode, c.new_mode
            ),
        ));
    } else if c.made_executable() {
        found.extend(switch(
            limits.mode_changes,
            ViolationKind::ModeChange,
            format!(
                "{shown}: new executable file (mode {:o}; scope.mode-changes: deny)",
                c.new_mode
            ),
        ));
    }
    found
}

/// The change's size against `scope.max-files` and `scope.max-changed-lines`.
fn limit_violations(limits: &Limits, files: usize, lines: u64) -> Vec<Violation> {
    let mut found = Vec::new();
    if let Some(max) = limits.max_files
        && files > max
    {
        found.push(Violation {
            kind: ViolationKind::MaxFiles,
            path: None,
            rule: None,
            message: format!("{files} files changed, more than scope.max-files: {max}"),
        });
    }
    if let Some(max) = limits.max_changed_lines
        && lines > max
    {
        found.push(Violation {
            kind: ViolationKind::MaxChangedLines,
            path: None,
            rule: None,
            message: format!("{lines} lines changed, more than scope.max-changed-lines: {max}"),
        });
    }
    found
}
