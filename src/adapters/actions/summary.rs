//! The step summary file (`GITHUB_STEP_SUMMARY`): Markdown appended so that the whole
//! file stays within the runner's 1 MiB limit (a larger file is not uploaded at all).
//! Content that does not fit is cut at a line boundary (or, for one huge line, at a
//! UTF-8 boundary), open code fences and `<details>` blocks are closed, and a note says
//! that the summary was truncated and where the full report is. It does not build the
//! report's Markdown.

use std::borrow::Cow;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use super::ActionsError;

/// The runner refuses a step summary file larger than this many bytes.
pub const SUMMARY_LIMIT: usize = 1024 * 1024;

/// What [`write_summary`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryWrite {
    /// Bytes appended (note included).
    pub written: usize,
    /// Whether the Markdown was cut.
    pub truncated: bool,
    /// Bytes of the Markdown left out.
    pub omitted: usize,
}

/// Append `markdown` to the step summary file at `file` (which must exist: the runner
/// creates it), cutting it so that the file stays within [`SUMMARY_LIMIT`];
/// `full_report` says where the whole report is (an artifact name, a file path…) and is
/// quoted in the truncation note.
pub fn write_summary(
    file: &Path,
    markdown: &str,
    full_report: &str,
) -> Result<SummaryWrite, ActionsError> {
    let io = |source| ActionsError::Io {
        path: file.to_path_buf(),
        source,
    };
    let mut handle = OpenOptions::new().append(true).open(file).map_err(io)?;
    let existing = handle.metadata().map_err(io)?.len();
    let existing = usize::try_from(existing).unwrap_or(usize::MAX);
    let (text, result) = fit_summary(SUMMARY_LIMIT, existing, markdown, full_report);
    handle.write_all(text.as_bytes()).map_err(io)?;
    Ok(result)
}

/// The text to append to a summary file already holding `existing` bytes so that it ends
/// at most `limit` bytes long. Pure, for tests and for callers that write elsewhere.
pub fn fit_summary<'a>(
    limit: usize,
    existing: usize,
    markdown: &'a str,
    full_report: &str,
) -> (Cow<'a, str>, SummaryWrite) {
    let room = limit.saturating_sub(existing);
    if markdown.len() <= room {
        let written = markdown.len();
        return (
            Cow::Borrowed(markdown),
            SummaryWrite {
                written,
                truncated: false,
                omitted: 0,
            },
        );
    }
    // The note written with the whole length as "omitted" is at least as long as the real one.
    let note_room = note(markdown.len(), full_report).len();
    let Some(content_room) = room.checked_sub(note_room) else {
        // Not even the note fits: write nothing rather than break the file.
        let omitted = markdown.len();
        return (
            Cow::Borrowed(""),
            SummaryWrite {
                written: 0,
                truncated: true,
                omitted,
            },
        );
    };
    let mut budget = content_room;
    let (kept, closers) = loop {
        let kept = cut(markdown, budget);
        let closers = closers(kept);
        if kept.len() + closers.len() <= content_room || kept.is_empty() {
            break (kept, closers);
        }
        budget = content_room
            .saturating_sub(closers.len())
            .min(kept.len() - 1);
    };
    let omitted = markdown.len() - kept.len();
    let mut text = String::with_capacity(kept.len() + closers.len() + note_room);
    text.push_str(kept);
    text.push_str(&closers);
    text.push_str(&note(omitted, full_report));
    let written = text.len();
    (
        Cow::Owned(text),
        SummaryWrite {
            written,
            truncated: true,
            omitted,
        },
    )
}

/// The longest prefix of `text` within `budget` bytes that ends after a newline, or at a
/// character boundary when the first line alone is longer than the budget.
fn cut(text: &str, budget: usize) -> &str {
    if text.len() <= budget {
        return text;
    }
    let end = text.floor_char_boundary(budget);
    match text[..end].rfind('\n') {
        Some(lf) => &text[..=lf],
        None => &text[..end],
    }
}

/// Markdown that closes what `kept` left open: a fenced code block and `<details>`
/// elements, so the note renders as text.
fn closers(kept: &str) -> String {
    let mut out = String::new();
    if !kept.is_empty() && !kept.ends_with('\n') {
        out.push('\n');
    }
    let mut fence: Option<&str> = None;
    for line in kept.lines() {
        let trimmed = line.trim_start();
        for marker in ["```", "~~~"] {
            if trimmed.starts_with(marker) {
                match fence {
                    None => fence = Some(marker),
                    Some(open) if open == marker => fence = None,
                    Some(_) => {}
                }
            }
        }
    }
    if let Some(marker) = fence {
        out.push_str(marker);
        out.push('\n');
    }
    let open = kept
        .matches("<details")
        .count()
        .saturating_sub(kept.matches("</details>").count());
    for _ in 0..open {
        out.push_str("</details>\n");
    }
    out
}

fn note(omitted: usize, full_report: &str) -> String {
    format!(
        "\n> [!WARNING]\n> This summary was truncated: {omitted} bytes were left out to stay \
         under GitHub's 1 MiB step-summary limit. The full report is in {full_report}.\n"
    )
}
