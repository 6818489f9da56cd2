//! Starting the run's task (DESIGN §1 steps 3–4): attach to the task that carries the run's
//! key (or `task-id`); when there is none, check the daily budget, wait for a slot under
//! `agent.max-concurrent-tasks` (through `crate::admission`, under the admission lock), and
//! create the task idempotently; and admit each repair round again ([`admit_round`]). It
//! reports waiting as progress lines and timeline entries and records the admission in the
//! report; it does not poll the task (`session.rs`) or gate its change (`head.rs`,
//! `round.rs`), and it does not build the client, policy or prompt (`run.rs`).

use std::io::Write;
use std::time::Duration;

use tokio::time::Instant;

use crate::admission::{
    Admission, AdmissionLimits, LeaseUse, RunningCounter, WaitInfo, admit, epoch_now,
};
use crate::budget::{BudgetError, BudgetLimits, check_budget_with};
use crate::fleet::OLDEST_LISTED;
use crate::github::types::Task;
use crate::github::{ApiError, Client, MarkerHints, create_task_request, since_before_now};
use crate::lease::{KnownTasks, LeaseStore};
use crate::policy::Policy;
use crate::prompt::marker;
use crate::report::{AdmissionRecord, Report, TimelineEntry, Verdict};
use crate::shutdown::Shutdown;

use super::check::config_error;
use super::ending::{WAITING_STATE, api_error, finish_with, fmt_secs};
use super::options::RunOptions;
use super::round::RoundContext;

/// How far back a re-run looks for the task carrying its key.
const ATTACH_WINDOW: Duration = Duration::from_hours(24 * 7);

/// What [`start_task`] needs.
pub(super) struct StartContext<'a> {
    pub(super) client: &'a Client,
    pub(super) opts: &'a RunOptions,
    pub(super) policy: &'a Policy,
    pub(super) prompt: &'a str,
    pub(super) mark: &'a str,
    pub(super) key: &'a str,
    pub(super) base: &'a str,
    pub(super) shutdown: &'a Shutdown,
    pub(super) started: Instant,
    pub(super) deadline: Instant,
    pub(super) timeout: Duration,
}

