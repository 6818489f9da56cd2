//! The rounds of `agent-gate run` (DESIGN §1 steps 5–8, issue 9): gate the task's first
//! session and then, while `agent.repair-rounds` (or the `repair-rounds` input) allows and the
//! change failed on something the agent can fix, send a follow-up on the same branch whose
//! prompt carries the findings and gate again — each repair round within the daily budget,
//! the deadline and admission. Every round gates into a fresh report; the run's report is
//! the last round's, with every round listed and the cost summed.

use std::io::Write;
use std::time::Duration;

use tokio::time::Instant;

use crate::adapters::github::types::Task;
use crate::core::prompt::{build_prompt, marker, prompt_hash};
use crate::core::report::{Report, TimelineEntry, Verdict, ViolationKind};
use crate::flow::budget::{BudgetLimits, BudgetStatus, check_budget_with};
use crate::flow::context::Run;
use crate::flow::ending::{finish_with, fmt_secs};
use crate::flow::fetch::PrivateRefs;
use crate::flow::repair::{
    RoundRecord, follow_up_request, is_repairable, latest_round, repair_prompt, round_cost,
    round_key, total_cost,
};
use crate::flow::session::poll_and_gate;
use crate::flow::start::{RoundAdmission, admit_round};
use crate::flow::task_api::{TaskApi, since};

/// A repair round starts only while more than this many initial poll intervals are left
/// before the deadline: a round that cannot finish would only be stopped again.
const MIN_POLLS_LEFT: u32 = 3;

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
pub(super) async fn gate_rounds<T: TaskApi>(
    run: &Run<T>,
    mut task: Task,
    attached: bool,
    template: Report,
    mut timeline: Vec<TimelineEntry>,
    progress: &mut (dyn Write + Send),
    refs: &mut PrivateRefs,
) -> (Report, Option<Task>) {
    let key = &run.key;
    let (mut round, mut prompt_sha) = first_round(run, &task, attached, &template, progress);
    let mut rounds: Vec<RoundRecord> = Vec::new();
    let mut seen: Vec<Task> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut budget = template.budget.clone();
    // A round this run sent: its follow-up session must show before its end counts.
    let mut sent_round: Option<u32> = None;
    loop {
        let round_report = round_template(&template, &task, &prompt_sha);
        let end = poll_and_gate(
            run,
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
        let instruction = match next_instruction(run, &report, round) {
            NextRound::Repair(i) => i,
            NextRound::None => return finish_rounds(run, report, rounds, &seen, notes, budget),
            NextRound::NoneBecause(note) => {
                notes.push(note);
                return finish_rounds(run, report, rounds, &seen, notes, budget);
            }
        };
        if let Some(note) = no_time_left(run, round) {
            notes.push(note);
            return finish_rounds(run, report, rounds, &seen, notes, budget);
        }
        if !budget_allows_round(run, round, progress, &mut notes, &mut budget).await {
            return finish_rounds(run, report, rounds, &seen, notes, budget);
        }

        // A repair round runs the task again: it waits for a slot like a new task.
        if let Some(report_end) = admit_round(run, round + 1, progress, &mut notes).await {
            let report = match report_end {
                RoundAdmission::Stop => report,
                RoundAdmission::Interrupted(note) => finish_with(report, Verdict::Cancelled, note),
            };
            return finish_rounds(run, report, rounds, &seen, notes, budget);
        }

        let (next_task, prompt) =
            match send_follow_up(run, report, round, &instruction, progress, &mut notes).await {
                Ok(sent) => sent,
                Err(report) => return finish_rounds(run, *report, rounds, &seen, notes, budget),
            };
        task = next_task;
        round += 1;
        sent_round = Some(round);
        prompt_sha = prompt_hash(&prompt);
    }
}

/// The round a run starts gating at, with its prompt's hash: round 0, or — a re-run attaches
/// to the round in flight — the latest round of the task.
fn first_round<T: TaskApi>(
    run: &Run<T>,
    task: &Task,
    attached: bool,
    template: &Report,
    progress: &mut (dyn Write + Send),
) -> (u32, String) {
    let key = &run.key;
    // A re-run attaches to the round in flight.
    let round = if attached {
        latest_round(task, key).unwrap_or(0)
    } else {
        0
    };
    let prompt_sha = if round == 0 {
        template
            .task
            .as_ref()
            .and_then(|t| t.prompt_sha256.clone())
            .unwrap_or_default()
    } else {
        session_prompt_hash(task, key, round).unwrap_or_default()
    };
    if round > 0 {
        let _ = writeln!(
            progress,
            "agent-gate: task {} is in repair round {round}; gating that round",
            task.id
        );
    }
    (round, prompt_sha)
}

/// A round's fresh report: the run's `template` naming the round's task and prompt.
fn round_template(template: &Report, task: &Task, prompt_sha: &str) -> Report {
    let mut round_report = template.clone();
    if let Some(info) = round_report.task.as_mut() {
        info.id.clone_from(&task.id);
        info.url.clone_from(&task.html_url);
        info.state = task.state.to_string();
        if !prompt_sha.is_empty() {
            info.prompt_sha256 = Some(prompt_sha.to_string());
        }
    }
    round_report
}

/// Whether the daily budget leaves room for repair round `round + 1`; counts it into
/// `budget` and says in `notes` why not. An interrupt while counting says no, silently.
async fn budget_allows_round<T: TaskApi>(
    run: &Run<T>,
    round: u32,
    progress: &mut (dyn Write + Send),
    notes: &mut Vec<String>,
    budget: &mut Option<BudgetStatus>,
) -> bool {
    let limits = BudgetLimits::from_agent(&run.policy.agent);
    if limits.is_unlimited() {
        return true;
    }
    let now = run.tasks.now();
    // The task index tells what the night's finished tasks cost (no read of each).
    let known = run
        .leases
        .lock()
        .await
        .known_tasks(crate::flow::admission::epoch_now())
        .unwrap_or_default();
    let checked = tokio::select! {
        biased;
        _ = run.shutdown.wait() => return false,
        r = check_budget_with(&run.tasks, limits, now, 1, known.spends()) => r,
    };
    match checked {
        Ok(status) => {
            let over = status.would_exceed.is_some();
            let message = status.message();
            *budget = Some(status);
            if over {
                notes.push(format!(
                    "no repair round {}: {message} The verdict is the last round's.",
                    round + 1
                ));
                let _ = writeln!(progress, "agent-gate: {message}");
                return false;
            }
            true
        }
        Err(e) => {
            notes.push(format!(
                "no repair round {}: {e}; the verdict is the last round's",
                round + 1
            ));
            false
        }
    }
}

/// Send repair round `round + 1`'s follow-up on the agent's branch: `Ok` with the task and
/// the prompt sent, `Err` with the last round's report (finished as cancelled when the gate
/// was interrupted) when it could not be sent, the reason in `notes`.
async fn send_follow_up<T: TaskApi>(
    run: &Run<T>,
    report: Report,
    round: u32,
    instruction: &str,
    progress: &mut (dyn Write + Send),
    notes: &mut Vec<String>,
) -> Result<(Task, String), Box<Report>> {
    let key = &run.key;
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
        return Err(Box::new(report));
    };
    let next = round + 1;
    let rkey = round_key(key, next);
    let prompt = build_prompt(instruction, &run.policy, &run.scope, &rkey);
    let mut req = follow_up_request(prompt.clone(), &branch, &run.base_branch);
    req.model = run.opts.model.clone().filter(|m| !m.trim().is_empty());
    req.custom_agent = run
        .opts
        .custom_agent
        .clone()
        .filter(|m| !m.trim().is_empty());
    let since = since(&run.tasks, Duration::from_mins(5));
    let round_marker = marker(&rkey);
    let created = tokio::select! {
        biased;
        signal = run.shutdown.wait() => {
            return Err(Box::new(finish_with(
                report,
                Verdict::Cancelled,
                format!(
                    "the gate was interrupted by {signal} while starting repair round {next}; if it was created, a re-run with the same task key ({key}) attaches to it"
                ),
            )));
        }
        r = run.tasks.create_task_idempotent(&req, &round_marker, since) => r,
    };
    match created {
        Ok(c) => {
            let _ = writeln!(
                progress,
                "agent-gate: repair round {next} of {}: the change was {}; asked task {} to fix it on `{branch}`",
                run.max_rounds, report.verdict, c.task.id
            );
            Ok((c.task, prompt))
        }
        Err(e) => {
            notes.push(format!(
                "repair round {next} could not be started: {e}; the verdict is the last round's"
            ));
            Err(Box::new(report))
        }
    }
}

