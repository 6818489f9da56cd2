//! The agent-tasks endpoints (reference §3–§7: create, get, the two lists) and what every
//! endpoint shares: the response type [`Reply`], validation errors, documentation URLs,
//! JSON-object bodies and [`dispatch`] to the routed endpoint. This file also holds the
//! single-task GET; creation is in `create`, the lists and the `Link` header in `list`, the
//! repository endpoints in [`super::repos`]. Each endpoint takes a routed, authenticated
//! request and returns a [`Reply`]; auth, rate limits, faults and common headers are the
//! pipeline's business ([`super::server`]).

mod create;
mod list;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Response, StatusCode};
use serde_json::Value;

use super::repos;
use super::route::{Endpoint, Matched};
use super::server::{Incoming, Sim};
use super::store::repo_key;
use crate::github::types::{ErrorBody, ValidationError};
pub(crate) use list::link_header;

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
        Endpoint::Graphql => "https://docs.github.com/graphql/reference/queries#viewer",
        Endpoint::GetAgentConfiguration => {
            "https://docs.github.com/rest/copilot/copilot-cloud-agent-management"
        }
        Endpoint::GetOrgAgentPermissions => {
            "https://docs.github.com/rest/copilot/copilot-coding-agent-management"
        }
        Endpoint::ListCheckRuns => {
            "https://docs.github.com/rest/checks/runs#list-check-runs-for-a-git-reference"
        }
        Endpoint::GetCombinedStatus => {
            "https://docs.github.com/rest/commits/statuses#get-the-combined-status-for-a-specific-reference"
        }
        Endpoint::ListWorkflowRuns => {
            "https://docs.github.com/rest/actions/workflow-runs#list-workflow-runs-for-a-repository"
        }
        Endpoint::GetBranchRules => {
            "https://docs.github.com/rest/repos/rules#get-rules-for-a-branch"
        }
        Endpoint::GetRequiredStatusChecks => {
            "https://docs.github.com/rest/branches/branch-protection#get-status-checks-protection"
        }
    }
}

/// Run the endpoint a request was routed to.
pub(crate) async fn dispatch(sim: &Arc<Sim>, inc: &Incoming, m: &Matched, user: i64) -> Reply {
    match m.endpoint {
        Endpoint::CreateTask => create::create_task(sim, inc, m, user).await,
        Endpoint::ListTasks | Endpoint::ListRepoTasks => list::list_tasks(sim, inc, m, user),
        Endpoint::GetTask | Endpoint::GetRepoTask => get_task(sim, m, user),
        Endpoint::GetRepo => repos::get_repo(sim, m).await,
        Endpoint::ListPulls => repos::list_pulls(sim, inc, m),
        Endpoint::CreateStatus => repos::create_status(sim, inc, m).await,
        Endpoint::CreateComment => repos::create_comment(sim, inc, m, user),
        Endpoint::AddLabels => repos::add_labels(sim, inc, m),
        Endpoint::ListComments => repos::list_comments(sim, inc, m),
        Endpoint::UpdateComment => repos::update_comment(sim, inc, m),
        Endpoint::Graphql => repos::graphql_viewer(inc, user),
        Endpoint::GetAgentConfiguration => agent_configuration(sim, m),
        Endpoint::ListCheckRuns => super::ci::list_check_runs(sim, inc, m),
        Endpoint::GetCombinedStatus => super::ci::combined_status(sim, m),
        Endpoint::ListWorkflowRuns => super::ci::workflow_runs(sim, inc, m),
        Endpoint::GetBranchRules => super::ci::branch_rules(sim, m),
        Endpoint::GetRequiredStatusChecks => super::ci::protection_checks(sim, m),
        Endpoint::GetOrgAgentPermissions => Reply::json(
            200,
            &serde_json::json!({
                "enabled_repositories": if sim.scenario.api.agent_disabled { "none" } else { "all" },
            }),
        ),
    }
}

/// The repository's cloud-agent configuration (GitHub's defaults: workflow approval
/// required unless the scenario's `ci.require-approval` says otherwise, the review tools on,
/// the firewall on); 404 where the agent is disabled.
fn agent_configuration(sim: &Sim, m: &Matched) -> Reply {
    if sim.scenario.api.agent_disabled {
        return Reply::error(404, "Not Found", doc_url(m.endpoint));
    }
    Reply::json(
        200,
        &serde_json::json!({
            "require_actions_workflow_approval": sim.scenario.ci.require_approval,
            "enabled_tools": {
                "codeql": true,
                "copilot_code_review": true,
                "secret_scanning": true,
                "dependency_vulnerability_checks": true,
            },
            "is_firewall_enabled": true,
            "custom_allowlist": [],
            "mcp_configuration": null,
        }),
    )
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
