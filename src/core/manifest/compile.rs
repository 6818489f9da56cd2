//! From the raw manifest to a validated [`Manifest`]: the version checked, defaults applied,
//! every repository name, id, duration, priority, policy path and scope glob validated with
//! its line and column, content identities hashed, duplicates refused. No expansion into
//! jobs (that is [`plan`](super::plan)) and no I/O.

use std::collections::HashMap;
use std::time::Duration;

use serde_saphyr::{Location, Spanned};
use sha2::{Digest, Sha256};

use super::raw::{RawDefaults, RawEntry, RawManifest, VersionProbe};
use super::{Entry, Manifest, ManifestError, Priority};
use crate::core::policy::{DEFAULT_POLICY_PATH, parse_duration};
use crate::core::yaml::{self, position};

pub(super) fn from_yaml(text: &str, path: &str) -> Result<Manifest, ManifestError> {
    from_yaml_all(text, path).map_err(|mut errors| errors.swap_remove(0))
}

/// [`from_yaml`] with every error one pass finds, in file order (never an empty list). A
/// YAML or version error stops the reading; the values read are then all checked.
pub(super) fn from_yaml_all(text: &str, path: &str) -> Result<Manifest, Vec<ManifestError>> {
    if yaml::is_blank(text) {
        return Err(vec![ManifestError::Empty {
            path: path.to_string(),
        }]);
    }
    if let Ok(probe) = yaml::from_str::<VersionProbe>(text, "manifest") {
        check_version(probe.version.as_ref(), path).map_err(|e| vec![e])?;
    }
    let raw: RawManifest = yaml::from_str(text, "manifest").map_err(|problem| {
        vec![ManifestError::Yaml {
            path: path.to_string(),
            problem,
        }]
    })?;
    check_version(raw.version.as_ref(), path).map_err(|e| vec![e])?;
    Compiler {
        path,
        errors: std::cell::RefCell::new(Vec::new()),
    }
    .compile(raw)
}

fn check_version(
    version: Option<&Spanned<serde_json::Value>>,
    path: &str,
) -> Result<(), ManifestError> {
    match version {
        None => Err(ManifestError::MissingVersion {
            path: path.to_string(),
        }),
        Some(v) if v.value.as_u64() == Some(1) => Ok(()),
        Some(v) => {
            let (line, column) = position(v.referenced);
            let found = match &v.value {
                serde_json::Value::String(s) => format!("\"{s}\""),
                other => other.to_string(),
            };
            Err(ManifestError::UnsupportedVersion {
                path: path.to_string(),
                line,
                column,
                found,
            })
        }
    }
}

/// The most `tasks-per-minute` a manifest may ask for: GitHub's content-creation limit.
const MAX_TASKS_PER_MINUTE: u32 = 80;

struct Compiler<'a> {
    path: &'a str,
    /// Every rejection so far: compilation goes on past one, so a pass reports them all.
    errors: std::cell::RefCell<Vec<ManifestError>>,
}

/// Defaults after validation.
struct Defaults {
    policy: Option<String>,
    timeout: Option<Duration>,
    priority: Option<Priority>,
    base_ref: Option<String>,
}

