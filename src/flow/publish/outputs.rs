//! The mapping from a finished [`Report`] to what a GitHub Actions step hands back: the
//! step outputs of DESIGN §4 and the annotations. It decides *what* is reported; the
//! format (heredoc outputs, escaping, the 10-per-level annotation budget, secret
//! redaction) is the `actions` module's.
//!
//! It is also the door to the step summary ([`write_summary`]): the summary escapes
//! untrusted text as HTML entities, which would hide a secret from the masker applied
//! afterwards (`ghp_…` becomes `ghp&#95;…`), so the report is redacted *before* it is
//! rendered ([`redact_report`]).
//!
//! Every output is always set — the empty string when the value is unknown (no task, no
//! pull request) — so `steps.<id>.outputs.<name>` never silently falls back to a stale
//! value. `violations` and `checks` are compact JSON arrays (no output tails: those are in
//! the step summary), capped well below the runner's 1 MB per-output limit.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::adapters::actions::{
    ActionsError, ActionsIo, Annotation, Annotations, Level, Masker, SummaryWrite,
};
use crate::core::report::{CheckEntry, CheckStatus, Report, Verdict, Violation, ViolationKind};
use crate::core::scope::{Decision, Reason, RuleOrigin};
use crate::core::summary::{SummaryContext, violation_kind_name, violation_priority};

/// Every output name, in the order [`write()`] sets them (DESIGN §4, `action.yml`).
pub const NAMES: [&str; 12] = [
    "verdict",
    "task-id",
    "task-url",
    "task-state",
    "pr-number",
    "pr-url",
    "head-sha",
    "changed-files",
    "violations",
    "checks",
    "ai-credits",
    "audit-file",
];

/// The largest `violations` value, in bytes; entries that do not fit are left out
/// (least important first). The count of all violations is in the JSON report.
pub const MAX_VIOLATIONS_JSON: usize = 256 * 1024;

/// Priorities of annotations: higher is shown first.
mod priority {
    pub const ERROR: u32 = 1000;
    pub const VERDICT: u32 = 900;
    pub const FAILED_REQUIRED_CHECK: u32 = 100;
    pub const ADVISORY_CHECK: u32 = 60;
    pub const ISOLATION: u32 = 50;
}

/// A violation in the `violations` output.
#[derive(Debug, Serialize)]
struct ViolationOutput<'a> {
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    message: &'a str,
}

/// A check in the `checks` output.
#[derive(Debug, Serialize)]
struct CheckOutput<'a> {
    name: &'a str,
    required: bool,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    duration_ms: u64,
    /// For `github-checks`: each awaited check run or status.
    #[serde(skip_serializing_if = "Option::is_none")]
    awaited: Option<Vec<AwaitedOutput<'a>>>,
    /// For `github-checks`: workflow runs held for approval (their URLs).
    #[serde(skip_serializing_if = "Option::is_none")]
    held: Option<Vec<&'a str>>,
}

/// An awaited check run or status in the `checks` output.
#[derive(Debug, Serialize)]
struct AwaitedOutput<'a> {
    name: &'a str,
    kind: &'a str,
    state: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    conclusion: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<u64>,
}

/// The value of every output, in [`NAMES`] order.
pub fn values(report: &Report, audit_file: &Path) -> Vec<(&'static str, String)> {
    let task = report.task.as_ref();
    let text = |v: Option<&String>| v.cloned().unwrap_or_default();
    let values = [
        report.verdict.as_str().to_string(),
        text(task.map(|t| &t.id)),
        text(task.and_then(|t| t.url.as_ref())),
        text(task.map(|t| &t.state)),
        task.and_then(|t| t.pr_number)
            .map(|n| n.to_string())
            .unwrap_or_default(),
        text(task.and_then(|t| t.pr_url.as_ref())),
        text(report.head_sha.as_ref()),
        report.totals.files.max(report.files.len()).to_string(),
        violations_json(&report.violations),
        checks_json(&report.checks),
        task.map(|t| crate::core::report::credits(t.ai_credits))
            .unwrap_or_default(),
        audit_file.display().to_string(),
    ];
    NAMES.into_iter().zip(values).collect()
}

/// Set every output of DESIGN §4 through `io` (redacted, heredoc form).
pub fn write<W: Write>(
    report: &Report,
    io: &mut ActionsIo<W>,
    audit_file: &Path,
) -> Result<(), ActionsError> {
    for (name, value) in values(report, audit_file) {
        io.set_output(name, &value)?;
    }
    Ok(())
}

