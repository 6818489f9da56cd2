//! The review gate (DESIGN §1 step 8, §4): once a run has a verdict, mark the agent's pull
//! request so branch protection and people can act on it — a commit status (context
//! `report.status-context`) on the gated head commit, `success` only when the verdict is
//! `passed`, linking to the workflow run; and, when `report.comment` is on, exactly one
//! comment holding the redacted step summary, found again on later runs for the same task
//! key by a hidden marker line written by the token's own user (GraphQL `viewer`), and
//! edited in place. The gate never merges, approves or
//! closes anything.
//!
//! Best effort: a missing pull request or commit is a note, an API failure an entry in
//! [`ReviewRecord::errors`]; nothing here changes the verdict or panics. Comments are only
//! posted after the existing ones were listed, so a failed listing posts nothing rather
//! than a duplicate. What it does not own: the comment's marker and body (`comment`), the
//! verdict (`assessment`), the Markdown (`summary`), the redaction
//! (`publish::outputs::redact_report`, [`Masker`]), the HTTP client.
//!
//! What it asks of GitHub is the [`ReviewApi`] trait: the HTTP [`Client`] in a run, a
//! scripted stand-in in a test that wants to say "the comment was deleted between the
//! listing and the edit" in one line rather than through the simulator.

use std::future::Future;

use serde::Serialize;

use super::comment::{CommentAction, CommentSet, comment_body, is_ours};
use crate::adapters::actions::Masker;
use crate::adapters::github::types::{CommitStatus, IssueComment, Viewer};
use crate::adapters::github::{ApiError, Client, CreatedComment};
use crate::core::report::{Report, Verdict, short};

/// The five GitHub calls of the review gate, each as [`Client`]'s method of the same name
/// makes it (same answers, same errors).
pub trait ReviewApi: Sync {
    /// `POST /repos/{owner}/{repo}/statuses/{sha}`.
    fn create_commit_status(
        &self,
        sha: &str,
        status: &CommitStatus,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// Who the token acts as (GraphQL `viewer`).
    fn viewer(&self) -> impl Future<Output = Result<Viewer, ApiError>> + Send;
    /// Every comment of issue or pull request `number`, oldest first.
    fn list_issue_comments(
        &self,
        number: i64,
    ) -> impl Future<Output = Result<Vec<IssueComment>, ApiError>> + Send;
    /// `POST /repos/{owner}/{repo}/issues/{number}/comments`.
    fn create_issue_comment(
        &self,
        number: i64,
        body: &str,
    ) -> impl Future<Output = Result<CreatedComment, ApiError>> + Send;
    /// `PATCH /repos/{owner}/{repo}/issues/comments/{id}`.
    fn update_issue_comment(
        &self,
        comment_id: i64,
        body: &str,
    ) -> impl Future<Output = Result<IssueComment, ApiError>> + Send;
}

impl ReviewApi for Client {
    fn create_commit_status(
        &self,
        sha: &str,
        status: &CommitStatus,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        Client::create_commit_status(self, sha, status)
    }
    fn viewer(&self) -> impl Future<Output = Result<Viewer, ApiError>> + Send {
        Client::viewer(self)
    }
    fn list_issue_comments(
        &self,
        number: i64,
    ) -> impl Future<Output = Result<Vec<IssueComment>, ApiError>> + Send {
        Client::list_issue_comments(self, number)
    }
    fn create_issue_comment(
        &self,
        number: i64,
        body: &str,
    ) -> impl Future<Output = Result<CreatedComment, ApiError>> + Send {
        Client::create_issue_comment(self, number, body)
    }
    fn update_issue_comment(
        &self,
        comment_id: i64,
        body: &str,
    ) -> impl Future<Output = Result<IssueComment, ApiError>> + Send {
        Client::update_issue_comment(self, comment_id, body)
    }
}

/// GitHub's limit on a commit status description, in characters.
pub const MAX_STATUS_DESCRIPTION: usize = 140;

/// What [`review`] needs besides the client and the report.
#[derive(Debug, Clone)]
pub struct ReviewOptions {
    /// Context of the commit status (`report.status-context`, default `agent-gate`).
    pub status_context: String,
    /// Post or update the summary comment (`report.comment`).
    pub comment: bool,
    /// The workflow run (`ActionsEnv::run_url`): the status's `target_url` and the
    /// summary's link. Without it the status links to the task's session log, if known.
    pub run_url: Option<String>,
    /// The run's secrets: nothing sent to GitHub contains one.
    pub masker: Masker,
}

impl ReviewOptions {
    /// The policy's `report` settings with the run's link and secrets.
    pub fn new(
        status_context: impl Into<String>,
        comment: bool,
        run_url: Option<String>,
        masker: Masker,
    ) -> ReviewOptions {
        ReviewOptions {
            status_context: status_context.into(),
            comment,
            run_url,
            masker,
        }
    }
}

/// The commit status [`review`] set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusSet {
    pub sha: String,
    /// `success`, `failure` or `error`.
    pub state: String,
    pub context: String,
    pub description: String,
}

