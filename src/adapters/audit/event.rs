//! The events of the audit trail (schema 1, documented field by field in
//! `docs/audit.md`): the [`AuditEvent`] enum, one struct per event, and the constructors
//! that build a single event (from a task, a report's admission and budget, a violation, a
//! check entry, a round). The run's trigger comes in as a value ([`TriggerEvent`]), built by
//! whoever reads the workflow's environment. Plain data: writing them is the parent
//! module's job; turning a whole finished [`Report`] into its events is `report_events`.

use serde::{Deserialize, Serialize};

use crate::core::report::{AwaitedCi, CheckEntry, Report, TaskInfo, Violation};
use crate::core::scope::RuleOrigin;
use crate::core::summary::violation_kind_name;

/// One step of a gate run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum AuditEvent {
    /// What started the run (from the Actions environment).
    Trigger(TriggerEvent),
    /// The admission decision: repository allowed, scope narrowing, waiting for capacity.
    Admission(AdmissionEvent),
    /// The task this run created or attached to.
    Task(TaskEvent),
    /// One state change of the task.
    State(StateEvent),
    /// The change that was gated.
    Change(ChangeEvent),
    /// One violation of the scope policy.
    Violation(ViolationEvent),
    /// One check.
    Check(CheckEvent),
    /// One round of a run with repair rounds (round 0 is the first task).
    Round(RoundEvent),
    /// What the gate did to stop a task at its deadline or on interruption.
    Stop(StopEvent),
    /// The verdict.
    Verdict(VerdictEvent),
}

impl AuditEvent {
    /// The `event` tag of this event.
    pub fn name(&self) -> &'static str {
        match self {
            AuditEvent::Trigger(_) => "trigger",
            AuditEvent::Admission(_) => "admission",
            AuditEvent::Task(_) => "task",
            AuditEvent::State(_) => "state",
            AuditEvent::Change(_) => "change",
            AuditEvent::Violation(_) => "violation",
            AuditEvent::Check(_) => "check",
            AuditEvent::Round(_) => "round",
            AuditEvent::Stop(_) => "stop",
            AuditEvent::Verdict(_) => "verdict",
        }
    }

    /// The task event for `task` (created, or attached when `task.attached`).
    pub fn task(task: &TaskInfo) -> AuditEvent {
        AuditEvent::Task(TaskEvent {
            action: if task.attached {
                TaskAction::Attached
            } else {
                TaskAction::Created
            },
            id: task.id.clone(),
            prompt_sha256: task.prompt_sha256.clone(),
            key: task.key.clone(),
            url: task.url.clone(),
        })
    }

    /// The admission event of a run that was capped (`max-concurrent-tasks`) or budgeted
    /// (`max-tasks-per-day`, `max-ai-credits-per-day`); `None` for any other run.
    /// `repository`: the one the run works on (`owner/repo`), when known; `scope`: the
    /// `scope` input's globs (empty: none).
    pub fn admission_of(
        report: &Report,
        repository: Option<&str>,
        scope: &[String],
    ) -> Option<AuditEvent> {
        if report.admission.is_none() && report.budget.is_none() && report.review_load.is_none() {
            return None;
        }
        let review = report.review_load.as_ref();
        let refused = report
            .budget
            .as_ref()
            .filter(|b| b.would_exceed.is_some())
            .map(crate::core::report::BudgetStatus::message)
            .or_else(|| {
                review
                    .filter(|r| !r.admitted)
                    .map(crate::core::report::ReviewLoad::message)
            });
        let admission = report.admission.as_ref();
        Some(AuditEvent::Admission(AdmissionEvent {
            repository: repository.map(str::to_string),
            allowed: refused.is_none() && admission.is_none_or(|a| a.admitted),
            scope: scope.to_vec(),
            priority: admission.map(|a| a.priority.clone()),
            waited_s: admission.map_or(0.0, |a| a.waited_s),
            waiting: admission.and_then(crate::core::report::AdmissionRecord::waited_for),
            refused,
            lock: admission.and_then(|a| a.lock.clone()),
            open_pull_requests: review.map(|r| r.open),
            max_open_pull_requests: review.map(|r| r.limit),
        }))
    }
}

