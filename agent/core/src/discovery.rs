//! Server settings a mail domain publishes for its clients (RFC 6186/8314 SRV records,
//! Thunderbird autoconfig, Exchange Autodiscover), as values: what the prober found and where,
//! for diagnostics to verify by probing and for the policy's domain rule to trust.
//!
//! Everything here comes from the account's own email domain: its DNS, or documents fetched over
//! HTTPS with a verified certificate. Plain HTTP is never a source, so a network attacker who
//! cannot forge a certificate cannot name a server here (DNS without DNSSEC is trusted as far as
//! the policy trusts it: the domain's SRV records, like its MX, name its hosts).

use crate::model::{Protocol, Security};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The published mechanism a setting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscoveryMethod {
    /// An RFC 6186/8314 SRV record (`_imaps._tcp.<domain>` and the like).
    Srv,
    /// A Thunderbird autoconfig document (config-v1.1.xml) fetched over HTTPS.
    Autoconfig,
    /// An Exchange Autodiscover (POX) answer fetched over HTTPS.
    Autodiscover,
}

impl DiscoveryMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            DiscoveryMethod::Srv => "srv",
            DiscoveryMethod::Autoconfig => "autoconfig",
            DiscoveryMethod::Autodiscover => "autodiscover",
        }
    }

    /// The name admins know it by, for sentences.
    pub fn display_name(self) -> &'static str {
        match self {
            DiscoveryMethod::Srv => "SRV",
            DiscoveryMethod::Autoconfig => "autoconfig",
            DiscoveryMethod::Autodiscover => "Autodiscover",
        }
    }
}

impl fmt::Display for DiscoveryMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where something was looked up: the method and the exact name or URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoverySource {
    pub method: DiscoveryMethod,
    /// The SRV owner name (`_imaps._tcp.example.com`) or the HTTPS URL the answer came from
    /// (after redirects).
    pub location: String,
}

impl fmt::Display for DiscoverySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method.display_name(), self.location)
    }
}

/// One server a domain's published settings name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoveredServer {
    pub protocol: Protocol,
    /// Lower-case, without a final dot.
    pub host: String,
    pub port: u16,
    /// As published; `None` (plaintext) entries are kept as data but never proposed.
    pub security: Security,
    /// The SRV record's priority and weight; absent for documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    /// The Exchange Web Services URL, for Exchange servers that came with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub source: DiscoverySource,
}

impl DiscoveredServer {
    /// `SRV _imaps._tcp.example.com names mail.hosting.test:993`, the evidence sentence.
    pub fn describe(&self) -> String {
        let mut s = format!("{} names {}:{}", self.source, self.host, self.port);
        if let (Some(p), Some(w)) = (self.priority, self.weight) {
            s.push_str(&format!(" (priority {p}, weight {w})"));
        }
        if self.source.method != DiscoveryMethod::Srv {
            s.push_str(&format!(" with {}", self.security));
        }
        s
    }
}

/// What one lookup (one SRV name, one URL) came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case", deny_unknown_fields)]
pub enum LookupOutcome {
    /// The record or document named this many servers.
    Found { servers: usize },
    /// The record points elsewhere for the settings: an `_autodiscover._tcp` target, an
    /// Autodiscover `redirectAddr`.
    Points { to: String },
    /// Nothing is published there: no such name or record, HTTP 404, a document without
    /// usable settings. `detail` says which.
    NotFound { detail: String },
    /// The SRV target is "." : the domain says it does not offer this service (RFC 2782).
    NotOffered,
    /// The HTTPS server wants a login before it answers (HTTP 401 or 403).
    Unauthorized {
        status: u16,
        /// The authentication schemes the server offers (`WWW-Authenticate`), e.g.
        /// `Basic, NTLM, Negotiate`; never any credential.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        schemes: Option<String>,
    },
    /// The lookup itself failed: no answer in time, a refused connection, a certificate
    /// problem, a malformed answer.
    Failed { detail: String },
}

impl LookupOutcome {
    /// The outcome in words, for evidence.
    pub fn describe(&self) -> String {
        match self {
            LookupOutcome::Found { servers: 1 } => "names 1 server".to_string(),
            LookupOutcome::Found { servers } => format!("names {servers} servers"),
            LookupOutcome::Points { to } => format!("points to {to}"),
            LookupOutcome::NotFound { detail } => format!("nothing published ({detail})"),
            LookupOutcome::NotOffered => "the domain says the service is not offered".to_string(),
            LookupOutcome::Unauthorized { status, schemes } => match schemes {
                Some(s) => format!("HTTP {status}: requires a login ({s})"),
                None => format!("HTTP {status}: requires a login"),
            },
            LookupOutcome::Failed { detail } => format!("lookup failed: {detail}"),
        }
    }
}

