//! The offline simulator of GitHub's agent-tasks API (DESIGN §6; reference §12): an HTTP
//! server on 127.0.0.1 backed by a real bare git repository, with a scripted agent per task,
//! the repository's own CI and injectable faults. Depends on the github module's wire types
//! and nothing else of the gate. Only `demo`, the `sim` command and tests use it.
//!
//! Its layers, each using only those below it: the world (the scenario language, routes,
//! the store of tasks and pull requests, the bare repositories); the state every part
//! shares and the shape of an answer; what happens on its own (the agent's sessions, CI on
//! its commits); the endpoints; the server, which runs each request through GitHub's order
//! of checks to its endpoint.

mod agent;
mod api;
mod ci;
mod reply;
pub mod repo;
mod repos;
pub mod route;
pub mod scenario;
mod server;
mod state;
mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use route::Endpoint;
pub use scenario::{
    ApiOptions, BodyFault, CiCheck, CiScript, CiStatus, CreationLimit, Fault, FaultAction, FileOp,
    FinalState, PerPagePolicy, PullArtifact, PullId, RateLimit, Scenario, ScenarioError,
    TaskScript, When,
};
pub use server::API_VERSIONS;
pub use store::{LoggedRequest, RecordedComment, RecordedStatus, user_id_for_token};

use crate::adapters::github::types::{PullRequest, Task};

/// How to run the simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The bare repository that plays GitHub's copy of the repository (every `owner/repo`
    /// in a URL that `repositories` does not name is accepted and served from it). Created
    /// with one initial commit on `main` when missing.
    pub repo: PathBuf,
    /// Repositories served from their own bare repository (`owner/repo` → directory, each
    /// created like `repo` when missing), for fleets that gate many repositories.
    pub repositories: Vec<(String, PathBuf)>,
    /// The scenario; `None` = the default behaviour of DESIGN §6.
    pub scenario: Option<Scenario>,
    /// 1.0 = real time; 600.0 = a 10-minute task in one second. Divides the agent's queued
    /// and working durations, not injected fault delays or rate-limit windows.
    pub time_scale: f64,
}

impl SimConfig {
    /// Default behaviour, real time.
    pub fn new(repo: impl Into<PathBuf>) -> SimConfig {
        SimConfig {
            repo: repo.into(),
            repositories: Vec::new(),
            scenario: None,
            time_scale: 1.0,
        }
    }
}

/// The simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("simulator repository {path}: {source}")]
    Repo {
        path: PathBuf,
        source: repo::RepoError,
    },
    #[error("cannot listen on {addr}: {source} (pick another --port, or 0 for any free port)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "invalid --time-scale {0}: use a positive number such as 1 (real time) or 600 (10 minutes per second)"
    )]
    TimeScale(f64),
    #[error("the simulator only listens on 127.0.0.1, not {0}")]
    NotLoopback(SocketAddr),
    #[error("cannot write to the output: {0}")]
    Output(std::io::Error),
    #[error("cannot wait for signals: {0}")]
    Signal(std::io::Error),
}

/// A running simulator. Dropping it stops the server and every simulated agent.
#[derive(Debug)]
pub struct SimHandle {
    sim: Arc<state::Sim>,
    addr: SocketAddr,
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// Start the simulator on `addr` (must be 127.0.0.1; port 0 = any free port).
pub async fn start(cfg: SimConfig, addr: SocketAddr) -> Result<SimHandle, SimError> {
    if !addr.ip().is_loopback() {
        return Err(SimError::NotLoopback(addr));
    }
    if !(cfg.time_scale.is_finite() && cfg.time_scale > 0.0) {
        return Err(SimError::TimeScale(cfg.time_scale));
    }
    let repo = repo::Repo::open_or_create(&cfg.repo)
        .await
        .map_err(|source| SimError::Repo {
            path: cfg.repo.clone(),
            source,
        })?;
    let mut repos = std::collections::BTreeMap::new();
    for (name, path) in &cfg.repositories {
        let (owner, name) = name.split_once('/').unwrap_or((name.as_str(), ""));
        let opened = repo::Repo::open_or_create(path)
            .await
            .map_err(|source| SimError::Repo {
                path: path.clone(),
                source,
            })?;
        repos.insert(store::repo_key(owner, name), opened);
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| SimError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| SimError::Bind { addr, source })?;
    let sim = Arc::new(state::Sim {
        scenario: cfg.scenario.unwrap_or_default(),
        time_scale: cfg.time_scale,
        base_url: format!("http://{addr}"),
        repo,
        repos,
        store: Mutex::new(store::Store::default()),
    });
    let app = axum::Router::new()
        .fallback(server::handle)
        .with_state(Arc::clone(&sim));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let serve = axum::serve(
        server::SimListener(listener),
        app.into_make_service_with_connect_info::<server::ConnHandle>(),
    )
    .with_graceful_shutdown(async move {
        let _ = rx.await;
    });
    let task = tokio::spawn(async move {
        if let Err(e) = serve.await {
            tracing::warn!("simulator server stopped: {e}");
        }
    });
    Ok(SimHandle {
        sim,
        addr,
        stop: Mutex::new(Some(tx)),
        server: Mutex::new(Some(task)),
    })
}

impl SimHandle {
    /// `http://127.0.0.1:PORT` (no trailing slash): the API base URL.
    pub fn url(&self) -> String {
        self.sim.base_url.clone()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The git directory of the bare repository (the one every repository not served from
    /// its own is served from).
    pub fn repo_dir(&self) -> &Path {
        self.sim.repo.git_dir()
    }

    /// The git directory that plays `owner/repo`.
    pub fn repo_dir_of(&self, owner: &str, repo: &str) -> &Path {
        self.sim.repo_of(owner, repo).git_dir()
    }

    /// Every request received so far, in arrival order.
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.sim.store().log.clone()
    }

    /// How many requests had this method and a path matching `pattern`, where a segment
    /// `*` or `{name}` matches any one segment: `count("POST", "/agents/repos/*/*/tasks")`.
    pub fn count(&self, method: &str, pattern: &str) -> usize {
        self.sim
            .store()
            .log
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && path_matches(pattern, &r.path))
            .count()
    }

