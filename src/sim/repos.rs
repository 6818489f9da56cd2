//! The few repository endpoints the gate uses besides the agent-tasks API: the repository
//! (`default_branch`), pull requests by head branch, commit statuses, issue comments (post,
//! list, edit) and labels. Statuses, comments and labels are recorded for tests; pull requests are the ones
//! the simulated agent opened.

use serde_json::{Value, json};

use super::reply::{Reply, doc_url, invalid, link_header, object_body};
use super::route::{Endpoint, Matched, parse_query, percent_encode};
use super::state::{Incoming, Sim};
use super::store::{RecordedComment, RecordedStatus, now_second, repo_key, ts};
use crate::adapters::github::types::CommitStatus;

pub(crate) async fn get_repo(sim: &Sim, m: &Matched) -> Reply {
    let default_branch = sim.repo_of(&m.owner, &m.repo).default_branch().await;
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
        .filter(|p| repo_key(&p.owner, &p.repo) == key)
        .filter(|p| match state.as_str() {
            "open" => !p.closed,
            "closed" => p.closed,
            _ => true,
        })
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
    // GitHub's default order is newest first (`sort=created`, `direction=desc`).
    if get("direction").as_deref() != Some("asc") {
        pulls.reverse();
    }
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
    if !sim.repo_of(&m.owner, &m.repo).commit_exists(&m.id).await {
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

/// GitHub's limit on a comment body, in characters.
pub(crate) const MAX_COMMENT_CHARS: usize = 65_536;

/// The `body` of a create- or update-comment request: a non-empty string within
/// [`MAX_COMMENT_CHARS`], else GitHub's 400/422.
fn comment_body(raw: &[u8], doc: &'static str) -> Result<String, Reply> {
    let o = object_body(raw, doc)?;
    match o.get("body") {
        Some(Value::String(s)) if s.chars().count() > MAX_COMMENT_CHARS => Err(Reply::validation(
            doc,
            vec![invalid(
                "body",
                "IssueComment",
                "custom",
                Some(format!(
                    "body is too long (maximum is {MAX_COMMENT_CHARS} characters)"
                )),
            )],
        )),
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_) | Value::Null) | None => Err(Reply::validation(
            doc,
            vec![invalid("body", "IssueComment", "missing_field", None)],
        )),
        Some(_) => Err(Reply::validation(
            doc,
            vec![invalid(
                "body",
                "IssueComment",
                "invalid",
                Some("body must be a string".into()),
            )],
        )),
    }
}

/// A comment as GitHub renders it.
fn comment_json(sim: &Sim, c: &RecordedComment) -> Value {
    let base = &sim.base_url;
    let (o, r, n, id) = (&c.owner, &c.repo, c.issue_number, c.id);
    json!({
        "id": id,
        "node_id": format!("IC_kwSIM{id}"),
        "url": format!("{base}/repos/{o}/{r}/issues/comments/{id}"),
        "html_url": format!("{base}/{o}/{r}/pull/{n}#issuecomment-{id}"),
        "issue_url": format!("{base}/repos/{o}/{r}/issues/{n}"),
        "body": c.body,
        "user": {
            "login": format!("sim-user-{}", c.user_id),
            "id": c.user_id,
            "type": "User",
        },
        "author_association": "MEMBER",
        "created_at": ts(c.created_at),
        "updated_at": ts(c.updated_at),
    })
}

pub(crate) fn create_comment(sim: &Sim, inc: &Incoming, m: &Matched, user: i64) -> Reply {
    let doc = doc_url(m.endpoint);
    let Some(n) = issue_exists(sim, m) else {
        return Reply::error(404, "Not Found", doc);
    };
    let body = match comment_body(&inc.body, doc) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let now = now_second();
    let comment = {
        let mut store = sim.store();
        let id = store.next_id();
        let c = RecordedComment {
            owner: m.owner.clone(),
            repo: m.repo.clone(),
            issue_number: n,
            body,
            id,
            user_id: user,
            created_at: now,
            updated_at: now,
            edits: 0,
        };
        store.comments.push(c.clone());
        c
    };
    Reply::json(201, &comment_json(sim, &comment))
}

