//! Concurrency admission (DESIGN §1 step 2, issue 8): before a run starts its task, wait
//! until the repository has capacity under `agent.max-concurrent-tasks`, keeping
//! `agent.reserved-for-high` slots for `priority: high` runs. Running tasks are counted from
//! the repository's task list (`queued`, `in_progress`, `idle`, `waiting_for_user`); only
//! tasks started by agent-gate count — recognised by the idempotency marker in their prompt
//! ([`MARKER_PREFIX`]) — and never this run's own task (a re-run attaching to its task must
//! not wait for itself). This module decides and waits; it does not start tasks, print, or
//! know about reports: the caller turns [`Admission`] and [`WaitInfo`] into progress lines
//! and verdicts.
//!
//! Admission is advisory, not a lock: GitHub has no counter to reserve a slot on, so two runs
//! that check in the same instant can both be admitted. The cap holds between runs whose
//! checks are at least one task creation apart, which is what a matrix with staggered starts
//! and a `poll_every` of seconds gives.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::github::types::{Task, TaskState};
use crate::github::{ApiError, Client, ListQuery};
use crate::prompt::MARKER_PREFIX;

pub use crate::manifest::Priority;

/// The task states that hold a slot.
pub const RUNNING_STATES: [TaskState; 4] = [
    TaskState::Queued,
    TaskState::InProgress,
    TaskState::Idle,
    TaskState::WaitingForUser,
];

/// The policy's caps (`agent.max-concurrent-tasks`, `agent.reserved-for-high`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AdmissionLimits {
    /// Tasks that may run at once in the repository; `None`: no cap (admitted at once).
    pub max_concurrent: Option<u32>,
    /// Slots of `max_concurrent` only `high` runs may take.
    pub reserved_for_high: u32,
}

impl AdmissionLimits {
    /// The limits a compiled policy sets.
    pub fn from_policy(agent: &crate::policy::AgentSettings) -> AdmissionLimits {
        AdmissionLimits {
            max_concurrent: agent.max_concurrent_tasks,
            reserved_for_high: agent.reserved_for_high,
        }
    }

    /// How many running tasks a run of `priority` may join: `max` for `high`, `max -
    /// reserved` for `normal` and `low`. `None` when there is no cap.
    pub fn limit_for(&self, priority: Priority) -> Option<u32> {
        self.max_concurrent.map(|max| match priority {
            Priority::High => max,
            Priority::Normal | Priority::Low => max.saturating_sub(self.reserved_for_high),
        })
    }
}

/// One check that found no free slot (reported before each wait).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitInfo {
    /// agent-gate tasks running in the repository (this run's own task excluded).
    pub running: u32,
    /// The limit for this run's priority: admitted once `running < limit`.
    pub limit: u32,
    /// Time since admission started.
    pub waited: Duration,
}

impl fmt::Display for WaitInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "waiting for capacity: {} agent-gate tasks running, this run may start below {} (waited {}s)",
            self.running,
            self.limit,
            self.waited.as_secs()
        )
    }
}

/// How admission ended.
#[derive(Debug)]
pub enum Admission {
    /// A slot is free (or there is no cap): start the task.
    Admitted { waited: Duration },
    /// The deadline passed while waiting: the run is `timed-out`, "never admitted".
    NeverAdmitted { waited: Duration, running: u32 },
    /// The shutdown signal fired while waiting: the run is `cancelled`.
    Interrupted,
    /// The task list could not be read (after the client's retries).
    ApiError(ApiError),
}

/// What a task in the list is, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Carries this run's own marker.
    Own,
    /// Started by agent-gate (another key).
    Gate,
    /// Not started by agent-gate.
    Other,
}

/// Counts running agent-gate tasks, remembering what each task id is (a task's first prompt
/// never changes), so repeated checks GET only tasks it has not seen.
#[derive(Debug)]
pub struct RunningCounter {
    own_marker: String,
    kinds: HashMap<String, Kind>,
}

impl RunningCounter {
    /// `own_marker`: this run's marker line (`[agent-gate task-key: KEY]`); tasks carrying it
    /// are not counted. An empty marker excludes nothing.
    pub fn new(own_marker: &str) -> RunningCounter {
        RunningCounter {
            own_marker: own_marker.trim().to_string(),
            kinds: HashMap::new(),
        }
    }

