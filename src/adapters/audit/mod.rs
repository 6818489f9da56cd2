//! The audit trail: a JSON-lines file with one event per step of a gate run (trigger,
//! admission, task created or attached, each state change, the change, each violation,
//! each check, stop actions, the verdict). Every line is one JSON object carrying
//! `"schema": 1`, the time it was written and an `event` tag; lines are appended and
//! written whole, one `write` each, so a run that dies leaves every finished step on disk.
//! Every line passes through a [`Redact`] first (the run's masker): no token reaches the file.
//!
//! This module owns the file and the event shapes (documented in `docs/audit.md`). It
//! decides nothing: the flow says when each event happens through an [`AuditStream`];
//! [`events_for_report`] derives the events a finished [`Report`] already holds.

mod event;
mod report_events;
mod stream;

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::core::report::Report;
use crate::core::secret::Redact;

pub use event::{
    AdmissionEvent, AuditEvent, ChangeEvent, CheckEvent, RoundEvent, StateEvent, StopEvent,
    TaskAction, TaskEvent, TriggerEvent, VerdictEvent, ViolationEvent,
};
pub use report_events::{events_for_report, events_for_report_with, task_events};
pub use stream::AuditStream;

/// The version of the line format; written on every line.
pub const SCHEMA: u32 = 1;

/// File name used outside Actions (no `RUNNER_TEMP`), in the current directory.
pub const LOCAL_FILE: &str = "agent-gate-audit.jsonl";

/// Where the audit file of the run `trigger` describes goes by default:
/// `<runner_temp>/agent-gate/audit-<run id>-<attempt>.jsonl` in Actions (`RUNNER_TEMP`;
/// `local` and `1` when the run id or attempt are unknown), else `./agent-gate-audit.jsonl`.
pub fn default_path(runner_temp: Option<&Path>, trigger: &TriggerEvent) -> PathBuf {
    match runner_temp {
        Some(temp) => {
            let run = trigger
                .run_id
                .map_or_else(|| "local".to_string(), |id| id.to_string());
            let attempt = trigger.run_attempt.unwrap_or(1);
            temp.join("agent-gate")
                .join(format!("audit-{run}-{attempt}.jsonl"))
        }
        None => PathBuf::from(".").join(LOCAL_FILE),
    }
}

/// One line of the file: the schema, the time written, and the event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditLine {
    /// Always [`SCHEMA`].
    pub schema: u32,
    /// When the line was written (RFC 3339, UTC).
    pub time: String,
    /// The event, tagged by `event`.
    #[serde(flatten)]
    pub event: AuditEvent,
}

/// Failures of the audit writer, each naming the file.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The parent directory could not be created.
    #[error(
        "cannot create the directory of the audit file {}: {source}; point the audit file \
         at a writable directory (RUNNER_TEMP in Actions)",
        path.display()
    )]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file could not be opened for appending.
    #[error(
        "cannot open the audit file {} for appending: {source}; check that the path is \
         writable",
        path.display()
    )]
    Open {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A line could not be written.
    #[error("cannot write the {event} event to the audit file {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The event's tag.
        event: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An event could not be serialized (a bug: every event is plain data).
    #[error("cannot serialize the {event} audit event: {source}")]
    Serialize {
        /// The event's tag.
        event: &'static str,
        /// The underlying error.
        source: serde_json::Error,
    },
}

/// The clock that stamps lines.
type Clock = Box<dyn Fn() -> Timestamp + Send + Sync>;

/// An open audit file: appends one masked JSON line per event.
pub struct AuditLog {
    path: PathBuf,
    file: File,
    redactor: Box<dyn Redact + Send>,
    clock: Clock,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Open `path` for appending (creating it and its parent directories), redacting every
    /// secret `redactor` knows (register every secret with it before).
    pub fn open(
        path: impl AsRef<Path>,
        redactor: impl Redact + Send + 'static,
    ) -> Result<AuditLog, AuditError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|source| AuditError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| AuditError::Open {
                path: path.clone(),
                source,
            })?;
        Ok(AuditLog {
            path,
            file,
            redactor: Box::new(redactor),
            clock: Box::new(Timestamp::now),
        })
    }

    /// Stamp lines with `clock` instead of the system time (tests, replays).
    #[must_use]
    pub fn with_clock(mut self, clock: impl Fn() -> Timestamp + Send + Sync + 'static) -> AuditLog {
        self.clock = Box::new(clock);
        self
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one event as one line, masked, in a single write.
    pub fn write(&mut self, event: &AuditEvent) -> Result<(), AuditError> {
        let line = AuditLine {
            schema: SCHEMA,
            time: (self.clock)().to_string(),
            event: event.clone(),
        };
        let json = serde_json::to_string(&line).map_err(|source| AuditError::Serialize {
            event: event.name(),
            source,
        })?;
        let mut text = self.redactor.redact(&json).into_owned();
        text.push('\n');
        self.file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(|source| AuditError::Write {
                path: self.path.clone(),
                event: event.name(),
                source,
            })
    }

    /// The events a finished report holds (see [`events_for_report`]).
    pub fn events_for_report(report: &Report, repository: Option<&str>) -> Vec<AuditEvent> {
        events_for_report(report, repository)
    }

    /// Append every event in order.
    pub fn write_all(&mut self, events: &[AuditEvent]) -> Result<(), AuditError> {
        events.iter().try_for_each(|e| self.write(e))
    }
}

/// Parse the text of an audit file: one result per non-empty line (1-based line number
/// and the line or its parse error), so one torn line does not hide the others.
pub fn parse(text: &str) -> Vec<(usize, Result<AuditLine, serde_json::Error>)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, serde_json::from_str(l)))
        .collect()
}
