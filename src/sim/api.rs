//! The agent-tasks endpoints (reference §3–§7: create, get, the two lists) and the shared
//! response type [`Reply`]; the repository endpoints are in [`super::repos`]. Each takes a
//! routed, authenticated request and returns a [`Reply`]; auth, rate limits, faults and
//! common headers are the pipeline's business ([`super::server`]).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Response, StatusCode};
use jiff::Timestamp;
use serde_json::{Value, json};

use super::route::{Endpoint, Matched, parse_query, percent_encode};
use super::server::{Incoming, Sim};
use super::store::{SimSession, SimTask, now_second, repo_key};
use super::{agent, repos};
use crate::github::types::{CreateTaskRequest, ErrorBody, TaskState, ValidationError};

/// A response before the pipeline adds the common headers.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn json(status: u16, v: &Value) -> Reply {
        Reply {
            status,
            body: serde_json::to_vec(v).unwrap_or_default(),
            headers: Vec::new(),
        }
    }

    /// GitHub's error body `{message, documentation_url}`.
    pub fn error(status: u16, message: &str, doc: &str) -> Reply {
        let body = ErrorBody {
            message: message.to_string(),
            documentation_url: doc.to_string(),
            errors: None,
        };
        Reply::json(status, &serde_json::to_value(body).unwrap_or(Value::Null))
    }

    /// 422 `Validation Failed` with its `errors`.
    pub fn validation(doc: &str, errors: Vec<ValidationError>) -> Reply {
        let body = ErrorBody {
            message: "Validation Failed".to_string(),
            documentation_url: doc.to_string(),
            errors: Some(errors),
        };
        Reply::json(422, &serde_json::to_value(body).unwrap_or(Value::Null))
    }

    /// Add the headers of every response.
    pub fn finish(&mut self, request_id: &str) {
        self.headers
            .push(("x-github-request-id", request_id.to_string()));
        self.headers
            .push(("x-github-media-type", "github.v3; format=json".to_string()));
        if self.status != 304 {
            self.headers.push((
                "content-type",
                "application/json; charset=utf-8".to_string(),
            ));
        }
    }

    pub fn into_response(self) -> Response<Body> {
        let mut r = Response::new(Body::from(self.body));
        *r.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        for (k, v) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&v) {
                r.headers_mut().append(HeaderName::from_static(k), v);
            }
        }
        r
    }
}

pub(crate) fn invalid(
    field: &str,
    resource: &str,
    code: &str,
    message: Option<String>,
) -> ValidationError {
    ValidationError {
        code: code.to_string(),
        message,
        field: Some(field.to_string()),
        resource: Some(resource.to_string()),
    }
}

/// The documentation URL of an endpoint, for error bodies.
pub(crate) fn doc_url(e: Endpoint) -> &'static str {
    match e {
        Endpoint::ListTasks => "https://docs.github.com/rest/agent-tasks/agent-tasks#list-tasks",
        Endpoint::GetTask => {
            "https://docs.github.com/rest/agent-tasks/agent-tasks#get-a-task-by-id"
        }
        Endpoint::ListRepoTasks => {
            "https://docs.github.com/rest/agent-tasks/agent-tasks#list-tasks-for-repository"
        }
        Endpoint::CreateTask => "https://docs.github.com/rest/agent-tasks/agent-tasks#start-a-task",
        Endpoint::GetRepoTask => {
            "https://docs.github.com/rest/agent-tasks/agent-tasks#get-a-task-by-repo"
        }
        Endpoint::GetRepo => "https://docs.github.com/rest/repos/repos#get-a-repository",
        Endpoint::ListPulls => "https://docs.github.com/rest/pulls/pulls#list-pull-requests",
        Endpoint::CreateStatus => {
            "https://docs.github.com/rest/commits/statuses#create-a-commit-status"
        }
        Endpoint::CreateComment => {
            "https://docs.github.com/rest/issues/comments#create-an-issue-comment"
        }
        Endpoint::AddLabels => "https://docs.github.com/rest/issues/labels#add-labels-to-an-issue",
        Endpoint::ListComments => {
            "https://docs.github.com/rest/issues/comments#list-issue-comments"
        }
        Endpoint::UpdateComment => {
            "https://docs.github.com/rest/issues/comments#update-an-issue-comment"
        }
    }
}

/// Run the endpoint a request was routed to.
pub(crate) async fn dispatch(sim: &Arc<Sim>, inc: &Incoming, m: &Matched, user: i64) -> Reply {
    match m.endpoint {
        Endpoint::CreateTask => create_task(sim, inc, m, user).await,
        Endpoint::ListTasks | Endpoint::ListRepoTasks => list_tasks(sim, inc, m, user),
        Endpoint::GetTask | Endpoint::GetRepoTask => get_task(sim, m, user),
        Endpoint::GetRepo => repos::get_repo(sim, m).await,
        Endpoint::ListPulls => repos::list_pulls(sim, inc, m),
        Endpoint::CreateStatus => repos::create_status(sim, inc, m).await,
        Endpoint::CreateComment => repos::create_comment(sim, inc, m, user),
        Endpoint::AddLabels => repos::add_labels(sim, inc, m),
        Endpoint::ListComments => repos::list_comments(sim, inc, m),
        Endpoint::UpdateComment => repos::update_comment(sim, inc, m),
    }
}

