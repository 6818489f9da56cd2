//! The run in hand: [`Run`], everything every step of `agent-gate run` reads once the inputs,
//! the base and the policy are known and the clients are built — the options, the compiled
//! policy and narrowed scope, the task's key and prompt, the base, the deadline, the
//! clients and the remote's admission store. Steps take `&Run` and return what they found;
//! none of them reaches back into the pipeline that calls them in turn.

use std::time::Duration;

use tokio::time::Instant;

use crate::adapters::git::Git;
use crate::adapters::github::Client;
use crate::adapters::shutdown::Shutdown;
use crate::core::policy::Policy;
use crate::core::scope::Scope;
use crate::flow::lease::LeaseStore;
use crate::flow::pace::LedgerPacer;

use super::ending::fmt_secs;
use super::options::RunOptions;

/// One prepared run of the gate.
pub(super) struct Run<T = Client> {
    pub opts: RunOptions,
    pub git: Git,
    /// The task lifecycle's calls (list, create, read, poll), bounded by the run's
    /// deadline: the agent-tasks client, or a script in a flow test.
    pub tasks: T,
    /// The agent-tasks client, bounded by the run's deadline, for what is not the task
    /// lifecycle (pull requests, the agent's availability).
    pub client: Client,
    /// The client for statuses, labels and comments.
    pub status_client: Client,
    /// The policy read at the base.
    pub policy: Policy,
    /// The policy's scope narrowed by the `scope` input.
    pub scope: Scope,
    /// The run's idempotency key (round 0's), its marker and the first task's prompt.
    pub key: String,
    pub mark: String,
    pub prompt: String,
    /// The base branch and its commit (in a private ref).
    pub base_branch: String,
    pub base_rev: String,
    /// The private ref the agent's head is fetched into (again each round).
    pub head_local: String,
    pub shutdown: Shutdown,
    pub clock: RunClock,
    /// Repair rounds allowed after the first task.
    pub max_rounds: u32,
    /// The admission lock, lease and task index on the remote; the lease is given back
    /// when the store is dropped, at the end of the run.
    pub leases: tokio::sync::Mutex<LeaseStore>,
    /// The fleet's write pace (`write-pace`), when one is set.
    pub pacer: Option<LedgerPacer>,
}

impl<T> Run<T> {
    /// Where the run's write-pace ledger is: `pace-ledger`, else the run's remote.
    pub fn ledger(&self) -> &str {
        ledger_of(&self.opts)
    }
}

/// Where a run's write-pace ledger is: `pace-ledger`, else the run's remote.
pub(super) fn ledger_of(opts: &RunOptions) -> &str {
    opts.pace_ledger.as_deref().unwrap_or(&opts.remote)
}

/// When the run started and the one deadline every wait and poll of it shares.
#[derive(Debug, Clone, Copy)]
pub(super) struct RunClock {
    pub started: Instant,
    /// The gate's timeout (`timeout` input, else `agent.timeout`).
    pub timeout: Duration,
    /// `started + timeout`.
    pub deadline: Instant,
}

impl RunClock {
    pub fn new(started: Instant, timeout: Duration) -> RunClock {
        RunClock {
            started,
            timeout,
            deadline: started + timeout,
        }
    }

    /// The tail of a progress line: `after 42s, deadline in 9m18s`.
    pub fn since_start(&self) -> String {
        let elapsed = self.started.elapsed();
        format!(
            "after {}, deadline in {}",
            fmt_secs(elapsed),
            fmt_secs(self.timeout.saturating_sub(elapsed))
        )
    }
}
