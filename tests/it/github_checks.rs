//! `github-checks:`, end to end on the simulator: `agent-gate run` awaits the repository's own
//! CI (check runs and commit statuses on the agent's head, the scenario's `ci:`) within the
//! run's deadline — checks that pass after a few polls, one that fails (its URL and summary in
//! the report), runs held at "Approve and run workflows" (explained with the cloud-agent
//! configuration; `on-held` decides fail or wait; the gate never approves), the deadline passing
//! while checks are queued (`timed-out`), a name that never appears, `required` read from the
//! branch's rules and protection, a missing permission, and what `check` does without GitHub.

use std::time::Duration;

use agent_gate::core::report::{AwaitedCi, CheckStatus, Report, Verdict};
use agent_gate::core::summary::{SummaryContext, render};
use agent_gate::sim::{CiCheck, CiScript, CiStatus, Endpoint, Fault, FaultAction, Scenario, When};

use crate::support::{Gate, World};

const REPOSITORY: &str = "octo/demo";
const TOKEN: &str = "ghp_github_checks_user";

/// The simulator runs 100× faster than real time: a scripted `300s` is 3 s.
const SCALE: f64 = 100.0;

fn policy(timeout: &str, check: &str) -> String {
    format!(
        "\
version: 1
repositories: [octo/demo]
agent:
  timeout: {timeout}
  poll: {{ initial: 1s, max: 1s }}
scope:
  allow: [agent-gate-sim.txt]
checks:
{check}"
    )
}

fn check_run(name: &str, workflow: Option<&str>, secs: u64, conclusion: Option<&str>) -> CiCheck {
    CiCheck {
        name: name.to_string(),
        workflow: workflow.map(str::to_string),
        queued: Duration::from_secs(100),
        duration: Duration::from_secs(secs),
        conclusion: conclusion.map(str::to_string),
        title: None,
        summary: None,
    }
}

async fn gate(policy: &str, ci: CiScript, faults: Vec<Fault>) -> World {
    Gate::new()
        .policy(policy)
        .scenario(Scenario {
            ci,
            faults,
            ..Scenario::default()
        })
        .time_scale(SCALE)
        .repository(REPOSITORY)
        .token(TOKEN)
        .start()
        .await
}

async fn run(gate: &World) -> (Report, String) {
    gate.run(gate.opts("update the generated file")).await
}

fn awaited(report: &Report, check: &str) -> AwaitedCi {
    let entry = report
        .checks
        .iter()
        .find(|c| c.name == check)
        .unwrap_or_else(|| panic!("no check {check} in {:#?}", report.checks));
    entry
        .github
        .clone()
        .unwrap_or_else(|| panic!("{check} awaited nothing: {entry:#?}"))
}

