//! `agent-gate run`: the whole flow of DESIGN §1 as one straight pipeline — prepare (check
//! the inputs, fetch the base and read the policy there, admit the repository, derive the
//! key and prompt), connect (clients, admission store, write pace) into a [`Run`], start or
//! attach to the task, the rounds (poll, collect, gate; repair rounds), the task index's
//! record, the review gate. Each step is a function that takes what it needs and returns
//! what it found; every failure becomes a verdict in the [`Report`].

use std::io::Write;
use std::sync::Arc;

use tokio::time::Instant;

use crate::adapters::git::Git;
use crate::adapters::github::types::{Task, TaskState};
use crate::adapters::github::{ApiError, Client, ClientConfig, WritePacer};
use crate::adapters::shutdown::Shutdown;
use crate::core::prompt::{KeyInputs, build_prompt, derive_key, marker, prompt_hash};
use crate::core::report::{Report, TaskInfo, TimelineEntry, Verdict};
use crate::core::scope::Scope;
use crate::core::secret::Token;
use crate::flow::budget::{BudgetLimits, TaskSpend};
use crate::flow::lease::LeaseStore;
use crate::flow::pace::{LedgerPacer, PaceStore};

use super::context::{Run, RunClock, ledger_of};
use super::ending::{api_error, config_error, finish_with, fmt_secs};
use super::fetch::{Base, BaseError, PrivateRefs, fetch_base, git_token};
use super::options::RunOptions;
use super::round::gate_rounds;
use super::start::start_task;
use super::task_api::TaskApi;

/// Run the whole gate. `progress` receives one line per state change, heartbeats while
/// waiting, and a last line with the verdict. Never panics; every failure is a verdict.
pub async fn run(
    opts: RunOptions,
    shutdown: Shutdown,
    progress: &mut (dyn Write + Send),
) -> Report {
    run_with_tasks(opts, Client::clone, shutdown, progress).await
}

/// [`run`], with the task lifecycle's calls (list, create, read, poll) made through the
/// [`TaskApi`] that `tasks` makes of the run's agent-tasks client (bounded by the run's
/// deadline): the client itself in [`run`], a script in a flow test. Everything else —
/// git, the pull requests, the review gate — is as in [`run`].
pub async fn run_with_tasks<T: TaskApi>(
    opts: RunOptions,
    tasks: impl FnOnce(&Client) -> T,
    shutdown: Shutdown,
    progress: &mut (dyn Write + Send),
) -> Report {
    let started = Instant::now();
    opts.audit.trigger();
    let repo = opts.repo.clone();
    let mut report = Box::pin(run_gate(opts, tasks, shutdown, progress, started)).await;
    // What git wrote as root into the runner's repository (fetched objects, private refs,
    // the admission notes) is the runner's again.
    if let Ok(git_dir) = Git::new(&repo).common_dir()
        && let Err(e) = crate::adapters::ownership::give_back(&git_dir)
    {
        report.notes.push(format!(
            "could not hand {} back to its owner: {e}",
            git_dir.display()
        ));
    }
    let _ = writeln!(
        progress,
        "agent-gate: verdict {} (exit {}) after {}",
        report.verdict,
        report.exit_code,
        fmt_secs(started.elapsed())
    );
    let _ = progress.flush();
    report
}

