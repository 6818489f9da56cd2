//! The scope engine: gitignore-semantics rules, rule sets, and the in/out-of-scope decision
//! for one repository path (DESIGN §3). Pure logic: it never touches git, the file system
//! or the policy file; the policy module builds [`Rule`]s from YAML and hands them here.
//!
//! STUB CONTRACT (to be replaced by the real engine; keep these public names):
//! - [`Pattern::new`] parses one gitignore-style rule, rejecting malformed ones.
//! - [`Pattern::is_match`] decides one repository-relative path (bytes, `/`-separated,
//!   no leading `/`), including "a rule that matches a directory covers everything under it".
//! - [`RuleSet`] holds many rules compiled once and answers "which rules match".
//! - [`Scope::decide`] applies protected → deny → `--scope` narrowing → allow.

use bstr::{BStr, ByteSlice};
use serde::Serialize;

/// A rule that could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pattern `{pattern}`: {reason}")]
pub struct PatternError {
    /// The rule text as written.
    pub pattern: String,
    /// What is wrong with it, for a human.
    pub reason: String,
}

/// One compiled gitignore-style rule.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    matcher: globset::GlobMatcher,
}

impl Pattern {
    /// Parse and compile one rule.
    pub fn new(text: &str) -> Result<Pattern, PatternError> {
        let trimmed = text.trim_end_matches('/');
        let anchored = trimmed.contains('/');
        let body = trimmed.trim_start_matches('/');
        let glob = if anchored { body.to_string() } else { format!("**/{body}") };
        let matcher = globset::GlobBuilder::new(&glob)
            .literal_separator(true)
            .build()
            .map_err(|e| PatternError { pattern: text.to_string(), reason: e.kind().to_string() })?
            .compile_matcher();
        Ok(Pattern { text: text.to_string(), matcher })
    }

    /// The rule as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Does this rule match `path` or one of its parent directories?
    pub fn is_match(&self, path: &[u8]) -> bool {
        let path = path.to_str_lossy();
        let mut prefix = path.as_ref();
        loop {
            if self.matcher.is_match(prefix) {
                return true;
            }
            match prefix.rfind('/') {
                Some(i) => prefix = &prefix[..i],
                None => return false,
            }
        }
    }
}

/// Where a rule came from, for reports ("the rule that decided").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RuleOrigin {
    /// Written in the policy file at this 1-based line and column.
    Policy { line: usize, column: usize },
    /// One of the always-protected paths of DESIGN §3.
    AlwaysProtected,
    /// The n-th (0-based) glob of the `scope` input / `--scope`.
    ScopeInput { index: usize },
}

/// A compiled rule and its origin.
#[derive(Debug, Clone)]
pub struct Rule {
    pub pattern: Pattern,
    pub origin: RuleOrigin,
}

/// Rules compiled once, in file order.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

impl RuleSet {
    pub fn new(rules: Vec<Rule>) -> RuleSet {
        RuleSet { rules }
    }
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
    /// Indices of every matching rule, ascending.
    pub fn matches(&self, path: &[u8]) -> Vec<usize> {
        (0..self.rules.len()).filter(|&i| self.rules[i].pattern.is_match(path)).collect()
    }
    /// Index of the last matching rule.
    pub fn last_match(&self, path: &[u8]) -> Option<usize> {
        self.matches(path).last().copied()
    }
}

/// The rule that made a decision, as reports show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    pub text: String,
    pub origin: RuleOrigin,
}

impl RuleRef {
    fn of(rule: &Rule) -> RuleRef {
        RuleRef { text: rule.pattern.as_str().to_string(), origin: rule.origin.clone() }
    }
}

/// Why a path is in or out of scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Reason {
    Protected { rule: RuleRef },
    Denied { rule: RuleRef },
    OutsideScopeInput,
    NoAllowRule,
    AllowedByDefault,
    Allowed { rule: RuleRef },
}

/// The decision for one path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub in_scope: bool,
    #[serde(flatten)]
    pub reason: Reason,
}

/// The always-protected paths of DESIGN §3 (the policy file itself is added by [`Scope::new`]).
pub const ALWAYS_PROTECTED: &[&str] =
    &["/.github/workflows/", "/.github/actions/", "/CODEOWNERS", "/.github/CODEOWNERS", "/docs/CODEOWNERS", "/.gitmodules"];

/// allow + deny + protected (+ optional narrowing), compiled.
#[derive(Debug, Clone)]
pub struct Scope {
    allow: RuleSet,
    deny: RuleSet,
    protected: RuleSet,
    narrow: Option<RuleSet>,
}

impl Scope {
    /// Build a scope. `extra_protected` are the policy's own additions; the always-protected
    /// list and `policy_path` are added here and cannot be removed.
    pub fn new(allow: RuleSet, deny: RuleSet, extra_protected: RuleSet, policy_path: &str) -> Result<Scope, PatternError> {
        let mut protected = Vec::new();
        for p in ALWAYS_PROTECTED {
            protected.push(Rule { pattern: Pattern::new(p)?, origin: RuleOrigin::AlwaysProtected });
        }
        let policy_rule = format!("/{}", policy_path.trim_start_matches('/'));
        protected.push(Rule { pattern: Pattern::new(&policy_rule)?, origin: RuleOrigin::AlwaysProtected });
        protected.extend(extra_protected.rules().iter().cloned());
        Ok(Scope { allow, deny, protected: RuleSet::new(protected), narrow: None })
    }

    /// Narrow the allow set with the `scope` input (intersection).
    pub fn narrowed(&self, globs: &[String]) -> Result<Scope, PatternError> {
        let mut rules = Vec::new();
        for (index, g) in globs.iter().enumerate() {
            rules.push(Rule { pattern: Pattern::new(g)?, origin: RuleOrigin::ScopeInput { index } });
        }
        Ok(Scope { narrow: Some(RuleSet::new(rules)), ..self.clone() })
    }

    pub fn allow(&self) -> &RuleSet {
        &self.allow
    }
    pub fn deny(&self) -> &RuleSet {
        &self.deny
    }
    pub fn protected(&self) -> &RuleSet {
        &self.protected
    }
    pub fn narrow(&self) -> Option<&RuleSet> {
        self.narrow.as_ref()
    }

    /// Decide one path.
    pub fn decide(&self, path: &[u8]) -> Decision {
        let out = |reason| Decision { in_scope: false, reason };
        if let Some(i) = self.protected.last_match(path) {
            return out(Reason::Protected { rule: RuleRef::of(&self.protected.rules()[i]) });
        }
        if let Some(i) = self.deny.last_match(path) {
            return out(Reason::Denied { rule: RuleRef::of(&self.deny.rules()[i]) });
        }
        if let Some(n) = &self.narrow {
            if n.last_match(path).is_none() {
                return out(Reason::OutsideScopeInput);
            }
        }
        if self.allow.is_empty() {
            return Decision { in_scope: true, reason: Reason::AllowedByDefault };
        }
        match self.allow.last_match(path) {
            Some(i) => Decision { in_scope: true, reason: Reason::Allowed { rule: RuleRef::of(&self.allow.rules()[i]) } },
            None => out(Reason::NoAllowRule),
        }
    }
}

/// Display helper for paths that may not be UTF-8.
pub fn display_path(path: &[u8]) -> String {
    BStr::new(path).to_string()
}
