//! Scenarios: YAML scripts for the simulated agent and the faults the server injects
//! (DESIGN §6). Parsed into raw serde types (`raw`: `deny_unknown_fields`, errors with
//! line and column), then compiled (`compile`) into [`Scenario`], which the server and
//! agent read. This file owns the compiled types, [`ScenarioError`] and the entry points
//! [`Scenario::load`] and [`Scenario::from_yaml`]; it does not validate (the compiler
//! does) nor run anything. Files a scenario refers to (`from-file`, `patch-file`) are read
//! at compile time, relative to the scenario file; no other I/O happens here.

mod compile;
mod raw;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::route::Endpoint;
use crate::adapters::github::types::Usage;
use compile::Compiler;
use raw::RawScenario;
pub use raw::parse_duration;

/// A compiled scenario. `Scenario::default()` is the behaviour with no scenario file.
#[derive(Debug, Clone, Default)]
pub struct Scenario {
    /// Scripts for tasks, matched by `match` (substring of the prompt) or by order.
    pub tasks: Vec<TaskScript>,
    /// The script for every task nothing else matched.
    pub default_task: TaskScript,
    /// Injected faults.
    pub faults: Vec<Fault>,
    /// The primary rate limit of each user.
    pub rate_limit: RateLimit,
    /// A secondary (content-creation) limit on writes: task creations, statuses, comments.
    pub creation_limits: Vec<CreationLimit>,
    /// API behaviour switches.
    pub api: ApiOptions,
    /// The repository's own CI on every commit the agent pushes (`ci:`).
    pub ci: CiScript,
}

/// The repository's own CI, as the simulator plays it (`ci:` of a scenario): check runs and
/// commit statuses that start when the agent pushes a commit, workflow runs held at
/// "Approve and run workflows" while approval is required, the base branch's required
/// checks and the cloud-agent configuration. Durations are divided by the time scale;
/// GitHub's timestamps in the answers are in simulated time (push + scripted offsets).
#[derive(Debug, Clone)]
pub struct CiScript {
    /// `require_actions_workflow_approval` of the cloud-agent configuration (GitHub's
    /// default: true). While true, runs of a `workflow` are held until approved.
    pub require_approval: bool,
    /// A person approves held runs this long after the push; `None`: nobody does (a test
    /// can still approve through the handle).
    pub approved_after: Option<Duration>,
    /// Required status checks from the rules for every branch (a `required_status_checks`
    /// rule).
    pub required: Vec<String>,
    /// Required contexts of classic branch protection; `None`: the branch is not protected
    /// (404).
    pub protection: Option<Vec<String>>,
    /// Branch protection answers 403 (a token without administration access).
    pub protection_forbidden: bool,
    pub checks: Vec<CiCheck>,
    pub statuses: Vec<CiStatus>,
}

impl Default for CiScript {
    fn default() -> Self {
        CiScript {
            require_approval: true,
            approved_after: None,
            required: Vec::new(),
            protection: None,
            protection_forbidden: false,
            checks: Vec::new(),
            statuses: Vec::new(),
        }
    }
}

/// One check run created on each pushed commit.
#[derive(Debug, Clone)]
pub struct CiCheck {
    pub name: String,
    /// The workflow whose job it is (held for approval with it); `None`: a GitHub App's
    /// check, never held.
    pub workflow: Option<String>,
    /// Time `queued` after it starts.
    pub queued: Duration,
    /// Time `in_progress`, then `completed`.
    pub duration: Duration,
    /// The conclusion; `None`: it never completes.
    pub conclusion: Option<String>,
    pub title: Option<String>,
    pub summary: Option<String>,
}

/// One commit status set on each pushed commit (`pending` until it ends).
#[derive(Debug, Clone)]
pub struct CiStatus {
    pub context: String,
    /// Time until the status is first set (`pending`).
    pub after: Duration,
    /// Time `pending`, then `state`.
    pub duration: Duration,
    /// `success`, `failure` or `error`; `None`: it stays pending.
    pub state: Option<String>,
    pub description: Option<String>,
}

