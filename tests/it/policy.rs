//! Tests of the policy area: the complete example of `docs/policy.md` and the shipped examples compile to the
//! expected values, every default, the error text (snapshots) with line and column for each
//! kind of mistake, the published JSON Schema, `describe`, and that no input panics.

use std::path::PathBuf;
use std::time::Duration;

use agent_gate::core::policy::{
    self, Allowance, Isolation, OnIdle, OnViolation, OnWaitingForUser, Policy, PolicyError,
    describe, format_duration, parse_duration,
};
use agent_gate::core::scope::RuleOrigin;
use agent_gate::core::yaml::Problem;
use insta::assert_snapshot;
use proptest::prelude::*;

const PATH: &str = ".github/agent-gate.yml";

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The complete example of `docs/policy.md`, as the documentation shows it to users.
fn docs_example() -> String {
    let page =
        std::fs::read_to_string(manifest_dir().join("docs/policy.md")).expect("docs/policy.md");
    let section = &page[page.find("## Complete example").expect("section")..];
    let start = section.find("```yaml\n").expect("yaml block") + "```yaml\n".len();
    let end = start + section[start..].find("```").expect("end of block");
    section[start..end].to_string()
}

fn examples() -> Vec<(PathBuf, String)> {
    let dir = manifest_dir().join("examples/policies");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .expect("examples/policies")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read example");
            (p, text)
        })
        .collect();
    out.sort();
    out
}

fn compile(text: &str) -> Policy {
    match Policy::from_yaml(text, PATH) {
        Ok(p) => p,
        Err(e) => panic!("policy should compile, got:\n{e}"),
    }
}

fn error(text: &str) -> PolicyError {
    match Policy::from_yaml(text, PATH) {
        Ok(_) => panic!("policy should be rejected:\n{text}"),
        Err(e) => e,
    }
}

fn rule_texts(rules: &[agent_gate::core::scope::Rule]) -> Vec<(String, RuleOrigin)> {
    rules
        .iter()
        .map(|r| (r.pattern.as_str().to_string(), r.origin.clone()))
        .collect()
}

fn at(line: usize, column: usize) -> RuleOrigin {
    RuleOrigin::Policy { line, column }
}

// ---------------------------------------------------------------------------------------
// Compiled values

/// 1-based (line, column) of `needle` on the first line of `text` that contains `line_needle`.
fn position_in_line(text: &str, line_needle: &str, needle: &str) -> RuleOrigin {
    let (index, line) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains(line_needle))
        .expect("line");
    let byte = line.find(needle).expect("needle on the line");
    at(index + 1, line[..byte].chars().count() + 1)
}