fn no_approval_requests(gate: &World) {
    let log = gate.sim.request_log();
    assert!(
        log.iter()
            .all(|r| r.method == "GET" || !r.path.contains("/actions/runs")),
        "the gate never approves a run: {:?}",
        log.iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn checks_that_succeed_after_a_few_polls_pass_the_gate_with_state_url_and_time() {
    let ci = CiScript {
        require_approval: false,
        checks: vec![
            check_run("test (3.12)", Some("CI"), 300, Some("success")),
            check_run("lint", None, 150, Some("success")),
        ],
        statuses: vec![CiStatus {
            context: "ci/legacy".to_string(),
            after: Duration::from_secs(50),
            duration: Duration::from_secs(200),
            state: Some("success".to_string()),
            description: Some("Build #7 passed".to_string()),
        }],
        ..CiScript::default()
    };
    let check = "  - name: repository CI\n    github-checks: [\"test (3.12)\", lint, ci/legacy]\n";
    let gate = gate(&policy("5m", check), ci, Vec::new()).await;
    let (report, progress) = run(&gate).await;

    assert_eq!(report.verdict, Verdict::Passed, "{}", report.render_text());
    let ci = awaited(&report, "repository CI");
    assert!(
        ci.polls >= 3,
        "it waited across several reads: {}",
        ci.polls
    );
    assert_eq!(ci.sha, report.head_sha.clone().unwrap());
    let names: Vec<&str> = ci.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["test (3.12)", "lint", "ci/legacy"]);
    let tests = &ci.checks[0];
    assert_eq!(
        (
            tests.kind.as_str(),
            tests.state.as_str(),
            tests.conclusion.as_deref()
        ),
        ("check-run", "completed", Some("success"))
    );
    assert!(
        tests
            .url
            .as_deref()
            .is_some_and(|u| u.contains("/octo/demo/runs/")),
        "{tests:?}"
    );
    assert_eq!(
        tests.duration_ms,
        Some(300_000),
        "GitHub's own timestamps, simulated time"
    );
    let legacy = &ci.checks[2];
    assert_eq!(
        (legacy.kind.as_str(), legacy.state.as_str()),
        ("status", "success")
    );
    assert_eq!(legacy.summary.as_deref(), Some("Build #7 passed"));

    // What a reviewer reads: the text report, the step summary and the `checks` output.
    let text = report.render_text();
    assert!(
        text.contains("check-run test (3.12): completed (success) [300.0s] http"),
        "{text}"
    );
    let summary = render(&report, &SummaryContext::default());
    assert!(
        summary.contains("| GitHub check | Kind | State | Took |"),
        "{summary}"
    );
    assert!(
        summary.contains("| check-run | completed &#40;success&#41; | 5m 00s |"),
        "{summary}"
    );
    assert!(
        summary.contains("/ci/legacy) | status | success | 3m 20s |"),
        "{summary}"
    );
    let outputs =
        agent_gate::flow::publish::outputs::values(&report, std::path::Path::new("audit.jsonl"));
    let checks = &outputs.iter().find(|(n, _)| *n == "checks").unwrap().1;
    let json: serde_json::Value = serde_json::from_str(checks).unwrap();
    assert_eq!(json[0]["awaited"][0]["name"], "test (3.12)");
    assert_eq!(json[0]["awaited"][0]["conclusion"], "success");
    assert!(
        json[0]["awaited"][0]["url"]
            .as_str()
            .unwrap()
            .starts_with("http")
    );
    assert!(
        progress.contains("awaiting \"test (3.12)\", \"lint\", \"ci/legacy\""),
        "{progress}"
    );
    no_approval_requests(&gate);
}

#[tokio::test]
async fn a_failing_check_run_fails_the_gate_with_its_url_and_summary() {
    let mut lint = check_run("lint", None, 100, Some("failure"));
    lint.title = Some("2 problems".to_string());
    lint.summary = Some("src/app.py:3: F401 `os` imported but unused".to_string());
    let ci = CiScript {
        require_approval: false,
        checks: vec![check_run("test", Some("CI"), 3000, Some("success")), lint],
        ..CiScript::default()
    };
    let check = "  - name: ci\n    github-checks: [test, lint]\n";
    let gate = gate(&policy("5m", check), ci, Vec::new()).await;
    let (report, _) = run(&gate).await;

    assert_eq!(
        report.verdict,
        Verdict::ChecksFailed,
        "{}",
        report.render_text()
    );
    let entry = report.checks.iter().find(|c| c.name == "ci").unwrap();
    assert_eq!(entry.status, CheckStatus::Failed);
    let detail = entry.detail.clone().unwrap();
    assert!(
        detail.starts_with("\"lint\" completed: failure"),
        "{detail}"
    );
    assert!(
        detail.contains("/octo/demo/runs/"),
        "the check run's URL: {detail}"
    );
    assert!(
        entry.output_tail.contains("F401 `os` imported but unused"),
        "{entry:?}"
    );
    // It failed fast: the slow `test` was still running.
    let ci = awaited(&report, "ci");
    assert_ne!(ci.checks[0].state, "completed", "{ci:?}");
    let summary = render(&report, &SummaryContext::default());
    assert!(summary.contains("Summary of lint"), "{summary}");
}

fn held_ci(approved_after: Option<Duration>) -> CiScript {
    CiScript {
        require_approval: true,
        approved_after,
        checks: vec![check_run("test", Some("CI"), 100, Some("success"))],
        ..CiScript::default()
    }
}

#[tokio::test]
async fn runs_held_for_approval_fail_by_default_naming_who_must_approve_and_where() {
    let check = "  - name: ci\n    github-checks: [test]\n";
    let gate = gate(&policy("5m", check), held_ci(None), Vec::new()).await;
    let (report, progress) = run(&gate).await;

    assert_eq!(
        report.verdict,
        Verdict::ChecksFailed,
        "{}",
        report.render_text()
    );
    let entry = report.checks.iter().find(|c| c.name == "ci").unwrap();
    let detail = entry.detail.clone().unwrap();
    assert!(
        detail.starts_with("held for approval: the workflow run \"CI\""),
        "{detail}"
    );
    assert!(
        detail.contains("on-held: wait"),
        "says how to wait instead: {detail}"
    );
    let ci = awaited(&report, "ci");
    assert_eq!(ci.held.len(), 1);
    assert!(
        ci.held[0].url.contains("/octo/demo/actions/runs/"),
        "{ci:?}"
    );
    let approval = ci.approval.clone().unwrap();
    let pr = report.task.as_ref().and_then(|t| t.pr_number).unwrap();
    assert!(
        approval.contains(&format!("on pull request #{pr}")),
        "{approval}"
    );
    assert!(
        approval.contains("\"Approve and run workflows\""),
        "{approval}"
    );
    assert!(
        approval.contains("`require_actions_workflow_approval: true`"),
        "{approval}"
    );
    assert!(approval.contains("never approves"), "{approval}");
    assert!(progress.contains("held for approval"), "{progress}");
    assert_eq!(
        gate.sim
            .count("GET", "/repos/*/*/copilot/cloud-agent/configuration"),
        1,
        "the configuration explains the hold"
    );
    // A held run is nothing the agent can fix: no repair round would be sent.
    assert!(!agent_gate::flow::repair::is_repairable(&report));
    let summary = render(&report, &SummaryContext::default());
    assert!(summary.contains("⏸️ Held for approval: CI"), "{summary}");
    no_approval_requests(&gate);
}

#[tokio::test]
async fn with_on_held_wait_the_gate_waits_for_a_person_to_approve_then_passes() {
    let check = "  - name: ci\n    github-checks: [test]\n    on-held: wait\n";
    let ci = held_ci(Some(Duration::from_mins(5)));
    let gate = gate(&policy("5m", check), ci, Vec::new()).await;
    let (report, progress) = run(&gate).await;

    assert_eq!(report.verdict, Verdict::Passed, "{}", report.render_text());
    let ci = awaited(&report, "ci");
    assert!(ci.held.is_empty(), "released: {ci:?}");
    assert!(
        ci.notes
            .iter()
            .any(|n| n.starts_with("workflow runs were held for approval for")),
        "{ci:?}"
    );
    assert!(progress.contains("held for approval"), "{progress}");
    no_approval_requests(&gate);
}

#[tokio::test]
async fn a_person_approving_through_github_releases_a_waiting_gate() {
    let check = "  - name: ci\n    github-checks: [test]\n    on-held: wait\n";
    let gate = gate(&policy("5m", check), held_ci(None), Vec::new()).await;
    let opts = gate.opts("update the generated file");
    let person = async {
        // Approve once the gate has seen the hold (it read the configuration to explain it).
        while gate
            .sim
            .count("GET", "/repos/*/*/copilot/cloud-agent/configuration")
            == 0
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        gate.sim.approve_workflow_runs("octo", "demo")
    };
    let ((report, _), approved) = tokio::join!(gate.run(opts), person);
    assert_eq!(approved, 1);
    assert_eq!(report.verdict, Verdict::Passed, "{}", report.render_text());
}

#[tokio::test]
async fn the_deadline_passing_while_checks_are_queued_is_timed_out() {
    let ci = CiScript {
        require_approval: false,
        checks: vec![CiCheck {
            queued: Duration::from_secs(100_000),
            ..check_run("test", Some("CI"), 100, Some("success"))
        }],
        ..CiScript::default()
    };
    let check = "  - name: ci\n    github-checks: [test]\n";
    let gate = gate(&policy("4s", check), ci, Vec::new()).await;
    let (report, _) = run(&gate).await;

    assert_eq!(
        report.verdict,
        Verdict::TimedOut,
        "{}",
        report.render_text()
    );
    let entry = report.checks.iter().find(|c| c.name == "ci").unwrap();
    assert_eq!(entry.status, CheckStatus::TimedOut);
    let detail = entry.detail.clone().unwrap();
    assert!(
        detail.starts_with("the run's deadline passed before the repository's checks finished: still waiting: \"test\" queued"),
        "{detail}"
    );
    // Nothing changed after the first read: every later read was a conditional request
    // answered 304, which costs no rate limit.
    let reads: Vec<Option<u16>> = gate
        .sim
        .request_log()
        .iter()
        .filter(|r| r.path.ends_with("/check-runs"))
        .map(|r| r.status)
        .collect();
    assert!(reads.len() >= 3, "{reads:?}");
    assert_eq!(reads[0], Some(200));
    assert!(reads[1..].iter().all(|s| *s == Some(304)), "{reads:?}");
}

#[tokio::test]
async fn a_check_name_that_never_appears_is_a_clear_message_after_the_deadline_not_a_pass() {
    let ci = CiScript {
        require_approval: false,
        checks: vec![check_run("test", Some("CI"), 100, Some("success"))],
        ..CiScript::default()
    };
    let check = "  - name: ci\n    github-checks: [test, \"tset\"]\n";
    let gate = gate(&policy("4s", check), ci, Vec::new()).await;
    let (report, _) = run(&gate).await;

    assert_eq!(
        report.verdict,
        Verdict::TimedOut,
        "{}",
        report.render_text()
    );
    let detail = report.checks[0].detail.clone().unwrap();
    assert!(detail.contains("\"tset\" never appeared on "), "{detail}");
    assert!(
        detail.contains("is the name spelled as GitHub shows it"),
        "{detail}"
    );
    let ci = awaited(&report, "ci");
    assert_eq!(ci.checks[1].kind, "missing");
    assert_eq!(ci.checks[0].conclusion.as_deref(), Some("success"));
}

#[tokio::test]
async fn required_is_read_from_the_branch_rules_and_protection_without_the_gates_own_status() {
    let ci = CiScript {
        require_approval: false,
        required: vec!["test".to_string(), "agent-gate".to_string()],
        protection: Some(vec!["legacy".to_string(), "test".to_string()]),
        checks: vec![check_run("test", Some("CI"), 100, Some("success"))],
        statuses: vec![CiStatus {
            context: "legacy".to_string(),
            after: Duration::ZERO,
            duration: Duration::from_secs(100),
            state: Some("success".to_string()),
            description: None,
        }],
        ..CiScript::default()
    };
    let check = "  - name: required checks\n    github-checks: required\n";
    let gate = gate(&policy("5m", check), ci, Vec::new()).await;
    let (report, _) = run(&gate).await;

    assert_eq!(report.verdict, Verdict::Passed, "{}", report.render_text());
    let ci = awaited(&report, "required checks");
    let names: Vec<&str> = ci.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["test", "legacy"], "{ci:?}");
    assert!(
        ci.source
            .contains(&"rules for the branch `main`: 2".to_string()),
        "{ci:?}"
    );
    assert!(
        ci.source
            .contains(&"branch protection of `main`: 2".to_string()),
        "{ci:?}"
    );
    assert!(
        ci.source
            .iter()
            .any(|s| s.contains("`agent-gate` (agent-gate's own status) is not awaited")),
        "{ci:?}"
    );
}

