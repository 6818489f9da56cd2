//! Stopping a task, as far as GitHub allows. GitHub documents no endpoint that cancels an
//! agent task (reference §8), so [`stop`] records the last state and, when the task's pull
//! request exists, marks it: a failure commit status on its head, a label, and a comment
//! saying the session must be stopped from its session log page (with the link). Each step is
//! best effort and reported in the [`StopRecord`] for the report and the audit file. This is
//! the one place a real cancel endpoint will slot in.

use serde::Serialize;

use super::client::Client;
use super::error::ApiError;
use super::types::{ArtifactRef, CommitStatus, PullRequest, Task, TaskState};

/// Why the gate stops following a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    /// The gate's deadline passed.
    TimedOut,
    /// The gate was interrupted (SIGINT/SIGTERM, workflow cancelled).
    Cancelled,
}

impl StopReason {
    fn describe(self) -> &'static str {
        match self {
            StopReason::TimedOut => "the gate's deadline passed before the task finished",
            StopReason::Cancelled => "the gate was cancelled before the task finished",
        }
    }
}

/// Options of [`stop`].
#[derive(Debug, Clone)]
pub struct StopOptions {
    /// Context of the failure commit status (`report.status-context`).
    pub status_context: String,
    pub label_timed_out: String,
    pub label_cancelled: String,
    /// Post the explanatory comment.
    pub comment: bool,
    /// Touch the pull request at all (status, label, comment).
    pub mark_pull_request: bool,
}

impl Default for StopOptions {
    fn default() -> Self {
        StopOptions {
            status_context: "agent-gate".to_string(),
            label_timed_out: "agent-gate: timed-out".to_string(),
            label_cancelled: "agent-gate: cancelled".to_string(),
            comment: true,
            mark_pull_request: true,
        }
    }
}

/// One thing `stop` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum StopAction {
    CommitStatus {
        sha: String,
        context: String,
        state: String,
    },
    Label {
        name: String,
    },
    Comment {
        url: String,
    },
}

/// The pull request `stop` marked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoppedPull {
    pub number: i64,
    pub html_url: String,
    pub head_sha: String,
}

/// What `stop` found and did, for the report and the audit record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StopRecord {
    pub task_id: String,
    pub reason: StopReason,
    /// The last state seen.
    pub last_state: TaskState,
    /// Where a person can stop the session.
    pub session_url: Option<String>,
    /// Always false until GitHub ships a cancel endpoint.
    pub cancelled_on_github: bool,
    pub pull_request: Option<StoppedPull>,
    pub actions: Vec<StopAction>,
    /// Steps that failed (best effort; the gate's verdict does not depend on them).
    pub errors: Vec<String>,
    /// When `stop` ran (RFC 3339, from the client's clock).
    pub at: String,
}

impl StopRecord {
    /// The record of stopping `task` for `reason` at `at`, before anything was done.
    pub fn begin(task: &Task, reason: StopReason, at: jiff::Timestamp) -> StopRecord {
        StopRecord {
            task_id: task.id.clone(),
            reason,
            last_state: task.state.clone(),
            session_url: task.html_url.clone(),
            cancelled_on_github: false,
            pull_request: None,
            actions: Vec::new(),
            errors: Vec::new(),
            at: at.to_string(),
        }
    }
}

