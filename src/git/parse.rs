//! Pure parsers (and their inverse formatters) for the two `-z` outputs of `git diff` that
//! the adapter reads: `--raw` (modes, object ids, status, paths) and `--numstat` (added and
//! deleted lines, `-` for binary files). They never run git and never panic: any byte
//! sequence either parses completely or is a [`ParseError`] naming the byte offset. Joining
//! the two lists is the business of `change.rs`.

use bstr::{BStr, BString, ByteSlice};

use super::ChangeKind;

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
    fn path(&mut self, what: &str) -> Result<BString, ParseError> {
        let start = self.pos;
        let path = self.until(0, what)?;
        if path.is_empty() {
            return err(start, format!("{what} is empty"));
        }
        Ok(BString::from(path))
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

fn parse_oid(field: &[u8], offset: usize) -> Result<String, ParseError> {
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
    Ok(field.iter().map(|&b| char::from(b)).collect())
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

/// Parse the whole output of `git diff --raw -z`.
pub fn parse_raw_z(input: &[u8]) -> Result<Vec<RawEntry>, ParseError> {
    let mut cur = Cursor { input, pos: 0 };
    let mut entries = Vec::new();
    while !cur.at_end() {
        let start = cur.pos;
        if cur.peek() != Some(b':') {
            return err(start, "expected ':' at the start of a raw diff record");
        }
        cur.pos += 1;
        let header = cur.until(0, "the raw diff header")?;
        let fields: Vec<&[u8]> = header.split(|&b| b == b' ').collect();
        let [old_mode, new_mode, old_oid, new_oid, status] = fields.as_slice() else {
            return err(
                start,
                format!(
                    "expected 5 space-separated fields in the header, found {}",
                    fields.len()
                ),
            );
        };
        let old_mode = parse_mode(old_mode, start)?;
        let new_mode = parse_mode(new_mode, start)?;
        let old_oid = parse_oid(old_oid, start)?;
        let new_oid = parse_oid(new_oid, start)?;
        let (kind, score) = parse_status(status, start)?;
        check_modes(kind, old_mode, new_mode, start)?;
        let src = cur.path("the path")?;
        let dst = match kind {
            ChangeKind::Renamed | ChangeKind::Copied => Some(cur.path("the destination path")?),
            _ => None,
        };
        entries.push(RawEntry {
            old_mode,
            new_mode,
            old_oid,
            new_oid,
            kind,
            score,
            src,
            dst,
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

/// Parse the whole output of `git diff --numstat -z`.
pub fn parse_numstat_z(input: &[u8]) -> Result<Vec<NumstatEntry>, ParseError> {
    let mut cur = Cursor { input, pos: 0 };
    let mut entries = Vec::new();
    while !cur.at_end() {
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
        entries.push(NumstatEntry {
            added,
            deleted,
            path,
            old_path,
        });
    }
    Ok(entries)
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
