//! Files the gate writes as root inside directories that belong to someone else — the
//! runner's workspace and `RUNNER_TEMP`, bind-mounted into the container Action — handed
//! back to that owner, so the job's later steps, which run as the runner's user, can still
//! change them (a root-owned `.git/objects/ab/` makes the next `git commit` that needs it
//! fail with "insufficient permission"). Only entries owned by root are re-owned, only when
//! the gate runs as root, and links are re-owned themselves, never followed. It knows
//! nothing of git or of what the files are.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The owner `(uid, gid)` to hand root's files back to under `dir`, when there is one:
/// the gate is root and `dir` belongs to another user.
fn foreign_owner(dir: &Path) -> Option<(u32, u32)> {
    if !rustix::process::geteuid().is_root() {
        return None;
    }
    let meta = std::fs::symlink_metadata(dir).ok()?;
    (meta.uid() != 0).then(|| (meta.uid(), meta.gid()))
}

/// Re-own every root-owned entry below `dir` (not `dir` itself) to `dir`'s owner; returns
/// how many were changed. Nothing happens when the gate is not root or `dir` is root's.
pub fn give_back(dir: &Path) -> io::Result<usize> {
    let Some((uid, gid)) = foreign_owner(dir) else {
        return Ok(0);
    };
    let mut changed = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current)? {
            let entry = entry?;
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path)?;
            if meta.uid() == 0 {
                std::os::unix::fs::lchown(&path, Some(uid), Some(gid))?;
                changed += 1;
            }
            if meta.is_dir() {
                stack.push(path);
            }
        }
    }
    Ok(changed)
}

/// Re-own `path` and the directories between `base` (an ancestor that existed before) and
/// it, where root owns them, to `base`'s owner: for a file the gate has just created, with
/// its parent directories, under a directory of the runner's.
pub fn give_back_path(base: &Path, path: &Path) -> io::Result<()> {
    let Some((uid, gid)) = foreign_owner(base) else {
        return Ok(());
    };
    let Ok(rest) = path.strip_prefix(base) else {
        return Ok(());
    };
    let mut current = base.to_path_buf();
    for component in rest.components() {
        current.push(component);
        let meta = std::fs::symlink_metadata(&current)?;
        if meta.uid() == 0 {
            std::os::unix::fs::lchown(&current, Some(uid), Some(gid))?;
        }
    }
    Ok(())
}

/// The nearest ancestor of `path` (or `path` itself) that exists.
pub fn existing_ancestor(path: &Path) -> Option<&Path> {
    path.ancestors()
        .find(|p| !p.as_os_str().is_empty() && std::fs::symlink_metadata(p).is_ok())
}
