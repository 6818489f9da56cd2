//! The scope policy, version 1 (DESIGN §3): parsed from YAML into raw serde types with
//! `deny_unknown_fields`, then compiled into [`Policy`] (durations parsed, globs built once,
//! defaults filled). The rest of the program only sees the compiled form. This module does
//! not read files or run git; callers hand it the text and the path it came from.
//!
//! STUB CONTRACT: the compiled types below are what the rest of the crate uses; the parser
//! and compiler behind [`Policy::from_yaml`] are to be written.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::scope::{RuleSet, Scope};

/// Default policy path, relative to the repository root.
pub const DEFAULT_POLICY_PATH: &str = ".github/agent-gate.yml";

/// A policy that could not be loaded. Every variant names the file, and line/column when
/// the YAML parser gives them.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{path}: {message}")]
    Invalid { path: String, line: Option<usize>, column: Option<usize>, message: String },
}

impl PolicyError {
    /// (line, column) of the error, 1-based, when known.
    pub fn location(&self) -> Option<(usize, usize)> {
        match self {
            PolicyError::Invalid { line: Some(l), column, .. } => Some((*l, column.unwrap_or(1))),
            PolicyError::Invalid { .. } => None,
        }
    }
}

/// `agent.on-idle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnIdle {
    Accept,
    Wait,
    Fail,
}

/// `agent.on-waiting-for-user`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnWaitingForUser {
    Fail,
    Wait,
}

/// `deny | allow` switches of `scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowance {
    Deny,
    Allow,
}

/// `checks-on-violation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnViolation {
    Skip,
    Run,
}

/// `checks-isolation` (DESIGN §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    pub on_idle: OnIdle,
    pub on_waiting_for_user: OnWaitingForUser,
    pub create_pull_request: bool,
    pub allow_no_change: bool,
    pub max_concurrent_tasks: Option<u32>,
    pub reserved_for_high: u32,
    pub max_tasks_per_day: Option<u32>,
    pub max_ai_credits_per_day: Option<f64>,
    pub repair_rounds: u32,
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

impl Policy {
    /// Parse and compile a policy from its YAML text. `path` is used in errors and is
    /// added to the always-protected paths.
    pub fn from_yaml(text: &str, path: &str) -> Result<Policy, PolicyError> {
        let _ = text;
        Err(PolicyError::Invalid { path: path.to_string(), line: None, column: None, message: "not implemented".into() })
    }
}
