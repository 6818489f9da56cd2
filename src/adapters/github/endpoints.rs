//! The typed endpoint methods of [`Client`]: the agent-tasks endpoints (create, get, the
//! paged list with its [`ListQuery`]) and the repository endpoints the gate uses (pull
//! requests, commit statuses, issue comments, labels), with `Link: rel="next"` paging kept
//! on the API host and a warning for task states this version does not know. Each builds
//! its URL and decodes the answer; configuration, headers and URLs under the base are in
//! `client`, sending, retries, rate limits and the `ETag` cache in `transport`.

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex, PoisonError};

use reqwest::{Method, Url};
use serde::{Deserialize, Serialize};

use super::client::{Client, Reply, RetryObserver, announce_retry};
use super::error::ApiError;
use super::retry;
use super::transport::{decode, path_of, to_json};
use super::types::{
    CommitStatus, CreateTaskRequest, IssueComment, PullRequest, Task, TaskList, TaskState, Viewer,
};

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

/// Most pages of comments [`Client::list_issue_comments`] reads (100 comments each).
const MAX_COMMENT_PAGES: u32 = 50;

impl Client {
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
        self.get_task_observed(id, &mut announce_retry).await
    }

    pub(crate) async fn get_task_observed(
        &self,
        id: &str,
        observer: RetryObserver<'_>,
    ) -> Result<Task, ApiError> {
        self.get_task_watched(id, observer)
            .await
            .map(|(task, _)| task)
    }

    /// [`Client::get_task_observed`], and whether GitHub answered `304 Not Modified` (the
    /// task is unchanged, and the request was free of the primary rate limit).
    pub(crate) async fn get_task_watched(
        &self,
        id: &str,
        observer: RetryObserver<'_>,
    ) -> Result<(Task, bool), ApiError> {
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
        Ok((task, reply.revalidated))
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
        self.get_pages(url, max_pages, |page: TaskList| {
            page.tasks.iter().for_each(note_states);
            match &mut out {
                None => out = Some(page),
                Some(all) => all.tasks.extend(page.tasks),
            }
        })
        .await?;
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
        let reply = self.get(&url, &mut announce_retry).await?;
        let pulls: Vec<PullRequest> = decode(&Method::GET, &url, &reply)?;
        Ok(pulls.into_iter().next())
    }

    /// The repository's open pull requests, oldest first: `GET /repos/{o}/{r}/pulls?state=open`
    /// with 100 a page, following `Link: rel="next"` for at most `max_pages` pages.
    pub async fn list_open_pulls(&self, max_pages: u32) -> Result<Vec<PullRequest>, ApiError> {
        let mut url = self.repo_url(&["pulls"]);
        url.query_pairs_mut()
            .append_pair("state", "open")
            .append_pair("sort", "created")
            .append_pair("direction", "asc")
            .append_pair("per_page", "100");
        let mut out = Vec::new();
        self.get_pages(url, max_pages, |page: Vec<PullRequest>| out.extend(page))
            .await?;
        Ok(out)
    }

    /// `GET /repos/{o}/{r}/pulls/{number}`.
    pub async fn get_pull(&self, number: i64) -> Result<PullRequest, ApiError> {
        let n = number.to_string();
        let url = self.repo_url(&["pulls", &n]);
        let reply = self.get(&url, &mut announce_retry).await?;
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

    /// `GET /repos/{o}/{r}/issues/{number}/comments` (100 per page), following
    /// `Link: rel="next"` on the same host for at most 50 pages; retried, conditional.
    pub async fn list_issue_comments(&self, number: i64) -> Result<Vec<IssueComment>, ApiError> {
        let n = number.to_string();
        let mut url = self.repo_url(&["issues", &n, "comments"]);
        url.query_pairs_mut().append_pair("per_page", "100");
        let mut out = Vec::new();
        self.get_pages(url, MAX_COMMENT_PAGES, |page: Vec<IssueComment>| {
            out.extend(page);
        })
        .await?;
        Ok(out)
    }

    /// Who the token acts as: GraphQL `query { viewer { login databaseId } }` (POST to the
    /// GraphQL endpoint; a read, so retried like a GET would be only by the caller). REST
    /// `GET /user` is not used: it answers 403 to installation tokens such as the workflow's
    /// `GITHUB_TOKEN`, the default token for comments, while `viewer` answers both kinds.
    pub async fn viewer(&self) -> Result<Viewer, ApiError> {
        #[derive(Deserialize)]
        struct Data {
            viewer: Option<Viewer>,
        }
        #[derive(Deserialize)]
        struct Message {
            #[serde(default)]
            message: String,
        }
        #[derive(Deserialize)]
        struct Answer {
            data: Option<Data>,
            #[serde(default)]
            errors: Vec<Message>,
        }
        let url = self.graphql_url();
        let query = serde_json::json!({ "query": "query { viewer { login databaseId } }" });
        let reply = self
            .send_once(
                Method::POST,
                &url,
                Some(query.to_string().into_bytes()),
                self.call_deadline(),
            )
            .await?;
        let answer: Answer = decode(&Method::POST, &url, &reply)?;
        match answer.data.and_then(|d| d.viewer) {
            Some(v) if !v.login.is_empty() => Ok(v),
            _ => Err(ApiError::Decode {
                method: "POST".to_string(),
                path: path_of(&url),
                status: reply.status,
                request_id: reply.request_id.clone(),
                detail: answer
                    .errors
                    .iter()
                    .fold("no viewer in the GraphQL answer".to_string(), |acc, e| {
                        acc + "; " + &e.message
                    }),
            }),
        }
    }

    /// `PATCH /repos/{o}/{r}/issues/comments/{comment_id}` with a new body (not retried).
    pub async fn update_issue_comment(
        &self,
        comment_id: i64,
        body: &str,
    ) -> Result<IssueComment, ApiError> {
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

    /// `GET url` and the pages its `Link: rel="next"` headers name (each URL once, never
    /// off the API host: [`Client::next_page`]), at most `max_pages` (at least one); each
    /// page decoded and handed to `on_page` in order. Every GET is retried and conditional.
    pub(super) async fn get_pages<P: serde::de::DeserializeOwned>(
        &self,
        url: Url,
        max_pages: u32,
        mut on_page: impl FnMut(P),
    ) -> Result<(), ApiError> {
        let mut seen = HashSet::new();
        let mut next = Some(url);
        while let Some(url) = next.take() {
            if seen.len() >= max_pages.max(1) as usize || !seen.insert(url.to_string()) {
                break;
            }
            let reply = self.get(&url, &mut announce_retry).await?;
            on_page(decode(&Method::GET, &url, &reply)?);
            next = self.next_page(&url, &reply)?;
        }
        Ok(())
    }

    /// The `Link: rel="next"` of `reply`, resolved against `url`; refused when it leaves
    /// the API host (the token is never sent elsewhere).
    pub(super) fn next_page(&self, url: &Url, reply: &Reply) -> Result<Option<Url>, ApiError> {
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
