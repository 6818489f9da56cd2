//! agent-gate: run GitHub Copilot cloud-agent tasks as governed CI jobs.
//!
//! The module tree follows the direction of dependencies in DESIGN §7:
//!
//! - **core** (pure logic, no I/O): [`policy`] and [`manifest`] (their YAML mistakes told
//!   by [`yaml`]), [`scope`], [`change`], [`assessment`], [`prompt`], [`report`], [`summary`].
//! - **adapters** (each owns one outside thing): [`git`], [`checks`], [`github`].
//! - **flow** (joins core and adapters): [`flow`], and the policies it applies over the
//!   adapters: [`admission`] (with its lock on the remote, [`lease`]), [`budget`], [`repair`],
//!   [`fleet`], [`pace`].
//! - **front** (command line): [`cli`].
//! - **simulator** (depends only on the github wire types): [`sim`].

// core
pub mod assessment;
pub mod change;
pub mod manifest;
pub mod policy;
pub mod prompt;
pub mod report;
pub mod scope;
pub mod slug;
pub mod summary;
pub mod yaml;

// adapters
pub mod actions;
pub mod audit;
pub mod checks;
pub mod docker;
pub mod git;
pub mod github;
pub mod ownership;
pub mod progress;
pub mod publish;
pub mod shutdown;

// flow
pub mod admission;
pub mod budget;
pub mod fleet;
pub mod flow;
pub mod lease;
pub mod pace;
pub mod repair;

// front
pub mod cli;

// simulator
pub mod sim;

// demo (front + simulator)
pub mod demo;
