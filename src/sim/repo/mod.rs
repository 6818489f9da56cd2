//! The simulator's copy of "GitHub's repository": a bare git repository on disk, changed only
//! through git plumbing (`hash-object`, `update-index` on a private index file, `write-tree`,
//! `commit-tree`, `update-ref`) run as `git` subprocesses. Owns branch and pull refs; knows
//! nothing of tasks or HTTP.
//!
//! This file holds the repository, its refs and commits, and the thin wrappers over git
//! plumbing; `ops.rs` applies a scenario's file operations to an index; `run.rs` runs one
//! git subprocess.

mod ops;
mod run;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::scenario::FileOp;
use run::{GIT_TIMEOUT, os, run_git};

const ZERO: &str = "0000000000000000000000000000000000000000";

/// A git failure.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("cannot run git {args}: {source} (is git installed and on PATH?)")]
    Spawn {
        args: String,
        source: std::io::Error,
    },
    #[error("git {args} did not finish within {}s", GIT_TIMEOUT.as_secs())]
    Timeout { args: String },
    #[error("git {args} failed ({status}): {stderr}")]
    Git {
        args: String,
        status: String,
        stderr: String,
    },
    #[error("{path} is not a git repository and cannot be created: {message}")]
    NotARepo { path: PathBuf, message: String },
    #[error("{op}: {message}")]
    Op { op: String, message: String },
}

/// Who a commit is by.
#[derive(Debug, Clone)]
pub struct Identity {
    pub name: String,
    pub email: String,
}

/// The bare repository.
#[derive(Debug)]
pub struct Repo {
    git_dir: PathBuf,
    /// Serializes every change of refs.
    lock: tokio::sync::Mutex<()>,
}

