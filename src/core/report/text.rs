//! The terminal report ([`Report::render_text`]) and the small text helpers other
//! renderers share: file names escaped for humans ([`escape_for_humans`]), text from outside
//! (check output, API messages) made safe for a terminal and the Actions log
//! ([`escape_output`], [`neutralize`]), short commit ids ([`short`]) and decisions and rule
//! origins in words ([`describe_decision`], [`describe_origin`]). Plain text only; the data
//! model is `report`'s, the JSON is `Report::to_json`, the Markdown step summary is
//! `crate::core::summary`'s.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::{AwaitedCi, CheckStatus, FileEntry, Report, TaskInfo};
use crate::core::scope::{Decision, Reason, RuleOrigin};

impl Report {
    /// The terminal report. Every character of it that came from outside (check output, API
    /// messages, names) is shown, never obeyed: control characters are escaped and a line
    /// that would read as a workflow command is defused ([`neutralize`]).
    pub fn render_text(&self) -> String {
        let raw = self.render_raw();
        if let Cow::Owned(safe) = neutralize(&raw) {
            return safe;
        }
        raw
    }

    fn render_raw(&self) -> String {
        let mut out = String::new();
        if let (Some(base), Some(head)) = (&self.base, &self.head) {
            let mb = self.merge_base.as_deref().map(short).unwrap_or_default();
            let _ = writeln!(out, "change {base}...{head} (merge base {mb})");
        }
        if let Some(p) = &self.policy {
            let _ = writeln!(out, "policy {p}");
        }
        if let Some(t) = &self.task {
            write_task(&mut out, t);
        }
        if !self.files.is_empty() {
            write_files(&mut out, &self.files);
        }
        if !self.violations.is_empty() {
            let _ = writeln!(out, "\nviolations ({}):", self.violations.len());
            for v in &self.violations {
                let _ = writeln!(out, "  - {}", v.message);
            }
        }
        if !self.checks.is_empty() || self.checks_skipped.is_some() {
            write_checks(&mut out, self);
        }
        if !self.rounds.is_empty() {
            let _ = writeln!(out, "\nrounds ({}):", self.rounds.len());
            for r in &self.rounds {
                let _ = writeln!(
                    out,
                    "  round {}: {} — {} files, {} violations, {} failed checks",
                    r.round,
                    r.verdict,
                    r.files.len(),
                    r.violations.len(),
                    r.checks_failed.len()
                );
            }
        }
        if let Some(b) = &self.budget
            && b.would_exceed.is_some()
        {
            let _ = writeln!(out, "\nbudget: {}", b.message());
        }
        for n in &self.notes {
            let _ = writeln!(out, "\nnote: {n}");
        }
        for n in &self.isolation_notes {
            let _ = writeln!(out, "\nnote: {n}");
        }
        for e in &self.errors {
            let _ = writeln!(out, "\nerror: {e}");
        }
        if self.verdict == super::Verdict::DryRun {
            let _ = writeln!(
                out,
                "\nverdict: dry-run (exit {}) — no task was started, nothing was gated",
                self.exit_code
            );
            return out;
        }
        let _ = writeln!(
            out,
            "\nverdict: {} (exit {}) — {} files, +{} -{}, {} violations, {} failed checks",
            self.verdict,
            self.exit_code,
            self.totals.files,
            self.totals.lines_added,
            self.totals.lines_deleted,
            self.totals.violations,
            self.totals.checks_failed
        );
        out
    }
}

