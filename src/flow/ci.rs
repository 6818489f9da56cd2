//! A `github-checks` check: await the repository's own CI on the agent's head commit within
//! the run's deadline. The awaited names are the policy's list or, for `required`, the base
//! branch's required status checks; each is matched to the latest check run of that name or
//! the commit status of that context. The checks are read with the adaptive polling of task
//! polling (the policy's `agent.poll`: the interval grows ×1.5 while nothing changes and
//! resets on a change; every read is conditional, so an unchanged answer costs no rate
//! limit). A failure ends the wait at once with the check run's URL and summary; workflow
//! runs held at "Approve and run workflows" are explained with the repository's cloud-agent
//! configuration and fail the check or are waited for, as `on-held` says. The gate never
//! approves a run: no call here writes anything.

use std::fmt::Write as _;
use std::io::Write;
use std::time::Duration;

use tokio::time::Instant;

use crate::adapters::github::ci::{
    CheckRun, CiReadError, CombinedStatus, StatusEntry, WorkflowRun,
};
use crate::adapters::github::{ApiError, Client};
use crate::adapters::shutdown::Shutdown;
use crate::core::policy::{AwaitedChecks, CheckSpec, GitHubChecks, OnHeld};
use crate::core::report::{AwaitedCheck, AwaitedCi, CheckEntry, CheckStatus, HeldRun, Verdict};

/// Longest check-run summary kept in the report (the rest is on GitHub, at its URL).
const MAX_SUMMARY_CHARS: usize = 2_000;

/// What awaiting the repository's CI needs from the run.
pub(crate) struct CiContext<'a> {
    /// A client for the repository (the workflow token is enough: reads only).
    pub client: &'a Client,
    /// The base branch, whose required checks `required` means.
    pub base_branch: &'a str,
    /// The gate's own commit-status context: never awaited (it is set after the gate).
    pub own_context: &'a str,
    /// The agent's pull request (number, URL), for "approve it here".
    pub pull: Option<(i64, String)>,
    pub poll_initial: Duration,
    pub poll_max: Duration,
    /// The run's deadline.
    pub deadline: Instant,
}

/// How one `github-checks` check ended, and the verdict it forces beyond `checks-failed`
/// (the run's deadline: `timed-out`; an interruption: `cancelled`; an API outage).
pub(crate) struct Awaited {
    pub entry: CheckEntry,
    pub verdict: Option<Verdict>,
}

/// One awaited name, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Passed,
    Failed,
}

/// Await `github` (the check `spec`) on `sha`.
pub(crate) async fn await_checks(
    ctx: &CiContext<'_>,
    spec: &CheckSpec,
    github: &GitHubChecks,
    sha: &str,
    shutdown: &Shutdown,
    progress: &mut (dyn Write + Send),
) -> Awaited {
    let mut wait = Wait::new(ctx, spec, github, sha);
    let names = match wait.names().await {
        Ok(names) => names,
        Err(done) => return *done,
    };
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    let _ = writeln!(
        progress,
        "agent-gate: check `{}`: awaiting {} on {}",
        spec.name,
        quoted.join(", "),
        short(sha)
    );
    let limit = github
        .timeout
        .map_or(ctx.deadline, |t| (wait.started + t).min(ctx.deadline));
    let mut interval = ctx.poll_initial;
    loop {
        let now = match wait.read(&names, shutdown, progress).await {
            Ok(now) => now,
            Err(done) => return *done,
        };
        if now.changed {
            interval = ctx.poll_initial;
        }
        if let Some(done) = wait.decided(&now.checks) {
            return done;
        }
        wait.look_for_held(progress).await;
        if !wait.seen.held.is_empty() && github.on_held == OnHeld::Fail {
            return wait.held_fails();
        }
        if Instant::now() >= limit {
            return wait.out_of_time(&now.checks, limit >= ctx.deadline);
        }
        let wake = (Instant::now() + interval).min(limit);
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            _ = shutdown.wait() => return wait.interrupted(),
        }
        interval = interval
            .mul_f64(1.5)
            .min(ctx.poll_max)
            .max(ctx.poll_initial);
    }
}

