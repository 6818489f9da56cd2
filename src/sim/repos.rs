//! The few repository endpoints the gate uses besides the agent-tasks API: the repository
//! (`default_branch`), pull requests by head branch, commit statuses, issue comments and
//! labels. Statuses, comments and labels are recorded for tests; pull requests are the ones
//! the simulated agent opened.

use serde_json::{Value, json};

use super::api::{Reply, doc_url, invalid, object_body};
use super::route::{Matched, parse_query, percent_encode};
use super::server::{Incoming, Sim};
use super::store::{RecordedComment, RecordedStatus, now_second, repo_key, ts};
use crate::github::types::CommitStatus;

pub(crate) async fn get_repo(sim: &Sim, m: &Matched) -> Reply {
    let default_branch = sim.repo.default_branch().await;
    let key = repo_key(&m.owner, &m.repo);
    let id = super::store::stable_id(&key, 100_000_000);
    Reply::json(
        200,
        &json!({
            "id": id,
            "node_id": format!("R_kgSIM{id}"),
            "name": m.repo,
            "full_name": format!("{}/{}", m.owner, m.repo),
            "private": false,
            "owner": { "login": m.owner, "id": super::store::stable_id(&m.owner.to_ascii_lowercase(), 1_000_000), "type": "Organization" },
            "html_url": format!("{}/{}/{}", sim.base_url, m.owner, m.repo),
            "url": format!("{}/repos/{}/{}", sim.base_url, m.owner, m.repo),
            "default_branch": default_branch,
            "visibility": "public",
        }),
    )
}

pub(crate) fn list_pulls(sim: &Sim, inc: &Incoming, m: &Matched) -> Reply {
    let pairs = parse_query(&inc.query);
    let get = |k: &str| {
        pairs
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    let state = get("state").unwrap_or_else(|| "open".into());
    if !matches!(state.as_str(), "open" | "closed" | "all") {
        return Reply::validation(
            doc_url(m.endpoint),
            vec![invalid(
                "state",
                "PullRequest",
                "invalid",
                Some("state must be open, closed or all".into()),
            )],
        );
    }
    let head = get("head").map(|h| h.split_once(':').map_or(h.clone(), |(_, b)| b.to_string()));
    let base = get("base");
    let key = repo_key(&m.owner, &m.repo);
    let store = sim.store();
    let mut pulls: Vec<Value> = store
        .pulls
        .iter()
        .filter(|p| repo_key(&p.owner, &p.repo) == key && state != "closed")
        .filter(|p| head.as_ref().is_none_or(|h| &p.head_ref == h))
        .filter(|p| base.as_ref().is_none_or(|b| &p.base_ref == b))
        .map(|p| {
            let mut v = serde_json::to_value(p.to_wire(&sim.base_url)).unwrap_or(Value::Null);
            if let Some(o) = v.as_object_mut() {
                o.insert("node_id".into(), Value::from(p.global_id()));
                o.insert(
                    "url".into(),
                    Value::from(format!(
                        "{}/repos/{}/{}/pulls/{}",
                        sim.base_url, p.owner, p.repo, p.number
                    )),
                );
            }
            v
        })
        .collect();
    pulls.reverse();
    Reply::json(200, &Value::Array(pulls))
}

pub(crate) async fn create_status(sim: &Sim, inc: &Incoming, m: &Matched) -> Reply {
    let doc = doc_url(m.endpoint);
    let o = match object_body(&inc.body, doc) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let status: CommitStatus = match serde_json::from_value(Value::Object(o)) {
        Ok(s) => s,
        Err(e) => {
            return Reply::validation(
                doc,
                vec![invalid("state", "Status", "invalid", Some(e.to_string()))],
            );
        }
    };
    if !matches!(
        status.state.as_str(),
        "error" | "failure" | "pending" | "success"
    ) {
        return Reply::validation(
            doc,
            vec![invalid(
                "state",
                "Status",
                "invalid",
                Some("state is not included in the list".into()),
            )],
        );
    }
    if !sim.repo.commit_exists(&m.id).await {
        return Reply::validation(
            doc,
            vec![invalid(
                "sha",
                "Status",
                "custom",
                Some(format!("No commit found for SHA: {}", m.id)),
            )],
        );
    }
    let now = ts(now_second());
    let id = {
        let mut store = sim.store();
        store.statuses.push(RecordedStatus {
            owner: m.owner.clone(),
            repo: m.repo.clone(),
            sha: m.id.clone(),
            status: status.clone(),
        });
        store.next_id()
    };
    Reply::json(
        201,
        &json!({
            "url": format!("{}/repos/{}/{}/statuses/{}", sim.base_url, m.owner, m.repo, m.id),
            "id": id,
            "node_id": format!("SC_kwSIM{id}"),
            "state": status.state,
            "description": status.description,
            "target_url": status.target_url,
            "context": status.context.unwrap_or_else(|| "default".into()),
            "created_at": now,
            "updated_at": now,
        }),
    )
}

/// The pull request an issue number names in this repository.
fn issue_exists(sim: &Sim, m: &Matched) -> Option<u64> {
    let n: u64 = m.id.parse().ok()?;
    let key = repo_key(&m.owner, &m.repo);
    sim.store()
        .pulls
        .iter()
        .any(|p| p.number == n && repo_key(&p.owner, &p.repo) == key)
        .then_some(n)
}

pub(crate) fn create_comment(sim: &Sim, inc: &Incoming, m: &Matched) -> Reply {
    let doc = doc_url(m.endpoint);
    let Some(n) = issue_exists(sim, m) else {
        return Reply::error(404, "Not Found", doc);
    };
    let o = match object_body(&inc.body, doc) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let body = match o.get("body") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::String(_) | Value::Null) | None => {
            return Reply::validation(
                doc,
                vec![invalid("body", "IssueComment", "missing_field", None)],
            );
        }
        Some(_) => {
            return Reply::validation(
                doc,
                vec![invalid(
                    "body",
                    "IssueComment",
                    "invalid",
                    Some("body must be a string".into()),
                )],
            );
        }
    };
    let now = ts(now_second());
    let id = {
        let mut store = sim.store();
        store.comments.push(RecordedComment {
            owner: m.owner.clone(),
            repo: m.repo.clone(),
            issue_number: n,
            body: body.clone(),
        });
        store.next_id()
    };
    Reply::json(
        201,
        &json!({
            "id": id,
            "node_id": format!("IC_kwSIM{id}"),
            "url": format!("{}/repos/{}/{}/issues/comments/{id}", sim.base_url, m.owner, m.repo),
            "html_url": format!("{}/{}/{}/pull/{n}#issuecomment-{id}", sim.base_url, m.owner, m.repo),
            "body": body,
            "created_at": now,
            "updated_at": now,
        }),
    )
}