/// Violations, most important first, as a JSON array within [`MAX_VIOLATIONS_JSON`].
fn violations_json(violations: &[Violation]) -> String {
    let mut ordered: Vec<&Violation> = violations.iter().collect();
    ordered.sort_by_key(|v| std::cmp::Reverse(violation_priority(&v.kind)));
    let mut out = String::from("[");
    for v in ordered {
        let entry = ViolationOutput {
            kind: violation_kind_name(&v.kind),
            path: v.path.as_deref(),
            rule: v.rule.as_ref().map(|r| &*r.text),
            line: v.rule.as_ref().and_then(|r| match r.origin {
                RuleOrigin::Policy { line, .. } => Some(line),
                _ => None,
            }),
            message: &v.message,
        };
        let Ok(json) = serde_json::to_string(&entry) else {
            continue;
        };
        if out.len() + json.len() + 2 > MAX_VIOLATIONS_JSON {
            break;
        }
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str(&json);
    }
    out.push(']');
    out
}

fn checks_json(checks: &[CheckEntry]) -> String {
    let entries: Vec<CheckOutput<'_>> = checks
        .iter()
        .map(|c| CheckOutput {
            name: &c.name,
            required: c.required,
            status: c.status.as_str(),
            detail: c.detail.as_deref(),
            duration_ms: c.duration_ms,
            awaited: c.github.as_ref().map(|g| {
                g.checks
                    .iter()
                    .map(|a| AwaitedOutput {
                        name: &a.name,
                        kind: &a.kind,
                        state: &a.state,
                        conclusion: a.conclusion.as_deref(),
                        url: a.url.as_deref(),
                        duration_ms: a.duration_ms,
                    })
                    .collect()
            }),
            held: c
                .github
                .as_ref()
                .filter(|g| !g.held.is_empty())
                .map(|g| g.held.iter().map(|h| h.url.as_str()).collect()),
        })
        .collect();
    serde_json::to_string(&entries).unwrap_or_else(|_| "[]".to_string())
}

/// The annotations of `report`, planned within GitHub's budget by [`Annotations`].
///
/// Errors, most important first: the report's errors (the first one located at
/// `policy_path`, `line`, `col` when `policy_error_at` is given and the verdict is
/// `config-error`), a headline for verdicts no other annotation explains, then
/// violations — protected paths, paths out of scope, limits, file-kind switches — each
/// with `file=` its path and `title=` its rule, then failed required checks. Warnings:
/// failed advisory checks, then the isolation notes that name a weakness. Notices: the
/// other isolation notes (isolation working as designed), and one for a passed run.
pub fn annotations(
    report: &Report,
    policy_path: &str,
    policy_error_at: Option<(u32, u32)>,
) -> Annotations {
    let mut out = Annotations::new();
    push_errors(&mut out, report, policy_path, policy_error_at);
    for v in &report.violations {
        out.push(
            Level::Error,
            violation_priority(&v.kind) * 10,
            violation_annotation(v),
        );
    }
    for c in &report.checks {
        if let Some((level, priority, annotation)) = check_annotation(c) {
            out.push(level, priority, annotation);
        }
    }
    for note in &report.isolation_notes {
        // Isolation working as designed is a notice; only a weakness is a warning.
        let level = if report.isolation_weaknesses.contains(note) {
            Level::Warning
        } else {
            Level::Notice
        };
        out.push(
            level,
            priority::ISOLATION,
            Annotation::new(note.clone()).title("agent-gate: check isolation"),
        );
    }
    if let Some(notice) = verdict_notice(report) {
        out.push(Level::Notice, priority::VERDICT, notice);
    }
    out
}

/// The run's errors, each an error annotation (the first of a configuration error on the
/// policy's line, when it is known); with no error, the verdict's headline when it has one.
fn push_errors(
    out: &mut Annotations,
    report: &Report,
    policy_path: &str,
    policy_error_at: Option<(u32, u32)>,
) {
    for (i, error) in report.errors.iter().enumerate() {
        let title = match report.verdict {
            Verdict::ConfigError => "agent-gate: configuration error",
            Verdict::ApiError => "agent-gate: GitHub API error",
            _ => "agent-gate: error",
        };
        let mut annotation = Annotation::new(error.clone()).title(title);
        if let (0, Verdict::ConfigError, Some((line, col))) = (i, report.verdict, policy_error_at) {
            annotation = annotation.file(policy_path).lines(line, line);
            annotation.col = Some(col);
        }
        out.push(Level::Error, priority::ERROR, annotation);
    }
    if report.errors.is_empty()
        && let Some(message) = headline(report)
    {
        out.push(
            Level::Error,
            priority::VERDICT,
            Annotation::new(message).title(format!("agent-gate: {}", report.verdict)),
        );
    }
}

