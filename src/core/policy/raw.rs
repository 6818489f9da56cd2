//! The policy file as written: serde types that mirror the YAML of DESIGN §3 one to one,
//! with `deny_unknown_fields` everywhere and source locations ([`Spanned`]) on every value
//! that compilation may reject. They also derive `JsonSchema`, so the published schema is
//! generated from the same definitions the parser uses. This module does not validate
//! values or fill defaults; `compile` does.

use std::fmt;

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::{
    Allowance, CheckNetwork, Isolation, OnHeld, OnIdle, OnReviewBacklog, OnViolation,
    OnWaitingForUser,
};

/// Just the `version` key, read first and leniently so that a policy for another version is
/// reported as such instead of as a list of unknown keys.
#[derive(Debug, Deserialize)]
pub(crate) struct VersionProbe {
    pub version: Option<Spanned<Version>>,
}

/// agent-gate scope policy, version 1: which repositories the gate may run an agent on, how
/// the agent task is run, which paths its change may touch, which checks run on it, and how
/// the result is reported. Every key but `version` is optional.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(title = "agent-gate policy")]
pub(crate) struct RawPolicy {
    /// Policy format version. Must be `1`.
    #[schemars(with = "u32", range(min = 1, max = 1))]
    pub version: Option<Spanned<Version>>,
    /// Allow-list of repositories (`owner/repo`) the gate may run on. Empty or absent: any.
    #[schemars(with = "Option<Vec<String>>", extend("default" = []))]
    pub repositories: Option<Vec<Spanned<String>>>,
    /// How the agent task is started, waited for and budgeted.
    pub agent: Option<RawAgent>,
    /// Which paths the agent's change may touch, and limits on its size.
    pub scope: Option<RawScope>,
    /// What to do with the checks of a change that violates the scope: `skip` them
    /// (reported as skipped) or `run` them anyway.
    #[schemars(extend("default" = "skip"))]
    pub checks_on_violation: Option<OnViolation>,
    /// `strict`: refuse to run checks while a credential is readable to them (when the gate
    /// cannot drop privileges). `best-effort`: run them anyway and say so in the report.
    #[schemars(extend("default" = "strict"))]
    pub checks_isolation: Option<Isolation>,
    /// Commands run against the agent's change (tests, linters), in an isolated copy of the tree.
    #[schemars(with = "Option<Vec<RawCheck>>", extend("default" = []))]
    pub checks: Option<Vec<Spanned<RawCheck>>>,
    /// Commit status and pull-request comment.
    pub report: Option<RawReport>,
}

