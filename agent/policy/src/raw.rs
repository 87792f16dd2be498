//! The policy file as written: serde structs that keep every value's span for error messages.
//!
//! Nothing here is validated beyond TOML types; `parse.rs` turns these into checked settings.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// An `[actions]` table: action kind name to mode string. A map rather than a struct so that an
/// unknown kind or mode gets a specific message instead of serde's generic one.
pub(crate) type RawActions = BTreeMap<Spanned<String>, Spanned<String>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    pub dry_run: Option<Spanned<bool>>,
    pub log_level: Option<Spanned<String>>,
    pub actions: Option<RawActions>,
    pub hosts: Option<RawHosts>,
    pub limits: Option<RawLimits>,
    pub probes: Option<RawProbes>,
    pub tls: Option<RawTls>,
    pub plugins: Option<RawPlugins>,
    pub credentials: Option<RawCredentials>,
    pub firewall: Option<RawFirewall>,
    #[serde(rename = "override", default)]
    pub overrides: Vec<Spanned<RawOverride>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHosts {
    pub allowed_domains: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub fixes_per_account_per_hour: Option<Spanned<i64>>,
    pub quarantine_after: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProbes {
    pub connect_timeout_ms: Option<Spanned<i64>>,
    pub io_timeout_ms: Option<Spanned<i64>>,
    pub check_interval_secs: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    pub extra_ca_files: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCredentials {
    pub source: Option<Spanned<String>>,
    pub min_interval_secs: Option<Spanned<i64>>,
    pub check_sender: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFirewall {
    pub windows_disable_blocking_rules: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPlugins {
    pub directory: Option<Spanned<String>>,
    pub allowed: Option<Spanned<Vec<Spanned<RawPluginEntry>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPluginEntry {
    pub name: Spanned<String>,
    pub sha256: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOverride {
    #[serde(rename = "match")]
    pub matcher: Option<Spanned<RawMatch>>,
    pub actions: Option<Spanned<RawActions>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMatch {
    pub client: Option<Spanned<String>>,
    pub domain: Option<Spanned<String>>,
}
