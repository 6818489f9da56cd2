//! `agent-gate run` end to end against the in-process simulator (scaled time): one test per
//! verdict, each asserting the verdict, the exit code and the facts behind them; re-runs
//! attach to their task; the policy comes from the base; dry runs send nothing; signals
//! stop the binary with exit 130 and leave no check process behind.

use std::time::Duration;

use agent_gate::adapters::shutdown::Shutdown;
use agent_gate::core::prompt::KeyInputs;
use agent_gate::core::report::{CheckStatus, Report, Verdict, ViolationKind};
use agent_gate::flow::run;
use agent_gate::sim::{
    Endpoint, Fault, FaultAction, FileOp, FinalState, Scenario, TaskScript, When,
};

use crate::support::{Gate, SHELL_LIB as LIB, SHELL_POLICY as POLICY, SHELL_TESTS as TESTS, World};

const REPOSITORY: &str = "octo/demo";
const TOKEN: &str = "ghp_test_user_token";

const LIB_BROKEN: &str = "add() { echo $(($1 - $2)); }\n";

/// A workspace clone (`work`) of a bare repository the simulator serves, holding a small
/// project with a test suite and `policy` committed on `main`.
async fn gate(policy: &str, tasks: Vec<TaskScript>) -> World {
    Gate::new()
        .shell_project()
        .policy(policy)
        .tasks(tasks)
        .repository(REPOSITORY)
        .token(TOKEN)
        .start()
        .await
}

/// A scripted agent for prompts containing `matches`.
fn agent(matches: &str, files: Vec<FileOp>, final_state: FinalState) -> TaskScript {
    TaskScript {
        matches: Some(matches.to_string()),
        files: Some(files),
        final_state,
        ..TaskScript::default()
    }
}

fn write(path: &str, content: &str) -> FileOp {
    FileOp::Write {
        path: path.to_string(),
        content: content.as_bytes().to_vec(),
    }
}

fn task(report: &Report) -> &agent_gate::core::report::TaskInfo {
    report.task.as_ref().expect("the report names the task")
}

fn assert_verdict(report: &Report, verdict: Verdict, code: u8) {
    assert_eq!(report.verdict, verdict, "report:\n{}", report.render_text());
    assert_eq!(report.exit_code, code);
}

