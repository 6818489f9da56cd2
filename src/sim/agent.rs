//! The simulated agent: one tokio task per session that queues, works, commits the
//! scenario's file operations on the task's branch of the bare repository, opens (or moves)
//! the pull request, adds the artifacts and ends in the scripted state. Durations are
//! divided by the time scale. Owns the state machine of reference §12.5; the HTTP side only
//! starts it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::repo::Identity;
use super::scenario::{FileOp, FinalState, PullArtifact, PullId, Scenario, TaskScript};
use super::state::Sim;
use super::store::{SimPull, Store};
use crate::adapters::github::types::{Artifact, TaskState, Usage};

/// The script for a new session: the first script whose `match` is in the prompt, else the
/// next order-matched script, else the default.
pub(crate) fn pick_script(scenario: &Scenario, store: &mut Store, prompt: &str) -> TaskScript {
    if let Some(s) = scenario
        .tasks
        .iter()
        .find(|t| t.matches.as_deref().is_some_and(|m| prompt.contains(m)))
    {
        return s.clone();
    }
    let ordered: Vec<&TaskScript> = scenario
        .tasks
        .iter()
        .filter(|t| t.matches.is_none())
        .collect();
    if let Some(s) = ordered.get(store.order_cursor) {
        store.order_cursor += 1;
        return (*s).clone();
    }
    scenario.default_task.clone()
}

/// Start the agent of a task's newest session.
pub(crate) fn spawn(sim: &Arc<Sim>, task_id: &str, script: TaskScript) {
    let handle = tokio::spawn(run(Arc::clone(sim), task_id.to_string(), script));
    let mut store = sim.store();
    if let Some(old) = store
        .agents
        .insert(task_id.to_string(), handle.abort_handle())
    {
        old.abort();
    }
}

fn scaled(sim: &Sim, d: Duration) -> Duration {
    d.div_f64(sim.time_scale)
}

async fn run(sim: Arc<Sim>, task_id: String, script: TaskScript) {
    tokio::time::sleep(scaled(&sim, script.queued)).await;
    update(&sim, &task_id, |t| {
        t.transition(TaskState::parse(&script.working_state));
    });
    tokio::time::sleep(scaled(&sim, script.work)).await;
    if script.final_state == FinalState::Never {
        return;
    }
    let result = produce(&sim, &task_id, &script).await;
    update(&sim, &task_id, |t| {
        let (state, error) = if let Err(e) = &result {
            (
                TaskState::Failed,
                Some(format!("the simulated agent could not push its work: {e}")),
            )
        } else {
            {
                let state = match script.final_state {
                    FinalState::Completed | FinalState::Never => TaskState::Completed,
                    FinalState::Failed => TaskState::Failed,
                    FinalState::TimedOut => TaskState::TimedOut,
                    FinalState::Cancelled => TaskState::Cancelled,
                    FinalState::Idle => TaskState::Idle,
                    FinalState::WaitingForUser => TaskState::WaitingForUser,
                };
                let error = match (&script.error, &state) {
                    (Some(e), _) => Some(e.clone()),
                    (None, TaskState::Failed) => Some(
                        "The agent encountered an error and could not complete the task."
                            .to_string(),
                    ),
                    (None, TaskState::TimedOut) => {
                        Some("The agent session exceeded its time limit.".to_string())
                    }
                    _ => None,
                };
                (state, error)
            }
        };
        if let Some(s) = t.sessions.last_mut() {
            s.usage = Some(script.usage.clone().unwrap_or(Usage {
                kind: "ai_credits".into(),
                amount: 1_000_000_000.0,
            }));
            s.error.clone_from(&error);
        }
        t.transition(state);
    });
    sim.store().agents.remove(&task_id);
}

fn update(sim: &Sim, task_id: &str, f: impl FnOnce(&mut super::store::SimTask)) {
    let mut store = sim.store();
    if let Some(t) = store.task_mut(task_id) {
        f(t);
        let repo = t.repo_key();
        store.note_running(&repo);
    }
}

/// Commit the work, push the branch, open or move the pull request, add the artifacts.
async fn produce(
    sim: &Arc<Sim>,
    task_id: &str,
    script: &TaskScript,
) -> Result<(), super::repo::RepoError> {
    let Some(work) = work_of(sim, task_id) else {
        return Ok(());
    };
    let ops = file_ops(script, &work.prompt);
    if ops.is_empty() {
        return Ok(());
    }
    let git = sim.repo_of(&work.owner, &work.repo);
    let Some(base_sha) = git.branch(&work.base_ref).await else {
        return Err(super::repo::RepoError::Op {
            op: format!("base ref {}", work.base_ref),
            message: "the branch no longer exists".into(),
        });
    };
    let existing = git.branch(&work.branch).await;
    let start = existing.clone().unwrap_or_else(|| base_sha.clone());
    let message = format!(
        "{}\n\nAgent-Logs-Url: {}\n\nCo-authored-by: sim-user-{creator} <{creator}+sim-user@users.noreply.github.com>\n",
        script
            .commit_message
            .clone()
            .unwrap_or_else(|| work.name.clone()),
        work.html_url,
        creator = work.creator,
    );
    let who = Identity {
        name: "copilot-swe-agent[bot]".into(),
        email: "198982749+Copilot@users.noreply.github.com".into(),
    };
    let Some(commit) = git
        .commit_ops(
            &work.branch,
            &start,
            existing.as_deref(),
            &ops,
            &message,
            &who,
        )
        .await?
    else {
        return Ok(());
    };
    let pr = pull_for(sim, &work, &commit, &base_sha);
    if let Some(p) = &pr {
        git.set_ref(&format!("refs/pull/{}/head", p.number), &commit)
            .await?;
    }
    let key = super::store::repo_key(&work.owner, &work.repo);
    super::ci::pushed(sim, &key, &commit, &work.branch);
    add_artifacts(sim, task_id, script, &work, pr.as_ref());
    Ok(())
}

