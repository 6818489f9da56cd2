//! The order every routed request goes through, GitHub's: `User-Agent`, API version,
//! routing, auth (bearer token, revoked and installation tokens), what the user cannot see,
//! faults before the server acts, rate limits, write permission, the endpoint, conditional
//! GETs (`ETag`), rate-limit headers, faults after. It owns that order, auth and `ETag`s.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue};

use super::limits::{self, anonymous_headers, bucket_headers};
use super::{API_VERSIONS, DOCS, Incoming, Outcome, Sim, faults};
use crate::sim::api;
use crate::sim::reply::{self, Reply};
use crate::sim::route::{Endpoint, Matched};
use crate::sim::store::{repo_key, user_id_for_token};

/// Answer a request whose body was read (or drop its connection).
pub(super) async fn pipeline(sim: &Arc<Sim>, inc: &Incoming, nth: u32) -> Outcome {
    let (matched, token) = match admit(sim, inc) {
        Ok(admitted) => admitted,
        Err(mut r) => {
            r.headers.extend(anonymous_headers());
            r.finish(&inc.request_id);
            return Outcome::Reply(r);
        }
    };
    let user = user_id_for_token(&token);
    if let Some(mut r) = hidden(sim, matched) {
        r.headers.extend(bucket_headers(sim, user, true));
        r.finish(&inc.request_id);
        return Outcome::Reply(r);
    }
    let (before, after) = faults::pick(&sim.scenario, matched.endpoint, nth);
    if let Some(f) = before
        && let Some(outcome) = faults::before(sim, f, inc, matched.endpoint, user).await
    {
        return outcome;
    }
    if let Some(r) = limited(sim, inc, matched, user, &token) {
        return Outcome::Reply(r);
    }
    let reply = api::dispatch(sim, inc, matched, user).await;
    let mut reply = conditional(sim, inc, reply, user);
    if let Some(f) = after {
        let Some(r) = faults::after(f, reply, matched.endpoint).await else {
            return Outcome::Drop;
        };
        reply = r;
    }
    reply.finish(&inc.request_id);
    Outcome::Reply(reply)
}

/// The checks before any user is known: `User-Agent` (reference §1), the API version (§1,
/// §12.3), routing (§12.1: anything else is 404, trailing slashes included) and auth (§2,
/// §12.2: a bearer token, not revoked, and no installation token on the agent-tasks API).
/// `Ok` with the route and the token; `Err` with the answer.
fn admit<'i>(sim: &Sim, inc: &'i Incoming) -> Result<(&'i Matched, String), Reply> {
    if inc
        .headers
        .get("user-agent")
        .is_none_or(|v| v.as_bytes().is_empty())
    {
        return Err(Reply::error(
            403,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). Check https://developer.github.com for other possible causes.",
            DOCS,
        ));
    }
    if let Some(r) = api_version(sim, &inc.headers) {
        return Err(r);
    }
    let Some(matched) = &inc.matched else {
        return Err(Reply::error(404, "Not Found", DOCS));
    };
    let token = match bearer(&inc.headers) {
        Auth::Missing => return Err(Reply::error(401, "Requires authentication", DOCS)),
        Auth::Malformed => return Err(Reply::error(401, "Bad credentials", DOCS)),
        Auth::Token(t) => t,
    };
    if sim.scenario.api.revoked_tokens.contains(&token) {
        return Err(Reply::error(401, "Bad credentials", DOCS));
    }
    // Installation tokens (the workflow's GITHUB_TOKEN) are refused by the agent-tasks API
    // only; the repository endpoints (statuses, comments, pulls) accept them (reference §2).
    let agent_tasks = matches!(
        matched.endpoint,
        Endpoint::ListTasks
            | Endpoint::GetTask
            | Endpoint::ListRepoTasks
            | Endpoint::CreateTask
            | Endpoint::GetRepoTask
    );
    if agent_tasks && token.starts_with("ghs_") {
        return Err(Reply::error(
            403,
            "Resource not accessible by integration: GitHub App installation tokens are not supported for this API. Use a personal access token, an OAuth token or a GitHub App user access token.",
            reply::doc_url(matched.endpoint),
        ));
    }
    Ok((matched, token))
}

/// A 404 for what the user cannot see: the repository's agent-tasks endpoints where the
/// Copilot cloud agent is disabled, and a repository the token cannot see (404, not 403:
/// reference §7).
fn hidden(sim: &Sim, matched: &Matched) -> Option<Reply> {
    let disabled = sim.scenario.api.agent_disabled
        && matches!(
            matched.endpoint,
            Endpoint::ListRepoTasks | Endpoint::CreateTask | Endpoint::GetRepoTask
        );
    let invisible = sim
        .scenario
        .api
        .repositories
        .as_ref()
        .is_some_and(|visible| {
            !matched.owner.is_empty() && !visible.contains(&repo_key(&matched.owner, &matched.repo))
        });
    (disabled || invisible)
        .then(|| Reply::error(404, "Not Found", reply::doc_url(matched.endpoint)))
}

