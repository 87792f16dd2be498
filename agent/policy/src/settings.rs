//! The validated, effective policy values, and the names and limits they are checked against.

use mailmend_core::{ActionKind, ClientKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// What the agent does with a proposed fix of some kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Apply it, verify, roll back if the account is not healthier.
    Auto,
    /// Do not apply it; report it to the user and the admin.
    Recommend,
    /// Neither apply nor recommend it; only audit it.
    Deny,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Auto, Mode::Recommend, Mode::Deny];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Recommend => "recommend",
            Mode::Deny => "deny",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// How restrictive the mode is: `Deny` > `Recommend` > `Auto`.
    pub fn strictness(self) -> u8 {
        match self {
            Mode::Auto => 0,
            Mode::Recommend => 1,
            Mode::Deny => 2,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the agent may take a password from to check that it still works.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialSource {
    /// Never log in: only what a server says before authentication is checked.
    None,
    /// The password the mail client stores in its own configuration file. Commands that
    /// produce a password (`passwordeval`, `PassCmd`, backticks) are never run.
    Client,
}

impl CredentialSource {
    pub const ALL: [CredentialSource; 2] = [CredentialSource::None, CredentialSource::Client];

    pub fn as_str(self) -> &'static str {
        match self {
            CredentialSource::None => "none",
            CredentialSource::Client => "client",
        }
    }

    pub fn parse(s: &str) -> Option<CredentialSource> {
        CredentialSource::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A plugin the agent may load: its name and the SHA-256 of its file, lower-case hex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginAllow {
    pub name: String,
    pub sha256: String,
}

/// Modes for the accounts of one client and/or email domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    /// Matches accounts of this client; `None` matches every client.
    pub client: Option<ClientKind>,
    /// Matches accounts whose email domain is this domain or a subdomain of it; `None` matches
    /// every domain. Lower-case, no trailing dot.
    pub domain: Option<String>,
    /// The modes this override sets; kinds it does not name fall through.
    pub actions: BTreeMap<ActionKind, Mode>,
}

impl Override {
    /// Whether the override applies to accounts of `client` with email domain `domain`.
    pub fn matches(&self, client: ClientKind, domain: Option<&str>) -> bool {
        let client_ok = self.client.is_none_or(|c| c == client);
        let domain_ok = match (&self.domain, domain) {
            (None, _) => true,
            (Some(want), Some(have)) => in_domain(have, want),
            (Some(_), None) => false,
        };
        client_ok && domain_ok
    }
}

/// Every effective setting. Equality here is what "the same policy" means: where the values
/// came from (file, line, hash) does not take part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    pub dry_run: bool,
    pub log_level: String,
    pub actions: BTreeMap<ActionKind, Mode>,
    pub allowed_domains: Vec<String>,
    pub fixes_per_account_per_hour: u32,
    pub quarantine_after: u32,
    pub connect_timeout_ms: u64,
    pub io_timeout_ms: u64,
    pub check_interval_secs: u64,
    pub extra_ca_files: Vec<PathBuf>,
    pub plugin_dir: PathBuf,
    pub plugins: Vec<PluginAllow>,
    pub overrides: Vec<Override>,
    pub credential_source: CredentialSource,
    pub credential_min_interval_secs: u64,
    pub credential_check_sender: bool,
    pub windows_disable_blocking_rules: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            dry_run: false,
            log_level: "info".to_string(),
            actions: ActionKind::ALL
                .into_iter()
                .map(|k| (k, default_mode(k)))
                .collect(),
            allowed_domains: Vec::new(),
            fixes_per_account_per_hour: 3,
            quarantine_after: 3,
            connect_timeout_ms: 5000,
            io_timeout_ms: 5000,
            check_interval_secs: 900,
            extra_ca_files: Vec::new(),
            plugin_dir: default_plugin_dir(),
            plugins: Vec::new(),
            overrides: Vec::new(),
            credential_source: CredentialSource::None,
            credential_min_interval_secs: 86_400,
            credential_check_sender: true,
            windows_disable_blocking_rules: false,
        }
    }
}

/// The mode of each kind when the policy does not name it: changes that can lock an account or
/// that central IT usually owns are only recommended.
pub(crate) fn default_mode(kind: ActionKind) -> Mode {
    match kind {
        ActionKind::SetAuthMethod | ActionKind::AddFirewallException => Mode::Recommend,
        ActionKind::SetHost
        | ActionKind::SetPort
        | ActionKind::SetSecurity
        | ActionKind::FlushDns
        | ActionKind::RenewKerberos
        | ActionKind::NotifyUser => Mode::Auto,
    }
}

/// The platform's plugin directory.
pub(crate) fn default_plugin_dir() -> PathBuf {
    #[cfg(windows)]
    {
        let base = std::env::var_os("ProgramFiles")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(r"C:\Program Files"));
        base.join("mailmend").join("plugins")
    }
    #[cfg(not(windows))]
    {
        PathBuf::from("/usr/lib/mailmend/plugins")
    }
}

