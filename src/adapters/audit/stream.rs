//! A run's audit record written as the run goes ([`AuditStream`]): `trigger` when the run
//! starts, `admission` and `task` once the task is started or attached (with the states it
//! has been through so far), each `state` as the poller sees it, and the rest — change,
//! violations, checks, stop, verdict — from the finished report
//! ([`AuditStream::finish`]). A gate killed without warning (SIGKILL, a lost runner) leaves
//! every step it finished on disk. The handle is cheap to clone and shared by the flow and
//! the publisher; a stream that is not open ([`AuditStream::none`]) does nothing.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use crate::core::report::{Report, TaskInfo, TimelineEntry};

use super::{
    AuditError, AuditEvent, AuditLog, StateEvent, TriggerEvent, events_for_report, task_events,
};

/// What has been written already.
struct Inner {
    log: AuditLog,
    /// What started the run; its `repository` is the one the run works on.
    trigger_event: TriggerEvent,
    trigger: bool,
    /// The `scope` input's globs, for the `admission` event.
    scope: Vec<String>,
    admission: bool,
    /// The task whose `task` event was written, and how many of its states.
    task: Option<String>,
    states: usize,
    /// The first write that failed (reported by [`AuditStream::finish`]).
    error: Option<AuditError>,
}

impl Inner {
    fn write(&mut self, event: &AuditEvent) {
        if self.error.is_none()
            && let Err(e) = self.log.write(event)
        {
            self.error = Some(e);
        }
    }

    fn trigger_once(&mut self) {
        if !self.trigger {
            self.trigger = true;
            let event = AuditEvent::Trigger(self.trigger_event.clone());
            self.write(&event);
        }
    }

    fn admission_once(&mut self, report: &Report) {
        if !self.admission
            && let Some(event) = AuditEvent::admission_of(
                report,
                self.trigger_event.repository.as_deref(),
                &self.scope,
            )
        {
            self.admission = true;
            self.write(&event);
        }
    }
}

/// A shared handle on the audit record of one run.
#[derive(Clone, Default)]
pub struct AuditStream {
    inner: Option<Arc<Mutex<Inner>>>,
}

impl fmt::Debug for AuditStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditStream")
            .field("path", &self.path())
            .finish()
    }
}

impl AuditStream {
    /// A stream that writes nothing (no audit record for this run, or it is written at the
    /// end by the publisher).
    pub fn none() -> AuditStream {
        AuditStream::default()
    }

    /// Stream into `log`; `trigger` is what started the run.
    pub fn new(log: AuditLog, trigger: TriggerEvent) -> AuditStream {
        AuditStream {
            inner: Some(Arc::new(Mutex::new(Inner {
                log,
                trigger_event: trigger,
                trigger: false,
                scope: Vec::new(),
                admission: false,
                task: None,
                states: 0,
                error: None,
            }))),
        }
    }

    pub fn is_open(&self) -> bool {
        self.inner.is_some()
    }

    /// The file written, when open.
    pub fn path(&self) -> Option<PathBuf> {
        self.with(|i| i.log.path().to_path_buf())
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> Option<T> {
        let inner = self.inner.as_ref()?;
        let mut guard = inner.lock().unwrap_or_else(PoisonError::into_inner);
        Some(f(&mut guard))
    }

    /// The `trigger` event (once).
    pub fn trigger(&self) {
        self.with(Inner::trigger_once);
    }

    /// The `scope` input's globs that narrow the run, for its `admission` event.
    pub fn scope(&self, globs: &[String]) {
        self.with(|i| i.scope = globs.to_vec());
    }

    /// The `admission` event of `report`, when the run was capped or budgeted (once).
    pub fn admission(&self, report: &Report) {
        self.with(|i| i.admission_once(report));
    }

    /// The `task` event of `task`, and a `state` event for each entry of `timeline` so far
    /// (once per task).
    pub fn task(&self, task: &TaskInfo, timeline: &[TimelineEntry]) {
        self.with(|i| {
            if i.task.as_deref() == Some(task.id.as_str()) {
                return;
            }
            let info = TaskInfo {
                timeline: timeline.to_vec(),
                ..task.clone()
            };
            for event in task_events(&info) {
                i.write(&event);
            }
            i.task = Some(task.id.clone());
            i.states = timeline.len();
        });
    }

    /// One `state` event of the task written by [`AuditStream::task`] (ignored before it:
    /// [`AuditStream::task`] writes the states seen until then).
    pub fn state(&self, task_id: &str, entry: &TimelineEntry) {
        self.with(|i| {
            if i.task.as_deref() == Some(task_id) {
                i.states += 1;
                let event = AuditEvent::State(StateEvent {
                    task_id: task_id.to_string(),
                    state: entry.state.clone(),
                    at: entry.at.clone(),
                    elapsed_s: entry.elapsed_s,
                });
                i.write(&event);
            }
        });
    }

    /// Write what `report` holds that was not written yet: `trigger`, `admission`, the
    /// `task` and its remaining states, then change, violations, checks, stop and verdict.
    /// Returns the first error of the whole stream, if any write failed.
    pub fn finish(&self, report: &Report) -> Result<(), AuditError> {
        self.with(|i| {
            i.trigger_once();
            i.admission_once(report);
            if let Some(task) = &report.task {
                let events = task_events(task);
                let skip = if i.task.as_deref() == Some(task.id.as_str()) {
                    1 + i.states
                } else {
                    0
                };
                for event in events.iter().skip(skip) {
                    i.write(event);
                }
                i.task = Some(task.id.clone());
                i.states = task.timeline.len();
            }
            for event in events_for_report(report, i.trigger_event.repository.as_deref()) {
                i.write(&event);
            }
            i.error.take().map_or(Ok(()), Err)
        })
        .unwrap_or(Ok(()))
    }
}
