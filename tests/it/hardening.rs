//! Regressions of the outside security review (issue 15), one or more per class of what it
//! broke, each through the public interface: tokens on the command line, workflow commands
//! and terminal escapes smuggled through check output, credential-like variables reaching
//! checks, new executable files, ambiguous base names, the summary comment adopted by its
//! marker alone, removals judged as additions, protected paths reached through symbolic
//! links, criss-cross merge bases, unbounded brace expansion and unbounded API bodies.
//! `docs/guarantees.md` lists them with what each guarantees.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Output;

use crate::support::{Cli, CliOutput, Gate, TestRepo};

const CANARY: &str = "ghp_ReviewCanary0123456789abcdefghijklmn";

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The binary with no `INPUT_*`, `GITHUB_*` or token variables of the test's environment.
fn agent_gate(dir: &Path) -> Cli {
    Cli::new().current_dir(dir).clean_env().env("HOME", dir)
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
            .run();
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
    let world = Gate::new()
        .policy(&policy)
        .scenario_yaml("default: {queued: 1s, work: 1s}\n")
        .time_scale(100.0)
        .token(CANARY)
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{CANARY}\n")).unwrap();
    // The token only in the file: the environment is cleaned of the world's `INPUT_TOKEN`.
    let out = world
        .cli_run("add a file")
        .clean_env()
        .env("HOME", world.work.path())
        .current_dir(world.work.path())
        .args(["--format", "json"])
        .arg("--token-file")
        .arg(&token_file)
        .run_async()
        .await;
    let report = out.json();
    assert_eq!(report["verdict"], "passed", "{report:#}\n{}", out.stderr());
    assert!(report.to_string().contains("scanned"), "{report:#}");
    assert!(world.sim.count("POST", "/agents/repos/*/*/tasks") == 1);
    world.sim.shutdown().await;
}

// ---- 4. Workflow commands and terminal escapes in check output ----------------------------

/// The lines the Actions runner reads from `text`: it starts a line at `\n` and `\r` alike,
/// and trims the start of each before looking for `::`.
fn runner_lines(text: &str) -> Vec<&str> {
    text.split(['\n', '\r']).map(str::trim_start).collect()
}

