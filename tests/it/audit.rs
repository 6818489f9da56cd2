//! Tests of the audit trail: events written as JSON lines and read back, `schema: 1` on
//! every line, append semantics, the default path, secrets masked, and the trace from a
//! merged commit back to its task that `docs/audit.md` describes.

use std::fs;

use agent_gate::adapters::actions::{ActionsEnv, Masker};
use agent_gate::adapters::audit::{
    AdmissionEvent, AuditError, AuditEvent, AuditLog, ChangeEvent, LOCAL_FILE, SCHEMA,
    default_path, events_for_report, parse, task_events,
};
use agent_gate::core::report::{Report, Verdict};
use agent_gate::flow::publish::audit_trigger;
use insta::assert_snapshot;
use jiff::Timestamp;

use crate::summary::{checks_failed_report, passed_report, violation_report};
use crate::support::Gate;

const CANARY: &str = "ghp_CANARY0123456789abcdefghijklmnopqrstuv";

fn env() -> ActionsEnv {
    ActionsEnv::from_vars(
        [
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", "workflow_dispatch"),
            ("GITHUB_ACTOR", "octocat"),
            ("GITHUB_WORKFLOW", "agent on demand"),
            ("GITHUB_JOB", "agent"),
            ("GITHUB_RUN_ID", "9876543210"),
            ("GITHUB_RUN_ATTEMPT", "2"),
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_SHA", "3333333333333333333333333333333333333333"),
            ("GITHUB_REPOSITORY", "octo-org/payments"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("RUNNER_TEMP", "/home/runner/work/_temp"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    )
}

fn fixed_clock() -> Timestamp {
    "2026-07-01T10:05:00Z".parse().expect("timestamp")
}

/// Every event of a whole run, in the order the flow writes them.
fn run_events(report: &Report, env: &ActionsEnv) -> Vec<AuditEvent> {
    let mut events = vec![
        AuditEvent::Trigger(audit_trigger(env)),
        AuditEvent::Admission(AdmissionEvent {
            repository: env.repository.clone(),
            allowed: true,
            scope: vec!["src/services/**".to_string()],
            priority: Some("normal".to_string()),
            waited_s: 0.0,
            waiting: None,
            refused: None,
            lock: Some("held refs/agent-gate/admission/leases/0f3c".to_string()),
            open_pull_requests: None,
            max_open_pull_requests: None,
        }),
    ];
    if let Some(task) = &report.task {
        events.extend(task_events(task));
    }
    events.extend(events_for_report(report, env.target()));
    events
}

#[test]
fn every_line_is_json_with_schema_1_and_reads_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nested/deeper/audit.jsonl");
    let report = passed_report();
    let events = run_events(&report, &env());
    let mut log = AuditLog::open(&path, Masker::new())
        .expect("open")
        .with_clock(fixed_clock);
    log.write_all(&events).expect("write");
    drop(log);

    let text = fs::read_to_string(&path).expect("read");
    assert!(text.ends_with('\n'));
    let raw: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect();
    assert_eq!(raw.len(), events.len());
    for line in &raw {
        assert_eq!(line["schema"], SCHEMA);
        assert_eq!(line["time"], "2026-07-01T10:05:00Z");
        assert!(line["event"].is_string());
    }
    let tags: Vec<&str> = raw
        .iter()
        .map(|l| l["event"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        tags,
        [
            "trigger",
            "admission",
            "task",
            "state",
            "state",
            "state",
            "change",
            "check",
            "check",
            "check",
            "verdict"
        ]
    );
    let parsed: Vec<AuditEvent> = parse(&text)
        .into_iter()
        .map(|(n, line)| line.unwrap_or_else(|e| panic!("line {n}: {e}")).event)
        .collect();
    assert_eq!(parsed, events, "typed events round-trip");
}

#[test]
fn the_lines_of_a_scope_violation_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.jsonl");
    let mut log = AuditLog::open(&path, Masker::new())
        .expect("open")
        .with_clock(fixed_clock);
    log.write_all(&run_events(&violation_report(), &env()))
        .expect("write");
    assert_snapshot!(fs::read_to_string(&path).expect("read"));
}

#[test]
fn check_events_carry_command_and_exit_code() {
    let report = checks_failed_report();
    let events =
        agent_gate::adapters::audit::events_for_report_with(&report, env().target(), |name| {
            (name == "unit tests").then(|| "cargo test --locked".to_string())
        });
    let AuditEvent::Check(unit) = &events[1] else {
        panic!("{events:#?}")
    };
    assert_eq!(unit.name, "unit tests");
    assert_eq!(unit.command.as_deref(), Some("cargo test --locked"));
    assert_eq!(unit.exit_code, Some(101));
    assert_eq!(unit.status, "failed");
    assert_eq!(unit.duration_ms, 75_400);
    let AuditEvent::Verdict(v) = events.last().expect("verdict") else {
        panic!("last event is the verdict")
    };
    assert_eq!(
        (v.verdict.as_str(), v.exit_code, v.checks_failed),
        ("checks-failed", 10, 2)
    );
}

#[test]
fn appends_across_opens() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.jsonl");
    for _ in 0..2 {
        let mut log = AuditLog::open(&path, Masker::new()).expect("open");
        log.write(&AuditEvent::Trigger(audit_trigger(&env())))
            .expect("write");
    }
    let text = fs::read_to_string(&path).expect("read");
    assert_eq!(parse(&text).len(), 2);
}

#[test]
fn a_canary_secret_never_reaches_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.jsonl");
    let mut masker = Masker::new();
    masker.register(CANARY);

    // The secret shows up everywhere an untrusted or error string can.
    let mut report = violation_report();
    report.errors.push(format!(
        "POST /agents/repos/octo-org/payments/tasks: 401 with token {CANARY}\nline two \"{CANARY}\""
    ));
    report.violations[0].message = format!("{CANARY}: no allow rule matches");
    report.violations[0].path = Some(format!("leak/{CANARY}.txt"));
    report.checks[0].detail = Some(format!("exit 1: GH_TOKEN={CANARY}"));
    if let Some(task) = report.task.as_mut() {
        task.stop_actions.push(format!("commented with {CANARY}"));
        task.key = CANARY.to_string();
    }
    report.set_verdict(Verdict::ApiError);

    let mut log = AuditLog::open(&path, masker.clone()).expect("open");
    log.write_all(&run_events(&report, &env())).expect("write");
    let text = fs::read_to_string(&path).expect("read");
    assert!(!text.contains(CANARY), "{text}");
    assert!(!text.contains("CANARY0123"), "no fragment either");
    assert!(text.contains("***"));
    for (n, line) in parse(&text) {
        assert!(line.is_ok(), "line {n} is still JSON after masking");
    }
}