/// How the simulated agent handles one task session.
#[derive(Debug, Clone)]
pub struct TaskScript {
    /// Matches a prompt containing this text; `None` = matched by order.
    pub matches: Option<String>,
    /// Time spent `queued` (before the time scale divides it).
    pub queued: Duration,
    /// Time spent working (`in_progress`, or `working_state`).
    pub work: Duration,
    /// File operations of the commit; `None` = the default (write `agent-gate-sim.txt`
    /// with the prompt) for `completed`/`idle`/`waiting_for_user`, nothing otherwise.
    /// `Some(vec![])` = no change at all.
    pub files: Option<Vec<FileOp>>,
    /// The state the session ends in.
    pub final_state: FinalState,
    /// Session `error.message` (default for `failed`: a generic message).
    pub error: Option<String>,
    /// Session usage (default: 1 AI credit = 1e9 nano units).
    pub usage: Option<Usage>,
    /// Which pull artifact shape to emit.
    pub pull_artifact: PullArtifact,
    /// The state reported while working (default `in_progress`; any string, so unknown
    /// states can be simulated).
    pub working_state: String,
    /// Commit message (default: the task name).
    pub commit_message: Option<String>,
    /// Extra fields merged into every JSON rendering of the task (unknown-field tolerance).
    pub extra_fields: serde_json::Map<String, serde_json::Value>,
}

impl Default for TaskScript {
    fn default() -> Self {
        TaskScript {
            matches: None,
            queued: Duration::from_secs(2),
            work: Duration::from_secs(5),
            files: None,
            final_state: FinalState::Completed,
            error: None,
            usage: None,
            pull_artifact: PullArtifact::Pull,
            working_state: "in_progress".to_string(),
            commit_message: None,
            extra_fields: serde_json::Map::new(),
        }
    }
}

/// The state a session ends in. `Never` stays in the working state forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinalState {
    Completed,
    Failed,
    TimedOut,
    Cancelled,
    Idle,
    WaitingForUser,
    Never,
}

/// The shape of the pull-request artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PullArtifact {
    /// `{provider: github, type: pull, data: {id, global_id}}` (documented).
    Pull,
    /// `{provider: github, type: github_resource, data: {type: pull, id, global_id}}`.
    GithubResource,
    /// No pull artifact (the branch artifact is still added).
    None,
}

/// One change the simulated agent commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOp {
    /// Create or overwrite a regular file.
    Write { path: String, content: Vec<u8> },
    /// Apply a unified diff (`git apply --cached`); `file` names it in errors.
    Patch { file: PathBuf, patch: Vec<u8> },
    /// Remove a file, or every file under a directory.
    Delete { path: String },
    /// Move a file or a directory.
    Rename { from: String, to: String },
    /// Set or clear the executable bit of a file.
    Mode { path: String, executable: bool },
    /// Create a symbolic link.
    Symlink { path: String, target: String },
}

/// An injected fault: on requests `nth..nth+count` (1-based, counted per endpoint on
/// arrival) of `endpoint`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub endpoint: Endpoint,
    pub nth: u32,
    pub count: u32,
    /// Before the server acts (nothing happens) or after (e.g. the task is created, then
    /// the response fails).
    pub when: When,
    /// Sleep this long (real time, not scaled) before answering.
    pub delay: Option<Duration>,
    pub action: FaultAction,
    /// Line of the fault in the scenario file (0 when built in code).
    pub line: u64,
}

impl Fault {
    /// Whether this fault applies to the `n`-th request (1-based) of `endpoint`.
    pub fn applies(&self, endpoint: Endpoint, n: u32) -> bool {
        self.endpoint == endpoint && n >= self.nth && n - self.nth < self.count
    }
}

/// Before or after the server acted on the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    Before,
    After,
}

