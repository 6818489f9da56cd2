//! Concurrency admission (DESIGN §1 step 2, issue 8): before a run starts its task, wait
//! until the repository has capacity under `agent.max-concurrent-tasks`, keeping
//! `agent.reserved-for-high` slots for `priority: high` runs. Running tasks are counted from
//! the repository's task list (`queued`, `in_progress`, `idle`, `waiting_for_user`); only
//! tasks started by agent-gate count — recognised by the idempotency marker in their prompt
//! ([`MARKER_PREFIX`](crate::prompt::MARKER_PREFIX)) — and never this run's own task (a
//! re-run attaching to its task must not wait for itself). This module decides and waits;
//! it does not start tasks, print, or know about reports: the caller turns [`Admission`]
//! and [`WaitInfo`] into progress lines and verdicts.
//!
//! GitHub has no counter to reserve a slot on, so two runs that count in the same instant
//! could both be admitted. Given a [`LeaseStore`] (the run's remote), each decision is taken
//! under the admission lock and an admitted run holds a lease until its task shows in the
//! list ([`crate::lease`]): the cap then holds for runs that start together, and a waiting
//! run of higher priority gets the next free slot before lower ones. Without one — or when
//! the remote refuses the refs — admission counts the task list alone and is advisory
//! ([`LeaseUse::Unavailable`] says why).
//!
//! This file holds the limits and outcome types and [`admit`] (the wait loop, under the
//! lock); `counter.rs` counts running tasks from the task list ([`RunningCounter`]);
//! `wait.rs` is [`WaitInfo`] and its rendering.

mod counter;
mod wait;

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::github::{ApiError, Client};
use crate::lease::{Commit, Held, LeaseStore, LockAttempt, occupancy};

pub use crate::manifest::Priority;
pub use counter::{RUNNING_STATES, RunningCounter};
pub use wait::WaitInfo;

/// How many times in a row a failed attempt at the lock is retried (after 1 s, 2 s, 4 s)
/// when the remote worked earlier in the run; then admission goes on without the lock.
pub const LOCK_RETRIES: u32 = 3;

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

/// Whether an admitted run holds a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseUse {
    /// No store was given (or there is no cap): admission counted the task list alone.
    NotUsed,
    /// The run holds this lease until it ends.
    Held(Held),
    /// The store could not be used (this is why); admission counted the task list alone.
    Unavailable(String),
}

/// How admission ended.
#[derive(Debug)]
pub enum Admission {
    /// A slot is free (or there is no cap): start the task. `waited` in all, of which
    /// `for_slots` waiting for a slot (the rest for the admission lock and its decisions).
    Admitted {
        waited: Duration,
        for_slots: Duration,
        lease: LeaseUse,
    },
    /// The deadline passed while waiting: the run is `timed-out`, "never admitted".
    NeverAdmitted {
        waited: Duration,
        for_slots: Duration,
        running: u32,
    },
    /// The shutdown signal fired while waiting: the run is `cancelled`.
    Interrupted,
    /// The task list could not be read (after the client's retries).
    ApiError(ApiError),
}