/// `check` as the runner starts it (`GITHUB_ACTIONS=true`, file-command files in a temp dir).
fn check_in_actions(repo: &TestRepo, files: &Path) -> CliOutput {
    let file = |name: &str| {
        let p = files.join(name);
        std::fs::write(&p, "").unwrap();
        p
    };
    agent_gate(repo.path())
        .args(["check", "--base", "main", "--head", "agent"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_REPOSITORY", "octo/demo")
        .env("GITHUB_OUTPUT", file("output"))
        .env("GITHUB_STEP_SUMMARY", file("summary"))
        .env("RUNNER_TEMP", files)
        .run()
}

#[test]
fn check_output_cannot_inject_workflow_commands_or_terminal_escapes() {
    // A lone CR before a command, ESC sequences (colour, OSC 8 link, title), a C1 CSI, and a
    // Unicode line separator; the check fails, so its tail is in the text report too.
    let script = concat!(
        r"printf 'ok\r::stop-commands::evil\r::notice title=forged::FORGED-NOTICE\n';",
        r"printf '\033]8;;https://evil.example\033\\click\033]8;;\033\\ \033[31mred\033[0m\n';",
        r"printf '\033]0;title\007 \302\233 2J sep\342\200\250::warning::FORGED-WARNING\n';",
        "exit 1",
    );
    let repo = TestRepo::with_checks_and_a_change(&format!(
        "  - name: hostile output\n    run: {}\n",
        serde_json::to_string(script).unwrap()
    ));
    let files = tempfile::tempdir().unwrap();
    let out = check_in_actions(&repo, files.path());
    assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
    let text = stdout(&out);
    for stream in [&text, &stderr(&out)] {
        for line in runner_lines(stream) {
            assert!(
                !line.starts_with("##[") && (!line.starts_with("::") || gates_own(line)),
                "a command the check forged reaches the runner: {line:?}\n{stream}"
            );
        }
        assert!(
            !stream
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t'),
            "a raw control character is printed: {stream:?}"
        );
    }
    // What the check printed is shown, escaped: once in its log group, once in the report.
    assert_eq!(
        text.matches(r"ok\r::stop-commands::evil\r::notice title=forged::FORGED-NOTICE")
            .count(),
        2,
        "{text}"
    );
    assert!(
        text.contains(r"\x1b]8;;https://evil.example\x1b\click"),
        "{text}"
    );
    assert!(
        text.contains(r"\x9b 2J sep\u{2028}::warning::FORGED-WARNING"),
        "{text}"
    );
    // The gate's own commands still work: one group with its stop-commands window.
    let own: Vec<&str> = runner_lines(&text)
        .into_iter()
        .filter(|l| l.starts_with("::"))
        .collect();
    assert!(
        own.len() > 4,
        "group, stop, resume, endgroup, annotations: {own:?}"
    );
    assert!(
        own[0].starts_with("::group::check `hostile output`"),
        "{own:?}"
    );
    let token = own[1]
        .strip_prefix("::stop-commands::")
        .expect("the window opens");
    assert_eq!(
        own[2],
        format!("::{token}::"),
        "the window closes with its token"
    );
    assert_eq!(own[3], "::endgroup::", "{own:?}");
    assert!(own[4].starts_with("::error title=agent-gate%3A check hostile output failed::"));
}

/// The workflow commands the gate itself prints around a check's output and for its
/// verdict: a log group, a stop-commands window with a random 32-digit token, and its
/// own annotations (whose messages quote the output, escaped as command data).
fn gates_own(line: &str) -> bool {
    let hex32 = |t: &str| t.len() == 32 && t.chars().all(|c| c.is_ascii_hexdigit());
    line.starts_with("::group::check `")
        || line == "::endgroup::"
        || line.strip_prefix("::stop-commands::").is_some_and(hex32)
        || line
            .strip_prefix("::")
            .and_then(|l| l.strip_suffix("::"))
            .is_some_and(hex32)
        || ["::error", "::warning", "::notice"]
            .iter()
            .any(|l| line.starts_with(&format!("{l} title=agent-gate%3A ")))
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// Whatever the text, `neutralize` leaves no control character but `\n` and `\t`, and no
    /// line the runner would read as a command; `escape_output` keeps every line break and
    /// every character that is not a control.
    #[test]
    fn neutralized_text_holds_no_command_and_no_control(
        text in r"(::|##\[|[ \t]|\r|\n|\x1b|\u{9b}|\u{2028}|[a-z:%]|.){0,60}"
    ) {
        let safe = agent_gate::core::report::neutralize(&text);
        for c in safe.chars() {
            proptest::prop_assert!(!(c.is_control() && c != '\n' && c != '\t'), "{safe:?}");
            proptest::prop_assert!(c != '\u{2028}' && c != '\u{2029}', "{safe:?}");
        }
        for line in runner_lines(&safe) {
            proptest::prop_assert!(!line.starts_with("::") && !line.starts_with("##["), "{safe:?}");
        }
        let escaped = agent_gate::core::report::escape_output(&text);
        proptest::prop_assert_eq!(
            escaped.matches('\n').count(),
            text.matches('\n').count()
        );
        let kept = |s: &str| -> Vec<char> {
            s.chars().filter(|c| !c.is_control() && *c != '\u{2028}' && *c != '\u{2029}').collect()
        };
        proptest::prop_assert!(
            is_subsequence(&kept(&text), &kept(&escaped)),
            "{:?} lost characters in {:?}", text, escaped
        );
    }
}

/// Whether `small` appears in `big` in order (escapes insert characters between).
fn is_subsequence(small: &[char], big: &[char]) -> bool {
    let mut big = big.iter();
    small.iter().all(|c| big.any(|b| b == c))
}

// ---- 6. Credential-like variables -------------------------------------------------------

#[test]
fn only_known_runner_variables_and_declared_env_reach_a_check() {
    let repo = TestRepo::with_checks_and_a_change(
        "  - name: print env\n    run: env; exit 1\n    env: { DECLARED_BY_CHECK: visible-declared }\n",
    );
    let credentials = [
        ("GITHUB_PAT", "canary-pat-0001"),
        ("GITHUB_AUTH", "canary-auth-0002"),
        ("GITHUB_APP_PEM", "canary-pem-0003"),
        ("RUNNER_PASS", "canary-pass-0004"),
        ("NPM_AUTH", "canary-npm-0005"),
        ("GITHUB_TOKEN_X", "canary-tok-0006"),
    ];
    let out = agent_gate(repo.path())
        .args(["check", "--base", "main", "--head", "agent"])
        .envs(credentials)
        .env("GITHUB_RUN_ID", "visible-run-id")
        .env("RUNNER_OS", "visible-runner-os")
        .run();
    assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
    let text = stdout(&out);
    for (name, value) in credentials {
        assert!(!text.contains(value), "{name} reached the check:\n{text}");
        assert!(!text.contains(&format!("{name}=")), "{name}:\n{text}");
    }
    for shown in [
        "GITHUB_RUN_ID=visible-run-id",
        "RUNNER_OS=visible-runner-os",
        "DECLARED_BY_CHECK=visible-declared",
    ] {
        assert!(text.contains(shown), "{shown} is passed:\n{text}");
    }
}

// ---- shared: a change gated by `check --format json` -------------------------------------

/// `check --base main --head agent --format json` in `repo`: the exit code and the report.
fn check_json(repo: &TestRepo, extra: &[&str]) -> (i32, serde_json::Value) {
    check_json_with(
        repo,
        &[&["--base", "main", "--head", "agent"], extra].concat(),
    )
}

/// [`check_json`] of `base...head`.
fn check_json_between(repo: &TestRepo, base: &str, head: &str) -> (i32, serde_json::Value) {
    check_json_with(repo, &["--base", base, "--head", head])
}

fn check_json_with(repo: &TestRepo, args: &[&str]) -> (i32, serde_json::Value) {
    let out = agent_gate(repo.path())
        .args(["check", "--format", "json"])
        .args(args)
        .run();
    let report = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&out), stderr(&out)));
    (out.status.code().unwrap_or(-1), report)
}

