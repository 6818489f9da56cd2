//! Test support. Most tests need one of two things, each built fluently:
//!
//! - the whole `run` world — a workspace with a project and a policy on `main`, its bare
//!   origin served by the GitHub simulator: `Gate::new().shell_project().policy(..)
//!   .tasks(..).start().await` gives a [`World`] to run the gate in, through the library
//!   ([`World::opts`], [`World::run`]) or the binary ([`World::cli_run`]), or to call one
//!   flow step or API call against its simulator ([`World::client`]);
//! - the binary itself: `Cli::new().args([..]).current_dir(..).run()` gives a
//!   [`CliOutput`] with `.code()`, `.stdout()`, `.stderr()` and `.json()`.
//!
//! Below them: a temporary git repository with helpers to write files and commit
//! ([`TestRepo`]), git in any directory ([`git_in`]), a bare `origin` for a workspace
//! ([`bare_origin`]), the simulator alone on a repository ([`start_sim`], for tests of the
//! API without a workspace), and a progress writer a test can read while a run writes it
//! ([`Shared`]). Every test that needs one of these builds it here, so they all look alike.

#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use agent_gate::adapters::github::{ApiUrl, Client, ClientConfig};
use agent_gate::adapters::shutdown::Shutdown;
use agent_gate::core::report::Report;
use agent_gate::core::secret::Token;
use agent_gate::core::slug::RepoSlug;
use agent_gate::flow::{RunOptions, run};
use agent_gate::sim::{self, Scenario, SimConfig, SimHandle};

/// Run git in `dir` without the system or global configuration, with a committer
/// identity; panics with git's stderr on failure; returns stdout.
pub fn git_in(dir: &Path, args: &[impl AsRef<OsStr>]) -> String {
    let args: Vec<OsString> = args.iter().map(|a| a.as_ref().to_os_string()).collect();
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(&args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A bare repository holding `work`'s `main`, added to `work` as `origin`.
pub fn bare_origin(work: &TestRepo) -> tempfile::TempDir {
    let bare = tempfile::tempdir().expect("temp dir");
    git_in(bare.path(), &["init", "-q", "--bare", "-b", "main"]);
    work.git(["remote", "add", "origin", &bare.path().to_string_lossy()]);
    work.git(["push", "-q", "origin", "main"]);
    bare
}

/// The simulator on 127.0.0.1, serving the bare repository `repo`.
pub async fn start_sim(repo: &Path, scenario: Scenario, time_scale: f64) -> SimHandle {
    sim::start(
        SimConfig {
            repositories: Vec::new(),
            repo: repo.to_path_buf(),
            scenario: Some(scenario),
            time_scale,
        },
        ([127, 0, 0, 1], 0).into(),
    )
    .await
    .expect("simulator starts")
}

/// For the tests marked `#[ignore]` because they need root (the container case): fail,
/// rather than pass having proved nothing, when one is asked for without root. `.ci/run`
/// runs them as root with `cargo test --locked --test it -- --ignored as_root`.
pub fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test needs root: run it as root (`cargo test --test it -- --ignored as_root`)"
    );
}

/// A progress writer the test can read while the run writes it.
#[derive(Clone, Default)]
pub struct Shared(Arc<Mutex<Vec<u8>>>);

impl Shared {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }
}

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A completed task `id`, created at `created_at`, with `sessions` (and nothing else set):
/// the shape the budget and repair counters read.
pub fn completed_task(
    id: &str,
    created_at: &str,
    sessions: Vec<agent_gate::adapters::github::types::Session>,
) -> agent_gate::adapters::github::types::Task {
    use agent_gate::adapters::github::types::{Task, TaskState};
    Task {
        id: id.into(),
        state: TaskState::Completed,
        created_at: created_at.into(),
        url: None,
        html_url: None,
        name: None,
        creator: None,
        creator_type: None,
        owner: None,
        repository: None,
        session_count: None,
        artifacts: Vec::new(),
        archived_at: None,
        updated_at: None,
        custom_agent: None,
        sessions: Some(sessions),
    }
}

/// The policy most `run` tests use, for the shell project below: `src/**` and `tests/**` may change, the test suite must pass.
pub const SHELL_POLICY: &str = "\
version: 1
repositories: [octo/demo]
agent:
  timeout: 5m
  poll: { initial: 1s, max: 1s }
