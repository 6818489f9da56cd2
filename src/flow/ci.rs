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

use crate::github::ci::{CheckRun, CiReadError, CombinedStatus, StatusEntry, WorkflowRun};
use crate::github::{ApiError, Client};
use crate::policy::{AwaitedChecks, CheckSpec, GitHubChecks, OnHeld};
use crate::report::{AwaitedCheck, AwaitedCi, CheckEntry, CheckStatus, HeldRun, Verdict};
use crate::shutdown::Shutdown;

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
    let started = Instant::now();
    let mut seen = AwaitedCi {
        sha: sha.to_string(),
        ..AwaitedCi::default()
    };
    let end = |status, detail: String, seen: AwaitedCi, tail: String, verdict| Awaited {
        entry: CheckEntry {
            name: spec.name.clone(),
            required: spec.required,
            status,
            detail: Some(detail),
            duration_ms: millis(started.elapsed()),
            output_tail: tail,
            truncated_bytes: 0,
            github: Some(AwaitedCi {
                waited_ms: millis(started.elapsed()),
                ..seen
            }),
        },
        verdict,
    };

    // Which names.
    let mut names = match &github.awaited {
        AwaitedChecks::Named(names) => {
            seen.source.push("the policy".to_string());
            names.clone()
        }
        AwaitedChecks::Required => match ctx.client.required_checks(ctx.base_branch).await {
            Ok(required) => {
                seen.source = required.sources;
                seen.source.extend(required.unreadable.iter().cloned());
                if required.contexts.is_empty() {
                    let why = if required.unreadable.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", required.unreadable.join("; "))
                    };
                    let detail = format!(
                        "`github-checks: required`, but the base branch `{}` has no required status checks{why}: name the checks to await, or require them in a ruleset or branch protection",
                        ctx.base_branch
                    );
                    return end(CheckStatus::Unavailable, detail, seen, String::new(), None);
                }
                required.contexts
            }
            Err(e) => return read_failed(&e, seen, &end),
        },
    };
    if let Some(at) = names.iter().position(|n| n == ctx.own_context) {
        names.remove(at);
        seen.source.push(format!(
            "`{}` (agent-gate's own status) is not awaited: the gate sets it after this check",
            ctx.own_context
        ));
        if names.is_empty() {
            return end(
                CheckStatus::Skipped,
                "the only awaited check is agent-gate's own status".to_string(),
                seen,
                String::new(),
                None,
            );
        }
    }
    let _ = writeln!(
        progress,
        "agent-gate: check `{}`: awaiting {} on {}",
        spec.name,
        names
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", "),
        short(sha)
    );

    let limit = github
        .timeout
        .map_or(ctx.deadline, |t| (started + t).min(ctx.deadline));
    let mut interval = ctx.poll_initial;
    let mut last: Vec<AwaitedCheck> = Vec::new();
    let mut explained_held = false;
    let mut held_since: Option<Instant> = None;
    loop {
        seen.polls += 1;
        let read = tokio::select! {
            r = read_checks(ctx.client, sha) => r,
            _ = shutdown.wait() => {
                let detail = "the gate was interrupted while awaiting the repository's checks".to_string();
                return end(CheckStatus::Cancelled, detail, seen, String::new(), Some(Verdict::Cancelled));
            }
        };
        let (runs, statuses) = match read {
            Ok(r) => r,
            Err(e) => return read_failed(&e, seen, &end),
        };
        let now: Vec<AwaitedCheck> = names
            .iter()
            .map(|n| classify_name(n, &runs, &statuses))
            .collect();
        let states: Vec<State> = now.iter().map(state_of).collect();
        if now != last {
            for c in now.iter().filter(|c| !last.contains(c)) {
                let _ = writeln!(
                    progress,
                    "agent-gate: check `{}`: \"{}\" {}",
                    spec.name,
                    c.name,
                    describe(c)
                );
            }
            if !last.is_empty() {
                interval = ctx.poll_initial;
            }
            last.clone_from(&now);
        }
        seen.checks.clone_from(&now);
        if !states.contains(&State::Pending)
            && let Some(since) = held_since.take()
        {
            seen.held.clear();
            seen.notes.push(format!(
                "workflow runs were held for approval for {} s, then approved by a person",
                since.elapsed().as_secs()
            ));
        }

        if let Some(at) = states.iter().position(|s| *s == State::Failed) {
            let failed = &now[at];
            let detail = format!("\"{}\" {}", failed.name, describe(failed));
            let tail = failed_tail(&now, &states);
            return end(CheckStatus::Failed, detail, seen, tail, None);
        }
        if states.iter().all(|s| *s == State::Passed) {
            let detail = format!(
                "{} on {}",
                match now.len() {
                    1 => "1 check passed".to_string(),
                    n => format!("all {n} checks passed"),
                },
                short(sha)
            );
            return end(CheckStatus::Passed, detail, seen, String::new(), None);
        }

        // Something is pending: is a person's approval holding it?
        seen.held = match ctx.client.workflow_runs(sha).await {
            Ok(runs) => held_runs(&runs),
            Err(e) => {
                let note = format!("whether runs are held for approval is unknown: {e}");
                if !seen.notes.contains(&note) {
                    seen.notes.push(note);
                }
                Vec::new()
            }
        };
        if seen.held.is_empty() {
            if let Some(since) = held_since.take() {
                seen.notes.push(format!(
                    "workflow runs were held for approval for {} s, then approved by a person",
                    since.elapsed().as_secs()
                ));
            }
        } else if held_since.is_none() {
            held_since = Some(Instant::now());
        }
        if !seen.held.is_empty() && !explained_held {
            explained_held = true;
            seen.approval = Some(approval_text(ctx).await);
            let _ = writeln!(
                progress,
                "agent-gate: check `{}`: {} held for approval — {}",
                spec.name,
                held_list(&seen.held),
                seen.approval.as_deref().unwrap_or_default()
            );
        }
        if !seen.held.is_empty() && github.on_held == OnHeld::Fail {
            let detail = format!(
                "held for approval: {} (on-held: fail; set `on-held: wait` to wait for the approval within the deadline)",
                held_list(&seen.held)
            );
            let tail = seen.approval.clone().unwrap_or_default();
            return end(CheckStatus::Failed, detail, seen, tail, None);
        }

        let now_at = Instant::now();
        if now_at >= limit {
            let by_deadline = limit >= ctx.deadline;
            let detail = pending_text(&now, &states, &seen, sha, by_deadline, github);
            let tail = seen.approval.clone().unwrap_or_default();
            return if by_deadline {
                end(
                    CheckStatus::TimedOut,
                    detail,
                    seen,
                    tail,
                    Some(Verdict::TimedOut),
                )
            } else {
                end(CheckStatus::TimedOut, detail, seen, tail, None)
            };
        }
        let wake = (now_at + interval).min(limit);
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            _ = shutdown.wait() => {
                let detail = "the gate was interrupted while awaiting the repository's checks".to_string();
                return end(CheckStatus::Cancelled, detail, seen, String::new(), Some(Verdict::Cancelled));
            }
        }
        interval = interval
            .mul_f64(1.5)
            .min(ctx.poll_max)
            .max(ctx.poll_initial);
    }
}

