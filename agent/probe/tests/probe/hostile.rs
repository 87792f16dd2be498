//! Hostile servers: whatever they send, a probe costs bounded memory and time.

use crate::common::*;
use mailmend_core::{Prober, Protocol, Security};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

const CONNECT: Duration = Duration::from_secs(1);
const IO: Duration = Duration::from_secs(1);

#[tokio::test]
async fn endless_line_without_newline_is_cut_at_the_line_limit() {
    let pki = Pki::new();
    let port = serve(|mut s| async move {
        let chunk = [b'x'; 1024];
        while s.write_all(&chunk).await.is_ok() {}
    })
    .await;
    let started = Instant::now();
    let report = pki
        .prober(CONNECT, IO)
        .probe(&target(Protocol::Imap, port, Security::None))
        .await;
    let error = report.protocol_error.as_deref().unwrap();
    assert!(error.contains("line longer than 8192 bytes"), "{error}");
    assert!(started.elapsed() < IO);
}

#[tokio::test]
async fn huge_multiline_banner_is_cut_at_the_connection_limit() {
    let pki = Pki::new();
    let port = serve(|mut s| async move {
        let line = format!("220-{}\r\n", "a".repeat(1000));
        while s.write_all(line.as_bytes()).await.is_ok() {}
    })
    .await;
    let started = Instant::now();
    let report = pki
        .prober(CONNECT, IO)
        .probe(&target(Protocol::Smtp, port, Security::None))
        .await;
    let error = report.protocol_error.as_deref().unwrap();
    assert!(error.contains("more than 65536 bytes"), "{error}");
    assert!(started.elapsed() < IO);
}

#[tokio::test]
async fn slow_drip_greeting_is_cut_by_the_io_timeout() {
    // One byte at a time, never idle long enough for a per-read timeout to fire.
    let pki = Pki::new();
    let port = serve(|mut s| async move {
        for b in b"* OK a very slow server\r\n" {
            if s.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    let started = Instant::now();
    let report = pki
        .prober(CONNECT, IO)
        .probe(&target(Protocol::Imap, port, Security::None))
        .await;
    let elapsed = started.elapsed();
    let error = report.protocol_error.as_deref().unwrap();
    assert!(
        error.starts_with("greeting: no complete reply within 1000 ms"),
        "{error}"
    );
    assert!(
        elapsed >= IO && elapsed < IO + Duration::from_millis(600),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn slow_but_complete_replies_hit_the_session_deadline() {
    // Every reply arrives within io_timeout, but together they exceed the session's bound.
    let pki = Pki::new();
    let mut server = MailServer::new(Speak::Imap).caps(&["IMAP4rev1", "STARTTLS"], &["IMAP4rev1"]);
    server.starttls = Some(StartTls::Accept(pki.ca.leaf(&["localhost"]).acceptor()));
    server.delay = Duration::from_millis(800);
    let port = server.start().await;
    let started = Instant::now();
    let report = pki
        .prober(CONNECT, IO)
        .probe(&target(Protocol::Imap, port, Security::StartTls))
        .await;
    let elapsed = started.elapsed();
    let error = report.protocol_error.as_deref().unwrap();
    assert!(
        error.starts_with(
            "capabilities after TLS: no complete reply before the session's time limit"
        ),
        "{error}"
    );
    assert!(elapsed < IO * 3 + Duration::from_millis(600), "{elapsed:?}");
    assert!(elapsed < probe_bound(CONNECT, IO));
}

#[tokio::test]
async fn silent_plaintext_server_times_out_with_a_hint() {
    let pki = Pki::new();
    let port = serve(|s| async move {
        let _open = s;
        tokio::time::sleep(Duration::from_secs(10)).await;
    })
    .await;
    let started = Instant::now();
    let report = pki
        .prober(CONNECT, IO)
        .probe(&target(Protocol::Pop3, port, Security::None))
        .await;
    let error = report.protocol_error.as_deref().unwrap();
    assert!(error.contains("0 bytes of it received"), "{error}");
    assert!(error.contains("implicit TLS"), "{error}");
    assert!(started.elapsed() < IO + Duration::from_millis(600));
}

#[tokio::test]
async fn server_closing_at_once_is_reported() {
    let pki = Pki::new();
    let port = serve(|s| async move { drop(s) }).await;
    let report = pki
        .prober(CONNECT, IO)
        .probe(&target(Protocol::Smtp, port, Security::None))
        .await;
    let error = report.protocol_error.as_deref().unwrap();
    assert!(error.contains("closed the connection"), "{error}");
}
