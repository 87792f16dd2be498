//! The firewall diagnostic: a local rule that blocks the configured server.

mod support;

use mailmend_core::{Action, Diagnostic, FirewallVerdict, Protocol, Role, Security, Severity};
use mailmend_diagnostics::{codes, Firewall};
use support::*;

const IMAP_HOST: &str = "imap.example.com";
const RULE: &str = "ip daddr 192.0.2.0/24 tcp dport 993 drop";

fn imap_account() -> mailmend_core::Account {
    account(
        Some(endpoint(Protocol::Imap, IMAP_HOST, 993, Security::Tls)),
        None,
    )
}

#[tokio::test]
async fn a_local_drop_rule_is_reported_with_its_rule_and_an_exception_proposed() {
    let net = FakeNet::new()
        .host_at(
            IMAP_HOST,
            &["192.0.2.1", "2001:db8::1"],
            Behaviour::TimedOut,
        )
        .firewall("192.0.2.1", 993, blocked("drop", 8, RULE));
    let acc = imap_account();
    let findings = Firewall.diagnose(&acc, &net).await;
    assert_eq!(findings.len(), 1, "{findings:?}");
    let f = &findings[0];
    assert_eq!(f.code, codes::FIREWALL_BLOCKED_LOCALLY);
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(f.role, Some(Role::Incoming));
    assert_eq!(
        f.summary,
        format!("A firewall rule on this computer drops Thunderbird's IMAP connections to {IMAP_HOST} port 993 (nftables inet filter chain output, handle 8: {RULE})")
    );
    assert_eq!(
        f.proposed,
        vec![Action::AddFirewallException {
            account: acc.id.clone(),
            host: IMAP_HOST.into(),
            addresses: vec!["192.0.2.1".parse().unwrap()],
            port: 993,
        }]
    );
    assert_eq!(f.evidence[1].probe, "firewall");
    assert_eq!(f.evidence[1].target, "192.0.2.1 port 993");
    assert!(f.evidence[1].result.contains("handle 8"));
    // Both addresses were checked.
    assert_eq!(net.checks().len(), 2);
}

#[tokio::test]
async fn a_reject_rule_behind_a_refusal_is_found() {
    let net = FakeNet::new()
        .host_at(IMAP_HOST, &["192.0.2.1"], Behaviour::Refused)
        .firewall(
            "192.0.2.1",
            993,
            blocked("reject", 9, "tcp dport 993 reject with tcp reset"),
        );
    let findings = Firewall.diagnose(&imap_account(), &net).await;
    assert_eq!(codes_of(&findings), [codes::FIREWALL_BLOCKED_LOCALLY]);
    assert!(
        findings[0].summary.contains("rejects"),
        "{}",
        findings[0].summary
    );
}

#[tokio::test]
async fn no_local_rule_means_no_finding() {
    let net = FakeNet::new().host_at(IMAP_HOST, &["192.0.2.1"], Behaviour::TimedOut);
    assert!(Firewall.diagnose(&imap_account(), &net).await.is_empty());
}

#[tokio::test]
async fn an_unreadable_firewall_concludes_nothing() {
    let net = FakeNet::new()
        .host_at(IMAP_HOST, &["192.0.2.1"], Behaviour::TimedOut)
        .firewall(
            "192.0.2.1",
            993,
            FirewallVerdict::Unknown {
                detail: "nft is not installed".into(),
            },
        );
    assert!(Firewall.diagnose(&imap_account(), &net).await.is_empty());
}

#[tokio::test]
async fn a_working_endpoint_never_reads_the_firewall() {
    let net = FakeNet::new()
        .host(IMAP_HOST)
        .serve(Protocol::Imap, IMAP_HOST, 993, Security::Tls, imap_caps())
        .firewall("127.0.0.1", 993, blocked("drop", 1, "tcp dport 993 drop"));
    assert!(Firewall.diagnose(&imap_account(), &net).await.is_empty());
    assert!(net.checks().is_empty());
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_not_the_firewalls_business() {
    let net = FakeNet::new();
    assert!(Firewall.diagnose(&imap_account(), &net).await.is_empty());
    assert!(net.checks().is_empty());
}
