//! The HTTP front of the simulator: a TCP listener whose connections can be aborted on
//! demand (for dropped-connection faults), and the request pipeline every request goes
//! through in GitHub's order — request log, `User-Agent`, API version, routing, auth,
//! injected faults, rate limits, the endpoint itself, conditional requests, response
//! headers. The endpoints are in [`super::api`]; this module owns transport and headers.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::api::{self, Reply};
use super::repo::Repo;
use super::route::{self, Endpoint, Matched};
use super::scenario::{BodyFault, Fault, FaultAction, Scenario, When};
use super::store::{Bucket, LoggedRequest, Store, user_id_for_token};

/// API versions the simulator accepts (reference §1).
pub const API_VERSIONS: [&str; 2] = ["2022-11-28", "2026-03-10"];
const DOCS: &str = "https://docs.github.com/rest";
const BODY_LIMIT: usize = 4 << 20;

/// The state shared by the server and the simulated agents.
#[derive(Debug)]
pub(crate) struct Sim {
    pub scenario: Scenario,
    pub time_scale: f64,
    pub base_url: String,
    pub repo: Repo,
    pub store: Mutex<Store>,
}

impl Sim {
    /// Lock the store (a poisoned lock is still usable: the data is plain).
    pub fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

// ---------------------------------------------------------------------------------------
// Transport: connections that a handler can abort.

/// Handed to every request of a connection: `kill()` makes the connection fail instead of
/// sending the response.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnHandle {
    killed: Arc<AtomicBool>,
}

impl ConnHandle {
    fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
    }
}

/// A TCP stream that fails every operation (and resets the socket) once killed.
pub(crate) struct KillableIo {
    inner: TcpStream,
    handle: ConnHandle,
}

impl KillableIo {
    fn check(&self) -> io::Result<()> {
        if self.handle.killed.load(Ordering::SeqCst) {
            // RST instead of FIN: the client sees a reset connection, never a response.
            let _ = self.inner.set_zero_linger();
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "simulated dropped connection",
            ));
        }
        Ok(())
    }
}

impl AsyncRead for KillableIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The listener: a TCP listener handing out [`KillableIo`] connections.
pub(crate) struct SimListener(pub TcpListener);

impl axum::serve::Listener for SimListener {
    type Io = KillableIo;
    type Addr = ConnHandle;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((inner, _)) => {
                    let _ = inner.set_nodelay(true);
                    let handle = ConnHandle::default();
                    return (
                        KillableIo {
                            inner,
                            handle: handle.clone(),
                        },
                        handle,
                    );
                }
                Err(e) => {
                    tracing::debug!("sim: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(ConnHandle::default())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, SimListener>>
    for ConnHandle
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, SimListener>) -> Self {
        stream.remote_addr().clone()
    }
}

// ---------------------------------------------------------------------------------------
// The pipeline.

/// What an incoming request is, once read.
pub(crate) struct Incoming {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub request_id: String,
    pub matched: Option<Matched>,
}

enum Outcome {
    Reply(Reply),
    Drop,
}

/// The single handler of every request.
pub(crate) async fn handle(
    axum::extract::State(sim): axum::extract::State<Arc<Sim>>,
    req: Request<Body>,
) -> Response<Body> {
    let conn = req
        .extensions()
        .get::<ConnectInfo<ConnHandle>>()
        .map(|c| c.0.clone());
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map(|b| b.to_vec());
    let method = parts.method.as_str().to_string();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let matched = route::match_path(&method, &path);
    let request_id = request_id();

    // Log on arrival, so a request whose handling is abandoned (client timeout) is counted.
    let (log_index, nth) = {
        let mut store = sim.store();
        let mut shown = String::from_utf8_lossy(body.as_deref().unwrap_or_default()).into_owned();
        if shown.len() > 64 << 10 {
            let mut cut = 64 << 10;
            while !shown.is_char_boundary(cut) {
                cut -= 1;
            }
            shown.truncate(cut);
        }
        store.log.push(LoggedRequest {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            status: None,
            at: jiff::Timestamp::now(),
            endpoint: matched.as_ref().map(|m| m.endpoint),
            request_id: request_id.clone(),
            body: shown,
            answered_at: None,
            response_headers: Vec::new(),
        });
        let nth = matched.as_ref().map_or(0, |m| {
            let c = store.counters.entry(m.endpoint).or_insert(0);
            *c += 1;
            *c
        });
        (store.log.len() - 1, nth)
    };

    let outcome = match body {
        Ok(body) => {
            let inc = Incoming {
                method,
                path,
                query,
                headers: parts.headers,
                body,
                request_id: request_id.clone(),
                matched,
            };
            pipeline(&sim, &inc, nth).await
        }
        Err(_) => Outcome::Reply(Reply::error(413, "Payload too large", DOCS)),
    };
    match outcome {
        Outcome::Reply(reply) => {
            {
                let mut store = sim.store();
                let logged = &mut store.log[log_index];
                logged.status = Some(reply.status);
                logged.answered_at = Some(jiff::Timestamp::now());
                logged.response_headers = reply
                    .headers
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), v.clone()))
                    .collect();
            }
            reply.into_response()
        }
        Outcome::Drop => {
            if let Some(c) = conn {
                c.kill();
            }
            // Never written: the connection fails first.
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        }
    }
}