/// What [`review`] did, for the report's notes and the audit record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReviewRecord {
    pub status: Option<StatusSet>,
    pub comment: Option<CommentSet>,
    /// Why a step was skipped (no pull request, no gated commit, comments off).
    pub notes: Vec<String>,
    /// Steps that failed (never the verdict's business).
    pub errors: Vec<String>,
}

impl ReviewRecord {
    /// One line per thing done, skipped or failed, for `Report::notes` (errors included
    /// as notes: they must not turn the verdict into `api-error`).
    pub fn summary_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(s) = &self.status {
            lines.push(format!(
                "review: commit status `{}` = {} on {}",
                s.context,
                s.state,
                short(&s.sha)
            ));
        }
        if let Some(c) = &self.comment {
            lines.push(format!(
                "review: summary comment {} ({})",
                c.action.as_str(),
                c.html_url
            ));
        }
        lines.extend(self.notes.iter().map(|n| format!("review: {n}")));
        lines.extend(self.errors.iter().map(|e| format!("review failed: {e}")));
        lines
    }
}

/// The commit status state of a verdict: `success` only for `passed`; `error` when the
/// gate could not decide (configuration or API error, or a check whose environment lacks
/// its program); `failure` otherwise.
pub fn status_state(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Passed => "success",
        Verdict::ConfigError | Verdict::ApiError | Verdict::CheckError => "error",
        // Never posted (a dry run has no pull request); not a pass.
        Verdict::DryRun => "pending",
        Verdict::OverBudget
        | Verdict::Cancelled
        | Verdict::TimedOut
        | Verdict::AgentFailed
        | Verdict::ScopeViolation
        | Verdict::ChecksFailed => "failure",
    }
}

/// The status description: `agent-gate: scope-violation (2 violations)`, plain text on
/// one line, secrets masked, at most [`MAX_STATUS_DESCRIPTION`] characters.
pub fn status_description(report: &Report, masker: &Masker) -> String {
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let task_state = || {
        report
            .task
            .as_ref()
            .map(|t| format!("task state: {}", t.state))
    };
    let detail = match report.verdict {
        Verdict::DryRun => Some("no task was started".to_string()),
        Verdict::Passed => Some(format!(
            "{}, +{} -{}",
            plural(report.totals.files.max(report.files.len()), "file", "files"),
            report.totals.lines_added,
            report.totals.lines_deleted
        )),
        Verdict::ScopeViolation => Some(plural(
            report.violations.len().max(report.totals.violations),
            "violation",
            "violations",
        )),
        Verdict::CheckError => {
            let names: Vec<&str> = report
                .checks
                .iter()
                .filter(|c| c.required && c.status == crate::core::report::CheckStatus::Unavailable)
                .map(|c| c.name.as_str())
                .collect();
            Some(format!(
                "{} could not run (missing tool): {}",
                plural(names.len(), "required check", "required checks"),
                names.join(", ")
            ))
        }
        Verdict::ChecksFailed => {
            let names: Vec<&str> = report
                .checks
                .iter()
                .filter(|c| c.fails_gate())
                .map(|c| c.name.as_str())
                .collect();
            Some(format!(
                "{} failed: {}",
                plural(names.len(), "required check", "required checks"),
                names.join(", ")
            ))
        }
        Verdict::OverBudget => report
            .task
            .as_ref()
            .map(|t| crate::core::report::credits_phrase(t.ai_credits)),
        Verdict::AgentFailed | Verdict::TimedOut | Verdict::Cancelled => task_state(),
        Verdict::ConfigError | Verdict::ApiError => report
            .errors
            .first()
            .map(|e| e.lines().next().unwrap_or_default().to_string()),
    };
    let text = match detail.filter(|d| !d.trim().is_empty()) {
        Some(d) => format!("agent-gate: {} ({d})", report.verdict),
        None => format!("agent-gate: {}", report.verdict),
    };
    let text = masker.redact(&text);
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    truncate_chars(&one_line, MAX_STATUS_DESCRIPTION)
}