/// The `agent` section.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(rename = "Agent")]
pub(crate) struct RawAgent {
    /// Branch the agent starts from and the change is compared against. Default: the
    /// repository's default branch.
    #[schemars(with = "Option<String>")]
    pub base_ref: Option<Spanned<String>>,
    /// Deadline of the task, e.g. `45m`, `2h`, `1h30m` (units `h`, `m`, `s`).
    #[schemars(with = "Option<Duration>", extend("default" = "60m"))]
    pub timeout: Option<Spanned<String>>,
    /// Polling intervals while waiting for the task.
    pub poll: Option<RawPoll>,
    /// When the agent goes idle without finishing: `accept` (gate what the branch holds),
    /// `wait` (keep waiting until the deadline) or `fail`.
    #[schemars(extend("default" = "accept"))]
    pub on_idle: Option<OnIdle>,
    /// When the agent waits for a person's answer: `fail` or `wait`.
    #[schemars(extend("default" = "fail"))]
    pub on_waiting_for_user: Option<OnWaitingForUser>,
    /// Ask the agent to open a pull request (GitHub's own default is `false`).
    #[schemars(extend("default" = true))]
    pub create_pull_request: Option<bool>,
    /// Accept a task that produced no change as `passed` instead of `agent-failed`.
    #[schemars(extend("default" = false))]
    pub allow_no_change: Option<bool>,
    /// Tasks that may run at once per repository; later callers wait their turn. Default: no cap.
    #[schemars(with = "Option<u32>", range(min = 1))]
    pub max_concurrent_tasks: Option<Spanned<u32>>,
    /// Slots of `max-concurrent-tasks` that only `priority: high` runs may take.
    #[schemars(with = "Option<u32>", extend("default" = 0))]
    pub reserved_for_high: Option<Spanned<u32>>,
    /// Daily budget of tasks started by agent-gate. Default: none.
    pub max_tasks_per_day: Option<u32>,
    /// Daily budget of AI credits spent by agent-gate's tasks. Default: none.
    #[schemars(with = "Option<f64>", range(min = 0))]
    pub max_ai_credits_per_day: Option<Spanned<f64>>,
    /// Follow-up tasks that receive the gate's findings when a change fails.
    #[schemars(extend("default" = 0))]
    pub repair_rounds: Option<u32>,
    /// Review capacity: open pull requests from agent-gate's tasks the repository may have
    /// before a run starts another task. Default: no limit.
    #[schemars(range(min = 1))]
    pub max_open_pull_requests: Option<u32>,
    /// At `max-open-pull-requests`: `fail` (the run ends over-budget, nothing started) or
    /// `wait` (until one is merged or closed, within the deadline).
    #[schemars(extend("default" = "fail"))]
    pub on_review_backlog: Option<OnReviewBacklog>,
}

/// `agent.poll`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(rename = "Poll")]
pub(crate) struct RawPoll {
    /// First polling interval.
    #[schemars(with = "Option<Duration>", extend("default" = "5s"))]
    pub initial: Option<Spanned<String>>,
    /// Longest polling interval (intervals grow from `initial` up to this); at least `initial`.
    #[schemars(with = "Option<Duration>", extend("default" = "60s"))]
    pub max: Option<Spanned<String>>,
    /// Interval after a poll GitHub answered `304 Not Modified` (the task unchanged; such a
    /// request does not count against the rate limit); kept between `initial` and `max`.
    #[schemars(with = "Option<Duration>", extend("default" = "5s"))]
    pub watch: Option<Spanned<String>>,
}

/// The `scope` section.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(rename = "Scope")]
pub(crate) struct RawScope {
    /// Globs (gitignore semantics) a changed path must match. Empty: everything not denied.
    #[schemars(with = "Option<GlobList>", extend("default" = []))]
    pub allow: Option<Spanned<GlobList>>,
    /// Globs a changed path must not match. Deny wins over allow.
    #[schemars(with = "Option<GlobList>", extend("default" = []))]
    pub deny: Option<Spanned<GlobList>>,
    /// Extra protected globs, added to the always-protected paths (never removes any).
    #[schemars(with = "Option<GlobList>", extend("default" = []))]
    pub protected: Option<Spanned<GlobList>>,
    /// Most changed files a change may have. Default: no limit.
    pub max_files: Option<usize>,
    /// Most changed lines (added + deleted) a change may have. Default: no limit.
    pub max_changed_lines: Option<u64>,
    /// Whether binary files may be added or changed (deleting one is always allowed).
    #[schemars(extend("default" = "deny"))]
    pub binary_files: Option<Allowance>,
    /// Whether symbolic links may be added or changed (deleting one is always allowed).
    #[schemars(extend("default" = "deny"))]
    pub symlinks: Option<Allowance>,
    /// Whether submodules may be added or changed (deleting one is allowed; `.gitmodules`
    /// stays protected).
    #[schemars(extend("default" = "deny"))]
    pub submodules: Option<Allowance>,
    /// Whether file modes (the executable bit) may change, and new executable files be added.
    #[schemars(extend("default" = "deny"))]
    pub mode_changes: Option<Allowance>,
}

