//! Adapter that runs the policy's checks: agent-written code, so each check runs with
//! `bash -c` in an isolated copy of the head tree, with a scrubbed environment, in its own
//! process group, with a timeout and captured, size-capped output. It knows nothing of git
//! refs, policies' YAML or GitHub.
//!
//! STUB CONTRACT: to be written.
