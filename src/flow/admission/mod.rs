//! Concurrency admission (DESIGN §1 step 2, issue 8): before a run starts its task, wait
//! until the repository has capacity under `agent.max-concurrent-tasks`, keeping
//! `agent.reserved-for-high` slots for `priority: high` runs. Running tasks are counted from
//! the repository's task list (`queued`, `in_progress`, `idle`, `waiting_for_user`); only
//! tasks started by agent-gate count — recognised by the idempotency marker in their prompt
//! ([`MARKER_PREFIX`](crate::core::prompt::MARKER_PREFIX)) — and never this run's own task (a
//! re-run attaching to its task must not wait for itself). This module decides and waits;
//! it does not start tasks, print, or know about reports: the caller turns [`Admission`]
//! and [`WaitInfo`] into progress lines and verdicts.
//!
//! GitHub has no counter to reserve a slot on, so two runs that count in the same instant
//! could both be admitted. Given a [`LeaseStore`] (the run's remote), each decision is taken
//! under the admission lock and an admitted run holds a lease until its task shows in the
//! list ([`crate::flow::lease`]): the cap then holds for runs that start together, and a waiting
//! run of higher priority gets the next free slot before lower ones. Without one — or when
//! the remote refuses the refs — admission counts the task list alone and is advisory
//! ([`LeaseUse::Unavailable`] says why).

mod counter;
mod wait;

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::adapters::github::ApiError;
use crate::flow::TaskApi;
use crate::flow::lease::{Commit, Held, LeaseStore, LockAttempt, Snapshot, occupancy};

pub use crate::core::manifest::Priority;
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
    pub fn from_policy(agent: &crate::core::policy::AgentSettings) -> AdmissionLimits {
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
    client: &impl TaskApi,
    limits: AdmissionLimits,
    priority: Priority,
    counter: impl Into<RunningCounter>,
    deadline: Instant,
    poll_every: Duration,
    leases: Option<&mut LeaseStore>,
    shutdown: impl Future,
    on_wait: impl FnMut(WaitInfo),
) -> Admission {
    let Some(limit) = limits.limit_for(priority) else {
        return Admission::Admitted {
            waited: Duration::ZERO,
            for_slots: Duration::ZERO,
            lease: LeaseUse::NotUsed,
        };
    };
    let client = client.with_deadline(deadline);
    let mut w = Waiter {
        limit,
        priority,
        deadline,
        poll_every: poll_every.max(Duration::from_millis(10)),
        started: Instant::now(),
        counter: counter.into(),
        leases,
        on_wait,
        last_running: None,
        unavailable: None,
        busy_since: None,
        last_busy_line: None,
        lock_failures: 0,
        seen_leases: Vec::new(),
        slot_wait: Duration::ZERO,
    };
    tokio::pin!(shutdown);
    loop {
        // 1. The lock (when there is a store that works).
        let snapshot = match w.lock() {
            LockStep::Go(snapshot) => snapshot,
            LockStep::SleepUntil(until) => {
                if !sleep_unless(shutdown.as_mut(), until).await {
                    return w.interrupted();
                }
                continue;
            }
            LockStep::End(admission) => return admission,
        };
        // 2. The task list.
        let checked = tokio::select! {
            biased;
            _ = &mut shutdown => {
                w.unlock();
                return w.interrupted();
            }
            r = w.counter.running_keys(&client) => r,
        };
        let now = Instant::now();
        let keys = match checked {
            Ok(keys) => keys,
            Err(e) => return w.list_failed(e, now),
        };
        // 3. The decision, and (under the lock) the lease or the waiting note.
        let (running, ahead) = match w.decide(snapshot, &keys, now) {
            Decided::Wait { running, ahead } => (running, ahead),
            Decided::Again => continue,
            Decided::End(admission) => return admission,
        };
        if let Some(end) = w.report_wait(running, ahead, now) {
            return end;
        }
        // 4. Wait for a slot.
        let resting = Instant::now();
        if !w.rest(shutdown.as_mut(), now).await {
            return w.interrupted();
        }
        w.slot_wait += resting.elapsed();
    }
}

