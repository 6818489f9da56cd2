//! The gate's result as data (DESIGN §2, §1 step 8): the verdict and its exit code, every
//! file decision, every violation, every check outcome, and errors. This file owns the data
//! model ([`Report`] and its entries), the totals and verdict recomputation
//! ([`Report::finish`]) and the JSON object ([`Report::to_json`]). The verdict and its exit
//! codes are `verdict`'s, the terminal report and human text helpers are `text`'s, AI credits for display are
//! `credits`', the budget and round records are `budget`'s and `round`'s. It does not decide anything;
//! `assessment` and `flow` fill it in. Action outputs and the step summary are further
//! renderers of the same data.

use serde::Serialize;

mod budget;
mod credits;
mod round;
mod text;
mod verdict;

pub use budget::{BudgetLimits, BudgetStatus, Exceeded};
pub use credits::{credits, credits_phrase};
pub use round::RoundRecord;
pub use text::{
    describe_decision, describe_origin, escape_for_humans, escape_output, neutralize, short,
};
pub use verdict::Verdict;

use crate::core::scope::{Decision, RuleRef};

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
    /// Not run: the program (or image) it needs is missing where it runs.
    Unavailable,
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
            CheckStatus::Unavailable => "unavailable",
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
    /// For a `github-checks` check: what it awaited of the repository's own CI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github: Option<AwaitedCi>,
}

/// What a `github-checks` check saw of the repository's own CI on the agent's head.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AwaitedCi {
    /// The commit whose checks were awaited.
    pub sha: String,
    /// Where the awaited names came from: `policy`, or what was read for `required`
    /// (`rules for the branch `main`: 2`, …).
    pub source: Vec<String>,
    /// Each awaited name as last seen.
    pub checks: Vec<AwaitedCheck>,
    /// Workflow runs of the commit held at "Approve and run workflows" when last looked.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<HeldRun>,
    /// Who must approve held runs and where, and why they are held (the repository's
    /// cloud-agent configuration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
    /// What else happened while waiting (runs held for approval and then released, reads
    /// that failed and were tried again).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// How many times the checks were read.
    pub polls: u32,
    /// How long the gate waited.
    pub waited_ms: u64,
}

/// One awaited check run or commit status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AwaitedCheck {
    pub name: String,
    /// `check-run`, `status`, or `missing` (nothing of that name on the commit).
    pub kind: String,
    /// `queued`, `in_progress`, `completed` (check runs); `pending`, `success`, `failure`,
    /// `error` (statuses); `missing`.
    pub state: String,
    /// A completed check run's conclusion (`success`, `failure`, `cancelled`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conclusion: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A check run's output title and summary, or a status's description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// From start to completion by GitHub's own timestamps, when both are known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// A workflow run held for approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct HeldRun {
    pub name: String,
    pub url: String,
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
                    | CheckStatus::Unavailable
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
    /// The instruction the run was given (the prompt without the gate's preamble).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instruction: Option<String>,
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
    /// The task's own `created_at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When the task's work ended by its own timestamps (its last session's
    /// `completed_at`, else its `updated_at` in a final state).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
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
    /// The task's own `updated_at` when the gate saw the change: when GitHub made it, as
    /// opposed to `at`, when a poll found it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_at: Option<String>,
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
    /// Notes about how checks were isolated (`docs/checks.md`).
    pub isolation_notes: Vec<String>,
    /// The isolation notes (also in `isolation_notes`) that name a weakness — something
    /// that was not protected — rather than isolation working as designed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub isolation_weaknesses: Vec<String>,
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
    /// The repository's review load under `agent.max-open-pull-requests`, when the policy
    /// sets it and the run counted it before starting its task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_load: Option<ReviewLoad>,
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
    /// Seconds spent in admission (counted against the deadline).
    pub waited_s: f64,
    /// Of `waited_s`, the seconds spent waiting for a free slot; the rest went to the
    /// admission lock (another run deciding) and the decisions themselves.
    #[serde(default)]
    pub waited_for_slots_s: f64,
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
            isolation_weaknesses: Vec::new(),
            errors: Vec::new(),
            notes: Vec::new(),
            totals: Totals::default(),
            budget: None,
            admission: None,
            review_load: None,
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
        if self
            .checks
            .iter()
            .any(|c| c.required && c.status == CheckStatus::Unavailable)
        {
            verdict = verdict.combine(Verdict::CheckError);
        }
        self.set_verdict(verdict);
    }

    /// One JSON object (the `--format json` output).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\":\"cannot serialize report: {e}\"}}"))
    }
}

impl AdmissionRecord {
    /// What the run waited for, for humans: `waited 12.3 s for a slot (3 of 3 busy at the
    /// last check) and 0.06 s for the admission lock`, or `waited 0.06 s for the admission
    /// lock`; `None` when it did not wait.
    pub fn waited_for(&self) -> Option<String> {
        let lock = (self.waited_s - self.waited_for_slots_s).max(0.0);
        let secs = |s: f64| {
            if s < 10.0 {
                format!("{s:.2} s")
            } else {
                format!("{s:.0} s")
            }
        };
        if self.waited_for_slots_s > 0.0 {
            let and_lock = if lock >= 0.005 {
                format!(" and {} for the admission lock", secs(lock))
            } else {
                String::new()
            };
            Some(format!(
                "waited {} for a slot ({} of {} busy at the last check){and_lock}",
                secs(self.waited_for_slots_s),
                self.running,
                self.limit
            ))
        } else if self.waited_s >= 0.005 {
            Some(format!(
                "waited {} for the admission lock",
                secs(self.waited_s)
            ))
        } else {
            None
        }
    }
}

/// Open pull requests from agent-gate's tasks in one repository, against
/// `agent.max-open-pull-requests`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewLoad {
    pub repository: String,
    /// agent-gate's open pull requests at the last count.
    pub open: u32,
    /// `agent.max-open-pull-requests`: a task starts only while `open` is below it.
    pub limit: u32,
    /// The oldest of them (up to five), oldest first: what waits for a reviewer.
    pub oldest: Vec<WaitingPull>,
    /// Seconds the run waited for review capacity (`on-review-backlog: wait`).
    pub waited_s: f64,
    /// False when the run did not start its task because of the backlog.
    pub admitted: bool,
}

/// One pull request waiting for review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaitingPull {
    pub number: i64,
    pub url: String,
    /// When it was opened (RFC 3339), when GitHub said.
    pub opened_at: Option<String>,
}

impl ReviewLoad {
    /// `5 of 5 open pull requests from agent-gate's tasks on octo/x wait for review
    /// (agent.max-open-pull-requests: 5); oldest: #12 (opened …), #15`.
    pub fn message(&self) -> String {
        let oldest: Vec<String> = self
            .oldest
            .iter()
            .map(|p| match &p.opened_at {
                Some(at) => format!("#{} (opened {at}) {}", p.number, p.url),
                None => format!("#{} {}", p.number, p.url),
            })
            .collect();
        let mut text = format!(
            "{} of {} open pull requests from agent-gate's tasks on {} wait for review (agent.max-open-pull-requests: {})",
            self.open, self.limit, self.repository, self.limit
        );
        if !oldest.is_empty() {
            text.push_str("; oldest: ");
            text.push_str(&oldest.join(", "));
        }
        text
    }
}
