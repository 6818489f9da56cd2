//! The verdict model (DESIGN §2): verdicts, their exit codes and precedence. Pure data;
//! renderers live beside it.

use serde::Serialize;

/// The one outcome of a gate run. Exit codes are an API: never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Passed,
    ChecksFailed,
    ScopeViolation,
    AgentFailed,
    TimedOut,
    OverBudget,
    Cancelled,
    ConfigError,
    ApiError,
}

impl Verdict {
    /// The documented exit code.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Passed => 0,
            Verdict::ChecksFailed => 10,
            Verdict::ScopeViolation => 11,
            Verdict::AgentFailed => 12,
            Verdict::TimedOut => 13,
            Verdict::OverBudget => 14,
            Verdict::Cancelled => 130,
            Verdict::ConfigError => 2,
            Verdict::ApiError => 3,
        }
    }
}