fn changed(report: &Report) -> Vec<&str> {
    report.files.iter().map(|f| f.path.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_scope_change_that_passes_its_tests_is_passed() {
    let g = gate(
        POLICY,
        vec![agent(
            "Add subtraction",
            vec![
                write("src/sub.sh", "sub() { echo $(($1 - $2)); }\n"),
                write(
                    "tests/run.sh",
                    &format!("{TESTS}. ./src/sub.sh\n[ \"$(sub 5 3)\" = 2 ] || exit 1\n"),
                ),
            ],
            FinalState::Completed,
        )],
    )
    .await;
    let (report, progress) = g.run(g.opts("Add subtraction to the library")).await;
    assert_verdict(&report, Verdict::Passed, 0);
    assert_eq!(changed(&report), ["src/sub.sh", "tests/run.sh"]);
    assert!(report.files.iter().all(|f| f.in_scope));
    assert_eq!(report.checks.len(), 1);
    assert_eq!(report.checks[0].status, CheckStatus::Passed);
    let t = task(&report);
    assert!(!t.attached);
    assert_eq!(t.state, "completed");
    assert_eq!(t.pr_number, Some(1));
    assert!((t.ai_credits - 1.0).abs() < 1e-9, "cost {}", t.ai_credits);
    // The task's own timestamps are kept, so the summary's times are GitHub's, not the
    // polls'; and the summary shows the instruction itself.
    assert!(t.created_at.is_some() && t.finished_at.is_some(), "{t:?}");
    assert!(t.timeline.iter().all(|e| e.task_at.is_some()), "{t:?}");
    assert_eq!(
        t.instruction.as_deref(),
        Some("Add subtraction to the library")
    );
    let summary = agent_gate::core::summary::render(
        &report,
        &agent_gate::core::summary::SummaryContext::default(),
    );
    assert!(summary.contains("(the task's own timestamps)"), "{summary}");
    assert!(
        summary.contains("Add subtraction to the library"),
        "{summary}"
    );
    assert!(
        t.branch
            .as_deref()
            .is_some_and(|b| b.starts_with("copilot/"))
    );
    assert_eq!(g.creates(), 1);
    // The prompt carried the scope preamble and the key marker.
    let created = g
        .sim
        .request_log()
        .into_iter()
        .find(|r| r.method == "POST")
        .expect("a create request");
    let body = created.body;
    assert!(body.contains("Add subtraction to the library"), "{body}");
    assert!(body.contains("src/**"), "{body}");
    assert!(body.contains(&t.key), "{body}");
    // Progress: one line per state change and the verdict.
    assert!(progress.contains("started task"), "{progress}");
    assert!(progress.contains("task completed"), "{progress}");
    assert!(progress.contains("verdict passed"), "{progress}");
    // The workspace's branches and HEAD are untouched, the private refs are gone.
    assert_eq!(g.work.git(["for-each-ref", "refs/agent-gate"]), "");
    assert_eq!(g.work.git(["status", "--porcelain"]), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_to_a_protected_file_is_a_scope_violation_and_its_code_is_not_run() {
    let g = gate(
        POLICY,
        vec![agent(
            "Speed up CI",
            vec![
                write(".github/workflows/ci.yml", "on: push\njobs: {}\n"),
                write("src/lib.sh", LIB),
                write("docs/notes.md", "notes\n"),
            ],
            FinalState::Completed,
        )],
    )
    .await;
    let (report, _) = g.run(g.opts("Speed up CI")).await;
    assert_verdict(&report, Verdict::ScopeViolation, 11);
    let out: Vec<(&str, &ViolationKind)> = report
        .violations
        .iter()
        .map(|v| (v.path.as_deref().unwrap_or(""), &v.kind))
        .collect();
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(out.iter().any(|(p, _)| *p == ".github/workflows/ci.yml"));
    assert!(out.iter().any(|(p, _)| *p == "docs/notes.md"));
    let workflow = report
        .violations
        .iter()
        .find(|v| v.path.as_deref() == Some(".github/workflows/ci.yml"))
        .expect("workflow violation");
    assert!(
        workflow.message.contains("protected"),
        "{}",
        workflow.message
    );
    assert!(report.checks_skipped.is_some());
    assert!(
        report
            .checks
            .iter()
            .all(|c| c.status == CheckStatus::Skipped)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_that_breaks_the_tests_is_checks_failed() {
    let g = gate(
        POLICY,
        vec![agent(
            "Refactor add",
            vec![write("src/lib.sh", LIB_BROKEN)],
            FinalState::Completed,
        )],
    )
    .await;
    let (report, _) = g.run(g.opts("Refactor add")).await;
    assert_verdict(&report, Verdict::ChecksFailed, 10);
    assert!(report.violations.is_empty());
    assert_eq!(changed(&report), ["src/lib.sh"]);
    let check = &report.checks[0];
    assert_eq!(check.status, CheckStatus::Failed);
    assert_eq!(check.detail.as_deref(), Some("exit code 1"));
    assert!(
        check.output_tail.contains("FAIL: add 2 3 gave -1"),
        "{}",
        check.output_tail
    );
    assert_eq!(report.totals.checks_failed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_task_is_agent_failed_with_the_session_error() {
    let mut script = agent("Rewrite", Vec::new(), FinalState::Failed);
    script.error = Some("the sandbox ran out of memory".to_string());
    let g = gate(POLICY, vec![script]).await;
    let (report, _) = g.run(g.opts("Rewrite everything")).await;
    assert_verdict(&report, Verdict::AgentFailed, 12);
    let t = task(&report);
    assert_eq!(t.state, "failed");
    assert_eq!(t.pr_number, None);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("`failed`") && n.contains("the sandbox ran out of memory")),
        "{:?}",
        report.notes
    );
    assert!(report.files.is_empty() && report.checks.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_task_without_a_change_is_agent_failed_unless_the_policy_allows_it() {
    let g = gate(
        POLICY,
        vec![agent("Nothing to do", Vec::new(), FinalState::Completed)],
    )
    .await;
    let (report, _) = g.run(g.opts("Nothing to do here")).await;
    assert_verdict(&report, Verdict::AgentFailed, 12);
    assert_eq!(task(&report).state, "completed");
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("agent.allow-no-change: false")),
        "{:?}",
        report.notes
    );

    let allowing = POLICY.replace(
        "  timeout: 5m\n",
        "  timeout: 5m\n  allow-no-change: true\n",
    );
    let g = gate(
        &allowing,
        vec![agent("Nothing to do", Vec::new(), FinalState::Completed)],
    )
    .await;
    let (report, _) = g.run(g.opts("Nothing to do here")).await;
    assert_verdict(&report, Verdict::Passed, 0);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("agent.allow-no-change: true"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_never_finishes_is_timed_out_and_the_stop_names_the_session() {
    let g = gate(
        POLICY,
        vec![agent("Endless", Vec::new(), FinalState::Never)],
    )
    .await;
    let mut opts = g.opts("Endless work");
    opts.timeout = Some(Duration::from_secs(3));
    opts.heartbeat = Duration::ZERO;
    let (report, progress) = g.run(opts).await;
    assert_verdict(&report, Verdict::TimedOut, 13);
    assert!(progress.contains("still in_progress"), "{progress}");
    let t = task(&report);
    assert_eq!(t.state, "in_progress");
    let url = t.url.clone().expect("the task's session URL");
    assert!(
        t.stop_actions.iter().any(|a| a.contains(&url)),
        "{:?}",
        t.stop_actions
    );
    assert!(report.notes.iter().any(|n| n.contains("deadline")));
    assert!(progress.contains("task in_progress"), "{progress}");
    // No pull request exists, so nothing was marked.
    assert!(g.sim.statuses().is_empty());
    assert!(g.sim.comments().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marking_the_pull_request_is_cut_short_when_github_hangs() {
    // The stop may take 5 s at most (the runner kills the gate 10 s after its first
    // signal): here the commit status hangs for 30 s.
    let policy = POLICY.replace("  timeout: 5m\n", "  timeout: 5m\n  on-idle: wait\n");
    let scenario = Scenario {
        tasks: vec![agent(
            "Half done",
            vec![write("src/half.sh", "half() { :; }\n")],
            FinalState::Idle,
        )],
        faults: vec![Fault {
            endpoint: Endpoint::CreateStatus,
            nth: 1,
            count: 1,
            when: When::Before,
            delay: Some(Duration::from_secs(30)),
            action: FaultAction::DelayOnly,
            line: 0,
        }],
        ..Scenario::default()
    };
    let g = Gate::new()
        .shell_project()
        .policy(&policy)
        .scenario(scenario)
        .repository(REPOSITORY)
        .token(TOKEN)
        .start()
        .await;
    let mut opts = g.opts("Half done work");
    opts.timeout = Some(Duration::from_secs(2));
    let (report, _) = g.run(opts).await;
    assert_verdict(&report, Verdict::TimedOut, 13);
    let actions = &task(&report).stop_actions;
    assert!(
        actions
            .iter()
            .any(|a| a == "error: marking the pull request did not finish within 5s"),
        "{actions:?}"
    );
    assert!(
        actions
            .iter()
            .any(|a| a.contains("stop the session from its page")),
        "the way to stop the session is still given: {actions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_task_with_a_pull_request_gets_it_marked() {
    let policy = POLICY.replace("  timeout: 5m\n", "  timeout: 5m\n  on-idle: wait\n");
    let g = gate(
        &policy,
        vec![agent(
            "Half done",
            vec![write("src/half.sh", "half() { :; }\n")],
            FinalState::Idle,
        )],
    )
    .await;
    let mut opts = g.opts("Half done work");
    opts.timeout = Some(Duration::from_secs(2));
    let (report, _) = g.run(opts).await;
    assert_verdict(&report, Verdict::TimedOut, 13);
    assert_eq!(task(&report).state, "idle");
    let pr = g.sim.pull_requests();
    assert_eq!(pr.len(), 1);
    let statuses = g.sim.statuses();
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(statuses[0].status.state, "failure");
    assert_eq!(statuses[0].sha, pr[0].head.sha);
    assert_eq!(
        g.sim.labels("octo", "demo", pr[0].number),
        ["agent-gate: timed-out"]
    );
    let comments = g.sim.comments();
    assert_eq!(comments.len(), 1);
    assert!(comments[0].body.contains("Stop session"));
    let actions = &task(&report).stop_actions;
    assert!(
        actions.iter().any(|a| a.contains("commit-status")),
        "{actions:?}"
    );
    assert!(actions.iter().any(|a| a.contains("label")), "{actions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_task_is_gated_on_what_its_branch_holds_when_the_policy_accepts_idle() {
    let policy = POLICY.replace("  timeout: 5m\n", "  timeout: 5m\n  on-idle: accept\n");
    let g = gate(
        &policy,
        vec![agent(
            "Half done",
            vec![write("src/half.sh", "half() { :; }\n")],
            FinalState::Idle,
        )],
    )
    .await;
    let (report, _) = g.run(g.opts("Half done work")).await;
    assert_verdict(&report, Verdict::Passed, 0);
    assert_eq!(task(&report).state, "idle");
    assert_eq!(changed(&report), ["src/half.sh"]);
    assert_eq!(report.checks[0].status, CheckStatus::Passed);
    assert!(report.notes.iter().any(|n| n.contains("`idle`")));

    // on-idle: fail rejects the same task.
    let policy = POLICY.replace("  timeout: 5m\n", "  timeout: 5m\n  on-idle: fail\n");
    let g = gate(
        &policy,
        vec![agent(
            "Half done",
            vec![write("src/half.sh", "half() { :; }\n")],
            FinalState::Idle,
        )],
    )
    .await;
    let (report, _) = g.run(g.opts("Half done work")).await;
    assert_verdict(&report, Verdict::AgentFailed, 12);
    assert!(report.files.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_policy_at_the_base_is_a_config_error_and_nothing_is_sent() {
    let g = gate(
        &POLICY.replace("scope:\n", "scope:\n  allowed: [\"x\"]\n"),
        Vec::new(),
    )
    .await;
    let (report, _) = g.run(g.opts("Anything")).await;
    assert_verdict(&report, Verdict::ConfigError, 2);
    let error = report.errors.join("\n");
    assert!(error.contains("allowed"), "{error}");
    assert!(error.contains(".github/agent-gate.yml"), "{error}");
    assert!(error.contains(".github/agent-gate.yml:7:3"), "{error}");
    assert!(error.contains("base ref `main`"), "{error}");
    assert!(g.sim.request_log().is_empty());

    // A good policy in the working tree does not help: it is read at the base.
    g.work.write(".github/agent-gate.yml", POLICY);
    let (report, _) = g.run(g.opts("Anything")).await;
    assert_verdict(&report, Verdict::ConfigError, 2);
    assert!(g.sim.request_log().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_the_policy_does_not_list_is_a_config_error() {
    let g = gate(POLICY, Vec::new()).await;
    let mut opts = g.opts("Anything");
    opts.repository = "octo/other".parse().unwrap();
    let (report, _) = g.run(opts).await;
    assert_verdict(&report, Verdict::ConfigError, 2);
    let error = report.errors.join("\n");
    assert!(
        error.contains("octo/other") && error.contains("repositories"),
        "{error}"
    );
    assert!(g.sim.request_log().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installation_token_is_an_api_error_with_guidance() {
    let g = gate(POLICY, Vec::new()).await;
    let mut opts = g.opts("Anything");
    opts.token = Some("ghs_installationtoken".into());
    let (report, _) = g.run(opts).await;
    assert_verdict(&report, Verdict::ApiError, 3);
    let error = report.errors.join("\n");
    assert!(error.contains("installation token"), "{error}");
    assert!(error.contains("user token"), "{error}");
    assert_eq!(g.creates(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_with_the_same_key_attaches_to_its_task_and_reaches_the_same_verdict() {
    let g = gate(
        POLICY,
        vec![agent(
            "Add subtraction",
            vec![write("src/sub.sh", "sub() { echo $(($1 - $2)); }\n")],
            FinalState::Completed,
        )],
    )
    .await;
    let mut opts = g.opts("Add subtraction");
    opts.task_key = Some("nightly-42".to_string());
    let (first, _) = g.run(opts.clone()).await;
    assert_verdict(&first, Verdict::Passed, 0);
    let (second, progress) = g.run(opts).await;
    assert_verdict(&second, Verdict::Passed, 0);
    assert_eq!(g.creates(), 1, "exactly one task is created");
    assert_eq!(g.sim.tasks().len(), 1);
    assert!(!task(&first).attached);
    assert!(task(&second).attached);
    assert_eq!(task(&first).id, task(&second).id);
    assert_eq!(task(&second).key, "nightly-42");
    assert_eq!(first.head_sha, second.head_sha);
    assert!(progress.contains("attached to task"), "{progress}");

    // `task-id` attaches to that task whatever the key.
    let mut by_id = g.opts("Add subtraction");
    by_id.task_id = Some(task(&first).id.clone());
    let (third, _) = g.run(by_id).await;
    assert_verdict(&third, Verdict::Passed, 0);
    assert!(task(&third).attached);
    assert_eq!(task(&third).id, task(&first).id);
    assert_eq!(g.creates(), 1);

    // A run derived from the same workflow inputs derives the same key.
    let mut derived = g.opts("Add subtraction");
    derived.key_inputs = KeyInputs {
        repository: REPOSITORY.to_string(),
        run_id: "1234".to_string(),
        job: "agent".to_string(),
        step: "gate".to_string(),
        instruction: String::new(),
    };
    let (a, _) = g.run(derived.clone()).await;
    let (b, _) = g.run(derived).await;
    assert_eq!(g.creates(), 2);
    assert_eq!(task(&a).id, task(&b).id);
    assert!(task(&b).attached);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_rewritten_by_the_agent_is_a_violation_and_is_not_used() {
    let permissive = "version: 1\nscope:\n  allow: [\"**\"]\n";
    let g = gate(
        POLICY,
        vec![agent(
            "Loosen",
            vec![
                write(".github/agent-gate.yml", permissive),
                write("docs/guide.md", "guide\n"),
                write("src/lib.sh", LIB_BROKEN),
            ],
            FinalState::Completed,
        )],
    )
    .await;
    let (report, _) = g.run(g.opts("Loosen the rules")).await;
    assert_verdict(&report, Verdict::ScopeViolation, 11);
    let paths: Vec<&str> = report
        .violations
        .iter()
        .filter_map(|v| v.path.as_deref())
        .collect();
    // The base policy decided: the policy file is protected and docs/ has no allow rule,
    // which the rewritten policy would have allowed.
    assert!(paths.contains(&".github/agent-gate.yml"), "{paths:?}");
    assert!(paths.contains(&"docs/guide.md"), "{paths:?}");
    // Its checks (from the base policy) were skipped, not removed.
    assert_eq!(report.checks.len(), 1);
    assert_eq!(report.checks[0].name, "unit tests");
    assert_eq!(report.checks[0].status, CheckStatus::Skipped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_without_a_token_is_a_config_error_that_names_the_input() {
    let g = gate(POLICY, Vec::new()).await;
    let mut opts = g.opts("Add subtraction");
    opts.token = None;
    let (report, _) = g.run(opts).await;
    assert_verdict(&report, Verdict::ConfigError, 2);
    let error = report.errors.join("\n");
    assert!(
        error.contains("a token is required (input `token`)"),
        "{error}"
    );
    assert!(g.sim.request_log().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_sends_nothing_and_prints_the_prompt() {
    let g = gate(POLICY, Vec::new()).await;
    let mut opts = g.opts("Add subtraction");
    opts.dry_run = true;
    opts.token = None;
    let (report, progress) = g.run(opts).await;
    // A dry run ends as a dry run (exit 0), never as a pass.
    assert_verdict(&report, Verdict::DryRun, 0);
    assert!(g.sim.request_log().is_empty());
    assert!(progress.contains("dry run"), "{progress}");
    assert!(progress.contains("Add subtraction"), "{progress}");
    assert!(progress.contains("src/**"), "{progress}");
    assert!(
        progress.contains(agent_gate::core::prompt::MARKER_PREFIX),
        "{progress}"
    );
    assert_eq!(task(&report).state, "not-started");

    // What people read says so, with no empty task id and no "started".
    let key = task(&report).key.clone();
    let text = report.render_text().replace(&key, "KEY");
    assert!(!text.contains("(started,"), "{text}");
    insta::assert_snapshot!("dry_run_text", text);
    let summary = agent_gate::core::summary::render(
        &report,
        &agent_gate::core::summary::SummaryContext::default(),
    )
    .replace(&key, "KEY");
    assert!(!summary.contains("created by this run"), "{summary}");
    assert!(summary.contains("| Task | not started |"), "{summary}");
    assert!(summary.contains("A dry run"), "{summary}");
    let outputs =
        agent_gate::flow::publish::outputs::values(&report, std::path::Path::new("a.jsonl"));
    let get = |name: &str| {
        outputs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("verdict"), Some("dry-run"));
    assert_eq!(get("task-id"), Some(""));
    let notices =
        agent_gate::flow::publish::outputs::annotations(&report, ".github/agent-gate.yml", None)
            .commands();
    assert_eq!(
        notices
            .iter()
            .map(|c| (c.name.as_str(), c.get("title")))
            .collect::<Vec<_>>(),
        [("notice", Some("agent-gate: dry-run"))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_during_polling_is_cancelled() {
    let g = gate(
        POLICY,
        vec![agent("Endless", Vec::new(), FinalState::Never)],
    )
    .await;
    let (trigger, shutdown) = Shutdown::manual();
    let opts = g.opts("Endless work");
    let handle = tokio::spawn(async move {
        let mut progress = Vec::new();
        run(opts, shutdown, &mut progress).await
    });
    while g.sim.count("GET", "/agents/repos/*/*/tasks/*") < 2 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    trigger.fire("SIGTERM");
    let report = handle.await.expect("run finishes");
    assert_verdict(&report, Verdict::Cancelled, 130);
    assert!(
        report.notes.iter().any(|n| n.contains("SIGTERM")),
        "{:?}",
        report.notes
    );
    let t = task(&report);
    assert_eq!(t.state, "in_progress");
    assert!(
        t.stop_actions
            .iter()
            .any(|a| a.contains("stop the session"))
    );
}

/// Wait for the child, at most `limit` (a guard against a hung gate, not a performance
/// assertion); returns (exit code, stdout, stderr).
async fn finish(child: tokio::process::Child, limit: Duration) -> (Option<i32>, String, String) {
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .expect("the gate exits")
        .expect("wait for the gate");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_exits_0_when_passed_and_with_the_verdicts_code_otherwise() {
    let g = gate(
        POLICY,
        vec![
            agent(
                "Add subtraction",
                vec![write("src/sub.sh", "sub() { echo $(($1 - $2)); }\n")],
                FinalState::Completed,
            ),
            agent(
                "Refactor add",
                vec![write("src/lib.sh", LIB_BROKEN)],
                FinalState::Completed,
            ),
        ],
    )
    .await;
    let child = g.cli_run("Add subtraction").spawn();
    let (code, stdout, stderr) = finish(child, Duration::from_mins(1)).await;
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("verdict: passed (exit 0)"), "{stdout}");
    assert!(stderr.contains("agent-gate: started task"), "{stderr}");
    assert!(!stdout.contains(TOKEN) && !stderr.contains(TOKEN));

    let child = g.cli_run("Refactor add").args(["--format", "json"]).spawn();
    let (code, stdout, stderr) = finish(child, Duration::from_mins(1)).await;
    assert_eq!(code, Some(10), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("a JSON report");
    assert_eq!(json["verdict"], "checks-failed");
    assert_eq!(json["exit_code"], 10);
    assert_eq!(g.creates(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_polling_exits_130_with_a_report() {
    let g = gate(
        POLICY,
        vec![agent("Endless", Vec::new(), FinalState::Never)],
    )
    .await;
    let child = g.cli_run("Endless work").spawn();
    let pid = child.id().expect("a pid");
    while g.sim.count("GET", "/agents/repos/*/*/tasks/*") < 2 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    signal(pid, "TERM");
    let (code, stdout, stderr) = finish(child, Duration::from_secs(30)).await;
    assert_eq!(code, Some(130), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("verdict: cancelled (exit 130)"), "{stdout}");
    assert!(stdout.contains("interrupted by SIGTERM"), "{stdout}");
    assert!(
        stdout.contains("stop the session from its page"),
        "{stdout}"
    );
    let tasks = g.sim.tasks();
    assert_eq!(tasks.len(), 1);
    assert!(stdout.contains(&tasks[0].id), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_while_checks_run_kills_them_and_exits_130() {
    // The check records its shell's pid and its child's, then waits for a long time.
    let pids = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(
        pids.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod");
    let dir = pids.path().display();
    let policy = POLICY.replace(
        "    run: sh tests/run.sh\n",
        &format!(
            "    run: \"sleep 300 & echo $! > {dir}/child.tmp && mv {dir}/child.tmp {dir}/child; echo $$ > {dir}/shell; wait\"\n"
        ),
    );
    let g = gate(
        &policy,
        vec![agent(
            "Add subtraction",
            vec![write("src/sub.sh", "sub() { echo $(($1 - $2)); }\n")],
            FinalState::Completed,
        )],
    )
    .await;
    let child = g.cli_run("Add subtraction").spawn();
    let pid = child.id().expect("a pid");
    let child_pid = pids.path().join("child");
    let started = std::time::Instant::now();
    while !child_pid.exists() {
        assert!(
            started.elapsed() < Duration::from_mins(1),
            "the check never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    signal(pid, "INT");
    let (code, stdout, stderr) = finish(child, Duration::from_secs(30)).await;
    assert_eq!(code, Some(130), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("verdict: cancelled (exit 130)"), "{stdout}");
    assert!(stdout.contains("cancelled unit tests"), "{stdout}");
    for name in ["child", "shell"] {
        let Ok(text) = std::fs::read_to_string(pids.path().join(name)) else {
            continue;
        };
        let check_pid: u32 = text.trim().parse().expect("a pid");
        assert!(
            !alive(check_pid),
            "check process {check_pid} ({name}) outlived the gate"
        );
    }
}

fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success());
}

/// Whether a process exists and is not a zombie (a zombie has exited; only its parent,
/// now init, has yet to reap it).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policys_base_ref_is_the_base_of_the_task_and_of_the_change() {
    let policy = POLICY.replace("  timeout: 5m\n", "  timeout: 5m\n  base-ref: develop\n");
    let g = gate(
        &policy,
        vec![agent(
            "Add subtraction",
            vec![write("src/sub.sh", "sub() { echo $(($1 - $2)); }\n")],
            FinalState::Completed,
        )],
    )
    .await;
    g.work.branch("develop");
    g.work.write("src/develop-only.sh", "dev() { :; }\n");
    g.work.commit("work on develop");
    g.work.git(["push", "-q", "origin", "develop"]);
    g.work.checkout("main");
    let (report, _) = g.run(g.opts("Add subtraction")).await;
    assert_verdict(&report, Verdict::Passed, 0);
    assert_eq!(report.base.as_deref(), Some("develop"));
    assert_eq!(changed(&report), ["src/sub.sh"]);
    let create = g
        .sim
        .request_log()
        .into_iter()
        .find(|r| r.method == "POST")
        .expect("a create request");
    assert!(
        create.body.contains("\"base_ref\":\"develop\""),
        "{}",
        create.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_interrupted_before_the_start_starts_nothing() {
    let g = gate(POLICY, Vec::new()).await;
    let (trigger, shutdown) = Shutdown::manual();
    trigger.fire("SIGINT");
    let mut progress = Vec::new();
    let report = run(g.opts("Anything"), shutdown, &mut progress).await;
    assert_verdict(&report, Verdict::Cancelled, 130);
    assert_eq!(g.creates(), 0);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("SIGINT") && n.contains("re-run")),
        "{:?}",
        report.notes
    );
}

/// A check whose tool is not installed where it runs is the repository's setup, not the
/// change: `check-error` (exit 15), a commit status `error`, and no repair round even when
/// the policy allows them — one task started. A script the change deleted still fails as
/// `checks-failed` (fail closed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_whose_tool_is_missing_is_check_error_and_is_never_repaired() {
    let policy = "version: 1
agent:
  repair-rounds: 2
checks:
  - name: unit tests
    run: bash tests/run.sh
  - name: ruff
    run: ruff-not-installed-here check .
";
    let g = gate(
        policy,
        vec![agent(
            "Add subtraction",
            vec![write("src/sub.sh", "sub() { echo $(($1 - $2)); }\n")],
            FinalState::Completed,
        )],
    )
    .await;
    let (report, _) = g.run(g.opts("Add subtraction")).await;
    assert_verdict(&report, Verdict::CheckError, 15);
    assert_eq!(report.checks[0].status, CheckStatus::Passed);
    let ruff = &report.checks[1];
    assert_eq!(ruff.status, CheckStatus::Unavailable);
    let detail = ruff.detail.as_deref().unwrap_or_default();
    assert!(
        detail.contains("`ruff-not-installed-here` is not installed") && detail.contains("PATH="),
        "{detail}"
    );
    assert_eq!(g.creates(), 1, "no repair round for a missing tool");
    let statuses = g.sim.statuses();
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(statuses[0].status.state, "error");

    // A script in the tree that the change deleted is the change's doing: checks-failed.
    let policy = "version: 1
checks:
  - name: lint
    run: ./scripts/lint.sh
";
    let g = gate(
        policy,
        vec![agent(
            "Drop the linter",
            vec![write("README.md", "no linter here\n")],
            FinalState::Completed,
        )],
    )
    .await;
    let (report, _) = g.run(g.opts("Drop the linter")).await;
    assert_verdict(&report, Verdict::ChecksFailed, 10);
    assert_eq!(report.checks[0].status, CheckStatus::Failed);
    assert_eq!(report.checks[0].detail.as_deref(), Some("exit code 127"));
}

/// Copilot cloud agent turned off for the organization: the agent-tasks API answers 404,
/// and the run says so in plain words (from GitHub's cloud-agent settings) before the 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_without_the_cloud_agent_is_named_so_in_plain_words() {
    let scenario = Scenario {
        api: agent_gate::sim::ApiOptions {
            agent_disabled: true,
            ..agent_gate::sim::ApiOptions::default()
        },
        ..Scenario::default()
    };
    let g = Gate::new()
        .shell_project()
        .policy(POLICY)
        .scenario(scenario)
        .repository(REPOSITORY)
        .token(TOKEN)
        .start()
        .await;
    let (report, _) = g.run(g.opts("Add subtraction")).await;
    assert_verdict(&report, Verdict::ApiError, 3);
    insta::assert_snapshot!("agent_not_enabled", report.errors[0]);
    assert!(report.errors[1].contains("404"), "{:?}", report.errors);
    assert_eq!(g.creates(), 0);
    // The simulator answers the settings endpoints as told.
    assert_eq!(
        g.sim
            .count("GET", "/orgs/*/copilot/coding-agent/permissions"),
        1
    );
}
