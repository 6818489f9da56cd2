//! Tests of the checks area: planning and quoting, and real `bash` processes run through
//! `run_checks` — exit codes, timeouts that kill whole process groups, output caps,
//! parallelism, shutdown, the scrubbed environment, and the canary-token invariant of
//! DESIGN §5 (a check cannot read the gate's environment or the workspace's persisted
//! credentials). The canary tests re-run this test binary as a separate "gate" process
//! whose real initial environment holds the canary.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use agent_gate::adapters::checks::{
    self, CheckStatus, ChecksRun, Isolation, IsolationMode, PlannedAction, RunAs, RunOptions, plan,
    run_checks,
};
use agent_gate::core::policy::CheckSpec;
use agent_gate::core::scope::{Pattern, Rule, RuleOrigin, RuleSet};
use bstr::BString;
use proptest::prelude::*;

use super::support::require_root;

// ---------------------------------------------------------------------------------------
// helpers

fn spec(name: &str, run: &str) -> CheckSpec {
    CheckSpec {
        name: name.to_string(),
        run: run.to_string(),
        timeout: Duration::from_mins(1),
        when: None,
        files: None,
        required: true,
        env: BTreeMap::new(),
        line: 1,
        image: None,
        github: None,
    }
}

fn rules(globs: &[&str]) -> RuleSet {
    RuleSet::new(
        globs
            .iter()
            .enumerate()
            .map(|(i, g)| Rule {
                pattern: Pattern::new(g).expect("valid glob"),
                origin: RuleOrigin::Policy {
                    line: i + 1,
                    column: 1,
                },
            })
            .collect(),
    )
}

fn paths(names: &[&[u8]]) -> Vec<BString> {
    names.iter().map(|n| BString::from(*n)).collect()
}

fn opts() -> RunOptions {
    let path = std::env::var_os("PATH").unwrap_or_else(|| checks::DEFAULT_PATH.into());
    RunOptions {
        jobs: 4,
        env: vec![("PATH".into(), path)],
        kill_grace: Duration::from_millis(300),
        ..RunOptions::default()
    }
}

/// A fresh tree for checks to run in (its parent, the temp dir, is world-traversable).
fn tree() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// A directory outside the tree that every check may write (each check runs in its own
/// copy of the tree, under its own uid when the test runs as root), for what a test reads
/// back: pid files, markers, listings. Checks find it as `$OUT`.
fn out_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// `spec` with `$OUT` set to `out`.
fn spec_out(name: &str, run: &str, out: &Path) -> CheckSpec {
    let mut s = spec(name, run);
    s.env.insert("OUT".into(), out.display().to_string());
    s
}

async fn run_specs(
    tree: &Path,
    specs: &[CheckSpec],
    changed: &[BString],
    opts: &RunOptions,
) -> ChecksRun {
    run_checks(
        tree,
        plan(specs, changed),
        opts,
        std::future::pending::<()>(),
    )
    .await
}

fn is_root() -> bool {
    checks::gate_is_root()
}

/// Is the process gone (no longer in /proc, or a zombie waiting for a reaper)?
fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state is the first field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

