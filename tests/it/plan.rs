//! Tests of batch manifests and `agent-gate plan`: the shipped example expands into the
//! golden matrix, task keys are stable under the documented rule (and change when they
//! should), the 256-job limit, every kind of mistake reported with line and column
//! (snapshots), the command's outputs (`GITHUB_OUTPUT`, stdout, stderr, annotations), and no
//! input panics.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use agent_gate::core::manifest::{
    MAX_JOBS, Manifest, ManifestError, Priority, parse_date, plan, task_key,
};
use agent_gate::flow::fleet::{PlanCommand, PlanOutput, plan_command};
use insta::assert_snapshot;
use jiff::civil::{Date, date};
use proptest::prelude::*;

use crate::support::Cli;

const PATH: &str = "fleet/nightly.yml";

fn day() -> Date {
    date(2026, 3, 10)
}

/// When the plan job runs (the start of a paced batch).
fn start() -> jiff::Timestamp {
    "2026-03-10T02:17:00Z".parse().unwrap()
}

fn example_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/manifests/nightly.yml")
}

fn compile(text: &str) -> Manifest {
    Manifest::from_yaml(text, PATH).unwrap_or_else(|e| panic!("manifest should compile:\n{e}"))
}

fn error(text: &str) -> ManifestError {
    match Manifest::from_yaml(text, PATH) {
        Ok(m) => panic!("manifest should be rejected:\n{text}\ngot {m:?}"),
        Err(e) => e,
    }
}

fn keys(text: &str, date: Date) -> Vec<String> {
    plan(&compile(text), date, start())
        .expect("plan")
        .jobs
        .into_iter()
        .map(|j| j.task_key)
        .collect()
}

const SMALL: &str = r#"version: 1
entries:
  - id: deps
    repositories: [octo-org/payments, octo-org/ledger]
    instruction: Update the dependencies.
    scope: ["Cargo.*"]
  - repositories: [octo-org/docs]
    instruction: Fix broken links.
    scope: ["docs/**"]
"#;

// ---------------------------------------------------------------------------------------
// Expansion

#[test]
fn the_example_expands_into_the_golden_matrix() {
    let text = std::fs::read_to_string(example_path()).expect("example");
    let manifest = compile(&text);
    let planned = plan(&manifest, day(), start()).expect("plan");
    assert_eq!(planned.jobs.len(), 5);
    assert_snapshot!("nightly_matrix", planned.matrix_json_pretty());
    assert_snapshot!("nightly_summary", planned.summary(&manifest));
    // The one-line form is the same JSON.
    let a: serde_json::Value = serde_json::from_str(&planned.matrix_json()).unwrap();
    let b: serde_json::Value = serde_json::from_str(&planned.matrix_json_pretty()).unwrap();
    assert_eq!(a, b);
    assert!(!planned.matrix_json().contains('\n'), "one line");
}

#[test]
fn defaults_apply_and_entries_override_them() {
    let m = compile(
        r#"version: 1
defaults: {policy: ci/gate.yml, timeout: 1h30m, priority: low, base-ref: develop}
entries:
  - repositories: [a/one]
    instruction: "  Do it.  "
    scope: []
  - repositories: [a/two]
    instruction: Do it.
    scope: ["src/**", "tests/**"]
    policy: other.yml
    timeout: 10m
    priority: HIGH
    base-ref: release/1.x
"#,
    );
    let jobs = plan(&m, day(), start()).unwrap().jobs;
    let j = |i: usize| serde_json::to_value(&jobs[i]).unwrap();
    assert_eq!(j(0)["policy"], "ci/gate.yml");
    assert_eq!(j(0)["timeout"], "1h30m");
    assert_eq!(j(0)["priority"], "low");
    assert_eq!(j(0)["base-ref"], "develop");
    assert_eq!(j(0)["instruction"], "Do it.");
    assert_eq!(j(0)["scope"], "");
    assert_eq!(j(1)["policy"], "other.yml");
    assert_eq!(j(1)["timeout"], "10m");
    assert_eq!(j(1)["priority"], "high");
    assert_eq!(j(1)["base-ref"], "release/1.x");
    assert_eq!(j(1)["scope"], "src/**\ntests/**");
    assert_eq!(m.entries[1].priority, Priority::High);
}

