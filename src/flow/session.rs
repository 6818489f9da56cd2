//! One round's session of `agent-gate run` (DESIGN §1 steps 5–7): poll the task to the one
//! shared deadline, with a progress line per state change and heartbeats; on the deadline or
//! an interrupt, stop it (bounded, recorded in the report); say what the task's end means for
//! the verdict; and, when it finished with something to gate, have its head gated. Whether
//! another round follows is not its business.

use std::io::Write;
use std::time::Duration;

use tokio::time::Instant;

use crate::adapters::github::types::{Task, TaskState};
use crate::adapters::github::{
    Client, PollEvent, PollOptions, PollOutcome, StatePolicy, StopOptions, StopReason, StopRecord,
    stop, task_cost,
};
use crate::core::policy::{OnIdle, OnWaitingForUser};
use crate::core::report::{Report, TimelineEntry, Verdict};
use crate::flow::context::Run;
use crate::flow::ending::{api_error, finish_with, fmt_secs};
use crate::flow::head::gate_head;
use crate::flow::repair::latest_round;
use crate::flow::task_api::TaskApi;

use super::fetch::PrivateRefs;

/// How one round ended.
pub(super) struct RoundEnd {
    pub(super) report: Report,
    /// The task as last seen.
    pub(super) last: Task,
}

fn state_policy_idle(p: OnIdle) -> StatePolicy {
    match p {
        OnIdle::Accept => StatePolicy::Accept,
        OnIdle::Wait => StatePolicy::Wait,
        OnIdle::Fail => StatePolicy::Fail,
    }
}

fn state_policy_waiting(p: OnWaitingForUser) -> StatePolicy {
    match p {
        OnWaitingForUser::Fail => StatePolicy::Fail,
        OnWaitingForUser::Wait => StatePolicy::Wait,
    }
}

/// Poll one round's task to its end, then collect and gate the change. `sent_round`: the
/// round this run sent as a follow-up, whose session must show before a final state counts
/// (right after the follow-up, the task may still report the previous session's end).
#[allow(
    clippy::too_many_arguments,
    reason = "one round of DESIGN §1 steps 5–8, read top to bottom"
)]
pub(super) async fn poll_and_gate<T: TaskApi>(
    run: &Run<T>,
    task: &Task,
    mut report: Report,
    round: u32,
    sent_round: Option<u32>,
    timeline: &mut Vec<TimelineEntry>,
    progress: &mut (dyn Write + Send),
    refs: &mut PrivateRefs,
) -> RoundEnd {
    let label = if round == 0 {
        String::new()
    } else {
        format!("repair round {round}: ")
    };
    let outcome = poll_to_end(run, task, sent_round, &label, timeline, progress).await;
    // The task no longer runs: give its slot back now, not when the checks are done, so a
    // run waiting for one (watching the leases) starts within a second.
    {
        let mut store = run.leases.lock().await;
        if store.held().is_some()
            && let Err(e) = store.release()
        {
            tracing::warn!(error = %e, "the admission lease could not be given back");
        }
    }
    let last = outcome.last().cloned().unwrap_or_else(|| task.clone());
    record_last_seen(&mut report, timeline, &last);
    let end = |report: Report| RoundEnd {
        report,
        last: last.clone(),
    };
    match judge_end(run, task, outcome, report, round, progress).await {
        // Collect the agent's change.
        Ok((done, report)) => end(gate_head(run, &done, report, &label, progress, refs).await),
        Err(report) => end(*report),
    }
}

/// The poll of one round: intervals, deadline and idle policies from the policy.
fn poll_options<T: TaskApi>(run: &Run<T>) -> PollOptions {
    let policy = &run.policy;
    PollOptions {
        initial: policy.agent.poll_initial,
        max: policy.agent.poll_max,
        watch: policy.agent.poll_watch,
        deadline: run.clock.deadline,
        on_idle: state_policy_idle(policy.agent.on_idle),
        on_waiting_for_user: state_policy_waiting(policy.agent.on_waiting_for_user),
        jitter: 0.1,
    }
}

