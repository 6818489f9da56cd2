//! The rounds of `agent-gate run` (DESIGN §1 steps 5–8, issue 9): poll the task to the one
//! shared deadline, stop it when the deadline passes or the gate is interrupted, fetch the
//! agent's head into a private ref and gate it; then, while `agent.repair-rounds` (or the
//! `repair-rounds` input) allows and the change failed on something the agent can fix, send
//! a follow-up on the same branch whose prompt carries the findings and gate again. Every
//! round gates into a fresh report; the run's report is the last round's, with every round
//! listed and the cost summed. Starting the first task (budget, admission, attach) is
//! `run.rs`'s; what a repair prompt says is `repair.rs`'s.

use std::io::Write;
use std::time::Duration;

use tokio::time::Instant;

use crate::budget::{BudgetLimits, check_budget};
use crate::flow::check::{GateContext, config_error, gate_change};
use crate::flow::run::{
    PrivateRefs, RunOptions, api_error, fetch_refs, finish_with, fmt_secs, pushed, session_error,
    state_policy_idle, state_policy_waiting, task_branch,
};
use crate::flow::start::{RoundAdmission, admit_round};
use crate::git::Git;
use crate::github::types::{Task, TaskState};
use crate::github::{
    Client, PollEvent, PollOptions, PollOutcome, StopOptions, StopReason, StopRecord, poll_task,
    since_before_now, stop, task_cost,
};
use crate::lease::LeaseStore;
use crate::policy::Policy;
use crate::prompt::{build_prompt, marker, prompt_hash};
use crate::repair::{
    RoundRecord, follow_up_request, is_repairable, latest_round, repair_prompt, round_cost,
    round_key, total_cost,
};
use crate::report::{Report, TimelineEntry, Verdict, ViolationKind};
use crate::scope::Scope;
use crate::shutdown::Shutdown;

/// A repair round starts only while more than this many initial poll intervals are left
/// before the deadline: a round that cannot finish would only be stopped again.
const MIN_POLLS_LEFT: u32 = 3;

/// Everything the rounds share.
pub(super) struct RoundContext<'a> {
    pub opts: &'a RunOptions,
    pub git: &'a Git,
    /// The agent-tasks client, bounded by the run's deadline.
    pub client: &'a Client,
    /// The client for statuses, labels and comments.
    pub status_client: &'a Client,
    pub policy: &'a Policy,
    pub scope: &'a Scope,
    /// The run's idempotency key (round 0's).
    pub key: &'a str,
    pub base_branch: &'a str,
    pub base_rev: &'a str,
    /// The private ref the agent's head is fetched into (again each round).
    pub head_local: String,
    pub shutdown: &'a Shutdown,
    pub started: Instant,
    pub timeout: Duration,
    pub deadline: Instant,
    /// Repair rounds allowed after the first task.
    pub max_rounds: u32,
    /// The admission lock, when the policy caps concurrent tasks: a repair round is
    /// admitted again before it starts.
    pub leases: Option<&'a tokio::sync::Mutex<LeaseStore>>,
}

/// How one round ended.
struct RoundEnd {
    report: Report,
    /// The task as last seen.
    last: Task,
}

/// The hash of the session prompt that carries `round`'s marker (a round this run did not
/// send, found when a re-run attaches).
fn session_prompt_hash(task: &Task, key: &str, round: u32) -> Option<String> {
    let m = marker(&round_key(key, round));
    task.sessions
        .iter()
        .flatten()
        .filter_map(|s| s.prompt.as_deref())
        .find(|p| p.contains(&m))
        .map(prompt_hash)
}