/// Parse a JSON object body: 400 for invalid JSON or a non-object (reference §7).
pub(crate) fn object_body(body: &[u8], doc: &str) -> Result<serde_json::Map<String, Value>, Reply> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|_| Reply::error(400, "Problems parsing JSON", doc))?;
    match v {
        Value::Object(o) => Ok(o),
        _ => Err(Reply::error(400, "Body should be a JSON object", doc)),
    }
}

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

async fn create_task(sim: &Arc<Sim>, inc: &Incoming, m: &Matched, user: i64) -> Reply {
    let doc = doc_url(Endpoint::CreateTask);
    let req = match create_request(&inc.body, sim) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let base_ref = match &req.base_ref {
        Some(b) => b.clone(),
        None => sim.repo.default_branch().await,
    };
    if sim.repo.branch(&base_ref).await.is_none() {
        return Reply::validation(
            doc,
            vec![invalid(
                "base_ref",
                "Task",
                "invalid",
                Some(format!("branch '{base_ref}' does not exist")),
            )],
        );
    }
    let follow_up_branch = match &req.head_ref {
        Some(h) => {
            if sim.repo.branch(h).await.is_none() {
                return Reply::validation(
                    doc,
                    vec![invalid(
                        "head_ref",
                        "Task",
                        "invalid",
                        Some(format!("branch '{h}' does not exist")),
                    )],
                );
            }
            Some(h.clone())
        }
        None => None,
    };
    let slug_branch = if follow_up_branch.is_none() {
        Some(sim.repo.unused_branch(&slug(&req.prompt)).await)
    } else {
        None
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
            base_ref: base_ref.clone(),
            model: req.model.clone(),
            usage: None,
            error: None,
        };
        // A follow-up on a branch an existing task owns: a new session of that task.
        let existing = follow_up_branch.as_ref().and_then(|h| {
            store
                .tasks
                .iter()
                .rposition(|t| t.repo_key() == key && t.branch() == h)
        });
        let id = if let Some(i) = existing {
            let t = &mut store.tasks[i];
            if matches!(
                t.state(),
                TaskState::Queued | TaskState::InProgress | TaskState::Unknown(_)
            ) {
                return Reply::validation(
                    doc,
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
                );
            }
            t.sessions.push(session(t.branch().to_string()));
            if let Some(c) = req.create_pull_request {
                t.create_pull_request |= c;
            }
            t.touch();
            t.id.clone()
        } else {
            let mut branch = follow_up_branch
                .clone()
                .or(slug_branch)
                .unwrap_or_else(|| "copilot/task".into());
            if follow_up_branch.is_none() {
                let stem = branch.clone();
                let mut n = 2;
                while store.reserved_branches.contains(&branch) {
                    branch = format!("{stem}-{n}");
                    n += 1;
                }
                store.reserved_branches.push(branch.clone());
            }
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

/// Parsed list parameters (reference §3.2).
struct ListQuery {
    per_page: usize,
    page: usize,
    sort_created: bool,
    ascending: bool,
    states: Option<Vec<TaskState>>,
    archived: bool,
    since: Option<Timestamp>,
    creators: Vec<i64>,
}

fn list_query(sim: &Sim, pairs: &[(String, String)], doc: &str) -> Result<ListQuery, Reply> {
    let mut q = ListQuery {
        per_page: 30,
        page: 1,
        sort_created: false,
        ascending: false,
        states: None,
        archived: false,
        since: None,
        creators: Vec::new(),
    };
    let bad = |field: &str, msg: String| {
        Reply::validation(doc, vec![invalid(field, "Task", "invalid", Some(msg))])
    };
    for (k, v) in pairs {
        match k.as_str() {
            "per_page" => {
                let n: i64 = v.parse().map_err(|_| {
                    bad(
                        "per_page",
                        format!("per_page must be an integer, not {v:?}"),
                    )
                })?;
                if !(1..=100).contains(&n)
                    && sim.scenario.api.per_page == super::scenario::PerPagePolicy::Reject
                {
                    return Err(bad("per_page", "per_page must be between 1 and 100".into()));
                }
                q.per_page = usize::try_from(n.clamp(1, 100)).unwrap_or(30);
            }
            "page" => {
                let n: i64 = v
                    .parse()
                    .map_err(|_| bad("page", format!("page must be an integer, not {v:?}")))?;
                q.page = usize::try_from(n.max(1)).unwrap_or(1);
            }
            "sort" => {
                q.sort_created = match v.as_str() {
                    "updated_at" => false,
                    "created_at" => true,
                    _ => {
                        return Err(bad(
                            "sort",
                            format!("sort must be updated_at or created_at, not {v:?}"),
                        ));
                    }
                }
            }
            "direction" => {
                q.ascending = match v.as_str() {
                    "desc" => false,
                    "asc" => true,
                    _ => {
                        return Err(bad(
                            "direction",
                            format!("direction must be asc or desc, not {v:?}"),
                        ));
                    }
                }
            }
            "state" => {
                let mut states = Vec::new();
                for s in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    match TaskState::parse(s) {
                        TaskState::Unknown(_) => {
                            return Err(bad("state", format!("unknown state {s:?}")));
                        }
                        st => states.push(st),
                    }
                }
                q.states = Some(states);
            }
            "is_archived" => {
                q.archived = match v.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(bad(
                            "is_archived",
                            format!("is_archived must be true or false, not {v:?}"),
                        ));
                    }
                }
            }
            "since" => {
                q.since = Some(v.parse::<Timestamp>().map_err(|_| {
                    bad(
                        "since",
                        format!("since must be an ISO 8601 timestamp, not {v:?}"),
                    )
                })?);
            }
            "creator_id" | "creator_id[]" => {
                for part in v.split(',').filter(|s| !s.is_empty()) {
                    q.creators.push(part.trim().parse().map_err(|_| {
                        bad(
                            "creator_id",
                            format!("creator_id must be an integer, not {part:?}"),
                        )
                    })?);
                }
            }
            _ => {}
        }
    }
    Ok(q)
}

