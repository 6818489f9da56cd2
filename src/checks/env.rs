//! The scrubbed environment of a check process: it starts EMPTY and receives only an
//! allow-list of the gate's variables, a fresh `HOME`, and the check's declared `env:`.
//! Names that look like credentials are never passed, whatever their source. This module
//! decides names and values only; it does not spawn anything.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::Path;

/// A name containing one of these (case-insensitive) is never given to a check.
pub const RESERVED_SUBSTRINGS: &[&str] =
    &["TOKEN", "SECRET", "KEY", "PASSWORD", "PASSWD", "CREDENTIAL"];

/// A name starting with one of these (case-insensitive) is never given to a check: the
/// Actions runtime's own tokens and URLs, and the Action's inputs (which carry `token`).
pub const RESERVED_PREFIXES: &[&str] = &["ACTIONS_", "INPUT_"];

/// Variables of the gate passed through as they are (when set).
pub const PASSED_NAMES: &[&str] = &["PATH", "LANG", "LC_ALL", "TERM", "TZ", "CI"];

/// Prefixes of the gate's variables passed through, except [`WITHHELD_NAMES`] and reserved names.
pub const PASSED_PREFIXES: &[&str] = &["GITHUB_", "RUNNER_"];

/// `GITHUB_*` variables withheld although they hold no secret: the runner's file commands
/// (a check that could write them would set outputs, environment or `PATH` of later
/// steps), the event payload, and the workspace (checks run in their own copy of the tree;
/// the workspace holds the persisted checkout credentials).
pub const WITHHELD_NAMES: &[&str] = &[
    "GITHUB_OUTPUT",
    "GITHUB_ENV",
    "GITHUB_STATE",
    "GITHUB_PATH",
    "GITHUB_STEP_SUMMARY",
    "GITHUB_ARTIFACTS",
    "GITHUB_ARTIFACTS_LIST",
    "GITHUB_EVENT_PATH",
    "GITHUB_WORKSPACE",
];

/// `PATH` given to checks when the gate has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Is this name reserved for credentials (never given to a check, not even when declared)?
pub fn is_reserved_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    RESERVED_SUBSTRINGS.iter().any(|s| upper.contains(s))
        || RESERVED_PREFIXES.iter().any(|p| upper.starts_with(p))
}

/// Is the gate's variable `name` passed to checks?
pub fn is_passed_from_gate(name: &OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    if is_reserved_name(name) || WITHHELD_NAMES.contains(&name) {
        return false;
    }
    PASSED_NAMES.contains(&name)
        || PASSED_PREFIXES
            .iter()
            .any(|p| name.starts_with(p) && name.len() > p.len())
}

/// The complete environment of a check process, sorted by name: the allowed part of
/// `gate_env` (later duplicates win), then `HOME = home`, then the declared `env:` minus
/// reserved names (the planner rejects checks declaring one; this is the second lock) and
/// minus `HOME` (the fresh home is part of the isolation). `PATH` falls back to
/// [`DEFAULT_PATH`].
pub fn scrubbed_env(
    gate_env: &[(OsString, OsString)],
    declared: &BTreeMap<String, String>,
    home: &Path,
) -> Vec<(OsString, OsString)> {
    let mut out: BTreeMap<OsString, OsString> = BTreeMap::new();
    for (name, value) in gate_env {
        if is_passed_from_gate(name) {
            out.insert(name.clone(), value.clone());
        }
    }
    for (name, value) in declared {
        if !is_reserved_name(name) && name != "HOME" && !name.is_empty() && !name.contains('=') {
            out.insert(name.into(), value.into());
        }
    }
    out.insert("HOME".into(), home.as_os_str().to_owned());
    out.entry("PATH".into())
        .or_insert_with(|| DEFAULT_PATH.into());
    out.into_iter().collect()
}
