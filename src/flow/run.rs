//! `agent-gate run`: the whole flow of DESIGN §1, in order — check the inputs, have
//! `fetch.rs` fetch the base and read the policy there, derive the key and prompt, build the
//! clients, hand over to `start.rs` to attach to the run's task or (within the daily budget,
//! once admitted under `agent.max-concurrent-tasks`) start it, then to `round.rs` for the
//! rounds (polled in `session.rs`, gated in `head.rs`); last the review gate. Every failure
//! becomes a verdict in the [`Report`]. The inputs' type is `options.rs`'s.

use std::io::Write;
use std::sync::Arc;

use tokio::time::Instant;

use crate::budget::{BudgetLimits, TaskSpend};
use crate::flow::check::{config_error, narrow};
use crate::flow::ending::{api_error, finish_with, fmt_secs};
use crate::flow::fetch::{Base, PrivateRefs, fetch_base, git_token};
use crate::flow::options::RunOptions;
use crate::flow::round::{RoundContext, gate_rounds};
use crate::flow::start::{StartContext, start_task};
use crate::git::Git;
use crate::github::types::TaskState;
use crate::github::{ApiError, Client, ClientConfig, WritePacer};
use crate::lease::LeaseStore;
use crate::pace::{LedgerPacer, PaceStore};
use crate::policy::Policy;
use crate::prompt::{KeyInputs, build_prompt, derive_key, marker, prompt_hash};
use crate::report::{Report, TaskInfo, TimelineEntry, Verdict};
use crate::shutdown::Shutdown;

