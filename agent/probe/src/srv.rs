//! RFC 6186/8314 SRV records of a mail domain: which services exist, how one lookup is made
//! with hickory (through the system's resolver configuration, within one `io_timeout`), and the
//! order clients use the answers in. The ordering is pure.

use crate::dns::{self, NameServers};
use mailmend_core::{
    DiscoveredServer, DiscoveryLookup, DiscoveryMethod, DiscoverySource, DnsOutcome, LookupOutcome,
    Protocol, Security,
};
use std::time::Duration;

/// A mail service published by SRV: the label, what it serves and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// e.g. `_imaps._tcp`.
    pub label: &'static str,
    pub protocol: Protocol,
    pub security: Security,
}

/// The mail services of RFC 6186 (STARTTLS) and RFC 8314 (implicit TLS). The plaintext-or-
/// STARTTLS services are read as STARTTLS: mailmend never proposes plaintext.
pub const MAIL_SERVICES: [Service; 6] = [
    Service {
        label: "_imaps._tcp",
        protocol: Protocol::Imap,
        security: Security::Tls,
    },
    Service {
        label: "_imap._tcp",
        protocol: Protocol::Imap,
        security: Security::StartTls,
    },
    Service {
        label: "_pop3s._tcp",
        protocol: Protocol::Pop3,
        security: Security::Tls,
    },
    Service {
        label: "_pop3._tcp",
        protocol: Protocol::Pop3,
        security: Security::StartTls,
    },
    Service {
        label: "_submissions._tcp",
        protocol: Protocol::Smtp,
        security: Security::Tls,
    },
    Service {
        label: "_submission._tcp",
        protocol: Protocol::Smtp,
        security: Security::StartTls,
    },
];

/// The Exchange Autodiscover service label.
pub const AUTODISCOVER_LABEL: &str = "_autodiscover._tcp";

/// The most records taken from one answer.
pub const MAX_RECORDS: usize = 16;

/// One SRV record as answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// The target, lower-case, without the final dot; empty for ".".
    pub target: String,
}

/// What one SRV name gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SrvAnswer {
    Records(Vec<SrvRecord>),
    NotOffered,
    NotFound(String),
    Failed(String),
}

/// The owner name of `label` in `domain`, e.g. `_imaps._tcp.example.com`.
pub fn owner(label: &str, domain: &str) -> String {
    format!("{label}.{domain}")
}

/// Reads records into an answer: a single "." target means the service is not offered
/// (RFC 2782); records with "." among others, port 0 or an invalid target are dropped.
pub fn answer_from(records: Vec<SrvRecord>) -> SrvAnswer {
    if records.len() == 1 && records[0].target.is_empty() {
        return SrvAnswer::NotOffered;
    }
    let usable: Vec<SrvRecord> = records
        .into_iter()
        .filter(|r| r.port != 0 && crate::http::is_host_name(&r.target))
        .take(MAX_RECORDS)
        .collect();
    if usable.is_empty() {
        SrvAnswer::NotFound("no usable SRV record".into())
    } else {
        SrvAnswer::Records(usable)
    }
}

/// The servers of one protocol's answers in the order a client uses them: by priority across
/// the implicit-TLS and STARTTLS services (RFC 6186 3.4), implicit TLS first at equal priority
/// (RFC 8314 5.1), then the heavier weight first (a deterministic reading of RFC 2782's
/// weighted choice), then as answered.
pub fn order(
    domain: &str,
    answers: &[(Service, SrvAnswer)],
) -> (Vec<DiscoveredServer>, Vec<DiscoveryLookup>) {
    let mut servers: Vec<(u16, bool, std::cmp::Reverse<u16>, usize, DiscoveredServer)> = Vec::new();
    let mut lookups = Vec::new();
    let mut seq = 0usize;
    for (service, answer) in answers {
        let source = DiscoverySource {
            method: DiscoveryMethod::Srv,
            location: owner(service.label, domain),
        };
        let outcome = match answer {
            SrvAnswer::Records(records) => {
                for r in records {
                    servers.push((
                        r.priority,
                        service.security != Security::Tls,
                        std::cmp::Reverse(r.weight),
                        seq,
                        DiscoveredServer {
                            protocol: service.protocol,
                            host: r.target.clone(),
                            port: r.port,
                            security: service.security,
                            priority: Some(r.priority),
                            weight: Some(r.weight),
                            url: None,
                            source: source.clone(),
                        },
                    ));
                    seq += 1;
                }
                LookupOutcome::Found {
                    servers: records.len(),
                }
            }
            SrvAnswer::NotOffered => LookupOutcome::NotOffered,
            SrvAnswer::NotFound(detail) => LookupOutcome::NotFound {
                detail: detail.clone(),
            },
            SrvAnswer::Failed(detail) => LookupOutcome::Failed {
                detail: detail.clone(),
            },
        };
        lookups.push(DiscoveryLookup { source, outcome });
    }
    // Protocols keep the order of MAIL_SERVICES; inside one, the client's order.
    let rank = |p: Protocol| MAIL_SERVICES.iter().position(|s| s.protocol == p);
    servers.sort_by(|a, b| {
        (rank(a.4.protocol), a.0, a.1, a.2, a.3).cmp(&(rank(b.4.protocol), b.0, b.1, b.2, b.3))
    });
    (servers.into_iter().map(|s| s.4).collect(), lookups)
}

