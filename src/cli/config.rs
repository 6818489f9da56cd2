//! `run`'s inputs compiled: the flags (and the `INPUT_*` variables clap read for them) and
//! the workflow's environment become one [`RunOptions`], every value that is not a plain
//! string parsed and checked here, once, with one typed error ([`RunInputError`]). What
//! comes out is what the run flow acts on; nothing after this reads a flag.

use std::ffi::OsString;

use super::args::RunArgs;
use super::{ScopeInputError, TokenError, scope_input, token};
use crate::adapters::github::{ApiUrl, ApiUrlError};
use crate::core::manifest::Priority;
use crate::core::slug::{RepoSlug, SlugError};
use crate::flow::RunOptions;
use crate::flow::pace::{PaceError, WritePace};

/// A `run` input that cannot be used. The message names the input and what it must be.
#[derive(Debug, thiserror::Error)]
pub(super) enum RunInputError {
    #[error("timeout `{0}` is not a duration like 30s, 45m or 2h")]
    Timeout(String),
    #[error("priority `{0}` must be high, normal or low")]
    Priority(String),
    #[error("repair-rounds `{0}` is not a whole number of rounds like 0, 1 or 2")]
    RepairRounds(String),
    #[error("not-before `{0}` is not a time like 2026-03-10T02:17:40Z")]
    NotBefore(String),
    #[error(transparent)]
    WritePace(#[from] PaceError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("repository {0} (set the `repository` input, --repository or GITHUB_REPOSITORY)")]
    Repository(#[from] SlugError),
    #[error(transparent)]
    Scope(#[from] ScopeInputError),
    #[error(transparent)]
    ApiUrl(#[from] ApiUrlError),
}

/// An input that may be absent or blank: `None` then; else what `parse` makes of it
/// trimmed, or the error `bad` makes of it.
fn optional<T>(
    raw: Option<&str>,
    parse: impl Fn(&str) -> Option<T>,
    bad: impl Fn(String) -> RunInputError,
) -> Result<Option<T>, RunInputError> {
    match raw.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => parse(v).map(Some).ok_or_else(|| bad(v.to_string())),
    }
}

/// The run's options from its flags `a` and the process environment `env` (the gate's
/// environment, from which the checks get an allow-listed subset, and the workflow's
/// `GITHUB_*` variables: the target repository by default, the key's inputs, the
/// write-pace ledger's default).
pub(super) fn run_options(
    a: RunArgs,
    env: Vec<(OsString, OsString)>,
) -> Result<RunOptions, RunInputError> {
    let timeout = optional(
        a.timeout.as_deref(),
        crate::core::policy::parse_duration,
        RunInputError::Timeout,
    )?;
    let priority =
        optional(Some(&a.priority), Priority::parse, RunInputError::Priority)?.unwrap_or_default();
    let repair_rounds = optional(
        a.repair_rounds.as_deref(),
        |r| r.parse::<u32>().ok(),
        RunInputError::RepairRounds,
    )?;
    let not_before = optional(
        a.not_before.as_deref(),
        |t| t.parse::<jiff::Timestamp>().ok(),
        RunInputError::NotBefore,
    )?;
    let scope = scope_input(&a.scope)?;
    let api_url = ApiUrl::parse(&a.api_url)?;
    let write_pace = WritePace::parse(a.write_pace.as_deref().unwrap_or(""))?;
    let agent_token = token(Some(&a.token), a.token_file.as_deref(), "INPUT_TOKEN")?;
    let github_token = token(
        a.github_token.as_deref(),
        a.github_token_file.as_deref(),
        "INPUT_GITHUB-TOKEN",
    )?;
    let var = |k: &str| {
        env.iter()
            .find(|(name, _)| name == k)
            .and_then(|(_, v)| v.to_str())
            .unwrap_or_default()
            .to_string()
    };
    let nonempty = |s: Option<String>| s.filter(|v| !v.trim().is_empty());
    // The target: the `repository` input or --repository, else the workflow's own.
    let repository =
        RepoSlug::parse(&nonempty(a.repository).unwrap_or_else(|| var("GITHUB_REPOSITORY")))?;
    let pace_ledger = write_pace.as_ref().map(|_| {
        crate::flow::pace::ledger_remote(
            nonempty(a.pace_ledger).as_deref(),
            &var("GITHUB_REPOSITORY"),
            &repository.to_string(),
            &var("GITHUB_SERVER_URL"),
            &a.remote,
        )
    });
    let key_inputs = crate::core::prompt::KeyInputs {
        repository: repository.to_string(),
        run_id: var("GITHUB_RUN_ID"),
        job: var("GITHUB_JOB"),
        step: var("GITHUB_ACTION"),
        instruction: String::new(),
    };
    Ok(RunOptions {
        remote: a.remote,
        instruction: a.instruction,
        scope,
        policy_path: a.policy,
        github_token,
        base_ref: nonempty(a.base_ref),
        timeout,
        task_id: nonempty(a.task_id),
        task_key: nonempty(a.task_key),
        dry_run: a.dry_run,
        model: nonempty(a.model),
        custom_agent: nonempty(a.custom_agent),
        jobs: a.gate.jobs,
        key_inputs,
        gate_env: env,
        priority,
        repair_rounds,
        not_before,
        write_pace,
        pace_ledger,
        ..RunOptions::new(a.repo, repository, api_url, agent_token)
    })
}