async fn run_gate<T: TaskApi>(
    opts: RunOptions,
    tasks: impl FnOnce(&Client) -> T,
    shutdown: Shutdown,
    progress: &mut (dyn Write + Send),
    started: Instant,
) -> Report {
    let mut report = Report::new(Verdict::Passed);
    report.policy = Some(opts.policy_path.clone());
    let mut refs = PrivateRefs::new(Git::new(&opts.repo));

    // 1–3. Inputs, the base (and the policy there), admission of the repository, the key.
    let prepared = match prepare(opts, started, &mut report, &mut refs) {
        Ok(p) => p,
        Err(e) => return config_error(report, e.to_string()),
    };
    let token = match &prepared.mode {
        Mode::DryRun => return dry_run(&prepared, report, progress),
        Mode::Live(token) => token.clone(),
    };
    let run = match connect(prepared, token, tasks, shutdown) {
        Ok(r) => r,
        Err(e) => return api_error(report, "cannot build the API client", &e),
    };

    // 4. Attach, or check the budget, wait for capacity and start.
    let mut timeline: Vec<TimelineEntry> = Vec::new();
    let (task, attached) = match start_task(&run, &mut report, &mut timeline, progress).await {
        Ok(t) => t,
        Err(done) => return *done,
    };
    announce(&run, &task, attached, &mut report, &timeline, progress);

    // 5–8. Poll, collect and gate; then repair rounds while the policy allows them.
    let (mut report, last_seen) = Box::pin(gate_rounds(
        &run, task, attached, report, timeline, progress, &mut refs,
    ))
    .await;
    drop(refs);
    record_in_index(&run, &report, last_seen.as_ref()).await;

    // 8. The review gate, on the pull request; best effort. A run interrupted by a signal
    // skips it (time is short).
    if run.shutdown.fired().is_none() && report.task.as_ref().is_some_and(|t| t.pr_number.is_some())
    {
        review_gate(&run, &mut report).await;
    }
    if let (Some(pacer), Some(pace)) = (&run.pacer, &run.opts.write_pace) {
        let (writes, waited) = pacer.waited();
        report.notes.push(format!(
            "write pace {pace} (ledger on {}): {writes} write(s) timed, {} waited in all",
            run.ledger(),
            fmt_secs(waited)
        ));
    }
    report
}

/// A run whose inputs, base and policy are known, before any client is built.
struct Prepared {
    opts: RunOptions,
    mode: Mode,
    git: Git,
    /// The run's private refs are `refs/agent-gate/<tag>/…`.
    tag: String,
    base: Base,
    scope: Scope,
    clock: RunClock,
    key: String,
    prompt: String,
}

/// Why a run ends before anything is started: a configuration error.
#[derive(Debug, thiserror::Error)]
enum PrepareError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Base(#[from] BaseError),
    #[error("the policy does not list repository `{repository}` under `repositories` ({listed})")]
    NotListed { repository: String, listed: String },
}

/// Check the inputs, fetch the base into a private ref and read the policy there, admit the
/// repository, narrow the scope and derive the key and prompt (DESIGN §1 steps 1–3). The
/// report learns the base and the task's key and prompt hash.
fn prepare(
    opts: RunOptions,
    started: Instant,
    report: &mut Report,
    refs: &mut PrivateRefs,
) -> Result<Prepared, PrepareError> {
    let mode = check_inputs(&opts)?;
    let git = Git::new(&opts.repo);
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let base = fetch_base(&git, &opts, &format!("refs/agent-gate/{tag}/base"), refs)?;
    report.base = Some(base.branch.clone());
    let listed = &base.policy.repositories;
    if !listed.is_empty() && !listed.iter().any(|r| opts.repository.same_as(r)) {
        return Err(PrepareError::NotListed {
            repository: opts.repository.to_string(),
            listed: listed.join(", "),
        });
    }
    let scope = base.policy.scope.narrowed_by(&opts.scope);
    opts.audit.scope(opts.scope.globs());
    let clock = RunClock::new(started, opts.timeout.unwrap_or(base.policy.agent.timeout));
    let key_inputs = KeyInputs {
        instruction: opts.instruction.clone(),
        ..opts.key_inputs.clone()
    };
    let key = derive_key(opts.task_key.as_deref(), &key_inputs);
    let prompt = build_prompt(&opts.instruction, &base.policy, &scope, &key);
    report.task = Some(TaskInfo {
        key: key.clone(),
        prompt_sha256: Some(prompt_hash(&prompt)),
        instruction: Some(opts.instruction.clone()),
        state: "not-started".to_string(),
        ..TaskInfo::default()
    });
    Ok(Prepared {
        opts,
        mode,
        git,
        tag,
        base,
        scope,
        clock,
        key,
        prompt,
    })
}

