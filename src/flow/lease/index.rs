//! The task index (issue 21): which agent task carries which task key, kept on the
//! repository's remote beside the admission refs, in `refs/agent-gate/tasks/<hash of the
//! key>` (a parentless commit whose one-line message is a JSON [`TaskNote`]). GitHub's task
//! list shows no prompt, so without it a run could tell agent-gate's tasks (and its own
//! task, on a re-run) only by reading every task — a request per task per run, which grows
//! with the square of a night's tasks. With it a run reads the index once (git, no API
//! request) and reads only the tasks it does not know: people's tasks, and tasks whose run
//! died before recording them. The run that creates a task (or finds it by reading) records
//! it; entries older than [`INDEX_RETENTION`] are deleted by the next run that reads them.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::adapters::git::{Expect, RefUpdate};
use crate::flow::budget::TaskSpend;

use super::{LeaseError, LeaseStore};

/// Where the index lives on the remote.
pub const TASKS_PREFIX: &str = "refs/agent-gate/tasks/";
/// How long an entry is kept: longer than a re-run looks back for its task.
pub const INDEX_RETENTION: Duration = Duration::from_hours(24 * 8);

/// The message of an index ref's commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskNote {
    /// Always `task`.
    #[serde(rename = "agent-gate")]
    pub kind: String,
    /// The task key.
    pub key: String,
    /// The agent task's id.
    pub id: String,
    /// The pull request the task opened, once the run has seen it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pr: Option<i64>,
    /// When it was recorded, in seconds since the Unix epoch.
    pub at: i64,
    /// What the task's agent-gate sessions cost, once the run saw them end (the daily
    /// budget then counts the task without reading it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spent: Option<TaskSpend>,
}

/// The index as read at one moment: task key ↔ task id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownTasks {
    id_for_key: HashMap<String, String>,
    key_for_id: HashMap<String, String>,
    /// Pull request number → task key.
    key_for_pull: HashMap<i64, String>,
    /// Task id → what its sessions cost, where recorded.
    spend_for_id: HashMap<String, TaskSpend>,
}

impl KnownTasks {
    /// Record one pair (a later pair for the same key replaces the earlier), with the pull
    /// request the task opened when known.
    pub fn insert(&mut self, key: &str, id: &str, pr: Option<i64>) {
        if let Some(old) = self.id_for_key.insert(key.to_string(), id.to_string()) {
            self.key_for_id.remove(&old);
        }
        self.key_for_id.insert(id.to_string(), key.to_string());
        if let Some(pr) = pr {
            self.key_for_pull.insert(pr, key.to_string());
        }
    }

    /// The task key whose task opened pull request `number`: agent-gate's pull requests.
    /// Record what task `id`'s sessions cost.
    pub fn set_spend(&mut self, id: &str, spend: TaskSpend) {
        self.spend_for_id.insert(id.to_string(), spend);
    }

    /// What the recorded tasks' sessions cost, by task id.
    pub fn spends(&self) -> &HashMap<String, TaskSpend> {
        &self.spend_for_id
    }

    pub fn key_of_pull(&self, number: i64) -> Option<&str> {
        self.key_for_pull.get(&number).map(String::as_str)
    }

    /// The task recorded for `key`.
    pub fn id_of(&self, key: &str) -> Option<&str> {
        self.id_for_key.get(key).map(String::as_str)
    }

    /// The key recorded for task `id`.
    pub fn key_of(&self, id: &str) -> Option<&str> {
        self.key_for_id.get(id).map(String::as_str)
    }

    /// Every known task as `(id, key)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.key_for_id
            .iter()
            .map(|(id, key)| (id.as_str(), key.as_str()))
    }

    /// How many tasks are known.
    pub fn len(&self) -> usize {
        self.key_for_id.len()
    }

    /// Whether no task is known.
    pub fn is_empty(&self) -> bool {
        self.key_for_id.is_empty()
    }
}

/// The index ref of `key`: a hash, since a task key may hold characters a ref name cannot.
pub fn index_ref(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut name = TASKS_PREFIX.to_string();
    for b in digest.iter().take(20) {
        let _ = write!(name, "{b:02x}");
    }
    name
}

impl LeaseStore {
    /// Read the task index (one fetch of `refs/agent-gate/tasks/*`); entries older than
    /// [`INDEX_RETENTION`] or unreadable are deleted (best effort) and not returned.
    pub fn known_tasks(&mut self, now: i64) -> Result<KnownTasks, LeaseError> {
        let local = format!("{}tasks/", self.run_refs);
        let refs = self
            .remote_op("read", |git, remote, token| {
                git.mirror_refs(remote, TASKS_PREFIX, &local, token)
            })
            .map_err(|e| self.index_error("read", e))?;
        let mut known = KnownTasks::default();
        let mut stale = Vec::new();
        let keep = i64::try_from(INDEX_RETENTION.as_secs()).unwrap_or(i64::MAX);
        for r in refs {
            match serde_json::from_str::<TaskNote>(&r.subject) {
                Ok(note)
                    if note.kind == "task"
                        && now.saturating_sub(note.at) < keep
                        && index_ref(&note.key) == r.name =>
                {
                    known.insert(&note.key, &note.id, note.pr);
                    if let Some(spend) = note.spent {
                        known.set_spend(&note.id, spend);
                    }
                }
                _ => stale.push(RefUpdate {
                    name: r.name,
                    new: None,
                    expect: Expect::Is(r.id),
                }),
            }
        }
        if !stale.is_empty() {
            let _ = self.push("clean up", &stale, false);
        }
        Ok(known)
    }

    /// A git failure of the admission refs' plumbing, said of the index.
    fn index_error(&self, action: &'static str, e: LeaseError) -> LeaseError {
        match e {
            LeaseError::Git { source, .. } => LeaseError::Index {
                action,
                remote: self.remote.clone(),
                source,
            },
            other => other,
        }
    }

    /// Record that this run's task key is carried by task `id` (which opened pull request
    /// `pr`, once known: how review capacity tells agent-gate's pull requests), and what its
    /// sessions cost once they ended.
    pub fn record_task(
        &mut self,
        id: &str,
        pr: Option<i64>,
        spent: Option<TaskSpend>,
        now: i64,
    ) -> Result<(), LeaseError> {
        let note = TaskNote {
            kind: "task".to_string(),
            key: self.key.clone(),
            id: id.to_string(),
            pr,
            at: now,
            spent,
        };
        let text = serde_json::to_string(&note).unwrap_or_default();
        let commit = self
            .git
            .note_commit(&text)
            .map_err(|source| LeaseError::Index {
                action: "write a note for",
                remote: self.remote.clone(),
                source: Box::new(source),
            })?;
        let update = RefUpdate {
            name: index_ref(&self.key),
            new: Some(commit),
            expect: Expect::Any,
        };
        match self.push("push", &[update], false) {
            Ok(crate::adapters::git::PushOutcome::Pushed) => Ok(()),
            Ok(crate::adapters::git::PushOutcome::Rejected { reason }) => {
                Err(LeaseError::IndexRefused {
                    remote: self.remote.clone(),
                    reason,
                })
            }
            Err(e) => Err(self.index_error("write to", e)),
        }
    }
}
