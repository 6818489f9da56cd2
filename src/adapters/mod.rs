//! The adapters layer: each module owns one thing outside the process — git, the checks'
//! processes and containers, Docker's socket, GitHub's REST API, the Actions runner's
//! environment and files, the audit log — and turns it into the core's values. They use
//! the core and nothing of the flow, so the flow can join them (and tests can replace them)
//! without any adapter knowing the run it serves.

pub mod actions;
pub mod audit;
pub mod checks;
pub mod git;
pub mod github;
pub mod ownership;
pub mod progress;
pub mod shutdown;
