//! Wire types of the agent-tasks REST API (reference §3–§7), shared by the client and the
//! simulator. Responses tolerate unknown fields and unknown enum values: the API is a public
//! preview and must not crash the gate when it grows. Requests are exactly what is sent.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The eight documented task/session states, plus whatever GitHub adds later.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TaskState {
    Queued,
    InProgress,
    Completed,
    Failed,
    Idle,
    WaitingForUser,
    TimedOut,
    Cancelled,
    /// A state this version does not know: treated as "not finished", with a warning.
    Unknown(String),
}

impl TaskState {
    pub fn as_str(&self) -> &str {
        match self {
            TaskState::Queued => "queued",
            TaskState::InProgress => "in_progress",
            TaskState::Completed => "completed",
            TaskState::Failed => "failed",
            TaskState::Idle => "idle",
            TaskState::WaitingForUser => "waiting_for_user",
            TaskState::TimedOut => "timed_out",
            TaskState::Cancelled => "cancelled",
            TaskState::Unknown(s) => s,
        }
    }

    pub fn parse(s: &str) -> TaskState {
        match s {
            "queued" => TaskState::Queued,
            "in_progress" => TaskState::InProgress,
            "completed" => TaskState::Completed,
            "failed" => TaskState::Failed,
            "idle" => TaskState::Idle,
            "waiting_for_user" => TaskState::WaitingForUser,
            "timed_out" => TaskState::TimedOut,
            "cancelled" => TaskState::Cancelled,
            other => TaskState::Unknown(other.to_string()),
        }
    }

    /// `completed`, `failed`, `timed_out`, `cancelled`.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            TaskState::Completed | TaskState::Failed | TaskState::TimedOut | TaskState::Cancelled
        )
    }
}

impl std::fmt::Display for TaskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TaskState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TaskState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(TaskState::parse(&s))
    }
}

/// `{ "id": 123 }` objects (creator, owner, repository, user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct IdRef {
    pub id: i64,
}

/// POST body of "Start a task" (reference §3.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CreateTaskRequest {
    pub prompt: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub custom_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub create_pull_request: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub base_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub head_ref: Option<String>,
}

/// A task artifact. Both the documented shape (`type: pull|branch`) and the newer
/// `github_resource` shape are accepted; anything else is kept as raw JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    #[serde(default)]
    pub provider: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub data: serde_json::Value,
}

/// What an artifact points at, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactRef {
    /// A pull request: `id` (database id or number, the reference leaves it open) and the
    /// GraphQL node id when given.
    Pull {
        id: i64,
        global_id: Option<String>,
        number: Option<i64>,
    },
    /// A branch.
    Branch {
        head_ref: String,
        base_ref: Option<String>,
    },
    /// Anything else.
    Other,
}

impl Artifact {
    pub fn decode(&self) -> ArtifactRef {
        let d = &self.data;
        let sub = if self.kind == "github_resource" {
            d.get("type").and_then(|t| t.as_str()).unwrap_or("")
        } else {
            self.kind.as_str()
        };
        match sub {
            "pull" => match d.get("id").and_then(serde_json::Value::as_i64) {
                Some(id) => ArtifactRef::Pull {
                    id,
                    global_id: d
                        .get("global_id")
                        .and_then(|v| v.as_str())
                        .map(str::to_string),
                    number: d.get("number").and_then(serde_json::Value::as_i64),
                },
                None => ArtifactRef::Other,
            },
            "branch" => match d.get("head_ref").and_then(|v| v.as_str()) {
                Some(h) => ArtifactRef::Branch {
                    head_ref: h.to_string(),
                    base_ref: d
                        .get("base_ref")
                        .and_then(|v| v.as_str())
                        .map(str::to_string),
                },
                None => ArtifactRef::Other,
            },
            _ => ArtifactRef::Other,
        }
    }
}

/// Session usage (reference §4.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// `ai_credits` (whole nano units) or `premium_requests` (may be fractional).
    #[serde(rename = "type")]
    pub kind: String,
    pub amount: f64,
}

/// Session error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionError {
    #[serde(default)]
    pub message: String,
}

/// One session of a task (only on the single-task GETs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub state: TaskState,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<SessionError>,
}

/// A task (POST 201 body, list item, GET body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub state: TaskState,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator: Option<IdRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<IdRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<IdRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_count: Option<i32>,
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
    #[serde(default)]
    pub archived_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_agent: Option<serde_json::Value>,
    /// Only on the single-task GETs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<Vec<Session>>,
}

impl Task {
    /// The branch the agent worked on: the `branch` artifact, else the last session's
    /// `head_ref`.
    pub fn branch(&self) -> Option<String> {
        self.artifacts
            .iter()
            .find_map(|a| match a.decode() {
                ArtifactRef::Branch { head_ref, .. } => Some(head_ref),
                _ => None,
            })
            .or_else(|| {
                self.sessions
                    .as_ref()
                    .and_then(|s| s.iter().rev().find_map(|s| s.head_ref.clone()))
            })
    }

    /// The error message of the last session that failed, if any.
    pub fn session_error(&self) -> Option<String> {
        self.sessions.as_ref().and_then(|s| {
            s.iter()
                .rev()
                .find_map(|s| s.error.as_ref().map(|e| e.message.clone()))
        })
    }
}

/// List envelope (reference §4.1): not a bare array.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskList {
    pub tasks: Vec<Task>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_active_count: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_archived_count: Option<i32>,
}

/// One entry of a 422 `errors` array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationError {
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

/// Error body of every error status (reference §7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub message: String,
    #[serde(default)]
    pub documentation_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<ValidationError>>,
}

/// The few fields of a pull request the gate uses (`GET /repos/{o}/{r}/pulls`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    pub id: i64,
    pub number: i64,
    #[serde(default)]
    pub html_url: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub draft: bool,
    /// When it was opened (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    pub head: PullRef,
    pub base: PullRef,
}

/// `head`/`base` of a pull request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRef {
    #[serde(rename = "ref")]
    pub ref_name: String,
    pub sha: String,
}

/// `POST /repos/{o}/{r}/statuses/{sha}` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitStatus {
    /// `error`, `failure`, `pending` or `success`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

/// The author of an issue comment (`user` of `GET …/issues/{n}/comments`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CommentUser {
    #[serde(default)]
    pub id: i64,
    #[serde(default)]
    pub login: String,
    /// `User` or `Bot`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
}

/// Who a token acts as: GraphQL's `viewer` (a user for a personal access token, the app's
/// bot, e.g. `github-actions[bot]`, for an installation token such as `GITHUB_TOKEN`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    pub login: String,
    /// The id REST calls `id` (`user.id` of a comment).
    #[serde(
        rename = "databaseId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub database_id: Option<i64>,
}

impl Viewer {
    /// Whether `user` (a comment's author) is this viewer: the same id when both have one
    /// (logins can be renamed), else the same login.
    pub fn is(&self, user: &CommentUser) -> bool {
        match self.database_id {
            Some(id) if user.id != 0 => id == user.id,
            _ => !self.login.is_empty() && self.login.eq_ignore_ascii_case(&user.login),
        }
    }
}

/// An issue or pull-request comment as `GET …/issues/{n}/comments` and
/// `PATCH …/issues/comments/{id}` return it (the fields the gate reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueComment {
    pub id: i64,
    /// Absent or null on a comment whose body was removed.
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub html_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<CommentUser>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}
