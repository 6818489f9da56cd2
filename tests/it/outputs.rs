//! Tests of the Report → Action outputs and annotations mapping: every output of DESIGN §4
//! written and read back with the runner's parser, empty values when unknown, secrets
//! redacted, and the annotations ranked within GitHub's per-step budget.

use std::fs;
use std::path::{Path, PathBuf};

use agent_gate::adapters::actions::{
    ActionsEnv, ActionsError, ActionsIo, Command, parse_file_command,
};
use agent_gate::core::report::{CheckStatus, Report, Verdict, Violation, ViolationKind};
use agent_gate::core::summary::SummaryContext;
use agent_gate::flow::publish::outputs::{NAMES, annotations, values, write};
use insta::assert_snapshot;

use crate::summary::{
    check, checks_failed_report, config_error_report, passed_report, policy_rule, violation_report,
};

const CANARY: &str = "ghp_CANARY0123456789abcdefghijklmnopqrstuv";

struct Step {
    _dir: tempfile::TempDir,
    output: PathBuf,
    env: ActionsEnv,
}

fn step() -> Step {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = dir.path().join("set_output_1");
    fs::write(&output, "").expect("output file");
    let env = ActionsEnv::from_vars(
        [
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_OUTPUT", output.to_str().expect("utf-8 temp path")),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    Step {
        _dir: dir,
        output,
        env,
    }
}

fn written(report: &Report) -> Vec<(String, String)> {
    let step = step();
    let mut io = ActionsIo::new(step.env.clone(), Vec::new());
    write(
        report,
        &mut io,
        Path::new("/tmp/_temp/agent-gate/audit-1-1.jsonl"),
    )
    .expect("write");
    let text = fs::read_to_string(&step.output).expect("read");
    parse_file_command(&text).expect("the runner can read every output back")
}

fn get<'a>(outputs: &'a [(String, String)], name: &str) -> &'a str {
    outputs
        .iter()
        .find(|(k, _)| k == name)
        .map_or_else(|| panic!("output {name} missing"), |(_, v)| v.as_str())
}

#[test]
fn every_output_is_set_and_reads_back() {
    let outputs = written(&passed_report());
    let names: Vec<&str> = outputs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, NAMES, "every output, once, in order");
    assert_eq!(get(&outputs, "verdict"), "passed");
    assert_eq!(
        get(&outputs, "task-id"),
        "a1b2c3d4-0000-4000-8000-000000000001"
    );
    assert_eq!(
        get(&outputs, "task-url"),
        "https://github.com/octo-org/payments/tasks/a1b2c3d4"
    );
    assert_eq!(get(&outputs, "task-state"), "completed");
    assert_eq!(get(&outputs, "pr-number"), "42");
    assert_eq!(
        get(&outputs, "pr-url"),
        "https://github.com/octo-org/payments/pull/42"
    );
    assert_eq!(
        get(&outputs, "head-sha"),
        "2222222222222222222222222222222222222222"
    );
    assert_eq!(get(&outputs, "changed-files"), "2");
    assert_eq!(get(&outputs, "violations"), "[]");
    // Rounded to one decimal place, as GitHub displays AI credits (the JSON report keeps 1.25).
    assert_eq!(get(&outputs, "ai-credits"), "1.3");
    assert_eq!(
        get(&outputs, "audit-file"),
        "/tmp/_temp/agent-gate/audit-1-1.jsonl"
    );
    let checks: serde_json::Value =
        serde_json::from_str(get(&outputs, "checks")).expect("checks is JSON");
    assert_eq!(checks.as_array().map(Vec::len), Some(3));
    assert_eq!(checks[0]["name"], "unit tests");
    assert_eq!(checks[0]["status"], "passed");
    assert_eq!(checks[2]["required"], false);
    assert!(
        checks[0].get("output_tail").is_none(),
        "tails stay in the summary"
    );
}

