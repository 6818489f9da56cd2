//! The repository's own CI as GitHub's REST API reports it for one commit: check runs
//! (`GET /repos/{o}/{r}/commits/{ref}/check-runs`, paged), the combined commit status
//! (`GET …/commits/{ref}/status`), workflow runs of the commit (`GET …/actions/runs?head_sha=`,
//! where runs held at "Approve and run workflows" show `conclusion: action_required`), the
//! base branch's required status checks (`GET …/rules/branches/{branch}` and
//! `GET …/branches/{branch}/protection/required_status_checks`) and the cloud-agent
//! configuration (`GET …/copilot/cloud-agent/configuration`, `require_actions_workflow_approval`).
//! Wire types and the read-only calls, all retried and conditional like every GET; nothing
//! here waits, decides or approves — there is deliberately no call that approves a run.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::client::{Client, announce_retry};
use super::error::ApiError;
use super::transport::decode;

/// Most pages of check runs read for one commit (100 each).
const MAX_CHECK_RUN_PAGES: u32 = 10;

/// One check run (the fields the gate shows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRun {
    #[serde(default)]
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub head_sha: String,
    /// `queued`, `in_progress`, `completed` (also `waiting`, `requested`, `pending`).
    pub status: String,
    /// Set when completed: `success`, `failure`, `neutral`, `cancelled`, `skipped`,
    /// `timed_out`, `action_required`, `stale`.
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
    #[serde(default)]
    pub details_url: Option<String>,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub completed_at: Option<String>,
    #[serde(default)]
    pub output: Option<CheckRunOutput>,
}

/// `output` of a check run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRunOutput {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
}

/// One page of check runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRunList {
    #[serde(default)]
    pub total_count: u64,
    #[serde(default)]
    pub check_runs: Vec<CheckRun>,
}

/// One commit status of the combined status (the latest per context).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusEntry {
    pub context: String,
    /// `pending`, `success`, `failure`, `error`.
    pub state: String,
    #[serde(default)]
    pub target_url: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// `GET …/commits/{ref}/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CombinedStatus {
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub statuses: Vec<StatusEntry>,
}

/// One workflow run of a commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowRun {
    #[serde(default)]
    pub id: i64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub event: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default)]
    pub html_url: String,
    #[serde(default)]
    pub head_branch: Option<String>,
    #[serde(default)]
    pub head_sha: String,
}

impl WorkflowRun {
    /// Held at "Approve and run workflows".
    pub fn is_held(&self) -> bool {
        self.conclusion.as_deref() == Some("action_required")
            || self.status.as_deref() == Some("action_required")
    }
}

/// `GET …/actions/runs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowRunList {
    #[serde(default)]
    pub total_count: u64,
    #[serde(default)]
    pub workflow_runs: Vec<WorkflowRun>,
}

/// The repository's cloud-agent configuration (only the field the gate reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AgentConfiguration {
    /// Workflow runs on Copilot's pushes wait for a person's approval.
    #[serde(default)]
    pub require_actions_workflow_approval: Option<bool>,
}

/// Where the base branch's required status checks came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequiredChecks {
    /// Contexts, in the order found, without repeats.
    pub contexts: Vec<String>,
    /// What was read, for the report (`rules for the branch: 2`, `branch protection: not
    /// readable with this token (…)`).
    pub sources: Vec<String>,
    /// Neither source could be read: the list may be incomplete.
    pub unreadable: Vec<String>,
}

#[derive(Deserialize)]
struct BranchRule {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    parameters: Option<RuleParameters>,
}

#[derive(Deserialize)]
struct RuleParameters {
    #[serde(default)]
    required_status_checks: Vec<RequiredContext>,
}

#[derive(Deserialize)]
struct RequiredContext {
    context: String,
}

#[derive(Deserialize)]
struct ProtectionChecks {
    #[serde(default)]
    contexts: Vec<String>,
    #[serde(default)]
    checks: Vec<RequiredContext>,
}

/// The permission (workflow `permissions:` key) a read of the repository's CI needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CiRead {
    CheckRuns,
    Statuses,
    WorkflowRuns,
    Rules,
    Protection,
    Configuration,
}

impl CiRead {
    /// The permission to grant, as a workflow's `permissions:` says it.
    pub fn permission(self) -> &'static str {
        match self {
            CiRead::CheckRuns => "checks: read",
            CiRead::Statuses => "statuses: read",
            CiRead::WorkflowRuns => "actions: read",
            CiRead::Rules => "contents: read (metadata)",
            CiRead::Protection => {
                "administration: read (a fine-grained token; the workflow token cannot have it)"
            }
            CiRead::Configuration => {
                "administration: read on the repository (a fine-grained token)"
            }
        }
    }

    /// What is read, for messages.
    pub fn what(self) -> &'static str {
        match self {
            CiRead::CheckRuns => "check runs",
            CiRead::Statuses => "commit statuses",
            CiRead::WorkflowRuns => "workflow runs",
            CiRead::Rules => "rules for the branch",
            CiRead::Protection => "branch protection",
            CiRead::Configuration => "the cloud-agent configuration",
        }
    }
}

/// A read of the repository's CI that failed, with the permission it needs.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {what}: {source}{hint}", what = read.what(), hint = permission_hint(*read, source))]
pub struct CiReadError {
    pub read: CiRead,
    #[source]
    pub source: ApiError,
}

impl CiReadError {
    /// A 403/404 that a missing permission explains (as opposed to an outage).
    pub fn is_permission(&self) -> bool {
        matches!(
            self.source,
            ApiError::Forbidden { .. } | ApiError::NotFound { .. } | ApiError::Unauthorized { .. }
        )
    }
}

