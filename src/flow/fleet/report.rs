//! The fleet report (`agent-gate report AUDIT_FILES…`): the audit records of a batch of
//! runs (downloaded artifacts of a matrix job) merged into one table of repository ×
//! verdict × pull request × duration × checks, with totals per verdict. Pure: it takes the
//! files' texts and renders plain text (a terminal), Markdown (the step summary) or JSON;
//! reading files is the caller's job. A row is a task, not a run: the runs of a re-run
//! that attached to a task already started (same repository and task key) are one row,
//! showing the latest run, so feeding the report a re-run's files never counts a task
//! twice.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::adapters::audit::{AuditEvent, parse};
use crate::core::report::Verdict;
use crate::core::summary::{cell, inline};

/// One task of the batch: the latest run found for it in the audit files (a file may hold
/// several runs: each `trigger` starts one), with how many runs were merged into it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FleetRun {
    /// The audit file of the latest run.
    pub file: String,
    pub repository: Option<String>,
    pub run_url: Option<String>,
    /// The task's idempotency key (`task-key`), when the run recorded a task.
    pub task_key: Option<String>,
    /// Runs merged into this row: 1, or more when re-runs attached to the same task.
    pub attempts: usize,
    pub task_id: Option<String>,
    pub task_url: Option<String>,
    pub pr_number: Option<i64>,
    pub head_sha: Option<String>,
    /// The verdict; `None` when the record ends before one (a killed gate).
    pub verdict: Option<String>,
    /// Seconds from the start of the run to its last recorded state change.
    pub duration_s: Option<f64>,
    pub files: usize,
    pub checks_passed: usize,
    pub checks_failed: usize,
    pub checks_skipped: usize,
    pub violations: usize,
    /// Open pull requests from agent-gate's tasks on the repository when the run counted
    /// them (`agent.max-open-pull-requests`), and that limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_pull_requests: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_open_pull_requests: Option<u32>,
}

/// The review load of one repository: the last count its runs made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReviewLoadRow {
    pub open: u32,
    pub limit: u32,
}

/// The merged report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FleetReport {
    /// One row per task (a run that started no task is a row of its own).
    pub runs: Vec<FleetRun>,
    /// Rows per verdict (`unfinished` for records without one), each task counted once.
    pub totals: BTreeMap<String, usize>,
    /// Runs read, re-runs included (at least `runs.len()`).
    pub runs_read: usize,
    /// Per repository, agent-gate's open pull requests waiting for review, as its runs
    /// last counted them (repositories whose policy sets `agent.max-open-pull-requests`).
    pub review_load: BTreeMap<String, ReviewLoadRow>,
    /// Lines that could not be read, as `file:line: error`.
    pub unreadable: Vec<String>,
}

impl FleetReport {
    /// Merge audit files given as `(name, text)`.
    pub fn from_audit_texts<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> FleetReport {
        let mut report = FleetReport::default();
        // Each run with the time of its last audit line (the latest run wins a row).
        let mut runs: Vec<(FleetRun, Option<jiff::Timestamp>)> = Vec::new();
        for (name, text) in files {
            let mut current: Option<(FleetRun, Option<jiff::Timestamp>)> = None;
            for (line, parsed) in parse(text) {
                let (time, event) = match parsed {
                    Ok(l) => (l.time, l.event),
                    Err(e) => {
                        report.unreadable.push(format!("{name}:{line}: {e}"));
                        continue;
                    }
                };
                if matches!(event, AuditEvent::Trigger(_)) {
                    runs.extend(current.take());
                }
                let (run, last_time) = current.get_or_insert_with(|| {
                    let run = FleetRun {
                        file: name.to_string(),
                        attempts: 1,
                        ..FleetRun::default()
                    };
                    (run, None)
                });
                *last_time = time.parse().ok().or(*last_time);
                run.apply(event);
            }
            runs.extend(current);
        }
        report.runs_read = runs.len();
        report.review_load = latest_review_load(&runs);
        report.runs = merge_reruns(runs);
        for run in &report.runs {
            *report
                .totals
                .entry(
                    run.verdict
                        .clone()
                        .unwrap_or_else(|| "unfinished".to_string()),
                )
                .or_default() += 1;
        }
        report
    }

    /// True when every run passed (and there was at least one).
    pub fn all_passed(&self) -> bool {
        !self.runs.is_empty()
            && self
                .runs
                .iter()
                .all(|r| r.verdict.as_deref() == Some(Verdict::Passed.as_str()))
    }

