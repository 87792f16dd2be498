//! The discovery matrix (which port and security pairs to try when the configured one fails)
//! and the rule that picks the working pair to propose.
//!
//! The rule, in order:
//! 1. Only encrypted pairs are ever tried or proposed: plaintext is never a fix.
//! 2. A pair must be healthy, and for SMTP of an account that logs in, offer AUTH (port 25 often
//!    accepts mail without offering logins, which is useless for sending as the user); an IMAP
//!    pair whose server answers `LOGINDISABLED` with no password mechanism after TLS (an
//!    untrusted TLS proxy) is no use to a password account either.
//! 3. Implicit TLS beats STARTTLS (RFC 8314 section 3), even when STARTTLS works on the
//!    configured port: a 143-set-to-SSL/TLS account with both 993 SSL/TLS and 143 STARTTLS
//!    working is moved to 993 SSL/TLS (only the port changes, so the finding is
//!    `settings.wrong_port`).
//! 4. Within one security, the standard order: IMAP 993, 143; POP3 995, 110; SMTP 465, 587, 25;
//!    a non-standard configured port with the other security comes last.
//! 5. On other hosts (a moved or mistyped server), hosts are taken in order and the configured
//!    pair is kept when it works there, so the change stays as small as possible.

use crate::auth;
use mailmend_core::{
    AuthMethod, Endpoint, EndpointChange, ProbeReport, ProbeTarget, Protocol, Security,
};

/// The pairs a client tries for `protocol`, best first (Thunderbird's guess without the plaintext
/// variants).
pub fn standard_pairs(protocol: Protocol) -> &'static [(u16, Security)] {
    match protocol {
        Protocol::Imap => &[(993, Security::Tls), (143, Security::StartTls)],
        Protocol::Pop3 => &[(995, Security::Tls), (110, Security::StartTls)],
        Protocol::Smtp => &[
            (465, Security::Tls),
            (587, Security::StartTls),
            (25, Security::StartTls),
        ],
        Protocol::Exchange => &[],
    }
}

/// The pairs to try on the configured host when the configured pair failed or is not acceptable:
/// the standard pairs except the configured one, then, for a non-standard configured port, that
/// port with the other encrypted security.
pub fn same_host_alternatives(endpoint: &Endpoint) -> Vec<ProbeTarget> {
    let standard = standard_pairs(endpoint.protocol);
    let mut pairs: Vec<(u16, Security)> = standard.to_vec();
    if !standard.iter().any(|(port, _)| *port == endpoint.port) {
        pairs.push((endpoint.port, Security::Tls));
        pairs.push((endpoint.port, Security::StartTls));
    }
    pairs
        .into_iter()
        .filter(|pair| *pair != (endpoint.port, endpoint.security))
        .map(|(port, security)| target(endpoint.protocol, &endpoint.host, port, security))
        .collect()
}

/// The pairs to try on other hosts: the configured pair first when it is encrypted, then the
/// standard pairs, for every host in order.
pub fn other_host_targets(endpoint: &Endpoint, hosts: &[String]) -> Vec<ProbeTarget> {
    let mut pairs = Vec::new();
    if endpoint.security.is_encrypted() {
        pairs.push((endpoint.port, endpoint.security));
    }
    for pair in standard_pairs(endpoint.protocol) {
        if !pairs.contains(pair) {
            pairs.push(*pair);
        }
    }
    hosts
        .iter()
        .flat_map(|host| {
            pairs
                .iter()
                .map(|(port, security)| target(endpoint.protocol, host, *port, *security))
        })
        .collect()
}

fn target(protocol: Protocol, host: &str, port: u16, security: Security) -> ProbeTarget {
    ProbeTarget {
        protocol,
        host: host.to_string(),
        port,
        security,
    }
}

/// Whether the account could use this probed target: healthy, encrypted, for SMTP of an
/// account that logs in offering AUTH, and not asking a password account for encryption on the
/// encrypted connection (an untrusted TLS proxy: no login works there).
pub fn usable(report: &ProbeReport, endpoint: &Endpoint) -> bool {
    report.is_healthy()
        && report.target.security.is_encrypted()
        && offers_needed_auth(report, endpoint)
        && !auth::asks_for_encryption_over_tls(&endpoint.auth, report)
}

/// False only for SMTP that offers no AUTH at all to an account that logs in.
pub fn offers_needed_auth(report: &ProbeReport, endpoint: &Endpoint) -> bool {
    if endpoint.protocol != Protocol::Smtp || endpoint.auth == AuthMethod::None {
        return true;
    }
    report
        .capabilities
        .as_ref()
        .is_some_and(|caps| !caps.auth_mechanisms.is_empty())
}