impl Compiler<'_> {
    /// The value, or `None` with its error recorded.
    fn keep<T>(&self, result: Result<T, ManifestError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors.borrow_mut().push(e);
                None
            }
        }
    }

    fn invalid(&self, at: Location, key: &str, found: &str, expected: &str) -> ManifestError {
        let (line, column) = position(at);
        ManifestError::InvalidValue {
            path: self.path.to_string(),
            line,
            column,
            key: key.to_string(),
            found: shorten(found),
            expected: expected.to_string(),
        }
    }

    /// Every entry is compiled, each rejection recorded; on any, all of them in file order.
    fn compile(&self, raw: RawManifest) -> Result<Manifest, Vec<ManifestError>> {
        let result = self.compile_entries(raw);
        let mut errors = self.errors.take();
        match result {
            Err(e) => errors.push(e),
            Ok(m) if errors.is_empty() => return Ok(m),
            Ok(_) => {}
        }
        errors.sort_by_key(ManifestError::location);
        Err(errors)
    }

    fn compile_entries(&self, raw: RawManifest) -> Result<Manifest, ManifestError> {
        let defaults = self.defaults(raw.defaults.unwrap_or_default())?;
        let tasks_per_minute = match raw.tasks_per_minute {
            Some(t) if !(1..=MAX_TASKS_PER_MINUTE).contains(&t.value) => {
                return Err(self.invalid(
                    t.referenced,
                    "tasks-per-minute",
                    &t.value.to_string(),
                    "1 to 80: GitHub allows one user at most 80 content-creating requests a minute, and each task also brings commit statuses and a comment",
                ));
            }
            t => t.map(|t| t.value),
        };
        let entries_at = position(raw.entries.referenced);
        if raw.entries.value.is_empty() {
            return Err(self.invalid(
                raw.entries.referenced,
                "entries",
                "[]",
                "at least one entry (`- repositories: [...]`, `instruction: ...`, `scope: [...]`)",
            ));
        }
        let mut entries = Vec::with_capacity(raw.entries.value.len());
        let mut ids: HashMap<String, usize> = HashMap::new();
        // (identity, lower-cased repository) → line of its first job.
        let mut jobs: HashMap<(String, String), usize> = HashMap::new();
        for raw_entry in raw.entries.value {
            let line = position(raw_entry.referenced).0;
            let Some(entry) = self.entry(&raw_entry.value, line, &defaults) else {
                continue; // its errors are recorded
            };
            if let (Some(id), Some(at)) = (&entry.entry.id, &entry.id_at) {
                let key = id.to_ascii_lowercase();
                if let Some(first) = ids.get(&key) {
                    let (line, column) = position(*at);
                    self.keep::<()>(Err(ManifestError::DuplicateId {
                        path: self.path.to_string(),
                        line,
                        column,
                        id: id.clone(),
                        first_line: *first,
                    }));
                } else {
                    ids.insert(key, position(*at).0);
                }
            }
            for (repo, at) in entry.entry.repositories.iter().zip(&entry.repo_at) {
                let key = (entry.entry.identity.clone(), repo.to_ascii_lowercase());
                let (line, column) = position(*at);
                if let Some(first) = jobs.get(&key) {
                    self.keep::<()>(Err(ManifestError::DuplicateJob {
                        path: self.path.to_string(),
                        line,
                        column,
                        repository: repo.clone(),
                        first_line: *first,
                    }));
                } else {
                    jobs.insert(key, line);
                }
            }
            entries.push(entry.entry);
        }
        Ok(Manifest {
            path: self.path.to_string(),
            entries,
            entries_at,
            tasks_per_minute,
        })
    }

    fn defaults(&self, raw: RawDefaults) -> Result<Defaults, ManifestError> {
        Ok(Defaults {
            policy: raw
                .policy
                .map(|p| self.policy_path(&p, "defaults.policy"))
                .transpose()?,
            timeout: raw
                .timeout
                .map(|t| self.timeout(&t, "defaults.timeout"))
                .transpose()?,
            priority: raw
                .priority
                .map(|p| self.priority(&p, "defaults.priority"))
                .transpose()?,
            base_ref: raw
                .base_ref
                .map(|b| self.base_ref(&b, "defaults.base-ref"))
                .transpose()?,
        })
    }

    fn entry(&self, raw: &RawEntry, line: usize, defaults: &Defaults) -> Option<CompiledEntry> {
        // Every field is checked, each rejection recorded, before the entry is dropped.
        let errors_before = self.errors.borrow().len();
        let id = raw.id.as_ref().map(|id| self.id(id)).transpose();
        let id = self.keep(id).flatten();
        if raw.repositories.value.is_empty() {
            self.keep::<()>(Err(self.invalid(
                raw.repositories.referenced,
                "repositories",
                "[]",
                "at least one `owner/repo`",
            )));
        }
        let mut repositories = Vec::with_capacity(raw.repositories.value.len());
        let mut repo_at = Vec::with_capacity(raw.repositories.value.len());
        for r in &raw.repositories.value {
            if let Some(repo) = self.keep(self.repository(r)) {
                repositories.push(repo);
                repo_at.push(r.referenced);
            }
        }
        let instruction = raw.instruction.value.trim().to_string();
        if instruction.is_empty() {
            self.keep::<()>(Err(self.invalid(
                raw.instruction.referenced,
                "instruction",
                &raw.instruction.value,
                "a non-empty instruction for the agent",
            )));
        }
        let mut scope = Vec::with_capacity(raw.scope.value.len());
        for g in &raw.scope.value {
            if let Some(glob) = self.keep(self.glob(g)) {
                scope.push(glob);
            }
        }
        let policy = match &raw.policy {
            Some(p) => self.keep(self.policy_path(p, "policy")).unwrap_or_default(),
            None => defaults
                .policy
                .clone()
                .unwrap_or_else(|| DEFAULT_POLICY_PATH.to_string()),
        };
        let timeout = match &raw.timeout {
            Some(t) => self.keep(self.timeout(t, "timeout")),
            None => defaults.timeout,
        };
        let priority = match &raw.priority {
            Some(p) => self.keep(self.priority(p, "priority")).unwrap_or_default(),
            None => defaults.priority.unwrap_or_default(),
        };
        let base_ref = match &raw.base_ref {
            Some(b) => self.keep(self.base_ref(b, "base-ref")),
            None => defaults.base_ref.clone(),
        };
        if self.errors.borrow().len() > errors_before {
            return None;
        }
        let identity = match &id {
            Some(id) => format!("id:{id}"),
            None => content_identity(&instruction, &scope, &policy, base_ref.as_deref()),
        };
        Some(CompiledEntry {
            id_at: raw.id.as_ref().map(|i| i.referenced),
            repo_at,
            entry: Entry {
                id,
                line,
                repositories,
                instruction,
                scope,
                policy,
                timeout,
                priority,
                base_ref,
                identity,
            },
        })
    }

    fn id(&self, id: &Spanned<String>) -> Result<String, ManifestError> {
        let v = id.value.trim();
        let ok = (1..=64).contains(&v.len())
            && v.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(v.to_string())
        } else {
            Err(self.invalid(
                id.referenced,
                "id",
                &id.value,
                "1 to 64 letters, digits, `-`, `_` or `.`, starting with a letter or digit",
            ))
        }
    }

    fn repository(&self, r: &Spanned<String>) -> Result<String, ManifestError> {
        let v = r.value.trim();
        if valid_repository(v) {
            Ok(v.to_string())
        } else {
            Err(self.invalid(
                r.referenced,
                "repositories",
                &r.value,
                "`owner/repo` (owner: letters, digits and single `-`, at most 39; repo: letters, digits, `.`, `-`, `_`, at most 100)",
            ))
        }
    }

    fn glob(&self, g: &Spanned<String>) -> Result<String, ManifestError> {
        let v = g.value.trim();
        if v.is_empty() {
            return Err(self.invalid(g.referenced, "scope", &g.value, "a non-empty glob"));
        }
        if v.contains([',', '\n', '\r']) {
            return Err(self.invalid(
                g.referenced,
                "scope",
                v,
                "a glob without `,` or line breaks (the `scope` input is split on both; write `{a,b}` as two globs)",
            ));
        }
        if v.starts_with('!') {
            return Err(self.invalid(
                g.referenced,
                "scope",
                v,
                "a glob of paths the agent may change (no `!` negation: the scope only narrows the policy's allow rules, and the policy's deny rules still apply)",
            ));
        }
        crate::core::scope::Pattern::new(v).map_err(|e| {
            self.invalid(
                g.referenced,
                "scope",
                v,
                &format!("a valid glob ({})", e.to_string().trim()),
            )
        })?;
        Ok(v.to_string())
    }

    fn policy_path(&self, p: &Spanned<String>, key: &str) -> Result<String, ManifestError> {
        let v = p.value.trim();
        let bad = v.is_empty()
            || v.starts_with('/')
            || v.contains(['\n', '\r', '\\'])
            || v.split('/').any(|c| c == "..");
        if bad {
            Err(self.invalid(
                p.referenced,
                key,
                &p.value,
                "a path inside the repository such as `.github/agent-gate.yml` (relative, no `..`)",
            ))
        } else {
            Ok(v.to_string())
        }
    }

    fn timeout(&self, t: &Spanned<String>, key: &str) -> Result<Duration, ManifestError> {
        match parse_duration(&t.value) {
            Some(d) if !d.is_zero() => Ok(d),
            _ => Err(self.invalid(
                t.referenced,
                key,
                &t.value,
                "a duration like `45m`, `2h` or `1h30m` (units h, m, s), greater than zero",
            )),
        }
    }

    fn priority(&self, p: &Spanned<String>, key: &str) -> Result<Priority, ManifestError> {
        Priority::parse(&p.value)
            .ok_or_else(|| self.invalid(p.referenced, key, &p.value, "`high`, `normal` or `low`"))
    }

    fn base_ref(&self, b: &Spanned<String>, key: &str) -> Result<String, ManifestError> {
        let v = b.value.trim();
        let bad = v.is_empty()
            || v.starts_with('-')
            || v.contains(|c: char| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c))
            || v.contains("..");
        if bad {
            Err(self.invalid(b.referenced, key, &b.value, "a branch name such as `main`"))
        } else {
            Ok(v.to_string())
        }
    }
}

