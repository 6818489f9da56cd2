//! Test support: a temporary git repository with helpers to write files and commit.
//! Every test that needs a repository builds one here, so they all look alike.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

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

    /// Run git in the repository; panics with git's stderr on failure; returns stdout.
    pub fn git<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args
            .into_iter()
            .map(|a| a.as_ref().to_os_string())
            .collect();
        let out = Command::new("git")
            .arg("-C")
            .arg(self.path())
            .args(&args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .expect("run git");
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
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
