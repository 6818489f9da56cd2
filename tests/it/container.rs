//! The container image, run exactly as the GitHub runner runs a container action
//! (`ContainerActionHandler` and `DockerCommandManager` in actions/runner): `docker run
//! --workdir /github/workspace --rm`, the five runner mounts and the Docker socket, every
//! variable passed by name with its value in the docker client's environment and the paths
//! translated to the container's, args `run`, a workspace and runner temp owned by the
//! runner's uid (1001), host networking to the simulator on 127.0.0.1.
//!
//! These need a Docker engine and the images, so they are ignored in a plain `cargo test`;
//! `.ci/run` builds the images (`.ci/container`) and runs them with `--ignored`. The image
//! names come from `AGENT_GATE_IMAGE` (default `agent-gate:ci`) and
//! `AGENT_GATE_PYTEST_IMAGE` (default `agent-gate-pytest:ci`, the derived image of
//! docs/action.md). Run by hand, a missing engine or image fails the test; it never skips.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agent_gate::adapters::actions::parse_file_command;
use agent_gate::sim::{FinalState, Scenario, SimConfig, SimHandle, TaskScript, start};

use crate::support::git_in as git;

const TOKEN: &str = "ghp_CONTAINERCANARY0123456789abcdef";
const WORKFLOW_TOKEN: &str = "ghs_CONTAINERCANARY2workflow98765";
/// The runner's user on GitHub-hosted runners.
const RUNNER_UID: u32 = 1001;

fn image() -> String {
    std::env::var("AGENT_GATE_IMAGE").unwrap_or_else(|_| "agent-gate:ci".into())
}

fn pytest_image() -> String {
    std::env::var("AGENT_GATE_PYTEST_IMAGE").unwrap_or_else(|_| "agent-gate-pytest:ci".into())
}

/// One job on a simulated runner: the simulator on the host, a bare repository that plays
/// GitHub's copy, the workspace actions/checkout would leave, and the runner's temp tree.
struct Job {
    _root: tempfile::TempDir,
    sim: SimHandle,
    bare: PathBuf,
    ws: PathBuf,
    temp: PathBuf,
    image: String,
    env: BTreeMap<String, String>,
}

/// What a finished `docker run` left: its exit code, logs, outputs and step summary.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    outputs: BTreeMap<String, String>,
    output_file: String,
    summary: String,
}