impl Repo {
    /// Open `path` (a bare repository, or a work tree), or create a bare repository there
    /// with one initial commit on `main` when it does not exist or is an empty directory.
    pub async fn open_or_create(path: &Path) -> Result<Repo, RepoError> {
        let empty_dir =
            path.is_dir() && std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_none());
        if !path.exists() || empty_dir {
            std::fs::create_dir_all(path).map_err(|e| RepoError::NotARepo {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
            run_git(
                None,
                &[
                    os("init"),
                    os("-q"),
                    os("--bare"),
                    os("-b"),
                    os("main"),
                    path.as_os_str().to_owned(),
                ],
                &[],
                None,
            )
            .await?;
            let repo = Repo {
                git_dir: absolute(path),
                lock: tokio::sync::Mutex::new(()),
            };
            repo.initial_commit().await?;
            return Ok(repo);
        }
        let out = run_git(
            None,
            &[
                os("-C"),
                path.as_os_str().to_owned(),
                os("rev-parse"),
                os("--absolute-git-dir"),
            ],
            &[],
            None,
        )
        .await
        .map_err(|e| RepoError::NotARepo {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let git_dir = PathBuf::from(String::from_utf8_lossy(&out).trim());
        Ok(Repo {
            git_dir,
            lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The git directory.
    pub fn git_dir(&self) -> &Path {
        &self.git_dir
    }

    async fn initial_commit(&self) -> Result<(), RepoError> {
        let tmp = tempfile::tempdir().map_err(|e| op_err("initial commit", &e))?;
        let index = tmp.path().join("index");
        let blob = self.hash_blob(b"simulated repository\n").await?;
        self.git_index(
            &index,
            &["update-index", "-z", "--index-info"],
            Some(format!("100644 {blob}\tREADME.md\0").into_bytes()),
        )
        .await?;
        let tree = self.git_index(&index, &["write-tree"], None).await?;
        let who = Identity {
            name: "agent-gate sim".into(),
            email: "sim@agent-gate.invalid".into(),
        };
        let commit = self
            .commit_tree(tree.trim(), None, "Initial commit", &who)
            .await?;
        self.git(&["update-ref", "refs/heads/main", &commit, ZERO])
            .await?;
        Ok(())
    }

    /// The branch `HEAD` points at (the default branch).
    pub async fn default_branch(&self) -> String {
        match self.git(&["symbolic-ref", "-q", "--short", "HEAD"]).await {
            Ok(b) if !b.trim().is_empty() => b.trim().to_string(),
            _ => "main".to_string(),
        }
    }

    /// The commit a ref or branch name points at.
    pub async fn resolve(&self, name: &str) -> Option<String> {
        let spec = format!("{name}^{{commit}}");
        self.git(&["rev-parse", "-q", "--verify", "--end-of-options", &spec])
            .await
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// The commit of branch `name` (`refs/heads/name`).
    pub async fn branch(&self, name: &str) -> Option<String> {
        if name.starts_with('-') {
            return None;
        }
        self.resolve(&format!("refs/heads/{name}")).await
    }

    /// Whether `sha` names a commit (full or abbreviated hex only).
    pub async fn commit_exists(&self, sha: &str) -> bool {
        sha.len() >= 4
            && sha.len() <= 64
            && sha.bytes().all(|b| b.is_ascii_hexdigit())
            && self.resolve(sha).await.is_some()
    }

    /// A branch name `copilot/<slug>` not used yet.
    pub async fn unused_branch(&self, slug: &str) -> String {
        let base = format!("copilot/{slug}");
        let mut name = base.clone();
        let mut n = 2;
        while self.branch(&name).await.is_some() {
            name = format!("{base}-{n}");
            n += 1;
        }
        name
    }

    /// Point a ref at a commit (creates or moves it).
    pub async fn set_ref(&self, refname: &str, sha: &str) -> Result<(), RepoError> {
        let _g = self.lock.lock().await;
        self.git(&["update-ref", refname, sha]).await.map(drop)
    }

    /// Apply `ops` on top of `start` and move `refs/heads/<branch>` from `expected_old`
    /// (None = the branch must not exist) to the new commit. Returns `None` when the ops
    /// change nothing (no commit is made).
    pub async fn commit_ops(
        &self,
        branch: &str,
        start: &str,
        expected_old: Option<&str>,
        ops: &[FileOp],
        message: &str,
        who: &Identity,
    ) -> Result<Option<String>, RepoError> {
        let _g = self.lock.lock().await;
        let tmp = tempfile::tempdir().map_err(|e| op_err("temporary index", &e))?;
        let index = tmp.path().join("index");
        self.git_index(&index, &["read-tree", start], None).await?;
        for op in ops {
            self.apply(&index, op).await?;
        }
        let tree = self.git_index(&index, &["write-tree"], None).await?;
        let tree = tree.trim();
        let start_tree = self
            .git(&["rev-parse", &format!("{start}^{{tree}}")])
            .await?;
        if start_tree.trim() == tree {
            return Ok(None);
        }
        let commit = self.commit_tree(tree, Some(start), message, who).await?;
        let refname = format!("refs/heads/{branch}");
        self.git(&[
            "update-ref",
            &refname,
            &commit,
            expected_old.unwrap_or(ZERO),
        ])
        .await?;
        Ok(Some(commit))
    }

    async fn hash_blob(&self, content: &[u8]) -> Result<String, RepoError> {
        let out = run_git(
            Some(&self.git_dir),
            &[os("hash-object"), os("-w"), os("--stdin")],
            &[],
            Some(content.to_vec()),
        )
        .await?;
        Ok(String::from_utf8_lossy(&out).trim().to_string())
    }

    async fn commit_tree(
        &self,
        tree: &str,
        parent: Option<&str>,
        message: &str,
        who: &Identity,
    ) -> Result<String, RepoError> {
        let mut args = vec![os("commit-tree"), os(tree)];
        if let Some(p) = parent {
            args.extend([os("-p"), os(p)]);
        }
        let env = [
            ("GIT_AUTHOR_NAME", who.name.as_str()),
            ("GIT_AUTHOR_EMAIL", who.email.as_str()),
            ("GIT_COMMITTER_NAME", who.name.as_str()),
            ("GIT_COMMITTER_EMAIL", who.email.as_str()),
        ];
        let out = run_git(
            Some(&self.git_dir),
            &args,
            &env,
            Some(message.as_bytes().to_vec()),
        )
        .await?;
        Ok(String::from_utf8_lossy(&out).trim().to_string())
    }

    async fn git(&self, args: &[&str]) -> Result<String, RepoError> {
        let args: Vec<OsString> = args.iter().map(|a| os(a)).collect();
        let out = run_git(Some(&self.git_dir), &args, &[], None).await?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    async fn git_index(
        &self,
        index: &Path,
        args: &[&str],
        stdin: Option<Vec<u8>>,
    ) -> Result<String, RepoError> {
        let args: Vec<OsString> = args.iter().map(|a| os(a)).collect();
        let idx = index.to_string_lossy().into_owned();
        let out = run_git(
            Some(&self.git_dir),
            &args,
            &[("GIT_INDEX_FILE", idx.as_str())],
            stdin,
        )
        .await?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

fn op_err(op: &str, e: &std::io::Error) -> RepoError {
    RepoError::Op {
        op: op.to_string(),
        message: e.to_string(),
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}
