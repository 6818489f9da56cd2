//! The scope engine: gitignore-semantics rules, rule sets, and the in/out-of-scope decision
//! for one repository path (DESIGN §3). Pure logic: it never touches git, the file system
//! or the policy file; the policy module builds [`Rule`]s from YAML and hands them here.
//!
//! It reads a rule as git does (wildmatch, trailing spaces, `{a,b}`, anchoring, "a rule that
//! matches a directory covers everything below it"), compiles many rules into one matcher
//! for "the last matching rule", and owns [`RuleSet`], [`Scope`] and its [`Decision`]s:
//! protected → deny → `--scope` narrowing → allow. A scope also compiles protected, deny and
//! allow as one list (allow first, protected last), so that one walk over a path finds the
//! rule that decides it.
//!
//! The rules are documented for users in `docs/scope.md`.

mod rule;
mod set;
mod wildmatch;

use std::sync::{Arc, OnceLock};

use bstr::BStr;
use serde::Serialize;

pub use rule::{ExpandedSize, Pattern};
pub use wildmatch::Wildmatch;

use set::{Batch, Matcher, Slot, par_map_chunks};

/// A rule that could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pattern `{pattern}`: {reason}")]
pub struct PatternError {
    /// The rule text as written.
    pub pattern: String,
    /// What is wrong with it, for a human.
    pub reason: String,
}

/// Where a rule came from, for reports ("the rule that decided").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RuleOrigin {
    /// Written in the policy file at this 1-based line and column.
    Policy { line: usize, column: usize },
    /// One of the always-protected paths of DESIGN §3 (also the policy file itself).
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

/// Rules in file order, compiled once into one matcher for the whole list the first time
/// the list is asked about a path (or by [`RuleSet::compiled`]): a list that is only read,
/// as a scope's own lists are, costs no compilation.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    /// Inner `None` only if the combined matcher could not be built (regex size limits);
    /// then each rule's own matcher answers, slower but the same.
    matcher: OnceLock<Option<Matcher>>,
}

impl RuleSet {
    /// A list of rules (each validated by [`Pattern::new`]), compiled together on first use.
    pub fn new(rules: Vec<Rule>) -> RuleSet {
        RuleSet {
            rules,
            matcher: OnceLock::new(),
        }
    }

    /// [`RuleSet::new`], compiled now rather than on the first query.
    pub fn compiled(rules: Vec<Rule>) -> RuleSet {
        let set = RuleSet::new(rules);
        set.matcher();
        set
    }

