//! The review gate's pull-request comment (DESIGN §4): the hidden marker line that
//! identifies the comment of a task key, recognising that comment among a pull request's
//! comments so later runs edit it in place, and the body — the redacted step summary, cut
//! at a line boundary (open fences and `<details>` closed again) to stay within
//! [`MAX_COMMENT_BYTES`], with a footer. What it does not own: posting, listing and editing
//! comments and the commit status (`review`), the Markdown (`summary`), the redaction
//! (`publish::outputs::redact_report`, `actions::Masker`).

use std::fmt::Write as _;

use serde::Serialize;

use crate::adapters::actions::Masker;
use crate::adapters::github::types::IssueComment;
use crate::core::report::Report;
use crate::core::summary::{self, SummaryContext};
use crate::flow::publish::outputs::redact_report;

/// GitHub refuses comments over 65,536 characters; the gate keeps the whole body within
/// this many bytes (a byte count bounds the character count), with room to spare.
pub const MAX_COMMENT_BYTES: usize = 65_000;

/// Where the complete report is, named when the comment had to be cut.
const FULL_REPORT: &str = "the workflow run's step summary and audit record";

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

/// The summary comment the review gate posted or updated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommentSet {
    pub id: i64,
    pub action: CommentAction,
    pub html_url: String,
    /// The summary was cut to fit GitHub's comment limit.
    pub truncated: bool,
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
pub(super) fn is_ours(comment: &IssueComment, marker: &str) -> bool {
    comment
        .body
        .as_deref()
        .is_some_and(|b| b.trim_start().lines().next().map(str::trim_end) == Some(marker))
}

/// The summary comment: the marker, the summary with every secret in `secrets` redacted
/// (cut, with a note, to stay under [`MAX_COMMENT_BYTES`]), the workflow run's link when
/// given, and a footer. Returns the body and whether it was cut.
pub fn comment_body(report: &Report, run_url: Option<&str>, secrets: &Masker) -> (String, bool) {
    // Redact before rendering or escaping anything: escaping would split a secret
    // (`ghp_…` becomes `ghp&#95;…`) so the masker would miss it afterwards.
    let report = &redact_report(report, secrets);
    let key = report
        .task
        .as_ref()
        .map(|t| if t.key.is_empty() { &t.id } else { &t.key })
        .cloned()
        .unwrap_or_default();
    let marker = comment_marker(&key);
    let ctx = SummaryContext {
        run_url: run_url.map(str::to_string),
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
        let link = run_url
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
    let body = secrets.redact(&body).into_owned();
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