#[test]
fn without_defaults_the_policy_decides() {
    let m = compile("version: 1\nentries:\n  - {repositories: [a/b], instruction: x, scope: []}\n");
    let job = serde_json::to_value(&plan(&m, day(), start()).unwrap().jobs[0]).unwrap();
    assert_eq!(job["policy"], ".github/agent-gate.yml");
    assert_eq!(job["timeout"], "");
    assert_eq!(job["base-ref"], "");
    assert_eq!(job["priority"], "normal");
    let keys: Vec<&str> = job
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys.iter().copied().collect::<HashSet<_>>(),
        [
            "repository",
            "instruction",
            "scope",
            "policy",
            "timeout",
            "priority",
            "base-ref",
            "task-key",
            "not-before",
            "entry"
        ]
        .into_iter()
        .collect()
    );
}

// ---------------------------------------------------------------------------------------
// Task keys

#[test]
fn keys_are_stable_for_the_same_entry_repository_and_date() {
    assert_eq!(keys(SMALL, day()), keys(SMALL, day()));
    // Reformatting the YAML changes nothing.
    let reformatted = "version: 1\n\n# comment\nentries:\n  - {id: deps, repositories: [octo-org/payments, octo-org/ledger], instruction: \"Update the dependencies.\", scope: [\"Cargo.*\"]}\n  - {repositories: [octo-org/docs], instruction: Fix broken links., scope: [\"docs/**\"]}\n";
    assert_eq!(keys(reformatted, day()), keys(SMALL, day()));
}

#[test]
fn keys_pin_the_rule() {
    // The published derivation: a change here breaks every re-run that should attach.
    assert_eq!(
        task_key("id:deps", "octo-org/payments", day()),
        "deps-20260310-4f690c612a36"
    );
    assert_eq!(
        task_key("id:deps", "Octo-Org/Payments", day()),
        task_key("id:deps", "octo-org/payments", day()),
        "repositories compare case-insensitively, as on GitHub"
    );
    let k = keys(SMALL, day());
    assert!(k[0].starts_with("deps-20260310-"), "{k:?}");
    assert!(k[2].starts_with("fleet-20260310-"), "{k:?}");
    assert_eq!(k.iter().collect::<HashSet<_>>().len(), 3, "unique: {k:?}");
}

#[test]
fn keys_change_with_the_date_and_the_repository() {
    let today = keys(SMALL, day());
    let tomorrow = keys(SMALL, date(2026, 3, 11));
    assert!(today.iter().zip(&tomorrow).all(|(a, b)| a != b));
    assert_ne!(today[0], today[1]);
}

#[test]
fn an_id_keeps_keys_when_the_content_changes() {
    let edited = SMALL.replace("Update the dependencies.", "Update every dependency.");
    assert_eq!(keys(&edited, day())[..2], keys(SMALL, day())[..2]);
}

#[test]
fn without_an_id_the_content_is_the_identity() {
    let base = keys(SMALL, day())[2].clone();
    // What the task is: instruction, scope, policy, base-ref.
    for edited in [
        SMALL.replace("Fix broken links.", "Fix all broken links."),
        SMALL.replace("docs/**", "site/**"),
        SMALL.replace(
            "    scope: [\"docs/**\"]\n",
            "    scope: [\"docs/**\"]\n    policy: docs.yml\n",
        ),
        SMALL.replace(
            "    scope: [\"docs/**\"]\n",
            "    scope: [\"docs/**\"]\n    base-ref: next\n",
        ),
    ] {
        assert_ne!(keys(&edited, day())[2], base, "{edited}");
    }
    // How to wait is not: priority and timeout.
    let waiting = SMALL.replace(
        "    scope: [\"docs/**\"]\n",
        "    scope: [\"docs/**\"]\n    priority: high\n    timeout: 5m\n",
    );
    assert_eq!(keys(&waiting, day())[2], base);
    // Nor is the order of entries.
    let reordered = "version: 1\nentries:\n  - repositories: [octo-org/docs]\n    instruction: Fix broken links.\n    scope: [\"docs/**\"]\n";
    assert_eq!(keys(reordered, day())[0], base);
}