pub(crate) const LOG_LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

pub(crate) const CLIENTS: [ClientKind; 7] = [
    ClientKind::Thunderbird,
    ClientKind::Outlook,
    ClientKind::Evolution,
    ClientKind::Msmtp,
    ClientKind::Mbsync,
    ClientKind::Mutt,
    ClientKind::Aerc,
];

/// The only ports a firewall exception may open: SMTP, submission, POP3 and IMAP, each with and
/// without implicit TLS.
pub const MAIL_PORTS: [u16; 7] = [25, 110, 143, 465, 587, 993, 995];

/// Upper bound for the probe timeouts: a probe that waits longer than this is not a probe.
pub(crate) const MAX_TIMEOUT_MS: i64 = 600_000;
/// Upper bound for the check interval: one week.
pub(crate) const MAX_CHECK_INTERVAL_SECS: i64 = 604_800;
/// Bounds of the interval between two logins with the same credential: one hour to 30 days.
/// Less than an hour would let a few machines of one user reach a server's lockout threshold.
pub(crate) const MIN_CREDENTIAL_INTERVAL_SECS: i64 = 3_600;
pub(crate) const MAX_CREDENTIAL_INTERVAL_SECS: i64 = 2_592_000;

/// Lower-cases a host name and removes one trailing dot (the DNS root).
pub fn normalize_host(host: &str) -> String {
    let h = host.trim().to_ascii_lowercase();
    match h.strip_suffix('.') {
        Some(stripped) => stripped.to_string(),
        None => h,
    }
}

/// Whether `host` is `domain` or a subdomain of it, on a label boundary: `mail.example.com` is in
/// `example.com`, `evilexample.com` is not. Both must already be normalised.
pub fn in_domain(host: &str, domain: &str) -> bool {
    if domain.is_empty() {
        return false;
    }
    host == domain
        || (host.len() > domain.len()
            && host.ends_with(domain)
            && host.as_bytes()[host.len() - domain.len() - 1] == b'.')
}

/// Whether `s` is a syntactically valid DNS host name: ASCII letters, digits and hyphens in
/// labels of 1 to 63 characters, at most 253 characters in all.
pub fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Whether a path string is absolute on any platform mailmend runs on (`/x`, `\\server\x`,
/// `C:\x`). Checked the same way everywhere so a policy validates identically on every machine.
pub(crate) fn is_absolute_path(s: &str) -> bool {
    let b = s.as_bytes();
    s.starts_with('/')
        || s.starts_with("\\\\")
        || (b.len() >= 3
            && b[0].is_ascii_alphabetic()
            && b[1] == b':'
            && (b[2] == b'\\' || b[2] == b'/'))
}

/// The Levenshtein distance between two short strings, for "did you mean" hints.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidate closest to `word`, when it is close enough to be a likely typo.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d <= 3 && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_domain_respects_label_boundaries() {
        assert!(in_domain("example.com", "example.com"));
        assert!(in_domain("mail.example.com", "example.com"));
        assert!(!in_domain("evilexample.com", "example.com"));
        assert!(!in_domain("example.com", "mail.example.com"));
        assert!(!in_domain("com", "example.com"));
        assert!(!in_domain("example.com", ""));
    }

    #[test]
    fn normalize_host_lower_cases_and_drops_the_root_dot() {
        assert_eq!(normalize_host("IMAP.Example.COM."), "imap.example.com");
        assert_eq!(normalize_host("imap.example.com"), "imap.example.com");
    }

    #[test]
    fn dns_names_reject_url_and_injection_characters() {
        assert!(is_dns_name("imap.example.com"));
        assert!(is_dns_name("mail-1.example.com"));
        assert!(!is_dns_name("evil.com#.example.com"));
        assert!(!is_dns_name("evil.com/.example.com"));
        assert!(!is_dns_name("a..example.com"));
        assert!(!is_dns_name("-a.example.com"));
        assert!(!is_dns_name(""));
    }

    #[test]
    fn absolute_paths_are_recognised_for_every_platform() {
        assert!(is_absolute_path("/etc/mailmend/ca.pem"));
        assert!(is_absolute_path(r"C:\ProgramData\mailmend\ca.pem"));
        assert!(is_absolute_path(r"\\server\share\ca.pem"));
        assert!(!is_absolute_path("ca.pem"));
        assert!(!is_absolute_path("./ca.pem"));
        assert!(!is_absolute_path("C:ca.pem"));
    }

    #[test]
    fn typos_suggest_the_closest_name() {
        let kinds = ActionKind::ALL.map(|k| k.as_str());
        assert_eq!(closest("set_prot", kinds), Some("set_port"));
        assert_eq!(closest("completely_different", kinds), None);
    }
}
