//! The verdict of a gate run ([`Verdict`]): the closed set of outcomes in DESIGN §2
//! precedence order, the exit code each maps to (an API: never renumbered), the kebab-case
//! name outputs and JSON use, and how two verdicts combine. It does not decide which verdict
//! a run gets (`Report::finish`, `assessment` and `flow` do) nor render anything.

use serde::Serialize;

/// The one outcome of a gate run. Exit codes are an API: never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    // Declared in precedence order (DESIGN §2): when several apply, the first wins.
    ConfigError,
    ApiError,
    OverBudget,
    Cancelled,
    TimedOut,
    AgentFailed,
    ScopeViolation,
    /// A required check could not run because its environment lacks the program it starts
    /// (or its image): the repository's setup, not the change. Ranks just above
    /// `checks-failed`; never sent back to the agent for repair.
    CheckError,
    ChecksFailed,
    /// `--dry-run`: everything but starting the task was done; nothing was gated.
    DryRun,
    Passed,
}

impl Verdict {
    /// Every verdict, in precedence order.
    pub const ALL: [Verdict; 11] = [
        Verdict::ConfigError,
        Verdict::ApiError,
        Verdict::OverBudget,
        Verdict::Cancelled,
        Verdict::TimedOut,
        Verdict::AgentFailed,
        Verdict::ScopeViolation,
        Verdict::CheckError,
        Verdict::ChecksFailed,
        Verdict::DryRun,
        Verdict::Passed,
    ];

    /// The documented exit code.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Passed | Verdict::DryRun => 0,
            Verdict::ChecksFailed => 10,
            Verdict::ScopeViolation => 11,
            Verdict::AgentFailed => 12,
            Verdict::TimedOut => 13,
            Verdict::OverBudget => 14,
            Verdict::CheckError => 15,
            Verdict::Cancelled => 130,
            Verdict::ConfigError => 2,
            Verdict::ApiError => 3,
        }
    }

    /// The kebab-case name used in outputs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::DryRun => "dry-run",
            Verdict::ChecksFailed => "checks-failed",
            Verdict::ScopeViolation => "scope-violation",
            Verdict::AgentFailed => "agent-failed",
            Verdict::TimedOut => "timed-out",
            Verdict::OverBudget => "over-budget",
            Verdict::CheckError => "check-error",
            Verdict::Cancelled => "cancelled",
            Verdict::ConfigError => "config-error",
            Verdict::ApiError => "api-error",
        }
    }

    /// The verdict that wins when both apply (DESIGN §2 order).
    #[must_use]
    pub fn combine(self, other: Verdict) -> Verdict {
        self.min(other)
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
