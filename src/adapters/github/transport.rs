//! The transport under [`Client`]: one request at a time (`send_once`: wait for the shared
//! "not before", conditional GET from the `ETag` cache, stream the answer up to a cap,
//! record what GitHub asks us to wait, classify failures and log their request id) and the
//! retry loop of idempotent GETs (`get`). Configuration lives in `client`, the endpoints in `endpoints`.

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use reqwest::header::HeaderValue;
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::client::{
    Body, CachedGet, Client, ETAG_CACHE_LIMIT, MAX_RESPONSE_BYTES, Reply, RetryObserver,
};
use super::error::{ApiError, ErrorInfo, INSTALLATION_TOKEN_HINT, TransportKind};
use super::retry;
use super::types::{ErrorBody, ValidationError};

impl Client {
    /// A GET with retries (5xx, 429, rate-limited 403, transport), backoff with jitter, the
    /// shared "not before", and the caller's deadline.
    pub(crate) async fn get(
        &self,
        url: &Url,
        observer: RetryObserver<'_>,
    ) -> Result<Reply, ApiError> {
        let deadline = self.call_deadline();
        let policy = &self.inner.retry;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let err = match self.send_once(Method::GET, url, None, deadline).await {
                Ok(reply) => return Ok(reply),
                Err(e @ ApiError::WaitPastDeadline { .. }) => return Err(e),
                Err(e) if !e.is_transient() => return Err(e),
                Err(e) => e,
            };
            let attempts = policy.attempts_for(&err);
            if attempt >= attempts {
                return Err(err);
            }
            let now = Instant::now();
            let mut at = now + policy.backoff(attempt);
            if let Some(nb) = self.not_before() {
                at = at.max(nb);
            }
            if at > deadline {
                return Err(err);
            }
            observer(&retry::Retry {
                error: &err,
                wait: at.saturating_duration_since(now),
                number: attempt,
                of: attempts - 1,
            });
            tokio::time::sleep_until(at).await;
        }
    }

    /// Wait for the "not before", send one request, stream the answer (at most
    /// [`MAX_RESPONSE_BYTES`]), record rate-limit waits, and turn non-success statuses into
    /// [`ApiError`] (logging the request id).
    pub(crate) async fn send_once(
        &self,
        method: Method,
        url: &Url,
        body: Option<Vec<u8>>,
        deadline: Instant,
    ) -> Result<Reply, ApiError> {
        let path = path_of(url);
        self.wait_turn(&method, url, &path, deadline).await?;
        let key = url.as_str().to_string();
        let cached_etag = (method == Method::GET)
            .then(|| self.cached(&key).map(|c| c.etag))
            .flatten();
        let mut rb = self.inner.http.request(method.clone(), url.clone());
        if let Some(etag) = &cached_etag
            && let Ok(v) = HeaderValue::from_str(etag)
        {
            rb = rb.header(reqwest::header::IF_NONE_MATCH, v);
        }
        if let Some(body) = body {
            rb = rb
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let resp = rb
            .send()
            .await
            .map_err(|e| transport_error(&method, &path, &e, false))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let request_id = headers
            .get("x-github-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = read_capped(resp, &method, &path, request_id.as_deref()).await?;
        // Rate-limit bookkeeping on every answer, success or not.
        let message = if status.is_success() || status == StatusCode::NOT_MODIFIED {
            None
        } else {
            serde_json::from_slice::<ErrorBody>(&bytes).ok()
        };
        let rate_limited = retry::is_rate_limited(
            status.as_u16(),
            &headers,
            message.as_ref().map(|m| m.message.as_str()),
        );
        let wait = retry::requested_wait(
            &headers,
            self.inner.clock.now(),
            rate_limited,
            self.inner.retry.secondary_wait,
        );
        if let Some(wait) = wait
            && (rate_limited || status.is_server_error() || retry::remaining(&headers) == Some(0))
        {
            self.push_not_before(Instant::now() + wait);
        }
        let reply = Reply {
            status: status.as_u16(),
            headers,
            body: bytes,
            request_id,
            revalidated: false,
        };
        if status == StatusCode::NOT_MODIFIED
            && let Some(cached) = self.cached(&key)
        {
            return Ok(Reply {
                status: 200,
                body: cached.body,
                revalidated: true,
                ..reply
            });
        }
        if status.is_success() {
            if method == Method::GET {
                self.remember(key, &reply);
            }
            return Ok(reply);
        }
        Err(self.failure(&method, &path, &reply, message, rate_limited, wait))
    }

    /// Wait for the "not before" (another request may push it further while this one
    /// sleeps: look again) and, for a write, for its time under the fleet's write pace
    /// (`write-pace`; a GraphQL query is a read sent as a POST). A wait past `deadline` is
    /// an error at once.
    async fn wait_turn(
        &self,
        method: &Method,
        url: &Url,
        path: &str,
        deadline: Instant,
    ) -> Result<(), ApiError> {
        let past = |wait| ApiError::WaitPastDeadline {
            method: method.to_string(),
            path: path.to_string(),
            wait,
        };
        while let Some(nb) = self.not_before() {
            if nb > deadline {
                return Err(past(nb.saturating_duration_since(Instant::now())));
            }
            tokio::time::sleep_until(nb).await;
        }
        let Some(pacer) = &self.inner.pacer else {
            return Ok(());
        };
        if *method == Method::GET || *url == self.graphql_url() {
            return Ok(());
        }
        let at = pacer.reserve().await;
        if let Ok(wait) = at.duration_since(std::time::SystemTime::now())
            && !wait.is_zero()
        {
            let until = Instant::now() + wait;
            if until > deadline {
                return Err(past(wait));
            }
            tracing::debug!(method = %method, path = %path, wait_ms = wait.as_millis(), "waiting for the fleet's write pace");
            tokio::time::sleep_until(until).await;
        }
        Ok(())
    }

    /// The cached answer of a GET of `key`, if there is one.
    fn cached(&self, key: &str) -> Option<CachedGet> {
        self.inner
            .etags
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    /// Remember a successful GET's answer under its `ETag`, for a conditional request next.
    fn remember(&self, key: String, reply: &Reply) {
        let Some(etag) = reply
            .headers
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
        else {
            return;
        };
        let mut cache = self
            .inner
            .etags
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= ETAG_CACHE_LIMIT && !cache.contains_key(&key) {
            cache.clear();
        }
        cache.insert(
            key,
            CachedGet {
                etag: etag.to_string(),
                body: Arc::clone(&reply.body),
            },
        );
    }

    /// A non-success answer as its [`ApiError`], logged with its request id (as a debug
    /// line when it is transient: a retry announces it, or the caller reports it).
    fn failure(
        &self,
        method: &Method,
        path: &str,
        reply: &Reply,
        message: Option<ErrorBody>,
        rate_limited: bool,
        wait: Option<Duration>,
    ) -> ApiError {
        let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_GATEWAY);
        let info = ErrorInfo {
            method: method.to_string(),
            path: path.to_string(),
            status: reply.status,
            message: message
                .as_ref()
                .map(|m| m.message.clone())
                .filter(|m| !m.is_empty()),
            documentation_url: message
                .as_ref()
                .map(|m| m.documentation_url.clone())
                .filter(|d| !d.is_empty()),
            request_id: reply.request_id.clone(),
            accepted_permissions: reply
                .headers
                .get("x-accepted-github-permissions")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        };
        let err = self.classify(
            Box::new(info),
            status,
            rate_limited,
            wait,
            message.and_then(|m| m.errors),
        );
        let rid = reply.request_id.as_deref().unwrap_or("-");
        if err.is_transient() {
            tracing::debug!(method = %method, path = %path, status = reply.status, request_id = rid, error = %err, "GitHub request failed");
        } else {
            tracing::warn!(method = %method, path = %path, status = reply.status, request_id = rid, error = %err, "GitHub request failed");
        }
        err
    }

    fn classify(
        &self,
        info: Box<ErrorInfo>,
        status: StatusCode,
        rate_limited: bool,
        wait: Option<Duration>,
        errors: Option<Vec<ValidationError>>,
    ) -> ApiError {
        let agents = info.path.contains("/agents/");
        let mentions_installation = info
            .message
            .as_deref()
            .is_some_and(|m| m.to_ascii_lowercase().contains("installation"));
        let installation =
            agents && (self.inner.token.is_installation_token() || mentions_installation);
        match status.as_u16() {
            _ if rate_limited => ApiError::RateLimited {
                info,
                retry_in: wait,
            },
            401 => ApiError::Unauthorized {
                info,
                hint: if installation {
                    INSTALLATION_TOKEN_HINT.to_string()
                } else {
                    "check that the token is a valid, unexpired user token (PAT) for this GitHub host".to_string()
                },
            },
            403 => {
                let hint = if installation {
                    INSTALLATION_TOKEN_HINT.to_string()
                } else if agents {
                    "give the token the repository permission \"Agent tasks\" (read and write to start tasks), and check that Copilot cloud agent is enabled for the repository".to_string()
                } else {
                    "give the token write access to the repository's statuses, issues and pull requests".to_string()
                };
                ApiError::Forbidden { info, hint }
            }
            404 => ApiError::NotFound { info },
            500..=599 => ApiError::Server { info },
            s => {
                let hint = match s {
                    400 => "the request is malformed; this is a bug in agent-gate or an API change".to_string(),
                    410 => "the API version is retired: upgrade agent-gate or set a supported api_version".to_string(),
                    422 => "fix the listed fields (prompt, model, custom_agent, base_ref…)".to_string(),
                    _ => "not retried; see GitHub's message".to_string(),
                };
                ApiError::Rejected {
                    info,
                    errors: errors.unwrap_or_default(),
                    hint,
                }
            }
        }
    }
}

pub(super) fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(v).map_err(|e| ApiError::Config(format!("cannot encode the request: {e}")))
}

