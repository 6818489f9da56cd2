//! The endpoints the simulator serves, by name: path matching for incoming requests and the
//! endpoint names scenarios use to aim faults. Owns URL shapes only, not behaviour.

use std::fmt::{self, Write as _};

/// One endpoint of the simulator (method and path template).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /agents/tasks`
    ListTasks,
    /// `GET /agents/tasks/{task_id}`
    GetTask,
    /// `GET /agents/repos/{owner}/{repo}/tasks`
    ListRepoTasks,
    /// `POST /agents/repos/{owner}/{repo}/tasks`
    CreateTask,
    /// `GET /agents/repos/{owner}/{repo}/tasks/{task_id}`
    GetRepoTask,
    /// `GET /repos/{owner}/{repo}`
    GetRepo,
    /// `GET /repos/{owner}/{repo}/pulls`
    ListPulls,
    /// `POST /repos/{owner}/{repo}/statuses/{sha}`
    CreateStatus,
    /// `POST /repos/{owner}/{repo}/issues/{issue_number}/comments`
    CreateComment,
    /// `POST /repos/{owner}/{repo}/issues/{issue_number}/labels`
    AddLabels,
    /// `GET /repos/{owner}/{repo}/issues/{issue_number}/comments`
    ListComments,
    /// `PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}`
    UpdateComment,
    /// `POST /graphql` (only `query { viewer { login databaseId } }`)
    Graphql,
    /// `GET /repos/{owner}/{repo}/copilot/cloud-agent/configuration`
    GetAgentConfiguration,
    /// `GET /orgs/{org}/copilot/coding-agent/permissions`
    GetOrgAgentPermissions,
    /// `GET /repos/{owner}/{repo}/commits/{ref}/check-runs`
    ListCheckRuns,
    /// `GET /repos/{owner}/{repo}/commits/{ref}/status`
    GetCombinedStatus,
    /// `GET /repos/{owner}/{repo}/actions/runs`
    ListWorkflowRuns,
    /// `GET /repos/{owner}/{repo}/rules/branches/{branch}`
    GetBranchRules,
    /// `GET /repos/{owner}/{repo}/branches/{branch}/protection/required_status_checks`
    GetRequiredStatusChecks,
}

impl Endpoint {
    /// Every endpoint, in documentation order.
    pub const ALL: [Endpoint; 20] = [
        Endpoint::ListTasks,
        Endpoint::GetTask,
        Endpoint::ListRepoTasks,
        Endpoint::CreateTask,
        Endpoint::GetRepoTask,
        Endpoint::GetRepo,
        Endpoint::ListPulls,
        Endpoint::CreateStatus,
        Endpoint::CreateComment,
        Endpoint::AddLabels,
        Endpoint::ListComments,
        Endpoint::UpdateComment,
        Endpoint::Graphql,
        Endpoint::GetAgentConfiguration,
        Endpoint::GetOrgAgentPermissions,
        Endpoint::ListCheckRuns,
        Endpoint::GetCombinedStatus,
        Endpoint::ListWorkflowRuns,
        Endpoint::GetBranchRules,
        Endpoint::GetRequiredStatusChecks,
    ];