#[test]
fn dates_parse_strictly() {
    assert_eq!(parse_date("2026-03-10"), Ok(day()));
    for bad in ["2026-3-10", "10/03/2026", "2026-02-30", "", "tomorrow"] {
        assert!(parse_date(bad).is_err(), "{bad}");
    }
}

// ---------------------------------------------------------------------------------------
// The 256-job limit

fn repos(prefix: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("{prefix}/repo-{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn sized(a: usize, b: usize) -> String {
    format!(
        "version: 1\nentries:\n  - id: first\n    repositories: [{}]\n    instruction: one\n    scope: []\n  - repositories: [{}]\n    instruction: two\n    scope: []\n",
        repos("org-a", a),
        repos("org-b", b)
    )
}

#[test]
fn exactly_the_limit_is_planned() {
    let m = compile(&sized(200, 56));
    assert_eq!(plan(&m, day(), start()).unwrap().jobs.len(), MAX_JOBS);
}

#[test]
fn above_the_limit_is_refused_with_how_to_split() {
    let m = compile(&sized(200, 57));
    let e = plan(&m, day(), start()).expect_err("257 jobs");
    assert_eq!(e.location(), (3, 3));
    assert_snapshot!("too_many_jobs", e.to_string());
}

// ---------------------------------------------------------------------------------------
// Errors, with line and column

const ERROR_CASES: &[(&str, &str)] = &[
    ("empty", "# nothing here\n"),
    (
        "missing version",
        "entries:\n  - {repositories: [a/b], instruction: x, scope: []}\n",
    ),
    (
        "version 2",
        "version: 2\nentries:\n  - {repositories: [a/b], instruction: x, scope: []}\n",
    ),
    (
        "quoted version",
        "version: \"1\"\nentries:\n  - {repositories: [a/b], instruction: x, scope: []}\n",
    ),
    (
        "unknown top-level key",
        "version: 1\nentry:\n  - {repositories: [a/b], instruction: x, scope: []}\n",
    ),
    (
        "unknown key in defaults",
        "version: 1\ndefaults:\n  timeout: 5m\n  priorty: high\nentries:\n  - {repositories: [a/b], instruction: x, scope: []}\n",
    ),
    (
        "unknown key in an entry",
        "version: 1\nentries:\n  - repositories: [a/b]\n    instruction: x\n    scope: []\n    scopes: [\"src/**\"]\n",
    ),
    ("missing entries", "version: 1\ndefaults: {timeout: 5m}\n"),
    ("no entries", "version: 1\nentries: []\n"),
    (
        "missing instruction",
        "version: 1\nentries:\n  - repositories: [a/b]\n    scope: []\n",
    ),
    (
        "missing scope",
        "version: 1\nentries:\n  - repositories: [a/b]\n    instruction: x\n",
    ),
    (
        "empty instruction",
        "version: 1\nentries:\n  - repositories: [a/b]\n    instruction: \"   \"\n    scope: []\n",
    ),
    (
        "bad repository name",
        "version: 1\nentries:\n  - repositories:\n      - octo-org/payments\n      - octo-org\n    instruction: x\n    scope: []\n",
    ),
    (
        "repository with a space",
        "version: 1\nentries:\n  - repositories: [octo-org/payments, \"octo org/x\"]\n    instruction: x\n    scope: []\n",
    ),
    (
        "no repositories",
        "version: 1\nentries:\n  - repositories: []\n    instruction: x\n    scope: []\n",
    ),
    (
        "repositories as a string",
        "version: 1\nentries:\n  - repositories: octo-org/payments\n    instruction: x\n    scope: []\n",
    ),
    (
        "duplicate ids",
        "version: 1\nentries:\n  - id: deps\n    repositories: [a/b]\n    instruction: x\n    scope: []\n  - id: deps\n    repositories: [a/c]\n    instruction: y\n    scope: []\n",
    ),
    (
        "bad id",
        "version: 1\nentries:\n  - id: \"nightly deps\"\n    repositories: [a/b]\n    instruction: x\n    scope: []\n",
    ),
    (
        "repository twice in an entry",
        "version: 1\nentries:\n  - repositories: [a/b, a/c, A/B]\n    instruction: x\n    scope: []\n",
    ),
    (
        "two identical entries without ids",
        "version: 1\nentries:\n  - {repositories: [a/b], instruction: x, scope: []}\n  - {repositories: [a/b], instruction: x, scope: [], priority: high}\n",
    ),
    (
        "bad timeout",
        "version: 1\ndefaults:\n  timeout: 45 minutes\nentries:\n  - {repositories: [a/b], instruction: x, scope: []}\n",
    ),
    (
        "bad priority",
        "version: 1\nentries:\n  - repositories: [a/b]\n    instruction: x\n    scope: []\n    priority: urgent\n",
    ),
    (
        "glob with a comma",
        "version: 1\nentries:\n  - repositories: [a/b]\n    instruction: x\n    scope: [\"src/{a,b}/**\"]\n",
    ),
    (
        "negated glob",
        "version: 1\nentries:\n  - repositories: [a/b]\n    instruction: x\n    scope: [\"!src/**\"]\n",
    ),
    (
        "unquoted star glob",
        "version: 1\nentries:\n  - repositories: [a/b]\n    instruction: x\n    scope: [**/*.rs]\n",
    ),
    (
        "absolute policy path",
        "version: 1\nentries:\n  - repositories: [a/b]\n    instruction: x\n    scope: []\n    policy: /etc/agent-gate.yml\n",
    ),
    (
        "bad base-ref",
        "version: 1\ndefaults: {base-ref: \"main..dev\"}\nentries:\n  - {repositories: [a/b], instruction: x, scope: []}\n",
    ),
    (
        "duplicate key",
        "version: 1\nentries:\n  - repositories: [a/b]\n    instruction: x\n    instruction: y\n    scope: []\n",
    ),
    (
        "tab indentation",
        "version: 1\nentries:\n  - repositories: [a/b]\n\tinstruction: x\n",
    ),
    (
        "lone carriage return",
        "version: 1\nentries:\r  - {repositories: [a/b], instruction: x, scope: []}\n",
    ),
    (
        "instruction as a list",
        "version: 1\nentries:\n  - repositories: [a/b]\n    instruction: [x]\n    scope: []\n",
    ),
];

#[test]
fn every_mistake_names_its_line_and_column() {
    let mut out = String::new();
    for (name, text) in ERROR_CASES {
        let e = error(text);
        let _ = writeln!(out, "## {name}\n{e}\n");
    }
    assert_snapshot!("errors", out);
}

#[test]
fn locations_point_at_the_offending_value() {
    let at = |text: &str| error(text).location();
    assert_eq!(at(ERROR_CASES[12].1), (5, 9), "the second repository");
    assert_eq!(at(ERROR_CASES[16].1), (7, 9), "the second id");
    assert_eq!(at(ERROR_CASES[18].1), (3, 30), "the repeated repository");
    assert_eq!(at(ERROR_CASES[21].1), (6, 15), "the priority value");
}

// ---------------------------------------------------------------------------------------
// The command

struct Ran {
    code: u8,
    out: String,
    err: String,
}

fn run_plan(
    manifest: &Path,
    date: Option<&str>,
    format: Option<PlanOutput>,
    output: Option<&Path>,
    annotate: bool,
) -> Ran {
    let cmd = PlanCommand {
        manifest: manifest.to_path_buf(),
        date: date.map(str::to_string),
        today: day(),
        now: start(),
        format,
        github_output: output.map(Path::to_path_buf),
        annotate,
        review_load: None,
    };
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = plan_command(&cmd, &mut out, &mut err);
    Ran {
        code,
        out: String::from_utf8(out).unwrap(),
        err: String::from_utf8(err).unwrap(),
    }
}

#[test]
fn without_github_output_the_matrix_goes_to_stdout() {
    let r = run_plan(&example_path(), None, None, None, false);
    assert_eq!(r.code, 0, "{}", r.err);
    let planned = plan(
        &compile(&std::fs::read_to_string(example_path()).unwrap()),
        day(),
        start(),
    )
    .unwrap();
    assert_eq!(r.out, planned.matrix_json() + "\n");
    assert!(r.err.starts_with("agent-gate plan: 5 jobs"), "{}", r.err);
}

#[test]
fn in_actions_the_matrix_is_a_step_output() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("output");
    std::fs::write(&file, "").unwrap();
    let r = run_plan(&example_path(), Some("2026-03-11"), None, Some(&file), true);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(r.out, "", "nothing on stdout");
    let outputs =
        agent_gate::adapters::actions::parse_file_command(&std::fs::read_to_string(&file).unwrap())
            .expect("the runner can read it");
    let names: Vec<&str> = outputs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["matrix", "jobs"]);
    assert_eq!(outputs[1].1, "5");
    let matrix: serde_json::Value = serde_json::from_str(&outputs[0].1).unwrap();
    let include = matrix["include"].as_array().unwrap();
    assert_eq!(include.len(), 5);
    assert!(
        include[0]["task-key"]
            .as_str()
            .unwrap()
            .contains("-20260311-")
    );
    assert!(r.err.contains("GITHUB_OUTPUT"), "{}", r.err);
    // --format json prints it too, --format text a table.
    let r = run_plan(
        &example_path(),
        None,
        Some(PlanOutput::Json),
        Some(&file),
        true,
    );
    assert!(r.out.starts_with("{\"include\":["));
    let r = run_plan(&example_path(), None, Some(PlanOutput::Text), None, false);
    assert_snapshot!("nightly_table", r.out);
}