/// The best usable report among alternatives on one host, by the module's rule.
pub fn best<'r>(reports: &'r [ProbeReport], endpoint: &Endpoint) -> Option<&'r ProbeReport> {
    reports
        .iter()
        .enumerate()
        .filter(|(_, r)| usable(r, endpoint))
        .min_by_key(|(index, r)| (r.target.security != Security::Tls, *index))
        .map(|(_, r)| r)
}

/// Whether the reports that are in settle [`best`] for these `targets` (one slot per target,
/// `None` while its probe runs): some usable report is in, and every target that [`best`]
/// would prefer to it is in too. A search can then stop waiting for the rest, which can only
/// be worse (a slow STARTTLS dialogue after implicit TLS already works, say).
pub fn settled(
    targets: &[ProbeTarget],
    reports: &[Option<ProbeReport>],
    endpoint: &Endpoint,
) -> bool {
    let key = |index: usize, target: &ProbeTarget| (target.security != Security::Tls, index);
    let best = reports
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.as_ref().map(|r| (i, r)))
        .filter(|(_, r)| usable(r, endpoint))
        .map(|(i, r)| key(i, &r.target))
        .min();
    let Some(best) = best else {
        return false;
    };
    targets
        .iter()
        .enumerate()
        .filter(|(i, t)| key(*i, t) < best)
        .all(|(i, _)| reports.get(i).is_some_and(Option::is_some))
}

/// The standard pairs of the mail protocols other than `protocol`, on `host`: whether any of
/// them answers tells a host that is up (a path dropping one port) from one that is gone.
pub fn other_protocols_on(protocol: Protocol, host: &str) -> Vec<ProbeTarget> {
    [Protocol::Imap, Protocol::Pop3, Protocol::Smtp]
        .into_iter()
        .filter(|p| *p != protocol)
        .flat_map(|p| {
            standard_pairs(p)
                .iter()
                .map(move |(port, security)| target(p, host, *port, *security))
        })
        .collect()
}

/// The best usable report on other hosts: the first host (in `hosts` order) with a usable
/// target, keeping the configured pair there when it works.
pub fn best_on_hosts<'r>(
    reports: &'r [ProbeReport],
    hosts: &[String],
    endpoint: &Endpoint,
) -> Option<&'r ProbeReport> {
    hosts.iter().find_map(|host| {
        let on_host: Vec<ProbeReport> = reports
            .iter()
            .filter(|r| r.target.host.eq_ignore_ascii_case(host))
            .cloned()
            .collect();
        let keep = on_host.iter().position(|r| {
            r.target.port == endpoint.port
                && r.target.security == endpoint.security
                && usable(r, endpoint)
        });
        let chosen = match keep {
            Some(i) => Some(&on_host[i]),
            None => best(&on_host, endpoint),
        }?;
        reports.iter().find(|r| r.target == chosen.target)
    })
}