#[test]
fn unknown_values_are_empty_strings() {
    let outputs = written(&config_error_report());
    assert_eq!(outputs.len(), NAMES.len());
    assert_eq!(get(&outputs, "verdict"), "config-error");
    for name in [
        "task-id",
        "task-url",
        "task-state",
        "pr-number",
        "pr-url",
        "head-sha",
        "ai-credits",
    ] {
        assert_eq!(get(&outputs, name), "", "{name}");
    }
    assert_eq!(get(&outputs, "changed-files"), "0");
    assert_eq!(get(&outputs, "checks"), "[]");
}

#[test]
fn violations_output_is_json_most_important_first() {
    let outputs = written(&violation_report());
    let violations: serde_json::Value =
        serde_json::from_str(get(&outputs, "violations")).expect("JSON");
    let kinds: Vec<&str> = violations
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        [
            "protected",
            "out-of-scope",
            "out-of-scope",
            "max-changed-lines"
        ]
    );
    assert_eq!(violations[2]["rule"], "migrations/**");
    assert_eq!(violations[2]["line"], 9);
}

#[test]
fn huge_violation_lists_are_capped_below_the_output_limit() {
    let mut report = violation_report();
    report.violations = (0..20_000)
        .map(|i| Violation {
            kind: ViolationKind::OutOfScope,
            path: Some(format!("generated/{i:05}/a/rather/long/path/name.txt")),
            rule: None,
            message: format!("generated/{i:05}/a/rather/long/path/name.txt: no allow rule matches"),
        })
        .collect();
    let all = values(&report, Path::new("a.jsonl"));
    let json = &all.iter().find(|(k, _)| *k == "violations").expect("set").1;
    assert!(json.len() <= agent_gate::flow::publish::outputs::MAX_VIOLATIONS_JSON);
    let parsed: Vec<serde_json::Value> = serde_json::from_str(json).expect("still valid JSON");
    assert!(
        parsed.len() > 1000 && parsed.len() < 20_000,
        "{}",
        parsed.len()
    );
}

#[test]
fn outputs_are_redacted() {
    let step = step();
    let mut io = ActionsIo::new(step.env.clone(), Vec::new());
    io.add_mask(CANARY).expect("mask");
    let mut report = violation_report();
    report.violations[0].message = format!("token {CANARY} in a message");
    if let Some(task) = report.task.as_mut() {
        task.state = CANARY.to_string();
    }
    write(&report, &mut io, Path::new("audit.jsonl")).expect("write");
    let text = fs::read_to_string(&step.output).expect("read");
    assert!(!text.contains(CANARY));
    let outputs = parse_file_command(&text).expect("parse");
    assert_eq!(get(&outputs, "task-state"), "***");
}

#[test]
fn outside_actions_writing_outputs_is_a_clear_error() {
    let mut io = ActionsIo::new(ActionsEnv::default(), Vec::new());
    let err = write(&passed_report(), &mut io, Path::new("a.jsonl")).expect_err("no GITHUB_OUTPUT");
    assert!(matches!(
        err,
        ActionsError::NotInActions {
            variable: "GITHUB_OUTPUT",
            ..
        }
    ));
}

// ---------------------------------------------------------------------------------------
// annotations