#[test]
fn errors_exit_2_with_an_annotation_in_actions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.yml");
    std::fs::write(&path, ERROR_CASES[16].1).unwrap();
    let r = run_plan(&path, None, None, None, true);
    assert_eq!(r.code, 2);
    let line = r.out.lines().next().unwrap_or_default();
    let shown = line.replace(&path.display().to_string(), "m.yml");
    assert_snapshot!("error_annotation", shown);
    assert!(r.err.starts_with("error: "), "{}", r.err);
    let r = run_plan(&path, None, None, None, false);
    assert_eq!(r.out, "", "no annotation outside Actions");
    let r = run_plan(&example_path(), Some("03/10/2026"), None, None, false);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("YYYY-MM-DD"), "{}", r.err);
    let r = run_plan(&dir.path().join("missing.yml"), None, None, None, false);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("cannot read the manifest"), "{}", r.err);
}

/// Every error of a manifest in one pass, in file order, each annotated in Actions.
#[test]
fn every_error_of_a_manifest_is_reported_in_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.yml");
    std::fs::write(
        &path,
        "version: 1\nentries:\n  - repositories: [nope, a/b]\n    instruction: \"\"\n    scope: [\"\"]\n    timeout: 5\n  - id: x\n    repositories: [c/d]\n    instruction: do it\n    scope: [\"src/**\"]\n  - id: x\n    repositories: [e/f]\n    instruction: do it\n    scope: [\"src/**\"]\n",
    )
    .unwrap();
    let r = run_plan(&path, None, None, None, true);
    assert_eq!(r.code, 2);
    let shown = r.err.replace(&path.display().to_string(), "m.yml");
    assert_snapshot!("every_error_in_one_pass", shown);
    assert_eq!(
        r.out.lines().filter(|l| l.starts_with("::error ")).count(),
        5,
        "{}",
        r.out
    );
    let errors = Manifest::from_yaml_all(&std::fs::read_to_string(&path).unwrap(), PATH)
        .expect_err("invalid");
    assert_eq!(errors.len(), 5);
}

