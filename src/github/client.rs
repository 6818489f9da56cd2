//! The HTTP client for GitHub's REST API: one `reqwest` client (rustls with the ring
//! provider), one place that sets `Accept`, `X-GitHub-Api-Version`, `User-Agent` and the
//! bearer token, the retry loop for idempotent GETs, the shared "not before" instant that
//! every request of the client waits for (`Retry-After`, `x-ratelimit-reset`), conditional
//! GETs with an `ETag` cache, and the typed endpoint methods. Reconciliation of an ambiguous
//! create lives in `reconcile`, the poller in `poll`, `stop` in `stop`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, Once, PoisonError};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, Url};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::error::ApiError;
use super::retry::{self, Clock, RetryPolicy, SystemClock};
use super::transport::{decode, path_of, to_json};
use super::types::{CommitStatus, CreateTaskRequest, PullRequest, Task, TaskList, TaskState};

/// Default API base URL.
pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// The REST API version the client sends.
pub const DEFAULT_API_VERSION: &str = "2026-03-10";

/// A token: shown as `***` by `Debug`, never written into errors or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(token: impl Into<String>) -> Token {
        Token(token.into())
    }

    /// The secret itself, for the one place that builds the `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `ghs_…`: a GitHub App installation token (what `GITHUB_TOKEN` is).
    pub fn is_installation_token(&self) -> bool {
        self.0.starts_with("ghs_")
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

/// Everything a [`Client`] needs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL: `https://api.github.com`, a GHES `https://host/api/v3`, or the simulator.
    pub api_url: String,
    pub token: Token,
    /// Sent as `X-GitHub-Api-Version`.
    pub api_version: String,
    pub user_agent: String,
    /// Timeout of one request (connect to last body byte).
    pub request_timeout: Duration,
    pub owner: String,
    pub repo: String,
    /// The token's user id, when known: narrows reconciliation lists with `creator_id`.
    pub creator_id: Option<i64>,
    pub retry: RetryPolicy,
    /// Wall clock for epoch-second headers and event stamps.
    pub clock: Arc<dyn Clock>,
}

impl ClientConfig {
    /// A configuration with the defaults: api.github.com, version 2026-03-10, 30 s timeout.
    pub fn new(
        token: impl Into<String>,
        owner: impl Into<String>,
        repo: impl Into<String>,
    ) -> ClientConfig {
        ClientConfig {
            api_url: DEFAULT_API_URL.to_string(),
            token: Token::new(token),
            api_version: DEFAULT_API_VERSION.to_string(),
            user_agent: concat!("agent-gate/", env!("CARGO_PKG_VERSION")).to_string(),
            request_timeout: Duration::from_secs(30),
            owner: owner.into(),
            repo: repo.into(),
            creator_id: None,
            retry: RetryPolicy::default(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Same, with another base URL (GHES, the simulator).
    #[must_use]
    pub fn with_api_url(mut self, api_url: impl Into<String>) -> ClientConfig {
        self.api_url = api_url.into();
        self
    }
}

/// Filters of `GET /agents/repos/{o}/{r}/tasks` (reference §3.2).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListQuery {
    /// Tasks updated at or after.
    pub since: Option<jiff::Timestamp>,
    /// Sent as repeated `creator_id=`.
    pub creator_id: Vec<i64>,
    /// Sent comma-separated.
    pub state: Vec<TaskState>,
    pub sort: Option<ListSort>,
    pub direction: Option<Direction>,
    /// 1–100.
    pub per_page: Option<u8>,
    pub is_archived: Option<bool>,
    /// Stop following `Link: rel="next"` after this many pages (default 50).
    pub max_pages: Option<u32>,
}

/// `sort` of a task list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListSort {
    UpdatedAt,
    CreatedAt,
}

/// `direction` of a task list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

/// What `POST …/issues/{n}/comments` returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedComment {
    #[serde(default)]
    pub id: i64,
    #[serde(default)]
    pub html_url: String,
}