/// Poll `task` until it ends, the deadline passes or the gate is interrupted; every state
/// change goes to the timeline, the audit record and `progress`. A follow-up's end counts
/// only once its session shows (see [`poll_and_gate`]).
async fn poll_to_end<T: TaskApi>(
    run: &Run<T>,
    task: &Task,
    sent_round: Option<u32>,
    label: &str,
    timeline: &mut Vec<TimelineEntry>,
    progress: &mut (dyn Write + Send),
) -> PollOutcome {
    let poll_opts = poll_options(run);
    let mut lines = PollLines {
        run,
        task_id: &task.id,
        label,
        timeline,
        progress,
        last_line: Instant::now(),
    };
    loop {
        let stop_signal = run.shutdown.clone();
        let outcome = run
            .tasks
            .poll_task(
                &task.id,
                &poll_opts,
                async move {
                    stop_signal.wait().await;
                },
                |ev| lines.event(ev),
            )
            .await;
        // A follow-up's end counts only once its session shows.
        let ended = match &outcome {
            PollOutcome::Finished { task } | PollOutcome::Accepted { task } => Some(task),
            _ => None,
        };
        let stale = sent_round.zip(ended).is_some_and(|(r, t)| {
            t.sessions.is_some() && latest_round(t, &run.key).is_none_or(|l| l < r)
        });
        if stale && Instant::now() + poll_opts.initial < run.clock.deadline {
            tokio::select! {
                biased;
                _ = run.shutdown.wait() => {}
                () = tokio::time::sleep(poll_opts.initial) => {}
            }
            continue;
        }
        break outcome;
    }
}

/// What a round's poll says as it goes: each state change to the timeline, the audit
/// record and a progress line; a heartbeat line at most every `heartbeat`; each retry.
struct PollLines<'a, T> {
    run: &'a Run<T>,
    task_id: &'a str,
    /// `repair round N: `, or nothing for the first task.
    label: &'a str,
    timeline: &'a mut Vec<TimelineEntry>,
    progress: &'a mut (dyn Write + Send),
    last_line: Instant,
}

impl<T: TaskApi> PollLines<'_, T> {
    fn event(&mut self, ev: PollEvent) {
        let label = self.label;
        match ev {
            PollEvent::StateChanged {
                to, at, updated_at, ..
            } => {
                let entry = TimelineEntry {
                    state: to.to_string(),
                    at: at.to_string(),
                    elapsed_s: self.run.clock.started.elapsed().as_secs_f64(),
                    task_at: updated_at,
                };
                self.run.opts.audit.state(self.task_id, &entry);
                self.timeline.push(entry);
                let when = self.run.clock.since_start();
                let _ = writeln!(self.progress, "agent-gate: {label}task {to} ({when})");
                self.last_line = Instant::now();
            }
            PollEvent::Heartbeat { state, .. } => {
                if self.last_line.elapsed() >= self.run.opts.heartbeat {
                    let when = self.run.clock.since_start();
                    let _ = writeln!(self.progress, "agent-gate: {label}still {state} ({when})");
                    self.last_line = Instant::now();
                }
            }
            PollEvent::Retrying {
                error,
                wait,
                number,
                of,
            } => {
                let _ = writeln!(
                    self.progress,
                    "agent-gate: API error, retry {number} of {of} in {}: {error}",
                    fmt_secs(wait)
                );
            }
        }
    }
}

/// The report's task as last seen: timeline, state, cost and branch.
fn record_last_seen(report: &mut Report, timeline: &[TimelineEntry], last: &Task) {
    if let Some(info) = report.task.as_mut() {
        info.timeline = timeline.to_vec();
        info.state = last.state.to_string();
        let cost = task_cost(last);
        info.ai_credits = cost.ai_credits();
        info.premium_requests = cost.premium_requests;
        info.branch = last.branch();
        info.created_at = Some(last.created_at.clone());
        info.finished_at = last
            .state
            .is_final()
            .then(|| {
                last.sessions
                    .iter()
                    .flatten()
                    .filter_map(|s| s.completed_at.clone())
                    .max()
                    .or_else(|| last.updated_at.clone())
            })
            .flatten();
    }
}

