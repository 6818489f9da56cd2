//! The agent's head in one round of `agent-gate run` (DESIGN §1 steps 6–7): look up the pull
//! request of the branch the finished task names, fetch the branch afresh into the run's
//! private head ref, compute the change against the base and gate it with the steps `check`
//! uses; a task with no branch, no push or no change ends the round by
//! `agent.allow-no-change`. It does not poll or stop the task (`session.rs`) or decide on
//! another round (`round.rs`).

use std::io::Write;

use crate::flow::check::{GateContext, config_error, gate_change};
use crate::flow::ci::CiContext;
use crate::flow::ending::finish_with;
use crate::flow::fetch::{PrivateRefs, fetch_refs};
use crate::flow::round::RoundContext;
use crate::flow::session::task_branch;
use crate::github::types::{ArtifactRef, Task};
use crate::policy::Policy;
use crate::report::{Report, Verdict};

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
pub(super) async fn gate_head(
    ctx: &RoundContext<'_>,
    done: &Task,
    mut report: Report,
    label: &str,
    progress: &mut (dyn Write + Send),
    refs: &mut PrivateRefs<'_>,
) -> Report {
    let policy = ctx.policy;
    let Some(branch) = task_branch(done) else {
        return no_change(
            report,
            policy,
            "the task finished without a branch or pull request",
        );
    };
    record_pull(ctx, &branch, &mut report).await;
    report.head = Some(branch.clone());
    let (head_rev, mut report) = match fetch_head(ctx, done, &branch, report, refs) {
        Ok(fetched) => fetched,
        Err(ended) => return *ended,
    };
    let changes = match ctx.git.changes(ctx.base_rev, &head_rev) {
        Ok(c) => c,
        Err(e) => return config_error(report, e.to_string()),
    };
    if changes.changes.is_empty() {
        return no_change(
            report,
            policy,
            &format!(
                "the agent's branch `{branch}` holds no change against `{}`",
                ctx.base_branch
            ),
        );
    }
    let pull = report
        .task
        .as_ref()
        .and_then(|t| Some((t.pr_number?, t.pr_url.clone().unwrap_or_default())));
    // Reads of the repository's checks stop at the run's deadline, retries included.
    let ci_client = ctx.status_client.with_deadline(ctx.deadline);
    let gate = GateContext {
        git: ctx.git,
        policy,
        scope: ctx.scope,
        jobs: ctx.opts.jobs,
        gate_env: ctx.opts.gate_env.clone(),
        workspace: ctx.opts.repo.clone(),
        ci: Some(CiContext {
            client: &ci_client,
            base_branch: ctx.base_branch,
            own_context: &policy.report.status_context,
            pull,
            poll_initial: policy.agent.poll_initial,
            poll_max: policy.agent.poll_max,
            deadline: ctx.deadline,
        }),
    };
    let _ = writeln!(
        progress,
        "agent-gate: {label}gating {} of `{branch}`{}",
        match changes.changes.len() {
            1 => "1 changed file".to_string(),
            n => format!("{n} changed files"),
        },
        match policy.checks.len() {
            0 => String::new(),
            1 => " (1 check)".to_string(),
            n => format!(" ({n} checks)"),
        }
    );
    Box::pin(gate_change(
        &gate,
        &changes,
        &mut report,
        ctx.shutdown,
        progress,
    ))
    .await;
    report
}

/// The pull request of `branch`, when there is one, into the report's task.
async fn record_pull(ctx: &RoundContext<'_>, branch: &str, report: &mut Report) {
    match ctx.client.find_pull_for_branch(branch).await {
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
fn fetch_head(
    ctx: &RoundContext<'_>,
    done: &Task,
    branch: &str,
    mut report: Report,
    refs: &mut PrivateRefs<'_>,
) -> Result<(String, Report), Box<Report>> {
    // Never gate an earlier round's head: the ref is fetched afresh.
    let head_local = ctx.head_local.as_str();
    let _ = ctx.git.delete_ref(head_local);
    match fetch_refs(
        ctx.git,
        ctx.opts,
        &[&format!("+refs/heads/{branch}:{head_local}")],
    ) {
        Ok(()) => {
            if !refs.names.iter().any(|n| n == head_local) {
                refs.names.push(head_local.to_string());
            }
            match ctx.git.rev_parse(head_local) {
                Ok(r) => Ok((r, report)),
                Err(e) => Err(Box::new(config_error(report, e.to_string()))),
            }
        }
        // The session names its branch from the start; without a branch or pull artifact
        // the agent never pushed it.
        Err(_) if !pushed(done) && report.task.as_ref().is_none_or(|t| t.pr_number.is_none()) => {
            Err(Box::new(no_change(
                report,
                ctx.policy,
                &format!("the task finished without pushing its branch `{branch}`"),
            )))
        }
        Err(e) => {
            report.errors.push(format!(
                "cannot fetch the agent's branch `{branch}` from `{}`: {e}",
                ctx.opts.remote
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