fn lines(commands: &[Command]) -> String {
    commands
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn thirty_violations_fit_the_budget_most_important_first() {
    let mut report = checks_failed_report();
    let kinds = [
        ViolationKind::MaxFiles,
        ViolationKind::OutOfScope,
        ViolationKind::Protected,
    ];
    report.violations = (0..30)
        .map(|i| {
            let kind = kinds[i % 3].clone();
            Violation {
                path: (kind != ViolationKind::MaxFiles).then(|| format!("p/{i:02}.rs")),
                rule: (kind == ViolationKind::OutOfScope).then(|| policy_rule("p/**", 12)),
                message: format!("violation {i:02}"),
                kind,
            }
        })
        .collect();
    report.finish();
    let planned = annotations(&report, ".github/agent-gate.yml", None);
    let commands = planned.commands();
    let errors: Vec<&Command> = commands.iter().filter(|c| c.name == "error").collect();
    assert_eq!(errors.len(), 10, "GitHub shows 10 errors per step");
    // 10 protected first (9 shown + the overflow note in the 10th slot).
    for e in &errors[..9] {
        assert!(
            e.get("title").is_some_and(|t| t.starts_with("protected")),
            "{e}"
        );
        assert!(e.get("file").is_some());
    }
    assert!(
        errors[9]
            .message
            .contains("more errors are listed in the step summary")
    );
    // 30 violations + 2 failed required checks = 32 errors: 9 shown, 23 hidden.
    assert!(
        errors[9].message.starts_with("23 more errors"),
        "{}",
        errors[9]
    );
    let hidden = planned.hidden();
    assert_eq!(
        hidden
            .iter()
            .filter(|h| h.level == agent_gate::adapters::actions::Level::Error)
            .count(),
        23
    );
    // The advisory failure is a warning, not an error.
    let warnings: Vec<&Command> = commands.iter().filter(|c| c.name == "warning").collect();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].message.contains("advisory check `ruff` failed"));
}

#[test]
fn ranking_protected_then_out_of_scope_then_limits_then_checks() {
    let mut report = violation_report();
    report.checks = vec![check("unit tests", true, CheckStatus::Failed, 10)];
    report.checks[0].output_tail = "\u{1b}[31merror\u{1b}[0m: boom\n".to_string();
    report.isolation_notes = vec!["ran checks as the gate's own uid (not root)".to_string()];
    report.isolation_weaknesses = report.isolation_notes.clone();
    report.finish();
    assert_snapshot!(lines(
        &annotations(&report, ".github/agent-gate.yml", None).commands()
    ));
}

#[test]
fn a_policy_error_points_at_its_line_and_column() {
    let report = config_error_report();
    assert_eq!(report.verdict, Verdict::ConfigError);
    let commands = annotations(&report, ".github/agent-gate.yml", Some((7, 3))).commands();
    assert_snapshot!(lines(&commands));
    let first = &commands[0];
    assert_eq!(first.get("file"), Some(".github/agent-gate.yml"));
    assert_eq!(first.get("line"), Some("7"));
    assert_eq!(first.get("col"), Some("3"));
    // Only the first error is located; the `--scope` error is not about the file.
    assert_eq!(commands[1].get("file"), None);
}

#[test]
fn a_passed_run_gets_one_notice_and_a_timeout_an_error() {
    let commands = annotations(&passed_report(), "p.yml", None).commands();
    assert_eq!(
        commands.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["notice", "notice"],
        "the verdict, then the isolation note: isolation working as designed is no warning"
    );
    assert_eq!(commands[0].get("title"), Some("agent-gate: passed"));
    assert_eq!(
        commands[1].get("title"),
        Some("agent-gate: check isolation")
    );
    // A weakness of the isolation is a warning.
    let mut weak = passed_report();
    let note = "best-effort isolation: a credential was readable to checks at .git/config";
    weak.isolation_notes.push(note.to_string());
    weak.isolation_weaknesses.push(note.to_string());
    let commands = annotations(&weak, "p.yml", None).commands();
    assert_eq!(
        commands.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["warning", "notice", "notice"]
    );
    assert_eq!(commands[0].message, note);
    let mut timed_out = passed_report();
    timed_out.set_verdict(Verdict::TimedOut);
    let commands = annotations(&timed_out, "p.yml", None).commands();
    assert_eq!(commands[0].name, "error");
    assert_eq!(commands[0].get("title"), Some("agent-gate: timed-out"));
}

// ---------------------------------------------------------------------------------------
// the step summary through the Actions door