    /// The scenario name (`create-task`, …).
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::ListTasks => "list-tasks",
            Endpoint::GetTask => "get-task",
            Endpoint::ListRepoTasks => "list-repo-tasks",
            Endpoint::CreateTask => "create-task",
            Endpoint::GetRepoTask => "get-repo-task",
            Endpoint::GetRepo => "get-repo",
            Endpoint::ListPulls => "list-pulls",
            Endpoint::CreateStatus => "create-status",
            Endpoint::CreateComment => "create-comment",
            Endpoint::AddLabels => "add-labels",
            Endpoint::ListComments => "list-comments",
            Endpoint::UpdateComment => "update-comment",
            Endpoint::Graphql => "graphql",
            Endpoint::GetAgentConfiguration => "get-agent-configuration",
            Endpoint::GetOrgAgentPermissions => "get-org-agent-permissions",
            Endpoint::ListCheckRuns => "list-check-runs",
            Endpoint::GetCombinedStatus => "get-combined-status",
            Endpoint::ListWorkflowRuns => "list-workflow-runs",
            Endpoint::GetBranchRules => "get-branch-rules",
            Endpoint::GetRequiredStatusChecks => "get-required-status-checks",
        }
    }

    /// The HTTP method.
    pub fn method(self) -> &'static str {
        match self {
            Endpoint::CreateTask
            | Endpoint::CreateStatus
            | Endpoint::CreateComment
            | Endpoint::AddLabels
            | Endpoint::Graphql => "POST",
            Endpoint::UpdateComment => "PATCH",
            _ => "GET",
        }
    }

    /// The path template, spelled as in GitHub's documentation.
    pub fn template(self) -> &'static str {
        match self {
            Endpoint::ListTasks => "/agents/tasks",
            Endpoint::GetTask => "/agents/tasks/{task_id}",
            Endpoint::ListRepoTasks | Endpoint::CreateTask => "/agents/repos/{owner}/{repo}/tasks",
            Endpoint::GetRepoTask => "/agents/repos/{owner}/{repo}/tasks/{task_id}",
            Endpoint::GetRepo => "/repos/{owner}/{repo}",
            Endpoint::ListPulls => "/repos/{owner}/{repo}/pulls",
            Endpoint::CreateStatus => "/repos/{owner}/{repo}/statuses/{sha}",
            Endpoint::CreateComment | Endpoint::ListComments => {
                "/repos/{owner}/{repo}/issues/{issue_number}/comments"
            }
            Endpoint::AddLabels => "/repos/{owner}/{repo}/issues/{issue_number}/labels",
            Endpoint::UpdateComment => "/repos/{owner}/{repo}/issues/comments/{comment_id}",
            Endpoint::Graphql => "/graphql",
            Endpoint::GetAgentConfiguration => {
                "/repos/{owner}/{repo}/copilot/cloud-agent/configuration"
            }
            Endpoint::GetOrgAgentPermissions => "/orgs/{org}/copilot/coding-agent/permissions",
            Endpoint::ListCheckRuns => "/repos/{owner}/{repo}/commits/{ref}/check-runs",
            Endpoint::GetCombinedStatus => "/repos/{owner}/{repo}/commits/{ref}/status",
            Endpoint::ListWorkflowRuns => "/repos/{owner}/{repo}/actions/runs",
            Endpoint::GetBranchRules => "/repos/{owner}/{repo}/rules/branches/{branch}",
            Endpoint::GetRequiredStatusChecks => {
                "/repos/{owner}/{repo}/branches/{branch}/protection/required_status_checks"
            }
        }
    }

    /// Parse a scenario's endpoint: a name (`create-task`) or `METHOD /template`
    /// (`POST /agents/repos/{owner}/{repo}/tasks`).
    pub fn parse(s: &str) -> Option<Endpoint> {
        let s = s.trim();
        Endpoint::ALL.into_iter().find(|e| {
            e.name() == s
                || s.split_once(' ').is_some_and(|(m, p)| {
                    m.eq_ignore_ascii_case(e.method()) && p.trim() == e.template()
                })
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} {})", self.name(), self.method(), self.template())
    }
}

/// A request matched to an endpoint, with its path parameters (percent-decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub endpoint: Endpoint,
    pub owner: String,
    pub repo: String,
    /// `task_id`, `sha`, `ref`, `branch`, `issue_number` or `comment_id`, whichever the
    /// template has.
    pub id: String,
}

