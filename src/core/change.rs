//! A change between a merge base and a head, as the rest of agent-gate sees it: one
//! [`Change`] per path (kind, paths, modes, line counts) and the whole [`ChangeSet`]. Pure
//! data, in the core: the scope assessment and the report read it; the `git` adapter
//! produces it (`git::Git::changes`) and nothing here knows how.

use std::collections::BTreeMap;

use bstr::{BStr, BString};
use serde::Serialize;

/// What happened to one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
    /// Moved (and maybe edited): `old_path` is gone, `path` is new.
    Renamed,
    /// A new file `path` that is a copy of `old_path`; `old_path` itself is unchanged by
    /// this entry (if it changed, it has its own entry).
    Copied,
    /// The kind of object changed (regular file, symlink, submodule), path unchanged.
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

/// Mode of a symbolic link in a git tree.
pub const MODE_SYMLINK: u32 = 0o120_000;
/// Mode of a submodule (gitlink) in a git tree.
pub const MODE_GITLINK: u32 = 0o160_000;
/// Mode of an executable regular file.
pub const MODE_EXECUTABLE: u32 = 0o100_755;
/// Mode of a non-executable regular file.
pub const MODE_REGULAR: u32 = 0o100_644;

impl Change {
    /// Git found no text lines to count (binary content; the content test ignores the
    /// repository's `.gitattributes`, so an agent cannot hide lines by marking files `-diff`).
    pub fn is_binary(&self) -> bool {
        self.added.is_none()
    }
    /// Either side is a symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.new_mode == MODE_SYMLINK || self.old_mode == MODE_SYMLINK
    }
    /// Either side is a submodule (gitlink).
    pub fn is_submodule(&self) -> bool {
        self.new_mode == MODE_GITLINK || self.old_mode == MODE_GITLINK
    }
    /// The head side is a symbolic link: the change adds one, retargets one, renames or
    /// copies one, or turns a file into one. Removing a link, or turning one into a file, is
    /// not adding one.
    pub fn adds_symlink(&self) -> bool {
        self.new_mode == MODE_SYMLINK
    }
    /// The head side is a submodule (gitlink): added, moved to another commit, or put in a
    /// file's place. Removing one is not adding one.
    pub fn adds_submodule(&self) -> bool {
        self.new_mode == MODE_GITLINK
    }
    /// The head side is a binary file (added, changed, renamed or copied); a binary file the
    /// change deletes is not one it adds.
    pub fn adds_binary(&self) -> bool {
        self.is_binary() && self.new_mode != 0 && !self.is_submodule()
    }
    /// A change of the executable bit (not a type change).
    pub fn mode_changed(&self) -> bool {
        self.old_mode != 0
            && self.new_mode != 0
            && self.old_mode != self.new_mode
            && (self.old_mode & 0o170_000) == (self.new_mode & 0o170_000)
    }
    /// The head side is executable and the base side was not (a new executable file counts).
    pub fn made_executable(&self) -> bool {
        self.new_mode == MODE_EXECUTABLE && self.old_mode != MODE_EXECUTABLE
    }
    /// Added plus deleted lines (0 for binary files).
    pub fn lines(&self) -> u64 {
        self.added
            .unwrap_or(0)
            .saturating_add(self.deleted.unwrap_or(0))
    }
    /// Every path whose content this change creates, alters or removes: both sides of a
    /// rename, only the new side of a copy (its source is read, not changed), else `path`.
    pub fn touched_paths(&self) -> Vec<&BStr> {
        match (&self.kind, &self.old_path) {
            (ChangeKind::Renamed, Some(old)) => vec![old.as_ref(), self.path.as_ref()],
            _ => vec![self.path.as_ref()],
        }
    }
}

/// The whole change.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeSet {
    /// The commit the change is computed from: the merge base of base and head; with
    /// several merge bases (criss-cross history), the base itself, against the tree a merge
    /// of the head would make.
    pub merge_base: String,
    /// Every merge base of base and head (several in criss-cross history).
    pub merge_bases: Vec<String>,
    pub head: String,
    pub changes: Vec<Change>,
    /// The target text of every symbolic link the change adds or changes, by its path on
    /// the head side: where it leads decides whether it is a way into a protected path.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub link_targets: BTreeMap<BString, BString>,
}

impl ChangeSet {
    /// Total added plus deleted lines over all changes (binary files count 0).
    pub fn total_lines(&self) -> u64 {
        self.changes
            .iter()
            .fold(0u64, |acc, c| acc.saturating_add(c.lines()))
    }
}