/// One entry of `checks`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(
    rename = "Check",
    extend("oneOf" = [{"required": ["run"]}, {"required": ["github-checks"]}])
)]
pub(crate) struct RawCheck {
    /// Name shown in reports; unique within the policy.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// Command, run with `bash -c` in an isolated copy of the change's tree. `{files}` is
    /// replaced by the changed paths that match `files`, shell-quoted. A check has `run` or
    /// `github-checks`, never both.
    #[schemars(with = "Option<String>")]
    pub run: Option<Spanned<String>>,
    /// Instead of `run`: await the repository's own CI on the agent's pull request — check
    /// runs (by name) and commit statuses (by context) on its head commit. A list of names,
    /// or `required` for the base branch's required status checks (rules for the branch and
    /// branch protection). Waits within the run's deadline (or `timeout`, when given);
    /// never approves anything.
    #[schemars(with = "Option<GitHubChecksSchema>")]
    pub github_checks: Option<Spanned<GlobList>>,
    /// With `github-checks`: workflow runs held at "Approve and run workflows"
    /// (`action_required`) either fail the check at once (`fail`) or are waited for until a
    /// person approves them or the deadline passes (`wait`).
    #[schemars(with = "Option<OnHeld>", extend("default" = "fail"))]
    pub on_held: Option<Spanned<OnHeld>>,
    /// Deadline of the check; it is killed with its whole process group when it passes.
    #[schemars(with = "Option<Duration>", extend("default" = "10m"))]
    pub timeout: Option<Spanned<String>>,
    /// Run the check only if a changed path matches one of these globs. Default: always.
    #[schemars(with = "Option<GlobList>")]
    pub when: Option<Spanned<GlobList>>,
    /// Which changed paths `{files}` expands to. Default: every changed path.
    #[schemars(with = "Option<GlobList>")]
    pub files: Option<Spanned<GlobList>>,
    /// `false`: advisory; reported, but never fails the gate.
    #[schemars(extend("default" = true))]
    pub required: Option<bool>,
    /// Extra environment variables for the check (the rest of its environment is scrubbed).
    #[schemars(with = "Option<std::collections::BTreeMap<String, String>>")]
    pub env: Option<EnvMap>,
    /// Run the command in a container of this image (the repository's toolchain, e.g.
    /// `python:3.12-slim`), through the Docker engine the runner gives every container
    /// action, with `sh -c` instead of the gate's `bash -c`. Default: in the gate's container.
    #[schemars(with = "Option<String>")]
    pub image: Option<Spanned<String>>,
    /// With `image`: the container's network. `none` (default: no network at all),
    /// `bridge` (the engine's default network) or `host`.
    #[schemars(with = "Option<CheckNetwork>", extend("default" = "none"))]
    pub network: Option<Spanned<CheckNetwork>>,
    /// With `image`: the container's memory limit, e.g. `512m`, `2g` (units `k`, `m`, `g`).
    #[schemars(with = "Option<String>", extend("default" = "2g"))]
    pub memory: Option<Spanned<String>>,
    /// With `image`: CPUs the container may use, e.g. `1.5`.
    #[schemars(with = "Option<f64>", extend("default" = 2.0))]
    pub cpus: Option<Spanned<f64>>,
    /// With `image`: the most processes and threads in the container.
    #[schemars(with = "Option<u32>", extend("default" = 1024))]
    pub pids: Option<Spanned<u32>>,
}

/// The `report` section.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(rename = "Report")]
pub(crate) struct RawReport {
    /// Context of the commit status set on the pull request's head.
    #[schemars(with = "Option<String>", extend("default" = "agent-gate"))]
    pub status_context: Option<Spanned<String>>,
    /// Post (and update) a comment on the pull request with the verdict.
    #[schemars(extend("default" = true))]
    pub comment: Option<bool>,
}

