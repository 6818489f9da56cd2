//! The simulator's memory: tasks and their sessions, pull requests, commit statuses,
//! comments, labels, rate-limit buckets, per-endpoint request counters and the request log;
//! and the JSON rendering of tasks with the wire types of [`crate::adapters::github::types`]. Pure
//! data behind one mutex: no HTTP, no git, no timers.

use std::collections::{BTreeMap, HashMap, VecDeque};

use jiff::Timestamp;
use serde_json::{Map, Value};

use super::route::Endpoint;
use crate::adapters::github::types::{
    Artifact, IdRef, PullRef, PullRequest, Session, SessionError, Task, TaskState, Usage,
};

/// One request the simulator received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    /// The raw path, as sent.
    pub path: String,
    /// The raw query string (without `?`), empty when none.
    pub query: String,
    /// The status answered; `None` when the connection was dropped without a response
    /// (or the response is still being prepared).
    pub status: Option<u16>,
    /// When it arrived.
    pub at: Timestamp,
    /// The endpoint it matched, if any.
    pub endpoint: Option<Endpoint>,
    /// The `x-github-request-id` sent back.
    pub request_id: String,
    /// The request body (lossy UTF-8, capped at 64 KiB).
    pub body: String,
    /// When the answer was handed to the connection; `None` when the connection was
    /// dropped (or the client gave up first). With `at`, what a test needs to check that
    /// no request came before an announced `Retry-After` or rate-limit reset.
    pub answered_at: Option<Timestamp>,
    /// The headers of the answer (names in lower case), empty when there was none.
    pub response_headers: Vec<(String, String)>,
    /// The user its token stands for (as [`user_id_for_token`] maps it), when it had one:
    /// tells apart the runs of a batch that each use their own token.
    pub user: Option<i64>,
}

/// A commit status posted to the simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedStatus {
    pub owner: String,
    pub repo: String,
    pub sha: String,
    pub status: crate::adapters::github::types::CommitStatus,
}

