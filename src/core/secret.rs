//! Hiding secrets in text that leaves the process. What a secret looks like once written
//! (escaped for a workflow command, encoded, split over lines) is the Actions adapter's
//! knowledge; whoever writes text only needs something that hides them, so writers take a
//! [`Redact`] and never the thing that knows the forms.

use std::borrow::Cow;

/// Replaces every secret it knows in a text.
pub trait Redact {
    /// `text` with every known secret replaced; borrowed when there was none.
    fn redact<'a>(&self, text: &'a str) -> Cow<'a, str>;
}