async fn read_checks(
    client: &Client,
    sha: &str,
) -> Result<(Vec<CheckRun>, CombinedStatus), CiReadError> {
    let runs = client.list_check_runs(sha).await?;
    let statuses = client.combined_status(sha).await?;
    Ok((runs, statuses))
}

/// A read that failed: a missing permission is the repository's setup (`check-error`),
/// anything else an API failure.
fn read_failed(
    e: &CiReadError,
    seen: AwaitedCi,
    end: &dyn Fn(CheckStatus, String, AwaitedCi, String, Option<Verdict>) -> Awaited,
) -> Awaited {
    if e.is_permission() {
        end(
            CheckStatus::Unavailable,
            e.to_string(),
            seen,
            String::new(),
            None,
        )
    } else if matches!(e.source, ApiError::WaitPastDeadline { .. }) {
        let detail = format!(
            "the run's deadline passed before the repository's checks could be read again: {e}"
        );
        end(
            CheckStatus::TimedOut,
            detail,
            seen,
            String::new(),
            Some(Verdict::TimedOut),
        )
    } else {
        end(
            CheckStatus::Error,
            e.to_string(),
            seen,
            String::new(),
            Some(Verdict::ApiError),
        )
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
            crate::policy::format_duration(github.timeout.unwrap_or_default())
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