/// One read of the awaited checks.
struct Read {
    checks: Vec<AwaitedCheck>,
    /// Something differs from the read before (not on the first read).
    changed: bool,
}

/// The state of one wait: what the report will show, and when it started.
struct Wait<'a> {
    ctx: &'a CiContext<'a>,
    spec: &'a CheckSpec,
    github: &'a GitHubChecks,
    sha: &'a str,
    started: Instant,
    seen: AwaitedCi,
    /// Since when runs have been held for approval, while they are.
    held_since: Option<Instant>,
}

impl<'a> Wait<'a> {
    fn new(
        ctx: &'a CiContext<'a>,
        spec: &'a CheckSpec,
        github: &'a GitHubChecks,
        sha: &'a str,
    ) -> Wait<'a> {
        Wait {
            ctx,
            spec,
            github,
            sha,
            started: Instant::now(),
            seen: AwaitedCi {
                sha: sha.to_string(),
                ..AwaitedCi::default()
            },
            held_since: None,
        }
    }

    /// The check's entry, with everything seen.
    fn end(
        self,
        status: CheckStatus,
        detail: String,
        tail: String,
        verdict: Option<Verdict>,
    ) -> Awaited {
        let took = millis(self.started.elapsed());
        Awaited {
            entry: CheckEntry {
                name: self.spec.name.clone(),
                required: self.spec.required,
                status,
                detail: Some(detail),
                duration_ms: took,
                output_tail: tail,
                truncated_bytes: 0,
                github: Some(AwaitedCi {
                    waited_ms: took,
                    ..self.seen
                }),
            },
            verdict,
        }
    }

    /// The names to await: the policy's, or the base branch's required checks; never the
    /// gate's own status. `Err` ends the check (nothing to await, or the rules unreadable).
    async fn names(&mut self) -> Result<Vec<String>, Box<Awaited>> {
        let mut names = match &self.github.awaited {
            AwaitedChecks::Named(names) => {
                self.seen.source.push("the policy".to_string());
                names.clone()
            }
            AwaitedChecks::Required => self.required().await?,
        };
        let own = self.ctx.own_context;
        if let Some(at) = names.iter().position(|n| n == own) {
            names.remove(at);
            self.seen.source.push(format!(
                "`{own}` (agent-gate's own status) is not awaited: the gate sets it after this check"
            ));
        }
        if names.is_empty() {
            let detail = "the only awaited check is agent-gate's own status".to_string();
            return Err(Box::new(self.take().end(
                CheckStatus::Skipped,
                detail,
                String::new(),
                None,
            )));
        }
        Ok(names)
    }

    /// The base branch's required status checks; none at all is `unavailable`.
    async fn required(&mut self) -> Result<Vec<String>, Box<Awaited>> {
        let branch = self.ctx.base_branch;
        let required = match self.ctx.client.required_checks(branch).await {
            Ok(required) => required,
            Err(e) => return Err(Box::new(self.take().read_failed(&e))),
        };
        self.seen.source.clone_from(&required.sources);
        self.seen.source.extend(required.unreadable.iter().cloned());
        if !required.contexts.is_empty() {
            return Ok(required.contexts);
        }
        let why = if required.unreadable.is_empty() {
            String::new()
        } else {
            format!(" ({})", required.unreadable.join("; "))
        };
        let detail = format!(
            "`github-checks: required`, but the base branch `{branch}` has no required status checks{why}: name the checks to await, or require them in a ruleset or branch protection"
        );
        Err(Box::new(self.take().end(
            CheckStatus::Unavailable,
            detail,
            String::new(),
            None,
        )))
    }

    /// Read the check runs and statuses of the commit; report what changed.
    async fn read(
        &mut self,
        names: &[String],
        shutdown: &Shutdown,
        progress: &mut (dyn Write + Send),
    ) -> Result<Read, Box<Awaited>> {
        self.seen.polls += 1;
        let client = self.ctx.client;
        let read = tokio::select! {
            r = async { Ok::<_, CiReadError>((client.list_check_runs(self.sha).await?, client.combined_status(self.sha).await?)) } => r,
            _ = shutdown.wait() => return Err(Box::new(self.take().interrupted())),
        };
        let (runs, statuses) = read.map_err(|e| Box::new(self.take().read_failed(&e)))?;
        let checks: Vec<AwaitedCheck> = names
            .iter()
            .map(|n| classify_name(n, &runs, &statuses))
            .collect();
        let first = self.seen.checks.is_empty();
        for c in checks.iter().filter(|c| !self.seen.checks.contains(c)) {
            let _ = writeln!(
                progress,
                "agent-gate: check `{}`: \"{}\" {}",
                self.spec.name,
                c.name,
                describe(c)
            );
        }
        let changed = !first && checks != self.seen.checks;
        self.seen.checks.clone_from(&checks);
        Ok(Read { checks, changed })
    }

    /// Failed at the first failure, passed when every check passed; `None` while pending.
    fn decided(&mut self, now: &[AwaitedCheck]) -> Option<Awaited> {
        let states: Vec<State> = now.iter().map(state_of).collect();
        if !states.contains(&State::Pending) {
            self.released();
        }
        if let Some(at) = states.iter().position(|s| *s == State::Failed) {
            let detail = format!("\"{}\" {}", now[at].name, describe(&now[at]));
            let tail = failed_tail(now, &states);
            return Some(self.take().end(CheckStatus::Failed, detail, tail, None));
        }
        if states.iter().all(|s| *s == State::Passed) {
            let detail = format!(
                "{} on {}",
                match now.len() {
                    1 => "1 check passed".to_string(),
                    n => format!("all {n} checks passed"),
                },
                short(self.sha)
            );
            return Some(
                self.take()
                    .end(CheckStatus::Passed, detail, String::new(), None),
            );
        }
        None
    }

    /// While something is pending: the commit's workflow runs held for approval, explained
    /// (who must approve, where, why) the first time.
    async fn look_for_held(&mut self, progress: &mut (dyn Write + Send)) {
        self.seen.held = match self.ctx.client.workflow_runs(self.sha).await {
            Ok(runs) => held_runs(&runs),
            Err(e) => {
                let note = format!("whether runs are held for approval is unknown: {e}");
                if !self.seen.notes.contains(&note) {
                    self.seen.notes.push(note);
                }
                Vec::new()
            }
        };
        if self.seen.held.is_empty() {
            self.released();
            return;
        }
        if self.held_since.is_none() {
            self.held_since = Some(Instant::now());
        }
        if self.seen.approval.is_none() {
            self.seen.approval = Some(approval_text(self.ctx).await);
            let _ = writeln!(
                progress,
                "agent-gate: check `{}`: {} held for approval — {}",
                self.spec.name,
                held_list(&self.seen.held),
                self.seen.approval.as_deref().unwrap_or_default()
            );
        }
    }

    /// Held runs no longer are: note how long they were.
    fn released(&mut self) {
        if let Some(since) = self.held_since.take() {
            self.seen.held.clear();
            self.seen.notes.push(format!(
                "workflow runs were held for approval for {} s, then approved by a person",
                since.elapsed().as_secs()
            ));
        }
    }

    /// `on-held: fail` with runs held.
    fn held_fails(self) -> Awaited {
        let detail = format!(
            "held for approval: {} (on-held: fail; set `on-held: wait` to wait for the approval within the deadline)",
            held_list(&self.seen.held)
        );
        let tail = self.seen.approval.clone().unwrap_or_default();
        self.end(CheckStatus::Failed, detail, tail, None)
    }

    /// The deadline (or the check's `timeout`) passed with checks pending.
    fn out_of_time(self, now: &[AwaitedCheck], by_deadline: bool) -> Awaited {
        let states: Vec<State> = now.iter().map(state_of).collect();
        let detail = pending_text(now, &states, &self.seen, self.sha, by_deadline, self.github);
        let tail = self.seen.approval.clone().unwrap_or_default();
        let verdict = by_deadline.then_some(Verdict::TimedOut);
        self.end(CheckStatus::TimedOut, detail, tail, verdict)
    }

    fn interrupted(self) -> Awaited {
        let detail = "the gate was interrupted while awaiting the repository's checks".to_string();
        self.end(
            CheckStatus::Cancelled,
            detail,
            String::new(),
            Some(Verdict::Cancelled),
        )
    }

    /// A read that failed: a missing permission is the repository's setup (`check-error`),
    /// a rate-limit wait past the deadline `timed-out`, anything else an API failure.
    fn read_failed(self, e: &CiReadError) -> Awaited {
        let (status, detail, verdict) = if e.is_permission() {
            (CheckStatus::Unavailable, e.to_string(), None)
        } else if matches!(e.source, ApiError::WaitPastDeadline { .. }) {
            (
                CheckStatus::TimedOut,
                format!(
                    "the run's deadline passed before the repository's checks could be read again: {e}"
                ),
                Some(Verdict::TimedOut),
            )
        } else {
            (CheckStatus::Error, e.to_string(), Some(Verdict::ApiError))
        };
        self.end(status, detail, String::new(), verdict)
    }

    /// Move the wait out of a `&mut` (for the methods that end it).
    fn take(&mut self) -> Wait<'a> {
        Wait {
            seen: std::mem::take(&mut self.seen),
            held_since: self.held_since.take(),
            ..*self
        }
    }
}

