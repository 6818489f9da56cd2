//! Starting the run's task (DESIGN §1 steps 3–4): attach to the task that carries the run's
//! key (or `task-id`); when there is none, check the daily budget, wait for the run's turn in
//! its batch and for review capacity, wait for a slot under `agent.max-concurrent-tasks`
//! (under the admission lock), and create the task idempotently; and admit each repair round
//! again ([`admit_round`]). Waiting shows as progress lines and timeline entries, and the
//! report records the admission. Everything it needs is in the [`Run`]; it ends the run's
//! report only when the task cannot be started.

use std::io::Write;
use std::time::Duration;

use tokio::time::Instant;

use crate::adapters::github::types::Task;
use crate::adapters::github::{ApiError, MarkerHints, create_task_request};
use crate::core::prompt::marker;
use crate::core::report::{AdmissionRecord, Report, TimelineEntry, Verdict};
use crate::flow::admission::{
    Admission, AdmissionLimits, LeaseUse, RunningCounter, WaitInfo, admit, epoch_now,
};
use crate::flow::budget::{BudgetError, BudgetLimits, check_budget_with};
use crate::flow::fleet::OLDEST_LISTED;
use crate::flow::lease::{KnownTasks, LeaseStore};

use super::context::Run;
use super::ending::{WAITING_STATE, api_error, config_error, finish_with, fmt_secs};
use super::options::RunOptions;
use super::task_api::{TaskApi, since};

/// How far back a re-run looks for the task carrying its key.
const ATTACH_WINDOW: Duration = Duration::from_hours(24 * 7);

/// Attach to the run's task (`task-id`, or the task carrying the key's marker); when there
/// is none, check the daily budget, wait for its turn and for capacity, and create it. A
/// re-run that attaches neither counts against the budget nor waits. `Err` is the finished
/// report of a run that ends here (over budget, never admitted, interrupted, API error).
/// The admission store is held from the first read of the task index to the task's record.
pub(super) async fn start_task<T: TaskApi>(
    run: &Run<T>,
    report: &mut Report,
    timeline: &mut Vec<TimelineEntry>,
    progress: &mut (dyn Write + Send),
) -> Result<(Task, bool), Box<Report>> {
    let mut store = run.leases.lock().await;
    // The task index (git, no API request): which tasks are agent-gate's, with which key.
    let known = store.known_tasks(epoch_now()).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "the task index cannot be read; every task is read instead");
        KnownTasks::default()
    });
    if let Some(task) = attach(run, &known, report).await? {
        if known.id_of(&run.key) != Some(task.id.as_str()) {
            record(&mut store, &run.key, &task.id);
        }
        return Ok((task, true));
    }
    daily_budget(run, &known, report, progress).await?;
    // The batch's pacing (`tasks-per-minute` of the plan): no new task before `not-before`.
    if let Some(at) = run.opts.not_before {
        pace(run, at, report, progress).await?;
    }
    // Review capacity: no new task while the repository's open pull requests from
    // agent-gate's tasks are at agent.max-open-pull-requests.
    if let Some(max) = run.policy.agent.max_open_pull_requests {
        let known = known.clone();
        review_capacity(run, max, &mut store, known, report, progress).await?;
    }
    admit_first(run, &mut store, &known, report, timeline, progress).await?;
    let created = tokio::select! {
        biased;
        signal = run.shutdown.wait() => return Err(interrupted(take(report), signal, &run.key)),
        r = create_first(&run.tasks, &run.opts, &run.prompt, &run.mark, &run.base_branch) => r,
    };
    match created {
        Ok(task) => {
            record(&mut store, &run.key, &task.id);
            Ok((task, false))
        }
        Err(e) => {
            let r = api_error(take(report), "cannot start or find the agent task", &e);
            Err(Box::new(explain_not_found(run, r, &e).await))
        }
    }
}

/// The run interrupted before its task was started or found: `cancelled`. A signal stops
/// the gate at once: nothing is started after it, and a request in flight is abandoned (a
/// re-run with the same key finds the task if it was made).
fn interrupted(report: Report, signal: &str, key: &str) -> Box<Report> {
    Box::new(finish_with(
        report,
        Verdict::Cancelled,
        format!(
            "the gate was interrupted by {signal} before the task was started or found; if it was created, a re-run with the same task key ({key}) attaches to it"
        ),
    ))
}

