//! STARTTLS flows for IMAP, POP3 and SMTP, and the ways STARTTLS can be unavailable.

use crate::common::*;
use mailmend_core::{ProbeReport, Prober, Protocol, Security, TlsFailure, TlsOutcome};
use std::time::Duration;
use time::OffsetDateTime;

async fn probe(pki: &Pki, server: &MailServer, protocol: Protocol) -> ProbeReport {
    let port = server.clone().start().await;
    pki.quick_prober()
        .probe(&target(protocol, port, Security::StartTls))
        .await
}

fn established(report: &ProbeReport) {
    assert!(
        matches!(report.tls, Some(TlsOutcome::Established { .. })),
        "{report:?}"
    );
    assert!(report.is_healthy(), "{report:?}");
}

fn unavailable(report: &ProbeReport) -> &str {
    match &report.tls {
        Some(TlsOutcome::Failed {
            failure: TlsFailure::StartTlsUnavailable { detail },
        }) => detail,
        other => panic!("expected StartTlsUnavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn imap_starttls_upgrades_and_rereads_capabilities() {
    let pki = Pki::new();
    let mut server = MailServer::new(Speak::Imap).caps(
        &["IMAP4rev1", "STARTTLS", "LOGINDISABLED"],
        &["IMAP4rev1", "AUTH=PLAIN", "AUTH=LOGIN"],
    );
    server.starttls = Some(StartTls::Accept(pki.ca.leaf(&["localhost"]).acceptor()));
    let report = probe(&pki, &server, Protocol::Imap).await;
    established(&report);
    let caps = report.capabilities.as_ref().unwrap();
    assert_eq!(caps.auth_mechanisms, vec!["PLAIN", "LOGIN"]);
    assert!(
        !caps.login_disabled,
        "post-TLS capabilities must replace the plaintext ones"
    );
    assert_eq!(caps.greeting, "* OK test IMAP ready");
    assert_eq!(
        server.commands().await,
        vec!["a1 CAPABILITY", "a2 STARTTLS", "a3 CAPABILITY", "a4 LOGOUT"]
    );
    assert_lockout_safe(&server.commands().await);
}

#[tokio::test]
async fn imap_capabilities_in_greeting_spare_a_round_trip() {
    let pki = Pki::new();
    let mut server = MailServer::new(Speak::Imap)
        .greeting(&["* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready"])
        .caps(
            &["IMAP4rev1", "STARTTLS", "LOGINDISABLED"],
            &["IMAP4rev1", "AUTH=PLAIN"],
        );
    server.starttls = Some(StartTls::Accept(pki.ca.leaf(&["localhost"]).acceptor()));
    let report = probe(&pki, &server, Protocol::Imap).await;
    established(&report);
    assert_eq!(
        server.commands().await,
        vec!["a1 STARTTLS", "a2 CAPABILITY", "a3 LOGOUT"]
    );
}

#[tokio::test]
async fn pop3_stls_upgrades_and_rereads_capabilities() {
    let pki = Pki::new();
    let mut server = MailServer::new(Speak::Pop3).caps(
        &["TOP", "UIDL", "STLS"],
        &["TOP", "UIDL", "USER", "SASL PLAIN LOGIN"],
    );
    server.starttls = Some(StartTls::Accept(pki.ca.leaf(&["localhost"]).acceptor()));
    let report = probe(&pki, &server, Protocol::Pop3).await;
    established(&report);
    let caps = report.capabilities.as_ref().unwrap();
    assert_eq!(caps.auth_mechanisms, vec!["PLAIN", "LOGIN"]);
    assert!(caps.words.contains(&"USER".to_string()));
    assert_eq!(
        server.commands().await,
        vec!["CAPA", "STLS", "CAPA", "QUIT"]
    );
    assert_lockout_safe(&server.commands().await);
}

#[tokio::test]
async fn smtp_starttls_upgrades_and_repeats_ehlo() {
    let pki = Pki::new();
    let mut server = MailServer::new(Speak::Smtp).caps(
        &["PIPELINING", "SIZE 10240000", "STARTTLS"],
        &["PIPELINING", "SIZE 10240000", "AUTH PLAIN LOGIN"],
    );
    server.starttls = Some(StartTls::Accept(pki.ca.leaf(&["localhost"]).acceptor()));
    let port = server.clone().start().await;
    let prober = pki.quick_prober();
    let report = prober
        .probe(&target(Protocol::Smtp, port, Security::StartTls))
        .await;
    established(&report);
    let caps = report.capabilities.as_ref().unwrap();
    assert_eq!(caps.auth_mechanisms, vec!["PLAIN", "LOGIN"]);
    assert!(!caps.starttls);
    let ehlo = format!("EHLO {}", prober.ehlo_name());
    assert_eq!(
        server.commands().await,
        vec![ehlo.as_str(), "STARTTLS", &ehlo, "QUIT"]
    );
    assert_lockout_safe(&server.commands().await);
}

#[tokio::test]
async fn starttls_not_advertised_is_unavailable_and_not_attempted() {
    let pki = Pki::new();
    let mut server = MailServer::new(Speak::Imap).caps(&["IMAP4rev1", "AUTH=PLAIN"], &[]);
    server.starttls = Some(StartTls::Accept(pki.ca.leaf(&["localhost"]).acceptor()));
    let report = probe(&pki, &server, Protocol::Imap).await;
    assert!(unavailable(&report).contains("does not advertise STARTTLS"));
    // The plaintext capabilities are still reported, for diagnostics.
    assert_eq!(
        report.capabilities.as_ref().unwrap().auth_mechanisms,
        vec!["PLAIN"]
    );
    assert!(!server
        .commands()
        .await
        .iter()
        .any(|c| c.contains("STARTTLS")));
    assert!(!report.is_healthy());
}

#[tokio::test]
async fn pop3_stls_not_advertised_names_stls() {
    let pki = Pki::new();
    let server = MailServer::new(Speak::Pop3).caps(&["USER", "TOP"], &[]);
    let report = probe(&pki, &server, Protocol::Pop3).await;
    assert!(unavailable(&report).contains("does not advertise STLS"));
}

#[tokio::test]
async fn starttls_refused_by_the_server_is_unavailable() {
    let pki = Pki::new();
    let mut server = MailServer::new(Speak::Smtp).caps(&["STARTTLS"], &[]);
    server.starttls = Some(StartTls::Refuse);
    let report = probe(&pki, &server, Protocol::Smtp).await;
    let detail = unavailable(&report);
    assert!(detail.contains("454"), "{detail}");
}

#[tokio::test]
async fn imap_preauth_greeting_blocks_starttls() {
    // A PREAUTH greeting is the STARTTLS-stripping trick: never continue in plaintext.
    let pki = Pki::new();
    let server = MailServer::new(Speak::Imap)
        .greeting(&["* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] welcome back"])
        .caps(&["IMAP4rev1", "STARTTLS"], &[]);
    let report = probe(&pki, &server, Protocol::Imap).await;
    assert!(unavailable(&report).contains("PREAUTH"));
    assert!(!server
        .commands()
        .await
        .iter()
        .any(|c| c.contains("STARTTLS")));
}

#[tokio::test]
async fn plaintext_pipelined_after_starttls_acceptance_is_refused() {
    let pki = Pki::new();
    let mut server = MailServer::new(Speak::Imap).caps(&["IMAP4rev1", "STARTTLS"], &["IMAP4rev1"]);
    server.starttls = Some(StartTls::AcceptWithTrailingData(
        pki.ca.leaf(&["localhost"]).acceptor(),
    ));
    let report = probe(&pki, &server, Protocol::Imap).await;
    match &report.tls {
        Some(TlsOutcome::Failed {
            failure: TlsFailure::Other { detail },
        }) => assert!(detail.contains("after accepting STARTTLS"), "{detail}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn starttls_with_expired_certificate_fails_and_keeps_plaintext_capabilities() {
    let pki = Pki::new();
    let now = OffsetDateTime::now_utc();
    let leaf = pki.ca.leaf_with(
        &["localhost"],
        now - time::Duration::days(90),
        now - time::Duration::days(1),
        None,
    );
    let mut server = MailServer::new(Speak::Smtp).caps(&["STARTTLS", "SIZE 100"], &["AUTH PLAIN"]);
    server.starttls = Some(StartTls::Accept(leaf.acceptor()));
    let report = probe(&pki, &server, Protocol::Smtp).await;
    assert!(
        matches!(
            report.tls,
            Some(TlsOutcome::Failed {
                failure: TlsFailure::CertificateExpired { .. }
            })
        ),
        "{report:?}"
    );
    let caps = report.capabilities.as_ref().unwrap();
    assert!(caps.starttls && caps.auth_mechanisms.is_empty());
}

#[tokio::test]
async fn starttls_against_an_implicit_tls_port_hints_at_implicit_tls() {
    let pki = Pki::new();
    let mut server = MailServer::new(Speak::Imap).caps(&[], &["IMAP4rev1"]);
    server.implicit = Some(pki.ca.leaf(&["localhost"]).acceptor());
    let port = server.start().await;
    let report = pki
        .prober(Duration::from_secs(1), Duration::from_secs(1))
        .probe(&target(Protocol::Imap, port, Security::StartTls))
        .await;
    let error = report.protocol_error.as_deref().unwrap();
    assert!(error.contains("implicit TLS"), "{error}");
    assert!(report.tls.is_none());
}