/// An entry and the locations the duplicate checks report.
struct CompiledEntry {
    entry: Entry,
    id_at: Option<Location>,
    repo_at: Vec<Location>,
}

/// GitHub's rules ([`crate::core::slug::RepoSlug::parse`]).
fn valid_repository(text: &str) -> bool {
    crate::core::slug::RepoSlug::parse(text).is_ok()
}

/// `content:` + 16 hex digits of SHA-256 over what defines the task: instruction, scope,
/// policy path and base ref (not the priority or the timeout, which only say how to wait).
fn content_identity(
    instruction: &str,
    scope: &[String],
    policy: &str,
    base_ref: Option<&str>,
) -> String {
    let mut h = Sha256::new();
    h.update(instruction.as_bytes());
    h.update([0u8]);
    for g in scope {
        h.update(g.as_bytes());
        h.update([1u8]);
    }
    h.update([0u8]);
    h.update(policy.as_bytes());
    h.update([0u8]);
    h.update(base_ref.unwrap_or("").as_bytes());
    format!("content:{}", crate::core::prompt::hex(&h.finalize()[..8]))
}

fn shorten(text: &str) -> String {
    const MAX: usize = 60;
    let one_line = text.replace('\n', "⏎");
    if one_line.chars().count() <= MAX {
        one_line
    } else {
        let mut out: String = one_line.chars().take(MAX).collect();
        out.push('…');
        out
    }
}
