//! DNS cache flushes: which caches exist and the commands that flush them, and the `dns_flush`
//! performer of each platform (Linux: systemd-resolved, nscd, unbound, dnsmasq; macOS:
//! dscacheutil and mDNSResponder; Windows: the DNS Client service's cache).

#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "linux")]
mod perform;

#[cfg(windows)]
pub use crate::win::dns::DnsFlush;
#[cfg(target_os = "macos")]
pub use macos::DnsFlush;
#[cfg(target_os = "linux")]
pub use perform::DnsFlush;

use serde::Serialize;
use std::path::PathBuf;

/// The kinds of local DNS cache the performer knows how to flush, in the order it tries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheKind {
    SystemdResolved,
    Nscd,
    Unbound,
    Dnsmasq,
}

impl CacheKind {
    pub const ALL: [CacheKind; 4] = [
        CacheKind::SystemdResolved,
        CacheKind::Nscd,
        CacheKind::Unbound,
        CacheKind::Dnsmasq,
    ];
}

/// One cache found on this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "cache", rename_all = "snake_case")]
pub enum Cache {
    SystemdResolved,
    Nscd,
    /// A local unbound controlled with `unbound-control -c config`.
    Unbound {
        config: PathBuf,
    },
    /// dnsmasq, flushed by SIGHUP to the process its pid file names.
    Dnsmasq {
        pid: u32,
    },
}

impl Cache {
    pub fn kind(&self) -> CacheKind {
        match self {
            Cache::SystemdResolved => CacheKind::SystemdResolved,
            Cache::Nscd => CacheKind::Nscd,
            Cache::Unbound { .. } => CacheKind::Unbound,
            Cache::Dnsmasq { .. } => CacheKind::Dnsmasq,
        }
    }
}

/// The commands (program, arguments) that flush `host` from `cache`; dnsmasq has none, it is
/// signalled. Unbound gets the name flushed (A, AAAA, MX, SRV and the other common types), its
/// queries in flight dropped, and its server round-trip and lameness memory cleared, so that a
/// moved server is asked afresh.
pub fn flush_commands(cache: &Cache, host: &str) -> Vec<(&'static str, Vec<String>)> {
    match cache {
        Cache::SystemdResolved => vec![("resolvectl", vec!["flush-caches".into()])],
        Cache::Nscd => vec![("nscd", vec!["-i".into(), "hosts".into()])],
        Cache::Unbound { config } => {
            let c = config.display().to_string();
            let with = |rest: &[&str]| {
                let mut a = vec!["-c".to_string(), c.clone()];
                a.extend(rest.iter().map(|s| s.to_string()));
                a
            };
            vec![
                ("unbound-control", with(&["flush", host])),
                ("unbound-control", with(&["flush_requestlist"])),
                ("unbound-control", with(&["flush_infra", "all"])),
            ]
        }
        Cache::Dnsmasq { .. } => Vec::new(),
    }
}

/// The commands that flush the macOS resolver caches: the Directory Service cache, then
/// mDNSResponder's (a SIGHUP makes it drop its cache; it is signalled by name because that is
/// Apple's documented way and launchd restarts it under its own pid).
pub fn macos_flush_commands() -> Vec<(&'static str, Vec<String>)> {
    vec![
        ("/usr/bin/dscacheutil", vec!["-flushcache".into()]),
        (
            "/usr/bin/killall",
            vec!["-HUP".into(), "mDNSResponder".into()],
        ),
    ]
}

/// The command that flushes the Windows DNS Client cache when dnsapi.dll's
/// `DnsFlushResolverCache` is missing or fails.
pub fn windows_flush_command() -> (&'static str, Vec<String>) {
    ("ipconfig", vec!["/flushdns".into()])
}

/// Whether `host` is a DNS name safe to pass as an argument: letters, digits, `-`, `_` and
/// dots, not starting with `-` (which a tool would read as an option).
pub fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && !host.starts_with('-')
        && !host.starts_with('.')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The pid in a pid file: its first line, a number above 1 (never init).
pub fn parse_pid(text: &str) -> Option<u32> {
    let pid: u32 = text.lines().next()?.trim().parse().ok()?;
    (pid > 1).then_some(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unbound_is_flushed_for_the_host_with_its_config() {
        let cmds = flush_commands(
            &Cache::Unbound {
                config: "/etc/unbound/unbound.conf".into(),
            },
            "imap.example.com",
        );
        assert_eq!(cmds.len(), 3);
        assert_eq!(
            cmds[0].1,
            vec![
                "-c",
                "/etc/unbound/unbound.conf",
                "flush",
                "imap.example.com"
            ]
        );
        assert_eq!(cmds[1].1[2], "flush_requestlist");
        assert_eq!(cmds[2].1[2..], ["flush_infra", "all"]);
        assert_eq!(
            flush_commands(&Cache::Nscd, "x")[0],
            ("nscd", vec!["-i".to_string(), "hosts".to_string()])
        );
        assert!(flush_commands(&Cache::Dnsmasq { pid: 5 }, "x").is_empty());
    }

    #[test]
    fn a_host_that_looks_like_an_option_is_refused() {
        assert!(valid_host("imap.example.com"));
        assert!(valid_host("mail-1.example.com."));
        assert!(!valid_host("-c/etc/passwd"));
        assert!(!valid_host("a b"));
        assert!(!valid_host(""));
    }

    #[test]
    fn pid_files_give_a_pid_other_than_init() {
        assert_eq!(parse_pid("1234\n"), Some(1234));
        assert_eq!(parse_pid(" 77 "), Some(77));
        assert_eq!(parse_pid("1\n"), None);
        assert_eq!(parse_pid("garbage"), None);
        assert_eq!(parse_pid(""), None);
    }

    #[test]
    fn macos_and_windows_flush_with_their_documented_commands() {
        let m = macos_flush_commands();
        assert_eq!(
            m[0],
            ("/usr/bin/dscacheutil", vec!["-flushcache".to_string()])
        );
        assert_eq!(m[1].1, ["-HUP", "mDNSResponder"]);
        assert_eq!(windows_flush_command().1, ["/flushdns"]);
    }

    #[test]
    fn caches_serialise_with_their_kind() {
        let v = serde_json::to_value(Cache::Dnsmasq { pid: 9 }).unwrap();
        assert_eq!(v["cache"], "dnsmasq");
        assert_eq!(v["pid"], 9);
    }
}