/// One lookup and what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoveryLookup {
    pub source: DiscoverySource,
    pub outcome: LookupOutcome,
}

/// Everything a domain publishes about its mail servers, as found now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoveredSettings {
    /// The email domain asked about, lower-case.
    pub domain: String,
    /// Every server named, best first: SRV records (by priority across the implicit-TLS and
    /// STARTTLS services of a protocol, implicit TLS first on equal priority, then by weight),
    /// then autoconfig (document order), then Autodiscover.
    #[serde(default)]
    pub servers: Vec<DiscoveredServer>,
    /// Every lookup made, in a fixed order, with its outcome.
    #[serde(default)]
    pub lookups: Vec<DiscoveryLookup>,
    pub elapsed_ms: u64,
}

impl DiscoveredSettings {
    /// Settings with nothing found, e.g. from a prober that cannot look anything up.
    pub fn empty(domain: &str) -> DiscoveredSettings {
        DiscoveredSettings {
            domain: normalize(domain),
            servers: Vec::new(),
            lookups: Vec::new(),
            elapsed_ms: 0,
        }
    }

    /// The servers named for `protocol`, best first.
    pub fn servers_for(&self, protocol: Protocol) -> impl Iterator<Item = &DiscoveredServer> {
        self.servers.iter().filter(move |s| s.protocol == protocol)
    }

    /// The hosts that an encrypted setting names, lower-case, each once, best first: what the
    /// policy's domain rule may accept as a new host for an account of this domain.
    pub fn named_hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = Vec::new();
        for s in self.servers.iter().filter(|s| s.security.is_encrypted()) {
            let h = normalize(&s.host);
            if !h.is_empty() && !hosts.contains(&h) {
                hosts.push(h);
            }
        }
        hosts
    }

    /// The lookups where an Autodiscover server wanted a login (HTTP 401 or 403).
    pub fn unauthorized(&self) -> impl Iterator<Item = &DiscoveryLookup> {
        self.lookups.iter().filter(|l| {
            l.source.method == DiscoveryMethod::Autodiscover
                && matches!(l.outcome, LookupOutcome::Unauthorized { .. })
        })
    }
}

fn normalize(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(host: &str, security: Security, method: DiscoveryMethod) -> DiscoveredServer {
        DiscoveredServer {
            protocol: Protocol::Imap,
            host: host.into(),
            port: 993,
            security,
            priority: None,
            weight: None,
            url: None,
            source: DiscoverySource {
                method,
                location: "x".into(),
            },
        }
    }

    #[test]
    fn named_hosts_skip_plaintext_settings_and_repeat_no_host() {
        let s = DiscoveredSettings {
            domain: "example.com".into(),
            servers: vec![
                server("Mail.Hosting.test.", Security::Tls, DiscoveryMethod::Srv),
                server(
                    "plain.example.com",
                    Security::None,
                    DiscoveryMethod::Autoconfig,
                ),
                server(
                    "mail.hosting.test",
                    Security::StartTls,
                    DiscoveryMethod::Autoconfig,
                ),
            ],
            lookups: Vec::new(),
            elapsed_ms: 0,
        };
        assert_eq!(s.named_hosts(), vec!["mail.hosting.test".to_string()]);
    }

    #[test]
    fn evidence_names_the_record_and_the_server() {
        let mut s = server("mail.hosting.test", Security::Tls, DiscoveryMethod::Srv);
        s.source.location = "_imaps._tcp.example.com".into();
        s.priority = Some(0);
        s.weight = Some(1);
        assert_eq!(
            s.describe(),
            "SRV _imaps._tcp.example.com names mail.hosting.test:993 (priority 0, weight 1)"
        );
    }

    #[test]
    fn settings_round_trip_through_json() {
        let s = DiscoveredSettings {
            domain: "example.com".into(),
            servers: vec![server(
                "a.example.com",
                Security::Tls,
                DiscoveryMethod::Autodiscover,
            )],
            lookups: vec![DiscoveryLookup {
                source: DiscoverySource {
                    method: DiscoveryMethod::Autodiscover,
                    location: "https://autodiscover.example.com/autodiscover/autodiscover.xml"
                        .into(),
                },
                outcome: LookupOutcome::Unauthorized {
                    status: 401,
                    schemes: Some("Basic".into()),
                },
            }],
            elapsed_ms: 12,
        };
        let json = serde_json::to_string(&s).unwrap();
        let back: DiscoveredSettings = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.unauthorized().count(), 1);
    }
}
