//! Errors of loading a policy: one variant per kind of mistake, each carrying the policy's
//! path, the 1-based line and column (where the YAML parser or the compiler knows them) and
//! what was expected, with their messages and hints. Translating parser errors into these
//! variants is `diagnose`'s job; this module does not parse or compile anything.

use std::fmt::{self, Write as _};

/// A policy that could not be loaded.
///
/// [`Display`](fmt::Display) renders `path:line:column: message`, followed by an indented
/// `hint:` line when there is something more to say. The parts are also available separately
/// ([`PolicyError::path`], [`PolicyError::location`], [`PolicyError::message`],
/// [`PolicyError::hint`]) for annotations such as `::error file=…,line=…,col=…::`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The text is not well-formed YAML (indentation, tabs, quotes, several documents…).
    Syntax {
        path: String,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
        hint: Option<String>,
    },
    /// The text is empty or holds only comments.
    Empty { path: String },
    /// A key that version 1 does not define in this place.
    UnknownKey {
        path: String,
        line: usize,
        column: usize,
        key: String,
        expected: Vec<String>,
    },
    /// A key written twice in the same mapping (`first_line`: where it was first written,
    /// when it could be found).
    DuplicateKey {
        path: String,
        line: usize,
        column: usize,
        key: String,
        first_line: Option<usize>,
    },
    /// A required key is absent.
    MissingKey {
        path: String,
        line: usize,
        column: usize,
        key: String,
    },
    /// A value of the wrong YAML type (a list where a number belongs, …).
    WrongType {
        path: String,
        line: usize,
        column: usize,
        key: Option<String>,
        /// What was there, ready to print: a value in backquotes or a description.
        found: Option<String>,
        expected: String,
    },
    /// A value that is not one of the allowed words.
    UnknownValue {
        path: String,
        line: usize,
        column: usize,
        value: String,
        expected: Vec<String>,
    },
    /// An unquoted value that starts with `*`: YAML reads it as an alias, not as a glob.
    UnquotedGlob {
        path: String,
        line: usize,
        column: usize,
        text: String,
    },
    /// `version` is absent.
    MissingVersion {
        path: String,
        line: usize,
        column: usize,
    },
    /// `version` is not 1.
    UnsupportedVersion {
        path: String,
        line: usize,
        column: usize,
        found: String,
    },
    /// A value of the right type that the policy does not accept (a zero duration, a bad
    /// repository name, an inconsistent pair of limits, …).
    InvalidValue {
        path: String,
        line: usize,
        column: usize,
        key: String,
        found: String,
        expected: String,
    },
    /// A glob the scope engine rejects.
    InvalidGlob {
        path: String,
        line: usize,
        column: usize,
        key: String,
        pattern: String,
        reason: String,
    },
    /// Two checks with the same name.
    DuplicateCheck {
        path: String,
        line: usize,
        column: usize,
        name: String,
        first_line: usize,
    },
    /// The path of the policy itself cannot be made into a protected rule.
    InvalidPath { path: String, reason: String },
    /// The text is larger than a hand-written policy can be (`limit` bytes).
    TooLarge {
        path: String,
        bytes: usize,
        limit: usize,
    },
}

impl PolicyError {
    /// The policy path the error is about, as given to the loader.
    pub fn path(&self) -> &str {
        match self {
            PolicyError::Syntax { path, .. }
            | PolicyError::Empty { path }
            | PolicyError::UnknownKey { path, .. }
            | PolicyError::DuplicateKey { path, .. }
            | PolicyError::MissingKey { path, .. }
            | PolicyError::WrongType { path, .. }
            | PolicyError::UnknownValue { path, .. }
            | PolicyError::UnquotedGlob { path, .. }
            | PolicyError::MissingVersion { path, .. }
            | PolicyError::UnsupportedVersion { path, .. }
            | PolicyError::InvalidValue { path, .. }
            | PolicyError::InvalidGlob { path, .. }
            | PolicyError::DuplicateCheck { path, .. }
            | PolicyError::InvalidPath { path, .. }
            | PolicyError::TooLarge { path, .. } => path,
        }
    }

    /// (line, column) of the error, 1-based, when known.
    pub fn location(&self) -> Option<(usize, usize)> {
        match self {
            PolicyError::Syntax {
                line: Some(line),
                column,
                ..
            } => Some((*line, column.unwrap_or(1))),
            PolicyError::Syntax { line: None, .. }
            | PolicyError::InvalidPath { .. }
            | PolicyError::TooLarge { .. } => None,
            PolicyError::Empty { .. } => Some((1, 1)),
            PolicyError::UnknownKey { line, column, .. }
            | PolicyError::DuplicateKey { line, column, .. }
            | PolicyError::MissingKey { line, column, .. }
            | PolicyError::WrongType { line, column, .. }
            | PolicyError::UnknownValue { line, column, .. }
            | PolicyError::UnquotedGlob { line, column, .. }
            | PolicyError::MissingVersion { line, column, .. }
            | PolicyError::UnsupportedVersion { line, column, .. }
            | PolicyError::InvalidValue { line, column, .. }
            | PolicyError::InvalidGlob { line, column, .. }
            | PolicyError::DuplicateCheck { line, column, .. } => Some((*line, *column)),
        }
    }

