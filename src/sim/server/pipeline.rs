//! The order every routed request goes through, GitHub's: `User-Agent`, API version,
//! routing, auth (bearer token, revoked and installation tokens, visible repositories),
//! faults before the server acts, rate limits, write permission, the endpoint, conditional
//! GETs (`ETag`), rate-limit headers, faults after. It owns auth and `ETag`s; the limits
//! are in `limits`, the faults in `faults`, the endpoints in `api`, and the request log
//! and connections in `super`.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue};

use super::limits::{self, anonymous_headers, bucket_headers};
use super::{API_VERSIONS, DOCS, Incoming, Outcome, Sim, faults};
use crate::sim::api;
use crate::sim::reply::{self, Reply};
use crate::sim::route::Endpoint;
use crate::sim::store::{repo_key, user_id_for_token};

/// Answer a request whose body was read (or drop its connection).
pub(super) async fn pipeline(sim: &Arc<Sim>, inc: &Incoming, nth: u32) -> Outcome {
    let anonymous = anonymous_headers();
    let plain = |mut r: Reply| {
        r.headers.extend(anonymous.clone());
        r.finish(&inc.request_id);
        Outcome::Reply(r)
    };

    // User-Agent is required (reference §1).
    if inc
        .headers
        .get("user-agent")
        .is_none_or(|v| v.as_bytes().is_empty())
    {
        return plain(Reply::error(
            403,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). Check https://developer.github.com for other possible causes.",
            DOCS,
        ));
    }
    // API version (reference §1, §12.3).
    if let Some(r) = api_version(sim, &inc.headers) {
        return plain(r);
    }
    // Routing (reference §12.1): anything else is 404, trailing slashes included.
    let Some(matched) = &inc.matched else {
        return plain(Reply::error(404, "Not Found", DOCS));
    };
    // Auth (reference §2, §12.2).
    let token = match bearer(&inc.headers) {
        Auth::Missing => return plain(Reply::error(401, "Requires authentication", DOCS)),
        Auth::Malformed => return plain(Reply::error(401, "Bad credentials", DOCS)),
        Auth::Token(t) => t,
    };
    if sim.scenario.api.revoked_tokens.contains(&token) {
        return plain(Reply::error(401, "Bad credentials", DOCS));
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
        return plain(Reply::error(
            403,
            "Resource not accessible by integration: GitHub App installation tokens are not supported for this API. Use a personal access token, an OAuth token or a GitHub App user access token.",
            reply::doc_url(matched.endpoint),
        ));
    }
    let user = user_id_for_token(&token);
    // Copilot cloud agent disabled: the repository's agent-tasks endpoints answer 404.
    if sim.scenario.api.agent_disabled
        && matches!(
            matched.endpoint,
            Endpoint::ListRepoTasks | Endpoint::CreateTask | Endpoint::GetRepoTask
        )
    {
        let mut r = Reply::error(404, "Not Found", reply::doc_url(matched.endpoint));
        r.headers.extend(bucket_headers(sim, user, true));
        r.finish(&inc.request_id);
        return Outcome::Reply(r);
    }
    // A repository the token cannot see is 404, not 403 (reference §7).
    if let Some(visible) = &sim.scenario.api.repositories
        && !matched.owner.is_empty()
        && !visible.contains(&repo_key(&matched.owner, &matched.repo))
    {
        let mut r = Reply::error(404, "Not Found", reply::doc_url(matched.endpoint));
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

    // Primary rate limit (reference §10, §12.9).
    if let Some(r) = limits::primary(sim, user, &inc.request_id) {
        return Outcome::Reply(r);
    }
    // Content-creation limit on every write: task creations, statuses, comments, labels;
    // not GraphQL queries
    // (reference §10, §12.9: 80 content-creating requests a minute per user).
    if matches!(inc.method.as_str(), "POST" | "PATCH" | "PUT" | "DELETE")
        && matched.endpoint != Endpoint::Graphql
        && let Some(r) = limits::creation(sim, user, &inc.request_id)
    {
        return Outcome::Reply(r);
    }
    // Fine-grained permission (reference §2, §12.2).
    if matches!(inc.method.as_str(), "POST" | "PATCH")
        && sim.scenario.api.read_only_tokens.contains(&token)
    {
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
        return Outcome::Reply(r);
    }

    let mut reply = api::dispatch(sim, inc, matched, user).await;

    // Conditional GETs (reference §10, §12.8): a matching ETag is a 304 that costs nothing.
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

    if let Some(f) = after {
        let Some(r) = faults::after(f, reply, matched.endpoint).await else {
            return Outcome::Drop;
        };
        reply = r;
    }
    reply.finish(&inc.request_id);
    Outcome::Reply(reply)
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
