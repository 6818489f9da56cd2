//! The output of one `git diff --raw --numstat -z`, read straight into [`Change`]s by
//! [`parse_raw_numstat_z`] from the raw and numstat records, and [`DiffError`], its error.
//! The rules of the join (and their messages) are those of [`join`](crate::adapters::git::join); this
//! file only applies them as the records are read.

use bstr::BString;

use super::join::{JoinError, describe};
use super::numstat::numstat_record;
use super::raw::raw_record;
use super::{Cursor, ParseError};
use crate::core::change::Change;

/// Why the output of `git diff --raw --numstat -z` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiffError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Join(#[from] JoinError),
}

/// Parse the output of one `git diff --raw --numstat -z` (every `--raw` record, then every
/// `--numstat` record of the same diff, in the same order) straight into [`Change`]s:
/// the same result as [`parse_raw_z`](super::parse_raw_z) and
/// [`parse_numstat_z`](super::parse_numstat_z) of the two halves followed by
/// [`join`](crate::adapters::git::join), and the same strictness (the halves must list the same paths
/// in the same order, or the whole change is refused), without the intermediate lists: each
/// path is stored once, object ids are checked but not kept.
pub fn parse_raw_numstat_z(input: &[u8]) -> Result<Vec<Change>, DiffError> {
    let mut cur = Cursor { input, pos: 0 };
    let mut changes = Vec::new();
    while cur.peek() == Some(b':') {
        let r = raw_record(&mut cur)?;
        let (old_path, path) = match r.dst {
            Some(dst) => (Some(BString::from(r.src)), BString::from(dst)),
            None => (None, BString::from(r.src)),
        };
        changes.push(Change {
            kind: r.kind,
            path,
            old_path,
            old_mode: r.old_mode,
            new_mode: r.new_mode,
            added: None,
            deleted: None,
        });
    }
    // As `join` does: a parse error anywhere first, then a count mismatch, then the first
    // path that differs.
    let mut index = 0;
    let mut mismatch = None;
    while !cur.at_end() {
        let n = numstat_record(&mut cur)?;
        if mismatch.is_none()
            && let Some(c) = changes.get_mut(index)
        {
            if c.old_path.as_deref().map(Vec::as_slice) == n.old_path && c.path == n.path {
                c.added = n.added;
                c.deleted = n.deleted;
            } else {
                mismatch = Some(JoinError::Path {
                    index,
                    raw: describe(c.old_path.as_deref().map(Vec::as_slice), &c.path),
                    numstat: describe(n.old_path, n.path),
                });
            }
        }
        index += 1;
    }
    if index != changes.len() {
        return Err(JoinError::Count {
            raw: changes.len(),
            numstat: index,
        }
        .into());
    }
    if let Some(mismatch) = mismatch {
        return Err(mismatch.into());
    }
    Ok(changes)
}
