//! Implicit TLS: success, and every certificate and handshake failure class.

use crate::common::*;
use mailmend_core::{ProbeReport, Prober, Protocol, Security, TlsFailure, TlsOutcome};
use mailmend_probe::{ProbeConfig, RealProber};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves IMAP over implicit TLS with `identity` and probes it.
async fn probe_imaps(pki: &Pki, identity: &Identity) -> ProbeReport {
    let mut server = MailServer::new(Speak::Imap)
        .caps(&["IMAP4rev1", "AUTH=PLAIN"], &["IMAP4rev1", "AUTH=PLAIN"]);
    server.implicit = Some(identity.acceptor());
    let port = server.start().await;
    pki.quick_prober()
        .probe(&target(Protocol::Imap, port, Security::Tls))
        .await
}

fn failure(report: &ProbeReport) -> &TlsFailure {
    match &report.tls {
        Some(TlsOutcome::Failed { failure }) => failure,
        other => panic!("expected a TLS failure, got {other:?} in {report:?}"),
    }
}

#[tokio::test]
async fn implicit_tls_with_trusted_certificate_is_established() {
    let pki = Pki::new();
    let report = probe_imaps(&pki, &pki.ca.leaf(&["localhost"])).await;
    match &report.tls {
        Some(TlsOutcome::Established { version, not_after }) => {
            assert_eq!(version, "TLSv1.3");
            let not_after = not_after.as_deref().expect("leaf expiry recorded");
            let parsed =
                OffsetDateTime::parse(not_after, &time::format_description::well_known::Rfc3339)
                    .unwrap();
            assert!(parsed > OffsetDateTime::now_utc());
        }
        other => panic!("unexpected {other:?}"),
    }
    let caps = report.capabilities.as_ref().unwrap();
    assert_eq!(caps.greeting, "* OK test IMAP ready");
    assert_eq!(caps.auth_mechanisms, vec!["PLAIN"]);
    assert!(report.is_healthy(), "{report:?}");
}

