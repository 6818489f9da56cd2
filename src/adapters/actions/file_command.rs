//! Key/value file commands (`GITHUB_OUTPUT`, and the same format for `GITHUB_ENV` and
//! `GITHUB_STATE`): the toolkit's heredoc writer with a random `ghadelimiter_<uuid v4>`
//! checked against name and value, names the runner could misread refused, and the
//! runner's parser (Linux line rules) so tests read files back exactly as the runner
//! will. It never emits the deprecated `::set-output` command.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use uuid::Uuid;

use super::ActionsError;

/// Prefix of every heredoc delimiter, as in the toolkit.
pub const DELIMITER_PREFIX: &str = "ghadelimiter_";

/// Delimiters tried before giving up (a collision of a random v4 UUID is practically
/// impossible, but the check is what makes the format safe).
const DELIMITER_ATTEMPTS: usize = 3;

/// Refuse a name the runner's parser would read back differently: empty, or containing
/// LF, CR, `=` or `<<`, or ending with `<` (which would join the `<<` that follows).
pub fn validate_name(name: &str) -> Result<(), ActionsError> {
    let reason = if name.is_empty() {
        "the name is empty"
    } else if name.contains('\n') || name.contains('\r') {
        "the name contains a line break"
    } else if name.contains('=') {
        "the name contains '='"
    } else if name.contains("<<") || name.ends_with('<') {
        "the name contains '<<' or ends with '<'"
    } else {
        return Ok(());
    };
    Err(ActionsError::InvalidName {
        name: name.to_string(),
        reason,
    })
}

/// The record appended for `name` = `value`: `name<<DELIM\nvalue\nDELIM\n`, with
/// `DELIM = ghadelimiter_<uuid>` from `next_uuid`, drawn again while it occurs in the
/// name or value.
pub fn format_key_value(
    name: &str,
    value: &str,
    mut next_uuid: impl FnMut() -> Uuid,
) -> Result<String, ActionsError> {
    validate_name(name)?;
    for _ in 0..DELIMITER_ATTEMPTS {
        let delimiter = format!("{DELIMITER_PREFIX}{}", next_uuid().hyphenated());
        if name.contains(&delimiter) || value.contains(&delimiter) {
            continue;
        }
        return Ok(format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"));
    }
    Err(ActionsError::DelimiterCollision {
        name: name.to_string(),
        attempts: DELIMITER_ATTEMPTS,
    })
}

/// Append one `name`/`value` record to the key/value file at `file` (which must exist:
/// the runner creates it). The record is written with a single `write` in append mode.
pub fn append_key_value(file: &Path, name: &str, value: &str) -> Result<(), ActionsError> {
    let record = format_key_value(name, value, Uuid::new_v4)?;
    let io = |source| ActionsError::Io {
        path: file.to_path_buf(),
        source,
    };
    let mut handle = OpenOptions::new().append(true).open(file).map_err(io)?;
    handle.write_all(record.as_bytes()).map_err(io)
}

/// Set a step output: append it to the `GITHUB_OUTPUT` file at `file`.
pub fn set_output(file: &Path, name: &str, value: &str) -> Result<(), ActionsError> {
    append_key_value(file, name, value)
}

/// Why the runner would reject a key/value file. Line numbers are 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileCommandParseError {
    /// A non-empty line with neither `=` nor `<<`, or with an empty name or delimiter.
    #[error(
        "line {line}: invalid format {text:?}: expected NAME=VALUE or NAME<<DELIMITER with a non-empty name and delimiter"
    )]
    InvalidFormat {
        /// The line.
        line: usize,
        /// Its text.
        text: String,
    },
    /// The file ended before a line equal to the delimiter.
    #[error(
        "line {line}: the value of {name:?} is never closed: no later line is exactly \
         {delimiter:?} (the runner fails with \"Matching delimiter not found\")"
    )]
    MissingDelimiter {
        /// Line of the `NAME<<DELIMITER` header.
        line: usize,
        /// The name.
        name: String,
        /// The delimiter looked for.
        delimiter: String,
    },
    /// A value line at the end of the file has no newline and is not the delimiter.
    #[error(
        "line {line}: the file ends inside the value of {name:?} without a newline \
         (the runner fails with \"EOF marker missing new line\")"
    )]
    EofMissingNewline {
        /// The unterminated line.
        line: usize,
        /// The name.
        name: String,
    },
}

/// Read a key/value file as the runner does on Linux: lines split on LF only (a CR stays
/// in the text), empty lines skipped; `NAME=VALUE` when the first `=` comes before any
/// `<<`, else `NAME<<DELIM` followed by the value lines up to the first line exactly equal
/// to `DELIM` (the newline before it is not part of the value). Pairs come back in file
/// order; a repeated name appears twice (the runner keeps the last).
pub fn parse_file_command(text: &str) -> Result<Vec<(String, String)>, FileCommandParseError> {
    let mut reader = Lines {
        text,
        index: 0,
        number: 0,
    };
    let mut out = Vec::new();
    while let Some((line, _)) = reader.next_line() {
        if line.is_empty() {
            continue;
        }
        let line_no = reader.number;
        let invalid = || FileCommandParseError::InvalidFormat {
            line: line_no,
            text: line.to_string(),
        };
        let equals = line.find('=');
        let heredoc = line.find("<<");
        match (equals, heredoc) {
            (Some(eq), h) if h.is_none_or(|h| eq < h) => {
                let (name, value) = (&line[..eq], &line[eq + 1..]);
                if name.is_empty() {
                    return Err(invalid());
                }
                out.push((name.to_string(), value.to_string()));
            }
            (_, Some(h)) => {
                let (name, delimiter) = (&line[..h], &line[h + 2..]);
                if name.is_empty() || delimiter.is_empty() {
                    return Err(invalid());
                }
                let start = reader.index;
                let mut end = start;
                loop {
                    match reader.next_line() {
                        None => {
                            return Err(FileCommandParseError::MissingDelimiter {
                                line: line_no,
                                name: name.to_string(),
                                delimiter: delimiter.to_string(),
                            });
                        }
                        Some((value_line, _)) if value_line == delimiter => break,
                        Some((_, false)) => {
                            return Err(FileCommandParseError::EofMissingNewline {
                                line: reader.number,
                                name: name.to_string(),
                            });
                        }
                        Some((_, true)) => end = reader.index - 1,
                    }
                }
                let value = if end > start { &text[start..end] } else { "" };
                out.push((name.to_string(), value.to_string()));
            }
            _ => return Err(invalid()),
        }
    }
    Ok(out)
}

/// The runner's `ReadLine` on Linux: the next line and whether it ended with LF.
struct Lines<'a> {
    text: &'a str,
    index: usize,
    number: usize,
}

impl<'a> Lines<'a> {
    fn next_line(&mut self) -> Option<(&'a str, bool)> {
        let rest = self.text.get(self.index..).filter(|r| !r.is_empty())?;
        self.number += 1;
        if let Some(lf) = rest.find('\n') {
            self.index += lf + 1;
            Some((&rest[..lf], true))
        } else {
            self.index = self.text.len();
            Some((rest, false))
        }
    }
}
