//! Compilation of a parsed policy ([`RawPolicy`]) into the validated [`Policy`]: defaults
//! filled in, durations parsed, globs compiled by the scope engine with their line and column,
//! limits and check names checked. Every rejection names the key, its location and what was
//! expected. This module does not read YAML (see `raw`) and does not decide paths (see `scope`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde_saphyr::{Location, Spanned};

use super::raw::{EnvMap, GlobList, RawAgent, RawCheck, RawPolicy, RawReport, RawScope};
use super::{
    AgentSettings, Allowance, CheckSpec, Isolation, Limits, OnIdle, OnViolation, OnWaitingForUser,
    Policy, PolicyError, ReportSettings,
};
use crate::scope::{Pattern, Rule, RuleOrigin, RuleSet, Scope};
use crate::yaml::position;

/// What a duration must look like, for error messages.
pub(crate) const DURATION_FORM: &str = "a duration such as `30s`, `45m`, `2h` or `1h30m` (whole numbers with units h, m, s, largest first; not zero)";

const DEFAULT_TIMEOUT: Duration = Duration::from_hours(1);
const DEFAULT_POLL_INITIAL: Duration = Duration::from_secs(5);
const DEFAULT_POLL_MAX: Duration = Duration::from_mins(1);
const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_mins(10);
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

/// Builds compile errors for one policy file.
struct Compiler<'a> {
    path: &'a str,
}

