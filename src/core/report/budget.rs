//! The daily budget as the report holds it: the policy's limits ([`BudgetLimits`]), what
//! agent-gate spent today against them ([`BudgetStatus`]) and which limit a run would exceed
//! ([`Exceeded`]), with the paragraph every output shows ([`BudgetStatus::message`]). Pure
//! data; the counting against the task list is `crate::flow::budget`'s.

use std::fmt::Write as _;

use serde::Serialize;

use super::credits::{credits, credits_phrase};
use crate::core::policy::AgentSettings;

/// The policy's daily limits; `None` = no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct BudgetLimits {
    pub max_tasks_per_day: Option<u32>,
    /// AI credits (display units: nano ÷ 1e9).
    pub max_ai_credits_per_day: Option<f64>,
}

impl BudgetLimits {
    /// The limits of a compiled policy's `agent` section.
    pub fn from_agent(agent: &AgentSettings) -> BudgetLimits {
        BudgetLimits {
            max_tasks_per_day: agent.max_tasks_per_day,
            max_ai_credits_per_day: agent.max_ai_credits_per_day,
        }
    }

    /// No limit is set: there is nothing to count (the flow may skip
    /// `crate::flow::budget::check_budget`).
    pub fn is_unlimited(&self) -> bool {
        self.max_tasks_per_day.is_none() && self.max_ai_credits_per_day.is_none()
    }
}

/// Which limit a run would exceed, with the figures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "which", rename_all = "kebab-case")]
pub enum Exceeded {
    /// `tasks_today + requested > limit`.
    TasksPerDay {
        used: u32,
        limit: u32,
        requested: u32,
    },
    /// `credits_today >= limit`: the cost of a task is known only once it ran, so the
    /// budget is spent when it is reached.
    AiCreditsPerDay { used: f64, limit: f64 },
}

/// What agent-gate spent today in one repository, against the limits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetStatus {
    /// `owner/repo`.
    pub repository: String,
    /// 00:00 UTC of the day counted (RFC 3339).
    pub since: String,
    /// When the count starts again: the next 00:00 UTC (RFC 3339).
    pub resets_at: String,
    /// Agent-gate sessions (tasks and repair rounds) started since `since`.
    pub tasks_today: u32,
    /// Their `ai_credits` usage, summed (display units).
    pub credits_today: f64,
    /// The same in nano units, exact.
    pub credits_today_nano: u64,
    /// Tasks read to count (updated today).
    pub tasks_read: u32,
    /// Sessions this run asked for.
    pub requested: u32,
    pub limits: BudgetLimits,
    /// The first limit the run would exceed (tasks before credits); `None` = within budget.
    pub would_exceed: Option<Exceeded>,
}

fn plural(n: u32, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl BudgetStatus {
    /// One paragraph for the report, the summary and the console: the refusal with its
    /// figures when a limit would be exceeded, else what was spent against the limits.
    pub fn message(&self) -> String {
        let mut out = String::new();
        match self.would_exceed {
            Some(Exceeded::TasksPerDay {
                used,
                limit,
                requested,
            }) => {
                let _ = write!(
                    out,
                    "over budget: agent-gate already started {} (repair rounds included) in {} today (since {}), and this run needs {} more; agent.max-tasks-per-day is {limit}. Nothing was started. The count starts again at {}; raise the limit in the policy to run sooner.",
                    plural(used, "agent task", "agent tasks"),
                    self.repository,
                    self.since,
                    requested,
                    self.resets_at
                );
            }
            Some(Exceeded::AiCreditsPerDay { used, limit }) => {
                let _ = write!(
                    out,
                    "over budget: agent-gate's tasks in {} used {} today (since {}), at or above agent.max-ai-credits-per-day: {}. Nothing was started. The count starts again at {}; raise the limit in the policy to run sooner.",
                    self.repository,
                    credits_phrase(used),
                    self.since,
                    credits(limit),
                    self.resets_at
                );
            }
            None => {
                let tasks = match self.limits.max_tasks_per_day {
                    Some(m) => format!("{} of {}", self.tasks_today, plural(m, "task", "tasks")),
                    None => plural(self.tasks_today, "task", "tasks"),
                };
                let creds = match self.limits.max_ai_credits_per_day {
                    Some(m) => format!(
                        "{} of {} AI credits",
                        credits(self.credits_today),
                        credits(m)
                    ),
                    None => credits_phrase(self.credits_today),
                };
                let _ = write!(
                    out,
                    "within budget: agent-gate used {tasks} and {creds} in {} today (since {}); this run needs {}.",
                    self.repository,
                    self.since,
                    plural(self.requested, "more task", "more tasks")
                );
            }
        }
        out
    }
}
