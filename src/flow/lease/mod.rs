//! The admission lock (issue 8): what makes `agent.max-concurrent-tasks` hold across runs
//! that start at the same moment. GitHub's task API has nothing to reserve a slot on, so the
//! repository's own remote is the shared store, through refs under
//! `refs/agent-gate/admission/` that only agent-gate writes:
//!
//! - `lock`: held for the few git round trips and one task-list read of a decision. Taken by
//!   creating the ref (the remote checks it does not exist, under its ref lock); a lock older
//!   than [`LeaseTimes::lock_stale`] belongs to a run that died and is taken over by a
//!   compare-and-swap on its id.
//! - `leases/<run>`: written in the same atomic push that releases the lock when a run is
//!   admitted; it holds the slot until the run's task shows in the task list (a lease counts
//!   while it is younger than [`LeaseTimes::lease_grace`] or while its key's task runs),
//!   renewed when a repair round of the run is admitted, and deleted when the run ends.
//! - `waiting/<run>`: a run that found no slot says so, so that a run of lower priority
//!   leaves the next free slot to it (refreshed at every check, ignored once stale).
//!
//! Each ref holds a parentless commit whose one-line message is a JSON [`Note`]. This module
//! reads and writes those refs and decides who occupies a slot ([`occupancy`]); waiting,
//! counting the task list and reporting belong to `crate::flow::admission`.

mod index;
mod notes;

use std::time::Duration;

use crate::adapters::git::{Expect, Git, GitError, PushOutcome, RefUpdate, RemoteAuth};
use crate::core::manifest::Priority;
use crate::core::secret::Token;

pub use index::{INDEX_RETENTION, KnownTasks, TASKS_PREFIX, TaskNote, index_ref};
pub use notes::{Entry, LeaseTimes, Note, NoteKind, Occupancy, Snapshot, occupancy};

/// Where the admission refs live on the remote.
pub const ADMISSION_PREFIX: &str = "refs/agent-gate/admission/";
const LOCK_REF: &str = "refs/agent-gate/admission/lock";
const LEASES: &str = "refs/agent-gate/admission/leases/";
const WAITING: &str = "refs/agent-gate/admission/waiting/";
/// How many of its own lock commits a run remembers.
const MAX_ATTEMPTED: usize = 8;

/// A lease this run holds (released by [`LeaseStore::release`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub name: String,
    pub id: String,
}

/// How [`LeaseStore::try_lock`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockAttempt {
    /// This run holds the lock; the snapshot was read under it.
    Held(Snapshot),
    /// Another run holds it (`holder`: its key, when its note is readable).
    Busy { holder: Option<String> },
}

/// How [`LeaseStore::commit`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Commit {
    /// The lock is released; `Some` when a lease was taken.
    Done(Option<Held>),
    /// The lock was taken over (this run was presumed dead): nothing was written.
    LostLock,
}

/// Why the admission refs cannot be used (the run then falls back to counting tasks).
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("cannot {action} `{ADMISSION_PREFIX}*` on `{remote}`: {source}")]
    Git {
        action: &'static str,
        remote: String,
        #[source]
        source: Box<GitError>,
    },
    #[error(
        "`{remote}` declines pushes to `{ADMISSION_PREFIX}*` ({reason}); a ruleset or push restriction on `refs/agent-gate/*` would explain it"
    )]
    Refused { remote: String, reason: String },
    #[error("cannot {action} the task index `{TASKS_PREFIX}*` on `{remote}`: {source}")]
    Index {
        action: &'static str,
        remote: String,
        #[source]
        source: Box<GitError>,
    },
    #[error("`{remote}` declines pushes to the task index `{TASKS_PREFIX}*` ({reason})")]
    IndexRefused { remote: String, reason: String },
}

