//! `agent-gate check`: DESIGN §1 steps 5–8 on an existing change — read the policy at the
//! base ref, compute base...head with git, assess the scope, run the checks in an isolated
//! copy of the head tree, and produce one [`Report`].

use std::path::PathBuf;

use crate::assessment::assess;
use crate::git::Git;
use crate::policy::{OnViolation, Policy};
use crate::report::{Report, Verdict};

/// Inputs of [`check`].
#[derive(Debug, Clone)]
pub struct CheckOptions {
    pub repo: PathBuf,
    pub base: String,
    pub head: String,
    pub policy_path: String,
    pub scope: Vec<String>,
    pub jobs: Option<usize>,
}

/// Gate base...head of `opts.repo`. Never panics; every failure is a verdict.
pub async fn check(opts: CheckOptions) -> Report {
    let git = Git::new(&opts.repo);
    let mut report = Report::new(Verdict::Passed);
    report.policy = Some(opts.policy_path.clone());
    report.base = Some(opts.base.clone());
    report.head = Some(opts.head.clone());

    let policy = match load_policy_at(&git, &opts.base, &opts.policy_path) {
        Ok(p) => p,
        Err(e) => return config_error(report, e),
    };
    let scope = if opts.scope.is_empty() {
        policy.scope.clone()
    } else {
        match policy.scope.narrowed(&opts.scope) {
            Ok(s) => s,
            Err(e) => return config_error(report, format!("--scope: {e}")),
        }
    };
    let changes = match git.changes(&opts.base, &opts.head) {
        Ok(c) => c,
        Err(e) => return config_error(report, e.to_string()),
    };
    report.merge_base = Some(changes.merge_base.clone());
    let assessment = assess(&scope, &policy.limits, &changes.changes);
    report.files = assessment.files;
    report.violations = assessment.violations;

    if !report.violations.is_empty() && policy.checks_on_violation == OnViolation::Skip {
        report.checks_skipped = Some("the change violates the scope; its code is not run (checks-on-violation: skip)".to_string());
        for c in &policy.checks {
            report.checks.push(crate::report::CheckEntry {
                name: c.name.clone(),
                required: c.required,
                status: crate::report::CheckStatus::Skipped,
                detail: Some("scope violation".to_string()),
                duration_ms: 0,
                output_tail: String::new(),
                truncated_bytes: 0,
            });
        }
    } else if !policy.checks.is_empty() {
        run_policy_checks(&git, &policy, &changes, &opts, &mut report).await;
    }
    report.finish();
    report
}

fn config_error(mut report: Report, message: impl Into<String>) -> Report {
    report.errors.push(message.into());
    report.set_verdict(Verdict::ConfigError);
    report.finish();
    report
}

/// Read the policy blob at `base` (never the working tree) and compile it.
fn load_policy_at(git: &Git, base: &str, path: &str) -> Result<Policy, String> {
    let blob = git.show_file(base, path).map_err(|e| e.to_string())?;
    let Some(blob) = blob else {
        return Err(format!("no policy file `{path}` at the base ref `{base}`: commit one (see `agent-gate validate`) or pass --policy"));
    };
    let text = String::from_utf8(blob).map_err(|_| format!("{path} (at {base}): the policy file is not UTF-8"))?;
    Policy::from_yaml(&text, path).map_err(|e| format!("{e} (read at the base ref `{base}`)"))
}

async fn run_policy_checks(git: &Git, policy: &Policy, changes: &crate::git::ChangeSet, opts: &CheckOptions, report: &mut Report) {
    let _ = (git, policy, changes, opts, report);
    todo!("wire the checks runner")
}
