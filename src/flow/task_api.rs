//! The flow's seam to GitHub's agent-tasks API: [`TaskApi`], the calls the run's task
//! lifecycle makes — list and read tasks, create one at most once, follow one to an end —
//! each as the GitHub [`Client`] makes it (same answers, same errors, the client's retries
//! and deadline inside). The budget, admission, start and polling steps take any
//! `TaskApi`, so a flow test can script GitHub's answers as values where that reads more
//! clearly than an HTTP exchange; the run itself always uses the [`Client`].

use std::future::Future;

use tokio::time::Instant;

use crate::adapters::github::types::{CreateTaskRequest, Task, TaskList};
use crate::adapters::github::{
    ApiError, Client, CreatedTask, ListQuery, MarkerHints, PollEvent, PollOptions, PollOutcome,
};

/// The agent-tasks calls of a run, on one repository.
pub trait TaskApi: Sync {
    /// `owner/repo`, the repository the calls act on.
    fn repository(&self) -> String;

    /// The same API with every call (and its retries) bounded by `deadline`.
    #[must_use]
    fn with_deadline(&self, deadline: Instant) -> Self
    where
        Self: Sized;

    /// The current time as the API's clock tells it (the client's injected clock).
    fn now(&self) -> jiff::Timestamp;

    /// `GET /agents/repos/{owner}/{repo}/tasks`: the tasks matching `query` (every page
    /// up to `query.max_pages`).
    fn list_tasks(
        &self,
        query: &ListQuery,
    ) -> impl Future<Output = Result<TaskList, ApiError>> + Send;

    /// `GET /agents/repos/{owner}/{repo}/tasks/{id}`: one task, with its sessions.
    fn get_task(&self, id: &str) -> impl Future<Output = Result<Task, ApiError>> + Send;

    /// Create a task at most once per `marker` (which `req.prompt` carries): a create whose
    /// answer was lost is found again by its marker, never sent twice
    /// ([`Client::create_task_idempotent`]).
    fn create_task_idempotent(
        &self,
        req: &CreateTaskRequest,
        marker: &str,
        since: jiff::Timestamp,
    ) -> impl Future<Output = Result<CreatedTask, ApiError>> + Send;

    /// The task whose prompt carries `marker`, created since `since`, if there is one
    /// ([`Client::find_task_by_marker_with`]).
    fn find_task_by_marker(
        &self,
        marker: &str,
        since: Option<jiff::Timestamp>,
        hints: &MarkerHints,
    ) -> impl Future<Output = Result<Option<Task>, ApiError>> + Send;

    /// Follow task `id` until it ends, the deadline of `opts` passes, `shutdown` resolves or
    /// the API fails for good; `on_event` hears each state change and retry
    /// ([`poll_task`](crate::adapters::github::poll_task)).
    fn poll_task<S, E>(
        &self,
        id: &str,
        opts: &PollOptions,
        shutdown: S,
        on_event: E,
    ) -> impl Future<Output = PollOutcome> + Send
    where
        S: Future<Output = ()> + Send,
        E: FnMut(PollEvent) + Send;
}

impl TaskApi for Client {
    fn repository(&self) -> String {
        format!("{}/{}", self.owner(), self.repo())
    }

    fn with_deadline(&self, deadline: Instant) -> Client {
        Client::with_deadline(self, deadline)
    }

    fn now(&self) -> jiff::Timestamp {
        Client::now(self)
    }

    fn list_tasks(
        &self,
        query: &ListQuery,
    ) -> impl Future<Output = Result<TaskList, ApiError>> + Send {
        Client::list_tasks(self, query)
    }

    fn get_task(&self, id: &str) -> impl Future<Output = Result<Task, ApiError>> + Send {
        Client::get_task(self, id)
    }

    fn create_task_idempotent(
        &self,
        req: &CreateTaskRequest,
        marker: &str,
        since: jiff::Timestamp,
    ) -> impl Future<Output = Result<CreatedTask, ApiError>> + Send {
        Client::create_task_idempotent(self, req, marker, since)
    }

    fn find_task_by_marker(
        &self,
        marker: &str,
        since: Option<jiff::Timestamp>,
        hints: &MarkerHints,
    ) -> impl Future<Output = Result<Option<Task>, ApiError>> + Send {
        Client::find_task_by_marker_with(self, marker, since, hints)
    }

    fn poll_task<S, E>(
        &self,
        id: &str,
        opts: &PollOptions,
        shutdown: S,
        on_event: E,
    ) -> impl Future<Output = PollOutcome> + Send
    where
        S: Future<Output = ()> + Send,
        E: FnMut(PollEvent) + Send,
    {
        crate::adapters::github::poll_task(self, id, opts, shutdown, on_event)
    }
}

/// A time `margin` before `api`'s now: where a search for a task just created starts (the
/// margin allows for the clocks of the gate and GitHub to differ).
pub(crate) fn since(api: &impl TaskApi, margin: std::time::Duration) -> jiff::Timestamp {
    let now = api.now();
    let margin = jiff::SignedDuration::try_from(margin).unwrap_or(jiff::SignedDuration::ZERO);
    now.checked_sub(margin).unwrap_or(now)
}
