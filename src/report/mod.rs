//! The gate's result as data (DESIGN §2, §1 step 8): the verdict and its exit code, every
//! file decision, every violation, every check outcome, and errors. Pure data plus two
//! renderers — a terminal report ([`Report::render_text`]) and one JSON object
//! ([`Report::to_json`]). It does not decide anything; `assessment` and `flow` fill it in.
//! Action outputs and the step summary are further renderers of the same data.

use std::fmt::Write as _;

use serde::Serialize;

mod budget;
mod round;

pub use budget::{BudgetLimits, BudgetStatus, Exceeded};
pub use round::RoundRecord;

use crate::scope::{Decision, Reason, RuleOrigin, RuleRef};

/// The one outcome of a gate run. Exit codes are an API: never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    // Declared in precedence order (DESIGN §2): when several apply, the first wins.
    ConfigError,
    ApiError,
    OverBudget,
    Cancelled,
    TimedOut,
    AgentFailed,
    ScopeViolation,
    ChecksFailed,
    Passed,
}

impl Verdict {
    /// Every verdict, in precedence order.
    pub const ALL: [Verdict; 9] = [
        Verdict::ConfigError,
        Verdict::ApiError,
        Verdict::OverBudget,
        Verdict::Cancelled,
        Verdict::TimedOut,
        Verdict::AgentFailed,
        Verdict::ScopeViolation,
        Verdict::ChecksFailed,
        Verdict::Passed,
    ];

    /// The documented exit code.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Passed => 0,
            Verdict::ChecksFailed => 10,
            Verdict::ScopeViolation => 11,
            Verdict::AgentFailed => 12,
            Verdict::TimedOut => 13,
            Verdict::OverBudget => 14,
            Verdict::Cancelled => 130,
            Verdict::ConfigError => 2,
            Verdict::ApiError => 3,
        }
    }

    /// The kebab-case name used in outputs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::ChecksFailed => "checks-failed",
            Verdict::ScopeViolation => "scope-violation",
            Verdict::AgentFailed => "agent-failed",
            Verdict::TimedOut => "timed-out",
            Verdict::OverBudget => "over-budget",
            Verdict::Cancelled => "cancelled",
            Verdict::ConfigError => "config-error",
            Verdict::ApiError => "api-error",
        }
    }

    /// The verdict that wins when both apply (DESIGN §2 order).
    #[must_use]
    pub fn combine(self, other: Verdict) -> Verdict {
        self.min(other)
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One changed file as the report shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileEntry {
    /// Path on the head side (lossy UTF-8 for display; `path_bytes` keeps the exact name
    /// when it is not UTF-8).
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_bytes: Option<Vec<u8>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
    /// added, modified, deleted, renamed, copied, type-changed.
    pub status: String,
    /// Lines added/deleted; `None` for binary files.
    pub added: Option<u64>,
    pub deleted: Option<u64>,
    pub binary: bool,
    pub in_scope: bool,
    /// The decision for the head-side path.
    pub decision: Decision,
    /// For renames and copies: the decision for the base-side path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_decision: Option<Decision>,
}

/// What a violation is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ViolationKind {
    OutOfScope,
    Protected,
    MaxFiles,
    MaxChangedLines,
    BinaryFile,
    Symlink,
    Submodule,
    ModeChange,
}

/// One reason the change is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub kind: ViolationKind,
    /// The path concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The rule that decided, if any (text and origin with line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<RuleRef>,
    /// A sentence for humans.
    pub message: String,
}

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckStatus {
    Passed,
    Failed,
    TimedOut,
    Skipped,
    Cancelled,
    Error,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Passed => "passed",
            CheckStatus::Failed => "failed",
            CheckStatus::TimedOut => "timed-out",
            CheckStatus::Skipped => "skipped",
            CheckStatus::Cancelled => "cancelled",
            CheckStatus::Error => "error",
        }
    }
}

/// One check as the report shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckEntry {
    pub name: String,
    pub required: bool,
    pub status: CheckStatus,
    /// Exit code, signal or skip reason, for humans.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub duration_ms: u64,
    /// The tail of the check's output (capped).
    pub output_tail: String,
    /// Bytes of output dropped from the front.
    pub truncated_bytes: u64,
}