    /// The report as one JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The runs per verdict, `2 passed, 1 scope-violation`, or `none`.
    fn totals_line(&self) -> String {
        let totals: Vec<String> = self
            .totals
            .iter()
            .map(|(v, n)| format!("{n} {v}"))
            .collect();
        if totals.is_empty() {
            "none".to_string()
        } else {
            totals.join(", ")
        }
    }

    /// `3 tasks: 2 passed, 1 scope-violation`, with `(5 runs, re-runs included)` when
    /// re-runs were merged.
    fn count_line(&self) -> String {
        let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        let mut line = plural(self.runs.len(), "task");
        if self.runs_read > self.runs.len() {
            let _ = write!(
                line,
                " ({}, re-runs included)",
                plural(self.runs_read, "run")
            );
        }
        let _ = write!(line, ": {}", self.totals_line());
        line
    }

    /// The runs in the order both tables show them: by repository, then audit file.
    fn sorted_runs(&self) -> Vec<&FleetRun> {
        let mut runs: Vec<&FleetRun> = self.runs.iter().collect();
        runs.sort_by(|a, b| a.repository.cmp(&b.repository).then(a.file.cmp(&b.file)));
        runs
    }

    /// The report as plain text for a terminal (`--format text`): the same table as the
    /// Markdown one in aligned columns, names as written (control characters escaped), no
    /// Markdown or HTML entities.
    pub fn render_text(&self) -> String {
        use crate::core::report::escape_for_humans as plain;
        let mut out = String::new();
        let _ = writeln!(out, "agent-gate fleet report: {}", self.count_line());
        if !self.runs.is_empty() {
            let mut rows: Vec<[String; 8]> = vec![[
                "REPOSITORY".into(),
                "VERDICT".into(),
                "TASK".into(),
                "PR".into(),
                "DURATION".into(),
                "FILES".into(),
                "CHECKS".into(),
                "VIOLATIONS".into(),
            ]];
            for r in self.sorted_runs() {
                rows.push([
                    plain(r.repository.as_deref().unwrap_or(&r.file)),
                    plain(r.verdict.as_deref().unwrap_or("unfinished")),
                    r.task_id.as_deref().map_or_else(
                        || "-".to_string(),
                        |id| plain(&id.chars().take(8).collect::<String>()),
                    ),
                    r.pr_number
                        .map_or_else(|| "-".to_string(), |n| format!("#{n}")),
                    r.duration_s
                        .map_or_else(|| "-".to_string(), |s| format!("{}s", s.round())),
                    r.files.to_string(),
                    format!(
                        "{} passed, {} failed, {} skipped",
                        r.checks_passed, r.checks_failed, r.checks_skipped
                    ),
                    r.violations.to_string(),
                ]);
            }
            let mut widths = [0usize; 8];
            for row in &rows {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            out.push('\n');
            for row in &rows {
                let mut line = String::new();
                for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
                    if i > 0 {
                        line.push_str("  ");
                    }
                    let _ = write!(line, "{cell:<w$}");
                }
                let _ = writeln!(out, "{}", line.trim_end());
            }
        }
        if !self.review_load.is_empty() {
            let _ = writeln!(out, "\nreview load (open agent-gate pull requests):");
            for (repo, l) in &self.review_load {
                let _ = writeln!(out, "  {}  {} of {}", plain(repo), l.open, l.limit);
            }
        }
        if !self.unreadable.is_empty() {
            let _ = writeln!(out, "\n{} unreadable lines:", self.unreadable.len());
            for u in &self.unreadable {
                let _ = writeln!(out, "  {}", plain(u));
            }
        }
        out
    }