#[tokio::test]
async fn expired_certificate_is_reported_with_its_expiry() {
    let pki = Pki::new();
    let now = OffsetDateTime::now_utc();
    let leaf = pki.ca.leaf_with(
        &["localhost"],
        now - time::Duration::days(60),
        now - time::Duration::days(2),
        None,
    );
    let report = probe_imaps(&pki, &leaf).await;
    match failure(&report) {
        TlsFailure::CertificateExpired { not_after: Some(t) } => {
            let parsed =
                OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap();
            assert!(parsed < now, "{t}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(report.capabilities.is_none());
}

#[tokio::test]
async fn not_yet_valid_certificate_is_reported() {
    let pki = Pki::new();
    let now = OffsetDateTime::now_utc();
    let leaf = pki.ca.leaf_with(
        &["localhost"],
        now + time::Duration::days(10),
        now + time::Duration::days(40),
        None,
    );
    let report = probe_imaps(&pki, &leaf).await;
    assert!(
        matches!(
            failure(&report),
            TlsFailure::CertificateNotYetValid {
                not_before: Some(_)
            }
        ),
        "{report:?}"
    );
}

#[tokio::test]
async fn self_signed_certificate_is_reported_as_self_signed() {
    let pki = Pki::new();
    let report = probe_imaps(&pki, &self_signed(&["localhost"])).await;
    assert_eq!(failure(&report), &TlsFailure::SelfSigned);
}

#[tokio::test]
async fn wrong_name_certificate_reports_the_names_it_is_valid_for() {
    let pki = Pki::new();
    let leaf = pki.ca.leaf(&["mail.example.test", "imap.example.test"]);
    let report = probe_imaps(&pki, &leaf).await;
    assert_eq!(
        failure(&report),
        &TlsFailure::NameMismatch {
            presented: vec!["mail.example.test".into(), "imap.example.test".into()]
        }
    );
}

#[tokio::test]
async fn certificate_from_unknown_private_ca_is_untrusted_issuer() {
    let pki = Pki::new();
    let other = Ca::new("some private CA");
    let report = probe_imaps(&pki, &other.leaf(&["localhost"])).await;
    match failure(&report) {
        TlsFailure::UntrustedIssuer { issuer: Some(i) } => {
            assert!(i.contains("some private CA"), "{i}")
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn untrusted_root_sent_in_the_chain_is_named() {
    let pki = Pki::new();
    let other = Ca::new("shipped root CA");
    let mut identity = other.leaf(&["localhost"]);
    identity.chain.push(other.cert.der().clone());
    let report = probe_imaps(&pki, &identity).await;
    match failure(&report) {
        TlsFailure::UntrustedIssuer { issuer: Some(i) } => {
            assert!(i.contains("shipped root CA"), "{i}")
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn missing_intermediate_is_reported_as_incomplete_chain() {
    let pki = Pki::new();
    let intermediate = pki.ca.intermediate("mailmend test intermediate");
    let now = OffsetDateTime::now_utc();
    let leaf = intermediate.leaf_with(
        &["localhost"],
        now - time::Duration::days(1),
        now + time::Duration::days(30),
        Some("http://ca.invalid/intermediate.der"),
    );
    let report = probe_imaps(&pki, &leaf).await;
    assert_eq!(failure(&report), &TlsFailure::IncompleteChain);
}

#[tokio::test]
async fn complete_chain_through_an_intermediate_is_established() {
    let pki = Pki::new();
    let intermediate = pki.ca.intermediate("mailmend test intermediate");
    let mut leaf = intermediate.leaf(&["localhost"]);
    leaf.chain.push(intermediate.cert.der().clone());
    let report = probe_imaps(&pki, &leaf).await;
    assert!(report.is_healthy(), "{report:?}");
}

#[tokio::test]
async fn test_ca_is_not_trusted_without_the_extra_ca_file() {
    // Trust comes only from the configured roots: verification is really on.
    let pki = Pki::new();
    let mut server = MailServer::new(Speak::Imap).caps(&["IMAP4rev1"], &["IMAP4rev1"]);
    server.implicit = Some(pki.ca.leaf(&["localhost"]).acceptor());
    let port = server.start().await;
    let prober = RealProber::new(ProbeConfig::default()).unwrap();
    let report = prober
        .probe(&target(Protocol::Imap, port, Security::Tls))
        .await;
    assert!(
        matches!(failure(&report), TlsFailure::UntrustedIssuer { .. }),
        "{report:?}"
    );
}

#[tokio::test]
async fn plaintext_server_on_a_tls_port_is_not_tls() {
    let pki = Pki::new();
    let port = MailServer::new(Speak::Imap).start().await;
    let report = pki
        .quick_prober()
        .probe(&target(Protocol::Imap, port, Security::Tls))
        .await;
    match failure(&report) {
        TlsFailure::NotTls { detail } => {
            assert!(detail.contains("* OK test IMAP ready"), "{detail}")
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn binary_garbage_instead_of_tls_is_not_tls() {
    let pki = Pki::new();
    let port = serve(|mut s| async move {
        let _ = s
            .write_all(&[0x00, 0xff, 0x13, 0x37, 0x42, 0x99, 0x01, 0x02])
            .await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    })
    .await;
    let started = Instant::now();
    let report = pki
        .prober(Duration::from_secs(1), Duration::from_secs(1))
        .probe(&target(Protocol::Smtp, port, Security::Tls))
        .await;
    match failure(&report) {
        TlsFailure::NotTls { detail } => assert!(detail.contains("00 ff 13 37"), "{detail}"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[tokio::test]
async fn handshake_shaped_garbage_is_bounded_and_reported() {
    // Starts like a TLS handshake record, then never completes it.
    let pki = Pki::new();
    let port = serve(|mut s| async move {
        let _ = s.write_all(&[0x16, 0x03, 0x03, 0x40, 0x00, 0x02]).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    })
    .await;
    let started = Instant::now();
    let io = Duration::from_secs(1);
    let report = pki
        .prober(Duration::from_secs(1), io)
        .probe(&target(Protocol::Pop3, port, Security::Tls))
        .await;
    assert!(
        matches!(failure(&report), TlsFailure::Other { .. }),
        "{report:?}"
    );
    assert!(started.elapsed() < io + Duration::from_millis(600));
}

#[tokio::test]
async fn protocol_version_alert_is_a_protocol_mismatch() {
    // What a server that only speaks old TLS versions answers to a modern ClientHello.
    let pki = Pki::new();
    let port = serve(|mut s| async move {
        let mut hello = [0u8; 512];
        let _ = s.read(&mut hello).await;
        let _ = s
            .write_all(&[0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46])
            .await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    })
    .await;
    let report = pki
        .quick_prober()
        .probe(&target(Protocol::Imap, port, Security::Tls))
        .await;
    assert!(
        matches!(failure(&report), TlsFailure::ProtocolMismatch { .. }),
        "{report:?}"
    );
}

#[tokio::test]
async fn silent_server_on_a_tls_port_times_out_the_handshake() {
    let pki = Pki::new();
    let port = serve(|s| async move {
        let _open = s;
        tokio::time::sleep(Duration::from_secs(10)).await;
    })
    .await;
    let io = Duration::from_secs(1);
    let started = Instant::now();
    let report = pki
        .prober(Duration::from_secs(1), io)
        .probe(&target(Protocol::Imap, port, Security::Tls))
        .await;
    match failure(&report) {
        TlsFailure::Other { detail } => assert!(detail.contains("no answer"), "{detail}"),
        other => panic!("unexpected {other:?}"),
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= io && elapsed < io + Duration::from_millis(600),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn tls_then_silence_is_bounded_and_reported() {
    let pki = Pki::new();
    let acceptor = pki.ca.leaf(&["localhost"]).acceptor();
    let port = serve(move |s| {
        let acceptor = acceptor.clone();
        async move {
            let _tls = acceptor.accept(s).await;
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
    })
    .await;
    let (connect, io) = (Duration::from_secs(1), Duration::from_secs(1));
    let started = Instant::now();
    let report = pki
        .prober(connect, io)
        .probe(&target(Protocol::Imap, port, Security::Tls))
        .await;
    assert!(
        matches!(report.tls, Some(TlsOutcome::Established { .. })),
        "{report:?}"
    );
    let error = report.protocol_error.as_deref().unwrap();
    assert!(error.starts_with("greeting: no complete reply"), "{error}");
    assert!(started.elapsed() < probe_bound(connect, io));
    assert!(!report.is_healthy());
}

#[tokio::test]
async fn exchange_target_checks_tcp_and_tls_only() {
    let pki = Pki::new();
    let acceptor = pki.ca.leaf(&["localhost"]).acceptor();
    let port = serve(move |s| {
        let acceptor = acceptor.clone();
        async move {
            if let Ok(mut tls) = acceptor.accept(s).await {
                let mut buf = [0u8; 64];
                let _ = tls.read(&mut buf).await;
            }
        }
    })
    .await;
    let report = pki
        .quick_prober()
        .probe(&target(Protocol::Exchange, port, Security::Tls))
        .await;
    assert!(
        matches!(report.tls, Some(TlsOutcome::Established { .. })),
        "{report:?}"
    );
    assert!(report.is_healthy(), "{report:?}");
}
