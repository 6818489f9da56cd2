//! Errors of loading a policy: one variant per kind of mistake, each carrying the policy's
//! path, the 1-based line and column (where the YAML parser or the compiler knows them) and
//! what was expected, with their messages and hints. What the YAML parser finds is a
//! [`Problem`] (`crate::core::yaml`, shared with the fleet manifest); this module does not parse
//! or compile anything.

use std::fmt;

use crate::core::yaml::Problem;

/// A policy that could not be loaded.
///
/// [`Display`](fmt::Display) renders `path:line:column: message`, followed by an indented
/// `hint:` line when there is something more to say. The parts are also available separately
/// ([`PolicyError::path`], [`PolicyError::location`], [`PolicyError::message`],
/// [`PolicyError::hint`]) for annotations such as `::error file=…,line=…,col=…::`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// What the YAML parser found wrong: not well-formed, an unknown, missing or repeated
    /// key, a value of the wrong type or word, an unquoted glob YAML reads as something else.
    Yaml { path: String, problem: Problem },
    /// The text is empty or holds only comments.
    Empty { path: String },
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
    /// The policy's globs, `{a,b}` alternatives expanded, are more patterns than a policy
    /// may compile ([`MAX_POLICY_PATTERNS`](crate::core::policy::MAX_POLICY_PATTERNS)); the
    /// location is the rule that went over.
    TooManyPatterns {
        path: String,
        line: usize,
        column: usize,
        key: String,
        limit: usize,
        bytes: usize,
    },
    /// A check with neither `run` nor `github-checks`.
    MissingCommand {
        path: String,
        line: usize,
        column: usize,
        key: String,
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
            PolicyError::Yaml { path, .. }
            | PolicyError::Empty { path }
            | PolicyError::MissingVersion { path, .. }
            | PolicyError::UnsupportedVersion { path, .. }
            | PolicyError::InvalidValue { path, .. }
            | PolicyError::InvalidGlob { path, .. }
            | PolicyError::TooManyPatterns { path, .. }
            | PolicyError::DuplicateCheck { path, .. }
            | PolicyError::MissingCommand { path, .. }
            | PolicyError::InvalidPath { path, .. }
            | PolicyError::TooLarge { path, .. } => path,
        }
    }

    /// (line, column) of the error, 1-based, when known.
    pub fn location(&self) -> Option<(usize, usize)> {
        match self {
            PolicyError::Yaml { problem, .. } => problem.location(),
            PolicyError::InvalidPath { .. } | PolicyError::TooLarge { .. } => None,
            PolicyError::Empty { .. } => Some((1, 1)),
            PolicyError::MissingVersion { line, column, .. }
            | PolicyError::UnsupportedVersion { line, column, .. }
            | PolicyError::InvalidValue { line, column, .. }
            | PolicyError::InvalidGlob { line, column, .. }
            | PolicyError::TooManyPatterns { line, column, .. }
            | PolicyError::DuplicateCheck { line, column, .. }
            | PolicyError::MissingCommand { line, column, .. } => Some((*line, *column)),
        }
    }

    /// What is wrong and what was expected, without the location prefix or the hint.
    pub fn message(&self) -> String {
        match self {
            PolicyError::Yaml { problem, .. } => problem.message(),
            PolicyError::Empty { .. } => {
                "the policy is empty: expected a mapping that starts with `version: 1`".into()
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
            PolicyError::TooManyPatterns {
                key, limit, bytes, ..
            } => {
                format!(
                    "too many glob patterns: with this rule of `{key}` the policy's globs expand \
                     to more than {limit} patterns or {bytes} bytes (each `{{a,b}}` alternative \
                     is a pattern of its own)"
                )
            }
            PolicyError::DuplicateCheck {
                name, first_line, ..
            } => {
                format!(
                    "duplicate check name `{name}` (first used on line {first_line}): expected unique check names"
                )
            }
            PolicyError::MissingCommand { key, .. } => format!(
                "missing `{key}`: a check needs `run:` (a command) or `github-checks:` (the repository's own checks to await)"
            ),
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
            PolicyError::Yaml { problem, .. } => problem.hint(),
            PolicyError::UnsupportedVersion { found, .. } if found.starts_with('"') => {
                Some("write the number without quotes: `version: 1`".into())
            }
            PolicyError::MissingVersion { .. } => Some("add `version: 1` as the first line".into()),
            PolicyError::TooLarge { .. } => Some(
                "a policy is written by hand: cover paths with globs (`src/**`) instead of listing them one by one".into(),
            ),
            PolicyError::TooManyPatterns { .. } => Some(
                "cover paths with wildcards (`src/**`, `*.pem`) instead of listing alternatives one by one".into(),
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