    fn matcher(&self) -> Option<&Matcher> {
        self.matcher
            .get_or_init(|| Matcher::build(self.rules.iter().map(|r| r.pattern.expansions())).ok())
            .as_ref()
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Indices of every rule that matches `path` (itself or through a parent directory),
    /// ascending, each once.
    pub fn matches(&self, path: &[u8]) -> Vec<usize> {
        match self.matcher() {
            Some(m) => m.matches(path),
            None => (0..self.rules.len())
                .filter(|&i| self.rules[i].pattern.is_match(path))
                .collect(),
        }
    }

    /// Index of the last matching rule (the one that decides, as in gitignore).
    pub fn last_match(&self, path: &[u8]) -> Option<usize> {
        match self.matcher() {
            Some(m) => m.last_match(path, &mut Vec::new()),
            None => self.rules.iter().rposition(|r| r.pattern.is_match(path)),
        }
    }

    /// [`RuleSet::last_match`] for many paths at once, on every core, matching each parent
    /// directory once however many paths share it. Results are in input order.
    pub fn last_match_many<P: AsRef<[u8]> + Sync>(&self, paths: &[P]) -> Vec<Option<usize>> {
        par_map_chunks(paths, |chunk| {
            let mut query = Queries::new(&[self], chunk.len());
            chunk
                .iter()
                .map(|p| {
                    let path = p.as_ref();
                    let slot = query.directory(path);
                    query.last_match(0, path, slot)
                })
                .collect()
        })
    }
}

/// Batch query state of one or more [`RuleSet`]s on one thread: one directory memory for
/// all of them.
struct Queries<'s, 'p> {
    sets: Vec<&'s RuleSet>,
    /// Each set's matcher in `batch` (`None`: the set is empty or has no combined matcher).
    in_batch: Vec<Option<usize>>,
    batch: Batch<'s, 'p>,
}

impl<'s, 'p> Queries<'s, 'p> {
    /// `paths`: about how many paths it will see (sizes the directory memory).
    fn new(sets: &[&'s RuleSet], paths: usize) -> Self {
        let mut matchers = Vec::new();
        let mut in_batch = Vec::new();
        for set in sets {
            // An empty set is never compiled: it matches nothing.
            match (!set.rules.is_empty()).then(|| set.matcher()).flatten() {
                Some(m) => {
                    in_batch.push(Some(matchers.len()));
                    matchers.push(m);
                }
                None => in_batch.push(None),
            }
        }
        Queries {
            sets: sets.to_vec(),
            in_batch,
            batch: Batch::new(matchers, paths),
        }
    }

    fn directory(&mut self, path: &'p [u8]) -> Slot {
        self.batch.directory(path)
    }

    /// The last rule of set `i` matching `path`, whose directory is `slot`.
    fn last_match(&mut self, i: usize, path: &[u8], slot: Slot) -> Option<usize> {
        match self.in_batch[i] {
            Some(m) => self.batch.last_match(m, path, slot),
            None if self.sets[i].rules.is_empty() => None,
            None => self.sets[i].last_match(path),
        }
    }

    fn rule(&self, i: usize, index: usize) -> RuleRef {
        RuleRef::of(&self.sets[i].rules[index])
    }
}

/// The rule that made a decision, as reports show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    /// The rule as written (shared with the compiled rule: deciding many paths by one rule
    /// copies no text).
    pub text: Arc<str>,
    pub origin: RuleOrigin,
}

impl RuleRef {
    fn of(rule: &Rule) -> RuleRef {
        RuleRef {
            text: rule.pattern.shared_text(),
            origin: rule.origin.clone(),
        }
    }
}

/// Why a path is in or out of scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Reason {
    /// Matched an always-protected path or one the policy added to that list.
    Protected { rule: RuleRef },
    /// Matched a `deny` rule (deny wins over allow).
    Denied { rule: RuleRef },
    /// Matched no glob of the `scope` input / `--scope`.
    OutsideScopeInput,
    /// `allow` is not empty and no rule of it matched.
    NoAllowRule,
    /// `allow` is empty (and no narrowing): everything not denied is in scope.
    AllowedByDefault,
    /// The last matching `allow` rule (or, with an empty `allow`, the last matching
    /// `--scope` glob).
    Allowed { rule: RuleRef },
}

/// The decision for one path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub in_scope: bool,
    #[serde(flatten)]
    pub reason: Reason,
}

/// The always-protected paths of DESIGN §3, as anchored rules: the workflow and action
/// directories (also a file or symlink put in their place), `CODEOWNERS` in each of the
/// three places GitHub reads it, and `.gitmodules`. The policy file itself is added by
/// [`Scope::new`].
pub const ALWAYS_PROTECTED: &[&str] = &[
    "/.github/workflows",
    "/.github/actions",
    "/CODEOWNERS",
    "/.github/CODEOWNERS",
    "/docs/CODEOWNERS",
    "/.gitmodules",
];

/// The most glob patterns one `scope` input (`--scope`) compiles, `{a,b}` alternatives
/// expanded: an input narrows the policy, a few globs do that.
pub const MAX_SCOPE_INPUT_PATTERNS: usize = 256;

/// The longest `scope` input (all its globs together), in bytes.
pub const MAX_SCOPE_INPUT_BYTES: usize = 16 * 1024;

/// The most bytes one `scope` input's patterns may add up to, alternatives expanded.
pub const MAX_SCOPE_INPUT_EXPANDED_BYTES: usize = 64 * 1024;

/// The `scope` input (`--scope`) compiled: its globs, checked against the input's limits
/// and compiled once, before any base is fetched or any policy read, so that narrowing a
/// policy's scope with it ([`Scope::narrowed_by`]) cannot fail. The default narrows
/// nothing.
#[derive(Debug, Clone, Default)]
pub struct ScopeInput {
    globs: Vec<String>,
    /// `None` for an empty input.
    rules: Option<RuleSet>,
}

