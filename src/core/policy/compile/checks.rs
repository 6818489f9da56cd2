//! Compiling the `checks` list into [`CheckSpec`]s: names non-empty, on one line and unique,
//! each check either a non-empty command (`run`) or the repository's own checks to await
//! (`github-checks`, with only the keys that apply to it), timeouts parsed, `when` and `files` compiled (and not empty when
//! given), `env` names checked. It does not run checks (`crate::adapters::checks`) nor decide which
//! run; it only records what the policy says.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_saphyr::Spanned;

use super::Compiler;
use crate::core::policy::raw::{EnvMap, GlobList, RawCheck};
use crate::core::policy::{
    AwaitedChecks, CheckImage, CheckNetwork, CheckSpec, GitHubChecks, OnHeld, PolicyError,
};
use crate::core::yaml::position;

const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_mins(10);
/// A check container's memory limit unless the policy says otherwise.
pub const DEFAULT_MEMORY: u64 = 2 * 1024 * 1024 * 1024;
/// A check container's CPUs unless the policy says otherwise.
pub const DEFAULT_CPUS: f64 = 2.0;
/// A check container's process limit unless the policy says otherwise.
pub const DEFAULT_PIDS: u32 = 1024;

/// `512m`, `2g`, `1048576k` or plain bytes; at least 6 MiB (the engine's own minimum).
fn parse_memory(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_lowercase();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text.as_str(), ""),
    };
    let unit = unit.trim_end_matches('b');
    let factor: u64 = match unit {
        "" => 1,
        "k" => 1024,
        "m" => 1024 * 1024,
        "g" => 1024 * 1024 * 1024,
        _ => return None,
    };
    let bytes = digits.parse::<u64>().ok()?.checked_mul(factor)?;
    (bytes >= 6 * 1024 * 1024).then_some(bytes)
}

