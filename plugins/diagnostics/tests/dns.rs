//! The DNS diagnostic: stale caches and unanswering name servers, against the in-memory network.

mod support;

use mailmend_core::{Action, Diagnostic, DnsOutcome, Protocol, Role, Security};
use mailmend_diagnostics::{codes, Dns};
use support::*;

const IMAP_HOST: &str = "imap.example.com";

fn imap_account() -> mailmend_core::Account {
    account(
        Some(endpoint(Protocol::Imap, IMAP_HOST, 993, Security::Tls)),
        None,
    )
}

async fn run(net: &FakeNet) -> Vec<mailmend_core::Finding> {
    Dns.diagnose(&imap_account(), net).await
}

/// The server moved from 192.0.2.1 to 192.0.2.2; this computer still has the old address.
fn moved_server() -> FakeNet {
    FakeNet::new()
        .host_at(IMAP_HOST, &["192.0.2.1"], Behaviour::TimedOut)
        .authoritative(IMAP_HOST, resolved(&["192.0.2.2"]))
        .address("192.0.2.2", Behaviour::Serve(Protocol::Imap, imap_caps()))
}

#[tokio::test]
async fn a_stale_cache_is_flushed_when_the_authoritative_address_answers() {
    let net = moved_server();
    let findings = run(&net).await;
    assert_eq!(findings.len(), 1, "{findings:?}");
    let f = &findings[0];
    assert_eq!(f.code, codes::DNS_STALE_CACHE);
    assert_eq!(f.severity, mailmend_core::Severity::Error);
    assert_eq!(f.role, Some(Role::Incoming));
    assert_eq!(
        f.proposed,
        vec![Action::FlushDns {
            host: IMAP_HOST.into()
        }]
    );
    assert!(f.summary.contains("192.0.2.1"), "{}", f.summary);
    assert!(f.summary.contains("192.0.2.2"), "{}", f.summary);
    let probes: Vec<&str> = f.evidence.iter().map(|e| e.probe.as_str()).collect();
    assert_eq!(probes, ["tcp", "dns.authoritative", "imap"]);
    assert_eq!(f.evidence[2].target, "192.0.2.2:993 (tls)");
    // The firewall is asked first (it takes precedence), then the authoritative servers.
    assert_eq!(
        net.checks(),
        vec![
            Check::Firewall("192.0.2.1".parse().unwrap(), 993),
            Check::Authoritative(IMAP_HOST.into())
        ]
    );
}

#[tokio::test]
async fn a_fresh_answer_for_a_dead_server_is_no_stale_cache() {
    let net = FakeNet::new()
        .host_at(IMAP_HOST, &["192.0.2.1"], Behaviour::TimedOut)
        .authoritative(IMAP_HOST, resolved(&["192.0.2.1"]));
    assert!(run(&net).await.is_empty());
}

#[tokio::test]
async fn a_new_address_that_does_not_answer_either_is_no_stale_cache() {
    let net = FakeNet::new()
        .host_at(IMAP_HOST, &["192.0.2.1"], Behaviour::TimedOut)
        .authoritative(IMAP_HOST, resolved(&["192.0.2.2"]))
        .address("192.0.2.2", Behaviour::TimedOut);
    assert!(run(&net).await.is_empty());
}

#[tokio::test]
async fn a_refused_old_address_is_checked_too() {
    let net = moved_server().host_at(IMAP_HOST, &["192.0.2.1"], Behaviour::Refused);
    assert_eq!(codes_of(&run(&net).await), [codes::DNS_STALE_CACHE]);
}

#[tokio::test]
async fn a_healthy_endpoint_costs_one_probe_and_no_lookup_beyond_it() {
    let net = FakeNet::new()
        .host(IMAP_HOST)
        .serve(Protocol::Imap, IMAP_HOST, 993, Security::Tls, imap_caps())
        .name_servers(&["10.0.0.1"], &[]);
    assert!(run(&net).await.is_empty());
    assert_eq!(net.calls().len(), 1);
    assert!(net.checks().is_empty(), "{:?}", net.checks());
}

#[tokio::test]
async fn a_dead_name_server_beside_a_live_one_is_a_warning_naming_it() {
    let net = FakeNet::new()
        .host(IMAP_HOST)
        .serve(Protocol::Imap, IMAP_HOST, 993, Security::Tls, imap_caps())
        .name_servers(&["10.0.0.1", "10.0.0.2"], &["10.0.0.2"]);
    let findings = run(&net).await;
    assert_eq!(findings.len(), 1);
    let f = &findings[0];
    assert_eq!(f.code, codes::DNS_RESOLVER_UNREACHABLE);
    assert_eq!(f.severity, mailmend_core::Severity::Warning);
    assert_eq!(f.role, None);
    assert!(f.proposed.is_empty());
    assert!(
        f.summary.starts_with(
            "This computer's DNS server 10.0.0.2 does not answer, while 10.0.0.1 does"
        ),
        "{}",
        f.summary
    );
    let dead = f
        .evidence
        .iter()
        .find(|e| e.target.starts_with("10.0.0.2:53"))
        .unwrap();
    assert!(dead.result.contains("no resolver answered"), "{dead:?}");
    // One question per server, no authoritative lookup for a working endpoint.
    assert_eq!(net.checks().len(), 2);
}

