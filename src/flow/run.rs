//! `agent-gate run`: the whole flow of DESIGN §1 — load inputs and the policy from the base
//! ref, attach to the run's task or (within the daily budget, once admitted under
//! `agent.max-concurrent-tasks`) start it, then hand over to `round.rs`, which polls it to
//! the deadline, gates the agent's change with the steps `check` uses, and runs the repair
//! rounds. Every failure becomes a verdict in the [`Report`].

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use tokio::time::Instant;

use crate::admission::{Admission, AdmissionLimits, LeaseUse, Priority, WaitInfo, admit};
use crate::budget::{BudgetError, BudgetLimits, check_budget};
use crate::flow::check::{config_error, load_policy_at, narrow};
use crate::flow::round::{RoundContext, gate_rounds};
use crate::git::Git;
use crate::github::types::{ArtifactRef, Task};
use crate::github::{
    ApiError, Client, ClientConfig, StatePolicy, create_task_request, since_before_now,
};
use crate::lease::LeaseStore;
use crate::policy::{OnIdle, OnWaitingForUser, Policy};
use crate::prompt::{KeyInputs, build_prompt, derive_key, marker, prompt_hash};
use crate::report::{AdmissionRecord, Report, TaskInfo, TimelineEntry, Verdict};
use crate::shutdown::Shutdown;

/// How far back a re-run looks for the task carrying its key.
const ATTACH_WINDOW: Duration = Duration::from_hours(24 * 7);

/// Inputs of [`run`] (the Action's inputs and the CLI's flags).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The workspace: a clone of the repository.
    pub repo: PathBuf,
    /// `owner/repo` on GitHub (or the simulator).
    pub repository: String,
    /// Where the agent's branch and the base are fetched from: a remote name, URL or path.
    pub remote: String,
    pub instruction: String,
    pub scope: Vec<String>,
    pub policy_path: String,
    /// User token for the agent-tasks API.
    pub token: String,
    /// Token for statuses, labels and comments (default: `token`).
    pub github_token: Option<String>,
    pub base_ref: Option<String>,
    pub timeout: Option<Duration>,
    pub task_id: Option<String>,
    pub task_key: Option<String>,
    pub dry_run: bool,
    pub api_url: String,
    pub model: Option<String>,
    pub custom_agent: Option<String>,
    pub jobs: Option<usize>,
    /// What the idempotency key is derived from when `task_key` is not given.
    pub key_inputs: KeyInputs,
    /// The gate's environment (checks get an allow-listed subset).
    pub gate_env: Vec<(OsString, OsString)>,
    /// At most one heartbeat line this often while waiting.
    pub heartbeat: Duration,
    /// Who may take the slots `agent.reserved-for-high` keeps free.
    pub priority: Priority,
    /// Repair rounds (the `repair-rounds` input); `None`: the policy's `agent.repair-rounds`.
    pub repair_rounds: Option<u32>,
}

impl RunOptions {
    /// Options for `repository` (`owner/repo`) worked on in the clone `repo`, against the API
    /// at `api_url` with `token`; everything else as the CLI's defaults (remote `origin`,
    /// the default policy path, no instruction, no overrides, normal priority, a heartbeat
    /// every 30 s). Set the rest with struct update syntax.
    pub fn new(
        repo: impl Into<PathBuf>,
        repository: impl Into<String>,
        api_url: impl Into<String>,
        token: impl Into<String>,
    ) -> RunOptions {
        RunOptions {
            repo: repo.into(),
            repository: repository.into(),
            remote: "origin".to_string(),
            instruction: String::new(),
            scope: Vec::new(),
            policy_path: crate::policy::DEFAULT_POLICY_PATH.to_string(),
            token: token.into(),
            github_token: None,
            base_ref: None,
            timeout: None,
            task_id: None,
            task_key: None,
            dry_run: false,
            api_url: api_url.into(),
            model: None,
            custom_agent: None,
            jobs: None,
            key_inputs: KeyInputs::default(),
            gate_env: Vec::new(),
            heartbeat: Duration::from_secs(30),
            priority: Priority::Normal,
            repair_rounds: None,
        }
    }
}

/// The timeline state of a run waiting for a slot under `agent.max-concurrent-tasks`.
pub const WAITING_STATE: &str = "waiting-for-capacity";

pub(super) fn api_error(mut report: Report, context: &str, e: &ApiError) -> Report {
    report.errors.push(format!("{context}: {e}"));
    report.set_verdict(Verdict::ApiError);
    report.finish();
    report
}