/// The violations of a report as `(kind, path)`.
fn violations(report: &serde_json::Value) -> Vec<(String, String)> {
    report["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .map(|v| {
            (
                v["kind"].as_str().unwrap_or_default().to_string(),
                v["path"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn pair(kind: &str, path: &str) -> (String, String) {
    (kind.to_string(), path.to_string())
}

/// A repository with `policy` on `main` (plus what `base` does), and an `agent` branch made
/// by `agent`.
fn change(policy: &str, base: impl FnOnce(&TestRepo), agent: impl FnOnce(&TestRepo)) -> TestRepo {
    let repo = TestRepo::new();
    repo.write(".github/agent-gate.yml", policy);
    base(&repo);
    repo.commit("policy and base");
    repo.branch("agent");
    agent(&repo);
    repo.commit("the agent's change");
    repo
}

fn set_mode(repo: &TestRepo, path: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        repo.path().join(path),
        std::fs::Permissions::from_mode(mode),
    )
    .unwrap();
}

// ---- 9. New executable files ---------------------------------------------------------------

#[test]
fn mode_changes_deny_refuses_a_new_executable_file() {
    let policy = "version: 1\nscope:\n  allow: [\"**\"]\n";
    let agent = |r: &TestRepo| {
        r.write("bin/tool.sh", "#!/bin/sh\necho hi\n");
        set_mode(r, "bin/tool.sh", 0o755);
        r.write("bin/plain.txt", "not executable\n");
    };
    let (code, report) = check_json(&change(policy, |_| {}, agent), &[]);
    assert_eq!(code, 11, "{report:#}");
    assert_eq!(
        violations(&report),
        [pair("mode-change", "bin/tool.sh")],
        "{report:#}"
    );
    assert!(
        report["violations"][0]["message"]
            .as_str()
            .unwrap()
            .contains("new executable file"),
        "{report:#}"
    );
    // Allowed when the policy says so; the plain file was never the problem.
    let allowing = format!("{policy}  mode-changes: allow\n");
    let (code, report) = check_json(&change(&allowing, |_| {}, agent), &[]);
    assert_eq!((code, violations(&report)), (0, vec![]), "{report:#}");
}

// ---- 10. Removing is not adding --------------------------------------------------------------

#[test]
fn deleting_a_symlink_a_binary_file_or_a_submodule_is_not_adding_one() {
    // Default switches: binary files, symlinks and submodules denied.
    let policy = "version: 1\nscope:\n  allow: [\"**\"]\n";
    let base = |r: &TestRepo| {
        std::fs::create_dir_all(r.path().join("lib")).unwrap();
        std::os::unix::fs::symlink("v1", r.path().join("lib/current")).unwrap();
        r.write("lib/v1/a.txt", "a\n");
        r.write("assets/old.bin", [0u8, 159, 146, 150, 0, 1, 2, 3]);
        r.git(["add", "-A"]);
        let commit = r.head();
        r.git([
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("160000,{commit},vendor/dep"),
        ]);
        // What an uninitialized submodule looks like in a work tree (`add -A` keeps it).
        std::fs::create_dir_all(r.path().join("vendor/dep")).unwrap();
    };
    let deletes = |r: &TestRepo| {
        r.remove("lib/current");
        r.remove("assets/old.bin");
        r.git(["rm", "-q", "--cached", "vendor/dep"]);
        std::fs::remove_dir(r.path().join("vendor/dep")).unwrap();
    };
    let (code, report) = check_json(&change(policy, base, deletes), &[]);
    let kinds: Vec<String> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {}",
                f["status"].as_str().unwrap(),
                f["path"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "deleted assets/old.bin",
            "deleted lib/current",
            "deleted vendor/dep"
        ],
        "{report:#}"
    );
    assert_eq!((code, violations(&report)), (0, vec![]), "{report:#}");

    // Adding or changing them is still refused, and so is turning a file into a link.
    let adds = |r: &TestRepo| {
        r.remove("lib/current");
        std::os::unix::fs::symlink("v2", r.path().join("lib/current")).unwrap();
        r.write("assets/old.bin", [0u8, 1, 2, 3, 4]);
        r.remove("lib/v1/a.txt");
        std::os::unix::fs::symlink("../../README.md", r.path().join("lib/v1/a.txt")).unwrap();
        let commit = r.head();
        r.git(["add", "-A"]);
        r.git([
            "update-index",
            "--cacheinfo",
            &format!("160000,{commit},vendor/dep"),
        ]);
    };
    let (code, report) = check_json(&change(policy, base, adds), &[]);
    assert_eq!(code, 11, "{report:#}");
    let mut found = violations(&report);
    found.sort();
    assert_eq!(
        found,
        [
            pair("binary-file", "assets/old.bin"),
            pair("submodule", "vendor/dep"),
            pair("symlink", "lib/current"),
            pair("symlink", "lib/v1/a.txt"),
        ],
        "{report:#}"
    );
}

// ---- 2. A base name that is also a tag --------------------------------------------------------

#[test]
fn a_base_name_that_is_also_a_tag_is_refused_and_the_full_ref_reads_the_branch() {
    let repo = TestRepo::new();
    // The tag `main` holds a permissive policy; the branch `main` a strict one.
    repo.write(
        ".github/agent-gate.yml",
        "version: 1\nscope:\n  allow: [\"**\"]\n",
    );
    repo.commit("permissive policy");
    repo.git(["tag", "main"]);
    repo.write(
        ".github/agent-gate.yml",
        "version: 1\nscope:\n  allow: [\"docs/**\"]\n",
    );
    repo.commit("strict policy");
    repo.branch("agent");
    repo.write("src/a.txt", "a\n");
    repo.commit("change outside docs/");

    let out = agent_gate(repo.path())
        .args(["check", "--base", "main", "--head", "agent"])
        .run();
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("`main` is ambiguous")
            && text.contains("refs/heads/main")
            && text.contains("refs/tags/main"),
        "{text}"
    );

    // Named in full, the branch's policy decides: the change leaves `docs/`.
    let (code, report) = check_json_between(&repo, "refs/heads/main", "agent");
    assert_eq!(code, 11, "{report:#}");
    assert_eq!(violations(&report), [pair("out-of-scope", "src/a.txt")]);

    // Without the tag, the short name works as before and means the branch.
    repo.git(["tag", "-d", "main"]);
    let (code, report) = check_json(&repo, &[]);
    assert_eq!(code, 11, "{report:#}");
    assert_eq!(violations(&report), [pair("out-of-scope", "src/a.txt")]);
}

// ---- 11. Protected paths through a symbolic link -------------------------------------------

#[test]
fn a_symlink_at_or_leading_to_a_protected_path_is_protected() {
    // Links allowed; the policy lives outside `.github` so that replacing `.github` deletes
    // nothing protected by itself.
    let policy = "version: 1\nscope:\n  allow: [\"**\"]\n  symlinks: allow\n";
    let link = |r: &TestRepo, path: &str, target: &str| {
        let full = r.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, full).unwrap();
    };
    let repo = TestRepo::new();
    repo.write("ci/agent-gate.yml", policy);
    repo.write("docs/guide.md", "guide\n");
    repo.commit("policy");
    repo.branch("agent");
    // A directory holding `workflows/`, and `.github` pointing at it.
    repo.write("evil/workflows/ci.yml", "on: push\njobs: {}\n");
    link(&repo, ".github", "evil");
    link(&repo, "docs/ci", "../.github/workflows");
    link(&repo, "docs/owners", "../CODEOWNERS");
    link(&repo, "docs/everything", "..");
    // Links that lead nowhere protected stay allowed.
    link(&repo, "docs/readme", "../README.md");
    link(&repo, "docs/outside", "/etc");
    link(&repo, "docs/up", "../../..");
    repo.commit("links");

    let (code, report) = check_json(&repo, &["--policy", "ci/agent-gate.yml"]);
    assert_eq!(code, 11, "{report:#}");
    let mut found = violations(&report);
    found.sort();
    assert_eq!(
        found,
        [
            pair("protected", ".github"),
            pair("protected", "docs/ci"),
            pair("protected", "docs/everything"),
            pair("protected", "docs/owners"),
        ],
        "{report:#}"
    );
    let messages: Vec<&str> = report["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["message"].as_str().unwrap())
        .collect();
    assert!(
        messages.iter().any(|m| m.starts_with(
            ".github: symbolic link in the place of a directory that holds protected paths"
        )),
        "{messages:#?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m
                .starts_with("docs/ci: symbolic link to `.github/workflows`, a protected path")),
        "{messages:#?}"
    );
    // The rule that decided is named, as for any protected path.
    assert_eq!(
        report["violations"][0]["rule"]["origin"]["kind"],
        "always-protected"
    );
}