/// A dry run ends after the prompt is printed: nothing is started.
fn dry_run(p: &Prepared, report: Report, progress: &mut (dyn Write + Send)) -> Report {
    let (key, base) = (&p.key, &p.base.branch);
    let _ = writeln!(
        progress,
        "agent-gate: dry run — nothing is started. The task would be created on {} (base {base}) with this prompt:\n{}",
        p.opts.repository, p.prompt
    );
    finish_with(
        report,
        Verdict::DryRun,
        format!("dry run: no task was started (key {key}, base {base})"),
    )
}

/// The run in hand: the clients (paced on the write-pace ledger when `write-pace` is set)
/// and the admission store on the remote, which also holds the task index every run reads
/// and writes (issue 8).
fn connect<T>(
    p: Prepared,
    agent_token: Token,
    tasks: impl FnOnce(&Client) -> T,
    shutdown: Shutdown,
) -> Result<Run<T>, ApiError> {
    let (opts, git, tag, base, clock, key) = (p.opts, p.git, p.tag, p.base, p.clock, p.key);
    let token = git_token(&opts).cloned();
    let pacer = opts.write_pace.clone().map(|pace| {
        let store = PaceStore::new(git.clone(), ledger_of(&opts), token.clone(), &tag);
        LedgerPacer::new(pace, store)
    });
    let (client, status_client) = clients(&opts, agent_token, clock.deadline, pacer.as_ref())?;
    let leases = LeaseStore::new(git.clone(), &opts.remote, token, &key, opts.priority, &tag)
        .with_poll(base.policy.agent.poll_max);
    Ok(Run {
        max_rounds: opts
            .repair_rounds
            .unwrap_or(base.policy.agent.repair_rounds),
        mark: marker(&key),
        head_local: format!("refs/agent-gate/{tag}/head"),
        leases: tokio::sync::Mutex::new(leases),
        opts,
        git,
        tasks: tasks(&client),
        client,
        status_client,
        policy: base.policy,
        scope: p.scope,
        key,
        prompt: p.prompt,
        base_branch: base.branch,
        base_rev: base.rev,
        shutdown,
        clock,
        pacer,
    })
}

/// Say which task the run gates, and record it in the report and the audit record
/// (admission, the task and the states it went through so far).
fn announce<T: TaskApi>(
    run: &Run<T>,
    task: &Task,
    attached: bool,
    report: &mut Report,
    timeline: &[TimelineEntry],
    progress: &mut (dyn Write + Send),
) {
    let _ = writeln!(
        progress,
        "agent-gate: {} task {} on {} (key {}){}",
        if attached { "attached to" } else { "started" },
        task.id,
        run.opts.repository,
        run.key,
        task.html_url
            .as_deref()
            .map(|u| format!(" — {u}"))
            .unwrap_or_default()
    );
    if let Some(info) = report.task.as_mut() {
        info.id.clone_from(&task.id);
        info.url.clone_from(&task.html_url);
        info.state = task.state.to_string();
        info.attached = attached;
    }
    run.opts.audit.admission(report);
    if let Some(info) = &report.task {
        run.opts.audit.task(info, timeline);
    }
}

/// The task index learns the pull request the task opened (review capacity counts it)
/// and, under a daily budget, once its sessions ended, what they cost (the budget then
/// counts the task without reading it), from the task as the rounds last saw it. Best
/// effort.
async fn record_in_index<T: TaskApi>(run: &Run<T>, report: &Report, last_seen: Option<&Task>) {
    let Some(info) = &report.task else {
        return;
    };
    if info.id.is_empty() {
        return;
    }
    let spent = last_seen
        .filter(|_| !BudgetLimits::from_agent(&run.policy.agent).is_unlimited())
        .filter(|task| task.id == info.id && task.sessions.is_some())
        .filter(|task| !matches!(task.state, TaskState::Queued | TaskState::InProgress))
        .map(TaskSpend::of);
    if info.pr_number.is_none() && spent.is_none() {
        return;
    }
    let now = crate::flow::admission::epoch_now();
    if let Err(e) = run
        .leases
        .lock()
        .await
        .record_task(&info.id, info.pr_number, spent, now)
    {
        tracing::warn!(error = %e, "the task could not be recorded in the task index");
    }
}