#[test]
fn docs_example_compiles_to_its_values() {
    let text = docs_example();
    let p = compile(&text);
    assert_eq!(p.path, PATH);
    assert_eq!(p.repositories, vec!["octo-org/payments".to_string()]);

    let a = &p.agent;
    assert_eq!(a.base_ref.as_deref(), Some("main"));
    assert_eq!(a.timeout, Duration::from_mins(45));
    assert_eq!(a.poll_initial, Duration::from_secs(5));
    assert_eq!(a.poll_max, Duration::from_mins(1));
    assert_eq!(a.poll_watch, Duration::from_secs(5));
    assert_eq!(a.on_idle, OnIdle::Accept);
    assert_eq!(a.on_waiting_for_user, OnWaitingForUser::Fail);
    assert!(a.create_pull_request);
    assert!(!a.allow_no_change);
    assert_eq!(a.max_concurrent_tasks, Some(2));
    assert_eq!(a.reserved_for_high, 1);
    assert_eq!(a.max_tasks_per_day, Some(20));
    assert_eq!(a.max_ai_credits_per_day, Some(500.0));
    assert_eq!(a.repair_rounds, 1);

    // Rules keep their text, line and column (the column of a quoted glob is its quote).
    assert_eq!(
        rule_texts(p.scope.allow()),
        vec![
            (
                "src/services/**".into(),
                position_in_line(&text, "allow:", "\"src/services")
            ),
            (
                "tests/**".into(),
                position_in_line(&text, "allow:", "\"tests/**")
            ),
        ]
    );
    assert_eq!(
        rule_texts(p.scope.deny()),
        vec![
            (
                "**/*.pem".into(),
                position_in_line(&text, "deny:", "\"**/*.pem")
            ),
            (
                "migrations/**".into(),
                position_in_line(&text, "deny:", "\"migrations")
            ),
        ]
    );
    // Sanity of the helper against hand-counted values (docs/policy.md as of this writing).
    assert_eq!(
        position_in_line(&text, "allow:", "\"src/services"),
        at(17, 11)
    );

    // The policy's own protected rule comes after the always-protected ones.
    assert_eq!(
        rule_texts(p.scope.protected()).last(),
        Some(&(
            "deploy/**".into(),
            position_in_line(&text, "protected:", "\"deploy/**")
        ))
    );

    assert_eq!(p.limits.max_files, Some(200));
    assert_eq!(p.limits.max_changed_lines, Some(5000));
    for switch in [
        p.limits.binary_files,
        p.limits.symlinks,
        p.limits.submodules,
        p.limits.mode_changes,
    ] {
        assert_eq!(switch, Allowance::Deny);
    }
    assert_eq!(p.checks_on_violation, OnViolation::Skip);
    assert_eq!(p.checks_isolation, Isolation::Strict);

    assert_eq!(p.checks.len(), 3);
    let line_of = |needle: &str| match position_in_line(&text, needle, needle) {
        RuleOrigin::Policy { line, .. } => line,
        other => panic!("{other:?}"),
    };
    let unit = &p.checks[0];
    assert_eq!(
        (unit.name.as_str(), unit.run.as_str()),
        ("unit tests", "cargo test --locked")
    );
    assert_eq!(unit.timeout, Duration::from_mins(20));
    assert_eq!(unit.line, line_of("name: unit tests"));
    let when = unit.when.as_ref().expect("when");
    assert_eq!(
        rule_texts(when.rules()),
        vec![
            (
                "src/**".into(),
                position_in_line(&text, "when:", "\"src/**")
            ),
            (
                "tests/**".into(),
                position_in_line(&text, "when:", "\"tests/**")
            ),
            (
                "Cargo.*".into(),
                position_in_line(&text, "when:", "\"Cargo.*")
            ),
        ]
    );
    assert!(unit.files.is_none());
    assert!(unit.required);
    assert_eq!(
        unit.env.iter().collect::<Vec<_>>(),
        vec![(&"RUST_BACKTRACE".to_string(), &"1".to_string())]
    );

    let clippy = &p.checks[1];
    assert_eq!(clippy.name, "clippy");
    assert_eq!(clippy.run, "cargo clippy --all-targets -- -D warnings");
    assert_eq!(
        clippy.timeout,
        Duration::from_mins(10),
        "check timeout defaults to 10m"
    );
    assert!(clippy.when.is_none() && clippy.files.is_none() && clippy.required);
    assert_eq!(clippy.line, line_of("name: clippy"));

    let ruff = &p.checks[2];
    assert_eq!(ruff.run, "ruff check {files}");
    assert_eq!(
        rule_texts(ruff.files.as_ref().expect("files").rules()),
        vec![(
            "**/*.py".into(),
            position_in_line(&text, "files: \"", "\"**/*.py")
        )]
    );
    assert!(!ruff.required);

    assert_eq!(p.report.status_context, "agent-gate");
    assert!(p.report.comment);
}

#[test]
fn the_shipped_complete_example_is_the_docs() {
    let shipped = std::fs::read_to_string(manifest_dir().join("examples/policies/complete.yml"))
        .expect("complete.yml");
    assert!(
        shipped.ends_with(&docs_example()),
        "examples/policies/complete.yml drifted from docs/policy.md"
    );
}

