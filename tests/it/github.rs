//! Tests of the github area: the client, its retry and rate-limit rules, reconciliation of
//! an ambiguous create, the poller and `stop`, against a small scriptable fake server
//! (axum on 127.0.0.1:0) that records every request with its (paused) tokio instant.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use agent_gate::adapters::github::types::{CommitStatus, Task, TaskState};
use agent_gate::adapters::github::{
    ApiError, Client, ClientConfig, Clock, ListQuery, ListSort, PollEvent, PollOptions,
    PollOutcome, RetryPolicy, StatePolicy, StopAction, StopOptions, StopReason, TransportKind,
    create_task_request, poll_task, stop, task_cost,
};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::time::Instant;

// ---- the fake server ------------------------------------------------------------------

const TOKEN: &str = "ghp_CANARY_do_not_print_0123456789";
/// Wall time of the injected clock.
const T0: u64 = 1_800_000_000;

#[derive(Debug)]
struct FixedClock(SystemTime);

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        self.0
    }
}

/// One request the fake received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    /// Path and query.
    uri: String,
    headers: HeaderMap,
    body: String,
    at: Instant,
}

impl Seen {
    fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or("")
    }
    fn query(&self) -> &str {
        self.uri.split_once('?').map_or("", |(_, q)| q)
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What the fake does with a request.
enum Action {
    Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Close the connection without an answer.
    Drop,
    /// Answer only after an hour.
    Hang,
}

fn reply(status: u16, body: &Value) -> Action {
    Action::Reply {
        status,
        headers: vec![("x-github-request-id".into(), format!("REQ-{status}"))],
        body: body.to_string(),
    }
}

fn reply_with(status: u16, body: &Value, headers: &[(&str, &str)]) -> Action {
    let Action::Reply {
        status,
        headers: mut h,
        body,
    } = reply(status, body)
    else {
        unreachable!()
    };
    h.extend(
        headers
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string())),
    );
    Action::Reply {
        status,
        headers: h,
        body,
    }
}

/// GitHub's error body (reference §7).
fn gh_error(_status: u16, message: &str) -> Value {
    json!({"message": message, "documentation_url": "https://docs.github.com/rest"})
}

type Script = Arc<dyn Fn(&Seen, &[Seen]) -> Action + Send + Sync>;