/// The rate limits (reference §10, §12.9: the primary limit; 80 content-creating requests
/// a minute per user on every write — task creations, statuses, comments, labels, not
/// GraphQL queries) and the fine-grained write permission (§2, §12.2).
fn limited(sim: &Sim, inc: &Incoming, matched: &Matched, user: i64, token: &str) -> Option<Reply> {
    if let Some(r) = limits::primary(sim, user, &inc.request_id) {
        return Some(r);
    }
    if matches!(inc.method.as_str(), "POST" | "PATCH" | "PUT" | "DELETE")
        && matched.endpoint != Endpoint::Graphql
        && let Some(r) = limits::creation(sim, user, &inc.request_id)
    {
        return Some(r);
    }
    if !(matches!(inc.method.as_str(), "POST" | "PATCH")
        && sim.scenario.api.read_only_tokens.iter().any(|t| t == token))
    {
        return None;
    }
    let mut r = Reply::error(
        403,
        "Resource not accessible by personal access token",
        reply::doc_url(matched.endpoint),
    );
    let perm = if matched.endpoint == Endpoint::CreateTask {
        "agent_tasks=write"
    } else {
        "issues=write; pull_requests=write; statuses=write"
    };
    r.headers
        .push(("x-accepted-github-permissions", perm.to_string()));
    r.headers.extend(bucket_headers(sim, user, true));
    r.finish(&inc.request_id);
    Some(r)
}

/// The endpoint's answer with its `ETag` and rate-limit headers; a conditional GET whose
/// `ETag` matches is a 304 that costs nothing (reference §10, §12.8).
fn conditional(sim: &Sim, inc: &Incoming, mut reply: Reply, user: i64) -> Reply {
    let mut count = true;
    if inc.method == "GET" && reply.status == 200 {
        let etag = etag(&reply.body);
        if inc
            .headers
            .get_all("if-none-match")
            .iter()
            .any(|v| etag_matches(v, &etag))
        {
            reply = Reply {
                status: 304,
                body: Vec::new(),
                headers: Vec::new(),
            };
            count = false;
        }
        reply.headers.push(("etag", etag));
    }
    reply.headers.extend(bucket_headers(sim, user, count));
    reply
}

pub(super) enum Auth {
    Missing,
    Malformed,
    Token(String),
}

pub(super) fn bearer(headers: &HeaderMap) -> Auth {
    let Some(v) = headers.get("authorization") else {
        return Auth::Missing;
    };
    let v = String::from_utf8_lossy(v.as_bytes()).trim().to_string();
    let Some((scheme, token)) = v.split_once(' ') else {
        return Auth::Malformed;
    };
    let token = token.trim();
    if !(scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
        || token.is_empty()
        || token.contains(' ')
    {
        return Auth::Malformed;
    }
    Auth::Token(token.to_string())
}

/// A weak `ETag` over the body, as GitHub sends.
fn etag(body: &[u8]) -> String {
    let mut h1: u64 = 0xcbf2_9ce4_8422_2325;
    let mut h2: u64 = 0x8422_2325_cbf2_9ce4;
    for &b in body {
        h1 = (h1 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        h2 = (h2 ^ u64::from(b))
            .wrapping_mul(0x0000_0100_0000_01b3)
            .rotate_left(5);
    }
    format!("W/\"{h1:016x}{h2:016x}\"")
}

fn etag_matches(header: &HeaderValue, etag: &str) -> bool {
    let strip = |s: &str| s.trim().trim_start_matches("W/").to_string();
    let want = strip(etag);
    String::from_utf8_lossy(header.as_bytes())
        .split(',')
        .any(|c| c.trim() == "*" || strip(c) == want)
}

/// The answer to an `X-GitHub-Api-Version` that is retired (410) or not supported (400);
/// `None` when the header is absent or names a supported version.
fn api_version(sim: &Sim, headers: &HeaderMap) -> Option<Reply> {
    let v = headers.get("x-github-api-version")?;
    let v = String::from_utf8_lossy(v.as_bytes()).trim().to_string();
    if sim.scenario.api.retired_versions.iter().any(|r| r == &v) {
        return Some(Reply::error(
            410,
            &format!(
                "API version '{v}' has been retired and is no longer supported. Use one of: {}.",
                API_VERSIONS.join(", ")
            ),
            "https://docs.github.com/rest/about-the-rest-api/api-versions",
        ));
    }
    if !API_VERSIONS.contains(&v.as_str()) {
        return Some(Reply::error(
            400,
            &format!(
                "Invalid API version: '{v}' is not a supported value for the X-GitHub-Api-Version header. Supported versions: {}.",
                API_VERSIONS.join(", ")
            ),
            "https://docs.github.com/rest/about-the-rest-api/api-versions",
        ));
    }
    None
}
