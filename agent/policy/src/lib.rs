//! The policy engine: parses policy TOML with positions and decides every proposed action.
//!
//! Parsing and deciding are pure (values in, values out); only [`Policy::load`] reads a file.
//! Built-in rules that protect the user (no downgrade to plaintext, no host outside the
//! allowed domains, firewall exceptions only for mail ports) are applied before the admin's
//! modes and cannot be relaxed by any policy.

mod decide;
mod error;
mod parse;
mod raw;
mod render;
mod settings;

#[cfg(test)]
mod tests;

pub use decide::{Decision, DecisionContext};
pub use error::PolicyError;
pub use settings::{
    in_domain, is_dns_name, normalize_host, CredentialSource, Mode, Override, PluginAllow,
    MAIL_PORTS,
};

use mailmend_core::{Account, Action, ActionKind};
use parse::Provenance;
use settings::Settings;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The origin name of the policy compiled into the binary.
pub const EMBEDDED_ORIGIN: &str = "embedded:default.toml";

/// The text of `policies/default.toml`, used when no policy file is installed.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../../policies/default.toml");

/// A validated policy: the effective value of every setting, and where it came from.
///
/// Two policies are equal when their effective settings are equal; the origin, hash and the
/// line each value was written on describe where a policy came from, not what it says, so
/// they do not take part.
#[derive(Clone, Debug)]
pub struct Policy {
    origin: String,
    hash: String,
    settings: Settings,
    provenance: Provenance,
}

impl PartialEq for Policy {
    fn eq(&self, other: &Self) -> bool {
        self.settings == other.settings
    }
}

impl Eq for Policy {}

impl Policy {
    /// Parses and validates policy text. `origin` names it in errors (normally the file path).
    pub fn parse(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        let (settings, provenance) = parse::parse(text, origin)?;
        Ok(Policy {
            origin: origin.to_string(),
            hash: hex::encode(Sha256::digest(text.as_bytes())),
            settings,
            provenance,
        })
    }