    /// Test-only control, the UI's "Approve and run workflows": release the held workflow
    /// runs of every commit the agent pushed to `owner/repo`. How many commits it released.
    pub fn approve_workflow_runs(&self, owner: &str, repo: &str) -> usize {
        ci::approve(&self.sim, &store::repo_key(owner, repo))
    }

    /// Test-only control, the UI's "Merge" or "Close": pull request `number` of
    /// `owner/repo` is no longer open. False when there is no such open pull request.
    pub fn close_pull(&self, owner: &str, repo: &str, number: u64) -> bool {
        let key = store::repo_key(owner, repo);
        let mut store = self.sim.store();
        store
            .pulls
            .iter_mut()
            .find(|p| store::repo_key(&p.owner, &p.repo) == key && p.number == number && !p.closed)
            .map(|p| p.closed = true)
            .is_some()
    }

    /// Test-only control, the UI's "Stop session": the task's current session ends
    /// `cancelled`. False when the task is unknown or already finished.
    pub fn cancel_task(&self, id: &str) -> bool {
        agent::cancel(&self.sim, id)
    }

    /// Test-only control: archive a task (it then only appears with `is_archived=true`).
    pub fn archive_task(&self, id: &str) -> bool {
        let mut store = self.sim.store();
        match store.task_mut(id) {
            Some(t) if t.archived_at.is_none() => {
                let at = t.touch();
                t.archived_at = Some(at);
                true
            }
            _ => false,
        }
    }

    /// The most tasks `owner/repo` had unfinished (queued, working, idle or waiting for the
    /// user) at one moment since the simulator started.
    pub fn peak_running(&self, owner: &str, repo: &str) -> usize {
        self.sim
            .store()
            .peak_running
            .get(&store::repo_key(owner, repo))
            .copied()
            .unwrap_or(0)
    }

    /// Every task, as the single-task GET renders it (with `sessions`).
    pub fn tasks(&self) -> Vec<Task> {
        let store = self.sim.store();
        store
            .tasks
            .iter()
            .filter_map(|t| serde_json::from_value(t.to_json(&self.sim.base_url, true)).ok())
            .collect()
    }

    /// Every pull request the simulated agents opened.
    pub fn pull_requests(&self) -> Vec<PullRequest> {
        self.sim
            .store()
            .pulls
            .iter()
            .map(|p| p.to_wire(&self.sim.base_url))
            .collect()
    }

    /// Commit statuses posted so far.
    pub fn statuses(&self) -> Vec<RecordedStatus> {
        self.sim.store().statuses.clone()
    }

    /// Comments posted so far.
    pub fn comments(&self) -> Vec<RecordedComment> {
        self.sim.store().comments.clone()
    }

    /// Labels of an issue or pull request.
    pub fn labels(&self, owner: &str, repo: &str, number: i64) -> Vec<String> {
        let Ok(number) = u64::try_from(number) else {
            return Vec::new();
        };
        self.sim
            .store()
            .labels
            .get(&(store::repo_key(owner, repo), number))
            .cloned()
            .unwrap_or_default()
    }

    /// Stop accepting requests, finish the ones in flight (5 s at most) and stop every agent.
    pub async fn shutdown(self) {
        self.stop_agents();
        if let Some(tx) = self
            .stop
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            let _ = tx.send(());
        }
        let task = self
            .server
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(mut task) = task
            && tokio::time::timeout(std::time::Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }

    fn stop_agents(&self) {
        for (_, h) in self.sim.store().agents.drain() {
            h.abort();
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop_agents();
        if let Some(task) = self
            .server
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }
}

fn path_matches(pattern: &str, path: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').collect();
    let s: Vec<&str> = path.split('/').collect();
    p.len() == s.len()
        && p.iter().zip(&s).all(|(p, s)| {
            *p == "*" || (p.starts_with('{') && p.ends_with('}') && !s.is_empty()) || p == s
        })
}

/// Run the simulator for `agent-gate sim` until `shutdown` resolves. The first line written
/// to `out` is `agent-gate sim listening on http://127.0.0.1:PORT`.
pub async fn serve_until<W: std::io::Write>(
    cfg: SimConfig,
    port: u16,
    mut out: W,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SimError> {
    let handle = start(cfg, SocketAddr::from(([127, 0, 0, 1], port))).await?;
    writeln!(out, "agent-gate sim listening on {}", handle.url()).map_err(SimError::Output)?;
    out.flush().map_err(SimError::Output)?;
    shutdown.await;
    handle.shutdown().await;
    Ok(())
}

/// Run the simulator for `agent-gate sim` until SIGINT (ctrl-c) or SIGTERM.
pub async fn serve_forever<W: std::io::Write>(
    cfg: SimConfig,
    port: u16,
    out: W,
) -> Result<(), SimError> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(SimError::Signal)?;
    serve_until(cfg, port, out, async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    })
    .await
}
