//! The task prompt and its idempotency marker (DESIGN §1 steps 2–3): the idempotency key of
//! a run, the marker embedded in the prompt so a re-run can find its task in the task list,
//! and the scope preamble that tells the agent what it may change. Pure text; no I/O.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::core::policy::{Allowance, Policy};
use crate::core::scope::Scope;

/// Prefix of every marker line; the key follows it up to the closing `]`.
pub const MARKER_PREFIX: &str = "[agent-gate task-key: ";

/// What a key is derived from when no `task-key` is given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyInputs {
    /// `GITHUB_REPOSITORY` (or the `--repo-slug`).
    pub repository: String,
    /// `GITHUB_RUN_ID`: the same on every attempt of a run, so a re-run attaches.
    pub run_id: String,
    /// `GITHUB_JOB`.
    pub job: String,
    /// `GITHUB_ACTION` (the step's id).
    pub step: String,
    /// The instruction text.
    pub instruction: String,
}

/// The idempotency key: the explicit `task-key` when given (trimmed, non-empty), else
/// `ag1-` + the first 20 hex digits of SHA-256 over the inputs.
pub fn derive_key(explicit: Option<&str>, inputs: &KeyInputs) -> String {
    if let Some(k) = explicit.map(str::trim).filter(|k| !k.is_empty()) {
        return k.replace(['\n', '\r', ']'], " ");
    }
    let mut h = Sha256::new();
    for part in [
        &inputs.repository,
        &inputs.run_id,
        &inputs.job,
        &inputs.step,
        &inputs.instruction,
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    let digest = h.finalize();
    let hex = hex(&digest[..10]);
    format!("ag1-{hex}")
}

/// The marker line for a key.
pub fn marker(key: &str) -> String {
    format!("{MARKER_PREFIX}{key}]")
}

/// The key of the first marker in `text`, if any.
pub fn find_key(text: &str) -> Option<&str> {
    let start = text.find(MARKER_PREFIX)? + MARKER_PREFIX.len();
    let rest = &text[start..];
    let end = rest.find(']')?;
    Some(&rest[..end])
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// SHA-256 of a prompt, hex, for audit records (the prompt itself may be long).
pub fn prompt_hash(prompt: &str) -> String {
    hex(&Sha256::digest(prompt.as_bytes()))
}

fn rule_list(out: &mut String, title: &str, rules: &[crate::core::scope::Rule]) {
    if rules.is_empty() {
        return;
    }
    let _ = writeln!(out, "{title}");
    for r in rules {
        let _ = writeln!(out, "  - {}", r.pattern.as_str());
    }
}

/// Instruction + scope preamble + marker.
pub fn build_prompt(instruction: &str, policy: &Policy, scope: &Scope, key: &str) -> String {
    let mut p = String::new();
    p.push_str(instruction.trim());
    p.push_str("\n\n---\nThis task runs under agent-gate. Your change is checked automatically; a change outside these limits is rejected without review.\n");
    if scope.allow().is_empty() {
        p.push_str("You may change any path that is not listed below as denied or protected.\n");
    } else {
        rule_list(
            &mut p,
            "Paths you may change (gitignore-style patterns):",
            scope.allow(),
        );
    }
    if let Some(n) = scope.narrow() {
        rule_list(
            &mut p,
            "For this task, only paths that also match:",
            n.rules(),
        );
    }
    rule_list(&mut p, "Paths you must not change:", scope.deny());
    rule_list(
        &mut p,
        "Protected paths you must never change:",
        scope.protected(),
    );
    let l = &policy.limits;
    let mut limits = Vec::new();
    if let Some(m) = l.max_files {
        limits.push(format!("at most {m} files"));
    }
    if let Some(m) = l.max_changed_lines {
        limits.push(format!("at most {m} changed lines"));
    }
    for (allow, what) in [
        (l.binary_files, "binary files"),
        (l.symlinks, "symbolic links"),
        (l.submodules, "submodules"),
        (l.mode_changes, "file mode changes"),
    ] {
        if allow == Allowance::Deny {
            limits.push(format!("no {what}"));
        }
    }
    if !limits.is_empty() {
        let _ = writeln!(p, "Limits: {}.", limits.join(", "));
    }
    let required: Vec<&str> = policy
        .checks
        .iter()
        .filter(|c| c.required)
        .map(|c| c.name.as_str())
        .collect();
    if !required.is_empty() {
        let _ = writeln!(
            p,
            "These checks must pass on your change: {}.",
            required.join(", ")
        );
    }
    let _ = writeln!(p, "{}", marker(key));
    p
}
