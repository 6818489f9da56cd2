//! `agent-gate run`: the whole flow of DESIGN §1 — load inputs and the policy from the base
//! ref, admit, attach to or start the task, poll it to the deadline, stop it when the
//! deadline passes or the gate is interrupted, fetch the agent's head, and gate the change
//! with the steps `check` uses. Every failure becomes a verdict in the [`Report`].

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use tokio::time::Instant;

use crate::flow::check::{GateContext, config_error, gate_change, load_policy_at, narrow};
use crate::git::Git;
use crate::github::types::{ArtifactRef, Task, TaskState};
use crate::github::{
    ApiError, Client, ClientConfig, PollEvent, PollOptions, PollOutcome, StatePolicy, StopOptions,
    StopReason, StopRecord, create_task_request, poll_task, since_before_now, stop, task_cost,
};
use crate::policy::{OnIdle, OnWaitingForUser, Policy};
use crate::prompt::{KeyInputs, build_prompt, derive_key, marker, prompt_hash};
use crate::report::{Report, TaskInfo, TimelineEntry, Verdict};
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
}

fn api_error(mut report: Report, context: &str, e: &ApiError) -> Report {
    report.errors.push(format!("{context}: {e}"));
    report.set_verdict(Verdict::ApiError);
    report.finish();
    report
}

