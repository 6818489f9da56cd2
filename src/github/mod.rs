//! Adapter for GitHub's REST API: the agent-tasks endpoints and the few repository
//! endpoints the gate uses. [`types`] holds the wire types shared with the simulator;
//! [`client`] the one HTTP client (headers, endpoints) over `transport` (retries, rate
//! limits, `ETag` cache);
//! [`error`] its error classes; [`retry`] the backoff policy and header reading;
//! `reconcile` the at-most-once create; [`poll`] the poller; [`stop`] the stand-in for the
//! cancel endpoint GitHub does not have. Nothing here knows policies, git or reports.

pub mod client;
pub mod error;
pub mod poll;
mod reconcile;
pub mod retry;
pub mod stop;
mod transport;
pub mod types;

pub use client::{
    Client, ClientConfig, CreatedComment, DEFAULT_API_URL, DEFAULT_API_VERSION, Direction,
    ListQuery, ListSort, Token, create_task_request, install_crypto_provider,
};
pub use error::{ApiError, ErrorInfo, INSTALLATION_TOKEN_HINT, TransportKind};
pub use poll::{PollEvent, PollOptions, PollOutcome, StatePolicy, poll_task};
pub use reconcile::{CreatedTask, since_before_now};
pub use retry::{Clock, RetryPolicy, SystemClock};
pub use stop::{StopAction, StopOptions, StopReason, StopRecord, StoppedPull, stop};

use types::Task;

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
    #[allow(clippy::cast_precision_loss, reason = "display only; exact value is ai_credits_nano")]
    pub fn ai_credits(&self) -> f64 {
        self.ai_credits_nano as f64 / 1e9
    }
}

/// Sum the `usage` of every session of `task` (only single-task GETs carry sessions).
/// Unknown usage types and negative or non-finite amounts are ignored.
pub fn task_cost(task: &Task) -> Cost {
    let mut cost = Cost::default();
    for usage in task.sessions.iter().flatten().filter_map(|s| s.usage.as_ref()) {
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
