//! Adapter that runs the policy's checks. Checks are agent-written code, so each runs with
//! `bash -c <run>` in an isolated copy of the head tree prepared by the caller (an export
//! with no `.git`), with a scrubbed environment and a fresh `HOME`, in its own process
//! group that is killed whole on timeout, shutdown or drop, with captured, size-capped
//! output (the tail is kept). When the gate is root, checks run under an unprivileged uid
//! that owns the tree, while the workspace's persisted credentials are hidden; when it is
//! not, it refuses to run them while it finds a credential they could read (unless the
//! policy says `checks-isolation: best-effort`). See `docs/checks.md`.
//!
//! It knows nothing of git refs, the policy's YAML or GitHub; verdicts are the caller's.
//!
//! - [`plan()`]: which checks run for a change, and their expanded commands (pure).
//! - [`run_checks`]: run the planned checks, in parallel up to [`RunOptions::jobs`].

mod container;
pub mod docker;
mod env;
mod error;
mod isolation;
mod plan;
mod process;
mod program;
mod reaper;
mod runner;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

pub use self::container::TREE as CONTAINER_TREE;
pub use self::env::{
    DEFAULT_PATH, PASSED_NAMES, RESERVED_PREFIXES, RESERVED_SUBSTRINGS, WITHHELD_NAMES,
    is_passed_from_gate, is_reserved_name, scrubbed_env,
};
pub use self::error::SetupError;
pub use self::isolation::{
    FILE_COMMAND_VARS, IsolationMode, IsolationReport, NOBODY, ProtectError, ProtectGuard, RunAs,
    chown_tree, credential_paths, gate_is_root, holds_credential, make_gate_undumpable, protect,
    readable_credentials, writable_file_commands,
};
pub use self::plan::{
    FILES_PLACEHOLDER, MAX_COMMAND_BYTES, PlannedAction, PlannedCheck, argument_for_path,
    expand_files, plan, quote_path, quote_word, skipped_by_when,
};
pub use self::program::{find_on_path, leading_program};
pub use self::runner::run_checks;
pub use crate::core::policy::Isolation;

/// Output kept per check by default: the last 64 KiB.
pub const DEFAULT_OUTPUT_CAP: usize = 64 * 1024;

/// Time between SIGTERM and SIGKILL by default.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(2);

/// How to run checks. `env` is the gate's environment to pick the allowed variables from
/// (inject `std::env::vars_os().collect()` in production).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Checks running at the same time (at least 1). Default: the number of CPUs.
    pub jobs: usize,
    /// The gate's environment, the source of the allow-listed variables.
    pub env: Vec<(OsString, OsString)>,
    /// Bytes of output kept per check (the tail).
    pub output_cap: usize,
    /// Time between SIGTERM and SIGKILL when a check is stopped.
    pub kill_grace: Duration,
    /// `checks-isolation` of the policy.
    pub isolation: Isolation,
    /// Whom checks run as.
    pub run_as: RunAs,
    /// Persisted credentials to hide while checks run (root) or to look for (not root): e.g.
    /// `<workspace>/.git`, `<workspace>/.git/config`, `$RUNNER_TEMP/_runner_file_commands`.
    pub protect: Vec<PathBuf>,
    /// Where the fresh `HOME`s are created (default: the system temp dir). Must be
    /// traversable by the checks' uid.
    pub temp_dir: Option<PathBuf>,
    /// The Docker engine checks with `image:` run through (`None`: such checks are
    /// `unavailable`). Production passes `Engine::from_env`.
    pub docker: Option<crate::adapters::checks::docker::Engine>,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            jobs: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            env: Vec::new(),
            output_cap: DEFAULT_OUTPUT_CAP,
            kill_grace: DEFAULT_KILL_GRACE,
            isolation: Isolation::Strict,
            run_as: RunAs::default(),
            protect: Vec::new(),
            temp_dir: None,
            docker: None,
        }
    }
}

/// How a check ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum CheckStatus {
    Passed,
    /// Exited non-zero (`exit_code`) or was killed by a signal (`signal`).
    Failed {
        exit_code: Option<i32>,
        signal: Option<i32>,
    },
    /// Killed (with its whole process group) after its timeout.
    TimedOut {
        #[serde(rename = "after_ms", serialize_with = "millis")]
        after: Duration,
    },
    /// Not run, by plan (`when`, an empty `{files}`).
    Skipped {
        reason: String,
    },
    /// Stopped or never started because the gate was shut down.
    Cancelled,
    /// Could not be run (refused for isolation, bad command, spawn failure).
    Error {
        message: String,
    },
    /// Not run: the program its command starts is missing where it runs. An environment
    /// error — the repository's setup, never the change — with its own verdict.
    Unavailable {
        program: String,
        message: String,
    },
}

impl CheckStatus {
    /// Failed, timed out, cancelled or errored: anything a required check must not do.
    pub fn is_failure(&self) -> bool {
        !matches!(self, CheckStatus::Passed | CheckStatus::Skipped { .. })
    }
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckOutcome {
    pub name: String,
    pub required: bool,
    /// 1-based line of the check in the policy file.
    pub line: usize,
    #[serde(flatten)]
    pub status: CheckStatus,
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: Duration,
    /// The last [`RunOptions::output_cap`] bytes of stdout and stderr, merged, lossily
    /// decoded as UTF-8.
    pub output_tail: String,
    /// Bytes of output dropped before the tail.
    pub truncated_bytes: u64,
}

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's serialize_with signature"
)]
fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Did a required check fail (fail, time out, error or get cancelled)? Advisory checks
/// (`required: false`) never count.
pub fn failed_required(outcomes: &[CheckOutcome]) -> bool {
    outcomes.iter().any(|o| o.required && o.status.is_failure())
}

/// Advisory checks that failed: reported, never failing the gate.
pub fn failed_advisory(outcomes: &[CheckOutcome]) -> Vec<&CheckOutcome> {
    outcomes
        .iter()
        .filter(|o| !o.required && o.status.is_failure())
        .collect()
}

/// Outcomes of one run of the checks, in plan order, and how they were isolated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChecksRun {
    pub outcomes: Vec<CheckOutcome>,
    pub isolation: IsolationReport,
}

impl ChecksRun {
    pub fn failed_required(&self) -> bool {
        failed_required(&self.outcomes)
    }
}