/// The default path of the run `env` describes, as the publisher asks for it.
fn default_of(env: &ActionsEnv) -> std::path::PathBuf {
    default_path(env.runner_temp.as_deref(), &audit_trigger(env))
}

#[test]
fn default_path_under_runner_temp_else_current_directory() {
    assert_eq!(
        default_of(&env()),
        std::path::Path::new("/home/runner/work/_temp/agent-gate/audit-9876543210-2.jsonl")
    );
    let local = ActionsEnv::from_vars(Vec::<(String, String)>::new());
    assert_eq!(
        default_of(&local),
        std::path::Path::new(".").join(LOCAL_FILE)
    );
    let no_run = ActionsEnv::from_vars([("RUNNER_TEMP".to_string(), "/tmp/r".to_string())]);
    assert_eq!(
        default_of(&no_run),
        std::path::Path::new("/tmp/r/agent-gate/audit-local-1.jsonl")
    );
}

#[test]
fn an_unwritable_location_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let blocker = dir.path().join("not-a-dir");
    fs::write(&blocker, "").expect("file");
    let err =
        AuditLog::open(blocker.join("audit.jsonl"), Masker::new()).expect_err("parent is a file");
    assert!(matches!(
        err,
        AuditError::Open { .. } | AuditError::CreateDir { .. }
    ));
    let message = err
        .to_string()
        .replace(&dir.path().display().to_string(), "<tmp>");
    assert!(message.contains("<tmp>/not-a-dir"), "{message}");
    assert!(message.contains("writable"), "{message}");
}

/// The trace `docs/audit.md` describes: from the head SHA of a merged pull request to the
/// task that produced it.
#[test]
fn trace_a_merged_commit_back_to_its_task() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.jsonl");
    let mut log = AuditLog::open(&path, Masker::new()).expect("open");
    log.write_all(&run_events(&passed_report(), &env()))
        .expect("write");
    let text = fs::read_to_string(&path).expect("read");
    let events: Vec<AuditEvent> = parse(&text)
        .into_iter()
        .filter_map(|(_, l)| l.ok().map(|l| l.event))
        .collect();

    let merged_head = "2222222222222222222222222222222222222222";
    let task_id = events
        .iter()
        .find_map(|e| match e {
            AuditEvent::Change(ChangeEvent {
                head_sha: Some(sha),
                task_id,
                ..
            }) if sha == merged_head => task_id.clone(),
            _ => None,
        })
        .expect("a change event for the merged head");
    let url = events
        .iter()
        .find_map(|e| match e {
            AuditEvent::Task(t) if t.id == task_id => t.url.clone(),
            _ => None,
        })
        .expect("the task event");
    assert_eq!(url, "https://github.com/octo-org/payments/tasks/a1b2c3d4");
}

/// The events of an audit file, by name.
fn event_names(path: &std::path::Path) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap_or_default();
    parse(&text)
        .into_iter()
        .filter_map(|(_, line)| line.ok())
        .map(|line| line.event.name().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_killed_mid_run_leaves_the_steps_it_finished_in_the_audit_file() {
    let policy = "version: 1\nagent:\n  timeout: 5m\n  poll: { initial: 1s, max: 1s }\nscope:\n  allow: [\"**\"]\n";
    let world = Gate::new()
        .policy(policy)
        .scenario_yaml("default: {queued: 1s, work: 1s, final: never}\n")
        .time_scale(1.0)
        .repository("octo/audit")
        .token(CANARY)
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let mut child = world
        .cli_run("Tidy the docs")
        .arg("--audit-file")
        .arg(&audit)
        .clean_env()
        .env("INPUT_TOKEN", CANARY)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    // Until the gate has seen the task working (the file is written as the run goes).
    let start = std::time::Instant::now();
    while !fs::read_to_string(&audit)
        .unwrap_or_default()
        .contains("\"state\":\"in_progress\"")
    {
        assert!(
            start.elapsed() < std::time::Duration::from_mins(1),
            "no in_progress state in {:?}",
            event_names(&audit)
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    child.kill().await.expect("SIGKILL, reaped");

    let names = event_names(&audit);
    assert_eq!(
        names,
        ["trigger", "task", "state", "state"],
        "every finished step, and no verdict"
    );
    let text = fs::read_to_string(&audit).unwrap();
    assert!(text.contains("\"action\":\"created\""), "{text}");
    assert!(text.contains("\"state\":\"queued\""), "{text}");
    assert!(!text.contains(CANARY), "the token never reaches the file");
    world.sim.shutdown().await;
}