/// Run the whole gate. `progress` receives one line per state change, heartbeats while
/// waiting, and a last line with the verdict. Never panics; every failure is a verdict.
pub async fn run(
    opts: RunOptions,
    shutdown: Shutdown,
    progress: &mut (dyn Write + Send),
) -> Report {
    let started = Instant::now();
    opts.audit.trigger();
    let repo = opts.repo.clone();
    let mut report = Box::pin(run_gate(opts, shutdown, progress, started)).await;
    // What git wrote as root into the runner's repository (fetched objects, private refs,
    // the admission notes) is the runner's again.
    if let Ok(git_dir) = Git::new(&repo).common_dir()
        && let Err(e) = crate::ownership::give_back(&git_dir)
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

async fn run_gate(
    opts: RunOptions,
    shutdown: Shutdown,
    progress: &mut (dyn Write + Send),
    started: Instant,
) -> Report {
    let mut report = Report::new(Verdict::Passed);
    report.policy = Some(opts.policy_path.clone());

    // 1. Inputs.
    let slug = match check_inputs(&opts) {
        Ok(r) => r,
        Err(e) => return config_error(report, e.to_string()),
    };
    let git = Git::new(&opts.repo);
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let mut refs = PrivateRefs {
        git: &git,
        names: Vec::new(),
    };

    // 2. The base, fetched into a private ref; the policy is read there.
    let base_local = format!("refs/agent-gate/{tag}/base");
    let Base {
        branch: base_branch,
        rev: base_rev,
        policy,
    } = match fetch_base(&git, &opts, &base_local, &mut refs) {
        Ok(b) => b,
        Err(e) => return config_error(report, e.to_string()),
    };
    report.base = Some(base_branch.clone());

    // 3. Admission.
    if !policy.repositories.is_empty()
        && !policy
            .repositories
            .iter()
            .any(|r| r.eq_ignore_ascii_case(&opts.repository))
    {
        return config_error(
            report,
            format!(
                "the policy does not list repository `{}` under `repositories` ({})",
                opts.repository,
                policy.repositories.join(", ")
            ),
        );
    }
    let scope = match narrow(&policy, &opts.scope) {
        Ok(s) => s,
        Err(e) => return config_error(report, e.to_string()),
    };
    let timeout = opts.timeout.unwrap_or(policy.agent.timeout);
    let deadline = started + timeout;
    let task_base = base_branch.clone();
    let key_inputs = KeyInputs {
        instruction: opts.instruction.clone(),
        ..opts.key_inputs.clone()
    };
    let key = derive_key(opts.task_key.as_deref(), &key_inputs);
    let mark = marker(&key);
    let prompt = build_prompt(&opts.instruction, &policy, &scope, &key);
    report.task = Some(TaskInfo {
        key: key.clone(),
        prompt_sha256: Some(prompt_hash(&prompt)),
        instruction: Some(opts.instruction.clone()),
        state: "not-started".to_string(),
        ..TaskInfo::default()
    });

    if opts.dry_run {
        let _ = writeln!(
            progress,
            "agent-gate: dry run — nothing is started. The task would be created on {} (base {task_base}) with this prompt:\n{prompt}",
            opts.repository
        );
        return finish_with(
            report,
            Verdict::DryRun,
            format!("dry run: no task was started (key {key}, base {task_base})"),
        );
    }

    // 4. Attach, or check the budget, wait for capacity and start.
    // The fleet's write pace (`write-pace`), kept on the ledger's remote.
    let pacer = opts.write_pace.clone().map(|pace| {
        let ledger = ledger_of(&opts);
        let store = PaceStore::new(
            git.clone(),
            ledger,
            git_token(&opts).map(str::to_string),
            &tag,
        );
        LedgerPacer::new(pace, store)
    });
    let (client, status_client) =
        match clients(&opts, slug.owner(), slug.name(), deadline, pacer.as_ref()) {
            Ok(c) => c,
            Err(e) => return api_error(report, "cannot build the API client", &e),
        };
    let mut timeline: Vec<TimelineEntry> = Vec::new();
    // The admission lock and lease on the remote (issue 8); the lease is given back when
    // this store is dropped, at the end of the run.
    // The same refs hold the task index, which every run reads and writes.
    let leases = Some(tokio::sync::Mutex::new(
        LeaseStore::new(
            git.clone(),
            &opts.remote,
            git_token(&opts).map(str::to_string),
            &key,
            opts.priority,
            &tag,
        )
        .with_poll(policy.agent.poll_max),
    ));
    let start = StartContext {
        client: &client,
        opts: &opts,
        policy: &policy,
        prompt: &prompt,
        mark: &mark,
        key: &key,
        base: &task_base,
        shutdown: &shutdown,
        started,
        deadline,
        timeout,
    };
    let mut store = match &leases {
        Some(m) => Some(m.lock().await),
        None => None,
    };
    let started_task = start_task(
        &start,
        store.as_deref_mut(),
        &mut report,
        &mut timeline,
        progress,
    )
    .await;
    drop(store);
    let (task, attached) = match started_task {
        Ok(t) => t,
        Err(done) => return *done,
    };
    let _ = writeln!(
        progress,
        "agent-gate: {} task {} on {} (key {key}){}",
        if attached { "attached to" } else { "started" },
        task.id,
        opts.repository,
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
    // The audit record so far: admission, the task and the states it went through.
    opts.audit.admission(&report);
    if let Some(info) = &report.task {
        opts.audit.task(info, &timeline);
    }

    // 5–8. Poll, collect and gate; then repair rounds while the policy allows them.
    let ctx = RoundContext {
        opts: &opts,
        git: &git,
        client: &client,
        status_client: &status_client,
        policy: &policy,
        scope: &scope,
        key: &key,
        base_branch: &base_branch,
        base_rev: &base_rev,
        head_local: format!("refs/agent-gate/{tag}/head"),
        shutdown: &shutdown,
        started,
        timeout,
        deadline,
        max_rounds: opts.repair_rounds.unwrap_or(policy.agent.repair_rounds),
        leases: leases.as_ref(),
    };
    let mut report = gate_rounds(&ctx, task, attached, report, timeline, progress, &mut refs).await;
    drop(refs);
    // The task index learns the pull request the task opened (review capacity counts it)
    // and, once its sessions ended, what they cost (the daily budget then counts it without
    // reading it): one read of the task.
    if let (Some(leases), Some(info)) = (&leases, &report.task) {
        record_in_index(leases, &client, &policy, info).await;
    }

    // 8. The review gate, on the pull request; best effort. A run interrupted by a signal
    // skips it (time is short).
    if shutdown.fired().is_none() && report.task.as_ref().is_some_and(|t| t.pr_number.is_some()) {
        review_gate(&opts, &policy, &status_client, &mut report).await;
    }
    if let (Some(pacer), Some(pace)) = (&pacer, &opts.write_pace) {
        let (writes, waited) = pacer.waited();
        report.notes.push(format!(
            "write pace {pace} (ledger on {}): {writes} write(s) timed, {} waited in all",
            ledger_of(&opts),
            fmt_secs(waited)
        ));
    }
    report
}

/// Where the run's write-pace ledger is: `pace-ledger`, else the run's remote.
fn ledger_of(opts: &RunOptions) -> &str {
    opts.pace_ledger.as_deref().unwrap_or(&opts.remote)
}

/// The task index learns the pull request the task opened (review capacity counts it)
/// and, under a daily budget, once its sessions ended, what they cost (the budget then
/// counts the task without reading it): one read of the task. Best effort.
async fn record_in_index(
    leases: &tokio::sync::Mutex<LeaseStore>,
    client: &Client,
    policy: &Policy,
    info: &TaskInfo,
) {
    if info.id.is_empty() {
        return;
    }
    let spent = if BudgetLimits::from_agent(&policy.agent).is_unlimited() {
        None
    } else {
        match client.get_task(&info.id).await {
            Ok(task) if !matches!(task.state, TaskState::Queued | TaskState::InProgress) => {
                Some(TaskSpend::of(&task))
            }
            _ => None,
        }
    };
    if info.pr_number.is_none() && spent.is_none() {
        return;
    }
    let now = crate::admission::epoch_now();
    if let Err(e) = leases
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
    #[error("repository {0} (set the `repository` input, --repository or GITHUB_REPOSITORY)")]
    Repository(#[from] crate::slug::SlugError),
    #[error(
        "an instruction is required (input `instruction`, or `task-id` to attach to a running task)"
    )]
    NoInstruction,
    #[error(
        "a token is required (input `token`): a user token with \"Agent tasks\" read and write; GitHub refuses installation tokens such as GITHUB_TOKEN for this API"
    )]
    NoToken,
}