#[allow(
    clippy::many_single_char_names,
    reason = "m, n, v, l: the matched route, issue number, body and label"
)]
pub(crate) fn add_labels(sim: &Sim, inc: &Incoming, m: &Matched) -> Reply {
    let doc = doc_url(m.endpoint);
    let Some(n) = issue_exists(sim, m) else {
        return Reply::error(404, "Not Found", doc);
    };
    let v: Value = match serde_json::from_slice(&inc.body) {
        Ok(v) => v,
        Err(_) => return Reply::error(400, "Problems parsing JSON", doc),
    };
    let list = match &v {
        Value::Array(a) => a,
        Value::Object(o) => match o.get("labels") {
            Some(Value::Array(a)) => a,
            _ => {
                return Reply::validation(
                    doc,
                    vec![invalid("labels", "Label", "missing_field", None)],
                );
            }
        },
        _ => return Reply::error(400, "Body should be a JSON object", doc),
    };
    let mut names = Vec::new();
    for l in list {
        match l {
            Value::String(s) if !s.trim().is_empty() => names.push(s.clone()),
            Value::Object(o)
                if o.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.trim().is_empty()) =>
            {
                names.push(
                    o.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                );
            }
            _ => {
                return Reply::validation(
                    doc,
                    vec![invalid(
                        "labels",
                        "Label",
                        "invalid",
                        Some("labels must be non-empty strings".into()),
                    )],
                );
            }
        }
    }
    let mut store = sim.store();
    let all = store
        .labels
        .entry((repo_key(&m.owner, &m.repo), n))
        .or_default();
    for name in names {
        if !all.contains(&name) {
            all.push(name);
        }
    }
    let all = all.clone();
    let out: Vec<Value> = all
        .iter()
        .map(|name| {
            let id = super::store::stable_id(name, 1);
            json!({"id": id, "node_id": format!("LA_kwSIM{id}"), "name": name, "color": "ededed", "default": false, "description": null,
                   "url": format!("{}/repos/{}/{}/labels/{}", sim.base_url, m.owner, m.repo, percent_encode(name))})
        })
        .collect();
    Reply::json(200, &Value::Array(out))
}
