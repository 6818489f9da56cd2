//! The review gate (DESIGN §1 step 8, §4): once a run has a verdict, mark the agent's pull
//! request so branch protection and people can act on it — a commit status (context
//! `report.status-context`) on the gated head commit, `success` only when the verdict is
//! `passed`, linking to the workflow run; and, when `report.comment` is on, exactly one
//! comment holding the redacted step summary, found again on later runs for the same task
//! key by a hidden marker line and edited in place. The gate never merges, approves or
//! closes anything.
//!
//! Best effort: a missing pull request or commit is a note, an API failure an entry in
//! [`ReviewRecord::errors`]; nothing here changes the verdict or panics. Comments are only
//! posted after the existing ones were listed, so a failed listing posts nothing rather
//! than a duplicate. What it does not own: the verdict (`assessment`), the Markdown
//! (`summary`), the redaction (`outputs::redact_report`, [`Masker`]), the HTTP client.

use crate::report::short;
use std::fmt::Write as _;

use serde::Serialize;

use crate::actions::Masker;
use crate::github::types::{CommitStatus, IssueComment};
use crate::github::{ApiError, Client};
use crate::outputs::redact_report;
use crate::report::{Report, Verdict};
use crate::summary::{self, SummaryContext};

/// GitHub's limit on a commit status description, in characters.
pub const MAX_STATUS_DESCRIPTION: usize = 140;

/// GitHub refuses comments over 65,536 characters; the gate keeps the whole body within
/// this many bytes (a byte count bounds the character count), with room to spare.
pub const MAX_COMMENT_BYTES: usize = 65_000;

/// Where the complete report is, named when the comment had to be cut.
const FULL_REPORT: &str = "the workflow run's step summary and audit record";

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

/// Whether the summary comment was posted or an existing one edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommentAction {
    Created,
    Updated,
}

impl CommentAction {
    pub fn as_str(self) -> &'static str {
        match self {
            CommentAction::Created => "created",
            CommentAction::Updated => "updated",
        }
    }
}

/// The summary comment [`review`] posted or updated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommentSet {
    pub id: i64,
    pub action: CommentAction,
    pub html_url: String,
    /// The summary was cut to fit GitHub's comment limit.
    pub truncated: bool,
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
/// gate itself could not decide (configuration or API error); `failure` otherwise.
pub fn status_state(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Passed => "success",
        Verdict::ConfigError | Verdict::ApiError => "error",
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
            .map(|t| format!("{:.2} AI credits", t.ai_credits)),
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

/// The hidden first line of the summary comment for a task key. Characters that could
/// end the HTML comment or change its meaning are percent-encoded, so any key gives one
/// stable, well-formed marker.
pub fn comment_marker(key: &str) -> String {
    let mut enc = String::with_capacity(key.len());
    for c in key.trim().chars() {
        let safe = c.is_ascii_alphanumeric()
            || matches!(c, '.' | '_' | '~' | ':' | '/' | '+' | '=')
            // `--` may not appear inside an HTML comment: only single hyphens stay.
            || (c == '-' && !enc.ends_with('-'));
        if safe {
            enc.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(enc, "%{b:02X}");
            }
        }
    }
    format!("<!-- agent-gate:review key={enc} -->")
}

/// Whether `body` is the gate's comment for `marker`: the marker on its first line (a
/// quote or a mention of the marker elsewhere does not count).
fn is_ours(comment: &IssueComment, marker: &str) -> bool {
    comment
        .body
        .as_deref()
        .is_some_and(|b| b.trim_start().lines().next().map(str::trim_end) == Some(marker))
}

/// The summary comment: the marker, the redacted summary (cut, with a note, to stay under
/// [`MAX_COMMENT_BYTES`]) and a footer. Returns the body and whether it was cut.
pub fn comment_body(report: &Report, opts: &ReviewOptions) -> (String, bool) {
    // Redact before rendering or escaping anything: escaping would split a secret
    // (`ghp_…` becomes `ghp&#95;…`) so the masker would miss it afterwards.
    let report = &redact_report(report, &opts.masker);
    let key = report
        .task
        .as_ref()
        .map(|t| if t.key.is_empty() { &t.id } else { &t.key })
        .cloned()
        .unwrap_or_default();
    let marker = comment_marker(&key);
    let ctx = SummaryContext {
        run_url: opts.run_url.clone(),
        full_report: Some(FULL_REPORT.to_string()),
        max_files: 200,
        max_violations: 100,
        max_output_lines: 40,
        max_output_bytes: 4 * 1024,
        ..SummaryContext::default()
    };
    let markdown = summary::render(report, &ctx);
    let footer = format!(
        "\n---\n<sub>agent-gate review of task key {}: this comment is updated in place by \
         later runs for the same task. The gate never merges.</sub>\n",
        summary::code(&key)
    );
    let budget = MAX_COMMENT_BYTES
        .saturating_sub(marker.len() + 1 + footer.len())
        .saturating_sub(TRUNCATION_RESERVE);
    let (markdown, cut) = fit_markdown(&markdown, budget);
    let mut body = format!("{marker}\n{markdown}");
    if cut {
        let link = opts
            .run_url
            .as_deref()
            .map(|u| format!(" ([workflow run](<{}>))", u.replace(['<', '>', '\n'], "")))
            .unwrap_or_default();
        let _ = write!(
            body,
            "\n> [!NOTE]\n> This summary was cut to fit GitHub's 65,536-character comment \
             limit. The complete report is in {FULL_REPORT}{link}.\n"
        );
    }
    body.push_str(&footer);
    // Belt and braces: the report was redacted, and so is everything around it.
    let body = opts.masker.redact(&body).into_owned();
    (body, cut)
}

