//! The errors of the git adapter: each names the command or ref it is about, carries what
//! git said, and says what to do. It does not decide when they happen.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::PathBuf;

use super::{JoinError, ParseError};

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
    #[error(
        "`git {args}` did not finish within {timeout:?} and was killed (a hung remote, a held \
         lock, or a very large repository: check the remote and raise the timeout); stderr: {stderr}"
    )]
    Timeout {
        args: String,
        timeout: std::time::Duration,
        stderr: String,
    },
    #[error(
        "`{rev}` does not name a commit in {}: check the spelling, or fetch it first \
         (e.g. `git fetch origin <branch>`; with actions/checkout set `fetch-depth: 0`)",
        dir.display()
    )]
    UnknownRef { rev: String, dir: PathBuf },
    #[error(
        "`{name}` is ambiguous in {}: it names {}; give the full ref of the one you mean \
         (e.g. `{}`)",
        dir.display(),
        refs.join(", "),
        refs.iter().find(|r| r.starts_with("refs/heads/")).unwrap_or(&refs[0])
    )]
    AmbiguousRef {
        name: String,
        refs: Vec<String>,
        dir: PathBuf,
    },
    #[error(
        "{} is not inside a git repository: run agent-gate in a clone of the repository \
         (`--repo DIR` names another one; in a workflow, `actions/checkout` with \
         `fetch-depth: 0` comes first)",
        dir.display()
    )]
    NotARepository { dir: PathBuf },
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
        "`{base}` and `{head}` have {} merge bases (criss-cross history: {}) and do not merge \
         cleanly, so the change a merge would apply cannot be known; refusing to judge a diff \
         against any one of them. Merge or rebase `{head}` onto `{base}` first",
        bases.len(),
        bases.iter().map(|b| b.chars().take(12).collect::<String>()).collect::<Vec<_>>().join(", ")
    )]
    AmbiguousMerge {
        base: String,
        head: String,
        bases: Vec<String>,
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

impl GitError {
    /// What git itself said, in one line (its first `fatal:`/`error:` line, else the first
    /// line of its stderr), for messages in user terms; `None` when git did not run or said
    /// nothing.
    pub fn git_says(&self) -> Option<&str> {
        let (GitError::Command { stderr, .. } | GitError::Timeout { stderr, .. }) = self else {
            return None;
        };
        let mut lines = stderr.lines().map(str::trim).filter(|l| !l.is_empty());
        let first = lines.clone().next()?;
        Some(
            lines
                .find(|l| l.starts_with("fatal:") || l.starts_with("error:"))
                .unwrap_or(first),
        )
    }
}

/// Render arguments for a message: plain words as is, anything else quoted.
pub(super) fn display_args(args: &[&OsStr]) -> String {
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