/// What a task's latest session works on.
struct Work {
    prompt: String,
    branch: String,
    base_ref: String,
    name: String,
    create_pr: bool,
    html_url: String,
    creator: i64,
    owner: String,
    repo: String,
}

fn work_of(sim: &Sim, task_id: &str) -> Option<Work> {
    let store = sim.store();
    let t = store.tasks.iter().find(|t| t.id == task_id)?;
    let s = t.sessions.last()?;
    Some(Work {
        prompt: s.prompt.clone(),
        branch: s.head_ref.clone(),
        base_ref: s.base_ref.clone(),
        name: t.name.clone(),
        create_pr: t.create_pull_request,
        html_url: format!(
            "{}/{}/{}/copilot/tasks/{}",
            sim.base_url, t.owner, t.repo, t.id
        ),
        creator: t.creator_id,
        owner: t.owner.clone(),
        repo: t.repo.clone(),
    })
}

/// The scripted file operations; without a script, a task that ends well writes its
/// prompt to `agent-gate-sim.txt`.
fn file_ops(script: &TaskScript, prompt: &str) -> Vec<FileOp> {
    match &script.files {
        Some(ops) => ops.clone(),
        None if matches!(
            script.final_state,
            FinalState::Completed | FinalState::Idle | FinalState::WaitingForUser
        ) =>
        {
            vec![FileOp::Write {
                path: "agent-gate-sim.txt".to_string(),
                content: prompt.as_bytes().to_vec(),
            }]
        }
        None => Vec::new(),
    }
}

/// The pull request of the work's branch: an open one moved to `commit`, or one opened
/// when the task asked for it.
fn pull_for(sim: &Sim, work: &Work, commit: &str, base_sha: &str) -> Option<SimPull> {
    let key = super::store::repo_key(&work.owner, &work.repo);
    let mut store = sim.store();
    let existing = store
        .pulls
        .iter_mut()
        .find(|p| super::store::repo_key(&p.owner, &p.repo) == key && p.head_ref == work.branch);
    if let Some(p) = existing {
        p.head_sha = commit.to_string();
        return Some(p.clone());
    }
    if !work.create_pr {
        return None;
    }
    store.next_number += 1;
    let number = store.next_number;
    let p = SimPull {
        number,
        id: 2_000_000_000 + i64::try_from(number).unwrap_or(0),
        owner: work.owner.clone(),
        repo: work.repo.clone(),
        head_ref: work.branch.clone(),
        base_ref: work.base_ref.clone(),
        head_sha: commit.to_string(),
        base_sha: base_sha.to_string(),
        created_at: jiff::Timestamp::now(),
        closed: false,
    };
    store.pulls.push(p.clone());
    Some(p)
}

/// The task's `branch` artifact and, with a pull request, its pull artifact in the shape
/// the scenario asks for (each once).
fn add_artifacts(sim: &Sim, task_id: &str, script: &TaskScript, work: &Work, pr: Option<&SimPull>) {
    let pull_id = sim.scenario.api.pull_id;
    let (branch, base_ref) = (&work.branch, &work.base_ref);
    update(sim, task_id, |t| {
        let branch_artifact = Artifact {
            provider: "github".into(),
            kind: "branch".into(),
            data: json!({ "head_ref": branch, "base_ref": base_ref }),
        };
        if !t.artifacts.iter().any(|a| {
            a.kind == "branch"
                && a.data.get("head_ref").and_then(|h| h.as_str()) == Some(branch.as_str())
        }) {
            t.artifacts.push(branch_artifact);
        }
        if let Some(p) = pr {
            let id = match pull_id {
                PullId::DatabaseId => p.id,
                PullId::Number => i64::try_from(p.number).unwrap_or(0),
            };
            let artifact = match script.pull_artifact {
                PullArtifact::Pull => Some(Artifact {
                    provider: "github".into(),
                    kind: "pull".into(),
                    data: json!({ "id": id, "global_id": p.global_id() }),
                }),
                PullArtifact::GithubResource => Some(Artifact {
                    provider: "github".into(),
                    kind: "github_resource".into(),
                    data: json!({ "type": "pull", "id": id, "global_id": p.global_id() }),
                }),
                PullArtifact::None => None,
            };
            if let Some(a) = artifact
                && !t
                    .artifacts
                    .iter()
                    .any(|x| x.data.get("global_id") == a.data.get("global_id"))
            {
                t.artifacts.push(a);
            }
        }
        t.touch();
    });
}

/// Stop a task as "Stop session" in the UI does: its agent is aborted and the current
/// session ends `cancelled`. False when the task is unknown or already finished.
pub(crate) fn cancel(sim: &Sim, task_id: &str) -> bool {
    let mut store = sim.store();
    if let Some(h) = store.agents.remove(task_id) {
        h.abort();
    }
    match store.task_mut(task_id) {
        Some(t) if !t.state().is_final() => {
            t.transition(TaskState::Cancelled);
            let repo = t.repo_key();
            store.note_running(&repo);
            true
        }
        _ => false,
    }
}