/// `trigger`: the workflow run that started the gate. Fields are `null` outside Actions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerEvent {
    /// `GITHUB_EVENT_NAME` (`workflow_dispatch`, `schedule`, …).
    pub event_name: Option<String>,
    /// `GITHUB_ACTOR`.
    pub actor: Option<String>,
    /// `GITHUB_WORKFLOW`.
    pub workflow: Option<String>,
    /// `GITHUB_JOB`.
    pub job: Option<String>,
    /// `GITHUB_RUN_ID`.
    pub run_id: Option<u64>,
    /// `GITHUB_RUN_ATTEMPT`.
    pub run_attempt: Option<u32>,
    /// The run's web URL.
    pub run_url: Option<String>,
    /// `GITHUB_REF`.
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    /// `GITHUB_SHA`.
    pub sha: Option<String>,
    /// The repository the run works on: the `repository` input, else `GITHUB_REPOSITORY`.
    pub repository: Option<String>,
    /// `GITHUB_REPOSITORY`, when the run works on another repository (a fleet's matrix job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_repository: Option<String>,
}

/// `admission`: whether the run was let in, with which scope, after how long a wait.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AdmissionEvent {
    /// `owner/repo` the task is for.
    pub repository: Option<String>,
    /// Whether the policy's `repositories` list admits it.
    pub allowed: bool,
    /// The `scope` input globs that narrowed `allow` (empty: no narrowing).
    pub scope: Vec<String>,
    /// `high`, `normal` or `low`.
    pub priority: Option<String>,
    /// Seconds spent waiting for a free task slot (`max-concurrent-tasks`).
    pub waited_s: f64,
    /// What it waited for, for humans (`waited 41.20 s for a slot (2 of 2 busy at the last
    /// check) and 0.06 s for the admission lock`, or `waited 0.06 s for the admission lock`),
    /// if it waited.
    pub waiting: Option<String>,
    /// Why it was refused, if it was.
    pub refused: Option<String>,
    /// The admission lock (`held <lease ref>`, or why it was unavailable), when capped.
    #[serde(default)]
    pub lock: Option<String>,
    /// Open pull requests from agent-gate's tasks on the repository when the run counted
    /// them (`agent.max-open-pull-requests`), and that limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_pull_requests: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_open_pull_requests: Option<u32>,
}

/// Whether the task was started by this run or found running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskAction {
    /// Started by this run.
    Created,
    /// An existing task with the same idempotency key (or `task-id`) was attached.
    Attached,
}

/// `task`: the agent task behind the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskEvent {
    /// `created` or `attached`.
    pub action: TaskAction,
    /// The task id.
    pub id: String,
    /// SHA-256 (hex) of the prompt sent (the prompt itself is not recorded).
    pub prompt_sha256: Option<String>,
    /// The idempotency key.
    pub key: String,
    /// The task's web URL.
    pub url: Option<String>,
}

/// `state`: one state change of the task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateEvent {
    /// The task id.
    pub task_id: String,
    /// The new state (`queued`, `in_progress`, `completed`, …).
    pub state: String,
    /// When the gate saw it (RFC 3339).
    pub at: String,
    /// Seconds since the run started.
    pub elapsed_s: f64,
}

/// `change`: what the agent's branch changed, as gated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEvent {
    /// `owner/repo`, when known.
    pub repository: Option<String>,
    /// The base ref as given.
    pub base: Option<String>,
    /// The head ref as given (the agent's branch).
    pub head: Option<String>,
    /// The commit the change was computed from.
    pub merge_base: Option<String>,
    /// The commit that was gated (resolved head): the key to trace a merge back.
    pub head_sha: Option<String>,
    /// The task that produced it, if any.
    pub task_id: Option<String>,
    /// The pull request, if any.
    pub pr_number: Option<i64>,
    /// Changed paths.
    pub files: usize,
    /// Lines added (text files).
    pub lines_added: u64,
    /// Lines deleted (text files).
    pub lines_deleted: u64,
}

/// `violation`: one reason the change is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViolationEvent {
    /// `protected`, `out-of-scope`, `max-files`, `max-changed-lines`, `binary-file`,
    /// `symlink`, `submodule`, `mode-change`.
    pub kind: String,
    /// The path concerned.
    pub path: Option<String>,
    /// The rule that decided, as written.
    pub rule: Option<String>,
    /// Where the rule comes from: `policy`, `always-protected` or `scope-input`.
    pub rule_origin: Option<String>,
    /// The rule's line in the policy file.
    pub rule_line: Option<usize>,
    /// A sentence for humans.
    pub message: String,
}