impl CheckEntry {
    /// A required check that did not pass (skips do not count).
    pub fn fails_gate(&self) -> bool {
        self.required
            && matches!(
                self.status,
                CheckStatus::Failed
                    | CheckStatus::TimedOut
                    | CheckStatus::Error
                    | CheckStatus::Cancelled
            )
    }
}

/// The agent task behind a `run` (absent for `check`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TaskInfo {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Last known state (`queued`, `in_progress`, `completed`, …).
    pub state: String,
    /// True when this run attached to an existing task (re-run, `task-id`).
    pub attached: bool,
    /// The idempotency key embedded in the prompt.
    pub key: String,
    /// SHA-256 of the prompt sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pr_number: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pr_url: Option<String>,
    /// AI credits (display units: nano units ÷ 1e9), summed over sessions.
    pub ai_credits: f64,
    /// Premium requests, summed over sessions (older sessions).
    pub premium_requests: f64,
    /// Every state change seen, with its time (RFC 3339) and seconds since the run started.
    pub timeline: Vec<TimelineEntry>,
    /// What the gate did to stop the task at a deadline or interruption (GitHub has no
    /// cancel endpoint): status, label, comment.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stop_actions: Vec<String>,
}

/// One state change of a task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEntry {
    pub state: String,
    pub at: String,
    pub elapsed_s: f64,
}

/// Totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub files: usize,
    pub lines_added: u64,
    pub lines_deleted: u64,
    pub violations: usize,
    pub checks_failed: usize,
}

/// The whole report of one gate run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Version of this JSON shape.
    pub schema_version: u32,
    pub verdict: Verdict,
    pub exit_code: u8,
    /// The policy file, as named on the command line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merge_base: Option<String>,
    /// The commit that was gated (the agent's head, resolved).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_sha: Option<String>,
    /// The agent task, for `run`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskInfo>,
    pub files: Vec<FileEntry>,
    pub violations: Vec<Violation>,
    pub checks: Vec<CheckEntry>,
    /// Why checks did not run, when they did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks_skipped: Option<String>,
    /// Notes about how checks were isolated (DESIGN §5).
    pub isolation_notes: Vec<String>,
    /// Errors that decided a `config-error` / `api-error` verdict, with their cause chain.
    pub errors: Vec<String>,
    /// Other facts a reader should know (dry run, attached task, why the agent failed…).
    pub notes: Vec<String>,
    pub totals: Totals,
    /// Today's agent-gate spending against the policy's daily budgets, when the policy sets
    /// one and the run counted it (the figures behind an `over-budget` verdict).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetStatus>,
    /// How the run waited for capacity under `agent.max-concurrent-tasks`, when it had to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admission: Option<AdmissionRecord>,
    /// Every round the run gated (the first task, then each repair round), in order, when
    /// repair rounds are enabled; the report's other fields are the last round's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rounds: Vec<RoundRecord>,
}

/// How a `run` was admitted under `agent.max-concurrent-tasks` (issue 8).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdmissionRecord {
    /// `high`, `normal` or `low`.
    pub priority: String,
    /// The run could start once fewer than this many agent-gate tasks were running.
    pub limit: u32,
    /// agent-gate tasks running at the last check that found no slot.
    pub running: u32,
    /// Seconds spent waiting for a slot (counted against the deadline).
    pub waited_s: f64,
    /// False when the deadline passed first ("never admitted").
    pub admitted: bool,
    /// The admission lock: `held <lease ref>`, or why it was unavailable (admission was then
    /// advisory); `None` when not admitted.
    #[serde(default)]
    pub lock: Option<String>,
}

impl Report {
    /// An empty report with a verdict.
    pub fn new(verdict: Verdict) -> Report {
        Report {
            schema_version: 1,
            verdict,
            exit_code: verdict.exit_code(),
            policy: None,
            base: None,
            head: None,
            merge_base: None,
            head_sha: None,
            task: None,
            files: Vec::new(),
            violations: Vec::new(),
            checks: Vec::new(),
            checks_skipped: None,
            isolation_notes: Vec::new(),
            errors: Vec::new(),
            notes: Vec::new(),
            totals: Totals::default(),
            budget: None,
            admission: None,
            rounds: Vec::new(),
        }
    }

