//! Repair rounds (`agent_gate::flow::repair`): the follow-up prompt for a `checks-failed` and a
//! `scope-violation` report (snapshots), every case that is never sent back (protected
//! paths, other verdicts, rounds used up, checks the gate could not run), the output tail's
//! caps and cleaning, round keys and costs, and the follow-up request.

use std::fmt::Write as _;

use agent_gate::adapters::github::Cost;
use agent_gate::adapters::github::types::{Session, Task, TaskState, Usage};
use agent_gate::core::policy::Policy;
use agent_gate::core::prompt::{MARKER_PREFIX, build_prompt, find_key, marker};
use agent_gate::core::report::{
    CheckEntry, CheckStatus, FileEntry, Report, TaskInfo, Verdict, Violation, ViolationKind,
    describe_decision,
};
use agent_gate::flow::repair::{
    RoundRecord, TAIL_BYTES, TAIL_LINES, follow_up_request, is_repairable, latest_round,
    repair_prompt, round_cost, round_key, tail, total_cost,
};
use proptest::prelude::*;

const POLICY: &str = "\
version: 1
agent:
  repair-rounds: 2
scope:
  allow: [\"src/services/**\", \"tests/**\"]
  deny: [\"**/*.pem\", \"migrations/**\"]
  max-files: 3
checks:
  - name: unit tests
    run: cargo test --locked
  - name: ruff
    run: ruff check
    required: false
";

const INSTRUCTION: &str =
    "Add a /health endpoint to the payments service.\nReturn 200 with the build version.";

fn policy() -> Policy {
    Policy::from_yaml(POLICY, ".github/agent-gate.yml").unwrap_or_else(|e| panic!("{e}"))
}

fn file(policy: &Policy, path: &str) -> FileEntry {
    let decision = policy.scope.decide(path.as_bytes());
    FileEntry {
        path: path.into(),
        path_bytes: None,
        old_path: None,
        status: "modified".into(),
        added: Some(3),
        deleted: Some(1),
        binary: false,
        in_scope: decision.in_scope,
        decision,
        old_decision: None,
    }
}

/// A violation as the assessment writes it: the path and the decision with its rule.
fn out_of_scope(policy: &Policy, path: &str) -> Violation {
    let d = policy.scope.decide(path.as_bytes());
    assert!(!d.in_scope, "{path} should be out of scope");
    let (kind, rule) = match &d.reason {
        agent_gate::core::scope::Reason::Protected { rule } => {
            (ViolationKind::Protected, Some(rule.clone()))
        }
        agent_gate::core::scope::Reason::Denied { rule } => {
            (ViolationKind::OutOfScope, Some(rule.clone()))
        }
        _ => (ViolationKind::OutOfScope, None),
    };
    Violation {
        kind,
        path: Some(path.into()),
        rule,
        message: format!("{path}: {}", describe_decision(&d)),
    }
}

fn check(name: &str, required: bool, status: CheckStatus, output: &str) -> CheckEntry {
    CheckEntry {
        name: name.into(),
        required,
        status,
        detail: match status {
            CheckStatus::Failed => Some("exit code 101".into()),
            _ => None,
        },
        duration_ms: 1234,
        output_tail: output.into(),
        truncated_bytes: 0,
        github: None,
    }
}

fn base_report(policy: &Policy, paths: &[&str]) -> Report {
    let mut r = Report::new(Verdict::Passed);
    r.base = Some("main".into());
    r.policy = Some(".github/agent-gate.yml".into());
    r.head = Some("copilot/add-a-health-endpoint".into());
    r.head_sha = Some("0123456789abcdef0123456789abcdef01234567".into());
    r.task = Some(TaskInfo {
        id: "task-1".into(),
        key: "ag1-0011223344".into(),
        branch: Some("copilot/add-a-health-endpoint".into()),
        state: "completed".into(),
        ..TaskInfo::default()
    });
    r.files = paths.iter().map(|p| file(policy, p)).collect();
    r
}

/// 100 lines of cargo test output, coloured, with the failure at the end.
fn cargo_test_output() -> String {
    let mut out = String::new();
    for i in 0..90 {
        let _ = writeln!(out, "test services::case_{i:03} ... \u{1b}[32mok\u{1b}[0m");
    }
    out.push_str("test services::health::returns_version ... \u{1b}[31mFAILED\u{1b}[0m\n\n");
    out.push_str("failures:\n\n---- services::health::returns_version stdout ----\n");
    out.push_str(
        "thread 'services::health::returns_version' panicked at src/services/health.rs:14:9:\n",
    );
    out.push_str("assertion `left == right` failed\n  left: 500\n right: 200\n");
    out.push_str("\ntest result: FAILED. 90 passed; 1 failed\n");
    out
}

fn checks_failed_report(policy: &Policy) -> Report {
    let mut r = base_report(policy, &["src/services/health.rs", "tests/health.rs"]);
    r.checks = vec![
        check(
            "unit tests",
            true,
            CheckStatus::Failed,
            &cargo_test_output(),
        ),
        check("ruff", false, CheckStatus::Failed, "E501 line too long\n"),
        check("clippy", true, CheckStatus::Passed, "all good\n"),
    ];
    r.finish();
    r
}

fn scope_violation_report(policy: &Policy) -> Report {
    let mut r = base_report(
        policy,
        &[
            "src/services/health.rs",
            "migrations/0042_health.sql",
            "config/prod.pem",
            "docs/health.md",
        ],
    );
    r.violations = vec![
        out_of_scope(policy, "migrations/0042_health.sql"),
        out_of_scope(policy, "config/prod.pem"),
        out_of_scope(policy, "docs/health.md"),
        Violation {
            kind: ViolationKind::MaxFiles,
            path: None,
            rule: None,
            message: "4 files changed, more than scope.max-files: 3".into(),
        },
        Violation {
            kind: ViolationKind::BinaryFile,
            path: Some("src/services/logo.png".into()),
            rule: None,
            message: "src/services/logo.png: binary file (scope.binary-files: deny)".into(),
        },
    ];
    r.checks_skipped = Some("the change violates the scope (checks-on-violation: skip)".into());
    r.finish();
    r
}

#[test]
fn checks_failed_prompt() {
    let p = policy();
    let r = checks_failed_report(&p);
    assert_eq!(r.verdict, Verdict::ChecksFailed);
    assert!(is_repairable(&r));
    let prompt = repair_prompt(INSTRUCTION, &r, 0, 2).expect("repairable");
    assert!(
        prompt.contains("right: 200"),
        "the failing output's tail is carried"
    );
    assert!(
        !prompt.contains("case_000"),
        "only the last {TAIL_LINES} lines"
    );
    assert!(prompt.contains("case_089"));
    assert!(!prompt.contains('\u{1b}'), "colour codes are removed");
    assert!(
        !prompt.contains("E501"),
        "advisory checks are not asked for"
    );
    assert!(
        !prompt.contains("all good"),
        "passing checks are not listed"
    );
    insta::assert_snapshot!(prompt);
}

#[test]
fn scope_violation_prompt() {
    let p = policy();
    let r = scope_violation_report(&p);
    assert_eq!(r.verdict, Verdict::ScopeViolation);
    assert!(is_repairable(&r));
    let prompt = repair_prompt(INSTRUCTION, &r, 1, 2).expect("repairable");
    assert!(prompt.contains("migrations/0042_health.sql: denied by \"migrations/**\" (line 6)"));
    assert!(prompt.contains("config/prod.pem: denied by \"**/*.pem\" (line 6)"));
    assert!(prompt.contains("docs/health.md: no allow rule matches"));
    assert!(prompt.contains("more than scope.max-files: 3"));
    insta::assert_snapshot!(prompt);
}

#[test]
fn the_full_prompt_carries_the_scope_and_only_the_rounds_marker() {
    let p = policy();
    let mut r = checks_failed_report(&p);
    // Output that prints a marker of another key must not smuggle it into the prompt.
    r.checks[0].output_tail = format!("{}\nassertion failed\n", marker("someone-else"));
    let text = repair_prompt(INSTRUCTION, &r, 0, 1).unwrap();
    let key = round_key("ag1-0011223344", 1);
    let full = build_prompt(&text, &p, &p.scope, &key);
    assert_eq!(full.matches(MARKER_PREFIX).count(), 1, "{full}");
    assert_eq!(find_key(&full), Some("ag1-0011223344-r1"));
    assert!(full.contains("Paths you may change"));
    assert!(
        full.contains("someone-else"),
        "the text itself stays readable"
    );
}

#[test]
fn a_protected_path_is_never_sent_for_repair() {
    let p = policy();
    let mut r = scope_violation_report(&p);
    r.violations
        .push(out_of_scope(&p, ".github/workflows/ci.yml"));
    assert_eq!(r.violations.last().unwrap().kind, ViolationKind::Protected);
    r.finish();
    assert!(!is_repairable(&r));
    assert_eq!(repair_prompt(INSTRUCTION, &r, 0, 5), None);

    // Also when the checks failed too, and when the protected path is the old side of a
    // rename (the assessment reports that as a protected violation as well).
    let mut r = checks_failed_report(&p);
    r.violations
        .push(out_of_scope(&p, ".github/agent-gate.yml"));
    r.finish();
    assert_eq!(repair_prompt(INSTRUCTION, &r, 0, 5), None);
}

#[test]
fn other_verdicts_are_not_repaired() {
    let p = policy();
    for v in Verdict::ALL {
        if matches!(v, Verdict::ChecksFailed | Verdict::ScopeViolation) {
            continue;
        }
        let mut r = base_report(&p, &["src/services/health.rs"]);
        r.set_verdict(v);
        assert!(!is_repairable(&r), "{v}");
        assert_eq!(repair_prompt(INSTRUCTION, &r, 0, 3), None, "{v}");
    }
    // A failed check is not repaired when the run ended worse (timed out, cancelled…).
    let mut r = checks_failed_report(&p);
    r.set_verdict(Verdict::TimedOut);
    assert_eq!(repair_prompt(INSTRUCTION, &r, 0, 3), None);
}

#[test]
fn rounds_run_out() {
    let p = policy();
    let r = checks_failed_report(&p);
    assert!(repair_prompt(INSTRUCTION, &r, 0, 1).is_some());
    assert_eq!(repair_prompt(INSTRUCTION, &r, 1, 1), None);
    assert_eq!(repair_prompt(INSTRUCTION, &r, 3, 2), None);
    assert_eq!(
        repair_prompt(INSTRUCTION, &r, 0, 0),
        None,
        "repair-rounds: 0 (the default)"
    );
    let second = repair_prompt(INSTRUCTION, &r, 1, 2).unwrap();
    assert!(second.starts_with("Repair round 2 of 2."));
}

#[test]
fn checks_the_gate_could_not_run_are_not_repaired() {
    let p = policy();
    for status in [CheckStatus::Error, CheckStatus::Cancelled] {
        let mut r = checks_failed_report(&p);
        r.checks.push(check("lint", true, status, ""));
        r.finish();
        assert_eq!(r.verdict, Verdict::ChecksFailed);
        assert!(!is_repairable(&r), "{status:?}");
    }
    // A timed-out check is the agent's to fix (an endless loop, a slow test).
    let mut r = base_report(&p, &["src/services/health.rs"]);
    r.checks.push(check(
        "unit tests",
        true,
        CheckStatus::TimedOut,
        "test slow ... ",
    ));
    r.finish();
    let prompt = repair_prompt(INSTRUCTION, &r, 0, 1).unwrap();
    assert!(prompt.contains("- `unit tests`: timed-out"), "{prompt}");
    // A failing check that printed nothing.
    let mut r = base_report(&p, &["src/services/health.rs"]);
    r.checks
        .push(check("unit tests", true, CheckStatus::Failed, ""));
    r.finish();
    let prompt = repair_prompt(INSTRUCTION, &r, 0, 1).unwrap();
    assert!(prompt.contains("(it printed nothing)"), "{prompt}");
}

#[test]
fn tail_is_capped_by_bytes_at_a_line_and_char_boundary() {
    let line = "é".repeat(100); // 200 bytes
    let mut text = String::new();
    for i in 0..50 {
        let _ = writeln!(text, "{i:02} {line}");
    }
    let (t, cut) = tail(&text, TAIL_LINES, TAIL_BYTES);
    assert!(cut);
    assert!(t.len() <= TAIL_BYTES);
    assert!(
        t.starts_with(|c: char| c.is_ascii_digit()),
        "starts at a whole line"
    );
    assert!(t.ends_with(&line));
    let (t, cut) = tail("short\noutput\n\n", TAIL_LINES, TAIL_BYTES);
    assert_eq!((t.as_str(), cut), ("short\noutput", false));
    let (t, _) = tail("a\rprogress 50%\rprogress 100%\r\ndone\u{7}\n", 10, 100);
    assert_eq!(t, "a\nprogress 50%\nprogress 100%\ndone");
}

#[test]
fn fences_outlast_backticks_and_names_stay_on_one_line() {
    let p = policy();
    let mut r = base_report(&p, &["src/services/health.rs"]);
    r.checks.push(check(
        "unit tests",
        true,
        CheckStatus::Failed,
        "expected:\n```rust\nfn f() {}\n```\n",
    ));
    r.violations.push(out_of_scope(&p, "docs/evil\nname.md"));
    r.finish();
    let prompt = repair_prompt(INSTRUCTION, &r, 0, 1).unwrap();
    assert!(prompt.contains("````text\nexpected:"), "{prompt}");
    assert!(
        prompt.contains("- docs/evil\\nname.md: no allow rule matches"),
        "{prompt}"
    );
}

fn session(id: &str, prompt: &str, nano: f64) -> Session {
    Session {
        id: id.into(),
        state: TaskState::Completed,
        created_at: "2026-05-02T10:00:00Z".into(),
        name: None,
        task_id: None,
        updated_at: None,
        completed_at: None,
        prompt: Some(prompt.into()),
        head_ref: Some("copilot/x".into()),
        base_ref: Some("main".into()),
        model: None,
        usage: Some(Usage {
            kind: "ai_credits".into(),
            amount: nano,
        }),
        error: None,
    }
}

fn task(id: &str, sessions: Vec<Session>) -> Task {
    crate::support::completed_task(id, "2026-05-02T10:00:00Z", sessions)
}

#[test]
fn round_keys_and_the_round_in_flight() {
    assert_eq!(round_key("k", 0), "k");
    assert_eq!(round_key("k", 1), "k-r1");
    assert_eq!(round_key("k", 12), "k-r12");
    let p = |k: &str| format!("do it\n{}\n", marker(k));
    let t = task(
        "t",
        vec![
            session("s0", &p("k"), 2e9),
            session("s1", &p("k-r1"), 1e9),
            session("s2", &p("k-r2"), 0.5e9),
            // Other keys that merely start like ours are not our rounds.
            session("x", &p("k-r"), 9e9),
            session("y", &p("k-rx"), 9e9),
            session("z", &p("kk-r9"), 9e9),
        ],
    );
    assert_eq!(latest_round(&t, "k"), Some(2));
    assert_eq!(latest_round(&t, "other"), None);
    assert_eq!(
        latest_round(&task("t", vec![session("s0", &p("k"), 0.0)]), "k"),
        Some(0)
    );
    assert_eq!(round_cost(&t, "k", 0).ai_credits_nano, 2_000_000_000);
    assert_eq!(round_cost(&t, "k", 1).ai_credits_nano, 1_000_000_000);
    assert_eq!(round_cost(&t, "k", 2).ai_credits_nano, 500_000_000);
    assert_eq!(round_cost(&t, "k", 3).ai_credits_nano, 0);
}

#[test]
fn cost_over_rounds_counts_each_task_once() {
    let p = |k: &str| marker(k);
    let after_round_0 = task("t", vec![session("s0", &p("k"), 2e9)]);
    let after_round_1 = task(
        "t",
        vec![session("s0", &p("k"), 2e9), session("s1", &p("k-r1"), 1e9)],
    );
    let separate = task("u", vec![session("s2", &p("k-r2"), 0.25e9)]);
    let cost = total_cost(&[after_round_0, after_round_1, separate]);
    assert_eq!(cost.ai_credits_nano, 3_250_000_000);
}

#[test]
fn follow_up_request_targets_the_agents_branch() {
    let req = follow_up_request("fix it", "copilot/add-a-health-endpoint", "main");
    assert_eq!(
        serde_json::to_value(&req).unwrap(),
        serde_json::json!({
            "prompt": "fix it",
            "create_pull_request": true,
            "base_ref": "main",
            "head_ref": "copilot/add-a-health-endpoint",
        })
    );
}

#[test]
fn round_record_from_a_report() {
    let p = policy();
    let r = scope_violation_report(&p);
    let t = task(
        "task-1",
        vec![session("s1", &marker("ag1-0011223344-r1"), 1.5e9)],
    );
    let rec = RoundRecord::from_report(
        1,
        "ag1-0011223344",
        "abc123",
        "task-1",
        &r,
        round_cost(&t, "ag1-0011223344", 1),
    );
    assert_eq!(rec.key, "ag1-0011223344-r1");
    assert_eq!(rec.verdict, Verdict::ScopeViolation);
    assert_eq!(rec.files.len(), 4);
    assert_eq!(rec.violations.len(), 5);
    assert!(rec.checks_failed.is_empty());
    let v = serde_json::to_value(&rec).unwrap();
    assert_eq!(v["verdict"], "scope-violation");
    assert_eq!(v["ai_credits"], 1.5);
    assert_eq!(v["head_sha"], "0123456789abcdef0123456789abcdef01234567");
    let r = checks_failed_report(&p);
    let rec = RoundRecord::from_report(0, "k", "h", "t", &r, Cost::default());
    assert_eq!(rec.key, "k");
    assert_eq!(rec.checks_failed, vec!["unit tests".to_string()]);
}

const ESC: char = '\u{1b}';

fn output() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just(MARKER_PREFIX.to_string()),
            Just("[agent-gate\u{7} task-key: ".to_string()),
            Just("\n".to_string()),
            Just("\r".to_string()),
            Just("\u{1b}[31m".to_string()),
            Just("\u{1b}]0;title\u{7}".to_string()),
            Just("é✓".to_string()),
            "(?s).{0,40}",
        ],
        0..120,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn tail_never_exceeds_its_caps(text in output(), lines in 1usize..80, bytes in 1usize..4000) {
        let (t, _) = tail(&text, lines, bytes);
        prop_assert!(t.len() <= bytes);
        prop_assert!(t.lines().count() <= lines);
        prop_assert!(!t.contains(ESC));
        prop_assert!(!t.contains(MARKER_PREFIX));
    }
}