// ---- 1. Criss-cross history --------------------------------------------------------------------

/// Criss-cross history in which the agent's merge reverts a workflow change that `main`
/// holds: `x` (which changes the workflow) and `y` both start from the first commit, `main`
/// merges `y` into `x`, and the agent merges `x` into `y` writing `agent_workflow`. Then
/// `x` and `y` are both merge bases of `main` and `agent`; against `y` (the newer, the one
/// git picks) a revert looks like no change at all, while a real merge of `agent` into `main`
/// applies it.
fn criss_cross(agent_workflow: &str) -> TestRepo {
    let repo = TestRepo::new();
    repo.write(
        ".github/agent-gate.yml",
        "version: 1\nscope:\n  allow: [\"**\"]\n",
    );
    repo.write(".github/workflows/ci.yml", "old workflow\n");
    repo.commit("policy and workflow");
    repo.branch("x");
    repo.write(".github/workflows/ci.yml", "new workflow\n");
    repo.commit("x: the maintainers' workflow change");
    repo.checkout("main");
    repo.branch("y");
    // One second later, so that `y` is the newer merge base, the one git picks.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    repo.write("src/y.txt", "y\n");
    repo.commit("y");
    // main = x + y
    repo.git(["checkout", "-q", "-B", "main", "x"]);
    repo.git(["merge", "-q", "--no-edit", "--no-ff", "y"]);
    // agent = y + x, writing `agent_workflow` in the merge
    repo.git(["checkout", "-q", "-b", "agent", "y"]);
    repo.git(["merge", "-q", "--no-commit", "--no-ff", "x"]);
    repo.write(".github/workflows/ci.yml", agent_workflow);
    repo.write("src/agent.txt", "the agent's work\n");
    repo.git(["add", "-A"]);
    repo.git(["commit", "-q", "--no-edit"]);
    repo
}

