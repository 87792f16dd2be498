//! Performers that make non-settings fixes real: firewall exceptions, DNS cache flushes, Kerberos renewals.
//!
//! Each performer is split in two: pure code that reads tool output and decides what to run
//! (`firewall::model`, `firewall::nft`, `firewall::iptables`, `dns`, `kerberos`), unit-tested
//! without a system, and a thin Linux layer that runs the commands (`exec` and the `perform`
//! modules), tested against real nftables, iptables, unbound and an MIT KDC.
//!
//! - `nftables` ([`NftablesFirewall`]): inserts `accept` rules tagged `mailmend:<fix id>` before
//!   the first blocking rule of every blocking output chain; undo deletes exactly the tagged rules.
//! - `dns_flush` ([`DnsFlush`]): flushes systemd-resolved, nscd, unbound and dnsmasq; nothing to undo.
//! - `kerberos_renew` ([`KerberosRenew`]): `kinit -R` as the user; a renewal is not undone.

#[cfg(target_os = "linux")]
mod exec;

pub mod dns;
pub mod firewall;
pub mod kerberos;

#[cfg(target_os = "linux")]
pub use dns::DnsFlush;
#[cfg(target_os = "linux")]
pub use firewall::{remove_all_mailmend_rules, NftablesFirewall};
#[cfg(target_os = "linux")]
pub use kerberos::KerberosRenew;

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

/// Every performer for this platform.
#[cfg(target_os = "linux")]
pub fn performers() -> Vec<Box<dyn Performer>> {
    vec![
        Box::new(NftablesFirewall::new()),
        Box::new(DnsFlush::new()),
        Box::new(KerberosRenew::new()),
    ]
}

/// Every performer for this platform: none yet outside Linux.
#[cfg(not(target_os = "linux"))]
pub fn performers() -> Vec<Box<dyn Performer>> {
    Vec::new()
}
