//! Pure parsers (and their inverse formatters) for the two `-z` outputs of `git diff` that
//! the adapter reads: `--raw` (modes, object ids, status, paths) and `--numstat` (added and
//! deleted lines, `-` for binary files). They never run git and never panic: any byte
//! sequence either parses completely or is a [`ParseError`] naming the byte offset. The
//! adapter asks git for both formats of one diff at once and reads them with
//! [`parse_raw_numstat_z`], which joins the two halves as it goes (the rules of the join
//! are `change.rs`'s, shared with [`join`](super::join)).

use bstr::{BStr, BString, ByteSlice};

use super::change::{JoinError, describe};
use crate::change::{Change, ChangeKind};

/// Output of `git diff` that does not have the documented shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at byte {offset}: {message}")]
pub struct ParseError {
    /// Offset in the input where the problem starts.
    pub offset: usize,
    /// What was found and what was expected.
    pub message: String,
}

fn err<T>(offset: usize, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        offset,
        message: message.into(),
    })
}

/// One record of `git diff --raw -z`:
/// `:<old mode> <new mode> <old id> <new id> <status>[score]\0<src>\0[<dst>\0]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    /// Octal mode on the base side; 0 when the path does not exist there.
    pub old_mode: u32,
    /// Octal mode on the head side; 0 when the path does not exist there.
    pub new_mode: u32,
    /// Object id on the base side (all zeros when absent).
    pub old_oid: String,
    /// Object id on the head side (all zeros when absent).
    pub new_oid: String,
    pub kind: ChangeKind,
    /// Similarity percentage of a rename or copy (dissimilarity of a broken modification).
    pub score: Option<u8>,
    /// The first path: the base side of a rename or copy, otherwise the only path.
    pub src: BString,
    /// The second path: the head side of a rename or copy; `None` for every other kind.
    pub dst: Option<BString>,
}

/// One record of `git diff --numstat -z`: `<added>\t<deleted>\t<path>\0`, or for a rename
/// or copy `<added>\t<deleted>\t\0<old>\0<new>\0`; both counts are `-` for a binary file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumstatEntry {
    /// Added lines; `None` for a binary file.
    pub added: Option<u64>,
    /// Deleted lines; `None` for a binary file.
    pub deleted: Option<u64>,
    /// The head-side path (the only path unless renamed or copied).
    pub path: BString,
    /// The base-side path of a rename or copy.
    pub old_path: Option<BString>,
}

/// The file modes git records in a tree for a blob, symlink or gitlink.
const KNOWN_MODES: [u32; 4] = [0o100_644, 0o100_755, 0o120_000, 0o160_000];

/// A cursor over the input that knows its offset.
struct Cursor<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn at_end(&self) -> bool {
        self.pos >= self.input.len()
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    /// The bytes up to (not including) `end`, consuming the terminator.
    fn until(&mut self, end: u8, what: &str) -> Result<&'a [u8], ParseError> {
        let rest = &self.input[self.pos..];
        match rest.find_byte(end) {
            Some(n) => {
                let field = &rest[..n];
                self.pos += n + 1;
                Ok(field)
            }
            None => err(
                self.pos,
                format!("{what} is not terminated by {:?}", char::from(end)),
            ),
        }
    }

    /// A NUL-terminated path, which must not be empty.
    fn path(&mut self, what: &str) -> Result<&'a [u8], ParseError> {
        let start = self.pos;
        let path = self.until(0, what)?;
        if path.is_empty() {
            return err(start, format!("{what} is empty"));
        }
        Ok(path)
    }
}

fn parse_mode(field: &[u8], offset: usize) -> Result<u32, ParseError> {
    if field.len() != 6 || !field.iter().all(|b| (b'0'..=b'7').contains(b)) {
        return err(
            offset,
            format!(
                "expected a six-digit octal mode, found {:?}",
                BStr::new(field)
            ),
        );
    }
    let mode = field
        .iter()
        .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
    if mode != 0 && !KNOWN_MODES.contains(&mode) {
        return err(offset, format!("unknown file mode {mode:06o}"));
    }
    Ok(mode)
}

fn check_oid(field: &[u8], offset: usize) -> Result<(), ParseError> {
    if !(4..=64).contains(&field.len())
        || !field
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    {
        return err(
            offset,
            format!(
                "expected a hexadecimal object id, found {:?}",
                BStr::new(field)
            ),
        );
    }
    Ok(())
}

/// A checked object id as text.
fn hex(field: &[u8]) -> String {
    field.iter().map(|&b| char::from(b)).collect()
}

