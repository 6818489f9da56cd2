//! The repository's own CI in the simulator (a scenario's `ci:`): every commit the simulated
//! agent pushes starts the scripted check runs and commit statuses; runs of a `workflow` are
//! held at "Approve and run workflows" (`action_required`) while the cloud-agent
//! configuration requires approval, until a person approves them (`approved-after`, or a
//! test through the handle). Served as GitHub's REST documentation describes them: check
//! runs for a ref (paged, `check_name` filter), the combined status, workflow runs by
//! `head_sha`, rules for a branch (`required_status_checks`), branch protection's required
//! status checks (404 when unprotected) and the cloud-agent configuration. States are
//! computed from the time since the push, so nothing here runs on a timer.

use serde_json::{Value, json};
use tokio::time::Instant;

use super::reply::{Reply, doc_url, link_header};
use super::route::{Matched, parse_query};
use super::scenario::CiCheck;
use super::state::{Incoming, Sim};
use super::store::{CiHead, repo_key, stable_id, ts};

/// Record a pushed commit: its CI starts now.
pub(crate) fn pushed(sim: &Sim, repo: &str, sha: &str, branch: &str) {
    let now = Instant::now();
    let approved = sim
        .scenario
        .ci
        .approved_after
        .map(|d| now + d.div_f64(sim.time_scale));
    let mut store = sim.store();
    store.ci_heads.retain(|h| !(h.repo == repo && h.sha == sha));
    store.ci_heads.push(CiHead {
        repo: repo.to_string(),
        sha: sha.to_string(),
        branch: branch.to_string(),
        pushed: now,
        pushed_wall: jiff::Timestamp::now(),
        approved,
    });
}

/// A person approves the held workflow runs of every pushed commit of `repo` that has
/// some: what "Approve and run workflows" does. Returns how many commits it released.
pub(crate) fn approve(sim: &Sim, repo: &str) -> usize {
    let now = Instant::now();
    let mut store = sim.store();
    let mut n = 0;
    for h in store.ci_heads.iter_mut().filter(|h| h.repo == repo) {
        if h.approved.is_none_or(|a| a > now) {
            h.approved = Some(now);
            n += 1;
        }
    }
    n
}

fn head(sim: &Sim, m: &Matched) -> Option<CiHead> {
    let key = repo_key(&m.owner, &m.repo);
    let store = sim.store();
    store
        .ci_heads
        .iter()
        .find(|h| h.repo == key && (h.sha == m.id || h.branch == m.id))
        .cloned()
}

/// Held: a workflow's run while approval is required and nobody approved yet.
fn held(sim: &Sim, head: &CiHead, check: &CiCheck, now: Instant) -> bool {
    check.workflow.is_some()
        && sim.scenario.ci.require_approval
        && head.approved.is_none_or(|a| now < a)
}

/// Simulated time since `from` (real time × the time scale).
fn simulated(sim: &Sim, from: Instant, now: Instant) -> std::time::Duration {
    now.saturating_duration_since(from).mul_f64(sim.time_scale)
}

fn wall(head: &CiHead, sim: &Sim, at: Instant, plus: std::time::Duration) -> String {
    let offset = simulated(sim, head.pushed, at) + plus;
    let offset = jiff::SignedDuration::try_from(offset).unwrap_or_default();
    ts(head
        .pushed_wall
        .checked_add(offset)
        .unwrap_or(head.pushed_wall))
}

