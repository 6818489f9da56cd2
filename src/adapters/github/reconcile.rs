//! Creating a task at most once. The task-creating POST is never retried blindly: after an
//! ambiguous failure (timeout, broken connection, 5xx, unreadable 201) the server may have
//! created the task, so the client lists recent tasks (`since`, `creator_id`) and reads each
//! candidate's `sessions[].prompt` (and `name`) for the idempotency marker; only when the
//! marker is nowhere does it POST again, once the rate-limit "not before" allows, a bounded
//! number of times. [`find_task_by_marker`](Client::find_task_by_marker) is also the
//! "attach on re-run" lookup. The marker format itself belongs to the flow, not here.

use tokio::time::Instant;

use super::client::Client;
use super::endpoints::{Direction, ListQuery, ListSort};
use super::error::ApiError;
use super::types::{CreateTaskRequest, Task};

/// POSTs at most this many times in `create_task_idempotent`, rate-limited ones aside.
const MAX_POSTS: u32 = 3;
/// Candidates read one by one at most (most recently created first).
const MAX_CANDIDATES: usize = 50;

/// How an idempotent create ended.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatedTask {
    pub task: Task,
    /// The task was found by its marker after an ambiguous failure, not returned by a POST.
    pub reconciled: bool,
    /// POST requests sent.
    pub posts: u32,
}

impl Client {
    /// Create a task at most once per `marker` (which must appear in `req.prompt`). `since`
    /// is a time just before the first POST (allow for clock skew). A definite refusal
    /// (4xx other than a rate limit) is returned at once. A POST refused by a rate limit
    /// (primary or secondary) is sent again after the wait GitHub asks for, as often as
    /// the deadline allows: it was not acted on, so it cannot duplicate the task.
    pub async fn create_task_idempotent(
        &self,
        req: &CreateTaskRequest,
        marker: &str,
        since: jiff::Timestamp,
    ) -> Result<CreatedTask, ApiError> {
        if marker.trim().is_empty() || !req.prompt.contains(marker) {
            return Err(ApiError::Config(
                "the prompt must contain the idempotency marker so a lost create can be found again".to_string(),
            ));
        }
        let deadline = self.call_deadline();
        let client = self.with_deadline(deadline);
        let mut posts = 0;
        // POSTs refused by a rate limit (definitely not acted on).
        let mut limited = 0;
        loop {
            posts += 1;
            let err = match client.create_task(req).await {
                Ok(task) => {
                    return Ok(CreatedTask {
                        task,
                        reconciled: false,
                        posts,
                    });
                }
                Err(e) => e,
            };
            if err.is_ambiguous() {
                tracing::warn!(error = %err, "task creation had an ambiguous outcome; looking for the task by its marker");
                // The task may need a moment to show in the list: look twice.
                for look in 0..2 {
                    if look > 0 {
                        let wait = client.retry_policy().backoff(posts);
                        if Instant::now() + wait > deadline {
                            break;
                        }
                        tokio::time::sleep(wait).await;
                    }
                    if let Some(task) = client.find_task_by_marker(marker, Some(since)).await? {
                        return Ok(CreatedTask {
                            task,
                            reconciled: true,
                            posts,
                        });
                    }
                }
            } else if !matches!(err, ApiError::RateLimited { .. }) {
                // Definite: the server refused (4xx), or nothing was sent (connect error,
                // deadline). A connect error is safe to retry; everything else is final.
                let connect = matches!(
                    err,
                    ApiError::Transport {
                        kind: super::error::TransportKind::Connect,
                        ..
                    }
                );
                if !connect {
                    return Err(err);
                }
            }
            // A rate-limited POST was refused before the server acted: waiting as told and
            // sending it again cannot duplicate the task, so only other failures count
            // against MAX_POSTS (the deadline still bounds the waiting).
            if matches!(err, ApiError::RateLimited { .. }) {
                limited += 1;
            } else if posts - limited >= MAX_POSTS {
                return Err(err);
            }
            let now = Instant::now();
            let mut at = now + client.retry_policy().backoff(posts.min(MAX_POSTS));
            if let Some(nb) = client.not_before() {
                at = at.max(nb);
            }
            if at > deadline {
                return Err(err);
            }
            tokio::time::sleep_until(at).await;
        }
    }

    /// The task of this repository (updated at or after `since`, created by `creator_id`
    /// when configured) whose session prompt or name contains `marker`; the earliest
    /// created when several do. Reads each candidate with a GET (list items carry no
    /// sessions).
    pub async fn find_task_by_marker(
        &self,
        marker: &str,
        since: Option<jiff::Timestamp>,
    ) -> Result<Option<Task>, ApiError> {
        self.find_task_by_marker_with(marker, since, &MarkerHints::default())
            .await
    }

    /// [`Client::find_task_by_marker`] with what the caller already knows: the task
    /// `hints.recorded` is read first (one GET) and, when it carries the marker, is the
    /// answer; candidates `hints.other` says carry another marker are never read.
    pub async fn find_task_by_marker_with(
        &self,
        marker: &str,
        since: Option<jiff::Timestamp>,
        hints: &MarkerHints<'_>,
    ) -> Result<Option<Task>, ApiError> {
        if marker.trim().is_empty() {
            return Ok(None);
        }
        if let Some(id) = hints.recorded {
            match self.get_task(id).await {
                Ok(task) if carries(&task, marker) => return Ok(Some(task)),
                // Gone, hidden, or not what was recorded: look for it as if unknown.
                Ok(_) | Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let list = self
            .list_tasks(&ListQuery {
                since,
                creator_id: self.creator_id().into_iter().collect(),
                sort: Some(ListSort::CreatedAt),
                direction: Some(Direction::Desc),
                per_page: Some(100),
                max_pages: Some(5),
                ..ListQuery::default()
            })
            .await?;
        let mut found: Vec<Task> = Vec::new();
        for candidate in list.tasks.iter().take(MAX_CANDIDATES) {
            if hints.other.is_some_and(|other| other(&candidate.id)) {
                continue;
            }
            if candidate
                .name
                .as_deref()
                .is_some_and(|n| n.contains(marker))
            {
                found.push(
                    self.get_task(&candidate.id)
                        .await
                        .unwrap_or_else(|_| candidate.clone()),
                );
                continue;
            }
            let task = match self.get_task(&candidate.id).await {
                Ok(t) => t,
                // Gone or hidden since the list: not ours to find.
                Err(ApiError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            if carries(&task, marker) {
                found.push(task);
            }
        }
        found.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        if found.len() > 1 {
            tracing::warn!(
                marker,
                count = found.len(),
                "several tasks carry the same idempotency marker; using the earliest"
            );
        }
        Ok(found.into_iter().next())
    }
}

/// What a caller knows before looking for the task that carries a marker.
#[derive(Default)]
pub struct MarkerHints<'a> {
    /// The task recorded for the marker (e.g. by agent-gate's task index).
    pub recorded: Option<&'a str>,
    /// Whether a task id is known to carry another marker (so it is not read).
    pub other: Option<&'a (dyn Fn(&str) -> bool + Sync)>,
}

/// Whether one of the task's session prompts contains `marker`.
fn carries(task: &Task, marker: &str) -> bool {
    task.sessions
        .iter()
        .flatten()
        .any(|s| s.prompt.as_deref().is_some_and(|p| p.contains(marker)))
}