#[test]
fn a_canary_never_reaches_the_summary_even_where_escaping_would_split_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let summary = dir.path().join("step_summary_1");
    fs::write(&summary, "").expect("summary file");
    let env = ActionsEnv::from_vars(
        [
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_STEP_SUMMARY", summary.to_str().expect("utf-8")),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let mut report = violation_report();
    report.files[0].path = format!("src/{CANARY}.rs");
    report.violations[0].path = Some(format!("src/{CANARY}.rs"));
    report
        .errors
        .push(format!("401 Bad credentials for {CANARY}"));
    report.checks[0].output_tail = format!("GH_TOKEN={CANARY}\n");
    report.checks[0].status = CheckStatus::Failed;
    if let Some(task) = report.task.as_mut() {
        task.key = CANARY.to_string();
    }

    // Rendering first and masking afterwards would leak: escaping splits the token.
    let unredacted = agent_gate::core::summary::render(&report, &SummaryContext::default());
    assert!(
        unredacted.contains("ghp&#95;CANARY"),
        "the hazard this test guards"
    );

    let mut io = ActionsIo::new(env, Vec::new());
    io.add_mask(CANARY).expect("mask");
    agent_gate::flow::publish::outputs::write_summary(
        &report,
        &SummaryContext::default(),
        &mut io,
        "the JSON report",
    )
    .expect("summary");
    let text = fs::read_to_string(&summary).expect("read");
    assert!(!text.contains("CANARY"), "{text}");
    assert!(
        text.contains("src/&#42;&#42;&#42;.rs") || text.contains("src/***.rs"),
        "{text}"
    );
}

/// The JSON report is streamed and redacted line by line; what comes out is exactly the
/// whole text redacted at once, for a report far larger than the write buffer, with the
/// secret plain, JSON-escaped, across a line of a multi-line value, and in a path.
#[test]
fn streamed_json_is_the_whole_text_redacted() {
    let multi = format!("first line\n{CANARY}\nlast \"quoted\" line");
    let mut io = ActionsIo::new(ActionsEnv::default(), Vec::new());
    io.add_mask(CANARY).expect("mask");
    io.add_mask(&multi).expect("mask");
    let mut report = violation_report();
    report.errors = (0..20_000)
        .map(|i| match i % 4 {
            0 => format!("error {i}: {CANARY}"),
            1 => format!("error {i}: {multi}"),
            2 => format!("error {i}: é \u{1F600} no secret"),
            _ => format!("error {i}: {}", CANARY.repeat(3)),
        })
        .collect();
    let whole = serde_json::to_string_pretty(&report).expect("json");
    assert!(whole.len() > 1 << 20, "larger than the write buffer");
    let expected = format!("{}\n", io.masker().redact(&whole));
    io.print_json(&report).expect("print");
    let streamed = String::from_utf8(io.into_inner()).expect("utf-8");
    assert!(!streamed.contains(CANARY));
    assert!(!streamed.contains("last \\\"quoted\\\" line"));
    assert_eq!(streamed, expected);
}

/// One figure everywhere: AI credits rounded to one decimal place (GitHub's display rule),
/// halves away from zero, a trailing `.0` dropped, the unit singular for exactly 1.
#[test]
fn ai_credits_are_shown_rounded_to_one_decimal() {
    use agent_gate::core::report::{credits, credits_phrase};
    for (x, shown) in [
        (0.0, "0"),
        (0.000_000_001, "0"),
        (0.04, "0"),
        (0.05, "0.1"),
        (1.0, "1"),
        (1.25, "1.3"),
        (2.449_999, "2.4"),
        (500.123, "500.1"),
        (f64::NAN, "0"),
    ] {
        assert_eq!(credits(x), shown, "{x}");
    }
    assert_eq!(credits_phrase(1.0), "1 AI credit");
    assert_eq!(credits_phrase(1.04), "1 AI credit");
    assert_eq!(credits_phrase(1.5), "1.5 AI credits");
    assert_eq!(credits_phrase(0.0), "0 AI credits");
}