async fn assert_gone_soon(pid: u32) {
    for _ in 0..100 {
        if process_gone(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("process {pid} is still alive");
}

fn read_pid(path: &Path) -> u32 {
    let text = std::fs::read_to_string(path).expect("pid file");
    text.trim().parse().expect("a pid")
}

async fn wait_for_file(path: &Path) {
    for _ in 0..400 {
        if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
            // Let the writer finish the line.
            tokio::time::sleep(Duration::from_millis(20)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{} never appeared", path.display());
}

// ---------------------------------------------------------------------------------------
// planning

#[test]
fn when_runs_a_check_only_if_a_changed_path_matches() {
    let mut unit = spec("unit", "cargo test");
    unit.when = Some(rules(&["src/**", "Cargo.*"]));
    let planned = plan(
        std::slice::from_ref(&unit),
        &paths(&[b"docs/a.md", b"src/lib.rs"]),
    );
    assert_eq!(
        planned[0].action,
        PlannedAction::Run {
            command: "cargo test".into()
        }
    );

    let planned = plan(&[unit], &paths(&[b"docs/a.md"]));
    assert_eq!(
        planned[0].action,
        PlannedAction::Skip {
            reason: "no changed path matches `when` (src/**, Cargo.*)".into()
        }
    );
}

#[test]
fn files_placeholder_expands_to_matching_paths_or_skips() {
    let mut ruff = spec("ruff", "ruff check {files} && echo {files}");
    ruff.files = Some(rules(&["**/*.py"]));
    let changed = paths(&[b"a.py", b"src/b c.py", b"README.md", b"-x.py"]);
    let planned = plan(std::slice::from_ref(&ruff), &changed);
    assert_eq!(
        planned[0].command().unwrap(),
        "ruff check a.py 'src/b c.py' ./-x.py && echo a.py 'src/b c.py' ./-x.py"
    );

    let planned = plan(std::slice::from_ref(&ruff), &paths(&[b"README.md"]));
    assert_eq!(
        planned[0].action,
        PlannedAction::Skip {
            reason: "the command uses {files} and no changed path matches `files` (**/*.py)".into()
        }
    );

    // Without `files`, {files} lists every changed path.
    let all = spec("all", "ls {files}");
    assert_eq!(
        plan(&[all], &changed)[0].command().unwrap(),
        "ls a.py 'src/b c.py' README.md ./-x.py"
    );
}

#[test]
fn a_declared_env_name_reserved_for_credentials_rejects_the_check() {
    let mut check = spec("deploy", "true");
    check.line = 7;
    check.env.insert("NPM_TOKEN".into(), "x".into());
    let planned = plan(&[check], &[]);
    let PlannedAction::Reject { message } = &planned[0].action else {
        panic!("expected a rejection: {planned:?}")
    };
    insta::assert_snapshot!(message, @"check `deploy` (policy line 7) declares env `NPM_TOKEN`, but names containing TOKEN, SECRET, KEY, PASSWORD, PASSWD, CREDENTIAL or starting with ACTIONS_ or INPUT_ are reserved for credentials and are never given to checks; rename the variable, or give the check no credential");
}

#[test]
fn an_expansion_longer_than_one_exec_argument_is_rejected() {
    let names: Vec<BString> = (0..5000)
        .map(|i| BString::from(format!("src/some/rather/long/directory/file-{i:05}.py")))
        .collect();
    let planned = plan(&[spec("lint", "lint {files}")], &names);
    let PlannedAction::Reject { message } = &planned[0].action else {
        panic!("expected a rejection")
    };
    assert!(message.contains("over Linux's limit"), "{message}");
}

/// Hostile file-name bytes: shell metacharacters, whitespace, quotes, non-UTF-8.
fn hostile_name() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        prop::sample::select(b"\n\t '\"$`\\!*?[]{}()<>|&;#~=%-.\x7f\xff\xc3\x28".to_vec()),
        1u8..=255u8,
    ];
    prop::collection::vec(byte, 1..12)
}

/// What bash makes of `printf '%s\0' <expanded>`, split at NUL.
fn bash_words(command: &[u8]) -> Vec<Vec<u8>> {
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(OsStr::from_bytes(command))
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "bash failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut words: Vec<Vec<u8>> = out.stdout.split(|&b| b == 0).map(<[u8]>::to_vec).collect();
    assert_eq!(words.pop(), Some(Vec::new()), "output ends with NUL");
    words
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn quoted_file_names_reach_bash_byte_for_byte(names in prop::collection::vec(hostile_name(), 1..6)) {
        let changed: Vec<BString> = names.iter().map(|n| BString::from(n.as_slice())).collect();
        let planned = plan(&[spec("printf", "printf '%s\\0' {files}")], &changed);
        let command = planned[0].command().expect("runs");
        let expected: Vec<Vec<u8>> = names.iter().map(|n| checks::argument_for_path(n)).collect();
        prop_assert_eq!(bash_words(command), expected);
    }
}

#[test]
fn a_leading_dash_becomes_a_relative_path_not_an_option() {
    assert_eq!(checks::argument_for_path(b"-rf"), b"./-rf");
    assert_eq!(checks::quote_path(b"--exit-zero"), b"./--exit-zero");
    assert_eq!(checks::quote_path(b"-a b"), b"'./-a b'");
    assert_eq!(checks::quote_word(b""), b"''");
    assert_eq!(checks::quote_word(b"it's"), b"'it'\\''s'");
}

// ---------------------------------------------------------------------------------------
// environment

#[test]
fn the_environment_is_an_allow_list() {
    let gate: Vec<(OsString, OsString)> = [
        ("PATH", "/bin"),
        ("LANG", "C.UTF-8"),
        ("GITHUB_TOKEN", "canary"),
        ("GH_TOKEN", "canary"),
        ("INPUT_TOKEN", "canary"),
        ("INPUT_GITHUB-TOKEN", "canary"),
        ("ACTIONS_RUNTIME_URL", "https://x"),
        ("MY_SECRET", "canary"),
        ("AWS_ACCESS_KEY_ID", "canary"),
        ("DB_PASSWORD", "canary"),
        ("GITHUB_REPOSITORY", "octo/demo"),
        ("GITHUB_OUTPUT", "/github/file_commands/x"),
        ("GITHUB_ENV", "/github/file_commands/y"),
        ("GITHUB_WORKSPACE", "/github/workspace"),
        ("GITHUB_EVENT_PATH", "/github/workflow/event.json"),
        ("RUNNER_OS", "Linux"),
        ("HOME", "/root"),
        ("SSH_AUTH_SOCK", "/tmp/agent"),
        ("CARGO_HOME", "/root/.cargo"),
    ]
    .iter()
    .map(|(k, v)| (OsString::from(k), OsString::from(v)))
    .collect();
    let mut declared = BTreeMap::new();
    declared.insert("RUST_LOG".to_string(), "debug".to_string());
    declared.insert("HOME".to_string(), "/elsewhere".to_string());
    declared.insert("API_KEY".to_string(), "canary".to_string());
    let env = checks::scrubbed_env(&gate, &declared, Path::new("/tmp/home-0"));
    let rendered: Vec<String> = env
        .iter()
        .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
        .collect();
    assert_eq!(
        rendered,
        [
            "GITHUB_REPOSITORY=octo/demo",
            "HOME=/tmp/home-0",
            "LANG=C.UTF-8",
            "PATH=/bin",
            "RUNNER_OS=Linux",
            "RUST_LOG=debug"
        ]
    );
}

#[tokio::test]
async fn a_check_sees_only_the_scrubbed_environment() {
    let dir = tree();
    let mut o = opts();
    for (k, v) in [
        ("GITHUB_TOKEN", "canary-env-1"),
        ("INPUT_TOKEN", "canary-env-2"),
        ("MY_SECRET", "canary-env-3"),
        ("GITHUB_REPOSITORY", "octo/demo"),
    ] {
        o.env.push((k.into(), v.into()));
    }
    let mut check = spec(
        "env",
        "env; test -d \"$HOME\" && test -w \"$HOME\" && test -z \"$(ls -A \"$HOME\")\" && echo fresh-home",
    );
    check.env.insert("DECLARED".into(), "yes".into());
    let run = run_specs(dir.path(), &[check], &[], &o).await;
    let out = &run.outcomes[0];
    assert_eq!(out.status, CheckStatus::Passed, "{}", out.output_tail);
    assert!(!out.output_tail.contains("canary"), "{}", out.output_tail);
    assert!(
        out.output_tail.contains("GITHUB_REPOSITORY=octo/demo"),
        "{}",
        out.output_tail
    );
    assert!(
        out.output_tail.contains("DECLARED=yes"),
        "{}",
        out.output_tail
    );
    assert!(
        out.output_tail.contains("fresh-home"),
        "{}",
        out.output_tail
    );
}

// ---------------------------------------------------------------------------------------
// running

#[tokio::test]
async fn passing_failing_and_advisory_checks() {
    let dir = tree();
    let mut advisory = spec("advisory", "echo lint says no; exit 3");
    advisory.required = false;
    let run = run_specs(
        dir.path(),
        &[spec("ok", "echo hello"), advisory.clone()],
        &[],
        &opts(),
    )
    .await;
    assert_eq!(run.outcomes[0].status, CheckStatus::Passed);
    assert_eq!(run.outcomes[0].output_tail, "hello\n");
    assert_eq!(
        run.outcomes[1].status,
        CheckStatus::Failed {
            exit_code: Some(3),
            signal: None
        }
    );
    assert_eq!(run.outcomes[1].output_tail, "lint says no\n");
    assert!(
        !checks::failed_required(&run.outcomes),
        "an advisory failure never fails the gate"
    );
    assert_eq!(checks::failed_advisory(&run.outcomes).len(), 1);

    let run = run_specs(
        dir.path(),
        &[
            spec("ok", "true"),
            spec("bad", "echo out; echo err >&2; kill -TERM $$"),
            advisory,
        ],
        &[],
        &opts(),
    )
    .await;
    assert_eq!(
        run.outcomes[1].status,
        CheckStatus::Failed {
            exit_code: None,
            signal: Some(15)
        }
    );
    assert_eq!(
        run.outcomes[1].output_tail, "out\nerr\n",
        "stdout and stderr are merged in order"
    );
    assert!(checks::failed_required(&run.outcomes));
    assert!(run.failed_required());
}

#[tokio::test]
async fn a_check_past_its_timeout_is_killed_with_its_children() {
    let dir = tree();
    let out_dir = out_dir();
    let mut slow = spec_out(
        "slow",
        "sleep 1000 & echo $! > \"$OUT/grandchild.pid\"; trap '' TERM; wait",
        out_dir.path(),
    );
    slow.timeout = Duration::from_millis(800);
    let run = run_specs(dir.path(), &[slow], &[], &opts()).await;
    let out = &run.outcomes[0];
    assert_eq!(
        out.status,
        CheckStatus::TimedOut {
            after: Duration::from_millis(800)
        }
    );
    assert!(out.duration >= Duration::from_millis(800));
    let grandchild = read_pid(&out_dir.path().join("grandchild.pid"));
    assert_gone_soon(grandchild).await;
}

#[tokio::test]
async fn output_keeps_the_tail_within_the_cap() {
    let dir = tree();
    let mut o = opts();
    o.output_cap = 4096;
    let check = spec(
        "loud",
        "head -c 10000000 /dev/zero | tr '\\0' x; echo; echo THE-END",
    );
    let run = run_specs(dir.path(), &[check], &[], &o).await;
    let out = &run.outcomes[0];
    assert_eq!(out.status, CheckStatus::Passed);
    assert_eq!(out.output_tail.len(), 4096);
    assert!(
        out.output_tail.ends_with("x\nTHE-END\n"),
        "{:?}",
        &out.output_tail[4000..]
    );
    assert_eq!(out.truncated_bytes, 10_000_000 + 1 + 8 - 4096);
}

#[tokio::test]
async fn independent_checks_run_in_parallel() {
    // Each check waits for the other's file: they can only both pass side by side.
    let dir = tree();
    let out = out_dir();
    let mut o = opts();
    o.jobs = 2;
    let wait = |mine: &str, theirs: &str| {
        let mut s = spec_out(
            mine,
            &format!(
                "touch \"$OUT/{mine}\"; for i in $(seq 400); do test -e \"$OUT/{theirs}\" && exit 0; sleep 0.05; done; exit 1"
            ),
            out.path(),
        );
        s.timeout = Duration::from_secs(30);
        s
    };
    let run = run_specs(dir.path(), &[wait("a", "b"), wait("b", "a")], &[], &o).await;
    assert_eq!(run.outcomes[0].status, CheckStatus::Passed);
    assert_eq!(run.outcomes[1].status, CheckStatus::Passed);

    // With one job the first waits in vain, proving the test can fail.
    let dir = tree();
    o.jobs = 1;
    let mut first = wait("c", "d");
    first.run =
        "touch \"$OUT/c\"; for i in $(seq 10); do test -e \"$OUT/d\" && exit 0; sleep 0.05; done; exit 1".into();
    let run = run_specs(dir.path(), &[first, wait("d", "c")], &[], &o).await;
    assert_eq!(
        run.outcomes[0].status,
        CheckStatus::Failed {
            exit_code: Some(1),
            signal: None
        }
    );
}

#[tokio::test]
async fn shutdown_cancels_running_and_queued_checks_and_kills_their_groups() {
    let dir = tree();
    let mut o = opts();
    o.jobs = 1;
    let out = out_dir();
    let running = spec_out(
        "running",
        "sleep 1000 & echo $! > \"$OUT/grandchild.pid\"; wait",
        out.path(),
    );
    let queued = spec("queued", "echo should-not-run");
    let pid_file = out.path().join("grandchild.pid");
    let shutdown = {
        let pid_file = pid_file.clone();
        async move { wait_for_file(&pid_file).await }
    };
    let run = run_checks(dir.path(), plan(&[running, queued], &[]), &o, shutdown).await;
    assert_eq!(run.outcomes[0].status, CheckStatus::Cancelled);
    assert_eq!(run.outcomes[1].status, CheckStatus::Cancelled);
    assert!(
        checks::failed_required(&run.outcomes),
        "a cancelled run never passes"
    );
    assert_gone_soon(read_pid(&pid_file)).await;
}

#[tokio::test]
async fn dropping_the_run_kills_the_groups() {
    let dir = tree();
    let out = out_dir();
    let pid_file = out.path().join("grandchild.pid");
    let planned = plan(
        &[spec_out(
            "running",
            "sleep 1000 & echo $! > \"$OUT/grandchild.pid\"; wait",
            out.path(),
        )],
        &[],
    );
    let o = opts();
    let run = run_checks(dir.path(), planned, &o, std::future::pending::<()>());
    tokio::select! {
        _ = run => panic!("the check cannot finish"),
        () = wait_for_file(&pid_file) => {}
    }
    assert_gone_soon(read_pid(&pid_file)).await;
}

#[tokio::test]
async fn skipped_and_rejected_checks_are_reported_without_running() {
    let dir = tree();
    let out = out_dir();
    let mut skipped = spec_out("py", "touch \"$OUT/ran-py\"; ruff {files}", out.path());
    skipped.files = Some(rules(&["*.py"]));
    let mut rejected = spec_out("bad-env", "touch \"$OUT/ran-bad\"", out.path());
    rejected.env.insert("GITHUB_TOKEN".into(), "x".into());
    let run = run_specs(
        dir.path(),
        &[skipped, rejected],
        &paths(&[b"a.rs"]),
        &opts(),
    )
    .await;
    assert!(matches!(
        run.outcomes[0].status,
        CheckStatus::Skipped { .. }
    ));
    assert!(matches!(run.outcomes[1].status, CheckStatus::Error { .. }));
    assert!(!out.path().join("ran-py").exists() && !out.path().join("ran-bad").exists());
    assert!(
        checks::failed_required(&run.outcomes),
        "a rejected required check fails"
    );
}

#[tokio::test]
async fn hostile_file_names_end_to_end() {
    let dir = tree();
    let names: Vec<&[u8]> = vec![
        b"a b.py",
        b"new\nline.py",
        b"it's.py",
        b"$(touch pwned).py",
        b"`id`.py",
        b"-rf.py",
        b"caf\xe9.py",
        b"semi;colon.py",
    ];
    for name in &names {
        std::fs::write(dir.path().join(OsStr::from_bytes(name)), b"x").unwrap();
    }
    let out = out_dir();
    let mut check = spec_out(
        "list",
        // `test ! -e pwned` in the check's own tree: the name `$(touch pwned).py` ran nothing.
        "cat -- {files} >/dev/null && printf '%s\\0' {files} > \"$OUT/.names\" && test ! -e pwned",
        out.path(),
    );
    check.files = Some(rules(&["*.py"]));
    let run = run_specs(dir.path(), &[check], &paths(&names), &opts()).await;
    assert_eq!(
        run.outcomes[0].status,
        CheckStatus::Passed,
        "{}",
        run.outcomes[0].output_tail
    );
    let listed = std::fs::read(out.path().join(".names")).unwrap();
    let listed: Vec<&[u8]> = listed
        .split(|&b| b == 0)
        .filter(|w| !w.is_empty())
        .collect();
    let expected: Vec<Vec<u8>> = names.iter().map(|n| checks::argument_for_path(n)).collect();
    assert_eq!(
        listed,
        expected.iter().map(Vec::as_slice).collect::<Vec<_>>()
    );
    assert!(!dir.path().join("pwned").exists() && !out.path().join("pwned").exists());
}

#[tokio::test]
#[ignore = "needs root (the container case); .ci/run runs it: cargo test --test it -- --ignored as_root"]
async fn as_root_checks_run_unprivileged_without_supplementary_groups() {
    require_root();
    let dir = tree();
    let run = run_specs(
        dir.path(),
        &[spec("who", "id -u; id -G; touch owned-by-me && echo wrote")],
        &[],
        &opts(),
    )
    .await;
    assert_eq!(run.isolation.mode, IsolationMode::UnprivilegedUid);
    assert_eq!(run.outcomes[0].output_tail, "65534\n65534\nwrote\n");
    // Isolation working as designed is reported, and is no weakness (a notice in Actions).
    assert!(!run.isolation.notes.is_empty());
    assert_eq!(run.isolation.weaknesses, Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------
// credentials: protect guard, credential scan, refusal

/// A workspace like actions/checkout leaves it: `.git/config` holds the token as an
/// extraheader. Every directory is 0755 so another uid could reach it.
struct Workspace {
    _base: tempfile::TempDir,
    root: PathBuf,
}

impl Workspace {
    fn new(canary: &str) -> Workspace {
        let base = tempfile::tempdir().unwrap();
        std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = base.path().join("workspace");
        std::fs::create_dir_all(root.join(".git")).unwrap();
        for dir in [&root, &root.join(".git")] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::write(
            root.join(".git/config"),
            format!("[core]\n\tbare = false\n[http \"https://github.com/\"]\n\textraheader = AUTHORIZATION: basic {canary}\n"),
        )
        .unwrap();
        std::fs::set_permissions(
            root.join(".git/config"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        std::fs::write(root.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
        std::fs::write(root.join("README.md"), "public-marker\n").unwrap();
        Workspace { _base: base, root }
    }

    /// (path, mode, content) of every file and directory.
    fn snapshot(&self) -> Vec<(PathBuf, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![self.root.clone()];
        while let Some(p) = stack.pop() {
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let content = if meta.is_file() {
                std::fs::read(&p).unwrap()
            } else {
                Vec::new()
            };
            if meta.is_dir() {
                stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            }
            out.push((p, meta.permissions().mode(), content));
        }
        out.sort();
        out
    }
}

#[test]
fn protect_hides_credentials_and_restores_exact_modes_even_on_panic() {
    let ws = Workspace::new("canary-protect");
    std::fs::set_permissions(
        ws.root.join(".git"),
        std::fs::Permissions::from_mode(0o2751),
    )
    .unwrap();
    let before = ws.snapshot();
    let targets = vec![
        ws.root.join(".git"),
        ws.root.join(".git/config"),
        ws.root.join("does-not-exist"),
    ];
    {
        let guard = checks::protect(&targets).unwrap();
        assert_eq!(guard.changed().len(), 2);
        let mode = |p: &str| {
            std::fs::metadata(ws.root.join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode(".git"), 0o700);
        assert_eq!(mode(".git/config"), 0o000);
    }
    assert_eq!(ws.snapshot(), before);

    let result = std::panic::catch_unwind(|| {
        let _guard = checks::protect(&targets).unwrap();
        panic!("boom");
    });
    assert!(result.is_err());
    assert_eq!(ws.snapshot(), before);
}

/// Modes of the shared files of [`concurrent_guards_restore_exactly_what_they_found`].
fn shared_home() -> (tempfile::TempDir, Vec<(PathBuf, u32)>) {
    let home = tempfile::tempdir().unwrap();
    let files = [
        (".gitconfig", 0o644),
        (".git-credentials", 0o600),
        (".config/gh", 0o755),
        (".docker", 0o2750),
    ];
    let mut out = Vec::new();
    for (name, mode) in files {
        let path = home.path().join(name);
        if name.starts_with(".config") || name == ".docker" {
            std::fs::create_dir_all(&path).unwrap();
        } else {
            std::fs::write(&path, "[user]\n\tname = t\n").unwrap();
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        out.push((path, mode));
    }
    (home, out)
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Runs that share a home hide the same files at once (self-hosted runners, local use):
/// each guard reports the mode the file had before anyone hid it, the files stay hidden
/// while any guard lives, and the last one out restores exactly the modes found.
#[test]
fn concurrent_guards_restore_exactly_what_they_found() {
    let (_home, files) = shared_home();
    let paths: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
    let start = std::sync::Barrier::new(8);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                start.wait();
                for _ in 0..40 {
                    let guard = checks::protect(&paths).unwrap();
                    assert_eq!(guard.changed(), files.as_slice(), "the modes found");
                    for (path, mode) in &files {
                        let hidden = if path.is_dir() { mode & 0o700 } else { 0 };
                        assert_eq!(mode_of(path), hidden, "{} while held", path.display());
                    }
                    drop(guard);
                }
            });
        }
    });
    for (path, mode) in &files {
        assert_eq!(mode_of(path), *mode, "{} at the end", path.display());
    }
}

const PROTECT_HOLDER_ENV: &str = "AGENT_GATE_TEST_PROTECT_HOLDER";

/// Entry point of a process that hides files and waits to be killed (run by the test
/// below with [`PROTECT_HOLDER_ENV`] set to the paths, one per line).
#[test]
#[ignore = "a helper process of a_run_killed_while_hiding_files_leaves_them_to_the_next_run"]
fn protect_holder_process() {
    let Ok(paths) = std::env::var(PROTECT_HOLDER_ENV) else {
        return;
    };
    let paths: Vec<PathBuf> = paths.lines().map(PathBuf::from).collect();
    let _guard = checks::protect(&paths).unwrap();
    println!("HIDDEN");
    std::thread::sleep(Duration::from_mins(2));
}

/// A run killed (SIGKILL) while it hides files cannot restore them; the next run that
/// hides them takes the modes the dead run found, not the `000` it left, and restores
/// those.
#[test]
fn a_run_killed_while_hiding_files_leaves_them_to_the_next_run() {
    use std::io::BufRead;
    let (_home, files) = shared_home();
    let list: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
    let mut holder = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "checks::protect_holder_process",
            "--ignored",
            "--nocapture",
        ])
        .env(PROTECT_HOLDER_ENV, list.join("\n"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(holder.stdout.take().unwrap()).lines();
    assert!(
        lines.any(|l| l.unwrap().contains("HIDDEN")),
        "the holder process did not hide the files"
    );
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert_eq!(mode_of(&files[0].0), 0, "left hidden by the killed run");
    let guard = checks::protect(&files.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>()).unwrap();
    assert_eq!(guard.changed(), files.as_slice());
    drop(guard);
    for (path, mode) in &files {
        assert_eq!(mode_of(path), *mode, "{}", path.display());
    }
}

/// A mode someone set while the file was hidden is theirs: it is kept, not overwritten.
#[test]
fn a_mode_changed_while_hidden_is_kept() {
    let (_home, files) = shared_home();
    let gitconfig = files[0].0.clone();
    let guard = checks::protect(std::slice::from_ref(&gitconfig)).unwrap();
    std::fs::set_permissions(&gitconfig, std::fs::Permissions::from_mode(0o640)).unwrap();
    drop(guard);
    assert_eq!(mode_of(&gitconfig), 0o640);
}

#[test]
fn readable_credentials_are_found() {
    let ws = Workspace::new("canary-scan");
    assert_eq!(
        checks::readable_credentials(&[ws.root.join(".git")]),
        vec![ws.root.join(".git/config")]
    );
    assert_eq!(
        checks::readable_credentials(&[ws.root.join(".git/config")]),
        vec![ws.root.join(".git/config")]
    );
    assert!(
        checks::readable_credentials(&[ws.root.join(".git/HEAD"), ws.root.join("missing")])
            .is_empty()
    );
    assert!(checks::holds_credential(
        b"[remote \"origin\"]\n\turl = https://x-oauth:abc123@github.com/o/r\n"
    ));
    assert!(checks::holds_credential(b"https://ghp_abcdef@github.com"));
    assert!(!checks::holds_credential(
        b"[remote \"origin\"]\n\turl = https://github.com/o/r\n\turl = git@github.com:o/r\n"
    ));
}

#[tokio::test]
async fn strict_isolation_refuses_same_uid_checks_while_a_credential_is_readable() {
    let ws = Workspace::new("canary-strict");
    let dir = tree();
    let mut o = opts();
    o.run_as = RunAs::CurrentUser;
    o.protect = vec![ws.root.join(".git")];
    let mut skipped = spec("skipped", "true");
    skipped.when = Some(rules(&["nothing/"]));
    let run = run_specs(
        dir.path(),
        &[spec("unit", "touch ran"), skipped.clone()],
        &[],
        &o,
    )
    .await;
    assert_eq!(run.isolation.mode, IsolationMode::SameUid);
    let CheckStatus::Error { message } = &run.outcomes[0].status else {
        panic!("expected a refusal: {:?}", run.outcomes[0])
    };
    let message = message.replace(&ws.root.display().to_string(), "[WORKSPACE]");
    insta::assert_snapshot!(message, @"refused to run checks: a credential is readable to them at [WORKSPACE]/.git/config (checks run under the gate's own uid because `run_as` is the current user). Set `persist-credentials: false` on actions/checkout, or set `checks-isolation: best-effort` in the policy to run them anyway");
    assert!(matches!(
        run.outcomes[1].status,
        CheckStatus::Skipped { .. }
    ));
    assert!(!dir.path().join("ran").exists());

    o.isolation = Isolation::BestEffort;
    let file_commands = tempfile::tempdir().unwrap();
    let github_env = file_commands.path().join("set_env_1");
    std::fs::write(&github_env, "").unwrap();
    o.env.push(("GITHUB_ENV".into(), github_env.clone().into()));
    let run = run_specs(dir.path(), &[spec("unit", "touch ran")], &[], &o).await;
    assert_eq!(run.outcomes[0].status, CheckStatus::Passed);
    assert!(
        run.isolation
            .notes
            .iter()
            .any(|n| n.contains("best-effort isolation: a credential was readable")),
        "{:?}",
        run.isolation.notes
    );
    let note = format!(
        "the runner's file-command files are writable by this uid, so checks could write them: {}",
        github_env.display()
    );
    assert!(
        run.isolation.notes.contains(&note),
        "{:?}",
        run.isolation.notes
    );
    // Every one of these is a weakness (a warning in Actions), the file-command one too.
    assert!(run.isolation.weaknesses.contains(&note));
    assert!(
        run.isolation
            .notes
            .iter()
            .all(|n| run.isolation.weaknesses.contains(n)),
        "same-uid isolation has only weaknesses: {:?}",
        run.isolation
    );
}

#[test]
fn credential_paths_name_the_usual_places() {
    let env: Vec<(OsString, OsString)> = [
        ("RUNNER_TEMP", "/github/runner_temp"),
        ("GITHUB_OUTPUT", "/github/file_commands/set_output_1"),
        ("GITHUB_ENV", "/github/file_commands/set_env_1"),
        ("GITHUB_STEP_SUMMARY", "/tmp/summary.md"),
        ("HOME", "/github/home"),
    ]
    .iter()
    .map(|(k, v)| (OsString::from(k), OsString::from(v)))
    .collect();
    let got = checks::credential_paths(Path::new("/github/workspace"), &env);
    let want: Vec<PathBuf> = [
        "/github/workspace/.git",
        "/github/workspace/.git/config",
        "/github/runner_temp/_runner_file_commands",
        "/github/file_commands",
        "/github/home/.git-credentials",
        "/github/home/.gitconfig",
        "/github/home/.config/gh",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    assert_eq!(
        got, want,
        "never `/tmp`, the parent of an odd GITHUB_STEP_SUMMARY"
    );
}

#[test]
fn the_run_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let o = opts();
    let fut = run_checks(
        Path::new("/nonexistent"),
        Vec::new(),
        &o,
        std::future::pending::<()>(),
    );
    assert_send(&fut);
}

// ---------------------------------------------------------------------------------------
// the canary test: a separate gate process whose real environment holds the token

const GATE_ENV: &str = "AGENT_GATE_TEST_GATE_PROCESS";

/// The check the gate process runs: it tries every way to the token it can think of, and
/// prints markers that prove it ran.
const SNOOP: &str = r#"
echo "repo=$GITHUB_REPOSITORY"
env
cat /proc/$GATE_PID/environ | tr '\0' '\n'; echo "environ-exit=${PIPESTATUS[0]}"
if [ -n "$WS" ]; then
  cat "$WS/README.md"
  cat "$WS/.git/config"; echo "config-exit=$?"
  grep -r . "$WS/.git" 2>/dev/null
fi
exit 0
"#;

/// Entry point of the gate process (run by the canary tests with [`GATE_ENV`] set).
#[test]
#[ignore = "entry point of the canary tests' gate process; they run it"]
fn gate_process() {
    let Some(mode) = std::env::var_os(GATE_ENV) else {
        return;
    };
    let workspace = std::env::var_os("TEST_WORKSPACE").map(PathBuf::from);
    let dir = tempfile::tempdir().unwrap();
    let mut check = spec("snoop", SNOOP);
    check
        .env
        .insert("GATE_PID".into(), std::process::id().to_string());
    let mut o = RunOptions {
        env: std::env::vars_os().collect(),
        ..RunOptions::default()
    };
    o.isolation = if mode == "best-effort" {
        Isolation::BestEffort
    } else {
        Isolation::Strict
    };
    if let Some(ws) = &workspace {
        check.env.insert("WS".into(), ws.display().to_string());
        o.protect = vec![ws.join(".git"), ws.join(".git/config")];
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let run = runtime.block_on(run_checks(
        dir.path(),
        plan(&[check], &[]),
        &o,
        std::future::pending::<()>(),
    ));
    println!("\nGATE-RESULT:{}", serde_json::to_string(&run).unwrap());
}

/// Run [`gate_process`] in a new process (optionally through `wrapper`, e.g. `setpriv`),
/// with the canary in its initial environment; return its `ChecksRun` as JSON.
fn run_gate_process(
    wrapper: &[&str],
    canary: &str,
    mode: &str,
    workspace: Option<&Path>,
) -> serde_json::Value {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = std::process::Command::new(program);
            c.args(args).arg(&exe);
            c
        }
        None => std::process::Command::new(&exe),
    };
    cmd.args([
        "--exact",
        "checks::gate_process",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(GATE_ENV, mode)
    .env("GITHUB_TOKEN", canary)
    .env("INPUT_TOKEN", canary)
    .env("MY_SECRET", canary)
    .env("GITHUB_REPOSITORY", "octo/demo");
    match workspace {
        Some(ws) => cmd.env("TEST_WORKSPACE", ws),
        None => cmd.env_remove("TEST_WORKSPACE"),
    };
    let out = cmd.output().expect("run the gate process");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "gate process failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("GATE-RESULT:"))
        .unwrap_or_else(|| panic!("no result in {stdout}"));
    serde_json::from_str(line).unwrap()
}

fn canary() -> String {
    format!("canary{}", uuid::Uuid::new_v4().simple())
}

/// The same-uid test below covers a non-root user.
#[test]
#[ignore = "needs root (the container case); .ci/run runs it: cargo test --test it -- --ignored as_root"]
fn as_root_the_gate_hides_its_environment_and_the_workspace_credentials_from_checks() {
    require_root();
    let canary = canary();
    let ws = Workspace::new(&canary);
    let before = ws.snapshot();
    let run = run_gate_process(&[], &canary, "strict", Some(&ws.root));
    assert_eq!(run["isolation"]["mode"], "unprivileged-uid");
    let outcome = &run["outcomes"][0];
    let output = outcome["output_tail"].as_str().unwrap();
    assert_eq!(outcome["status"], "passed", "{outcome}");
    // The check really ran and really tried.
    assert!(output.contains("repo=octo/demo"), "{output}");
    assert!(output.contains("public-marker"), "{output}");
    assert!(output.contains("Permission denied"), "{output}");
    assert!(!output.contains("environ-exit=0"), "{output}");
    assert!(!output.contains("config-exit=0"), "{output}");
    // And found nothing.
    assert!(
        !output.contains(&canary),
        "the canary leaked to the check:\n{output}"
    );
    assert_eq!(ws.snapshot(), before, "the workspace is left as it was");
}

#[test]
fn a_same_uid_gate_refuses_while_credentials_are_readable_and_hides_its_environment() {
    let wrapper: &[&str] = if is_root() {
        // As root, the gate is run as another user: that needs setpriv (util-linux).
        assert!(
            std::process::Command::new("setpriv")
                .arg("--version")
                .output()
                .is_ok(),
            "running the gate as another user needs setpriv (util-linux)"
        );
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
        ]
    } else {
        &[]
    };
    let canary = canary();
    let ws = Workspace::new(&canary);
    let before = ws.snapshot();

    // Strict: the workspace's .git/config is readable to a same-uid check: refuse.
    let run = run_gate_process(wrapper, &canary, "strict", Some(&ws.root));
    assert_eq!(run["isolation"]["mode"], "same-uid");
    let outcome = &run["outcomes"][0];
    assert_eq!(outcome["status"], "error", "{outcome}");
    assert!(
        outcome["message"]
            .as_str()
            .unwrap()
            .contains("persist-credentials: false"),
        "{outcome}"
    );
    assert_eq!(ws.snapshot(), before);

    // With no credential on disk the check runs, and cannot read the gate's environment.
    let run = run_gate_process(wrapper, &canary, "strict", None);
    let outcome = &run["outcomes"][0];
    let output = outcome["output_tail"].as_str().unwrap();
    assert_eq!(outcome["status"], "passed", "{outcome}");
    assert!(output.contains("repo=octo/demo"), "{output}");
    assert!(!output.contains("environ-exit=0"), "{output}");
    assert!(
        !output.contains(&canary),
        "the canary leaked to the check:\n{output}"
    );
}

#[test]
fn the_program_a_command_starts_is_its_first_bare_word() {
    use agent_gate::adapters::checks::leading_program;
    for (command, program) in [
        ("ruff check .", Some("ruff")),
        ("  pytest -q tests", Some("pytest")),
        ("FOO=1 BAR=x npm test", Some("npm")),
        ("python3.12 -m pytest", Some("python3.12")),
        ("make; echo done", Some("make")),
        ("./scripts/lint.sh", None),
        ("bash scripts/lint.sh", Some("bash")),
        ("/usr/bin/env python3", None),
        ("test -f x", None),
        ("if true; then ruff; fi", None),
        ("! grep x y", None),
        ("\"$TOOL\" run", None),
        ("$(which ruff) check", None),
        ("FOO=1", None),
        ("", None),
    ] {
        assert_eq!(
            leading_program(command.as_bytes()).as_deref(),
            program,
            "{command:?}"
        );
    }
}

#[tokio::test]
async fn a_missing_program_is_unavailable_found_before_any_check_runs() {
    let dir = tree();
    let out = out_dir();
    let first = spec_out("first", "touch \"$OUT/first-ran\"", out.path());
    let missing = spec_out("ruff", "ruff-not-installed-here check .", out.path());
    let assigned = spec_out("assigned", "CI=1 also-not-installed --flag", out.path());
    let script = spec_out("script", "./not-in-the-tree.sh", out.path());
    let run = run_specs(
        dir.path(),
        &[first, missing, assigned, script],
        &[],
        &opts(),
    )
    .await;
    assert_eq!(run.outcomes[0].status, CheckStatus::Passed);
    assert!(out.path().join("first-ran").exists());
    match &run.outcomes[1].status {
        CheckStatus::Unavailable { program, message } => {
            assert_eq!(program, "ruff-not-installed-here");
            assert!(message.contains("looked on PATH="), "{message}");
            assert!(message.contains("docs/action.md"), "{message}");
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
    assert!(matches!(
        &run.outcomes[2].status,
        CheckStatus::Unavailable { program, .. } if program == "also-not-installed"
    ));
    // A path is the tree's business: it runs, and fails.
    assert_eq!(
        run.outcomes[3].status,
        CheckStatus::Failed {
            exit_code: Some(127),
            signal: None
        }
    );
    assert!(run.failed_required());
}

/// Each check works on its own tree: what one check writes, another never sees, in
/// whichever order they are listed (the last check that runs in the gate gets the export
/// itself, the others copies made before any check starts).
#[tokio::test]
async fn each_check_gets_its_own_copy_of_the_tree() {
    for writer_first in [true, false] {
        let dir = tree();
        std::fs::write(dir.path().join("config.txt"), "original\n").unwrap();
        let out = out_dir();
        let mut o = opts();
        o.jobs = 2;
        let writer = spec_out(
            "writer",
            "echo changed > config.txt; touch \"$OUT/written\"; sleep 0.3",
            out.path(),
        );
        let mut reader = spec_out(
            "reader",
            "for i in $(seq 200); do test -e \"$OUT/written\" && break; sleep 0.05; done; test -e \"$OUT/written\" && grep -qx original config.txt",
            out.path(),
        );
        reader.timeout = Duration::from_secs(30);
        let (specs, reader_at) = if writer_first {
            (vec![writer, reader], 1)
        } else {
            (vec![reader, writer], 0)
        };
        let run = run_specs(dir.path(), &specs, &[], &o).await;
        assert_eq!(
            run.outcomes[1 - reader_at].status,
            CheckStatus::Passed,
            "writer first: {writer_first}"
        );
        assert_eq!(
            run.outcomes[reader_at].status,
            CheckStatus::Passed,
            "writer first: {writer_first}: {}",
            run.outcomes[reader_at].output_tail
        );
    }
}

/// As root, one uid per check: a hostile check that looks for the other check's tree
/// through `/proc/<pid>/cwd` and the temp directory cannot write it.
#[tokio::test]
#[ignore = "needs root (one uid per check); .ci/run runs it: cargo test --test it -- --ignored as_root"]
async fn as_root_a_hostile_check_cannot_reach_another_checks_tree() {
    crate::support::require_root();
    let dir = tree();
    std::fs::write(dir.path().join("lint-target.txt"), "original\n").unwrap();
    let out = out_dir();
    let mut o = opts();
    o.jobs = 2;
    let mut victim = spec_out(
        "victim",
        "touch \"$OUT/victim-up\"; for i in $(seq 200); do test -e \"$OUT/vandal-done\" && break; sleep 0.05; done; id -u > \"$OUT/victim-uid\"; grep -qx original lint-target.txt",
        out.path(),
    );
    victim.timeout = Duration::from_secs(30);
    let mut vandal = spec_out(
        "vandal",
        "for i in $(seq 200); do test -e \"$OUT/victim-up\" && break; sleep 0.05; done; \
         id -u > \"$OUT/vandal-uid\"; \
         for cwd in /proc/[0-9]*/cwd; do echo hacked > \"$cwd/lint-target.txt\" 2>/dev/null && echo \"via $cwd\" >> \"$OUT/hits\"; done; \
         find /tmp -name lint-target.txt -writable 2>/dev/null | while read -r f; do [ \"$f\" -ef lint-target.txt ] || { echo hacked > \"$f\" && echo \"via $f\" >> \"$OUT/hits\"; }; done; \
         touch \"$OUT/vandal-done\"",
        out.path(),
    );
    vandal.timeout = Duration::from_secs(30);
    let run = run_specs(dir.path(), &[victim, vandal], &[], &o).await;
    let hits = std::fs::read_to_string(out.path().join("hits")).unwrap_or_default();
    // Only the vandal's own copy may have been written (its own cwd).
    assert!(
        hits.lines().count() <= 1,
        "the vandal reached other trees: {hits}"
    );
    assert_eq!(
        run.outcomes[0].status,
        CheckStatus::Passed,
        "{}",
        run.outcomes[0].output_tail
    );
    let uid = |f: &str| std::fs::read_to_string(out.path().join(f)).unwrap();
    assert_ne!(uid("victim-uid"), uid("vandal-uid"), "one uid per check");
}

/// With no Docker engine, a check with `image:` cannot run: `unavailable`, saying why and
/// what to do, never a failure of the change.
#[tokio::test]
async fn an_image_check_without_an_engine_is_unavailable() {
    let dir = tree();
    let mut s = spec("in python", "pytest -q");
    s.image = Some(agent_gate::core::policy::CheckImage {
        image: "python:3.12-slim".into(),
        network: agent_gate::core::policy::CheckNetwork::None,
        memory_bytes: 1 << 30,
        nano_cpus: 1_000_000_000,
        pids: 256,
    });
    let o = RunOptions {
        docker: None,
        ..opts()
    };
    let run = run_specs(dir.path(), &[s], &[], &o).await;
    match &run.outcomes[0].status {
        CheckStatus::Unavailable { program, message } => {
            assert_eq!(program, "python:3.12-slim");
            assert!(
                message.contains("no Docker engine is reachable"),
                "{message}"
            );
            assert!(message.contains("DOCKER_HOST"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}