    /// Reads the policy file at `path` and parses it.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let origin = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| PolicyError::Io {
            origin: origin.clone(),
            source,
        })?;
        match std::str::from_utf8(&bytes) {
            Ok(text) => Policy::parse(text, &origin),
            Err(e) => {
                let valid = &bytes[..e.valid_up_to()];
                // The prefix up to valid_up_to() is valid UTF-8 by definition.
                let prefix = std::str::from_utf8(valid).unwrap_or_default();
                Err(error::invalid_at(
                    &origin,
                    prefix,
                    prefix.len()..prefix.len(),
                    "the policy file is not valid UTF-8",
                    "save the file as UTF-8",
                ))
            }
        }
    }

    /// Loads the policy at `path`, or the embedded default when that file does not exist.
    /// Any other problem (unreadable, invalid) is an error: a broken policy must not silently
    /// fall back to a more permissive one.
    pub fn load_or_default(path: &Path) -> Result<Policy, PolicyError> {
        match Policy::load(path) {
            Err(e) if e.is_not_found() => Ok(Policy::embedded_default()),
            other => other,
        }
    }

    /// The policy compiled into the binary (`policies/default.toml`).
    pub fn embedded_default() -> Policy {
        match Policy::parse(EMBEDDED_DEFAULT, EMBEDDED_ORIGIN) {
            Ok(p) => p,
            // The unit test `embedded_default_parses` proves the shipped file is valid; should it
            // ever not be, the built-in defaults are the same values.
            Err(_) => Policy {
                origin: EMBEDDED_ORIGIN.to_string(),
                hash: hex::encode(Sha256::digest(EMBEDDED_DEFAULT.as_bytes())),
                settings: Settings::default(),
                provenance: Provenance::new(),
            },
        }
    }

    /// Where the platform keeps the machine's policy file.
    pub fn default_path() -> PathBuf {
        #[cfg(windows)]
        {
            let base = std::env::var_os("ProgramData")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"));
            base.join("mailmend").join("policy.toml")
        }
        #[cfg(target_os = "macos")]
        {
            PathBuf::from("/Library/Application Support/mailmend/policy.toml")
        }
        #[cfg(not(any(windows, target_os = "macos")))]
        {
            PathBuf::from("/etc/mailmend/policy.toml")
        }
    }

    /// The file path the policy was read from, or `embedded:default.toml`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// SHA-256 of the policy text, lower-case hex; recorded in the audit log with each decision.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Whether to decide and audit without changing anything.
    pub fn dry_run(&self) -> bool {
        self.settings.dry_run
    }

    /// One of `error`, `warn`, `info`, `debug`, `trace`.
    pub fn log_level(&self) -> &str {
        &self.settings.log_level
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.settings.connect_timeout_ms)
    }

    pub fn io_timeout(&self) -> Duration {
        Duration::from_millis(self.settings.io_timeout_ms)
    }

    pub fn check_interval(&self) -> Duration {
        Duration::from_secs(self.settings.check_interval_secs)
    }

    /// Absolute paths of extra PEM CA files to trust besides the system store.
    pub fn extra_ca_files(&self) -> &[PathBuf] {
        &self.settings.extra_ca_files
    }

    pub fn plugin_dir(&self) -> &Path {
        &self.settings.plugin_dir
    }

    /// The SHA-256 hashes of the plugins the agent may load, lower-case hex.
    pub fn allowed_plugin_hashes(&self) -> Vec<String> {
        self.settings
            .plugins
            .iter()
            .map(|a| a.sha256.clone())
            .collect()
    }

    /// The plugin allowlist with names, lower-case hex hashes.
    pub fn allowed_plugins(&self) -> &[PluginAllow] {
        &self.settings.plugins
    }

    /// Extra domains accounts may be pointed at, lower-case, no trailing dot.
    pub fn allowed_domains(&self) -> &[String] {
        &self.settings.allowed_domains
    }

    pub fn fixes_per_account_per_hour(&self) -> u32 {
        self.settings.fixes_per_account_per_hour
    }

    pub fn quarantine_after(&self) -> u32 {
        self.settings.quarantine_after
    }

    /// Where the agent may take passwords from to check them (`[credentials] source`).
    pub fn credential_source(&self) -> CredentialSource {
        self.settings.credential_source
    }

    /// The least time between two login attempts for one account endpoint with the same
    /// credential (`[credentials] min_interval_secs`).
    pub fn credential_min_interval(&self) -> Duration {
        Duration::from_secs(self.settings.credential_min_interval_secs)
    }

    /// Whether a successful SMTP login is followed by `MAIL FROM:<account address>` and
    /// `RCPT TO:<account address>` (then `RSET`, never `DATA`) to catch a server that refuses
    /// that sender.
    pub fn credential_check_sender(&self) -> bool {
        self.settings.credential_check_sender
    }

    /// Whether a firewall exception on Windows may disable the administrator's block rules that
    /// stop the mail connection (`[firewall] windows_disable_blocking_rules`). Windows Firewall
    /// lets a block rule beat every allow rule, so without this the exception is only
    /// recommended and the blocking rule is named.
    pub fn windows_disable_blocking_rules(&self) -> bool {
        self.settings.windows_disable_blocking_rules
    }

    /// The overrides in file order.
    pub fn overrides(&self) -> &[Override] {
        &self.settings.overrides
    }

    /// The mode for one action kind for `account`, and the dotted path of the rule that set it
    /// (`actions.set_host` or `override[N].actions.set_host`). For each kind the first override
    /// that matches the account and names the kind wins; without an account no override matches.
    pub fn mode_for(&self, kind: ActionKind, account: Option<&Account>) -> (Mode, String) {
        if let Some(acc) = account {
            let domain = acc.email_domain();
            for (i, o) in self.settings.overrides.iter().enumerate() {
                if o.matches(acc.client, domain.as_deref()) {
                    if let Some(mode) = o.actions.get(&kind) {
                        return (*mode, format!("override[{i}].actions.{kind}"));
                    }
                }
            }
        }
        let mode = self
            .settings
            .actions
            .get(&kind)
            .copied()
            .unwrap_or_else(|| settings::default_mode(kind));
        (mode, format!("actions.{kind}"))
    }

    /// Decides one proposed action: built-in rules (no downgrade, allowed hosts, firewall
    /// ports), then the quarantine and rate limits, then the strictest mode of the kinds the
    /// action involves. Dry run does not change the decision; the executor checks
    /// [`Policy::dry_run`] itself.
    pub fn decide(
        &self,
        action: &Action,
        account: Option<&Account>,
        ctx: &DecisionContext,
    ) -> Decision {
        decide::decide(self, action, account, ctx)
    }

    /// Human text for `mailmend policy check/show`: every effective setting and whether the
    /// file or the built-in default set it.
    pub fn explain(&self) -> String {
        render::explain(self)
    }

    /// The full effective policy as TOML; parsing it gives an equal policy.
    pub fn to_effective_toml(&self) -> String {
        render::to_effective_toml(self)
    }
}