#[tokio::test]
async fn required_with_no_required_checks_is_a_check_error_not_a_pass() {
    let ci = CiScript {
        require_approval: false,
        protection_forbidden: true,
        ..CiScript::default()
    };
    let check = "  - name: required checks\n    github-checks: required\n";
    let gate = gate(&policy("5m", check), ci, Vec::new()).await;
    let (report, _) = run(&gate).await;

    assert_eq!(
        report.verdict,
        Verdict::CheckError,
        "{}",
        report.render_text()
    );
    let detail = report.checks[0].detail.clone().unwrap();
    assert!(
        detail.contains("the base branch `main` has no required status checks"),
        "{detail}"
    );
    assert!(
        detail.contains("administration: read"),
        "names the permission protection needs: {detail}"
    );
}

#[tokio::test]
async fn a_token_without_checks_read_is_a_clear_error_naming_the_permission() {
    let ci = CiScript {
        require_approval: false,
        checks: vec![check_run("test", Some("CI"), 100, Some("success"))],
        ..CiScript::default()
    };
    let forbidden = Fault {
        endpoint: Endpoint::ListCheckRuns,
        action: FaultAction::Status {
            status: 403,
            message: Some("Resource not accessible by integration".to_string()),
        },
        nth: 1,
        count: u32::MAX,
        when: When::Before,
        delay: None,
        line: 0,
    };
    let check = "  - name: ci\n    github-checks: [test]\n";
    let gate = gate(&policy("5m", check), ci, vec![forbidden]).await;
    let (report, _) = run(&gate).await;

    assert_eq!(
        report.verdict,
        Verdict::CheckError,
        "{}",
        report.render_text()
    );
    let detail = report.checks[0].detail.clone().unwrap();
    assert!(detail.starts_with("cannot read check runs: "), "{detail}");
    assert!(
        detail.contains("the token needs `checks: read`"),
        "{detail}"
    );
}