/// `POST /graphql`: the one query the gate sends, `viewer { login databaseId }`, answered
/// for the token's user (the same `sim-user-<id>` its comments carry); any other query is
/// a GraphQL error (HTTP 200 with `errors`, as GitHub answers), a body that is not a JSON
/// object with a `query` string a 400.
pub(crate) fn graphql_viewer(inc: &Incoming, user: i64) -> Reply {
    let Ok(body) = serde_json::from_slice::<Value>(&inc.body) else {
        return Reply::error(400, "Problems parsing JSON", doc_url(Endpoint::Graphql));
    };
    let Some(query) = body.get("query").and_then(Value::as_str) else {
        return Reply::json(
            200,
            &json!({"errors": [{"message": "A query attribute must be specified and must be a string."}]}),
        );
    };
    let words: String = query.split_whitespace().collect::<Vec<_>>().join(" ");
    let words = words.strip_prefix("query ").unwrap_or(&words);
    if words.replace(' ', "") != "{viewer{logindatabaseId}}" {
        return Reply::json(
            200,
            &json!({"errors": [{"message": "the simulator answers only `query { viewer { login databaseId } }`"}]}),
        );
    }
    Reply::json(
        200,
        &json!({"data": {"viewer": {"login": format!("sim-user-{user}"), "databaseId": user}}}),
    )
}

/// `GET …/issues/{n}/comments`: oldest first, `since` (on `updated_at`), `per_page`
/// (default 30, clamped to 1–100), `page`, and a `Link` header like the task lists.
pub(crate) fn list_comments(sim: &Sim, inc: &Incoming, m: &Matched) -> Reply {
    let doc = doc_url(m.endpoint);
    let Some(n) = issue_exists(sim, m) else {
        return Reply::error(404, "Not Found", doc);
    };
    let pairs = parse_query(&inc.query);
    let bad = |field: &str, msg: String| {
        Reply::validation(
            doc,
            vec![invalid(field, "IssueComment", "invalid", Some(msg))],
        )
    };
    let (mut per_page, mut page, mut since) = (30usize, 1usize, None);
    for (k, v) in &pairs {
        match k.as_str() {
            "per_page" => match v.parse::<i64>() {
                Ok(x) => per_page = usize::try_from(x.clamp(1, 100)).unwrap_or(30),
                Err(_) => {
                    return bad(
                        "per_page",
                        format!("per_page must be an integer, not {v:?}"),
                    );
                }
            },
            "page" => match v.parse::<i64>() {
                Ok(x) => page = usize::try_from(x.max(1)).unwrap_or(1),
                Err(_) => return bad("page", format!("page must be an integer, not {v:?}")),
            },
            "since" => match v.parse::<jiff::Timestamp>() {
                Ok(t) => since = Some(t),
                Err(_) => {
                    return bad(
                        "since",
                        format!("since must be an ISO 8601 timestamp, not {v:?}"),
                    );
                }
            },
            _ => {}
        }
    }
    let key = repo_key(&m.owner, &m.repo);
    let all: Vec<RecordedComment> = sim
        .store()
        .comments
        .iter()
        .filter(|c| c.issue_number == n && repo_key(&c.owner, &c.repo) == key)
        .filter(|c| since.is_none_or(|s| c.updated_at >= s))
        .cloned()
        .collect();
    let last = all.len().div_ceil(per_page).max(1);
    let items: Vec<Value> = all
        .iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .map(|c| comment_json(sim, c))
        .collect();
    let mut r = Reply::json(200, &Value::Array(items));
    r.headers.push((
        "link",
        link_header(&sim.base_url, &inc.path, &pairs, page, per_page, last),
    ));
    r
}

/// `PATCH …/issues/comments/{id}`: replace the body; 404 for a comment of another
/// repository or none.
pub(crate) fn update_comment(sim: &Sim, inc: &Incoming, m: &Matched) -> Reply {
    let doc = doc_url(m.endpoint);
    let key = repo_key(&m.owner, &m.repo);
    let Ok(id) = m.id.parse::<i64>() else {
        return Reply::error(404, "Not Found", doc);
    };
    let exists = sim
        .store()
        .comments
        .iter()
        .any(|c| c.id == id && repo_key(&c.owner, &c.repo) == key);
    if !exists {
        return Reply::error(404, "Not Found", doc);
    }
    let body = match comment_body(&inc.body, doc) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let updated = {
        let mut store = sim.store();
        let Some(c) = store
            .comments
            .iter_mut()
            .find(|c| c.id == id && repo_key(&c.owner, &c.repo) == key)
        else {
            return Reply::error(404, "Not Found", doc);
        };
        c.body = body;
        c.updated_at = now_second().max(c.updated_at);
        c.edits += 1;
        c.clone()
    };
    Reply::json(200, &comment_json(sim, &updated))
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
