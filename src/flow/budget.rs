//! Daily budgets per repository (`agent.max-tasks-per-day`, `agent.max-ai-credits-per-day`):
//! how many agent sessions agent-gate started today (UTC) in this repository and what they
//! cost, and whether a run that needs `new_tasks` more would go over. It owns the counting
//! and the refusal message; it does not decide verdicts, start tasks or read the policy file
//! (the flow maps [`BudgetStatus::would_exceed`] to `over-budget`, exit 14).
//!
//! What counts: every session, in any task of the repository (archived or not, any creator),
//! whose `prompt` carries agent-gate's marker (`[agent-gate task-key: …]`) and that was
//! created at or after 00:00 UTC of `now`. A repair round is one more such session (GitHub
//! adds follow-ups to the task they continue), so it counts like a task. Credits are the
//! `ai_credits` usage of those sessions, summed in nano units. The task list's `since` filters
//! on `updated_at`, and list items carry no sessions, so a task updated today is read with a
//! GET — unless the task index (kept by the flow) holds what its sessions cost ([`TaskSpend`],
//! recorded by the run that saw them end) and the list shows the task with as many sessions
//! and none running: then the record counts, and a night's finished tasks cost no request
//! each. A session whose creation time cannot be read counts (a budget errs towards
//! spending less).

use std::collections::HashMap;

use jiff::Timestamp;
use serde::Serialize;

use crate::adapters::github::types::{Task, TaskState};
use crate::adapters::github::{ApiError, Direction, ListQuery, ListSort, task_cost};
use crate::core::prompt::MARKER_PREFIX;
pub use crate::core::report::{BudgetLimits, BudgetStatus, Exceeded};
use crate::flow::TaskApi;

/// Pages of 100 read per list (archived and not) at most.
const MAX_PAGES: u32 = 20;

/// The count could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    #[error("cannot count today's agent tasks for the daily budget: {0}")]
    Api(#[from] ApiError),
    #[error(
        "cannot count today's agent tasks: the time {0} has no UTC day; check the system clock"
    )]
    Clock(Timestamp),
}

/// What [`count_today`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct DayCount {
    /// Agent-gate sessions created at or after midnight.
    pub tasks: u32,
    /// Their `ai_credits` usage in nano units.
    pub ai_credits_nano: u64,
}

impl DayCount {
    /// Credits for display (nano ÷ 1e9).
    #[allow(
        clippy::cast_precision_loss,
        reason = "display only; exact value is ai_credits_nano"
    )]
    pub fn ai_credits(&self) -> f64 {
        self.ai_credits_nano as f64 / 1e9
    }
}

/// 00:00 UTC of the day of `now`.
pub fn utc_midnight(now: Timestamp) -> Result<Timestamp, BudgetError> {
    Timestamp::from_second(now.as_second().div_euclid(86_400) * 86_400)
        .map_err(|_| BudgetError::Clock(now))
}

/// What one task's agent-gate sessions cost: what the budget counts of it, kept in the task
/// index so that a finished task need not be read again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct TaskSpend {
    /// The task's session count when it was read (the task list shows it: a task with more
    /// has been worked on since).
    pub session_count: i32,
    /// agent-gate's sessions: when each was created (seconds since the epoch; `None` when
    /// the time could not be read) and its AI credits in nano units.
    pub sessions: Vec<(Option<i64>, u64)>,
}

impl TaskSpend {
    /// The spend of a full task (with `sessions`).
    pub fn of(task: &Task) -> TaskSpend {
        let sessions = task
            .sessions
            .iter()
            .flatten()
            .filter(|s| {
                s.prompt
                    .as_deref()
                    .is_some_and(|p| p.contains(MARKER_PREFIX))
            })
            .map(|s| {
                let one = Task {
                    sessions: Some(vec![s.clone()]),
                    ..task.clone()
                };
                (
                    s.created_at
                        .parse::<Timestamp>()
                        .ok()
                        .map(Timestamp::as_second),
                    task_cost(&one).ai_credits_nano,
                )
            })
            .collect();
        TaskSpend {
            session_count: task
                .session_count
                .or_else(|| {
                    task.sessions
                        .as_ref()
                        .and_then(|s| i32::try_from(s.len()).ok())
                })
                .unwrap_or(0),
            sessions,
        }
    }

    /// Whether this record still tells what `listed` (an item of the task list) cost: the
    /// same number of sessions, none of them running.
    pub fn describes(&self, listed: &Task) -> bool {
        listed.session_count == Some(self.session_count)
            && !matches!(listed.state, TaskState::Queued | TaskState::InProgress)
    }
}

