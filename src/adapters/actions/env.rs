//! The Actions environment as the runner sets it inside a container step: whether we are
//! in Actions, the file-command paths, the `GITHUB_*`/`RUNNER_*` context, and `INPUT_*`
//! inputs read with the toolkit's rules. Built from an injected variable list, never from
//! the process environment directly, so tests are hermetic.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

/// The variables of one Actions step (or their absence). Empty values count as unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionsEnv {
    vars: BTreeMap<String, String>,
    /// `GITHUB_ACTIONS == "true"`.
    pub is_actions: bool,
    /// `GITHUB_OUTPUT`.
    pub output_file: Option<PathBuf>,
    /// `GITHUB_STEP_SUMMARY`.
    pub summary_file: Option<PathBuf>,
    /// `GITHUB_ENV`.
    pub env_file: Option<PathBuf>,
    /// `GITHUB_STATE`.
    pub state_file: Option<PathBuf>,
    /// `GITHUB_PATH`.
    pub path_file: Option<PathBuf>,
    /// `GITHUB_WORKSPACE`.
    pub workspace: Option<PathBuf>,
    /// `GITHUB_EVENT_PATH`.
    pub event_path: Option<PathBuf>,
    /// `GITHUB_REPOSITORY` (`owner/repo`): the repository the workflow runs in.
    pub repository: Option<String>,
    /// The repository the step works on when the step names one (the gate's `repository`
    /// input); `None`: [`ActionsEnv::repository`]. Not a runner variable: set by the
    /// command that knows it.
    pub target_repository: Option<String>,
    /// `GITHUB_RUN_ID`.
    pub run_id: Option<u64>,
    /// `GITHUB_RUN_ATTEMPT` (1 for the first attempt).
    pub run_attempt: Option<u32>,
    /// `GITHUB_JOB`.
    pub job: Option<String>,
    /// `GITHUB_SERVER_URL` (e.g. `https://github.com`).
    pub server_url: Option<String>,
    /// `GITHUB_API_URL`.
    pub api_url: Option<String>,
    /// `GITHUB_REF`.
    pub git_ref: Option<String>,
    /// `GITHUB_SHA`.
    pub sha: Option<String>,
    /// `GITHUB_ACTOR`.
    pub actor: Option<String>,
    /// `GITHUB_EVENT_NAME`.
    pub event_name: Option<String>,
    /// `GITHUB_WORKFLOW`.
    pub workflow: Option<String>,
    /// `RUNNER_TEMP`.
    pub runner_temp: Option<PathBuf>,
}

impl ActionsEnv {
    /// Read the step's variables from `vars` (e.g. `std::env::vars()` in `main`, a
    /// fixed list in tests). Later duplicates win; empty values are ignored; numbers that
    /// do not parse are treated as absent.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> ActionsEnv {
        let vars: BTreeMap<String, String> =
            vars.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        let text = |name: &str| vars.get(name).cloned();
        let path = |name: &str| vars.get(name).map(PathBuf::from);
        ActionsEnv {
            is_actions: vars.get("GITHUB_ACTIONS").is_some_and(|v| v == "true"),
            output_file: path("GITHUB_OUTPUT"),
            summary_file: path("GITHUB_STEP_SUMMARY"),
            env_file: path("GITHUB_ENV"),
            state_file: path("GITHUB_STATE"),
            path_file: path("GITHUB_PATH"),
            workspace: path("GITHUB_WORKSPACE"),
            event_path: path("GITHUB_EVENT_PATH"),
            repository: text("GITHUB_REPOSITORY"),
            target_repository: None,
            run_id: vars
                .get("GITHUB_RUN_ID")
                .and_then(|v| v.trim().parse().ok()),
            run_attempt: vars
                .get("GITHUB_RUN_ATTEMPT")
                .and_then(|v| v.trim().parse().ok()),
            job: text("GITHUB_JOB"),
            server_url: text("GITHUB_SERVER_URL"),
            api_url: text("GITHUB_API_URL"),
            git_ref: text("GITHUB_REF"),
            sha: text("GITHUB_SHA"),
            actor: text("GITHUB_ACTOR"),
            event_name: text("GITHUB_EVENT_NAME"),
            workflow: text("GITHUB_WORKFLOW"),
            runner_temp: path("RUNNER_TEMP"),
            vars,
        }
    }

    /// The repository the step works on: [`ActionsEnv::target_repository`], else the
    /// workflow's own.
    pub fn target(&self) -> Option<&str> {
        self.target_repository
            .as_deref()
            .or(self.repository.as_deref())
    }

    /// Any variable of the step (non-empty values only).
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// The environment variable name of input `name`: `INPUT_` + the name with spaces
    /// turned into `_`, upper-cased; hyphens are kept (`num-octocats` →
    /// `INPUT_NUM-OCTOCATS`).
    pub fn input_var(name: &str) -> String {
        format!("INPUT_{}", name.replace(' ', "_").to_uppercase())
    }

    /// Input `name` as the toolkit's `getInput` reads it: trimmed, and `None` when unset
    /// or empty after trimming.
    pub fn input(&self, name: &str) -> Option<String> {
        let value = self.vars.get(&Self::input_var(name))?.trim();
        (!value.is_empty()).then(|| value.to_string())
    }

    /// The URL of this workflow run: `{server}/{repo}/actions/runs/{id}`, with
    /// `/attempts/{n}` when the attempt is above 1. The server defaults to
    /// `https://github.com`; `None` without a repository or run id.
    pub fn run_url(&self) -> Option<String> {
        let repository = self.repository.as_deref()?;
        let run_id = self.run_id?;
        let server = self.server_url.as_deref().unwrap_or("https://github.com");
        let mut url = format!(
            "{}/{repository}/actions/runs/{run_id}",
            server.trim_end_matches('/')
        );
        if let Some(attempt) = self.run_attempt.filter(|&n| n > 1) {
            write!(url, "/attempts/{attempt}").ok();
        }
        Some(url)
    }
}