pub(super) fn finish_with(mut report: Report, verdict: Verdict, note: String) -> Report {
    report.notes.push(note);
    report.set_verdict(report.verdict.combine(verdict));
    report.finish();
    report
}

pub(super) fn state_policy_idle(p: OnIdle) -> StatePolicy {
    match p {
        OnIdle::Accept => StatePolicy::Accept,
        OnIdle::Wait => StatePolicy::Wait,
        OnIdle::Fail => StatePolicy::Fail,
    }
}

pub(super) fn state_policy_waiting(p: OnWaitingForUser) -> StatePolicy {
    match p {
        OnWaitingForUser::Fail => StatePolicy::Fail,
        OnWaitingForUser::Wait => StatePolicy::Wait,
    }
}

pub(super) fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// The branch the agent worked on: the `branch` artifact, else the last session's `head_ref`.
pub(super) fn task_branch(task: &Task) -> Option<String> {
    task.artifacts
        .iter()
        .find_map(|a| match a.decode() {
            ArtifactRef::Branch { head_ref, .. } => Some(head_ref),
            _ => None,
        })
        .or_else(|| {
            task.sessions
                .as_ref()
                .and_then(|s| s.iter().rev().find_map(|s| s.head_ref.clone()))
        })
}

/// Whether the task reports a pushed branch or a pull request.
pub(super) fn pushed(task: &Task) -> bool {
    task.artifacts.iter().any(|a| {
        matches!(
            a.decode(),
            ArtifactRef::Branch { .. } | ArtifactRef::Pull { .. }
        )
    })
}

/// A policy error names the base branch rather than the private ref's commit id.
fn base_named(message: &str, rev: &str, branch: &str) -> String {
    let short: String = rev.chars().take(12).collect();
    message.replace(&format!("`{rev}`"), &format!("`{branch}` ({short})"))
}

pub(super) fn session_error(task: &Task) -> Option<String> {
    task.sessions.as_ref().and_then(|s| {
        s.iter()
            .rev()
            .find_map(|s| s.error.as_ref().map(|e| e.message.clone()))
    })
}

/// Private refs the gate fetches into, removed when the run ends, so the workspace's own
/// branches and HEAD are never touched.
pub(super) struct PrivateRefs<'a> {
    pub git: &'a Git,
    pub names: Vec<String>,
}

impl Drop for PrivateRefs<'_> {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = self.git.delete_ref(n);
        }
    }
}