/// An issue or pull-request comment posted to the simulator (its current body, after
/// any `PATCH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedComment {
    pub owner: String,
    pub repo: String,
    pub issue_number: u64,
    pub body: String,
    /// The comment id (`…/issues/comments/{id}`).
    pub id: i64,
    /// The user who posted it (`user_id_for_token` of the token).
    pub user_id: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// How many times it was edited with `PATCH`.
    pub edits: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct SimSession {
    pub id: String,
    pub state: TaskState,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub completed_at: Option<Timestamp>,
    pub prompt: String,
    pub head_ref: String,
    pub base_ref: String,
    pub model: Option<String>,
    pub usage: Option<Usage>,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct SimTask {
    pub id: String,
    pub owner: String,
    pub repo: String,
    pub creator_id: i64,
    pub name: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub archived_at: Option<Timestamp>,
    pub custom_agent: Option<String>,
    pub artifacts: Vec<Artifact>,
    pub sessions: Vec<SimSession>,
    pub create_pull_request: bool,
    pub extra_fields: Map<String, Value>,
}

impl SimTask {
    pub fn repo_key(&self) -> String {
        repo_key(&self.owner, &self.repo)
    }

    pub fn state(&self) -> TaskState {
        self.sessions
            .last()
            .map_or(TaskState::Queued, |s| s.state.clone())
    }

    pub fn branch(&self) -> &str {
        self.sessions.last().map_or("", |s| s.head_ref.as_str())
    }

    /// Bump `updated_at` (strictly monotonic, second precision) and return it.
    pub fn touch(&mut self) -> Timestamp {
        let t = next_after(self.updated_at);
        self.updated_at = t;
        if let Some(s) = self.sessions.last_mut() {
            s.updated_at = t;
        }
        t
    }

    /// Move the current session to `state`; terminal states set `completed_at`.
    pub fn transition(&mut self, state: TaskState) {
        let t = self.touch();
        if let Some(s) = self.sessions.last_mut() {
            if state.is_final() {
                s.completed_at = Some(t);
            }
            s.state = state;
        }
    }

    /// Render with the wire types; `sessions` only on single-task GETs. Extra fields of the
    /// scenario are merged in, and whole `ai_credits` amounts are written as integers.
    pub fn to_json(&self, base_url: &str, with_sessions: bool) -> Value {
        let sessions =
            with_sessions.then(|| self.sessions.iter().map(|s| self.session(s)).collect());
        let task = Task {
            id: self.id.clone(),
            state: self.state(),
            created_at: ts(self.created_at),
            url: Some(format!(
                "{base_url}/agents/repos/{}/{}/tasks/{}",
                self.owner, self.repo, self.id
            )),
            html_url: Some(format!(
                "{base_url}/{}/{}/copilot/tasks/{}",
                self.owner, self.repo, self.id
            )),
            name: Some(self.name.clone()),
            creator: Some(IdRef {
                id: self.creator_id,
            }),
            creator_type: Some("user".to_string()),
            owner: Some(IdRef {
                id: stable_id(&self.owner.to_ascii_lowercase(), 1_000_000),
            }),
            repository: Some(IdRef {
                id: stable_id(&self.repo_key(), 100_000_000),
            }),
            session_count: Some(i32::try_from(self.sessions.len()).unwrap_or(i32::MAX)),
            artifacts: self.artifacts.clone(),
            archived_at: self.archived_at.map(ts),
            updated_at: Some(ts(self.updated_at)),
            custom_agent: self
                .custom_agent
                .as_ref()
                .map(|c| serde_json::json!({ "id": c })),
            sessions,
        };
        let mut v = serde_json::to_value(task).unwrap_or(Value::Null);
        if let Some(obj) = v.as_object_mut() {
            if let Some(Value::Array(ss)) = obj.get_mut("sessions") {
                for s in ss {
                    integer_amount(s);
                }
            }
            for (k, x) in &self.extra_fields {
                obj.insert(k.clone(), x.clone());
            }
        }
        v
    }

    fn session(&self, s: &SimSession) -> Session {
        Session {
            id: s.id.clone(),
            state: s.state.clone(),
            created_at: ts(s.created_at),
            name: Some(self.name.clone()),
            task_id: Some(self.id.clone()),
            updated_at: Some(ts(s.updated_at)),
            completed_at: s.completed_at.map(ts),
            prompt: Some(s.prompt.clone()),
            head_ref: Some(s.head_ref.clone()),
            base_ref: Some(s.base_ref.clone()),
            model: s.model.clone(),
            usage: s.usage.clone(),
            error: s.error.clone().map(|message| SessionError { message }),
        }
    }
}

/// `usage.amount` of `ai_credits` is a whole number of nano units: write it as an integer.
fn integer_amount(session: &mut Value) {
    let Some(usage) = session.get_mut("usage").and_then(Value::as_object_mut) else {
        return;
    };
    let Some(amount) = usage.get("amount").and_then(Value::as_f64) else {
        return;
    };
    #[allow(
        clippy::cast_possible_truncation,
        reason = "checked: whole and within i64 range"
    )]
    if amount.fract() == 0.0 && amount.abs() < 9.0e18 {
        usage.insert("amount".to_string(), Value::from(amount as i64));
    }
}

/// A pull request the simulated agent opened.
#[derive(Debug, Clone)]
pub(crate) struct SimPull {
    pub number: u64,
    pub id: i64,
    pub owner: String,
    pub repo: String,
    pub head_ref: String,
    pub base_ref: String,
    pub head_sha: String,
    pub base_sha: String,
    /// When the agent opened it.
    pub created_at: Timestamp,
    /// Merged or closed (by [`crate::sim::SimHandle::close_pull`]).
    pub closed: bool,
}

impl SimPull {
    pub fn global_id(&self) -> String {
        format!("PR_kwSIM{:010}", self.id)
    }

