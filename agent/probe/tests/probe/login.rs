//! The login probe against in-process IMAP, POP3 and SMTP servers that authenticate: one
//! attempt over verified TLS only, every kind of reply translated, hostile servers bounded, and
//! the password in no report or error (logs: `tests/login_trace.rs`).

use crate::auth_server::*;
use crate::common::*;
use mailmend_core::{LoginOutcome, NotAttempted, Protocol, Security, SenderCheck};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// IMAP

#[tokio::test]
async fn imap_plain_with_initial_response_is_accepted_once_then_logs_out() {
    let pki = Pki::new();
    let server = AuthServer::new(
        Speak::Imap,
        imap_tls(&pki),
        &["IMAP4rev1", "SASL-IR", "AUTH=PLAIN"],
        &["{tag} OK [CAPABILITY IMAP4rev1] Logged in"],
    );
    let r = login(&pki, &server, Protocol::Imap, Security::Tls).await;
    assert_eq!(r.outcome, LoginOutcome::Accepted, "{r:?}");
    assert_eq!(r.mechanism.as_deref(), Some("PLAIN"));
    let lines = server.settled().await;
    assert_eq!(
        lines[..2],
        [
            "a1 CAPABILITY".to_string(),
            format!("a2 AUTHENTICATE PLAIN {}", plain_b64())
        ]
    );
    assert_eq!(lines[2], "a3 LOGOUT");
    assert_eq!(credential_lines(&lines), 1);
    assert_report_clean(&r);
}

#[tokio::test]
async fn imap_plain_without_sasl_ir_answers_the_continuation() {
    let pki = Pki::new();
    let server = AuthServer::new(
        Speak::Imap,
        starttls(&pki),
        &["IMAP4rev1", "AUTH=PLAIN"],
        &["{tag} NO [AUTHENTICATIONFAILED] Authentication failed."],
    );
    let r = login(&pki, &server, Protocol::Imap, Security::StartTls).await;
    assert_eq!(r.outcome, LoginOutcome::Rejected, "{r:?}");
    assert_eq!(
        r.server_reply.as_deref(),
        Some("a4 NO [AUTHENTICATIONFAILED] Authentication failed.")
    );
    let lines = server.settled().await;
    assert_eq!(
        lines,
        [
            "a1 CAPABILITY".to_string(),
            "a2 STARTTLS".into(),
            "a3 CAPABILITY".into(),
            "a4 AUTHENTICATE PLAIN".into(),
            plain_b64(),
            "a5 LOGOUT".into(),
            "<closed>".into(),
        ]
    );
    assert_report_clean(&r);
}

#[tokio::test]
async fn imap_login_command_is_used_only_without_auth_plain() {
    let pki = Pki::new();
    let server = AuthServer::new(
        Speak::Imap,
        imap_tls(&pki),
        &["IMAP4rev1"],
        &["{tag} NO [EXPIRED] Password expired"],
    );
    let r = login(&pki, &server, Protocol::Imap, Security::Tls).await;
    assert_eq!(r.outcome, LoginOutcome::PasswordExpired, "{r:?}");
    assert_eq!(r.mechanism.as_deref(), Some("LOGIN"));
    let lines = server.settled().await;
    assert_eq!(lines[1], format!("a2 LOGIN \"ann\" \"{PASSWORD}\""));
    assert_report_clean(&r);
}

#[tokio::test]
async fn imap_alert_asking_for_an_app_password_is_kept_and_translated() {
    let pki = Pki::new();
    let server = AuthServer::new(
        Speak::Imap,
        imap_tls(&pki),
        &["IMAP4rev1", "SASL-IR", "AUTH=PLAIN"],
        &[
            "* OK [ALERT] Application-specific password required: https://support.example/apppw",
            "{tag} NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)",
        ],
    );
    let r = login(&pki, &server, Protocol::Imap, Security::Tls).await;
    assert_eq!(r.outcome, LoginOutcome::AppPasswordRequired, "{r:?}");
    assert_eq!(
        r.alert.as_deref(),
        Some("Application-specific password required: https://support.example/apppw")
    );
}