#[test]
fn the_binary_plans() {
    let out = Cli::new()
        .args(["plan", "--date", "2026-03-10"])
        .arg(example_path())
        .env_remove("GITHUB_OUTPUT")
        .run();
    assert_eq!(out.status.code(), Some(0));
    let matrix: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(matrix["include"].as_array().map(Vec::len), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("5 jobs"));
}

proptest! {
    #[test]
    fn no_input_panics(text in "\\PC{0,200}") {
        let _ = Manifest::from_yaml(&text, PATH);
    }

    #[test]
    fn yamlish_inputs_do_not_panic(
        lines in prop::collection::vec(
            prop::sample::select(vec![
                "version: 1", "entries:", "  - repositories: [a/b]", "    instruction: x",
                "    scope: []", "    id: a", "defaults: {timeout: 5m}", "  - {}", "    scope: [\"*\"]",
                "    priority: high", "  timeout: 0s", "- x", "    repositories: [\"\"]",
            ]),
            0..12,
        )
    ) {
        let text = lines.join("\n");
        if let Ok(m) = Manifest::from_yaml(&text, PATH) {
            let planned = plan(&m, day(), start()).expect("small plans fit");
            let keys: HashSet<_> = planned.jobs.iter().map(|j| &j.task_key).collect();
            prop_assert_eq!(keys.len(), planned.jobs.len());
        }
    }
}