/// Stop following `task`: record it, and mark its pull request if there is one. `client`
/// must carry a token that may write statuses, labels and comments in the repository.
pub async fn stop(
    client: &Client,
    task: &Task,
    reason: StopReason,
    opts: &StopOptions,
) -> StopRecord {
    let mut record = StopRecord::begin(task, reason, client.now());
    tracing::warn!(
        task = %task.id,
        state = %task.state,
        url = task.html_url.as_deref().unwrap_or("-"),
        "GitHub has no API to cancel an agent task; stop the session from its session log page"
    );
    if !opts.mark_pull_request {
        return record;
    }
    let pull = match find_pull(client, task).await {
        Ok(Some(p)) => p,
        Ok(None) => return record,
        Err(e) => {
            record.errors.push(format!("finding the pull request: {e}"));
            return record;
        }
    };
    record.pull_request = Some(StoppedPull {
        number: pull.number,
        html_url: pull.html_url.clone(),
        head_sha: pull.head.sha.clone(),
    });

    let description = truncate(
        &format!("{} (last state: {})", reason.describe(), task.state),
        140,
    );
    let status = CommitStatus {
        state: "failure".to_string(),
        target_url: task.html_url.clone(),
        description: Some(description),
        context: Some(opts.status_context.clone()),
    };
    match client.create_commit_status(&pull.head.sha, &status).await {
        Ok(()) => record.actions.push(StopAction::CommitStatus {
            sha: pull.head.sha.clone(),
            context: opts.status_context.clone(),
            state: "failure".to_string(),
        }),
        Err(e) => record.errors.push(format!("commit status: {e}")),
    }

    let label = match reason {
        StopReason::TimedOut => &opts.label_timed_out,
        StopReason::Cancelled => &opts.label_cancelled,
    };
    match client.add_labels(pull.number, &[label.as_str()]).await {
        Ok(()) => record.actions.push(StopAction::Label {
            name: label.clone(),
        }),
        Err(e) => record.errors.push(format!("label: {e}")),
    }

    if opts.comment {
        let body = comment_body(task, reason);
        match client.create_issue_comment(pull.number, &body).await {
            Ok(c) => record.actions.push(StopAction::Comment { url: c.html_url }),
            Err(e) => record.errors.push(format!("comment: {e}")),
        }
    }
    record
}

/// The comment `stop` posts.
pub fn comment_body(task: &Task, reason: StopReason) -> String {
    let link = task.html_url.as_deref().map_or_else(
        || "the task's session log page".to_string(),
        |u| format!("<{u}>"),
    );
    format!(
        "**agent-gate stopped following this Copilot task**: {} (last state: `{}`).\n\n\
         GitHub offers no API to cancel a cloud-agent task, so the session may still be running \
         and pushing to this branch. To stop it, open its session log page and choose \
         \"Stop session\": {link}\n\n\
         Task id: `{}`. This pull request has not passed the gate.",
        reason.describe(),
        task.state,
        task.id,
    )
}

fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max_chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The task's pull request: through its branch (branch artifact, then the sessions'
/// `head_ref`, newest first), else through a pull artifact's number.
pub async fn find_pull(client: &Client, task: &Task) -> Result<Option<PullRequest>, ApiError> {
    let decoded: Vec<ArtifactRef> = task
        .artifacts
        .iter()
        .map(super::types::Artifact::decode)
        .collect();
    let pull_ids: Vec<(i64, Option<i64>)> = decoded
        .iter()
        .filter_map(|a| match a {
            ArtifactRef::Pull { id, number, .. } => Some((*id, *number)),
            _ => None,
        })
        .collect();
    let mut branches: Vec<String> = decoded
        .iter()
        .filter_map(|a| match a {
            ArtifactRef::Branch { head_ref, .. } => Some(head_ref.clone()),
            _ => None,
        })
        .collect();
    for s in task.sessions.iter().flatten().rev() {
        if let Some(h) = &s.head_ref
            && !branches.contains(h)
        {
            branches.push(h.clone());
        }
    }
    let mut first_err = None;
    for branch in &branches {
        match client.find_pull_for_branch(branch).await {
            Ok(Some(p)) => return Ok(Some(p)),
            Ok(None) => {}
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    for (id, number) in pull_ids {
        // `data.id` may be the database id or the number (reference §4.2): accept the pull
        // only when it really is the one the artifact names.
        for n in number.into_iter().chain(std::iter::once(id)) {
            match client.get_pull(n).await {
                Ok(p) if p.number == n && (number == Some(n) || p.id == id || p.number == id) => {
                    return Ok(Some(p));
                }
                Ok(_) | Err(ApiError::NotFound { .. }) => {}
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(None),
    }
}