#[test]
fn a_criss_cross_merge_cannot_hide_a_protected_change() {
    let repo = criss_cross("old workflow\n");
    let bases = repo.git(["merge-base", "--all", "main", "agent"]);
    assert_eq!(bases.lines().count(), 2, "criss-cross: {bases}");
    // The hostile precondition: against the merge base git picks, the workflow is untouched.
    let picked = repo.git(["merge-base", "main", "agent"]);
    let naive = repo.git(["diff", "--name-only", picked.trim(), "agent"]);
    assert!(!naive.contains(".github/workflows"), "{naive}");
    // …while a real merge reverts it.
    let merged = repo.git(["merge-tree", "--write-tree", "main", "agent"]);
    let real = repo.git([
        "diff",
        "--name-only",
        "main",
        merged.lines().next().unwrap(),
    ]);
    assert!(real.contains(".github/workflows/ci.yml"), "{real}");

    let (code, report) = check_json(&repo, &[]);
    assert_eq!(code, 11, "{report:#}");
    let mut found = violations(&report);
    found.sort();
    assert_eq!(
        found,
        [pair("protected", ".github/workflows/ci.yml")],
        "{report:#}"
    );
    let files: Vec<&str> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        [".github/workflows/ci.yml", "src/agent.txt"],
        "what the merge applies"
    );
    assert!(
        report
            .to_string()
            .contains("2 merge bases (criss-cross history)"),
        "{report:#}"
    );

    // The same history without the revert passes: only the agent's own file is judged.
    let (code, report) = check_json(&criss_cross("new workflow\n"), &[]);
    assert_eq!(code, 0, "{report:#}");
    let files: Vec<&str> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["src/agent.txt"]);
}

