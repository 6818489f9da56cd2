//! What the admission refs say (pure): the notes their commits carry ([`Note`]), the refs
//! read at one moment ([`Snapshot`]), how old they may grow ([`LeaseTimes`]), and who holds
//! the slots ([`occupancy`]). No git, no clock: the store (`super`) reads the refs and says
//! what time it is.

use serde::{Deserialize, Serialize};
use std::time::Duration;

use crate::adapters::git::RemoteRef;
use crate::core::manifest::Priority;

use super::{LEASES, LOCK_REF, WAITING};

/// How old the refs may grow before they are presumed abandoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTimes {
    /// A lock older than this belongs to a run that died while deciding.
    pub lock_stale: Duration,
    /// A lease counts for this long even when no running task carries its key (the time
    /// between admission and the task appearing in the list).
    pub lease_grace: Duration,
    /// A waiting note counts for this long after its run's last check, plus three of that
    /// run's check intervals.
    pub waiting_grace: Duration,
}

impl Default for LeaseTimes {
    fn default() -> LeaseTimes {
        LeaseTimes {
            lock_stale: Duration::from_mins(1),
            lease_grace: Duration::from_mins(2),
            waiting_grace: Duration::from_secs(30),
        }
    }
}

/// What a ref is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoteKind {
    Lock,
    Lease,
    Waiting,
}

/// The message of an admission ref's commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    #[serde(rename = "agent-gate")]
    pub kind: NoteKind,
    /// The writing run's task key.
    pub key: String,
    /// `high`, `normal` or `low`.
    pub priority: String,
    /// When it was written, in seconds since the Unix epoch.
    pub at: i64,
    /// The writer's interval between checks, in seconds (waiting notes).
    #[serde(default)]
    pub poll_s: u64,
}

/// One admission ref as read from the remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its name on the remote.
    pub name: String,
    /// The commit it points at.
    pub id: String,
    /// Its note; `None` when the message is not one (it is then presumed stale).
    pub note: Option<Note>,
}

impl Entry {
    fn from_ref(r: RemoteRef) -> Entry {
        Entry {
            note: serde_json::from_str(&r.subject).ok(),
            name: r.name,
            id: r.id,
        }
    }

    /// Seconds since it was written (`None` without a readable note).
    pub(super) fn age(&self, now: i64) -> Option<u64> {
        self.note
            .as_ref()
            .map(|n| u64::try_from(now.saturating_sub(n.at)).unwrap_or(0))
    }
}

/// The admission refs at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub lock: Option<Entry>,
    pub leases: Vec<Entry>,
    pub waiting: Vec<Entry>,
}

impl Snapshot {
    pub(super) fn from_refs(refs: Vec<RemoteRef>) -> Snapshot {
        let mut snap = Snapshot::default();
        for r in refs {
            if r.name == LOCK_REF {
                snap.lock = Some(Entry::from_ref(r));
            } else if r.name.starts_with(LEASES) {
                snap.leases.push(Entry::from_ref(r));
            } else if r.name.starts_with(WAITING) {
                snap.waiting.push(Entry::from_ref(r));
            }
        }
        snap
    }
}

/// Who holds the slots, as [`occupancy`] sees a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Occupancy {
    /// Running agent-gate tasks plus admitted runs whose task is not running yet.
    pub running: u32,
    /// Runs of higher priority waiting for a slot.
    pub ahead: u32,
    /// Leases and waiting notes nobody holds any more (to delete).
    pub dead: Vec<Entry>,
}

fn rank(priority: &str) -> u8 {
    match Priority::parse(priority) {
        Some(Priority::High) => 2,
        Some(Priority::Normal) | None => 1,
        Some(Priority::Low) => 0,
    }
}

/// Who occupies the slots: `running_keys` are the keys of the running agent-gate tasks (one
/// per task, this run's own excluded); a lease adds a slot unless its key's task is among
/// them, and counts while young or while that task runs. Waiting notes of other runs with a
/// higher priority than `priority` are `ahead`. This run's own refs (key `own_key`) never
/// count, and are dead once stale like any other.
pub fn occupancy(
    snap: &Snapshot,
    running_keys: &[String],
    own_key: &str,
    priority: Priority,
    now: i64,
    times: LeaseTimes,
) -> Occupancy {
    let mut occ = Occupancy {
        running: u32::try_from(running_keys.len()).unwrap_or(u32::MAX),
        ..Occupancy::default()
    };
    let mut counted: Vec<&str> = running_keys.iter().map(String::as_str).collect();
    for lease in &snap.leases {
        let running = lease
            .note
            .as_ref()
            .is_some_and(|n| running_keys.contains(&n.key));
        let young = lease
            .age(now)
            .is_some_and(|a| a < times.lease_grace.as_secs());
        let Some(note) = lease.note.as_ref().filter(|_| running || young) else {
            occ.dead.push(lease.clone());
            continue;
        };
        if note.key != own_key && !counted.contains(&note.key.as_str()) {
            counted.push(&note.key);
            occ.running = occ.running.saturating_add(1);
        }
    }
    let mine = rank(priority.as_str());
    let mut ahead: Vec<&str> = Vec::new();
    for waiting in &snap.waiting {
        let fresh = waiting.note.as_ref().is_some_and(|n| {
            let limit = times.waiting_grace.as_secs() + 3 * n.poll_s;
            waiting.age(now).is_some_and(|a| a < limit)
        });
        let Some(note) = waiting.note.as_ref().filter(|_| fresh) else {
            occ.dead.push(waiting.clone());
            continue;
        };
        if note.key != own_key && rank(&note.priority) > mine && !ahead.contains(&note.key.as_str())
        {
            ahead.push(&note.key);
            occ.ahead = occ.ahead.saturating_add(1);
        }
    }
    occ
}
