//! The task lists, `GET /agents/tasks` and `GET /agents/repos/{o}/{r}/tasks` (reference
//! §3.2, §6, §12.7): the query parameters parsed and validated, the tasks in scope
//! filtered, sorted and paged, the totals and the `Link` header. Getting or creating one
//! task is not its business.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::{Reply, doc_url, invalid};
use crate::adapters::github::types::TaskState;
use crate::sim::reply::link_header;
use crate::sim::route::{Endpoint, Matched, parse_query};
use crate::sim::scenario::PerPagePolicy;
use crate::sim::state::{Incoming, Sim};
use crate::sim::store::{SimTask, repo_key};

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
    for (k, v) in pairs {
        q.set(sim, k, v).map_err(|(field, message)| {
            Reply::validation(doc, vec![invalid(field, "Task", "invalid", Some(message))])
        })?;
    }
    Ok(q)
}

/// A query parameter that cannot be used: the field and why.
type Bad = (&'static str, String);

/// `v` as one of two words, each with its meaning (named in this order when `v` is
/// neither).
fn either(field: &'static str, v: &str, words: [(&str, bool); 2]) -> Result<bool, Bad> {
    let [(a, at_a), (b, at_b)] = words;
    match v {
        v if v == a => Ok(at_a),
        v if v == b => Ok(at_b),
        _ => Err((field, format!("{field} must be {a} or {b}, not {v:?}"))),
    }
}

impl ListQuery {
    /// Apply the query parameter `k=v` (unknown parameters are ignored, as GitHub does).
    fn set(&mut self, sim: &Sim, k: &str, v: &str) -> Result<(), Bad> {
        let integer = |field: &'static str| {
            v.parse::<i64>()
                .map_err(|_| (field, format!("{field} must be an integer, not {v:?}")))
        };
        match k {
            "per_page" => {
                let n = integer("per_page")?;
                if !(1..=100).contains(&n) && sim.scenario.api.per_page == PerPagePolicy::Reject {
                    return Err(("per_page", "per_page must be between 1 and 100".into()));
                }
                self.per_page = usize::try_from(n.clamp(1, 100)).unwrap_or(30);
            }
            "page" => self.page = usize::try_from(integer("page")?.max(1)).unwrap_or(1),
            "sort" => {
                self.sort_created =
                    either("sort", v, [("updated_at", false), ("created_at", true)])?;
            }
            "direction" => {
                self.ascending = either("direction", v, [("asc", true), ("desc", false)])?;
            }
            "is_archived" => {
                self.archived = either("is_archived", v, [("true", true), ("false", false)])?;
            }
            "state" => {
                let mut states = Vec::new();
                for s in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    match TaskState::parse(s) {
                        TaskState::Unknown(_) => {
                            return Err(("state", format!("unknown state {s:?}")));
                        }
                        st => states.push(st),
                    }
                }
                self.states = Some(states);
            }
            "since" => {
                self.since = Some(v.parse::<Timestamp>().map_err(|_| {
                    (
                        "since",
                        format!("since must be an ISO 8601 timestamp, not {v:?}"),
                    )
                })?);
            }
            "creator_id" | "creator_id[]" => {
                for part in v.split(',').filter(|s| !s.is_empty()) {
                    self.creators.push(part.trim().parse().map_err(|_| {
                        (
                            "creator_id",
                            format!("creator_id must be an integer, not {part:?}"),
                        )
                    })?);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

pub(super) fn list_tasks(sim: &Sim, inc: &Incoming, m: &Matched, user: i64) -> Reply {
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
