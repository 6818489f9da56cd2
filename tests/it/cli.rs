//! End-to-end tests of the `agent-gate` binary: `check`, `validate`, `explain` on real
//! temporary repositories, asserting exit codes (DESIGN §2) and what humans read.

use std::fmt::Write as _;
use std::process::{Command, Output};

use crate::support::{Cli, CliOutput, Gate, TestRepo};

fn agent_gate(dir: &std::path::Path, args: &[&str]) -> CliOutput {
    Cli::new().current_dir(dir).args(args).run()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const POLICY: &str = r#"version: 1
scope:
  allow: ["src/**", "tests/**"]
  deny: ["**/*.pem"]
  max-files: 10
checks:
  - name: unit tests
    run: test -f src/lib.sh && bash tests/run.sh
    timeout: 1m
  - name: style
    run: "! grep -rn FIXME src"
    required: false
"#;

/// A repo on `main` with a policy and a tiny project whose test passes, then a branch `agent`.
fn project() -> TestRepo {
    let repo = TestRepo::new();
    repo.write(".github/agent-gate.yml", POLICY);
    repo.write("src/lib.sh", "answer() { echo 42; }\n");
    repo.write("tests/run.sh", "source src/lib.sh\n[ \"$(answer)\" = 42 ] || { echo 'expected 42' >&2; exit 1; }\necho ok\n");
    repo.commit("project");
    repo.branch("agent");
    repo
}

#[test]
fn check_passes_an_in_scope_change_whose_tests_pass() {
    let repo = project();
    repo.write("src/more.sh", "more() { :; }\n");
    repo.commit("in scope");
    let out = agent_gate(repo.path(), &["check", "--base", "main", "--head", "agent"]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("verdict: passed (exit 0)"), "{text}");
    assert!(text.contains("allowed by \"src/**\" (line 3)"), "{text}");
    assert!(text.contains("passed    unit tests"), "{text}");
}

#[test]
fn check_reports_a_scope_violation_and_skips_the_checks() {
    let repo = project();
    repo.write("deploy/key.pem", "secret\n");
    repo.write(".github/workflows/ci.yml", "on: push\n");
    repo.commit("out of scope");
    let out = agent_gate(
        repo.path(),
        &[
            "check", "--base", "main", "--head", "agent", "--format", "json",
        ],
    );
    assert_eq!(out.status.code(), Some(11), "{}", stdout(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(report["verdict"], "scope-violation");
    let kinds: Vec<&str> = report["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"protected"), "{kinds:?}");
    assert!(kinds.contains(&"out-of-scope"), "{kinds:?}");
    let pem = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "deploy/key.pem")
        .unwrap();
    assert_eq!(pem["decision"]["reason"], "denied");
    assert_eq!(pem["decision"]["rule"]["text"], "**/*.pem");
    assert_eq!(pem["decision"]["rule"]["origin"]["line"], 4);
    assert!(
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "skipped")
    );
}

#[test]
fn check_fails_when_a_required_check_fails_but_not_for_an_advisory_one() {
    let repo = project();
    repo.write("src/lib.sh", "answer() { echo 41; } # FIXME\n");
    repo.commit("breaks the test");
    let out = agent_gate(repo.path(), &["check", "--base", "main", "--head", "agent"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(10), "{text}");
    assert!(
        text.contains("expected 42"),
        "the failing check's output tail is shown: {text}"
    );
    assert!(text.contains("(advisory)"), "{text}");

    // Only the advisory check fails: passed.
    let repo = project();
    repo.write("src/lib.sh", "answer() { echo 42; } # FIXME\n");
    repo.commit("advisory only");
    let out = agent_gate(repo.path(), &["check", "--base", "main", "--head", "agent"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn check_reads_the_policy_from_the_base_ref_not_the_head() {
    let repo = project();
    // The agent loosens the policy on its branch and touches a denied path.
    repo.write(".github/agent-gate.yml", "version: 1\n");
    repo.write("deploy/key.pem", "secret\n");
    repo.commit("loosen the policy");
    let out = agent_gate(
        repo.path(),
        &[
            "check", "--base", "main", "--head", "agent", "--format", "json",
        ],
    );
    assert_eq!(out.status.code(), Some(11));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let paths: Vec<&str> = report["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["path"].as_str())
        .collect();
    assert!(paths.contains(&".github/agent-gate.yml"), "{paths:?}");
    assert!(paths.contains(&"deploy/key.pem"), "{paths:?}");
}

#[test]
fn check_config_errors_exit_2_with_a_clear_message() {
    // A bad policy at the base ref.
    let repo = TestRepo::new();
    repo.write(
        ".github/agent-gate.yml",
        "version: 1\nscope:\n  allw: [src/**]\n",
    );
    repo.commit("bad policy");
    let out = agent_gate(repo.path(), &["check", "--base", "main", "--head", "HEAD"]);
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    assert!(text.contains(".github/agent-gate.yml:3:3"), "{text}");

    // A ref that does not exist.
    let repo = project();
    let out = agent_gate(
        repo.path(),
        &["check", "--base", "no-such-branch", "--head", "agent"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains("no-such-branch"), "{}", stdout(&out));

    // No policy at the base ref.
    let repo = TestRepo::new();
    let out = agent_gate(repo.path(), &["check", "--base", "main", "--head", "HEAD"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains("no policy file"), "{}", stdout(&out));
}

#[test]
fn check_scope_input_narrows_but_never_widens() {
    let repo = project();
    repo.write("tests/extra.sh", "true\n");
    repo.commit("tests only");
    let out = agent_gate(
        repo.path(),
        &[
            "check", "--base", "main", "--head", "agent", "--scope", "src/**",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(11),
        "tests/ is outside the narrowed scope: {}",
        stdout(&out)
    );
    let out = agent_gate(
        repo.path(),
        &[
            "check", "--base", "main", "--head", "agent", "--scope", "tests/**",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn validate_and_explain() {
    let repo = project();
    let out = agent_gate(repo.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("valid"));
    repo.write("bad.yml", "version: 2\n");
    let out = agent_gate(repo.path(), &["validate", "bad.yml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.yml"));

    let out = agent_gate(repo.path(), &["explain", "src/a.rs", "CODEOWNERS", "x.pem"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(11), "{text}");
    insta::assert_snapshot!(text);
}

/// `agent-gate` with `input` on its standard input.
fn agent_gate_stdin(dir: &std::path::Path, args: &[&str], input: &[u8]) -> Output {
    Cli::new().current_dir(dir).args(args).stdin(input).run().0
}

/// `explain --paths-from` audits a policy against a whole repository: the paths of
/// `git ls-files -z` on standard input, one decision each as `explain PATH…` gives it, as
/// JSON lines with `--format json`; 20,000 paths stream through; a file of paths works the
/// same; a name with a newline is one path and is shown escaped.
#[test]
fn explain_reads_the_paths_of_a_whole_repository() {
    let repo = project();
    repo.write("keys/deploy.pem", "x\n");
    repo.write("odd\nname.sh", "x\n");
    repo.commit("more files");
    let listed = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(repo.path())
        .output()
        .unwrap()
        .stdout;
    let files: Vec<String> = listed
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    let out = agent_gate_stdin(
        repo.path(),
        &["explain", "--paths-from", "-", "-z", "--format", "json"],
        &listed,
    );
    assert_eq!(
        out.status.code(),
        Some(11),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let paths: Vec<&str> = lines.iter().map(|l| l["path"].as_str().unwrap()).collect();
    assert_eq!(paths, files.iter().map(String::as_str).collect::<Vec<_>>());
    let by_path = |p: &str| lines.iter().find(|l| l["path"] == p).unwrap().clone();
    assert_eq!(by_path("src/lib.sh")["in_scope"], true);
    assert_eq!(by_path("src/lib.sh")["rule"]["text"], "src/**");
    assert_eq!(by_path(".github/agent-gate.yml")["reason"], "protected");
    assert_eq!(by_path("odd\nname.sh")["in_scope"], false);

    // The text form says what `explain PATH…` says, line for line.
    let one_by_one = agent_gate(repo.path(), &["explain", "src/lib.sh", "keys/deploy.pem"]);
    let streamed = agent_gate_stdin(
        repo.path(),
        &["explain", "--paths-from", "-"],
        b"src/lib.sh\nkeys/deploy.pem\n",
    );
    assert_eq!(stdout(&streamed), stdout(&one_by_one));
    assert_eq!(streamed.status.code(), one_by_one.status.code());
    let odd = agent_gate_stdin(
        repo.path(),
        &["explain", "--paths-from", "-", "-z"],
        b"odd\nname.sh\0",
    );
    assert_eq!(
        stdout(&odd),
        "denied  odd\\nname.sh  — no allow rule matches\n",
        "one line, the newline shown escaped"
    );

    // Many paths, from a file: one line each, in order, exit 0 when all are in scope.
    let mut many = String::new();
    for i in 0..20_000 {
        let _ = writeln!(many, "src/m{}/f{i}.sh", i % 97);
    }
    repo.write("paths.txt", &many);
    let out = agent_gate(repo.path(), &["explain", "--paths-from", "paths.txt"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 20_000);
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("allowed src/m17/f19999.sh  — allowed by"),
        "{}",
        text.lines().last().unwrap()
    );

    // Paths one way only; a file that cannot be read is a usage error.
    let both = agent_gate(
        repo.path(),
        &["explain", "--paths-from", "paths.txt", "src/a.sh"],
    );
    assert_eq!(both.status.code(), Some(2));
    let none = agent_gate(repo.path(), &["explain", "--paths-from", "missing.txt"]);
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("cannot read missing.txt"));
}

#[test]
fn report_merges_the_audit_files_of_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let passed = project();
    passed.write("src/more.sh", "more() { :; }\n");
    passed.commit("in scope");
    let a = dir.path().join("a.jsonl");
    let out = agent_gate(
        passed.path(),
        &[
            "check",
            "--base",
            "main",
            "--head",
            "agent",
            "--audit-file",
            a.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    let violating = project();
    violating.write("deploy/key.pem", "x\n");
    violating.commit("out of scope");
    let b = dir.path().join("b.jsonl");
    let out = agent_gate(
        violating.path(),
        &[
            "check",
            "--base",
            "main",
            "--head",
            "agent",
            "--audit-file",
            b.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(11));
    // A torn last line (the gate was killed mid-write) does not hide the rest.
    let mut text = std::fs::read_to_string(&b).unwrap();
    text.push_str("{\"schema\":1,\"ev");
    std::fs::write(&b, text).unwrap();

    let out = agent_gate(
        dir.path(),
        &[
            "report",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fleet: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(fleet["runs"].as_array().unwrap().len(), 2, "{fleet}");
    assert_eq!(fleet["totals"]["passed"], 1);
    assert_eq!(fleet["totals"]["scope-violation"], 1);
    assert_eq!(fleet["unreadable"].as_array().unwrap().len(), 1);
    let b_run = fleet["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["file"].as_str().unwrap().ends_with("b.jsonl"))
        .unwrap();
    assert_eq!(b_run["violations"], 1);
    assert_eq!(b_run["checks_skipped"], 2);

    let out = agent_gate(
        dir.path(),
        &["report", a.to_str().unwrap(), b.to_str().unwrap()],
    );
    let text = stdout(&out);
    // Plain text on a terminal (the Markdown table is the step summary's).
    assert!(
        text.lines()
            .any(|l| l.contains("b.jsonl") && l.contains("  scope-violation  ")),
        "{text}"
    );
    assert!(!text.contains('|') && !text.contains("&#"), "{text}");
    assert!(
        text.contains("2 tasks: 1 passed, 1 scope-violation"),
        "{text}"
    );

    // A directory stands for the files under it, as actions/download-artifact lays them
    // out (one folder per artifact): the nightly example passes `audits`.
    let nested = dir.path().join("audits/agent-gate-audit-b");
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::copy(&b, nested.join("audit.jsonl")).unwrap();
    std::fs::copy(&a, dir.path().join("audits/a.jsonl")).unwrap();
    let out = agent_gate(dir.path(), &["report", "audits", "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fleet: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(fleet["runs"].as_array().unwrap().len(), 2, "{fleet}");
    assert_eq!(fleet["totals"]["scope-violation"], 1);

    let out = agent_gate(dir.path(), &["report", "missing.jsonl"]);
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_lists_and_shows_tasks() {
    use agent_gate::adapters::github::{Client, ClientConfig, create_task_request};
    let world = Gate::new()
        .time_scale(100.0)
        .token("ghp_status")
        .start()
        .await;
    let sim = &world.sim;
    let client =
        Client::new(ClientConfig::new("ghp_status", "octo", "demo").with_api_url(sim.url()))
            .unwrap();
    let task = client
        .create_task(&create_task_request("Fix the flaky test", None))
        .await
        .unwrap();
    let url = sim.url();

    let run_as = |args: Vec<String>, token: &'static str| {
        world.cli().args(args).env("INPUT_TOKEN", token).run_async()
    };
    let run = |args: Vec<String>| run_as(args, "ghp_status");
    let base = |extra: &[&str]| {
        let mut v: Vec<String> = ["status", "--repository", "octo/demo", "--api-url"]
            .iter()
            .map(|s| (*s).to_string())
            .collect();
        v.push(url.clone());
        v.extend(extra.iter().map(|s| (*s).to_string()));
        v
    };
    let out = run(base(&[])).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert!(text.contains(&task.id), "{text}");
    assert!(text.contains("Fix the flaky test"), "{text}");

    // Once the task has cost its 1 AI credit, the list shows it as GitHub displays it
    // (rounded to one decimal), although list items carry no sessions.
    for _ in 0..200 {
        let t = client.get_task(&task.id).await.unwrap();
        if t.state.is_final() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let out = run(base(&[])).await;
    let text = stdout(&out);
    let row = text
        .lines()
        .find(|l| l.starts_with(&task.id))
        .unwrap_or_else(|| panic!("no row for the task: {text}"));
    let fields: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        (fields[1], fields[3]),
        ("completed", "1"),
        "state and AI credits: {text}"
    );

    let out = run(base(&[&task.id, "--format", "json"])).await;
    assert_eq!(out.status.code(), Some(0));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["id"], task.id.as_str());
    assert!(
        shown["sessions"].as_array().is_some_and(|s| !s.is_empty()),
        "{shown}"
    );

    // An installation token is refused by the API: exit 3 with the guidance.
    let out = run_as(base(&[]), "ghs_installation").await;
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stderr().contains("user token"), "{}", out.stderr());
    world.sim.shutdown().await;
}

/// The gate's client against the simulator (not a hand-written fake): create, get, and a
/// list that follows `Link` pagination across pages; tasks of another token's user are
/// filtered out by `creator_id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_and_the_simulator_round_trip_with_pagination() {
    use agent_gate::adapters::github::{
        Client, ClientConfig, Direction, ListQuery, ListSort, create_task_request,
    };
    use agent_gate::sim::{SimConfig, start, user_id_for_token};
    let dir = tempfile::tempdir().unwrap();
    let sim = start(
        SimConfig {
            time_scale: 1000.0,
            ..SimConfig::new(dir.path().join("gh.git"))
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let client =
        Client::new(ClientConfig::new("ghp_alice", "octo", "demo").with_api_url(sim.url()))
            .unwrap();
    let other =
        Client::new(ClientConfig::new("ghp_bob", "octo", "demo").with_api_url(sim.url())).unwrap();
    let mut ids = Vec::new();
    for i in 0..23 {
        let t = client
            .create_task(&create_task_request(
                format!("task {i}"),
                Some("main".into()),
            ))
            .await
            .unwrap();
        assert_eq!(client.get_task(&t.id).await.unwrap().id, t.id);
        ids.push(t.id);
    }
    other
        .create_task(&create_task_request("bob's task", None))
        .await
        .unwrap();

    let all = client
        .list_tasks(&ListQuery {
            per_page: Some(10),
            // Pages of a list sorted by creation stay put while the tasks move on.
            sort: Some(ListSort::CreatedAt),
            direction: Some(Direction::Asc),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(all.tasks.len(), 24, "three pages followed");
    let mine = client
        .list_tasks(&ListQuery {
            per_page: Some(10),
            // Pages of a list sorted by creation stay put while the tasks move on.
            sort: Some(ListSort::CreatedAt),
            direction: Some(Direction::Asc),
            creator_id: vec![user_id_for_token("ghp_alice")],
            ..ListQuery::default()
        })
        .await
        .unwrap();
    let mut listed: Vec<String> = mine.tasks.into_iter().map(|t| t.id).collect();
    listed.sort();
    ids.sort();
    assert_eq!(listed, ids);
    assert!(
        sim.count("GET", "/agents/repos/*/*/tasks") >= 6,
        "pages were requested one by one"
    );
    sim.shutdown().await;
}

/// A run the daily budget refuses: exit 14, nothing created, and the audit record says why
/// (and with which `scope` input the run was narrowed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_over_budget_run_is_refused_and_audited() {
    let world = Gate::new()
        .policy("version: 1\nagent:\n  max-tasks-per-day: 0\n")
        .token("ghp_budget")
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let out = world
        .cli_run("do it")
        .args(["--scope", "src/**,{docs,tests}/**"])
        .arg("--audit-file")
        .arg(&audit)
        .current_dir(world.work.path())
        .run_async()
        .await;
    assert_eq!(
        out.status.code(),
        Some(14),
        "{}\n{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout(&out).contains("over-budget"), "{}", stdout(&out));
    assert_eq!(
        world.sim.count("POST", "/agents/repos/*/*/tasks"),
        0,
        "nothing was started"
    );
    let text = std::fs::read_to_string(&audit).unwrap();
    let admission: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["event"] == "admission")
        .expect("an admission event");
    assert_eq!(admission["allowed"], false);
    assert_eq!(
        admission["scope"],
        serde_json::json!(["src/**", "{docs,tests}/**"]),
        "{admission}"
    );
    assert!(
        admission["refused"].as_str().unwrap().contains('0'),
        "{admission}"
    );
    world.sim.shutdown().await;
}

#[test]
fn status_without_a_token_says_which_one_is_needed() {
    let repo = TestRepo::new();
    let out = Cli::new()
        .current_dir(repo.path())
        .args(["status", "--repository", "octo/demo"])
        .run();
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stderr).trim_end());
}

/// A malformed repository is refused before any request, naming where it came from; the
/// token is never read into the message.
#[test]
fn status_with_a_malformed_repository_names_the_input_before_any_request() {
    let repo = TestRepo::new();
    let out = Cli::new()
        .current_dir(repo.path())
        .env("INPUT_TOKEN", "ghp_STATUSTOKEN0123456789")
        .args([
            "status",
            "--repository",
            "octo/demo/extra",
            "--api-url",
            "http://127.0.0.1:9",
        ])
        .run();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("ghp_STATUSTOKEN"), "{stderr}");
    assert!(
        !stderr.contains("127.0.0.1"),
        "no request was made: {stderr}"
    );
    insta::assert_snapshot!(stderr.trim_end());
    // An API URL that is not one is refused the same way.
    let out = Cli::new()
        .current_dir(repo.path())
        .env("INPUT_TOKEN", "ghp_STATUSTOKEN0123456789")
        .args([
            "status",
            "--repository",
            "octo/demo",
            "--api-url",
            "file:///etc",
        ])
        .run();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        out.stderr().trim_end(),
        "error: api-url `file:///etc` must be an http(s) URL such as https://api.github.com"
    );
}

/// An API that nothing answers (connection refused) fails in seconds, after a bounded
/// number of retries, each announced on one line with its number; stderr is not a
/// terminal here, so it carries no colour codes.
#[test]
fn an_unreachable_api_fails_fast_with_announced_retries_and_no_colour() {
    let repo = TestRepo::new();
    repo.write(".github/agent-gate.yml", "version: 1\n");
    repo.commit("policy");
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let api = format!("http://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    let out = Cli::new()
        .current_dir(repo.path())
        .args(["run", "--repository", "octo/demo"])
        .env("INPUT_TOKEN", "ghp_x")
        .args(["--instruction", "x", "--api-url", &api])
        .env_remove("NO_COLOR")
        .run();
    let elapsed = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        elapsed < std::time::Duration::from_secs(20),
        "took {elapsed:?}"
    );
    let retries: Vec<&str> = err.lines().filter(|l| l.contains("; retry ")).collect();
    assert_eq!(retries.len(), 3, "{err}");
    for (i, line) in retries.iter().enumerate() {
        assert!(
            line.contains("could not connect")
                && line.contains(&format!("; retry {} of 3 in ", i + 1)),
            "{line}"
        );
    }
    assert!(
        !err.contains('\u{1b}'),
        "no colour codes off a terminal: {err:?}"
    );
}

/// Colour on stderr: only on a terminal, and never with `NO_COLOR` set to anything.
#[test]
fn colour_only_on_a_terminal_without_no_color() {
    use agent_gate::adapters::progress::colour_wanted;
    use std::ffi::OsStr;
    assert!(colour_wanted(true, None));
    assert!(colour_wanted(true, Some(OsStr::new(""))));
    assert!(!colour_wanted(true, Some(OsStr::new("1"))));
    assert!(!colour_wanted(false, None));
    assert!(!colour_wanted(false, Some(OsStr::new("1"))));
}

/// `validate` reports every error of a policy in one pass, in file order, each with its
/// line and column, and how many there were.
#[test]
fn validate_reports_every_error_in_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("policy.yml"),
        r#"version: 1
repositories: [nope, octo/ok]
agent:
  timeout: 30
scope:
  allow: ["src/[", "!x", "src/**"]
checks:
  - name: unit
    run: ""
    timeout: 5
  - name: unit
    run: echo
    when: ["!y"]
"#,
    )
    .unwrap();
    let out = agent_gate(dir.path(), &["validate", "policy.yml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("error: policy.yml:").count(), 8, "{err}");
    insta::assert_snapshot!(err);
}

/// Git failures in user terms: outside a repository, the run says so and how to get one;
/// the raw git command is a debug line (shown with `AGENT_GATE_DEBUG` or the runner's
/// `RUNNER_DEBUG=1`), never the message.
#[test]
fn outside_a_repository_the_error_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let out = agent_gate(dir.path(), &["check", "--base", "main", "--head", "HEAD"]);
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    let shown = text.replace(
        &dir.path().canonicalize().unwrap().display().to_string(),
        "DIR",
    );
    let error = shown
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("{shown}"));
    insta::assert_snapshot!("not_a_repository", error);
    // The raw git command is only a debug line.
    for raw in ["rev-parse", "for-each-ref"] {
        assert!(!text.contains(raw), "{text}");
        assert!(!String::from_utf8_lossy(&out.stderr).contains(raw));
    }

    let debug = Cli::new()
        .current_dir(dir.path())
        .args(["check", "--base", "main", "--head", "HEAD"])
        .env("AGENT_GATE_DEBUG", "1")
        .run();
    let err = String::from_utf8_lossy(&debug.stderr);
    assert!(
        err.lines()
            .any(|l| l.contains("DEBUG") && l.contains("command=git ")),
        "{err}"
    );
}

/// A base branch that is neither fetchable nor local: the message names the branch, the
/// remote, what git said, and how to get it (`fetch-depth: 0`, `--base-ref`).
#[test]
fn a_base_that_cannot_be_fetched_is_named_with_how_to_get_it() {
    let repo = TestRepo::new();
    repo.write(".github/agent-gate.yml", "version: 1\n");
    repo.commit("policy");
    let out = Cli::new()
        .current_dir(repo.path())
        .args(["run", "--repository", "octo/demo"])
        .env("INPUT_TOKEN", "ghp_x")
        .args(["--instruction", "x", "--base-ref", "release"])
        .args(["--api-url", "http://127.0.0.1:9"])
        .run();
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    let error = text
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("{text}"));
    insta::assert_snapshot!("base_not_available", error);
    assert!(!text.contains("git fetch"), "{text}");
}

/// Every document a `--help` text points at exists, and says what that help promises:
/// `explain` documents its exit codes, `report --format json` points at the fleet report's
/// description and `check --format json` at the report's.
#[test]
fn help_texts_point_at_documents_that_exist_and_describe_them() {
    use clap::CommandFactory;
    let mut cli = agent_gate::cli::Cli::command();
    cli.build();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut help_of = std::collections::BTreeMap::new();
    for sub in cli.get_subcommands_mut() {
        let help = sub.render_long_help().to_string();
        for word in help.split(|c: char| c.is_whitespace() || "(),;:".contains(c)) {
            if let Some(start) = word.find("docs/") {
                let doc = word[start..].trim_end_matches('.');
                assert!(
                    root.join(doc).is_file(),
                    "`{}` --help names {doc}",
                    sub.get_name()
                );
            }
        }
        help_of.insert(sub.get_name().to_string(), help);
    }
    assert!(
        help_of["explain"].contains("11 (scope-violation)"),
        "{}",
        help_of["explain"]
    );
    assert!(help_of["report"].contains("docs/fleet.md"));
    assert!(help_of["check"].contains("docs/report.md"));
    let fleet = std::fs::read_to_string(root.join("docs/fleet.md")).unwrap();
    assert!(fleet.contains("## The fleet report") && fleet.contains("`unreadable[]`"));
}

/// `status` on a repository where Copilot cloud agent is off says so before the 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_says_when_the_cloud_agent_is_not_enabled() {
    use agent_gate::sim::{ApiOptions, Scenario};
    let world = Gate::new()
        .scenario(Scenario {
            api: ApiOptions {
                agent_disabled: true,
                ..ApiOptions::default()
            },
            ..Scenario::default()
        })
        .token("ghp_x")
        .start()
        .await;
    let out = world
        .cli()
        .args(["status", "--repository", "octo/demo"])
        .args(["--api-url", &world.sim.url()])
        .run_async()
        .await;
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    let first = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_default();
    assert!(
        first.starts_with("error: Copilot cloud agent is not enabled for octo/demo"),
        "{err}"
    );
    assert!(err.contains("404") || err.contains("not found"), "{err}");
    world.sim.shutdown().await;
}

/// The README's table of verdicts is the verdicts the gate has, with their exit codes.
#[test]
fn the_readme_lists_every_verdict_with_its_exit_code() {
    use agent_gate::core::report::Verdict;
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme.find("## Verdicts and exit codes").expect("section")..];
    let rows: Vec<(String, u8)> = section
        .lines()
        .skip_while(|l| !l.starts_with("| verdict"))
        .skip(2)
        .take_while(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (
                cells[1].trim_matches('`').to_string(),
                cells[2].parse().unwrap(),
            )
        })
        .collect();
    let mut expected: Vec<(String, u8)> = Verdict::ALL
        .iter()
        .map(|v| (v.as_str().to_string(), v.exit_code()))
        .collect();
    let mut rows_sorted = rows.clone();
    rows_sorted.sort();
    expected.sort();
    assert_eq!(rows_sorted, expected, "README rows: {rows:?}");
}

/// `check` between two unrelated histories says why there is no change to gate (no merge
/// base, and whether the clone is shallow), not a raw git error.
#[test]
fn check_without_a_merge_base_says_why() {
    let repo = project();
    repo.git(["checkout", "-q", "--orphan", "unrelated"]);
    repo.write("other.txt", "x\n");
    repo.git(["add", "-A"]);
    repo.commit("unrelated history");
    let out = agent_gate(
        repo.path(),
        &["check", "--base", "main", "--head", "unrelated"],
    );
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    let error = text
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("{text}"));
    insta::assert_snapshot!("no_merge_base", error);
}

/// Eight `check` processes at once on one workspace and one home directory (a
/// self-hosted runner's, or a developer's): each hides `~/.gitconfig` and `.git/config`
/// from its checks, and when they are all done every file has the mode it had before.
#[test]
#[ignore = "needs root (checks run as another uid only then); .ci/run runs it: cargo test --test it -- --ignored as_root"]
fn as_root_concurrent_runs_sharing_a_home_leave_every_mode_as_found() {
    use std::os::unix::fs::PermissionsExt;
    crate::support::require_root();
    let repo = project();
    repo.write("src/more.sh", "more() { :; }\n");
    repo.commit("in scope");
    let home = tempfile::tempdir().unwrap();
    let gitconfig = home.path().join(".gitconfig");
    std::fs::write(&gitconfig, "[user]\n\tname = t\n").unwrap();
    std::fs::set_permissions(&gitconfig, std::fs::Permissions::from_mode(0o644)).unwrap();
    let workspace_config = repo.path().join(".git/config");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    let before = (mode(&gitconfig), mode(&workspace_config));
    let children: Vec<_> = (0..8)
        .map(|_| {
            Cli::new()
                .current_dir(repo.path())
                .args([
                    "check", "--base", "main", "--head", "agent", "--format", "json",
                ])
                .env("HOME", home.path())
                .spawn_blocking()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(0), "{text}");
        let report: serde_json::Value = serde_json::from_str(&text).unwrap();
        let notes = report["isolation_notes"].to_string();
        assert!(notes.contains(".gitconfig"), "{notes}");
    }
    assert_eq!((mode(&gitconfig), mode(&workspace_config)), before);
    assert_eq!(before, (0o644, 0o644));
}

/// `run`'s inputs that are not plain strings are checked before anything else happens:
/// each bad one ends the run as a configuration error (exit 2) naming the input and what it
/// must be, before any request (the API URL here has nothing listening).
#[test]
fn run_refuses_each_malformed_input_by_name_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, &str); 10] = [
        (
            "--timeout",
            "soon",
            "timeout `soon` is not a duration like 30s, 45m or 2h",
        ),
        (
            "--priority",
            "urgent",
            "priority `urgent` must be high, normal or low",
        ),
        (
            "--repair-rounds",
            "two",
            "repair-rounds `two` is not a whole number of rounds like 0, 1 or 2",
        ),
        (
            "--not-before",
            "tonight",
            "not-before `tonight` is not a time like 2026-03-10T02:17:40Z",
        ),
        ("--write-pace", "fast", "write-pace `fast`"),
        (
            "--scope",
            "src/**,src/[",
            "scope input: invalid pattern `src/[`: unclosed `[`",
        ),
        (
            "--repository",
            "octo",
            "repository `octo` is not `owner/repo`: no `/` between the owner and the repository",
        ),
        (
            "--repository",
            "octo/a b",
            "repository `octo/a b` is not `owner/repo`: the repository name may hold only",
        ),
        (
            "--api-url",
            "ftp://ghe.example.com",
            "api-url `ftp://ghe.example.com` must be an http(s) URL such as https://api.github.com",
        ),
        (
            "--api-url",
            "api.github.com",
            "api-url `api.github.com` is not a URL: relative URL without a base",
        ),
    ];
    let mut seen = Vec::new();
    for (flag, value, message) in cases {
        // The valid inputs, each but the one under test.
        let mut valid = vec![
            ("--repository", "octo/demo"),
            ("--api-url", "http://127.0.0.1:9"),
        ];
        valid.retain(|(f, _)| *f != flag);
        valid.push((flag, value));
        let out = crate::support::Cli::new()
            .current_dir(dir.path())
            .args(["run", "--instruction", "x"])
            .args(valid.iter().flat_map(|(f, v)| [*f, *v]))
            .env("INPUT_TOKEN", "ghp_test")
            .run();
        let stderr = out.stderr();
        assert_eq!(out.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(
            stderr.starts_with(&format!("error: {message}")),
            "{flag} {value}: {stderr}"
        );
        assert!(
            out.stdout().is_empty(),
            "{flag}: nothing is reported: {stderr}"
        );
        seen.push(stderr.lines().next().unwrap_or_default().to_string());
    }
    insta::assert_snapshot!(seen.join("\n"));
}
