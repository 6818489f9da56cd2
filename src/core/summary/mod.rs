//! The step summary: one finished [`Report`] rendered as GitHub-flavoured Markdown — a
//! verdict banner, the agent task (link, state, durations, cost), a Mermaid `gantt` chart
//! of the run, the files table with the rule that decided each path, the violations, the
//! checks with the tails of failed outputs, isolation notes and errors.
//!
//! Pure rendering: no I/O, no clock, no secret handling — and because entity escaping
//! splits a secret (`ghp_…` becomes `ghp&#95;…`) so a masker applied afterwards would miss
//! it, render only a report that is already redacted (`publish::outputs::write_summary` does).
//! Writing the text to `GITHUB_STEP_SUMMARY` (redaction and the hard 1 MiB limit) is the Actions adapter's
//! job (`actions::ActionsIo::write_summary`); this module only keeps typical output far
//! below that limit by capping long lists and output tails.
//!
//! Paths, outputs, messages and API strings are untrusted: the agent chose them. Paths
//! and API strings are always shown in `<code>` elements (GitHub applies no mention,
//! reference or emoji filter there), and every inline text has each Markdown- or
//! HTML-significant character written as a numeric entity, so `|` cannot split a table
//! cell, `<` cannot open a tag and `*` cannot emphasise; newlines and other control
//! characters are shown as escapes. Output tails and errors go in fenced blocks whose
//! fence is longer than any run of backticks in the text (ANSI sequences and control
//! characters removed); tails sit inside `<details>` with blank lines around the fence,
//! so a `</details>` in the output stays code.
//!
//! This file owns [`SummaryContext`], the document's order ([`render`]), its closing
//! sections (repair rounds, budget, notes, isolation, errors) and the note under a capped
//! list. Each other section is its own file — `banner`, `task`, `timeline`, `files`,
//! `violations`, `checks` — and the escaping, fences and number formats are `markdown`'s.

mod banner;
mod checks;
mod files;
mod markdown;
mod task;
mod timeline;
mod violations;

use std::fmt::Write as _;

use crate::core::report::Report;

use banner::banner;
pub use banner::reason;
use checks::checks_section;
use files::files_section;
pub use markdown::{cell, clean_output, code, fence_for, inline, prose};
use task::task_section;
use timeline::timeline;
use violations::violations_section;
pub use violations::{violation_kind_name, violation_priority};

/// What the summary needs besides the report.
#[derive(Debug, Clone)]
pub struct SummaryContext {
    /// The workflow run (`ActionsEnv::run_url`), linked from the banner.
    pub run_url: Option<String>,
    /// The policy path shown; defaults to the report's `policy`.
    pub policy_path: Option<String>,
    /// Web URL of the policy file at the base ref (`…/blob/<sha>/.github/agent-gate.yml`):
    /// rule lines become links to `#L<line>`.
    pub policy_url: Option<String>,
    /// Where the complete report is (e.g. "the `agent-gate-audit` artifact"), named in
    /// the notes of capped lists. Trusted text: written as is.
    pub full_report: Option<String>,
    /// Most rows of the files table.
    pub max_files: usize,
    /// Most entries of the violations list.
    pub max_violations: usize,
    /// Most lines of one failed check's output tail.
    pub max_output_lines: usize,
    /// Most bytes of one failed check's output tail.
    pub max_output_bytes: usize,
}

impl Default for SummaryContext {
    fn default() -> SummaryContext {
        SummaryContext {
            run_url: None,
            policy_path: None,
            policy_url: None,
            full_report: None,
            max_files: 500,
            max_violations: 500,
            max_output_lines: 60,
            max_output_bytes: 16 * 1024,
        }
    }
}

/// The Markdown step summary of `report`.
pub fn render(report: &Report, ctx: &SummaryContext) -> String {
    let mut out = String::new();
    banner(&mut out, report, ctx);
    if let Some(task) = &report.task {
        task_section(&mut out, task);
    }
    timeline(&mut out, report);
    files_section(&mut out, report, ctx);
    violations_section(&mut out, report, ctx);
    checks_section(&mut out, report, ctx);
    if !report.rounds.is_empty() {
        out.push_str("\n### Repair rounds\n\n| round | verdict | task | files | violations | failed checks | AI credits |\n|---:|---|---|---:|---:|---:|---:|\n");
        for r in &report.rounds {
            let _ = writeln!(
                out,
                "| {} | `{}` | {} | {} | {} | {} | {} |",
                r.round,
                r.verdict,
                cell(&r.task_id.chars().take(8).collect::<String>()),
                r.files.len(),
                r.violations.len(),
                r.checks_failed.len(),
                crate::core::report::credits(r.ai_credits)
            );
        }
    }
    if let Some(b) = &report.budget
        && b.would_exceed.is_some()
    {
        let _ = writeln!(out, "\n### Budget\n\n{}", inline(&b.message()));
    }
    if !report.notes.is_empty() {
        out.push_str("\n### Notes\n\n");
        for note in &report.notes {
            let _ = writeln!(out, "- {}", markdown::prose(note));
        }
    }
    if !report.isolation_notes.is_empty() {
        out.push_str("\n### Isolation\n\n");
        for note in &report.isolation_notes {
            let _ = writeln!(out, "- {}", markdown::prose(note));
        }
    }
    if !report.errors.is_empty() {
        out.push_str("\n### Errors\n\n");
        for error in &report.errors {
            let text = clean_output(error);
            let fence = fence_for(&text);
            let _ = writeln!(out, "{fence}text\n{}\n{fence}\n", text.trim_end());
        }
    }
    out
}

/// The note under a list capped at `cap` entries, naming where the rest are.
fn more_note(out: &mut String, total: usize, cap: usize, what: &str, ctx: &SummaryContext) {
    if total > cap {
        let where_ = ctx
            .full_report
            .as_deref()
            .unwrap_or("the JSON report (`--format json`)");
        let _ = writeln!(out, "\n_{} more {what} are in {where_}._", total - cap);
    }
}
