//! The poller: follows one task until it reaches a final state, until `idle` or
//! `waiting_for_user` are settled by policy, until the deadline, or until the shutdown future
//! resolves (checked while waiting *and* while a request is in flight, so it stops within one
//! tick). The interval starts at `initial`, resets to `initial` on every state change, and is
//! jittered. An unchanged poll that GitHub answered `304 Not Modified` cost nothing of the
//! rate limit, so the next one comes after `watch` (a task is watched closely for free); an
//! unchanged poll that was paid for (a 200: no `ETag`, or a body that changed without its
//! state) grows the interval ×1.5 up to `max`. Each GET goes through the client, so
//! retries, the rate-limit "not before" and conditional requests (`ETag` → 304) apply. Time is
//! tokio's (tests pause it); wall stamps come from the client's clock.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::client::Client;
use super::endpoints::note_state;
use super::error::ApiError;
use super::retry::jitter_between;
use super::types::{Task, TaskState};

/// What to do when a task sits in `idle` or `waiting_for_user`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatePolicy {
    /// Stop polling and gate what the branch holds.
    Accept,
    /// Keep polling.
    Wait,
    /// Stop polling; the gate fails the task.
    Fail,
}

/// Options of [`poll_task`].
#[derive(Debug, Clone)]
pub struct PollOptions {
    pub initial: Duration,
    pub max: Duration,
    /// The interval after an unchanged poll GitHub answered `304` (free); kept between
    /// `initial` and `max`.
    pub watch: Duration,
    pub deadline: Instant,
    /// `agent.on-idle` (default accept).
    pub on_idle: StatePolicy,
    /// `agent.on-waiting-for-user` (default fail).
    pub on_waiting_for_user: StatePolicy,
    /// Each wait is drawn from `[interval × (1 − jitter), interval]`; 0 disables it.
    pub jitter: f64,
}

impl PollOptions {
    /// The defaults of the policy file: 5 s growing to 60 s, 5 s while answers are 304,
    /// idle accepted, waiting failed.
    pub fn new(deadline: Instant) -> PollOptions {
        PollOptions {
            initial: Duration::from_secs(5),
            max: Duration::from_mins(1),
            watch: Duration::from_secs(5),
            deadline,
            on_idle: StatePolicy::Accept,
            on_waiting_for_user: StatePolicy::Fail,
            jitter: 0.1,
        }
    }
}

/// Something the caller may log, show or audit.
#[derive(Debug, Clone, PartialEq)]
pub enum PollEvent {
    /// The state differs from the previous poll (`from` is `None` on the first poll).
    StateChanged {
        from: Option<TaskState>,
        to: TaskState,
        at: jiff::Timestamp,
        /// The task's own `updated_at` in the answer that showed the change.
        updated_at: Option<String>,
    },
    /// A poll that saw no change.
    Heartbeat {
        state: TaskState,
        polls: u32,
        next_in: Duration,
    },
    /// A GET failed and will be retried after `wait`: retry `number` of at most `of`.
    Retrying {
        error: String,
        wait: Duration,
        number: u32,
        of: u32,
    },
}

/// Why polling stopped.
#[derive(Debug)]
pub enum PollOutcome {
    /// `completed`, `failed`, `timed_out` or `cancelled`.
    Finished { task: Task },
    /// `idle`/`waiting_for_user` with policy `accept`: gate what the branch holds.
    Accepted { task: Task },
    /// `idle`/`waiting_for_user` with policy `fail`.
    Rejected { task: Task },
    /// The deadline passed first (also when it cut short the retries of a transient
    /// failure or a rate-limit wait).
    DeadlineReached { last: Option<Task> },
    /// The shutdown future resolved first.
    Interrupted { last: Option<Task> },
    /// A failure retries could not cure (or a non-retryable one).
    ApiError { error: ApiError, last: Option<Task> },
}

impl PollOutcome {
    /// The last task seen.
    pub fn last(&self) -> Option<&Task> {
        match self {
            PollOutcome::Finished { task }
            | PollOutcome::Accepted { task }
            | PollOutcome::Rejected { task } => Some(task),
            PollOutcome::DeadlineReached { last }
            | PollOutcome::Interrupted { last }
            | PollOutcome::ApiError { last, .. } => last.as_ref(),
        }
    }
}

