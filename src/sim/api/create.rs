//! `POST /agents/repos/{o}/{r}/tasks` (reference §3.1, §12.4): the body validated field by
//! field, `base_ref`/`head_ref` checked against the repository, a new task (on a fresh
//! `copilot/…` branch) or a follow-up session of the task that owns `head_ref`, then the
//! simulated agent started. It does not list or get tasks (`list`, the parent) nor run
//! the agent (`agent`).

use std::sync::Arc;

use serde_json::Value;

use super::{Reply, doc_url, invalid, object_body};
use crate::adapters::github::types::{CreateTaskRequest, TaskState};
use crate::sim::agent;
use crate::sim::route::{Endpoint, Matched};
use crate::sim::state::{Incoming, Sim};
use crate::sim::store::{SimSession, SimTask, Store, now_second, repo_key};

/// Validate the POST body field by field (reference §12.4).
fn create_request(body: &[u8], sim: &Sim) -> Result<CreateTaskRequest, Reply> {
    let doc = doc_url(Endpoint::CreateTask);
    let o = object_body(body, doc)?;
    let mut errors = Vec::new();
    let prompt = match o.get("prompt") {
        None | Some(Value::Null) => {
            errors.push(invalid("prompt", "Task", "missing_field", None));
            String::new()
        }
        Some(Value::String(s)) if s.trim().is_empty() => {
            errors.push(invalid("prompt", "Task", "missing_field", None));
            String::new()
        }
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            errors.push(invalid(
                "prompt",
                "Task",
                "invalid",
                Some("prompt must be a string".into()),
            ));
            String::new()
        }
    };
    let mut string = |field: &str| match o.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.push(invalid(
                field,
                "Task",
                "invalid",
                Some(format!("{field} must be a string")),
            ));
            None
        }
    };
    let model = string("model");
    let custom_agent = string("custom_agent");
    let base_ref = string("base_ref");
    let head_ref = string("head_ref");
    let create_pull_request = match o.get("create_pull_request") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            errors.push(invalid(
                "create_pull_request",
                "Task",
                "invalid",
                Some("create_pull_request must be a boolean".into()),
            ));
            None
        }
    };
    if let (Some(m), Some(known)) = (&model, &sim.scenario.api.models)
        && !known.contains(m)
    {
        errors.push(invalid(
            "model",
            "Task",
            "custom",
            Some(format!("model '{m}' is not available")),
        ));
    }
    if let (Some(a), Some(known)) = (&custom_agent, &sim.scenario.api.custom_agents)
        && !known.contains(a)
    {
        errors.push(invalid(
            "custom_agent",
            "Task",
            "custom",
            Some(format!(
                "custom agent '{a}' was not found in .github/agents"
            )),
        ));
    }
    if !errors.is_empty() {
        return Err(Reply::validation(doc, errors));
    }
    Ok(CreateTaskRequest {
        prompt,
        model,
        custom_agent,
        create_pull_request,
        base_ref,
        head_ref,
    })
}

pub(super) async fn create_task(sim: &Arc<Sim>, inc: &Incoming, m: &Matched, user: i64) -> Reply {
    let req = match create_request(&inc.body, sim) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let refs = match task_refs(sim, m, &req).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let key = repo_key(&m.owner, &m.repo);
    let now = now_second();
    let (task_json, task_id, script) = {
        let mut store = sim.store();
        let script = agent::pick_script(&sim.scenario, &mut store, &req.prompt);
        let session = |head_ref: String| SimSession {
            id: uuid::Uuid::new_v4().to_string(),
            state: TaskState::Queued,
            created_at: now,
            updated_at: now,
            completed_at: None,
            prompt: req.prompt.clone(),
            head_ref,
            base_ref: refs.base_ref.clone(),
            model: req.model.clone(),
            usage: None,
            error: None,
        };
        // A follow-up on a branch an existing task owns: a new session of that task.
        let existing = refs.follow_up.as_ref().and_then(|h| {
            store
                .tasks
                .iter()
                .rposition(|t| t.repo_key() == key && t.branch() == h)
        });
        let id = if let Some(i) = existing {
            match follow_up(&mut store.tasks[i], &req, session) {
                Ok(id) => id,
                Err(r) => return r,
            }
        } else {
            let branch = reserve_branch(&mut store, &key, &refs);
            let id = uuid::Uuid::new_v4().to_string();
            store.tasks.push(SimTask {
                id: id.clone(),
                owner: m.owner.clone(),
                repo: m.repo.clone(),
                creator_id: user,
                name: task_name(&req.prompt),
                created_at: now,
                updated_at: now,
                archived_at: None,
                custom_agent: req.custom_agent.clone(),
                artifacts: Vec::new(),
                sessions: vec![session(branch)],
                create_pull_request: req.create_pull_request.unwrap_or(false),
                extra_fields: script.extra_fields.clone(),
            });
            id
        };
        store.note_running(&key);
        let t = store
            .tasks
            .iter()
            .find(|t| t.id == id)
            .map_or(Value::Null, |t| t.to_json(&sim.base_url, false));
        (t, id, script)
    };
    agent::spawn(sim, &task_id, script);
    Reply::json(201, &task_json)
}