/// What a fault does to the response.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// Only the delay.
    DelayOnly,
    /// Answer with this status and a GitHub error body.
    Status {
        status: u16,
        message: Option<String>,
    },
    /// Close the connection without a response.
    Drop,
    /// Send the real status with a broken body.
    Body(BodyFault),
    /// A secondary rate limit response (403 or 429, optional `retry-after`).
    SecondaryRateLimit {
        status: u16,
        retry_after: Option<Duration>,
    },
}

/// How a body is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyFault {
    /// The first half of the real body.
    Truncated,
    /// Not JSON at all.
    Malformed,
    /// An empty body.
    Empty,
}

/// The primary rate limit: `limit` requests per `window`, then `status` with remaining 0
/// until the window resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: u32,
    pub window: Duration,
    pub status: u16,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            limit: 5000,
            window: Duration::from_hours(1),
            status: 403,
        }
    }
}

/// A content-creation limit on writes (POST, PATCH, PUT, DELETE) per user: at most `max`
/// per `window`, then a
/// secondary-rate-limit response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreationLimit {
    pub max: u32,
    pub window: Duration,
    pub status: u16,
    pub retry_after: Option<Duration>,
}

/// What to do with a `per_page` outside 1–100 (real behaviour unverified).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PerPagePolicy {
    Clamp,
    Reject,
}

/// What a pull artifact's `data.id` holds (the reference leaves it open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PullId {
    DatabaseId,
    Number,
}

/// API behaviour switches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiOptions {
    /// `X-GitHub-Api-Version` values answered with 410 Gone.
    pub retired_versions: Vec<String>,
    pub per_page: PerPagePolicy,
    /// When set, a `model` outside this list is refused with 422.
    pub models: Option<Vec<String>>,
    /// When set, a `custom_agent` outside this list is refused with 422.
    pub custom_agents: Option<Vec<String>>,
    /// Tokens answered with 401 Bad credentials.
    pub revoked_tokens: Vec<String>,
    /// Tokens without "Agent tasks" write: POSTs get 403.
    pub read_only_tokens: Vec<String>,
    pub pull_id: PullId,
    /// When set, only these `owner/repo` exist (case-insensitive); every other repository
    /// answers 404, as a repository the token cannot see does.
    pub repositories: Option<Vec<String>>,
    /// Copilot cloud agent is off for the organization: the repository's agent-tasks
    /// endpoints answer 404, its cloud-agent configuration 404, and the organization's
    /// coding-agent permissions `enabled_repositories: none`.
    pub agent_disabled: bool,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            retired_versions: Vec::new(),
            per_page: PerPagePolicy::Clamp,
            models: None,
            custom_agents: None,
            revoked_tokens: Vec::new(),
            read_only_tokens: Vec::new(),
            pull_id: PullId::DatabaseId,
            repositories: None,
            agent_disabled: false,
        }
    }
}

/// A scenario that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Yaml {
        path: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        path: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
    #[error(
        "{path}:{line}: cannot read {file} (paths are relative to the scenario file): {source}"
    )]
    File {
        path: PathBuf,
        line: u64,
        file: PathBuf,
        source: std::io::Error,
    },
}

impl Scenario {
    /// Read and compile a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Scenario::from_yaml(&text, path, dir)
    }

    /// Compile a scenario from YAML text; `name` is used in errors, `dir` resolves the
    /// files it refers to.
    pub fn from_yaml(text: &str, name: &Path, dir: &Path) -> Result<Scenario, ScenarioError> {
        let raw: RawScenario = serde_saphyr::from_str(text).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            let full = e.to_string();
            let first = full.lines().next().unwrap_or("invalid scenario");
            // serde-saphyr writes "error: line L column C: message"; the location is ours.
            let message = first
                .strip_prefix("error: ")
                .and_then(|r| r.strip_prefix("line "))
                .and_then(|r| r.split_once(": "))
                .map_or(first, |(_, m)| m)
                .to_string();
            ScenarioError::Yaml {
                path: name.to_path_buf(),
                line,
                column,
                message,
            }
        })?;
        Compiler { name, dir }.scenario(raw)
    }
}