    /// A report for an error that stopped the run.
    pub fn error(verdict: Verdict, message: impl Into<String>) -> Report {
        let mut r = Report::new(verdict);
        r.errors.push(message.into());
        r
    }

    /// Set the verdict (and the exit code with it).
    pub fn set_verdict(&mut self, verdict: Verdict) {
        self.verdict = verdict;
        self.exit_code = verdict.exit_code();
    }

    /// Recompute totals and the verdict from files, violations and checks. Errors already
    /// recorded keep a worse verdict.
    pub fn finish(&mut self) {
        self.totals = Totals {
            files: self.files.len(),
            lines_added: self.files.iter().filter_map(|f| f.added).sum(),
            lines_deleted: self.files.iter().filter_map(|f| f.deleted).sum(),
            violations: self.violations.len(),
            checks_failed: self.checks.iter().filter(|c| c.fails_gate()).count(),
        };
        let mut verdict = self.verdict;
        if !self.violations.is_empty() {
            verdict = verdict.combine(Verdict::ScopeViolation);
        }
        if self.totals.checks_failed > 0 {
            verdict = verdict.combine(Verdict::ChecksFailed);
        }
        self.set_verdict(verdict);
    }

    /// One JSON object (the `--format json` output).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\":\"cannot serialize report: {e}\"}}"))
    }

    /// The terminal report.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        if let (Some(base), Some(head)) = (&self.base, &self.head) {
            let mb = self.merge_base.as_deref().map(short).unwrap_or_default();
            let _ = writeln!(out, "change {base}...{head} (merge base {mb})");
        }
        if let Some(p) = &self.policy {
            let _ = writeln!(out, "policy {p}");
        }
        if let Some(t) = &self.task {
            let origin = if t.attached { "attached" } else { "started" };
            let url = t
                .url
                .as_deref()
                .map(|u| format!(" {u}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "task {} ({origin}, key {}) state {}{url}",
                t.id, t.key, t.state
            );
            if let (Some(n), Some(u)) = (t.pr_number, &t.pr_url) {
                let _ = writeln!(out, "pull request #{n} {u}");
            }
            if t.ai_credits > 0.0 || t.premium_requests > 0.0 {
                let _ = writeln!(
                    out,
                    "cost {:.3} AI credits, {} premium requests",
                    t.ai_credits, t.premium_requests
                );
            }
            for a in &t.stop_actions {
                let _ = writeln!(out, "stop: {a}");
            }
        }
        if !self.files.is_empty() {
            let _ = writeln!(out, "\nfiles ({}):", self.files.len());
            let width = self
                .files
                .iter()
                .map(|f| display_name(f).chars().count())
                .max()
                .unwrap_or(0)
                .min(60);
            for f in &self.files {
                let lines = match (f.added, f.deleted) {
                    (Some(a), Some(d)) => format!("+{a} -{d}"),
                    _ => "binary".to_string(),
                };
                let mark = if f.in_scope { "ok " } else { "OUT" };
                let _ = writeln!(
                    out,
                    "  {mark} {:<8} {:<width$}  {:>12}  {}",
                    f.status,
                    display_name(f),
                    lines,
                    describe_decision(&f.decision)
                );
                if let Some(od) = &f.old_decision
                    && !od.in_scope
                {
                    let _ = writeln!(
                        out,
                        "      (old side {}: {})",
                        escape_for_humans(f.old_path.as_deref().unwrap_or("")),
                        describe_decision(od)
                    );
                }
            }
        }
        if !self.violations.is_empty() {
            let _ = writeln!(out, "\nviolations ({}):", self.violations.len());
            for v in &self.violations {
                let _ = writeln!(out, "  - {}", v.message);
            }
        }
        if !self.checks.is_empty() || self.checks_skipped.is_some() {
            let _ = writeln!(out, "\nchecks:");
            if let Some(why) = &self.checks_skipped {
                let _ = writeln!(out, "  all skipped: {why}");
            }
            for c in &self.checks {
                let req = if c.required { "" } else { " (advisory)" };
                let detail = c
                    .detail
                    .as_deref()
                    .map(|d| format!(" — {d}"))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  {:<9} {}{req} [{}]{detail}",
                    c.status.as_str(),
                    c.name,
                    fmt_ms(c.duration_ms)
                );
                if matches!(
                    c.status,
                    CheckStatus::Failed | CheckStatus::TimedOut | CheckStatus::Error
                ) && !c.output_tail.is_empty()
                {
                    if c.truncated_bytes > 0 {
                        let _ =
                            writeln!(out, "      … {} earlier bytes not shown", c.truncated_bytes);
                    }
                    for line in last_lines(&c.output_tail, 20) {
                        let _ = writeln!(out, "      | {line}");
                    }
                }
            }
        }
        if !self.rounds.is_empty() {
            let _ = writeln!(out, "\nrounds ({}):", self.rounds.len());
            for r in &self.rounds {
                let _ = writeln!(
                    out,
                    "  round {}: {} — {} files, {} violations, {} failed checks",
                    r.round,
                    r.verdict,
                    r.files.len(),
                    r.violations.len(),
                    r.checks_failed.len()
                );
            }
        }
        if let Some(b) = &self.budget
            && b.would_exceed.is_some()
        {
            let _ = writeln!(out, "\nbudget: {}", b.message());
        }
        for n in &self.notes {
            let _ = writeln!(out, "\nnote: {n}");
        }
        for n in &self.isolation_notes {
            let _ = writeln!(out, "\nnote: {n}");
        }
        for e in &self.errors {
            let _ = writeln!(out, "\nerror: {e}");
        }
        let _ = writeln!(
            out,
            "\nverdict: {} (exit {}) — {} files, +{} -{}, {} violations, {} failed checks",
            self.verdict,
            self.exit_code,
            self.totals.files,
            self.totals.lines_added,
            self.totals.lines_deleted,
            self.totals.violations,
            self.totals.checks_failed
        );
        out
    }
}

