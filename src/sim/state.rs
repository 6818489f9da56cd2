//! The simulator's state: [`Sim`], shared by the server, every endpoint and the simulated
//! agents (the scenario, the git repositories that play GitHub's, the store of tasks, pull
//! requests and requests), and [`Incoming`], a request once read. Everything above it reads
//! and changes the world through these two.

use std::sync::Mutex;

use axum::http::HeaderMap;

use super::repo::Repo;
use super::route::Matched;
use super::scenario::Scenario;
use super::store::Store;

/// The state shared by the server and the simulated agents.
#[derive(Debug)]
pub(crate) struct Sim {
    pub scenario: Scenario,
    pub time_scale: f64,
    pub base_url: String,
    /// The repository every `owner/repo` not in `repos` is served from.
    pub repo: Repo,
    /// Repositories served from their own bare repository, by `repo_key`.
    pub repos: std::collections::BTreeMap<String, Repo>,
    pub store: Mutex<Store>,
}

impl Sim {
    /// The git repository that plays `owner/repo` (compared case-insensitively).
    pub fn repo_of(&self, owner: &str, repo: &str) -> &Repo {
        self.repos
            .get(&super::store::repo_key(owner, repo))
            .unwrap_or(&self.repo)
    }

    /// Lock the store (a poisoned lock is still usable: the data is plain).
    pub fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What an incoming request is, once read.
pub(crate) struct Incoming {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub request_id: String,
    pub matched: Option<Matched>,
}
