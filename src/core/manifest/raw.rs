//! The manifest as written: serde types that mirror the YAML one to one, with
//! `deny_unknown_fields` everywhere and source locations ([`Spanned`]) on every value that
//! compilation may reject. No validation and no defaults here; `compile` does both.

use serde::Deserialize;
use serde_saphyr::Spanned;

/// Just `version`, read first and leniently, so that a manifest for another version is
/// reported as such instead of as a list of unknown keys.
#[derive(Debug, Deserialize)]
pub(crate) struct VersionProbe {
    pub version: Option<Spanned<serde_json::Value>>,
}

/// A batch manifest, version 1.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawManifest {
    pub version: Option<Spanned<serde_json::Value>>,
    pub defaults: Option<RawDefaults>,
    pub tasks_per_minute: Option<Spanned<u32>>,
    pub entries: Spanned<Vec<Spanned<RawEntry>>>,
}

/// `defaults`: what an entry that does not say otherwise gets.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawDefaults {
    pub policy: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub priority: Option<Spanned<String>>,
    pub base_ref: Option<Spanned<String>>,
}

/// One entry of `entries`: an instruction run on each of its repositories.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawEntry {
    pub id: Option<Spanned<String>>,
    pub repositories: Spanned<Vec<Spanned<String>>>,
    pub instruction: Spanned<String>,
    pub scope: Spanned<Vec<Spanned<String>>>,
    pub priority: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub policy: Option<Spanned<String>>,
    pub base_ref: Option<Spanned<String>>,
}
