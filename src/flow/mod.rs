//! The flow layer, orchestration: the only place that joins the core (policy, scope,
//! assessment, report) and the adapters (git, checks, github). Each command of the CLI is
//! one function here, taking its inputs and output writers as parameters and returning an
//! exit code or a [`Report`]; the rules the commands apply over the adapters — admission
//! and its lock, the budget, the write pace, repair rounds, the fleet's plan and report —
//! live here too, as they join core decisions to outside state the same way.
//!
//! [`Report`]: crate::core::report::Report

pub mod admission;
pub mod budget;
pub mod fleet;
pub mod lease;
pub mod pace;
pub mod publish;
pub mod repair;

mod check;
mod ci;
mod comment;
mod context;
mod ending;
mod fetch;
mod head;
mod options;
mod review;
mod round;
mod run;
mod session;
mod start;
mod task_api;

use std::io::Write;
use std::path::Path;

pub use check::{CheckOptions, check};
pub use comment::{CommentAction, CommentSet, MAX_COMMENT_BYTES, comment_body, comment_marker};
pub use ending::WAITING_STATE;
pub use options::RunOptions;
pub use review::{
    MAX_STATUS_DESCRIPTION, ReviewApi, ReviewOptions, ReviewRecord, StatusSet, review,
    status_description, status_state,
};
pub use run::{run, run_with_tasks};
pub use task_api::TaskApi;

use crate::adapters::github::{ApiUrl, Client, ClientConfig};
use crate::core::policy::Policy;
use crate::core::report::{Verdict, describe_decision};
use crate::core::secret::Token;
use crate::core::slug::RepoSlug;

/// A policy file on disk that cannot be used.
#[derive(Debug, thiserror::Error)]
enum PolicyFileError {
    #[error("{}: cannot read the policy file: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: the policy file is not UTF-8", path.display())]
    NotUtf8 { path: std::path::PathBuf },
    #[error(transparent)]
    Policy(#[from] crate::core::policy::PolicyError),
}

/// Read and compile a policy file from disk.
fn load_policy_file(path: &Path) -> Result<Policy, PolicyFileError> {
    load_policy_file_all(path).map_err(|mut errors| errors.swap_remove(0))
}

/// [`load_policy_file`], with every error of the policy (at least one).
fn load_policy_file_all(path: &Path) -> Result<Policy, Vec<PolicyFileError>> {
    let text = std::fs::read(path).map_err(|source| {
        vec![PolicyFileError::Io {
            path: path.to_path_buf(),
            source,
        }]
    })?;
    let text = String::from_utf8(text).map_err(|_| {
        vec![PolicyFileError::NotUtf8 {
            path: path.to_path_buf(),
        }]
    })?;
    Policy::from_yaml_all(&text, &path.to_string_lossy())
        .map_err(|errors| errors.into_iter().map(PolicyFileError::Policy).collect())
}

/// `agent-gate validate`: print the compiled policy (exit 0) or the errors (exit 2).
pub fn validate(path: &Path, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match load_policy_file_all(path) {
        Ok(policy) => {
            let _ = write!(out, "{}", crate::core::policy::describe(&policy));
            let _ = writeln!(out, "{}: valid", path.display());
            0
        }
        Err(errors) => {
            for e in &errors {
                let _ = writeln!(err, "error: {e}");
            }
            if errors.len() > 1 {
                let _ = writeln!(err, "{}: {} errors", path.display(), errors.len());
            }
            Verdict::ConfigError.exit_code()
        }
    }
}

/// One line of `explain --format json`.
#[derive(serde::Serialize)]
struct ExplainLine<'a> {
    path: &'a str,
    #[serde(flatten)]
    decision: &'a crate::core::scope::Decision,
}