impl From<&Violation> for ViolationEvent {
    fn from(v: &Violation) -> ViolationEvent {
        let (origin, line) = match v.rule.as_ref().map(|r| &r.origin) {
            Some(RuleOrigin::Policy { line, .. }) => (Some("policy"), Some(*line)),
            Some(RuleOrigin::AlwaysProtected) => (Some("always-protected"), None),
            Some(RuleOrigin::ScopeInput { .. }) => (Some("scope-input"), None),
            None => (None, None),
        };
        ViolationEvent {
            kind: violation_kind_name(&v.kind).to_string(),
            path: v.path.clone(),
            rule: v.rule.as_ref().map(|r| r.text.to_string()),
            rule_origin: origin.map(str::to_string),
            rule_line: line,
            message: v.message.clone(),
        }
    }
}

/// `check`: one check of the policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckEvent {
    /// The check's name.
    pub name: String,
    /// The command run (from the policy), when the writer knows it.
    pub command: Option<String>,
    /// `false` for advisory checks.
    pub required: bool,
    /// `passed`, `failed`, `timed-out`, `skipped`, `cancelled`, `error`.
    pub status: String,
    /// The exit code, when the check exited.
    pub exit_code: Option<i32>,
    /// Exit code, signal or skip reason, for humans.
    pub detail: Option<String>,
    /// Wall-clock duration.
    pub duration_ms: u64,
    /// A `github-checks` check: the repository's own checks it awaited, and any run held
    /// for approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<AwaitedCi>,
}

impl CheckEvent {
    /// The event for a report's check entry; `command` from the policy if known. The exit
    /// code is read from a detail of the form `exit N`.
    pub fn from_entry(entry: &CheckEntry, command: Option<String>) -> CheckEvent {
        let exit_code = entry
            .detail
            .as_deref()
            .and_then(|d| d.strip_prefix("exit "))
            .and_then(|n| n.trim().parse().ok());
        CheckEvent {
            name: entry.name.clone(),
            command,
            required: entry.required,
            status: entry.status.as_str().to_string(),
            exit_code,
            detail: entry.detail.clone(),
            duration_ms: entry.duration_ms,
            github: entry.github.clone(),
        }
    }
}

/// `round`: one round of a run with repair rounds — what was asked (by hash), what was
/// gated, and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundEvent {
    /// 0 = the first task, 1.. = repair rounds.
    pub round: u32,
    /// The round's idempotency key.
    pub key: String,
    /// SHA-256 (hex) of the round's prompt.
    pub prompt_sha256: String,
    pub task_id: String,
    /// The commit gated in this round.
    pub head_sha: Option<String>,
    /// The round's own verdict.
    pub verdict: String,
    /// Changed files, violations and failed required checks of the round.
    pub files: usize,
    pub violations: usize,
    pub checks_failed: Vec<String>,
    /// AI credits the round's sessions used.
    pub ai_credits: f64,
}

impl From<&crate::core::report::RoundRecord> for RoundEvent {
    fn from(r: &crate::core::report::RoundRecord) -> RoundEvent {
        RoundEvent {
            round: r.round,
            key: r.key.clone(),
            prompt_sha256: r.prompt_sha256.clone(),
            task_id: r.task_id.clone(),
            head_sha: r.head_sha.clone(),
            verdict: r.verdict.as_str().to_string(),
            files: r.files.len(),
            violations: r.violations.len(),
            checks_failed: r.checks_failed.clone(),
            ai_credits: r.ai_credits,
        }
    }
}

/// `stop`: what the gate did to stop a task (GitHub has no cancel endpoint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopEvent {
    /// The task id.
    pub task_id: String,
    /// The task's last known state.
    pub state: String,
    /// Each action taken (commit status, label, comment).
    pub actions: Vec<String>,
}

/// `verdict`: how the run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictEvent {
    /// The verdict (`passed`, `scope-violation`, …).
    pub verdict: String,
    /// The process exit code.
    pub exit_code: u8,
    /// The commit that was gated.
    pub head_sha: Option<String>,
    /// The task, if any.
    pub task_id: Option<String>,
    /// Number of violations.
    pub violations: usize,
    /// Number of required checks that failed.
    pub checks_failed: usize,
    /// The errors behind `config-error` / `api-error`.
    pub errors: Vec<String>,
}