#[test]
fn a_criss_cross_head_that_does_not_merge_cleanly_is_refused() {
    // After the criss-cross, both sides edit the same line: merging `agent` into `main`
    // conflicts, so no one diff tells what a merge would apply.
    let repo = criss_cross("new workflow\n");
    repo.checkout("main");
    repo.write("src/y.txt", "main's edit\n");
    repo.commit("main edits y");
    repo.checkout("agent");
    repo.write("src/y.txt", "the agent's edit\n");
    repo.commit("agent edits y");
    let (code, report) = check_json(&repo, &[]);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(report["verdict"], "config-error");
    let errors = report["errors"].to_string();
    assert!(
        errors.contains("have 2 merge bases") && errors.contains("do not merge cleanly"),
        "{errors}"
    );
}

// ---- 5. Brace expansion is bounded ---------------------------------------------------------------

#[test]
fn a_policy_of_brace_rules_is_refused_at_the_pattern_cap_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    // What the review sent: rules of eight `{a,b}` groups (256 patterns each), 128 KB.
    let mut text = String::from("version: 1\nscope:\n  allow:\n");
    let mut n = 0;
    while text.len() < 128 * 1024 {
        let _ = writeln!(
            text,
            "    - \"{{a,b}}{{c,d}}{{e,f}}{{g,h}}{{i,j}}{{k,l}}{{m,n}}{{o,p}}/r{n}\""
        );
        n += 1;
    }
    let path = dir.path().join("policy.yml");
    std::fs::write(&path, &text).unwrap();
    let out = agent_gate(dir.path()).arg("validate").arg(&path).run();
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = format!("{}{}", stdout(&out), stderr(&out));
    // 8 rules fill the 2,048 patterns: the 9th (line 12) goes over.
    assert!(
        err.contains(":12:") && err.contains("too many glob patterns") && err.contains("2048"),
        "{err}"
    );

    // At the cap it compiles: 8 such rules.
    let at_cap: String = text.lines().take(3 + 8).flat_map(|l| [l, "\n"]).collect();
    std::fs::write(&path, &at_cap).unwrap();
    let out = agent_gate(dir.path()).arg("validate").arg(&path).run();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    // Long alternatives are capped by their expanded bytes too: two rules of 256 patterns
    // of about 290 bytes each are over 128 KiB.
    let mut rule = String::new();
    for i in 0..8 {
        let _ = write!(rule, "{{{},{}}}", "a".repeat(32 + i), "b".repeat(32 + i));
    }
    let long = format!("version: 1\nscope:\n  allow:\n    - \"{rule}/x\"\n");
    let mut twice = long.clone();
    twice.push_str(&long.lines().last().unwrap().replace("/x", "/y"));
    twice.push('\n');
    std::fs::write(&path, &twice).unwrap();
    let out = agent_gate(dir.path()).arg("validate").arg(&path).run();
    let err = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(":5:") && err.contains("bytes"), "{err}");
}