struct Fake {
    base: String,
    log: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    /// Start a fake whose answers come from `script(request, all requests so far)`.
    async fn start(script: impl Fn(&Seen, &[Seen]) -> Action + Send + Sync + 'static) -> Fake {
        let script: Script = Arc::new(script);
        let log: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app_log = Arc::clone(&log);
        let app = Router::new().fallback(move |req: Request<Body>| {
            let log = Arc::clone(&app_log);
            let script = Arc::clone(&script);
            async move {
                let (parts, body) = req.into_parts();
                let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                let seen = Seen {
                    method: parts.method.to_string(),
                    uri: parts.uri.to_string(),
                    headers: parts.headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                    at: Instant::now(),
                };
                let all = {
                    let mut log = log.lock().unwrap();
                    log.push(seen.clone());
                    log.clone()
                };
                match script(&seen, &all) {
                    Action::Reply {
                        status,
                        headers,
                        body,
                    } => {
                        let mut resp = Response::builder()
                            .status(StatusCode::from_u16(status).unwrap())
                            .header("content-type", "application/json; charset=utf-8");
                        for (k, v) in headers {
                            resp = resp.header(k, v);
                        }
                        resp.body(Body::from(body)).unwrap()
                    }
                    // Unwinding the connection task closes the socket with no answer.
                    Action::Drop => panic!("fake server: dropping the connection (scripted)"),
                    Action::Hang => {
                        tokio::time::sleep(Duration::from_hours(1)).await;
                        Response::builder().status(500).body(Body::empty()).unwrap()
                    }
                }
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        Fake { base, log }
    }

    fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    fn count(&self, method: &str, path_part: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.method == method && s.path().contains(path_part))
            .count()
    }

    fn config(&self) -> ClientConfig {
        let mut c = ClientConfig::new(TOKEN, "octo", "hello").with_api_url(&self.base);
        c.clock = Arc::new(FixedClock(SystemTime::UNIX_EPOCH + Duration::from_secs(T0)));
        c
    }

    fn client(&self) -> Client {
        Client::new(self.config()).unwrap()
    }
}

fn task_json(id: &str, state: &str, prompt: &str) -> Value {
    json!({
        "id": id,
        "url": format!("https://api.github.com/agents/repos/octo/hello/tasks/{id}"),
        "html_url": format!("https://github.com/octo/hello/copilot/tasks/{id}"),
        "name": "a task",
        "creator": {"id": 42}, "creator_type": "user", "owner": {"id": 1},
        "repository": {"id": 7}, "state": state, "session_count": 1,
        "artifacts": [], "archived_at": null,
        "created_at": "2027-01-15T08:00:00Z", "updated_at": "2027-01-15T08:00:00Z",
        "sessions": [{"id": format!("s-{id}"), "state": state,
                      "created_at": "2027-01-15T08:00:00Z", "prompt": prompt,
                      "head_ref": "copilot/fix-1", "base_ref": "main"}]
    })
}

fn gap(a: &Seen, b: &Seen) -> Duration {
    b.at.duration_since(a.at)
}

fn approx(d: Duration, secs: f64) -> bool {
    (d.as_secs_f64() - secs).abs() < 0.05
}

// ---- round trips ------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn create_get_list_round_trip_with_standard_headers() {
    let fake = Fake::start(|req, _| match (req.method.as_str(), req.path()) {
        ("POST", "/agents/repos/octo/hello/tasks") => {
            let mut t = task_json("t1", "queued", "do it");
            t["sessions"] = Value::Null;
            reply(201, &t)
        }
        ("GET", "/agents/repos/octo/hello/tasks/t1") => reply(200, &task_json("t1", "in_progress", "do it")),
        ("GET", "/agents/repos/octo/hello/tasks") => reply(
            200,
            &json!({"tasks": [task_json("t1", "in_progress", "x")], "total_active_count": 1, "total_archived_count": 0}),
        ),
        _ => reply(404, &gh_error(404, "Not Found")),
    })
    .await;
    let client = fake.client();

    let req = create_task_request("do it", Some("main".into()));
    let created = client.create_task(&req).await.unwrap();
    assert_eq!(created.id, "t1");
    assert_eq!(created.state, TaskState::Queued);
    let got = client.get_task("t1").await.unwrap();
    assert_eq!(got.state, TaskState::InProgress);
    assert_eq!(got.sessions.unwrap()[0].prompt.as_deref(), Some("do it"));
    let list = client
        .list_tasks(&ListQuery {
            since: Some("2027-01-15T07:59:00Z".parse().unwrap()),
            creator_id: vec![42, 43],
            state: vec![TaskState::Queued, TaskState::InProgress],
            sort: Some(ListSort::CreatedAt),
            per_page: Some(100),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(list.tasks.len(), 1);
    assert_eq!(list.total_active_count, Some(1));

    let seen = fake.seen();
    assert_eq!(seen.len(), 3);
    for s in &seen {
        assert_eq!(s.header("accept"), Some("application/vnd.github+json"));
        assert_eq!(s.header("x-github-api-version"), Some("2026-03-10"));
        assert!(s.header("user-agent").unwrap().starts_with("agent-gate/"));
        assert_eq!(
            s.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
    let body: Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(
        body,
        json!({"prompt": "do it", "create_pull_request": true, "base_ref": "main"})
    );
    assert_eq!(
        seen[2].query(),
        "since=2027-01-15T07%3A59%3A00Z&creator_id=42&creator_id=43&state=queued%2Cin_progress&sort=created_at&per_page=100"
    );
}

#[tokio::test(start_paused = true)]
async fn list_follows_link_next_across_three_pages() {
    let base = Arc::new(Mutex::new(String::new()));
    let b = Arc::clone(&base);
    let fake = Fake::start(move |req, _| {
        let base = b.lock().unwrap().clone();
        // Opaque cursors: the client must follow the Link, never build page URLs.
        let (page, next) = match req.query() {
            "per_page=2" => (1, Some("cursor=B")),
            "cursor=B" => (2, Some("cursor=C")),
            "cursor=C" => (3, None),
            q => panic!("unexpected query {q}"),
        };
        let mut link = format!("<{base}/agents/repos/octo/hello/tasks?per_page=2>; rel=\"first\"");
        if let Some(n) = next {
            link = format!("<{base}/agents/repos/octo/hello/tasks?{n}>; rel=\"next\", {link}");
        }
        let tasks: Vec<Value> = (0..2)
            .map(|i| task_json(&format!("p{page}-{i}"), "queued", "x"))
            .collect();
        reply_with(
            200,
            &json!({"tasks": tasks, "total_active_count": 6, "total_archived_count": 0}),
            &[("link", &link)],
        )
    })
    .await;
    *base.lock().unwrap() = fake.base.clone();
    let list = fake
        .client()
        .list_tasks(&ListQuery {
            per_page: Some(2),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    let ids: Vec<&str> = list.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["p1-0", "p1-1", "p2-0", "p2-1", "p3-0", "p3-1"]);
    assert_eq!(list.total_active_count, Some(6));
    assert_eq!(fake.seen().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn link_to_another_host_is_not_followed_with_the_token() {
    let fake = Fake::start(|_, _| {
        reply_with(
            200,
            &json!({"tasks": []}),
            &[("link", "<https://evil.example/steal?page=2>; rel=\"next\"")],
        )
    })
    .await;
    let err = fake
        .client()
        .list_tasks(&ListQuery::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Decode { .. }), "{err}");
    assert!(err.to_string().contains("another host"));
    assert_eq!(fake.seen().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn unknown_fields_states_and_artifact_shapes_are_tolerated() {
    let fake = Fake::start(|_, _| {
        let mut t = task_json("t9", "paused_for_review", "x");
        t["brand_new_field"] = json!({"nested": [1, 2, 3]});
        t["sessions"][0]["state"] = json!("thinking_hard");
        t["sessions"][0]["usage"] = json!({"type": "ai_credits", "amount": 1_500_000_000u64, "extra": true});
        t["artifacts"] = json!([
            {"provider": "github", "type": "github_resource", "data": {"type": "pull", "id": 99, "global_id": "PR_x"}},
            {"provider": "github", "type": "branch", "data": {"head_ref": "copilot/x", "base_ref": "main"}},
            {"provider": "gitlab", "type": "something_else", "data": 5}
        ]);
        reply(200, &t)
    })
    .await;
    let task = fake.client().get_task("t9").await.unwrap();
    assert_eq!(task.state, TaskState::Unknown("paused_for_review".into()));
    assert!(!task.state.is_final());
    assert_eq!(task.artifacts.len(), 3);
    assert_eq!(task_cost(&task).ai_credits_nano, 1_500_000_000);
}

#[test]
fn task_cost_sums_raw_nano_units_then_divides() {
    let mut t: Task = serde_json::from_value(task_json("t", "completed", "x")).unwrap();
    let mut s = t.sessions.take().unwrap().remove(0);
    let mut sessions = Vec::new();
    for (kind, amount) in [
        ("ai_credits", 100_000_000.0),
        ("ai_credits", 200_000_000.0),
        ("premium_requests", 1.5),
        ("premium_requests", 1.0),
        ("mystery", 9.0),
    ] {
        s.usage = Some(serde_json::from_value(json!({"type": kind, "amount": amount})).unwrap());
        sessions.push(s.clone());
    }
    t.sessions = Some(sessions);
    let cost = task_cost(&t);
    assert_eq!(cost.ai_credits_nano, 300_000_000);
    assert!((cost.ai_credits() - 0.3).abs() < 1e-12);
    assert!((cost.premium_requests - 2.5).abs() < f64::EPSILON);
}

// ---- errors ---------------------------------------------------------------------------

/// A fixed answer.
type Canned = Box<dyn Fn() -> Action + Send + Sync>;

async fn error_for(token: &str, action: impl Fn() -> Action + Send + Sync + 'static) -> ApiError {
    let fake = Fake::start(move |_, _| action()).await;
    let mut config = fake.config();
    config.token = agent_gate::core::secret::Token::new(token);
    config.retry.max_attempts = 1;
    let client = Client::new(config).unwrap();
    let err = client.get_task("t1").await.unwrap_err();
    assert!(!err.to_string().contains(token), "token leaked: {err}");
    assert!(!format!("{err:?}").contains(token), "token leaked: {err:?}");
    err
}

#[tokio::test(start_paused = true)]
async fn each_error_class_says_what_to_do() {
    let mut lines = Vec::new();
    let cases: Vec<(&str, &str, Canned)> = vec![
        (
            "401 user token",
            TOKEN,
            Box::new(|| reply(401, &gh_error(401, "Bad credentials"))),
        ),
        (
            "401 installation token",
            "ghs_installation123",
            Box::new(|| reply(401, &gh_error(401, "Bad credentials"))),
        ),
        (
            "403 installation message",
            TOKEN,
            Box::new(|| {
                reply(
                    403,
                    &gh_error(
                        403,
                        "Resource not accessible by integration: installation tokens are not supported",
                    ),
                )
            }),
        ),
        (
            "403 permission",
            TOKEN,
            Box::new(|| {
                reply_with(
                    403,
                    &gh_error(403, "Resource not accessible by personal access token"),
                    &[("x-accepted-github-permissions", "agent_tasks=write")],
                )
            }),
        ),
        (
            "404",
            TOKEN,
            Box::new(|| reply(404, &gh_error(404, "Not Found"))),
        ),
        (
            "422",
            TOKEN,
            Box::new(|| {
                reply(
                    422,
                    &json!({"message": "Validation Failed", "documentation_url": "https://docs.github.com/rest",
                            "errors": [{"code": "missing_field", "field": "prompt", "resource": "Task"}]}),
                )
            }),
        ),
        (
            "410",
            TOKEN,
            Box::new(|| reply(410, &gh_error(410, "API version retired"))),
        ),
        (
            "500",
            TOKEN,
            Box::new(|| reply(500, &gh_error(500, "Server Error"))),
        ),
        (
            "429",
            TOKEN,
            Box::new(|| {
                reply_with(
                    429,
                    &gh_error(429, "You have exceeded a secondary rate limit"),
                    &[("retry-after", "30")],
                )
            }),
        ),
        (
            "malformed JSON",
            TOKEN,
            Box::new(|| Action::Reply {
                status: 200,
                headers: vec![("x-github-request-id".into(), "REQ-200".into())],
                body: "{\"id\": oops".into(),
            }),
        ),
        (
            "wrong shape",
            TOKEN,
            Box::new(|| reply(200, &json!({"id": 5}))),
        ),
    ];
    for (name, token, action) in cases {
        let err = error_for(token, action).await;
        let class = if err.is_auth() {
            "auth"
        } else if err.is_transient() {
            "transient"
        } else {
            "other"
        };
        lines.push(format!("{name} [{class}]:\n  {err}"));
    }

    // Nothing listening: a connect failure.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut config =
        ClientConfig::new(TOKEN, "octo", "hello").with_api_url(format!("http://127.0.0.1:{port}"));
    config.retry.max_attempts = 1;
    let err = Client::new(config)
        .unwrap()
        .get_task("t1")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ApiError::Transport {
                kind: TransportKind::Connect,
                ..
            }
        ),
        "{err:?}"
    );
    lines.push(format!("connection refused [transient]:\n  {err}"));

    // Bad configuration.
    let err =
        Client::new(ClientConfig::new(TOKEN, "octo", "hello").with_api_url("ftp://x")).unwrap_err();
    lines.push(format!("bad api-url:\n  {err}"));
    let err = Client::new(ClientConfig::new("bad\ntoken", "octo", "hello")).unwrap_err();
    assert!(!err.to_string().contains("bad\ntoken"));
    lines.push(format!("bad token:\n  {err}"));

    insta::assert_snapshot!(lines.join("\n"));
}

// ---- retries and rate limits --------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn get_retries_500_500_then_succeeds_after_backoff() {
    let fake = Fake::start(|_, all| match all.len() {
        1 | 2 => reply(500, &gh_error(500, "Server Error")),
        _ => reply(200, &task_json("t1", "queued", "x")),
    })
    .await;
    let task = fake.client().get_task("t1").await.unwrap();
    assert_eq!(task.id, "t1");
    let seen = fake.seen();
    assert_eq!(seen.len(), 3);
    // Equal jitter: the n-th backoff is in [d/2, d] with d = 1 s, 2 s.
    let (g1, g2) = (gap(&seen[0], &seen[1]), gap(&seen[1], &seen[2]));
    assert!(
        g1 >= Duration::from_millis(500) && g1 <= Duration::from_secs(1),
        "{g1:?}"
    );
    assert!(
        g2 >= Duration::from_secs(1) && g2 <= Duration::from_secs(2),
        "{g2:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_30_is_honoured_by_every_request_of_the_client() {
    let fake = Fake::start(|req, all| {
        if all.len() == 1 {
            reply_with(
                429,
                &gh_error(429, "secondary rate limit"),
                &[("retry-after", "30")],
            )
        } else if req.path().ends_with("/tasks") {
            reply(200, &json!({"tasks": []}))
        } else {
            reply(200, &task_json("t1", "queued", "x"))
        }
    })
    .await;
    let client = fake.client();
    let other = client.clone();
    // Two concurrent calls: the second starts after the 429 and must wait too.
    let first = tokio::spawn(async move { client.get_task("t1").await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let list = other.list_tasks(&ListQuery::default()).await.unwrap();
    assert!(list.tasks.is_empty());
    first.await.unwrap().unwrap();
    let seen = fake.seen();
    assert_eq!(seen.len(), 3);
    for later in &seen[1..] {
        assert!(
            gap(&seen[0], later) >= Duration::from_secs(30),
            "{:?}",
            gap(&seen[0], later)
        );
    }
}

#[tokio::test(start_paused = true)]
async fn rate_limited_403_waits_for_the_reset() {
    let reset = (T0 + 45).to_string();
    let fake = Fake::start(move |_, all| {
        if all.len() == 1 {
            reply_with(
                403,
                &gh_error(403, "API rate limit exceeded for user ID 42."),
                &[
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset", &reset),
                ],
            )
        } else {
            reply(200, &task_json("t1", "queued", "x"))
        }
    })
    .await;
    fake.client().get_task("t1").await.unwrap();
    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    assert!(gap(&seen[0], &seen[1]) >= Duration::from_secs(45));
}

#[tokio::test(start_paused = true)]
async fn remaining_zero_on_a_success_delays_the_next_request() {
    let reset = (T0 + 20).to_string();
    let fake = Fake::start(move |_, _| {
        reply_with(
            200,
            &task_json("t1", "queued", "x"),
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", &reset),
            ],
        )
    })
    .await;
    let client = fake.client();
    client.get_task("t1").await.unwrap();
    client.get_task("t1").await.unwrap();
    let seen = fake.seen();
    assert!(gap(&seen[0], &seen[1]) >= Duration::from_secs(20));
}

#[tokio::test(start_paused = true)]
async fn secondary_limit_without_headers_waits_a_minute() {
    let fake = Fake::start(|_, all| {
        if all.len() == 1 {
            reply(
                403,
                &gh_error(403, "You have exceeded a secondary rate limit."),
            )
        } else {
            reply(200, &task_json("t1", "queued", "x"))
        }
    })
    .await;
    fake.client().get_task("t1").await.unwrap();
    let seen = fake.seen();
    assert!(gap(&seen[0], &seen[1]) >= Duration::from_mins(1));
}

#[tokio::test(start_paused = true)]
async fn unauthorized_and_not_found_are_not_retried() {
    for status in [401, 404, 422] {
        let fake = Fake::start(move |_, _| reply(status, &gh_error(status, "nope"))).await;
        let err = fake.client().get_task("t1").await.unwrap_err();
        assert_eq!(err.status(), Some(status));
        assert_eq!(err.request_id(), Some(format!("REQ-{status}").as_str()));
        assert_eq!(fake.seen().len(), 1, "status {status}");
    }
}

#[tokio::test(start_paused = true)]
async fn retries_stop_at_the_deadline_with_the_last_error() {
    let fake = Fake::start(|_, _| reply(503, &gh_error(503, "Service Unavailable"))).await;
    let start = Instant::now();
    let client = fake.client().with_deadline(start + Duration::from_secs(10));
    let err = client.get_task("t1").await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert!(Instant::now() <= start + Duration::from_secs(10));
    assert!(
        fake.seen()
            .iter()
            .all(|s| s.at <= start + Duration::from_secs(10))
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_beyond_the_deadline_is_not_waited_for() {
    let fake = Fake::start(|_, _| {
        reply_with(429, &gh_error(429, "slow down"), &[("retry-after", "3600")])
    })
    .await;
    let start = Instant::now();
    let client = fake.client().with_deadline(start + Duration::from_mins(1));
    let err = client.get_task("t1").await.unwrap_err();
    assert!(matches!(err, ApiError::RateLimited { .. }), "{err}");
    let err = client.get_task("t1").await.unwrap_err();
    assert!(matches!(err, ApiError::WaitPastDeadline { .. }), "{err}");
    assert_eq!(fake.seen().len(), 1);
}

// ---- conditional requests ---------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn etag_revalidation_reuses_the_cached_body() {
    let not_modified = Arc::new(AtomicUsize::new(0));
    let nm = Arc::clone(&not_modified);
    let fake = Fake::start(move |req, _| {
        if req.header("if-none-match") == Some("\"v1\"") {
            nm.fetch_add(1, Ordering::SeqCst);
            Action::Reply {
                status: 304,
                headers: vec![("etag".into(), "\"v1\"".into())],
                body: String::new(),
            }
        } else {
            reply_with(
                200,
                &task_json("t1", "in_progress", "x"),
                &[("etag", "\"v1\"")],
            )
        }
    })
    .await;
    let client = fake.client();
    for _ in 0..3 {
        assert_eq!(
            client.get_task("t1").await.unwrap().state,
            TaskState::InProgress
        );
    }
    assert_eq!(not_modified.load(Ordering::SeqCst), 2);
}

// ---- reconciliation -----------------------------------------------------------------------

/// A store of tasks behind the agent-task routes; `fault(n)` is applied to the n-th POST
/// (1-based) *after* the task was created, or instead of creating it when `before` is set.
fn task_server(
    created: Arc<AtomicUsize>,
    fault: impl Fn(usize) -> Option<(Action, bool)> + Send + Sync + 'static,
) -> impl Fn(&Seen, &[Seen]) -> Action + Send + Sync + 'static {
    let store: Arc<Mutex<Vec<Value>>> = Arc::default();
    // Another user's task, to be skipped.
    store
        .lock()
        .unwrap()
        .push(task_json("other", "in_progress", "someone else's work"));
    move |req, all| {
        let posts = all.iter().filter(|s| s.method == "POST").count();
        match (req.method.as_str(), req.path()) {
            ("POST", "/agents/repos/octo/hello/tasks") => {
                let prompt = serde_json::from_str::<Value>(&req.body).unwrap()["prompt"]
                    .as_str()
                    .unwrap()
                    .to_string();
                let f = fault(posts);
                if let Some((action, true)) = f {
                    return action;
                }
                let id = format!("task-{posts}");
                let mut t = task_json(&id, "queued", &prompt);
                t["name"] = json!("Fix the login button");
                store.lock().unwrap().push(t.clone());
                created.fetch_add(1, Ordering::SeqCst);
                match f {
                    Some((action, _)) => action,
                    None => reply(201, &t),
                }
            }
            ("GET", "/agents/repos/octo/hello/tasks") => {
                let tasks: Vec<Value> = store
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|t| {
                        let mut t = t.clone();
                        t.as_object_mut().unwrap().remove("sessions");
                        t
                    })
                    .collect();
                reply(200, &json!({"tasks": tasks}))
            }
            ("GET", p) => {
                let id = p.rsplit('/').next().unwrap();
                let store = store.lock().unwrap();
                match store.iter().find(|t| t["id"] == id) {
                    Some(t) => reply(200, t),
                    None => reply(404, &gh_error(404, "Not Found")),
                }
            }
            _ => reply(404, &gh_error(404, "Not Found")),
        }
    }
}

const MARKER: &str = "<!-- agent-gate-key: run-77 -->";

async fn reconcile_case(
    fault: impl Fn(usize) -> Option<(Action, bool)> + Send + Sync + 'static,
) -> (
    Fake,
    Result<agent_gate::adapters::github::CreatedTask, ApiError>,
    usize,
) {
    let created = Arc::new(AtomicUsize::new(0));
    let fake = Fake::start(task_server(Arc::clone(&created), fault)).await;
    let mut config = fake.config();
    config.creator_id = Some(42);
    let client = Client::new(config).unwrap();
    let req = create_task_request(format!("Fix the login button\n\n{MARKER}"), None);
    let since: jiff::Timestamp = "2027-01-15T07:55:00Z".parse().unwrap();
    let out = client.create_task_idempotent(&req, MARKER, since).await;
    let n = created.load(Ordering::SeqCst);
    (fake, out, n)
}

fn assert_reconciled(
    fake: &Fake,
    out: Result<agent_gate::adapters::github::CreatedTask, ApiError>,
    created: usize,
) {
    let out = out.unwrap();
    assert!(out.reconciled);
    assert_eq!(out.task.id, "task-1");
    assert_eq!(out.posts, 1);
    assert_eq!(created, 1, "exactly one creation");
    assert_eq!(fake.count("POST", "/tasks"), 1);
    let list = fake
        .seen()
        .into_iter()
        .find(|s| s.method == "GET" && s.path().ends_with("/tasks"))
        .unwrap();
    assert!(
        list.query().contains("since=2027-01-15T07%3A55%3A00Z"),
        "{}",
        list.query()
    );
    assert!(list.query().contains("creator_id=42"), "{}", list.query());
    // The candidate of another user was read and rejected; ours was found by its prompt.
    assert_eq!(fake.count("GET", "/tasks/other"), 1);
}

#[tokio::test(start_paused = true)]
async fn dropped_connection_after_create_is_reconciled_by_marker() {
    let (fake, out, created) = reconcile_case(|n| (n == 1).then_some((Action::Drop, false))).await;
    assert_reconciled(&fake, out, created);
}

#[tokio::test(start_paused = true)]
async fn server_error_after_create_is_reconciled_by_marker() {
    let (fake, out, created) =
        reconcile_case(|n| (n == 1).then(|| (reply(502, &gh_error(502, "Bad Gateway")), false)))
            .await;
    assert_reconciled(&fake, out, created);
}

#[tokio::test(start_paused = true)]
async fn timeout_after_create_is_reconciled_by_marker() {
    let (fake, out, created) = reconcile_case(|n| (n == 1).then_some((Action::Hang, false))).await;
    assert_reconciled(&fake, out, created);
}

#[tokio::test(start_paused = true)]
async fn a_create_lost_before_the_server_acted_is_posted_again_once() {
    let (fake, out, created) = reconcile_case(|n| (n == 1).then_some((Action::Drop, true))).await;
    let out = out.unwrap();
    assert!(!out.reconciled);
    assert_eq!(out.posts, 2);
    assert_eq!(created, 1);
    assert_eq!(fake.count("POST", "/tasks"), 2);
}

#[tokio::test(start_paused = true)]
async fn a_definite_refusal_is_not_retried() {
    let (fake, out, created) =
        reconcile_case(|_| Some((reply(422, &gh_error(422, "Validation Failed")), true))).await;
    assert_eq!(out.unwrap_err().status(), Some(422));
    assert_eq!(created, 0);
    assert_eq!(fake.seen().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn find_task_by_marker_attaches_on_rerun() {
    let created = Arc::new(AtomicUsize::new(0));
    let fake = Fake::start(task_server(Arc::clone(&created), |_| None)).await;
    let client = fake.client();
    assert!(
        client
            .find_task_by_marker(MARKER, None)
            .await
            .unwrap()
            .is_none()
    );
    let req = create_task_request(format!("Fix it\n{MARKER}"), None);
    client.create_task(&req).await.unwrap();
    let found = client
        .find_task_by_marker(MARKER, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, "task-1");
}

// ---- poller -------------------------------------------------------------------------------

fn poll_opts(initial: u64, max: u64, deadline_secs: u64) -> PollOptions {
    let mut o = PollOptions::new(Instant::now() + Duration::from_secs(deadline_secs));
    o.initial = Duration::from_secs(initial);
    o.max = Duration::from_secs(max);
    o.jitter = 0.0;
    o
}

/// A fake whose task goes through `states`, one per GET (the last one repeats).
async fn state_script(states: &'static [&'static str]) -> Fake {
    Fake::start(move |_, all| {
        let i = (all.len() - 1).min(states.len() - 1);
        reply(200, &task_json("t1", states[i], "x"))
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn poll_intervals_grow_and_reset_on_state_change() {
    let fake = state_script(&[
        "queued",
        "queued",
        "queued",
        "in_progress",
        "in_progress",
        "in_progress",
        "in_progress",
        "in_progress",
        "completed",
    ])
    .await;
    let mut events = Vec::new();
    let out = poll_task(
        &fake.client(),
        "t1",
        &poll_opts(4, 12, 3600),
        std::future::pending::<()>(),
        |e| events.push(e),
    )
    .await;
    assert!(
        matches!(out, PollOutcome::Finished { ref task } if task.state == TaskState::Completed),
        "{out:?}"
    );
    let seen = fake.seen();
    let gaps: Vec<f64> = seen
        .windows(2)
        .map(|w| gap(&w[0], &w[1]).as_secs_f64())
        .collect();
    // 4 → 6 → 9 while queued; back to 4 on in_progress, then 6, 9, 12 (capped), 12.
    let expected = [4.0, 6.0, 9.0, 4.0, 6.0, 9.0, 12.0, 12.0];
    assert_eq!(gaps.len(), expected.len(), "{gaps:?}");
    for (g, e) in gaps.iter().zip(expected) {
        assert!(approx(Duration::from_secs_f64(*g), e), "{gaps:?}");
    }
    let changes: Vec<(Option<TaskState>, TaskState)> = events
        .iter()
        .filter_map(|e| match e {
            PollEvent::StateChanged { from, to, .. } => Some((from.clone(), to.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        changes,
        [
            (None, TaskState::Queued),
            (Some(TaskState::Queued), TaskState::InProgress),
            (Some(TaskState::InProgress), TaskState::Completed)
        ]
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, PollEvent::Heartbeat { .. }))
    );
}

#[tokio::test(start_paused = true)]
async fn poll_stops_at_the_deadline() {
    let fake = state_script(&["in_progress"]).await;
    let start = Instant::now();
    let out = poll_task(
        &fake.client(),
        "t1",
        &poll_opts(5, 20, 60),
        std::future::pending::<()>(),
        |_| {},
    )
    .await;
    let PollOutcome::DeadlineReached { last } = out else {
        panic!("{out:?}")
    };
    assert_eq!(last.unwrap().state, TaskState::InProgress);
    assert!(approx(Instant::now() - start, 60.0));
    assert!(
        fake.seen()
            .iter()
            .all(|s| s.at <= start + Duration::from_mins(1))
    );
}

#[tokio::test(start_paused = true)]
async fn poll_stops_within_one_tick_of_shutdown() {
    let fake = state_script(&["in_progress"]).await;
    let start = Instant::now();
    let shutdown = tokio::time::sleep(Duration::from_secs(12));
    let out = poll_task(
        &fake.client(),
        "t1",
        &poll_opts(5, 5, 3600),
        shutdown,
        |_| {},
    )
    .await;
    assert!(
        matches!(out, PollOutcome::Interrupted { last: Some(_) }),
        "{out:?}"
    );
    // Polls at 0, 5, 10; interrupted at 12, not at the next tick (15).
    assert!(approx(Instant::now() - start, 12.0));
    assert_eq!(fake.seen().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn poll_shutdown_interrupts_a_request_in_flight() {
    let fake = Fake::start(|_, _| Action::Hang).await;
    let start = Instant::now();
    let shutdown = tokio::time::sleep(Duration::from_secs(3));
    let out = poll_task(
        &fake.client(),
        "t1",
        &poll_opts(5, 5, 3600),
        shutdown,
        |_| {},
    )
    .await;
    assert!(
        matches!(out, PollOutcome::Interrupted { last: None }),
        "{out:?}"
    );
    assert!(approx(Instant::now() - start, 3.0));
}

#[tokio::test(start_paused = true)]
async fn poll_uses_conditional_requests() {
    let not_modified = Arc::new(AtomicUsize::new(0));
    let nm = Arc::clone(&not_modified);
    let fake = Fake::start(move |req, all| {
        let done = all.len() >= 5;
        let etag = if done { "\"v2\"" } else { "\"v1\"" };
        if req.header("if-none-match") == Some(etag) {
            nm.fetch_add(1, Ordering::SeqCst);
            return Action::Reply {
                status: 304,
                headers: vec![("etag".into(), etag.into())],
                body: String::new(),
            };
        }
        let state = if done { "completed" } else { "in_progress" };
        reply_with(200, &task_json("t1", state, "x"), &[("etag", etag)])
    })
    .await;
    let out = poll_task(
        &fake.client(),
        "t1",
        &poll_opts(1, 2, 3600),
        std::future::pending::<()>(),
        |_| {},
    )
    .await;
    assert!(matches!(out, PollOutcome::Finished { .. }), "{out:?}");
    assert_eq!(not_modified.load(Ordering::SeqCst), 3);
    assert_eq!(fake.seen().len(), 5);
}

/// A task that is unchanged and answered `304 Not Modified` costs nothing of the rate limit,
/// so it is watched every `watch` (default 5 s) instead of ever more slowly; answers that
/// are paid for (no `ETag`) still grow the interval up to `max`. Either way a state change
/// resets it to `initial`.
#[tokio::test(start_paused = true)]
async fn a_task_answered_304_is_watched_closely_and_paid_answers_back_off() {
    async fn gaps_and_paid(etags: bool) -> (Vec<f64>, usize) {
        let paid = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&paid);
        let fake = Fake::start(move |req, all| {
            // In progress for the first 7 polls, then done.
            let done = all.len() >= 8;
            let etag = if done { "\"v2\"" } else { "\"v1\"" };
            if etags && req.header("if-none-match") == Some(etag) {
                return Action::Reply {
                    status: 304,
                    headers: vec![("etag".into(), etag.into())],
                    body: String::new(),
                };
            }
            counted.fetch_add(1, Ordering::SeqCst);
            let state = if done { "completed" } else { "in_progress" };
            let headers: &[(&str, &str)] = if etags { &[("etag", etag)] } else { &[] };
            reply_with(200, &task_json("t1", state, "x"), headers)
        })
        .await;
        let out = poll_task(
            &fake.client(),
            "t1",
            &poll_opts(4, 60, 3600),
            std::future::pending::<()>(),
            |_| {},
        )
        .await;
        assert!(matches!(out, PollOutcome::Finished { .. }), "{out:?}");
        let seen = fake.seen();
        let gaps = seen
            .windows(2)
            .map(|w| gap(&w[0], &w[1]).as_secs_f64())
            .collect();
        (gaps, paid.load(Ordering::SeqCst))
    }
    let (watched, paid) = gaps_and_paid(true).await;
    // 4 s (`initial`) after the first answer (a change), then every 5 s while the answers
    // are 304s.
    let expected = [4.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0];
    assert_eq!(watched.len(), expected.len(), "{watched:?}");
    for (g, e) in watched.iter().zip(expected) {
        assert!(approx(Duration::from_secs_f64(*g), e), "{watched:?}");
    }
    assert_eq!(paid, 2, "the first answer and the finished one");
    let (backed_off, paid) = gaps_and_paid(false).await;
    let expected = [4.0, 6.0, 9.0, 13.5, 20.25, 30.375, 45.5625];
    for (g, e) in backed_off.iter().zip(expected) {
        assert!(approx(Duration::from_secs_f64(*g), e), "{backed_off:?}");
    }
    assert_eq!(paid, 8, "every answer paid");
}

#[tokio::test(start_paused = true)]
async fn idle_and_waiting_for_user_follow_the_policy() {
    let fake = state_script(&["in_progress", "idle"]).await;
    let out = poll_task(
        &fake.client(),
        "t1",
        &poll_opts(1, 1, 3600),
        std::future::pending::<()>(),
        |_| {},
    )
    .await;
    assert!(matches!(out, PollOutcome::Accepted { .. }), "{out:?}");

    let fake = state_script(&["waiting_for_user"]).await;
    let out = poll_task(
        &fake.client(),
        "t1",
        &poll_opts(1, 1, 3600),
        std::future::pending::<()>(),
        |_| {},
    )
    .await;
    assert!(matches!(out, PollOutcome::Rejected { .. }), "{out:?}");

    let fake = state_script(&["idle", "idle", "some_new_state", "completed"]).await;
    let mut opts = poll_opts(1, 1, 3600);
    opts.on_idle = StatePolicy::Wait;
    let out = poll_task(
        &fake.client(),
        "t1",
        &opts,
        std::future::pending::<()>(),
        |_| {},
    )
    .await;
    assert!(matches!(out, PollOutcome::Finished { .. }), "{out:?}");
    assert_eq!(fake.seen().len(), 4);
}

#[tokio::test(start_paused = true)]
async fn poll_reports_retries_and_gives_up_with_an_api_error() {
    let fake = Fake::start(|_, all| match all.len() {
        1 => reply(200, &task_json("t1", "in_progress", "x")),
        2 => reply(502, &gh_error(502, "Bad Gateway")),
        _ => reply(401, &gh_error(401, "Bad credentials")),
    })
    .await;
    let mut events = Vec::new();
    let out = poll_task(
        &fake.client(),
        "t1",
        &poll_opts(1, 1, 3600),
        std::future::pending::<()>(),
        |e| events.push(e),
    )
    .await;
    let PollOutcome::ApiError { error, last } = out else {
        panic!("{out:?}")
    };
    assert_eq!(error.status(), Some(401));
    assert_eq!(last.unwrap().state, TaskState::InProgress);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, PollEvent::Retrying { .. }))
    );
}

// ---- stop -----------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn stop_marks_the_pull_request() {
    let fake = Fake::start(|req, _| match (req.method.as_str(), req.path()) {
        ("GET", "/repos/octo/hello/pulls") => reply(
            200,
            &json!([{"id": 555, "number": 7, "html_url": "https://github.com/octo/hello/pull/7", "state": "open",
                     "draft": true, "head": {"ref": "copilot/fix-1", "sha": "abc123"}, "base": {"ref": "main", "sha": "def"}}]),
        ),
        ("POST", "/repos/octo/hello/statuses/abc123") => reply(201, &json!({"id": 1})),
        ("POST", "/repos/octo/hello/issues/7/labels") => reply(200, &json!([{"name": "agent-gate: timed-out"}])),
        ("POST", "/repos/octo/hello/issues/7/comments") => {
            reply(201, &json!({"id": 9, "html_url": "https://github.com/octo/hello/pull/7#issuecomment-9"}))
        }
        _ => reply(404, &gh_error(404, "Not Found")),
    })
    .await;
    let mut task: Task = serde_json::from_value(task_json("t1", "in_progress", "x")).unwrap();
    task.artifacts = serde_json::from_value(json!([{"provider": "github", "type": "branch",
        "data": {"head_ref": "copilot/fix-1", "base_ref": "main"}}]))
    .unwrap();
    let record = stop(
        &fake.client(),
        &task,
        StopReason::TimedOut,
        &StopOptions::default(),
    )
    .await;

    assert!(record.errors.is_empty(), "{:?}", record.errors);
    assert!(!record.cancelled_on_github);
    assert_eq!(record.last_state, TaskState::InProgress);
    assert_eq!(record.pull_request.as_ref().unwrap().number, 7);
    assert_eq!(record.actions.len(), 3);
    assert!(
        matches!(&record.actions[2], StopAction::Comment { url } if url.ends_with("issuecomment-9"))
    );

    let seen = fake.seen();
    let methods: Vec<String> = seen
        .iter()
        .map(|s| format!("{} {}", s.method, s.uri))
        .collect();
    assert_eq!(
        methods,
        [
            "GET /repos/octo/hello/pulls?head=octo%3Acopilot%2Ffix-1&state=all",
            "POST /repos/octo/hello/statuses/abc123",
            "POST /repos/octo/hello/issues/7/labels",
            "POST /repos/octo/hello/issues/7/comments",
        ]
    );
    let status: CommitStatus = serde_json::from_str(&seen[1].body).unwrap();
    assert_eq!(status.state, "failure");
    assert_eq!(status.context.as_deref(), Some("agent-gate"));
    assert_eq!(
        status.target_url.as_deref(),
        Some("https://github.com/octo/hello/copilot/tasks/t1")
    );
    let labels: Value = serde_json::from_str(&seen[2].body).unwrap();
    assert_eq!(labels, json!({"labels": ["agent-gate: timed-out"]}));
    let comment: Value = serde_json::from_str(&seen[3].body).unwrap();
    let text = comment["body"].as_str().unwrap();
    assert!(text.contains("Stop session"), "{text}");
    assert!(
        text.contains("https://github.com/octo/hello/copilot/tasks/t1"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn stop_without_a_pull_request_only_records() {
    let fake = Fake::start(|_, _| reply(200, &json!([]))).await;
    let task: Task = serde_json::from_value(task_json("t1", "queued", "x")).unwrap();
    let record = stop(
        &fake.client(),
        &task,
        StopReason::Cancelled,
        &StopOptions::default(),
    )
    .await;
    assert!(record.pull_request.is_none());
    assert!(record.actions.is_empty());
    assert_eq!(
        record.session_url.as_deref(),
        Some("https://github.com/octo/hello/copilot/tasks/t1")
    );
    // It looked for the session's branch, and posted nothing.
    assert_eq!(fake.count("POST", "/"), 0);
    assert_eq!(fake.count("GET", "/pulls"), 1);
}

#[tokio::test(start_paused = true)]
async fn retry_policy_is_configurable() {
    let fake = Fake::start(|_, _| reply(500, &gh_error(500, "boom"))).await;
    let mut config = fake.config();
    config.retry = RetryPolicy {
        max_attempts: 3,
        jitter: false,
        ..RetryPolicy::default()
    };
    let err = Client::new(config)
        .unwrap()
        .get_task("t1")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(500));
    let seen = fake.seen();
    assert_eq!(seen.len(), 3);
    assert!(approx(gap(&seen[0], &seen[1]), 1.0));
    assert!(approx(gap(&seen[1], &seen[2]), 2.0));
}

#[tokio::test]
async fn the_clients_now_reads_the_injected_clock() {
    let fake = Fake::start(|_, _| reply(404, &gh_error(404, "Not Found"))).await;
    let now = fake.client().now();
    assert_eq!(now.as_second(), i64::try_from(T0).unwrap());
    // The task lifecycle's clock is the client's.
    assert_eq!(agent_gate::flow::TaskApi::now(&fake.client()), now);
}