/// Match a method and a raw path. A trailing slash, an empty segment or an unknown method
/// does not match (GitHub answers 404 for those).
#[allow(
    clippy::many_single_char_names,
    reason = "o, r, n: owner, repo, number segments of the templates"
)]
pub fn match_path(method: &str, path: &str) -> Option<Matched> {
    let rest = path.strip_prefix('/')?;
    let segs: Vec<String> = rest.split('/').map(percent_decode).collect();
    if segs.iter().any(String::is_empty) {
        return None;
    }
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = |endpoint: Endpoint, owner: &str, repo: &str, id: &str| Matched {
        endpoint,
        owner: owner.to_string(),
        repo: repo.to_string(),
        id: id.to_string(),
    };
    let found = match (method, s.as_slice()) {
        ("GET", ["agents", "tasks"]) => m(Endpoint::ListTasks, "", "", ""),
        ("GET", ["agents", "tasks", id]) => m(Endpoint::GetTask, "", "", id),
        ("GET", ["agents", "repos", o, r, "tasks"]) => m(Endpoint::ListRepoTasks, o, r, ""),
        ("POST", ["agents", "repos", o, r, "tasks"]) => m(Endpoint::CreateTask, o, r, ""),
        ("GET", ["agents", "repos", o, r, "tasks", id]) => m(Endpoint::GetRepoTask, o, r, id),
        ("GET", ["repos", o, r]) => m(Endpoint::GetRepo, o, r, ""),
        ("GET", ["repos", o, r, "pulls"]) => m(Endpoint::ListPulls, o, r, ""),
        ("POST", ["repos", o, r, "statuses", sha]) => m(Endpoint::CreateStatus, o, r, sha),
        ("POST", ["repos", o, r, "issues", n, "comments"]) => m(Endpoint::CreateComment, o, r, n),
        ("POST", ["repos", o, r, "issues", n, "labels"]) => m(Endpoint::AddLabels, o, r, n),
        ("GET", ["repos", o, r, "issues", n, "comments"]) => m(Endpoint::ListComments, o, r, n),
        ("PATCH", ["repos", o, r, "issues", "comments", id]) => {
            m(Endpoint::UpdateComment, o, r, id)
        }
        ("POST", ["graphql"]) => m(Endpoint::Graphql, "", "", ""),
        ("GET", ["repos", o, r, "copilot", "cloud-agent", "configuration"]) => {
            m(Endpoint::GetAgentConfiguration, o, r, "")
        }
        ("GET", ["repos", o, r, "commits", rf, "check-runs"]) => {
            m(Endpoint::ListCheckRuns, o, r, rf)
        }
        ("GET", ["repos", o, r, "commits", rf, "status"]) => {
            m(Endpoint::GetCombinedStatus, o, r, rf)
        }
        ("GET", ["repos", o, r, "actions", "runs"]) => m(Endpoint::ListWorkflowRuns, o, r, ""),
        // A branch name may hold `/`, sent as is or as `%2F`.
        ("GET", ["repos", o, r, "rules", "branches", branch @ ..]) if !branch.is_empty() => {
            m(Endpoint::GetBranchRules, o, r, &branch.join("/"))
        }
        ("GET", ["repos", o, r, "branches", rest @ ..])
            if rest.len() >= 3 && rest.ends_with(&["protection", "required_status_checks"]) =>
        {
            let branch = rest[..rest.len() - 2].join("/");
            m(Endpoint::GetRequiredStatusChecks, o, r, &branch)
        }
        // The organization is the id: no repository of it is named.
        ("GET", ["orgs", org, "copilot", "coding-agent", "permissions"]) => {
            m(Endpoint::GetOrgAgentPermissions, "", "", org)
        }
        _ => return None,
    };
    Some(found)
}

/// Decode `%XX` escapes (and `+` is kept as is, as in a path). Invalid escapes stay literal.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Percent-encode a query value (RFC 3986 unreserved characters stay).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~' | b',' | b':') {
            out.push(char::from(c));
        } else {
            let _ = write!(out, "%{c:02X}");
        }
    }
    out
}

/// Split a raw query string into decoded pairs (`+` means space), in order.
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}