/// The latest check run named `name` (the highest id when several), else the status of
/// that context, else missing.
fn classify_name(name: &str, runs: &[CheckRun], statuses: &CombinedStatus) -> AwaitedCheck {
    if let Some(run) = runs.iter().filter(|r| r.name == name).max_by_key(|r| r.id) {
        return AwaitedCheck {
            name: name.to_string(),
            kind: "check-run".to_string(),
            state: run.status.clone(),
            conclusion: run.conclusion.clone(),
            url: run.html_url.clone().or_else(|| run.details_url.clone()),
            summary: run_summary(run),
            duration_ms: span_ms(run.started_at.as_deref(), run.completed_at.as_deref()),
        };
    }
    if let Some(status) = statuses.statuses.iter().find(|s| s.context == name) {
        return status_check(name, status);
    }
    AwaitedCheck {
        name: name.to_string(),
        kind: "missing".to_string(),
        state: "missing".to_string(),
        conclusion: None,
        url: None,
        summary: None,
        duration_ms: None,
    }
}

fn status_check(name: &str, status: &StatusEntry) -> AwaitedCheck {
    let done = status.state != "pending";
    AwaitedCheck {
        name: name.to_string(),
        kind: "status".to_string(),
        state: status.state.clone(),
        conclusion: None,
        url: status.target_url.clone(),
        summary: status.description.clone().filter(|d| !d.is_empty()),
        duration_ms: if done {
            span_ms(status.created_at.as_deref(), status.updated_at.as_deref())
        } else {
            None
        },
    }
}