fn list_tasks(sim: &Sim, inc: &Incoming, m: &Matched, user: i64) -> Reply {
    let doc = doc_url(m.endpoint);
    let pairs = parse_query(&inc.query);
    let q = match list_query(sim, &pairs, doc) {
        Ok(q) => q,
        Err(r) => return r,
    };
    let repo_scoped = m.endpoint == Endpoint::ListRepoTasks;
    let key = repo_key(&m.owner, &m.repo);
    let store = sim.store();
    let in_scope: Vec<&SimTask> = store
        .tasks
        .iter()
        .filter(|t| {
            if repo_scoped {
                t.repo_key() == key
            } else {
                t.creator_id == user
            }
        })
        .collect();
    let total_active = in_scope.iter().filter(|t| t.archived_at.is_none()).count();
    let total_archived = in_scope.len() - total_active;
    let mut chosen: Vec<&SimTask> = in_scope
        .into_iter()
        .filter(|t| t.archived_at.is_some() == q.archived)
        .filter(|t| q.states.as_ref().is_none_or(|s| s.contains(&t.state())))
        .filter(|t| q.since.is_none_or(|s| t.updated_at >= s))
        .filter(|t| !repo_scoped || q.creators.is_empty() || q.creators.contains(&t.creator_id))
        .collect();
    chosen.sort_by_key(|t| {
        if q.sort_created {
            t.created_at
        } else {
            t.updated_at
        }
    });
    if !q.ascending {
        chosen.reverse();
    }
    let last = chosen.len().div_ceil(q.per_page).max(1);
    let start = (q.page - 1).saturating_mul(q.per_page);
    let tasks: Vec<Value> = chosen
        .iter()
        .skip(start)
        .take(q.per_page)
        .map(|t| t.to_json(&sim.base_url, false))
        .collect();
    let body = json!({
        "tasks": tasks,
        "total_active_count": total_active,
        "total_archived_count": total_archived,
    });
    let mut r = Reply::json(200, &body);
    r.headers.push((
        "link",
        link_header(&sim.base_url, &inc.path, &pairs, q.page, q.per_page, last),
    ));
    r
}

/// `Link` with `first` always, `prev` after page 1, `next` before the last page and `last`
/// (the URL of the final page), keeping every other query parameter.
pub(crate) fn link_header(
    base: &str,
    path: &str,
    pairs: &[(String, String)],
    page: usize,
    per_page: usize,
    last: usize,
) -> String {
    let url = |p: usize| {
        let mut q: Vec<String> = pairs
            .iter()
            .filter(|(k, _)| k != "page" && k != "per_page")
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect();
        q.push(format!("page={p}"));
        q.push(format!("per_page={per_page}"));
        format!("<{base}{path}?{}>", q.join("&"))
    };
    let mut links = Vec::new();
    if page < last {
        links.push(format!("{}; rel=\"next\"", url(page + 1)));
    }
    if page > 1 {
        links.push(format!("{}; rel=\"prev\"", url((page - 1).min(last))));
    }
    links.push(format!("{}; rel=\"first\"", url(1)));
    links.push(format!("{}; rel=\"last\"", url(last)));
    links.join(", ")
}

fn get_task(sim: &Sim, m: &Matched, user: i64) -> Reply {
    let store = sim.store();
    let key = repo_key(&m.owner, &m.repo);
    let found = store.tasks.iter().find(|t| {
        t.id.eq_ignore_ascii_case(&m.id)
            && if m.endpoint == Endpoint::GetRepoTask {
                t.repo_key() == key
            } else {
                t.creator_id == user
            }
    });
    match found {
        Some(t) => Reply::json(200, &t.to_json(&sim.base_url, true)),
        None => Reply::error(404, "Not Found", doc_url(m.endpoint)),
    }
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
