//! The step summary: one finished [`Report`] rendered as GitHub-flavoured Markdown — a
//! verdict banner, the agent task (link, state, durations, cost), a Mermaid `gantt` chart
//! of the run, the files table with the rule that decided each path, the violations, the
//! checks with the tails of failed outputs, isolation notes and errors.
//!
//! Pure rendering: no I/O, no clock, no secret handling — and because entity escaping
//! splits a secret (`ghp_…` becomes `ghp&#95;…`) so a masker applied afterwards would miss
//! it, render only a report that is already redacted (`publish::outputs::write_summary` does).
//! Writing the text to `GITHUB_STEP_SUMMARY` (redaction and the hard 1 MiB limit) is the Actions adapter's
//! job (`actions::ActionsIo::write_summary`); this module only keeps typical output far
//! below that limit by capping long lists and output tails.
//!
//! Paths, outputs, messages and API strings are untrusted: the agent chose them. Paths
//! and API strings are always shown in `<code>` elements (GitHub applies no mention,
//! reference or emoji filter there), and every inline text has each Markdown- or
//! HTML-significant character written as a numeric entity, so `|` cannot split a table
//! cell, `<` cannot open a tag and `*` cannot emphasise; newlines and other control
//! characters are shown as escapes. Output tails and errors go in fenced blocks whose
//! fence is longer than any run of backticks in the text (ANSI sequences and control
//! characters removed); tails sit inside `<details>` with blank lines around the fence,
//! so a `</details>` in the output stays code.
//!
//! This module owns the document: [`SummaryContext`], the order of its sections
//! ([`render`]) and every section, in that order below. Two things it uses have a grammar
//! of their own and live in submodules: Markdown escaping, fences and number formats, and
//! the Mermaid chart of the run.

mod markdown;
mod timeline;

use std::fmt::Write as _;

use crate::core::report::{
    AwaitedCi, CheckEntry, CheckStatus, FileEntry, Report, TaskInfo, Verdict, ViolationKind, short,
};
use crate::core::scope::{Decision, Reason, RuleOrigin, RuleRef};

pub use markdown::{cell, clean_output, code, fence_for, inline, prose};
use markdown::{first_line, millis, number, seconds, url_text};
use timeline::{state_spans, timeline};

/// What the summary needs besides the report.
#[derive(Debug, Clone)]
pub struct SummaryContext {
    /// The workflow run (`ActionsEnv::run_url`), linked from the banner.
    pub run_url: Option<String>,
    /// The policy path shown; defaults to the report's `policy`.
    pub policy_path: Option<String>,
    /// Web URL of the policy file at the base ref (`…/blob/<sha>/.github/agent-gate.yml`):
    /// rule lines become links to `#L<line>`.
    pub policy_url: Option<String>,
    /// Where the complete report is (e.g. "the `agent-gate-audit` artifact"), named in
    /// the notes of capped lists. Trusted text: written as is.
    pub full_report: Option<String>,
    /// Most rows of the files table.
    pub max_files: usize,
    /// Most entries of the violations list.
    pub max_violations: usize,
    /// Most lines of one failed check's output tail.
    pub max_output_lines: usize,
    /// Most bytes of one failed check's output tail.
    pub max_output_bytes: usize,
}

impl Default for SummaryContext {
    fn default() -> SummaryContext {
        SummaryContext {
            run_url: None,
            policy_path: None,
            policy_url: None,
            full_report: None,
            max_files: 500,
            max_violations: 500,
            max_output_lines: 60,
            max_output_bytes: 16 * 1024,
        }
    }
}