/// The change that moves `endpoint` to `target`, naming only the fields that differ.
pub fn change_to(endpoint: &Endpoint, target: &ProbeTarget) -> EndpointChange {
    EndpointChange {
        host: (!endpoint.host.eq_ignore_ascii_case(&target.host)).then(|| target.host.clone()),
        port: (endpoint.port != target.port).then_some(target.port),
        security: (endpoint.security != target.security).then_some(target.security),
        auth: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(protocol: Protocol, port: u16, security: Security) -> Endpoint {
        Endpoint {
            protocol,
            host: "imap.example.com".into(),
            port,
            security,
            auth: AuthMethod::PasswordCleartext,
            username: None,
        }
    }

    #[test]
    fn the_matrix_never_contains_plaintext_or_the_configured_pair() {
        for protocol in [Protocol::Imap, Protocol::Pop3, Protocol::Smtp] {
            for port in [25, 110, 143, 465, 587, 993, 995, 2525] {
                for security in [Security::None, Security::StartTls, Security::Tls] {
                    let e = ep(protocol, port, security);
                    for t in same_host_alternatives(&e) {
                        assert_ne!(t.security, Security::None);
                        assert!(!(t.port == port && t.security == security));
                        assert_eq!(t.host, e.host);
                    }
                    for t in other_host_targets(&e, &["mail.example.com".into()]) {
                        assert_ne!(t.security, Security::None);
                    }
                }
            }
        }
    }

    #[test]
    fn imap_143_set_to_tls_tries_993_and_143_starttls() {
        let pairs: Vec<(u16, Security)> =
            same_host_alternatives(&ep(Protocol::Imap, 143, Security::Tls))
                .iter()
                .map(|t| (t.port, t.security))
                .collect();
        assert_eq!(pairs, [(993, Security::Tls), (143, Security::StartTls)]);
    }

    #[test]
    fn a_non_standard_port_is_also_tried_with_the_other_security() {
        let pairs: Vec<(u16, Security)> =
            same_host_alternatives(&ep(Protocol::Imap, 1143, Security::Tls))
                .iter()
                .map(|t| (t.port, t.security))
                .collect();
        assert_eq!(
            pairs,
            [
                (993, Security::Tls),
                (143, Security::StartTls),
                (1143, Security::StartTls)
            ]
        );
    }

    fn report(t: &ProbeTarget, healthy: bool) -> ProbeReport {
        use mailmend_core::{Capabilities, DnsOutcome, TcpOutcome};
        let address: std::net::SocketAddr = "10.0.0.1:993".parse().unwrap();
        ProbeReport {
            target: t.clone(),
            dns: DnsOutcome::Resolved {
                addresses: vec![address.ip()],
            },
            tcp: if healthy {
                TcpOutcome::Connected { address }
            } else {
                TcpOutcome::Refused { address }
            },
            tls: None,
            capabilities: healthy.then(Capabilities::default),
            protocol_error: None,
            elapsed_ms: 1,
        }
    }

    #[test]
    fn settled_waits_only_for_targets_that_could_beat_the_best_so_far() {
        let e = ep(Protocol::Imap, 1993, Security::Tls);
        let targets = same_host_alternatives(&e);
        // [993 TLS, 143 STARTTLS, 1993 STARTTLS]
        let r = |i: usize, ok: bool| Some(report(&targets[i], ok));
        // 993 TLS works: nothing can beat it, however slow the rest.
        assert!(settled(&targets, &[r(0, true), None, None], &e));
        // Only STARTTLS on 143 so far: 993 TLS would win if it works, so wait for it.
        assert!(!settled(&targets, &[None, r(1, true), None], &e));
        // 993 failed: 143 STARTTLS is settled before 1993 STARTTLS finishes.
        assert!(settled(&targets, &[r(0, false), r(1, true), None], &e));
        // Nothing usable yet: never settled early.
        assert!(!settled(&targets, &[r(0, false), None, None], &e));
    }

    #[test]
    fn a_pair_that_asks_for_encryption_after_tls_is_never_proposed() {
        use mailmend_core::{Capabilities, TlsOutcome};
        let e = ep(Protocol::Imap, 143, Security::Tls);
        let targets = same_host_alternatives(&e);
        // [993 TLS behind an untrusted proxy, 143 STARTTLS straight to the server]
        let mut proxy = report(&targets[0], true);
        proxy.tls = Some(TlsOutcome::Established {
            version: "TLSv1.3".into(),
            not_after: None,
        });
        proxy.capabilities = Some(Capabilities {
            login_disabled: true,
            ..Capabilities::default()
        });
        let direct = report(&targets[1], true);
        assert!(!usable(&proxy, &e));
        let reports = [proxy.clone(), direct];
        assert_eq!(best(&reports, &e).map(|r| r.target.port), Some(143));
        assert_eq!(best(&reports[..1], &e), None);
        // Kerberos does not need a password mechanism: the pair stays usable for it.
        let kerberos = Endpoint {
            auth: AuthMethod::Gssapi,
            ..e
        };
        assert!(usable(&proxy, &kerberos));
    }

    #[test]
    fn other_protocols_are_probed_on_the_same_host_only() {
        let t = other_protocols_on(Protocol::Imap, "imap.example.com");
        assert!(t
            .iter()
            .all(|t| t.protocol != Protocol::Imap && t.host == "imap.example.com"));
        assert!(t
            .iter()
            .any(|t| t.protocol == Protocol::Smtp && t.port == 587));
        assert!(t.iter().all(|t| t.security.is_encrypted()));
    }

    #[test]
    fn change_names_only_what_differs() {
        let e = ep(Protocol::Imap, 143, Security::Tls);
        let t = ProbeTarget {
            protocol: Protocol::Imap,
            host: "IMAP.example.com".into(),
            port: 993,
            security: Security::Tls,
        };
        assert_eq!(
            change_to(&e, &t),
            EndpointChange {
                port: Some(993),
                ..Default::default()
            }
        );
    }
}
