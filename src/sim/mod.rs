//! The offline simulator of GitHub's agent-tasks API (DESIGN §6). Depends on the github
//! module's wire types and nothing else of the gate.
//!
//! STUB CONTRACT: to be written.