impl Compiler<'_> {
    pub(super) fn checks(&self, raw: Option<Vec<Spanned<RawCheck>>>) -> Vec<CheckSpec> {
        let mut out: Vec<CheckSpec> = Vec::new();
        // Every valid name and its line, also of checks dropped for another error.
        let mut names: Vec<(String, usize)> = Vec::new();
        for (index, entry) in raw.unwrap_or_default().into_iter().enumerate() {
            let (line, column) = position(entry.referenced);
            let check = entry.value;
            let key = |field: &str| format!("checks[{index}].{field}");
            // Every field is checked (each rejection recorded) before the check is dropped.
            let name = check.name.value.trim().to_string();
            let mut ok = true;
            if name.is_empty() || name.contains(['\n', '\r']) {
                ok = false;
                self.keep::<()>(Err(self.invalid(
                    &check.name.referenced,
                    &key("name"),
                    &check.name.value,
                    "a non-empty name on one line",
                )));
            } else if let Some((_, first_line)) = names.iter().find(|(n, _)| *n == name) {
                ok = false;
                let (l, column) = position(check.name.referenced);
                self.keep::<()>(Err(PolicyError::DuplicateCheck {
                    path: self.path.to_string(),
                    line: l,
                    column,
                    name: name.clone(),
                    first_line: *first_line,
                }));
            } else {
                names.push((name.clone(), line));
            }
            let github = self.github_checks(&check, &key, (line, column));
            let github = self.keep(github);
            if github.is_none() {
                ok = false;
            }
            let github = github.flatten();
            let image = if check.github_checks.is_some() {
                Ok(None)
            } else {
                self.image(&check, &key)
            };
            let image = self.keep(image);
            let timeout_given = check.timeout.is_some();
            let timeout = self.duration(check.timeout, &key("timeout"), DEFAULT_CHECK_TIMEOUT);
            let timeout = self.keep(timeout);
            let when = self.non_empty_rules(
                check.when,
                &key("when"),
                "remove `when` to always run the check",
            );
            let when = self.keep(when);
            let files = self.non_empty_rules(
                check.files,
                &key("files"),
                "remove `files` to pass every changed path",
            );
            let files = self.keep(files);
            let env = self.env(check.env, &key("env"));
            let env = self.keep(env);
            let (true, Some(image), Some(timeout), Some(when), Some(files), Some(env)) =
                (ok, image, timeout, when, files, env)
            else {
                continue;
            };
            let github = github.map(|awaited| GitHubChecks {
                awaited,
                on_held: check.on_held.as_ref().map_or(OnHeld::Fail, |h| h.value),
                timeout: timeout_given.then_some(timeout),
            });
            out.push(CheckSpec {
                name,
                run: check.run.map(|r| r.value).unwrap_or_default(),
                github,
                timeout,
                when,
                files,
                required: check.required.unwrap_or(true),
                env,
                line,
                image,
            });
        }
        out
    }

    /// `run` or `github-checks` (exactly one) and what goes only with either: `Ok(None)` for
    /// a command, `Ok(Some(_))` for awaited GitHub checks.
    fn github_checks(
        &self,
        check: &RawCheck,
        key: &dyn Fn(&str) -> String,
        (line, column): (usize, usize),
    ) -> Result<Option<AwaitedChecks>, PolicyError> {
        let Some(github) = &check.github_checks else {
            if let Some(held) = &check.on_held {
                return Err(self.invalid(
                    &held.referenced,
                    &key("on-held"),
                    "on-held",
                    "`github-checks:` beside it: on-held applies to a check that awaits GitHub's checks",
                ));
            }
            return match &check.run {
                Some(run) if run.value.trim().is_empty() => {
                    Err(self.invalid(&run.referenced, &key("run"), "", "a non-empty command"))
                }
                Some(_) => Ok(None),
                None => Err(PolicyError::MissingCommand {
                    path: self.path.to_string(),
                    line,
                    column,
                    key: key("run"),
                }),
            };
        };
        if let Some(run) = &check.run {
            return Err(self.invalid(
                &run.referenced,
                &key("run"),
                "run beside github-checks",
                "one of `run` (a command) or `github-checks` (the repository's own checks), not both",
            ));
        }
        let only_with_run = [
            check.files.as_ref().map(|v| ("files", v.referenced)),
            check.env.as_ref().map(|_| ("env", github.referenced)),
            check.image.as_ref().map(|v| ("image", v.referenced)),
            check.network.as_ref().map(|v| ("network", v.referenced)),
            check.memory.as_ref().map(|v| ("memory", v.referenced)),
            check.cpus.as_ref().map(|v| ("cpus", v.referenced)),
            check.pids.as_ref().map(|v| ("pids", v.referenced)),
        ];
        if let Some((field, at)) = only_with_run.into_iter().flatten().next() {
            return Err(self.invalid(
                &at,
                &key(field),
                field,
                "`run:` instead of `github-checks:`: it applies to a check that runs a command",
            ));
        }
        let at = github.referenced;
        let expected = "`required` or a list of check names, e.g. [\"test (3.12)\", lint]";
        let items = match &github.value {
            GlobList::One(word) if word.value.trim() == "required" => {
                return Ok(Some(AwaitedChecks::Required));
            }
            GlobList::One(word) => {
                return Err(self.invalid(&at, &key("github-checks"), &word.value, expected));
            }
            GlobList::Many(items) => items,
        };
        if items.is_empty() {
            return Err(self.invalid(&at, &key("github-checks"), "[]", expected));
        }
        let mut names: Vec<String> = Vec::new();
        for item in items {
            let name = item.value.trim();
            if name.is_empty() || name.contains(['\n', '\r']) {
                return Err(self.invalid(
                    &item.referenced,
                    &key("github-checks"),
                    &item.value,
                    "check names that are non-empty and on one line",
                ));
            }
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
        Ok(Some(AwaitedChecks::Named(names)))
    }

    /// `image:` with its network and limits; the limits without an image are an error.
    fn image(
        &self,
        check: &RawCheck,
        key: &dyn Fn(&str) -> String,
    ) -> Result<Option<CheckImage>, PolicyError> {
        let Some(image) = &check.image else {
            let stray = [
                check.network.as_ref().map(|n| ("network", n.referenced)),
                check.memory.as_ref().map(|m| ("memory", m.referenced)),
                check.cpus.as_ref().map(|c| ("cpus", c.referenced)),
                check.pids.as_ref().map(|p| ("pids", p.referenced)),
            ];
            if let Some((field, at)) = stray.into_iter().flatten().next() {
                return Err(self.invalid(
                    &at,
                    &key(field),
                    field,
                    "`image:` beside it: network and limits apply to a check that runs in an image",
                ));
            }
            return Ok(None);
        };
        let name = image.value.trim();
        if name.is_empty() || name.contains(char::is_whitespace) || name.starts_with('-') {
            return Err(self.invalid(
                &image.referenced,
                &key("image"),
                &image.value,
                "an image reference such as `python:3.12-slim` or `ghcr.io/org/tools@sha256:…`",
            ));
        }
        let memory_bytes = match &check.memory {
            None => DEFAULT_MEMORY,
            Some(m) => parse_memory(&m.value).ok_or_else(|| {
                self.invalid(
                    &m.referenced,
                    &key("memory"),
                    &m.value,
                    "a size of at least 6m such as `512m` or `2g` (units k, m, g)",
                )
            })?,
        };
        let cpus = match &check.cpus {
            None => DEFAULT_CPUS,
            Some(c) if c.value.is_finite() && c.value >= 0.01 && c.value <= 1024.0 => c.value,
            Some(c) => {
                return Err(self.invalid(
                    &c.referenced,
                    &key("cpus"),
                    &c.value.to_string(),
                    "a number of CPUs from 0.01 to 1024",
                ));
            }
        };
        let pids = match &check.pids {
            None => DEFAULT_PIDS,
            Some(p) if p.value >= 8 => p.value,
            Some(p) => {
                return Err(self.invalid(
                    &p.referenced,
                    &key("pids"),
                    &p.value.to_string(),
                    "at least 8 processes",
                ));
            }
        };
        Ok(Some(CheckImage {
            image: name.to_string(),
            network: check
                .network
                .as_ref()
                .map_or(CheckNetwork::None, |n| n.value),
            memory_bytes,
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "0.01 to 1024 CPUs, checked above"
            )]
            nano_cpus: (cpus * 1e9).round() as u64,
            pids,
        }))
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
}

fn is_env_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