/// The run's task when it exists already (`task-id`, or the task carrying the key).
async fn attach<T: TaskApi>(
    run: &Run<T>,
    known: &KnownTasks,
    report: &mut Report,
) -> Result<Option<Task>, Box<Report>> {
    let found = tokio::select! {
        biased;
        signal = run.shutdown.wait() => return Err(interrupted(take(report), signal, &run.key)),
        r = find_existing(&run.tasks, &run.opts, &run.mark, &run.key, known) => r,
    };
    match found {
        Ok(task) => Ok(task),
        Err(e) => {
            let r = api_error(take(report), "cannot start or find the agent task", &e);
            Err(Box::new(explain_not_found(run, r, &e).await))
        }
    }
}

/// The daily budget: refused before anything starts (and before any wait); the count goes
/// into the report.
async fn daily_budget<T: TaskApi>(
    run: &Run<T>,
    known: &KnownTasks,
    report: &mut Report,
    progress: &mut (dyn Write + Send),
) -> Result<(), Box<Report>> {
    let limits = BudgetLimits::from_agent(&run.policy.agent);
    if limits.is_unlimited() {
        return Ok(());
    }
    let now = run.tasks.now();
    let checked = tokio::select! {
        biased;
        signal = run.shutdown.wait() => return Err(interrupted(take(report), signal, &run.key)),
        r = check_budget_with(&run.tasks, limits, now, 1, known.spends()) => r,
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
            Ok(())
        }
        Err(BudgetError::Api(e)) => Err(Box::new(api_error(
            take(report),
            "cannot count today's agent tasks for the daily budget",
            &e,
        ))),
        Err(e) => Err(Box::new(config_error(take(report), e.to_string()))),
    }
}

/// Admission: wait for a slot under `agent.max-concurrent-tasks` (under the admission
/// lock); the wait counts against the deadline. The report records how it went.
async fn admit_first<T: TaskApi>(
    run: &Run<T>,
    leases: &mut LeaseStore,
    known: &KnownTasks,
    report: &mut Report,
    timeline: &mut Vec<TimelineEntry>,
    progress: &mut (dyn Write + Send),
) -> Result<(), Box<Report>> {
    let limits = AdmissionLimits::from_policy(&run.policy.agent);
    let Some(limit) = limits.limit_for(run.opts.priority) else {
        return Ok(());
    };
    let mut wait = CapacityWait {
        run,
        timeline: &mut *timeline,
        progress: &mut *progress,
        waited_any: false,
        seen_running: 0,
        last_line: None,
    };
    let admission = admit(
        &run.tasks,
        limits,
        run.opts.priority,
        RunningCounter::new(&run.mark).with_known(known.iter(), &run.key),
        run.clock.deadline,
        run.policy.agent.poll_max,
        Some(leases),
        run.shutdown.wait(),
        |info: WaitInfo| wait.seen(&info),
    )
    .await;
    let (waited_any, seen_running) = (wait.waited_any, wait.seen_running);
    let record = |running: u32, waited: Duration, for_slots: Duration, lock: Option<String>| {
        Some(AdmissionRecord {
            priority: run.opts.priority.to_string(),
            limit,
            running,
            waited_s: waited.as_secs_f64(),
            waited_for_slots_s: for_slots.as_secs_f64(),
            admitted: lock.is_some(),
            lock,
        })
    };
    match admission {
        Admission::Admitted {
            waited,
            for_slots,
            lease,
        } => {
            let lock = admitted(run, &lease, waited_any.then_some(waited), report, progress);
            report.admission = record(seen_running, waited, for_slots, Some(lock));
            Ok(())
        }
        Admission::NeverAdmitted {
            waited,
            for_slots,
            running,
        } => {
            report.admission = record(running, waited, for_slots, None);
            Err(never_admitted(
                run, limits, waited, running, report, timeline,
            ))
        }
        Admission::Interrupted => {
            if let Some(info) = report.task.as_mut() {
                info.timeline = std::mem::take(timeline);
            }
            let signal = run.shutdown.fired().unwrap_or("a signal");
            Err(cancelled(report, signal, "waiting for capacity"))
        }
        Admission::ApiError(e) => Err(Box::new(api_error(
            take(report),
            "cannot count the running agent tasks for admission",
            &e,
        ))),
    }
}

/// What the first task's wait for capacity says as it goes: a timeline entry when it
/// begins, a line when the count changes and at most one heartbeat line per `heartbeat`.
struct CapacityWait<'a, T> {
    run: &'a Run<T>,
    timeline: &'a mut Vec<TimelineEntry>,
    progress: &'a mut (dyn Write + Send),
    waited_any: bool,
    /// The running tasks the last count saw.
    seen_running: u32,
    /// The last wait line: when, and the (running, ahead) it reported.
    last_line: Option<(Instant, (u32, u32))>,
}