/// `agent-gate explain`: for each path, in or out of scope and the rule that decided — one
/// line each as the paths come (`paths` may stream from a file of any length: nothing is
/// kept), as text or as JSON lines (`json`). `scope` is the `--scope` input, compiled.
/// Exit 0 when every path is in scope, 11 (scope-violation) when one is not, 2 on a bad
/// policy or a path list that cannot be read.
pub fn explain(
    path: &Path,
    scope: &crate::core::scope::ScopeInput,
    paths: &mut dyn Iterator<Item = std::io::Result<Vec<u8>>>,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let policy = match load_policy_file(path) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return Verdict::ConfigError.exit_code();
        }
    };
    let engine = policy.scope.narrowed_by(scope);
    let mut out = std::io::BufWriter::new(out);
    let mut all_in = true;
    for p in paths {
        let p = match p {
            Ok(p) => p,
            Err(e) => {
                let _ = out.flush();
                let _ = writeln!(err, "error: cannot read the paths: {e}");
                return Verdict::ConfigError.exit_code();
            }
        };
        let shown = String::from_utf8_lossy(&p);
        let d = engine.decide(p.strip_prefix(b"./").unwrap_or(&p));
        all_in &= d.in_scope;
        let written = if json {
            serde_json::to_writer(
                &mut out,
                &ExplainLine {
                    path: &shown,
                    decision: &d,
                },
            )
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
        } else {
            let verdict = if d.in_scope { "allowed" } else { "denied " };
            // A name may hold a newline or an escape: shown escaped, never obeyed.
            let shown: String = shown
                .chars()
                .flat_map(|c| {
                    let escaped = c.is_control().then(|| c.escape_default());
                    escaped
                        .into_iter()
                        .flatten()
                        .chain((!c.is_control()).then_some(c))
                })
                .collect();
            writeln!(out, "{verdict} {shown}  — {}", describe_decision(&d))
        };
        if written.is_err() {
            // The reader went away (`| head`): stop quietly with what was decided.
            break;
        }
    }
    let _ = out.flush();
    if all_in {
        0
    } else {
        Verdict::ScopeViolation.exit_code()
    }
}

/// `agent-gate status`: list the repository's tasks (or show one) with their states. What
/// the API answered is shown, never obeyed: the text is
/// [`neutralize`](crate::core::report::neutralize)d (control characters escaped, no line that
/// would read as a workflow command).
pub async fn status(
    repository: &RepoSlug,
    token: &Token,
    api_url: &ApiUrl,
    task_id: Option<&str>,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let (mut text, mut errors) = (Vec::new(), Vec::new());
    let code = status_raw(
        repository,
        token,
        api_url,
        task_id,
        json,
        &mut text,
        &mut errors,
    )
    .await;
    let shown =
        |buf: &[u8]| crate::core::report::neutralize(&String::from_utf8_lossy(buf)).into_owned();
    let _ = out.write_all(shown(&text).as_bytes());
    let _ = err.write_all(shown(&errors).as_bytes());
    code
}

async fn status_raw(
    repository: &RepoSlug,
    token: &Token,
    api_url: &ApiUrl,
    task_id: Option<&str>,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let config = ClientConfig::new(token.clone(), repository.owner(), repository.name())
        .with_api_url(api_url.as_str());
    let client = match Client::new(config) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return Verdict::ConfigError.exit_code();
        }
    };
    let tasks = match status_tasks(&client, task_id).await {
        Ok(t) => t,
        Err(e) => {
            // A 404 of the agent-tasks API: say first whether the cloud agent is off there.
            if matches!(e, crate::adapters::github::ApiError::NotFound { .. })
                && let Some(plain) = client
                    .agent_availability()
                    .await
                    .explain(&repository.to_string())
            {
                let _ = writeln!(err, "error: {plain}");
            }
            let _ = writeln!(err, "error: {e}");
            return Verdict::ApiError.exit_code();
        }
    };
    if json {
        let value = if task_id.is_some() {
            serde_json::to_value(&tasks[0])
        } else {
            serde_json::to_value(&tasks)
        };
        let _ = writeln!(
            out,
            "{}",
            value
                .map(|v| serde_json::to_string_pretty(&v).unwrap_or_default())
                .unwrap_or_default()
        );
    } else if tasks.is_empty() {
        let _ = writeln!(out, "no tasks in {repository}");
    } else {
        print_tasks(&tasks, task_id.is_some(), out);
    }
    0
}