/// The check run `check` of `head` now, or `None` while it does not exist (held).
fn check_run(
    sim: &Sim,
    m: &Matched,
    head: &CiHead,
    check: &CiCheck,
    now: Instant,
) -> Option<Value> {
    if held(sim, head, check, now) {
        return None;
    }
    let start = match (
        check.workflow.is_some() && sim.scenario.ci.require_approval,
        head.approved,
    ) {
        (true, Some(a)) => a,
        _ => head.pushed,
    };
    let elapsed = simulated(sim, start, now);
    let id = stable_id(&format!("{}/{}", head.sha, check.name), 3_000_000_000);
    let (status, conclusion, started_at, completed_at) = if elapsed < check.queued {
        ("queued", None, None, None)
    } else if check.conclusion.is_none() || elapsed < check.queued + check.duration {
        (
            "in_progress",
            None,
            Some(wall(head, sim, start, check.queued)),
            None,
        )
    } else {
        (
            "completed",
            check.conclusion.clone(),
            Some(wall(head, sim, start, check.queued)),
            Some(wall(head, sim, start, check.queued + check.duration)),
        )
    };
    let html = format!("{}/{}/{}/runs/{id}", sim.base_url, m.owner, m.repo);
    Some(json!({
        "id": id,
        "name": check.name,
        "head_sha": head.sha,
        "status": status,
        "conclusion": conclusion,
        "html_url": html,
        "details_url": html,
        "started_at": started_at,
        "completed_at": completed_at,
        "output": {
            "title": if status == "completed" { check.title.clone() } else { None },
            "summary": if status == "completed" { check.summary.clone() } else { None },
        },
        "app": { "slug": if check.workflow.is_some() { "github-actions" } else { "sim-ci" } },
    }))
}