/// Run the whole gate. `progress` receives one line per state change, heartbeats while
/// waiting, and a last line with the verdict. Never panics; every failure is a verdict.
pub async fn run(
    opts: RunOptions,
    shutdown: Shutdown,
    progress: &mut (dyn Write + Send),
) -> Report {
    let started = Instant::now();
    let report = Box::pin(run_gate(opts, shutdown, progress, started)).await;
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
    let Some((owner, name)) = opts
        .repository
        .split_once('/')
        .filter(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'))
    else {
        return config_error(
            report,
            format!(
                "repository `{}` is not `owner/repo` (set --repository or GITHUB_REPOSITORY)",
                opts.repository
            ),
        );
    };
    if opts.instruction.trim().is_empty() && opts.task_id.is_none() {
        return config_error(
            report,
            "an instruction is required (input `instruction`, or `task-id` to attach to a running task)",
        );
    }
    if opts.token.trim().is_empty() && !opts.dry_run {
        return config_error(
            report,
            "a token is required (input `token`): a user token with \"Agent tasks\" read and write; GitHub refuses installation tokens such as GITHUB_TOKEN for this API",
        );
    }
    let git = Git::new(&opts.repo);
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let mut refs = PrivateRefs {
        git: &git,
        names: Vec::new(),
    };

    // 2. The base, fetched into a private ref; the policy is read there.
    let mut base_branch = opts
        .base_ref
        .clone()
        .filter(|b| !b.trim().is_empty())
        .or_else(|| git.default_branch_of_remote(&opts.remote).ok().flatten())
        .unwrap_or_else(|| "main".to_string());
    let base_local = format!("refs/agent-gate/{tag}/base");
    let mut base_rev = match fetch_branch(&git, &opts, &base_branch, &base_local, &mut refs) {
        Ok(r) => r,
        Err(e) => return config_error(report, e),
    };
    let mut policy = match load_policy_at(&git, &base_rev, &opts.policy_path) {
        Ok(p) => p,
        Err(e) => return config_error(report, base_named(&e, &base_rev, &base_branch)),
    };
    // No input names the base: the policy's `agent.base-ref` does. The policy is then read
    // again there, since that branch is the base of the change.
    if opts.base_ref.is_none()
        && let Some(b) = policy.agent.base_ref.clone()
        && b != base_branch
    {
        base_branch = b;
        base_rev = match fetch_branch(&git, &opts, &base_branch, &base_local, &mut refs) {
            Ok(r) => r,
            Err(e) => {
                return config_error(
                    report,
                    format!("{e} (the policy's agent.base-ref; pass --base-ref to override)"),
                );
            }
        };
        policy = match load_policy_at(&git, &base_rev, &opts.policy_path) {
            Ok(p) => p,
            Err(e) => return config_error(report, base_named(&e, &base_rev, &base_branch)),
        };
    }
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
        Err(e) => return config_error(report, e),
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
            Verdict::Passed,
            format!("dry run: no task was started (key {key}, base {task_base})"),
        );
    }

    // 4. Attach, or check the budget, wait for capacity and start.
    let mut cfg =
        ClientConfig::new(opts.token.clone(), owner, name).with_api_url(opts.api_url.clone());
    cfg.request_timeout = Duration::from_secs(30);
    let client = match Client::new(cfg) {
        Ok(c) => c,
        Err(e) => return api_error(report, "cannot build the API client", &e),
    };
    let status_client = match opts
        .github_token
        .as_deref()
        .filter(|t| !t.trim().is_empty())
    {
        Some(t) => Client::new(
            ClientConfig::new(t.to_string(), owner, name).with_api_url(opts.api_url.clone()),
        )
        .unwrap_or_else(|_| client.clone()),
        None => client.clone(),
    };
    let client = client.with_deadline(deadline);
    let mut timeline: Vec<TimelineEntry> = Vec::new();
    // The admission lock and lease on the remote (issue 8); the lease is given back when
    // this store is dropped, at the end of the run.
    let mut leases = AdmissionLimits::from_policy(&policy.agent)
        .limit_for(opts.priority)
        .map(|_| {
            LeaseStore::new(
                git.clone(),
                &opts.remote,
                git_token(&opts).map(str::to_string),
                &key,
                opts.priority,
                &tag,
            )
            .with_poll(policy.agent.poll_max)
        });
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
    let (task, attached) = match start_task(
        &start,
        leases.as_mut(),
        &mut report,
        &mut timeline,
        progress,
    )
    .await
    {
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
    };
    let mut report = gate_rounds(&ctx, task, attached, report, timeline, progress, &mut refs).await;
    drop(refs);

    // 8. The review gate: a commit status on the gated commit of the pull request and one
    // summary comment (updated, never duplicated), with the token that may. Best effort:
    // it never changes the verdict. A run interrupted by a signal skips it (time is short).
    if shutdown.fired().is_none() && report.task.as_ref().is_some_and(|t| t.pr_number.is_some()) {
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
        let record = crate::flow::review(&status_client, &report, &review_opts).await;
        report.notes.extend(record.summary_lines());
    }
    report
}

/// What [`start_task`] needs.
struct StartContext<'a> {
    client: &'a Client,
    opts: &'a RunOptions,
    policy: &'a Policy,
    prompt: &'a str,
    mark: &'a str,
    key: &'a str,
    base: &'a str,
    shutdown: &'a Shutdown,
    started: Instant,
    deadline: Instant,
    timeout: Duration,
}

