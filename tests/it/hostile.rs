//! Hostile changes (issue 7, DESIGN §5): what an agent may push to break the gate — file
//! names with newlines, tabs, quotes, a leading `-`, `..` in names, non-UTF-8 bytes, very
//! long paths; 100,000 changed files; a 50 MB file; symbolic links to `/etc/passwd` and to
//! `../../..`; a submodule; a mode change to executable; edits to workflows, `CODEOWNERS`
//! and the policy; renames across the scope boundary. Each gets the right decision (through
//! `check`, and end to end through `run` and the simulator), names reach checks as single
//! words, and no check reads outside its tree through a symbolic link.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use agent_gate::adapters::shutdown::Shutdown;
use agent_gate::core::policy::{MAX_POLICY_BYTES, Policy};
use agent_gate::core::report::{CheckStatus, Report, Verdict, ViolationKind};
use agent_gate::flow::{CheckOptions, RunOptions, check};
use agent_gate::sim::{self, FileOp, FinalState, Scenario, SimConfig, TaskScript};

use proptest::prelude::*;

use crate::support::{Gate, TestRepo};

const POLICY_PATH: &str = ".github/agent-gate.yml";

/// A repository with `policy` and a small project on `main`, then the branch `agent`.
fn project(policy: &str) -> TestRepo {
    let repo = TestRepo::new();
    repo.write(POLICY_PATH, policy);
    repo.write("src/lib.rs", "pub fn one() -> u32 { 1 }\n");
    repo.write("src/config.rs", "pub const NAME: &str = \"demo\";\n");
    repo.write("src/run.sh", "#!/bin/sh\necho run\n");
    repo.write("docs/guide.md", "# Guide\n");
    repo.commit("project");
    repo.branch("agent");
    repo
}

async fn gate(repo: &TestRepo) -> Report {
    check(
        CheckOptions {
            repo: repo.path().to_path_buf(),
            base: "main".to_string(),
            head: "agent".to_string(),
            policy_path: POLICY_PATH.to_string(),
            scope: agent_gate::core::scope::ScopeInput::default(),
            jobs: Some(2),
        },
        Shutdown::never(),
    )
    .await
}

fn entry<'a>(report: &'a Report, path: &[u8]) -> &'a agent_gate::core::report::FileEntry {
    report
        .files
        .iter()
        .find(|f| f.path_bytes.as_deref().unwrap_or(f.path.as_bytes()) == path)
        .unwrap_or_else(|| {
            panic!(
                "no file entry for {:?} in {:?}",
                String::from_utf8_lossy(path),
                report.files.iter().map(|f| &f.path).collect::<Vec<_>>()
            )
        })
}

fn kinds(report: &Report) -> Vec<ViolationKind> {
    report.violations.iter().map(|v| v.kind.clone()).collect()
}

fn has_violation(report: &Report, kind: &ViolationKind, path: &str) -> bool {
    report
        .violations
        .iter()
        .any(|v| &v.kind == kind && v.path.as_deref() == Some(path))
}

fn git_stdin(repo: &TestRepo, args: &[&str], input: &[u8]) {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(repo.path())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("run git");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("feed git");
    assert!(child.wait().expect("git ends").success(), "git {args:?}");
}

/// Names no file system, shell or parser likes, all inside `src/` (in scope).
const IN_SCOPE: &[&[u8]] = &[
    b"src/new\nline.rs",
    b"src/tab\there.rs",
    b"src/\"double\" 'single'.rs",
    b"src/-rf",
    b"src/--output=pwned",
    b"src/..hidden/x.rs",
    b"src/a..b.rs",
    b"src/caf\xc3\xa9.rs",
    b"src/non-utf8-\xff\xfe.rs",
    b"src/$(touch pwned);`id`.rs",
    b"src/star*glob?[x].rs",
    b"src/ leading and trailing ",
    b"src/back\\slash.rs",
];

/// The same kind of names outside `allow`.
const OUT_OF_SCOPE: &[&[u8]] = &[
    b"-rf",
    b"..weird",
    b"docs/new\nline.md",
    b"docs/\xff.md",
    b"tab\there.md",
];

const NAMES_POLICY: &str = r#"version: 1
scope:
  allow: ["src/**"]