/// A duration: whole numbers with units `h`, `m`, `s`, largest first, e.g. `30s`, `45m`,
/// `2h`, `1h30m`. Never zero.
#[derive(JsonSchema)]
#[schemars(transparent)]
#[allow(
    dead_code,
    reason = "only used to describe durations in the JSON schema"
)]
pub(crate) struct Duration(
    #[schemars(regex(pattern = r"^([0-9]+h([0-9]+m)?([0-9]+s)?|[0-9]+m([0-9]+s)?|[0-9]+s)$"))]
    String,
);

/// `github-checks`: the word `required`, or a list of check-run names and commit-status
/// contexts.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code, reason = "describes the schema; never constructed")]
pub(crate) enum GitHubChecksSchema {
    /// The base branch's required status checks.
    Required(RequiredWord),
    /// Check-run names and commit-status contexts, matched exactly.
    Names(Vec<String>),
}

/// The one word `github-checks` accepts instead of a list.
#[derive(JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code, reason = "describes the schema; never constructed")]
pub(crate) enum RequiredWord {
    Required,
}

/// One glob, or a list of globs (gitignore semantics).
#[derive(Debug, JsonSchema)]
#[serde(untagged)]
pub(crate) enum GlobList {
    One(#[schemars(with = "String")] Spanned<String>),
    Many(#[schemars(with = "Vec<String>")] Vec<Spanned<String>>),
}

impl GlobList {
    /// The globs with their locations, in file order.
    pub fn into_items(self) -> Vec<Spanned<String>> {
        match self {
            GlobList::One(one) => vec![one],
            GlobList::Many(many) => many,
        }
    }
}

impl<'de> Deserialize<'de> for GlobList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct GlobListVisitor;

        impl<'de> Visitor<'de> for GlobListVisitor {
            type Value = GlobList;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a glob or a list of globs")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<GlobList, E> {
                // A single glob; its location is the location of the whole value, which
                // compile takes from the enclosing `Spanned`.
                Ok(GlobList::One(Spanned::new(
                    v.to_string(),
                    serde_saphyr::Location::UNKNOWN,
                    serde_saphyr::Location::UNKNOWN,
                )))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<GlobList, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<String>>()? {
                    items.push(item);
                }
                Ok(GlobList::Many(items))
            }
        }

        deserializer.deserialize_any(GlobListVisitor)
    }
}

/// `env:` of a check, keeping every name's location.
#[derive(Debug)]
pub(crate) struct EnvMap(pub Vec<(Spanned<String>, String)>);

impl<'de> Deserialize<'de> for EnvMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EnvVisitor;

        impl<'de> Visitor<'de> for EnvVisitor {
            type Value = EnvMap;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of variable names to string values")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EnvMap, A::Error> {
                let mut pairs = Vec::new();
                while let Some(name) = map.next_key::<Spanned<String>>()? {
                    let value = map.next_value::<String>()?;
                    pairs.push((name, value));
                }
                Ok(EnvMap(pairs))
            }
        }

        deserializer.deserialize_map(EnvVisitor)
    }
}

/// The value of `version`, whatever its YAML type, so that `version: "1"` or `version: 2`
/// gets a precise message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Version {
    Integer(i128),
    Other(String),
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct VersionVisitor;

        impl Visitor<'_> for VersionVisitor {
            type Value = Version;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("the number 1")
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Version, E> {
                Ok(Version::Other(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Version, E> {
                Ok(Version::Integer(i128::from(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Version, E> {
                Ok(Version::Integer(i128::from(v)))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Version, E> {
                Ok(Version::Integer(v))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Version, E> {
                Ok(i128::try_from(v)
                    .map_or_else(|_| Version::Other(v.to_string()), Version::Integer))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Version, E> {
                Ok(Version::Other(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Version, E> {
                Ok(Version::Other(format!("\"{v}\"")))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Version, E> {
                Ok(Version::Other("null".into()))
            }
            fn visit_none<E: de::Error>(self) -> Result<Version, E> {
                Ok(Version::Other("null".into()))
            }
        }

        deserializer.deserialize_any(VersionVisitor)
    }
}