#[tokio::test]
async fn imap_contactadmin_unavailable_and_privacy_codes_are_translated() {
    for (reply, want) in [
        (
            "{tag} NO [CONTACTADMIN] Account disabled",
            LoginOutcome::Locked,
        ),
        (
            "{tag} NO [UNAVAILABLE] Temporary authentication failure",
            LoginOutcome::TemporaryFailure,
        ),
        (
            "{tag} NO [PRIVACYREQUIRED] Secure connection required",
            LoginOutcome::EncryptionRequired,
        ),
    ] {
        let pki = Pki::new();
        let server = AuthServer::new(
            Speak::Imap,
            imap_tls(&pki),
            &["IMAP4rev1", "SASL-IR", "AUTH=PLAIN"],
            &[reply],
        );
        let r = login(&pki, &server, Protocol::Imap, Security::Tls).await;
        assert_eq!(r.outcome, want, "{reply}: {r:?}");
    }
}

#[tokio::test]
async fn imap_without_any_password_mechanism_sends_nothing() {
    let pki = Pki::new();
    let server = AuthServer::new(
        Speak::Imap,
        imap_tls(&pki),
        &["IMAP4rev1", "LOGINDISABLED", "AUTH=GSSAPI"],
        &["{tag} OK should never be reached"],
    );
    let r = login(&pki, &server, Protocol::Imap, Security::Tls).await;
    assert_eq!(
        r.outcome,
        LoginOutcome::NotAttempted {
            reason: NotAttempted::NoMechanism {
                offered: vec!["GSSAPI".into()]
            }
        }
    );
    assert_eq!(credential_lines(&server.settled().await), 0);
}

// ---------------------------------------------------------------------------------------------
// Never over plaintext, never over an unverified or tampered channel

