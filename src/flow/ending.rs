//! How a run's report ends on the way: a verdict with a note, a configuration or an API
//! error with its context,
//! and durations worded for progress lines. Every step of `run` (start, rounds, sessions, the
//! head) finishes reports the same way, so these live below all of them rather than in the
//! file that calls them in turn.

use std::time::Duration;

use crate::adapters::github::ApiError;
use crate::core::report::{Report, Verdict};

/// The timeline state of a run waiting for a slot under `agent.max-concurrent-tasks`.
pub const WAITING_STATE: &str = "waiting-for-capacity";

/// `report` ended by an API failure: the error, with what the run was doing, decides the
/// verdict `api-error`.
pub(crate) fn api_error(mut report: Report, context: &str, e: &ApiError) -> Report {
    report.errors.push(format!("{context}: {e}"));
    report.set_verdict(Verdict::ApiError);
    report.finish();
    report
}

/// `report` ended by a configuration error (`message`): the verdict `config-error`.
pub(crate) fn config_error(mut report: Report, message: impl Into<String>) -> Report {
    report.errors.push(message.into());
    report.set_verdict(Verdict::ConfigError);
    report.finish();
    report
}

/// `report` with `verdict` combined in and `note` saying why.
pub(crate) fn finish_with(mut report: Report, verdict: Verdict, note: String) -> Report {
    report.notes.push(note);
    report.set_verdict(report.verdict.combine(verdict));
    report.finish();
    report
}

/// A duration for a progress line: `42s`, `3m05s`, `1h20m`.
pub(crate) fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}