#[test]
fn a_scope_input_of_brace_globs_is_a_clear_config_error() {
    let repo = change(
        "version: 1\n",
        |_| {},
        |r| {
            r.write("src/a.txt", "a\n");
        },
    );
    // 16 KB of `{a,b}` globs, as the review sent: refused before anything is compiled.
    let globs: Vec<String> = (0..500)
        .map(|i| format!("{{a,b}}{{c,d}}{{e,f}}{{g,h}}/s{i}"))
        .collect();
    let input = globs.join("\n");
    assert!(
        input.len() > 12_000 && input.len() < 16 * 1024,
        "{}",
        input.len()
    );
    // Refused as an input, like every malformed input: the message names the limit on
    // stderr, exit 2 (configuration error), and nothing is gated or reported.
    let refused = |scope: &str| {
        let out = agent_gate(repo.path())
            .args([
                "check", "--format", "json", "--base", "main", "--head", "agent",
            ])
            .args(["--scope", scope])
            .run();
        assert_eq!(out.code(), Some(2), "{}", out.stderr());
        assert!(
            out.stdout().is_empty(),
            "nothing is reported: {}",
            out.stdout()
        );
        out.stderr()
    };
    let errors = refused(&input);
    assert!(
        errors.starts_with("error: scope input: ") && errors.contains("more than 256 patterns"),
        "{errors}"
    );
    // Over the byte limit, whatever it holds.
    let errors = refused(&"src/**,".repeat(3000));
    assert!(errors.contains("over the limit of 16384"), "{errors}");
    // `run` refuses it the same way, before any request (nothing listens at the API URL).
    let out = agent_gate(repo.path())
        .args(["run", "--repository", "octo/demo", "--instruction", "x"])
        .args(["--api-url", "http://127.0.0.1:9", "--scope", &input])
        .env("INPUT_TOKEN", "ghp_test")
        .run();
    assert_eq!(out.code(), Some(2), "{}", out.stderr());
    assert!(out.stdout().is_empty(), "{}", out.stdout());
    assert!(
        out.stderr().starts_with("error: scope input: ")
            && out.stderr().contains("more than 256 patterns"),
        "{}",
        out.stderr()
    );
    // A scope input of a few globs still narrows.
    let (code, report) = check_json(&repo, &["--scope", "src/{a,b}.txt"]);
    assert_eq!(code, 0, "{report:#}");
}

