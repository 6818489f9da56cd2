//! Test support: a temporary git repository with helpers to write files and commit
//! ([`TestRepo`]), git in any directory ([`git_in`]), a bare `origin` for a workspace
//! ([`bare_origin`]), the simulator on a repository ([`start_sim`]), a progress writer a test
//! can read while a run writes it ([`Shared`]), and the whole `run` world — a workspace with
//! a project and a policy, its bare origin served by the simulator — ([`SimGate`]). Every
//! test that needs one of these builds it here, so they all look alike.

#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use agent_gate::flow::{RunOptions, run};
use agent_gate::report::Report;
use agent_gate::shutdown::Shutdown;
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
    sessions: Vec<agent_gate::github::types::Session>,
) -> agent_gate::github::types::Task {
    use agent_gate::github::types::{Task, TaskState};
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

/// The small shell project most `run` tests work on: `src/lib.sh` and its test suite.
pub const SHELL_LIB: &str = "add() { echo $(($1 + $2)); }\n";
pub const SHELL_TESTS: &str = "\
. ./src/lib.sh
[ \"$(add 2 3)\" = 5 ] || { echo \"FAIL: add 2 3 gave $(add 2 3)\"; exit 1; }
echo \"ok: add\"
";

/// The world of a `run` test: a workspace (`work`) holding a project and a policy on `main`,
/// cloned from a bare repository the simulator serves (`sim`).
pub struct SimGate {
    pub work: TestRepo,
    pub bare: tempfile::TempDir,
    pub sim: SimHandle,
    repository: String,
    token: String,
}

impl SimGate {
    /// Commit `files` (path, content) on `main`, push them to a fresh bare origin, and start
    /// the simulator on it with `scenario` at `time_scale`; runs are for `repository` with
    /// the user token `token`.
    pub async fn start(
        files: &[(&str, &str)],
        scenario: Scenario,
        time_scale: f64,
        repository: &str,
        token: &str,
    ) -> SimGate {
        let work = TestRepo::new();
        for (path, content) in files {
            work.write(path, content);
        }
        work.commit("project and policy");
        let bare = bare_origin(&work);
        let sim = start_sim(bare.path(), scenario, time_scale).await;
        SimGate {
            work,
            bare,
            sim,
            repository: repository.to_string(),
            token: token.to_string(),
        }
    }

    /// [`SimGate::start`] with the shell project (`src/lib.sh`, `tests/run.sh`) and
    /// `policy`, the simulator at ×1000.
    pub async fn shell_project(
        policy: &str,
        scenario: Scenario,
        repository: &str,
        token: &str,
    ) -> SimGate {
        let files = [
            ("src/lib.sh", SHELL_LIB),
            ("tests/run.sh", SHELL_TESTS),
            (".github/agent-gate.yml", policy),
        ];
        SimGate::start(&files, scenario, 1000.0, repository, token).await
    }

    /// The run's options: the CLI's defaults for this world, `PATH` for the checks.
    pub fn opts(&self, instruction: &str) -> RunOptions {
        RunOptions {
            instruction: instruction.to_string(),
            gate_env: vec![("PATH".into(), std::env::var_os("PATH").unwrap_or_default())],
            ..RunOptions::new(
                self.work.path().to_path_buf(),
                self.repository.clone(),
                self.sim.url(),
                self.token.clone(),
            )
        }
    }

    /// Run the gate through the library; returns the report and the progress text.
    pub async fn run(&self, opts: RunOptions) -> (Report, String) {
        let mut progress = Shared::default();
        let report = run(opts, Shutdown::never(), &mut progress).await;
        (report, progress.text())
    }

    /// How many tasks were created (POSTs to the task list, follow-ups included).
    pub fn creates(&self) -> usize {
        self.sim.count("POST", "/agents/repos/*/*/tasks")
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