/// Count agent-gate's sessions created at or after `midnight` in `tasks` (full tasks, with
/// `sessions`) and sum their AI-credit usage. A task appearing twice is counted once.
pub fn count_today(tasks: &[Task], midnight: Timestamp) -> DayCount {
    let mut seen = std::collections::HashSet::new();
    let spends: Vec<TaskSpend> = tasks
        .iter()
        .filter(|t| seen.insert(t.id.as_str()))
        .map(TaskSpend::of)
        .collect();
    count_spends(&spends, midnight)
}

/// Count the sessions of `spends` created at or after `midnight` (or at a time that could
/// not be read) and sum their credits.
pub fn count_spends(spends: &[TaskSpend], midnight: Timestamp) -> DayCount {
    let mut count = DayCount::default();
    for (_, nano) in spends
        .iter()
        .flat_map(|s| &s.sessions)
        .filter(|(at, _)| at.is_none_or(|t| t >= midnight.as_second()))
    {
        count.tasks = count.tasks.saturating_add(1);
        count.ai_credits_nano = count.ai_credits_nano.saturating_add(*nano);
    }
    count
}

/// Nano units of a credit limit (rounded; a negative or non-finite limit is 0).
fn limit_nano(limit: f64) -> u64 {
    if !limit.is_finite() || limit <= 0.0 {
        return 0;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "finite and positive; saturates above u64::MAX"
    )]
    let nano = (limit * 1e9).round() as u64;
    nano
}

/// Decide against the limits: tasks first, then credits.
pub fn evaluate(count: DayCount, limits: BudgetLimits, new_tasks: u32) -> Option<Exceeded> {
    if let Some(max) = limits.max_tasks_per_day
        && u64::from(count.tasks) + u64::from(new_tasks) > u64::from(max)
    {
        return Some(Exceeded::TasksPerDay {
            used: count.tasks,
            limit: max,
            requested: new_tasks,
        });
    }
    if let Some(max) = limits.max_ai_credits_per_day
        && count.ai_credits_nano >= limit_nano(max)
    {
        return Some(Exceeded::AiCreditsPerDay {
            used: count.ai_credits(),
            limit: max,
        });
    }
    None
}

/// Count today's agent-gate sessions of the client's repository (since 00:00 UTC of `now`)
/// and decide whether `new_tasks` more would exceed `limits`. Reads the task list (archived
/// and not) with `since` = midnight, then each task with a GET; a task gone since the list
/// (404) is skipped, any other API error is returned.
pub async fn check_budget(
    client: &impl TaskApi,
    limits: BudgetLimits,
    now: Timestamp,
    new_tasks: u32,
) -> Result<BudgetStatus, BudgetError> {
    check_budget_with(client, limits, now, new_tasks, &HashMap::<_, _>::new()).await
}

/// [`check_budget`], reading only the tasks whose spend `known` (task id → what the task
/// index records) does not tell ([`TaskSpend::describes`]).
pub async fn check_budget_with<S: std::hash::BuildHasher>(
    client: &impl TaskApi,
    limits: BudgetLimits,
    now: Timestamp,
    new_tasks: u32,
    known: &HashMap<String, TaskSpend, S>,
) -> Result<BudgetStatus, BudgetError> {
    let midnight = utc_midnight(now)?;
    let resets_at = midnight
        .checked_add(jiff::SignedDuration::from_hours(24))
        .map_err(|_| BudgetError::Clock(now))?;
    let mut spends: Vec<TaskSpend> = Vec::new();
    let mut read = 0u32;
    let mut seen = std::collections::HashSet::new();
    for archived in [false, true] {
        let list = client
            .list_tasks(&ListQuery {
                since: Some(midnight),
                sort: Some(ListSort::UpdatedAt),
                direction: Some(Direction::Desc),
                per_page: Some(100),
                is_archived: Some(archived),
                max_pages: Some(MAX_PAGES),
                ..ListQuery::default()
            })
            .await?;
        for item in list.tasks {
            if !seen.insert(item.id.clone()) {
                continue;
            }
            if let Some(spend) = known.get(&item.id).filter(|s| s.describes(&item)) {
                spends.push(spend.clone());
                continue;
            }
            read += 1;
            match client.get_task(&item.id).await {
                Ok(task) => spends.push(TaskSpend::of(&task)),
                Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(BudgetError::Api(e)),
            }
        }
    }
    let count = count_spends(&spends, midnight);
    Ok(BudgetStatus {
        repository: client.repository(),
        since: midnight.to_string(),
        resets_at: resets_at.to_string(),
        tasks_today: count.tasks,
        credits_today: count.ai_credits(),
        credits_today_nano: count.ai_credits_nano,
        tasks_read: read,
        requested: new_tasks,
        limits,
        would_exceed: evaluate(count, limits, new_tasks),
    })
}
