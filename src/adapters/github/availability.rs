//! Is Copilot cloud agent enabled for the repository? The agent-tasks API answers a bare
//! 404 both for a repository the token cannot see and for one where the agent is off; this
//! file asks GitHub's cloud-agent management endpoints which it is, so the first run of a
//! new user ends with a sentence instead of a status code:
//! `GET /orgs/{org}/copilot/coding-agent/permissions` (`enabled_repositories`: `all`,
//! `selected` or `none`), then `GET /orgs/{org}/copilot/coding-agent/permissions/repositories`
//! for `selected`, and, where the organization's settings cannot be read (a personal
//! account, a token that is not an owner's), `GET /repos/{owner}/{repo}/copilot/cloud-agent/configuration`.
//! Documented in GitHub's REST reference, "Copilot cloud agent management" and "Copilot
//! coding agent management". It only reads; it never changes a setting.

use reqwest::Method;
use serde::Deserialize;

use super::client::{Client, announce_retry};
use super::error::ApiError;
use super::transport::decode;

/// What GitHub's settings say about the cloud agent for the client's repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentAvailability {
    /// The organization allows it for all repositories, or for this one among those selected,
    /// or the repository's cloud-agent configuration is readable.
    Enabled,
    /// The organization allows it for no repository.
    DisabledForOrganization { org: String },
    /// The organization allows it for selected repositories, and this is not one of them.
    NotSelected { org: String },
    /// Neither the organization's settings nor the repository's configuration could be read.
    Unknown,
}

impl AgentAvailability {
    /// The explanation for a user, when the settings explain a 404 of the agent-tasks API.
    pub fn explain(&self, repository: &str) -> Option<String> {
        const ENABLE: &str = "an organization owner can enable it in the organization's settings (Copilot → Cloud agent), for all repositories or for selected ones; GitHub's REST reference documents the same setting under \"Copilot coding agent management\"";
        match self {
            AgentAvailability::DisabledForOrganization { org } => Some(format!(
                "Copilot cloud agent is not enabled for {repository}: the organization `{org}` allows it for no repository. To use agent-gate here, {ENABLE}"
            )),
            AgentAvailability::NotSelected { org } => Some(format!(
                "Copilot cloud agent is not enabled for {repository}: the organization `{org}` allows it only for selected repositories, and this is not one of them. To use agent-gate here, {ENABLE}"
            )),
            AgentAvailability::Enabled | AgentAvailability::Unknown => None,
        }
    }
}

#[derive(Deserialize)]
struct OrgPermissions {
    enabled_repositories: String,
}

#[derive(Deserialize)]
struct SelectedRepositories {
    #[serde(default)]
    repositories: Vec<RepoName>,
}

#[derive(Deserialize)]
struct RepoName {
    #[serde(default)]
    full_name: String,
    #[serde(default)]
    name: String,
}

impl Client {
    /// Ask GitHub's cloud-agent settings whether the agent is enabled for this repository.
    /// Never fails: what cannot be read is [`AgentAvailability::Unknown`].
    pub async fn agent_availability(&self) -> AgentAvailability {
        let org = self.owner().to_string();
        match self.org_setting(&org).await {
            Ok(Some(a)) => return a,
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(error = %e, "the organization's cloud-agent setting is not readable");
            }
        }
        let url = self.repo_url(&["copilot", "cloud-agent", "configuration"]);
        match self.get(&url, &mut announce_retry).await {
            Ok(_) => AgentAvailability::Enabled,
            Err(e) => {
                tracing::debug!(error = %e, "the repository's cloud-agent configuration is not readable");
                AgentAvailability::Unknown
            }
        }
    }

    /// The organization's setting: `Ok(None)` when it does not decide (a `selected` list that
    /// could not be read).
    async fn org_setting(&self, org: &str) -> Result<Option<AgentAvailability>, ApiError> {
        let url = self.url(&["orgs", org, "copilot", "coding-agent", "permissions"]);
        let reply = self.get(&url, &mut announce_retry).await?;
        let permissions: OrgPermissions = decode(&Method::GET, &url, &reply)?;
        let org = org.to_string();
        Ok(Some(match permissions.enabled_repositories.as_str() {
            "all" => AgentAvailability::Enabled,
            "none" => AgentAvailability::DisabledForOrganization { org },
            "selected" => {
                let mut url = self.url(&[
                    "orgs",
                    &org,
                    "copilot",
                    "coding-agent",
                    "permissions",
                    "repositories",
                ]);
                url.query_pairs_mut().append_pair("per_page", "100");
                let Ok(reply) = self.get(&url, &mut announce_retry).await else {
                    return Ok(None);
                };
                let Ok(list) = decode::<SelectedRepositories>(&Method::GET, &url, &reply) else {
                    return Ok(None);
                };
                let full = format!("{org}/{}", self.repo());
                if list.repositories.iter().any(|r| {
                    r.full_name.eq_ignore_ascii_case(&full)
                        || r.name.eq_ignore_ascii_case(self.repo())
                }) {
                    AgentAvailability::Enabled
                } else {
                    AgentAvailability::NotSelected { org }
                }
            }
            _ => return Ok(None),
        }))
    }
}
