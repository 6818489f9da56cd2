//! The review load of a batch's repositories (issue 21): how many open pull requests come
//! from agent-gate's tasks — the ones the repository's task index (`crate::flow::lease`) records
//! — and which have waited longest. A run counts its own repository's before it starts a
//! task (`agent.max-open-pull-requests`); `plan --review-load` counts every repository of
//! the plan, so a night can be seen to start on top of a backlog. It costs one list of open
//! pull requests per repository (API) and one fetch of its index (git), with the token the
//! step is given; it writes nothing but what every reader of the index may (deleting
//! entries past their retention, best effort).

use std::fmt::Write as _;
use std::path::Path;

use crate::adapters::git::Git;
use crate::adapters::github::types::PullRequest;
use crate::adapters::github::{ApiError, Client, ClientConfig};
use crate::core::manifest::Priority;
use crate::core::report::WaitingPull;
use crate::core::secret::Token;
use crate::core::slug::RepoSlug;
use crate::flow::lease::{KnownTasks, LeaseStore};

/// Pages of 100 open pull requests read per repository at most.
const MAX_PAGES: u32 = 10;
/// How many of the oldest waiting pull requests a count lists.
pub const OLDEST_LISTED: usize = 5;

/// agent-gate's pull requests among `pulls` (those the index `known` records a task for),
/// oldest first.
pub fn agent_gate_pulls(pulls: &[PullRequest], known: &KnownTasks) -> Vec<WaitingPull> {
    let mut ours: Vec<&PullRequest> = pulls
        .iter()
        .filter(|p| known.key_of_pull(p.number).is_some())
        .collect();
    ours.sort_by(|a, b| {
        a.created_at
            .cmp(&b.created_at)
            .then(a.number.cmp(&b.number))
    });
    ours.iter()
        .map(|p| WaitingPull {
            number: p.number,
            url: p.html_url.clone(),
            opened_at: p.created_at.clone(),
        })
        .collect()
}

/// Why one repository's review load could not be counted.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Slug(#[from] crate::core::slug::SlugError),
    #[error("cannot reach its API: {0}")]
    Client(#[source] ApiError),
    #[error("cannot list its open pull requests: {0}")]
    Pulls(#[source] ApiError),
    #[error("cannot read its task index: {0}")]
    Index(#[from] crate::flow::lease::LeaseError),
    #[error("cannot prepare the count (a scratch directory, the async runtime): {0}")]
    Setup(#[source] std::io::Error),
}

/// One repository's review load, or why it could not be counted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RepoLoad {
    pub repository: String,
    /// agent-gate's open pull requests.
    pub open: u32,
    /// The oldest of them, oldest first (at most [`OLDEST_LISTED`]).
    pub oldest: Vec<WaitingPull>,
    /// Why the count is missing, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RepoLoad {
    /// `octo/a: 3 open pull requests from agent-gate's tasks; oldest #12 (opened …)`.
    pub fn line(&self) -> String {
        if let Some(e) = &self.error {
            return format!("{}: not counted ({e})", self.repository);
        }
        let plural = if self.open == 1 { "" } else { "s" };
        let mut line = format!(
            "{}: {} open pull request{plural} from agent-gate's tasks",
            self.repository, self.open
        );
        if let Some(p) = self.oldest.first() {
            let _ = write!(line, "; oldest #{}", p.number);
            if let Some(at) = &p.opened_at {
                let _ = write!(line, " (opened {at})");
            }
        }
        line
    }
}

/// Where and how to read the review load.
#[derive(Debug, Clone)]
pub struct LoadSource {
    /// The REST API base URL.
    pub api_url: String,
    /// The git server the repositories are on (`GITHUB_SERVER_URL`): `<server>/<owner>/<repo>.git`.
    pub server_url: String,
    /// Reads the repositories' pull requests and contents (never printed: `Debug` shows
    /// `***`).
    pub token: Token,
}

/// The review load of each of `repositories` (in that order), read with `source`; `scratch`
/// is an empty directory the indexes are fetched into.
pub async fn review_load(
    repositories: &[String],
    source: &LoadSource,
    scratch: &Path,
) -> Vec<RepoLoad> {
    let git = Git::new(scratch);
    if let Err(e) = git.init_bare() {
        let e = format!(
            "cannot make a scratch repository in {}: {e}",
            scratch.display()
        );
        return repositories
            .iter()
            .map(|r| RepoLoad {
                repository: r.clone(),
                open: 0,
                oldest: Vec::new(),
                error: Some(e.clone()),
            })
            .collect();
    }
    let mut out = Vec::new();
    for repository in repositories {
        let counted = count(repository, source, &git).await;
        out.push(counted.unwrap_or_else(|e| RepoLoad {
            repository: repository.clone(),
            open: 0,
            oldest: Vec::new(),
            error: Some(e.to_string()),
        }));
    }
    out
}

async fn count(repository: &str, source: &LoadSource, git: &Git) -> Result<RepoLoad, LoadError> {
    let slug = RepoSlug::parse(repository)?;
    let client = Client::new(
        ClientConfig::new(source.token.clone(), slug.owner(), slug.name())
            .with_api_url(source.api_url.clone()),
    )
    .map_err(LoadError::Client)?;
    let pulls = client
        .list_open_pulls(MAX_PAGES)
        .await
        .map_err(LoadError::Pulls)?;
    let server = source.server_url.trim_end_matches('/');
    let remote = format!("{server}/{slug}.git");
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let mut store = LeaseStore::new(
        git.clone(),
        &remote,
        Some(source.token.clone()),
        "plan",
        Priority::Normal,
        &run_id,
    );
    let known = store.known_tasks(crate::flow::admission::epoch_now())?;
    let ours = agent_gate_pulls(&pulls, &known);
    Ok(RepoLoad {
        repository: repository.to_string(),
        open: u32::try_from(ours.len()).unwrap_or(u32::MAX),
        oldest: ours.into_iter().take(OLDEST_LISTED).collect(),
        error: None,
    })
}