/// Attach to the run's task (`task-id`, or the task carrying the key's marker); when there
/// is none, check the daily budget, wait for capacity, and create it. A re-run that attaches
/// neither counts against the budget nor waits. `Err` is the finished report of a run that
/// ends here (over budget, never admitted, interrupted, API error).
pub(super) async fn start_task(
    s: &StartContext<'_>,
    leases: Option<&mut LeaseStore>,
    report: &mut Report,
    timeline: &mut Vec<TimelineEntry>,
    progress: &mut (dyn Write + Send),
) -> Result<(Task, bool), Box<Report>> {
    let interrupted = |r: Report, signal: &str, key: &str| {
        Box::new(finish_with(
            r,
            Verdict::Cancelled,
            format!(
                "the gate was interrupted by {signal} before the task was started or found; if it was created, a re-run with the same task key ({key}) attaches to it"
            ),
        ))
    };
    // A signal here stops the gate at once: nothing is started after it, and a request in
    // flight is abandoned (a re-run with the same key finds the task if it was made).
    // The task index (git, no API request): which tasks are agent-gate's, with which key.
    let mut leases = leases;
    let known = match leases.as_deref_mut() {
        Some(store) => store.known_tasks(epoch_now()).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the task index cannot be read; every task is read instead");
            KnownTasks::default()
        }),
        None => KnownTasks::default(),
    };
    let found = tokio::select! {
        biased;
        signal = s.shutdown.wait() => return Err(interrupted(take(report), signal, s.key)),
        r = find_existing(s.client, s.opts, s.mark, s.key, &known) => r,
    };
    match found {
        Ok(Some(task)) => {
            if known.id_of(s.key) != Some(task.id.as_str()) {
                record(leases, s.key, &task.id);
            }
            return Ok((task, true));
        }
        Ok(None) => {}
        Err(e) => {
            let r = api_error(take(report), "cannot start or find the agent task", &e);
            return Err(Box::new(explain_not_found(s, r, &e).await));
        }
    }

    // The daily budget: refused before anything starts (and before any wait).
    let limits = BudgetLimits::from_agent(&s.policy.agent);
    if !limits.is_unlimited() {
        let checked = tokio::select! {
            biased;
            signal = s.shutdown.wait() => return Err(interrupted(take(report), signal, s.key)),
            r = check_budget_with(s.client, limits, since_before_now(s.client, Duration::ZERO), 1, known.spends()) => r,
        };
        match checked {
            Ok(status) => {
                let message = status.message();
                let over = status.would_exceed.is_some();
                report.budget = Some(status);
                if over {
                    let mut r = take(report);
                    r.errors.push(message);
                    r.set_verdict(r.verdict.combine(Verdict::OverBudget));
                    r.finish();
                    return Err(Box::new(r));
                }
                let _ = writeln!(progress, "agent-gate: {message}");
            }
            Err(BudgetError::Api(e)) => {
                return Err(Box::new(api_error(
                    take(report),
                    "cannot count today's agent tasks for the daily budget",
                    &e,
                )));
            }
            Err(e) => return Err(Box::new(config_error(take(report), e.to_string()))),
        }
    }

    // The batch's pacing (`tasks-per-minute` of the plan): no new task before `not-before`.
    if let Some(at) = s.opts.not_before {
        pace(s, at, report, progress).await?;
    }

    // Review capacity: no new task while the repository's open pull requests from
    // agent-gate's tasks are at agent.max-open-pull-requests.
    if let Some(max) = s.policy.agent.max_open_pull_requests {
        review_capacity(
            s,
            max,
            leases.as_deref_mut(),
            known.clone(),
            report,
            progress,
        )
        .await?;
    }

    // Admission: wait for a slot under agent.max-concurrent-tasks; the wait counts against
    // the deadline.
    let limits = AdmissionLimits::from_policy(&s.policy.agent);
    if let Some(limit) = limits.limit_for(s.opts.priority) {
        let mut waited_any = false;
        let mut seen_running = 0u32;
        // The last wait line: when, and the (running, ahead) it reported.
        let mut last_line: Option<(Instant, (u32, u32))> = None;
        let heartbeat = s.opts.heartbeat;
        let started = s.started;
        let timeout = s.timeout;
        let admission = {
            let timeline = &mut *timeline;
            let progress = &mut *progress;
            admit(
                s.client,
                limits,
                s.opts.priority,
                RunningCounter::new(s.mark).with_known(known.iter(), s.key),
                s.deadline,
                s.policy.agent.poll_max,
                leases.as_deref_mut(),
                s.shutdown.wait(),
                |info: WaitInfo| {
                    let elapsed = started.elapsed();
                    seen_running = info.running;
                    if !waited_any {
                        waited_any = true;
                        timeline.push(TimelineEntry {
                            state: WAITING_STATE.to_string(),
                            at: jiff::Timestamp::now().to_string(),
                            elapsed_s: elapsed.as_secs_f64(),
                            task_at: None,
                        });
                    }
                    let due = last_line.is_none_or(|(at, seen)| {
                        seen != (info.running, info.ahead) || at.elapsed() >= heartbeat
                    });
                    if due {
                        let _ = writeln!(
                            progress,
                            "agent-gate: {info}; priority {} (after {}, deadline in {})",
                            s.opts.priority,
                            fmt_secs(elapsed),
                            fmt_secs(timeout.saturating_sub(elapsed))
                        );
                        last_line = Some((Instant::now(), (info.running, info.ahead)));
                    }
                },
            )
            .await
        };
        let record = |running: u32, waited: Duration, for_slots: Duration, lock: Option<String>| {
            AdmissionRecord {
                priority: s.opts.priority.to_string(),
                limit,
                running,
                waited_s: waited.as_secs_f64(),
                waited_for_slots_s: for_slots.as_secs_f64(),
                admitted: lock.is_some(),
                lock,
            }
        };
        match admission {
            Admission::Admitted {
                waited,
                for_slots,
                lease,
            } => {
                let lock = match &lease {
                    LeaseUse::Held(held) => format!("held {}", held.name),
                    LeaseUse::Unavailable(why) => {
                        let _ = writeln!(
                            progress,
                            "agent-gate: warning: {why}; admission counted the task list alone, so runs that start together may exceed agent.max-concurrent-tasks"
                        );
                        report.notes.push(format!(
                            "the admission lock was unavailable ({why}): admission was advisory"
                        ));
                        format!("unavailable: {why}")
                    }
                    LeaseUse::NotUsed => "not used".to_string(),
                };
                if waited_any {
                    let _ = writeln!(
                        progress,
                        "agent-gate: admitted after waiting {} for capacity",
                        fmt_secs(waited)
                    );
                    report.notes.push(format!(
                        "the run waited {} for capacity (agent.max-concurrent-tasks, priority {})",
                        fmt_secs(waited),
                        s.opts.priority
                    ));
                }
                report.admission = Some(record(seen_running, waited, for_slots, Some(lock)));
            }
            Admission::NeverAdmitted {
                waited,
                for_slots,
                running,
            } => {
                report.admission = Some(record(running, waited, for_slots, None));
                if let Some(info) = report.task.as_mut() {
                    info.timeline = std::mem::take(timeline);
                    info.state = WAITING_STATE.to_string();
                }
                return Err(Box::new(finish_with(
                    take(report),
                    Verdict::TimedOut,
                    format!(
                        "never admitted: the gate's deadline ({}) passed after waiting {} for capacity; {running} agent-gate tasks were running and a {} run may start below {limit} (agent.max-concurrent-tasks{}). Nothing was started.",
                        fmt_secs(s.timeout),
                        fmt_secs(waited),
                        s.opts.priority,
                        if limits.reserved_for_high > 0 {
                            format!(", {} reserved for high priority", limits.reserved_for_high)
                        } else {
                            String::new()
                        }
                    ),
                )));
            }
            Admission::Interrupted => {
                if let Some(info) = report.task.as_mut() {
                    info.timeline = std::mem::take(timeline);
                }
                let signal = s.shutdown.fired().unwrap_or("a signal");
                return Err(cancelled(report, signal, "waiting for capacity"));
            }
            Admission::ApiError(e) => {
                return Err(Box::new(api_error(
                    take(report),
                    "cannot count the running agent tasks for admission",
                    &e,
                )));
            }
        }
    }

    let created = tokio::select! {
        biased;
        signal = s.shutdown.wait() => return Err(interrupted(take(report), signal, s.key)),
        r = create_first(s.client, s.opts, s.prompt, s.mark, s.base) => r,
    };
    match created {
        Ok(task) => {
            record(leases, s.key, &task.id);
            Ok((task, false))
        }
        Err(e) => {
            let r = api_error(take(report), "cannot start or find the agent task", &e);
            Err(Box::new(explain_not_found(s, r, &e).await))
        }
    }
}