    /// What is wrong and what was expected, without the location prefix or the hint.
    pub fn message(&self) -> String {
        match self {
            PolicyError::Syntax { message, .. } => format!("invalid YAML: {message}"),
            PolicyError::Empty { .. } => {
                "the policy is empty: expected a mapping that starts with `version: 1`".into()
            }
            PolicyError::UnknownKey { key, expected, .. } => {
                format!("unknown key `{key}`: expected one of {}", list(expected))
            }
            PolicyError::DuplicateKey { key, .. } => {
                format!("duplicate key `{key}`: each key may appear only once in a mapping")
            }
            PolicyError::MissingKey { key, .. } => format!("missing required key `{key}`"),
            PolicyError::WrongType {
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
            PolicyError::UnknownValue {
                value, expected, ..
            } => {
                format!(
                    "unknown value `{value}`: expected one of {}",
                    list(expected)
                )
            }
            PolicyError::UnquotedGlob { text, .. } => {
                format!(
                    "`{text}` is read by YAML as {}, not as a glob: quote the pattern",
                    yaml_reading(text).unwrap_or("something else")
                )
            }
            PolicyError::MissingVersion { .. } => {
                "missing `version`: expected `version: 1` at the top of the policy".into()
            }
            PolicyError::UnsupportedVersion { found, .. } => {
                format!(
                    "unsupported policy version {found}: expected `version: 1` (the only version this agent-gate reads)"
                )
            }
            PolicyError::InvalidValue {
                key,
                found,
                expected,
                ..
            } => {
                format!("invalid `{key}`: expected {expected}, found `{found}`")
            }
            PolicyError::InvalidGlob {
                key,
                pattern,
                reason,
                ..
            } => {
                format!("invalid glob `{pattern}` in `{key}`: {reason}")
            }
            PolicyError::DuplicateCheck {
                name, first_line, ..
            } => {
                format!(
                    "duplicate check name `{name}` (first used on line {first_line}): expected unique check names"
                )
            }
            PolicyError::InvalidPath { reason, .. } => {
                format!("the policy path cannot be protected: {reason}")
            }
            PolicyError::TooLarge { bytes, limit, .. } => {
                format!(
                    "the policy is {bytes} bytes, over the limit of {limit} bytes for a policy file"
                )
            }
        }
    }

    /// A suggestion of what to write instead, when there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            PolicyError::Syntax { hint, .. } => hint.clone(),
            PolicyError::UnquotedGlob { text, .. } => Some(format!(
                "write \"{text}\" in quotes: an unquoted value that starts with `{}` is {} in YAML",
                text.chars().next().unwrap_or('*'),
                yaml_reading(text).unwrap_or("something else")
            )),
            PolicyError::UnknownKey { key, expected, .. } => {
                closest(key, expected).map(|best| format!("did you mean `{best}`?"))
            }
            PolicyError::UnknownValue { value, expected, .. } => {
                closest(value, expected).map(|best| format!("did you mean `{best}`?"))
            }
            PolicyError::DuplicateKey { first_line: Some(first), .. } => {
                Some(format!("it is first written on line {first}: keep one of the two"))
            }
            PolicyError::DuplicateKey { first_line: None, .. } => Some("keep one of the two entries".into()),
            PolicyError::UnsupportedVersion { found, .. } if found.starts_with('"') => {
                Some("write the number without quotes: `version: 1`".into())
            }
            PolicyError::MissingVersion { .. } => Some("add `version: 1` as the first line".into()),
            PolicyError::TooLarge { .. } => Some(
                "a policy is written by hand: cover paths with globs (`src/**`) instead of listing them one by one".into(),
            ),
            PolicyError::InvalidGlob { pattern, .. } if pattern.starts_with('!') => Some(
                "to keep a path out of scope, list it under `scope.deny` (deny wins over allow); to match a name that starts with `!`, write `\\!`".into(),
            ),
            _ => None,
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location() {
            Some((line, column)) => {
                write!(f, "{}:{line}:{column}: {}", self.path(), self.message())?;
            }
            None => write!(f, "{}: {}", self.path(), self.message())?,
        }
        if let Some(hint) = self.hint() {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

pub(crate) fn list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a typo.
pub(crate) fn closest<'a>(word: &str, candidates: &'a [String]) -> Option<&'a str> {
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
pub(crate) fn yaml_reading(text: &str) -> Option<&'static str> {
    match text.chars().next()? {
        '*' => Some("an alias"),
        '!' => Some("a tag"),
        '&' => Some("an anchor"),
        '{' => Some("a flow mapping"),
        _ => None,
    }
}