/// What the lock step says to do next.
enum LockStep {
    /// Count and decide, under the lock when there is a snapshot.
    Go(Option<Snapshot>),
    /// Try the lock again at this instant (busy, or a failure worth retrying).
    SleepUntil(Instant),
    /// The wait ended (the deadline passed while the lock was busy).
    End(Admission),
}

/// What a decision on the counted tasks says.
enum Decided {
    /// No slot: the running tasks and the waiting runs of higher priority.
    Wait { running: u32, ahead: u32 },
    /// The lock was taken over (this run was presumed dead): decide again.
    Again,
    /// Admitted.
    End(Admission),
}

/// One run's wait for a slot: its limits, the admission store while it works, and what
/// the wait has seen so far.
struct Waiter<'s, F> {
    limit: u32,
    priority: Priority,
    deadline: Instant,
    poll_every: Duration,
    started: Instant,
    counter: RunningCounter,
    leases: Option<&'s mut LeaseStore>,
    on_wait: F,
    last_running: Option<u32>,
    /// Why the admission store is not used, once it failed.
    unavailable: Option<String>,
    /// Since when another run holds the lock, and when that was last reported.
    busy_since: Option<Instant>,
    last_busy_line: Option<Instant>,
    /// Failed attempts at the lock in a row.
    lock_failures: u32,
    /// The leases seen at the last decision (a slot frees when one of them goes).
    seen_leases: Vec<String>,
    /// The time spent waiting for a slot (the rest of the wait was for the lock).
    slot_wait: Duration,
}