/// `create_task` with the gate's default: `create_pull_request: true` (GitHub's is false).
pub fn create_task_request(
    prompt: impl Into<String>,
    base_ref: Option<String>,
) -> CreateTaskRequest {
    CreateTaskRequest {
        prompt: prompt.into(),
        create_pull_request: Some(true),
        base_ref,
        ..CreateTaskRequest::default()
    }
}

/// A successful (or 304-revalidated) response.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Body,
    pub request_id: Option<String>,
}

/// A response body, shared between a reply and the `ETag` cache.
pub(crate) type Body = Arc<Vec<u8>>;

#[derive(Debug)]
pub(super) struct CachedGet {
    pub(super) etag: String,
    pub(super) body: Body,
}

pub(super) const ETAG_CACHE_LIMIT: usize = 256;

pub(super) struct Inner {
    pub(super) http: reqwest::Client,
    pub(super) base: Url,
    pub(super) token: Token,
    pub(super) owner: String,
    pub(super) repo: String,
    pub(super) creator_id: Option<i64>,
    pub(super) retry: RetryPolicy,
    pub(super) clock: Arc<dyn Clock>,
    /// No request of this client is sent before this instant.
    pub(super) not_before: Mutex<Option<Instant>>,
    pub(super) etags: Mutex<HashMap<String, CachedGet>>,
}

/// Observer of retries: (the error that will be retried, the wait before the next attempt).
pub(crate) type RetryObserver<'a> = &'a mut (dyn FnMut(&ApiError, Duration) + Send);

/// The GitHub REST client. Cheap to clone; clones share the connection pool, the `ETag` cache
/// and the rate-limit "not before" instant.
#[derive(Clone)]
pub struct Client {
    pub(super) inner: Arc<Inner>,
    pub(super) deadline: Option<Instant>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base.as_str())
            .field("owner", &self.inner.owner)
            .field("repo", &self.inner.repo)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

static CRYPTO: Once = Once::new();

