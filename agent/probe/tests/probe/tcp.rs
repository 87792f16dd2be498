//! TCP outcomes: refused, timed out, happy eyeballs over several addresses.

use crate::common::*;
use mailmend_core::{ProbeTarget, Prober, Protocol, Security, TcpOutcome};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

#[tokio::test]
async fn refused_port_is_reported_as_refused() {
    let pki = Pki::new();
    let port = closed_port().await;
    let report = pki
        .quick_prober()
        .probe(&target(Protocol::Imap, port, Security::Tls))
        .await;
    assert_eq!(
        report.tcp,
        TcpOutcome::Refused {
            address: loopback(port)
        },
        "{report:?}"
    );
    assert!(report.tls.is_none());
    assert!(!report.is_healthy());
}

#[tokio::test]
async fn localhost_falls_back_from_ipv6_to_ipv4_listener() {
    // "localhost" resolves to ::1 and 127.0.0.1; only the IPv4 address listens.
    let pki = Pki::new();
    let port = MailServer::new(Speak::Imap)
        .greeting(&["* OK [CAPABILITY IMAP4rev1] ready"])
        .start()
        .await;
    let report = pki
        .quick_prober()
        .probe(&target(Protocol::Imap, port, Security::None))
        .await;
    assert_eq!(
        report.tcp,
        TcpOutcome::Connected {
            address: loopback(port)
        }
    );
    assert!(report.is_healthy(), "{report:?}");
}

#[tokio::test]
async fn connect_timeout_bounds_an_address_that_drops_syns() {
    let pki = Pki::new();
    let (listener, _fillers) = full_backlog_listener(Ipv4Addr::LOCALHOST, 0).await;
    let port = listener.local_addr().unwrap().port();
    let prober = pki.prober(Duration::from_secs(1), Duration::from_secs(1));
    let t = ProbeTarget {
        protocol: Protocol::Imap,
        host: "127.0.0.1".into(),
        port,
        security: Security::None,
    };
    let started = Instant::now();
    let report = prober.probe(&t).await;
    let elapsed = started.elapsed();
    assert_eq!(
        report.tcp,
        TcpOutcome::TimedOut {
            address: loopback(port)
        }
    );
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(1600), "{elapsed:?}");
    assert!(report.elapsed_ms >= 900);
}

#[tokio::test]
async fn silent_addresses_share_one_connect_timeout_not_the_sum() {
    let pki = Pki::new();
    let (first, _f1) = full_backlog_listener(Ipv4Addr::new(127, 0, 0, 1), 0).await;
    let port = first.local_addr().unwrap().port();
    let (_second, _f2) = full_backlog_listener(Ipv4Addr::new(127, 0, 0, 2), port).await;
    let dns = FakeDns::start(DnsAnswer::A(vec![
        Ipv4Addr::new(127, 0, 0, 1),
        Ipv4Addr::new(127, 0, 0, 2),
    ]))
    .await;
    let prober = pki
        .prober(Duration::from_secs(1), Duration::from_secs(2))
        .with_name_servers(vec![dns.addr]);
    let t = ProbeTarget {
        protocol: Protocol::Imap,
        host: "two.example.test".into(),
        port,
        security: Security::None,
    };
    let started = Instant::now();
    let report = prober.probe(&t).await;
    let elapsed = started.elapsed();
    assert!(
        matches!(report.tcp, TcpOutcome::TimedOut { .. }),
        "{report:?}"
    );
    assert!(elapsed < Duration::from_millis(1600), "{elapsed:?}");
}

#[tokio::test]
async fn refused_address_falls_through_to_the_next_at_once() {
    let pki = Pki::new();
    let port = MailServer::new(Speak::Pop3)
        .caps(&["USER"], &[])
        .start()
        .await;
    // 127.0.0.2 comes first and refuses: nothing listens there on this port.
    let dns = FakeDns::start(DnsAnswer::A(vec![
        Ipv4Addr::new(127, 0, 0, 2),
        Ipv4Addr::new(127, 0, 0, 1),
    ]))
    .await;
    let prober = pki.quick_prober().with_name_servers(vec![dns.addr]);
    let t = ProbeTarget {
        protocol: Protocol::Pop3,
        host: "pop.example.test".into(),
        port,
        security: Security::None,
    };
    let started = Instant::now();
    let report = prober.probe(&t).await;
    assert_eq!(
        report.tcp,
        TcpOutcome::Connected {
            address: loopback(port)
        }
    );
    assert!(report.is_healthy(), "{report:?}");
    // Without falling through on failure the second attempt would wait for the 250 ms delay.
    assert!(started.elapsed() < Duration::from_millis(1000));
}
