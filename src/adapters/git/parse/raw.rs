//! The `git diff --raw -z` records: [`RawEntry`], the checks of each header field (modes,
//! object ids, status letter and score, modes against status), the borrowed record the
//! combined parser reuses, [`parse_raw_z`] and its inverse [`format_raw_z`]. It reads
//! nothing else.

use bstr::{BStr, BString};

use super::{Cursor, ParseError, err};
use crate::core::change::ChangeKind;

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

/// The file modes git records in a tree for a blob, symlink or gitlink.
const KNOWN_MODES: [u32; 4] = [0o100_644, 0o100_755, 0o120_000, 0o160_000];

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
pub(super) struct RawRecord<'a> {
    pub(super) old_mode: u32,
    pub(super) new_mode: u32,
    pub(super) old_oid: &'a [u8],
    pub(super) new_oid: &'a [u8],
    pub(super) kind: ChangeKind,
    pub(super) score: Option<u8>,
    pub(super) src: &'a [u8],
    pub(super) dst: Option<&'a [u8]>,
}

/// Read one `--raw -z` record at the cursor (which must be at its `:`).
pub(super) fn raw_record<'a>(cur: &mut Cursor<'a>) -> Result<RawRecord<'a>, ParseError> {
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
