//! Counting the running agent-gate tasks of a repository from its task list: which states
//! hold a slot ([`RUNNING_STATES`]), and [`RunningCounter`], which tells agent-gate's tasks
//! (by the idempotency marker in a prompt) from others and this run's own task, remembering
//! each task id so repeated checks GET only new tasks. It does not decide or wait (that is
//! [`admit`](super::admit)) and knows nothing of the admission lock or leases.

use std::collections::HashMap;

use crate::adapters::github::types::{Task, TaskState};
use crate::adapters::github::{ApiError, ListQuery};
use crate::core::prompt::MARKER_PREFIX;
use crate::flow::TaskApi;

/// The task states that hold a slot.
pub const RUNNING_STATES: [TaskState; 4] = [
    TaskState::Queued,
    TaskState::InProgress,
    TaskState::Idle,
    TaskState::WaitingForUser,
];

/// What a task in the list is, for counting.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// Carries this run's own marker.
    Own,
    /// Started by agent-gate with this (other) key.
    Gate(String),
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
        } else {
            crate::core::prompt::find_key(text).map(|k| Kind::Gate(k.to_string()))
        }
    }

    /// Tell the counter what the task index says (task id → key), so those tasks are never
    /// read: `own_key`'s task is this run's own, every other one agent-gate's.
    #[must_use]
    pub fn with_known<'a>(
        mut self,
        known: impl IntoIterator<Item = (&'a str, &'a str)>,
        own_key: &str,
    ) -> RunningCounter {
        self.learn(known, own_key);
        self
    }

    /// [`RunningCounter::with_known`] on a counter in use (the index read again).
    pub fn learn<'a>(
        &mut self,
        known: impl IntoIterator<Item = (&'a str, &'a str)>,
        own_key: &str,
    ) {
        for (id, key) in known {
            let kind = if key == own_key {
                Kind::Own
            } else {
                Kind::Gate(key.to_string())
            };
            self.kinds.insert(id.to_string(), kind);
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
    pub async fn count(&mut self, client: &impl TaskApi) -> Result<u32, ApiError> {
        let keys = self.running_keys(client).await?;
        Ok(u32::try_from(keys.len()).unwrap_or(u32::MAX))
    }

    /// The task keys of the agent-gate tasks in a running state (one per task), this run's
    /// excluded.
    pub async fn running_keys(&mut self, client: &impl TaskApi) -> Result<Vec<String>, ApiError> {
        let list = client
            .list_tasks(&ListQuery {
                state: RUNNING_STATES.to_vec(),
                per_page: Some(100),
                max_pages: Some(10),
                ..ListQuery::default()
            })
            .await?;
        let mut running = Vec::new();
        for task in list
            .tasks
            .iter()
            .filter(|t| RUNNING_STATES.contains(&t.state))
        {
            let kind = if let Some(k) = self.kinds.get(&task.id) {
                k.clone()
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
                self.kinds.insert(task.id.clone(), kind.clone());
                kind
            };
            if let Kind::Gate(key) = kind {
                running.push(key);
            }
        }
        Ok(running)
    }
}

impl From<&str> for RunningCounter {
    /// [`RunningCounter::new`]: nothing known yet.
    fn from(own_marker: &str) -> RunningCounter {
        RunningCounter::new(own_marker)
    }
}

impl From<&String> for RunningCounter {
    fn from(own_marker: &String) -> RunningCounter {
        RunningCounter::new(own_marker)
    }
}