/// The task lines: id, origin, key, state and URL, the pull request, the cost, and what
/// the gate did to stop it.
fn write_task(out: &mut String, t: &TaskInfo) {
    if t.id.is_empty() {
        // Nothing was started or attached (a dry run, or a run refused before its task).
        let _ = writeln!(out, "task not started (key {})", t.key);
        return;
    }
    let origin = if t.attached { "attached" } else { "started" };
    let url = t
        .url
        .as_deref()
        .map(|u| format!(" {u}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "task {} ({origin}, key {}) state {}{url}",
        t.id, t.key, t.state
    );
    if let (Some(n), Some(u)) = (t.pr_number, &t.pr_url) {
        let _ = writeln!(out, "pull request #{n} {u}");
    }
    if t.ai_credits > 0.0 || t.premium_requests > 0.0 {
        let _ = writeln!(
            out,
            "cost {}, {} premium requests",
            super::credits_phrase(t.ai_credits),
            t.premium_requests
        );
    }
    for a in &t.stop_actions {
        let _ = writeln!(out, "stop: {a}");
    }
}

/// The files list: one line per file with its status, name, line counts and decision.
fn write_files(out: &mut String, files: &[FileEntry]) {
    let _ = writeln!(out, "\nfiles ({}):", files.len());
    let width = files
        .iter()
        .map(|f| display_name(f).chars().count())
        .max()
        .unwrap_or(0)
        .min(60);
    for f in files {
        let lines = match (f.added, f.deleted) {
            (Some(a), Some(d)) => format!("+{a} -{d}"),
            _ => "binary".to_string(),
        };
        let mark = if f.in_scope { "ok " } else { "OUT" };
        let _ = writeln!(
            out,
            "  {mark} {:<8} {:<width$}  {:>12}  {}",
            f.status,
            display_name(f),
            lines,
            describe_decision(&f.decision)
        );
        if let Some(od) = &f.old_decision
            && !od.in_scope
        {
            let _ = writeln!(
                out,
                "      (old side {}: {})",
                escape_for_humans(f.old_path.as_deref().unwrap_or("")),
                describe_decision(od)
            );
        }
    }
}

/// The checks list, with the last lines of each failed output.
fn write_checks(out: &mut String, report: &Report) {
    let _ = writeln!(out, "\nchecks:");
    if let Some(why) = &report.checks_skipped {
        let _ = writeln!(out, "  all skipped: {why}");
    }
    for c in &report.checks {
        let req = if c.required { "" } else { " (advisory)" };
        let detail = c
            .detail
            .as_deref()
            .map(|d| format!(" — {d}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:<9} {}{req} [{}]{detail}",
            c.status.as_str(),
            c.name,
            fmt_ms(c.duration_ms)
        );
        if let Some(ci) = &c.github {
            write_awaited(out, ci);
        }
        if c.github.is_none()
            && matches!(
                c.status,
                CheckStatus::Failed | CheckStatus::TimedOut | CheckStatus::Error
            )
            && !c.output_tail.is_empty()
        {
            if c.truncated_bytes > 0 {
                let _ = writeln!(out, "      … {} earlier bytes not shown", c.truncated_bytes);
            }
            for line in last_lines(&c.output_tail, 20) {
                let _ = writeln!(out, "      | {line}");
            }
        }
    }
}

/// What a `github-checks` check awaited: each check run or status with its state, time and
/// link; the runs held for approval and who must approve them.
fn write_awaited(out: &mut String, ci: &AwaitedCi) {
    for a in &ci.checks {
        let state = match &a.conclusion {
            Some(c) => format!("{} ({c})", a.state),
            None => a.state.clone(),
        };
        let took = a
            .duration_ms
            .map(|ms| format!(" [{}]", fmt_ms(ms)))
            .unwrap_or_default();
        let url = a
            .url
            .as_deref()
            .map(|u| format!(" {u}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "      {} {}: {state}{took}{url}",
            a.kind,
            neutralize(&a.name)
        );
        if a.conclusion.as_deref().is_some_and(|c| c != "success")
            && let Some(summary) = &a.summary
        {
            for line in last_lines(summary, 10) {
                let _ = writeln!(out, "        | {line}");
            }
        }
    }
    for h in &ci.held {
        let _ = writeln!(
            out,
            "      held for approval: {} {}",
            neutralize(&h.name),
            h.url
        );
    }
    if let Some(approval) = &ci.approval {
        let _ = writeln!(out, "      {}", neutralize(approval));
    }
}

fn display_name(f: &FileEntry) -> String {
    match &f.old_path {
        Some(old) => format!(
            "{} -> {}",
            escape_for_humans(old),
            escape_for_humans(&f.path)
        ),
        None => escape_for_humans(&f.path),
    }
}

/// A file name as human-readable text shows it: control characters (newline, tab, CR,
/// ESC…) and backslashes written C-style (`\n`, `\t`, `\x1b`, `\\`), as git's
/// `core.quotePath` does, so a name cannot forge lines or colours in a report. JSON keeps
/// the exact name.
pub fn escape_for_humans(name: &str) -> String {
    if !name.chars().any(|c| c.is_control() || c == '\\') {
        return name.to_string();
    }
    let mut out = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// Text from outside (check output, API messages) as a terminal or the Actions log may
/// show it: line feeds and tabs kept, `\r\n` read as a line feed, and every other control
/// character written C-style — a lone carriage return (`\r`: the runner and terminals
/// start a new line there), ESC (`\x1b`: colours, cursor moves, OSC 8 links, title
/// changes), DEL and the C1 controls — as are the Unicode line and paragraph separators.
pub fn escape_output(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| (c.is_control() && c != '\n' && c != '\t') || is_separator(c);
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\r' => out.push_str("\\r"),
            c if unsafe_char(c) && u32::from(c) <= 0xff => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if unsafe_char(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn is_separator(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}')
}

/// Text printed where the Actions runner reads workflow commands (stdout and stderr of a
/// step): [`escape_output`], and a line that would start a command once the runner trims
/// it (`::` or the legacy `##[`) shown with a leading `\`, so no text from outside can
/// forge an annotation, mask, output or `::stop-commands::`.
pub fn neutralize(text: &str) -> Cow<'_, str> {
    let escaped = escape_output(text);
    let is_command = |line: &str| {
        let t = line.trim_start();
        t.starts_with("::") || t.starts_with("##[")
    };
    if !escaped.split('\n').any(is_command) {
        return escaped;
    }
    let mut out = String::with_capacity(escaped.len() + 8);
    for (i, line) in escaped.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if is_command(line) {
            out.push('\\');
        }
        out.push_str(line);
    }
    Cow::Owned(out)
}

/// The first 12 characters of a commit id, as reports show it.
pub fn short(sha: &str) -> String {
    sha.chars().take(12).collect()
}

fn fmt_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{}.{}s", ms / 1000, (ms % 1000) / 100)
    }
}

fn last_lines(text: &str, n: usize) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

/// Where a rule came from, for humans: `line 12` or `always protected`.
pub fn describe_origin(origin: &RuleOrigin) -> String {
    match origin {
        RuleOrigin::Policy { line, .. } => format!("line {line}"),
        RuleOrigin::AlwaysProtected => "always protected".to_string(),
        RuleOrigin::ScopeInput { index } => format!("--scope #{}", index + 1),
    }
}

/// A decision for humans: `allowed by "src/**" (line 4)`.
pub fn describe_decision(d: &Decision) -> String {
    match &d.reason {
        Reason::Protected { rule } => format!(
            "protected by \"{}\" ({})",
            rule.text,
            describe_origin(&rule.origin)
        ),
        Reason::Denied { rule } => format!(
            "denied by \"{}\" ({})",
            rule.text,
            describe_origin(&rule.origin)
        ),
        Reason::OutsideScopeInput => "outside the --scope input".to_string(),
        Reason::NoAllowRule => "no allow rule matches".to_string(),
        Reason::AllowedByDefault => "allowed (no allow rules: everything not denied)".to_string(),
        Reason::Allowed { rule } => format!(
            "allowed by \"{}\" ({})",
            rule.text,
            describe_origin(&rule.origin)
        ),
    }
}
