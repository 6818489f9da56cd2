//! One round of a run with repair rounds as the report, the summary and the audit record
//! list it ([`RoundRecord`]). Pure data; `crate::flow::repair` builds it from a round's report.

use serde::Serialize;

use super::Verdict;

/// One round as the report, summary and audit file list it: what was asked (the prompt's
/// hash and key), the task, what changed and what the gate decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoundRecord {
    /// 0 = the first task, 1.. = repair rounds.
    pub round: u32,
    /// The round's idempotency key (`crate::flow::repair::round_key`).
    pub key: String,
    pub prompt_sha256: String,
    pub task_id: String,
    /// The commit gated in this round.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_sha: Option<String>,
    pub verdict: Verdict,
    /// Changed paths (against the base) as gated in this round.
    pub files: Vec<String>,
    /// Violation messages.
    pub violations: Vec<String>,
    /// Names of the required checks that failed.
    pub checks_failed: Vec<String>,
    /// AI credits of this round's sessions (`crate::flow::repair::round_cost`).
    pub ai_credits: f64,
    pub premium_requests: f64,
}
