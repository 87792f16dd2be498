//! Outbound firewall exceptions: the model and its two readers (nftables, iptables), the pf
//! and Windows Firewall rule texts and readers, and the performer of each platform: Linux
//! `nftables` ([`NftablesFirewall`]), macOS `pf_firewall` (`PfFirewall`), Windows
//! `windows_firewall` (`WindowsFirewall`, in `crate::win::firewall`).

pub mod iptables;
pub mod model;
pub mod nft;
#[cfg(target_os = "linux")]
mod perform;
pub mod pf;
#[cfg(target_os = "macos")]
mod pf_perform;
pub mod winfw;

#[cfg(windows)]
pub use crate::win::firewall::{remove_all_mailmend_rules, WindowsFirewall};
#[cfg(target_os = "linux")]
pub use perform::{remove_all_mailmend_rules, NftablesFirewall};
#[cfg(target_os = "macos")]
pub use pf_perform::{remove_all_mailmend_rules, PfFirewall};

use std::fmt;

/// The prefix of every comment mailmend puts on a firewall rule.
pub const COMMENT_PREFIX: &str = "mailmend:";

/// The comment that tags the rules of one fix.
pub fn comment_for(fix_id: &str) -> String {
    format!("{COMMENT_PREFIX}{fix_id}")
}

/// Whether a fix id is safe to put in a rule comment and find again: short, and only letters,
/// digits, `-`, `_` and `.` (the executor's ids look like `fx-20261122T101010Z-abcdef`).
pub fn valid_fix_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A firewall manager that owns the ruleset and rewrites it on reload, so that rules added
/// behind its back do not last (and may confuse it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    Firewalld,
    Ufw,
}

impl Manager {
    /// What the administrator should use instead.
    pub fn advice(self) -> &'static str {
        match self {
            Manager::Firewalld => {
                "firewalld manages this firewall; add the exception with firewall-cmd (a direct or policy rule) instead"
            }
            Manager::Ufw => "ufw manages this firewall; add the exception with `ufw allow out` instead",
        }
    }
}

impl fmt::Display for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Manager::Firewalld => "firewalld",
            Manager::Ufw => "ufw",
        })
    }
}

/// Tells whether firewalld or ufw manages the firewall, from the nftables table names, the
/// chain names (nftables and iptables), the text of `/etc/ufw/ufw.conf` and the names of the
/// running processes.
pub fn detect_manager(
    tables: &[String],
    chains: &[String],
    ufw_conf: Option<&str>,
    processes: &[String],
) -> Option<Manager> {
    if tables.iter().any(|t| t == "firewalld") || processes.iter().any(|p| p == "firewalld") {
        return Some(Manager::Firewalld);
    }
    let ufw_enabled = ufw_conf.is_some_and(|text| {
        text.lines().any(|l| {
            let l = l.trim();
            l.strip_prefix("ENABLED=")
                .is_some_and(|v| v.trim().trim_matches(|c| c == '"' || c == '\'') == "yes")
        })
    });
    if ufw_enabled
        || chains
            .iter()
            .any(|c| c.starts_with("ufw-") || c.starts_with("ufw6-"))
    {
        return Some(Manager::Ufw);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn firewalld_is_recognised_by_its_table_or_its_process() {
        assert_eq!(
            detect_manager(&s(&["firewalld"]), &[], None, &[]),
            Some(Manager::Firewalld)
        );
        assert_eq!(
            detect_manager(&[], &[], None, &s(&["sshd", "firewalld"])),
            Some(Manager::Firewalld)
        );
    }

    #[test]
    fn ufw_is_recognised_when_enabled_or_by_its_chains() {
        assert_eq!(
            detect_manager(&[], &[], Some("# comment\nENABLED=yes\n"), &[]),
            Some(Manager::Ufw)
        );
        assert_eq!(detect_manager(&[], &[], Some("ENABLED=no\n"), &[]), None);
        assert_eq!(
            detect_manager(&[], &s(&["OUTPUT", "ufw-before-output"]), None, &[]),
            Some(Manager::Ufw)
        );
        assert!(Manager::Ufw.advice().contains("ufw allow out"));
    }

    #[test]
    fn a_plain_ruleset_has_no_manager() {
        assert_eq!(
            detect_manager(&s(&["filter"]), &s(&["output"]), None, &s(&["nft"])),
            None
        );
    }

    #[test]
    fn fix_ids_that_could_escape_a_comment_are_refused() {
        assert!(valid_fix_id("fx-20261122T101010Z-abcdef"));
        assert!(!valid_fix_id("a\" accept"));
        assert!(!valid_fix_id(""));
        assert!(!valid_fix_id(&"a".repeat(101)));
        assert_eq!(comment_for("fx-1"), "mailmend:fx-1");
    }
}
