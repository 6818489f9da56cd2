//! agent-gate: run GitHub Copilot cloud-agent tasks as governed CI jobs.
//!
//! The tree is the direction of dependencies in DESIGN §7: each folder is one layer, and a
//! layer uses only itself and the layers above it in this list (the architecture test in
//! `tests/it/architecture.rs` holds that, import by import).
//!
//! - [`core`]: pure logic, no I/O — the policy, the scope engine, the change and its
//!   assessment, the report and what it reads as.
//! - [`adapters`]: each owns one thing outside the process — git, checks' processes and
//!   containers, GitHub's API, the Actions runner's files, the audit log.
//! - [`flow`]: the `run`, `check` and fleet orchestration, the only place that joins core and
//!   adapters, with the policies it applies over them (admission, budget, pace, repair).
//! - [`cli`]: the command line, and [`demo`], the offline demo.
//! - [`sim`]: the simulator of GitHub's agent-tasks API, apart: it uses only GitHub's wire
//!   types, and only the command line and the tests use it.

pub mod adapters;
pub mod cli;
pub mod core;
pub mod demo;
pub mod flow;
pub mod sim;
