//! The step summary: one finished [`Report`] rendered as GitHub-flavoured Markdown — a
//! verdict banner, the agent task (link, state, durations, cost), a Mermaid `gantt` chart
//! of the run, the files table with the rule that decided each path, the violations, the
//! checks with the tails of failed outputs, isolation notes and errors.
//!
//! Pure rendering: no I/O, no clock, no secret handling — and because entity escaping
//! splits a secret (`ghp_…` becomes `ghp&#95;…`) so a masker applied afterwards would miss
//! it, render only a report that is already redacted (`outputs::write_summary` does). Writing the text to
//! `GITHUB_STEP_SUMMARY` (redaction and the hard 1 MiB limit) is the Actions adapter's
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

mod markdown;
mod timeline;

use std::fmt::Write as _;

use crate::report::{CheckEntry, CheckStatus, FileEntry, Report, Verdict, ViolationKind};
use crate::scope::{Decision, Reason, RuleOrigin, RuleRef};

use crate::report::short;
pub use markdown::{clean_output, code, fence_for, inline};
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
        task_section(&mut out, task, ctx);
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
                "| {} | `{}` | {} | {} | {} | {} | {:.3} |",
                r.round,
                r.verdict,
                inline(&r.task_id.chars().take(8).collect::<String>()),
                r.files.len(),
                r.violations.len(),
                r.checks_failed.len(),
                r.ai_credits
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
            let _ = writeln!(out, "- {}", inline(note));
        }
    }
    if !report.isolation_notes.is_empty() {
        out.push_str("\n### Isolation\n\n");
        for note in &report.isolation_notes {
            let _ = writeln!(out, "- {}", inline(note));
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
        Verdict::ChecksFailed => {
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
        Verdict::ScopeViolation => {
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

fn emoji(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Passed => "✅",
        Verdict::ChecksFailed => "❌",
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

fn task_section(out: &mut String, task: &crate::report::TaskInfo, ctx: &SummaryContext) {
    let _ = ctx;
    out.push_str("\n### Task\n\n| | |\n|---|---|\n");
    let id = match &task.url {
        Some(url) => format!("[{}]({})", code(&task.id), url_text(url)),
        None => code(&task.id),
    };
    let _ = writeln!(out, "| Task | {id} |");
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
            "| Time | queued {} · working {} · total {} |",
            seconds(queued),
            seconds(working),
            seconds(total)
        );
    }
    let mut cost = Vec::new();
    if task.ai_credits > 0.0 {
        cost.push(format!("{} AI credits", number(task.ai_credits)));
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
    if let Some(sha) = &task.prompt_sha256 {
        let _ = writeln!(out, "| Prompt SHA-256 | {} |", code(sha));
    }
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
fn violation_text(v: &crate::report::Violation, report: &Report, ctx: &SummaryContext) -> String {
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
                c.detail.as_deref().map(inline).unwrap_or_default()
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
        "\n<details><summary>Output of {} ({}, last {} lines)</summary>\n",
        inline(&c.name),
        c.status.as_str(),
        shown.len()
    );
    if c.truncated_bytes > 0 || hidden_lines > 0 {
        let mut note = Vec::new();
        if c.truncated_bytes > 0 {
            note.push(format!(
                "{} earlier bytes were not captured",
                c.truncated_bytes
            ));
        }
        if hidden_lines > 0 {
            note.push(format!("{hidden_lines} earlier lines are not shown here"));
        }
        let _ = writeln!(out, "_{}._\n", note.join("; "));
    }
    let body = shown.join("\n");
    let fence = fence_for(&body);
    let _ = writeln!(out, "{fence}text\n{body}\n{fence}\n\n</details>");
}

fn more_note(out: &mut String, total: usize, cap: usize, what: &str, ctx: &SummaryContext) {
    if total > cap {
        let where_ = ctx
            .full_report
            .as_deref()
            .unwrap_or("the JSON report (`--format json`)");
        let _ = writeln!(out, "\n_{} more {what} are in {where_}._", total - cap);
    }
}
