//! Reading the tree of a commit: one file's content ([`Git::show_file`], used to read the
//! policy from the base ref) and the whole tree as plain files ([`Git::export_tree`], where
//! checks run). Neither consults nor changes the workspace's index, HEAD or working tree.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use bstr::ByteSlice;

use super::error::display_args;
use super::{Git, GitError, ParseError, is_object_id};

impl Git {
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
    /// files: executable bits kept, symlinks kept as symlinks when they resolve inside
    /// `dest` (a link that leads out of it becomes a regular file holding its target text,
    /// so no check reads outside its tree through a link), submodules left as empty
    /// directories (as a non-recursive clone does), no `.git`. The repository's index, HEAD
    /// and working tree are not touched (a temporary index is used). Files are written by
    /// git's parallel checkout, one worker per core: creating files is most of the cost.
    /// `rev` may also be a full object id (of a commit, or of a tree), used as given.
    pub fn export_tree(&self, rev: &str, dest: &Path) -> Result<(), GitError> {
        // An id (e.g. `ChangeSet::head`, already resolved) needs no `rev-parse`: `read-tree`
        // fails on an id that names no tree-ish.
        let commit = if is_object_id(rev) {
            rev.to_string()
        } else {
            self.rev_parse(rev)?
        };
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
        let workers = format!("checkout.workers={}", export_workers());
        self.run_env(
            &[
                OsStr::new("-c"),
                OsStr::new("core.symlinks=true"),
                OsStr::new("-c"),
                OsStr::new(&workers),
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
        neutralize_escaping_symlinks(&dest_abs)
            .map_err(|e| export_err(format!("cannot secure its symbolic links: {e}")))?;
        Ok(())
    }
}

/// Parallel checkout workers for an export: one per core, at most 8 (git writes trees below
/// `checkout.thresholdForParallelism`, 100 files, sequentially anyway).
fn export_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// Replace every symbolic link of the export at `root` whose target lies outside `root`
/// (absolute, `..` above the root, or out through other links) by a regular file holding
/// the link's target text — what git writes with `core.symlinks=false`. Checks may follow
/// links that stay inside their tree, never one that leads out of it (issue 7).
fn neutralize_escaping_symlinks(root: &Path) -> std::io::Result<()> {
    let mut escaping = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                dirs.push(entry.path());
            } else if kind.is_symlink() && escapes(root, &entry.path()) {
                escaping.push(entry.path());
            }
        }
    }
    // Judged all at once, on the tree as exported, then replaced.
    for link in escaping {
        let target = std::fs::read_link(&link)?;
        std::fs::remove_file(&link)?;
        std::fs::write(&link, target.as_os_str().as_bytes())?;
    }
    Ok(())
}

/// Whether following `link` leaves `root` (canonical). A dangling link is judged by its text.
fn escapes(root: &Path, link: &Path) -> bool {
    if let Ok(real) = std::fs::canonicalize(link) {
        return !real.starts_with(root);
    }
    let Ok(target) = std::fs::read_link(link) else {
        return true;
    };
    let Some(rel) = link.parent().and_then(|p| p.strip_prefix(root).ok()) else {
        return true;
    };
    let mut depth = rel.components().count();
    for c in target.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return true,
            },
            Component::RootDir | Component::Prefix(_) => return true,
        }
    }
    false
}