/// `GET /repos/{o}/{r}/commits/{ref}/check-runs`.
pub(crate) fn list_check_runs(sim: &Sim, inc: &Incoming, m: &Matched) -> Reply {
    let pairs = parse_query(&inc.query);
    let get = |k: &str| {
        pairs
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    let per_page = get("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page = get("page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let now = Instant::now();
    let runs: Vec<Value> = match head(sim, m) {
        Some(h) => sim
            .scenario
            .ci
            .checks
            .iter()
            .filter(|c| get("check_name").is_none_or(|n| n == c.name))
            .filter_map(|c| check_run(sim, m, &h, c, now))
            .collect(),
        None => Vec::new(),
    };
    let total = runs.len();
    let last = total.div_ceil(per_page).max(1);
    let shown: Vec<Value> = runs
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let mut reply = Reply::json(200, &json!({ "total_count": total, "check_runs": shown }));
    if last > 1 {
        reply.headers.push((
            "link",
            link_header(&sim.base_url, &inc.path, &pairs, page, per_page, last),
        ));
    }
    reply
}

/// `GET /repos/{o}/{r}/commits/{ref}/status`: the scripted statuses, with any the gate
/// itself set on the commit.
pub(crate) fn combined_status(sim: &Sim, m: &Matched) -> Reply {
    let now = Instant::now();
    let mut statuses: Vec<Value> = Vec::new();
    let head = head(sim, m);
    if let Some(h) = &head {
        for st in &sim.scenario.ci.statuses {
            let elapsed = simulated(sim, h.pushed, now);
            if elapsed < st.after {
                continue;
            }
            let (state, updated) = match &st.state {
                Some(state) if elapsed >= st.after + st.duration => (
                    state.clone(),
                    wall(h, sim, h.pushed, st.after + st.duration),
                ),
                _ => ("pending".to_string(), wall(h, sim, h.pushed, st.after)),
            };
            statuses.push(json!({
                "context": st.context,
                "state": state,
                "target_url": format!("{}/ci/{}/{}", sim.base_url, h.sha, st.context),
                "description": st.description,
                "created_at": wall(h, sim, h.pushed, st.after),
                "updated_at": updated,
            }));
        }
    }
    let sha = head.as_ref().map_or(m.id.clone(), |h| h.sha.clone());
    let key = repo_key(&m.owner, &m.repo);
    {
        let store = sim.store();
        for r in store
            .statuses
            .iter()
            .filter(|r| repo_key(&r.owner, &r.repo) == key && r.sha == sha)
        {
            let context = r.status.context.clone().unwrap_or_else(|| "default".into());
            statuses.retain(|s| s["context"] != json!(context));
            statuses.push(json!({
                "context": context,
                "state": r.status.state,
                "target_url": r.status.target_url,
                "description": r.status.description,
            }));
        }
    }
    let states: Vec<&str> = statuses
        .iter()
        .filter_map(|s| s["state"].as_str())
        .collect();
    let state = if states.iter().any(|s| matches!(*s, "failure" | "error")) {
        "failure"
    } else if states.is_empty() || states.contains(&"pending") {
        "pending"
    } else {
        "success"
    };
    Reply::json(
        200,
        &json!({
            "state": state,
            "sha": sha,
            "total_count": statuses.len(),
            "statuses": statuses,
        }),
    )
}

/// `GET /repos/{o}/{r}/actions/runs?head_sha=…`: one run per scripted workflow.
pub(crate) fn workflow_runs(sim: &Sim, inc: &Incoming, m: &Matched) -> Reply {
    let pairs = parse_query(&inc.query);
    let want = pairs
        .iter()
        .rev()
        .find(|(n, _)| n == "head_sha")
        .map(|(_, v)| v.clone());
    let key = repo_key(&m.owner, &m.repo);
    let heads: Vec<CiHead> = sim
        .store()
        .ci_heads
        .iter()
        .filter(|h| h.repo == key && want.as_ref().is_none_or(|w| *w == h.sha))
        .cloned()
        .collect();
    let now = Instant::now();
    let mut runs = Vec::new();
    for h in &heads {
        let mut workflows: Vec<&str> = Vec::new();
        for c in &sim.scenario.ci.checks {
            if let Some(w) = c.workflow.as_deref()
                && !workflows.contains(&w)
            {
                workflows.push(w);
            }
        }
        for w in workflows {
            let checks: Vec<&CiCheck> = sim
                .scenario
                .ci
                .checks
                .iter()
                .filter(|c| c.workflow.as_deref() == Some(w))
                .collect();
            let id = stable_id(&format!("{}/{w}", h.sha), 4_000_000_000);
            let (status, conclusion) = if checks.iter().any(|c| held(sim, h, c, now)) {
                ("completed", Some("action_required".to_string()))
            } else {
                let views: Vec<Value> = checks
                    .iter()
                    .filter_map(|c| check_run(sim, m, h, c, now))
                    .collect();
                if views.iter().all(|v| v["status"] == "completed") {
                    let failed = views.iter().find(|v| v["conclusion"] != "success");
                    (
                        "completed",
                        Some(failed.map_or("success".to_string(), |v| {
                            v["conclusion"].as_str().unwrap_or("failure").to_string()
                        })),
                    )
                } else if views.iter().any(|v| v["status"] == "in_progress") {
                    ("in_progress", None)
                } else {
                    ("queued", None)
                }
            };
            runs.push(json!({
                "id": id,
                "name": w,
                "event": "pull_request",
                "status": status,
                "conclusion": conclusion,
                "head_branch": h.branch,
                "head_sha": h.sha,
                "html_url": format!("{}/{}/{}/actions/runs/{id}", sim.base_url, m.owner, m.repo),
            }));
        }
    }
    Reply::json(
        200,
        &json!({ "total_count": runs.len(), "workflow_runs": runs }),
    )
}

/// `GET /repos/{o}/{r}/rules/branches/{branch}`: one `required_status_checks` rule when the
/// scenario requires any.
pub(crate) fn branch_rules(sim: &Sim, m: &Matched) -> Reply {
    let required = &sim.scenario.ci.required;
    if required.is_empty() {
        return Reply::json(200, &json!([]));
    }
    let checks: Vec<Value> = required.iter().map(|c| json!({ "context": c })).collect();
    Reply::json(
        200,
        &json!([{
            "type": "required_status_checks",
            "ruleset_source_type": "Repository",
            "ruleset_source": format!("{}/{}", m.owner, m.repo),
            "ruleset_id": 1,
            "parameters": {
                "required_status_checks": checks,
                "strict_required_status_checks_policy": false,
            },
        }]),
    )
}

/// `GET /repos/{o}/{r}/branches/{branch}/protection/required_status_checks`.
pub(crate) fn protection_checks(sim: &Sim, m: &Matched) -> Reply {
    let ci = &sim.scenario.ci;
    if ci.protection_forbidden {
        return Reply::error(
            403,
            "Resource not accessible by integration",
            doc_url(m.endpoint),
        );
    }
    match &ci.protection {
        None => Reply::error(404, "Branch not protected", doc_url(m.endpoint)),
        Some(contexts) => Reply::json(
            200,
            &json!({
                "url": format!("{}/repos/{}/{}/branches/{}/protection/required_status_checks", sim.base_url, m.owner, m.repo, m.id),
                "strict": false,
                "contexts": contexts,
                "checks": contexts.iter().map(|c| json!({ "context": c, "app_id": null })).collect::<Vec<_>>(),
            }),
        ),
    }
}