impl Ran {
    fn context(&self) -> String {
        format!(
            "exit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Job {
    /// A job whose repository holds `files` and `policy` (at `.github/agent-gate.yml`) on
    /// `main`; the simulated agent adds `agent-gate-sim.txt` and opens a pull request.
    async fn new(policy: &str, files: &[(&str, &str)], time_scale: f64) -> Job {
        Job::with(image(), policy, files, time_scale, None).await
    }

    async fn with(
        image: String,
        policy: &str,
        files: &[(&str, &str)],
        time_scale: f64,
        scenario: Option<Scenario>,
    ) -> Job {
        let root = tempfile::tempdir().unwrap();
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let bare = root.path().join("github.git");
        let sim = start(
            SimConfig {
                time_scale,
                scenario,
                ..SimConfig::new(&bare)
            },
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();

        let ws = root.path().join("workspace");
        let clone = Command::new("git")
            .args(["clone", "-q"])
            .arg(&bare)
            .arg(&ws)
            .output()
            .unwrap();
        assert!(clone.status.success(), "{clone:?}");
        git(&ws, &["config", "user.email", "ci@example.com"]);
        git(&ws, &["config", "user.name", "CI"]);
        std::fs::create_dir_all(ws.join(".github")).unwrap();
        std::fs::write(ws.join(".github/agent-gate.yml"), policy).unwrap();
        for (path, content) in files {
            let path = ws.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        git(&ws, &["add", "-A"]);
        git(&ws, &["commit", "-qm", "policy and project"]);
        git(&ws, &["push", "-q", "origin", "main"]);
        // actions/checkout persists the token in .git/config.
        git(
            &ws,
            &[
                "config",
                "http.https://github.com/.extraheader",
                &format!("AUTHORIZATION: basic {TOKEN}"),
            ],
        );

        let sha = git(&ws, &["rev-parse", "HEAD"]).trim().to_string();

        // RUNNER_TEMP and the directories the runner makes in it, as the runner mounts them.
        let temp = root.path().join("runner_temp");
        for dir in ["_github_home", "_github_workflow", "_runner_file_commands"] {
            std::fs::create_dir_all(temp.join(dir)).unwrap();
        }
        let guid = "9d4d6d6e-2b0a-4a6c-9f0f-6a1b2c3d4e5f";
        for name in [
            "set_output_",
            "step_summary_",
            "set_env_",
            "add_path_",
            "save_state_",
        ] {
            std::fs::write(
                temp.join("_runner_file_commands")
                    .join(format!("{name}{guid}")),
                "",
            )
            .unwrap();
        }
        std::fs::write(temp.join("_github_workflow/event.json"), "{}").unwrap();
        // The workspace and the temp tree are the runner user's, not the container's root.
        for dir in [&ws, &temp] {
            let chown = Command::new("chown")
                .arg("-R")
                .arg(format!("{RUNNER_UID}:{RUNNER_UID}"))
                .arg(dir)
                .status()
                .unwrap();
            assert!(chown.success());
        }

        let files = "/github/file_commands";
        let mut env = BTreeMap::new();
        for (k, v) in [
            ("INPUT_INSTRUCTION", "add the sim file".to_string()),
            ("INPUT_SCOPE", String::new()),
            ("INPUT_POLICY", ".github/agent-gate.yml".into()),
            ("INPUT_TOKEN", TOKEN.into()),
            ("INPUT_GITHUB-TOKEN", WORKFLOW_TOKEN.into()),
            ("INPUT_BASE-REF", String::new()),
            ("INPUT_TIMEOUT", "10m".into()),
            ("INPUT_TASK-ID", String::new()),
            ("INPUT_TASK-KEY", String::new()),
            ("INPUT_DRY-RUN", "false".into()),
            ("INPUT_API-URL", sim.url()),
            ("INPUT_MODEL", String::new()),
            ("INPUT_CUSTOM-AGENT", String::new()),
            ("INPUT_PRIORITY", "normal".into()),
            ("INPUT_REPAIR-ROUNDS", String::new()),
            ("INPUT_REPOSITORY", String::new()),
            ("INPUT_NOT-BEFORE", String::new()),
            ("INPUT_WRITE-PACE", String::new()),
            ("INPUT_PACE-LEDGER", String::new()),
            ("HOME", "/github/home".into()),
            ("GITHUB_ACTION", "__run".into()),
            ("GITHUB_ACTOR", "octocat".into()),
            ("GITHUB_API_URL", sim.url()),
            ("GITHUB_EVENT_NAME", "workflow_dispatch".into()),
            ("GITHUB_EVENT_PATH", "/github/workflow/event.json".into()),
            ("GITHUB_JOB", "gate".into()),
            ("GITHUB_OUTPUT", format!("{files}/set_output_{guid}")),
            ("GITHUB_ENV", format!("{files}/set_env_{guid}")),
            ("GITHUB_PATH", format!("{files}/add_path_{guid}")),
            ("GITHUB_STATE", format!("{files}/save_state_{guid}")),
            (
                "GITHUB_STEP_SUMMARY",
                format!("{files}/step_summary_{guid}"),
            ),
            ("GITHUB_REF", "refs/heads/main".into()),
            ("GITHUB_REPOSITORY", "octo/demo".into()),
            ("GITHUB_REPOSITORY_OWNER", "octo".into()),
            ("GITHUB_RUN_ATTEMPT", "1".into()),
            ("GITHUB_RUN_ID", "4242".into()),
            ("GITHUB_RUN_NUMBER", "7".into()),
            ("GITHUB_SERVER_URL", "https://github.com".into()),
            ("GITHUB_SHA", sha),
            ("GITHUB_WORKFLOW", "agent".into()),
            ("GITHUB_WORKSPACE", "/github/workspace".into()),
            ("RUNNER_ARCH", "X64".into()),
            ("RUNNER_NAME", "GitHub Actions 2".into()),
            ("RUNNER_OS", "Linux".into()),
            ("RUNNER_TEMP", "/github/runner_temp".into()),
            ("RUNNER_TOOL_CACHE", "/opt/hostedtoolcache".into()),
            ("GITHUB_ACTIONS", "true".into()),
            ("CI", "true".into()),
        ] {
            env.insert(k.to_string(), v);
        }
        Job {
            _root: root,
            sim,
            bare,
            ws,
            temp,
            image,
            env,
        }
    }

    /// The `docker run` the runner issues: names only on the command line (`-e NAME`), the
    /// values in the client's environment, so no secret appears in `ps`.
    fn docker_run(&self) -> Command {
        let label = format!("{:06x}", rand_suffix());
        let mut cmd = Command::new("docker");
        cmd.args(["run", "--name", &format!("agentgate_ci_{label}")])
            .args(["--label", &label])
            .args(["--workdir", "/github/workspace", "--rm"]);
        for name in self.env.keys() {
            cmd.args(["-e", name]);
        }
        let temp = self.temp.display();
        let ws = self.ws.display();
        // The bare repository stands in for github.com: the workspace's `origin` names its
        // host path, so it is mounted at that same path (read by the gate's fetches).
        let bare = self.bare.display();
        cmd.args(["--network", "host"])
            .args(["-v", "/var/run/docker.sock:/var/run/docker.sock"])
            .args(["-v", &format!("{temp}:/github/runner_temp")])
            .args(["-v", &format!("{temp}/_github_home:/github/home")])
            .args(["-v", &format!("{temp}/_github_workflow:/github/workflow")])
            .args([
                "-v",
                &format!("{temp}/_runner_file_commands:/github/file_commands"),
            ])
            .args(["-v", &format!("{ws}:/github/workspace")])
            .args(["-v", &format!("{bare}:{bare}")])
            .arg(&self.image)
            .arg("run");
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .envs(&self.env)
            .stdin(Stdio::null());
        cmd
    }

    /// Run the container to its end.
    async fn run(&self) -> Ran {
        let mut cmd = self.docker_run();
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        self.finish(
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn finish(&self, code: Option<i32>, stdout: String, stderr: String) -> Ran {
        let host = |container_path: &str| {
            let rel = container_path
                .strip_prefix("/github/file_commands/")
                .expect("a file-command path");
            self.temp.join("_runner_file_commands").join(rel)
        };
        let output_file = std::fs::read_to_string(host(&self.env["GITHUB_OUTPUT"])).unwrap();
        let outputs = parse_file_command(&output_file)
            .unwrap_or_else(|e| panic!("GITHUB_OUTPUT parses with the runner's rules: {e:?}"))
            .into_iter()
            .collect();
        let summary = std::fs::read_to_string(host(&self.env["GITHUB_STEP_SUMMARY"])).unwrap();
        Ran {
            code,
            stdout,
            stderr,
            outputs,
            output_file,
            summary,
        }
    }

    /// The audit record the run left in runner temp (its output names the container path).
    fn audit(&self, ran: &Ran) -> String {
        let path = &ran.outputs["audit-file"];
        let rel = path
            .strip_prefix("/github/runner_temp/")
            .unwrap_or_else(|| panic!("the audit file is under RUNNER_TEMP: {path}"));
        std::fs::read_to_string(self.temp.join(rel)).unwrap()
    }

    /// The end every run in the container must have, whatever its verdict: no token in
    /// anything it wrote (the audit record included), nothing left owned by anyone but the
    /// runner's user; then the simulator stops.
    async fn assert_clean_end(self, ran: &Ran) {
        let audit = self.audit(ran);
        self.assert_no_token(ran, &audit);
        self.assert_nothing_foreign();
        self.sim.shutdown().await;
    }

    /// Everything the gate (root in the container) left under the runner's workspace and
    /// temp tree must be the runner user's again.
    fn assert_nothing_foreign(&self) {
        let mut foreign = crate::support::owned_by_others(&self.ws, RUNNER_UID);
        foreign.extend(crate::support::owned_by_others(&self.temp, RUNNER_UID));
        assert!(
            foreign.is_empty(),
            "left owned by another uid than the runner's: {foreign:?}"
        );
    }

    /// No token anywhere a person or a later step reads (`::add-mask::` lines hand the
    /// secrets to the runner, which hides them from then on).
    fn assert_no_token(&self, ran: &Ran, audit: &str) {
        let stdout: String = ran
            .stdout
            .lines()
            .filter(|l| !l.starts_with("::add-mask::"))
            .collect::<Vec<_>>()
            .join("\n");
        for (what, text) in [
            ("stdout", stdout.as_str()),
            ("stderr", ran.stderr.as_str()),
            ("outputs", ran.output_file.as_str()),
            ("summary", ran.summary.as_str()),
            ("audit", audit),
        ] {
            for token in [TOKEN, WORKFLOW_TOKEN] {
                assert!(!text.contains(token), "a token leaked into {what}");
            }
        }
        for comment in self.sim.comments() {
            assert!(!comment.body.contains(TOKEN) && !comment.body.contains(WORKFLOW_TOKEN));
        }
    }
}

fn rand_suffix() -> u32 {
    use std::hash::{BuildHasher, RandomState};
    (RandomState::new().hash_one(Instant::now()) & 0x00ff_ffff) as u32
}

const POLL: &str = "version: 1\nagent:\n  poll: { initial: 1s, max: 2s }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Docker engine and the image: .ci/run builds them and runs these"]
async fn a_passed_run_in_the_container_writes_every_output_the_summary_and_the_audit() {
    let policy = format!(
        "{POLL}checks:\n\
         \x20 - name: the agent's file is there\n    run: test -f agent-gate-sim.txt\n\
         \x20 - name: checks run as an unprivileged user\n    run: test \"$(id -u)\" -ne 0 && test \"$(id -u)\" -ne {RUNNER_UID}\n\
         \x20 - name: no token reachable\n    run: \"printf '%s%s\\\\n' {head} {tail} > /tmp/canary && test -s /tmp/canary || exit 3; grep -rlsFf /tmp/canary /proc/[0-9]*/environ /proc/[0-9]*/cmdline /github/workspace/.git/config /github/home /github/runner_temp; test $? -ne 0\"\n",
        // The pattern is assembled in the check, so no command line holds it whole.
        head = &TOKEN[..10],
        tail = &TOKEN[10..],
    );
    let mut job = Job::new(&policy, &[], 50.0).await;
    // The writes paced on the ledger (here the repository's own remote, the workflow's).
    job.env.insert("INPUT_WRITE-PACE".into(), "1/s".into());
    let ran = job.run().await;
    assert_eq!(ran.code, Some(0), "{}", ran.context());
    let claims = git(
        &job.bare,
        &[
            "for-each-ref",
            "--format=%(refname)",
            "refs/agent-gate/pace/writes/",
        ],
    );
    let writes = job
        .sim
        .request_log()
        .iter()
        .filter(|r| r.method != "GET" && r.path != "/graphql")
        .count();
    assert!(writes >= 3, "a task, a status and a comment: {writes}");
    assert_eq!(
        claims.lines().count(),
        writes,
        "one claim per write: {claims}"
    );
    assert!(ran.summary.contains("write pace 1/s"), "{}", ran.summary);

    for name in agent_gate::flow::publish::outputs::NAMES {
        assert!(
            ran.outputs.contains_key(name),
            "output {name} missing: {:?}",
            ran.outputs
        );
    }
    assert_eq!(ran.outputs["verdict"], "passed");
    assert_eq!(ran.outputs["task-state"], "completed");
    assert_eq!(ran.outputs["task-id"], job.sim.tasks()[0].id);
    assert_eq!(ran.outputs["pr-number"], "1");
    assert_eq!(ran.outputs["changed-files"], "1");
    assert_eq!(ran.outputs["violations"], "[]");
    let checks: serde_json::Value = serde_json::from_str(&ran.outputs["checks"]).unwrap();
    let checks = checks.as_array().unwrap();
    assert_eq!(checks.len(), 3, "{checks:?}");
    assert!(checks.iter().all(|c| c["status"] == "passed"), "{checks:?}");
    assert_eq!(job.sim.tasks().len(), 1);

    assert!(ran.summary.contains("passed"), "{}", ran.summary);
    assert!(
        ran.summary.contains("agent-gate-sim.txt"),
        "{}",
        ran.summary
    );
    let audit = job.audit(&ran);
    let kinds: Vec<String> = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|e| e["event"].as_str().map(String::from))
        .collect();
    for k in ["trigger", "task", "change", "check", "verdict"] {
        assert!(
            kinds.iter().any(|x| x == k),
            "audit event {k} missing: {kinds:?}"
        );
    }
    let statuses = job.sim.statuses();
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(statuses[0].status.state, "success");
    job.assert_clean_end(&ran).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Docker engine and the image: .ci/run builds them and runs these"]
async fn a_scope_violation_in_the_container_exits_11_without_running_checks() {
    let policy = format!(
        "{POLL}scope:\n  deny: [agent-gate-sim.txt]\nchecks:\n  - name: never runs\n    run: \"true\"\n"
    );
    let job = Job::new(&policy, &[], 50.0).await;
    let ran = job.run().await;
    assert_eq!(ran.code, Some(11), "{}", ran.context());
    assert_eq!(ran.outputs["verdict"], "scope-violation");
    let violations: serde_json::Value = serde_json::from_str(&ran.outputs["violations"]).unwrap();
    assert!(
        violations.to_string().contains("agent-gate-sim.txt"),
        "{violations}"
    );
    let checks: serde_json::Value = serde_json::from_str(&ran.outputs["checks"]).unwrap();
    assert!(
        checks
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "skipped"),
        "{checks}"
    );
    assert_eq!(job.sim.statuses()[0].status.state, "failure");
    job.assert_clean_end(&ran).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Docker engine and the image: .ci/run builds them and runs these"]
async fn a_failing_check_in_the_container_exits_10_with_its_output() {
    let policy = format!(
        "{POLL}checks:\n  - name: unit tests\n    run: \"echo 'FAIL: add 2 3 gave 6'; exit 1\"\n"
    );
    let job = Job::new(&policy, &[], 50.0).await;
    let ran = job.run().await;
    assert_eq!(ran.code, Some(10), "{}", ran.context());
    assert_eq!(ran.outputs["verdict"], "checks-failed");
    let checks: serde_json::Value = serde_json::from_str(&ran.outputs["checks"]).unwrap();
    assert_eq!(checks[0]["status"], "failed", "{checks}");
    assert!(
        ran.stdout.contains("FAIL: add 2 3 gave 6"),
        "{}",
        ran.context()
    );
    assert!(ran.summary.contains("unit tests"), "{}", ran.summary);
    job.assert_clean_end(&ran).await;
}

/// The runner cancels a step by sending SIGINT to the `docker run` client, which proxies it
/// to the container; SIGTERM follows 7.5 s later. The gate must be done by then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Docker engine and the image: .ci/run builds them and runs these"]
async fn sigint_to_the_docker_client_cancels_the_run_with_exit_130() {
    // An agent that never finishes: the run is surely polling when the signal comes.
    let endless = Scenario {
        tasks: vec![TaskScript {
            final_state: FinalState::Never,
            ..TaskScript::default()
        }],
        ..Scenario::default()
    };
    let job = Job::with(image(), POLL, &[], 50.0, Some(endless)).await;
    let mut cmd = job.docker_run();
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child: Child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        for line in BufReader::new(stdout).lines() {
            s.push_str(&line.unwrap_or_default());
            s.push('\n');
        }
        s
    });
    // Progress goes to stderr; wait until the task is running, then cancel.
    let (tx, rx) = std::sync::mpsc::channel();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let mut told = false;
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            s.push_str(&line);
            s.push('\n');
            if !told && line.contains("started task") {
                told = true;
                let _ = tx.send(());
            }
        }
        s
    });
    let started = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_mins(1)))
        .await
        .unwrap();
    assert!(started.is_ok(), "the run never started its task");
    assert_eq!(job.sim.tasks().len(), 1);

    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let signalled = Instant::now();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let took = signalled.elapsed();
    let ran = job.finish(
        status.code(),
        out_reader.join().unwrap(),
        err_reader.join().unwrap(),
    );
    assert_eq!(ran.code, Some(130), "{}", ran.context());
    assert_eq!(ran.outputs["verdict"], "cancelled", "{}", ran.context());
    assert!(
        took < Duration::from_millis(7500),
        "the runner sends SIGTERM after 7.5 s; the gate took {took:?}"
    );
    // The stop is recorded: GitHub has no cancel API, so the record says where a person can
    // stop the session.
    let audit = job.audit(&ran);
    assert!(audit.contains("\"event\":\"stop\""), "{audit}");
    job.assert_clean_end(&ran).await;
}