#[test]
fn every_field_but_version_has_a_default() {
    let p = compile("version: 1\n");
    assert!(p.repositories.is_empty());
    let a = &p.agent;
    assert_eq!(a.base_ref, None);
    assert_eq!(a.timeout, Duration::from_hours(1));
    assert_eq!(
        (a.poll_initial, a.poll_max),
        (Duration::from_secs(5), Duration::from_mins(1))
    );
    assert_eq!(a.on_idle, OnIdle::Accept);
    assert_eq!(a.on_waiting_for_user, OnWaitingForUser::Fail);
    assert!(a.create_pull_request);
    assert!(!a.allow_no_change);
    assert_eq!(a.max_concurrent_tasks, None);
    assert_eq!(a.reserved_for_high, 0);
    assert_eq!(a.max_tasks_per_day, None);
    assert_eq!(a.max_ai_credits_per_day, None);
    assert_eq!(a.repair_rounds, 0);
    assert!(p.scope.allow().is_empty());
    assert!(p.scope.deny().is_empty());
    assert_eq!(p.limits.max_files, None);
    assert_eq!(p.limits.max_changed_lines, None);
    for switch in [
        p.limits.binary_files,
        p.limits.symlinks,
        p.limits.submodules,
        p.limits.mode_changes,
    ] {
        assert_eq!(switch, Allowance::Deny);
    }
    assert_eq!(p.checks_on_violation, OnViolation::Skip);
    assert_eq!(p.checks_isolation, Isolation::Strict);
    assert!(p.checks.is_empty());
    assert_eq!(p.report.status_context, "agent-gate");
    assert!(p.report.comment);
    // Empty sections and explicit nulls mean "defaults" too.
    let p = compile("version: 1\nagent:\nscope: {}\nchecks: []\nreport:\n");
    assert_eq!(p.agent.timeout, Duration::from_hours(1));
    assert!(p.checks.is_empty());
}

#[test]
fn every_example_policy_compiles() {
    let examples = examples();
    assert!(
        examples.len() >= 4,
        "expected the example policies, found {}",
        examples.len()
    );
    for (path, text) in examples {
        if let Err(e) = Policy::from_yaml(&text, PATH) {
            panic!("{} does not compile:\n{e}", path.display());
        }
    }
}

#[test]
fn added_keys_compile() {
    let p = compile(
        "version: 1\n\
         agent:\n  allow-no-change: true\n  timeout: 1h30m\n  poll: { initial: 10s, max: 2m }\n\
         scope:\n  protected: [\"deploy/**\", \"/Dockerfile\"]\n\
         checks-isolation: best-effort\n\
         checks:\n  - name: t\n    run: make test\n    env:\n      RUST_LOG: debug\n      N: 3\n",
    );
    assert!(p.agent.allow_no_change);
    assert_eq!(p.agent.timeout, Duration::from_mins(90));
    assert_eq!(p.agent.poll_max, Duration::from_mins(2));
    assert_eq!(p.checks_isolation, Isolation::BestEffort);
    let env: Vec<_> = p.checks[0]
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(env, vec![("N", "3"), ("RUST_LOG", "debug")]);
    let extra: Vec<_> = p
        .scope
        .protected()
        .iter()
        .filter(|r| matches!(r.origin, RuleOrigin::Policy { .. }))
        .collect();
    assert_eq!(
        rule_texts(&extra.into_iter().cloned().collect::<Vec<_>>()),
        vec![
            ("deploy/**".into(), at(7, 15)),
            ("/Dockerfile".into(), at(7, 28)),
        ]
    );
    // The policy can only add protection: its own file and the workflows stay protected.
    assert!(!p.scope.decide(b"deploy/prod.yaml").in_scope);
    assert!(!p.scope.decide(PATH.as_bytes()).in_scope);
    assert!(!p.scope.decide(b".github/workflows/ci.yml").in_scope);
    assert!(p.scope.decide(b"src/lib.rs").in_scope);
}

#[test]
fn duplicate_rule_texts_keep_their_own_lines() {
    let p = compile(
        "version: 1\nscope:\n  allow:\n    - src/**\n    - docs/**\n    - src/**\n  deny: [a, 'a',   \"a\"]\n",
    );
    assert_eq!(
        rule_texts(p.scope.allow()),
        vec![
            ("src/**".into(), at(4, 7)),
            ("docs/**".into(), at(5, 7)),
            ("src/**".into(), at(6, 7))
        ]
    );
    assert_eq!(
        rule_texts(p.scope.deny()),
        vec![
            ("a".into(), at(7, 10)),
            ("a".into(), at(7, 13)),
            ("a".into(), at(7, 20))
        ]
    );
}

#[test]
fn a_single_glob_string_is_a_one_rule_list() {
    let p = compile(
        "version: 1\nscope:\n  allow: \"src/**\"\nchecks:\n  - name: x\n    run: y\n    when: '*.rs'\n",
    );
    assert_eq!(
        rule_texts(p.scope.allow()),
        vec![("src/**".into(), at(3, 10))]
    );
    assert_eq!(
        rule_texts(p.checks[0].when.as_ref().expect("when").rules()),
        vec![("*.rs".into(), at(7, 11))]
    );
}