impl Compiler<'_> {
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

    /// Compile a glob list into rules that remember their place in the file.
    fn rules(
        &self,
        value: Option<Spanned<GlobList>>,
        key: &str,
    ) -> Result<Option<RuleSet>, PolicyError> {
        let Some(list) = value else { return Ok(None) };
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
            if text.trim().is_empty() {
                return Err(reject(
                    "the pattern is empty: expected a glob such as `src/**`".into(),
                ));
            }
            if text.starts_with('!') {
                return Err(reject("`!` negation is not supported".into()));
            }
            let pattern = Pattern::new(&text).map_err(|e| {
                let message = e.to_string();
                let prefix = format!("invalid pattern `{text}`: ");
                reject(
                    message
                        .strip_prefix(&prefix)
                        .map_or_else(|| message.clone(), str::to_string),
                )
            })?;
            rules.push(Rule {
                pattern,
                origin: RuleOrigin::Policy { line, column },
            });
        }
        Ok(Some(RuleSet::new(rules)))
    }

    fn repositories(
        &self,
        value: Option<Vec<Spanned<String>>>,
    ) -> Result<Vec<String>, PolicyError> {
        let mut out = Vec::new();
        for repo in value.unwrap_or_default() {
            if !is_owner_repo(&repo.value) {
                return Err(self.invalid(
                    &repo.referenced,
                    "repositories",
                    &repo.value,
                    "a repository written `owner/repo`, e.g. `octo-org/payments`",
                ));
            }
            out.push(repo.value);
        }
        Ok(out)
    }

    fn agent(&self, raw: Option<RawAgent>) -> Result<AgentSettings, PolicyError> {
        let raw = raw.unwrap_or_default();
        let base_ref = match raw.base_ref {
            None => None,
            Some(r) if is_ref_name(&r.value) => Some(r.value),
            Some(r) => {
                return Err(self.invalid(
                    &r.referenced,
                    "agent.base-ref",
                    &r.value,
                    "a branch name such as `main` (a valid git ref name, not starting with `-`)",
                ));
            }
        };
        let timeout = self.duration(raw.timeout, "agent.timeout", DEFAULT_TIMEOUT)?;
        let poll = raw.poll.unwrap_or_default();
        let poll_initial =
            self.duration(poll.initial, "agent.poll.initial", DEFAULT_POLL_INITIAL)?;
        let max_at = poll.max.as_ref().map(|m| m.referenced);
        let poll_max = self.duration(poll.max, "agent.poll.max", DEFAULT_POLL_MAX)?;
        if poll_max < poll_initial {
            let expected = format!(
                "at least `agent.poll.initial` ({})",
                format_duration(poll_initial)
            );
            return Err(self.invalid(
                &max_at.unwrap_or(Location::UNKNOWN),
                "agent.poll.max",
                &format_duration(poll_max),
                &expected,
            ));
        }
        let max_concurrent_tasks = match raw.max_concurrent_tasks {
            Some(m) if m.value == 0 => {
                return Err(self.invalid(
                    &m.referenced,
                    "agent.max-concurrent-tasks",
                    "0",
                    "at least 1 (remove the key for no cap)",
                ));
            }
            other => other,
        };
        let reserved_for_high = match (raw.reserved_for_high, &max_concurrent_tasks) {
            (None, _) => 0,
            (Some(r), _) if r.value == 0 => 0,
            (Some(r), None) => {
                return Err(self.invalid(
                    &r.referenced,
                    "agent.reserved-for-high",
                    &r.value.to_string(),
                    "`agent.max-concurrent-tasks` to be set too (reserved slots are taken from it)",
                ));
            }
            (Some(r), Some(max)) if r.value >= max.value => {
                let expected = format!("fewer than `agent.max-concurrent-tasks` ({})", max.value);
                return Err(self.invalid(
                    &r.referenced,
                    "agent.reserved-for-high",
                    &r.value.to_string(),
                    &expected,
                ));
            }
            (Some(r), Some(_)) => r.value,
        };
        let max_ai_credits_per_day = match raw.max_ai_credits_per_day {
            None => None,
            Some(c) if c.value.is_finite() && c.value >= 0.0 => Some(c.value),
            Some(c) => {
                return Err(self.invalid(
                    &c.referenced,
                    "agent.max-ai-credits-per-day",
                    &c.value.to_string(),
                    "a number ≥ 0",
                ));
            }
        };
        Ok(AgentSettings {
            base_ref,
            timeout,
            poll_initial,
            poll_max,
            on_idle: raw.on_idle.unwrap_or(OnIdle::Accept),
            on_waiting_for_user: raw.on_waiting_for_user.unwrap_or(OnWaitingForUser::Fail),
            create_pull_request: raw.create_pull_request.unwrap_or(true),
            allow_no_change: raw.allow_no_change.unwrap_or(false),
            max_concurrent_tasks: max_concurrent_tasks.map(|m| m.value),
            reserved_for_high,
            max_tasks_per_day: raw.max_tasks_per_day,
            max_ai_credits_per_day,
            repair_rounds: raw.repair_rounds.unwrap_or(0),
        })
    }

    fn scope(&self, raw: Option<RawScope>) -> Result<(Scope, Limits), PolicyError> {
        let raw = raw.unwrap_or_default();
        let allow = self.rules(raw.allow, "scope.allow")?.unwrap_or_default();
        let deny = self.rules(raw.deny, "scope.deny")?.unwrap_or_default();
        let protected = self
            .rules(raw.protected, "scope.protected")?
            .unwrap_or_default();
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

    fn checks(&self, raw: Option<Vec<Spanned<RawCheck>>>) -> Result<Vec<CheckSpec>, PolicyError> {
        let mut out: Vec<CheckSpec> = Vec::new();
        for (index, entry) in raw.unwrap_or_default().into_iter().enumerate() {
            let (line, _) = position(entry.referenced);
            let check = entry.value;
            let key = |field: &str| format!("checks[{index}].{field}");
            let name = check.name.value.trim().to_string();
            if name.is_empty() || name.contains(['\n', '\r']) {
                return Err(self.invalid(
                    &check.name.referenced,
                    &key("name"),
                    &check.name.value,
                    "a non-empty name on one line",
                ));
            }
            if let Some(first) = out.iter().find(|c| c.name == name) {
                let (l, column) = position(check.name.referenced);
                return Err(PolicyError::DuplicateCheck {
                    path: self.path.to_string(),
                    line: l,
                    column,
                    name,
                    first_line: first.line,
                });
            }
            if check.run.value.trim().is_empty() {
                return Err(self.invalid(
                    &check.run.referenced,
                    &key("run"),
                    "",
                    "a non-empty command",
                ));
            }
            let timeout = self.duration(check.timeout, &key("timeout"), DEFAULT_CHECK_TIMEOUT)?;
            let when = self.non_empty_rules(
                check.when,
                &key("when"),
                "remove `when` to always run the check",
            )?;
            let files = self.non_empty_rules(
                check.files,
                &key("files"),
                "remove `files` to pass every changed path",
            )?;
            let env = self.env(check.env, &key("env"))?;
            out.push(CheckSpec {
                name,
                run: check.run.value,
                timeout,
                when,
                files,
                required: check.required.unwrap_or(true),
                env,
                line,
            });
        }
        Ok(out)
    }

    fn non_empty_rules(
        &self,
        value: Option<Spanned<GlobList>>,
        key: &str,
        instead: &str,
    ) -> Result<Option<RuleSet>, PolicyError> {
        let at = value.as_ref().map(|v| v.referenced);
        let rules = self.rules(value, key)?;
        if rules.as_ref().is_some_and(RuleSet::is_empty) {
            let expected = format!("at least one glob ({instead})");
            return Err(self.invalid(&at.unwrap_or(Location::UNKNOWN), key, "[]", &expected));
        }
        Ok(rules)
    }

    fn env(&self, raw: Option<EnvMap>, key: &str) -> Result<BTreeMap<String, String>, PolicyError> {
        let mut out = BTreeMap::new();
        for (name, value) in raw.map(|m| m.0).unwrap_or_default() {
            if !is_env_name(&name.value) {
                return Err(self.invalid(
                    &name.referenced,
                    key,
                    &name.value,
                    "variable names made of letters, digits and `_`, not starting with a digit",
                ));
            }
            out.insert(name.value, value);
        }
        Ok(out)
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
pub(crate) fn compile(raw: RawPolicy, path: &str) -> Result<Policy, PolicyError> {
    let c = Compiler { path };
    let repositories = c.repositories(raw.repositories)?;
    let agent = c.agent(raw.agent)?;
    let (scope, limits) = c.scope(raw.scope)?;
    let checks = c.checks(raw.checks)?;
    let report = c.report(raw.report)?;
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

/// `owner/repo` as GitHub spells names: owner of letters, digits and single inner hyphens;
/// repository of letters, digits, `-`, `_`, `.` (not `.` or `..`).
fn is_owner_repo(text: &str) -> bool {
    let Some((owner, repo)) = text.split_once('/') else {
        return false;
    };
    let owner_ok = !owner.is_empty()
        && owner.len() <= 39
        && owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !owner.starts_with('-')
        && !owner.ends_with('-');
    let repo_ok = !repo.is_empty()
        && repo.len() <= 100
        && repo
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && repo != "."
        && repo != "..";
    owner_ok && repo_ok
}

/// A git ref name that is safe to hand to `git` (no option-like leading `-`).
fn is_ref_name(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with(['-', '/', '.'])
        && !text.ends_with(['/', '.'])
        && !text.to_ascii_lowercase().ends_with(".lock")
        && !text.contains("..")
        && !text.contains("//")
        && !text.contains("@{")
        && text != "@"
        && !text.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(c, '~' | '^' | ':' | '?' | '*' | '[' | '\\')
        })
}

fn is_env_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
