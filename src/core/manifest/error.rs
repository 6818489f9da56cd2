//! Errors of loading and planning a manifest: one variant per kind of mistake, each with the
//! manifest's path and the 1-based line and column it is about, and a hint when there is
//! something more to say. What the YAML parser finds is a [`Problem`] (`crate::core::yaml`, told
//! the same way as in a policy). Nothing here parses or compiles a manifest.

use std::fmt::{self, Write as _};

use crate::core::yaml::Problem;

/// A manifest that could not be loaded or planned.
///
/// [`Display`](fmt::Display) renders `path:line:column: message`, then an indented `hint:`
/// line when there is one. The parts are also available separately for annotations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// What the YAML parser found wrong: not well-formed, an unknown, missing or repeated
    /// key, a value of the wrong type, an unquoted glob YAML reads as something else.
    Yaml { path: String, problem: Problem },
    /// The text is empty or holds only comments.
    Empty { path: String },
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
            ManifestError::Yaml { path, .. }
            | ManifestError::Empty { path }
            | ManifestError::MissingVersion { path }
            | ManifestError::UnsupportedVersion { path, .. }
            | ManifestError::InvalidValue { path, .. }
            | ManifestError::DuplicateId { path, .. }
            | ManifestError::DuplicateJob { path, .. }
            | ManifestError::TooManyJobs { path, .. } => path,
        }
    }

    /// (line, column), 1-based; (1, 1) when the YAML parser did not say.
    pub fn location(&self) -> (usize, usize) {
        match self {
            ManifestError::Yaml { problem, .. } => problem.location().unwrap_or((1, 1)),
            ManifestError::Empty { .. } | ManifestError::MissingVersion { .. } => (1, 1),
            ManifestError::UnsupportedVersion { line, column, .. }
            | ManifestError::InvalidValue { line, column, .. }
            | ManifestError::DuplicateId { line, column, .. }
            | ManifestError::DuplicateJob { line, column, .. }
            | ManifestError::TooManyJobs { line, column, .. } => (*line, *column),
        }
    }

    /// What is wrong, without the location or the hint.
    pub fn message(&self) -> String {
        match self {
            ManifestError::Yaml { problem, .. } => problem.message(),
            ManifestError::Empty { .. } => {
                "the manifest is empty: expected a mapping with `version: 1` and `entries`".into()
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
            ManifestError::Yaml { problem, .. } => problem.hint(),
            ManifestError::MissingVersion { .. } => {
                Some("add `version: 1` as the first line".into())
            }
            ManifestError::UnsupportedVersion { found, .. } if found.starts_with('"') => {
                Some("write the number without quotes: `version: 1`".into())
            }
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
