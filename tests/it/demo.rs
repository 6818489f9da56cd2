//! `agent-gate demo` as a user runs it: the binary, no arguments, no network, no token.
//! The three built-in scenarios reach their expected verdicts (exit 0), a user's scenario
//! gives its verdict's exit code, and the temporary world is removed afterwards.

use std::path::Path;
use std::process::Output;

use crate::support::{Cli, CliOutput};

fn demo(args: &[&str]) -> CliOutput {
    Cli::new()
        .arg("demo")
        .args(args)
        .env_remove("GITHUB_TOKEN")
        .run()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The temporary directory the demo announced (`workspace   DIR/workspace`).
fn world_dir(stdout: &str) -> &Path {
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("workspace "))
        .expect("the demo names its workspace");
    let path = line
        .split_whitespace()
        .nth(1)
        .expect("a path after `workspace`");
    Path::new(path).parent().expect("the workspace's directory")
}

#[test]
fn the_demo_reaches_every_expected_verdict_and_cleans_up() {
    let out = demo(&[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for (scenario, verdict) in [
        ("in-scope change", "passed"),
        ("protected file edited", "scope-violation"),
        ("tests broken", "checks-failed"),
    ] {
        let row = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(scenario) && l.trim_end().ends_with("ok"))
            .unwrap_or_else(|| panic!("no summary row for {scenario}:\n{stdout}"));
        assert_eq!(
            row.split_whitespace().filter(|w| *w == verdict).count(),
            2,
            "expected and actual are {verdict}: {row}"
        );
    }
    assert!(stdout.contains("3 of 3 scenarios reached their expected verdict"));
    // Each report is printed, with the facts behind its verdict.
    assert!(stdout.contains("verdict: passed (exit 0)"), "{stdout}");
    assert!(
        stdout.contains("protected by \"/.github/workflows\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAIL mul 4 5: expected 20, got 128"),
        "{stdout}"
    );
    // Progress lines.
    assert!(stdout.contains("agent-gate: task completed"), "{stdout}");
    let dir = world_dir(&stdout);
    assert!(!dir.exists(), "{} was left behind", dir.display());
}

#[test]
fn a_users_scenario_gives_its_verdicts_exit_code() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("break.yml");
    std::fs::write(
        &file,
        "tasks:\n  - match: \"Simplify add\"\n    files:\n      - write: {path: src/calc.sh, content: \"add() { echo 0; }\\nmul() { echo 0; }\\n\"}\n",
    )
    .expect("write the scenario");
    let out = demo(&["--scenario", &file.to_string_lossy()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(10),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("instruction: \"Simplify add\""), "{stdout}");
    assert!(
        stdout.contains("demo: verdict checks-failed (exit 10)"),
        "{stdout}"
    );
    assert!(!world_dir(&stdout).exists());

    std::fs::write(&file, "tasks:\n  - match: x\n    finale: completed\n").expect("write");
    let out = demo(&["--scenario", &file.to_string_lossy()]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("break.yml:3:5"), "{stdout}");
    assert!(stdout.contains("finale"), "{stdout}");
}
