//! The single integration-test binary: every test drives agent-gate through its public
//! interface (library API, CLI binary, Action environment).

mod actions;
mod admission;
mod checks;
mod cli;
mod git;
mod github;
mod plan;
mod policy;
mod scope;
mod sim;
mod support;