fn run_summary(run: &CheckRun) -> Option<String> {
    let output = run.output.as_ref()?;
    let text = [output.title.as_deref(), output.summary.as_deref()]
        .into_iter()
        .flatten()
        .filter(|t| !t.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    if text.is_empty() {
        return None;
    }
    Some(if text.chars().count() > MAX_SUMMARY_CHARS {
        let cut: String = text.chars().take(MAX_SUMMARY_CHARS).collect();
        format!("{cut}…")
    } else {
        text
    })
}

fn state_of(c: &AwaitedCheck) -> State {
    match (c.kind.as_str(), c.state.as_str(), c.conclusion.as_deref()) {
        ("check-run", "completed", Some("success" | "neutral" | "skipped"))
        | ("status", "success", _) => State::Passed,
        // failure, cancelled, timed_out, action_required, stale, or none at all.
        ("check-run", "completed", _) | ("status", "failure" | "error", _) => State::Failed,
        _ => State::Pending,
    }
}

fn describe(c: &AwaitedCheck) -> String {
    let mut out = match (c.kind.as_str(), c.conclusion.as_deref()) {
        ("missing", _) => "has not appeared".to_string(),
        (_, Some(conclusion)) => format!("completed: {conclusion}"),
        _ => c.state.clone(),
    };
    if let Some(ms) = c.duration_ms {
        #[allow(clippy::cast_precision_loss, reason = "display only")]
        let secs = ms as f64 / 1000.0;
        let _ = write!(out, " in {secs:.0} s");
    }
    if let Some(url) = &c.url {
        let _ = write!(out, " ({url})");
    }
    out
}

/// The output the report and a repair prompt show for a failed wait: each failed check's
/// name, URL and summary.
fn failed_tail(now: &[AwaitedCheck], states: &[State]) -> String {
    let mut out = String::new();
    for (c, _) in now.iter().zip(states).filter(|(_, s)| **s == State::Failed) {
        let _ = writeln!(out, "{}: {}", c.name, describe(c));
        if let Some(summary) = &c.summary {
            out.push_str(summary);
            out.push('\n');
        }
    }
    out
}

fn held_runs(runs: &[WorkflowRun]) -> Vec<HeldRun> {
    runs.iter()
        .filter(|r| r.is_held())
        .map(|r| HeldRun {
            name: r.name.clone().unwrap_or_else(|| format!("run {}", r.id)),
            url: r.html_url.clone(),
        })
        .collect()
}

fn held_list(held: &[HeldRun]) -> String {
    let runs = held
        .iter()
        .map(|h| format!("\"{}\" ({})", h.name, h.url))
        .collect::<Vec<_>>()
        .join(", ");
    match held.len() {
        1 => format!("the workflow run {runs} is"),
        _ => format!("the workflow runs {runs} are"),
    }
}

/// Who must approve held runs, where, and why they are held.
async fn approval_text(ctx: &CiContext<'_>) -> String {
    let place = match &ctx.pull {
        Some((number, url)) => format!("on pull request #{number} ({url})"),
        None => "on the agent's pull request".to_string(),
    };
    let who = format!(
        "a person with write access to the repository must click \"Approve and run workflows\" {place}; agent-gate never approves runs itself"
    );
    match ctx.client.agent_configuration().await {
        Ok(cfg) if cfg.require_actions_workflow_approval == Some(true) => format!(
            "{who}. GitHub holds workflow runs on Copilot's pushes because the repository's cloud-agent configuration has `require_actions_workflow_approval: true` (GitHub's default); a repository admin can turn it off in the repository's settings (Copilot → Cloud agent)"
        ),
        Ok(cfg) if cfg.require_actions_workflow_approval == Some(false) => format!(
            "{who}. The repository's cloud-agent configuration does not require approval (`require_actions_workflow_approval: false`), so the repository's Actions settings for outside contributors hold these runs"
        ),
        Ok(_) => format!("{who}. The cloud-agent configuration does not say why they are held"),
        Err(e) => format!("{who}. Why they are held could not be read: {e}"),
    }
}

fn pending_text(
    now: &[AwaitedCheck],
    states: &[State],
    seen: &AwaitedCi,
    sha: &str,
    by_deadline: bool,
    github: &GitHubChecks,
) -> String {
    let when = if by_deadline {
        "the run's deadline passed".to_string()
    } else {
        format!(
            "its timeout of {} passed",
            crate::core::policy::format_duration(github.timeout.unwrap_or_default())
        )
    };
    let mut parts: Vec<String> = Vec::new();
    let missing: Vec<String> = now
        .iter()
        .filter(|c| c.kind == "missing")
        .map(|c| format!("\"{}\"", c.name))
        .collect();
    if !missing.is_empty() {
        parts.push(format!(
            "{} never appeared on {} (no check run of that name, no status of that context: is the name spelled as GitHub shows it, and does a workflow run on the agent's pull requests?)",
            missing.join(", "),
            short(sha)
        ));
    }
    let waiting: Vec<String> = now
        .iter()
        .zip(states)
        .filter(|(c, s)| **s == State::Pending && c.kind != "missing")
        .map(|(c, _)| format!("\"{}\" {}", c.name, describe(c)))
        .collect();
    if !waiting.is_empty() {
        parts.push(format!("still waiting: {}", waiting.join(", ")));
    }
    if !seen.held.is_empty() {
        parts.push(format!("held for approval: {}", held_list(&seen.held)));
    }
    format!(
        "{when} before the repository's checks finished: {}",
        parts.join("; ")
    )
}

fn span_ms(from: Option<&str>, to: Option<&str>) -> Option<u64> {
    let from: jiff::Timestamp = from?.parse().ok()?;
    let to: jiff::Timestamp = to?.parse().ok()?;
    let ms = to.as_millisecond().checked_sub(from.as_millisecond())?;
    u64::try_from(ms).ok()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}
