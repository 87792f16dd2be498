//! Every built-in diagnostic together, on one scenario each: one root cause gets exactly one
//! code, whichever diagnostic owns it.

mod support;

use mailmend_core::{Action, AuthMethod, DnsOutcome, Protocol, Security};
use mailmend_diagnostics::codes;
use support::*;
use Protocol::{Imap, Smtp};
use Security::{StartTls, Tls};

const IMAP_HOST: &str = "imap.example.com";

fn imap_account() -> mailmend_core::Account {
    account(Some(endpoint(Imap, IMAP_HOST, 993, Tls)), None)
}

#[tokio::test]
async fn a_healthy_account_gets_nothing_from_anyone() {
    let mut ep = endpoint(Imap, IMAP_HOST, 993, Tls);
    ep.auth = AuthMethod::Gssapi;
    let acc = account(Some(ep), Some(endpoint(Smtp, "smtp.example.com", 465, Tls)));
    let mut caps = imap_caps();
    caps.auth_mechanisms.push("GSSAPI".into());
    let net = FakeNet::new()
        .host(IMAP_HOST)
        .host("smtp.example.com")
        .serve(Imap, IMAP_HOST, 993, Tls, caps)
        .serve(Smtp, "smtp.example.com", 465, Tls, smtp_caps(true))
        .name_servers(&["10.0.0.1"], &[])
        .kerberos(ticket_report(
            "ann",
            vec![tgt("2026-03-01T20:00:00Z", None, false)],
        ));
    assert!(diagnose_all(&acc, &net).await.is_empty());
    // Nothing beyond the probes and the ticket read: no firewall, no authoritative lookup.
    assert_eq!(net.checks(), vec![Check::Kerberos("ann".into())]);
}

#[tokio::test]
async fn a_stale_cache_is_only_dns_stale_cache() {
    // The moved server also answers on a standard host of the email domain, which the
    // connectivity diagnostic would otherwise propose as a new host.
    let net = FakeNet::new()
        .host_at(IMAP_HOST, &["192.0.2.1"], Behaviour::TimedOut)
        .authoritative(IMAP_HOST, resolved(&["192.0.2.2"]))
        .address("192.0.2.2", Behaviour::Serve(Imap, imap_caps()))
        .host("mail.example.com")
        .serve(Imap, "mail.example.com", 993, Tls, imap_caps());
    let findings = diagnose_all(&imap_account(), &net).await;
    assert_eq!(codes_of(&findings), [codes::DNS_STALE_CACHE]);
    assert!(matches!(findings[0].proposed[0], Action::FlushDns { .. }));
}

#[tokio::test]
async fn a_local_rule_is_only_firewall_blocked_locally() {
    // 143 STARTTLS works: without ownership, connectivity would propose it.
    let net = FakeNet::new()
        .host_at(IMAP_HOST, &["192.0.2.1"], Behaviour::Refused)
        .on(IMAP_HOST, 993, Tls, Behaviour::TimedOut)
        .serve(Imap, IMAP_HOST, 143, StartTls, imap_caps())
        .firewall("192.0.2.1", 993, blocked("drop", 8, "tcp dport 993 drop"));
    let findings = diagnose_all(&imap_account(), &net).await;
    assert_eq!(codes_of(&findings), [codes::FIREWALL_BLOCKED_LOCALLY]);
}

#[tokio::test]
async fn a_local_rule_on_a_stale_address_is_the_firewalls_not_also_the_caches() {
    let net = FakeNet::new()
        .host_at(IMAP_HOST, &["192.0.2.1"], Behaviour::TimedOut)
        .authoritative(IMAP_HOST, resolved(&["192.0.2.2"]))
        .address("192.0.2.2", Behaviour::Serve(Imap, imap_caps()))
        .firewall(
            "192.0.2.1",
            993,
            blocked("drop", 8, "ip daddr 192.0.2.1 drop"),
        );
    let findings = diagnose_all(&imap_account(), &net).await;
    assert_eq!(codes_of(&findings), [codes::FIREWALL_BLOCKED_LOCALLY]);
}

#[tokio::test]
async fn an_upstream_block_is_only_network_blocked_upstream() {
    let net = FakeNet::new()
        .host_at(IMAP_HOST, &["192.0.2.1"], Behaviour::Refused)
        .on(IMAP_HOST, 993, Tls, Behaviour::TimedOut);
    let findings = diagnose_all(&imap_account(), &net).await;
    assert_eq!(codes_of(&findings), [codes::NETWORK_BLOCKED_UPSTREAM]);
}

#[tokio::test]
async fn dead_name_servers_are_only_one_dns_resolver_unreachable() {
    let acc = account(
        Some(endpoint(Imap, IMAP_HOST, 993, Tls)),
        Some(endpoint(Smtp, "smtp.example.com", 465, Tls)),
    );
    let unreachable = DnsOutcome::ResolverUnreachable {
        detail: "timeout".into(),
    };
    let net = FakeNet::new()
        .dns(IMAP_HOST, unreachable.clone())
        .dns("smtp.example.com", unreachable)
        .authoritative(IMAP_HOST, resolved(&["192.0.2.1"]))
        .name_servers(&["10.0.0.1", "10.0.0.2"], &["10.0.0.1", "10.0.0.2"]);
    let findings = diagnose_all(&acc, &net).await;
    assert_eq!(codes_of(&findings), [codes::DNS_RESOLVER_UNREACHABLE]);
}

#[tokio::test]
async fn a_typo_is_only_dns_nxdomain() {
    let acc = account(Some(endpoint(Imap, "imap.exmaple.com", 993, Tls)), None);
    let net = FakeNet::new()
        .host(IMAP_HOST)
        .serve(Imap, IMAP_HOST, 993, Tls, imap_caps())
        .name_servers(&["10.0.0.1", "10.0.0.2"], &[]);
    let findings = diagnose_all(&acc, &net).await;
    assert_eq!(codes_of(&findings), [codes::DNS_NXDOMAIN]);
    assert!(net
        .checks()
        .iter()
        .all(|c| matches!(c, Check::ResolveVia(..))));
}

#[tokio::test]
async fn a_wrong_port_is_only_a_settings_code() {
    let net = FakeNet::new()
        .host(IMAP_HOST)
        .serve(Imap, IMAP_HOST, 993, Tls, imap_caps());
    let acc = account(Some(endpoint(Imap, IMAP_HOST, 143, StartTls)), None);
    let findings = diagnose_all(&acc, &net).await;
    assert_eq!(codes_of(&findings), [codes::SETTINGS_WRONG_PORT_SECURITY]);
}

#[tokio::test]
async fn an_expired_ticket_and_a_broken_server_are_two_causes_two_codes() {
    let mut ep = endpoint(Imap, IMAP_HOST, 993, Tls);
    ep.auth = AuthMethod::Gssapi;
    let acc = account(Some(ep), None);
    let net = FakeNet::new()
        .host_at(IMAP_HOST, &["192.0.2.1"], Behaviour::Refused)
        .kerberos(ticket_report(
            "ann",
            vec![tgt("2026-03-01T11:30:00Z", None, false)],
        ));
    let findings = diagnose_all(&acc, &net).await;
    assert_eq!(
        codes_of(&findings),
        [codes::NETWORK_SERVICE_DOWN, codes::KERBEROS_TICKET_EXPIRED]
    );
}
