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
use crate::github::types::{Artifact, TaskState, Usage};

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
    let Some((prompt, branch, base_ref, name, create_pr, html_url, creator, owner, repo)) = ({
        let store = sim.store();
        store.tasks.iter().find(|t| t.id == task_id).and_then(|t| {
            let s = t.sessions.last()?;
            let html = format!(
                "{}/{}/{}/copilot/tasks/{}",
                sim.base_url, t.owner, t.repo, t.id
            );
            Some((
                s.prompt.clone(),
                s.head_ref.clone(),
                s.base_ref.clone(),
                t.name.clone(),
                t.create_pull_request,
                html,
                t.creator_id,
                t.owner.clone(),
                t.repo.clone(),
            ))
        })
    }) else {
        return Ok(());
    };
    let ops = match &script.files {
        Some(ops) => ops.clone(),
        None if matches!(
            script.final_state,
            FinalState::Completed | FinalState::Idle | FinalState::WaitingForUser
        ) =>
        {
            vec![FileOp::Write {
                path: "agent-gate-sim.txt".to_string(),
                content: prompt.clone().into_bytes(),
            }]
        }
        None => Vec::new(),
    };
    if ops.is_empty() {
        return Ok(());
    }
    let git = sim.repo_of(&owner, &repo);
    let Some(base_sha) = git.branch(&base_ref).await else {
        return Err(super::repo::RepoError::Op {
            op: format!("base ref {base_ref}"),
            message: "the branch no longer exists".into(),
        });
    };
    let existing = git.branch(&branch).await;
    let start = existing.clone().unwrap_or_else(|| base_sha.clone());
    let message = format!(
        "{}\n\nAgent-Logs-Url: {html_url}\n\nCo-authored-by: sim-user-{creator} <{creator}+sim-user@users.noreply.github.com>\n",
        script.commit_message.clone().unwrap_or(name)
    );
    let who = Identity {
        name: "copilot-swe-agent[bot]".into(),
        email: "198982749+Copilot@users.noreply.github.com".into(),
    };
    let Some(commit) = git
        .commit_ops(&branch, &start, existing.as_deref(), &ops, &message, &who)
        .await?
    else {
        return Ok(());
    };

    // The pull request: move an open one on this branch, or open one when asked.
    let key = super::store::repo_key(&owner, &repo);
    let pr = {
        let mut store = sim.store();
        let existing = store
            .pulls
            .iter_mut()
            .find(|p| super::store::repo_key(&p.owner, &p.repo) == key && p.head_ref == branch);
        if let Some(p) = existing {
            p.head_sha.clone_from(&commit);
            Some(p.clone())
        } else if create_pr {
            store.next_number += 1;
            let number = store.next_number;
            let p = SimPull {
                number,
                id: 2_000_000_000 + i64::try_from(number).unwrap_or(0),
                owner: owner.clone(),
                repo: repo.clone(),
                head_ref: branch.clone(),
                base_ref: base_ref.clone(),
                head_sha: commit.clone(),
                base_sha: base_sha.clone(),
                created_at: jiff::Timestamp::now(),
                closed: false,
            };
            store.pulls.push(p.clone());
            Some(p)
        } else {
            None
        }
    };
    if let Some(p) = &pr {
        git.set_ref(&format!("refs/pull/{}/head", p.number), &commit)
            .await?;
    }
    super::ci::pushed(sim, &key, &commit, &branch);

    let pull_id = sim.scenario.api.pull_id;
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
        if let Some(p) = &pr {
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
    Ok(())
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