/// Gate `task` and, while repair rounds are allowed, its follow-ups. `report` holds what the
/// run knows before the first poll (policy, base, task, budget, admission); `timeline` the
/// states so far (a wait for capacity).
pub(super) async fn gate_rounds(
    ctx: &RoundContext<'_>,
    mut task: Task,
    attached: bool,
    template: Report,
    mut timeline: Vec<TimelineEntry>,
    progress: &mut (dyn Write + Send),
    refs: &mut PrivateRefs<'_>,
) -> Report {
    let key = ctx.key;
    // A re-run attaches to the round in flight.
    let mut round = if attached {
        latest_round(&task, key).unwrap_or(0)
    } else {
        0
    };
    let mut prompt_sha = if round == 0 {
        template
            .task
            .as_ref()
            .and_then(|t| t.prompt_sha256.clone())
            .unwrap_or_default()
    } else {
        session_prompt_hash(&task, key, round).unwrap_or_default()
    };
    if round > 0 {
        let _ = writeln!(
            progress,
            "agent-gate: task {} is in repair round {round}; gating that round",
            task.id
        );
    }
    let mut rounds: Vec<RoundRecord> = Vec::new();
    let mut seen: Vec<Task> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut budget = template.budget.clone();
    // A round this run sent: its follow-up session must show before its end counts.
    let mut sent_round: Option<u32> = None;
    loop {
        let mut round_report = template.clone();
        if let Some(info) = round_report.task.as_mut() {
            info.id.clone_from(&task.id);
            info.url.clone_from(&task.html_url);
            info.state = task.state.to_string();
            if !prompt_sha.is_empty() {
                info.prompt_sha256 = Some(prompt_sha.clone());
            }
        }
        let end = poll_and_gate(
            ctx,
            &task,
            round_report,
            round,
            sent_round,
            &mut timeline,
            progress,
            refs,
        )
        .await;
        seen.push(end.last.clone());
        rounds.push(RoundRecord::from_report(
            round,
            key,
            prompt_sha.clone(),
            end.last.id.clone(),
            &end.report,
            round_cost(&end.last, key, round),
        ));
        let report = end.report;

        // Another round?
        let instruction = match next_instruction(ctx, &report, round) {
            Ok(i) => i,
            Err(note) => {
                notes.extend(note);
                return finish_rounds(ctx, report, rounds, &seen, notes, budget);
            }
        };
        if let Some(note) = no_time_left(ctx, round) {
            notes.push(note);
            return finish_rounds(ctx, report, rounds, &seen, notes, budget);
        }
        let limits = BudgetLimits::from_agent(&ctx.policy.agent);
        if !limits.is_unlimited() {
            let now = since_before_now(ctx.client, Duration::ZERO);
            let checked = tokio::select! {
                biased;
                _ = ctx.shutdown.wait() => return finish_rounds(ctx, report, rounds, &seen, notes, budget),
                r = check_budget(ctx.client, limits, now, 1) => r,
            };
            match checked {
                Ok(status) => {
                    let over = status.would_exceed.is_some();
                    let message = status.message();
                    budget = Some(status);
                    if over {
                        notes.push(format!(
                            "no repair round {}: {message} The verdict is the last round's.",
                            round + 1
                        ));
                        let _ = writeln!(progress, "agent-gate: {message}");
                        return finish_rounds(ctx, report, rounds, &seen, notes, budget);
                    }
                }
                Err(e) => {
                    notes.push(format!(
                        "no repair round {}: {e}; the verdict is the last round's",
                        round + 1
                    ));
                    return finish_rounds(ctx, report, rounds, &seen, notes, budget);
                }
            }
        }

        // A repair round runs the task again: it waits for a slot like a new task.
        if let Some(report_end) = admit_round(ctx, round + 1, progress, &mut notes).await {
            let report = match report_end {
                RoundAdmission::Stop => report,
                RoundAdmission::Interrupted(note) => finish_with(report, Verdict::Cancelled, note),
            };
            return finish_rounds(ctx, report, rounds, &seen, notes, budget);
        }

        // Send the follow-up on the agent's branch.
        let Some(branch) = report
            .task
            .as_ref()
            .and_then(|t| t.branch.clone())
            .or_else(|| report.head.clone())
        else {
            notes.push(format!(
                "no repair round {}: the agent's branch is unknown",
                round + 1
            ));
            return finish_rounds(ctx, report, rounds, &seen, notes, budget);
        };
        let next = round + 1;
        let rkey = round_key(key, next);
        let prompt = build_prompt(&instruction, ctx.policy, ctx.scope, &rkey);
        let mut req = follow_up_request(prompt.clone(), &branch, ctx.base_branch);
        req.model = ctx.opts.model.clone().filter(|m| !m.trim().is_empty());
        req.custom_agent = ctx
            .opts
            .custom_agent
            .clone()
            .filter(|m| !m.trim().is_empty());
        let since = since_before_now(ctx.client, Duration::from_mins(5));
        let round_marker = marker(&rkey);
        let created = tokio::select! {
            biased;
            signal = ctx.shutdown.wait() => {
                let report = finish_with(
                    report,
                    Verdict::Cancelled,
                    format!(
                        "the gate was interrupted by {signal} while starting repair round {next}; if it was created, a re-run with the same task key ({key}) attaches to it"
                    ),
                );
                return finish_rounds(ctx, report, rounds, &seen, notes, budget);
            }
            r = ctx.client.create_task_idempotent(&req, &round_marker, since) => r,
        };
        match created {
            Ok(c) => {
                let _ = writeln!(
                    progress,
                    "agent-gate: repair round {next} of {}: the change was {}; asked task {} to fix it on `{branch}`",
                    ctx.max_rounds, report.verdict, c.task.id
                );
                task = c.task;
            }
            Err(e) => {
                notes.push(format!(
                    "repair round {next} could not be started: {e}; the verdict is the last round's"
                ));
                return finish_rounds(ctx, report, rounds, &seen, notes, budget);
            }
        }
        round = next;
        sent_round = Some(next);
        prompt_sha = prompt_hash(&prompt);
    }
}