/// The admission refs of one remote, as one run reads and writes them.
#[derive(Debug)]
pub struct LeaseStore {
    git: Git,
    remote: String,
    auth: RemoteAuth,
    /// Where this run mirrors the remote's refs: `refs/agent-gate/<run_id>/` (admission
    /// refs under `admission/`, the task index under `tasks/`), deleted on drop.
    run_refs: String,
    key: String,
    priority: Priority,
    poll: Duration,
    run_id: String,
    times: LeaseTimes,
    /// The lock commit this run last pushed.
    lock_id: Option<String>,
    /// The lock commits this run tried to push (the last few): a push the remote applied but
    /// whose answer was lost (a dropped connection, a timeout) left one of these as the lock.
    attempted: Vec<String>,
    /// Rejected lock pushes in a row while no lock was visible.
    refused: u32,
    /// The lease this run holds (released on drop).
    held: Option<Held>,
    /// The id of this run's waiting note on the remote, while it has one.
    waiting_id: Option<String>,
}

impl LeaseError {
    /// A git failure (as opposed to the remote declining the refs, which does not pass).
    pub fn is_git(&self) -> bool {
        matches!(self, LeaseError::Git { .. })
    }
}

impl LeaseStore {
    /// The store on `remote` (name, URL or path) of the repository `git` works in, for the
    /// run with task key `key` and id `run_id` (unique per run: it names the run's refs).
    /// `token` authenticates HTTPS remotes when plain git cannot. Notes are mirrored into
    /// `refs/agent-gate/<run_id>/admission/`, deleted when the store is dropped.
    pub fn new(
        git: Git,
        remote: &str,
        token: Option<Token>,
        key: &str,
        priority: Priority,
        run_id: &str,
    ) -> LeaseStore {
        LeaseStore {
            git,
            remote: remote.to_string(),
            auth: RemoteAuth::new(token),
            run_refs: format!("refs/agent-gate/{run_id}/"),
            key: key.to_string(),
            priority,
            poll: Duration::from_secs(5),
            run_id: run_id.to_string(),
            times: LeaseTimes::default(),
            lock_id: None,
            attempted: Vec::new(),
            refused: 0,
            held: None,
            waiting_id: None,
        }
    }

    /// The interval between this run's checks (written into its waiting note).
    #[must_use]
    pub fn with_poll(mut self, poll: Duration) -> LeaseStore {
        self.poll = poll;
        self
    }

