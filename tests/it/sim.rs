//! Tests of the offline simulator, through its public API and plain HTTP (reqwest), checked
//! against GitHub's REST documentation of agent tasks and its general REST rules: status codes,
//! headers, JSON shapes, the scripted agent and its git side, faults and rate limits.

#![allow(
    clippy::many_single_char_names,
    clippy::similar_names,
    reason = "f = fixture, t = task, r = response, v = JSON value: short names keep assertions readable"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use agent_gate::sim::{self, Scenario, SimConfig, SimHandle};
use serde_json::{Value, json};

use crate::support::{TestRepo, git_in as git};

const TOKEN: &str = "ghp_simtesttoken";
const REPO_TASKS: &str = "/agents/repos/octo-org/payments/tasks";

struct Fixture {
    sim: SimHandle,
    dir: tempfile::TempDir,
    client: reqwest::Client,
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().expect("client")
}

async fn start_with(scenario: Option<Scenario>, time_scale: f64, repo: Option<PathBuf>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let repo = repo.unwrap_or_else(|| dir.path().join("remote.git"));
    let cfg = SimConfig {
        repositories: Vec::new(),
        repo,
        scenario,
        time_scale,
    };
    let sim = sim::start(cfg, ([127, 0, 0, 1], 0).into())
        .await
        .expect("sim starts");
    Fixture {
        sim,
        dir,
        client: client(),
    }
}

async fn start(scenario: Option<Scenario>, time_scale: f64) -> Fixture {
    start_with(scenario, time_scale, None).await
}

fn scenario(yaml: &str) -> Scenario {
    scenario_in(yaml, Path::new("."))
}

fn scenario_in(yaml: &str, dir: &Path) -> Scenario {
    Scenario::from_yaml(yaml, Path::new("test.yml"), dir)
        .unwrap_or_else(|e| panic!("scenario: {e}"))
}

impl Fixture {
    fn req(&self, method: reqwest::Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.sim.url()))
            .header("user-agent", "agent-gate-tests")
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2026-03-10")
            .bearer_auth(token)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.req(reqwest::Method::GET, path, TOKEN)
            .send()
            .await
            .expect("GET")
    }

    async fn post(&self, path: &str, body: &str) -> reqwest::Response {
        self.req(reqwest::Method::POST, path, TOKEN)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("POST")
    }

    async fn create(&self, body: Value) -> Value {
        let r = self.post(REPO_TASKS, &body.to_string()).await;
        assert_eq!(r.status(), 201, "create");
        r.json().await.unwrap()
    }

    async fn task(&self, id: &str) -> Value {
        let r = self.get(&format!("{REPO_TASKS}/{id}")).await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// Poll until the task leaves the non-final states; returns the states seen, in order.
    async fn wait(&self, id: &str, until: &[&str]) -> (Value, Vec<String>) {
        let mut seen: Vec<String> = Vec::new();
        for _ in 0..1000 {
            let t = self.task(id).await;
            let s = t["state"].as_str().unwrap().to_string();
            if seen.last() != Some(&s) {
                seen.push(s.clone());
            }
            if until.contains(&s.as_str()) {
                return (t, seen);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("task {id} never reached {until:?}; saw {seen:?}");
    }
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("header {name} missing"))
        .to_str()
        .unwrap()
}

/// A fresh clone of the simulator's bare repository.
fn clone(sim: &SimHandle, into: &Path) -> PathBuf {
    let dest = into.join("clone");
    let out = Command::new("git")
        .arg("clone")
        .arg("-q")
        .arg(sim.repo_dir())
        .arg(&dest)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dest
}

fn is_rfc3339_seconds(s: &str) -> bool {
    s.len() == 20 && s.ends_with('Z') && s.parse::<jiff::Timestamp>().is_ok()
}

fn assert_rate_headers(r: &reqwest::Response) {
    for h in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-used",
        "x-ratelimit-reset",
    ] {
        header(r, h)
            .parse::<i64>()
            .unwrap_or_else(|_| panic!("{h} is a number"));
    }
    assert_eq!(header(r, "x-ratelimit-resource"), "core");
    assert!(!header(r, "x-github-request-id").is_empty());
}

fn assert_error_body(v: &Value, message: &str) {
    assert_eq!(v["message"], message, "{v}");
    assert!(
        v["documentation_url"]
            .as_str()
            .unwrap()
            .starts_with("https://docs.github.com/"),
        "{v}"
    );
}

// ---------------------------------------------------------------------------------------
// Fidelity: shapes, codes and headers of the reference.