/// The Markdown step summary of `report`.
pub fn render(report: &Report, ctx: &SummaryContext) -> String {
    let mut out = String::new();
    banner(&mut out, report, ctx);
    if let Some(task) = &report.task {
        task_section(&mut out, task);
    }
    timeline(&mut out, report);
    files_section(&mut out, report, ctx);
    violations_section(&mut out, report, ctx);
    checks_section(&mut out, report, ctx);
    if !report.rounds.is_empty() {
        out.push_str("\n### Repair rounds\n\n| round | verdict | task | files | violations | failed checks | AI credits |\n|---:|---|---|---:|---:|---:|---:|\n");
        for r in &report.rounds {
            let _ = writeln!(
                out,
                "| {} | `{}` | {} | {} | {} | {} | {} |",
                r.round,
                r.verdict,
                cell(&r.task_id.chars().take(8).collect::<String>()),
                r.files.len(),
                r.violations.len(),
                r.checks_failed.len(),
                crate::core::report::credits(r.ai_credits)
            );
        }
    }
    if let Some(b) = &report.budget
        && b.would_exceed.is_some()
    {
        let _ = writeln!(out, "\n### Budget\n\n{}", inline(&b.message()));
    }
    if !report.notes.is_empty() {
        out.push_str("\n### Notes\n\n");
        for note in &report.notes {
            let _ = writeln!(out, "- {}", markdown::prose(note));
        }
    }
    if !report.isolation_notes.is_empty() {
        out.push_str("\n### Isolation\n\n");
        for note in &report.isolation_notes {
            let _ = writeln!(out, "- {}", markdown::prose(note));
        }
    }
    if !report.errors.is_empty() {
        out.push_str("\n### Errors\n\n");
        for error in &report.errors {
            let text = clean_output(error);
            let fence = fence_for(&text);
            let _ = writeln!(out, "{fence}text\n{}\n{fence}\n", text.trim_end());
        }
    }
    out
}

/// The note under a list capped at `cap` entries, naming where the rest are.
fn more_note(out: &mut String, total: usize, cap: usize, what: &str, ctx: &SummaryContext) {
    if total > cap {
        let where_ = ctx
            .full_report
            .as_deref()
            .unwrap_or("the JSON report (`--format json`)");
        let _ = writeln!(out, "\n_{} more {what} are in {where_}._", total - cap);
    }
}

// ---- The verdict banner: the headline with the verdict's emoji and exit code, one
// sentence saying why the run ended so (`reason`), and the facts line (workflow run,
// policy, change, merge base, gated commit).

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

fn banner(out: &mut String, report: &Report, ctx: &SummaryContext) {
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

// ---- The task: its link, state, origin, idempotency key, pull request or branch, time
// queued and working, cost and prompt hash, and what the gate did to stop it.

fn task_section(out: &mut String, task: &TaskInfo) {
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
fn time_row(out: &mut String, task: &TaskInfo) {
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
fn cost_row(out: &mut String, task: &TaskInfo) {
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
fn own_times(task: &TaskInfo) -> Option<(f64, f64)> {
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
fn own_total(task: &TaskInfo) -> Option<f64> {
    let time = |s: &str| s.parse::<jiff::Timestamp>().ok();
    let created = time(task.created_at.as_deref()?)?;
    let finished = time(task.finished_at.as_deref()?)?;
    let d = finished.duration_since(created);
    (!d.is_negative()).then(|| d.as_secs_f64())
}

/// Lines of the instruction shown before the rest is folded.
const INSTRUCTION_LINES: usize = 5;

/// The instruction as the run was given it: its first lines, the rest folded.
fn instruction(out: &mut String, task: &TaskInfo) {
    let Some(text) = task.instruction.as_deref().map(str::trim_end) else {
        return;
    };
    if text.trim().is_empty() {
        return;
    }
    let text = clean_output(text);
    let lines: Vec<&str> = text.lines().collect();
    let (head, rest) = lines.split_at(lines.len().min(INSTRUCTION_LINES));
    let shown = head.join("\n");
    let fence = fence_for(&text);
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

// ---- The files: the table of changed files (capped at `SummaryContext::max_files`) with
// each path's status, line counts and the scope decision with the rule that made it,
// linked to its policy line when the policy's URL is known; and the words for a single
// decision, which the violations list uses too.

fn files_section(out: &mut String, report: &Report, ctx: &SummaryContext) {
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

fn decision(d: &Decision, ctx: &SummaryContext) -> String {
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

// ---- The violations: most important kinds first, capped at
// `SummaryContext::max_violations`, each with agent-chosen paths in `<code>`; and the order
// and names of violation kinds, which the banner's reason uses too.

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

fn violations_section(out: &mut String, report: &Report, ctx: &SummaryContext) {
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

// ---- The checks: why checks were skipped, the table of checks with status, kind,
// duration and detail, the repository's own checks a `github-checks` check awaited (state,
// time, link, and the runs held for approval), and the tail of each failed check's output
// in a `<details>` block, capped at `SummaryContext::max_output_lines` and
// `max_output_bytes`.

fn checks_section(out: &mut String, report: &Report, ctx: &SummaryContext) {
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
                c.detail.as_deref().map(prose).unwrap_or_default()
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
            let _ = writeln!(out, "{}", prose(approval));
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