#[test]
fn durations() {
    let ok = [
        ("30s", 30),
        ("45m", 2700),
        ("2h", 7200),
        ("1h30m", 5400),
        ("1h30m15s", 5415),
        ("90s", 90),
        ("1m1s", 61),
        ("0h5m", 300),
    ];
    for (text, secs) in ok {
        assert_eq!(
            parse_duration(text),
            Some(Duration::from_secs(secs)),
            "{text}"
        );
    }
    for bad in [
        "",
        "0s",
        "0h0m",
        "30",
        "s",
        "5 m",
        "1.5h",
        "-5m",
        "5d",
        "30m1h",
        "1h1h",
        "5ms",
        "99999999999999999999h",
        "h5",
    ] {
        assert_eq!(parse_duration(bad), None, "{bad:?} should be rejected");
    }
    assert_eq!(format_duration(Duration::from_mins(90)), "1h30m");
    assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
    assert_eq!(format_duration(Duration::from_hours(1)), "1h");
}

// ---------------------------------------------------------------------------------------
// Errors: what a policy author reads. Each names file, line and column.

fn snapshot_error(text: &str) -> String {
    let e = error(text);
    let (line, column) = e
        .location()
        .expect("every one of these errors has a location");
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("{PATH}:{line}:{column}: ")),
        "{shown}"
    );
    shown
}

#[test]
fn error_unknown_key() {
    assert_snapshot!(
        "unknown_key",
        snapshot_error("version: 1\nagent:\n  timeout: 45m\n  time-out: 45m\n")
    );
}

#[test]
fn error_unknown_top_level_key() {
    assert_snapshot!(
        "unknown_top_level_key",
        snapshot_error("version: 1\nchecks-on-violations: run\n")
    );
}

#[test]
fn error_wrong_type() {
    assert_snapshot!(
        "wrong_type_number",
        snapshot_error("version: 1\nscope:\n  max-files: lots\n")
    );
    assert_snapshot!(
        "wrong_type_list_for_string",
        snapshot_error("version: 1\nagent:\n  base-ref: [main]\n")
    );
    assert_snapshot!(
        "wrong_type_section",
        snapshot_error("version: 1\nscope: everything\n")
    );
    assert_snapshot!(
        "wrong_type_bool",
        snapshot_error("version: 1\nagent:\n  create-pull-request: yes\n")
    );
}

#[test]
fn error_unknown_value() {
    assert_snapshot!(
        "unknown_value",
        snapshot_error("version: 1\nagent:\n  on-idle: acept\n")
    );
}

#[test]
fn error_missing_version() {
    assert_snapshot!(
        "missing_version",
        snapshot_error("# policy\nagent:\n  timeout: 45m\n")
    );
}

#[test]
fn error_unsupported_version() {
    // Reported as a version problem even though version 2 has keys this one does not know.
    assert_snapshot!(
        "unsupported_version",
        snapshot_error("version: 2\nsandbox: strict\n")
    );
    assert_snapshot!("quoted_version", snapshot_error("version: \"1\"\n"));
}

#[test]
fn error_bad_duration() {
    assert_snapshot!(
        "bad_duration",
        snapshot_error("version: 1\nagent:\n  timeout: 45 minutes\n")
    );
    assert_snapshot!(
        "zero_duration",
        snapshot_error("version: 1\nchecks:\n  - name: t\n    run: x\n    timeout: 0s\n")
    );
}

#[test]
fn error_bad_glob() {
    assert_snapshot!(
        "bad_glob",
        snapshot_error("version: 1\nscope:\n  allow:\n    - \"src/**\"\n    - \"src/[a\"\n")
    );
    assert_snapshot!(
        "negated_glob",
        snapshot_error("version: 1\nscope:\n  deny: [\"!keep.txt\"]\n")
    );
}

#[test]
fn error_unquoted_star_glob() {
    assert_snapshot!(
        "unquoted_glob_flow",
        snapshot_error("version: 1\nscope:\n  deny: [*.pem]\n")
    );
    assert_snapshot!(
        "unquoted_glob_block",
        snapshot_error("version: 1\nscope:\n  deny:\n    - \"a/**\"\n    - **/*.pem\n")
    );
}