    pub fn times(&self) -> LeaseTimes {
        self.times
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether an operation on the remote has worked in this run: a git error after that is
    /// presumed passing (the network, a busy remote), not a remote this run cannot use.
    pub fn has_reached_remote(&self) -> bool {
        self.auth.has_reached()
    }

    /// Run a git operation against the remote ([`RemoteAuth`]).
    fn remote_op<T>(
        &mut self,
        action: &'static str,
        op: impl Fn(&Git, &str, Option<&str>) -> Result<T, GitError>,
    ) -> Result<T, LeaseError> {
        let (git, remote) = (&self.git, self.remote.as_str());
        self.auth
            .run(|token| op(git, remote, token))
            .map_err(|source| LeaseError::Git {
                action,
                remote: self.remote.clone(),
                source: Box::new(source),
            })
    }

    fn note(&self, kind: NoteKind, now: i64) -> Result<String, LeaseError> {
        let note = Note {
            kind,
            key: self.key.clone(),
            priority: self.priority.as_str().to_string(),
            at: now,
            poll_s: self.poll.as_secs().max(1),
        };
        let text = serde_json::to_string(&note).unwrap_or_default();
        self.git
            .note_commit(&text)
            .map_err(|source| LeaseError::Git {
                action: "write a note for",
                remote: self.remote.clone(),
                source: Box::new(source),
            })
    }

    /// Read the admission refs.
    pub fn snapshot(&mut self) -> Result<Snapshot, LeaseError> {
        let local = format!("{}admission/", self.run_refs);
        let refs = self.remote_op("read", |git, remote, token| {
            git.mirror_refs(remote, ADMISSION_PREFIX, &local, token)
        })?;
        Ok(Snapshot::from_refs(refs))
    }

    fn push(
        &mut self,
        action: &'static str,
        updates: &[RefUpdate],
        atomic: bool,
    ) -> Result<PushOutcome, LeaseError> {
        self.remote_op(action, |git, remote, token| {
            if atomic {
                git.push_refs(remote, updates, token)
            } else {
                git.push_refs_each(remote, updates, token)
            }
        })
    }

    /// Try to take the lock at `now` (seconds since the epoch): create it, or take over a
    /// stale one. Holding it, read the snapshot.
    pub fn try_lock(&mut self, now: i64) -> Result<LockAttempt, LeaseError> {
        let id = self.note(NoteKind::Lock, now)?;
        if self.attempted.len() >= MAX_ATTEMPTED {
            self.attempted.remove(0);
        }
        self.attempted.push(id.clone());
        let create = [RefUpdate {
            name: LOCK_REF.to_string(),
            new: Some(id.clone()),
            expect: Expect::Absent,
        }];
        if let PushOutcome::Rejected { reason } = self.push("take the lock", &create, true)? {
            let snap = self.snapshot()?;
            let Some(lock) = snap.lock.clone() else {
                // Freed in between — or refused by the remote: after a few, say so.
                self.refused += 1;
                if self.refused >= 5 {
                    return Err(LeaseError::Refused {
                        remote: self.remote.clone(),
                        reason,
                    });
                }
                return Ok(LockAttempt::Busy { holder: None });
            };
            self.refused = 0;
            if self.lock_id.as_deref() == Some(lock.id.as_str())
                || self.attempted.contains(&lock.id)
            {
                // Ours: left by a commit that failed, or taken by a push whose answer was
                // lost. Still held.
                self.lock_id = Some(lock.id);
                return Ok(LockAttempt::Held(self.snapshot()?));
            }
            let stale = lock
                .age(now)
                .is_none_or(|a| a >= self.times.lock_stale.as_secs());
            if !stale {
                return Ok(LockAttempt::Busy {
                    holder: lock.note.map(|n| n.key),
                });
            }
            let take_over = [RefUpdate {
                name: LOCK_REF.to_string(),
                new: Some(id.clone()),
                expect: Expect::Is(lock.id.clone()),
            }];
            if let PushOutcome::Rejected { .. } =
                self.push("take over the lock", &take_over, true)?
            {
                return Ok(LockAttempt::Busy {
                    holder: lock.note.map(|n| n.key),
                });
            }
        }
        self.refused = 0;
        self.lock_id = Some(id);
        Ok(LockAttempt::Held(self.snapshot()?))
    }

    /// Release the lock taken by [`LeaseStore::try_lock`], in one atomic push with: this
    /// run's lease when `admit`, else (when `wait`) its refreshed waiting note; its waiting
    /// note is removed when admitted. A push the remote rejects while the lock is still this
    /// run's is a refusal (an error), not a lost lock, so it cannot loop. A push that fails
    /// without an answer is checked against the remote: applied, it counts as done.
    pub fn commit(&mut self, admit: bool, wait: bool, now: i64) -> Result<Commit, LeaseError> {
        let Some(lock) = self.lock_id.clone() else {
            return Ok(Commit::LostLock);
        };
        let lease_name = format!("{LEASES}{}", self.run_id);
        let mut updates = vec![RefUpdate {
            name: LOCK_REF.to_string(),
            new: None,
            expect: Expect::Is(lock.clone()),
        }];
        let mut held = None;
        let mut waiting = self.waiting_id.clone();
        if admit {
            let id = self.note(NoteKind::Lease, now)?;
            // A run admitted again (a repair round) renews its own lease, whatever became
            // of it; a first admission creates it.
            let expect = if self.held.is_some() {
                Expect::Any
            } else {
                Expect::Absent
            };
            updates.push(RefUpdate {
                name: lease_name.clone(),
                new: Some(id.clone()),
                expect,
            });
            if let Some(update) = self.waiting_update() {
                updates.push(update);
            }
            waiting = None;
            held = Some(Held {
                name: lease_name,
                id,
            });
        } else if wait {
            let id = self.note(NoteKind::Waiting, now)?;
            updates.push(RefUpdate {
                name: self.waiting_name(),
                new: Some(id.clone()),
                expect: Expect::Any,
            });
            waiting = Some(id);
        }
        let pushed = match self.push("release the lock", &updates, true) {
            Ok(outcome) => outcome,
            // The answer may be lost after the remote applied the push. It is atomic, so
            // the lock gone and (when admitted) this run's new lease in place say it was.
            Err(e) => match self.snapshot() {
                Ok(snap)
                    if snap.lock.as_ref().is_none_or(|l| l.id != lock)
                        && held.as_ref().is_none_or(|h| {
                            snap.leases.iter().any(|l| l.name == h.name && l.id == h.id)
                        }) =>
                {
                    PushOutcome::Pushed
                }
                _ => return Err(e),
            },
        };
        match pushed {
            PushOutcome::Pushed => {
                self.lock_id = None;
                self.waiting_id = waiting;
                self.held.clone_from(&held);
                Ok(Commit::Done(held))
            }
            PushOutcome::Rejected { reason } => {
                let still_ours = self.snapshot()?.lock.is_some_and(|l| l.id == lock);
                if still_ours {
                    self.unlock();
                    Err(LeaseError::Refused {
                        remote: self.remote.clone(),
                        reason,
                    })
                } else {
                    Ok(Commit::LostLock)
                }
            }
        }
    }

    fn waiting_name(&self) -> String {
        format!("{WAITING}{}", self.run_id)
    }

    /// The deletion of this run's waiting note, when it has one (a deletion of a ref that
    /// does not exist is never sent: a remote may refuse it).
    fn waiting_update(&self) -> Option<RefUpdate> {
        self.waiting_id.as_ref().map(|_| RefUpdate {
            name: self.waiting_name(),
            new: None,
            expect: Expect::Any,
        })
    }

    /// Release the lock if this run holds it, writing nothing else (best effort: an
    /// interrupted decision). A lock left behind goes stale.
    pub fn unlock(&mut self) {
        if let Some(lock) = self.lock_id.take() {
            let _ = self.push(
                "release the lock",
                &[RefUpdate {
                    name: LOCK_REF.to_string(),
                    new: None,
                    expect: Expect::Is(lock),
                }],
                true,
            );
        }
    }

    /// Delete refs nobody holds any more, each only if unchanged (best effort).
    pub fn clean(&mut self, dead: &[Entry]) {
        let updates: Vec<RefUpdate> = dead
            .iter()
            .map(|e| RefUpdate {
                name: e.name.clone(),
                new: None,
                expect: Expect::Is(e.id.clone()),
            })
            .collect();
        let _ = self.push("clean up", &updates, false);
    }

    /// The lease this run holds, if it was admitted with one.
    pub fn held(&self) -> Option<&Held> {
        self.held.as_ref()
    }

    /// Give back the lease this run holds (and its waiting note): the run has ended. Also
    /// done when the store is dropped.
    pub fn release(&mut self) -> Result<(), LeaseError> {
        let Some(held) = self.held.take() else {
            self.withdraw();
            return Ok(());
        };
        let mut updates = vec![RefUpdate {
            name: held.name.clone(),
            new: None,
            expect: Expect::Is(held.id.clone()),
        }];
        updates.extend(self.waiting_update());
        self.waiting_id = None;
        self.push("release the lease", &updates, false).map(drop)
    }

    /// Remove this run's waiting note, if it has one (a run that stops waiting without being
    /// admitted). Best effort: a note left behind goes stale.
    pub fn withdraw(&mut self) {
        if let Some(update) = self.waiting_update() {
            self.waiting_id = None;
            let _ = self.push("withdraw the waiting note", &[update], false);
        }
    }
}

impl Drop for LeaseStore {
    fn drop(&mut self) {
        let _ = self.release();
        if let Ok(refs) = self.git.local_refs(&self.run_refs) {
            for r in refs {
                let _ = self.git.delete_ref(&r.name);
            }
        }
    }
}
