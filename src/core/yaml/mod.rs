//! Mistakes in the YAML files people write for agent-gate — the policy and the fleet
//! manifest — told the same way: a [`Problem`] is what the YAML parser found wrong (not
//! well-formed, an unknown or missing key, a value of the wrong type, the classic traps of
//! unquoted globs), located by line and column and worded for the author, with a hint when
//! there is something to do. `from_str` parses such a file (lone carriage returns refused,
//! the parser options fixed) and `diagnose` turns `serde-saphyr` errors into problems; the
//! policy and the manifest wrap them in their own errors with the file's path. What a value
//! must look like once it parses (a duration, a repository name, a glob) is each file's own
//! compiler's business, not this module's. Also the small shared pieces of reading such a
//! file: blank files, locations, lists of words and "did you mean".

mod diagnose;

use std::fmt::Write as _;

use diagnose::from_yaml_error;
pub(crate) use diagnose::token_at;

/// What the YAML parser found wrong in a file, located (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The text is not well-formed YAML (indentation, tabs, quotes, several documents…);
    /// the parser does not always say where.
    Syntax {
        line: Option<usize>,
        column: Option<usize>,
        message: String,
        hint: Option<String>,
    },
    /// A key the file's format does not define in this place.
    UnknownKey {
        line: usize,
        column: usize,
        key: String,
        expected: Vec<String>,
    },
    /// A key written twice in the same mapping (`first_line`: where it was first written,
    /// when it could be found).
    DuplicateKey {
        line: usize,
        column: usize,
        key: String,
        first_line: Option<usize>,
    },
    /// A required key is absent.
    MissingKey {
        line: usize,
        column: usize,
        key: String,
    },
    /// A value of the wrong YAML type (a list where a number belongs, …).
    WrongType {
        line: usize,
        column: usize,
        key: Option<String>,
        /// What was there, ready to print: a value in backquotes or a description.
        found: Option<String>,
        expected: String,
    },
    /// A value that is not one of the allowed words.
    UnknownValue {
        line: usize,
        column: usize,
        value: String,
        expected: Vec<String>,
    },
    /// An unquoted value that starts with `*`, `!`, `&` or `{`: YAML reads it as an alias,
    /// a tag, an anchor or a mapping, not as a glob.
    UnquotedGlob {
        line: usize,
        column: usize,
        text: String,
    },
}

impl Problem {
    /// (line, column), 1-based, when known.
    pub fn location(&self) -> Option<(usize, usize)> {
        match self {
            Problem::Syntax {
                line: Some(line),
                column,
                ..
            } => Some((*line, column.unwrap_or(1))),
            Problem::Syntax { line: None, .. } => None,
            Problem::UnknownKey { line, column, .. }
            | Problem::DuplicateKey { line, column, .. }
            | Problem::MissingKey { line, column, .. }
            | Problem::WrongType { line, column, .. }
            | Problem::UnknownValue { line, column, .. }
            | Problem::UnquotedGlob { line, column, .. } => Some((*line, *column)),
        }
    }

    /// What is wrong and what was expected, without the location or the hint.
    pub fn message(&self) -> String {
        match self {
            Problem::Syntax { message, .. } => format!("invalid YAML: {message}"),
            Problem::UnknownKey { key, expected, .. } => {
                format!("unknown key `{key}`: expected one of {}", list(expected))
            }
            Problem::DuplicateKey { key, .. } => {
                format!("duplicate key `{key}`: each key may appear only once in a mapping")
            }
            Problem::MissingKey { key, .. } => format!("missing required key `{key}`"),
            Problem::WrongType {
                key,
                found,
                expected,
                ..
            } => {
                let mut out = String::from("wrong type");
                if let Some(key) = key {
                    let _ = write!(out, " for `{key}`");
                }
                let _ = write!(out, ": expected {expected}");
                if let Some(found) = found {
                    let _ = write!(out, ", found {found}");
                }
                out
            }
            Problem::UnknownValue {
                value, expected, ..
            } => format!(
                "unknown value `{value}`: expected one of {}",
                list(expected)
            ),
            Problem::UnquotedGlob { text, .. } => format!(
                "`{text}` is read by YAML as {}, not as a glob: quote the pattern",
                yaml_reading(text).unwrap_or("something else")
            ),
        }
    }