/// The branches a new task or session works with.
struct TaskRefs {
    /// The base: the request's, else the repository's default branch.
    base_ref: String,
    /// A follow-up's branch (`head_ref` of the request).
    follow_up: Option<String>,
    /// A new task's branch name from its prompt, not yet used in the repository.
    slug_branch: Option<String>,
}

/// The request's base and head branches, which must exist (422 otherwise).
async fn task_refs(sim: &Sim, m: &Matched, req: &CreateTaskRequest) -> Result<TaskRefs, Reply> {
    let doc = doc_url(Endpoint::CreateTask);
    let missing = |field: &str, branch: &str| {
        Reply::validation(
            doc,
            vec![invalid(
                field,
                "Task",
                "invalid",
                Some(format!("branch '{branch}' does not exist")),
            )],
        )
    };
    let git = sim.repo_of(&m.owner, &m.repo);
    let base_ref = match &req.base_ref {
        Some(b) => b.clone(),
        None => git.default_branch().await,
    };
    if git.branch(&base_ref).await.is_none() {
        return Err(missing("base_ref", &base_ref));
    }
    if let Some(h) = &req.head_ref {
        if git.branch(h).await.is_none() {
            return Err(missing("head_ref", h));
        }
        return Ok(TaskRefs {
            base_ref,
            follow_up: Some(h.clone()),
            slug_branch: None,
        });
    }
    Ok(TaskRefs {
        base_ref,
        follow_up: None,
        slug_branch: Some(git.unused_branch(&slug(&req.prompt)).await),
    })
}

/// A follow-up as a new session of the task `t` that owns its branch; refused (422) while
/// the task still works on it.
fn follow_up(
    t: &mut SimTask,
    req: &CreateTaskRequest,
    session: impl Fn(String) -> SimSession,
) -> Result<String, Reply> {
    if matches!(
        t.state(),
        TaskState::Queued | TaskState::InProgress | TaskState::Unknown(_)
    ) {
        return Err(Reply::validation(
            doc_url(Endpoint::CreateTask),
            vec![invalid(
                "head_ref",
                "Task",
                "custom",
                Some(format!(
                    "task {} is still working on '{}'; wait for it to finish",
                    t.id,
                    t.branch()
                )),
            )],
        ));
    }
    t.sessions.push(session(t.branch().to_string()));
    if let Some(c) = req.create_pull_request {
        t.create_pull_request |= c;
    }
    t.touch();
    Ok(t.id.clone())
}

/// A new task's branch: a follow-up's own, else the slug, made unique in the repository
/// (branch names are unique per repository, as git's are) and reserved.
fn reserve_branch(store: &mut Store, key: &str, refs: &TaskRefs) -> String {
    if let Some(h) = &refs.follow_up {
        return h.clone();
    }
    let stem = refs
        .slug_branch
        .clone()
        .unwrap_or_else(|| "copilot/task".into());
    let mut branch = stem.clone();
    let mut n = 2;
    while store
        .reserved_branches
        .contains(&(key.to_string(), branch.clone()))
    {
        branch = format!("{stem}-{n}");
        n += 1;
    }
    store
        .reserved_branches
        .push((key.to_string(), branch.clone()));
    branch
}

/// A branch slug from the first line of a prompt: lowercase ASCII words joined by `-`.
pub(crate) fn slug(prompt: &str) -> String {
    let line = prompt.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let mut s = String::new();
    for c in line.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
        if s.len() >= 40 {
            break;
        }
    }
    let s = s.trim_matches('-').to_string();
    if s.is_empty() { "task".to_string() } else { s }
}

/// The task name: the first non-empty line of the prompt, at most 80 characters.
fn task_name(prompt: &str) -> String {
    let line = prompt
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("task");
    line.chars().take(80).collect()
}
