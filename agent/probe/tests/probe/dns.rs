//! DNS outcomes through the system configuration and through a fake name server on 127.0.0.1.

use crate::common::*;
use mailmend_core::{DnsOutcome, ProbeTarget, Prober, Protocol, Security, TcpOutcome};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

fn fake_prober(pki: &Pki, dns: &FakeDns) -> mailmend_probe::RealProber {
    pki.prober(Duration::from_secs(1), Duration::from_secs(1))
        .with_name_servers(vec![dns.addr])
}

#[tokio::test]
async fn localhost_resolves_through_the_system_configuration() {
    let pki = Pki::new();
    let report = pki.quick_prober().resolve("localhost").await;
    assert_eq!(report.host, "localhost");
    match &report.outcome {
        DnsOutcome::Resolved { addresses } => {
            assert!(
                addresses.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)),
                "{addresses:?}"
            )
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(report.elapsed_ms < 2000);
}

#[tokio::test]
async fn a_records_are_resolved() {
    let pki = Pki::new();
    let dns = FakeDns::start(DnsAnswer::A(vec![Ipv4Addr::new(127, 0, 0, 9)])).await;
    let report = fake_prober(&pki, &dns).resolve("mail.example.test").await;
    assert_eq!(
        report.outcome,
        DnsOutcome::Resolved {
            addresses: vec![IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9))]
        }
    );
}

#[tokio::test]
async fn nxdomain_is_reported() {
    let pki = Pki::new();
    let dns = FakeDns::start(DnsAnswer::NxDomain).await;
    let report = fake_prober(&pki, &dns).resolve("nope.example.test").await;
    assert_eq!(report.outcome, DnsOutcome::NxDomain);
}

#[tokio::test]
async fn name_without_addresses_is_no_records() {
    let pki = Pki::new();
    let dns = FakeDns::start(DnsAnswer::NoData).await;
    let report = fake_prober(&pki, &dns)
        .resolve("mx-only.example.test")
        .await;
    assert_eq!(report.outcome, DnsOutcome::NoRecords);
}

#[tokio::test]
async fn servfail_is_a_failure() {
    let pki = Pki::new();
    let dns = FakeDns::start(DnsAnswer::ServFail).await;
    let report = fake_prober(&pki, &dns).resolve("broken.example.test").await;
    assert!(
        matches!(report.outcome, DnsOutcome::Failed { .. }),
        "{report:?}"
    );
}

#[tokio::test]
async fn refusing_name_server_is_unreachable() {
    let pki = Pki::new();
    let dns = FakeDns::start(DnsAnswer::Refused).await;
    let report = fake_prober(&pki, &dns).resolve("mail.example.test").await;
    assert!(
        matches!(report.outcome, DnsOutcome::ResolverUnreachable { .. }),
        "{report:?}"
    );
}

#[tokio::test]
async fn silent_name_server_is_unreachable_within_io_timeout() {
    let pki = Pki::new();
    let dns = FakeDns::start(DnsAnswer::Silent).await;
    let started = Instant::now();
    let report = fake_prober(&pki, &dns).resolve("mail.example.test").await;
    assert!(
        matches!(report.outcome, DnsOutcome::ResolverUnreachable { .. }),
        "{report:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[tokio::test]
async fn answers_are_not_cached_between_lookups() {
    // Verification after a DNS fix must see the new answer, not a cached old one.
    let pki = Pki::new();
    let dns = FakeDns::start(DnsAnswer::A(vec![Ipv4Addr::new(127, 0, 0, 2)])).await;
    let prober = fake_prober(&pki, &dns);
    let first = prober.resolve("mail.example.test").await;
    dns.set(DnsAnswer::A(vec![Ipv4Addr::new(127, 0, 0, 3)]));
    let second = prober.resolve("mail.example.test").await;
    assert_eq!(
        first.outcome,
        DnsOutcome::Resolved {
            addresses: vec![IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))]
        }
    );
    assert_eq!(
        second.outcome,
        DnsOutcome::Resolved {
            addresses: vec![IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3))]
        }
    );
}

#[tokio::test]
async fn unresolvable_host_is_not_connected() {
    let pki = Pki::new();
    let dns = FakeDns::start(DnsAnswer::NxDomain).await;
    let report = fake_prober(&pki, &dns)
        .probe(&ProbeTarget {
            protocol: Protocol::Smtp,
            host: "typo.example.test".into(),
            port: 587,
            security: Security::StartTls,
        })
        .await;
    assert_eq!(report.dns, DnsOutcome::NxDomain);
    assert_eq!(report.tcp, TcpOutcome::NotResolved);
    assert!(report.tls.is_none());
    assert!(!report.is_healthy());
}