fn permission_hint(read: CiRead, e: &ApiError) -> String {
    match e {
        ApiError::Forbidden { .. } | ApiError::NotFound { .. } => format!(
            " (the token needs `{}`: grant it in the workflow's `permissions:` for `github-token`)",
            read.permission()
        ),
        _ => String::new(),
    }
}

impl Client {
    /// Every check run of `sha` (the latest of each name, GitHub's default `filter=latest`),
    /// following `Link: rel="next"` for at most 10 pages of 100.
    pub async fn list_check_runs(&self, sha: &str) -> Result<Vec<CheckRun>, CiReadError> {
        let wrap = |source| CiReadError {
            read: CiRead::CheckRuns,
            source,
        };
        let mut url = self.repo_url(&["commits", sha, "check-runs"]);
        url.query_pairs_mut().append_pair("per_page", "100");
        let mut out = Vec::new();
        self.get_pages(url, MAX_CHECK_RUN_PAGES, |page: CheckRunList| {
            out.extend(page.check_runs);
        })
        .await
        .map_err(wrap)?;
        Ok(out)
    }

    /// The combined status of `sha` (the latest status of each context).
    pub async fn combined_status(&self, sha: &str) -> Result<CombinedStatus, CiReadError> {
        let wrap = |source| CiReadError {
            read: CiRead::Statuses,
            source,
        };
        let mut url = self.repo_url(&["commits", sha, "status"]);
        url.query_pairs_mut().append_pair("per_page", "100");
        let reply = self.get(&url, &mut announce_retry).await.map_err(wrap)?;
        decode(&Method::GET, &url, &reply).map_err(wrap)
    }

    /// The workflow runs of `sha` (first page of 100: a commit has few).
    pub async fn workflow_runs(&self, sha: &str) -> Result<Vec<WorkflowRun>, CiReadError> {
        let wrap = |source| CiReadError {
            read: CiRead::WorkflowRuns,
            source,
        };
        let mut url = self.repo_url(&["actions", "runs"]);
        url.query_pairs_mut()
            .append_pair("head_sha", sha)
            .append_pair("per_page", "100");
        let reply = self.get(&url, &mut announce_retry).await.map_err(wrap)?;
        let list: WorkflowRunList = decode(&Method::GET, &url, &reply).map_err(wrap)?;
        Ok(list.workflow_runs)
    }

    /// `require_actions_workflow_approval` of the repository's cloud-agent configuration.
    pub async fn agent_configuration(&self) -> Result<AgentConfiguration, CiReadError> {
        let wrap = |source| CiReadError {
            read: CiRead::Configuration,
            source,
        };
        let url = self.repo_url(&["copilot", "cloud-agent", "configuration"]);
        let reply = self.get(&url, &mut announce_retry).await.map_err(wrap)?;
        decode(&Method::GET, &url, &reply).map_err(wrap)
    }

    /// The required status checks of `branch`: from the rules that apply to it (rulesets;
    /// readable with `metadata`) and from its branch protection (404 when unprotected; 403
    /// without administration access, then only noted). An error only when the rules
    /// themselves cannot be read.
    pub async fn required_checks(&self, branch: &str) -> Result<RequiredChecks, CiReadError> {
        let mut out = RequiredChecks::default();
        let add = |out: &mut RequiredChecks, context: String| {
            if !out.contexts.contains(&context) {
                out.contexts.push(context);
            }
        };
        let rules_url = self.repo_url(&["rules", "branches", branch]);
        let wrap = |source| CiReadError {
            read: CiRead::Rules,
            source,
        };
        let reply = self
            .get(&rules_url, &mut announce_retry)
            .await
            .map_err(wrap)?;
        let rules: Vec<BranchRule> = decode(&Method::GET, &rules_url, &reply).map_err(wrap)?;
        let mut from_rules = 0;
        for rule in rules
            .into_iter()
            .filter(|r| r.kind == "required_status_checks")
        {
            for c in rule
                .parameters
                .map(|p| p.required_status_checks)
                .unwrap_or_default()
            {
                from_rules += 1;
                add(&mut out, c.context);
            }
        }
        out.sources
            .push(format!("rules for the branch `{branch}`: {from_rules}"));

        let url = self.repo_url(&["branches", branch, "protection", "required_status_checks"]);
        match self.get(&url, &mut announce_retry).await {
            Ok(reply) => {
                let p: ProtectionChecks =
                    decode(&Method::GET, &url, &reply).map_err(|source| CiReadError {
                        read: CiRead::Protection,
                        source,
                    })?;
                // `checks` repeats `contexts` with the app of each: count each context once.
                let mut listed: Vec<String> = Vec::new();
                for c in p
                    .contexts
                    .into_iter()
                    .chain(p.checks.into_iter().map(|c| c.context))
                {
                    if !listed.contains(&c) {
                        listed.push(c.clone());
                    }
                    add(&mut out, c);
                }
                let n = listed.len();
                out.sources
                    .push(format!("branch protection of `{branch}`: {n}"));
            }
            Err(ApiError::NotFound { .. }) => out
                .sources
                .push(format!("branch protection of `{branch}`: none")),
            Err(e @ (ApiError::Forbidden { .. } | ApiError::Unauthorized { .. })) => {
                let e = CiReadError {
                    read: CiRead::Protection,
                    source: e,
                };
                out.unreadable.push(e.to_string());
            }
            Err(source) => {
                return Err(CiReadError {
                    read: CiRead::Protection,
                    source,
                });
            }
        }
        Ok(out)
    }
}