fn policy_error(checks: &str) -> String {
    let text = format!("version: 1\nchecks:\n{checks}");
    match agent_gate::core::policy::Policy::from_yaml(&text, ".github/agent-gate.yml") {
        Ok(p) => panic!("accepted: {:?}", p.checks),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_policy_says_what_is_wrong_with_a_github_checks_entry() {
    let both = policy_error("  - name: ci\n    run: make test\n    github-checks: [test]\n");
    assert!(
        both.contains(
            "one of `run` (a command) or `github-checks` (the repository's own checks), not both"
        ),
        "{both}"
    );
    let neither = policy_error("  - name: ci\n    timeout: 5m\n");
    assert!(
        neither.contains("`run:` (a command) or `github-checks:`"),
        "{neither}"
    );
    let word = policy_error("  - name: ci\n    github-checks: all\n");
    assert!(
        word.contains("`required` or a list of check names"),
        "{word}"
    );
    let empty = policy_error("  - name: ci\n    github-checks: []\n");
    assert!(
        empty.contains("`required` or a list of check names"),
        "{empty}"
    );
    let image = policy_error("  - name: ci\n    github-checks: [test]\n    image: python:3.12\n");
    assert!(
        image.contains("`run:` instead of `github-checks:`"),
        "{image}"
    );
    let held = policy_error("  - name: ci\n    run: make\n    on-held: wait\n");
    assert!(
        held.contains("on-held applies to a check that awaits GitHub's checks"),
        "{held}"
    );
    let value = policy_error("  - name: ci\n    github-checks: [test]\n    on-held: approve\n");
    assert!(value.contains("approve"), "{value}");

    let ok = agent_gate::core::policy::Policy::from_yaml(
        "version: 1\nchecks:\n  - name: ci\n    github-checks: required\n    on-held: wait\n    timeout: 30m\n    when: [\"src/**\"]\n",
        ".github/agent-gate.yml",
    )
    .unwrap();
    let github = ok.checks[0].github.clone().unwrap();
    assert_eq!(
        github.awaited,
        agent_gate::core::policy::AwaitedChecks::Required
    );
    assert_eq!(github.on_held, agent_gate::core::policy::OnHeld::Wait);
    assert_eq!(github.timeout, Some(Duration::from_mins(30)));
    let described = agent_gate::core::policy::describe(&ok);
    assert!(
        described.contains("await: the base branch's required status checks"),
        "{described}"
    );
}

#[tokio::test]
async fn check_without_github_reports_a_github_checks_entry_as_skipped_and_says_why() {
    use agent_gate::adapters::shutdown::Shutdown;
    use agent_gate::flow::{CheckOptions, check};

    let work = crate::support::TestRepo::new();
    work.write(
        ".github/agent-gate.yml",
        "version: 1\nchecks:\n  - name: ci\n    github-checks: [test]\n  - name: unit\n    run: \"true\"\n",
    );
    work.commit("policy");
    work.branch("change");
    work.write("src/a.txt", "a\n");
    work.commit("change");
    let report = check(
        CheckOptions {
            repo: work.path().to_path_buf(),
            base: "main".to_string(),
            head: "change".to_string(),
            policy_path: ".github/agent-gate.yml".to_string(),
            scope: agent_gate::core::scope::ScopeInput::default(),
            jobs: None,
        },
        Shutdown::never(),
    )
    .await;
    assert_eq!(report.verdict, Verdict::Passed, "{}", report.render_text());
    let ci = report.checks.iter().find(|c| c.name == "ci").unwrap();
    assert_eq!(ci.status, CheckStatus::Skipped);
    assert!(
        ci.detail
            .as_deref()
            .unwrap()
            .contains("only `agent-gate run` reads them from GitHub"),
        "{ci:?}"
    );
    assert_eq!(
        report
            .checks
            .iter()
            .find(|c| c.name == "unit")
            .unwrap()
            .status,
        CheckStatus::Passed
    );
}

/// The shipped example: `examples/policies/repository-ci.yml` on the simulator playing
/// `examples/scenarios/repository-ci.yml` (required checks from the branch's rules, the tests
/// held for approval until a person approves them) passes after the approval, as the example
/// workflow's comments say.
#[tokio::test]
async fn the_shipped_repository_ci_example_waits_for_the_approval_and_passes() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let policy = std::fs::read_to_string(root.join("examples/policies/repository-ci.yml")).unwrap();
    // Polled every second (the default starts at 5 s) so that the test sees the hold.
    let policy = policy.replace(
        "  timeout: 90m\n",
        "  timeout: 90m\n  poll: { initial: 1s, max: 1s }\n",
    );
    assert!(
        policy.contains("poll:"),
        "the example still sets agent.timeout: 90m"
    );
    let scenario = Scenario::load(&root.join("examples/scenarios/repository-ci.yml")).unwrap();
    let gate = Gate::new()
        .policy(&policy)
        .file("src/app.txt", "app\n")
        .scenario(scenario)
        .time_scale(60.0)
        .repository(REPOSITORY)
        .token(TOKEN)
        .start()
        .await;
    let (report, progress) = run(&gate).await;
    assert_eq!(
        report.verdict,
        Verdict::Passed,
        "{}\n{progress}",
        report.render_text()
    );
    let ci = awaited(&report, "repository CI");
    let names: Vec<&str> = ci.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["test (3.12)", "lint"]);
    assert!(progress.contains("held for approval"), "{progress}");
    assert!(
        ci.notes
            .iter()
            .any(|n| n.contains("then approved by a person")),
        "{ci:?}"
    );
    no_approval_requests(&gate);
}

