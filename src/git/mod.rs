//! Adapter for the `git` command line (never libgit2): the change between the merge base of
//! two refs and a head (`-z` output, renames and copies detected, modes, binary files, line
//! counts), reading a file at a ref, exporting a tree to a plain directory, fetching. It
//! knows nothing of policies, checks or GitHub.
//!
//! Every invocation goes through [`Git::command`], which runs as if in a hostile place:
//! `safe.directory=*` (the workspace may belong to another uid in a container), no system
//! config, no hooks, no fsmonitor, no pager, no prompts, `LC_ALL=C`, inherited `GIT_*`
//! variables that could redirect git to another repository removed, a timeout, and stderr
//! kept for the error. Output is parsed by the pure functions of [`parse`]; a change is
//! complete or an error, never a partial list.

mod change;
pub mod parse;
mod run;

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use bstr::ByteSlice;

pub use change::{
    Change, ChangeKind, ChangeSet, JoinError, MODE_EXECUTABLE, MODE_GITLINK, MODE_REGULAR,
    MODE_SYMLINK, join,
};
pub use parse::{
    NumstatEntry, ParseError, RawEntry, format_numstat_z, format_raw_z, parse_numstat_z,
    parse_raw_z,
};

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

/// A git failure, with the command and what git said, and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("could not run `git {args}` in {}: {source}; is git installed and on PATH?", dir.display())]
    Spawn {
        args: String,
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`git {args}` failed in {} ({status}): {stderr}", dir.display())]
    Command {
        args: String,
        dir: PathBuf,
        status: String,
        stderr: String,
    },
    #[error("`git {args}` did not finish within {seconds}s and was killed; stderr: {stderr}")]
    Timeout {
        args: String,
        seconds: u64,
        stderr: String,
    },
    #[error(
        "`{rev}` does not name a commit in {}: check the spelling, or fetch it first \
         (e.g. `git fetch origin <branch>`; with actions/checkout set `fetch-depth: 0`)",
        dir.display()
    )]
    UnknownRef { rev: String, dir: PathBuf },
    #[error(
        "`{base}` and `{head}` have no merge base{}",
        if *shallow {
            ": this clone is shallow, so their common history is cut off. Fetch the full history \
             (`git fetch --unshallow`, or `fetch-depth: 0` for actions/checkout) so the whole change \
             can be computed"
        } else {
            " and this clone is not shallow: the two histories are unrelated. Check that the base is \
             the branch the head was made from (a partial fetch can also cause this: fetch the full \
             history, `fetch-depth: 0` for actions/checkout)"
        }
    )]
    NoMergeBase {
        base: String,
        head: String,
        shallow: bool,
    },
    #[error(
        "could not read the output of `git {args}` ({source}); refusing to go on with a partial \
         list of changes. Please report this with the output of that command"
    )]
    Parse {
        args: String,
        #[source]
        source: ParseError,
    },
    #[error(
        "`git diff --raw` and `git diff --numstat` disagree ({source}); refusing to go on with a \
         partial list of changes. Please report this with the output of both commands"
    )]
    Join {
        #[source]
        source: JoinError,
    },
    #[error("`{path}` at `{rev}` is a {kind}, not a regular file")]
    NotAFile {
        rev: String,
        path: String,
        kind: String,
    },
    #[error("cannot export `{rev}` into {}: {reason}", dest.display())]
    Export {
        rev: String,
        dest: PathBuf,
        reason: String,
    },
    #[error("refusing {arg:?} as the {what} of `git {command}`: {reason}")]
    BadArgument {
        command: &'static str,
        what: &'static str,
        arg: String,
        reason: &'static str,
    },
}

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