/// Whether another round follows the one that ended with `report`.
enum NextRound {
    /// A repair round, with its instruction.
    Repair(String),
    /// None, and nothing worth saying about it (the change passed, or no rounds are set).
    None,
    /// None, for the reason given (a note of the report).
    NoneBecause(String),
}

/// The next round's instruction, or why there is none.
fn next_instruction<T: TaskApi>(run: &Run<T>, report: &Report, round: u32) -> NextRound {
    if run.shutdown.fired().is_some() {
        return NextRound::None;
    }
    if let Some(p) = repair_prompt(&run.opts.instruction, report, round, run.max_rounds) {
        return NextRound::Repair(p);
    }
    if run.max_rounds == 0 {
        return NextRound::None;
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
        return NextRound::NoneBecause(
            "a protected path was changed: the change is not sent back for repair".to_string(),
        );
    }
    if is_repairable(report) && round >= run.max_rounds {
        return NextRound::NoneBecause(format!(
            "repair rounds exhausted ({round} of {}); the verdict is the last round's",
            run.max_rounds
        ));
    }
    if failed {
        return NextRound::NoneBecause(
            "a required check could not run or was cancelled: the change is not sent back for repair"
                .to_string(),
        );
    }
    NextRound::None
}

/// Why there is no time for another round, if there is none.
fn no_time_left<T: TaskApi>(run: &Run<T>, round: u32) -> Option<String> {
    let left = run.clock.deadline.saturating_duration_since(Instant::now());
    let needed = run.policy.agent.poll_initial * MIN_POLLS_LEFT;
    (left <= needed).then(|| {
        format!(
            "no repair round {}: only {} left before the gate's deadline ({}); the verdict is the last round's",
            round + 1,
            fmt_secs(left),
            fmt_secs(run.clock.timeout)
        )
    })
}

/// The run's report: the last round's, with every round, the cost over all rounds, the
/// budget last counted and the notes about rounds; and the task as last seen.
fn finish_rounds<T: TaskApi>(
    run: &Run<T>,
    mut report: Report,
    rounds: Vec<RoundRecord>,
    seen: &[Task],
    notes: Vec<String>,
    budget: Option<BudgetStatus>,
) -> (Report, Option<Task>) {
    if run.max_rounds > 0 || rounds.len() > 1 || rounds.first().is_some_and(|r| r.round > 0) {
        report.rounds = rounds;
    }
    let cost = total_cost(seen);
    if let Some(info) = report.task.as_mut() {
        info.ai_credits = cost.ai_credits();
        info.premium_requests = cost.premium_requests;
    }
    report.budget = budget;
    report.notes.extend(notes);
    (report, seen.last().cloned())
}
