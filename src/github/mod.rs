//! Adapter for GitHub's REST API: the agent-tasks endpoints and the few repository
//! endpoints the gate uses. [`types`] holds the wire types shared with the simulator.
//!
//! STUB CONTRACT: the client, retry policy, poller and `stop` are to be written here.

pub mod types;