#[test]
fn error_other_yaml_traps_in_globs() {
    assert_snapshot!(
        "unquoted_tag_glob",
        snapshot_error("version: 1\nscope:\n  deny:\n    - !important.txt\n")
    );
    assert_snapshot!(
        "unquoted_brace_glob",
        snapshot_error("version: 1\nscope:\n  allow:\n    - {src,tests}/**\n")
    );
    assert_snapshot!(
        "mapping_for_list",
        snapshot_error("version: 1\nchecks:\n  name: tests\n  run: make\n")
    );
    assert_snapshot!(
        "number_for_glob",
        snapshot_error("version: 1\nscope:\n  allow: 5\n")
    );
}

#[test]
fn error_duplicate_key() {
    assert_snapshot!(
        "duplicate_key",
        snapshot_error(
            "version: 1\nagent:\n  timeout: 45m\n  poll: {initial: 5s}\n  timeout: 1h\n"
        )
    );
}

#[test]
fn error_tab_indentation() {
    assert_snapshot!(
        "tab_indentation",
        snapshot_error("version: 1\nscope:\n\tallow: [\"src/**\"]\n")
    );
}

#[test]
fn error_unquoted_colon_in_a_run_command() {
    assert_snapshot!(
        "unquoted_colon_in_run",
        snapshot_error("version: 1\nchecks:\n  - name: greet\n    run: echo hello: world\n")
    );
}

/// The quoted form the hint suggests is valid YAML that gives back the command as written.
#[test]
fn the_colon_hint_suggests_a_value_that_reads_back_as_the_command() {
    for command in [
        "echo hello: world",
        "python -c \"print(1)\"; echo key: value",
        "grep -n 'TODO: ' src/main.rs",
    ] {
        let text = format!("version: 1\nchecks:\n  - name: c\n    run: {command}\n");
        let shown = error(&text).to_string();
        let hint = shown
            .split_once("hint: ")
            .unwrap_or_else(|| panic!("a hint: {shown}"))
            .1;
        assert!(hint.contains("`run: |`"), "{hint}");
        let Some(start) = hint.find("(`run: ") else {
            // No quoting works for this one (both quote kinds in it): the block is the way.
            assert!(command.contains('\'') && command.contains('"'), "{hint}");
            continue;
        };
        let quoted = &hint[start + 2..];
        let quoted = &quoted[..quoted.find("`)").expect("end of the suggestion")];
        let fixed = format!("version: 1\nchecks:\n  - name: c\n    {quoted}\n");
        assert_eq!(compile(&fixed).checks[0].run, command, "{fixed}");
    }
}

#[test]
fn error_lone_carriage_return() {
    // YAML would count the lone CR as a line break and put the `\0` on line 5; git and
    // GitHub count it on line 4, so the file is refused at the CR, in their lines.
    let text = "version: 1\nscope:\n  allow: [\r\r\"src/**\"]\n\0  max-files: 3\n";
    assert_snapshot!("lone_carriage_return", snapshot_error(text));
    let e = error(text);
    assert_eq!(e.location(), Some((3, 11)));
    // CRLF line endings are line endings.
    let crlf = "version: 1\r\nscope:\r\n  allow: [\"src/**\"]\r\n";
    let policy = Policy::from_yaml(crlf, PATH).expect("a CRLF policy loads");
    assert!(policy.scope.decide(b"src/a.rs").in_scope);
    assert!(!policy.scope.decide(b"docs/a.md").in_scope);
}

#[test]
fn error_bad_indentation() {
    assert_snapshot!(
        "bad_indentation",
        snapshot_error("version: 1\nscope:\n  allow: [\"src/**\"]\n   max-files: 3\n")
    );
}

