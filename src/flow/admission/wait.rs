//! [`WaitInfo`]: what one check that found no free slot (or a lock held by another run)
//! reports before admission waits, and its one-line rendering for progress output. It does
//! not decide when to report (that is [`admit`](super::admit)) nor print.

use std::fmt;
use std::time::Duration;

/// One check that found no free slot (reported before each wait).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitInfo {
    /// agent-gate tasks running in the repository (this run's own task excluded).
    pub running: u32,
    /// The limit for this run's priority: admitted once `running + ahead < limit`.
    pub limit: u32,
    /// Runs of higher priority waiting for a slot (seen through the admission lock).
    pub ahead: u32,
    /// Time since admission started.
    pub waited: Duration,
    /// `Some` while the admission lock is held by another run (its key, when known) for
    /// longer than one check interval: the wait is for the lock, not for a slot; `running`
    /// is then the count of the last check.
    pub lock_holder: Option<String>,
}

impl fmt::Display for WaitInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(holder) = &self.lock_holder {
            return write!(
                f,
                "waiting for the admission lock, held by {} (taken over once a minute old; waited {}s)",
                if holder.is_empty() {
                    "another run"
                } else {
                    holder.as_str()
                },
                self.waited.as_secs()
            );
        }
        write!(
            f,
            "waiting for capacity: {} agent-gate tasks running",
            self.running
        )?;
        if self.ahead > 0 {
            write!(
                f,
                ", {} higher-priority run{} waiting",
                self.ahead,
                if self.ahead == 1 { "" } else { "s" }
            )?;
        }
        write!(
            f,
            ", this run may start below {} (waited {}s)",
            self.limit,
            self.waited.as_secs()
        )
    }
}
