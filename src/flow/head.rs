//! The agent's head in one round of `agent-gate run` (DESIGN §1 steps 6–7): look up the pull
//! request of the branch the finished task names, fetch the branch afresh into the run's
//! private head ref, compute the change against the base and gate it with the steps `check`
//! uses; a task with no branch, no push or no change ends the round by
//! `agent.allow-no-change`.

use std::io::Write;

use crate::adapters::github::types::{ArtifactRef, Task};
use crate::core::policy::Policy;
use crate::core::report::{Report, Verdict};
use crate::flow::check::{GateContext, gate_change};
use crate::flow::ci::CiContext;
use crate::flow::context::Run;
use crate::flow::ending::{config_error, finish_with};
use crate::flow::fetch::{PrivateRefs, fetch_refs};
use crate::flow::task_api::TaskApi;

/// Whether the task reports a pushed branch or a pull request.
fn pushed(task: &Task) -> bool {
    task.artifacts.iter().any(|a| {
        matches!(
            a.decode(),
            ArtifactRef::Branch { .. } | ArtifactRef::Pull { .. }
        )
    })
}

/// Collect the change of the finished task `done` and gate it; the round's finished report.
/// `label` prefixes the progress line (`repair round N: `, or nothing for the first task).
pub(super) async fn gate_head<T: TaskApi>(
    run: &Run<T>,
    done: &Task,
    mut report: Report,
    label: &str,
    progress: &mut (dyn Write + Send),
    refs: &mut PrivateRefs,
) -> Report {
    let policy = &run.policy;
    let Some(branch) = done.branch() else {
        return no_change(
            report,
            policy,
            "the task finished without a branch or pull request",
        );
    };
    record_pull(run, &branch, &mut report).await;
    report.head = Some(branch.clone());
    let (head_rev, mut report) = match fetch_head(run, done, &branch, report, refs) {
        Ok(fetched) => fetched,
        Err(ended) => return *ended,
    };
    let changes = match run.git.changes(&run.base_rev, &head_rev) {
        Ok(c) => c,
        Err(e) => return config_error(report, e.to_string()),
    };
    if changes.changes.is_empty() {
        return no_change(
            report,
            policy,
            &format!(
                "the agent's branch `{branch}` holds no change against `{}`",
                &run.base_branch
            ),
        );
    }
    let pull = report
        .task
        .as_ref()
        .and_then(|t| Some((t.pr_number?, t.pr_url.clone().unwrap_or_default())));
    // Reads of the repository's checks stop at the run's deadline, retries included.
    let ci_client = run.status_client.with_deadline(run.clock.deadline);
    let gate = GateContext {
        git: &run.git,
        policy,
        scope: &run.scope,
        jobs: run.opts.jobs,
        gate_env: run.opts.gate_env.clone(),
        workspace: run.opts.repo.clone(),
        ci: Some(CiContext {
            client: &ci_client,
            base_branch: &run.base_branch,
            own_context: &policy.report.status_context,
            pull,
            poll_initial: policy.agent.poll_initial,
            poll_max: policy.agent.poll_max,
            deadline: run.clock.deadline,
        }),
    };
    let _ = writeln!(
        progress,
        "agent-gate: {label}gating {} of `{branch}`{}",
        count(changes.changes.len(), "changed file"),
        match policy.checks.len() {
            0 => String::new(),
            n => format!(" ({})", count(n, "check")),
        }
    );
    Box::pin(gate_change(
        &gate,
        &changes,
        &mut report,
        &run.shutdown,
        progress,
    ))
    .await;
    report
}

/// The pull request of `branch`, when there is one, into the report's task.
async fn record_pull<T: TaskApi>(run: &Run<T>, branch: &str, report: &mut Report) {
    match run.client.find_pull_for_branch(branch).await {
        Ok(Some(pr)) => {
            if let Some(info) = report.task.as_mut() {
                info.pr_number = Some(pr.number);
                info.pr_url = Some(pr.html_url.clone());
            }
        }
        Ok(None) => {}
        Err(e) => report.notes.push(format!(
            "could not look up the pull request of `{branch}`: {e}"
        )),
    }
}

/// Fetch `branch` into the run's private head ref and resolve it: `Ok` with the commit (and
/// the report), `Err` with the finished report when the branch was never pushed or cannot
/// be fetched.
fn fetch_head<T: TaskApi>(
    run: &Run<T>,
    done: &Task,
    branch: &str,
    mut report: Report,
    refs: &mut PrivateRefs,
) -> Result<(String, Report), Box<Report>> {
    // Never gate an earlier round's head: the ref is fetched afresh.
    let head_local = run.head_local.as_str();
    let _ = run.git.delete_ref(head_local);
    match fetch_refs(
        &run.git,
        &run.opts,
        &[&format!("+refs/heads/{branch}:{head_local}")],
    ) {
        Ok(()) => {
            refs.add(head_local);
            match run.git.rev_parse(head_local) {
                Ok(r) => Ok((r, report)),
                Err(e) => Err(Box::new(config_error(report, e.to_string()))),
            }
        }
        // The session names its branch from the start; without a branch or pull artifact
        // the agent never pushed it.
        Err(_) if !pushed(done) && report.task.as_ref().is_none_or(|t| t.pr_number.is_none()) => {
            Err(Box::new(no_change(
                report,
                &run.policy,
                &format!("the task finished without pushing its branch `{branch}`"),
            )))
        }
        Err(e) => {
            report.errors.push(format!(
                "cannot fetch the agent's branch `{branch}` from `{}`: {e}",
                run.opts.remote
            ));
            report.set_verdict(Verdict::ApiError);
            report.finish();
            Err(Box::new(report))
        }
    }
}

fn no_change(report: Report, policy: &Policy, why: &str) -> Report {
    if policy.agent.allow_no_change {
        finish_with(
            report,
            Verdict::Passed,
            format!("{why} (agent.allow-no-change: true)"),
        )
    } else {
        finish_with(
            report,
            Verdict::AgentFailed,
            format!("{why}; a change was required (agent.allow-no-change: false)"),
        )
    }
}

/// `1 check`, `3 checks`.
fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