/// The `owner/repo` of a run whose inputs make sense: a repository of that form, an
/// instruction (or a task to attach to), a token (unless it is a dry run).
fn check_inputs(opts: &RunOptions) -> Result<crate::slug::RepoSlug, InputError> {
    let slug = crate::slug::RepoSlug::parse(&opts.repository)?;
    if opts.instruction.trim().is_empty() && opts.task_id.is_none() {
        return Err(InputError::NoInstruction);
    }
    if opts.token.trim().is_empty() && !opts.dry_run {
        return Err(InputError::NoToken);
    }
    Ok(slug)
}

/// The agent-tasks client (with `token`, bounded by `deadline`) and the client for
/// statuses, labels and comments (with `github-token` when given and usable, else the
/// same token, unbounded).
fn clients(
    opts: &RunOptions,
    owner: &str,
    name: &str,
    deadline: Instant,
    pacer: Option<&LedgerPacer>,
) -> Result<(Client, Client), ApiError> {
    // Every write of the run is paced, with either token: the two are often one user's,
    // and GitHub's content-creation limits are the user's.
    let config = |token: &str| {
        let mut cfg =
            ClientConfig::new(token.to_string(), owner, name).with_api_url(opts.api_url.clone());
        cfg.request_timeout = opts.request_timeout;
        cfg.pacer = pacer.map(|p| Arc::new(p.clone()) as Arc<dyn WritePacer>);
        cfg
    };
    let client = Client::new(config(&opts.token))?;
    let status_client = match opts
        .github_token
        .as_deref()
        .filter(|t| !t.trim().is_empty())
    {
        Some(t) => Client::new(config(t)).unwrap_or_else(|_| client.clone()),
        None => client.clone(),
    };
    Ok((client.with_deadline(deadline), status_client))
}

/// The review gate: a commit status on the gated commit of the pull request and one summary
/// comment (updated, never duplicated), with the token that may. Best effort: it never
/// changes the verdict; what it did goes to the report's notes.
async fn review_gate(
    opts: &RunOptions,
    policy: &Policy,
    status_client: &Client,
    report: &mut Report,
) {
    let mut masker = crate::actions::Masker::new();
    masker.register(opts.token.trim());
    if let Some(t) = &opts.github_token {
        masker.register(t.trim());
    }
    let run_url = crate::actions::ActionsEnv::from_vars(
        opts.gate_env
            .iter()
            .filter_map(|(k, v)| Some((k.to_str()?.to_string(), v.to_str()?.to_string()))),
    )
    .run_url();
    let review_opts = crate::flow::ReviewOptions::new(
        policy.report.status_context.clone(),
        policy.report.comment,
        run_url,
        masker,
    );
    let record = crate::flow::review(status_client, report, &review_opts).await;
    report.notes.extend(record.summary_lines());
}
