//! The cost of a task: the `usage` of its sessions summed (reference §4.3). `ai_credits`
//! amounts are whole nano units, summed raw before any division; `premium_requests` may be
//! fractional. Budgets and reporting are the flow's business, not this file's.

use super::types::Task;

/// What a task cost, summed over its sessions' `usage` (reference §4.3).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Cost {
    /// Sum of `ai_credits` amounts, in whole nano units (summed raw, before any division).
    pub ai_credits_nano: u64,
    /// Sum of `premium_requests` amounts (may be fractional).
    pub premium_requests: f64,
}

impl Cost {
    /// AI credits for display (nano ÷ 1e9).
    #[allow(
        clippy::cast_precision_loss,
        reason = "display only; exact value is ai_credits_nano"
    )]
    pub fn ai_credits(&self) -> f64 {
        self.ai_credits_nano as f64 / 1e9
    }
}

/// Sum the `usage` of every session of `task` (only single-task GETs carry sessions).
/// Unknown usage types and negative or non-finite amounts are ignored.
pub fn task_cost(task: &Task) -> Cost {
    let mut cost = Cost::default();
    for usage in task
        .sessions
        .iter()
        .flatten()
        .filter_map(|s| s.usage.as_ref())
    {
        if !usage.amount.is_finite() || usage.amount < 0.0 {
            continue;
        }
        match usage.kind.as_str() {
            "ai_credits" => {
                #[allow(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    reason = "finite, non-negative, rounded; saturates above u64::MAX"
                )]
                let nano = usage.amount.round() as u64;
                cost.ai_credits_nano = cost.ai_credits_nano.saturating_add(nano);
            }
            "premium_requests" => cost.premium_requests += usage.amount,
            other => tracing::warn!(kind = other, "unknown session usage type; not counted"),
        }
    }
    cost
}