    fn kind_of_text(&self, text: &str) -> Option<Kind> {
        if !self.own_marker.is_empty() && text.contains(&self.own_marker) {
            Some(Kind::Own)
        } else if crate::prompt::find_key(text).is_some() {
            Some(Kind::Gate)
        } else {
            None
        }
    }

    /// From the list item alone, when its name holds a whole marker.
    fn kind_from_name(&self, task: &Task) -> Option<Kind> {
        let name = task.name.as_deref()?;
        name.contains(MARKER_PREFIX)
            .then(|| self.kind_of_text(name))
            .flatten()
    }

    fn kind_from_sessions(&self, task: &Task) -> Kind {
        let mut kind = Kind::Other;
        for prompt in task
            .sessions
            .iter()
            .flatten()
            .filter_map(|s| s.prompt.as_deref())
        {
            match self.kind_of_text(prompt) {
                Some(Kind::Own) => return Kind::Own,
                Some(k) => kind = k,
                None => {}
            }
        }
        kind
    }

    /// agent-gate tasks in a running state in the client's repository, this run's excluded.
    pub async fn count(&mut self, client: &Client) -> Result<u32, ApiError> {
        let list = client
            .list_tasks(&ListQuery {
                state: RUNNING_STATES.to_vec(),
                per_page: Some(100),
                max_pages: Some(10),
                ..ListQuery::default()
            })
            .await?;
        let mut running = 0u32;
        for task in list
            .tasks
            .iter()
            .filter(|t| RUNNING_STATES.contains(&t.state))
        {
            let kind = if let Some(k) = self.kinds.get(&task.id) {
                *k
            } else {
                let kind = match self.kind_from_name(task) {
                    Some(k) => k,
                    None => match client.get_task(&task.id).await {
                        Ok(full) => self.kind_from_sessions(&full),
                        // Gone since the list: it holds no slot.
                        Err(ApiError::NotFound { .. }) => continue,
                        Err(e) => return Err(e),
                    },
                };
                self.kinds.insert(task.id.clone(), kind);
                kind
            };
            if kind == Kind::Gate {
                running = running.saturating_add(1);
            }
        }
        Ok(running)
    }
}

/// Wait until a run of `priority` may start under `limits`.
///
/// Checks at once; while the running count is at the limit, reports the wait through
/// `on_wait` and checks again every `poll_every`, until a slot is free ([`Admission::Admitted`]),
/// the `deadline` passes ([`Admission::NeverAdmitted`]; the last check is at the deadline),
/// `shutdown` resolves ([`Admission::Interrupted`]) or the list cannot be read
/// ([`Admission::ApiError`]). With no cap it returns `Admitted` without a request.
#[allow(
    clippy::too_many_arguments,
    reason = "the signature the run flow calls; each argument is one injected input"
)]
pub async fn admit(
    client: &Client,
    limits: AdmissionLimits,
    priority: Priority,
    own_marker: &str,
    deadline: Instant,
    poll_every: Duration,
    shutdown: impl Future,
    mut on_wait: impl FnMut(WaitInfo),
) -> Admission {
    let started = Instant::now();
    let Some(limit) = limits.limit_for(priority) else {
        return Admission::Admitted {
            waited: Duration::ZERO,
        };
    };
    let client = client.with_deadline(deadline);
    let poll_every = poll_every.max(Duration::from_millis(10));
    let mut counter = RunningCounter::new(own_marker);
    let mut last_running: Option<u32> = None;
    let shutdown = shutdown;
    tokio::pin!(shutdown);
    loop {
        let checked = tokio::select! {
            biased;
            _ = &mut shutdown => return Admission::Interrupted,
            r = counter.count(&client) => r,
        };
        let now = Instant::now();
        let waited = now - started;
        let running = match checked {
            Ok(n) => n,
            // The client's retries end at the deadline: a failure there is the deadline's.
            Err(e) => match last_running {
                Some(running) if now >= deadline => {
                    return Admission::NeverAdmitted { waited, running };
                }
                _ => return Admission::ApiError(e),
            },
        };
        last_running = Some(running);
        if running < limit {
            return Admission::Admitted { waited };
        }
        if now >= deadline {
            return Admission::NeverAdmitted { waited, running };
        }
        on_wait(WaitInfo {
            running,
            limit,
            waited,
        });
        let wake = (now + poll_every).min(deadline);
        tokio::select! {
            biased;
            _ = &mut shutdown => return Admission::Interrupted,
            () = tokio::time::sleep_until(wake) => {}
        }
    }
}