/// Wait until `at` (the run's place in its batch's pacing) before starting a task; the wait
/// counts against the deadline.
async fn pace(
    s: &StartContext<'_>,
    at: jiff::Timestamp,
    report: &mut Report,
    progress: &mut (dyn Write + Send),
) -> Result<(), Box<Report>> {
    let ahead = jiff::Timestamp::now().duration_until(at);
    let Ok(wait) = Duration::try_from(ahead) else {
        return Ok(()); // its time has come
    };
    if wait.is_zero() {
        return Ok(());
    }
    let until = Instant::now() + wait;
    let _ = writeln!(
        progress,
        "agent-gate: pacing: this batch starts its tasks one at a time; this run's turn is at {at} (in {})",
        fmt_secs(wait)
    );
    let what = format!("waiting for its turn in the batch (not-before {at})");
    sleep_or_cancel(s, until.min(s.deadline), &what, report).await?;
    if until > s.deadline {
        return Err(Box::new(finish_with(
            take(report),
            Verdict::TimedOut,
            format!(
                "never started: the gate's deadline ({}) comes before this run's turn in the batch (not-before {at}); nothing was started",
                fmt_secs(s.timeout)
            ),
        )));
    }
    report.notes.push(format!(
        "the run waited {} for its turn in the batch (not-before {at}, the plan's tasks-per-minute)",
        fmt_secs(wait)
    ));
    Ok(())
}

/// The report so far, taken out to be finished (a placeholder is left behind).
fn take(report: &mut Report) -> Report {
    std::mem::replace(report, Report::new(Verdict::Passed))
}

/// The run interrupted by `signal` while `what`, before anything was started: `cancelled`.
fn cancelled(report: &mut Report, signal: &str, what: &str) -> Box<Report> {
    Box::new(finish_with(
        take(report),
        Verdict::Cancelled,
        format!("the gate was interrupted by {signal} while {what}; nothing was started"),
    ))
}

