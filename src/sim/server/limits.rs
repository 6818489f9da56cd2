//! Rate limits of the simulated API (reference §10, §12.9): the primary per-user bucket
//! with its `x-ratelimit-*` headers, the unauthenticated bucket that is only reported, the
//! content-creation limit on writes, and the secondary-rate-limit answer. It does
//! not decide where in the pipeline a limit is checked (`pipeline`) nor inject the
//! scripted secondary limits (`faults`).

use super::Sim;
use crate::sim::reply::Reply;
use crate::sim::store::{Bucket, Store};

/// A secondary-rate-limit answer, with `retry-after` when given.
pub(super) fn secondary(
    status: u16,
    retry_after: Option<std::time::Duration>,
    request_id: &str,
) -> Reply {
    let mut r = Reply::error(
        status,
        &format!(
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID {request_id}."
        ),
        "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
    );
    if let Some(d) = retry_after {
        r.headers
            .push(("retry-after", d.as_secs_f64().ceil().to_string()));
    }
    r
}

/// Refresh the user's window if it has passed; true when no request is left.
fn bucket_exhausted(sim: &Sim, user: i64) -> bool {
    let mut store = sim.store();
    let b = bucket(&mut store, sim, user);
    b.used >= sim.scenario.rate_limit.limit
}

/// The primary rate limit (reference §10, §12.9): the finished answer when the user's
/// bucket is empty.
pub(super) fn primary(sim: &Sim, user: i64, request_id: &str) -> Option<Reply> {
    if !bucket_exhausted(sim, user) {
        return None;
    }
    let status = sim.scenario.rate_limit.status;
    let mut r = Reply::error(
        status,
        &format!(
            "API rate limit exceeded for user ID {user}. If you reach out to GitHub Support for help, please include the request ID {} and timestamp {}.",
            request_id,
            jiff::Timestamp::now()
        ),
        "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-primary-rate-limits",
    );
    r.headers.extend(bucket_headers(sim, user, false));
    r.finish(request_id);
    Some(r)
}

/// The scenario's content-creation limit on writes (POST, PATCH, PUT, DELETE; reference
/// §10, §12.9): the finished secondary-rate-limit answer when the user made `max` writes
/// within the window; otherwise this write is counted and `None` returned.
pub(super) fn creation(sim: &Sim, user: i64, request_id: &str) -> Option<Reply> {
    let limits = &sim.scenario.creation_limits;
    let longest = limits.iter().map(|l| l.window).max()?;
    let now = tokio::time::Instant::now();
    let mut store = sim.store();
    let q = store.creations.entry(user).or_default();
    while q.front().is_some_and(|t| now.duration_since(*t) >= longest) {
        q.pop_front();
    }
    // The first limit this write would break: the writes within its window, newest last.
    let broken = limits.iter().find_map(|limit| {
        let within = q
            .iter()
            .filter(|t| now.duration_since(**t) < limit.window)
            .count();
        // The oldest of them leaves the window first.
        let oldest = q.iter().find(|t| now.duration_since(**t) < limit.window);
        (within >= limit.max as usize).then(|| {
            let free_in = oldest.map(|t| limit.window.saturating_sub(now.duration_since(*t)));
            (limit, free_in)
        })
    });
    if let Some((limit, free_in)) = broken {
        let retry = limit.retry_after.or(free_in);
        drop(store);
        let mut r = secondary(limit.status, retry, request_id);
        r.headers.extend(bucket_headers(sim, user, true));
        r.finish(request_id);
        return Some(r);
    }
    q.push_back(now);
    None
}

fn bucket<'a>(store: &'a mut Store, sim: &Sim, user: i64) -> &'a mut Bucket {
    let window = sim.scenario.rate_limit.window;
    let now = tokio::time::Instant::now();
    // `x-ratelimit-reset` is whole epoch seconds: announce the end of the window rounded
    // up, never a second at which the bucket is still empty — a client that waits for the
    // announced reset finds a fresh bucket, as on GitHub.
    let fresh = || {
        let wall = jiff::Timestamp::now();
        let end = wall
            .checked_add(jiff::SignedDuration::try_from(window).unwrap_or_default())
            .unwrap_or(wall);
        Bucket {
            used: 0,
            resets_at: now + window,
            reset_epoch: end.as_second() + i64::from(end.subsec_nanosecond() > 0),
        }
    };
    let b = store.buckets.entry(user).or_insert_with(fresh);
    if now >= b.resets_at {
        *b = fresh();
    }
    b
}

/// The `x-ratelimit-*` headers of a user, after counting this request when `count`.
pub(super) fn bucket_headers(sim: &Sim, user: i64, count: bool) -> Vec<(&'static str, String)> {
    let limit = sim.scenario.rate_limit.limit;
    let mut store = sim.store();
    let b = bucket(&mut store, sim, user);
    if count && b.used < limit {
        b.used += 1;
    }
    vec![
        ("x-ratelimit-limit", limit.to_string()),
        (
            "x-ratelimit-remaining",
            limit.saturating_sub(b.used).to_string(),
        ),
        ("x-ratelimit-used", b.used.to_string()),
        ("x-ratelimit-reset", b.reset_epoch.to_string()),
        ("x-ratelimit-resource", "core".to_string()),
    ]
}

/// Unauthenticated requests: the 60-per-hour bucket, reported but not tracked.
pub(super) fn anonymous_headers() -> Vec<(&'static str, String)> {
    vec![
        ("x-ratelimit-limit", "60".to_string()),
        ("x-ratelimit-remaining", "60".to_string()),
        ("x-ratelimit-used", "0".to_string()),
        (
            "x-ratelimit-reset",
            (jiff::Timestamp::now().as_second() + 3600).to_string(),
        ),
        ("x-ratelimit-resource", "core".to_string()),
    ]
}
