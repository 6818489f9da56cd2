//! Regressions of the outside security review (issue 15), one or more per class of what it
//! broke, each through the public interface: tokens on the command line, workflow commands
//! and terminal escapes smuggled through check output, credential-like variables reaching
//! checks, new executable files, ambiguous base names, the summary comment adopted by its
//! marker alone, removals judged as additions, protected paths reached through symbolic
//! links, criss-cross merge bases, unbounded brace expansion and unbounded API bodies.
//! `docs/guarantees.md` lists them with what each guarantees.

use std::path::Path;
use std::process::{Command, Output};

use agent_gate::sim::Scenario;

use crate::support::{SimGate, TestRepo};

const CANARY: &str = "ghp_ReviewCanary0123456789abcdefghijklmn";

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn scenario(yaml: &str) -> Scenario {
    Scenario::from_yaml(yaml, Path::new("hardening.yml"), Path::new("."))
        .unwrap_or_else(|e| panic!("scenario: {e}"))
}

/// The binary with no `INPUT_*`, `GITHUB_*` or token variables of the test's environment.
fn agent_gate(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agent-gate"));
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir);
    cmd
}

// ---- 3. A token on the command line -------------------------------------------------------

#[test]
fn a_token_on_the_command_line_is_refused_before_anything_runs() {
    let repo = TestRepo::new();
    for args in [
        &["run", "--repository", "octo/demo", "--token", CANARY][..],
        &["run", "--repository", "octo/demo", "--github-token", CANARY],
        &[
            "run",
            "--repository",
            "octo/demo",
            &format!("--token={CANARY}"),
        ],
        &["status", "--repository", "octo/demo", "--token", CANARY],
    ] {
        let out = agent_gate(repo.path())
            .args(args)
            // Nothing may be tried: a request would fail differently (exit 3).
            .args(["--api-url", "http://127.0.0.1:9"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("is refused"), "{args:?}: {err}");
        assert!(
            err.contains("-file FILE"),
            "{args:?} names the way that works: {err}"
        );
        assert!(
            !err.contains(CANARY) && !stdout(&out).contains(CANARY),
            "{err}"
        );
    }
}

/// A check scanning every process's command line while the gate runs finds the token
/// nowhere; a control process carrying it in its arguments proves the scan finds one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_from_a_file_is_in_no_command_line_a_check_can_read() {
    let check = r#"
c=ghp_; c="${c}ReviewCanary0123456789abcdefghijklmn"
printf '%s\n' "$c" > "$TMPDIR/pattern" 2>/dev/null || printf '%s\n' "$c" > ./pattern.txt
p="$TMPDIR/pattern"; [ -f "$p" ] || p=./pattern.txt
bash -c 'sleep 30; :' control "$c" &
ctl=$!
sleep 0.2
hits=$(grep -l -a -F -f "$p" /proc/[0-9]*/cmdline 2>/dev/null)
kill $ctl
[ "$hits" = "/proc/$ctl/cmdline" ] || { echo "token found in: $hits (control $ctl)"; exit 1; }
echo scanned
"#;
    let policy = format!(
        "version: 1\nagent:\n  poll: {{ initial: 1s, max: 1s }}\nscope:\n  allow: [\"**\"]\nchecks:\n  - name: scan\n    run: {}\n",
        serde_json::to_string(check).unwrap()
    );
    let world = SimGate::start(
        &[(".github/agent-gate.yml", &policy)],
        scenario("default: {queued: 1s, work: 1s}\n"),
        100.0,
        "octo/demo",
        CANARY,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{CANARY}\n")).unwrap();
    let work = world.work.path().to_path_buf();
    let url = world.sim.url();
    let out = tokio::task::spawn_blocking(move || {
        agent_gate(&work)
            .args([
                "run",
                "--repository",
                "octo/demo",
                "--instruction",
                "add a file",
            ])
            .args(["--api-url", &url, "--format", "json"])
            .arg("--token-file")
            .arg(&token_file)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let report: serde_json::Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&out), stderr(&out)));
    assert_eq!(report["verdict"], "passed", "{report:#}\n{}", stderr(&out));
    assert!(report.to_string().contains("scanned"), "{report:#}");
    assert!(world.sim.count("POST", "/agents/repos/*/*/tasks") == 1);
    world.sim.shutdown().await;
}