/// The next round's instruction, or why there is none (`None` = nothing worth saying).
fn next_instruction(
    ctx: &RoundContext<'_>,
    report: &Report,
    round: u32,
) -> Result<String, Option<String>> {
    if ctx.shutdown.fired().is_some() {
        return Err(None);
    }
    if let Some(p) = repair_prompt(&ctx.opts.instruction, report, round, ctx.max_rounds) {
        return Ok(p);
    }
    if ctx.max_rounds == 0 {
        return Err(None);
    }
    let failed = matches!(
        report.verdict,
        Verdict::ChecksFailed | Verdict::ScopeViolation
    );
    if failed
        && report
            .violations
            .iter()
            .any(|v| v.kind == ViolationKind::Protected)
    {
        return Err(Some(
            "a protected path was changed: the change is not sent back for repair".to_string(),
        ));
    }
    if is_repairable(report) && round >= ctx.max_rounds {
        return Err(Some(format!(
            "repair rounds exhausted ({round} of {}); the verdict is the last round's",
            ctx.max_rounds
        )));
    }
    if failed {
        return Err(Some(
            "a required check could not run or was cancelled: the change is not sent back for repair"
                .to_string(),
        ));
    }
    Err(None)
}

/// Why there is no time for another round, if there is none.
fn no_time_left(ctx: &RoundContext<'_>, round: u32) -> Option<String> {
    let left = ctx.deadline.saturating_duration_since(Instant::now());
    let needed = ctx.policy.agent.poll_initial * MIN_POLLS_LEFT;
    (left <= needed).then(|| {
        format!(
            "no repair round {}: only {} left before the gate's deadline ({}); the verdict is the last round's",
            round + 1,
            fmt_secs(left),
            fmt_secs(ctx.timeout)
        )
    })
}

/// The run's report: the last round's, with every round, the cost over all rounds, the
/// budget last counted and the notes about rounds.
fn finish_rounds(
    ctx: &RoundContext<'_>,
    mut report: Report,
    rounds: Vec<RoundRecord>,
    seen: &[Task],
    notes: Vec<String>,
    budget: Option<crate::budget::BudgetStatus>,
) -> Report {
    if ctx.max_rounds > 0 || rounds.len() > 1 || rounds.first().is_some_and(|r| r.round > 0) {
        report.rounds = rounds;
    }
    let cost = total_cost(seen);
    if let Some(info) = report.task.as_mut() {
        info.ai_credits = cost.ai_credits();
        info.premium_requests = cost.premium_requests;
    }
    report.budget = budget;
    report.notes.extend(notes);
    report
}

