//! Greetings and capability parsing against real (minimal) servers, without TLS.

use crate::common::*;
use mailmend_core::{Prober, Protocol, Security};

#[tokio::test]
async fn imap_logindisabled_and_auth_mechanisms_are_read() {
    let pki = Pki::new();
    let server = MailServer::new(Speak::Imap).caps(
        &[
            "IMAP4rev1",
            "LOGINDISABLED",
            "AUTH=GSSAPI",
            "AUTH=PLAIN",
            "IDLE",
        ],
        &[],
    );
    let port = server.clone().start().await;
    let report = pki
        .quick_prober()
        .probe(&target(Protocol::Imap, port, Security::None))
        .await;
    assert!(report.is_healthy(), "{report:?}");
    assert!(report.tls.is_none());
    let caps = report.capabilities.unwrap();
    assert!(caps.login_disabled);
    assert!(!caps.starttls);
    assert_eq!(caps.auth_mechanisms, vec!["GSSAPI", "PLAIN"]);
    assert!(caps.words.contains(&"IDLE".to_string()));
    assert_eq!(server.commands().await, vec!["a1 CAPABILITY", "a2 LOGOUT"]);
}

#[tokio::test]
async fn smtp_multiline_greeting_and_ehlo_are_parsed() {
    let pki = Pki::new();
    let server = MailServer::new(Speak::Smtp)
        .greeting(&[
            "220-localhost ESMTP first line",
            "220-second line",
            "220 third line",
        ])
        .caps(
            &[
                "SIZE 35882577",
                "AUTH PLAIN LOGIN",
                "AUTH=LOGIN XOAUTH2",
                "8BITMIME",
                "STARTTLS",
            ],
            &[],
        );
    let port = server.clone().start().await;
    let prober = pki.quick_prober();
    let report = prober
        .probe(&target(Protocol::Smtp, port, Security::None))
        .await;
    assert!(report.is_healthy(), "{report:?}");
    let caps = report.capabilities.unwrap();
    assert_eq!(caps.greeting, "220-localhost ESMTP first line");
    assert_eq!(caps.words, vec!["SIZE", "AUTH", "8BITMIME", "STARTTLS"]);
    assert_eq!(caps.auth_mechanisms, vec!["PLAIN", "LOGIN", "XOAUTH2"]);
    assert!(caps.starttls);
    // Security None never starts TLS, even when offered.
    let ehlo = format!("EHLO {}", prober.ehlo_name());
    assert_eq!(server.commands().await, vec![ehlo.as_str(), "QUIT"]);
}

#[tokio::test]
async fn pop3_capa_is_read() {
    let pki = Pki::new();
    let server = MailServer::new(Speak::Pop3).caps(&["USER", "SASL GSSAPI", "STLS"], &[]);
    let port = server.clone().start().await;
    let report = pki
        .quick_prober()
        .probe(&target(Protocol::Pop3, port, Security::None))
        .await;
    assert!(report.is_healthy(), "{report:?}");
    let caps = report.capabilities.unwrap();
    assert_eq!(caps.greeting, "+OK test POP3 ready");
    assert_eq!(caps.auth_mechanisms, vec!["GSSAPI"]);
    assert!(caps.starttls);
    assert_lockout_safe(&server.commands().await);
}

#[tokio::test]
async fn imap_bye_greeting_is_a_protocol_error() {
    let pki = Pki::new();
    let port = MailServer::new(Speak::Imap)
        .greeting(&["* BYE too many connections from your IP"])
        .start()
        .await;
    let report = pki
        .quick_prober()
        .probe(&target(Protocol::Imap, port, Security::None))
        .await;
    let error = report.protocol_error.as_deref().unwrap();
    assert!(error.contains("BYE too many connections"), "{error}");
    assert!(report.capabilities.is_none());
}

#[tokio::test]
async fn smtp_rejecting_greeting_is_a_protocol_error() {
    let pki = Pki::new();
    let port = MailServer::new(Speak::Smtp)
        .greeting(&["554 5.7.1 no service for you"])
        .start()
        .await;
    let report = pki
        .quick_prober()
        .probe(&target(Protocol::Smtp, port, Security::None))
        .await;
    let error = report.protocol_error.as_deref().unwrap();
    assert!(error.contains("554 5.7.1"), "{error}");
}

#[tokio::test]
async fn wrong_protocol_on_the_port_is_a_protocol_error() {
    let pki = Pki::new();
    let port = MailServer::new(Speak::Smtp).start().await;
    let report = pki
        .quick_prober()
        .probe(&target(Protocol::Imap, port, Security::None))
        .await;
    let error = report.protocol_error.as_deref().unwrap();
    assert!(error.contains("IMAP greeting"), "{error}");
    assert!(error.contains("220 localhost ESMTP test"), "{error}");
}
