//! Adapter for the `git` command line (never libgit2): the change between the merge base of
//! two refs and a head (`-z` output, renames and copies detected, modes, binary files, line
//! counts), reading a file at a ref, exporting a tree to a plain directory, fetching, and
//! refs on a remote as a small compare-and-swap store ([`Git::push_refs`]). It knows nothing
//! of policies, checks or GitHub.
//!
//! Every invocation goes through `Git::command`, which runs as if in a hostile place:
//! `safe.directory=*` (the workspace may belong to another uid in a container), no system
//! config, no hooks, no fsmonitor, no pager, no prompts, `LC_ALL=C`, inherited `GIT_*`
//! variables that could redirect git to another repository removed, a timeout, and stderr
//! kept for the error. Output is parsed by the pure functions of [`parse`]; a change is
//! complete or an error, never a partial list.
//!
//! This file keeps the [`Git`] type, the configured process (`Git::command` and the `run`
//! helpers), ref resolution, merge bases, [`Git::changes`] and the small queries about the
//! repository and its remotes.

mod error;
mod fetch;
pub mod parse;
mod refs;
mod run;
mod tree;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use bstr::ByteSlice;

pub use crate::core::change::{
    Change, ChangeKind, ChangeSet, MODE_EXECUTABLE, MODE_GITLINK, MODE_REGULAR, MODE_SYMLINK,
};
pub use parse::{
    DiffError, JoinError, NumstatEntry, ParseError, RawEntry, format_numstat_z, format_raw_z, join,
    parse_numstat_z, parse_raw_numstat_z, parse_raw_z,
};

pub use error::GitError;
use error::display_args;
pub use fetch::{RemoteAuth, plain_then_token};
pub use refs::{Expect, PushOutcome, RefUpdate, RemoteRef};
use run::Outcome;

/// The id of the empty tree, per object format; used as the attribute source of diffs so the
/// head's `.gitattributes` cannot mark text files binary (and hide their lines).
const EMPTY_TREE_SHA1: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
const EMPTY_TREE_SHA256: &str = "6ef19b41225c5369f1c104d45d8d85efa9b057b53b14b4b9b939dd74decc5321";

/// `-c` options given to every invocation.
const COMMON_CONFIG: &[&str] = &[
    "safe.directory=*",
    "core.quotepath=off",
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.sparseCheckout=false",
    "color.ui=never",
    "submodule.recurse=false",
    "gc.auto=0",
    "maintenance.auto=false",
];

/// Inherited `GIT_*` variables that are kept (transport and debugging); every other one is
/// removed, since variables like `GIT_DIR`, `GIT_INDEX_FILE`, `GIT_CONFIG_PARAMETERS` or
/// `GIT_EXTERNAL_DIFF` would make git read another repository or run other programs.
const KEPT_GIT_VARS: &[&str] = &[
    "GIT_EXEC_PATH",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_SSH_VARIANT",
    "GIT_ASKPASS",
    "GIT_SSL_CAINFO",
    "GIT_SSL_CAPATH",
    "GIT_CONFIG_GLOBAL",
    "GIT_TRACE",
    "GIT_TRACE2",
    "GIT_TRACE2_EVENT",
    "GIT_TRACE_PACKET",
    "GIT_CURL_VERBOSE",
];

/// How long one git command may run by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_mins(10);

/// A finished git process.
struct Finished {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
}

/// A repository worked on through the `git` binary.
#[derive(Debug, Clone)]
pub struct Git {
    dir: PathBuf,
    timeout: Duration,
}