/// Render arguments for a message: plain words as is, anything else quoted.
fn display_args(args: &[&OsStr]) -> String {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let text = arg.to_string_lossy();
        let plain = !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_=./:^{}@~+,%".contains(&b))
            && arg.to_str().is_some();
        if plain {
            out.push_str(&text);
        } else {
            let _ = write!(out, "{text:?}");
        }
    }
    out
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
                seconds: self.timeout.as_secs(),
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

    /// Every change between the merge base of `base` and `head`, and `head`: what a pull
    /// request from `head` into `base` would change. Fails closed: an unknown ref, a missing
    /// merge base (shallow clone) or unexpected output is an error, never a partial list.
    pub fn changes(&self, base: &str, head: &str) -> Result<ChangeSet, GitError> {
        let base_id = self.rev_parse(base)?;
        let head_id = self.rev_parse(head)?;
        let Some(merge_base) = self.merge_base_of_ids(&base_id, &head_id)? else {
            return Err(GitError::NoMergeBase {
                base: base.to_string(),
                head: head.to_string(),
                shallow: self.is_shallow()?,
            });
        };
        let empty_tree = if head_id.len() == 64 {
            EMPTY_TREE_SHA256
        } else {
            EMPTY_TREE_SHA1
        };
        let env = [("GIT_ATTR_SOURCE", OsStr::new(empty_tree))];
        let diff = |format: &'static str| -> Vec<&OsStr> {
            let mut args = vec![
                "diff",
                format,
                "-z",
                "-M",
                "-C",
                "--no-ext-diff",
                "--no-textconv",
                "--no-color",
                "--no-relative",
                "--ignore-submodules=none",
            ];
            if format == "--raw" {
                args.push("--no-abbrev");
            }
            args.extend([merge_base.as_str(), head_id.as_str(), "--"]);
            args.into_iter().map(OsStr::new).collect()
        };
        let raw_args = diff("--raw");
        let raw = self.run_env(&raw_args, &env)?;
        let raw = parse_raw_z(&raw).map_err(|source| GitError::Parse {
            args: display_args(&raw_args),
            source,
        })?;
        let num_args = diff("--numstat");
        let num = self.run_env(&num_args, &env)?;
        let num = parse_numstat_z(&num).map_err(|source| GitError::Parse {
            args: display_args(&num_args),
            source,
        })?;
        let changes = join(raw, num).map_err(|source| GitError::Join { source })?;
        Ok(ChangeSet {
            merge_base,
            head: head_id,
            changes,
        })
    }

    /// The content of the file `path` (relative to the repository root) in commit `rev`, or
    /// `None` when no such path exists there. Reads the object database only: the working
    /// tree and index are never consulted. A directory, symlink or submodule at `path` is an
    /// error (a policy must be a regular file).
    pub fn show_file(&self, rev: &str, path: &str) -> Result<Option<Vec<u8>>, GitError> {
        let bad = |reason| GitError::BadArgument {
            command: "ls-tree",
            what: "path",
            arg: path.to_string(),
            reason,
        };
        if path.is_empty() || path.contains('\0') {
            return Err(bad("a path must be non-empty and contain no NUL"));
        }
        if path.starts_with('/')
            || path
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(bad(
                "give a path relative to the repository root, without `.`, `..` or empty components",
            ));
        }
        let commit = self.rev_parse(rev)?;
        let args = ["ls-tree", "-z", "--full-tree", &commit, "--", path].map(OsStr::new);
        let out = self.run_env(&args, &[("GIT_LITERAL_PATHSPECS", OsStr::new("1"))])?;
        let Some(record) = out.split(|&b| b == 0).find(|r| !r.is_empty()) else {
            return Ok(None);
        };
        // `<mode> SP <type> SP <id> TAB <path>`
        let parsed = record.split_once_str("\t").and_then(|(meta, name)| {
            let mut fields = meta.split(|&b| b == b' ');
            Some((fields.next()?, fields.next()?, fields.next()?, name))
        });
        let Some((mode, kind, id, name)) = parsed else {
            return Err(GitError::Parse {
                args: display_args(&args),
                source: ParseError {
                    offset: 0,
                    message: format!("unexpected ls-tree record {:?}", record.as_bstr()),
                },
            });
        };
        if name != path.as_bytes() {
            return Ok(None);
        }
        let not_a_file = |what: &str| GitError::NotAFile {
            rev: rev.to_string(),
            path: path.to_string(),
            kind: what.to_string(),
        };
        match (mode, kind) {
            (b"100644" | b"100755", b"blob") => {}
            (b"120000", _) => return Err(not_a_file("symbolic link")),
            (b"160000", _) => return Err(not_a_file("submodule")),
            (_, b"tree") => return Err(not_a_file("directory")),
            (_, other) => return Err(not_a_file(&other.to_str_lossy())),
        }
        let id = id.to_str_lossy();
        Ok(Some(self.run(&["cat-file", "blob", &id])?))
    }

    /// Write the tree of commit `rev` into `dest` (which must be missing or empty) as plain
    /// files: executable bits kept, symlinks kept as symlinks, submodules left as empty
    /// directories (as a non-recursive clone does), no `.git`. The repository's index, HEAD
    /// and working tree are not touched (a temporary index is used).
    pub fn export_tree(&self, rev: &str, dest: &Path) -> Result<(), GitError> {
        let commit = self.rev_parse(rev)?;
        let export_err = |reason: String| GitError::Export {
            rev: rev.to_string(),
            dest: dest.to_path_buf(),
            reason,
        };
        match std::fs::read_dir(dest) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(export_err(
                        "the directory is not empty; give a new or empty directory".into(),
                    ));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dest)
                    .map_err(|e| export_err(format!("cannot create it: {e}")))?;
            }
            Err(e) => return Err(export_err(format!("cannot read it: {e}"))),
        }
        let dest_abs = std::fs::canonicalize(dest)
            .map_err(|e| export_err(format!("cannot resolve it: {e}")))?;
        let scratch = tempfile::Builder::new()
            .prefix("agent-gate-index-")
            .tempdir()
            .map_err(|e| export_err(format!("cannot create a temporary index: {e}")))?;
        let index = scratch.path().join("index");
        let env = [("GIT_INDEX_FILE", index.as_os_str())];
        self.run_env(&[OsStr::new("read-tree"), OsStr::new(&commit)], &env)?;
        let mut work_tree = OsString::from("--work-tree=");
        work_tree.push(&dest_abs);
        self.run_env(
            &[
                OsStr::new("-c"),
                OsStr::new("core.symlinks=true"),
                &work_tree,
                OsStr::new("checkout-index"),
                OsStr::new("--all"),
                OsStr::new("--force"),
            ],
            &env,
        )?;
        if std::fs::symlink_metadata(dest_abs.join(".git")).is_ok() {
            return Err(export_err(
                "a `.git` appeared in the export; refusing to use it".into(),
            ));
        }
        Ok(())
    }

    /// Fetch `refspecs` from `remote` (a remote name, a URL, or a path to a repository),
    /// without tags or submodules.
    pub fn fetch(&self, remote: &str, refspecs: &[&str]) -> Result<(), GitError> {
        if remote.is_empty() || remote.starts_with('-') || remote.contains('\0') {
            return Err(GitError::BadArgument {
                command: "fetch",
                what: "remote",
                arg: remote.to_string(),
                reason: "a remote must be a name, URL or path that does not start with '-'",
            });
        }
        if let Some(bad) = refspecs.iter().find(|r| r.is_empty() || r.contains('\0')) {
            return Err(GitError::BadArgument {
                command: "fetch",
                what: "refspec",
                arg: (*bad).to_string(),
                reason: "a refspec must be non-empty and contain no NUL",
            });
        }
        let mut args = vec![
            "fetch",
            "--no-tags",
            "--quiet",
            "--no-recurse-submodules",
            "--no-auto-gc",
            "--",
            remote,
        ];
        args.extend_from_slice(refspecs);
        self.run(&args).map(drop)
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