    pub fn to_wire(&self, base_url: &str) -> PullRequest {
        PullRequest {
            id: self.id,
            number: i64::try_from(self.number).unwrap_or(i64::MAX),
            html_url: format!(
                "{base_url}/{}/{}/pull/{}",
                self.owner, self.repo, self.number
            ),
            state: if self.closed { "closed" } else { "open" }.to_string(),
            draft: true,
            created_at: Some(self.created_at.to_string()),
            head: PullRef {
                ref_name: self.head_ref.clone(),
                sha: self.head_sha.clone(),
            },
            base: PullRef {
                ref_name: self.base_ref.clone(),
                sha: self.base_sha.clone(),
            },
        }
    }
}

/// A primary rate-limit window of one user.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bucket {
    pub used: u32,
    pub resets_at: tokio::time::Instant,
    /// `x-ratelimit-reset`: epoch seconds.
    pub reset_epoch: i64,
}

/// Everything the simulator remembers.
#[derive(Debug, Default)]
pub(crate) struct Store {
    pub tasks: Vec<SimTask>,
    pub log: Vec<LoggedRequest>,
    pub counters: HashMap<Endpoint, u32>,
    pub buckets: HashMap<i64, Bucket>,
    pub creations: HashMap<i64, VecDeque<tokio::time::Instant>>,
    /// Next order-matched task script.
    pub order_cursor: usize,
    pub pulls: Vec<SimPull>,
    pub statuses: Vec<RecordedStatus>,
    pub comments: Vec<RecordedComment>,
    pub labels: BTreeMap<(String, u64), Vec<String>>,
    /// Branch names handed out (so two tasks never race for one).
    pub reserved_branches: Vec<(String, String)>,
    pub next_number: u64,
    pub next_id: i64,
    pub agents: HashMap<String, tokio::task::AbortHandle>,
    /// The most tasks each repository (`repo_key`) had in an unfinished state at once.
    pub peak_running: HashMap<String, usize>,
    /// Commits the agent pushed, on which the scenario's CI runs.
    pub ci_heads: Vec<CiHead>,
}

/// A commit the simulated agent pushed: its CI starts then (`ci:` of the scenario).
#[derive(Debug, Clone)]
pub(crate) struct CiHead {
    pub repo: String,
    pub sha: String,
    pub branch: String,
    pub pushed: tokio::time::Instant,
    pub pushed_wall: Timestamp,
    /// When a person approved its held workflow runs (the scenario's `approved-after`, or
    /// a test through the handle).
    pub approved: Option<tokio::time::Instant>,
}

impl Store {
    /// Record the number of unfinished tasks of `repo` (a `repo_key`) after a change of
    /// state, keeping the peak.
    pub fn note_running(&mut self, repo: &str) {
        let now = self
            .tasks
            .iter()
            .filter(|t| t.repo_key() == repo && !t.state().is_final())
            .count();
        let peak = self.peak_running.entry(repo.to_string()).or_default();
        *peak = (*peak).max(now);
    }

    pub fn task_mut(&mut self, id: &str) -> Option<&mut SimTask> {
        self.tasks.iter_mut().find(|t| t.id == id)
    }

    pub fn next_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }
}

/// `owner/repo`, lowercased (GitHub compares them case-insensitively).
pub fn repo_key(owner: &str, repo: &str) -> String {
    format!(
        "{}/{}",
        owner.to_ascii_lowercase(),
        repo.to_ascii_lowercase()
    )
}

/// RFC 3339 at second precision, as GitHub writes it.
pub fn ts(t: Timestamp) -> String {
    Timestamp::from_second(t.as_second())
        .unwrap_or(t)
        .to_string()
}

/// Now at second precision, but strictly after `prev`.
pub fn next_after(prev: Timestamp) -> Timestamp {
    let now = Timestamp::now().as_second();
    Timestamp::from_second(now.max(prev.as_second() + 1)).unwrap_or(prev)
}

/// Now at second precision.
pub fn now_second() -> Timestamp {
    Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_else(|_| Timestamp::now())
}

/// A deterministic positive id for a name (FNV-1a), at least `floor`.
pub fn stable_id(name: &str, floor: i64) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    floor + i64::try_from(h % 100_000_000).unwrap_or(0)
}

/// The user id a token authenticates as: deterministic, so tests can compute it.
pub fn user_id_for_token(token: &str) -> i64 {
    stable_id(token, 1)
}