impl<T: TaskApi> CapacityWait<'_, T> {
    fn seen(&mut self, info: &WaitInfo) {
        let run = self.run;
        self.seen_running = info.running;
        if !self.waited_any {
            self.waited_any = true;
            self.timeline.push(TimelineEntry {
                state: WAITING_STATE.to_string(),
                at: jiff::Timestamp::now().to_string(),
                elapsed_s: run.clock.started.elapsed().as_secs_f64(),
                task_at: None,
            });
        }
        let counts = (info.running, info.ahead);
        let due = self
            .last_line
            .is_none_or(|(at, seen)| seen != counts || at.elapsed() >= run.opts.heartbeat);
        if due {
            let (priority, when) = (run.opts.priority, run.clock.since_start());
            let _ = writeln!(
                self.progress,
                "agent-gate: {info}; priority {priority} ({when})"
            );
            self.last_line = Some((Instant::now(), counts));
        }
    }
}

/// A run admitted (after `waited`, when it waited): what the admission lock was, said in
/// the progress and the report's notes where it matters.
fn admitted<T: TaskApi>(
    run: &Run<T>,
    lease: &LeaseUse,
    waited: Option<Duration>,
    report: &mut Report,
    progress: &mut (dyn Write + Send),
) -> String {
    let lock = match lease {
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
    if let Some(waited) = waited {
        let _ = writeln!(
            progress,
            "agent-gate: admitted after waiting {} for capacity",
            fmt_secs(waited)
        );
        report.notes.push(format!(
            "the run waited {} for capacity (agent.max-concurrent-tasks, priority {})",
            fmt_secs(waited),
            run.opts.priority
        ));
    }
    lock
}

/// The run that waited for capacity until its deadline: `timed-out`, nothing started.
fn never_admitted<T: TaskApi>(
    run: &Run<T>,
    limits: AdmissionLimits,
    waited: Duration,
    running: u32,
    report: &mut Report,
    timeline: &mut Vec<TimelineEntry>,
) -> Box<Report> {
    if let Some(info) = report.task.as_mut() {
        info.timeline = std::mem::take(timeline);
        info.state = WAITING_STATE.to_string();
    }
    let limit = limits.limit_for(run.opts.priority).unwrap_or_default();
    let reserved = if limits.reserved_for_high > 0 {
        format!(", {} reserved for high priority", limits.reserved_for_high)
    } else {
        String::new()
    };
    Box::new(finish_with(
        take(report),
        Verdict::TimedOut,
        format!(
            "never admitted: the gate's deadline ({}) passed after waiting {} for capacity; {running} agent-gate tasks were running and a {} run may start below {limit} (agent.max-concurrent-tasks{reserved}). Nothing was started.",
            fmt_secs(run.clock.timeout),
            fmt_secs(waited),
            run.opts.priority,
        ),
    ))
}

/// Wait until `at` (the run's place in its batch's pacing) before starting a task; the wait
/// counts against the deadline.
async fn pace<T: TaskApi>(
    run: &Run<T>,
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
    sleep_or_cancel(run, until.min(run.clock.deadline), &what, report).await?;
    if until > run.clock.deadline {
        return Err(Box::new(finish_with(
            take(report),
            Verdict::TimedOut,
            format!(
                "never started: the gate's deadline ({}) comes before this run's turn in the batch (not-before {at}); nothing was started",
                fmt_secs(run.clock.timeout)
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
async fn sleep_or_cancel<T: TaskApi>(
    run: &Run<T>,
    until: Instant,
    what: &str,
    report: &mut Report,
) -> Result<(), Box<Report>> {
    tokio::select! {
        biased;
        signal = run.shutdown.wait() => Err(cancelled(report, signal, what)),
        () = tokio::time::sleep_until(until) => Ok(()),
    }
}

/// Count the repository's open pull requests from agent-gate's tasks (those the task index
/// records) and start only below `max`; at `max`, end the run `over-budget` (or, with
/// `on-review-backlog: wait`, wait for one to be merged or closed, within the deadline). A
/// re-run that attaches never comes here.
async fn review_capacity<T: TaskApi>(
    run: &Run<T>,
    max: u32,
    leases: &mut LeaseStore,
    mut known: KnownTasks,
    report: &mut Report,
    progress: &mut (dyn Write + Send),
) -> Result<(), Box<Report>> {
    let began = Instant::now();
    let mut last_open = None;
    loop {
        let listed = tokio::select! {
            biased;
            signal = run.shutdown.wait() => return Err(cancelled(report, signal, "waiting for review capacity")),
            r = run.client.list_open_pulls(10) => r,
        };
        let pulls = listed.map_err(|e| {
            Box::new(api_error(
                take(report),
                "cannot count the open pull requests for agent.max-open-pull-requests",
                &e,
            ))
        })?;
        let load = review_load(run, max, &pulls, &known, began.elapsed());
        let open = load.open;
        let message = load.message();
        report.review_load = Some(load);
        if open < max {
            let _ = writeln!(progress, "agent-gate: review load: {message}");
            return Ok(());
        }
        let wait = run.policy.agent.on_review_backlog == crate::core::policy::OnReviewBacklog::Wait;
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
        if now >= run.clock.deadline {
            return Err(Box::new(finish_with(
                take(report),
                Verdict::TimedOut,
                format!(
                    "never started: the gate's deadline ({}) passed after waiting {} for review capacity; {message}. Nothing was started.",
                    fmt_secs(run.clock.timeout),
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
        let until = (now + run.policy.agent.poll_max).min(run.clock.deadline);
        sleep_or_cancel(run, until, "waiting for review capacity", report).await?;
        // Pull requests recorded since (by runs that finished meanwhile) count too.
        if let Ok(fresh) = leases.known_tasks(epoch_now()) {
            known = fresh;
        }
    }
}

/// The repository's open pull requests from agent-gate's tasks (those `known` records)
/// against `max`.
fn review_load<T: TaskApi>(
    run: &Run<T>,
    max: u32,
    pulls: &[crate::adapters::github::types::PullRequest],
    known: &KnownTasks,
    waited: Duration,
) -> crate::core::report::ReviewLoad {
    let ours = crate::flow::fleet::agent_gate_pulls(pulls, known);
    let open = u32::try_from(ours.len()).unwrap_or(u32::MAX);
    crate::core::report::ReviewLoad {
        repository: run.opts.repository.to_string(),
        open,
        limit: max,
        oldest: ours.into_iter().take(OLDEST_LISTED).collect(),
        waited_s: waited.as_secs_f64(),
        admitted: open < max,
    }
}

/// A 404 of the agent-tasks API for the repository: when GitHub's cloud-agent settings say
/// the agent is off there, that sentence leads the report's errors (the 404 stays after it).
async fn explain_not_found<T: TaskApi>(run: &Run<T>, mut report: Report, e: &ApiError) -> Report {
    let ApiError::NotFound { info } = e else {
        return report;
    };
    if !info.path.contains("/agents/repos/") {
        return report;
    }
    if let Some(plain) = run
        .client
        .agent_availability()
        .await
        .explain(&run.opts.repository.to_string())
    {
        report.errors.insert(0, plain);
    }
    report
}

/// The task carrying the run's key (or named by `task-id`), if there is one: the task the
/// index records for the key first, then the tasks the index does not know.
async fn find_existing(
    client: &impl TaskApi,
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
        .find_task_by_marker(mark, Some(window_start), &hints)
        .await
}

/// Record the run's task in the task index (best effort: a run whose remote refuses it
/// works as before, its task read by the runs that do not know it).
fn record(store: &mut LeaseStore, key: &str, id: &str) {
    if let Err(e) = store.record_task(id, None, None, epoch_now()) {
        tracing::warn!(error = %e, key, "the task could not be recorded in the task index");
    }
}

/// Create the run's first task (idempotently: a lost create is found by its marker).
async fn create_first(
    client: &impl TaskApi,
    opts: &RunOptions,
    prompt: &str,
    mark: &str,
    base: &str,
) -> Result<Task, ApiError> {
    let mut req = create_task_request(prompt, Some(base.to_string()));
    req.model = opts.model.clone().filter(|m| !m.trim().is_empty());
    req.custom_agent = opts.custom_agent.clone().filter(|m| !m.trim().is_empty());
    let since = since(client, Duration::from_mins(5));
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
pub(super) async fn admit_round<T: TaskApi>(
    run: &Run<T>,
    next: u32,
    progress: &mut (dyn Write + Send),
    notes: &mut Vec<String>,
) -> Option<RoundAdmission> {
    let limits = AdmissionLimits::from_policy(&run.policy.agent);
    limits.limit_for(run.opts.priority)?;
    let mut store = run.leases.lock().await;
    let known = store.known_tasks(epoch_now()).unwrap_or_default();
    let mut last: Option<(u32, u32)> = None;
    let outcome = admit(
        &run.tasks,
        limits,
        run.opts.priority,
        RunningCounter::new(&marker(&run.key)).with_known(known.iter(), &run.key),
        run.clock.deadline,
        run.policy.agent.poll_max,
        Some(&mut *store),
        run.shutdown.wait(),
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
            let signal = run.shutdown.fired().unwrap_or("a signal");
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
