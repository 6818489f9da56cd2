//! Injected faults (DESIGN §6): which of a scenario's faults apply to a request, and what
//! they do before the server acts (delay, error status, secondary rate limit, dropped
//! connection) or after it (delay, error status, broken body, dropped connection). The
//! faults themselves are compiled in `scenario`; the rate limits they imitate are in
//! `limits`.

use super::limits::{bucket_headers, secondary};
use super::{Incoming, Outcome, Sim};
use crate::sim::reply::{self, Reply};
use crate::sim::route::Endpoint;
use crate::sim::scenario::{BodyFault, Fault, FaultAction, Scenario, When};

/// The faults for the `nth` request of `endpoint`: the first acting before the server and
/// the first acting after it.
pub(super) fn pick(
    scenario: &Scenario,
    endpoint: Endpoint,
    nth: u32,
) -> (Option<&Fault>, Option<&Fault>) {
    let faults: Vec<&Fault> = scenario
        .faults
        .iter()
        .filter(|f| f.applies(endpoint, nth))
        .collect();
    let before = faults.iter().find(|f| f.when == When::Before).copied();
    let after = faults.iter().find(|f| f.when == When::After).copied();
    (before, after)
}

/// A fault before the server acts: sleep its delay, then the outcome that replaces the
/// request (`None` = carry on: a delay only, or a body fault, which always acts after).
pub(super) async fn before(
    sim: &Sim,
    f: &Fault,
    inc: &Incoming,
    endpoint: Endpoint,
    user: i64,
) -> Option<Outcome> {
    if let Some(d) = f.delay {
        tokio::time::sleep(d).await;
    }
    match &f.action {
        FaultAction::DelayOnly | FaultAction::Body(_) => None,
        FaultAction::Drop => Some(Outcome::Drop),
        FaultAction::Status { status, message } => {
            let mut r = Reply::error(
                *status,
                message.as_deref().unwrap_or(default_message(*status)),
                reply::doc_url(endpoint),
            );
            r.headers.extend(bucket_headers(sim, user, true));
            r.finish(&inc.request_id);
            Some(Outcome::Reply(r))
        }
        FaultAction::SecondaryRateLimit {
            status,
            retry_after,
        } => {
            let mut r = secondary(*status, *retry_after, &inc.request_id);
            r.headers.extend(bucket_headers(sim, user, false));
            r.finish(&inc.request_id);
            Some(Outcome::Reply(r))
        }
    }
}

/// A fault after the server acted, on its (not yet finished) reply: sleep its delay, then
/// the reply to send, or `None` when the connection is to be dropped instead. An error
/// status keeps only the `x-ratelimit-*` headers of the real reply.
pub(super) async fn after(f: &Fault, mut reply: Reply, endpoint: Endpoint) -> Option<Reply> {
    if let Some(d) = f.delay {
        tokio::time::sleep(d).await;
    }
    match &f.action {
        FaultAction::DelayOnly | FaultAction::SecondaryRateLimit { .. } => {}
        FaultAction::Drop => return None,
        FaultAction::Status { status, message } => {
            let headers = std::mem::take(&mut reply.headers)
                .into_iter()
                .filter(|(k, _)| k.starts_with("x-ratelimit"))
                .collect();
            reply = Reply::error(
                *status,
                message.as_deref().unwrap_or(default_message(*status)),
                reply::doc_url(endpoint),
            );
            reply.headers = headers;
        }
        FaultAction::Body(kind) => {
            reply.body = match kind {
                BodyFault::Truncated => reply.body[..reply.body.len() / 2].to_vec(),
                BodyFault::Malformed => b"{\"message\": this is not JSON <html>".to_vec(),
                BodyFault::Empty => Vec::new(),
            };
        }
    }
    Some(reply)
}

fn default_message(status: u16) -> &'static str {
    match status {
        500 => "Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        404 => "Not Found",
        403 => "Forbidden",
        401 => "Requires authentication",
        422 => "Validation Failed",
        429 => "Too Many Requests",
        _ => "Simulated failure",
    }
}