/// A violation, on its path when it has one, titled with its kind and the rule (and where
/// the rule was written) or what would fix it.
fn violation_annotation(v: &Violation) -> Annotation {
    let title = match &v.rule {
        Some(rule) => format!(
            "{}: {} ({})",
            violation_kind_name(&v.kind),
            rule.text,
            crate::core::report::describe_origin(&rule.origin)
        ),
        None => format!("{}: {}", violation_kind_name(&v.kind), kind_hint(&v.kind)),
    };
    let annotation = Annotation::new(v.message.clone()).title(title);
    match v.path.as_deref().filter(|p| !p.is_empty()) {
        Some(path) => annotation.file(path),
        None => annotation,
    }
}

/// The notice of a run that ended without a problem to point at: a dry run, or a pass.
fn verdict_notice(report: &Report) -> Option<Annotation> {
    match report.verdict {
        Verdict::DryRun => Some(
            Annotation::new("a dry run: no task was started and nothing was gated")
                .title("agent-gate: dry-run"),
        ),
        Verdict::Passed => Some(
            Annotation::new(format!(
                "passed: {} file{} in scope, every required check passed",
                report.totals.files,
                if report.totals.files == 1 { "" } else { "s" }
            ))
            .title("agent-gate: passed"),
        ),
        _ => None,
    }
}

/// The annotation of a check that failed, timed out, errored or was cancelled (an error
/// when it is required, else a warning), with the last lines of its output.
fn check_annotation(c: &CheckEntry) -> Option<(Level, u32, Annotation)> {
    let failed = matches!(
        c.status,
        CheckStatus::Failed | CheckStatus::TimedOut | CheckStatus::Error | CheckStatus::Cancelled
    );
    if !failed {
        return None;
    }
    let (level, priority, kind) = if c.required {
        (Level::Error, priority::FAILED_REQUIRED_CHECK, "required")
    } else {
        (Level::Warning, priority::ADVISORY_CHECK, "advisory")
    };
    let mut message = format!(
        "The {kind} check `{}` {}{}.",
        c.name,
        c.status.as_str(),
        c.detail
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default()
    );
    let tail = last_lines(&crate::core::summary::clean_output(&c.output_tail), 10);
    if !tail.is_empty() {
        message.push_str(" Last lines of its output (all of it is in the step summary):\n");
        message.push_str(&tail);
    }
    let title = format!("agent-gate: check {} {}", c.name, c.status.as_str());
    Some((level, priority, Annotation::new(message).title(title)))
}

/// A sentence for verdicts whose cause is not an error, violation or check.
fn headline(report: &Report) -> Option<String> {
    let state = report.task.as_ref().map_or("unknown", |t| t.state.as_str());
    match report.verdict {
        Verdict::AgentFailed => Some(format!(
            "The agent task ended `{state}` without a change to gate."
        )),
        Verdict::TimedOut => Some(format!(
            "The gate's deadline passed while the task was `{state}`; the pull request was marked (see the step summary)."
        )),
        Verdict::Cancelled => Some(format!(
            "The gate was interrupted; the task was left `{state}`."
        )),
        Verdict::OverBudget => {
            Some("A daily budget of the policy would be exceeded; nothing was started.".to_string())
        }
        Verdict::ConfigError => Some("Bad input or policy; nothing was started.".to_string()),
        Verdict::ApiError => {
            Some("The GitHub API failed and retries could not cure it.".to_string())
        }
        Verdict::DryRun
        | Verdict::Passed
        | Verdict::ScopeViolation
        | Verdict::CheckError
        | Verdict::ChecksFailed => None,
    }
}

