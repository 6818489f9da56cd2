//! The single integration-test binary: every test drives agent-gate through its public
//! interface (library API, CLI binary, Action environment).

mod actions;
mod checks;
mod cli;
mod faults;
mod git;
mod github;
mod hostile;
mod policy;
mod scope;
mod sim;
mod support;