/// Inputs of a run that make no sense together.
#[derive(Debug, thiserror::Error)]
enum InputError {
    #[error(
        "an instruction is required (input `instruction`, or `task-id` to attach to a running task)"
    )]
    NoInstruction,
    #[error(
        "a token is required (input `token`): a user token with \"Agent tasks\" read and write; GitHub refuses installation tokens such as GITHUB_TOKEN for this API"
    )]
    NoToken,
}

/// What a run whose inputs make sense will do: print its prompt, or start (or attach to) a
/// task with the agent token.
#[derive(Debug, Clone)]
enum Mode {
    DryRun,
    Live(Token),
}

/// The run's [`Mode`], when its inputs make sense: an instruction (or a task to attach to),
/// and a token unless it is a dry run.
fn check_inputs(opts: &RunOptions) -> Result<Mode, InputError> {
    if opts.instruction.trim().is_empty() && opts.task_id.is_none() {
        return Err(InputError::NoInstruction);
    }
    match (&opts.token, opts.dry_run) {
        (_, true) => Ok(Mode::DryRun),
        (Some(token), false) => Ok(Mode::Live(token.clone())),
        (None, false) => Err(InputError::NoToken),
    }
}

/// The agent-tasks client (with `token`, bounded by `deadline`) and the client for
/// statuses, labels and comments (with `github-token` when given and usable, else the
/// same token, unbounded).
fn clients(
    opts: &RunOptions,
    token: Token,
    deadline: Instant,
    pacer: Option<&LedgerPacer>,
) -> Result<(Client, Client), ApiError> {
    // Every write of the run is paced, with either token: the two are often one user's,
    // and GitHub's content-creation limits are the user's.
    let slug = &opts.repository;
    let config = |token: Token| {
        let mut cfg =
            ClientConfig::new(token, slug.owner(), slug.name()).with_api_url(opts.api_url.as_str());
        cfg.request_timeout = opts.request_timeout;
        cfg.pacer = pacer.map(|p| Arc::new(p.clone()) as Arc<dyn WritePacer>);
        cfg
    };
    let client = Client::new(config(token))?;
    let status_client = match &opts.github_token {
        Some(t) => Client::new(config(t.clone())).unwrap_or_else(|_| client.clone()),
        None => client.clone(),
    };
    Ok((client.with_deadline(deadline), status_client))
}

/// The review gate: a commit status on the gated commit of the pull request and one summary
/// comment (updated, never duplicated), with the token that may. Best effort: it never
/// changes the verdict; what it did goes to the report's notes.
async fn review_gate<T: TaskApi>(run: &Run<T>, report: &mut Report) {
    let opts = &run.opts;
    let mut masker = crate::adapters::actions::Masker::new();
    for token in opts.token.iter().chain(&opts.github_token) {
        masker.register(token.expose());
    }
    let run_url = crate::adapters::actions::ActionsEnv::from_vars(
        opts.gate_env
            .iter()
            .filter_map(|(k, v)| Some((k.to_str()?.to_string(), v.to_str()?.to_string()))),
    )
    .run_url();
    let review_opts = crate::flow::ReviewOptions::new(
        run.policy.report.status_context.clone(),
        run.policy.report.comment,
        run_url,
        masker,
    );
    let record = crate::flow::review(&run.status_client, report, &review_opts).await;
    report.notes.extend(record.summary_lines());
}
