//! Batch manifests for fleet runs (docs/fleet.md): a versioned YAML file of entries —
//! repositories × instruction × scope, with defaults — parsed into raw serde types with
//! `deny_unknown_fields` (`raw`), compiled into a validated [`Manifest`] (`compile`: repository
//! names, ids, durations, priorities and globs checked, each error with its line and column),
//! then expanded by [`plan`] into the jobs of a GitHub Actions matrix, each with a stable
//! task key. Pure logic: no files, no environment, no clock — the date is a parameter.
//! The `agent-gate plan` command around it (reading the file, writing `GITHUB_OUTPUT`) is
//! `crate::flow::fleet`'s.

mod compile;
mod error;
mod raw;

use std::fmt;
use std::fmt::Write as _;
use std::str::FromStr;
use std::time::Duration;

use jiff::civil::Date;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::core::policy::format_duration;

pub use error::ManifestError;

/// GitHub Actions refuses a matrix that expands to more jobs than this.
pub const MAX_JOBS: usize = 256;

/// `priority` of a run: who may take the slots `agent.reserved-for-high` keeps free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    High,
    #[default]
    Normal,
    Low,
}

impl Priority {
    /// The three words, in order.
    pub const WORDS: [&'static str; 3] = ["high", "normal", "low"];

    /// `high`, `normal` or `low` (case-insensitive, trimmed).
    pub fn parse(text: &str) -> Option<Priority> {
        match text.trim().to_ascii_lowercase().as_str() {
            "high" => Some(Priority::High),
            "normal" => Some(Priority::Normal),
            "low" => Some(Priority::Low),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }
}

/// A priority that is not `high`, `normal` or `low` (as written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("priority `{0}` is not one of `high`, `normal`, `low`")]
pub struct PriorityError(pub String);

impl FromStr for Priority {
    type Err = PriorityError;

    fn from_str(s: &str) -> Result<Priority, PriorityError> {
        Priority::parse(s).ok_or_else(|| PriorityError(s.to_string()))
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One compiled entry: an instruction to run on each of its repositories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `id`, when given: names the entry in task keys (stable across edits of its content).
    pub id: Option<String>,
    /// 1-based line where the entry starts.
    pub line: usize,
    /// `owner/repo`, as written (GitHub compares them case-insensitively).
    pub repositories: Vec<String>,
    /// The instruction, trimmed.
    pub instruction: String,
    /// Globs that narrow the policy's allow rules (empty: the policy's scope unchanged).
    pub scope: Vec<String>,
    /// Policy path inside each repository.
    pub policy: String,
    /// Deadline of each run (`None`: the policy's `agent.timeout`).
    pub timeout: Option<Duration>,
    pub priority: Priority,
    /// Base branch (`None`: the policy's `agent.base-ref`, else the default branch).
    pub base_ref: Option<String>,
    /// What the task keys of this entry are derived from: `id:<id>`, or `content:<hex>`
    /// (a hash of instruction, scope, policy and base ref) when the entry has no id.
    pub identity: String,
}

impl Entry {
    /// `id`, or `entry on line N`.
    pub fn label(&self) -> String {
        match &self.id {
            Some(id) => id.clone(),
            None => format!("entry on line {}", self.line),
        }
    }
}

/// A compiled manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The path it was read from, as given (used in errors).
    pub path: String,
    pub entries: Vec<Entry>,
    /// (line, column) of the `entries` key's value, for errors about the whole plan.
    pub entries_at: (usize, usize),
    /// `tasks-per-minute`: the pace of task creation across the whole batch (each job gets
    /// its own start time, `not-before`); `None`: every job starts its task at once.
    pub tasks_per_minute: Option<u32>,
}

impl Manifest {
    /// Parse and compile a manifest from its YAML text; `path` is used in errors. Never
    /// panics, whatever the text.
    pub fn from_yaml(text: &str, path: &str) -> Result<Manifest, ManifestError> {
        compile::from_yaml(text, path)
    }

    /// [`Manifest::from_yaml`], refusing with every error one pass finds, in file order.
    pub fn from_yaml_all(text: &str, path: &str) -> Result<Manifest, Vec<ManifestError>> {
        compile::from_yaml_all(text, path)
    }

    /// How many jobs the plan has (repositories summed over entries).
    pub fn job_count(&self) -> usize {
        self.entries.iter().map(|e| e.repositories.len()).sum()
    }
}

/// One job of the matrix: one repository of one entry. Serialises as a matrix `include`
/// object with the keys of docs/fleet.md.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Job {
    pub repository: String,
    pub instruction: String,
    /// Newline-separated globs (the `scope` input), empty for none.
    pub scope: String,
    pub policy: String,
    /// `45m`, or empty for the policy's timeout.
    pub timeout: String,
    pub priority: Priority,
    /// Empty for the policy's base ref or the default branch.
    pub base_ref: String,
    pub task_key: String,
    /// The entry's id, empty when it has none.
    pub entry: String,
    /// With `tasks-per-minute`: when this job may start its task at the earliest (RFC 3339),
    /// the plan's start plus its place in the batch times 60 s / tasks-per-minute; empty
    /// without pacing.
    pub not_before: String,
}

/// The expansion of a manifest for one date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub date: Date,
    pub jobs: Vec<Job>,
}

