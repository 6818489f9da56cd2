//! Scenarios: YAML scripts for the simulated agent and the faults the server injects
//! (DESIGN §6). Parsed into raw serde types (`deny_unknown_fields`, errors with line and
//! column), then compiled into [`Scenario`], which the server and agent read. Files a
//! scenario refers to (`from-file`, `patch-file`) are read at compile time, relative to the
//! scenario file. This module does no I/O beyond reading those files.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::route::Endpoint;
use crate::github::types::Usage;

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
    /// A secondary (content-creation) limit on `create-task`.
    pub creation_limit: Option<CreationLimit>,
    /// API behaviour switches.
    pub api: ApiOptions,
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

/// A content-creation limit on `create-task`: at most `max` per `window`, then a
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

// ---------------------------------------------------------------------------------------
// Raw (serde) form.

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawScenario {
    #[serde(default)]
    tasks: Vec<Spanned<RawTask>>,
    #[serde(default)]
    default: Option<Spanned<RawTask>>,
    #[serde(default)]
    faults: Vec<Spanned<RawFault>>,
    #[serde(default)]
    rate_limit: Option<Spanned<RawRateLimit>>,
    #[serde(default)]
    creation_limit: Option<Spanned<RawCreationLimit>>,
    #[serde(default)]
    api: Option<RawApi>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTask {
    #[serde(rename = "match", default)]
    matches: Option<String>,
    #[serde(default)]
    queued: Option<Dur>,
    #[serde(default)]
    work: Option<Dur>,
    #[serde(default)]
    files: Option<Vec<Spanned<RawFileOp>>>,
    #[serde(rename = "final", default)]
    final_state: Option<FinalState>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    usage: Option<RawUsage>,
    #[serde(default)]
    pull_artifact: Option<PullArtifact>,
    #[serde(default)]
    working_state: Option<String>,
    #[serde(default)]
    commit_message: Option<String>,
    #[serde(default)]
    extra_fields: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUsage {
    #[serde(rename = "type")]
    kind: UsageKind,
    amount: f64,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum UsageKind {
    AiCredits,
    PremiumRequests,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
enum RawFileOp {
    Write(RawWrite),
    PatchFile(String),
    Delete(String),
    Rename(RawRename),
    Mode(RawMode),
    Symlink(RawSymlink),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawWrite {
    path: String,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    from_file: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRename {
    from: String,
    to: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMode {
    path: String,
    executable: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSymlink {
    path: String,
    target: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFault {
    endpoint: String,
    #[serde(default)]
    nth: Option<u32>,
    #[serde(default)]
    count: Option<u32>,
    #[serde(default)]
    when: Option<When>,
    #[serde(default)]
    delay: Option<Dur>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    drop: Option<bool>,
    #[serde(default)]
    body: Option<BodyFault>,
    #[serde(default)]
    secondary_rate_limit: Option<RawSecondary>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSecondary {
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    retry_after: Option<Dur>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRateLimit {
    limit: u32,
    #[serde(default)]
    window: Option<Dur>,
    #[serde(default)]
    status: Option<u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawCreationLimit {
    max: u32,
    #[serde(default)]
    window: Option<Dur>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    retry_after: Option<Dur>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawApi {
    #[serde(default)]
    retired_versions: Vec<String>,
    #[serde(default)]
    per_page_out_of_range: Option<PerPagePolicy>,
    #[serde(default)]
    models: Option<Vec<String>>,
    #[serde(default)]
    custom_agents: Option<Vec<String>>,
    #[serde(default)]
    revoked_tokens: Vec<String>,
    #[serde(default)]
    read_only_tokens: Vec<String>,
    #[serde(default)]
    pull_artifact_id: Option<PullId>,
    #[serde(default)]
    repositories: Option<Vec<String>>,
}

/// A duration: `500ms`, `2s`, `1.5m`, `1h`, or a bare number of seconds.
struct Dur(Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as 500ms, 2s, 10m, 1h or a number of seconds")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Dur, E> {
                Ok(Dur(Duration::from_secs(v)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Dur, E> {
                u64::try_from(v)
                    .map(|v| Dur(Duration::from_secs(v)))
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Dur, E> {
                Duration::try_from_secs_f64(v)
                    .map(Dur)
                    .map_err(|_| E::custom("a duration must be a finite, non-negative number"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dur, E> {
                parse_duration(v).map(Dur).ok_or_else(|| {
                    E::custom(format!(
                        "invalid duration {v:?}: write 500ms, 2s, 10m or 1h"
                    ))
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// Parse `500ms`, `2s`, `1.5m`, `1h` or `3` (seconds).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(secs).ok()
}

// ---------------------------------------------------------------------------------------
// Compilation.

struct Compiler<'a> {
    name: &'a Path,
    dir: &'a Path,
}

impl Compiler<'_> {
    fn invalid(&self, at: &serde_saphyr::Location, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            path: self.name.to_path_buf(),
            line: at.line(),
            column: at.column(),
            message: message.into(),
        }
    }

    fn scenario(&self, raw: RawScenario) -> Result<Scenario, ScenarioError> {
        let tasks = raw
            .tasks
            .into_iter()
            .map(|t| self.task(t))
            .collect::<Result<Vec<_>, _>>()?;
        let default_task = match raw.default {
            Some(t) => {
                if t.value.matches.is_some() {
                    return Err(self.invalid(&t.referenced, "the default task has no `match`: it answers every task nothing else matched"));
                }
                self.task(t)?
            }
            None => TaskScript::default(),
        };
        let faults = raw
            .faults
            .into_iter()
            .map(|f| self.fault(f))
            .collect::<Result<Vec<_>, _>>()?;
        let rate_limit = match raw.rate_limit {
            Some(r) => RateLimit {
                limit: r.value.limit,
                window: self.nonzero(
                    &r.referenced,
                    r.value.window.map(|d| d.0),
                    Duration::from_hours(1),
                    "rate-limit window",
                )?,
                status: self.limit_status(&r.referenced, r.value.status)?,
            },
            None => RateLimit::default(),
        };
        let creation_limit = match raw.creation_limit {
            Some(c) => Some(CreationLimit {
                max: c.value.max,
                window: self.nonzero(
                    &c.referenced,
                    c.value.window.map(|d| d.0),
                    Duration::from_mins(1),
                    "creation-limit window",
                )?,
                status: self.limit_status(&c.referenced, c.value.status)?,
                retry_after: c.value.retry_after.map(|d| d.0),
            }),
            None => None,
        };
        let api = raw.api.unwrap_or_default();
        let api = ApiOptions {
            retired_versions: api.retired_versions,
            per_page: api.per_page_out_of_range.unwrap_or(PerPagePolicy::Clamp),
            models: api.models,
            custom_agents: api.custom_agents,
            revoked_tokens: api.revoked_tokens,
            read_only_tokens: api.read_only_tokens,
            pull_id: api.pull_artifact_id.unwrap_or(PullId::DatabaseId),
            repositories: api
                .repositories
                .map(|r| r.iter().map(|x| x.to_ascii_lowercase()).collect()),
        };
        Ok(Scenario {
            tasks,
            default_task,
            faults,
            rate_limit,
            creation_limit,
            api,
        })
    }

    fn nonzero(
        &self,
        at: &serde_saphyr::Location,
        d: Option<Duration>,
        default: Duration,
        what: &str,
    ) -> Result<Duration, ScenarioError> {
        let d = d.unwrap_or(default);
        if d.is_zero() {
            return Err(self.invalid(at, format!("{what} must be longer than 0s")));
        }
        Ok(d)
    }

    fn limit_status(
        &self,
        at: &serde_saphyr::Location,
        s: Option<u16>,
    ) -> Result<u16, ScenarioError> {
        match s.unwrap_or(403) {
            s @ (403 | 429) => Ok(s),
            s => Err(self.invalid(
                at,
                format!("a rate-limit status is 403 or 429 (GitHub uses both), not {s}"),
            )),
        }
    }

    fn task(&self, t: Spanned<RawTask>) -> Result<TaskScript, ScenarioError> {
        let at = t.referenced;
        let r = t.value;
        if r.matches.as_deref() == Some("") {
            return Err(self.invalid(
                &at,
                "`match` is a non-empty substring of the prompt; omit it to match by order",
            ));
        }
        let files = match r.files {
            Some(ops) => Some(
                ops.into_iter()
                    .map(|op| self.file_op(op))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            None => None,
        };
        let usage = r.usage.map(|u| Usage {
            kind: match u.kind {
                UsageKind::AiCredits => "ai_credits".to_string(),
                UsageKind::PremiumRequests => "premium_requests".to_string(),
            },
            amount: u.amount,
        });
        if let Some(w) = &r.working_state
            && w.trim().is_empty()
        {
            return Err(self.invalid(&at, "`working-state` must not be empty"));
        }
        let d = TaskScript::default();
        Ok(TaskScript {
            matches: r.matches,
            queued: r.queued.map_or(d.queued, |x| x.0),
            work: r.work.map_or(d.work, |x| x.0),
            files,
            final_state: r.final_state.unwrap_or(FinalState::Completed),
            error: r.error,
            usage,
            pull_artifact: r.pull_artifact.unwrap_or(PullArtifact::Pull),
            working_state: r.working_state.unwrap_or(d.working_state),
            commit_message: r.commit_message,
            extra_fields: r.extra_fields.unwrap_or_default(),
        })
    }

    fn path(&self, at: &serde_saphyr::Location, p: &str) -> Result<String, ScenarioError> {
        let bad = p.is_empty()
            || p.starts_with('/')
            || p.ends_with('/')
            || p.contains('\0')
            || p.split('/')
                .any(|c| c.is_empty() || c == "." || c == ".." || c.eq_ignore_ascii_case(".git"));
        if bad {
            return Err(self.invalid(at, format!("{p:?} is not a repository path: use a relative path like src/a.rs, without `..`, `.git` or empty parts")));
        }
        Ok(p.to_string())
    }

    fn read(
        &self,
        at: &serde_saphyr::Location,
        file: &str,
    ) -> Result<(PathBuf, Vec<u8>), ScenarioError> {
        let full = self.dir.join(file);
        std::fs::read(&full)
            .map(|b| (full.clone(), b))
            .map_err(|source| ScenarioError::File {
                path: self.name.to_path_buf(),
                line: at.line(),
                file: full,
                source,
            })
    }

    fn file_op(&self, op: Spanned<RawFileOp>) -> Result<FileOp, ScenarioError> {
        let at = op.referenced;
        Ok(match op.value {
            RawFileOp::Write(w) => {
                let path = self.path(&at, &w.path)?;
                let content = match (w.content, w.from_file) {
                    (Some(c), None) => c.into_bytes(),
                    (None, Some(f)) => self.read(&at, &f)?.1,
                    _ => {
                        return Err(self.invalid(
                            &at,
                            "`write` takes exactly one of `content` or `from-file`",
                        ));
                    }
                };
                FileOp::Write { path, content }
            }
            RawFileOp::PatchFile(f) => {
                let (file, patch) = self.read(&at, &f)?;
                FileOp::Patch { file, patch }
            }
            RawFileOp::Delete(p) => FileOp::Delete {
                path: self.path(&at, &p)?,
            },
            RawFileOp::Rename(r) => FileOp::Rename {
                from: self.path(&at, &r.from)?,
                to: self.path(&at, &r.to)?,
            },
            RawFileOp::Mode(m) => FileOp::Mode {
                path: self.path(&at, &m.path)?,
                executable: m.executable,
            },
            RawFileOp::Symlink(s) => {
                if s.target.is_empty() || s.target.contains('\0') {
                    return Err(self.invalid(&at, "a symlink needs a non-empty `target`"));
                }
                FileOp::Symlink {
                    path: self.path(&at, &s.path)?,
                    target: s.target,
                }
            }
        })
    }

    fn fault(&self, f: Spanned<RawFault>) -> Result<Fault, ScenarioError> {
        let at = f.referenced;
        let r = f.value;
        let names: Vec<&str> = Endpoint::ALL.iter().map(|e| e.name()).collect();
        let endpoint = Endpoint::parse(&r.endpoint).ok_or_else(|| {
            self.invalid(
                &at,
                format!(
                    "unknown endpoint {:?}: use one of {} or `METHOD /template`",
                    r.endpoint,
                    names.join(", ")
                ),
            )
        })?;
        let nth = r.nth.unwrap_or(1);
        let count = r.count.unwrap_or(1);
        if nth == 0 || count == 0 {
            return Err(self.invalid(
                &at,
                "`nth` (1 = the first request) and `count` must be at least 1",
            ));
        }
        let mut actions = Vec::new();
        if let Some(status) = r.status {
            if !(400..=599).contains(&status) {
                return Err(self.invalid(
                    &at,
                    format!("fault status {status} is not an error status (400-599)"),
                ));
            }
            actions.push(FaultAction::Status {
                status,
                message: r.message.clone(),
            });
        } else if r.message.is_some() {
            return Err(self.invalid(&at, "`message` goes with `status`"));
        }
        if r.drop == Some(true) {
            actions.push(FaultAction::Drop);
        }
        if let Some(b) = r.body {
            actions.push(FaultAction::Body(b));
        }
        if let Some(s) = r.secondary_rate_limit {
            let status = self.limit_status(&at, s.status)?;
            actions.push(FaultAction::SecondaryRateLimit {
                status,
                retry_after: s.retry_after.map(|d| d.0),
            });
        }
        let delay = r.delay.map(|d| d.0);
        let action = match actions.len() {
            0 if delay.is_some() => FaultAction::DelayOnly,
            0 => return Err(self.invalid(&at, "a fault needs one of `status`, `drop: true`, `body`, `secondary-rate-limit` or `delay`")),
            1 => actions.remove(0),
            _ => return Err(self.invalid(&at, "a fault takes only one of `status`, `drop`, `body`, `secondary-rate-limit` (a `delay` combines with any)")),
        };
        let when = match (&action, r.when) {
            (FaultAction::Body(_), Some(When::Before)) => {
                return Err(self.invalid(&at, "a `body` fault breaks the real response, so it always happens after the server acted"));
            }
            (FaultAction::SecondaryRateLimit { .. }, Some(When::After)) => {
                return Err(self.invalid(
                    &at,
                    "a rate-limited request is refused before the server acts: drop `when: after`",
                ));
            }
            (FaultAction::Body(_), _) => When::After,
            (_, w) => w.unwrap_or(When::Before),
        };
        Ok(Fault {
            endpoint,
            nth,
            count,
            when,
            delay,
            action,
            line: at.line(),
        })
    }
}