/// Asks for the SRV records of `name` (a fully qualified owner name) within `timeout`.
pub(crate) async fn lookup(servers: &NameServers, name: &str, timeout: Duration) -> SrvAnswer {
    let resolver = dns::resolver(servers, timeout, dns::Mode::Direct).0;
    // The final dot keeps the resolver from trying the search domains.
    let fqdn = format!("{}.", name.trim_end_matches('.'));
    match tokio::time::timeout(timeout, resolver.srv_lookup(fqdn)).await {
        Err(_) => SrvAnswer::Failed(format!(
            "no answer from the name servers within {} ms",
            timeout.as_millis()
        )),
        Ok(Ok(found)) => answer_from(
            found
                .iter()
                .map(|srv| SrvRecord {
                    priority: srv.priority(),
                    weight: srv.weight(),
                    port: srv.port(),
                    target: srv
                        .target()
                        .to_ascii()
                        .trim_end_matches('.')
                        .to_ascii_lowercase(),
                })
                .collect(),
        ),
        Ok(Err(e)) => match dns::classify(&e) {
            DnsOutcome::NxDomain => SrvAnswer::NotFound("no such name".into()),
            DnsOutcome::NoRecords => SrvAnswer::NotFound("no SRV record".into()),
            DnsOutcome::ResolverUnreachable { detail } | DnsOutcome::Failed { detail } => {
                SrvAnswer::Failed(detail)
            }
            DnsOutcome::Resolved { .. } => SrvAnswer::NotFound("no SRV record".into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(priority: u16, weight: u16, port: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port,
            target: target.into(),
        }
    }

    fn svc(label: &str) -> Service {
        *MAIL_SERVICES.iter().find(|s| s.label == label).unwrap()
    }

    #[test]
    fn a_lone_dot_target_means_not_offered() {
        assert_eq!(answer_from(vec![rec(0, 0, 0, "")]), SrvAnswer::NotOffered);
        assert_eq!(
            answer_from(vec![rec(0, 0, 993, ""), rec(1, 0, 993, "imap.example.com")]),
            SrvAnswer::Records(vec![rec(1, 0, 993, "imap.example.com")])
        );
        assert!(matches!(
            answer_from(vec![rec(0, 0, 0, "imap.example.com")]),
            SrvAnswer::NotFound(_)
        ));
    }

    #[test]
    fn priority_orders_across_services_and_implicit_tls_wins_ties() {
        let answers = vec![
            (
                svc("_imaps._tcp"),
                SrvAnswer::Records(vec![
                    rec(10, 0, 993, "backup.example.com"),
                    rec(0, 5, 993, "light.example.com"),
                    rec(0, 50, 993, "heavy.example.com"),
                ]),
            ),
            (
                svc("_imap._tcp"),
                SrvAnswer::Records(vec![
                    rec(0, 100, 143, "starttls.example.com"),
                    rec(5, 0, 143, "mid.example.com"),
                ]),
            ),
            (svc("_submissions._tcp"), SrvAnswer::NotOffered),
            (
                svc("_submission._tcp"),
                SrvAnswer::Records(vec![rec(0, 0, 587, "smtp.example.com")]),
            ),
        ];
        let (servers, lookups) = order("example.com", &answers);
        let hosts: Vec<(&str, Security)> = servers
            .iter()
            .map(|s| (s.host.as_str(), s.security))
            .collect();
        assert_eq!(
            hosts,
            vec![
                ("heavy.example.com", Security::Tls),
                ("light.example.com", Security::Tls),
                ("starttls.example.com", Security::StartTls),
                ("mid.example.com", Security::StartTls),
                ("backup.example.com", Security::Tls),
                ("smtp.example.com", Security::StartTls),
            ]
        );
        assert_eq!(lookups[2].outcome, LookupOutcome::NotOffered);
        assert_eq!(lookups[0].source.location, "_imaps._tcp.example.com");
    }
}