/// Attach to the run's task (`task-id`, or the task carrying the key's marker); when there
/// is none, check the daily budget, wait for capacity, and create it. A re-run that attaches
/// neither counts against the budget nor waits. `Err` is the finished report of a run that
/// ends here (over budget, never admitted, interrupted, API error).
async fn start_task(
    s: &StartContext<'_>,
    leases: Option<&mut LeaseStore>,
    report: &mut Report,
    timeline: &mut Vec<TimelineEntry>,
    progress: &mut (dyn Write + Send),
) -> Result<(Task, bool), Box<Report>> {
    let take = |r: &mut Report| std::mem::replace(r, Report::new(Verdict::Passed));
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
    let found = tokio::select! {
        biased;
        signal = s.shutdown.wait() => return Err(interrupted(take(report), signal, s.key)),
        r = find_existing(s.client, s.opts, s.mark) => r,
    };
    match found {
        Ok(Some(task)) => return Ok((task, true)),
        Ok(None) => {}
        Err(e) => {
            return Err(Box::new(api_error(
                take(report),
                "cannot start or find the agent task",
                &e,
            )));
        }
    }

    // The daily budget: refused before anything starts (and before any wait).
    let limits = BudgetLimits::from_agent(&s.policy.agent);
    if !limits.is_unlimited() {
        let checked = tokio::select! {
            biased;
            signal = s.shutdown.wait() => return Err(interrupted(take(report), signal, s.key)),
            r = check_budget(s.client, limits, since_before_now(s.client, Duration::ZERO), 1) => r,
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

    // Admission: wait for a slot under agent.max-concurrent-tasks; the wait counts against
    // the deadline.
    let limits = AdmissionLimits::from_policy(&s.policy.agent);
    if let Some(limit) = limits.limit_for(s.opts.priority) {
        let mut waited_any = false;
        let mut seen_running = 0u32;
        let mut last_line: Option<(Instant, u32)> = None;
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
                s.mark,
                s.deadline,
                s.policy.agent.poll_max,
                leases,
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
                        });
                    }
                    let due = last_line.is_none_or(|(at, running)| {
                        running != info.running || at.elapsed() >= heartbeat
                    });
                    if due {
                        let _ = writeln!(
                            progress,
                            "agent-gate: {info}; priority {} (after {}, deadline in {})",
                            s.opts.priority,
                            fmt_secs(elapsed),
                            fmt_secs(timeout.saturating_sub(elapsed))
                        );
                        last_line = Some((Instant::now(), info.running));
                    }
                },
            )
            .await
        };
        let record = |running: u32, waited: Duration, lock: Option<String>| AdmissionRecord {
            priority: s.opts.priority.to_string(),
            limit,
            running,
            waited_s: waited.as_secs_f64(),
            admitted: lock.is_some(),
            lock,
        };
        match admission {
            Admission::Admitted { waited, lease } => {
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
                report.admission = Some(record(seen_running, waited, Some(lock)));
            }
            Admission::NeverAdmitted { waited, running } => {
                report.admission = Some(record(running, waited, None));
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
                return Err(Box::new(finish_with(
                    take(report),
                    Verdict::Cancelled,
                    format!(
                        "the gate was interrupted by {signal} while waiting for capacity; nothing was started"
                    ),
                )));
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
        Ok(task) => Ok((task, false)),
        Err(e) => Err(Box::new(api_error(
            take(report),
            "cannot start or find the agent task",
            &e,
        ))),
    }
}

/// The task carrying the run's key (or named by `task-id`), if there is one.
async fn find_existing(
    client: &Client,
    opts: &RunOptions,
    mark: &str,
) -> Result<Option<Task>, ApiError> {
    if let Some(id) = opts.task_id.as_deref().filter(|i| !i.trim().is_empty()) {
        return client.get_task(id.trim()).await.map(Some);
    }
    let window_start = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::try_from(ATTACH_WINDOW).unwrap_or_default())
        .unwrap_or_else(|_| jiff::Timestamp::now());
    client.find_task_by_marker(mark, Some(window_start)).await
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

/// `git fetch` of `refspecs` from the run's remote; when that fails and a token is given
/// (`github-token`, else `token`), once more with the token as an HTTP header — a workspace
/// checked out with `persist-credentials: false` has no credentials of its own. The token
/// never appears in an argument or a message.
pub(super) fn fetch_refs(
    git: &Git,
    opts: &RunOptions,
    refspecs: &[&str],
) -> Result<(), crate::git::GitError> {
    match git.fetch(&opts.remote, refspecs) {
        Ok(()) => Ok(()),
        Err(plain) => match git_token(opts) {
            Some(t) => git
                .fetch_with_token(&opts.remote, refspecs, t)
                .map_err(|_| plain),
            None => Err(plain),
        },
    }
}

/// The token git authenticates with when plain git cannot: `github-token`, else `token`.
fn git_token(opts: &RunOptions) -> Option<&str> {
    opts.github_token
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .or_else(|| Some(opts.token.as_str()).filter(|t| !t.trim().is_empty()))
        .map(str::trim)
}

/// Fetch `refs/heads/<branch>` from `remote` into the private ref `local`; fall back to a
/// local branch of that name when the remote cannot be reached (a CLI run without one).
fn fetch_branch(
    git: &Git,
    opts: &RunOptions,
    branch: &str,
    local: &str,
    refs: &mut PrivateRefs<'_>,
) -> Result<String, String> {
    let spec = format!("+refs/heads/{branch}:{local}");
    let remote = &opts.remote;
    match fetch_refs(git, opts, &[&spec]) {
        Ok(()) => {
            refs.names.push(local.to_string());
            git.rev_parse(local).map_err(|e| e.to_string())
        }
        Err(fetch_err) => git
            .rev_parse(branch)
            .map_err(|_| format!("cannot fetch `{branch}` from `{remote}`: {fetch_err}")),
    }
}
