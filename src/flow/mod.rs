//! Orchestration: the only place that joins core (policy, scope, assessment, report) and
//! adapters (git, checks, github). Each command of the CLI is one function here, taking its
//! inputs and output writers as parameters and returning an exit code or a [`Report`].
//!
//! [`Report`]: crate::report::Report

mod check;
mod run;

use std::io::Write;
use std::path::Path;

pub use check::{CheckOptions, check};
pub use run::{RunOptions, run};

use crate::policy::Policy;
use crate::report::{Verdict, describe_decision};

/// Read and compile a policy file from disk.
fn load_policy_file(path: &Path) -> Result<Policy, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: cannot read the policy file: {e}", path.display()))?;
    let text = String::from_utf8(text).map_err(|_| format!("{}: the policy file is not UTF-8", path.display()))?;
    Policy::from_yaml(&text, &path.to_string_lossy()).map_err(|e| e.to_string())
}

/// `agent-gate validate`: print the compiled policy (exit 0) or the errors (exit 2).
pub fn validate(path: &Path, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match load_policy_file(path) {
        Ok(policy) => {
            let _ = write!(out, "{}", crate::policy::describe(&policy));
            let _ = writeln!(out, "{}: valid", path.display());
            0
        }
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            Verdict::ConfigError.exit_code()
        }
    }
}

/// `agent-gate explain`: for each path, in or out of scope and the rule that decided.
/// Exit 0 when every path is in scope, 11 (scope-violation) when one is not, 2 on a bad policy.
pub fn explain(path: &Path, scope: &[String], paths: &[String], out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let policy = match load_policy_file(path) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return Verdict::ConfigError.exit_code();
        }
    };
    let scope_input = crate::cli::split_list(scope);
    let engine = if scope_input.is_empty() {
        policy.scope.clone()
    } else {
        match policy.scope.narrowed(&scope_input) {
            Ok(s) => s,
            Err(e) => {
                let _ = writeln!(err, "error: --scope: {e}");
                return Verdict::ConfigError.exit_code();
            }
        }
    };
    let mut all_in = true;
    for p in paths {
        let d = engine.decide(p.trim_start_matches("./").as_bytes());
        all_in &= d.in_scope;
        let verdict = if d.in_scope { "allowed" } else { "denied " };
        let _ = writeln!(out, "{verdict} {p}  — {}", describe_decision(&d));
    }
    if all_in { 0 } else { Verdict::ScopeViolation.exit_code() }
}