/// The task `task_id`, or the repository's tasks, each read whole: GitHub's list items
/// carry no sessions, and the cost is in the sessions' usage, so the list shows the same
/// figure as everything else.
async fn status_tasks(
    client: &crate::adapters::github::Client,
    task_id: Option<&str>,
) -> Result<Vec<crate::adapters::github::types::Task>, crate::adapters::github::ApiError> {
    let mut tasks = match task_id {
        Some(id) => vec![client.get_task(id).await?],
        None => {
            client
                .list_tasks(&crate::adapters::github::ListQuery::default())
                .await?
                .tasks
        }
    };
    for t in tasks.iter_mut().filter(|t| t.sessions.is_none()) {
        match client.get_task(&t.id).await {
            Ok(full) => *t = full,
            Err(e) => tracing::debug!(task = %t.id, error = %e, "cost of a listed task unknown"),
        }
    }
    Ok(tasks)
}

/// `status`'s table of tasks; for one task (`detail`) its link and sessions too.
fn print_tasks(tasks: &[crate::adapters::github::types::Task], detail: bool, out: &mut dyn Write) {
    let _ = writeln!(
        out,
        "{:<38} {:<17} {:<21} {:>10}  NAME",
        "ID", "STATE", "UPDATED", "AI CREDITS"
    );
    for t in tasks {
        let name = t.name.clone().unwrap_or_default();
        let name: String = name.chars().take(60).collect();
        let cost = match t.sessions {
            Some(_) => {
                crate::core::report::credits(crate::adapters::github::task_cost(t).ai_credits())
            }
            None => "-".to_string(),
        };
        let _ = writeln!(
            out,
            "{:<38} {:<17} {:<21} {:>10}  {}",
            t.id,
            t.state.as_str(),
            t.updated_at.as_deref().unwrap_or(&t.created_at),
            cost,
            name.replace(['\n', '\r'], " ")
        );
        if detail {
            if let Some(url) = &t.html_url {
                let _ = writeln!(out, "  {url}");
            }
            for s in t.sessions.iter().flatten() {
                let _ = writeln!(
                    out,
                    "  session {} {} head {}",
                    s.id,
                    s.state,
                    s.head_ref.as_deref().unwrap_or("-")
                );
            }
        }
    }
}

/// `agent-gate status --admission`: the admission refs on `remote` of the clone `repo` —
/// the lock and its holder, the leases of admitted runs, the runs waiting — with their ages,
/// as text or JSON. Reads with git's own credentials; exit 0, or 2 when the remote cannot be
/// read.
pub fn admission_status(
    repo: &Path,
    remote: &str,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    use crate::flow::lease::{Entry, LeaseStore};
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let mut store = LeaseStore::new(
        crate::adapters::git::Git::new(repo),
        remote,
        None,
        "",
        crate::flow::admission::Priority::Normal,
        &run_id,
    );
    let snap = match store.snapshot() {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return Verdict::ConfigError.exit_code();
        }
    };
    let now = jiff::Timestamp::now().as_second();
    let row = |role: &str, e: &Entry| -> serde_json::Value {
        let note = e.note.as_ref();
        serde_json::json!({
            "role": role,
            "ref": e.name,
            "key": note.map(|n| n.key.clone()),
            "priority": note.map(|n| n.priority.clone()),
            "age_s": note.map(|n| now.saturating_sub(n.at)),
        })
    };
    let mut rows: Vec<serde_json::Value> = snap.lock.iter().map(|l| row("lock", l)).collect();
    rows.extend(snap.leases.iter().map(|l| row("lease", l)));
    rows.extend(snap.waiting.iter().map(|w| row("waiting", w)));
    if json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
        return 0;
    }
    if rows.is_empty() {
        let _ = writeln!(
            out,
            "no admission refs on {remote}: the lock is free, no run holds a lease or waits"
        );
        return 0;
    }
    let _ = writeln!(out, "{:<8} {:<10} {:>8}  KEY", "ROLE", "PRIORITY", "AGE");
    for r in &rows {
        let age = r["age_s"]
            .as_i64()
            .map_or_else(|| "?".to_string(), |a| format!("{a}s"));
        let _ = writeln!(
            out,
            "{:<8} {:<10} {:>8}  {}",
            r["role"].as_str().unwrap_or_default(),
            r["priority"].as_str().unwrap_or("?"),
            age,
            r["key"].as_str().unwrap_or("(not a note)")
        );
    }
    0
}
