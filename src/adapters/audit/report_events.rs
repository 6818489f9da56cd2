//! How a finished [`Report`] becomes audit events: the `change`, `violation`, `check`,
//! `round`, `stop` and `verdict` events it already holds ([`events_for_report`]), and the
//! `task` and `state` events of its task for a run that writes them at the end
//! ([`task_events`]). What it does not own: the event types and their one-source
//! constructors (`event`), when events are written and the file (`AuditStream`, the parent
//! module).

use super::event::{
    AuditEvent, ChangeEvent, CheckEvent, RoundEvent, StateEvent, StopEvent, VerdictEvent,
};
use crate::core::report::{Report, TaskInfo};

/// The events a finished report holds: `change` (when a change was computed), each
/// `violation`, each `check`, each `round` (runs with repair rounds), `stop` (when the gate
/// stopped a task), and `verdict`.
/// `trigger`, `admission`, `task` and `state` happen during the run and are written by
/// the flow as they happen (see [`task_events`] for a run that writes them at the end).
/// `repository`: the one the run works on (`owner/repo`), when known.
pub fn events_for_report(report: &Report, repository: Option<&str>) -> Vec<AuditEvent> {
    events_for_report_with(report, repository, |_| None)
}

/// [`events_for_report`], with `command_of(check name)` giving each check's command.
pub fn events_for_report_with(
    report: &Report,
    repository: Option<&str>,
    command_of: impl Fn(&str) -> Option<String>,
) -> Vec<AuditEvent> {
    let mut events = Vec::new();
    let task_id = report.task.as_ref().map(|t| t.id.clone());
    if report.merge_base.is_some() || report.head_sha.is_some() || !report.files.is_empty() {
        events.push(AuditEvent::Change(ChangeEvent {
            repository: repository.map(str::to_string),
            base: report.base.clone(),
            head: report.head.clone(),
            merge_base: report.merge_base.clone(),
            head_sha: report.head_sha.clone(),
            task_id: task_id.clone(),
            pr_number: report.task.as_ref().and_then(|t| t.pr_number),
            files: report.totals.files.max(report.files.len()),
            lines_added: report.totals.lines_added,
            lines_deleted: report.totals.lines_deleted,
        }));
    }
    events.extend(
        report
            .violations
            .iter()
            .map(|v| AuditEvent::Violation(v.into())),
    );
    events.extend(
        report
            .checks
            .iter()
            .map(|c| AuditEvent::Check(CheckEvent::from_entry(c, command_of(&c.name)))),
    );
    events.extend(
        report
            .rounds
            .iter()
            .map(|r| AuditEvent::Round(RoundEvent::from(r))),
    );
    if let Some(task) = report.task.as_ref().filter(|t| !t.stop_actions.is_empty()) {
        events.push(AuditEvent::Stop(StopEvent {
            task_id: task.id.clone(),
            state: task.state.clone(),
            actions: task.stop_actions.clone(),
        }));
    }
    events.push(AuditEvent::Verdict(VerdictEvent {
        verdict: report.verdict.as_str().to_string(),
        exit_code: report.exit_code,
        head_sha: report.head_sha.clone(),
        task_id,
        violations: report.violations.len(),
        checks_failed: report.checks.iter().filter(|c| c.fails_gate()).count(),
        errors: report.errors.clone(),
    }));
    events
}

/// The `task` event and one `state` event per timeline entry of `task`.
pub fn task_events(task: &TaskInfo) -> Vec<AuditEvent> {
    let mut events = vec![AuditEvent::task(task)];
    events.extend(task.timeline.iter().map(|t| {
        AuditEvent::State(StateEvent {
            task_id: task.id.clone(),
            state: t.state.clone(),
            at: t.at.clone(),
            elapsed_s: t.elapsed_s,
        })
    }));
    events
}
