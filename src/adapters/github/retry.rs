//! Retry policy and the reading of GitHub's flow-control headers: exponential backoff with
//! jitter, `Retry-After` (seconds or HTTP date), `x-ratelimit-remaining`/`x-ratelimit-reset`
//! (epoch seconds, read against an injected wall [`Clock`]), the 60 s floor for a secondary
//! rate limit without headers, and `Link` pagination. Pure functions; the client applies them
//! (and owns the shared "not before" instant).

use std::fmt;
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

use super::error::{ApiError, TransportKind};

/// One announced retry: the error that will be retried, the wait before the next attempt,
/// and which retry it is of how many at most. Displayed as one line:
/// `GET /path: could not connect: …; retry 2 of 3 in 2 s`.
#[derive(Debug)]
pub struct Retry<'a> {
    pub error: &'a ApiError,
    pub wait: Duration,
    /// 1-based.
    pub number: u32,
    /// The most retries this request gets for this kind of error.
    pub of: u32,
}

impl fmt::Display for Retry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}; retry {} of {} in {}",
            self.error,
            self.number,
            self.of,
            wait_text(self.wait)
        )
    }
}

/// `2 s`, `350 ms`: a wait as people read it.
pub fn wait_text(wait: Duration) -> String {
    if wait < Duration::from_secs(1) {
        format!("{} ms", wait.as_millis())
    } else {
        format!("{} s", wait.as_secs_f64().round())
    }
}

/// The wall clock used to read epoch-second headers (`x-ratelimit-reset`, HTTP dates) and to
/// stamp events. Sleeping is always tokio's, so tests pause it; this is injected so tests can
/// fix the wall time too.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
}

/// The system wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// How idempotent requests are retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Delay before the first retry (before jitter).
    pub base: Duration,
    /// Upper bound of one backoff delay.
    pub cap: Duration,
    /// Attempts in total, the first included.
    pub max_attempts: u32,
    /// Retries of a request whose connection never opened (nothing listening at `api-url`,
    /// a refused or unroutable address), within `max_attempts`: an unreachable API fails in
    /// seconds rather than after the whole backoff.
    pub connect_retries: u32,
    /// Bound of the total retry time when the caller gave no deadline.
    pub max_elapsed: Duration,
    /// Wait after a secondary rate limit that carries neither `Retry-After` nor a reset.
    pub secondary_wait: Duration,
    /// Randomize each delay within [d/2, d] ("equal jitter"); off only for tests.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_mins(1),
            max_attempts: 8,
            connect_retries: 3,
            max_elapsed: Duration::from_mins(10),
            secondary_wait: Duration::from_mins(1),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// Attempts in total (the first included) for a request that failed with `error`: fewer
    /// when the connection never opened.
    pub fn attempts_for(&self, error: &ApiError) -> u32 {
        let all = self.max_attempts.max(1);
        match error {
            ApiError::Transport {
                kind: TransportKind::Connect,
                ..
            } => all.min(self.connect_retries.saturating_add(1)),
            _ => all,
        }
    }

    /// The backoff delay after failed attempt number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(20);
        let d = self.base.saturating_mul(1u32 << exp).min(self.cap);
        if self.jitter {
            jitter_between(d / 2, d)
        } else {
            d
        }
    }
}

/// A random duration in `[low, high]`.
pub(crate) fn jitter_between(low: Duration, high: Duration) -> Duration {
    if high <= low {
        return low;
    }
    let span = u64::try_from(high.saturating_sub(low).as_millis()).unwrap_or(u64::MAX);
    low + Duration::from_millis(rand::random_range(0..=span))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// `Retry-After`: delay-seconds or an HTTP date (read against `now`).
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let v = header_str(headers, "retry-after")?;
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(v)
        .ok()?;
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(when.as_second()).ok()?);
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `x-ratelimit-remaining`, when sent.
pub(crate) fn remaining(headers: &HeaderMap) -> Option<u64> {
    header_str(headers, "x-ratelimit-remaining")?.parse().ok()
}

/// Time until `x-ratelimit-reset` (epoch seconds) when `x-ratelimit-remaining` is 0.
pub(crate) fn reset_wait(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if remaining(headers)? != 0 {
        return None;
    }
    let reset: u64 = header_str(headers, "x-ratelimit-reset")?.parse().ok()?;
    let reset = SystemTime::UNIX_EPOCH + Duration::from_secs(reset);
    Some(reset.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Does this 403/429 say "rate limited"?
pub(crate) fn is_rate_limited(status: u16, headers: &HeaderMap, message: Option<&str>) -> bool {
    match status {
        429 => true,
        403 => {
            remaining(headers) == Some(0)
                || headers.contains_key("retry-after")
                || message.is_some_and(|m| m.to_ascii_lowercase().contains("rate limit"))
        }
        _ => false,
    }
}

/// How long GitHub asks us to wait, from any response: `Retry-After`, else the reset when
/// remaining is 0; for a rate-limited response without either, `secondary_wait`.
pub(crate) fn requested_wait(
    headers: &HeaderMap,
    now: SystemTime,
    rate_limited: bool,
    secondary_wait: Duration,
) -> Option<Duration> {
    retry_after(headers, now)
        .or_else(|| reset_wait(headers, now))
        .or(rate_limited.then_some(secondary_wait))
}

/// The `rel="next"` target of a `Link` header.
pub fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| link_with_rel(v, "next"))
}

/// Parse `<url>; rel="a b", <url2>; rel=c` and return the URL whose rel list holds `rel`.
pub fn link_with_rel(value: &str, rel: &str) -> Option<String> {
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let close = after.find('>')?;
        let url = &after[..close];
        let params_all = &after[close + 1..];
        let params = &params_all[..params_all.find('<').unwrap_or(params_all.len())];
        for param in params.split(';') {
            let Some((k, v)) = param.split_once('=') else {
                continue;
            };
            if !k.trim().eq_ignore_ascii_case("rel") {
                continue;
            }
            let v = v.trim().trim_end_matches(',').trim().trim_matches('"');
            if v.split_ascii_whitespace()
                .any(|r| r.eq_ignore_ascii_case(rel))
            {
                return Some(url.to_string());
            }
        }
        rest = &after[close + 1..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_next_is_found_among_others() {
        let v = r#"<https://api.github.com/agents/tasks?page=2&per_page=30>; rel="next", <https://api.github.com/agents/tasks?page=1&per_page=30>; rel="first""#;
        assert_eq!(
            link_with_rel(v, "next").as_deref(),
            Some("https://api.github.com/agents/tasks?page=2&per_page=30")
        );
        assert_eq!(
            link_with_rel(v, "first").as_deref(),
            Some("https://api.github.com/agents/tasks?page=1&per_page=30")
        );
        assert_eq!(link_with_rel(v, "last"), None);
        assert_eq!(link_with_rel("garbage <", "next"), None);
        assert_eq!(link_with_rel("<a>; rel=next", "next").as_deref(), Some("a"));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            jitter: false,
            ..RetryPolicy::default()
        };
        assert_eq!(p.backoff(1), Duration::from_secs(1));
        assert_eq!(p.backoff(3), Duration::from_secs(4));
        assert_eq!(p.backoff(40), Duration::from_mins(1));
        let j = RetryPolicy::default();
        for n in 1..10 {
            let d = j.backoff(n);
            let full = p.backoff(n);
            assert!(d >= full / 2 && d <= full);
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_450);
        let mut h = HeaderMap::new();
        h.insert("retry-after", "30".parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)));
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)));
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&h, now), None);
    }
}
