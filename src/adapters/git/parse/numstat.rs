//! The `git diff --numstat -z` records: [`NumstatEntry`], the line counts (`-` for a binary
//! file), the borrowed record the combined parser reuses, [`parse_numstat_z`] and its
//! inverse [`format_numstat_z`]. It reads nothing
//! else.

use bstr::{BStr, BString};

use super::{Cursor, ParseError, err};

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
pub(super) struct NumstatRecord<'a> {
    pub(super) added: Option<u64>,
    pub(super) deleted: Option<u64>,
    pub(super) path: &'a [u8],
    pub(super) old_path: Option<&'a [u8]>,
}

/// Read one `--numstat -z` record at the cursor.
pub(super) fn numstat_record<'a>(cur: &mut Cursor<'a>) -> Result<NumstatRecord<'a>, ParseError> {
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