    /// What to do about it, when there is something to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            Problem::Syntax { hint, .. } => hint.clone(),
            Problem::UnquotedGlob { text, .. } => Some(format!(
                "write \"{text}\" in quotes: an unquoted value that starts with `{}` is {} in YAML",
                text.chars().next().unwrap_or('*'),
                yaml_reading(text).unwrap_or("something else")
            )),
            Problem::UnknownKey { key, expected, .. } => {
                closest(key, expected).map(|best| format!("did you mean `{best}`?"))
            }
            Problem::UnknownValue {
                value, expected, ..
            } => closest(value, expected).map(|best| format!("did you mean `{best}`?")),
            Problem::DuplicateKey {
                first_line: Some(first),
                ..
            } => Some(format!(
                "it is first written on line {first}: keep one of the two"
            )),
            Problem::DuplicateKey {
                first_line: None, ..
            } => Some("keep one of the two entries".into()),
            Problem::MissingKey { .. } | Problem::WrongType { .. } => None,
        }
    }
}

/// Parse `text`, a YAML file of the kind `document` names (`policy`, `manifest`: it appears
/// in hints), the way every agent-gate YAML file is read: refused at a lone carriage return,
/// parsed with [`options`], and a parser error told as a [`Problem`].
pub(crate) fn from_str<T: serde::de::DeserializeOwned>(
    text: &str,
    document: &str,
) -> Result<T, Problem> {
    if let Some(problem) = lone_carriage_return(text) {
        return Err(problem);
    }
    serde_saphyr::from_str_with_options(text, options())
        .map_err(|e| from_yaml_error(&e, text, document))
}

/// The parser options every agent-gate YAML file is read with: no source snippets in
/// errors (the messages quote what they need), and only `true`/`false` as booleans.
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        with_snippet: false,
        strict_booleans: true,
    }
}

/// Whether `text` holds only whitespace, comments, document markers and directives.
pub(crate) fn is_blank(text: &str) -> bool {
    first_content_line(text).is_none()
}

/// The 1-based line of the first thing that is not blank, a comment, a document marker or
/// a directive.
pub(crate) fn first_content_line(text: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let t = l.trim();
            !(t.is_empty() || t.starts_with('#') || t == "---" || t == "..." || t.starts_with('%'))
        })
        .map(|i| i + 1)
}

/// The first carriage return that is not part of a CRLF line ending, as a problem. YAML
/// counts a lone CR as a line break; `git diff`, GitHub's annotations and most tools do
/// not, so every line number after one would point at the wrong line. Files are refused
/// before parsing, located in lines as those tools count them.
fn lone_carriage_return(text: &str) -> Option<Problem> {
    let (at, _) = text
        .match_indices('\r')
        .find(|&(i, _)| !text[i + 1..].starts_with('\n'))?;
    let before = &text[..at];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Some(Problem::Syntax {
        line: Some(before.matches('\n').count() + 1),
        column: Some(text[line_start..at].chars().count() + 1),
        message: "a carriage return (`\\r`) that is not followed by a line feed".into(),
        hint: Some(
            "save the file with LF (or CRLF) line endings: YAML reads a lone CR as a line break, git and GitHub do not"
                .into(),
        ),
    })
}

/// A 1-based (line, column) from a parser location; (1, 1) when unknown.
pub(crate) fn position(location: serde_saphyr::Location) -> (usize, usize) {
    let line = usize::try_from(location.line()).unwrap_or(0);
    let column = usize::try_from(location.column()).unwrap_or(0);
    if line == 0 {
        (1, 1)
    } else {
        (line, column.max(1))
    }
}

/// `a`, `b`, `c` — each item in backquotes.
fn list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a typo.
fn closest<'a>(word: &str, candidates: &'a [String]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d > 0 && *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// How YAML reads an unquoted value that starts with this character, when that is a trap
/// for a glob.
fn yaml_reading(text: &str) -> Option<&'static str> {
    match text.chars().next()? {
        '*' => Some("an alias"),
        '!' => Some("a tag"),
        '&' => Some("an anchor"),
        '{' => Some("a flow mapping"),
        _ => None,
    }
}
