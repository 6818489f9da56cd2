//! `owner/repo`: a repository's name as GitHub spells it, parsed once wherever one comes in
//! (the `repository` input, `GITHUB_REPOSITORY`, a policy's `repositories`, a batch
//! manifest, the simulator's `--serve`), so every place agrees on what a repository name is
//! and the rest of the program holds a [`RepoSlug`] rather than a string to split again.
//! GitHub compares the names case-insensitively; the slug keeps them as written.

use std::fmt;
use std::str::FromStr;

/// A repository's `owner/repo`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoSlug {
    owner: String,
    name: String,
}

/// A text that is not `owner/repo` by GitHub's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not `owner/repo`: {why}")]
pub struct SlugError {
    /// The text as given.
    pub text: String,
    /// Which rule it breaks.
    pub why: &'static str,
}

impl RepoSlug {
    /// Parse `owner/repo` by GitHub's rules: the owner 1–39 letters, digits and inner
    /// hyphens (no double hyphen); the repository 1–100 letters, digits, `.`, `-` and `_`,
    /// not `.` or `..`. Surrounding blanks are ignored.
    pub fn parse(text: &str) -> Result<RepoSlug, SlugError> {
        let err = |why| SlugError {
            text: text.to_string(),
            why,
        };
        let trimmed = text.trim();
        let Some((owner, name)) = trimmed.split_once('/') else {
            return Err(err("no `/` between the owner and the repository"));
        };
        if owner.is_empty() || owner.len() > 39 {
            return Err(err("the owner must have 1 to 39 characters"));
        }
        if !owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            || owner.starts_with('-')
            || owner.ends_with('-')
            || owner.contains("--")
        {
            return Err(err(
                "the owner may hold only letters, digits and single inner hyphens",
            ));
        }
        if name.is_empty() || name.len() > 100 {
            return Err(err("the repository name must have 1 to 100 characters"));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            || name == "."
            || name == ".."
        {
            return Err(err(
                "the repository name may hold only letters, digits, `.`, `-` and `_`",
            ));
        }
        Ok(RepoSlug {
            owner: owner.to_string(),
            name: name.to_string(),
        })
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The same repository, as GitHub compares names (case-insensitively).
    pub fn same_as(&self, other: &str) -> bool {
        other.eq_ignore_ascii_case(&self.to_string())
    }
}

impl FromStr for RepoSlug {
    type Err = SlugError;

    fn from_str(s: &str) -> Result<RepoSlug, SlugError> {
        RepoSlug::parse(s)
    }
}

impl fmt::Display for RepoSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}