#[test]
fn error_limits_and_names() {
    assert_snapshot!(
        "reserved_not_below_max",
        snapshot_error("version: 1\nagent:\n  max-concurrent-tasks: 2\n  reserved-for-high: 2\n")
    );
    assert_snapshot!(
        "reserved_without_max",
        snapshot_error("version: 1\nagent:\n  reserved-for-high: 1\n")
    );
    assert_snapshot!(
        "poll_max_below_initial",
        snapshot_error("version: 1\nagent:\n  poll: { initial: 2m, max: 30s }\n")
    );
    assert_snapshot!(
        "poll_watch_below_a_second",
        snapshot_error("version: 1\nagent:\n  poll: { watch: 0s }\n")
    );
    assert_snapshot!(
        "bad_repository",
        snapshot_error("version: 1\nrepositories: [octo-org/payments, payments]\n")
    );
    assert_snapshot!(
        "duplicate_check",
        snapshot_error(
            "version: 1\nchecks:\n  - name: tests\n    run: a\n  - name: lint\n    run: b\n  - name: tests\n    run: c\n"
        )
    );
    assert_snapshot!(
        "missing_run",
        snapshot_error("version: 1\nchecks:\n  - name: tests\n")
    );
    assert_snapshot!(
        "empty_when",
        snapshot_error("version: 1\nchecks:\n  - name: t\n    run: x\n    when: []\n")
    );
    assert_snapshot!(
        "base_ref_option",
        snapshot_error("version: 1\nagent:\n  base-ref: --upload-pack=evil\n")
    );
    assert_snapshot!(
        "bad_env_name",
        snapshot_error(
            "version: 1\nchecks:\n  - name: t\n    run: x\n    env:\n      BAD-NAME: 1\n"
        )
    );
}

#[test]
fn error_whole_document() {
    assert_snapshot!("empty", snapshot_error("# nothing here yet\n\n"));
    assert_snapshot!("not_a_mapping", snapshot_error("- version: 1\n"));
    assert_snapshot!(
        "two_documents",
        snapshot_error("version: 1\n---\nversion: 1\n")
    );
}

#[test]
fn error_accessors_agree_with_display() {
    let e = error("version: 1\nscope:\n  deny: [*.pem]\n");
    assert_eq!(e.path(), PATH);
    assert_eq!(e.location(), Some((3, 10)));
    assert!(e.message().contains("quote the pattern"), "{}", e.message());
    let hint = e.hint().expect("a hint");
    assert_eq!(
        e.to_string(),
        format!("{PATH}:3:10: {}\n  hint: {hint}", e.message())
    );
    assert!(matches!(
        e,
        PolicyError::Yaml {
            problem: Problem::UnquotedGlob {
                line: 3,
                column: 10,
                ..
            },
            ..
        }
    ));
}

// ---------------------------------------------------------------------------------------
// describe

#[test]
fn describe_docs_example() {
    assert_snapshot!("describe_docs_example", describe(&compile(&docs_example())));
}

#[test]
fn describe_python_service_example() {
    let text = std::fs::read_to_string(manifest_dir().join("examples/policies/python-service.yml"))
        .expect("example");
    assert_snapshot!("describe_python_service", describe(&compile(&text)));
}

#[test]
fn describe_minimal_policy_shows_defaults() {
    assert_snapshot!("describe_minimal", describe(&compile("version: 1\n")));
}

// ---------------------------------------------------------------------------------------
// JSON Schema

#[test]
fn committed_schema_is_the_generated_one() {
    let path = manifest_dir().join("schema/agent-gate.schema.json");
    let generated = policy::json_schema();
    if std::env::var_os("AGENT_GATE_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write schema");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "schema/agent-gate.schema.json is out of date: run `AGENT_GATE_BLESS=1 cargo test --test it policy::` and commit it"
    );
}

/// Every key of `value` must be declared by `schema` (following `$ref`, `anyOf`/`oneOf`,
/// `items`); returns the dotted paths of keys the schema does not know.
fn undeclared_keys(
    root: &serde_json::Value,
    schema: &serde_json::Value,
    value: &serde_json::Value,
    at: &str,
) -> Vec<String> {
    let schema = resolve(root, schema);
    // Beside `properties`, a `oneOf` only constrains which keys are required (a check has
    // `run` or `github-checks`); without them, it lists alternative schemas.
    let constraints_only = schema.get("properties").is_some();
    let alternatives: Vec<&serde_json::Value> = ["anyOf", "oneOf"]
        .iter()
        .filter(|_| !constraints_only)
        .filter_map(|k| schema.get(*k).and_then(|v| v.as_array()))
        .flatten()
        .map(|s| resolve(root, s))
        .collect();
    if !alternatives.is_empty() {
        // The value must fit at least one alternative.
        let mut best: Option<Vec<String>> = None;
        for alt in alternatives {
            let missing = undeclared_keys(root, alt, value, at);
            if best.as_ref().is_none_or(|b| missing.len() < b.len()) {
                best = Some(missing);
            }
        }
        return best.unwrap_or_default();
    }
    let mut missing = Vec::new();
    match value {
        serde_json::Value::Object(map) => {
            let props = schema.get("properties").and_then(|p| p.as_object());
            let additional = schema.get("additionalProperties");
            for (key, child) in map {
                let path = format!("{at}.{key}");
                match props.and_then(|p| p.get(key)) {
                    Some(child_schema) => {
                        missing.extend(undeclared_keys(root, child_schema, child, &path));
                    }
                    None => match additional {
                        Some(extra) if extra.is_object() => {
                            missing.extend(undeclared_keys(root, extra, child, &path));
                        }
                        _ => missing.push(path),
                    },
                }
            }
        }
        serde_json::Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    missing.extend(undeclared_keys(
                        root,
                        item_schema,
                        item,
                        &format!("{at}[{i}]"),
                    ));
                }
            }
        }
        _ => {}
    }
    missing
}

