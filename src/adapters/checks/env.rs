//! The scrubbed environment of a check process: it starts EMPTY and receives only a fixed
//! list of the gate's variables (the locale, `PATH`, and the runner's documented default
//! variables that hold no secret), a fresh `HOME`, and the check's declared `env:`. No
//! pattern of names decides what passes: a credential called `GITHUB_PAT` or `RUNNER_PASS`
//! is withheld because it is not on the list. Names that look like credentials are refused
//! in `env:` too. This module decides names and values only; it does not spawn anything.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::Path;

/// A name containing one of these (case-insensitive) is never given to a check, not even
/// when a check declares it.
pub const RESERVED_SUBSTRINGS: &[&str] =
    &["TOKEN", "SECRET", "KEY", "PASSWORD", "PASSWD", "CREDENTIAL"];

/// A name starting with one of these (case-insensitive) is never given to a check: the
/// Actions runtime's own tokens and URLs, and the Action's inputs (which carry `token`).
pub const RESERVED_PREFIXES: &[&str] = &["ACTIONS_", "INPUT_"];

/// The gate's variables passed to checks as they are (when set), and no others: the
/// locale, `PATH`, and the default variables the Actions runner sets that hold no secret
/// (GitHub Docs, "Variables reference", default environment variables). Anything else a
/// check needs it declares in its own `env:`.
pub const PASSED_NAMES: &[&str] = &[
    "PATH",
    "LANG",
    "LC_ALL",
    "TERM",
    "TZ",
    "CI",
    "GITHUB_ACTION",
    "GITHUB_ACTION_REPOSITORY",
    "GITHUB_ACTIONS",
    "GITHUB_ACTOR",
    "GITHUB_ACTOR_ID",
    "GITHUB_API_URL",
    "GITHUB_BASE_REF",
    "GITHUB_EVENT_NAME",
    "GITHUB_GRAPHQL_URL",
    "GITHUB_HEAD_REF",
    "GITHUB_JOB",
    "GITHUB_REF",
    "GITHUB_REF_NAME",
    "GITHUB_REF_PROTECTED",
    "GITHUB_REF_TYPE",
    "GITHUB_REPOSITORY",
    "GITHUB_REPOSITORY_ID",
    "GITHUB_REPOSITORY_OWNER",
    "GITHUB_REPOSITORY_OWNER_ID",
    "GITHUB_RETENTION_DAYS",
    "GITHUB_RUN_ATTEMPT",
    "GITHUB_RUN_ID",
    "GITHUB_RUN_NUMBER",
    "GITHUB_SERVER_URL",
    "GITHUB_SHA",
    "GITHUB_TRIGGERING_ACTOR",
    "GITHUB_WORKFLOW",
    "GITHUB_WORKFLOW_REF",
    "GITHUB_WORKFLOW_SHA",
    "RUNNER_ARCH",
    "RUNNER_DEBUG",
    "RUNNER_ENVIRONMENT",
    "RUNNER_NAME",
    "RUNNER_OS",
    "RUNNER_TEMP",
    "RUNNER_TOOL_CACHE",
];

/// Default runner variables deliberately NOT in [`PASSED_NAMES`] although they hold no
/// secret: the runner's file commands (a check that could write them would set outputs,
/// environment or `PATH` of later steps), the event payload, and the workspace (checks run
/// in their own copy of the tree; the workspace holds the persisted checkout credentials).
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

/// Is the gate's variable `name` passed to checks? Only when it is one of [`PASSED_NAMES`].
pub fn is_passed_from_gate(name: &OsStr) -> bool {
    name.to_str()
        .is_some_and(|name| PASSED_NAMES.contains(&name) && !is_reserved_name(name))
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