async fn pipeline(sim: &Arc<Sim>, inc: &Incoming, nth: u32) -> Outcome {
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
    if let Some(v) = inc.headers.get("x-github-api-version") {
        let v = String::from_utf8_lossy(v.as_bytes()).trim().to_string();
        if sim.scenario.api.retired_versions.iter().any(|r| r == &v) {
            return plain(Reply::error(
                410,
                &format!(
                    "API version '{v}' has been retired and is no longer supported. Use one of: {}.",
                    API_VERSIONS.join(", ")
                ),
                "https://docs.github.com/rest/about-the-rest-api/api-versions",
            ));
        }
        if !API_VERSIONS.contains(&v.as_str()) {
            return plain(Reply::error(
                400,
                &format!(
                    "Invalid API version: '{v}' is not a supported value for the X-GitHub-Api-Version header. Supported versions: {}.",
                    API_VERSIONS.join(", ")
                ),
                "https://docs.github.com/rest/about-the-rest-api/api-versions",
            ));
        }
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
        super::route::Endpoint::ListTasks
            | super::route::Endpoint::GetTask
            | super::route::Endpoint::ListRepoTasks
            | super::route::Endpoint::CreateTask
            | super::route::Endpoint::GetRepoTask
    );
    if agent_tasks && token.starts_with("ghs_") {
        return plain(Reply::error(
            403,
            "Resource not accessible by integration: GitHub App installation tokens are not supported for this API. Use a personal access token, an OAuth token or a GitHub App user access token.",
            api::doc_url(matched.endpoint),
        ));
    }
    let user = user_id_for_token(&token);
    // A repository the token cannot see is 404, not 403 (reference §7).
    if let Some(visible) = &sim.scenario.api.repositories
        && !matched.owner.is_empty()
        && !visible.contains(&super::store::repo_key(&matched.owner, &matched.repo))
    {
        let mut r = Reply::error(404, "Not Found", api::doc_url(matched.endpoint));
        r.headers.extend(bucket_headers(sim, user, true));
        r.finish(&inc.request_id);
        return Outcome::Reply(r);
    }

    let faults: Vec<&Fault> = sim
        .scenario
        .faults
        .iter()
        .filter(|f| f.applies(matched.endpoint, nth))
        .collect();
    let before = faults.iter().find(|f| f.when == When::Before).copied();
    let after = faults.iter().find(|f| f.when == When::After).copied();

    if let Some(f) = before {
        if let Some(d) = f.delay {
            tokio::time::sleep(d).await;
        }
        match &f.action {
            FaultAction::DelayOnly | FaultAction::Body(_) => {}
            FaultAction::Drop => return Outcome::Drop,
            FaultAction::Status { status, message } => {
                let mut r = Reply::error(
                    *status,
                    message.as_deref().unwrap_or(default_message(*status)),
                    api::doc_url(matched.endpoint),
                );
                r.headers.extend(bucket_headers(sim, user, true));
                r.finish(&inc.request_id);
                return Outcome::Reply(r);
            }
            FaultAction::SecondaryRateLimit {
                status,
                retry_after,
            } => {
                let mut r = secondary(*status, *retry_after, &inc.request_id);
                r.headers.extend(bucket_headers(sim, user, false));
                r.finish(&inc.request_id);
                return Outcome::Reply(r);
            }
        }
    }

    // Primary rate limit (reference §10, §12.9).
    if bucket_exhausted(sim, user) {
        let status = sim.scenario.rate_limit.status;
        let mut r = Reply::error(
            status,
            &format!(
                "API rate limit exceeded for user ID {user}. If you reach out to GitHub Support for help, please include the request ID {} and timestamp {}.",
                inc.request_id,
                jiff::Timestamp::now()
            ),
            "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-primary-rate-limits",
        );
        r.headers.extend(bucket_headers(sim, user, false));
        r.finish(&inc.request_id);
        return Outcome::Reply(r);
    }
    // Content-creation limit on POST (reference §12.9).
    if matched.endpoint == Endpoint::CreateTask
        && let Some(limit) = sim.scenario.creation_limit
    {
        let now = tokio::time::Instant::now();
        let mut store = sim.store();
        let q = store.creations.entry(user).or_default();
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= limit.window)
        {
            q.pop_front();
        }
        if q.len() >= limit.max as usize {
            let retry = limit.retry_after.or_else(|| {
                q.front()
                    .map(|t| limit.window.saturating_sub(now.duration_since(*t)))
            });
            drop(store);
            let mut r = secondary(limit.status, retry, &inc.request_id);
            r.headers.extend(bucket_headers(sim, user, true));
            r.finish(&inc.request_id);
            return Outcome::Reply(r);
        }
        q.push_back(now);
    }
    // Fine-grained permission (reference §2, §12.2).
    if matches!(inc.method.as_str(), "POST" | "PATCH")
        && sim.scenario.api.read_only_tokens.contains(&token)
    {
        let mut r = Reply::error(
            403,
            "Resource not accessible by personal access token",
            api::doc_url(matched.endpoint),
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
        if let Some(d) = f.delay {
            tokio::time::sleep(d).await;
        }
        match &f.action {
            FaultAction::DelayOnly | FaultAction::SecondaryRateLimit { .. } => {}
            FaultAction::Drop => return Outcome::Drop,
            FaultAction::Status { status, message } => {
                let headers = std::mem::take(&mut reply.headers)
                    .into_iter()
                    .filter(|(k, _)| k.starts_with("x-ratelimit"))
                    .collect();
                reply = Reply::error(
                    *status,
                    message.as_deref().unwrap_or(default_message(*status)),
                    api::doc_url(matched.endpoint),
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
    }
    reply.finish(&inc.request_id);
    Outcome::Reply(reply)
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

fn secondary(status: u16, retry_after: Option<std::time::Duration>, request_id: &str) -> Reply {
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

enum Auth {
    Missing,
    Malformed,
    Token(String),
}

fn bearer(headers: &HeaderMap) -> Auth {
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

/// Refresh the user's window if it has passed; true when no request is left.
fn bucket_exhausted(sim: &Sim, user: i64) -> bool {
    let mut store = sim.store();
    let b = bucket(&mut store, sim, user);
    b.used >= sim.scenario.rate_limit.limit
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
fn bucket_headers(sim: &Sim, user: i64, count: bool) -> Vec<(&'static str, String)> {
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
fn anonymous_headers() -> Vec<(&'static str, String)> {
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

/// `XXXX:XXXXXX:XXXXXXX:XXXXXXX:XXXXXXXX`, like GitHub's request ids.
fn request_id() -> String {
    let u = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .to_ascii_uppercase();
    format!(
        "{}:{}:{}:{}:{}",
        &u[0..4],
        &u[4..10],
        &u[10..17],
        &u[17..24],
        &u[24..32]
    )
}
