//! `system_name_servers`, `resolve_via` and `resolve_authoritative` against a real NSD and a
//! real caching Unbound on 127.77.n.0 (see `lab_dns`).

use crate::lab_dns::{free_port, quick, DnsLab};
use mailmend_core::{DnsOutcome, Prober};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

const RECORDS: &str = "mail IN A 127.0.0.10\nalias IN CNAME mail\ntxtonly IN TXT \"no address\"\nv6 IN AAAA ::1\nv6 IN A 127.0.0.12";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn system_name_servers_are_resolv_conf_or_the_explicit_ones() {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    assert_eq!(
        quick().system_name_servers(),
        mailmend_probe::resolv::name_servers(&text)
    );
    let explicit: Vec<SocketAddr> = vec!["127.0.0.1:5300".parse().unwrap()];
    assert_eq!(
        quick()
            .with_name_servers(explicit.clone())
            .system_name_servers(),
        explicit
    );
}

#[tokio::test]
async fn resolve_via_asks_exactly_the_given_server() {
    let lab = DnsLab::start(1, RECORDS).await;
    let prober = lab.prober(Duration::from_secs(1));
    let report = prober.resolve_via("mail.example.test", lab.resolver).await;
    assert_eq!(
        report.outcome,
        DnsOutcome::Resolved {
            addresses: vec![ip("127.0.0.10")]
        }
    );
    let both = prober.resolve_via("v6.example.test", lab.resolver).await;
    match both.outcome {
        DnsOutcome::Resolved { addresses } => {
            assert!(addresses.contains(&ip("::1")) && addresses.contains(&ip("127.0.0.12")))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        prober
            .resolve_via("nope.example.test", lab.resolver)
            .await
            .outcome,
        DnsOutcome::NxDomain
    );
}

#[tokio::test]
async fn resolve_via_a_dead_or_silent_server_is_unreachable_within_io_timeout() {
    let lab = DnsLab::start(2, RECORDS).await;
    let prober = lab.prober(Duration::from_millis(700));
    // Nothing listens here: the kernel answers with an ICMP port unreachable.
    let dead_ip = Ipv4Addr::new(127, 77, 2, 3);
    let dead = SocketAddr::new(IpAddr::V4(dead_ip), free_port(dead_ip));
    // A socket that reads queries and never answers.
    let silent = std::net::UdpSocket::bind((Ipv4Addr::new(127, 77, 2, 4), 0)).unwrap();
    for server in [dead, silent.local_addr().unwrap()] {
        let started = Instant::now();
        let report = prober.resolve_via("mail.example.test", server).await;
        assert!(
            matches!(report.outcome, DnsOutcome::ResolverUnreachable { .. }),
            "{server}: {report:?}"
        );
        assert!(started.elapsed() < Duration::from_millis(1500), "{server}");
    }
}

#[tokio::test]
async fn regression_authoritative_answer_bypasses_a_stale_resolver_cache() {
    let mut lab = DnsLab::start(3, RECORDS).await;
    let prober = lab.prober(Duration::from_secs(2));
    let old = DnsOutcome::Resolved {
        addresses: vec![ip("127.0.0.10")],
    };
    // Unbound caches the answer for the record's TTL (an hour).
    assert_eq!(prober.resolve("mail.example.test").await.outcome, old);
    lab.publish("mail IN A 127.0.0.11").await;
    assert_eq!(
        prober.resolve("mail.example.test").await.outcome,
        old,
        "the resolver still has the old address cached"
    );
    assert_eq!(
        prober
            .resolve_authoritative("mail.example.test")
            .await
            .outcome,
        DnsOutcome::Resolved {
            addresses: vec![ip("127.0.0.11")]
        }
    );
}

#[tokio::test]
async fn authoritative_names_nxdomain_no_records_and_follows_aliases() {
    let lab = DnsLab::start(4, RECORDS).await;
    let prober = lab.prober(Duration::from_secs(2));
    let cases = [
        ("nope.example.test", DnsOutcome::NxDomain),
        ("txtonly.example.test", DnsOutcome::NoRecords),
        (
            "alias.example.test",
            DnsOutcome::Resolved {
                addresses: vec![ip("127.0.0.10")],
            },
        ),
        ("example.test", DnsOutcome::NoRecords),
        (
            "127.0.0.99",
            DnsOutcome::Resolved {
                addresses: vec![ip("127.0.0.99")],
            },
        ),
    ];
    for (host, expected) in cases {
        let report = prober.resolve_authoritative(host).await;
        assert_eq!(report.outcome, expected, "{host}");
        assert_eq!(report.host, host);
    }
    match prober
        .resolve_authoritative("v6.example.test")
        .await
        .outcome
    {
        DnsOutcome::Resolved { addresses } => {
            assert_eq!(addresses.len(), 2, "{addresses:?}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn authoritative_lookup_with_silent_zone_servers_ends_within_io_timeout() {
    let lab = DnsLab::start(5, RECORDS).await;
    // The zone's server address is right, but the port is one where a socket never answers.
    let silent = std::net::UdpSocket::bind((lab.ns_ip, 0)).unwrap();
    let prober = lab
        .prober(Duration::from_millis(800))
        .with_authoritative_port(silent.local_addr().unwrap().port());
    let started = Instant::now();
    let report = prober.resolve_authoritative("mail.example.test").await;
    assert!(
        matches!(report.outcome, DnsOutcome::ResolverUnreachable { .. }),
        "{report:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(1300));
}

#[tokio::test]
async fn authoritative_lookup_without_a_resolver_says_so() {
    let dead_ip = Ipv4Addr::new(127, 77, 6, 3);
    let dead = SocketAddr::new(IpAddr::V4(dead_ip), free_port(dead_ip));
    let prober = quick().with_name_servers(vec![dead]);
    let report = prober.resolve_authoritative("mail.example.test").await;
    assert!(
        matches!(report.outcome, DnsOutcome::ResolverUnreachable { .. }),
        "{report:?}"
    );
    let none = quick().with_name_servers(vec![]);
    assert!(matches!(
        none.resolve_authoritative("mail.example.test")
            .await
            .outcome,
        DnsOutcome::ResolverUnreachable { .. }
    ));
}
