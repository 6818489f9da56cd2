//! Compiling the `agent` section into [`AgentSettings`]: the base ref checked as a git ref
//! name, the timeout and poll intervals parsed (`poll.max` at least `poll.initial`), the
//! concurrency cap and the slots reserved for high priority checked against each other, the
//! daily credit budget checked to be a number ≥ 0, and the defaults filled in. It does not
//! enforce these settings (the run and admission do) and compiles no globs.

use std::time::Duration;

use serde_saphyr::Location;

use super::{Compiler, format_duration};
use crate::core::policy::raw::RawAgent;
use crate::core::policy::{AgentSettings, OnIdle, OnWaitingForUser, PolicyError};

const DEFAULT_TIMEOUT: Duration = Duration::from_hours(1);
const DEFAULT_POLL_INITIAL: Duration = Duration::from_secs(5);
const DEFAULT_POLL_MAX: Duration = Duration::from_mins(1);
const DEFAULT_POLL_WATCH: Duration = Duration::from_secs(5);

impl Compiler<'_> {
    pub(super) fn agent(&self, raw: Option<RawAgent>) -> Result<AgentSettings, PolicyError> {
        let raw = raw.unwrap_or_default();
        let base_ref = match raw.base_ref {
            None => None,
            Some(r) if is_ref_name(&r.value) => Some(r.value),
            Some(r) => {
                return Err(self.invalid(
                    &r.referenced,
                    "agent.base-ref",
                    &r.value,
                    "a branch name such as `main` (a valid git ref name, not starting with `-`)",
                ));
            }
        };
        let timeout = self.duration(raw.timeout, "agent.timeout", DEFAULT_TIMEOUT)?;
        let poll = raw.poll.unwrap_or_default();
        let poll_initial =
            self.duration(poll.initial, "agent.poll.initial", DEFAULT_POLL_INITIAL)?;
        let max_at = poll.max.as_ref().map(|m| m.referenced);
        let poll_max = self.duration(poll.max, "agent.poll.max", DEFAULT_POLL_MAX)?;
        // Whole seconds, never zero (as every duration of the policy).
        let poll_watch = self.duration(poll.watch, "agent.poll.watch", DEFAULT_POLL_WATCH)?;
        if poll_max < poll_initial {
            let expected = format!(
                "at least `agent.poll.initial` ({})",
                format_duration(poll_initial)
            );
            return Err(self.invalid(
                &max_at.unwrap_or(Location::UNKNOWN),
                "agent.poll.max",
                &format_duration(poll_max),
                &expected,
            ));
        }
        let max_concurrent_tasks = match raw.max_concurrent_tasks {
            Some(m) if m.value == 0 => {
                return Err(self.invalid(
                    &m.referenced,
                    "agent.max-concurrent-tasks",
                    "0",
                    "at least 1 (remove the key for no cap)",
                ));
            }
            other => other,
        };
        let reserved_for_high = match (raw.reserved_for_high, &max_concurrent_tasks) {
            (None, _) => 0,
            (Some(r), _) if r.value == 0 => 0,
            (Some(r), None) => {
                return Err(self.invalid(
                    &r.referenced,
                    "agent.reserved-for-high",
                    &r.value.to_string(),
                    "`agent.max-concurrent-tasks` to be set too (reserved slots are taken from it)",
                ));
            }
            (Some(r), Some(max)) if r.value >= max.value => {
                let expected = format!("fewer than `agent.max-concurrent-tasks` ({})", max.value);
                return Err(self.invalid(
                    &r.referenced,
                    "agent.reserved-for-high",
                    &r.value.to_string(),
                    &expected,
                ));
            }
            (Some(r), Some(_)) => r.value,
        };
        let max_ai_credits_per_day = match raw.max_ai_credits_per_day {
            None => None,
            Some(c) if c.value.is_finite() && c.value >= 0.0 => Some(c.value),
            Some(c) => {
                return Err(self.invalid(
                    &c.referenced,
                    "agent.max-ai-credits-per-day",
                    &c.value.to_string(),
                    "a number ≥ 0",
                ));
            }
        };
        Ok(AgentSettings {
            base_ref,
            timeout,
            poll_initial,
            poll_max,
            poll_watch,
            on_idle: raw.on_idle.unwrap_or(OnIdle::Accept),
            on_waiting_for_user: raw.on_waiting_for_user.unwrap_or(OnWaitingForUser::Fail),
            create_pull_request: raw.create_pull_request.unwrap_or(true),
            allow_no_change: raw.allow_no_change.unwrap_or(false),
            max_concurrent_tasks: max_concurrent_tasks.map(|m| m.value),
            reserved_for_high,
            max_tasks_per_day: raw.max_tasks_per_day,
            max_ai_credits_per_day,
            repair_rounds: raw.repair_rounds.unwrap_or(0),
            max_open_pull_requests: raw.max_open_pull_requests,
            on_review_backlog: raw
                .on_review_backlog
                .unwrap_or(crate::core::policy::OnReviewBacklog::Fail),
        })
    }
}

/// A git ref name that is safe to hand to `git` (no option-like leading `-`).
fn is_ref_name(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with(['-', '/', '.'])
        && !text.ends_with(['/', '.'])
        && !text.to_ascii_lowercase().ends_with(".lock")
        && !text.contains("..")
        && !text.contains("//")
        && !text.contains("@{")
        && text != "@"
        && !text.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(c, '~' | '^' | ':' | '?' | '*' | '[' | '\\')
        })
}
