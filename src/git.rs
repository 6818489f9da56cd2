//! Adapter for the `git` command line (never libgit2): the change between the merge base of
//! two refs and a head (`-z` output, renames detected, modes, binary files, line counts),
//! reading a file at a ref, and exporting a tree to a directory. It knows nothing of
//! policies, checks or GitHub.
//!
//! STUB CONTRACT: `Git`, `ChangeSet`, `Change`, `ChangeKind`, `GitError` keep these names.

use std::path::{Path, PathBuf};

use bstr::BString;
use serde::Serialize;

/// A git failure, with the command and what git said.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("`git {args}` failed: {stderr}")]
    Command { args: String, stderr: String },
}

/// What happened to one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
    Renamed,
    Copied,
    TypeChanged,
}

/// One changed path between the merge base and the head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub kind: ChangeKind,
    /// The path on the head side (for a deletion: the deleted path).
    pub path: BString,
    /// The path on the base side of a rename or copy.
    pub old_path: Option<BString>,
    /// Octal git modes, e.g. 0o100644; 0 when the side does not exist.
    pub old_mode: u32,
    pub new_mode: u32,
    /// Added/deleted lines; `None` for binary files.
    pub added: Option<u64>,
    pub deleted: Option<u64>,
}

impl Change {
    pub fn is_binary(&self) -> bool {
        self.added.is_none()
    }
    pub fn is_symlink(&self) -> bool {
        self.new_mode == 0o120_000 || self.old_mode == 0o120_000
    }
    pub fn is_submodule(&self) -> bool {
        self.new_mode == 0o160_000 || self.old_mode == 0o160_000
    }
    /// A change of the executable bit (not a type change).
    pub fn mode_changed(&self) -> bool {
        self.old_mode != 0 && self.new_mode != 0 && self.old_mode != self.new_mode && (self.old_mode & 0o170_000) == (self.new_mode & 0o170_000)
    }
}

/// The whole change.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeSet {
    pub merge_base: String,
    pub head: String,
    pub changes: Vec<Change>,
}

/// A repository worked on through the `git` binary.
#[derive(Debug, Clone)]
pub struct Git {
    dir: PathBuf,
}

impl Git {
    pub fn new(dir: impl AsRef<Path>) -> Git {
        Git { dir: dir.as_ref().to_path_buf() }
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