// ---- one repair round against the simulator ----------------------------------------------

fn git_show(repo: &std::path::Path, spec: &str) -> String {
    let out = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(repo)
        .args(["show", spec])
        .output()
        .unwrap();
    assert!(out.status.success(), "git show {spec}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

async fn wait(client: &agent_gate::adapters::github::Client, id: &str) -> Task {
    for _ in 0..500 {
        let t = client.get_task(id).await.unwrap();
        if t.state.is_final() {
            return t;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("task {id} did not finish");
}

#[tokio::test]
async fn a_repair_round_on_the_simulator_commits_on_the_same_branch() {
    use agent_gate::adapters::github::{ClientConfig, create_task_request};
    let scenario = agent_gate::sim::Scenario::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/scenarios/repair-fixes.yml"
    )))
    .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let sim = agent_gate::sim::start(
        agent_gate::sim::SimConfig {
            repositories: Vec::new(),
            repo: dir.path().join("remote.git"),
            scenario: Some(scenario),
            time_scale: 1000.0,
        },
        ([127, 0, 0, 1], 0).into(),
    )
    .await
    .unwrap();
    agent_gate::adapters::github::install_crypto_provider();
    let client = agent_gate::adapters::github::Client::new(
        ClientConfig::new("ghp_repairtest", "octo-org", "payments").with_api_url(sim.url()),
    )
    .unwrap();
    let p = policy();
    let key = "ag1-repairtest";

    // Round 0: the agent breaks the value.
    let first = build_prompt(INSTRUCTION, &p, &p.scope, key);
    let created = client
        .create_task(&create_task_request(first, Some("main".into())))
        .await
        .unwrap();
    let t0 = wait(&client, &created.id).await;
    let branch = t0.sessions.as_ref().unwrap()[0].head_ref.clone().unwrap();
    assert_eq!(
        git_show(sim.repo_dir(), &format!("{branch}:src/value.txt")),
        "broken\n"
    );

    // The gate's findings, as `run` would report them.
    let mut report = base_report(&p, &["src/value.txt"]);
    report.head = Some(branch.clone());
    report.task.as_mut().unwrap().branch = Some(branch.clone());
    report.checks.push(check(
        "value is ok",
        true,
        CheckStatus::Failed,
        "value: broken\n",
    ));
    report.finish();

    // Round 1: the follow-up on the agent's branch.
    let text = repair_prompt(INSTRUCTION, &report, 0, 1).unwrap();
    let second = build_prompt(&text, &p, &p.scope, &round_key(key, 1));
    let followed = client
        .create_task(&follow_up_request(second, &branch, "main"))
        .await
        .unwrap();
    assert_eq!(
        followed.id, t0.id,
        "GitHub adds the follow-up to the same task"
    );
    let t1 = wait(&client, &t0.id).await;
    assert_eq!(
        git_show(sim.repo_dir(), &format!("{branch}:src/value.txt")),
        "ok\n"
    );
    assert_eq!(
        sim.pull_requests().len(),
        1,
        "the pull request moved, no new one"
    );

    // The repair prompt carried the failing output; rounds and costs are told apart.
    let posts: Vec<_> = sim
        .request_log()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 2);
    assert!(posts[1].body.contains("value: broken"), "{}", posts[1].body);
    assert!(posts[1].body.contains("\"head_ref\""));
    assert_eq!(latest_round(&t0, key), Some(0));
    assert_eq!(latest_round(&t1, key), Some(1));
    assert_eq!(round_cost(&t1, key, 0).ai_credits_nano, 1_500_000_000);
    assert_eq!(round_cost(&t1, key, 1).ai_credits_nano, 500_000_000);
    assert_eq!(total_cost(&[t0, t1]).ai_credits_nano, 2_000_000_000);
}

#[test]
fn the_example_scenarios_load() {
    for name in ["repair-fixes", "repair-never-fixes", "repair-protected"] {
        let path = format!(
            "{}/examples/scenarios/{name}.yml",
            env!("CARGO_MANIFEST_DIR")
        );
        agent_gate::sim::Scenario::load(std::path::Path::new(&path))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