// ---- 7. Answers of any size ------------------------------------------------------------------------

/// A hostile API server on 127.0.0.1 that answers every request with 200 and a body of
/// `body_bytes` (chunked, or announced in `Content-Length` when `announce`), and counts
/// the bytes it managed to send before the client hung up.
fn hostile_server(
    body_bytes: u64,
    announce: bool,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::atomic::{AtomicU64, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let sent = std::sync::Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let head = if announce {
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {body_bytes}\r\n\r\n"
                )
            } else {
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".to_string()
            };
            if stream.write_all(head.as_bytes()).is_err() {
                continue;
            }
            let chunk = vec![b' '; 64 * 1024];
            let mut left = body_bytes;
            while left > 0 {
                let n = left.min(chunk.len() as u64);
                let piece = usize::try_from(n).unwrap();
                let ok = if announce {
                    stream.write_all(&chunk[..piece])
                } else {
                    stream
                        .write_all(format!("{n:x}\r\n").as_bytes())
                        .and_then(|()| stream.write_all(&chunk[..piece]))
                        .and_then(|()| stream.write_all(b"\r\n"))
                };
                if ok.is_err() {
                    break;
                }
                counter.fetch_add(n, Ordering::Relaxed);
                left -= n;
            }
            if !announce && left == 0 {
                let _ = stream.write_all(b"0\r\n\r\n");
            }
        }
    });
    (url, sent)
}

#[test]
fn an_answer_over_ten_mebibytes_is_an_api_error_and_is_not_read_to_its_end() {
    let repo = TestRepo::new();
    // 1 GiB streamed without a length: the client stops reading at the cap.
    let (url, sent) = hostile_server(1 << 30, false);
    let out = agent_gate(repo.path())
        .args(["status", "--repository", "octo/demo", "--api-url", &url])
        .env("INPUT_TOKEN", "ghp_hostile")
        .run();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("larger than 10485760 bytes"),
        "{}",
        stderr(&out)
    );
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(sent < 256 << 20, "the client read on: {sent} bytes sent");

    // 3 GiB announced: refused from the headers.
    let (url, _) = hostile_server(3 << 30, true);
    let out = agent_gate(repo.path())
        .args(["status", "--repository", "octo/demo", "--api-url", &url])
        .env("INPUT_TOKEN", "ghp_hostile")
        .run();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("larger than 10485760 bytes"),
        "{}",
        stderr(&out)
    );
}

/// A server on 127.0.0.1 answering every request with 200 and `body`.
fn json_server(body: String) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn what_a_hostile_api_answers_is_shown_never_obeyed() {
    let forged =
        "x\r::warning::FORGED\u{1b}]8;;https://evil.example\u{1b}\\\nline\n::error::FORGED";
    let task = serde_json::json!({
        "id": forged,
        "state": "completed",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": forged,
        "name": forged,
        "html_url": forged,
        "sessions": [{"id": forged, "state": forged, "head_ref": forged,
                      "created_at": "2026-01-01T00:00:00Z"}],
    });
    let repo = TestRepo::new();
    for (args, body) in [
        (
            &["status"][..],
            serde_json::json!({"tasks": [task.clone()], "total_active_count": 1}),
        ),
        (&["status", "some-task"][..], task.clone()),
    ] {
        let url = json_server(body.to_string());
        let out = agent_gate(repo.path())
            .args(args)
            .args(["--repository", "octo/demo", "--api-url", &url])
            .env("INPUT_TOKEN", "ghp_hostile")
            .run();
        let (text, err) = (stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(0), "{args:?}: {text}{err}");
        assert!(text.contains("FORGED"), "the answer is shown: {text}");
        for stream in [&text, &err] {
            for line in runner_lines(stream) {
                assert!(
                    !line.starts_with("::"),
                    "{args:?}: a forged command: {line:?}\n{stream}"
                );
            }
            assert!(
                !stream
                    .chars()
                    .any(|c| c.is_control() && c != '\n' && c != '\t'),
                "{args:?}: {stream:?}"
            );
        }
    }
}
