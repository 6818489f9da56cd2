//! Errors of loading and planning a manifest: one variant per kind of mistake, each with the
//! manifest's path and the 1-based line and column it is about, and a hint when there is
//! something more to say. [`from_yaml_error`] translates the YAML parser's errors into these
//! variants. Nothing here parses or compiles a manifest.

use std::fmt::{self, Write as _};

use serde_saphyr::Error as YamlError;

use crate::policy::{bare_message, closest, human_type, key_before, list};

/// A manifest that could not be loaded or planned.
///
/// [`Display`](fmt::Display) renders `path:line:column: message`, then an indented `hint:`
/// line when there is one. The parts are also available separately for annotations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Not well-formed YAML, or a YAML construct the manifest cannot hold.
    Syntax {
        path: String,
        line: usize,
        column: usize,
        message: String,
        hint: Option<String>,
    },
    /// The text is empty or holds only comments.
    Empty { path: String },
    /// A key version 1 does not define in this place.
    UnknownKey {
        path: String,
        line: usize,
        column: usize,
        key: String,
        expected: Vec<String>,
    },
    /// A required key is absent.
    MissingKey {
        path: String,
        line: usize,
        column: usize,
        key: String,
    },
    /// A key written twice in one mapping.
    DuplicateKey {
        path: String,
        line: usize,
        column: usize,
        key: String,
    },
    /// A value of the wrong YAML type.
    WrongType {
        path: String,
        line: usize,
        column: usize,
        key: Option<String>,
        found: String,
        expected: String,
    },
    /// `version` is absent.
    MissingVersion { path: String },
    /// `version` is not 1.
    UnsupportedVersion {
        path: String,
        line: usize,
        column: usize,
        found: String,
    },
    /// A value of the right type that the manifest does not accept.
    InvalidValue {
        path: String,
        line: usize,
        column: usize,
        key: String,
        found: String,
        expected: String,
    },
    /// Two entries with the same `id`.
    DuplicateId {
        path: String,
        line: usize,
        column: usize,
        id: String,
        first_line: usize,
    },
    /// Two jobs of the plan would share a task key (the same repository twice in one entry,
    /// or two entries without `id` and with the same content).
    DuplicateJob {
        path: String,
        line: usize,
        column: usize,
        repository: String,
        first_line: usize,
    },
    /// More jobs than one GitHub Actions matrix may hold.
    TooManyJobs {
        path: String,
        /// Line of `entries`.
        line: usize,
        column: usize,
        jobs: usize,
        limit: usize,
        /// (entry id, line, jobs) of each entry, in manifest order.
        per_entry: Vec<(Option<String>, usize, usize)>,
    },
}

impl ManifestError {
    /// The manifest path the error is about.
    pub fn path(&self) -> &str {
        match self {
            ManifestError::Syntax { path, .. }
            | ManifestError::Empty { path }
            | ManifestError::UnknownKey { path, .. }
            | ManifestError::MissingKey { path, .. }
            | ManifestError::DuplicateKey { path, .. }
            | ManifestError::WrongType { path, .. }
            | ManifestError::MissingVersion { path }
            | ManifestError::UnsupportedVersion { path, .. }
            | ManifestError::InvalidValue { path, .. }
            | ManifestError::DuplicateId { path, .. }
            | ManifestError::DuplicateJob { path, .. }
            | ManifestError::TooManyJobs { path, .. } => path,
        }
    }

    /// (line, column), 1-based.
    pub fn location(&self) -> (usize, usize) {
        match self {
            ManifestError::Empty { .. } | ManifestError::MissingVersion { .. } => (1, 1),
            ManifestError::Syntax { line, column, .. }
            | ManifestError::UnknownKey { line, column, .. }
            | ManifestError::MissingKey { line, column, .. }
            | ManifestError::DuplicateKey { line, column, .. }
            | ManifestError::WrongType { line, column, .. }
            | ManifestError::UnsupportedVersion { line, column, .. }
            | ManifestError::InvalidValue { line, column, .. }
            | ManifestError::DuplicateId { line, column, .. }
            | ManifestError::DuplicateJob { line, column, .. }
            | ManifestError::TooManyJobs { line, column, .. } => (*line, *column),
        }
    }

    /// What is wrong, without the location or the hint.
    pub fn message(&self) -> String {
        match self {
            ManifestError::Syntax { message, .. } => format!("invalid YAML: {message}"),
            ManifestError::Empty { .. } => {
                "the manifest is empty: expected a mapping with `version: 1` and `entries`".into()
            }
            ManifestError::UnknownKey { key, expected, .. } => {
                format!("unknown key `{key}`: expected one of {}", list(expected))
            }
            ManifestError::MissingKey { key, .. } => format!("missing required key `{key}`"),
            ManifestError::DuplicateKey { key, .. } => {
                format!("duplicate key `{key}`: each key may appear only once in a mapping")
            }
            ManifestError::WrongType {
                key,
                found,
                expected,
                ..
            } => {
                let mut out = String::from("wrong type");
                if let Some(key) = key {
                    let _ = write!(out, " for `{key}`");
                }
                let _ = write!(out, ": expected {expected}, found {found}");
                out
            }
            ManifestError::MissingVersion { .. } => {
                "missing `version`: expected `version: 1` at the top of the manifest".into()
            }
            ManifestError::UnsupportedVersion { found, .. } => format!(
                "unsupported manifest version {found}: expected `version: 1` (the only version this agent-gate reads)"
            ),
            ManifestError::InvalidValue {
                key,
                found,
                expected,
                ..
            } => format!("invalid `{key}`: expected {expected}, found `{found}`"),
            ManifestError::DuplicateId { id, first_line, .. } => format!(
                "duplicate entry id `{id}` (first used on line {first_line}): ids name entries in task keys and must be unique"
            ),
            ManifestError::DuplicateJob {
                repository,
                first_line,
                ..
            } => format!(
                "repository `{repository}` is planned twice with the same task (first on line {first_line}): both jobs would get the same task key"
            ),
            ManifestError::TooManyJobs { jobs, limit, .. } => format!(
                "the plan has {jobs} jobs; a GitHub Actions matrix may hold at most {limit}"
            ),
        }
    }