fn display_name(f: &FileEntry) -> String {
    match &f.old_path {
        Some(old) => format!(
            "{} -> {}",
            escape_for_humans(old),
            escape_for_humans(&f.path)
        ),
        None => escape_for_humans(&f.path),
    }
}

/// A file name as human-readable text shows it: control characters (newline, tab, CR,
/// ESC…) and backslashes written C-style (`\n`, `\t`, `\x1b`, `\\`), as git's
/// `core.quotePath` does, so a name cannot forge lines or colours in a report. JSON keeps
/// the exact name.
pub fn escape_for_humans(name: &str) -> String {
    if !name.chars().any(|c| c.is_control() || c == '\\') {
        return name.to_string();
    }
    let mut out = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// The first 12 characters of a commit id, as reports show it.
pub fn short(sha: &str) -> String {
    sha.chars().take(12).collect()
}

fn fmt_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{}.{}s", ms / 1000, (ms % 1000) / 100)
    }
}

fn last_lines(text: &str, n: usize) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

/// Where a rule came from, for humans: `line 12` or `always protected`.
pub fn describe_origin(origin: &RuleOrigin) -> String {
    match origin {
        RuleOrigin::Policy { line, .. } => format!("line {line}"),
        RuleOrigin::AlwaysProtected => "always protected".to_string(),
        RuleOrigin::ScopeInput { index } => format!("--scope #{}", index + 1),
    }
}

/// A decision for humans: `allowed by "src/**" (line 4)`.
pub fn describe_decision(d: &Decision) -> String {
    match &d.reason {
        Reason::Protected { rule } => format!(
            "protected by \"{}\" ({})",
            rule.text,
            describe_origin(&rule.origin)
        ),
        Reason::Denied { rule } => format!(
            "denied by \"{}\" ({})",
            rule.text,
            describe_origin(&rule.origin)
        ),
        Reason::OutsideScopeInput => "outside the --scope input".to_string(),
        Reason::NoAllowRule => "no allow rule matches".to_string(),
        Reason::AllowedByDefault => "allowed (no allow rules: everything not denied)".to_string(),
        Reason::Allowed { rule } => format!(
            "allowed by \"{}\" ({})",
            rule.text,
            describe_origin(&rule.origin)
        ),
    }
}