#[tokio::test]
async fn a_plaintext_target_is_refused_before_connecting() {
    let pki = Pki::new();
    let server = AuthServer::new(
        Speak::Imap,
        Offer::Refused,
        &["IMAP4rev1", "AUTH=PLAIN"],
        &["{tag} OK in"],
    );
    let r = login(&pki, &server, Protocol::Imap, Security::None).await;
    assert_eq!(
        r.outcome,
        LoginOutcome::NotAttempted {
            reason: NotAttempted::NotEncrypted
        }
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(*server.connections.lock().unwrap(), 0);
}

#[tokio::test]
async fn refused_starttls_means_no_login() {
    let pki = Pki::new();
    let server = AuthServer::new(
        Speak::Smtp,
        Offer::Refused,
        &["AUTH PLAIN LOGIN"],
        &["235 2.7.0 ok"],
    );
    let r = login(&pki, &server, Protocol::Smtp, Security::StartTls).await;
    match &r.outcome {
        LoginOutcome::NotAttempted {
            reason: NotAttempted::ConnectionFailed { detail },
        } => assert!(detail.contains("refused STARTTLS"), "{detail}"),
        other => panic!("{other:?}"),
    }
    let lines = server.settled().await;
    assert_eq!(credential_lines(&lines), 0);
    assert!(!lines.iter().any(|l| l.starts_with("AUTH")), "{lines:?}");
}

#[tokio::test]
async fn plaintext_pipelined_after_starttls_means_no_login() {
    let pki = Pki::new();
    let server = AuthServer::new(
        Speak::Imap,
        Offer::Injected(pki.ca.leaf(&["localhost"]).acceptor()),
        &["IMAP4rev1", "AUTH=PLAIN"],
        &["{tag} OK in"],
    );
    let r = login(&pki, &server, Protocol::Imap, Security::StartTls).await;
    assert!(
        matches!(
            r.outcome,
            LoginOutcome::NotAttempted {
                reason: NotAttempted::ConnectionFailed { .. }
            }
        ),
        "{r:?}"
    );
    assert_eq!(credential_lines(&server.lines()), 0);
}

#[tokio::test]
async fn an_untrusted_certificate_means_no_login() {
    let pki = Pki::new();
    let server = AuthServer::new(
        Speak::Imap,
        Offer::Implicit(self_signed(&["localhost"]).acceptor()),
        &["IMAP4rev1", "SASL-IR", "AUTH=PLAIN"],
        &["{tag} OK in"],
    );
    let r = login(&pki, &server, Protocol::Imap, Security::Tls).await;
    match &r.outcome {
        LoginOutcome::NotAttempted {
            reason: NotAttempted::ConnectionFailed { detail },
        } => assert!(detail.contains("SelfSigned"), "{detail}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(credential_lines(&server.lines()), 0);
}

// ---------------------------------------------------------------------------------------------
// SMTP

#[tokio::test]
async fn smtp_plain_is_accepted_and_the_sender_checked_without_data() {
    let pki = Pki::new();
    let server = AuthServer::new(
        Speak::Smtp,
        starttls(&pki),
        &["AUTH PLAIN LOGIN", "SIZE 1000"],
        &["235 2.7.0 Authentication successful"],
    );
    let r = login(&pki, &server, Protocol::Smtp, Security::StartTls).await;
    assert_eq!(r.outcome, LoginOutcome::Accepted, "{r:?}");
    assert_eq!(
        r.sender,
        Some(SenderCheck::Accepted {
            sender: "ann@example.com".into()
        })
    );
    let lines = server.settled().await;
    let verbs: Vec<&str> = lines
        .iter()
        .map(|l| l.split([' ', ':']).next().unwrap_or(""))
        .collect();
    assert_eq!(
        verbs,
        ["EHLO", "STARTTLS", "EHLO", "AUTH", "MAIL", "RCPT", "RSET", "QUIT", "<closed>"]
    );
    assert!(lines.contains(&"MAIL FROM:<ann@example.com>".to_string()));
    // The only recipient named is the sender itself, and nothing is ever sent.
    assert!(lines.contains(&"RCPT TO:<ann@example.com>".to_string()));
    assert!(!lines.iter().any(|l| l.eq_ignore_ascii_case("DATA")));
}

/// Regression: Postfix's default `smtpd_delay_reject = yes` refuses a sender the login does not
/// own at `RCPT TO`, not at `MAIL FROM`, so a check that stopped at `MAIL FROM` never saw it.
#[tokio::test]
async fn smtp_sender_refused_only_at_the_recipient_is_reported() {
    let pki = Pki::new();
    let mut server = AuthServer::new(
        Speak::Smtp,
        Offer::Implicit(pki.ca.leaf(&["localhost"]).acceptor()),
        &["AUTH PLAIN"],
        &["235 2.7.0 ok"],
    );
    server.rcpt_to =
        "553 5.7.1 <ann@example.com>: Sender address rejected: not owned by user ann".into();
    let r = login(&pki, &server, Protocol::Smtp, Security::Tls).await;
    assert_eq!(r.outcome, LoginOutcome::Accepted);
    match &r.sender {
        Some(SenderCheck::Rejected { sender, reply }) => {
            assert_eq!(sender, "ann@example.com");
            assert!(
                reply.starts_with("RCPT TO:<ann@example.com>: 553 5.7.1 "),
                "{reply}"
            );
        }
        other => panic!("{other:?}"),
    }
    let lines = server.settled().await;
    assert!(lines.iter().any(|l| l == "RSET"), "{lines:?}");
    assert!(!lines.iter().any(|l| l.eq_ignore_ascii_case("DATA")));
}

#[tokio::test]
async fn smtp_sender_rejection_is_reported() {
    let pki = Pki::new();
    let mut server = AuthServer::new(
        Speak::Smtp,
        Offer::Implicit(pki.ca.leaf(&["localhost"]).acceptor()),
        &["AUTH PLAIN"],
        &["235 2.7.0 ok"],
    );
    server.mail_from =
        "550 5.7.1 <ann@example.com>: Sender address rejected: not owned by user ann".into();
    let r = login(&pki, &server, Protocol::Smtp, Security::Tls).await;
    assert_eq!(r.outcome, LoginOutcome::Accepted);
    match &r.sender {
        Some(SenderCheck::Rejected { sender, reply }) => {
            assert_eq!(sender, "ann@example.com");
            assert!(reply.starts_with("550 5.7.1 "), "{reply}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!server.settled().await.iter().any(|l| l == "RSET"));
}

#[tokio::test]
async fn smtp_auth_login_exchange_sends_user_then_password() {
    let pki = Pki::new();
    let server = AuthServer::new(
        Speak::Smtp,
        starttls(&pki),
        &["AUTH LOGIN"],
        &["535 5.7.8 Error: authentication failed: authentication failure"],
    );
    let r = login(&pki, &server, Protocol::Smtp, Security::StartTls).await;
    assert_eq!(r.outcome, LoginOutcome::Rejected, "{r:?}");
    assert_eq!(r.mechanism.as_deref(), Some("LOGIN"));
    assert_eq!(
        r.server_reply.as_deref(),
        Some("535 5.7.8 Error: authentication failed: authentication failure")
    );
    assert!(r.sender.is_none(), "no sender check after a refusal");
    let lines = server.settled().await;
    assert_eq!(lines[3], "AUTH LOGIN");
    assert_eq!(lines[4], "YW5u"); // "ann"
    assert_eq!(credential_lines(&lines), 1);
    assert!(!lines.iter().any(|l| l.starts_with("MAIL")));
    assert_report_clean(&r);
}

#[tokio::test]
async fn smtp_replies_are_translated() {
    for (reply, want) in [
        (
            "534 5.7.9 https://support.example/apppw",
            Some(LoginOutcome::AppPasswordRequired),
        ),
        (
            "534 5.7.14 Please log in via your web browser",
            Some(LoginOutcome::AppPasswordRequired),
        ),
        (
            "454 4.7.0 Temporary authentication failure",
            Some(LoginOutcome::TemporaryFailure),
        ),
        (
            "530 5.7.0 Must issue a STARTTLS command first",
            Some(LoginOutcome::EncryptionRequired),
        ),
        (
            "535 5.7.8 Authentication credentials invalid",
            Some(LoginOutcome::Rejected),
        ),
    ] {
        let want = want.unwrap();
        let pki = Pki::new();
        let server = AuthServer::new(Speak::Smtp, starttls(&pki), &["AUTH PLAIN"], &[reply]);
        let r = login(&pki, &server, Protocol::Smtp, Security::StartTls).await;
        assert_eq!(r.outcome, want, "{reply}: {r:?}");
        assert!(r.sender.is_none());
    }
    // A multi-line 534 reply is read whole.
    let pki = Pki::new();
    let server = AuthServer::new(
        Speak::Smtp,
        starttls(&pki),
        &["AUTH PLAIN"],
        &[
            "534-5.7.9 Application-specific password required. Learn more at",
            "534 5.7.9  https://support.example/apppw",
        ],
    );
    let r = login(&pki, &server, Protocol::Smtp, Security::StartTls).await;
    assert_eq!(r.outcome, LoginOutcome::AppPasswordRequired);
    assert!(
        r.server_reply
            .as_deref()
            .unwrap()
            .contains("Application-specific password required"),
        "{r:?}"
    );
}

#[tokio::test]
async fn smtp_without_auth_sends_nothing() {
    let pki = Pki::new();
    let server = AuthServer::new(Speak::Smtp, starttls(&pki), &["SIZE 100"], &["235 ok"]);
    let r = login(&pki, &server, Protocol::Smtp, Security::StartTls).await;
    assert!(matches!(
        r.outcome,
        LoginOutcome::NotAttempted {
            reason: NotAttempted::NoMechanism { .. }
        }
    ));
    assert_eq!(credential_lines(&server.settled().await), 0);
}

// ---------------------------------------------------------------------------------------------
// POP3

#[tokio::test]
async fn pop3_auth_plain_and_its_codes() {
    for (reply, want) in [
        ("+OK Logged in.", LoginOutcome::Accepted),
        ("-ERR [AUTH] Authentication failed.", LoginOutcome::Rejected),
        (
            "-ERR [IN-USE] Mailbox is locked by another session",
            LoginOutcome::TemporaryFailure,
        ),
        (
            "-ERR [SYS/TEMP] Temporary problem",
            LoginOutcome::TemporaryFailure,
        ),
        ("-ERR [SYS/PERM] Account closed", LoginOutcome::Locked),
    ] {
        let pki = Pki::new();
        let server = AuthServer::new(
            Speak::Pop3,
            Offer::Implicit(pki.ca.leaf(&["localhost"]).acceptor()),
            &["USER", "SASL PLAIN"],
            &[reply],
        );
        let r = login(&pki, &server, Protocol::Pop3, Security::Tls).await;
        assert_eq!(r.outcome, want, "{reply}: {r:?}");
        let lines = server.settled().await;
        assert_eq!(lines[1], format!("AUTH PLAIN {}", plain_b64()));
        assert_eq!(credential_lines(&lines), 1);
    }
}

#[tokio::test]
async fn pop3_user_pass_is_used_without_sasl() {
    let pki = Pki::new();
    let server = AuthServer::new(
        Speak::Pop3,
        starttls(&pki),
        &["USER", "TOP"],
        &["-ERR [AUTH] Authentication failed."],
    );
    let r = login(&pki, &server, Protocol::Pop3, Security::StartTls).await;
    assert_eq!(r.outcome, LoginOutcome::Rejected, "{r:?}");
    assert_eq!(r.mechanism.as_deref(), Some("USER"));
    let lines = server.settled().await;
    assert_eq!(lines[3], "USER ann");
    assert_eq!(lines[4], format!("PASS {PASSWORD}"));
    assert_eq!(lines[5], "QUIT");
}

// ---------------------------------------------------------------------------------------------
// Hostile servers

#[tokio::test]
async fn a_server_echoing_the_password_has_it_redacted() {
    let pki = Pki::new();
    let server = AuthServer::new(
        Speak::Smtp,
        starttls(&pki),
        &["AUTH PLAIN"],
        &["535 5.7.8 you sent {line} and the password CANARY-login-pa55-do-not-leak"],
    );
    let r = login(&pki, &server, Protocol::Smtp, Security::StartTls).await;
    assert_eq!(r.outcome, LoginOutcome::Rejected);
    assert!(r.server_reply.as_deref().unwrap().contains("<redacted>"));
    assert_report_clean(&r);

    let pki = Pki::new();
    let server = AuthServer::new(
        Speak::Imap,
        imap_tls(&pki),
        &["IMAP4rev1", "SASL-IR", "AUTH=PLAIN"],
        &[
            "* OK [ALERT] CANARY-login-pa55-do-not-leak is wrong",
            "{tag} NO {line}",
        ],
    );
    let r = login(&pki, &server, Protocol::Imap, Security::Tls).await;
    assert_eq!(r.outcome, LoginOutcome::Rejected);
    assert_report_clean(&r);
}

#[tokio::test]
async fn an_endless_reply_to_the_login_is_cut_at_the_line_limit() {
    let pki = Pki::new();
    let mut server = AuthServer::new(
        Speak::Imap,
        imap_tls(&pki),
        &["IMAP4rev1", "SASL-IR", "AUTH=PLAIN"],
        &[],
    );
    server.after = After::Endless;
    let started = Instant::now();
    let r = login(&pki, &server, Protocol::Imap, Security::Tls).await;
    assert_eq!(r.outcome, LoginOutcome::TemporaryFailure, "{r:?}");
    assert!(
        r.server_reply.as_deref().unwrap().contains("longer than"),
        "{r:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_slow_drip_reply_to_the_login_is_cut_by_the_io_timeout() {
    let pki = Pki::new();
    let mut server = AuthServer::new(Speak::Smtp, starttls(&pki), &["AUTH PLAIN"], &[]);
    server.after = After::Drip("235 2.7.0 Authentication successful\r\n".into());
    let started = Instant::now();
    let r = login(&pki, &server, Protocol::Smtp, Security::StartTls).await;
    let elapsed = started.elapsed();
    assert_eq!(r.outcome, LoginOutcome::TemporaryFailure, "{r:?}");
    assert!(
        r.server_reply
            .as_deref()
            .unwrap()
            .contains("no usable answer"),
        "{r:?}"
    );
    // io_timeout is 1 s; the whole login is bounded by connect + 6 × io_timeout.
    assert!(elapsed < Duration::from_millis(1900), "{elapsed:?}");
}

#[tokio::test]
async fn garbage_instead_of_a_login_reply_is_a_temporary_failure() {
    let pki = Pki::new();
    let server = AuthServer::new(
        Speak::Pop3,
        imap_tls(&pki),
        &["SASL PLAIN"],
        &["\u{1b}[31mHELLO THERE"],
    );
    let r = login(&pki, &server, Protocol::Pop3, Security::Tls).await;
    assert_eq!(r.outcome, LoginOutcome::TemporaryFailure, "{r:?}");
    assert!(!r.server_reply.as_deref().unwrap().contains('\u{1b}'));
}