/// Bytes kept free for what [`fit_markdown`] appends (closing fences and `</details>`)
/// and the truncation note.
const TRUNCATION_RESERVE: usize = 1024;

/// `markdown` cut at a line boundary to at most `budget` bytes, with any fenced block
/// and `<details>` left open by the cut closed again. The second value says whether it
/// was cut.
fn fit_markdown(markdown: &str, budget: usize) -> (String, bool) {
    if markdown.len() <= budget {
        return (markdown.to_string(), false);
    }
    let mut cut = budget.min(markdown.len());
    while !markdown.is_char_boundary(cut) {
        cut -= 1;
    }
    let head = &markdown[..cut];
    let head = head.rfind('\n').map_or("", |i| &head[..=i]);
    let mut fence: Option<usize> = None;
    let mut details = 0usize;
    for line in head.lines() {
        let t = line.trim_start();
        let ticks = t.chars().take_while(|&c| c == '`').count();
        match fence {
            None if ticks >= 3 => fence = Some(ticks),
            Some(open) if ticks >= open && t[ticks..].trim().is_empty() => fence = None,
            Some(_) => {}
            None => {
                details += t.matches("<details").count();
                details = details.saturating_sub(t.matches("</details>").count());
            }
        }
    }
    let mut out = head.to_string();
    if let Some(open) = fence {
        out.push_str(&"`".repeat(open));
        out.push('\n');
    }
    for _ in 0..details.min(16) {
        out.push_str("\n</details>\n");
    }
    (out, true)
}

/// Mark the report's pull request: the commit status, then the summary comment (posted,
/// or the existing one for the task key edited). `client` must carry a token that may
/// write statuses and issues (`github-token`). Never fails: see [`ReviewRecord`].
pub async fn review(client: &Client, report: &Report, opts: &ReviewOptions) -> ReviewRecord {
    let mut record = ReviewRecord::default();
    let Some(pr) = report.task.as_ref().and_then(|t| t.pr_number) else {
        record.notes.push(
            "no pull request is known for this run: no commit status or comment was posted"
                .to_string(),
        );
        return record;
    };
    let redact = |e: &ApiError| opts.masker.redact(&e.to_string()).into_owned();

    match report.head_sha.as_deref().filter(|s| !s.trim().is_empty()) {
        None => record.notes.push(format!(
            "no gated commit is known: no commit status was set on pull request #{pr}"
        )),
        Some(sha) => {
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
                Err(e) => {
                    record
                        .errors
                        .push(format!("commit status on {}: {}", short(sha), redact(&e)));
                }
            }
        }
    }

    if !opts.comment {
        record
            .notes
            .push("report.comment is off: no summary comment".to_string());
        return record;
    }
    let (body, truncated) = comment_body(report, opts);
    let marker = body.lines().next().unwrap_or_default().to_string();
    let existing = match client.list_issue_comments(pr).await {
        Ok(list) => list.into_iter().find(|c| is_ours(c, &marker)),
        Err(e) => {
            // Posting without knowing would risk a second comment.
            record.errors.push(format!(
                "listing the comments of pull request #{pr} (no comment posted, to avoid a duplicate): {}",
                redact(&e)
            ));
            return record;
        }
    };
    if let Some(old) = existing {
        match client.update_issue_comment(old.id, &body).await {
            Ok(c) => {
                record.comment = Some(CommentSet {
                    id: c.id,
                    action: CommentAction::Updated,
                    html_url: c.html_url,
                    truncated,
                });
                return record;
            }
            // Deleted since it was listed: post a new one.
            Err(ApiError::NotFound { .. }) => {}
            Err(e) => {
                record.errors.push(format!(
                    "updating comment {} on pull request #{pr}: {}",
                    old.id,
                    redact(&e)
                ));
                return record;
            }
        }
    }
    match client.create_issue_comment(pr, &body).await {
        Ok(c) => {
            record.comment = Some(CommentSet {
                id: c.id,
                action: CommentAction::Created,
                html_url: c.html_url,
                truncated,
            });
        }
        Err(e) => record
            .errors
            .push(format!("commenting on pull request #{pr}: {}", redact(&e))),
    }
    record
}

fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}