/// docs/action.md's derived image (`.ci/container` builds it from the recipe in the doc, on
/// top of this image): Python's pytest from Debian, and a pytest check that passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Docker engine and the image: .ci/run builds them and runs these"]
async fn the_documented_pytest_image_runs_a_pytest_check() {
    let policy = format!("{POLL}checks:\n  - name: pytest\n    run: python3 -m pytest -q tests\n");
    let job = Job::with(
        pytest_image(),
        &policy,
        &[
            ("calc.py", "def add(a, b):\n    return a + b\n"),
            (
                "tests/test_calc.py",
                "import sys, os\nsys.path.insert(0, os.getcwd())\nfrom calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n",
            ),
        ],
        50.0,
        None,
    )
    .await;
    let ran = job.run().await;
    assert_eq!(ran.code, Some(0), "{}", ran.context());
    assert_eq!(ran.outputs["verdict"], "passed");
    assert!(ran.stdout.contains("1 passed"), "{}", ran.context());
    job.assert_nothing_foreign();
    job.sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Checks with `image:`: run through the engine on the socket, by the library and by the
// gate inside its own image.

/// An image every machine that ran `.ci/docker-engine bases` has (Debian slim: `sh`, `bash`).
const CHECK_IMAGE: &str = "debian:bookworm-slim";

fn engine() -> agent_gate::adapters::checks::docker::Engine {
    agent_gate::adapters::checks::docker::Engine::at(
        agent_gate::adapters::checks::docker::DEFAULT_SOCKET,
    )
}

fn image_spec(name: &str, run: &str) -> agent_gate::core::policy::CheckSpec {
    agent_gate::core::policy::CheckSpec {
        name: name.into(),
        run: run.into(),
        timeout: Duration::from_mins(1),
        when: None,
        files: None,
        required: true,
        env: BTreeMap::new(),
        line: 1,
        image: Some(agent_gate::core::policy::CheckImage {
            image: CHECK_IMAGE.into(),
            network: agent_gate::core::policy::CheckNetwork::None,
            memory_bytes: 512 * 1024 * 1024,
            nano_cpus: 1_000_000_000,
            pids: 256,
        }),
        github: None,
    }
}

/// Containers the gate made for the checks named `names` (it labels them with the check's
/// name, and its probes with the program) that still exist.
fn leftover_containers(names: &[&str]) -> String {
    let mut left = String::new();
    for name in names {
        for label in ["agent-gate.check", "agent-gate.probe"] {
            let out = Command::new("docker")
                .args(["ps", "-aq", "--filter", &format!("label={label}={name}")])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            left.push_str(&String::from_utf8_lossy(&out.stdout));
        }
    }
    left
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Docker engine and the image: .ci/run builds them and runs these"]
async fn an_image_check_runs_in_a_container_of_its_own_with_no_network_and_no_gate_env() {
    use agent_gate::adapters::checks::{CheckStatus, RunOptions, plan, run_checks};
    let tree = tempfile::tempdir().unwrap();
    std::fs::write(tree.path().join("marker.txt"), "original\n").unwrap();
    std::fs::create_dir(tree.path().join("scripts")).unwrap();
    std::fs::write(
        tree.path().join("scripts/ok.sh"),
        "#!/bin/sh\necho script-ran\n",
    )
    .unwrap();
    std::fs::set_permissions(
        tree.path().join("scripts/ok.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connect = format!("bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}' 2>/dev/null");

    let tree_check = image_spec(
        "tree-check",
        "test \"$PWD\" = /work/tree && grep -qx original marker.txt && ./scripts/ok.sh && \
         test \"$(id -u)\" = 65534 && echo written > new.txt && touch /tmp/scratch && \
         ! touch /etc/agent-gate 2>/dev/null && echo changed > marker.txt",
    );
    let mut env_check = image_spec(
        "env-check",
        "test \"$DECLARED\" = yes && test \"$HOME\" = /tmp && ! env | grep -e CANARY -e GITHUB_ -e INPUT_ && sleep 1 && grep -qx original marker.txt",
    );
    env_check.env.insert("DECLARED".into(), "yes".into());
    let offline = image_spec("offline-check", &format!("! {connect}"));
    let mut online = image_spec("online-check", &connect);
    if let Some(image) = &mut online.image {
        image.network = agent_gate::core::policy::CheckNetwork::Host;
    }
    let opts = RunOptions {
        jobs: 4,
        env: vec![
            ("PATH".into(), std::env::var_os("PATH").unwrap()),
            ("GITHUB_REPOSITORY".into(), "octo/demo".into()),
            ("GITHUB_PAT".into(), "CANARY-pat".into()),
            ("INPUT_TOKEN".into(), TOKEN.into()),
        ],
        docker: Some(engine()),
        ..RunOptions::default()
    };
    let planned = plan(&[tree_check, env_check, offline, online], &[]);
    let run = run_checks(tree.path(), planned, &opts, std::future::pending::<()>()).await;
    drop(listener);
    for outcome in &run.outcomes {
        assert_eq!(
            outcome.status,
            CheckStatus::Passed,
            "{}: {}",
            outcome.name,
            outcome.output_tail
        );
    }
    assert!(run.outcomes[0].output_tail.contains("script-ran"));
    let names = [
        "tree-check",
        "env-check",
        "offline-check",
        "online-check",
        "bash",
    ];
    assert_eq!(
        std::fs::read_to_string(tree.path().join("marker.txt")).unwrap(),
        "original\n",
        "the export itself is never handed to a check"
    );
    assert!(
        run.isolation
            .notes
            .iter()
            .any(|n| n.contains(&format!("image `{CHECK_IMAGE}`"))),
        "{:?}",
        run.isolation.notes
    );
    assert_eq!(
        leftover_containers(&names),
        "",
        "every container is removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Docker engine and the image: .ci/run builds them and runs these"]
async fn an_image_without_the_program_or_that_cannot_be_pulled_is_unavailable_and_a_slow_check_is_killed()
 {
    use agent_gate::adapters::checks::{CheckStatus, RunOptions, plan, run_checks};
    let tree = tempfile::tempdir().unwrap();
    let missing = image_spec("ruff-check", "ruff check .");
    let mut unpullable = image_spec("lint-check", "true");
    if let Some(image) = &mut unpullable.image {
        image.image = "agent-gate-test/no-such-image:1".into();
    }
    let mut slow = image_spec("slow-check", "sleep 300");
    slow.timeout = Duration::from_secs(2);
    let opts = RunOptions {
        docker: Some(engine()),
        ..RunOptions::default()
    };
    let run = run_checks(
        tree.path(),
        plan(&[missing, unpullable, slow], &[]),
        &opts,
        std::future::pending::<()>(),
    )
    .await;
    match &run.outcomes[0].status {
        CheckStatus::Unavailable { program, message } => {
            assert_eq!(program, "ruff");
            assert!(message.contains("not installed in the image"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    match &run.outcomes[1].status {
        CheckStatus::Unavailable { message, .. } => {
            assert!(message.contains("cannot pull the image"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        run.outcomes[2].status,
        CheckStatus::TimedOut {
            after: Duration::from_secs(2)
        }
    );
    let names = ["ruff-check", "lint-check", "slow-check", "ruff", "sleep"];
    assert_eq!(
        leftover_containers(&names),
        "",
        "every container is removed"
    );
}

/// The gate inside its own image, the socket mounted as the runner mounts it: a check in an
/// image passes; a check whose tool the image lacks is `check-error` (exit 15) with one task
/// started and no repair round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Docker engine and the image: .ci/run builds them and runs these"]
async fn the_gate_in_its_container_runs_image_checks_through_the_mounted_socket() {
    let policy = format!(
        "{POLL}checks:\n  - name: in an image\n    image: {CHECK_IMAGE}\n    run: test -f agent-gate-sim.txt && test \"$(id -u)\" = 65534\n"
    );
    let job = Job::new(&policy, &[], 50.0).await;
    let ran = job.run().await;
    assert_eq!(ran.code, Some(0), "{}", ran.context());
    assert!(
        ran.stdout.contains(&format!("image `{CHECK_IMAGE}`")),
        "the report says how the image was had: {}",
        ran.context()
    );
    job.assert_nothing_foreign();
    job.sim.shutdown().await;

    let policy = format!(
        "version: 1\nagent:\n  poll: {{ initial: 1s, max: 2s }}\n  repair-rounds: 2\nchecks:\n  - name: ruff\n    image: {CHECK_IMAGE}\n    run: ruff check .\n"
    );
    let job = Job::new(&policy, &[], 50.0).await;
    let ran = job.run().await;
    assert_eq!(ran.code, Some(15), "{}", ran.context());
    assert_eq!(ran.outputs["verdict"], "check-error");
    assert_eq!(job.sim.tasks().len(), 1, "no repair round");
    assert_eq!(job.sim.statuses()[0].status.state, "error");
    let names = ["in an image", "ruff", "test"];
    assert_eq!(
        leftover_containers(&names),
        "",
        "every container is removed"
    );
    job.sim.shutdown().await;
}

/// Shutdown (the workflow cancelled) stops a check running in its container: `cancelled`,
/// and the container is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Docker engine and the image: .ci/run builds them and runs these"]
async fn a_cancelled_image_check_is_stopped_and_its_container_removed() {
    use agent_gate::adapters::checks::{CheckStatus, RunOptions, plan, run_checks};
    let tree = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        docker: Some(engine()),
        ..RunOptions::default()
    };
    let started = Instant::now();
    let run = run_checks(
        tree.path(),
        plan(&[image_spec("cancelled-check", "sleep 300")], &[]),
        &opts,
        tokio::time::sleep(Duration::from_secs(3)),
    )
    .await;
    assert_eq!(run.outcomes[0].status, CheckStatus::Cancelled);
    assert!(
        started.elapsed() < Duration::from_mins(1),
        "stopped, not waited for"
    );
    assert_eq!(
        leftover_containers(&["cancelled-check", "sleep"]),
        "",
        "the container is removed"
    );
}

/// The gate as a binary on the host (`agent-gate check`, the socket found by default): an
/// image check that passes, and one whose tool the image lacks, which is `check-error`.
#[test]
#[ignore = "needs a Docker engine and the image: .ci/run builds them and runs these"]
fn the_check_binary_runs_image_checks_and_a_missing_tool_is_check_error() {
    let repo = crate::support::TestRepo::new();
    repo.write(
        ".github/agent-gate.yml",
        format!(
            "version: 1\nchecks:\n  - name: binary-image-check\n    image: {CHECK_IMAGE}\n    run: grep -qx 42 answer.txt && test \"$(id -u)\" = 65534\n"
        ),
    );
    repo.write("answer.txt", "41\n");
    repo.commit("policy");
    repo.branch("agent");
    repo.write("answer.txt", "42\n");
    repo.commit("the agent's change");
    let check = |dir: &Path| {
        Command::new(env!("CARGO_BIN_EXE_agent-gate"))
            .current_dir(dir)
            .args(["check", "--base", "main", "--head", "agent"])
            .env_remove("GITHUB_ACTIONS")
            .env_remove("DOCKER_HOST")
            .output()
            .unwrap()
    };
    let out = check(repo.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("passed    binary-image-check"), "{text}");

    repo.checkout("main");
    repo.write(
        ".github/agent-gate.yml",
        format!(
            "version: 1\nchecks:\n  - name: binary-image-check\n    image: {CHECK_IMAGE}\n    run: ruff check .\n"
        ),
    );
    repo.commit("a tool the image lacks");
    repo.checkout("agent");
    repo.git(["merge", "-q", "--no-edit", "main"]);
    let out = check(repo.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(15), "{text}");
    assert!(text.contains("verdict: check-error (exit 15)"), "{text}");
    assert!(
        text.contains("`ruff` is not installed in the image"),
        "{text}"
    );
    assert_eq!(leftover_containers(&["binary-image-check", "ruff"]), "");
}