fn parse_status(field: &[u8], offset: usize) -> Result<(ChangeKind, Option<u8>), ParseError> {
    let Some((&letter, digits)) = field.split_first() else {
        return err(offset, "the status is empty");
    };
    let kind = match letter {
        b'A' => ChangeKind::Added,
        b'C' => ChangeKind::Copied,
        b'D' => ChangeKind::Deleted,
        b'M' => ChangeKind::Modified,
        b'R' => ChangeKind::Renamed,
        b'T' => ChangeKind::TypeChanged,
        b'U' => {
            return err(
                offset,
                "status U (unmerged) cannot appear between two commits",
            );
        }
        other => {
            return err(
                offset,
                format!("unknown status letter {:?}", char::from(other)),
            );
        }
    };
    let score = if digits.is_empty() {
        None
    } else {
        if digits.len() > 3 || !digits.iter().all(u8::is_ascii_digit) {
            return err(
                offset,
                format!("bad score in status {:?}", BStr::new(field)),
            );
        }
        let value = digits
            .iter()
            .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'));
        match u8::try_from(value) {
            Ok(v) if v <= 100 => Some(v),
            _ => {
                return err(
                    offset,
                    format!("score above 100 in status {:?}", BStr::new(field)),
                );
            }
        }
    };
    match (kind, score) {
        (ChangeKind::Renamed | ChangeKind::Copied, None) => {
            err(offset, "a rename or copy status carries no score")
        }
        (ChangeKind::Added | ChangeKind::Deleted | ChangeKind::TypeChanged, Some(_)) => err(
            offset,
            format!("status {:?} cannot carry a score", BStr::new(field)),
        ),
        _ => Ok((kind, score)),
    }
}

/// Check that the modes agree with the status (an addition has no old side, and so on).
fn check_modes(kind: ChangeKind, old: u32, new: u32, offset: usize) -> Result<(), ParseError> {
    let ok = match kind {
        ChangeKind::Added => old == 0 && new != 0,
        ChangeKind::Deleted => old != 0 && new == 0,
        ChangeKind::Modified
        | ChangeKind::Renamed
        | ChangeKind::Copied
        | ChangeKind::TypeChanged => old != 0 && new != 0,
    };
    if ok {
        Ok(())
    } else {
        err(
            offset,
            format!("modes {old:06o} -> {new:06o} do not fit a change of kind {kind:?}"),
        )
    }
}

/// One raw record, borrowed from the input.
struct RawRecord<'a> {
    old_mode: u32,
    new_mode: u32,
    old_oid: &'a [u8],
    new_oid: &'a [u8],
    kind: ChangeKind,
    score: Option<u8>,
    src: &'a [u8],
    dst: Option<&'a [u8]>,
}

/// Read one `--raw -z` record at the cursor (which must be at its `:`).
fn raw_record<'a>(cur: &mut Cursor<'a>) -> Result<RawRecord<'a>, ParseError> {
    let start = cur.pos;
    if cur.peek() != Some(b':') {
        return err(start, "expected ':' at the start of a raw diff record");
    }
    cur.pos += 1;
    let header = cur.until(0, "the raw diff header")?;
    let mut fields = header.split(|&b| b == b' ');
    let mut field = || fields.next();
    let (Some(old_mode), Some(new_mode), Some(old_oid), Some(new_oid), Some(status), None) =
        (field(), field(), field(), field(), field(), field())
    else {
        return err(
            start,
            format!(
                "expected 5 space-separated fields in the header, found {}",
                header.split(|&b| b == b' ').count()
            ),
        );
    };
    let old_mode = parse_mode(old_mode, start)?;
    let new_mode = parse_mode(new_mode, start)?;
    check_oid(old_oid, start)?;
    check_oid(new_oid, start)?;
    let (kind, score) = parse_status(status, start)?;
    check_modes(kind, old_mode, new_mode, start)?;
    let src = cur.path("the path")?;
    let dst = match kind {
        ChangeKind::Renamed | ChangeKind::Copied => Some(cur.path("the destination path")?),
        _ => None,
    };
    Ok(RawRecord {
        old_mode,
        new_mode,
        old_oid,
        new_oid,
        kind,
        score,
        src,
        dst,
    })
}