scope:
  allow: [\"src/**\", \"tests/**\"]
  deny: [\"**/*.pem\"]
checks:
  - name: unit tests
    run: sh tests/run.sh
    timeout: 1m
";

/// The small shell project most `run` tests work on: `src/lib.sh` and its test suite.
pub const SHELL_LIB: &str = "add() { echo $(($1 + $2)); }\n";
pub const SHELL_TESTS: &str = "\
. ./src/lib.sh
[ \"$(add 2 3)\" = 5 ] || { echo \"FAIL: add 2 3 gave $(add 2 3)\"; exit 1; }
echo \"ok: add\"
";

/// A world for `run` tests, built fluently: a workspace holding the files you give on
/// `main`, pushed to a bare `origin` that the GitHub simulator serves.
///
/// ```ignore
/// let world = Gate::new()
///     .shell_project()                       // src/lib.sh and tests/run.sh
///     .policy(POLICY)                        // .github/agent-gate.yml
///     .tasks(vec![agent("Add subtraction", files, FinalState::Completed)])
///     .start()
///     .await;
/// // Through the library:
/// let (report, progress) = world.run(world.opts("Add subtraction")).await;
/// // Or through the binary, as a user would:
/// let out = world.cli_run("Add subtraction").args(["--format", "json"]).run_async().await;
/// assert_eq!(out.code(), Some(0), "{}", out.stderr());
/// assert_eq!(out.json()["verdict"], "passed");
/// ```
///
/// Defaults: no files but the initial `README.md`, an empty [`Scenario`], the simulator at
/// ×1000, repository `octo/demo`, user token `ghp_test_user_token`.
pub struct Gate {
    files: Vec<(String, String)>,
    scenario: Scenario,
    time_scale: f64,
    repository: String,
    token: String,
}

impl Default for Gate {
    fn default() -> Self {
        Gate::new()
    }
}

impl Gate {
    /// An empty world with the defaults above.
    pub fn new() -> Gate {
        Gate {
            files: Vec::new(),
            scenario: Scenario::default(),
            time_scale: 1000.0,
            repository: "octo/demo".to_string(),
            token: "ghp_test_user_token".to_string(),
        }
    }

    /// Commit `content` at `path` on `main`.
    #[must_use]
    pub fn file(mut self, path: &str, content: &str) -> Gate {
        self.files.push((path.to_string(), content.to_string()));
        self
    }

    /// Commit `yaml` as the policy, `.github/agent-gate.yml`.
    #[must_use]
    pub fn policy(self, yaml: &str) -> Gate {
        self.file(".github/agent-gate.yml", yaml)
    }

    /// Commit the small shell project most `run` tests work on: `src/lib.sh`
    /// ([`SHELL_LIB`]) and its test suite `tests/run.sh` ([`SHELL_TESTS`]).
    #[must_use]
    pub fn shell_project(self) -> Gate {
        self.file("src/lib.sh", SHELL_LIB)
            .file("tests/run.sh", SHELL_TESTS)
    }

    /// What the simulated GitHub and its agent do.
    #[must_use]
    pub fn scenario(mut self, scenario: Scenario) -> Gate {
        self.scenario = scenario;
        self
    }

    /// The scenario as the simulator's YAML (`default: {queued: 1s, work: 1s}` …).
    #[must_use]
    pub fn scenario_yaml(self, yaml: &str) -> Gate {
        let scenario = Scenario::from_yaml(yaml, Path::new("scenario.yml"), Path::new("."))
            .unwrap_or_else(|e| panic!("scenario: {e}"));
        self.scenario(scenario)
    }

    /// A scenario of just these scripted agents (the rest default).
    #[must_use]
    pub fn tasks(self, tasks: Vec<sim::TaskScript>) -> Gate {
        self.scenario(Scenario {
            tasks,
            ..Scenario::default()
        })
    }

    /// How much faster than real time the simulator runs (×1000 unless set).
    #[must_use]
    pub fn time_scale(mut self, time_scale: f64) -> Gate {
        self.time_scale = time_scale;
        self
    }

    /// The `owner/repo` runs are for.
    #[must_use]
    pub fn repository(mut self, repository: &str) -> Gate {
        self.repository = repository.to_string();
        self
    }

    /// The user token runs send.
    #[must_use]
    pub fn token(mut self, token: &str) -> Gate {
        self.token = token.to_string();
        self
    }

    /// Commit the files, push them to a fresh bare origin (git runs off the async runtime,
    /// so worlds built side by side do not stall each other's simulators), start the
    /// simulator on it.
    pub async fn start(self) -> World {
        let files = self.files;
        let (work, bare) = tokio::task::spawn_blocking(move || {
            let work = TestRepo::new();
            for (path, content) in &files {
                work.write(path, content);
            }
            work.commit("project and policy");
            let bare = bare_origin(&work);
            (work, bare)
        })
        .await
        .expect("the workspace is set up");
        let sim = start_sim(bare.path(), self.scenario, self.time_scale).await;
        World {
            work,
            bare,
            sim,
            repository: self.repository,
            token: self.token,
        }
    }
}

/// A started [`Gate`]: the workspace (`work`) on `main`, its bare origin (`bare`) and the
/// simulator serving it (`sim`).
pub struct World {
    pub work: TestRepo,
    pub bare: tempfile::TempDir,
    pub sim: SimHandle,
    repository: String,
    token: String,
}

impl World {
    /// The run's options: the CLI's defaults for this world, `PATH` for the checks.
    pub fn opts(&self, instruction: &str) -> RunOptions {
        RunOptions {
            instruction: instruction.to_string(),
            gate_env: vec![("PATH".into(), std::env::var_os("PATH").unwrap_or_default())],
            ..RunOptions::new(
                self.work.path().to_path_buf(),
                RepoSlug::parse(&self.repository).expect("the world's repository"),
                ApiUrl::parse(&self.sim.url()).expect("the simulator's URL"),
                Token::given(&self.token),
            )
        }
    }

    /// Run the gate through the library; returns the report and the progress text.
    pub async fn run(&self, opts: RunOptions) -> (Report, String) {
        let mut progress = Shared::default();
        let report = run(opts, Shutdown::never(), &mut progress).await;
        (report, progress.text())
    }

    /// A GitHub client for this world's repository, with its user token, against the
    /// simulator: for tests of a flow step or an API call without a whole run.
    pub fn client(&self) -> Client {
        self.client_with(&self.token)
    }

    /// [`World::client`] with another token.
    pub fn client_with(&self, token: &str) -> Client {
        let slug = RepoSlug::parse(&self.repository).expect("the world's repository");
        Client::new(
            ClientConfig::new(token, slug.owner(), slug.name()).with_api_url(self.sim.url()),
        )
        .expect("a client for the simulator")
    }

    /// How many tasks were created (POSTs to the task list, follow-ups included).
    pub fn creates(&self) -> usize {
        self.sim.count("POST", "/agents/repos/*/*/tasks")
    }

    /// Another workspace: a fresh clone of the origin (one more matrix job's checkout).
    pub fn clone_origin(&self) -> TestRepo {
        TestRepo::clone_of(self.bare.path())
    }

    /// The repository runs are for.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The user token runs send.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The binary ([`Cli::new`]) with this world's token as `INPUT_TOKEN`.
    pub fn cli(&self) -> Cli {
        Cli::new().env("INPUT_TOKEN", &self.token)
    }

    /// `agent-gate run` of `instruction` on this world: [`World::cli`] with
    /// `run --repository R --api-url SIM --instruction I --repo WORK`; add more with
    /// [`Cli::args`].
    pub fn cli_run(&self, instruction: &str) -> Cli {
        self.cli()
            .args(["run", "--repository", &self.repository])
            .args(["--api-url", &self.sim.url()])
            .args(["--instruction", instruction])
            .arg("--repo")
            .arg(self.work.path())
    }
}

/// The `agent-gate` binary to run, built fluently (just's `Test::new().args(..).run()`):
/// `Cli::new().args(["check", "--base", "main"]).current_dir(repo.path()).run()`.
///
/// It starts from the test's environment without the variables that would steer it
/// (`INPUT_*`, `GITHUB_ACTIONS`, `GITHUB_REPOSITORY`), stdin closed; [`Cli::clean_env`]
/// starts from nothing but `PATH` instead.
pub struct Cli {
    cmd: Command,
    stdin: Option<Vec<u8>>,
    stdout: Option<std::process::Stdio>,
    stderr: Option<std::process::Stdio>,
}

impl Default for Cli {
    fn default() -> Self {
        Cli::new()
    }
}

impl Cli {
    /// The binary, no arguments.
    pub fn new() -> Cli {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_agent-gate"));
        cmd.env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_REPOSITORY")
            .stdin(std::process::Stdio::null());
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("INPUT_") {
                cmd.env_remove(k);
            }
        }
        Cli {
            cmd,
            stdin: None,
            stdout: None,
            stderr: None,
        }
    }

    #[must_use]
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cli {
        self.cmd.arg(arg);
        self
    }

    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Cli
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    #[must_use]
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Cli {
        self.cmd.env(key, value);
        self
    }

    #[must_use]
    pub fn envs<I, K, V>(mut self, vars: I) -> Cli
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.cmd.envs(vars);
        self
    }

    #[must_use]
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Cli {
        self.cmd.env_remove(key);
        self
    }

    /// Drop every variable, the ones set so far included (`PATH` too): set what the test
    /// needs after this.
    #[must_use]
    pub fn env_clear(mut self) -> Cli {
        self.cmd.env_clear();
        self
    }

    /// Drop every variable, the ones set so far included, and set `PATH` again: set what
    /// the test needs after this.
    #[must_use]
    pub fn clean_env(mut self) -> Cli {
        self.cmd
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        self
    }

    #[must_use]
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Cli {
        self.cmd.current_dir(dir);
        self
    }

    /// Where the binary's stdout goes when spawned ([`Cli::spawn`]; piped unless set).
    #[must_use]
    pub fn stdout(mut self, stdio: std::process::Stdio) -> Cli {
        self.stdout = Some(stdio);
        self
    }

    /// Where the binary's stderr goes when spawned ([`Cli::spawn`]; piped unless set).
    #[must_use]
    pub fn stderr(mut self, stdio: std::process::Stdio) -> Cli {
        self.stderr = Some(stdio);
        self
    }

    /// What [`Cli::run`] writes to the binary's standard input (closed unless set).
    #[must_use]
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Cli {
        self.stdin = Some(input.into());
        self
    }

    /// Run it to the end, blocking; its output. The standard input is fed from another
    /// thread while the binary runs, so an input larger than a pipe's buffer cannot stall it.
    pub fn run(mut self) -> CliOutput {
        let Some(input) = self.stdin.take() else {
            return CliOutput(self.cmd.output().expect("agent-gate runs"));
        };
        let mut child = self
            .cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("agent-gate starts");
        let mut stdin = child.stdin.take().expect("piped stdin");
        let feeder = std::thread::spawn(move || {
            // The binary may stop reading early (`| head`): that is its business.
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().expect("agent-gate runs");
        feeder.join().expect("the feeder thread");
        CliOutput(out)
    }

    /// Start it without an async runtime (stdout and stderr piped unless set): for tests that
    /// watch the process while it runs (its pid, its memory) or run several at once.
    pub fn spawn_blocking(mut self) -> std::process::Child {
        self.cmd
            .stdout(self.stdout.unwrap_or_else(std::process::Stdio::piped))
            .stderr(self.stderr.unwrap_or_else(std::process::Stdio::piped))
            .spawn()
            .expect("agent-gate starts")
    }

    /// Run it to the end without blocking the runtime (the simulator may be serving it).
    pub async fn run_async(self) -> CliOutput {
        let mut cmd = tokio::process::Command::from(self.cmd);
        cmd.kill_on_drop(true);
        CliOutput(cmd.output().await.expect("agent-gate runs"))
    }

    /// Start it (stdout and stderr piped unless set); it is killed if dropped.
    pub fn spawn(self) -> tokio::process::Child {
        let mut cmd = tokio::process::Command::from(self.cmd);
        cmd.stdout(self.stdout.unwrap_or_else(std::process::Stdio::piped))
            .stderr(self.stderr.unwrap_or_else(std::process::Stdio::piped))
            .kill_on_drop(true);
        cmd.spawn().expect("agent-gate starts")
    }
}

/// What a [`Cli`] run left: exit code, stdout, stderr (and, through `Deref`, the
/// [`std::process::Output`] itself).
pub struct CliOutput(pub std::process::Output);

impl std::ops::Deref for CliOutput {
    type Target = std::process::Output;

    fn deref(&self) -> &std::process::Output {
        &self.0
    }
}

impl CliOutput {
    /// The exit code (`None` if a signal ended it).
    pub fn code(&self) -> Option<i32> {
        self.0.status.code()
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }

    /// Stdout as JSON; panics with both streams if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout())
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", self.stdout(), self.stderr()))
    }
}

/// A temporary git repository on `main`, removed on drop.
pub struct TestRepo {
    dir: tempfile::TempDir,
}

impl TestRepo {
    /// `git init` on branch `main` with a committer identity and one initial commit.
    pub fn new() -> TestRepo {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = TestRepo { dir };
        repo.git(["init", "-q", "-b", "main"]);
        repo.git(["config", "user.name", "Test"]);
        repo.git(["config", "user.email", "test@example.com"]);
        repo.git(["config", "commit.gpgsign", "false"]);
        repo.write("README.md", "test repository\n");
        repo.commit("initial");
        repo
    }

    /// A clone of the repository at `url` (a path or URL) on its default branch, with the
    /// same committer identity as [`TestRepo::new`].
    pub fn clone_of(url: &Path) -> TestRepo {
        let dir = tempfile::tempdir().expect("temp dir");
        git_in(
            dir.path(),
            &[
                OsStr::new("clone"),
                OsStr::new("-q"),
                url.as_os_str(),
                OsStr::new("."),
            ],
        );
        let repo = TestRepo { dir };
        repo.git(["config", "user.name", "Test"]);
        repo.git(["config", "user.email", "test@example.com"]);
        repo.git(["config", "commit.gpgsign", "false"]);
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Run git in the repository ([`git_in`]).
    pub fn git<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<OsString> = args
            .into_iter()
            .map(|a| a.as_ref().to_os_string())
            .collect();
        git_in(self.path(), &args)
    }

    /// Write a file (creating parent directories). `path` may be any bytes but NUL.
    pub fn write(&self, path: impl AsRef<[u8]>, content: impl AsRef<[u8]>) -> PathBuf {
        let full = self.path().join(OsStr::from_bytes(path.as_ref()));
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(&full, content).unwrap();
        full
    }

    /// Remove a file.
    pub fn remove(&self, path: impl AsRef<[u8]>) {
        std::fs::remove_file(self.path().join(OsStr::from_bytes(path.as_ref()))).unwrap();
    }

    /// `git add -A && git commit`; returns the new commit id.
    pub fn commit(&self, message: &str) -> String {
        self.git(["add", "-A"]);
        self.git(["commit", "-q", "--allow-empty", "-m", message]);
        self.head()
    }

    /// The commit id of HEAD.
    pub fn head(&self) -> String {
        self.git(["rev-parse", "HEAD"]).trim().to_string()
    }

    /// `git checkout -q -b NAME`.
    /// A repository whose policy on `main` has `checks` (YAML list items) and whose `agent`
    /// branch adds `src/a.txt`: what `check --base main --head agent` gates.
    pub fn with_checks_and_a_change(checks: &str) -> TestRepo {
        let repo = TestRepo::new();
        repo.write(
            ".github/agent-gate.yml",
            format!("version: 1\nchecks:\n{checks}"),
        );
        repo.commit("policy");
        repo.branch("agent");
        repo.write("src/a.txt", "a\n");
        repo.commit("change");
        repo
    }

    pub fn branch(&self, name: &str) {
        self.git(["checkout", "-q", "-b", name]);
    }

    /// `git checkout -q NAME`.
    pub fn checkout(&self, name: &str) {
        self.git(["checkout", "-q", name]);
    }
}

/// Every path under `dir` (links not followed) not owned by `uid`.
pub fn owned_by_others(dir: &Path, uid: u32) -> Vec<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.uid() != uid {
            found.push(path.clone());
        }
        if meta.is_dir()
            && let Ok(entries) = std::fs::read_dir(&path)
        {
            stack.extend(entries.flatten().map(|e| e.path()));
        }
    }
    found
}