    /// What to do about it, when there is something to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            ManifestError::Syntax { hint, .. } => hint.clone(),
            ManifestError::UnknownKey { key, expected, .. } => {
                closest(key, expected).map(|best| format!("did you mean `{best}`?"))
            }
            ManifestError::MissingVersion { .. } => {
                Some("add `version: 1` as the first line".into())
            }
            ManifestError::UnsupportedVersion { found, .. } if found.starts_with('"') => {
                Some("write the number without quotes: `version: 1`".into())
            }
            ManifestError::DuplicateKey { .. } => Some("keep one of the two".into()),
            ManifestError::DuplicateId { .. } => Some(
                "give each entry its own id; ids are also what a re-run matches on, so keep them stable"
                    .into(),
            ),
            ManifestError::DuplicateJob { .. } => Some(
                "list each repository once per entry; to run the same instruction twice on a repository, give the entries different `id`s"
                    .into(),
            ),
            ManifestError::TooManyJobs {
                per_entry, limit, ..
            } => {
                let mut out = format!(
                    "split the batch into manifests of at most {limit} jobs each and plan each in its own job (one plan → matrix pair per manifest), for example one manifest per entry or the repositories in groups; jobs per entry:"
                );
                for (id, line, jobs) in per_entry {
                    let id = id.as_ref().map(|i| format!(" (`{i}`)")).unwrap_or_default();
                    let _ = write!(out, "\n    entry on line {line}{id}: {jobs} jobs");
                }
                Some(out)
            }
            _ => None,
        }
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (line, column) = self.location();
        write!(f, "{}:{line}:{column}: {}", self.path(), self.message())?;
        if let Some(hint) = self.hint() {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
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

/// What the value at (line, column) looks like: `a list`, `a mapping`, or the scalar itself.
fn found_at(text: &str, line: usize, column: usize) -> String {
    let rest: String = line
        .checked_sub(1)
        .and_then(|l| text.lines().nth(l))
        .map(|src| src.chars().skip(column.saturating_sub(1)).collect())
        .unwrap_or_default();
    let rest = rest.trim();
    if rest.starts_with('[') || rest.starts_with("- ") || rest == "-" {
        "a list".into()
    } else if rest.starts_with('{') {
        "a mapping".into()
    } else if rest.is_empty() {
        "something else".into()
    } else {
        let token = rest.split(" #").next().unwrap_or(rest).trim_end();
        let mut shown: String = token.chars().take(60).collect();
        if token.chars().count() > 60 {
            shown.push('…');
        }
        format!("`{shown}`")
    }
}

/// Translate a `serde-saphyr` error on the manifest `text` read from `path`.
pub(crate) fn from_yaml_error(err: &YamlError, text: &str, path: &str) -> ManifestError {
    let path = path.to_string();
    let mut err = err.without_snippet();
    while let YamlError::AliasError { error, .. } = err {
        err = error.without_snippet();
    }
    let (line, column) = err.location().map_or((1, 1), position);
    match err {
        YamlError::SerdeUnknownField {
            field, expected, ..
        } => ManifestError::UnknownKey {
            path,
            line,
            column,
            key: field.clone(),
            expected: expected.iter().map(ToString::to_string).collect(),
        },
        YamlError::SerdeMissingField { field, .. } => ManifestError::MissingKey {
            path,
            line,
            column,
            key: (*field).to_string(),
        },
        YamlError::DuplicateMappingKey { key, .. } => ManifestError::DuplicateKey {
            path,
            line,
            column,
            key: key.clone().unwrap_or_default(),
        },
        YamlError::SerdeInvalidType {
            expected,
            unexpected,
            ..
        }
        | YamlError::SerdeInvalidValue {
            expected,
            unexpected,
            ..
        } => ManifestError::WrongType {
            path,
            line,
            column,
            key: key_before(text, line, column),
            found: unexpected.clone(),
            expected: human_type(expected),
        },
        YamlError::Unexpected { expected, .. } => ManifestError::WrongType {
            path,
            line,
            column,
            key: key_before(text, line, column),
            found: found_at(text, line, column),
            expected: human_type(expected),
        },
        YamlError::NullIntoString { .. } => ManifestError::WrongType {
            path,
            line,
            column,
            key: key_before(text, line, column),
            found: "nothing (null)".into(),
            expected: "a string".into(),
        },
        YamlError::UnknownAnchor { .. } => ManifestError::Syntax {
            path,
            line,
            column,
            message: "alias refers to an unknown anchor".into(),
            hint: Some(
                "quote globs that start with `*` (`\"**/*.rs\"`): unquoted, YAML reads them as aliases"
                    .into(),
            ),
        },
        YamlError::MultipleDocuments { .. } => ManifestError::Syntax {
            path,
            line,
            column,
            message: "more than one YAML document".into(),
            hint: Some(
                "a manifest is a single document: remove the `---` separator and what follows it"
                    .into(),
            ),
        },
        other => {
            let message = bare_message(other);
            let hint = if text.lines().any(|l| l.trim_start_matches(' ').starts_with('\t')) {
                Some("indent with spaces: YAML does not allow tabs for indentation".into())
            } else {
                None
            };
            ManifestError::Syntax {
                path,
                line,
                column,
                message,
                hint,
            }
        }
    }
}
