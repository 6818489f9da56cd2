//! What `agent-gate run` fetches from its remote (DESIGN §1 step 2): the base branch, into a
//! private ref under `refs/agent-gate/<tag>/`, with the policy read there (following the
//! policy's `agent.base-ref` when no input names the base); and [`fetch_refs`], which the
//! rounds use for the agent's head. Fetches go with git's own credentials first, then with
//! the run's token as an HTTP header; [`PrivateRefs`] removes the refs when the run ends, so
//! the workspace's own branches and HEAD are never touched.

use crate::adapters::git::{Git, GitError};
use crate::core::policy::Policy;
use crate::core::secret::Token;
use crate::flow::check::{PolicyAtBase, load_policy_at};
use crate::flow::options::RunOptions;

/// Why the run's base (and the policy on it) cannot be had: a configuration error.
#[derive(Debug, thiserror::Error)]
pub(super) enum BaseError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(
        "the base branch `{branch}` is not available: it could not be fetched from the remote `{remote}`{why}, and there is no local branch `{branch}`. Check that `{remote}` is the repository's remote and that it has a branch `{branch}` (or name the base with `--base-ref` / the `base-ref` input); in a workflow, check out with `actions/checkout` and `fetch-depth: 0`"
    )]
    Unavailable {
        branch: String,
        remote: String,
        /// What git said, as ` (git: …)`, or nothing.
        why: String,
    },
    #[error(transparent)]
    Policy(#[from] PolicyAtBase),
    #[error("{0} (the policy's agent.base-ref; pass --base-ref to override)")]
    PolicyBase(#[source] Box<BaseError>),
}

/// Private refs the gate fetches into, removed when the run ends, so the workspace's own
/// branches and HEAD are never touched.
pub(super) struct PrivateRefs {
    git: Git,
    names: Vec<String>,
}

impl PrivateRefs {
    /// No refs yet, in the repository of `git`.
    pub fn new(git: Git) -> PrivateRefs {
        PrivateRefs {
            git,
            names: Vec::new(),
        }
    }

    /// Remember `name` to remove it at the end (once).
    pub fn add(&mut self, name: &str) {
        if !self.names.iter().any(|n| n == name) {
            self.names.push(name.to_string());
        }
    }
}

impl Drop for PrivateRefs {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = self.git.delete_ref(n);
        }
    }
}

/// The run's base: the branch, its commit (in the private ref) and the policy read there.
pub(super) struct Base {
    pub branch: String,
    pub rev: String,
    pub policy: Policy,
}

/// Fetch the base into the private ref `base_local` and read the policy there. The base is
/// the `base-ref` input, else the remote's default branch, else `main`; when no input names
/// it and the policy's `agent.base-ref` names another branch, that one is fetched and its
/// policy read instead. `Err` is the configuration error to report.
pub(super) fn fetch_base(
    git: &Git,
    opts: &RunOptions,
    base_local: &str,
    refs: &mut PrivateRefs,
) -> Result<Base, BaseError> {
    let mut base_branch = opts
        .base_ref
        .clone()
        .filter(|b| !b.trim().is_empty())
        .or_else(|| git.default_branch_of_remote(&opts.remote).ok().flatten())
        .unwrap_or_else(|| "main".to_string());
    let mut base_rev = fetch_branch(git, opts, &base_branch, base_local, refs)?;
    let mut policy = load_policy_at(
        git,
        &base_rev,
        &base_named(&base_rev, &base_branch),
        &opts.policy_path,
    )?;
    // No input names the base: the policy's `agent.base-ref` does. The policy is then read
    // again there, since that branch is the base of the change.
    if opts.base_ref.is_none()
        && let Some(b) = policy.agent.base_ref.clone()
        && b != base_branch
    {
        base_branch = b;
        base_rev = fetch_branch(git, opts, &base_branch, base_local, refs)
            .map_err(|e| BaseError::PolicyBase(Box::new(e)))?;
        policy = load_policy_at(
            git,
            &base_rev,
            &base_named(&base_rev, &base_branch),
            &opts.policy_path,
        )?;
    }
    Ok(Base {
        branch: base_branch,
        rev: base_rev,
        policy,
    })
}

/// A policy error names the base branch rather than the private ref's commit id.
fn base_named(rev: &str, branch: &str) -> String {
    let short: String = rev.chars().take(12).collect();
    format!("`{branch}` ({short})")
}

/// `git fetch` of `refspecs` from the run's remote; when that fails and a token is given
/// (`github-token`, else `token`), once more with the token as an HTTP header — a workspace
/// checked out with `persist-credentials: false` has no credentials of its own. The token
/// never appears in an argument or a message.
pub(super) fn fetch_refs(
    git: &Git,
    opts: &RunOptions,
    refspecs: &[&str],
) -> Result<(), crate::adapters::git::GitError> {
    crate::adapters::git::plain_then_token(
        git_token(opts).map(Token::expose),
        |token| match token {
            None => git.fetch(&opts.remote, refspecs),
            Some(t) => git.fetch_with_token(&opts.remote, refspecs, t),
        },
    )
    .map(drop)
}

/// The token git authenticates with when plain git cannot: `github-token`, else `token`.
pub(super) fn git_token(opts: &RunOptions) -> Option<&Token> {
    opts.github_token.as_ref().or(opts.token.as_ref())
}

/// Fetch `refs/heads/<branch>` from `remote` into the private ref `local`; fall back to a
/// local branch of that name when the remote cannot be reached (a CLI run without one).
fn fetch_branch(
    git: &Git,
    opts: &RunOptions,
    branch: &str,
    local: &str,
    refs: &mut PrivateRefs,
) -> Result<String, BaseError> {
    let spec = format!("+refs/heads/{branch}:{local}");
    match fetch_refs(git, opts, &[&spec]) {
        Ok(()) => {
            refs.add(local);
            Ok(git.rev_parse(local)?)
        }
        Err(fetch_err) => git.rev_parse(&format!("refs/heads/{branch}")).map_err(|_| {
            if let GitError::NotARepository { .. } = fetch_err {
                return BaseError::Git(fetch_err);
            }
            tracing::debug!(error = %fetch_err, "fetching the base failed");
            BaseError::Unavailable {
                branch: branch.to_string(),
                remote: opts.remote.clone(),
                why: fetch_err
                    .git_says()
                    .map(|s| format!(" (git: {s})"))
                    .unwrap_or_default(),
            }
        }),
    }
}
