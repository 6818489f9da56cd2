//! The raw (serde) form of a scenario file: one struct per YAML mapping, all with
//! `deny_unknown_fields`, and `Dur` with [`parse_duration`] for the duration syntax
//! (`500ms`, `2s`, `1.5m`, `1h`, bare seconds). It only mirrors the file; defaults,
//! validation and file reading are the compiler's (`compile`), and the compiled types the
//! server and agent read are in the parent module.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{BodyFault, FinalState, PerPagePolicy, PullArtifact, PullId, When};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawScenario {
    #[serde(default)]
    pub(super) tasks: Vec<Spanned<RawTask>>,
    #[serde(default)]
    pub(super) default: Option<Spanned<RawTask>>,
    #[serde(default)]
    pub(super) faults: Vec<Spanned<RawFault>>,
    #[serde(default)]
    pub(super) rate_limit: Option<Spanned<RawRateLimit>>,
    #[serde(default)]
    pub(super) creation_limit: Option<Spanned<RawCreationLimit>>,
    /// More than one content-creation limit (GitHub's are per minute and per hour).
    #[serde(default)]
    pub(super) creation_limits: Vec<Spanned<RawCreationLimit>>,
    #[serde(default)]
    pub(super) api: Option<RawApi>,
    #[serde(default)]
    pub(super) ci: Option<Spanned<RawCi>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawCi {
    #[serde(default)]
    pub(super) require_approval: Option<bool>,
    #[serde(default)]
    pub(super) approved_after: Option<Dur>,
    #[serde(default)]
    pub(super) required: Vec<String>,
    #[serde(default)]
    pub(super) protection: Option<Vec<String>>,
    #[serde(default)]
    pub(super) protection_forbidden: bool,
    #[serde(default)]
    pub(super) checks: Vec<Spanned<RawCiCheck>>,
    #[serde(default)]
    pub(super) statuses: Vec<Spanned<RawCiStatus>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawCiCheck {
    pub(super) name: String,
    #[serde(default)]
    pub(super) workflow: Option<String>,
    #[serde(default)]
    pub(super) queued: Option<Dur>,
    #[serde(default)]
    pub(super) duration: Option<Dur>,
    /// `never` for a check that never completes.
    #[serde(default)]
    pub(super) conclusion: Option<String>,
    #[serde(default)]
    pub(super) title: Option<String>,
    #[serde(default)]
    pub(super) summary: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawCiStatus {
    pub(super) context: String,
    #[serde(default)]
    pub(super) after: Option<Dur>,
    #[serde(default)]
    pub(super) duration: Option<Dur>,
    /// `never` for a status that stays pending.
    #[serde(default)]
    pub(super) state: Option<String>,
    #[serde(default)]
    pub(super) description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawTask {
    #[serde(rename = "match", default)]
    pub(super) matches: Option<String>,
    #[serde(default)]
    pub(super) queued: Option<Dur>,
    #[serde(default)]
    pub(super) work: Option<Dur>,
    #[serde(default)]
    pub(super) files: Option<Vec<Spanned<RawFileOp>>>,
    #[serde(rename = "final", default)]
    pub(super) final_state: Option<FinalState>,
    #[serde(default)]
    pub(super) error: Option<String>,
    #[serde(default)]
    pub(super) usage: Option<RawUsage>,
    #[serde(default)]
    pub(super) pull_artifact: Option<PullArtifact>,
    #[serde(default)]
    pub(super) working_state: Option<String>,
    #[serde(default)]
    pub(super) commit_message: Option<String>,
    #[serde(default)]
    pub(super) extra_fields: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUsage {
    #[serde(rename = "type")]
    pub(super) kind: UsageKind,
    pub(super) amount: f64,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub(super) enum UsageKind {
    AiCredits,
    PremiumRequests,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) enum RawFileOp {
    Write(RawWrite),
    PatchFile(String),
    Delete(String),
    Rename(RawRename),
    Mode(RawMode),
    Symlink(RawSymlink),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawWrite {
    pub(super) path: String,
    #[serde(default)]
    pub(super) content: Option<String>,
    #[serde(default)]
    pub(super) from_file: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRename {
    pub(super) from: String,
    pub(super) to: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMode {
    pub(super) path: String,
    pub(super) executable: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSymlink {
    pub(super) path: String,
    pub(super) target: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawFault {
    pub(super) endpoint: String,
    #[serde(default)]
    pub(super) nth: Option<u32>,
    #[serde(default)]
    pub(super) count: Option<u32>,
    #[serde(default)]
    pub(super) when: Option<When>,
    #[serde(default)]
    pub(super) delay: Option<Dur>,
    #[serde(default)]
    pub(super) status: Option<u16>,
    #[serde(default)]
    pub(super) message: Option<String>,
    #[serde(default)]
    pub(super) drop: Option<bool>,
    #[serde(default)]
    pub(super) body: Option<BodyFault>,
    #[serde(default)]
    pub(super) secondary_rate_limit: Option<RawSecondary>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawSecondary {
    #[serde(default)]
    pub(super) status: Option<u16>,
    #[serde(default)]
    pub(super) retry_after: Option<Dur>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawRateLimit {
    pub(super) limit: u32,
    #[serde(default)]
    pub(super) window: Option<Dur>,
    #[serde(default)]
    pub(super) status: Option<u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawCreationLimit {
    pub(super) max: u32,
    #[serde(default)]
    pub(super) window: Option<Dur>,
    #[serde(default)]
    pub(super) status: Option<u16>,
    #[serde(default)]
    pub(super) retry_after: Option<Dur>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawApi {
    #[serde(default)]
    pub(super) retired_versions: Vec<String>,
    #[serde(default)]
    pub(super) per_page_out_of_range: Option<PerPagePolicy>,
    #[serde(default)]
    pub(super) models: Option<Vec<String>>,
    #[serde(default)]
    pub(super) custom_agents: Option<Vec<String>>,
    #[serde(default)]
    pub(super) revoked_tokens: Vec<String>,
    #[serde(default)]
    pub(super) read_only_tokens: Vec<String>,
    #[serde(default)]
    pub(super) pull_artifact_id: Option<PullId>,
    #[serde(default)]
    pub(super) repositories: Option<Vec<String>>,
    #[serde(default)]
    pub(super) agent_disabled: bool,
}

/// A duration: `500ms`, `2s`, `1.5m`, `1h`, or a bare number of seconds.
pub(super) struct Dur(pub(super) Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as 500ms, 2s, 10m, 1h or a number of seconds")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Dur, E> {
                Ok(Dur(Duration::from_secs(v)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Dur, E> {
                u64::try_from(v)
                    .map(|v| Dur(Duration::from_secs(v)))
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Dur, E> {
                Duration::try_from_secs_f64(v)
                    .map(Dur)
                    .map_err(|_| E::custom("a duration must be a finite, non-negative number"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dur, E> {
                parse_duration(v).map(Dur).ok_or_else(|| {
                    E::custom(format!(
                        "invalid duration {v:?}: write 500ms, 2s, 10m or 1h"
                    ))
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// Parse `500ms`, `2s`, `1.5m`, `1h` or `3` (seconds).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(secs).ok()
}
