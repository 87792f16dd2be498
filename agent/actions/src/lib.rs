//! Performers that make non-settings fixes real on Linux, macOS and Windows: firewall
//! exceptions, DNS cache flushes, Kerberos renewals, user notifications.
//!
//! Each performer is split in two: pure code that reads tool output and decides what to run
//! (`firewall::model`, `firewall::nft`, `firewall::iptables`, `firewall::pf`,
//! `firewall::winfw`, `dns`, `kerberos`, `notify`, `credman`), unit-tested on Linux without a
//! system, and a thin platform layer that runs commands or calls the OS (`exec`, the `perform`
//! modules, `win`).
//!
//! | action | Linux | macOS | Windows |
//! |---|---|---|---|
//! | `add_firewall_exception` | `nftables` ([`NftablesFirewall`]; iptables fallback) | `pf_firewall` (`PfFirewall`, own anchor) | `windows_firewall` (`WindowsFirewall`, INetFwPolicy2) |
//! | `flush_dns` | `dns_flush`: systemd-resolved, nscd, unbound, dnsmasq | `dns_flush`: dscacheutil, mDNSResponder | `dns_flush`: DnsFlushResolverCache, `ipconfig /flushdns` |
//! | `renew_kerberos` | `kerberos_renew` ([`KerberosRenew`], `kinit -R` as the user) | none | none (Windows renews TGTs itself) |
//! | `notify_user` | `notify_user`: freedesktop notification per session bus | `notify_user`: osascript as the console user | `notify_user`: WTSSendMessageW to the console session |
//!
//! Windows also has `win::credentials::CredentialCache` (stale mail credentials in Credential
//! Manager), which no `Action` reaches yet. Every firewall performer tags what it adds with the
//! fix id, undoes exactly that, and has a `remove_all_mailmend_rules` for uninstall.

mod exec;

pub mod credman;
pub mod dns;
pub mod firewall;
pub mod kerberos;
pub mod notify;
#[cfg(windows)]
pub mod win;

#[cfg(any(target_os = "linux", target_os = "macos", windows))]
pub use dns::DnsFlush;
#[cfg(any(target_os = "linux", target_os = "macos", windows))]
pub use firewall::remove_all_mailmend_rules;
#[cfg(target_os = "linux")]
pub use firewall::NftablesFirewall;
#[cfg(target_os = "macos")]
pub use firewall::PfFirewall;
#[cfg(windows)]
pub use firewall::WindowsFirewall;
#[cfg(target_os = "linux")]
pub use kerberos::KerberosRenew;
#[cfg(any(target_os = "linux", target_os = "macos", windows))]
pub use notify::Notifier;

pub use mailmend_executor::{PerformError, Performer};

/// Tool output that could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// `nft -j list ruleset` printed something that is not its JSON format: an nft too old for
    /// `-j`, or warnings mixed into the output.
    #[error("cannot read the nftables ruleset (nft -j list ruleset): {detail}")]
    NftJson { detail: String },
    /// klist printed no ticket-granting ticket: an empty or missing credential cache, or an
    /// output format this parser does not know.
    #[error("cannot read klist output: {detail}")]
    Klist { detail: String },
}

/// Choices the policy makes about how performers act.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionOptions {
    /// Windows only: let the firewall performer disable the administrator's block rules that
    /// stop the mail connection (re-enabled at undo); policy key
    /// `firewall.windows_disable_blocking_rules`, default false.
    pub windows_disable_blocking_rules: bool,
}

/// Every performer for this platform, with the default options.
pub fn performers() -> Vec<Box<dyn Performer>> {
    performers_with(&ActionOptions::default())
}

/// Every performer for this platform.
#[cfg(target_os = "linux")]
pub fn performers_with(options: &ActionOptions) -> Vec<Box<dyn Performer>> {
    let _ = options;
    vec![
        Box::new(NftablesFirewall::new()),
        Box::new(DnsFlush::new()),
        Box::new(KerberosRenew::new()),
        Box::new(Notifier::new()),
    ]
}

/// Every performer for this platform.
#[cfg(target_os = "macos")]
pub fn performers_with(options: &ActionOptions) -> Vec<Box<dyn Performer>> {
    let _ = options;
    vec![
        Box::new(PfFirewall::new()),
        Box::new(DnsFlush::new()),
        Box::new(Notifier::new()),
    ]
}

/// Every performer for this platform.
#[cfg(windows)]
pub fn performers_with(options: &ActionOptions) -> Vec<Box<dyn Performer>> {
    vec![
        Box::new(
            WindowsFirewall::new().disabling_blocking_rules(options.windows_disable_blocking_rules),
        ),
        Box::new(DnsFlush::new()),
        Box::new(Notifier::new()),
    ]
}

/// Every performer for this platform: none on other systems.
#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
pub fn performers_with(options: &ActionOptions) -> Vec<Box<dyn Performer>> {
    let _ = options;
    Vec::new()
}