/// Mark the report's pull request: the commit status, then the summary comment (posted,
/// or the existing one for the task key edited). `client` must carry a token that may
/// write statuses and issues (`github-token`). Never fails: see [`ReviewRecord`].
pub async fn review(
    client: &impl ReviewApi,
    report: &Report,
    opts: &ReviewOptions,
) -> ReviewRecord {
    let mut record = ReviewRecord::default();
    let Some(pr) = report.task.as_ref().and_then(|t| t.pr_number) else {
        record.notes.push(
            "no pull request is known for this run: no commit status or comment was posted"
                .to_string(),
        );
        return record;
    };
    match report.head_sha.as_deref().filter(|s| !s.trim().is_empty()) {
        None => record.notes.push(format!(
            "no gated commit is known: no commit status was set on pull request #{pr}"
        )),
        Some(sha) => set_status(client, report, opts, sha, &mut record).await,
    }
    if opts.comment {
        post_comment(client, report, opts, pr, &mut record).await;
    } else {
        record
            .notes
            .push("report.comment is off: no summary comment".to_string());
    }
    record
}

/// The commit status on the gated commit `sha`, into `record`.
async fn set_status(
    client: &impl ReviewApi,
    report: &Report,
    opts: &ReviewOptions,
    sha: &str,
    record: &mut ReviewRecord,
) {
    let state = status_state(report.verdict);
    let description = status_description(report, &opts.masker);
    let target_url = opts
        .run_url
        .clone()
        .or_else(|| report.task.as_ref().and_then(|t| t.url.clone()))
        .map(|u| opts.masker.redact(&u).into_owned());
    let status = CommitStatus {
        state: state.to_string(),
        target_url,
        description: Some(description.clone()),
        context: Some(opts.status_context.clone()),
    };
    match client.create_commit_status(sha, &status).await {
        Ok(()) => {
            record.status = Some(StatusSet {
                sha: sha.to_string(),
                state: state.to_string(),
                context: opts.status_context.clone(),
                description,
            });
        }
        Err(e) => record.errors.push(format!(
            "commit status on {}: {}",
            short(sha),
            opts.masker.redact(&e.to_string())
        )),
    }
}

/// The one summary comment on pull request `pr`: the earlier one the token's own user
/// wrote is edited, else a new one is posted; into `record`.
async fn post_comment(
    client: &impl ReviewApi,
    report: &Report,
    opts: &ReviewOptions,
    pr: i64,
    record: &mut ReviewRecord,
) {
    let redact = |e: &ApiError| opts.masker.redact(&e.to_string()).into_owned();
    let (body, truncated) = comment_body(report, opts.run_url.as_deref(), &opts.masker);
    let marker = body.lines().next().unwrap_or_default().to_string();
    let Some(existing) = own_comment(client, pr, &marker, opts, record).await else {
        return;
    };
    let set = |id: i64, html_url: String, action| CommentSet {
        id,
        action,
        html_url,
        truncated,
    };
    if let Some(old) = existing {
        match client.update_issue_comment(old.id, &body).await {
            Ok(c) => {
                record.comment = Some(set(c.id, c.html_url, CommentAction::Updated));
                return;
            }
            // Deleted since it was listed: post a new one.
            Err(ApiError::NotFound { .. }) => {}
            Err(e) => {
                record.errors.push(format!(
                    "updating comment {} on pull request #{pr}: {}",
                    old.id,
                    redact(&e)
                ));
                return;
            }
        }
    }
    match client.create_issue_comment(pr, &body).await {
        Ok(c) => record.comment = Some(set(c.id, c.html_url, CommentAction::Created)),
        Err(e) => record
            .errors
            .push(format!("commenting on pull request #{pr}: {}", redact(&e))),
    }
}

/// The earlier summary comment (carrying `marker`) the token's own user wrote on pull
/// request `pr`: `Some(None)` when there is none, `None` when the comments cannot be listed
/// (then nothing is posted, to avoid a duplicate). The marker alone proves nothing: anyone
/// who may comment can write it; without knowing the token's user, no comment is edited.
async fn own_comment(
    client: &impl ReviewApi,
    pr: i64,
    marker: &str,
    opts: &ReviewOptions,
    record: &mut ReviewRecord,
) -> Option<Option<IssueComment>> {
    let redact = |e: &ApiError| opts.masker.redact(&e.to_string()).into_owned();
    let me = match client.viewer().await {
        Ok(v) => Some(v),
        Err(e) => {
            record.notes.push(format!(
                "could not learn who the token acts as ({}): a new summary comment is posted \
                 instead of editing an earlier one",
                redact(&e)
            ));
            None
        }
    };
    match client.list_issue_comments(pr).await {
        Ok(list) => Some(list.into_iter().find(|c| {
            is_ours(c, marker)
                && me
                    .as_ref()
                    .zip(c.user.as_ref())
                    .is_some_and(|(me, author)| me.is(author))
        })),
        Err(e) => {
            record.errors.push(format!(
                "listing the comments of pull request #{pr} (no comment posted, to avoid a duplicate): {}",
                redact(&e)
            ));
            None
        }
    }
}

fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}