#[derive(Serialize)]
struct Matrix<'a> {
    include: &'a [Job],
}

impl Plan {
    /// `{"include":[…]}` for `strategy.matrix: ${{ fromJSON(…) }}`, on one line.
    pub fn matrix_json(&self) -> String {
        serde_json::to_string(&Matrix {
            include: &self.jobs,
        })
        .unwrap_or_else(|_| "{\"include\":[]}".to_string())
    }

    /// The same, indented.
    pub fn matrix_json_pretty(&self) -> String {
        serde_json::to_string_pretty(&Matrix {
            include: &self.jobs,
        })
        .unwrap_or_else(|_| "{\"include\":[]}".to_string())
    }

    /// A short human summary: totals, then one line per entry.
    pub fn summary(&self, manifest: &Manifest) -> String {
        let repos: std::collections::BTreeSet<String> = self
            .jobs
            .iter()
            .map(|j| j.repository.to_ascii_lowercase())
            .collect();
        let mut out = format!(
            "agent-gate plan: {} jobs ({} entries, {} repositories) for {} from {} (matrix limit {MAX_JOBS})\n",
            self.jobs.len(),
            manifest.entries.len(),
            repos.len(),
            self.date,
            manifest.path
        );
        for entry in &manifest.entries {
            let timeout = entry
                .timeout
                .map_or_else(|| "policy".to_string(), format_duration);
            let _ = writeln!(
                out,
                "  {}: {} {}, priority {}, timeout {}, {}",
                entry.label(),
                entry.repositories.len(),
                if entry.repositories.len() == 1 {
                    "repository"
                } else {
                    "repositories"
                },
                entry.priority,
                timeout,
                first_line(&entry.instruction, 60)
            );
        }
        out
    }

    /// One line per job: repository, priority, timeout, task key, the job's turn when the
    /// batch is paced (`not-before`), instruction's first line.
    pub fn table(&self) -> String {
        let paced = self.jobs.iter().any(|j| !j.not_before.is_empty());
        let turn = |t: &str| {
            if paced {
                format!("{t:<24} ")
            } else {
                String::new()
            }
        };
        let mut out = format!(
            "{:<40} {:<8} {:<8} {:<44} {}INSTRUCTION\n",
            "REPOSITORY",
            "PRIORITY",
            "TIMEOUT",
            "TASK KEY",
            turn("NOT BEFORE")
        );
        for job in &self.jobs {
            let timeout = if job.timeout.is_empty() {
                "policy"
            } else {
                &job.timeout
            };
            let _ = writeln!(
                out,
                "{:<40} {:<8} {:<8} {:<44} {}{}",
                job.repository,
                job.priority.as_str(),
                timeout,
                job.task_key,
                turn(&job.not_before),
                first_line(&job.instruction, 60)
            );
        }
        out
    }
}

fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() <= max {
        line.to_string()
    } else {
        let mut s: String = line.chars().take(max).collect();
        s.push('…');
        s
    }
}

/// The task key of `repository` in an entry with `identity`, on `date`: the entry's id (when
/// it has one), the date, and 12 hex digits of SHA-256 over the identity, the lower-cased
/// repository and the date. Same inputs, same key — so a re-run of a nightly job on the same
/// day attaches to its task instead of starting a second one.
pub fn task_key(identity: &str, repository: &str, date: Date) -> String {
    let mut h = Sha256::new();
    for part in [
        "agent-gate fleet v1",
        identity,
        &repository.to_ascii_lowercase(),
        &date.to_string(),
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    let hex = crate::core::prompt::hex(&h.finalize()[..6]);
    let day = date.strftime("%Y%m%d");
    match identity.strip_prefix("id:") {
        Some(id) => format!("{id}-{day}-{hex}"),
        None => format!("fleet-{day}-{hex}"),
    }
}

/// Expand `manifest` into jobs for `date`, in manifest order (entry by entry, repositories as
/// listed), paced from `start` when the manifest sets `tasks-per-minute`. Refuses a plan of
/// more than [`MAX_JOBS`] jobs.
pub fn plan(
    manifest: &Manifest,
    date: Date,
    start: jiff::Timestamp,
) -> Result<Plan, ManifestError> {
    let count = manifest.job_count();
    if count > MAX_JOBS {
        return Err(ManifestError::TooManyJobs {
            path: manifest.path.clone(),
            line: manifest.entries_at.0,
            column: manifest.entries_at.1,
            jobs: count,
            limit: MAX_JOBS,
            per_entry: manifest
                .entries
                .iter()
                .map(|e| (e.id.clone(), e.line, e.repositories.len()))
                .collect(),
        });
    }
    let mut jobs = Vec::with_capacity(count);
    for entry in &manifest.entries {
        for repository in &entry.repositories {
            jobs.push(Job {
                repository: repository.clone(),
                instruction: entry.instruction.clone(),
                scope: entry.scope.join("\n"),
                policy: entry.policy.clone(),
                timeout: entry.timeout.map(format_duration).unwrap_or_default(),
                priority: entry.priority,
                base_ref: entry.base_ref.clone().unwrap_or_default(),
                task_key: task_key(&entry.identity, repository, date),
                entry: entry.id.clone().unwrap_or_default(),
                not_before: manifest
                    .tasks_per_minute
                    .and_then(|n| {
                        let ms = i64::try_from(jobs.len()).ok()? * 60_000 / i64::from(n);
                        start
                            .checked_add(jiff::SignedDuration::from_millis(ms))
                            .ok()
                    })
                    .map(|t| t.round(jiff::Unit::Millisecond).unwrap_or(t).to_string())
                    .unwrap_or_default(),
            });
        }
    }
    Ok(Plan { date, jobs })
}

/// Today's date in UTC (the default `--date`).
pub fn today_utc() -> Date {
    jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date()
}

/// A `--date` that is not a calendar date (the text as given).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("`{0}` is not a date like 2026-03-10 (YYYY-MM-DD)")]
    Form(String),
    #[error("`{text}` is not a valid date: {reason}")]
    Invalid { text: String, reason: String },
}

/// Parse `--date` (`YYYY-MM-DD`).
pub fn parse_date(text: &str) -> Result<Date, DateError> {
    let t = text.trim();
    let ok = t.len() == 10
        && t.char_indices().all(|(i, c)| {
            if i == 4 || i == 7 {
                c == '-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !ok {
        return Err(DateError::Form(text.to_string()));
    }
    t.parse::<Date>().map_err(|e| DateError::Invalid {
        text: text.to_string(),
        reason: e.to_string(),
    })
}
