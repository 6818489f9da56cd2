//! Compilation of a parsed policy ([`RawPolicy`]) into the validated [`Policy`]: defaults
//! filled in, durations parsed, globs compiled by the scope engine with their line and column,
//! limits and check names checked. Every rejection names the key, its location and what was
//! expected. This module does not read YAML (see `raw`) and does not decide paths (see `scope`).
//!
//! Compilation goes on past a rejection so that one pass reports every error: the sections,
//! each check and each glob are compiled in turn, each rejection is recorded, and the
//! policy is refused with all of them, in file order.
//!
//! The `Compiler` (the policy's path, the errors it builds and records), durations
//! ([`parse_duration`], [`format_duration`]), the order of `compile` and the small
//! top-level sections (`repositories`, `report`) are here; each larger section compiles in a
//! module named for it.

mod agent;
mod checks;
mod scope;

use std::fmt::Write as _;
use std::time::Duration;

use serde_saphyr::{Location, Spanned};

use super::raw::{RawPolicy, RawReport};
use super::{Isolation, OnViolation, Policy, PolicyError, ReportSettings};
use crate::core::yaml::position;

/// What a duration must look like, for error messages.
pub(crate) const DURATION_FORM: &str = "a duration such as `30s`, `45m`, `2h` or `1h30m` (whole numbers with units h, m, s, largest first; not zero)";

const DEFAULT_STATUS_CONTEXT: &str = "agent-gate";

/// Parse a duration: one or more `<digits><unit>` groups, units `h`, `m`, `s` in that order,
/// each at most once; the total must be greater than zero. `None` for anything else.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut allowed = "hms";
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let number: u64 = rest[..digits].parse().ok()?;
        let unit = rest[digits..].chars().next()?;
        let unit_at = allowed.find(unit)?;
        let scale = match unit {
            'h' => 3600,
            'm' => 60,
            _ => 1,
        };
        total = total.checked_add(number.checked_mul(scale)?)?;
        allowed = &allowed[unit_at + 1..];
        rest = &rest[digits + 1..];
    }
    (total > 0).then(|| Duration::from_secs(total))
}

/// Render a duration the way a policy writes it: `45m`, `1h30m`, `90s` → `1m30s`.
pub fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs == 0 {
        return format!("{}ms", duration.as_millis());
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if m > 0 {
        let _ = write!(out, "{m}m");
    }
    if s > 0 {
        let _ = write!(out, "{s}s");
    }
    out
}

/// Builds compile errors for one policy file and records them.
struct Compiler<'a> {
    path: &'a str,
    /// Glob patterns compiled so far (alternatives expanded), against
    /// [`MAX_POLICY_PATTERNS`](super::MAX_POLICY_PATTERNS) and
    /// [`MAX_POLICY_EXPANDED_BYTES`](super::MAX_POLICY_EXPANDED_BYTES).
    patterns: std::cell::Cell<crate::core::scope::ExpandedSize>,
    /// Every error found so far (one pass reports them all).
    errors: std::cell::RefCell<Vec<PolicyError>>,
}

impl Compiler<'_> {
    /// The value, or `None` with its error recorded (compilation goes on).
    fn keep<T>(&self, result: Result<T, PolicyError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors.borrow_mut().push(e);
                None
            }
        }
    }

    fn invalid(&self, at: &Location, key: &str, found: &str, expected: &str) -> PolicyError {
        let (line, column) = position(*at);
        PolicyError::InvalidValue {
            path: self.path.to_string(),
            line,
            column,
            key: key.to_string(),
            found: found.to_string(),
            expected: expected.to_string(),
        }
    }

    fn duration(
        &self,
        value: Option<Spanned<String>>,
        key: &str,
        default: Duration,
    ) -> Result<Duration, PolicyError> {
        match value {
            None => Ok(default),
            Some(v) => parse_duration(&v.value)
                .ok_or_else(|| self.invalid(&v.referenced, key, &v.value, DURATION_FORM)),
        }
    }

    fn repositories(&self, value: Option<Vec<Spanned<String>>>) -> Vec<String> {
        let mut out = Vec::new();
        for repo in value.unwrap_or_default() {
            if is_owner_repo(&repo.value) {
                out.push(repo.value);
            } else {
                self.keep::<()>(Err(self.invalid(
                    &repo.referenced,
                    "repositories",
                    &repo.value,
                    "a repository written `owner/repo`, e.g. `octo-org/payments`",
                )));
            }
        }
        out
    }

    fn report(&self, raw: Option<RawReport>) -> Result<ReportSettings, PolicyError> {
        let raw = raw.unwrap_or_default();
        let status_context = match raw.status_context {
            None => DEFAULT_STATUS_CONTEXT.to_string(),
            Some(c) if !c.value.trim().is_empty() && !c.value.contains(['\n', '\r']) => c.value,
            Some(c) => {
                return Err(self.invalid(
                    &c.referenced,
                    "report.status-context",
                    &c.value,
                    "a non-empty name on one line, e.g. `agent-gate`",
                ));
            }
        };
        Ok(ReportSettings {
            status_context,
            comment: raw.comment.unwrap_or(true),
        })
    }
}

/// Compile a parsed policy. `path` names the file in errors and becomes a protected path.
/// On rejection: every error found, in file order (those without a line last).
pub(crate) fn compile(raw: RawPolicy, path: &str) -> Result<Policy, Vec<PolicyError>> {
    let c = Compiler {
        path,
        patterns: std::cell::Cell::new(crate::core::scope::ExpandedSize::default()),
        errors: std::cell::RefCell::new(Vec::new()),
    };
    let repositories = Some(c.repositories(raw.repositories));
    let agent = c.agent(raw.agent);
    let agent = c.keep(agent);
    let scope = c.scope(raw.scope);
    let scope = c.keep(scope);
    let checks = Some(c.checks(raw.checks));
    let report = c.report(raw.report);
    let report = c.keep(report);
    let mut errors = c.errors.into_inner();
    let (Some(repositories), Some(agent), Some((scope, limits)), Some(checks), Some(report), true) = (
        repositories,
        agent,
        scope,
        checks,
        report,
        errors.is_empty(),
    ) else {
        errors.sort_by_key(|e| e.location().unwrap_or((usize::MAX, usize::MAX)));
        return Err(errors);
    };
    Ok(Policy {
        path: path.to_string(),
        repositories,
        agent,
        scope,
        limits,
        checks_on_violation: raw.checks_on_violation.unwrap_or(OnViolation::Skip),
        checks_isolation: raw.checks_isolation.unwrap_or(Isolation::Strict),
        checks,
        report,
    })
}

/// `owner/repo` as GitHub spells names ([`crate::core::slug::RepoSlug::parse`]).
fn is_owner_repo(text: &str) -> bool {
    crate::core::slug::RepoSlug::parse(text).is_ok()
}
