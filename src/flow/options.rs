//! The inputs of `agent-gate run`: [`RunOptions`], one field per Action input or CLI flag
//! (plus what the run is given from outside: the environment, the audit stream), and the
//! CLI's defaults. It holds no logic: the command line compiles its flags into it (the
//! repository already a [`RepoSlug`], the tokens [`Token`]s, the API URL an [`ApiUrl`], the
//! `scope` input a compiled [`ScopeInput`], durations and times parsed), and the run's
//! pipeline acts on it without reading a flag's text again.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::adapters::audit::AuditStream;
use crate::adapters::github::ApiUrl;
use crate::core::prompt::KeyInputs;
use crate::core::scope::ScopeInput;
use crate::core::secret::Token;
use crate::core::slug::RepoSlug;
use crate::flow::admission::Priority;
use crate::flow::pace::WritePace;

/// Inputs of [`run`](fn@super::run) (the Action's inputs and the CLI's flags).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The workspace: a clone of the repository.
    pub repo: PathBuf,
    /// `owner/repo` on GitHub (or the simulator).
    pub repository: RepoSlug,
    /// Where the agent's branch and the base are fetched from: a remote name, URL or path.
    pub remote: String,
    pub instruction: String,
    /// The `scope` input, compiled: it narrows the policy's scope.
    pub scope: ScopeInput,
    pub policy_path: String,
    /// User token for the agent-tasks API; `None` only for a dry run, which sends nothing.
    pub token: Option<Token>,
    /// Token for statuses, labels and comments (default: `token`).
    pub github_token: Option<Token>,
    pub base_ref: Option<String>,
    pub timeout: Option<Duration>,
    pub task_id: Option<String>,
    pub task_key: Option<String>,
    pub dry_run: bool,
    /// The API's base URL (the `api-url` input), parsed.
    pub api_url: ApiUrl,
    pub model: Option<String>,
    pub custom_agent: Option<String>,
    pub jobs: Option<usize>,
    /// What the idempotency key is derived from when `task_key` is not given.
    pub key_inputs: KeyInputs,
    /// The gate's environment (checks get an allow-listed subset).
    pub gate_env: Vec<(OsString, OsString)>,
    /// At most one heartbeat line this often while waiting.
    pub heartbeat: Duration,
    /// Who may take the slots `agent.reserved-for-high` keeps free.
    pub priority: Priority,
    /// Repair rounds (the `repair-rounds` input); `None`: the policy's `agent.repair-rounds`.
    pub repair_rounds: Option<u32>,
    /// The `not-before` input (a batch's pacing, from `plan`): a new task is not started
    /// before this time; `None`: at once.
    pub not_before: Option<jiff::Timestamp>,
    /// The `write-pace` input: this run's writes keep these limits together with every
    /// other run that shares the ledger; `None`: writes go at once.
    pub write_pace: Option<WritePace>,
    /// Where the write-pace ledger lives (a remote name, URL or path); `None`: `remote`.
    pub pace_ledger: Option<String>,
    /// How long one API request may take before it is abandoned (and retried when it is
    /// idempotent); 30 s by default.
    pub request_timeout: Duration,
    /// The audit record, written as the run goes (none by default; the publisher finishes
    /// it).
    pub audit: AuditStream,
}

impl RunOptions {
    /// Options for `repository` worked on in the clone `repo`, against the API at `api_url`
    /// with `token`; everything else as the CLI's defaults (remote `origin`,
    /// the default policy path, no instruction, no overrides, normal priority, a heartbeat
    /// every 30 s, a 30 s request timeout). Set the rest with struct update syntax.
    pub fn new(
        repo: impl Into<PathBuf>,
        repository: RepoSlug,
        api_url: ApiUrl,
        token: Option<Token>,
    ) -> RunOptions {
        RunOptions {
            repo: repo.into(),
            repository,
            remote: "origin".to_string(),
            instruction: String::new(),
            scope: ScopeInput::default(),
            policy_path: crate::core::policy::DEFAULT_POLICY_PATH.to_string(),
            token,
            github_token: None,
            base_ref: None,
            timeout: None,
            task_id: None,
            task_key: None,
            dry_run: false,
            api_url,
            model: None,
            custom_agent: None,
            jobs: None,
            key_inputs: KeyInputs::default(),
            gate_env: Vec::new(),
            heartbeat: Duration::from_secs(30),
            priority: Priority::Normal,
            repair_rounds: None,
            not_before: None,
            write_pace: None,
            pace_ledger: None,
            request_timeout: Duration::from_secs(30),
            audit: AuditStream::none(),
        }
    }
}