impl ScopeInput {
    /// Compile `globs` (already split). An input over [`MAX_SCOPE_INPUT_BYTES`], or over
    /// [`MAX_SCOPE_INPUT_PATTERNS`] patterns or [`MAX_SCOPE_INPUT_EXPANDED_BYTES`] once
    /// alternatives are expanded, is refused before anything is compiled; a glob that does
    /// not compile is refused by name.
    pub fn new(globs: &[String]) -> Result<ScopeInput, PatternError> {
        if globs.is_empty() {
            return Ok(ScopeInput::default());
        }
        let bytes: usize = globs.iter().map(String::len).sum();
        if bytes > MAX_SCOPE_INPUT_BYTES {
            return Err(PatternError {
                pattern: globs[0].chars().take(40).collect::<String>() + "…",
                reason: format!(
                    "the scope input is {bytes} bytes, over the limit of {MAX_SCOPE_INPUT_BYTES}: \
                     narrow with a few globs (`src/payments/**`)"
                ),
            });
        }
        let mut total = ExpandedSize::default();
        for g in globs {
            let one = Pattern::expanded_size(g);
            total = total.plus(one);
            let over = total.patterns > MAX_SCOPE_INPUT_PATTERNS
                || total.bytes > MAX_SCOPE_INPUT_EXPANDED_BYTES;
            if over && one.patterns <= Pattern::MAX_EXPANSIONS {
                return Err(PatternError {
                    pattern: g.clone(),
                    reason: format!(
                        "with this glob the scope input expands to more than \
                         {MAX_SCOPE_INPUT_PATTERNS} patterns or {MAX_SCOPE_INPUT_EXPANDED_BYTES} \
                         bytes (each `{{a,b}}` alternative is a pattern of its own): narrow with \
                         fewer globs or wildcards"
                    ),
                });
            }
        }
        let mut rules = Vec::with_capacity(globs.len());
        for (index, g) in globs.iter().enumerate() {
            rules.push(Rule {
                pattern: Pattern::new(g)?,
                origin: RuleOrigin::ScopeInput { index },
            });
        }
        Ok(ScopeInput {
            globs: globs.to_vec(),
            rules: Some(RuleSet::new(rules)),
        })
    }

    /// The globs as given (empty: the input narrows nothing).
    pub fn globs(&self) -> &[String] {
        &self.globs
    }

    /// Whether the input narrows nothing.
    pub fn is_empty(&self) -> bool {
        self.globs.is_empty()
    }
}

/// allow + deny + protected (+ optional narrowing), compiled.
#[derive(Debug, Clone)]
pub struct Scope {
    /// allow, then deny, then protected, as one compiled list: its last matching rule is the
    /// one that decides (a protected rule outranks every deny rule, a deny rule every allow
    /// rule), so a path is walked once for all three.
    /// Shared: a narrowed scope ([`Scope::narrowed`]) reuses it rather than copying it.
    ranked: Arc<RuleSet>,
    /// Where the deny rules start in `ranked` (the number of allow rules).
    denied_from: usize,
    /// Where the protected rules start in `ranked`.
    protected_from: usize,
    /// Each `narrowed` call adds one; a path must match every one of them.
    narrows: Vec<RuleSet>,
}

impl Scope {
    /// Build a scope. `extra_protected` are the policy's own additions; the always-protected
    /// list and `policy_path` (repository-relative; matched literally) are added here and
    /// cannot be removed.
    pub fn new(
        allow: RuleSet,
        deny: RuleSet,
        extra_protected: RuleSet,
        policy_path: &str,
    ) -> Result<Scope, PatternError> {
        let mut protected = Vec::new();
        for p in ALWAYS_PROTECTED {
            protected.push(Rule {
                pattern: Pattern::new(p)?,
                origin: RuleOrigin::AlwaysProtected,
            });
        }
        protected.push(Rule {
            pattern: Pattern::new(&literal_rule(policy_path))?,
            origin: RuleOrigin::AlwaysProtected,
        });
        protected.extend(extra_protected.rules);
        let mut ranked = allow.rules;
        let denied_from = ranked.len();
        ranked.extend(deny.rules);
        let protected_from = ranked.len();
        ranked.extend(protected);
        Ok(Scope {
            ranked: Arc::new(RuleSet::compiled(ranked)),
            denied_from,
            protected_from,
            narrows: Vec::new(),
        })
    }

    /// Narrow the allow set with the `scope` input: the effective allow set is the
    /// intersection, so this can only take paths away. An empty input narrows nothing.
    #[must_use]
    pub fn narrowed_by(&self, input: &ScopeInput) -> Scope {
        let mut narrowed = self.clone();
        if let Some(rules) = &input.rules {
            narrowed.narrows.push(rules.clone());
        }
        narrowed
    }

    /// [`Scope::narrowed_by`] the globs `globs`, compiled first ([`ScopeInput::new`]).
    pub fn narrowed(&self, globs: &[String]) -> Result<Scope, PatternError> {
        Ok(self.narrowed_by(&ScopeInput::new(globs)?))
    }