/// Install rustls' ring provider as the process default (once; a provider someone else
/// installed first is kept).
pub fn install_crypto_provider() {
    CRYPTO.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn header(value: &str, what: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(value).map_err(|_| {
        ApiError::Config(format!(
            "{what} contains characters not allowed in an HTTP header"
        ))
    })
}

impl Client {
    /// Build a client. Fails on an unusable base URL or header values (never echoing the token).
    pub fn new(config: ClientConfig) -> Result<Client, ApiError> {
        install_crypto_provider();
        let mut base = Url::parse(config.api_url.trim()).map_err(|e| {
            ApiError::Config(format!("api-url `{}` is not a URL: {e}", config.api_url))
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ApiError::Config(format!(
                "api-url `{}` must be an http(s) URL such as {DEFAULT_API_URL}",
                config.api_url
            )));
        }
        base.set_query(None);
        base.set_fragment(None);
        if config.token.expose().trim().is_empty() {
            return Err(ApiError::Config(
                "the token is empty; pass a user token (PAT) as `token`".to_string(),
            ));
        }
        if config.owner.is_empty() || config.repo.is_empty() {
            return Err(ApiError::Config(
                "owner and repo must not be empty".to_string(),
            ));
        }
        // The one place the standard headers and the credentials are set.
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert(
            "x-github-api-version",
            header(&config.api_version, "api_version")?,
        );
        headers.insert(
            reqwest::header::USER_AGENT,
            header(&config.user_agent, "user_agent")?,
        );
        let mut auth = header(&format!("Bearer {}", config.token.expose()), "the token")?;
        auth.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, auth);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| ApiError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                token: config.token,
                owner: config.owner,
                repo: config.repo,
                creator_id: config.creator_id,
                retry: config.retry,
                clock: config.clock,
                not_before: Mutex::new(None),
                etags: Mutex::new(HashMap::new()),
            }),
            deadline: None,
        })
    }

    /// A handle on the same client whose retries (and waits for rate limits) end at `deadline`.
    #[must_use]
    pub fn with_deadline(&self, deadline: Instant) -> Client {
        Client {
            inner: Arc::clone(&self.inner),
            deadline: Some(deadline),
        }
    }

    pub fn owner(&self) -> &str {
        &self.inner.owner
    }

    pub fn repo(&self) -> &str {
        &self.inner.repo
    }

    /// The id given as `creator_id` in the configuration.
    pub fn creator_id(&self) -> Option<i64> {
        self.inner.creator_id
    }

    /// The wall clock the client reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    /// No request of this client is sent before this instant (a rate limit's reset or a
    /// `Retry-After`), if one is pending.
    pub fn not_before(&self) -> Option<Instant> {
        let nb = *self
            .inner
            .not_before
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        nb.filter(|nb| *nb > Instant::now())
    }

    pub(super) fn push_not_before(&self, at: Instant) {
        let mut nb = self
            .inner
            .not_before
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if nb.is_none_or(|cur| cur < at) {
            *nb = Some(at);
        }
    }

    /// The deadline of the current call: the handle's, or now + `max_elapsed`.
    pub(crate) fn call_deadline(&self) -> Instant {
        self.deadline
            .unwrap_or_else(|| Instant::now() + self.inner.retry.max_elapsed)
    }

    // ---- URLs ------------------------------------------------------------------------

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.base.clone();
        {
            // `cannot_be_a_base` was refused in `new`, so this cannot fail.
            if let Ok(mut path) = url.path_segments_mut() {
                path.pop_if_empty();
                path.extend(segments);
            }
        }
        url
    }

    fn tasks_url(&self) -> Url {
        self.url(&[
            "agents",
            "repos",
            &self.inner.owner,
            &self.inner.repo,
            "tasks",
        ])
    }

    fn repo_url(&self, rest: &[&str]) -> Url {
        let mut segs = vec!["repos", self.inner.owner.as_str(), self.inner.repo.as_str()];
        segs.extend_from_slice(rest);
        self.url(&segs)
    }

    fn same_origin(&self, url: &Url) -> bool {
        url.scheme() == self.inner.base.scheme()
            && url.host_str() == self.inner.base.host_str()
            && url.port_or_known_default() == self.inner.base.port_or_known_default()
    }

    // ---- endpoints --------------------------------------------------------------------

    /// `POST /agents/repos/{o}/{r}/tasks`. Never retried (see `create_task_idempotent`);
    /// it still waits for a pending rate-limit "not before".
    pub async fn create_task(&self, req: &CreateTaskRequest) -> Result<Task, ApiError> {
        let url = self.tasks_url();
        let reply = self
            .send_once(
                Method::POST,
                &url,
                Some(to_json(req)?),
                self.call_deadline(),
            )
            .await?;
        let task: Task = decode(&Method::POST, &url, &reply)?;
        note_states(&task);
        Ok(task)
    }

    /// `GET /agents/repos/{o}/{r}/tasks/{id}` (with `sessions[]`), retried, conditional.
    pub async fn get_task(&self, id: &str) -> Result<Task, ApiError> {
        self.get_task_observed(id, &mut |_, _| {}).await
    }

    pub(crate) async fn get_task_observed(
        &self,
        id: &str,
        observer: RetryObserver<'_>,
    ) -> Result<Task, ApiError> {
        if id.is_empty() {
            return Err(ApiError::Config("the task id is empty".to_string()));
        }
        let mut url = self.tasks_url();
        if let Ok(mut p) = url.path_segments_mut() {
            p.push(id);
        }
        let reply = self.get(&url, observer).await?;
        let task: Task = decode(&Method::GET, &url, &reply)?;
        note_states(&task);
        Ok(task)
    }

    /// `GET /agents/repos/{o}/{r}/tasks`, following `Link: rel="next"` across pages. The
    /// counts are those of the first page.
    pub async fn list_tasks(&self, query: &ListQuery) -> Result<TaskList, ApiError> {
        let mut url = self.tasks_url();
        {
            let mut q = url.query_pairs_mut();
            if let Some(since) = &query.since {
                q.append_pair("since", &since.to_string());
            }
            for id in &query.creator_id {
                q.append_pair("creator_id", &id.to_string());
            }
            if !query.state.is_empty() {
                let csv: Vec<&str> = query.state.iter().map(TaskState::as_str).collect();
                q.append_pair("state", &csv.join(","));
            }
            if let Some(sort) = query.sort {
                q.append_pair(
                    "sort",
                    match sort {
                        ListSort::UpdatedAt => "updated_at",
                        ListSort::CreatedAt => "created_at",
                    },
                );
            }
            if let Some(dir) = query.direction {
                q.append_pair(
                    "direction",
                    match dir {
                        Direction::Asc => "asc",
                        Direction::Desc => "desc",
                    },
                );
            }
            if let Some(n) = query.per_page {
                q.append_pair("per_page", &n.clamp(1, 100).to_string());
            }
            if let Some(a) = query.is_archived {
                q.append_pair("is_archived", if a { "true" } else { "false" });
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        let max_pages = query.max_pages.unwrap_or(50).max(1);
        let mut out: Option<TaskList> = None;
        let mut seen = HashSet::new();
        let mut next = Some(url);
        let mut pages = 0;
        while let Some(url) = next.take() {
            if !seen.insert(url.to_string()) || pages >= max_pages {
                break;
            }
            pages += 1;
            let reply = self.get(&url, &mut |_, _| {}).await?;
            let page: TaskList = decode(&Method::GET, &url, &reply)?;
            page.tasks.iter().for_each(note_states);
            match &mut out {
                None => out = Some(page),
                Some(all) => all.tasks.extend(page.tasks),
            }
            if let Some(link) = retry::next_link(&reply.headers) {
                let link = url.join(&link).map_err(|e| ApiError::Decode {
                    method: "GET".into(),
                    path: path_of(&url),
                    status: reply.status,
                    request_id: reply.request_id.clone(),
                    detail: format!("Link rel=\"next\" is not a URL: {e}"),
                })?;
                if !self.same_origin(&link) {
                    return Err(ApiError::Decode {
                        method: "GET".into(),
                        path: path_of(&url),
                        status: reply.status,
                        request_id: reply.request_id.clone(),
                        detail: "Link rel=\"next\" points to another host; not following it with the token".into(),
                    });
                }
                next = Some(link);
            }
        }
        Ok(out.unwrap_or(TaskList {
            tasks: Vec::new(),
            total_active_count: None,
            total_archived_count: None,
        }))
    }

    /// The pull request whose head is `head_ref` in this repository (any state), via
    /// `GET /repos/{o}/{r}/pulls?head={owner}:{head_ref}&state=all`.
    pub async fn find_pull_for_branch(
        &self,
        head_ref: &str,
    ) -> Result<Option<PullRequest>, ApiError> {
        let mut url = self.repo_url(&["pulls"]);
        url.query_pairs_mut()
            .append_pair("head", &format!("{}:{head_ref}", self.inner.owner))
            .append_pair("state", "all");
        let reply = self.get(&url, &mut |_, _| {}).await?;
        let pulls: Vec<PullRequest> = decode(&Method::GET, &url, &reply)?;
        Ok(pulls.into_iter().next())
    }

    /// `GET /repos/{o}/{r}/pulls/{number}`.
    pub async fn get_pull(&self, number: i64) -> Result<PullRequest, ApiError> {
        let n = number.to_string();
        let url = self.repo_url(&["pulls", &n]);
        let reply = self.get(&url, &mut |_, _| {}).await?;
        decode(&Method::GET, &url, &reply)
    }

    /// `POST /repos/{o}/{r}/statuses/{sha}` (not retried).
    pub async fn create_commit_status(
        &self,
        sha: &str,
        status: &CommitStatus,
    ) -> Result<(), ApiError> {
        let url = self.repo_url(&["statuses", sha]);
        self.send_once(
            Method::POST,
            &url,
            Some(to_json(status)?),
            self.call_deadline(),
        )
        .await?;
        Ok(())
    }

    /// `POST /repos/{o}/{r}/issues/{number}/comments` (not retried).
    pub async fn create_issue_comment(
        &self,
        number: i64,
        body: &str,
    ) -> Result<CreatedComment, ApiError> {
        let n = number.to_string();
        let url = self.repo_url(&["issues", &n, "comments"]);
        let json = serde_json::json!({ "body": body });
        let reply = self
            .send_once(
                Method::POST,
                &url,
                Some(json.to_string().into_bytes()),
                self.call_deadline(),
            )
            .await?;
        decode(&Method::POST, &url, &reply)
    }

    /// `POST /repos/{o}/{r}/issues/{number}/labels` (adds; not retried).
    pub async fn add_labels(&self, number: i64, labels: &[&str]) -> Result<(), ApiError> {
        let n = number.to_string();
        let url = self.repo_url(&["issues", &n, "labels"]);
        let json = serde_json::json!({ "labels": labels });
        self.send_once(
            Method::POST,
            &url,
            Some(json.to_string().into_bytes()),
            self.call_deadline(),
        )
        .await?;
        Ok(())
    }
}

/// Most pages of comments [`Client::list_issue_comments`] reads (100 comments each).
const MAX_COMMENT_PAGES: u32 = 50;

impl Client {
    /// `GET /repos/{o}/{r}/issues/{number}/comments` (100 per page), following
    /// `Link: rel="next"` on the same host for at most 50 pages; retried, conditional.
    pub async fn list_issue_comments(
        &self,
        number: i64,
    ) -> Result<Vec<super::types::IssueComment>, ApiError> {
        let n = number.to_string();
        let mut url = self.repo_url(&["issues", &n, "comments"]);
        url.query_pairs_mut().append_pair("per_page", "100");
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut next = Some(url);
        let mut pages = 0;
        while let Some(url) = next.take() {
            if !seen.insert(url.to_string()) || pages >= MAX_COMMENT_PAGES {
                break;
            }
            pages += 1;
            let reply = self.get(&url, &mut |_, _| {}).await?;
            let page: Vec<super::types::IssueComment> = decode(&Method::GET, &url, &reply)?;
            out.extend(page);
            next = self.next_page(&url, &reply)?;
        }
        Ok(out)
    }

    /// `PATCH /repos/{o}/{r}/issues/comments/{comment_id}` with a new body (not retried).
    pub async fn update_issue_comment(
        &self,
        comment_id: i64,
        body: &str,
    ) -> Result<super::types::IssueComment, ApiError> {
        let id = comment_id.to_string();
        let url = self.repo_url(&["issues", "comments", &id]);
        let json = serde_json::json!({ "body": body });
        let reply = self
            .send_once(
                Method::PATCH,
                &url,
                Some(json.to_string().into_bytes()),
                self.call_deadline(),
            )
            .await?;
        decode(&Method::PATCH, &url, &reply)
    }

    /// The `Link: rel="next"` of `reply`, resolved against `url`; refused when it leaves
    /// the API host (the token is never sent elsewhere).
    fn next_page(&self, url: &Url, reply: &Reply) -> Result<Option<Url>, ApiError> {
        let Some(link) = retry::next_link(&reply.headers) else {
            return Ok(None);
        };
        let bad = |detail: String| ApiError::Decode {
            method: "GET".into(),
            path: path_of(url),
            status: reply.status,
            request_id: reply.request_id.clone(),
            detail,
        };
        let link = url
            .join(&link)
            .map_err(|e| bad(format!("Link rel=\"next\" is not a URL: {e}")))?;
        if !self.same_origin(&link) {
            return Err(bad(
                "Link rel=\"next\" points to another host; not following it with the token".into(),
            ));
        }
        Ok(Some(link))
    }
}

static WARNED_STATES: LazyLock<Mutex<HashSet<String>>> =
    LazyLock::new(|| Mutex::new(HashSet::new()));

/// Warn (once per value per process) about a state this version does not know: it is
/// treated as "not finished".
pub(crate) fn note_state(state: &TaskState) {
    if let TaskState::Unknown(s) = state {
        let first = WARNED_STATES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(s.clone());
        if first {
            tracing::warn!(state = %s, "unknown agent task state; treating it as not finished");
        }
    }
}

fn note_states(task: &Task) {
    note_state(&task.state);
    for s in task.sessions.iter().flatten() {
        note_state(&s.state);
    }
}

/// The wall time of `clock` as a timestamp (the epoch when out of range).
pub(crate) fn timestamp(clock: &dyn Clock) -> jiff::Timestamp {
    jiff::Timestamp::try_from(clock.now()).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}
