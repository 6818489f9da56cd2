//! The single integration-test binary: every test drives agent-gate through its public
//! interface (library API, CLI binary, Action environment).

mod action;
mod actions;
mod audit;
mod checks;
mod cli;
mod git;
mod github;
mod outputs;
mod policy;
mod review;
mod scope;
mod sim;
mod summary;
mod support;
