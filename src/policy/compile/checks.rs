//! Compiling the `checks` list into [`CheckSpec`]s: names non-empty, on one line and unique,
//! commands non-empty, timeouts parsed, `when` and `files` compiled (and not empty when
//! given), `env` names checked. It does not run checks (`crate::checks`) nor decide which
//! run; it only records what the policy says.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_saphyr::Spanned;

use super::Compiler;
use crate::policy::raw::{EnvMap, RawCheck};
use crate::policy::{CheckSpec, PolicyError};
use crate::yaml::position;

const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_mins(10);

impl Compiler<'_> {
    pub(super) fn checks(&self, raw: Option<Vec<Spanned<RawCheck>>>) -> Vec<CheckSpec> {
        let mut out: Vec<CheckSpec> = Vec::new();
        // Every valid name and its line, also of checks dropped for another error.
        let mut names: Vec<(String, usize)> = Vec::new();
        for (index, entry) in raw.unwrap_or_default().into_iter().enumerate() {
            let (line, _) = position(entry.referenced);
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
            if check.run.value.trim().is_empty() {
                ok = false;
                self.keep::<()>(Err(self.invalid(
                    &check.run.referenced,
                    &key("run"),
                    "",
                    "a non-empty command",
                )));
            }
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
            let (true, Some(timeout), Some(when), Some(files), Some(env)) =
                (ok, timeout, when, files, env)
            else {
                continue;
            };
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
        out
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