fn resolve<'a>(
    root: &'a serde_json::Value,
    schema: &'a serde_json::Value,
) -> &'a serde_json::Value {
    match schema
        .get("$ref")
        .and_then(|r| r.as_str())
        .and_then(|r| r.strip_prefix("#/"))
    {
        Some(pointer) => root.pointer(&format!("/{pointer}")).expect("$ref resolves"),
        None => schema,
    }
}

#[test]
fn every_key_of_the_examples_is_in_the_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(&policy::json_schema()).expect("schema is JSON");
    let mut texts = examples();
    texts.push((PathBuf::from("docs/policy.md"), docs_example()));
    for (path, text) in texts {
        let value: serde_json::Value = serde_saphyr::from_str(&text).expect("example is YAML");
        let missing = undeclared_keys(&schema, &schema, &value, "");
        assert!(
            missing.is_empty(),
            "{}: keys missing from the schema: {missing:?}",
            path.display()
        );
    }
    // And the walk does catch a key the schema does not declare.
    let bad: serde_json::Value =
        serde_json::json!({"version": 1, "agent": {"timeout": "5m", "sandbox": true}});
    assert_eq!(
        undeclared_keys(&schema, &schema, &bad, ""),
        vec![".agent.sandbox".to_string()]
    );
}

#[test]
fn schema_keys_are_exactly_what_the_parser_accepts() {
    // A key the schema declares is accepted by the parser, in every section.
    let schema: serde_json::Value =
        serde_json::from_str(&policy::json_schema()).expect("schema is JSON");
    let top: Vec<&String> = schema["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .collect();
    for key in [
        "version",
        "repositories",
        "agent",
        "scope",
        "checks-on-violation",
        "checks-isolation",
        "checks",
        "report",
    ] {
        assert!(
            top.iter().any(|k| *k == key),
            "{key} missing from the schema"
        );
    }
    assert_eq!(top.len(), 8, "{top:?}");
    let agent = schema["$defs"]["Agent"]["properties"]
        .as_object()
        .expect("agent");
    assert!(agent.contains_key("allow-no-change") && agent.contains_key("max-ai-credits-per-day"));
    let scope = schema["$defs"]["Scope"]["properties"]
        .as_object()
        .expect("scope");
    assert!(scope.contains_key("protected"));
    let check = schema["$defs"]["Check"]["properties"]
        .as_object()
        .expect("check");
    assert!(check.contains_key("env"));
}

#[test]
fn every_schema_key_is_documented() {
    fn keys(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(props) = map.get("properties").and_then(|p| p.as_object()) {
                    out.extend(props.keys().cloned());
                }
                map.values().for_each(|v| keys(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| keys(v, out)),
            _ => {}
        }
    }
    let schema: serde_json::Value =
        serde_json::from_str(&policy::json_schema()).expect("schema is JSON");
    let mut all = Vec::new();
    keys(&schema, &mut all);
    assert!(all.len() > 30, "{all:?}");
    let docs =
        std::fs::read_to_string(manifest_dir().join("docs/policy.md")).expect("docs/policy.md");
    for key in all {
        assert!(
            docs.contains(&format!("`{key}`")) || docs.contains(&format!("`poll.{key}`")),
            "docs/policy.md does not document `{key}`"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Never panics

fn example_texts() -> Vec<String> {
    let mut texts: Vec<String> = examples().into_iter().map(|(_, t)| t).collect();
    texts.push(docs_example());
    texts
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = Policy::from_yaml(&text, PATH);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = Policy::from_yaml(&text, PATH);
    }

    #[test]
    fn yamlish_text_never_panics(text in "(version: 1\n)?([ \t]{0,4}(- )?[a-z*&!\\[\\]{}:,#\"'| -]{0,12}(: )?[a-z0-9*/.\\[\\]{}\"' ]{0,10}\n){0,8}") {
        if let Err(e) = Policy::from_yaml(&text, PATH) {
            // Every error renders, and its location (when given) is inside the text.
            let _ = e.to_string();
            if let Some((line, column)) = e.location() {
                prop_assert!(line >= 1 && column >= 1);
                prop_assert!(line <= text.lines().count() + 1, "line {} of {:?}", line, text);
            }
        }
    }

    #[test]
    fn mutated_examples_never_panic(
        which in 0usize..16,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<char>()), 1..6),
    ) {
        let texts = example_texts();
        let mut chars: Vec<char> = texts[which % texts.len()].chars().collect();
        for (index, op, c) in edits {
            if chars.is_empty() {
                chars.push(c);
                continue;
            }
            let i = index.index(chars.len());
            match op {
                0 => chars[i] = c,
                1 => chars.insert(i, c),
                2 => { chars.remove(i); }
                _ => {
                    // Duplicate a line-sized chunk: duplicate keys, deeper nesting.
                    let end = (i + 40).min(chars.len());
                    let chunk: Vec<char> = chars[i..end].to_vec();
                    chars.splice(i..i, chunk);
                }
            }
        }
        let text: String = chars.into_iter().collect();
        if let Err(e) = Policy::from_yaml(&text, PATH) {
            let _ = e.to_string();
        }
    }
}

#[test]
fn duplicate_key_points_at_the_first_one_too() {
    let e = error(
        "version: 1\nchecks:\n  - name: a\n    run: x\n  - name: b\n    run: y\n    name: c\n",
    );
    assert!(
        matches!(
            e,
            PolicyError::Yaml {
                problem: Problem::DuplicateKey {
                    line: 7,
                    column: 5,
                    first_line: Some(5),
                    ..
                },
                ..
            }
        ),
        "{e:?}"
    );
}

/// `image:` compiles with its defaults and limits; limits without an image, and bad sizes,
/// are config errors that point at the key.
#[test]
fn a_check_image_and_its_limits_compile_and_stray_limits_are_errors() {
    use agent_gate::core::policy::{CheckNetwork, Policy};
    let p = Policy::from_yaml(
        "version: 1\nchecks:\n  - name: py\n    run: pytest\n    image: python:3.12-slim\n  - name: node\n    run: npm test\n    image: node:22\n    network: bridge\n    memory: 512m\n    cpus: 1.5\n    pids: 64\n",
        ".github/agent-gate.yml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let py = p.checks[0].image.as_ref().unwrap();
    assert_eq!(py.image, "python:3.12-slim");
    assert_eq!(py.network, CheckNetwork::None);
    assert_eq!(py.memory_bytes, 2 << 30);
    assert_eq!(py.nano_cpus, 2_000_000_000);
    assert_eq!(py.pids, 1024);
    let node = p.checks[1].image.as_ref().unwrap();
    assert_eq!(node.network, CheckNetwork::Bridge);
    assert_eq!(node.memory_bytes, 512 << 20);
    assert_eq!(node.nano_cpus, 1_500_000_000);
    assert_eq!(node.pids, 64);
    assert!(p.checks.iter().all(|c| c.image.is_some()));

    for (yaml, key) in [
        ("    network: host\n", "checks[0].network"),
        ("    image: debian\n    memory: 5m\n", "checks[0].memory"),
        ("    image: debian\n    memory: lots\n", "checks[0].memory"),
        ("    image: debian\n    cpus: 0\n", "checks[0].cpus"),
        ("    image: \"\"\n", "checks[0].image"),
    ] {
        let text = format!("version: 1\nchecks:\n  - name: c\n    run: make\n{yaml}");
        let err = Policy::from_yaml(&text, ".github/agent-gate.yml")
            .expect_err(&text)
            .to_string();
        assert!(err.contains(key), "{yaml}: {err}");
    }
}