/// Wait until a run of `priority` may start under `limits`.
///
/// Checks at once; while the slots are taken, reports the wait through `on_wait` and checks
/// again every `poll_every`, until a slot is free ([`Admission::Admitted`]), the `deadline`
/// passes ([`Admission::NeverAdmitted`]; the last check is at the deadline), `shutdown`
/// resolves ([`Admission::Interrupted`]) or the list cannot be read
/// ([`Admission::ApiError`]). With no cap it returns `Admitted` without a request.
///
/// With `leases`, every check is made under the admission lock and an admitted run takes a
/// lease (returned in [`LeaseUse::Held`]; the caller releases it when the run ends). A lock
/// held by another run is waited for in short random steps. A git error at the lock after
/// the remote has worked is retried ([`LOCK_RETRIES`]); when the remote cannot be used,
/// admission goes on without it and says why ([`LeaseUse::Unavailable`]).
#[allow(
    clippy::too_many_arguments,
    reason = "the signature the run flow calls; each argument is one injected input"
)]
pub async fn admit(
    client: &Client,
    limits: AdmissionLimits,
    priority: Priority,
    counter: impl Into<RunningCounter>,
    deadline: Instant,
    poll_every: Duration,
    mut leases: Option<&mut LeaseStore>,
    shutdown: impl Future,
    mut on_wait: impl FnMut(WaitInfo),
) -> Admission {
    let started = Instant::now();
    let Some(limit) = limits.limit_for(priority) else {
        return Admission::Admitted {
            waited: Duration::ZERO,
            for_slots: Duration::ZERO,
            lease: LeaseUse::NotUsed,
        };
    };
    let client = client.with_deadline(deadline);
    let poll_every = poll_every.max(Duration::from_millis(10));
    let mut counter = counter.into();
    let mut last_running: Option<u32> = None;
    let mut unavailable: Option<String> = None;
    // Since when another run holds the lock, and when that was last reported.
    let mut busy_since: Option<Instant> = None;
    let mut last_busy_line: Option<Instant> = None;
    // Failed attempts at the lock in a row.
    let mut lock_failures = 0u32;
    // The leases seen at the last decision (a slot frees when one of them goes), and the
    // time spent waiting for a slot (the rest of the wait was for the lock).
    let mut seen_leases: Vec<String> = Vec::new();
    let mut slot_wait = Duration::ZERO;
    let shutdown = shutdown;
    tokio::pin!(shutdown);
    loop {
        // 1. The lock (when there is a store that works).
        let mut snapshot = None;
        if let Some(store) = leases.as_deref_mut() {
            match store.try_lock(epoch_now()) {
                Ok(LockAttempt::Held(snap)) => {
                    busy_since = None;
                    lock_failures = 0;
                    seen_leases = snap.leases.iter().map(|l| l.name.clone()).collect();
                    snapshot = Some(snap);
                    // The task index as of now: the tasks of runs admitted since the last
                    // check are known without reading them.
                    if let Ok(known) = store.known_tasks(epoch_now()) {
                        let own = store.key().to_string();
                        counter.learn(known.iter(), &own);
                    }
                }
                Ok(LockAttempt::Busy { holder }) => {
                    lock_failures = 0;
                    let now = Instant::now();
                    let since = *busy_since.get_or_insert(now);
                    if now.duration_since(since) >= poll_every
                        && last_busy_line.is_none_or(|at| now.duration_since(at) >= poll_every)
                    {
                        last_busy_line = Some(now);
                        on_wait(WaitInfo {
                            running: last_running.unwrap_or(0),
                            limit,
                            ahead: 0,
                            waited: now - started,
                            lock_holder: Some(holder.unwrap_or_default()),
                        });
                    }
                    if now >= deadline {
                        store.withdraw();
                        return Admission::NeverAdmitted {
                            waited: now - started,
                            for_slots: slot_wait,
                            running: last_running.unwrap_or(0),
                        };
                    }
                    let step = lock_step(poll_every);
                    if !sleep_unless(shutdown.as_mut(), (now + step).min(deadline)).await {
                        store.withdraw();
                        return Admission::Interrupted;
                    }
                    continue;
                }
                Err(e)
                    if e.is_git()
                        && store.has_reached_remote()
                        && lock_failures < LOCK_RETRIES
                        && Instant::now() < deadline =>
                {
                    let pause = Duration::from_secs(1 << lock_failures);
                    lock_failures += 1;
                    tracing::warn!(
                        error = %e,
                        attempt = lock_failures,
                        "the admission lock failed; trying again in {}s",
                        pause.as_secs()
                    );
                    let until = (Instant::now() + pause).min(deadline);
                    if !sleep_unless(shutdown.as_mut(), until).await {
                        store.withdraw();
                        return Admission::Interrupted;
                    }
                    continue;
                }
                Err(e) => {
                    unavailable = Some(e.to_string());
                    store.withdraw();
                    leases = None;
                }
            }
        }
        // 2. The task list.
        let checked = tokio::select! {
            biased;
            _ = &mut shutdown => {
                if let Some(store) = leases.as_deref_mut() {
                    store.unlock();
                    store.withdraw();
                }
                return Admission::Interrupted;
            }
            r = counter.running_keys(&client) => r,
        };
        let now = Instant::now();
        let waited = now - started;
        let keys = match checked {
            Ok(keys) => keys,
            Err(e) => {
                if let Some(store) = leases.as_deref_mut() {
                    store.unlock();
                    store.withdraw();
                }
                // The client's retries end at the deadline: a failure there is the deadline's.
                return match last_running {
                    Some(running) if now >= deadline => Admission::NeverAdmitted {
                        waited,
                        for_slots: slot_wait,
                        running,
                    },
                    _ => Admission::ApiError(e),
                };
            }
        };
        // 3. The decision, and (under the lock) the lease or the waiting note.
        let (running, ahead) = if let (Some(store), Some(snap)) = (leases.as_deref_mut(), snapshot)
        {
            let occ = occupancy(
                &snap,
                &keys,
                store.key(),
                priority,
                epoch_now(),
                store.times(),
            );
            let admit_now = occ.running.saturating_add(occ.ahead) < limit;
            let wait = !admit_now && now < deadline;
            match store.commit(admit_now, wait, epoch_now()) {
                Ok(Commit::Done(held)) => {
                    store.clean(&occ.dead);
                    if let Some(held) = held {
                        return Admission::Admitted {
                            waited,
                            for_slots: slot_wait,
                            lease: LeaseUse::Held(held),
                        };
                    }
                }
                // Presumed dead by another run: decide again.
                Ok(Commit::LostLock) => continue,
                Err(e) => {
                    unavailable = Some(e.to_string());
                    store.unlock();
                    store.withdraw();
                    leases = None;
                    if admit_now {
                        return Admission::Admitted {
                            waited,
                            for_slots: slot_wait,
                            lease: LeaseUse::Unavailable(e.to_string()),
                        };
                    }
                }
            }
            (occ.running, occ.ahead)
        } else {
            let running = u32::try_from(keys.len()).unwrap_or(u32::MAX);
            if running < limit {
                return Admission::Admitted {
                    waited,
                    for_slots: slot_wait,
                    lease: unavailable.map_or(LeaseUse::NotUsed, LeaseUse::Unavailable),
                };
            }
            (running, 0)
        };
        last_running = Some(running);
        if now >= deadline {
            if let Some(store) = leases.as_deref_mut() {
                store.withdraw();
            }
            return Admission::NeverAdmitted {
                waited,
                for_slots: slot_wait,
                running,
            };
        }
        on_wait(WaitInfo {
            running,
            limit,
            ahead,
            waited,
            lock_holder: None,
        });
        // Wait for a slot: check again after `poll_every`, or within a second of a lease
        // seen at this decision going away (its run's task ended, or its run did).
        let wake = (now + poll_every).min(deadline);
        let resting = Instant::now();
        loop {
            let step = if leases.is_some() && !seen_leases.is_empty() {
                (Instant::now() + WATCH_STEP).min(wake)
            } else {
                wake
            };
            if !sleep_unless(shutdown.as_mut(), step).await {
                if let Some(store) = leases.as_deref_mut() {
                    store.withdraw();
                }
                return Admission::Interrupted;
            }
            if Instant::now() >= wake {
                break;
            }
            let freed = leases.as_deref_mut().is_some_and(|store| {
                store.snapshot().is_ok_and(|snap| {
                    seen_leases
                        .iter()
                        .any(|seen| !snap.leases.iter().any(|l| &l.name == seen))
                })
            });
            if freed {
                break;
            }
        }
        slot_wait += resting.elapsed();
    }
}

/// How often a run waiting for a slot looks at the admission refs for a lease given back.
pub const WATCH_STEP: Duration = Duration::from_secs(1);

/// Sleep until `until`; `false` when `shutdown` resolves first.
async fn sleep_unless(shutdown: std::pin::Pin<&mut impl Future>, until: Instant) -> bool {
    tokio::select! {
        biased;
        _ = shutdown => false,
        () = tokio::time::sleep_until(until) => true,
    }
}

/// Seconds since the Unix epoch (the clock the notes of other machines are compared with).
pub fn epoch_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// A random pause before trying a busy lock again: 50–250 ms, never above `poll_every`.
fn lock_step(poll_every: Duration) -> Duration {
    let ms = rand::random_range(50..=250u64);
    Duration::from_millis(ms).min(poll_every)
}
