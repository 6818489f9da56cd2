//! Planning: which checks run for a change, and the exact command each runs. Pure: no
//! processes, no files. `when` decides whether a check runs at all; `{files}` in a
//! command expands to the changed paths matching `files`, each quoted for bash so that any
//! byte string (newlines, quotes, `$`, backticks, non-UTF-8) reaches the command as one
//! argument, byte for byte. Names that start with `-` are passed as `./-name` so that no
//! tool reads an agent-chosen file name as an option.

use std::collections::BTreeMap;
use std::time::Duration;

use bstr::{BString, ByteSlice};

use super::env;
use crate::core::policy::CheckSpec;
use crate::core::scope::RuleSet;

/// The placeholder a check command may contain.
pub const FILES_PLACEHOLDER: &str = "{files}";

/// Linux refuses one `execve` argument longer than this (`MAX_ARG_STRLEN`, 32 pages); the
/// expanded command is a single argument of `bash -c`.
pub const MAX_COMMAND_BYTES: usize = 32 * 4096 - 1;

/// One check after planning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCheck {
    pub name: String,
    pub required: bool,
    /// 1-based line of the check in the policy file.
    pub line: usize,
    pub timeout: Duration,
    /// The check's declared `env:` (already vetted: no reserved names).
    pub env: BTreeMap<String, String>,
    /// The image it runs in (`image:`), when not in the gate's own container.
    pub image: Option<crate::core::policy::CheckImage>,
    pub action: PlannedAction,
}

/// What the runner does with a planned check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlannedAction {
    /// Run `bash -c <command>`; `command` is bytes because file names may not be UTF-8.
    Run { command: BString },
    /// Not run, and that is fine (reported as skipped).
    Skip { reason: String },
    /// Cannot be run as written (reported as an error, which fails a required check).
    Reject { message: String },
    /// The program the command starts is not where the check runs: an environment error,
    /// not the change's (decided by the runner before any check starts).
    Unavailable { program: String, message: String },
}

impl PlannedCheck {
    /// The expanded command, when the check runs.
    pub fn command(&self) -> Option<&BString> {
        match &self.action {
            PlannedAction::Run { command } => Some(command),
            _ => None,
        }
    }
}

/// Plan every check of the policy for the change `changed` (repository-relative paths that
/// exist in the head tree, in the order `{files}` should list them).
///
/// - `when` present: the check runs only if at least one changed path matches it.
/// - `{files}` in `run`: replaced by the changed paths matching `files` (all changed paths
///   when `files` is absent), quoted for bash and separated by spaces; when none match the
///   check is skipped. `files` without `{files}` has no effect.
/// - A declared `env:` name that is reserved for credentials rejects the check.
pub fn plan(specs: &[CheckSpec], changed: &[BString]) -> Vec<PlannedCheck> {
    specs.iter().map(|spec| plan_one(spec, changed)).collect()
}

fn plan_one(spec: &CheckSpec, changed: &[BString]) -> PlannedCheck {
    let action = action_for(spec, changed);
    PlannedCheck {
        name: spec.name.clone(),
        required: spec.required,
        line: spec.line,
        timeout: spec.timeout,
        env: spec.env.clone(),
        image: spec.image.clone(),
        action,
    }
}

/// Why `spec` does not run for `changed`, when its `when` matches no changed path.
pub fn skipped_by_when(spec: &CheckSpec, changed: &[BString]) -> Option<String> {
    let when = spec.when.as_ref()?;
    (!changed.iter().any(|p| matches(when, p)))
        .then(|| format!("no changed path matches `when` ({})", rules_text(when)))
}

fn action_for(spec: &CheckSpec, changed: &[BString]) -> PlannedAction {
    if let Some(name) = spec.env.keys().find(|name| env::is_reserved_name(name)) {
        return PlannedAction::Reject {
            message: format!(
                "check `{}` (policy line {}) declares env `{name}`, but names containing {} or starting with {} are reserved for credentials and are never given to checks; rename the variable, or give the check no credential",
                spec.name,
                spec.line,
                env::RESERVED_SUBSTRINGS.join(", "),
                env::RESERVED_PREFIXES.join(" or "),
            ),
        };
    }
    if let Some(reason) = skipped_by_when(spec, changed) {
        return PlannedAction::Skip { reason };
    }
    if !spec.run.contains(FILES_PLACEHOLDER) {
        return PlannedAction::Run {
            command: BString::from(spec.run.as_str()),
        };
    }
    let selected: Vec<&BString> = match &spec.files {
        Some(files) => changed.iter().filter(|p| matches(files, p)).collect(),
        None => changed.iter().collect(),
    };
    if selected.is_empty() {
        let reason = match &spec.files {
            Some(files) => format!(
                "the command uses {FILES_PLACEHOLDER} and no changed path matches `files` ({})",
                rules_text(files)
            ),
            None => format!("the command uses {FILES_PLACEHOLDER} and there are no changed paths"),
        };
        return PlannedAction::Skip { reason };
    }
    let command = expand_files(&spec.run, selected.iter().map(|p| p.as_slice()));
    if command.len() > MAX_COMMAND_BYTES {
        return PlannedAction::Reject {
            message: format!(
                "check `{}` (policy line {}): with {} file names, the expanded command is {} bytes, over Linux's limit of {MAX_COMMAND_BYTES} bytes for one argument; narrow `files`, or run the tool on the whole tree instead of {FILES_PLACEHOLDER}",
                spec.name,
                spec.line,
                selected.len(),
                command.len()
            ),
        };
    }
    PlannedAction::Run { command }
}

fn matches(rules: &RuleSet, path: &[u8]) -> bool {
    rules.last_match(path).is_some()
}

fn rules_text(rules: &RuleSet) -> String {
    rules
        .rules()
        .iter()
        .map(|r| r.pattern.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Replace every `{files}` in `run` by the quoted `paths`, separated by single spaces.
pub fn expand_files<'a>(run: &str, paths: impl IntoIterator<Item = &'a [u8]>) -> BString {
    let mut list = Vec::new();
    for (i, path) in paths.into_iter().enumerate() {
        if i > 0 {
            list.push(b' ');
        }
        list.extend_from_slice(&quote_path(path));
    }
    BString::from(run.as_bytes().replace(FILES_PLACEHOLDER, &list))
}

/// The argument a path becomes: `./` is prepended to a name starting with `-`.
pub fn argument_for_path(path: &[u8]) -> Vec<u8> {
    if path.first() == Some(&b'-') {
        let mut out = b"./".to_vec();
        out.extend_from_slice(path);
        out
    } else {
        path.to_vec()
    }
}

/// Quote a repository path as one bash word that evaluates to [`argument_for_path`].
pub fn quote_path(path: &[u8]) -> Vec<u8> {
    quote_word(&argument_for_path(path))
}

/// Quote any byte string (no NUL) as one bash word: left bare when every byte is harmless,
/// otherwise in single quotes, with each `'` written as `'\''`. Inside single quotes bash
/// interprets nothing (no `$`, backtick, `\`, `!` or newline handling), so every other byte
/// stays itself.
pub fn quote_word(word: &[u8]) -> Vec<u8> {
    let bare = !word.is_empty()
        && word.iter().all(|&b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'_' | b'.' | b'/' | b'-' | b'+' | b',' | b':' | b'@' | b'%'
                )
        });
    if bare {
        return word.to_vec();
    }
    let mut out = Vec::with_capacity(word.len() + 2);
    out.push(b'\'');
    for &b in word {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    out
}