fn jittered(interval: Duration, jitter: f64) -> Duration {
    if jitter <= 0.0 || !jitter.is_finite() {
        return interval;
    }
    let low = interval.mul_f64(1.0 - jitter.min(1.0));
    jitter_between(low, interval)
}

/// A transient failure whose cure (a retry, a rate-limit wait) the deadline cut short: the
/// deadline decided, not the API. The client's GET gives up on a transient error only when
/// its attempts are spent or the next one would start past the deadline.
fn cut_by_deadline(error: &ApiError, retries: u32, client: &Client) -> bool {
    matches!(error, ApiError::WaitPastDeadline { .. })
        || (error.is_transient() && retries + 1 < client.retry_policy().attempts_for(error))
}

/// Poll `task_id` until one of the outcomes of [`PollOutcome`].
pub async fn poll_task<S, E>(
    client: &Client,
    task_id: &str,
    opts: &PollOptions,
    shutdown: S,
    mut on_event: E,
) -> PollOutcome
where
    S: Future<Output = ()>,
    E: FnMut(PollEvent) + Send,
{
    let client = client.with_deadline(opts.deadline);
    let initial = opts.initial.max(Duration::from_millis(1));
    let max = opts.max.max(initial);
    let mut interval = initial;
    let mut last: Option<Task> = None;
    let mut polls = 0u32;
    tokio::pin!(shutdown);
    loop {
        if Instant::now() >= opts.deadline {
            return PollOutcome::DeadlineReached { last };
        }
        let mut retries = 0u32;
        let fetched = {
            let mut observer = |r: &crate::adapters::github::retry::Retry<'_>| {
                retries += 1;
                on_event(PollEvent::Retrying {
                    error: r.error.to_string(),
                    wait: r.wait,
                    number: r.number,
                    of: r.of,
                });
            };
            tokio::select! {
                biased;
                () = &mut shutdown => return PollOutcome::Interrupted { last },
                () = tokio::time::sleep_until(opts.deadline) => None,
                r = client.get_task_watched(task_id, &mut observer) => Some(r),
            }
        };
        let (task, free) = match fetched {
            None => return PollOutcome::DeadlineReached { last },
            Some(Err(error)) if cut_by_deadline(&error, retries, &client) => {
                tracing::warn!(error = %error, "the deadline passed while a poll was being retried");
                return PollOutcome::DeadlineReached { last };
            }
            Some(Err(error)) => return PollOutcome::ApiError { error, last },
            Some(Ok(fetched)) => fetched,
        };
        polls += 1;
        let previous = last.as_ref().map(|t| t.state.clone());
        let changed = previous.as_ref() != Some(&task.state);
        if changed {
            interval = initial;
            on_event(PollEvent::StateChanged {
                from: previous,
                to: task.state.clone(),
                at: client.now(),
                updated_at: task.updated_at.clone(),
            });
        } else if free {
            interval = opts.watch.clamp(initial, max);
        } else {
            interval = interval.mul_f64(1.5).min(max);
        }
        let decision = match &task.state {
            s if s.is_final() => Some(StatePolicy::Accept),
            TaskState::Idle => Some(opts.on_idle).filter(|p| *p != StatePolicy::Wait),
            TaskState::WaitingForUser => {
                Some(opts.on_waiting_for_user).filter(|p| *p != StatePolicy::Wait)
            }
            s @ TaskState::Unknown(_) => {
                note_state(s);
                None
            }
            _ => None,
        };
        match decision {
            Some(_) if task.state.is_final() => return PollOutcome::Finished { task },
            Some(StatePolicy::Accept) => return PollOutcome::Accepted { task },
            Some(_) => return PollOutcome::Rejected { task },
            None => {}
        }
        let wait = jittered(interval, opts.jitter);
        if !changed {
            on_event(PollEvent::Heartbeat {
                state: task.state.clone(),
                polls,
                next_in: wait,
            });
        }
        last = Some(task);
        let wake = (Instant::now() + wait).min(opts.deadline);
        tokio::select! {
            biased;
            () = &mut shutdown => return PollOutcome::Interrupted { last },
            () = tokio::time::sleep_until(wake) => {}
        }
    }
}