    /// The `allow` rules, in file order.
    pub fn allow(&self) -> &[Rule] {
        &self.ranked.rules[..self.denied_from]
    }
    /// The `deny` rules, in file order.
    pub fn deny(&self) -> &[Rule] {
        &self.ranked.rules[self.denied_from..self.protected_from]
    }
    /// The always-protected paths, the policy file, then the policy's own `protected` rules.
    pub fn protected(&self) -> &[Rule] {
        &self.ranked.rules[self.protected_from..]
    }
    /// The latest narrowing (the `scope` input), if any.
    pub fn narrow(&self) -> Option<&RuleSet> {
        self.narrows.last()
    }
    /// Every narrowing applied, oldest first.
    pub fn narrows(&self) -> &[RuleSet] {
        &self.narrows
    }

    /// The protected rule that makes a symbolic link at `dir` a way into protected paths:
    /// one that matches `dir` itself, or could match below it by its location
    /// ([`Pattern::may_match_at_or_below`]) — a link named `.github` pointing at a directory
    /// that holds `workflows/` would put content at `.github/workflows/`. The empty `dir`
    /// (the repository root) holds every protected path.
    pub fn protected_at_or_below(&self, dir: &[u8]) -> Option<RuleRef> {
        self.protected()
            .iter()
            .find(|r| r.pattern.is_match(dir) || r.pattern.may_match_at_or_below(dir))
            .map(RuleRef::of)
    }

    /// Decide one path (repository-relative, `/`-separated, any bytes).
    pub fn decide(&self, path: &[u8]) -> Decision {
        self.decider(0).decide(path)
    }

    /// [`Scope::decide`] for many paths, on every core, in input order.
    pub fn decide_many<P: AsRef<[u8]> + Sync>(&self, paths: &[P]) -> Vec<Decision> {
        par_map_chunks(paths, |chunk| {
            let mut decider = self.decider(chunk.len());
            chunk.iter().map(|p| decider.decide(p.as_ref())).collect()
        })
    }

    fn decider(&self, paths: usize) -> Decider<'_, '_> {
        let mut sets = vec![&*self.ranked];
        sets.extend(self.narrows.iter());
        Decider {
            queries: Queries::new(&sets, paths),
            narrows: self.narrows.len(),
            denied_from: self.denied_from,
            protected_from: self.protected_from,
        }
    }
}

/// The queries of one thread deciding paths of one [`Scope`]: its ranked list, then each
/// narrowing.
struct Decider<'s, 'p> {
    queries: Queries<'s, 'p>,
    narrows: usize,
    /// Where the deny rules start in the ranked list (0: `allow` is empty).
    denied_from: usize,
    /// Where the protected rules start in the ranked list.
    protected_from: usize,
}

impl<'p> Decider<'_, 'p> {
    const RANKED: usize = 0;

    fn decide(&mut self, path: &'p [u8]) -> Decision {
        let out = |reason| Decision {
            in_scope: false,
            reason,
        };
        let q = &mut self.queries;
        let slot = q.directory(path);
        let last = q.last_match(Self::RANKED, path, slot);
        match last {
            Some(i) if i >= self.protected_from => {
                return out(Reason::Protected {
                    rule: q.rule(Self::RANKED, i),
                });
            }
            Some(i) if i >= self.denied_from => {
                return out(Reason::Denied {
                    rule: q.rule(Self::RANKED, i),
                });
            }
            _ => {}
        }
        let mut granted_by_narrowing = None;
        for n in 1..=self.narrows {
            match q.last_match(n, path, slot) {
                Some(i) => granted_by_narrowing = Some((n, i)),
                None => return out(Reason::OutsideScopeInput),
            }
        }
        if self.denied_from == 0 {
            let reason = match granted_by_narrowing {
                Some((n, i)) => Reason::Allowed { rule: q.rule(n, i) },
                None => Reason::AllowedByDefault,
            };
            return Decision {
                in_scope: true,
                reason,
            };
        }
        match last {
            Some(i) => Decision {
                in_scope: true,
                reason: Reason::Allowed {
                    rule: q.rule(Self::RANKED, i),
                },
            },
            None => out(Reason::NoAllowRule),
        }
    }
}

/// A rule that matches exactly one repository path, whatever characters it holds.
fn literal_rule(path: &str) -> String {
    let mut path = path;
    loop {
        let trimmed = path.trim_start_matches('/');
        let trimmed = trimmed.strip_prefix("./").unwrap_or(trimmed);
        if trimmed == path {
            break;
        }
        path = trimmed;
    }
    let mut rule = String::with_capacity(path.len() + 1);
    rule.push('/');
    for c in path.chars() {
        if matches!(c, '\\' | '*' | '?' | '[' | ']' | '{' | '}' | ',' | ' ') {
            rule.push('\\');
        }
        rule.push(c);
    }
    rule
}

/// Display helper for paths that may not be UTF-8.
pub fn display_path(path: &[u8]) -> String {
    BStr::new(path).to_string()
}