/// Poll one round's task to its end, then collect and gate the change. `sent_round`: the
/// round this run sent as a follow-up, whose session must show before a final state counts
/// (right after the follow-up, the task may still report the previous session's end).
#[allow(
    clippy::too_many_lines,
    clippy::too_many_arguments,
    reason = "one round of DESIGN §1 steps 5–8, read top to bottom"
)]
async fn poll_and_gate(
    ctx: &RoundContext<'_>,
    task: &Task,
    mut report: Report,
    round: u32,
    sent_round: Option<u32>,
    timeline: &mut Vec<TimelineEntry>,
    progress: &mut (dyn Write + Send),
    refs: &mut PrivateRefs<'_>,
) -> RoundEnd {
    let policy = ctx.policy;
    let poll_opts = PollOptions {
        initial: policy.agent.poll_initial,
        max: policy.agent.poll_max,
        deadline: ctx.deadline,
        on_idle: state_policy_idle(policy.agent.on_idle),
        on_waiting_for_user: state_policy_waiting(policy.agent.on_waiting_for_user),
        jitter: 0.1,
    };
    let label = if round == 0 {
        String::new()
    } else {
        format!("repair round {round}: ")
    };
    let started = ctx.started;
    let timeout = ctx.timeout;
    let heartbeat = ctx.opts.heartbeat;
    let mut last_line = Instant::now();
    let outcome = loop {
        let outcome = {
            let timeline = &mut *timeline;
            let progress = &mut *progress;
            let stop_signal = ctx.shutdown.clone();
            let label = &label;
            let last_line = &mut last_line;
            let audit = &ctx.opts.audit;
            let task_id = task.id.as_str();
            poll_task(
                ctx.client,
                &task.id,
                &poll_opts,
                async move {
                    stop_signal.wait().await;
                },
                move |ev| {
                    let elapsed = started.elapsed();
                    match ev {
                        PollEvent::StateChanged { to, at, .. } => {
                            let entry = TimelineEntry {
                                state: to.to_string(),
                                at: at.to_string(),
                                elapsed_s: elapsed.as_secs_f64(),
                            };
                            audit.state(task_id, &entry);
                            timeline.push(entry);
                            let _ = writeln!(
                                progress,
                                "agent-gate: {label}task {to} (after {}, deadline in {})",
                                fmt_secs(elapsed),
                                fmt_secs(timeout.saturating_sub(elapsed))
                            );
                            *last_line = Instant::now();
                        }
                        PollEvent::Heartbeat { state, .. } => {
                            if last_line.elapsed() >= heartbeat {
                                let _ = writeln!(
                                    progress,
                                    "agent-gate: {label}still {state} (after {}, deadline in {})",
                                    fmt_secs(elapsed),
                                    fmt_secs(timeout.saturating_sub(elapsed))
                                );
                                *last_line = Instant::now();
                            }
                        }
                        PollEvent::Retrying { error, wait } => {
                            let _ = writeln!(
                                progress,
                                "agent-gate: API error, retrying in {}: {error}",
                                fmt_secs(wait)
                            );
                        }
                    }
                },
            )
            .await
        };
        // A follow-up's end counts only once its session shows.
        let ended = match &outcome {
            PollOutcome::Finished { task } | PollOutcome::Accepted { task } => Some(task),
            _ => None,
        };
        let stale = sent_round.zip(ended).is_some_and(|(r, t)| {
            t.sessions.is_some() && latest_round(t, ctx.key).is_none_or(|l| l < r)
        });
        if stale && Instant::now() + poll_opts.initial < ctx.deadline {
            tokio::select! {
                biased;
                _ = ctx.shutdown.wait() => {}
                () = tokio::time::sleep(poll_opts.initial) => {}
            }
            continue;
        }
        break outcome;
    };
    let last = outcome.last().cloned().unwrap_or_else(|| task.clone());
    if let Some(info) = report.task.as_mut() {
        info.timeline.clone_from(timeline);
        info.state = last.state.to_string();
        let cost = task_cost(&last);
        info.ai_credits = cost.ai_credits();
        info.premium_requests = cost.premium_requests;
        info.branch = task_branch(&last);
    }
    let end = |report: Report| RoundEnd {
        report,
        last: last.clone(),
    };

    // What the task's end means.
    let stop_opts = StopOptions {
        status_context: policy.report.status_context.clone(),
        comment: policy.report.comment,
        ..StopOptions::default()
    };
    let done = match outcome {
        PollOutcome::Finished { task } if task.state == TaskState::Completed => task,
        PollOutcome::Accepted { task } => {
            report.notes.push(format!(
                "the task is `{}`; policy accepts it and gates what the branch holds",
                task.state
            ));
            task
        }
        PollOutcome::Finished { task } => {
            let why = session_error(&task)
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            return end(finish_with(
                report,
                Verdict::AgentFailed,
                format!("the task ended `{}` on GitHub's side{why}", task.state),
            ));
        }
        PollOutcome::Rejected { task } => {
            return end(finish_with(
                report,
                Verdict::AgentFailed,
                format!(
                    "the task is `{}` and the policy says fail (agent.on-idle / agent.on-waiting-for-user)",
                    task.state
                ),
            ));
        }
        PollOutcome::DeadlineReached { last } => {
            let task = last.unwrap_or_else(|| task.clone());
            let record =
                bounded_stop(ctx.status_client, &task, StopReason::TimedOut, &stop_opts).await;
            record_stop(&mut report, &record);
            return end(finish_with(
                report,
                Verdict::TimedOut,
                format!(
                    "the gate's deadline ({}) passed while the task was `{}`{}",
                    fmt_secs(ctx.timeout),
                    task.state,
                    if round > 0 {
                        format!(" in repair round {round}")
                    } else {
                        String::new()
                    }
                ),
            ));
        }
        PollOutcome::Interrupted { last } => {
            let task = last.unwrap_or_else(|| task.clone());
            let _ = writeln!(
                progress,
                "agent-gate: interrupted; recording the stop of task {}",
                task.id
            );
            let record =
                bounded_stop(ctx.status_client, &task, StopReason::Cancelled, &stop_opts).await;
            record_stop(&mut report, &record);
            let signal = ctx.shutdown.fired().unwrap_or("a signal");
            return end(finish_with(
                report,
                Verdict::Cancelled,
                format!(
                    "the gate was interrupted by {signal} while the task was `{}`",
                    task.state
                ),
            ));
        }
        PollOutcome::ApiError { error, .. } => {
            return end(api_error(report, "polling the task failed", &error));
        }
    };

    // Collect the agent's change.
    let Some(branch) = task_branch(&done) else {
        return end(no_change(
            report,
            policy,
            "the task finished without a branch or pull request",
        ));
    };
    match ctx.client.find_pull_for_branch(&branch).await {
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
    report.head = Some(branch.clone());
    // Never gate an earlier round's head: the ref is fetched afresh.
    let head_local = ctx.head_local.as_str();
    let _ = ctx.git.delete_ref(head_local);
    let head_rev = match fetch_refs(
        ctx.git,
        ctx.opts,
        &[&format!("+refs/heads/{branch}:{head_local}")],
    ) {
        Ok(()) => {
            if !refs.names.iter().any(|n| n == head_local) {
                refs.names.push(head_local.to_string());
            }
            match ctx.git.rev_parse(head_local) {
                Ok(r) => r,
                Err(e) => return end(config_error(report, e.to_string())),
            }
        }
        // The session names its branch from the start; without a branch or pull artifact
        // the agent never pushed it.
        Err(_) if !pushed(&done) && report.task.as_ref().is_none_or(|t| t.pr_number.is_none()) => {
            return end(no_change(
                report,
                policy,
                &format!("the task finished without pushing its branch `{branch}`"),
            ));
        }
        Err(e) => {
            report.errors.push(format!(
                "cannot fetch the agent's branch `{branch}` from `{}`: {e}",
                ctx.opts.remote
            ));
            report.set_verdict(Verdict::ApiError);
            report.finish();
            return end(report);
        }
    };
    let changes = match ctx.git.changes(ctx.base_rev, &head_rev) {
        Ok(c) => c,
        Err(e) => return end(config_error(report, e.to_string())),
    };
    if changes.changes.is_empty() {
        return end(no_change(
            report,
            policy,
            &format!(
                "the agent's branch `{branch}` holds no change against `{}`",
                ctx.base_branch
            ),
        ));
    }
    let gate = GateContext {
        git: ctx.git,
        policy,
        scope: ctx.scope,
        jobs: ctx.opts.jobs,
        gate_env: ctx.opts.gate_env.clone(),
        workspace: ctx.opts.repo.clone(),
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
    gate_change(&gate, &changes, &mut report, ctx.shutdown).await;
    end(report)
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

/// How long marking a stopped task's pull request may take: the runner kills the gate
/// 10 s after its first signal (SIGINT, then SIGTERM at 7.5 s).
const STOP_BUDGET: Duration = Duration::from_secs(5);

/// [`stop`], given at most [`STOP_BUDGET`]; past it the record says what was not done.
async fn bounded_stop(
    client: &Client,
    task: &Task,
    reason: StopReason,
    opts: &StopOptions,
) -> StopRecord {
    let deadline = Instant::now() + STOP_BUDGET;
    let client = client.with_deadline(deadline);
    match tokio::time::timeout_at(deadline, stop(&client, task, reason, opts)).await {
        Ok(record) => record,
        Err(_) => StopRecord {
            task_id: task.id.clone(),
            reason,
            last_state: task.state.clone(),
            session_url: task.html_url.clone(),
            cancelled_on_github: false,
            pull_request: None,
            actions: Vec::new(),
            errors: vec![format!(
                "marking the pull request did not finish within {}",
                fmt_secs(STOP_BUDGET)
            )],
            at: jiff::Timestamp::now().to_string(),
        },
    }
}

fn record_stop(report: &mut Report, record: &StopRecord) {
    if let Some(info) = report.task.as_mut() {
        info.state = record.last_state.to_string();
        let mut actions: Vec<String> = record
            .actions
            .iter()
            .map(|a| serde_json::to_string(a).unwrap_or_default())
            .collect();
        if let Some(url) = &record.session_url {
            actions.push(format!(
                "GitHub has no API to cancel a task: stop the session from its page {url}"
            ));
        }
        actions.extend(record.errors.iter().map(|e| format!("error: {e}")));
        info.stop_actions = actions;
    }
}