#[tokio::test]
async fn all_name_servers_answering_is_no_finding() {
    let net = FakeNet::new()
        .host(IMAP_HOST)
        .serve(Protocol::Imap, IMAP_HOST, 993, Security::Tls, imap_caps())
        .name_servers(&["10.0.0.1", "10.0.0.2"], &[]);
    assert!(run(&net).await.is_empty());
}

#[tokio::test]
async fn no_answering_name_server_while_the_domain_answers_notifies_the_user() {
    let net = FakeNet::new()
        .dns(
            IMAP_HOST,
            DnsOutcome::ResolverUnreachable {
                detail: "timeout".into(),
            },
        )
        .authoritative(IMAP_HOST, resolved(&["192.0.2.1"]))
        .name_servers(&["10.0.0.1", "10.0.0.2"], &["10.0.0.1", "10.0.0.2"]);
    let findings = run(&net).await;
    assert_eq!(findings.len(), 1);
    let f = &findings[0];
    assert_eq!(f.code, codes::DNS_RESOLVER_UNREACHABLE);
    assert_eq!(f.severity, mailmend_core::Severity::Error);
    assert!(only_notifies(f));
    assert!(
        f.summary
            .starts_with("None of this computer's DNS servers (10.0.0.1, 10.0.0.2) answers"),
        "{}",
        f.summary
    );
    assert!(f.evidence.iter().any(|e| e.probe == "dns.authoritative"));
}

#[tokio::test]
async fn no_answer_from_anyone_is_offline_without_a_proposal() {
    let unreachable = DnsOutcome::ResolverUnreachable {
        detail: "timeout".into(),
    };
    let net = FakeNet::new()
        .dns(IMAP_HOST, unreachable.clone())
        .authoritative(IMAP_HOST, unreachable)
        .name_servers(&["10.0.0.1"], &["10.0.0.1"]);
    let findings = run(&net).await;
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].severity, mailmend_core::Severity::Error);
    assert!(findings[0].proposed.is_empty());
    assert!(
        findings[0].summary.contains("offline"),
        "{}",
        findings[0].summary
    );
}

#[tokio::test]
async fn no_configured_name_server_is_said_so() {
    let net = FakeNet::new()
        .dns(
            IMAP_HOST,
            DnsOutcome::ResolverUnreachable {
                detail: "no name server".into(),
            },
        )
        .authoritative(IMAP_HOST, resolved(&["192.0.2.1"]));
    let findings = run(&net).await;
    assert!(
        findings[0]
            .summary
            .starts_with("No DNS server is configured on this computer"),
        "{}",
        findings[0].summary
    );
}

#[tokio::test]
async fn a_failed_lookup_although_the_servers_answer_now_is_still_reported() {
    let net = FakeNet::new()
        .dns(
            IMAP_HOST,
            DnsOutcome::ResolverUnreachable {
                detail: "timeout".into(),
            },
        )
        .authoritative(IMAP_HOST, resolved(&["192.0.2.1"]))
        .name_servers(&["10.0.0.1"], &[]);
    let findings = run(&net).await;
    assert_eq!(codes_of(&findings), [codes::DNS_RESOLVER_UNREACHABLE]);
    assert!(findings[0]
        .summary
        .contains("although 10.0.0.1 answers now"));
}

#[tokio::test]
async fn an_account_with_two_endpoints_gets_one_resolver_finding() {
    let acc = account(
        Some(endpoint(Protocol::Imap, IMAP_HOST, 993, Security::Tls)),
        Some(endpoint(
            Protocol::Smtp,
            "smtp.example.com",
            465,
            Security::Tls,
        )),
    );
    let unreachable = DnsOutcome::ResolverUnreachable {
        detail: "timeout".into(),
    };
    let net = FakeNet::new()
        .dns(IMAP_HOST, unreachable.clone())
        .dns("smtp.example.com", unreachable)
        .authoritative(IMAP_HOST, resolved(&["192.0.2.1"]))
        .name_servers(&["10.0.0.1"], &["10.0.0.1"]);
    let findings = Dns.diagnose(&acc, &net).await;
    assert_eq!(codes_of(&findings), [codes::DNS_RESOLVER_UNREACHABLE]);
}
