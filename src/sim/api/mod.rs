//! The agent-tasks endpoints (reference §3–§7: create, get, the two lists) and [`dispatch`],
//! which hands each routed, authenticated request to its endpoint — these and the
//! repository, CI and configuration endpoints. Each endpoint returns a `Reply`; auth, rate
//! limits, faults and common headers are the pipeline's business.

mod create;
mod list;

use std::sync::Arc;

use super::repos;
use super::route::{Endpoint, Matched};
use super::state::{Incoming, Sim};
use super::store::repo_key;

use super::reply::{Reply, doc_url, invalid, object_body};

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
