//! Fleet runs (docs/fleet.md, issue 8): the two commands around a batch of runs on the
//! GitHub Actions matrix. `plan` is the I/O shell of `agent-gate plan` — read a manifest,
//! expand it with [`crate::core::manifest`] and write the matrix to `GITHUB_OUTPUT` or stdout;
//! `report` merges the audit records of the batch into one fleet report. Capacity and
//! priority while the runs wait are `crate::flow::admission`'s; nothing here talks to GitHub.

mod load;
mod plan;
mod report;

pub use load::{LoadError, LoadSource, OLDEST_LISTED, RepoLoad, agent_gate_pulls, review_load};
pub use plan::{PlanCommand, PlanOutput, plan_command};
pub use report::{FleetReport, FleetRun};
