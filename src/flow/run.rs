//! `agent-gate run`: the whole flow of DESIGN §1 — load inputs and the policy from the base
//! ref, hand over to `start.rs` to attach to the run's task or (within the daily budget, once
//! admitted under `agent.max-concurrent-tasks`) start it, then to `round.rs`, which runs the
//! rounds (each polled to the deadline in `session.rs` and gated in `head.rs` with the steps
//! `check` uses); last the review gate. Every failure becomes a verdict in the [`Report`].

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use tokio::time::Instant;

use crate::admission::{AdmissionLimits, Priority};
use crate::audit::AuditStream;
use crate::flow::check::{config_error, load_policy_at, narrow};
use crate::flow::round::{RoundContext, gate_rounds};
use crate::flow::start::{StartContext, start_task};
use crate::git::Git;
use crate::github::{ApiError, Client, ClientConfig};
use crate::lease::LeaseStore;
use crate::prompt::{KeyInputs, build_prompt, derive_key, marker, prompt_hash};
use crate::report::{Report, TaskInfo, TimelineEntry, Verdict};
use crate::shutdown::Shutdown;

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
    /// How long one API request may take before it is abandoned (and retried when it is
    /// idempotent); 30 s by default.
    pub request_timeout: Duration,
    /// The audit record, written as the run goes (none by default; the publisher finishes
    /// it).
    pub audit: AuditStream,
}

impl RunOptions {
    /// Options for `repository` (`owner/repo`) worked on in the clone `repo`, against the API
    /// at `api_url` with `token`; everything else as the CLI's defaults (remote `origin`,
    /// the default policy path, no instruction, no overrides, normal priority, a heartbeat
    /// every 30 s, a 30 s request timeout). Set the rest with struct update syntax.
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
            request_timeout: Duration::from_secs(30),
            audit: AuditStream::none(),
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

/// A policy error names the base branch rather than the private ref's commit id.
fn base_named(message: &str, rev: &str, branch: &str) -> String {
    let short: String = rev.chars().take(12).collect();
    message.replace(&format!("`{rev}`"), &format!("`{branch}` ({short})"))
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
    let config = |token: &str| {
        let mut cfg =
            ClientConfig::new(token.to_string(), owner, name).with_api_url(opts.api_url.clone());
        cfg.request_timeout = opts.request_timeout;
        cfg
    };
    let client = match Client::new(config(&opts.token)) {
        Ok(c) => c,
        Err(e) => return api_error(report, "cannot build the API client", &e),
    };
    let status_client = match opts
        .github_token
        .as_deref()
        .filter(|t| !t.trim().is_empty())
    {
        Some(t) => Client::new(config(t)).unwrap_or_else(|_| client.clone()),
        None => client.clone(),
    };
    let client = client.with_deadline(deadline);
    let mut timeline: Vec<TimelineEntry> = Vec::new();
    // The admission lock and lease on the remote (issue 8); the lease is given back when
    // this store is dropped, at the end of the run.
    let leases = AdmissionLimits::from_policy(&policy.agent)
        .limit_for(opts.priority)
        .map(|_| {
            tokio::sync::Mutex::new(
                LeaseStore::new(
                    git.clone(),
                    &opts.remote,
                    git_token(&opts).map(str::to_string),
                    &key,
                    opts.priority,
                    &tag,
                )
                .with_poll(policy.agent.poll_max),
            )
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

/// `git fetch` of `refspecs` from the run's remote; when that fails and a token is given
/// (`github-token`, else `token`), once more with the token as an HTTP header — a workspace
/// checked out with `persist-credentials: false` has no credentials of its own. The token
/// never appears in an argument or a message.
pub(super) fn fetch_refs(
    git: &Git,
    opts: &RunOptions,
    refspecs: &[&str],
) -> Result<(), crate::git::GitError> {
    crate::git::plain_then_token(git_token(opts), |token| match token {
        None => git.fetch(&opts.remote, refspecs),
        Some(t) => git.fetch_with_token(&opts.remote, refspecs, t),
    })
    .map(drop)
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