#[tokio::test]
async fn create_answers_201_with_the_documented_shape_and_headers() {
    let f = start(Some(scenario("default: {final: never}")), 1.0).await;
    let r = f.post(REPO_TASKS, r#"{"prompt":"Fix the login button on the homepage","base_ref":"main","create_pull_request":true}"#).await;
    assert_eq!(r.status(), 201);
    assert_eq!(
        header(&r, "content-type"),
        "application/json; charset=utf-8"
    );
    assert_rate_headers(&r);
    assert!(r.headers().get("etag").is_none(), "no ETag on a POST");
    let t: Value = r.json().await.unwrap();
    let id = t["id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "UUID id: {id}");
    assert_eq!(t["state"], "queued");
    assert_eq!(t["session_count"], 1);
    assert_eq!(t["artifacts"], json!([]));
    assert!(t.as_object().unwrap().contains_key("archived_at") && t["archived_at"].is_null());
    assert_eq!(t["url"], format!("{}{REPO_TASKS}/{id}", f.sim.url()));
    assert!(
        t["html_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/octo-org/payments/copilot/tasks/{id}"))
    );
    assert_eq!(t["name"], "Fix the login button on the homepage");
    assert_eq!(t["creator"]["id"], sim::user_id_for_token(TOKEN));
    assert_eq!(t["creator_type"], "user");
    assert!(t["owner"]["id"].as_i64().unwrap() > 0 && t["repository"]["id"].as_i64().unwrap() > 0);
    assert!(
        is_rfc3339_seconds(t["created_at"].as_str().unwrap())
            && is_rfc3339_seconds(t["updated_at"].as_str().unwrap())
    );
    assert!(t.get("sessions").is_none(), "no sessions in the POST body");
    // The wire type of the gate reads it.
    let typed: agent_gate::adapters::github::types::Task =
        serde_json::from_value(t.clone()).unwrap();
    assert_eq!(
        typed.state,
        agent_gate::adapters::github::types::TaskState::Queued
    );
}

/// A POST body, the expected status and message, and the expected `errors[0]` field and code.
type Case<'a> = (&'a str, u16, &'a str, Option<(&'a str, &'a str)>);

#[tokio::test]
async fn post_validation_follows_github_conventions() {
    let f = start(
        Some(scenario(
            "api: {models: [claude-sonnet-4.6]}\ndefault: {final: never}",
        )),
        1.0,
    )
    .await;
    let cases: [Case; 8] = [
        ("{not json", 400, "Problems parsing JSON", None),
        ("[1,2]", 400, "Body should be a JSON object", None),
        ("\"prompt\"", 400, "Body should be a JSON object", None),
        (
            "{}",
            422,
            "Validation Failed",
            Some(("prompt", "missing_field")),
        ),
        (
            r#"{"prompt":"  "}"#,
            422,
            "Validation Failed",
            Some(("prompt", "missing_field")),
        ),
        (
            r#"{"prompt":5}"#,
            422,
            "Validation Failed",
            Some(("prompt", "invalid")),
        ),
        (
            r#"{"prompt":"x","create_pull_request":"yes"}"#,
            422,
            "Validation Failed",
            Some(("create_pull_request", "invalid")),
        ),
        (
            r#"{"prompt":"x","model":"gpt-0"}"#,
            422,
            "Validation Failed",
            Some(("model", "custom")),
        ),
    ];
    for (body, status, message, error) in cases {
        let r = f.post(REPO_TASKS, body).await;
        assert_eq!(r.status(), status, "{body}");
        assert_rate_headers(&r);
        let v: Value = r.json().await.unwrap();
        assert_error_body(&v, message);
        match error {
            Some((field, code)) => {
                assert_eq!(v["errors"][0]["field"], field, "{body}: {v}");
                assert_eq!(v["errors"][0]["code"], code, "{body}: {v}");
            }
            None => assert!(v.get("errors").is_none(), "errors only on 422: {v}"),
        }
    }
    assert!(
        f.sim.tasks().is_empty(),
        "no task created by a refused POST"
    );
    let ok = f
        .post(
            REPO_TASKS,
            r#"{"prompt":"x","model":"claude-sonnet-4.6","unknown_field":1}"#,
        )
        .await;
    assert_eq!(ok.status(), 201, "known model, unknown fields ignored");
}

#[tokio::test]
async fn unknown_routes_and_trailing_slashes_are_404() {
    let f = start(Some(scenario("default: {final: never}")), 1.0).await;
    let t = f.create(json!({"prompt": "p"})).await;
    let id = t["id"].as_str().unwrap();
    for path in [
        "/agents/tasks/".to_string(),
        format!("{REPO_TASKS}/"),
        format!("{REPO_TASKS}/{id}/"),
        "/agents".to_string(),
        "/nope".to_string(),
        format!("{REPO_TASKS}/00000000-0000-0000-0000-000000000000"),
        format!("/agents/repos/octo-org/other/tasks/{id}"),
    ] {
        let r = f.get(&path).await;
        assert_eq!(r.status(), 404, "{path}");
        assert_rate_headers(&r);
        assert_eq!(
            header(&r, "content-type"),
            "application/json; charset=utf-8"
        );
        assert_error_body(&r.json().await.unwrap(), "Not Found");
    }
    // Owner and repo are case-insensitive.
    assert_eq!(
        f.get(&format!("/agents/repos/Octo-Org/PAYMENTS/tasks/{id}"))
            .await
            .status(),
        200
    );
    // Unknown method on a known path.
    let r = f
        .req(
            reqwest::Method::DELETE,
            &format!("{REPO_TASKS}/{id}"),
            TOKEN,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn auth_user_agent_and_versions_are_enforced_like_github() {
    let f = start(Some(scenario("api: {retired-versions: ['2021-01-01'], revoked-tokens: [ghp_revoked], read-only-tokens: [ghp_reader], repositories: [Octo-Org/payments]}\ndefault: {final: never}")), 1.0).await;
    let url = format!("{}{REPO_TASKS}", f.sim.url());

    let r = f
        .client
        .get(&url)
        .header("user-agent", "t")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_rate_headers(&r);
    assert_error_body(&r.json().await.unwrap(), "Requires authentication");

    let r = f
        .req(reqwest::Method::GET, REPO_TASKS, "ghp_revoked")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_error_body(&r.json().await.unwrap(), "Bad credentials");

    let r = f
        .req(reqwest::Method::POST, REPO_TASKS, "ghs_installation123")
        .body(r#"{"prompt":"p"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("installation tokens are not supported for this API"),
        "{v}"
    );

    let r = f.client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 403, "no User-Agent");
    assert!(
        r.json::<Value>().await.unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("User-Agent")
    );

    let r = f
        .req(reqwest::Method::POST, REPO_TASKS, "ghp_reader")
        .body(r#"{"prompt":"p"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "read-only token");
    assert_eq!(
        header(&r, "x-accepted-github-permissions"),
        "agent_tasks=write"
    );
    assert_eq!(
        f.req(reqwest::Method::GET, REPO_TASKS, "ghp_reader")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    for (version, status) in [
        ("2022-11-28", 200),
        ("2026-03-10", 200),
        ("2099-01-01", 400),
        ("2021-01-01", 410),
    ] {
        let r = f
            .client
            .get(&url)
            .header("user-agent", "t")
            .header("x-github-api-version", version)
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "version {version}");
        if status != 200 {
            assert!(r.json::<Value>().await.unwrap()["documentation_url"].is_string());
        }
    }
    let r = f
        .client
        .get(&url)
        .header("user-agent", "t")
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "no version header: the default version");
    // A repository the token cannot see is 404.
    let r = f
        .post("/agents/repos/octo-org/secret/tasks", r#"{"prompt":"p"}"#)
        .await;
    assert_eq!(r.status(), 404);
    assert_error_body(&r.json().await.unwrap(), "Not Found");
    assert_eq!(f.get("/repos/octo-org/secret").await.status(), 404);
    assert!(f.sim.tasks().is_empty());
}

#[tokio::test]
async fn lists_use_the_envelope_filters_and_no_sessions() {
    let f = start(Some(scenario("default: {final: never}")), 1.0).await;
    let a = f.create(json!({"prompt": "first"})).await;
    let other = f
        .req(reqwest::Method::POST, REPO_TASKS, "ghp_someoneelse")
        .body(r#"{"prompt":"second"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 201);
    let b: Value = other.json().await.unwrap();
    let c = f.create(json!({"prompt": "elsewhere"})).await;
    let _ = f
        .post("/agents/repos/octo-org/web/tasks", r#"{"prompt":"web"}"#)
        .await;
    let _ = c;

    let r = f.get(REPO_TASKS).await;
    assert_eq!(r.status(), 200);
    assert_rate_headers(&r);
    assert!(header(&r, "etag").starts_with("W/\""));
    assert!(header(&r, "link").contains("rel=\"first\""));
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["tasks"].as_array().unwrap().len(),
        3,
        "every collaborator's tasks in the repo"
    );
    assert_eq!(v["total_active_count"], 3);
    assert_eq!(v["total_archived_count"], 0);
    assert!(
        v["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t.get("sessions").is_none())
    );

    let mine = sim::user_id_for_token(TOKEN);
    let v: Value = f
        .get(&format!("{REPO_TASKS}?creator_id={mine}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["tasks"].as_array().unwrap().len(), 2);
    let theirs = sim::user_id_for_token("ghp_someoneelse");
    let v: Value = f
        .get(&format!(
            "{REPO_TASKS}?creator_id={mine}&creator_id={theirs}"
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["tasks"].as_array().unwrap().len(),
        3,
        "repeated creator_id"
    );

    // The user's own list spans repositories.
    let v: Value = f.get("/agents/tasks").await.json().await.unwrap();
    assert_eq!(v["tasks"].as_array().unwrap().len(), 3);

    // State filter (CSV), sort and direction.
    let v: Value = f
        .get(&format!("{REPO_TASKS}?state=completed,failed"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["tasks"].as_array().unwrap().len(), 0);
    let v: Value = f
        .get(&format!(
            "{REPO_TASKS}?state=queued,in_progress&sort=created_at&direction=asc"
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["tasks"][0]["id"], a["id"]);
    assert_eq!(v["tasks"][1]["id"], b["id"]);
    let r = f.get(&format!("{REPO_TASKS}?state=bogus")).await;
    assert_eq!(r.status(), 422);

    // since (on updated_at).
    let future = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(1))
        .unwrap();
    let v: Value = f
        .get(&format!("{REPO_TASKS}?since={future}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["tasks"].as_array().unwrap().len(), 0);
    let v: Value = f
        .get(&format!("{REPO_TASKS}?since=2020-01-01T00:00:00Z"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["tasks"].as_array().unwrap().len(), 3);

    // Archived tasks only with is_archived=true.
    assert!(f.sim.archive_task(a["id"].as_str().unwrap()));
    let v: Value = f.get(REPO_TASKS).await.json().await.unwrap();
    assert_eq!(
        (
            v["tasks"].as_array().unwrap().len(),
            v["total_active_count"].as_i64(),
            v["total_archived_count"].as_i64()
        ),
        (2, Some(2), Some(1))
    );
    let v: Value = f
        .get(&format!("{REPO_TASKS}?is_archived=true"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["tasks"][0]["id"], a["id"]);
    assert!(v["tasks"][0]["archived_at"].is_string());
}

#[tokio::test]
async fn single_gets_include_sessions_with_prompt_refs_and_usage() {
    let f = start(None, 1000.0).await;
    let t = f.create(json!({"prompt": "Add a file", "create_pull_request": true, "model": "claude-sonnet-4.6"})).await;
    let id = t["id"].as_str().unwrap();
    let (_, _) = f.wait(id, &["completed"]).await;
    for path in [format!("{REPO_TASKS}/{id}"), format!("/agents/tasks/{id}")] {
        let r = f.get(&path).await;
        assert_eq!(r.status(), 200, "{path}");
        assert!(header(&r, "etag").starts_with("W/\""));
        let v: Value = r.json().await.unwrap();
        let s = &v["sessions"][0];
        assert_eq!(s["prompt"], "Add a file");
        assert_eq!(s["head_ref"], "copilot/add-a-file");
        assert_eq!(s["base_ref"], "main");
        assert_eq!(s["model"], "claude-sonnet-4.6");
        assert_eq!(s["task_id"], id);
        assert_eq!(s["state"], "completed");
        assert_eq!(
            s["usage"],
            json!({"type": "ai_credits", "amount": 1_000_000_000_u64}),
            "whole nano units as an integer"
        );
        assert!(is_rfc3339_seconds(s["completed_at"].as_str().unwrap()));
    }
    // The user list of another user does not see it.
    let r = f
        .req(
            reqwest::Method::GET,
            &format!("/agents/tasks/{id}"),
            "ghp_someoneelse",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

// ---------------------------------------------------------------------------------------
// The simulated agent.

#[tokio::test]
async fn default_task_queues_works_commits_the_prompt_and_opens_a_fetchable_pull_request() {
    let f = start(None, 10.0).await; // 200 ms queued, 500 ms working
    let prompt = "Smoke-test the wiring\n\nsecond line";
    let t = f
        .create(json!({"prompt": prompt, "create_pull_request": true}))
        .await;
    let id = t["id"].as_str().unwrap().to_string();
    let mut last_updated = t["updated_at"]
        .as_str()
        .unwrap()
        .parse::<jiff::Timestamp>()
        .unwrap();
    let mut seen = vec!["queued".to_string()];
    let done = loop {
        let v = f.task(&id).await;
        let updated = v["updated_at"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap();
        assert!(updated >= last_updated, "updated_at is monotonic");
        let s = v["state"].as_str().unwrap().to_string();
        if seen.last() != Some(&s) {
            assert!(
                updated > last_updated,
                "updated_at bumps on every transition"
            );
            seen.push(s.clone());
        }
        last_updated = updated;
        if s == "completed" {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(seen, ["queued", "in_progress", "completed"]);
    let branch = "copilot/smoke-test-the-wiring";
    let arts = done["artifacts"].as_array().unwrap();
    assert_eq!(
        arts[0],
        json!({"provider": "github", "type": "branch", "data": {"head_ref": branch, "base_ref": "main"}})
    );
    assert_eq!(arts[1]["type"], "pull");
    assert!(arts[1]["data"]["id"].is_i64() && arts[1]["data"]["global_id"].is_string());
    assert!(done["sessions"][0]["completed_at"].is_string());

    // The pull request, found by branch as the gate does.
    let r = f
        .get(&format!(
            "/repos/octo-org/payments/pulls?head=octo-org:{branch}&state=all"
        ))
        .await;
    assert_eq!(r.status(), 200);
    let pulls: Vec<agent_gate::adapters::github::types::PullRequest> = r.json().await.unwrap();
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0].id, arts[1]["data"]["id"].as_i64().unwrap());
    assert_eq!(
        (
            pulls[0].head.ref_name.as_str(),
            pulls[0].base.ref_name.as_str()
        ),
        (branch, "main")
    );

    // Branch and pull ref are fetchable from the bare repository.
    let clone = clone(&f.sim, f.dir.path());
    git(
        &clone,
        &[
            "fetch",
            "-q",
            "origin",
            &format!("refs/pull/{}/head:pr", pulls[0].number),
            &format!("{branch}:agent"),
        ],
    );
    assert_eq!(git(&clone, &["rev-parse", "pr"]).trim(), pulls[0].head.sha);
    assert_eq!(
        git(&clone, &["rev-parse", "agent"]).trim(),
        pulls[0].head.sha
    );
    assert_eq!(git(&clone, &["show", "pr:agent-gate-sim.txt"]), prompt);
    assert_eq!(
        git(&clone, &["diff", "--name-status", "main", "pr"]),
        "A\tagent-gate-sim.txt\n"
    );
    assert_eq!(
        git(&clone, &["rev-parse", "pr~1"]).trim(),
        git(&clone, &["rev-parse", "main"]).trim()
    );

    // Repository endpoint.
    let v: Value = f
        .get("/repos/octo-org/payments")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["default_branch"], "main");
    assert_eq!(f.count("POST", "/agents/repos/*/*/tasks"), 1);
}

impl Fixture {
    fn count(&self, method: &str, pattern: &str) -> usize {
        self.sim.count(method, pattern)
    }
}

#[tokio::test]
async fn without_create_pull_request_there_is_a_branch_but_no_pull() {
    let f = start(None, 1000.0).await;
    let t = f.create(json!({"prompt": "branch only"})).await;
    let (done, _) = f.wait(t["id"].as_str().unwrap(), &["completed"]).await;
    let kinds: Vec<&str> = done["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["branch"]);
    assert!(f.sim.pull_requests().is_empty());
}

#[tokio::test]
async fn scenario_file_operations_rename_delete_symlink_mode_patch() {
    let base = TestRepo::new();
    base.write("src/lib.rs", "pub fn a() {}\n");
    base.write("docs/old.md", "old\n");
    base.write("run.sh", "echo hi\n");
    base.write("notes.txt", "one\n");
    base.commit("files");
    let tmp = tempfile::tempdir().unwrap();
    let bare = tmp.path().join("bare.git");
    git(
        tmp.path(),
        &[
            "clone",
            "-q",
            "--bare",
            base.path().to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    std::fs::write(
        tmp.path().join("notes.patch"),
        "--- a/notes.txt\n+++ b/notes.txt\n@@ -1 +1,2 @@\n one\n+two\n",
    )
    .unwrap();
    std::fs::write(tmp.path().join("blob.bin"), [0u8, 159, 146, 150]).unwrap();
    let s = scenario_in(
        r"
tasks:
  - match: migrate
    queued: 0s
    work: 0s
    pull-artifact: github_resource
    files:
      - write: {path: src/new.rs, content: 'pub fn b() {}'}
      - write: {path: assets/blob.bin, from-file: blob.bin}
      - rename: {from: docs/old.md, to: docs/new.md}
      - delete: src/lib.rs
      - symlink: {path: link, target: ../../etc/passwd}
      - mode: {path: run.sh, executable: true}
      - patch-file: notes.patch
",
        tmp.path(),
    );
    let f = start_with(Some(s), 1.0, Some(bare)).await;
    let t = f
        .create(json!({"prompt": "Please migrate things", "create_pull_request": true}))
        .await;
    let (done, _) = f
        .wait(t["id"].as_str().unwrap(), &["completed", "failed"])
        .await;
    assert_eq!(done["state"], "completed", "{done}");
    let pull = &done["artifacts"][1];
    assert_eq!(
        (pull["type"].as_str(), pull["data"]["type"].as_str()),
        (Some("github_resource"), Some("pull"))
    );
    let clone = clone(&f.sim, f.dir.path());
    git(&clone, &["fetch", "-q", "origin", "refs/pull/1/head:pr"]);
    let mut diff = git(&clone, &["diff", "-M", "--name-status", "main", "pr"]);
    diff.push_str(&git(&clone, &["diff", "-M", "--summary", "main", "pr"]));
    for line in [
        "A\tassets/blob.bin",
        "R100\tdocs/old.md\tdocs/new.md",
        "A\tlink",
        "M\tnotes.txt",
        "M\trun.sh",
        "D\tsrc/lib.rs",
        "A\tsrc/new.rs",
        "mode change 100644 => 100755 run.sh",
    ] {
        assert!(diff.contains(line), "{line:?} in\n{diff}");
    }
    let tree = git(&clone, &["ls-tree", "pr", "link"]);
    assert!(tree.starts_with("120000 blob"), "{tree}");
    assert_eq!(
        git(&clone, &["cat-file", "-p", "pr:link"]),
        "../../etc/passwd"
    );
    assert_eq!(git(&clone, &["show", "pr:notes.txt"]), "one\ntwo\n");
}

#[tokio::test]
async fn final_states_errors_usage_and_unknown_working_state() {
    let s = scenario(
        r"
tasks:
  - match: fail
    queued: 0s
    work: 0s
    final: failed
    error: 'tests did not compile'
    usage: {type: premium_requests, amount: 1.5}
  - match: think
    queued: 0s
    work: 1h
    working-state: pondering
    extra-fields: {brand_new_field: {nested: true}}
  - match: idle
    queued: 0s
    work: 0s
    final: idle
    files: []
",
    );
    let f = start(Some(s), 1.0).await;
    let failed = f.create(json!({"prompt": "this will fail"})).await;
    let (v, _) = f.wait(failed["id"].as_str().unwrap(), &["failed"]).await;
    assert_eq!(
        v["sessions"][0]["error"]["message"],
        "tests did not compile"
    );
    assert_eq!(
        v["sessions"][0]["usage"],
        json!({"type": "premium_requests", "amount": 1.5})
    );
    assert!(v["sessions"][0]["completed_at"].is_string());
    assert_eq!(
        v["artifacts"],
        json!([]),
        "a failed task without files pushes nothing"
    );

    let think = f.create(json!({"prompt": "think hard"})).await;
    assert_eq!(think["brand_new_field"], json!({"nested": true}));
    let (v, _) = f.wait(think["id"].as_str().unwrap(), &["pondering"]).await;
    let typed: agent_gate::adapters::github::types::Task = serde_json::from_value(v).unwrap();
    assert_eq!(
        typed.state,
        agent_gate::adapters::github::types::TaskState::Unknown("pondering".into())
    );

    let idle = f
        .create(json!({"prompt": "idle please", "create_pull_request": true}))
        .await;
    let (v, _) = f.wait(idle["id"].as_str().unwrap(), &["idle"]).await;
    assert_eq!(v["artifacts"], json!([]), "files: [] means no change");
    assert!(
        v["sessions"][0]["completed_at"].is_null(),
        "idle is not terminal"
    );
}

#[tokio::test]
async fn tasks_are_matched_by_substring_then_by_order() {
    let s = scenario(
        r"
tasks:
  - {match: special, queued: 0s, work: 0s, final: timed_out}
  - {queued: 0s, work: 0s, final: failed}
  - {queued: 0s, work: 0s, final: cancelled}
default: {queued: 0s, work: 0s, final: completed}
",
    );
    let f = start(Some(s), 1.0).await;
    let mut finals = Vec::new();
    for p in ["one", "a special one", "two", "three"] {
        let t = f.create(json!({"prompt": p})).await;
        let (v, _) = f
            .wait(
                t["id"].as_str().unwrap(),
                &["completed", "failed", "timed_out", "cancelled"],
            )
            .await;
        finals.push(v["state"].as_str().unwrap().to_string());
    }
    assert_eq!(finals, ["failed", "timed_out", "cancelled", "completed"]);
}

#[tokio::test]
async fn cancel_control_stops_a_running_task() {
    let f = start(
        Some(scenario("default: {queued: 0s, work: 0s, final: never}")),
        1.0,
    )
    .await;
    let t = f.create(json!({"prompt": "forever"})).await;
    let id = t["id"].as_str().unwrap();
    let (before, _) = f.wait(id, &["in_progress"]).await;
    assert!(f.sim.cancel_task(id));
    let after = f.task(id).await;
    assert_eq!(after["state"], "cancelled");
    assert!(after["sessions"][0]["completed_at"].is_string());
    assert!(after["updated_at"].as_str().unwrap() > before["updated_at"].as_str().unwrap());
    assert!(!f.sim.cancel_task(id), "already final");
    assert!(!f.sim.cancel_task("no-such-task"));
}

#[tokio::test]
async fn follow_up_on_an_existing_branch_appends_a_session_and_commits_there() {
    let f = start(None, 1000.0).await;
    let t = f
        .create(json!({"prompt": "First round", "create_pull_request": true}))
        .await;
    let id = t["id"].as_str().unwrap();
    let (first, _) = f.wait(id, &["completed"]).await;
    let branch = first["sessions"][0]["head_ref"]
        .as_str()
        .unwrap()
        .to_string();
    let pr_before = f.sim.pull_requests()[0].clone();

    let again = f
        .create(json!({"prompt": "Fix the findings", "head_ref": branch, "base_ref": "main"}))
        .await;
    assert_eq!(again["id"], id, "the task of the branch gets a new session");
    assert_eq!(again["session_count"], 2);
    assert_eq!(again["state"], "queued");
    let (done, _) = f.wait(id, &["completed"]).await;
    assert_eq!(done["sessions"].as_array().unwrap().len(), 2);
    assert_eq!(done["sessions"][1]["prompt"], "Fix the findings");
    assert_eq!(done["sessions"][1]["head_ref"], branch.as_str());
    assert_eq!(
        done["artifacts"].as_array().unwrap().len(),
        2,
        "no duplicate artifacts"
    );

    let pulls = f.sim.pull_requests();
    assert_eq!(pulls.len(), 1, "the same pull request moves");
    assert_ne!(pulls[0].head.sha, pr_before.head.sha);
    let clone = clone(&f.sim, f.dir.path());
    git(&clone, &["fetch", "-q", "origin", "refs/pull/1/head:pr"]);
    assert_eq!(
        git(&clone, &["rev-parse", "pr~1"]).trim(),
        pr_before.head.sha,
        "committed on top of the branch"
    );
    assert_eq!(
        git(&clone, &["show", "pr:agent-gate-sim.txt"]),
        "Fix the findings"
    );

    // A branch that does not exist is refused.
    let r = f
        .post(
            REPO_TASKS,
            r#"{"prompt":"x","head_ref":"nope","base_ref":"main"}"#,
        )
        .await;
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errors"][0]["field"], "head_ref");
}

// ---------------------------------------------------------------------------------------
// HTTP behaviour: ETag, pagination, repository endpoints.

#[tokio::test]
async fn etag_gives_304_without_spending_rate_limit() {
    let f = start(
        Some(scenario("default: {queued: 0s, work: 0s, final: never}")),
        1.0,
    )
    .await;
    let t = f.create(json!({"prompt": "p"})).await;
    let id = t["id"].as_str().unwrap();
    let (_, _) = f.wait(id, &["in_progress"]).await;
    let path = format!("{REPO_TASKS}/{id}");
    let r = f.get(&path).await;
    let etag = header(&r, "etag").to_string();
    let remaining: i64 = header(&r, "x-ratelimit-remaining").parse().unwrap();
    let r = f
        .req(reqwest::Method::GET, &path, TOKEN)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(header(&r, "etag"), etag);
    assert_eq!(
        header(&r, "x-ratelimit-remaining").parse::<i64>().unwrap(),
        remaining,
        "a 304 is free"
    );
    assert!(r.bytes().await.unwrap().is_empty());
    assert!(f.sim.cancel_task(id));
    let r = f
        .req(reqwest::Method::GET, &path, TOKEN)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "changed task, new body");
    assert_ne!(header(&r, "etag"), etag);
    assert_eq!(
        header(&r, "x-ratelimit-remaining").parse::<i64>().unwrap(),
        remaining - 1
    );
}

fn links(r: &reqwest::Response) -> Vec<(String, String)> {
    header(r, "link")
        .split(", ")
        .map(|l| {
            let (url, rel) = l.split_once("; rel=").unwrap();
            (
                rel.trim_matches('"').to_string(),
                url.trim_matches(['<', '>']).to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn pagination_follows_link_headers_across_pages() {
    let f = start(Some(scenario("default: {final: never}")), 1.0).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            f.create(json!({"prompt": format!("task {i}")})).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let mut url = format!("{}{REPO_TASKS}?per_page=2&state=queued", f.sim.url());
    let mut got = Vec::new();
    let mut pages = 0;
    loop {
        let r = f
            .client
            .get(&url)
            .header("user-agent", "t")
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let l = links(&r);
        let rels: Vec<&str> = l.iter().map(|(rel, _)| rel.as_str()).collect();
        pages += 1;
        assert!(
            rels.contains(&"first") && rels.contains(&"last"),
            "{rels:?}"
        );
        assert_eq!(rels.contains(&"prev"), pages > 1, "{rels:?}");
        assert!(
            l.iter()
                .all(|(_, u)| u.contains("state=queued") && u.contains("per_page=2")),
            "other parameters kept: {l:?}"
        );
        let last = l.iter().find(|(rel, _)| rel == "last").unwrap();
        assert!(last.1.contains("page=3&"), "{last:?}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["total_active_count"], 5);
        got.extend(
            v["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_str().unwrap().to_string()),
        );
        match l.iter().find(|(rel, _)| rel == "next") {
            Some((_, next)) => url.clone_from(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut sorted = got.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 5, "every task exactly once: {got:?}");
    // per_page out of range is clamped by default.
    let v: Value = f
        .get(&format!("{REPO_TASKS}?per_page=1000"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["tasks"].as_array().unwrap().len(), 5);
    assert_eq!(
        f.get(&format!("{REPO_TASKS}?per_page=x")).await.status(),
        422
    );
}

#[tokio::test]
async fn per_page_out_of_range_can_be_refused() {
    let f = start(Some(scenario("api: {per-page-out-of-range: reject}")), 1.0).await;
    for q in ["per_page=0", "per_page=101"] {
        let r = f.get(&format!("{REPO_TASKS}?{q}")).await;
        assert_eq!(r.status(), 422, "{q}");
    }
    assert_eq!(
        f.get(&format!("{REPO_TASKS}?per_page=100")).await.status(),
        200
    );
}

#[tokio::test]
async fn statuses_comments_and_labels_are_recorded() {
    let f = start(None, 1000.0).await;
    let t = f
        .create(json!({"prompt": "p", "create_pull_request": true}))
        .await;
    let _ = f.wait(t["id"].as_str().unwrap(), &["completed"]).await;
    let pr = f.sim.pull_requests()[0].clone();
    let r = f
        .post(
            &format!("/repos/octo-org/payments/statuses/{}", pr.head.sha),
            r#"{"state":"failure","context":"agent-gate","description":"timed out"}"#,
        )
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().await.unwrap()["context"], "agent-gate");
    let r = f
        .post(
            "/repos/octo-org/payments/statuses/0123456789abcdef0123456789abcdef01234567",
            r#"{"state":"failure"}"#,
        )
        .await;
    assert_eq!(r.status(), 422, "unknown sha");
    let r = f
        .post(
            &format!("/repos/octo-org/payments/statuses/{}", pr.head.sha),
            r#"{"state":"weird"}"#,
        )
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(f.sim.statuses().len(), 1);
    assert_eq!(f.sim.statuses()[0].status.state, "failure");

    let r = f
        .post(
            &format!("/repos/octo-org/payments/issues/{}/comments", pr.number),
            r#"{"body":"stop it at the session log"}"#,
        )
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(f.sim.comments()[0].body, "stop it at the session log");
    assert_eq!(
        f.post(
            "/repos/octo-org/payments/issues/999/comments",
            r#"{"body":"x"}"#
        )
        .await
        .status(),
        404
    );

    let r = f
        .post(
            &format!("/repos/octo-org/payments/issues/{}/labels", pr.number),
            r#"{"labels":["agent-gate: timed-out"]}"#,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()[0]["name"],
        "agent-gate: timed-out"
    );
    assert_eq!(
        f.sim.labels("octo-org", "payments", pr.number),
        ["agent-gate: timed-out"]
    );
}

// ---------------------------------------------------------------------------------------
// Faults and rate limits.

#[tokio::test]
async fn status_faults_hit_the_nth_request_of_an_endpoint() {
    let s = scenario(
        r"
default: {final: never}
faults:
  - {endpoint: get-repo-task, nth: 2, count: 2, status: 502}
  - {endpoint: 'GET /agents/tasks', status: 500, message: boom}
",
    );
    let f = start(Some(s), 1.0).await;
    let id = f.create(json!({"prompt": "p"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(f.get(&format!("{REPO_TASKS}/{id}")).await.status().as_u16());
        }
        v
    };
    assert_eq!(statuses, [200, 502, 502, 200]);
    let r = f.get("/agents/tasks").await;
    assert_eq!(r.status(), 500);
    assert_rate_headers(&r);
    assert_error_body(&r.json().await.unwrap(), "boom");
    let log = f.sim.request_log();
    let gets: Vec<Option<u16>> = log
        .iter()
        .filter(|l| l.endpoint == Some(sim::Endpoint::GetRepoTask))
        .map(|l| l.status)
        .collect();
    assert_eq!(gets, [Some(200), Some(502), Some(502), Some(200)]);
}

#[tokio::test]
async fn dropped_connection_before_acting_creates_nothing() {
    let f = start(
        Some(scenario(
            "default: {final: never}\nfaults: [{endpoint: create-task, drop: true}]",
        )),
        1.0,
    )
    .await;
    let e = f
        .req(reqwest::Method::POST, REPO_TASKS, TOKEN)
        .body(r#"{"prompt":"p"}"#)
        .send()
        .await
        .expect_err("transport error");
    assert!(!e.is_status(), "{e:?}");
    assert!(f.sim.tasks().is_empty());
    assert_eq!(f.sim.request_log()[0].status, None, "no response was sent");
    // The next request works.
    f.create(json!({"prompt": "p"})).await;
    assert_eq!(f.sim.tasks().len(), 1);
}

#[tokio::test]
async fn dropped_connection_after_acting_leaves_exactly_one_task() {
    let f = start(
        Some(scenario(
            "default: {final: never}\nfaults: [{endpoint: create-task, drop: true, when: after}]",
        )),
        1.0,
    )
    .await;
    // A warm keep-alive connection: the client must not silently resend the POST on it.
    assert_eq!(f.get(REPO_TASKS).await.status(), 200);
    let e = f
        .req(reqwest::Method::POST, REPO_TASKS, TOKEN)
        .body(r#"{"prompt":"ambiguous <!-- key:42 -->"}"#)
        .send()
        .await
        .expect_err("transport error");
    assert!(!e.is_status(), "{e:?}");
    // The client reconciles by listing, and finds the task the server created.
    let v: Value = f
        .get(&format!(
            "{REPO_TASKS}?creator_id={}",
            sim::user_id_for_token(TOKEN)
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(f.count("POST", "/agents/repos/{owner}/{repo}/tasks"), 1);
    assert_eq!(
        f.sim.tasks()[0].sessions.as_ref().unwrap()[0]
            .prompt
            .as_deref(),
        Some("ambiguous <!-- key:42 -->")
    );
}

#[tokio::test]
async fn server_error_and_timeout_after_acting_still_create_the_task() {
    let s = scenario(
        r"
default: {final: never}
faults:
  - {endpoint: create-task, nth: 1, status: 502, when: after}
  - {endpoint: create-task, nth: 2, delay: 3s, when: after}
",
    );
    let f = start(Some(s), 1.0).await;
    let r = f.post(REPO_TASKS, r#"{"prompt":"one"}"#).await;
    assert_eq!(r.status(), 502);
    assert_rate_headers(&r);
    let e = f
        .req(reqwest::Method::POST, REPO_TASKS, TOKEN)
        .timeout(Duration::from_millis(300))
        .body(r#"{"prompt":"two"}"#)
        .send()
        .await
        .expect_err("times out");
    assert!(e.is_timeout(), "{e:?}");
    assert_eq!(f.sim.tasks().len(), 2, "both POSTs created their task");
    assert_eq!(f.count("POST", REPO_TASKS), 2);
}

#[tokio::test]
async fn delay_before_acting_slows_the_response() {
    let f = start(
        Some(scenario(
            "default: {final: never}\nfaults: [{endpoint: list-repo-tasks, delay: 400ms}]",
        )),
        1.0,
    )
    .await;
    let e = f
        .req(reqwest::Method::GET, REPO_TASKS, TOKEN)
        .timeout(Duration::from_millis(100))
        .send()
        .await
        .expect_err("slow");
    assert!(e.is_timeout());
    let log = f.sim.request_log();
    assert_eq!(log.len(), 1, "the abandoned request is in the log");
    assert_eq!(
        f.get(REPO_TASKS).await.status(),
        200,
        "only the first request is slow"
    );
}

#[tokio::test]
async fn broken_bodies_keep_the_real_status() {
    let s = scenario(
        r"
default: {final: never}
faults:
  - {endpoint: create-task, nth: 1, body: truncated}
  - {endpoint: create-task, nth: 2, body: malformed}
  - {endpoint: create-task, nth: 3, body: empty}
",
    );
    let f = start(Some(s), 1.0).await;
    for _ in 0..3 {
        let r = f.post(REPO_TASKS, r#"{"prompt":"p"}"#).await;
        assert_eq!(r.status(), 201);
        let text = r.text().await.unwrap();
        assert!(
            serde_json::from_str::<Value>(&text).is_err(),
            "not JSON: {text:?}"
        );
    }
    assert_eq!(f.sim.tasks().len(), 3);
}

#[tokio::test]
async fn primary_rate_limit_runs_out_and_resets() {
    let f = start(
        Some(scenario("rate-limit: {limit: 3, window: 1s, status: 429}")),
        1.0,
    )
    .await;
    for expected in [2, 1, 0] {
        let r = f.get(REPO_TASKS).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-ratelimit-remaining"), expected.to_string());
        assert_eq!(header(&r, "x-ratelimit-limit"), "3");
    }
    let r = f.get(REPO_TASKS).await;
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "x-ratelimit-remaining"), "0");
    let reset: i64 = header(&r, "x-ratelimit-reset").parse().unwrap();
    assert!(
        reset >= jiff::Timestamp::now().as_second(),
        "reset is in the future"
    );
    assert!(
        r.json::<Value>().await.unwrap()["message"]
            .as_str()
            .unwrap()
            .starts_with("API rate limit exceeded")
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = f.get(REPO_TASKS).await;
    assert_eq!(r.status(), 200, "the window reset");
    assert_eq!(header(&r, "x-ratelimit-remaining"), "2");
}

#[tokio::test]
async fn secondary_rate_limits_send_retry_after() {
    let s = scenario(
        r"
default: {final: never}
creation-limit: {max: 1, window: 1m, retry-after: 20s}
faults:
  - {endpoint: list-repo-tasks, secondary-rate-limit: {status: 403, retry-after: 30s}}
",
    );
    let f = start(Some(s), 1.0).await;
    let r = f.get(REPO_TASKS).await;
    assert_eq!(r.status(), 403);
    assert_eq!(header(&r, "retry-after"), "30");
    assert_rate_headers(&r);
    assert!(
        r.json::<Value>().await.unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("secondary rate limit")
    );

    f.create(json!({"prompt": "one"})).await;
    let r = f.post(REPO_TASKS, r#"{"prompt":"two"}"#).await;
    assert_eq!(r.status(), 403, "content-creation limit");
    assert_eq!(header(&r, "retry-after"), "20");
    assert_eq!(f.sim.tasks().len(), 1);
}

// ---------------------------------------------------------------------------------------
// Scenarios and the `sim` command.

#[test]
fn scenario_errors_name_line_and_column() {
    let err = |yaml: &str| {
        Scenario::from_yaml(yaml, Path::new("s.yml"), Path::new("."))
            .unwrap_err()
            .to_string()
    };
    insta::assert_snapshot!("unknown_key", err("tasks:\n  - queued: 1s\n    wrok: 2s\n"));
    insta::assert_snapshot!("unknown_final", err("tasks:\n  - final: done\n"));
    insta::assert_snapshot!(
        "unknown_endpoint",
        err("faults:\n  - endpoint: get-everything\n    status: 500\n")
    );
    insta::assert_snapshot!(
        "two_actions",
        err("faults:\n  - endpoint: create-task\n    status: 500\n    drop: true\n")
    );
    insta::assert_snapshot!(
        "bad_path",
        err("tasks:\n  - files:\n      - delete: ../etc/passwd\n")
    );
    insta::assert_snapshot!("bad_duration", err("default:\n  work: soon\n"));
    insta::assert_snapshot!(
        "missing_file",
        err("tasks:\n  - files:\n      - patch-file: nowhere.patch\n")
    );
}

#[test]
fn example_scenarios_compile() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/scenarios"));
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yml") {
            Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(n >= 3, "at least three example scenarios, found {n}");
}

#[tokio::test]
async fn serve_until_prints_the_listening_line_first() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SimConfig::new(dir.path().join("new.git"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let buf = crate::support::Shared::default();
    let server = tokio::spawn(sim::serve_until(cfg, 0, buf.clone(), async move {
        let _ = rx.await;
    }));
    let line = loop {
        let text = buf.text();
        if let Some(l) = text.lines().next() {
            break l.to_string();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let url = line
        .strip_prefix("agent-gate sim listening on ")
        .expect(&line);
    assert!(
        url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"),
        "{url}"
    );
    let r = client()
        .get(format!("{url}/repos/o/r"))
        .header("user-agent", "t")
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tx.send(()).unwrap();
    server.await.unwrap().unwrap();
    // The bare repository was created with one commit on main.
    assert_eq!(
        git(
            &dir.path().join("new.git"),
            &["rev-list", "--count", "main"]
        )
        .trim(),
        "1"
    );
}

#[tokio::test]
async fn start_refuses_bad_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SimConfig::new(dir.path().join("r.git"));
    cfg.time_scale = 0.0;
    assert!(matches!(
        sim::start(cfg, ([127, 0, 0, 1], 0).into()).await,
        Err(sim::SimError::TimeScale(_))
    ));
    let cfg = SimConfig::new(dir.path().join("r.git"));
    assert!(matches!(
        sim::start(cfg, ([0, 0, 0, 0], 0).into()).await,
        Err(sim::SimError::NotLoopback(_))
    ));
    std::fs::write(dir.path().join("file"), "x").unwrap();
    let cfg = SimConfig::new(dir.path().join("file"));
    assert!(matches!(
        sim::start(cfg, ([127, 0, 0, 1], 0).into()).await,
        Err(sim::SimError::Repo { .. })
    ));
}

#[tokio::test]
async fn example_scope_violation_scenario_runs_on_a_fresh_repository() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/scenarios/scope-violation.yml"
    ));
    let f = start(Some(Scenario::load(path).unwrap()), 1000.0).await;
    let mut names = Vec::new();
    for prompt in ["work in scope", "work out of scope", "clean up", "anything"] {
        let t = f
            .create(json!({"prompt": prompt, "create_pull_request": true}))
            .await;
        let (done, _) = f
            .wait(t["id"].as_str().unwrap(), &["completed", "failed"])
            .await;
        assert_eq!(done["state"], "completed", "{prompt}: {done}");
        let branch = done["sessions"][0]["head_ref"]
            .as_str()
            .unwrap()
            .to_string();
        names.push(git(
            f.sim.repo_dir(),
            &["diff", "--name-only", "-M", "main", &branch],
        ));
    }
    assert_eq!(
        names[0],
        "src/services/health.rs\nsrc/services/payments/retry.rs\n"
    );
    // With -M, the rename shows as its new name only.
    assert_eq!(
        names[1],
        ".github/workflows/ci.yml\nassets/logo.bin\nconfig/secrets\ndocs/README.md\ntools/run.sh\n"
    );
    assert_eq!(names[2], "README.md\n");
    assert_eq!(names[3], "agent-gate-sim.txt\n");
}

/// GitHub's cloud-agent settings: by default the agent is enabled for every repository
/// (`enabled_repositories: all`, the repository's configuration readable); a scenario with
/// `api: { agent-disabled: true }` turns it off for the organization, and the repository's
/// agent-tasks endpoints answer 404 as GitHub's do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_agent_settings_answer_enabled_or_disabled_as_the_scenario_says() {
    let on = start(None, 100.0).await;
    let r = on.get("/orgs/octo/copilot/coding-agent/permissions").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()["enabled_repositories"],
        "all"
    );
    let r = on
        .get("/repos/octo/demo/copilot/cloud-agent/configuration")
        .await;
    assert_eq!(r.status(), 200);
    let config: Value = r.json().await.unwrap();
    assert_eq!(config["require_actions_workflow_approval"], true);
    assert_eq!(on.get(REPO_TASKS).await.status(), 200);

    let off = start(Some(scenario("api:\n  agent-disabled: true\n")), 100.0).await;
    let r = off.get("/orgs/octo/copilot/coding-agent/permissions").await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["enabled_repositories"],
        "none"
    );
    let r = off
        .get("/repos/octo/demo/copilot/cloud-agent/configuration")
        .await;
    assert_eq!(r.status(), 404);
    let r = off.get(REPO_TASKS).await;
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["message"], "Not Found");
    assert_eq!(
        off.post(REPO_TASKS, r#"{"prompt":"x"}"#).await.status(),
        404,
        "nothing can be started"
    );
}
