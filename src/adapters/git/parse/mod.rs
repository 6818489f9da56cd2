//! Pure parsers (and their inverse formatters) for the two `-z` outputs of `git diff` that
//! the adapter reads: `--raw` (modes, object ids, status, paths) and `--numstat` (added and
//! deleted lines, `-` for binary files). They never run git and never panic: any byte
//! sequence either parses completely or is a [`ParseError`] naming the byte offset. The
//! adapter asks git for both formats of one diff at once and reads them with
//! [`parse_raw_numstat_z`], which joins the two halves as it goes (by the same rules as
//! [`join()`], which joins two lists read apart). This file holds what the parsers share:
//! [`ParseError`] and the byte cursor.

mod combined;
mod join;
mod numstat;
mod raw;

use bstr::ByteSlice;

pub use combined::{DiffError, parse_raw_numstat_z};
pub use join::{JoinError, join};
pub use numstat::{NumstatEntry, format_numstat_z, parse_numstat_z};
pub use raw::{RawEntry, format_raw_z, parse_raw_z};

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