fn finish_with(mut report: Report, verdict: Verdict, note: String) -> Report {
    report.notes.push(note);
    report.set_verdict(report.verdict.combine(verdict));
    report.finish();
    report
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

fn fmt_secs(d: Duration) -> String {
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
fn task_branch(task: &Task) -> Option<String> {
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
fn pushed(task: &Task) -> bool {
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

fn session_error(task: &Task) -> Option<String> {
    task.sessions.as_ref().and_then(|s| {
        s.iter()
            .rev()
            .find_map(|s| s.error.as_ref().map(|e| e.message.clone()))
    })
}

/// Private refs the gate fetches into, removed when the run ends, so the workspace's own
/// branches and HEAD are never touched.
struct PrivateRefs<'a> {
    git: &'a Git,
    names: Vec<String>,
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
    let report = run_gate(opts, shutdown, progress, started).await;
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
    let mut base_rev = match fetch_branch(&git, &opts.remote, &base_branch, &base_local, &mut refs)
    {
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
        base_rev = match fetch_branch(&git, &opts.remote, &base_branch, &base_local, &mut refs) {
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

    // 4. Attach or start.
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
    // A signal here stops the gate at once: nothing is started after it, and a create in
    // flight is abandoned (a re-run with the same key finds the task if it was made).
    let started_or_found = tokio::select! {
        biased;
        signal = shutdown.wait() => Err(signal),
        r = start_or_attach(&client, &opts, &prompt, &mark, &task_base) => Ok(r),
    };
    let (task, attached) = match started_or_found {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return api_error(report, "cannot start or find the agent task", &e),
        Err(signal) => {
            return finish_with(
                report,
                Verdict::Cancelled,
                format!(
                    "the gate was interrupted by {signal} before the task was started or found; if it was created, a re-run with the same task key ({key}) attaches to it"
                ),
            );
        }
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

    // 5. Poll to the deadline.
    let poll_opts = PollOptions {
        initial: policy.agent.poll_initial,
        max: policy.agent.poll_max,
        deadline,
        on_idle: state_policy_idle(policy.agent.on_idle),
        on_waiting_for_user: state_policy_waiting(policy.agent.on_waiting_for_user),
        jitter: 0.1,
    };
    let mut timeline: Vec<TimelineEntry> = Vec::new();
    let mut last_line = Instant::now();
    let heartbeat = opts.heartbeat;
    let outcome = {
        let timeline = &mut timeline;
        let progress = &mut *progress;
        let stop_signal = shutdown.clone();
        poll_task(
            &client,
            &task.id,
            &poll_opts,
            async move {
                stop_signal.wait().await;
            },
            move |ev| {
                let elapsed = started.elapsed();
                match ev {
                    PollEvent::StateChanged { to, at, .. } => {
                        timeline.push(TimelineEntry {
                            state: to.to_string(),
                            at: at.to_string(),
                            elapsed_s: elapsed.as_secs_f64(),
                        });
                        let _ = writeln!(
                            progress,
                            "agent-gate: task {to} (after {}, deadline in {})",
                            fmt_secs(elapsed),
                            fmt_secs(timeout.saturating_sub(elapsed))
                        );
                        last_line = Instant::now();
                    }
                    PollEvent::Heartbeat { state, .. } => {
                        if last_line.elapsed() >= heartbeat {
                            let _ = writeln!(
                                progress,
                                "agent-gate: still {state} (after {}, deadline in {})",
                                fmt_secs(elapsed),
                                fmt_secs(timeout.saturating_sub(elapsed))
                            );
                            last_line = Instant::now();
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
    let last = outcome.last().cloned().unwrap_or_else(|| task.clone());
    if let Some(info) = report.task.as_mut() {
        info.timeline = timeline;
        info.state = last.state.to_string();
        let cost = task_cost(&last);
        info.ai_credits = cost.ai_credits();
        info.premium_requests = cost.premium_requests;
        info.branch = task_branch(&last);
    }

    // 6. What the task's end means.
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
            return finish_with(
                report,
                Verdict::AgentFailed,
                format!("the task ended `{}` on GitHub's side{why}", task.state),
            );
        }
        PollOutcome::Rejected { task } => {
            return finish_with(
                report,
                Verdict::AgentFailed,
                format!(
                    "the task is `{}` and the policy says fail (agent.on-idle / agent.on-waiting-for-user)",
                    task.state
                ),
            );
        }
        PollOutcome::DeadlineReached { last } => {
            let task = last.unwrap_or(task);
            let record =
                bounded_stop(&status_client, &task, StopReason::TimedOut, &stop_opts).await;
            record_stop(&mut report, &record);
            return finish_with(
                report,
                Verdict::TimedOut,
                format!(
                    "the gate's deadline ({}) passed while the task was `{}`",
                    fmt_secs(timeout),
                    task.state
                ),
            );
        }
        PollOutcome::Interrupted { last } => {
            let task = last.unwrap_or(task);
            let _ = writeln!(
                progress,
                "agent-gate: interrupted; recording the stop of task {}",
                task.id
            );
            let record =
                bounded_stop(&status_client, &task, StopReason::Cancelled, &stop_opts).await;
            record_stop(&mut report, &record);
            let signal = shutdown.fired().unwrap_or("a signal");
            return finish_with(
                report,
                Verdict::Cancelled,
                format!(
                    "the gate was interrupted by {signal} while the task was `{}`",
                    task.state
                ),
            );
        }
        PollOutcome::ApiError { error, .. } => {
            return api_error(report, "polling the task failed", &error);
        }
    };

    // 7. Collect the agent's change.
    let Some(branch) = task_branch(&done) else {
        return no_change(
            report,
            &policy,
            "the task finished without a branch or pull request",
        );
    };
    match client.find_pull_for_branch(&branch).await {
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
    let head_local = format!("refs/agent-gate/{tag}/head");
    let head_rev = match git.fetch(
        &opts.remote,
        &[&format!("+refs/heads/{branch}:{head_local}")],
    ) {
        Ok(()) => {
            refs.names.push(head_local.clone());
            match git.rev_parse(&head_local) {
                Ok(r) => r,
                Err(e) => return config_error(report, e.to_string()),
            }
        }
        // The session names its branch from the start; without a branch or pull artifact
        // the agent never pushed it.
        Err(_) if !pushed(&done) && report.task.as_ref().is_none_or(|t| t.pr_number.is_none()) => {
            return no_change(
                report,
                &policy,
                &format!("the task finished without pushing its branch `{branch}`"),
            );
        }
        Err(e) => {
            report.errors.push(format!(
                "cannot fetch the agent's branch `{branch}` from `{}`: {e}",
                opts.remote
            ));
            report.set_verdict(Verdict::ApiError);
            report.finish();
            return report;
        }
    };
    let changes = match git.changes(&base_rev, &head_rev) {
        Ok(c) => c,
        Err(e) => return config_error(report, e.to_string()),
    };
    if changes.changes.is_empty() {
        return no_change(
            report,
            &policy,
            &format!("the agent's branch `{branch}` holds no change against `{base_branch}`"),
        );
    }
    let ctx = GateContext {
        git: &git,
        policy: &policy,
        scope: &scope,
        jobs: opts.jobs,
        gate_env: opts.gate_env.clone(),
        workspace: opts.repo.clone(),
    };
    let _ = writeln!(
        progress,
        "agent-gate: gating {} of `{branch}`{}",
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
    gate_change(&ctx, &changes, &mut report, &shutdown).await;
    drop(refs);
    report
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

async fn start_or_attach(
    client: &Client,
    opts: &RunOptions,
    prompt: &str,
    mark: &str,
    base: &str,
) -> Result<(Task, bool), ApiError> {
    if let Some(id) = opts.task_id.as_deref().filter(|i| !i.trim().is_empty()) {
        return client.get_task(id.trim()).await.map(|t| (t, true));
    }
    let window_start = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::try_from(ATTACH_WINDOW).unwrap_or_default())
        .unwrap_or_else(|_| jiff::Timestamp::now());
    if let Some(existing) = client.find_task_by_marker(mark, Some(window_start)).await? {
        return Ok((existing, true));
    }
    let mut req = create_task_request(prompt, Some(base.to_string()));
    req.model = opts.model.clone().filter(|m| !m.trim().is_empty());
    req.custom_agent = opts.custom_agent.clone().filter(|m| !m.trim().is_empty());
    let since = since_before_now(client, Duration::from_mins(5));
    client
        .create_task_idempotent(&req, mark, since)
        .await
        .map(|c| (c.task, false))
}

/// Fetch `refs/heads/<branch>` from `remote` into the private ref `local`; fall back to a
/// local branch of that name when the remote cannot be reached (a CLI run without one).
fn fetch_branch(
    git: &Git,
    remote: &str,
    branch: &str,
    local: &str,
    refs: &mut PrivateRefs<'_>,
) -> Result<String, String> {
    let spec = format!("+refs/heads/{branch}:{local}");
    match git.fetch(remote, &[&spec]) {
        Ok(()) => {
            refs.names.push(local.to_string());
            git.rev_parse(local).map_err(|e| e.to_string())
        }
        Err(fetch_err) => git
            .rev_parse(branch)
            .map_err(|_| format!("cannot fetch `{branch}` from `{remote}`: {fetch_err}")),
    }
}