    /// The report as Markdown (for the step summary).
    pub fn render_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "## agent-gate fleet report\n");
        let _ = writeln!(out, "{}\n", self.count_line());
        if !self.runs.is_empty() {
            let _ = writeln!(
                out,
                "| repository | verdict | task | pull request | duration | files | checks | violations |"
            );
            let _ = writeln!(out, "|---|---|---|---|---:|---:|---|---:|");
            for r in self.sorted_runs() {
                let repo = r.repository.as_deref().map_or_else(|| cell(&r.file), cell);
                let verdict = r.verdict.as_deref().unwrap_or("unfinished");
                let task = match (&r.task_id, &r.task_url) {
                    (Some(id), Some(url)) => format!(
                        "[{}]({})",
                        cell(&id.chars().take(8).collect::<String>()),
                        url.replace(['(', ')', ' ', '|'], "")
                    ),
                    (Some(id), None) => cell(&id.chars().take(8).collect::<String>()),
                    _ => "—".to_string(),
                };
                let pr = r
                    .pr_number
                    .map_or_else(|| "—".to_string(), |n| format!("#{n}"));
                let duration = r
                    .duration_s
                    .map_or_else(|| "—".to_string(), |s| format!("{}s", s.round()));
                let checks = format!(
                    "{} passed, {} failed, {} skipped",
                    r.checks_passed, r.checks_failed, r.checks_skipped
                );
                let _ = writeln!(
                    out,
                    "| {repo} | `{verdict}` | {task} | {pr} | {duration} | {} | {checks} | {} |",
                    r.files, r.violations
                );
            }
        }
        if !self.review_load.is_empty() {
            let _ = writeln!(
                out,
                "\n### Review load\n\n| repository | open agent-gate pull requests | limit |\n|---|---:|---:|"
            );
            for (repo, l) in &self.review_load {
                let _ = writeln!(out, "| {} | {} | {} |", cell(repo), l.open, l.limit);
            }
        }
        if !self.unreadable.is_empty() {
            let _ = writeln!(out, "\n{} unreadable lines:\n", self.unreadable.len());
            for u in &self.unreadable {
                let _ = writeln!(out, "- {}", inline(u));
            }
        }
        out
    }
}

/// One row per task: runs of the same repository and task key (or task id) are merged,
/// the latest run (by its last audit line) shown, `attempts` counting them all. Runs that
/// recorded no task stay rows of their own.
fn merge_reruns(runs: Vec<(FleetRun, Option<jiff::Timestamp>)>) -> Vec<FleetRun> {
    let mut merged: Vec<(FleetRun, Option<jiff::Timestamp>)> = Vec::with_capacity(runs.len());
    let mut by_task: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (run, time) in runs {
        let task = run.task_key.clone().or_else(|| run.task_id.clone());
        let Some(task) = task else {
            merged.push((run, time));
            continue;
        };
        let repository = run
            .repository
            .clone()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if let Some(&i) = by_task.get(&(repository.clone(), task.clone())) {
            let attempts = merged[i].0.attempts + run.attempts;
            if time >= merged[i].1 {
                merged[i] = (run, time);
            }
            merged[i].0.attempts = attempts;
        } else {
            by_task.insert((repository, task), merged.len());
            merged.push((run, time));
        }
    }
    merged.into_iter().map(|(run, _)| run).collect()
}

impl FleetRun {
    /// Take in one event of the run's audit record.
    fn apply(&mut self, event: AuditEvent) {
        match event {
            AuditEvent::Trigger(t) => {
                self.repository = t.repository;
                self.run_url = t.run_url;
            }
            AuditEvent::Task(t) => {
                self.task_key = Some(t.key).filter(|k| !k.is_empty());
                self.task_id = Some(t.id);
                self.task_url = t.url;
            }
            AuditEvent::State(s) => {
                self.duration_s = Some(self.duration_s.unwrap_or(0.0).max(s.elapsed_s));
            }
            AuditEvent::Change(c) => {
                if self.repository.is_none() {
                    self.repository = c.repository;
                }
                self.pr_number = c.pr_number.or(self.pr_number);
                self.head_sha = c.head_sha.or(self.head_sha.take());
                self.files = c.files;
            }
            AuditEvent::Violation(_) => self.violations += 1,
            AuditEvent::Check(c) => match c.status.as_str() {
                "passed" => self.checks_passed += 1,
                "skipped" => self.checks_skipped += 1,
                _ => self.checks_failed += 1,
            },
            AuditEvent::Verdict(v) => self.verdict = Some(v.verdict),
            AuditEvent::Admission(a) => {
                self.open_pull_requests = a.open_pull_requests.or(self.open_pull_requests);
                self.max_open_pull_requests =
                    a.max_open_pull_requests.or(self.max_open_pull_requests);
            }
            AuditEvent::Round(_) | AuditEvent::Stop(_) => {}
        }
    }
}

/// The review load of each repository: the count of its latest run that read one.
fn latest_review_load(
    runs: &[(FleetRun, Option<jiff::Timestamp>)],
) -> BTreeMap<String, ReviewLoadRow> {
    let mut latest: BTreeMap<String, (Option<jiff::Timestamp>, ReviewLoadRow)> = BTreeMap::new();
    for (run, time) in runs {
        let (Some(repo), Some(open), Some(limit)) = (
            &run.repository,
            run.open_pull_requests,
            run.max_open_pull_requests,
        ) else {
            continue;
        };
        let entry = latest.entry(repo.clone()).or_default();
        if *time >= entry.0 {
            *entry = (*time, ReviewLoadRow { open, limit });
        }
    }
    latest.into_iter().map(|(k, (_, v))| (k, v)).collect()
}