checks-on-violation: run
checks:
  - name: every name is one word
    run: 'n=0; for f in {files}; do n=$((n+1)); test -e "$f" || { echo "MISSING <$f>"; exit 1; }; done; test "$n" = "$EXPECTED" || { echo "got $n names"; exit 1; }'
    files: "src/**"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_file_names_are_decided_exactly_and_reach_checks_as_single_words() {
    let long: Vec<u8> = {
        let mut p = b"src/".to_vec();
        for _ in 0..14 {
            p.extend_from_slice(&[b'd'; 200]);
            p.push(b'/');
        }
        p.extend_from_slice(b"deep.rs");
        p
    };
    let expected = IN_SCOPE.len() + 1;
    let policy = NAMES_POLICY.replace("$EXPECTED", &expected.to_string());
    let repo = project(&policy);
    for name in IN_SCOPE.iter().chain(OUT_OF_SCOPE).copied() {
        repo.write(name, b"x\n");
    }
    repo.write(&long, b"deep\n");
    repo.commit("hostile names");

    let report = gate(&repo).await;
    assert_eq!(
        report.verdict,
        Verdict::ScopeViolation,
        "{}",
        report.render_text()
    );
    for name in IN_SCOPE.iter().copied().chain([long.as_slice()]) {
        let e = entry(&report, name);
        assert!(
            e.in_scope,
            "{:?} should be in scope",
            String::from_utf8_lossy(name)
        );
        assert_eq!(e.status, "added");
    }
    for name in OUT_OF_SCOPE {
        let e = entry(&report, name);
        assert!(
            !e.in_scope,
            "{:?} should be out of scope",
            String::from_utf8_lossy(name)
        );
        assert!(
            report
                .violations
                .iter()
                .any(|v| v.kind == ViolationKind::OutOfScope
                    && v.path.as_deref() == Some(e.path.as_str())),
            "no violation for {:?}",
            e.path
        );
    }
    assert_eq!(report.files.len(), IN_SCOPE.len() + OUT_OF_SCOPE.len() + 1);
    assert_eq!(
        report.violations.len(),
        OUT_OF_SCOPE.len(),
        "{:?}",
        report.violations
    );
    // The check ran (checks-on-violation: run) and saw each in-scope name as one existing
    // path; nothing named in a file name was executed.
    assert_eq!(report.checks.len(), 1);
    assert_eq!(
        report.checks[0].status,
        CheckStatus::Passed,
        "{}",
        report.checks[0].output_tail
    );
    assert!(!repo.path().join("pwned").exists() && !repo.path().join("src/pwned").exists());
    // The report stays one JSON document; the non-UTF-8 names keep their exact bytes.
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("JSON");
    assert_eq!(json["verdict"], "scope-violation");
    let raw = entry(&report, b"src/non-utf8-\xff\xfe.rs");
    assert_eq!(
        raw.path_bytes.as_deref(),
        Some(&b"src/non-utf8-\xff\xfe.rs"[..])
    );
    // What a human reads (Debug-quoted here so that control characters are visible).
    let messages: Vec<String> = report
        .violations
        .iter()
        .map(|v| format!("{:?}", v.message))
        .collect();
    insta::assert_snapshot!("hostile_name_violations", messages.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_changed_files_exceed_max_files_and_are_all_listed() {
    let repo = project("version: 1\nscope:\n  allow: [\"src/**\"]\n  max-files: 200\n");
    // Plumbing: 100,000 index entries sharing one blob, committed without a work tree.
    let blob = {
        let out = Command::new("git")
            .arg("-C")
            .arg(repo.path())
            .args(["hash-object", "-w", "--stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                c.stdin.take().expect("stdin").write_all(b"generated\n")?;
                c.wait_with_output()
            })
            .expect("hash-object");
        String::from_utf8(out.stdout)
            .expect("hex")
            .trim()
            .to_string()
    };
    let mut info = Vec::new();
    for i in 0..100_000 {
        let _ = write!(info, "100644 {blob}\tsrc/gen/{:03}/{i}.rs\0", i % 997);
    }
    git_stdin(
        &repo,
        &["update-index", "--add", "-z", "--index-info"],
        &info,
    );
    repo.git(["commit", "-q", "-m", "100,000 files"]);

    let report = gate(&repo).await;
    assert_eq!(report.verdict, Verdict::ScopeViolation);
    assert_eq!(report.files.len(), 100_000);
    assert!(report.files.iter().all(|f| f.in_scope));
    assert_eq!(
        kinds(&report),
        [ViolationKind::MaxFiles],
        "{:?}",
        report.violations
    );
    assert!(
        report
            .checks
            .iter()
            .all(|c| c.status == CheckStatus::Skipped)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mb_binary_file_and_a_50_mb_text_file_are_refused_by_their_limits() {
    let repo = project(
        "version: 1\nscope:\n  allow: [\"src/**\", \"assets/**\"]\n  max-changed-lines: 5000\n",
    );
    let mut binary = vec![0u8; 50 << 20];
    for (i, b) in binary.iter_mut().enumerate().step_by(4096) {
        *b = (i >> 12).to_le_bytes()[0];
    }
    repo.write("assets/blob.bin", &binary);
    drop(binary);
    repo.write("src/huge.rs", "// generated line\n".repeat((50 << 20) / 18));
    repo.commit("two big files");

    let report = gate(&repo).await;
    assert_eq!(report.verdict, Verdict::ScopeViolation);
    let bin = entry(&report, b"assets/blob.bin");
    assert!(bin.binary && bin.added.is_none());
    assert!(has_violation(
        &report,
        &ViolationKind::BinaryFile,
        "assets/blob.bin"
    ));
    let text = entry(&report, b"src/huge.rs");
    assert!(!text.binary);
    assert_eq!(text.added, Some(((50 << 20) / 18) as u64));
    assert!(kinds(&report).contains(&ViolationKind::MaxChangedLines));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_out_of_the_tree_are_violations_and_checks_never_follow_them() {
    let leak_check = r#"
checks:
  - name: no leak through links
    run: 'if cat src/passwd src/etc/passwd src/up/etc/passwd 2>/dev/null | grep -q "root:"; then echo LEAK; exit 1; fi; test -L src/alias.rs && test "$(cat src/alias.rs)" = "pub fn one() -> u32 { 1 }"'
"#;
    let make = |policy: &str| {
        let repo = project(&format!("{policy}{leak_check}"));
        let link = |target: &str, name: &str| {
            std::os::unix::fs::symlink(target, repo.path().join(name)).expect("symlink");
        };
        link("/etc/passwd", "src/passwd");
        link("/etc", "src/etc");
        link("../../..", "src/up");
        link("lib.rs", "src/alias.rs");
        repo.commit("links");
        repo
    };

    // Default policy: every link is a violation, and the change's code is not run.
    let repo = make("version: 1\nscope:\n  allow: [\"src/**\"]\n");
    let report = gate(&repo).await;
    assert_eq!(report.verdict, Verdict::ScopeViolation);
    for p in ["src/passwd", "src/etc", "src/up", "src/alias.rs"] {
        assert!(
            has_violation(&report, &ViolationKind::Symlink, p),
            "{p}: {:?}",
            report.violations
        );
    }
    assert!(
        report
            .checks
            .iter()
            .all(|c| c.status == CheckStatus::Skipped)
    );

    // Links allowed and checks run anyway: the links that lead out of the tree are plain
    // files in the check's copy; the one inside still works.
    let repo = make("version: 1\nscope:\n  allow: [\"src/**\"]\n  symlinks: allow\n");
    let report = gate(&repo).await;
    assert_eq!(report.checks.len(), 1);
    assert_eq!(
        report.checks[0].status,
        CheckStatus::Passed,
        "{}",
        report.checks[0].output_tail
    );
    assert_eq!(report.verdict, Verdict::Passed, "{}", report.render_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submodules_mode_changes_protected_files_and_renames_across_the_boundary() {
    let repo = project("version: 1\nscope:\n  allow: [\"**\"]\n  deny: [\"secrets/**\"]\n");
    repo.write("secrets/old.txt", "moved out\n");
    repo.commit("a denied file on the base");
    // Rebuild `agent` from here.
    repo.git(["branch", "-f", "main", "HEAD"]);
    let base = repo.head();
    // A submodule and its .gitmodules (the gitlink is staged last, below).
    repo.write(
        ".gitmodules",
        "[submodule \"vendor/lib\"]\n\tpath = vendor/lib\n\turl = ../lib\n",
    );
    // A mode change to executable.
    std::fs::set_permissions(
        repo.path().join("src/run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    // Protected paths, whatever `allow` says.
    for p in [
        ".github/workflows/ci.yml",
        ".github/actions/setup/action.yml",
        "CODEOWNERS",
        ".github/CODEOWNERS",
        "docs/CODEOWNERS",
    ] {
        repo.write(p, "* @attacker\n");
    }
    repo.write(
        POLICY_PATH,
        "version: 1\nscope:\n  allow: [\"**\"]\n  symlinks: allow\n",
    );
    // Renames: into a denied directory, and out of it.
    repo.git(["mv", "src/config.rs", "secrets/config.rs"]);
    repo.git(["mv", "secrets/old.txt", "src/old.txt"]);
    repo.git(["add", "-A"]);
    repo.git([
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{base},vendor/lib"),
    ]);
    repo.git(["commit", "-q", "-m", "everything at once"]);

    let report = gate(&repo).await;
    assert_eq!(report.verdict, Verdict::ScopeViolation);
    assert!(
        has_violation(&report, &ViolationKind::Submodule, "vendor/lib"),
        "{:?}",
        report.violations
    );
    assert!(has_violation(
        &report,
        &ViolationKind::ModeChange,
        "src/run.sh"
    ));
    for p in [
        ".github/workflows/ci.yml",
        ".github/actions/setup/action.yml",
        "CODEOWNERS",
        ".github/CODEOWNERS",
        "docs/CODEOWNERS",
        ".gitmodules",
        POLICY_PATH,
    ] {
        assert!(
            has_violation(&report, &ViolationKind::Protected, p),
            "{p}: {:?}",
            report.violations
        );
    }
    let into = entry(&report, b"secrets/config.rs");
    assert_eq!(into.status, "renamed");
    assert_eq!(into.old_path.as_deref(), Some("src/config.rs"));
    assert!(!into.in_scope);
    let out_of = entry(&report, b"src/old.txt");
    assert_eq!(out_of.old_path.as_deref(), Some("secrets/old.txt"));
    assert!(!out_of.in_scope, "the old side of a rename is checked too");
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.message.contains("secrets/old.txt")),
        "{:?}",
        report.violations
    );
    // The policy in force is the base's: the head's `symlinks: allow` changed nothing.
    assert_eq!(report.policy.as_deref(), Some(POLICY_PATH));
}

/// The same hostile change, produced by the simulated agent and gated by `run`: the names
/// survive the API, the fetch and the diff, and each gets its decision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_gates_a_hostile_change_pushed_by_the_simulated_agent() {
    let write = |path: &str| FileOp::Write {
        path: path.to_string(),
        content: b"x\n".to_vec(),
    };
    let files = vec![
        write("src/new\nline.rs"),
        write("src/tab\there.rs"),
        write("src/\"quoted\".rs"),
        write("src/-rf"),
        write(".github/workflows/ci.yml"),
        write("CODEOWNERS"),
        write(POLICY_PATH),
        FileOp::Symlink {
            path: "src/passwd".to_string(),
            target: "/etc/passwd".to_string(),
        },
        FileOp::Symlink {
            path: "src/up".to_string(),
            target: "../../..".to_string(),
        },
        FileOp::Mode {
            path: "src/run.sh".to_string(),
            executable: true,
        },
        FileOp::Rename {
            from: "src/config.rs".to_string(),
            to: "config/config.rs".to_string(),
        },
    ];
    let world = Gate::new()
        .policy("version: 1\nrepositories: [octo/demo]\nagent:\n  poll: { initial: 1s, max: 1s }\nscope:\n  allow: [\"src/**\"]\n")
        .file("src/config.rs", "pub const NAME: &str = \"demo\";\n")
        .file("src/run.sh", "#!/bin/sh\n")
        .scenario(Scenario {
            default_task: TaskScript {
                files: Some(files),
                final_state: FinalState::Completed,
                ..TaskScript::default()
            },
            ..Scenario::default()
        })
        .token("ghp_hostile")
        .start()
        .await;
    let (report, _) = world
        .run(RunOptions {
            instruction: "Touch everything you should not".to_string(),
            policy_path: POLICY_PATH.to_string(),
            timeout: Some(Duration::from_mins(1)),
            jobs: Some(1),
            gate_env: Vec::new(),
            ..world.opts("")
        })
        .await;
    assert_eq!(
        report.verdict,
        Verdict::ScopeViolation,
        "{}",
        report.render_text()
    );
    for name in [
        "src/new\nline.rs",
        "src/tab\there.rs",
        "src/\"quoted\".rs",
        "src/-rf",
    ] {
        assert!(entry(&report, name.as_bytes()).in_scope, "{name:?}");
    }
    for p in [".github/workflows/ci.yml", "CODEOWNERS", POLICY_PATH] {
        assert!(has_violation(&report, &ViolationKind::Protected, p), "{p}");
    }
    assert!(has_violation(
        &report,
        &ViolationKind::Symlink,
        "src/passwd"
    ));
    assert!(has_violation(&report, &ViolationKind::Symlink, "src/up"));
    assert!(has_violation(
        &report,
        &ViolationKind::ModeChange,
        "src/run.sh"
    ));
    let renamed = entry(&report, b"config/config.rs");
    assert_eq!(renamed.old_path.as_deref(), Some("src/config.rs"));
    assert!(has_violation(
        &report,
        &ViolationKind::OutOfScope,
        "config/config.rs"
    ));
    assert_eq!(world.work.git(["status", "--porcelain"]), "");
}

/// A path with `..` components never leaves the simulator's repository: git refuses it, the
/// session fails, and the gate says the agent failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_path_with_dot_dot_segments_never_escapes() {
    let bare = tempfile::tempdir().expect("temp dir");
    let repo_dir = bare.path().join("remote.git");
    let sim = sim::start(
        SimConfig {
            repositories: Vec::new(),
            repo: repo_dir.clone(),
            scenario: Some(Scenario {
                default_task: TaskScript {
                    files: Some(vec![FileOp::Write {
                        path: "src/../../escaped.txt".to_string(),
                        content: b"out\n".to_vec(),
                    }]),
                    ..TaskScript::default()
                },
                ..Scenario::default()
            }),
            time_scale: 1000.0,
        },
        ([127, 0, 0, 1], 0).into(),
    )
    .await
    .expect("simulator");
    let client = agent_gate::adapters::github::Client::new(
        agent_gate::adapters::github::ClientConfig::new("ghp_dots", "octo", "demo")
            .with_api_url(sim.url()),
    )
    .expect("client");
    let task = client
        .create_task(&agent_gate::adapters::github::create_task_request(
            "escape", None,
        ))
        .await
        .expect("created");
    let mut state = String::new();
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        state = client
            .get_task(&task.id)
            .await
            .expect("task")
            .state
            .to_string();
        if state != "queued" && state != "in_progress" {
            break;
        }
    }
    assert_eq!(state, "failed");
    assert!(!bare.path().join("escaped.txt").exists());
    assert!(!Path::new(&repo_dir).join("../escaped.txt").exists());
    assert_eq!(std::fs::read_dir(bare.path()).expect("dir").count(), 1);
}

/// A file name cannot forge lines of the terminal report: a newline in a name is shown
/// escaped, so the forged text stays on the line of the file that carries it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn a_file_name_cannot_forge_report_lines() {
    let repo = project("version: 1\nscope:\n  allow: [\"src/**\"]\n");
    repo.write(
        "docs/evil\n  ok  added    src/innocent.rs   +1 -0  allowed by \"src/**\" (line 3)\n",
        "x\n",
    );
    repo.commit("forgery");
    let report = gate(&repo).await;
    assert_eq!(report.verdict, Verdict::ScopeViolation);
    let text = report.render_text();
    let forged: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("innocent") && !l.contains("evil"))
        .collect();
    assert!(forged.is_empty(), "forged lines {forged:?} in:\n{text}");
}

// ---------------------------------------------------------------------------------------
// Hostile configuration: policies built to exhaust the loader. Each gives a clear error (or
// a correct policy) in bounded time and memory; the messages are what humans read.

/// `levels` levels of nine-fold aliases (9^levels nodes once expanded), hung under `key`.
fn billion_laughs(key: &str, levels: usize) -> String {
    let names: Vec<String> = (0..levels).map(|i| format!("l{i}")).collect();
    let mut y = format!(
        "version: 1\n{key}:\n  - &l0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
    );
    for w in names.windows(2) {
        let p = &w[0];
        let _ = writeln!(
            y,
            "  - &{} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]",
            w[1]
        );
    }
    y
}

#[test]
fn a_billion_laughs_policy_is_a_clear_error() {
    let mut shown = Vec::new();
    for key in ["lol", "repositories"] {
        let text = billion_laughs(key, 9);
        let err = Policy::from_yaml(&text, ".github/agent-gate.yml")
            .expect_err("a billion laughs is not a policy");
        shown.push(err.to_string());
    }
    let text = format!(
        "version: 1\nscope:\n  allow: &a [\"src/**\"]\n  deny: *a\n{}",
        billion_laughs("x", 9).trim_start_matches("version: 1\n")
    );
    shown.push(
        Policy::from_yaml(&text, ".github/agent-gate.yml")
            .expect_err("unknown key")
            .to_string(),
    );
    insta::assert_snapshot!("billion_laughs", shown.join("\n---\n"));
}

#[test]
fn a_10_mb_policy_is_refused_before_parsing() {
    let mut big = String::from("version: 1\nscope:\n  allow:\n");
    let mut i = 0;
    while big.len() < 10 << 20 {
        let _ = writeln!(big, "    - \"src/generated/module_{i}/**/*.rs\"");
        i += 1;
    }
    let err = Policy::from_yaml(&big, ".github/agent-gate.yml").expect_err("too large");
    let shown = err.to_string().replace(&big.len().to_string(), "<size>");
    insta::assert_snapshot!("ten_megabyte_policy", shown);
    // Just under the limit is read (and compiled) normally.
    let mut fits = String::from("version: 1\n");
    while fits.len() < MAX_POLICY_BYTES - 200 {
        fits.push_str("# a long comment line that pads the file without adding any rules\n");
    }
    fits.push_str("scope:\n  allow: [\"src/**\"]\n");
    assert!(fits.len() <= MAX_POLICY_BYTES);
    let policy = Policy::from_yaml(&fits, ".github/agent-gate.yml").expect("fits");
    assert!(policy.scope.decide(b"src/a.rs").in_scope);
}

#[test]
fn globs_built_to_explode_are_refused_or_decided_quickly() {
    // Brace groups that would multiply into 2^30 patterns, and nesting past the limit.
    let mut shown = Vec::new();
    for glob in [
        "{a,b}".repeat(30),
        format!("{}x{}", "{a,".repeat(40), "}".repeat(40)),
    ] {
        let text = format!("version: 1\nscope:\n  allow: [\"{glob}\"]\n");
        let err = Policy::from_yaml(&text, "p.yml").expect_err("refused");
        shown.push(err.to_string().replace(&glob, "<glob>"));
    }
    insta::assert_snapshot!("exploding_globs", shown.join("\n"));
    // Backtracking bait: many stars against long near-miss paths. Correct answers (no
    // timing is asserted; a catastrophic matcher would not finish).
    let text = format!(
        "version: 1\nscope:\n  allow: [\"{}b\", \"{}c\"]\n  deny: [\"{}\"]\n",
        "*a".repeat(40),
        "**/a/".repeat(40),
        "[!a]*".repeat(30)
    );
    let policy = Policy::from_yaml(&text, "p.yml").expect("valid globs");
    let near_miss = "a".repeat(4000);
    assert!(!policy.scope.decide(near_miss.as_bytes()).in_scope);
    let deep = format!("{}c", "a/".repeat(2000));
    assert!(policy.scope.decide(deep.as_bytes()).in_scope);
    let shallow = format!("{}c", "a/".repeat(20));
    assert!(!policy.scope.decide(shallow.as_bytes()).in_scope);
}

// ---------------------------------------------------------------------------------------
// Bounded versions of the fuzz targets in `fuzz/` (run in CI): the policy loader, the git
// `-z` parsers and the API JSON decoder never panic on mutations of valid inputs.

const VALID_POLICY: &str = r#"version: 1
repositories: [octo-org/payments]
agent:
  base-ref: main
  timeout: 45m
  poll: { initial: 5s, max: 60s }
  on-idle: accept
  on-waiting-for-user: fail
  max-concurrent-tasks: 2
scope:
  allow: ["src/services/**", "tests/**", "{a,b}/*.rs"]
  deny: ["**/*.pem", "migrations/**"]
  max-files: 200
  max-changed-lines: 5000
  binary-files: deny
checks:
  - name: unit tests
    run: cargo test --locked {files}
    files: "**/*.rs"
    timeout: 20m
    when: ["src/**", "Cargo.*"]
report:
  status-context: agent-gate
"#;

/// Insert, delete or replace bytes at random places of `seed`.
fn mutated(seed: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    let edit = (any::<prop::sample::Index>(), 0u8..3, any::<u8>(), 1usize..8);
    proptest::collection::vec(edit, 1..8).prop_map(move |edits| {
        let mut v = seed.to_vec();
        for (at, kind, byte, len) in edits {
            let i = if v.is_empty() { 0 } else { at.index(v.len()) };
            match kind {
                0 => {
                    for _ in 0..len {
                        v.insert(i, byte);
                    }
                }
                1 => {
                    let end = (i + len).min(v.len());
                    v.drain(i..end);
                }
                _ => {
                    if i < v.len() {
                        v[i] = byte;
                    }
                }
            }
        }
        v
    })
}

const RAW_Z: &[u8] = b":100644 100755 1111111111111111111111111111111111111111 2222222222222222222222222222222222222222 M\0src/a.rs\0:000000 120000 0000000000000000000000000000000000000000 3333333333333333333333333333333333333333 A\0new\nline\0:100644 100644 4444444444444444444444444444444444444444 4444444444444444444444444444444444444444 R100\0old.rs\0new.rs\0";

const NUMSTAT_Z: &[u8] = b"1\t2\tsrc/a.rs\0-\t-\tbin.png\0" as &[u8];
const TASK_JSON: &[u8] = br#"{"id":"t1","name":"Fix","state":"completed","session_count":1,"artifacts":[{"provider":"github","type":"branch","data":{"head_ref":"copilot/fix","base_ref":"main"}},{"provider":"github","type":"pull","data":{"id":12,"global_id":"PR_1"}}],"archived_at":null,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:01:00Z","html_url":"https://github.com/o/r/copilot/tasks/t1","sessions":[{"id":"s1","state":"completed","prompt":"do it","head_ref":"copilot/fix","usage":{"type":"ai_credits","amount":1500000000}}]}"#;

fn exercise_task(task: &agent_gate::adapters::github::types::Task) {
    let _ = agent_gate::adapters::github::task_cost(task).ai_credits();
    let _ = task.state.is_final();
    for a in &task.artifacts {
        let _ = a.decode();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_policy_loader_never_panics_on_mutated_policies(bytes in mutated(VALID_POLICY.as_bytes())) {
        let text = String::from_utf8_lossy(&bytes);
        if let Err(e) = Policy::from_yaml(&text, ".github/agent-gate.yml") {
            // Every error renders, with a location inside the text when it has one.
            let shown = e.to_string();
            prop_assert!(!shown.is_empty());
            if let Some((line, column)) = e.location() {
                prop_assert!(line >= 1 && column >= 1);
                prop_assert!(line <= text.lines().count().max(1) + 1, "line {line} of {shown}");
            }
        }
    }

    #[test]
    fn the_git_z_parsers_never_panic_on_mutated_output(
        raw in mutated(RAW_Z),
        numstat in mutated(NUMSTAT_Z),
    ) {
        if let Ok(entries) = agent_gate::adapters::git::parse::parse_raw_z(&raw) {
            // What parses formats back to something that parses to the same entries.
            let again = agent_gate::adapters::git::parse::format_raw_z(&entries);
            prop_assert_eq!(agent_gate::adapters::git::parse::parse_raw_z(&again).ok(), Some(entries));
        }
        let _ = agent_gate::adapters::git::parse::parse_numstat_z(&numstat);
    }

    #[test]
    fn the_api_json_decoder_never_panics_on_mutated_tasks(bytes in mutated(TASK_JSON)) {
        if let Ok(task) = serde_json::from_slice::<agent_gate::adapters::github::types::Task>(&bytes) {
            exercise_task(&task);
        }
        let _ = serde_json::from_slice::<agent_gate::adapters::github::types::TaskList>(&bytes);
        let _ = serde_json::from_slice::<agent_gate::adapters::github::types::PullRequest>(&bytes);
    }

    #[test]
    fn the_api_json_decoder_never_panics_on_arbitrary_json(value in arbitrary_json()) {
        let text = value.to_string();
        if let Ok(task) = serde_json::from_str::<agent_gate::adapters::github::types::Task>(&text) {
            exercise_task(&task);
        }
    }
}

/// JSON values shaped like tasks: the right keys with values of any type.
fn arbitrary_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number)),
        "[a-z_]{0,12}".prop_map(serde_json::Value::from),
    ];
    let keys = prop_oneof![
        Just("id"),
        Just("state"),
        Just("artifacts"),
        Just("sessions"),
        Just("usage"),
        Just("type"),
        Just("amount"),
        Just("data"),
        Just("head_ref"),
        Just("provider"),
        Just("created_at"),
        Just("name"),
        Just("id"),
        Just("global_id"),
        Just("error"),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            proptest::collection::vec((keys.clone(), inner), 0..8).prop_map(|kv| {
                serde_json::Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}