/// Sleep until `until`, or end the run `cancelled` when the shutdown signal fires first.
async fn sleep_or_cancel(
    s: &StartContext<'_>,
    until: Instant,
    what: &str,
    report: &mut Report,
) -> Result<(), Box<Report>> {
    tokio::select! {
        biased;
        signal = s.shutdown.wait() => Err(cancelled(report, signal, what)),
        () = tokio::time::sleep_until(until) => Ok(()),
    }
}

/// Count the repository's open pull requests from agent-gate's tasks (those the task index
/// records) and start only below `max`; at `max`, end the run `over-budget` (or, with
/// `on-review-backlog: wait`, wait for one to be merged or closed, within the deadline). A
/// re-run that attaches never comes here.
async fn review_capacity(
    s: &StartContext<'_>,
    max: u32,
    mut leases: Option<&mut LeaseStore>,
    mut known: KnownTasks,
    report: &mut Report,
    progress: &mut (dyn Write + Send),
) -> Result<(), Box<Report>> {
    let began = Instant::now();
    let mut last_open = None;
    loop {
        let listed = tokio::select! {
            biased;
            signal = s.shutdown.wait() => return Err(cancelled(report, signal, "waiting for review capacity")),
            r = s.client.list_open_pulls(10) => r,
        };
        let pulls = match listed {
            Ok(p) => p,
            Err(e) => {
                return Err(Box::new(api_error(
                    take(report),
                    "cannot count the open pull requests for agent.max-open-pull-requests",
                    &e,
                )));
            }
        };
        let ours = crate::fleet::agent_gate_pulls(&pulls, &known);
        let open = u32::try_from(ours.len()).unwrap_or(u32::MAX);
        let load = crate::report::ReviewLoad {
            repository: s.opts.repository.clone(),
            open,
            limit: max,
            oldest: ours.into_iter().take(OLDEST_LISTED).collect(),
            waited_s: began.elapsed().as_secs_f64(),
            admitted: open < max,
        };
        let message = load.message();
        report.review_load = Some(load);
        if open < max {
            let _ = writeln!(progress, "agent-gate: review load: {message}");
            return Ok(());
        }
        let wait = s.policy.agent.on_review_backlog == crate::policy::OnReviewBacklog::Wait;
        if !wait {
            let mut r = take(report);
            r.errors.push(format!(
                "{message}. Nothing was started: merge or close some of them (or raise the limit, or set agent.on-review-backlog: wait)"
            ));
            r.set_verdict(r.verdict.combine(Verdict::OverBudget));
            r.finish();
            return Err(Box::new(r));
        }
        let now = Instant::now();
        if now >= s.deadline {
            return Err(Box::new(finish_with(
                take(report),
                Verdict::TimedOut,
                format!(
                    "never started: the gate's deadline ({}) passed after waiting {} for review capacity; {message}. Nothing was started.",
                    fmt_secs(s.timeout),
                    fmt_secs(began.elapsed())
                ),
            )));
        }
        if last_open != Some(open) {
            let _ = writeln!(
                progress,
                "agent-gate: waiting for review capacity: {message}"
            );
            last_open = Some(open);
        }
        let until = (now + s.policy.agent.poll_max).min(s.deadline);
        sleep_or_cancel(s, until, "waiting for review capacity", report).await?;
        // Pull requests recorded since (by runs that finished meanwhile) count too.
        if let Some(store) = leases.as_deref_mut()
            && let Ok(fresh) = store.known_tasks(epoch_now())
        {
            known = fresh;
        }
    }
}

/// A 404 of the agent-tasks API for the repository: when GitHub's cloud-agent settings say
/// the agent is off there, that sentence leads the report's errors (the 404 stays after it).
async fn explain_not_found(s: &StartContext<'_>, mut report: Report, e: &ApiError) -> Report {
    let ApiError::NotFound { info } = e else {
        return report;
    };
    if !info.path.contains("/agents/repos/") {
        return report;
    }
    if let Some(plain) = s
        .client
        .agent_availability()
        .await
        .explain(&s.opts.repository)
    {
        report.errors.insert(0, plain);
    }
    report
}

