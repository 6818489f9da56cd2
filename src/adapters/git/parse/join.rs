//! Joining the `--raw` and `--numstat` records of one diff into one [`Change`] per path (the
//! types live in the core, `crate::core::change`). The join is strict: the two lists must describe
//! the same paths in the same order, or the whole change is refused — a partial list is
//! never returned. The combined reader applies the same rules as it reads.

use bstr::BStr;

use super::{NumstatEntry, RawEntry};
use crate::core::change::Change;

/// Why the `--raw` and `--numstat` lists of one diff could not be joined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    #[error("--raw lists {raw} paths but --numstat lists {numstat}")]
    Count { raw: usize, numstat: usize },
    #[error("entry {index}: --raw says {raw} but --numstat says {numstat}")]
    Path {
        index: usize,
        raw: String,
        numstat: String,
    },
}

/// A path (and its base-side path) as join errors show it.
pub(super) fn describe(old: Option<&[u8]>, new: &[u8]) -> String {
    match old {
        Some(old) => format!("{:?} -> {:?}", BStr::new(old), BStr::new(new)),
        None => format!("{:?}", BStr::new(new)),
    }
}

/// Join the two lists of one diff, entry by entry (git prints both in the same order).
pub fn join(raw: Vec<RawEntry>, numstat: Vec<NumstatEntry>) -> Result<Vec<Change>, JoinError> {
    if raw.len() != numstat.len() {
        return Err(JoinError::Count {
            raw: raw.len(),
            numstat: numstat.len(),
        });
    }
    let mut changes = Vec::with_capacity(raw.len());
    for (index, (r, n)) in raw.into_iter().zip(numstat).enumerate() {
        let (old_path, path) = match r.dst {
            Some(dst) => (Some(r.src), dst),
            None => (None, r.src),
        };
        if old_path != n.old_path || path != n.path {
            return Err(JoinError::Path {
                index,
                raw: describe(old_path.as_deref().map(Vec::as_slice), &path),
                numstat: describe(n.old_path.as_deref().map(Vec::as_slice), &n.path),
            });
        }
        changes.push(Change {
            kind: r.kind,
            path,
            old_path,
            old_mode: r.old_mode,
            new_mode: r.new_mode,
            added: n.added,
            deleted: n.deleted,
        });
    }
    Ok(changes)
}