/// `tasks-per-minute` paces the whole batch: job i may start its task at the plan's start
/// plus i × 60 s / tasks-per-minute (its `not-before`); without it every job starts at once.
/// More than GitHub's 80 content-creating requests a minute is refused.
#[test]
fn tasks_per_minute_gives_each_job_its_turn() {
    let m = compile(
        "version: 1\ntasks-per-minute: 20\nentries:\n  - {repositories: [a/b, a/c, a/d, a/e], instruction: x, scope: []}\n",
    );
    let planned = plan(&m, day(), start()).unwrap();
    // `plan --format text` shows each job's turn.
    let table = planned.table();
    assert!(
        table.lines().next().unwrap().contains("NOT BEFORE"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .nth(2)
            .unwrap()
            .contains(" 2026-03-10T02:17:03Z "),
        "{table}"
    );
    let turns: Vec<String> = planned.jobs.into_iter().map(|j| j.not_before).collect();
    assert_eq!(
        turns,
        [
            "2026-03-10T02:17:00Z",
            "2026-03-10T02:17:03Z",
            "2026-03-10T02:17:06Z",
            "2026-03-10T02:17:09Z"
        ]
    );
    let unpaced =
        compile("version: 1\nentries:\n  - {repositories: [a/b], instruction: x, scope: []}\n");
    let planned = plan(&unpaced, day(), start()).unwrap();
    assert_eq!(planned.jobs[0].not_before, "");
    assert!(!planned.table().contains("NOT BEFORE"));
    let e = agent_gate::core::manifest::Manifest::from_yaml(
        "version: 1\ntasks-per-minute: 81\nentries:\n  - {repositories: [a/b], instruction: x, scope: []}\n",
        "m.yml",
    )
    .expect_err("81 a minute");
    assert!(e.to_string().starts_with("m.yml:2:19: "), "{e}");
    assert!(
        e.to_string()
            .contains("80 content-creating requests a minute"),
        "{e}"
    );
}
