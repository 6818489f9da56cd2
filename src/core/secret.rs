//! Secrets as values: a [`Token`], which never prints, passed from the command line to
//! the one place that sends it (GitHub's `Authorization` header, git's credential for a
//! remote); and hiding secrets in text that leaves the process. What a secret looks like
//! once written (escaped for a workflow command, encoded, split over lines) is the Actions
//! adapter's knowledge; whoever writes text only needs something that hides them, so writers
//! take a [`Redact`] and never the thing that knows the forms.

use std::borrow::Cow;
use std::fmt;

/// Replaces every secret it knows in a text.
pub trait Redact {
    /// `text` with every known secret replaced; borrowed when there was none.
    fn redact<'a>(&self, text: &'a str) -> Cow<'a, str>;
}

/// A token: shown as `***` by `Debug`, never written into errors or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(token: impl Into<String>) -> Token {
        Token(token.into())
    }

    /// A token as a user gives it (an input, a file's line): trimmed; `None` when blank.
    pub fn given(text: &str) -> Option<Token> {
        let text = text.trim();
        (!text.is_empty()).then(|| Token(text.to_string()))
    }

    /// The secret itself, for the places that send it (the `Authorization` header, git's
    /// credential for a remote).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `ghs_…`: a GitHub App installation token (what `GITHUB_TOKEN` is).
    pub fn is_installation_token(&self) -> bool {
        self.0.starts_with("ghs_")
    }
}

impl From<String> for Token {
    fn from(token: String) -> Token {
        Token(token)
    }
}

impl From<&str> for Token {
    fn from(token: &str) -> Token {
        Token(token.to_string())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}
