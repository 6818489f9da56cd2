//! What an endpoint of the simulator answers before the pipeline adds the common headers:
//! [`Reply`], and the shapes GitHub's answers share — error and validation bodies, each
//! endpoint's documentation URL, JSON-object request bodies, the `Link` header of a page.
//! Every endpoint and the pipeline build their answers from these.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Response, StatusCode};
use serde_json::Value;

use super::route::{Endpoint, percent_encode};
use crate::adapters::github::types::{ErrorBody, ValidationError};

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

/// Parse a JSON object body: 400 for invalid JSON or a non-object (reference §7).
pub(crate) fn object_body(body: &[u8], doc: &str) -> Result<serde_json::Map<String, Value>, Reply> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|_| Reply::error(400, "Problems parsing JSON", doc))?;
    match v {
        Value::Object(o) => Ok(o),
        _ => Err(Reply::error(400, "Body should be a JSON object", doc)),
    }
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
