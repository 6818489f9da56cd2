//! The scope policy, version 1 (DESIGN §3): parsed from YAML into raw serde types with
//! `deny_unknown_fields` (`raw`), then compiled into [`Policy`] (`compile`: durations parsed,
//! globs built once with their line and column, defaults filled, limits checked). The rest of
//! the program only sees the compiled form. Errors ([`PolicyError`]) name file, line, column
//! and what was expected. [`describe()`] renders a compiled policy for `agent-gate validate`;
//! [`json_schema`] is the published JSON Schema. This module does not read files or run git;
//! callers hand it the text and the path it came from.

mod compile;
mod describe;
mod error;
mod raw;

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::core::scope::{RuleSet, Scope};
use crate::core::yaml;

pub use compile::{format_duration, parse_duration};
pub use describe::describe;
pub use error::PolicyError;

/// Default policy path, relative to the repository root.
pub const DEFAULT_POLICY_PATH: &str = ".github/agent-gate.yml";

/// `agent.on-idle`: what to do when the agent goes idle without finishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnIdle {
    Accept,
    Wait,
    Fail,
}

/// `agent.on-waiting-for-user`: what to do when the agent waits for a person's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnWaitingForUser {
    Fail,
    Wait,
}

/// `deny | allow` switches of `scope` (binary files, symlinks, submodules, mode changes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Allowance {
    Deny,
    Allow,
}

/// `checks-on-violation`: whether the checks of an out-of-scope change run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnViolation {
    Skip,
    Run,
}

/// `on-held` of a `github-checks` check: what workflow runs held for approval
/// (`action_required`) do to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnHeld {
    /// The check fails at once, saying who must approve and where (the default).
    Fail,
    /// The gate keeps waiting (within the deadline) for a person to approve the runs.
    Wait,
}

/// `agent.on-review-backlog`: what a run does when the repository already has
/// `agent.max-open-pull-requests` open pull requests from agent-gate's tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnReviewBacklog {
    /// The run ends `over-budget` at once, nothing started, listing the oldest pull
    /// requests waiting for review (the default).
    Fail,
    /// The run waits (within its deadline) until one is merged or closed.
    Wait,
}

/// Which of the repository's own checks a `github-checks` check awaits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwaitedChecks {
    /// Check-run names and commit-status contexts, matched exactly, in policy order.
    Named(Vec<String>),
    /// The base branch's required status checks, read when the check runs.
    Required,
}

/// A check that awaits the repository's own CI on the agent's head (`github-checks`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubChecks {
    pub awaited: AwaitedChecks,
    pub on_held: OnHeld,
    /// `timeout:` when given; otherwise the run's deadline bounds the wait.
    pub timeout: Option<Duration>,
}

/// A check container's network (`network:` of a check with `image:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CheckNetwork {
    /// No network at all (the default).
    None,
    /// The engine's default network.
    Bridge,
    /// The host's network.
    Host,
}

impl CheckNetwork {
    /// The engine's `NetworkMode`.
    pub fn mode(self) -> &'static str {
        match self {
            CheckNetwork::None => "none",
            CheckNetwork::Bridge => "bridge",
            CheckNetwork::Host => "host",
        }
    }
}

/// Where a check with `image:` runs, and its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckImage {
    pub image: String,
    pub network: CheckNetwork,
    pub memory_bytes: u64,
    /// CPUs in billionths (the engine's `NanoCpus`).
    pub nano_cpus: u64,
    pub pids: u32,
}

/// `checks-isolation`: how hard the gate insists that checks cannot read credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// Refuse to run checks while a credential is readable to them.
    Strict,
    /// Run them anyway and say so in the report.
    BestEffort,
}

/// The `agent` section, compiled.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    pub base_ref: Option<String>,
    pub timeout: Duration,
    pub poll_initial: Duration,
    pub poll_max: Duration,
    /// The interval after a poll GitHub answered `304` (free); kept between `poll_initial`
    /// and `poll_max` in use.
    pub poll_watch: Duration,
    pub on_idle: OnIdle,
    pub on_waiting_for_user: OnWaitingForUser,
    pub create_pull_request: bool,
    pub allow_no_change: bool,
    pub max_concurrent_tasks: Option<u32>,
    pub reserved_for_high: u32,
    pub max_tasks_per_day: Option<u32>,
    pub max_ai_credits_per_day: Option<f64>,
    pub repair_rounds: u32,
    /// Open pull requests from agent-gate's tasks the repository may have before a run
    /// starts another task; `None`: no limit.
    pub max_open_pull_requests: Option<u32>,
    pub on_review_backlog: OnReviewBacklog,
}

/// Limits and switches of the `scope` section.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_files: Option<usize>,
    pub max_changed_lines: Option<u64>,
    pub binary_files: Allowance,
    pub symlinks: Allowance,
    pub submodules: Allowance,
    pub mode_changes: Allowance,
}

/// One entry of `checks`, compiled.
#[derive(Debug, Clone)]
pub struct CheckSpec {
    pub name: String,
    /// The command, run with `bash -c`; may contain `{files}`.
    pub run: String,
    pub timeout: Duration,
    /// Run only if a changed path matches one of these (None = always).
    pub when: Option<RuleSet>,
    /// Which changed paths `{files}` expands to (None = all changed paths).
    pub files: Option<RuleSet>,
    pub required: bool,
    pub env: BTreeMap<String, String>,
    /// 1-based line of the entry in the policy file.
    pub line: usize,
    /// `image:` and its limits: the check runs in a container of that image.
    pub image: Option<CheckImage>,
    /// `github-checks:`: the check awaits the repository's own CI instead of running
    /// `run` (which is then empty).
    pub github: Option<GitHubChecks>,
}