pub(crate) fn path_of(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

pub(crate) fn decode<T: DeserializeOwned>(
    method: &Method,
    url: &Url,
    reply: &Reply,
) -> Result<T, ApiError> {
    serde_json::from_slice(&reply.body).map_err(|e| {
        let err = ApiError::Decode {
            method: method.to_string(),
            path: path_of(url),
            status: reply.status,
            request_id: reply.request_id.clone(),
            detail: e.to_string(),
        };
        tracing::warn!(request_id = reply.request_id.as_deref().unwrap_or("-"), error = %err, "GitHub response not understood");
        err
    })
}

/// The reqwest error and its sources, without the URL (we print the path ourselves).
fn error_chain(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut parts: Vec<String> = Vec::new();
    let mut src = e.source();
    while let Some(s) = src {
        let text = s.to_string();
        if !parts.iter().any(|p| p == &text) {
            parts.push(text);
        }
        src = s.source();
    }
    if parts.is_empty() {
        parts.push(e.to_string());
    }
    parts.join(": ")
}

/// A request that got no (whole) answer: `sent` once the answer had begun.
fn transport_error(method: &Method, path: &str, e: &reqwest::Error, sent: bool) -> ApiError {
    let kind = if e.is_timeout() {
        TransportKind::Timeout
    } else if e.is_connect() && !sent {
        TransportKind::Connect
    } else {
        TransportKind::Broken
    };
    let err = ApiError::Transport {
        method: method.to_string(),
        path: path.to_string(),
        kind,
        detail: error_chain(e),
    };
    // Not a warning of its own: a retry announces it, or the caller reports it.
    tracing::debug!(method = %method, path = %path, error = %err, "GitHub request failed without a response");
    err
}

/// The answer's body, streamed with a cap: a hostile or broken server cannot make the gate
/// hold an answer of any size (or two copies of it).
async fn read_capped(
    mut resp: reqwest::Response,
    method: &Method,
    path: &str,
    request_id: Option<&str>,
) -> Result<Body, ApiError> {
    let status = resp.status().as_u16();
    let too_large = || {
        let err = ApiError::TooLarge {
            method: method.to_string(),
            path: path.to_string(),
            status,
            request_id: request_id.map(str::to_string),
            limit: MAX_RESPONSE_BYTES,
        };
        tracing::warn!(request_id = request_id.unwrap_or("-"), error = %err, "GitHub answer refused");
        err
    };
    let announced = resp.content_length().unwrap_or(0);
    if announced > MAX_RESPONSE_BYTES as u64 {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(usize::try_from(announced).unwrap_or(0).min(1 << 20));
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| transport_error(method, path, &e, true))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Arc::new(body))
}
