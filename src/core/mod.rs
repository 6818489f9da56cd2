//! The core layer: what agent-gate decides, as pure functions of values — the policy and
//! its scope rules, the change an agent made and how it measures against them, the report
//! and the words a human reads it in. Nothing here touches the network, a subprocess, the
//! file system or a clock of its own, so every rule of the product can be tested as data
//! in, data out; every other layer may use it, and it uses none of them.

pub mod assessment;
pub mod change;
pub mod manifest;
pub mod policy;
pub mod prompt;
pub mod report;
pub mod scope;
pub mod secret;
pub mod slug;
pub mod summary;
pub mod yaml;