/// `report`.
#[derive(Debug, Clone)]
pub struct ReportSettings {
    pub status_context: String,
    pub comment: bool,
}

/// A compiled policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Path of the policy file, repository-relative, as given.
    pub path: String,
    pub repositories: Vec<String>,
    pub agent: AgentSettings,
    pub scope: Scope,
    pub limits: Limits,
    pub checks_on_violation: OnViolation,
    pub checks_isolation: Isolation,
    pub checks: Vec<CheckSpec>,
    pub report: ReportSettings,
}

impl OnIdle {
    /// The word a policy uses for this value.
    pub fn as_str(self) -> &'static str {
        match self {
            OnIdle::Accept => "accept",
            OnIdle::Wait => "wait",
            OnIdle::Fail => "fail",
        }
    }
}

impl OnWaitingForUser {
    /// The word a policy uses for this value.
    pub fn as_str(self) -> &'static str {
        match self {
            OnWaitingForUser::Fail => "fail",
            OnWaitingForUser::Wait => "wait",
        }
    }
}

impl Allowance {
    /// The word a policy uses for this value.
    pub fn as_str(self) -> &'static str {
        match self {
            Allowance::Deny => "deny",
            Allowance::Allow => "allow",
        }
    }
}

impl OnViolation {
    /// The word a policy uses for this value.
    pub fn as_str(self) -> &'static str {
        match self {
            OnViolation::Skip => "skip",
            OnViolation::Run => "run",
        }
    }
}

impl Isolation {
    /// The word a policy uses for this value.
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::Strict => "strict",
            Isolation::BestEffort => "best-effort",
        }
    }
}

/// The largest policy file [`Policy::from_yaml`] reads (1 MiB).
pub const MAX_POLICY_BYTES: usize = 1 << 20;

/// The most glob patterns one policy compiles, every glob of every list (`scope.allow`,
/// `scope.deny`, `scope.protected`, the checks' `when` and `files`) counted with its `{a,b}`
/// alternatives expanded. Compiling costs time and memory per pattern; with this cap the
/// worst policy within [`MAX_POLICY_BYTES`] compiles in bounded time and memory
/// (`benches/compile.rs`, bench/RESULTS.md).
pub const MAX_POLICY_PATTERNS: usize = 2048;

/// The most bytes a policy's glob patterns may add up to, `{a,b}` alternatives expanded
/// (a rule of a few groups of long alternatives expands to far more text than it takes).
pub const MAX_POLICY_EXPANDED_BYTES: usize = 128 * 1024;

impl Policy {
    /// Parse and compile a policy from its YAML text. `path` is used in errors and is
    /// added to the always-protected paths. Never panics, whatever the text.
    pub fn from_yaml(text: &str, path: &str) -> Result<Policy, PolicyError> {
        Policy::from_yaml_all(text, path).map_err(|mut errors| errors.swap_remove(0))
    }

    /// [`Policy::from_yaml`], refusing with every error one pass finds, in file order (never
    /// an empty list). A YAML error (not well-formed, an unknown key, a value of the wrong
    /// type) stops the reading where it is found; the values YAML reads are then all checked.
    pub fn from_yaml_all(text: &str, path: &str) -> Result<Policy, Vec<PolicyError>> {
        // Bounded time and memory whatever the file: compiling rules costs per rule, and
        // no hand-written policy comes near this size.
        if text.len() > MAX_POLICY_BYTES {
            return Err(vec![PolicyError::TooLarge {
                path: path.to_string(),
                bytes: text.len(),
                limit: MAX_POLICY_BYTES,
            }]);
        }
        if yaml::is_blank(text) {
            return Err(vec![PolicyError::Empty {
                path: path.to_string(),
            }]);
        }
        let yaml_error = |problem| PolicyError::Yaml {
            path: path.to_string(),
            problem,
        };
        // The version first, read leniently: a policy written for another version gets
        // "unsupported version", not a list of keys this version does not know.
        if let Ok(probe) = yaml::from_str::<raw::VersionProbe>(text, "policy") {
            check_version(probe.version, text, path).map_err(|e| vec![e])?;
        }
        let mut raw: raw::RawPolicy =
            yaml::from_str(text, "policy").map_err(|p| vec![yaml_error(p)])?;
        check_version(raw.version.take(), text, path).map_err(|e| vec![e])?;
        compile::compile(raw, path)
    }
}

/// The JSON Schema of policy files (version 1), pretty-printed, with a final newline. It is
/// generated from the parser's own types, so it cannot drift from what the parser accepts.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(raw::RawPolicy);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

fn check_version(
    version: Option<serde_saphyr::Spanned<raw::Version>>,
    text: &str,
    path: &str,
) -> Result<(), PolicyError> {
    match version {
        None => Err(PolicyError::MissingVersion {
            path: path.to_string(),
            line: yaml::first_content_line(text).unwrap_or(1),
            column: 1,
        }),
        Some(v) if v.value == raw::Version::Integer(1) => Ok(()),
        Some(v) => {
            let line = usize::try_from(v.referenced.line()).unwrap_or(1).max(1);
            let column = usize::try_from(v.referenced.column()).unwrap_or(1).max(1);
            // What the author wrote (`01`, `1.0`, `"1"`), not how YAML resolved it.
            let found = yaml::token_at(text, line, column).unwrap_or_else(|| match v.value {
                raw::Version::Integer(n) => n.to_string(),
                raw::Version::Other(other) => other,
            });
            Err(PolicyError::UnsupportedVersion {
                path: path.to_string(),
                line,
                column,
                found,
            })
        }
    }
}
