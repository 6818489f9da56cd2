//! Secret masking on our side of the runner: a [`Masker`] holds every secret value the
//! gate knows (tokens), announces each to the runner with `::add-mask::` when asked, and
//! redacts any text before it is printed or written, so no secret reaches stdout, outputs,
//! the summary or other files, in Actions or not. It does not decide what is secret.
//!
//! Every registered value is also masked in the encoded forms the gate itself produces:
//! escaped as command data, escaped as a command property, and escaped inside a JSON
//! string; each line of a multi-line value is masked on its own too (logs are line by
//! line), in the same forms.
//!
//! Values shorter than 4 characters are masked as well: they may hide ordinary text too
//! (`***` in place of every `ab`), which is the safe failure; a real token is never that
//! short, so such a value is more likely a misconfiguration. The mask `***` itself cannot
//! be hidden.

use std::borrow::Cow;
use std::io::{self, Write};

use super::command::{add_mask, escape_data, escape_property};

/// The replacement for every occurrence of a secret.
const MASK: &str = "***";

/// Known secret values and their encoded forms.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    /// Every form to hide, longest first, without duplicates.
    patterns: Vec<String>,
}

impl Masker {
    /// A masker with no secrets.
    pub fn new() -> Masker {
        Masker::default()
    }

    /// Whether no secret is registered.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Remember `secret` (and its encoded forms) for [`Masker::redact`]. Empty values are
    /// ignored. Returns whether anything new was registered.
    pub fn register(&mut self, secret: &str) -> bool {
        if secret.is_empty() {
            return false;
        }
        let mut bases = vec![secret];
        if secret.contains(['\n', '\r']) {
            bases.extend(secret.split(['\n', '\r']));
        }
        let mut forms = Vec::new();
        for base in bases.into_iter().filter(|b| !b.is_empty()) {
            let json = serde_json::to_string(base).unwrap_or_default();
            let json = json
                .get(1..json.len().saturating_sub(1))
                .unwrap_or("")
                .to_string();
            forms.extend([
                base.to_string(),
                escape_data(base),
                escape_property(base),
                json,
            ]);
        }
        let mut added = false;
        for form in forms {
            if !form.is_empty() && form != MASK && !self.patterns.contains(&form) {
                self.patterns.push(form);
                added = true;
            }
        }
        self.patterns.sort_by_key(|p| std::cmp::Reverse(p.len()));
        added
    }

    /// Register `secret` and write the `::add-mask::` lines announcing it to the runner
    /// (one for the value, and one per line of a multi-line value). Call it before
    /// anything else is printed, and only inside Actions: outside, the line itself would
    /// print the secret.
    pub fn add_mask(&mut self, secret: &str, out: &mut impl Write) -> io::Result<()> {
        if !self.register(secret) {
            return Ok(());
        }
        writeln!(out, "{}", add_mask(secret))?;
        if secret.contains('\n') || secret.contains('\r') {
            for line in secret.split(['\n', '\r']).filter(|l| !l.is_empty()) {
                writeln!(out, "{}", add_mask(line))?;
            }
        }
        Ok(())
    }

    /// `text` with every occurrence of every registered form replaced by `***`
    /// (overlapping and adjacent occurrences become one `***`).
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut covered: Vec<(usize, usize)> = Vec::new();
        for pattern in &self.patterns {
            let mut from = 0;
            while let Some(found) = text[from..].find(pattern.as_str()) {
                let start = from + found;
                covered.push((start, start + pattern.len()));
                // Step one character forward so overlapping occurrences are found too.
                from = start + text[start..].chars().next().map_or(1, char::len_utf8);
            }
        }
        if covered.is_empty() {
            return Cow::Borrowed(text);
        }
        covered.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut written = 0;
        let mut iter = covered.into_iter().peekable();
        while let Some((start, mut end)) = iter.next() {
            while let Some(&(next_start, next_end)) = iter.peek() {
                if next_start > end {
                    break;
                }
                end = end.max(next_end);
                iter.next();
            }
            out.push_str(&text[written..start]);
            out.push_str(MASK);
            written = end;
        }
        out.push_str(&text[written..]);
        Cow::Owned(out)
    }
}

impl crate::core::secret::Redact for Masker {
    fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        Masker::redact(self, text)
    }
}
