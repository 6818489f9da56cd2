//! The single integration-test binary: every test drives agent-gate through its public
//! interface (library API, CLI binary, Action environment).

mod action;
mod actions;
mod admission;
mod admission_lock;
mod architecture;
mod audit;
mod budget;
mod checks;
mod cli;
mod container;
mod demo;
mod faults;
mod fleet;
mod fleet_workflow;
mod git;
mod github;
mod github_checks;
mod hardening;
mod hostile;
mod hostile_checks;
mod lifecycle;
mod outputs;
mod plan;
mod policy;
mod repair;
mod review;
mod run;
mod run_rounds;
mod scope;
mod sim;
mod summary;
mod support;