/// Parse the whole output of `git diff --raw -z`.
pub fn parse_raw_z(input: &[u8]) -> Result<Vec<RawEntry>, ParseError> {
    let mut cur = Cursor { input, pos: 0 };
    let mut entries = Vec::new();
    while !cur.at_end() {
        let r = raw_record(&mut cur)?;
        entries.push(RawEntry {
            old_mode: r.old_mode,
            new_mode: r.new_mode,
            old_oid: hex(r.old_oid),
            new_oid: hex(r.new_oid),
            kind: r.kind,
            score: r.score,
            src: BString::from(r.src),
            dst: r.dst.map(BString::from),
        });
    }
    Ok(entries)
}

fn parse_count(field: &[u8], offset: usize) -> Result<Option<u64>, ParseError> {
    if field == b"-" {
        return Ok(None);
    }
    if field.is_empty() || !field.iter().all(u8::is_ascii_digit) {
        return err(
            offset,
            format!("expected a line count or '-', found {:?}", BStr::new(field)),
        );
    }
    let mut value: u64 = 0;
    for &b in field {
        value = match value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
        {
            Some(v) => v,
            None => return err(offset, "line count overflows"),
        };
    }
    Ok(Some(value))
}

/// One numstat record, borrowed from the input.
struct NumstatRecord<'a> {
    added: Option<u64>,
    deleted: Option<u64>,
    path: &'a [u8],
    old_path: Option<&'a [u8]>,
}

/// Read one `--numstat -z` record at the cursor.
fn numstat_record<'a>(cur: &mut Cursor<'a>) -> Result<NumstatRecord<'a>, ParseError> {
    let start = cur.pos;
    let added = parse_count(cur.until(b'\t', "the added-lines count")?, start)?;
    let deleted = parse_count(cur.until(b'\t', "the deleted-lines count")?, start)?;
    if added.is_some() != deleted.is_some() {
        return err(start, "one line count is '-' (binary) and the other is not");
    }
    let (path, old_path) = if cur.peek() == Some(0) {
        cur.pos += 1;
        let old = cur.path("the rename source path")?;
        let new = cur.path("the rename destination path")?;
        (new, Some(old))
    } else {
        (cur.path("the path")?, None)
    };
    Ok(NumstatRecord {
        added,
        deleted,
        path,
        old_path,
    })
}

/// Parse the whole output of `git diff --numstat -z`.
pub fn parse_numstat_z(input: &[u8]) -> Result<Vec<NumstatEntry>, ParseError> {
    let mut cur = Cursor { input, pos: 0 };
    let mut entries = Vec::new();
    while !cur.at_end() {
        let n = numstat_record(&mut cur)?;
        entries.push(NumstatEntry {
            added: n.added,
            deleted: n.deleted,
            path: BString::from(n.path),
            old_path: n.old_path.map(BString::from),
        });
    }
    Ok(entries)
}

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
/// the same result as [`parse_raw_z`] and [`parse_numstat_z`] of the two halves followed by
/// [`join`](super::join), and the same strictness (the halves must list the same paths in
/// the same order, or the whole change is refused), without the intermediate lists: each
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

/// Write entries exactly as `git diff --raw -z --no-abbrev` does (the inverse of
/// [`parse_raw_z`], used by tests and fuzzers).
pub fn format_raw_z(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let letter = match e.kind {
            ChangeKind::Added => 'A',
            ChangeKind::Copied => 'C',
            ChangeKind::Deleted => 'D',
            ChangeKind::Modified => 'M',
            ChangeKind::Renamed => 'R',
            ChangeKind::TypeChanged => 'T',
        };
        let score = e.score.map(|s| format!("{s:03}")).unwrap_or_default();
        out.extend_from_slice(
            format!(
                ":{:06o} {:06o} {} {} {letter}{score}\0",
                e.old_mode, e.new_mode, e.old_oid, e.new_oid
            )
            .as_bytes(),
        );
        out.extend_from_slice(&e.src);
        out.push(0);
        if let Some(dst) = &e.dst {
            out.extend_from_slice(dst);
            out.push(0);
        }
    }
    out
}

/// Write entries exactly as `git diff --numstat -z` does (the inverse of
/// [`parse_numstat_z`]).
pub fn format_numstat_z(entries: &[NumstatEntry]) -> Vec<u8> {
    let count = |n: Option<u64>| n.map_or_else(|| "-".to_string(), |n| n.to_string());
    let mut out = Vec::new();
    for e in entries {
        out.extend_from_slice(format!("{}\t{}\t", count(e.added), count(e.deleted)).as_bytes());
        if let Some(old) = &e.old_path {
            out.push(0);
            out.extend_from_slice(old);
            out.push(0);
        }
        out.extend_from_slice(&e.path);
        out.push(0);
    }
    out
}