/// The binary, as a workflow step runs it: a held run fails the step with exit 10; the JSON
/// report, the `check` line of the audit trail and the exit code all carry the hold.
#[tokio::test]
async fn the_binary_reports_a_held_run_in_its_json_report_and_audit_trail() {
    let check = "  - name: ci\n    github-checks: [test]\n";
    let gate = gate(&policy("5m", check), held_ci(None), Vec::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let out = tokio::time::timeout(
        Duration::from_mins(1),
        gate.cli_run("update the generated file")
            .args(["--format", "json"])
            .arg("--audit-file")
            .arg(&audit)
            .run_async(),
    )
    .await
    .expect("the gate ends");
    let stdout = out.stdout();
    assert_eq!(out.code(), Some(10), "{stdout}\n{}", out.stderr());
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["verdict"], "checks-failed");
    let held = &json["checks"][0]["github"]["held"][0];
    assert_eq!(held["name"], "CI");
    let trail = std::fs::read_to_string(&audit).unwrap();
    let event: serde_json::Value = trail
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["event"] == "check")
        .expect("a check event");
    assert_eq!(event["github"]["held"][0]["url"], held["url"]);
    assert!(
        event["github"]["approval"]
            .as_str()
            .unwrap()
            .contains("Approve and run workflows")
    );
}