/// What the task's end means: `Ok` with the task whose branch is to be gated (and the report
/// so far), or `Err` with the finished report of a round that ends here (the task failed or
/// was rejected; the deadline or an interrupt stopped it; the API failed).
async fn judge_end<T: TaskApi>(
    run: &Run<T>,
    task: &Task,
    outcome: PollOutcome,
    mut report: Report,
    round: u32,
    progress: &mut (dyn Write + Send),
) -> Result<(Task, Report), Box<Report>> {
    match outcome {
        PollOutcome::Finished { task } if task.state == TaskState::Completed => Ok((task, report)),
        PollOutcome::Accepted { task } => {
            report.notes.push(format!(
                "the task is `{}`; policy accepts it and gates what the branch holds",
                task.state
            ));
            Ok((task, report))
        }
        PollOutcome::Finished { task } => {
            let why = task
                .session_error()
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            Err(Box::new(finish_with(
                report,
                Verdict::AgentFailed,
                format!("the task ended `{}` on GitHub's side{why}", task.state),
            )))
        }
        PollOutcome::Rejected { task } => Err(Box::new(finish_with(
            report,
            Verdict::AgentFailed,
            format!(
                "the task is `{}` and the policy says fail (agent.on-idle / agent.on-waiting-for-user)",
                task.state
            ),
        ))),
        PollOutcome::DeadlineReached { last } => {
            let task = last.unwrap_or_else(|| task.clone());
            let in_round = if round > 0 {
                format!(" in repair round {round}")
            } else {
                String::new()
            };
            let note = format!(
                "the gate's deadline ({}) passed while the task was `{}`{in_round}",
                fmt_secs(run.clock.timeout),
                task.state,
            );
            Err(stopped(run, &task, StopReason::TimedOut, report, note).await)
        }
        PollOutcome::Interrupted { last } => {
            let task = last.unwrap_or_else(|| task.clone());
            let _ = writeln!(
                progress,
                "agent-gate: interrupted; recording the stop of task {}",
                task.id
            );
            let signal = run.shutdown.fired().unwrap_or("a signal");
            let note = format!(
                "the gate was interrupted by {signal} while the task was `{}`",
                task.state
            );
            Err(stopped(run, &task, StopReason::Cancelled, report, note).await)
        }
        PollOutcome::ApiError { error, .. } => Err(Box::new(api_error(
            report,
            "polling the task failed",
            &error,
        ))),
    }
}

/// A task the gate stopped waiting for (`timed-out` or `cancelled`): its pull request is
/// marked (bounded), the stop recorded and the report finished with `note`.
async fn stopped<T: TaskApi>(
    run: &Run<T>,
    task: &Task,
    reason: StopReason,
    mut report: Report,
    note: String,
) -> Box<Report> {
    let stop_opts = StopOptions {
        status_context: run.policy.report.status_context.clone(),
        comment: run.policy.report.comment,
        ..StopOptions::default()
    };
    let record = bounded_stop(&run.status_client, task, reason, &stop_opts).await;
    record_stop(&mut report, &record);
    let verdict = match reason {
        StopReason::TimedOut => Verdict::TimedOut,
        StopReason::Cancelled => Verdict::Cancelled,
    };
    Box::new(finish_with(report, verdict, note))
}

/// How long marking a stopped task's pull request may take: the runner kills the gate
/// 10 s after its first signal (SIGINT, then SIGTERM at 7.5 s).
const STOP_BUDGET: Duration = Duration::from_secs(5);

/// [`stop()`], given at most [`STOP_BUDGET`]; past it the record says what was not done.
async fn bounded_stop(
    client: &Client,
    task: &Task,
    reason: StopReason,
    opts: &StopOptions,
) -> StopRecord {
    let deadline = Instant::now() + STOP_BUDGET;
    let client = client.with_deadline(deadline);
    if let Ok(record) = tokio::time::timeout_at(deadline, stop(&client, task, reason, opts)).await {
        return record;
    }
    let at = client.now();
    let mut record = StopRecord::begin(task, reason, at);
    record.errors.push(format!(
        "marking the pull request did not finish within {}",
        fmt_secs(STOP_BUDGET)
    ));
    record
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
