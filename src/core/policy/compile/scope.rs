//! Compiling glob lists into [`RuleSet`]s that remember their line and column (refusing
//! empty patterns, `!` negation and what the scope engine rejects), and the `scope` section
//! into the [`Scope`] and its [`Limits`] (defaults: deny binaries, symlinks, submodules and
//! mode changes). It does not match paths against the rules; `crate::core::scope` does.

use serde_saphyr::{Location, Spanned};

use super::Compiler;
use crate::core::policy::raw::{GlobList, RawScope};
use crate::core::policy::{
    Allowance, Limits, MAX_POLICY_EXPANDED_BYTES, MAX_POLICY_PATTERNS, PolicyError,
};
use crate::core::scope::{Pattern, Rule, RuleOrigin, RuleSet, Scope};
use crate::core::yaml::position;

impl Compiler<'_> {
    /// Compile a glob list into rules that remember their place in the file.
    fn rules(&self, value: Option<Spanned<GlobList>>, key: &str) -> Option<RuleSet> {
        let list = value?;
        let outer = list.referenced;
        let mut rules = Vec::new();
        for item in list.value.into_items() {
            let at = if item.referenced.line() == 0 {
                outer
            } else {
                item.referenced
            };
            let (line, column) = position(at);
            let text = item.value;
            let reject = |reason: String| PolicyError::InvalidGlob {
                path: self.path.to_string(),
                line,
                column,
                key: key.to_string(),
                pattern: text.clone(),
                reason,
            };
            // A rejected glob is recorded and the list goes on (one pass, every error).
            let pattern = if text.trim().is_empty() {
                Err(reject(
                    "the pattern is empty: expected a glob such as `src/**`".into(),
                ))
            } else if text.starts_with('!') {
                Err(reject("`!` negation is not supported".into()))
            } else {
                // Counted before compiling: the caps bound the work, not only the result. A
                // rule over its own limit gets its own error from `Pattern::new`.
                let one = Pattern::expanded_size(&text);
                let total = self.patterns.get().plus(one);
                let over =
                    total.patterns > MAX_POLICY_PATTERNS || total.bytes > MAX_POLICY_EXPANDED_BYTES;
                if over && one.patterns <= Pattern::MAX_EXPANSIONS {
                    Err(PolicyError::TooManyPatterns {
                        path: self.path.to_string(),
                        line,
                        column,
                        key: key.to_string(),
                        limit: MAX_POLICY_PATTERNS,
                        bytes: MAX_POLICY_EXPANDED_BYTES,
                    })
                } else {
                    self.patterns.set(total);
                    Pattern::new(&text).map_err(|e| {
                        let message = e.to_string();
                        let prefix = format!("invalid pattern `{text}`: ");
                        reject(
                            message
                                .strip_prefix(&prefix)
                                .map_or_else(|| message.clone(), str::to_string),
                        )
                    })
                }
            };
            let Some(pattern) = self.keep(pattern) else {
                continue;
            };
            rules.push(Rule {
                pattern,
                origin: RuleOrigin::Policy { line, column },
            });
        }
        Some(RuleSet::new(rules))
    }

    pub(super) fn scope(&self, raw: Option<RawScope>) -> Result<(Scope, Limits), PolicyError> {
        let raw = raw.unwrap_or_default();
        // Each list is compiled (its errors recorded) before the first failure is returned.
        let allow = self.rules(raw.allow, "scope.allow");
        let deny = self.rules(raw.deny, "scope.deny");
        let protected = self.rules(raw.protected, "scope.protected");
        let allow = allow.unwrap_or_default();
        let deny = deny.unwrap_or_default();
        let protected = protected.unwrap_or_default();
        let scope = Scope::new(allow, deny, protected, self.path).map_err(|e| {
            PolicyError::InvalidPath {
                path: self.path.to_string(),
                reason: e.to_string(),
            }
        })?;
        let limits = Limits {
            max_files: raw.max_files,
            max_changed_lines: raw.max_changed_lines,
            binary_files: raw.binary_files.unwrap_or(Allowance::Deny),
            symlinks: raw.symlinks.unwrap_or(Allowance::Deny),
            submodules: raw.submodules.unwrap_or(Allowance::Deny),
            mode_changes: raw.mode_changes.unwrap_or(Allowance::Deny),
        };
        Ok((scope, limits))
    }

    pub(super) fn non_empty_rules(
        &self,
        value: Option<Spanned<GlobList>>,
        key: &str,
        instead: &str,
    ) -> Result<Option<RuleSet>, PolicyError> {
        let at = value.as_ref().map(|v| v.referenced);
        let recorded = self.errors.borrow().len();
        let rules = self.rules(value, key);
        // Empty as written, not emptied by globs already rejected.
        if rules.as_ref().is_some_and(RuleSet::is_empty) && self.errors.borrow().len() == recorded {
            let expected = format!("at least one glob ({instead})");
            return Err(self.invalid(&at.unwrap_or(Location::UNKNOWN), key, "[]", &expected));
        }
        Ok(rules)
    }
}