impl<F: FnMut(WaitInfo)> Waiter<'_, F> {
    /// Try the admission lock.
    fn lock(&mut self) -> LockStep {
        let Some(store) = self.leases.as_deref_mut() else {
            return LockStep::Go(None);
        };
        match store.try_lock(epoch_now()) {
            Ok(LockAttempt::Held(snap)) => {
                self.busy_since = None;
                self.lock_failures = 0;
                self.seen_leases = snap.leases.iter().map(|l| l.name.clone()).collect();
                // The task index as of now: the tasks of runs admitted since the last
                // check are known without reading them.
                if let Ok(known) = store.known_tasks(epoch_now()) {
                    let own = store.key().to_string();
                    self.counter.learn(known.iter(), &own);
                }
                LockStep::Go(Some(snap))
            }
            Ok(LockAttempt::Busy { holder }) => self.lock_busy(holder),
            Err(e)
                if e.is_git()
                    && store.has_reached_remote()
                    && self.lock_failures < LOCK_RETRIES
                    && Instant::now() < self.deadline =>
            {
                let pause = Duration::from_secs(1 << self.lock_failures);
                self.lock_failures += 1;
                tracing::warn!(
                    error = %e,
                    attempt = self.lock_failures,
                    "the admission lock failed; trying again in {}s",
                    pause.as_secs()
                );
                LockStep::SleepUntil((Instant::now() + pause).min(self.deadline))
            }
            Err(e) => {
                self.unavailable = Some(e.to_string());
                store.withdraw();
                self.leases = None;
                LockStep::Go(None)
            }
        }
    }

    /// Another run holds the lock: say so once it lasts, and try again shortly.
    fn lock_busy(&mut self, holder: Option<String>) -> LockStep {
        self.lock_failures = 0;
        let now = Instant::now();
        let since = *self.busy_since.get_or_insert(now);
        if now.duration_since(since) >= self.poll_every
            && self
                .last_busy_line
                .is_none_or(|at| now.duration_since(at) >= self.poll_every)
        {
            self.last_busy_line = Some(now);
            (self.on_wait)(WaitInfo {
                running: self.last_running.unwrap_or(0),
                limit: self.limit,
                ahead: 0,
                waited: now - self.started,
                lock_holder: Some(holder.unwrap_or_default()),
            });
        }
        if now >= self.deadline {
            self.withdraw();
            return LockStep::End(self.never_admitted(now, self.last_running.unwrap_or(0)));
        }
        LockStep::SleepUntil((now + lock_step(self.poll_every)).min(self.deadline))
    }

    /// Decide on the running tasks `keys`: under the lock (with `snapshot`), take a lease
    /// or leave a waiting note; without it, count the list alone.
    fn decide(&mut self, snapshot: Option<Snapshot>, keys: &[String], now: Instant) -> Decided {
        let waited = now - self.started;
        let admitted = |lease| {
            Decided::End(Admission::Admitted {
                waited,
                for_slots: self.slot_wait,
                lease,
            })
        };
        let (Some(store), Some(snap)) = (self.leases.as_deref_mut(), snapshot) else {
            let running = u32::try_from(keys.len()).unwrap_or(u32::MAX);
            if running < self.limit {
                let why = self.unavailable.take();
                return admitted(why.map_or(LeaseUse::NotUsed, LeaseUse::Unavailable));
            }
            return Decided::Wait { running, ahead: 0 };
        };
        let times = store.times();
        let occ = occupancy(&snap, keys, store.key(), self.priority, epoch_now(), times);
        let admit_now = occ.running.saturating_add(occ.ahead) < self.limit;
        let wait = !admit_now && now < self.deadline;
        match store.commit(admit_now, wait, epoch_now()) {
            Ok(Commit::Done(held)) => {
                store.clean(&occ.dead);
                if let Some(held) = held {
                    return admitted(LeaseUse::Held(held));
                }
            }
            // Presumed dead by another run: decide again.
            Ok(Commit::LostLock) => return Decided::Again,
            Err(e) => {
                self.unavailable = Some(e.to_string());
                store.unlock();
                store.withdraw();
                self.leases = None;
                if admit_now {
                    return admitted(LeaseUse::Unavailable(e.to_string()));
                }
            }
        }
        Decided::Wait {
            running: occ.running,
            ahead: occ.ahead,
        }
    }

    /// No slot at `now`: the end when the deadline has passed, else the wait reported.
    fn report_wait(&mut self, running: u32, ahead: u32, now: Instant) -> Option<Admission> {
        self.last_running = Some(running);
        if now >= self.deadline {
            self.withdraw();
            return Some(self.never_admitted(now, running));
        }
        (self.on_wait)(WaitInfo {
            running,
            limit: self.limit,
            ahead,
            waited: now - self.started,
            lock_holder: None,
        });
        None
    }

    /// Wait for a slot: until `poll_every` after `now`, or within a second of a lease seen
    /// at the last decision going away (its run's task ended, or its run did). `false`
    /// when `shutdown` resolves first.
    async fn rest(&mut self, mut shutdown: std::pin::Pin<&mut impl Future>, now: Instant) -> bool {
        let wake = (now + self.poll_every).min(self.deadline);
        loop {
            let step = if self.leases.is_some() && !self.seen_leases.is_empty() {
                (Instant::now() + WATCH_STEP).min(wake)
            } else {
                wake
            };
            if !sleep_unless(shutdown.as_mut(), step).await {
                return false;
            }
            if Instant::now() >= wake {
                return true;
            }
            let seen = &self.seen_leases;
            let freed = self.leases.as_deref_mut().is_some_and(|store| {
                store.snapshot().is_ok_and(|snap| {
                    seen.iter()
                        .any(|seen| !snap.leases.iter().any(|l| &l.name == seen))
                })
            });
            if freed {
                return true;
            }
        }
    }

    /// The task list could not be read: the deadline's doing when it has passed (the
    /// client's retries end there), else an API error.
    fn list_failed(&mut self, e: ApiError, now: Instant) -> Admission {
        self.unlock();
        self.withdraw();
        match self.last_running {
            Some(running) if now >= self.deadline => self.never_admitted(now, running),
            _ => Admission::ApiError(e),
        }
    }

    fn never_admitted(&self, now: Instant, running: u32) -> Admission {
        Admission::NeverAdmitted {
            waited: now - self.started,
            for_slots: self.slot_wait,
            running,
        }
    }

    /// The wait interrupted: the waiting note is withdrawn.
    fn interrupted(&mut self) -> Admission {
        self.withdraw();
        Admission::Interrupted
    }

    fn unlock(&mut self) {
        if let Some(store) = self.leases.as_deref_mut() {
            store.unlock();
        }
    }

    fn withdraw(&mut self) {
        if let Some(store) = self.leases.as_deref_mut() {
            store.withdraw();
        }
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