fn is_object_id(text: &str) -> bool {
    matches!(text.len(), 40 | 64)
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Git {
    pub fn new(dir: impl AsRef<Path>) -> Git {
        Git {
            dir: dir.as_ref().to_path_buf(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same repository with another per-command timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Git {
        self.timeout = timeout;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The one place a git process is configured: see the module documentation.
    fn command(&self, args: &[&OsStr], env: &[(&str, &OsStr)]) -> Command {
        let mut cmd = Command::new("git");
        cmd.arg("-C").arg(&self.dir).arg("--no-pager");
        for config in COMMON_CONFIG {
            cmd.arg("-c").arg(config);
        }
        cmd.args(args);
        for (key, _) in std::env::vars_os() {
            let name = key.to_string_lossy();
            if name.starts_with("GIT_") && !KEPT_GIT_VARS.contains(&name.as_ref()) {
                cmd.env_remove(&key);
            }
        }
        cmd.env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_OPTIONAL_LOCKS", "0")
            .env("GIT_PAGER", "cat")
            .env("PAGER", "cat")
            .env("LC_ALL", "C")
            .env("LANGUAGE", "C");
        for (key, value) in env {
            cmd.env(key, value);
        }
        cmd
    }

    /// Run git to completion (any exit status).
    fn exec(&self, args: &[&OsStr], env: &[(&str, &OsStr)]) -> Result<Finished, GitError> {
        match run::run_captured(self.command(args, env), self.timeout) {
            Ok(Outcome::Exited {
                status,
                stdout,
                stderr,
            }) => Ok(Finished {
                status,
                stdout,
                stderr,
            }),
            Ok(Outcome::TimedOut { stderr }) => Err(GitError::Timeout {
                args: display_args(args),
                timeout: self.timeout,
                stderr,
            }),
            Err(source) => Err(GitError::Spawn {
                args: display_args(args),
                dir: self.dir.clone(),
                source,
            }),
        }
    }

    fn failed(&self, args: &[&OsStr], done: &Finished) -> GitError {
        // The raw command for whoever debugs; the message says what is missing.
        tracing::debug!(
            command = %format!("git {}", display_args(args)),
            dir = %self.dir.display(),
            status = %done.status,
            stderr = %done.stderr.trim_end(),
            "git failed"
        );
        if done.stderr.contains("not a git repository") {
            return GitError::NotARepository {
                dir: self.dir.canonicalize().unwrap_or_else(|_| self.dir.clone()),
            };
        }
        GitError::Command {
            args: display_args(args),
            dir: self.dir.clone(),
            status: done.status.to_string(),
            stderr: done.stderr.clone(),
        }
    }

    /// Run git and require success; returns stdout.
    fn run_env(&self, args: &[&OsStr], env: &[(&str, &OsStr)]) -> Result<Vec<u8>, GitError> {
        let done = self.exec(args, env)?;
        if done.status.success() {
            Ok(done.stdout)
        } else {
            Err(self.failed(args, &done))
        }
    }

    fn run(&self, args: &[&str]) -> Result<Vec<u8>, GitError> {
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        self.run_env(&args, &[])
    }

    /// The commit `rev` names (branches, tags and other refs are peeled to their commit).
    /// Make the (existing, empty) directory a bare repository: a scratch place to fetch
    /// refs into.
    pub fn init_bare(&self) -> Result<(), GitError> {
        self.run(&["init", "-q", "--bare"]).map(|_| ())
    }

    pub fn rev_parse(&self, rev: &str) -> Result<String, GitError> {
        let unknown = || GitError::UnknownRef {
            rev: rev.to_string(),
            dir: self.dir.clone(),
        };
        if rev.is_empty() || rev.contains('\0') {
            return Err(unknown());
        }
        let spec = format!("{rev}^{{commit}}");
        let args = [
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &spec,
        ]
        .map(OsStr::new);
        let done = self.exec(&args, &[])?;
        match done.status.code() {
            Some(0) => {
                let id = done.stdout.trim().to_str_lossy().into_owned();
                if is_object_id(&id) {
                    Ok(id)
                } else {
                    Err(self.failed(&args, &done))
                }
            }
            Some(1) => Err(unknown()),
            _ => Err(self.failed(&args, &done)),
        }
    }

    /// The name to give git for what a user called `name`: when `name` is a short ref name,
    /// the one full ref it means (`main` → `refs/heads/main`), found by the rules git itself
    /// follows (`git help revisions`: `refs/`, `refs/tags/`, `refs/heads/`,
    /// `refs/remotes/`, `refs/remotes/<name>/HEAD`); anything else (a full ref, a commit id,
    /// `HEAD~2`) as given. A name that means more than one ref — a tag named like the base
    /// branch — is refused ([`GitError::AmbiguousRef`]) rather than resolved the way git
    /// would (the tag first).
    pub fn resolve_ref(&self, name: &str) -> Result<String, GitError> {
        let plain = !name.is_empty()
            && !name.starts_with("refs/")
            && !name.starts_with('-')
            && !name.contains(['\0', '*', '?', '[', '^', '~', ':', '@', ' ', '\\']);
        if !plain {
            return Ok(name.to_string());
        }
        let candidates = [
            format!("refs/{name}"),
            format!("refs/tags/{name}"),
            format!("refs/heads/{name}"),
            format!("refs/remotes/{name}"),
            format!("refs/remotes/{name}/HEAD"),
        ];
        let mut args = vec!["for-each-ref", "--format=%(refname)"];
        args.extend(candidates.iter().map(String::as_str));
        let out = self.run(&args)?;
        let existing: Vec<&str> = out
            .lines()
            .filter_map(|l| l.to_str().ok())
            .filter(|r| candidates.iter().any(|c| c == r))
            .collect();
        match existing.as_slice() {
            [] => Ok(name.to_string()),
            [one] => Ok((*one).to_string()),
            many => Err(GitError::AmbiguousRef {
                name: name.to_string(),
                refs: many.iter().map(|r| (*r).to_string()).collect(),
                dir: self.dir.clone(),
            }),
        }
    }

    /// Whether the repository is a shallow clone (its history is cut off).
    pub fn is_shallow(&self) -> Result<bool, GitError> {
        let out = self.run(&["rev-parse", "--is-shallow-repository"])?;
        Ok(out.trim() == b"true")
    }

    /// The best common ancestor of two commits, `None` when they share no history (here).
    pub fn merge_base(&self, a: &str, b: &str) -> Result<Option<String>, GitError> {
        let a = self.rev_parse(a)?;
        let b = self.rev_parse(b)?;
        self.merge_base_of_ids(&a, &b)
    }

    fn merge_base_of_ids(&self, a: &str, b: &str) -> Result<Option<String>, GitError> {
        let args = ["merge-base", a, b].map(OsStr::new);
        let done = self.exec(&args, &[])?;
        let id = done.stdout.trim().to_str_lossy().into_owned();
        match done.status.code() {
            Some(0) if is_object_id(&id) => Ok(Some(id)),
            Some(1) if id.is_empty() && done.stderr.is_empty() => Ok(None),
            _ => Err(self.failed(&args, &done)),
        }
    }

    /// Every merge base of two commits (`git merge-base --all`): one in ordinary history,
    /// several in criss-cross history, none when they share no history (here).
    fn merge_bases_of_ids(&self, a: &str, b: &str) -> Result<Vec<String>, GitError> {
        let args = ["merge-base", "--all", a, b].map(OsStr::new);
        let done = self.exec(&args, &[])?;
        let ids: Vec<String> = done
            .stdout
            .lines()
            .map(|l| l.trim().to_str_lossy().into_owned())
            .filter(|l| !l.is_empty())
            .collect();
        match done.status.code() {
            Some(0) if !ids.is_empty() && ids.iter().all(|id| is_object_id(id)) => Ok(ids),
            Some(1) if ids.is_empty() && done.stderr.is_empty() => Ok(Vec::new()),
            _ => Err(self.failed(&args, &done)),
        }
    }

    /// The tree a merge of `head` into `base` would make (`git merge-tree --write-tree`),
    /// or [`GitError::AmbiguousMerge`] when it does not merge cleanly.
    fn merged_tree(
        &self,
        base: &str,
        head: &str,
        base_id: &str,
        head_id: &str,
        bases: &[String],
    ) -> Result<String, GitError> {
        let args = [
            "merge-tree",
            "--write-tree",
            "--no-messages",
            "--name-only",
            base_id,
            head_id,
        ]
        .map(OsStr::new);
        let done = self.exec(&args, &[])?;
        let tree = done
            .stdout
            .lines()
            .next()
            .map(|l| l.trim().to_str_lossy().into_owned())
            .unwrap_or_default();
        match done.status.code() {
            Some(0) if is_object_id(&tree) => Ok(tree),
            Some(1) if is_object_id(&tree) => Err(GitError::AmbiguousMerge {
                base: base.to_string(),
                head: head.to_string(),
                bases: bases.to_vec(),
            }),
            _ => Err(self.failed(&args, &done)),
        }
    }

    /// Every change a pull request from `head` into `base` would make. In ordinary history
    /// that is the merge base of `base` and `head` against `head`. When they have several
    /// merge bases (criss-cross history) no one of them tells the truth — a change that a
    /// real merge applies can be invisible against one — so the change is `base` against
    /// the tree the merge would make (`git merge-tree --write-tree`), and a head that does
    /// not merge cleanly is refused. Fails closed: an unknown ref, a missing merge base
    /// (shallow clone) or unexpected output is an error, never a partial list.
    pub fn changes(&self, base: &str, head: &str) -> Result<ChangeSet, GitError> {
        let base_id = self.rev_parse(base)?;
        let head_id = self.rev_parse(head)?;
        let merge_bases = self.merge_bases_of_ids(&base_id, &head_id)?;
        let (merge_base, to) = match merge_bases.as_slice() {
            [] => {
                return Err(GitError::NoMergeBase {
                    base: base.to_string(),
                    head: head.to_string(),
                    shallow: self.is_shallow()?,
                });
            }
            [one] => (one.clone(), head_id.clone()),
            several => {
                let tree = self.merged_tree(base, head, &base_id, &head_id, several)?;
                (base_id.clone(), tree)
            }
        };
        let empty_tree = if head_id.len() == 64 {
            EMPTY_TREE_SHA256
        } else {
            EMPTY_TREE_SHA1
        };
        let env = [("GIT_ATTR_SOURCE", OsStr::new(empty_tree))];
        // Both formats from one diff: one process, one rename detection; the raw records
        // come first, then the numstat records, in the same order.
        let args = [
            "diff",
            "--raw",
            "--numstat",
            "-z",
            "-M",
            "-C",
            "--no-abbrev",
            "--no-ext-diff",
            "--no-textconv",
            "--no-color",
            "--no-relative",
            "--ignore-submodules=none",
            merge_base.as_str(),
            to.as_str(),
            "--",
        ]
        .map(OsStr::new);
        let out = self.run_env(&args, &env)?;
        let changes = parse_raw_numstat_z(&out).map_err(|e| match e {
            DiffError::Parse(source) => GitError::Parse {
                args: display_args(&args),
                source,
            },
            DiffError::Join(source) => GitError::Join { source },
        })?;
        let link_targets = self.link_targets(&to, &changes)?;
        Ok(ChangeSet {
            merge_base,
            merge_bases,
            head: head_id,
            changes,
            link_targets,
        })
    }

    /// The target text of each symbolic link among `changes`' head sides, read from `head`
    /// (a commit or tree; one `git cat-file` per link: changes add few).
    fn link_targets(
        &self,
        head: &str,
        changes: &[Change],
    ) -> Result<std::collections::BTreeMap<bstr::BString, bstr::BString>, GitError> {
        use std::os::unix::ffi::OsStrExt;
        let mut out = std::collections::BTreeMap::new();
        for c in changes.iter().filter(|c| c.adds_symlink()) {
            let mut spec = format!("{head}:").into_bytes();
            spec.extend_from_slice(&c.path);
            let args = [
                OsStr::new("cat-file"),
                OsStr::new("blob"),
                OsStr::from_bytes(&spec),
            ];
            let target = self.run_env(&args, &[])?;
            out.insert(c.path.clone(), bstr::BString::from(target));
        }
        Ok(out)
    }

    /// Delete a reference (e.g. a private `refs/agent-gate/...` ref the gate fetched into);
    /// deleting one that does not exist is not an error.
    pub fn delete_ref(&self, name: &str) -> Result<(), GitError> {
        if name.is_empty() || name.starts_with('-') || !name.starts_with("refs/") {
            return Err(GitError::BadArgument {
                command: "update-ref",
                what: "ref",
                arg: name.to_string(),
                reason: "only full `refs/...` names are deleted",
            });
        }
        self.run(&["update-ref", "-d", name]).map(drop)
    }

    /// The URL of remote `name` (after `insteadOf` rewriting), `None` if there is no such remote.
    pub fn remote_url(&self, name: &str) -> Option<String> {
        if name.is_empty() || name.starts_with('-') {
            return None;
        }
        let out = self.run(&["remote", "get-url", name]).ok()?;
        let url = out.trim().to_str().ok()?.to_string();
        (!url.is_empty()).then_some(url)
    }

    /// The branch `refs/remotes/<remote>/HEAD` points at (as recorded by clone or
    /// `git remote set-head`), e.g. `main`; `None` when it is not recorded.
    pub fn default_branch_of_remote(&self, remote: &str) -> Result<Option<String>, GitError> {
        if remote.is_empty() || remote.starts_with('-') {
            return Ok(None);
        }
        let reference = format!("refs/remotes/{remote}/HEAD");
        let args = ["symbolic-ref", "--quiet", &reference].map(OsStr::new);
        let done = self.exec(&args, &[])?;
        match done.status.code() {
            Some(0) => {
                let target = done.stdout.trim().to_str_lossy().into_owned();
                let prefix = format!("refs/remotes/{remote}/");
                Ok(target.strip_prefix(&prefix).map(str::to_string))
            }
            Some(1) => Ok(None),
            _ => Err(self.failed(&args, &done)),
        }
    }

    /// The repository's git directory, absolute (for a linked worktree: its own).
    pub fn git_dir(&self) -> Result<PathBuf, GitError> {
        let out = self.run(&["rev-parse", "--absolute-git-dir"])?;
        Ok(PathBuf::from(out.trim().to_str_lossy().into_owned()))
    }

    /// The directory holding the shared `config`, refs and objects (differs from
    /// [`Git::git_dir`] in a linked worktree), absolute.
    pub fn common_dir(&self) -> Result<PathBuf, GitError> {
        let out = self.run(&["rev-parse", "--path-format=absolute", "--git-common-dir"])?;
        Ok(PathBuf::from(out.trim().to_str_lossy().into_owned()))
    }
}