fn kind_hint(kind: &ViolationKind) -> &'static str {
    match kind {
        ViolationKind::OutOfScope => "no allow rule matches",
        ViolationKind::Protected => "protected path",
        ViolationKind::MaxFiles => "scope.max-files",
        ViolationKind::MaxChangedLines => "scope.max-changed-lines",
        ViolationKind::BinaryFile => "scope.binary-files: deny",
        ViolationKind::Symlink => "scope.symlinks: deny",
        ViolationKind::Submodule => "scope.submodules: deny",
        ViolationKind::ModeChange => "scope.mode-changes: deny",
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Render the step summary of `report` and append it through `io` (within the 1 MiB
/// limit; `full_report` names where the complete report is if it must be cut). The report
/// is redacted with `io`'s secrets before rendering, so no secret survives escaping.
pub fn write_summary<W: Write>(
    report: &Report,
    ctx: &SummaryContext,
    io: &mut ActionsIo<W>,
    full_report: &str,
) -> Result<SummaryWrite, ActionsError> {
    write_redacted_summary(&redact_report(report, io.masker()), ctx, io, full_report)
}

/// [`write_summary`] of a report already redacted with `io`'s secrets
/// ([`redact_report_owned`]): no second copy of a large report.
pub fn write_redacted_summary<W: Write>(
    redacted: &Report,
    ctx: &SummaryContext,
    io: &mut ActionsIo<W>,
    full_report: &str,
) -> Result<SummaryWrite, ActionsError> {
    let markdown = crate::core::summary::render(redacted, ctx);
    io.write_summary(&markdown, full_report)
}

/// A copy of `report` with every registered secret replaced by `***` in every text field
/// (paths, rules, messages, outputs, errors, task fields). Exact file-name bytes
/// (`path_bytes`) are dropped when the path held a secret.
pub fn redact_report(report: &Report, masker: &Masker) -> Report {
    redact_report_owned(report.clone(), masker)
}

/// Replace `s` with its redaction when that differs (a `String` or a shared `Arc<str>`).
fn redact_in_place<T: AsRef<str> + From<String>>(masker: &Masker, s: &mut T) {
    if let std::borrow::Cow::Owned(r) = masker.redact(s.as_ref()) {
        *s = T::from(r);
    }
}

/// [`redact_report`] on a report the caller gives up: redacted in place, no copy.
pub fn redact_report_owned(mut r: Report, masker: &Masker) -> Report {
    if masker.is_empty() {
        return r;
    }
    let m = |s: &mut String| redact_in_place(masker, s);
    let mo = |s: &mut Option<String>| {
        if let Some(s) = s {
            m(s);
        }
    };
    // A rule's text is shared with the compiled rule: replaced, never written through.
    let ms = |s: &mut std::sync::Arc<str>| redact_in_place(masker, s);
    let md = |d: &mut Decision| match &mut d.reason {
        Reason::Protected { rule } | Reason::Denied { rule } | Reason::Allowed { rule } => {
            ms(&mut rule.text);
        }
        Reason::OutsideScopeInput | Reason::NoAllowRule | Reason::AllowedByDefault => {}
    };
    for field in [
        &mut r.policy,
        &mut r.base,
        &mut r.head,
        &mut r.merge_base,
        &mut r.head_sha,
        &mut r.checks_skipped,
    ] {
        mo(field);
    }
    if let Some(t) = r.task.as_mut() {
        for field in [&mut t.id, &mut t.state, &mut t.key] {
            m(field);
        }
        for field in [
            &mut t.url,
            &mut t.prompt_sha256,
            &mut t.instruction,
            &mut t.branch,
            &mut t.pr_url,
        ] {
            mo(field);
        }
        for e in &mut t.timeline {
            m(&mut e.state);
            m(&mut e.at);
        }
        t.stop_actions.iter_mut().for_each(m);
    }
    for f in &mut r.files {
        let before = f.path.clone();
        m(&mut f.path);
        if f.path != before {
            f.path_bytes = None;
        }
        mo(&mut f.old_path);
        m(&mut f.status);
        md(&mut f.decision);
        if let Some(d) = f.old_decision.as_mut() {
            md(d);
        }
    }
    for v in &mut r.violations {
        mo(&mut v.path);
        m(&mut v.message);
        if let Some(rule) = v.rule.as_mut() {
            ms(&mut rule.text);
        }
    }
    for c in &mut r.checks {
        m(&mut c.name);
        mo(&mut c.detail);
        m(&mut c.output_tail);
    }
    r.isolation_notes.iter_mut().for_each(m);
    r.isolation_weaknesses.iter_mut().for_each(m);
    r.errors.iter_mut().for_each(m);
    r
}