/// The task carrying the run's key (or named by `task-id`), if there is one: the task the
/// index records for the key first, then the tasks the index does not know.
async fn find_existing(
    client: &Client,
    opts: &RunOptions,
    mark: &str,
    key: &str,
    known: &KnownTasks,
) -> Result<Option<Task>, ApiError> {
    if let Some(id) = opts.task_id.as_deref().filter(|i| !i.trim().is_empty()) {
        return client.get_task(id.trim()).await.map(Some);
    }
    let window_start = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::try_from(ATTACH_WINDOW).unwrap_or_default())
        .unwrap_or_else(|_| jiff::Timestamp::now());
    let other = |id: &str| known.key_of(id).is_some_and(|k| k != key);
    let hints = MarkerHints {
        recorded: known.id_of(key),
        other: Some(&other),
    };
    client
        .find_task_by_marker_with(mark, Some(window_start), &hints)
        .await
}

/// Record the run's task in the task index (best effort: a run whose remote refuses it
/// works as before, its task read by the runs that do not know it).
fn record(leases: Option<&mut LeaseStore>, key: &str, id: &str) {
    if let Some(store) = leases
        && let Err(e) = store.record_task(id, None, None, epoch_now())
    {
        tracing::warn!(error = %e, key, "the task could not be recorded in the task index");
    }
}

/// Create the run's first task (idempotently: a lost create is found by its marker).
async fn create_first(
    client: &Client,
    opts: &RunOptions,
    prompt: &str,
    mark: &str,
    base: &str,
) -> Result<Task, ApiError> {
    let mut req = create_task_request(prompt, Some(base.to_string()));
    req.model = opts.model.clone().filter(|m| !m.trim().is_empty());
    req.custom_agent = opts.custom_agent.clone().filter(|m| !m.trim().is_empty());
    let since = since_before_now(client, Duration::from_mins(5));
    client
        .create_task_idempotent(&req, mark, since)
        .await
        .map(|c| c.task)
}

/// Why a repair round does not start after admission.
pub(super) enum RoundAdmission {
    /// No slot before the deadline, or the task list could not be read (a note says which).
    Stop,
    /// The shutdown signal fired while waiting (the verdict's note).
    Interrupted(String),
}

/// Wait for a slot for repair round `next` under `agent.max-concurrent-tasks` (with the
/// admission lock): `None` when it may start (or nothing caps it).
pub(super) async fn admit_round(
    ctx: &RoundContext<'_>,
    next: u32,
    progress: &mut (dyn Write + Send),
    notes: &mut Vec<String>,
) -> Option<RoundAdmission> {
    let m = ctx.leases?;
    let limits = AdmissionLimits::from_policy(&ctx.policy.agent);
    limits.limit_for(ctx.opts.priority)?;
    let mut store = m.lock().await;
    let known = store.known_tasks(epoch_now()).unwrap_or_default();
    let mut last: Option<(u32, u32)> = None;
    let outcome = admit(
        ctx.client,
        limits,
        ctx.opts.priority,
        RunningCounter::new(&marker(ctx.key)).with_known(known.iter(), ctx.key),
        ctx.deadline,
        ctx.policy.agent.poll_max,
        Some(&mut *store),
        ctx.shutdown.wait(),
        |info: WaitInfo| {
            if last != Some((info.running, info.ahead)) {
                last = Some((info.running, info.ahead));
                let _ = writeln!(progress, "agent-gate: repair round {next}: {info}");
            }
        },
    )
    .await;
    match outcome {
        Admission::Admitted { waited, .. } => {
            if last.is_some() {
                let _ = writeln!(
                    progress,
                    "agent-gate: repair round {next}: admitted after waiting {} for capacity",
                    fmt_secs(waited)
                );
                notes.push(format!(
                    "repair round {next} waited {} for capacity (agent.max-concurrent-tasks)",
                    fmt_secs(waited)
                ));
            }
            None
        }
        Admission::NeverAdmitted { running, .. } => {
            notes.push(format!(
                "no repair round {next}: never admitted before the deadline ({running} agent-gate tasks were running, agent.max-concurrent-tasks); the verdict is the last round's"
            ));
            Some(RoundAdmission::Stop)
        }
        Admission::Interrupted => {
            let signal = ctx.shutdown.fired().unwrap_or("a signal");
            Some(RoundAdmission::Interrupted(format!(
                "the gate was interrupted by {signal} while repair round {next} waited for capacity; nothing was started"
            )))
        }
        Admission::ApiError(e) => {
            notes.push(format!(
                "no repair round {next}: cannot count the running agent tasks ({e}); the verdict is the last round's"
            ));
            Some(RoundAdmission::Stop)
        }
    }
}
