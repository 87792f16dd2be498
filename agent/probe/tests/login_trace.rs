//! The login probe's logs at trace level never hold the password. Its own test binary, with a
//! process-wide subscriber: a per-thread one would miss log lines whose interest other tests,
//! running at the same time without a subscriber, had already cached as unwanted.

#[path = "probe/auth_server.rs"]
mod auth_server;
#[allow(dead_code)]
#[path = "probe/common.rs"]
mod common;

use auth_server::*;
use common::*;
use mailmend_core::{Protocol, Security};
use std::sync::{Arc, Mutex};

/// A writer that appends to a shared buffer, for capturing tracing output.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn trace_level_logs_never_contain_the_password() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    tracing::trace!("capture works");
    for (speak, protocol, caps, reply) in [
        (
            Speak::Imap,
            Protocol::Imap,
            vec!["IMAP4rev1", "AUTH=PLAIN"],
            "{tag} NO [AUTHENTICATIONFAILED] {line}",
        ),
        (
            Speak::Smtp,
            Protocol::Smtp,
            vec!["AUTH LOGIN"],
            "535 5.7.8 {line}",
        ),
        (
            Speak::Pop3,
            Protocol::Pop3,
            vec!["USER"],
            "-ERR [AUTH] {line}",
        ),
    ] {
        let pki = Pki::new();
        let server = AuthServer::new(speak, starttls(&pki), &caps, &[reply]);
        let r = login(&pki, &server, protocol, Security::StartTls).await;
        assert!(r.outcome.attempted(), "{r:?}");
        assert_eq!(credential_lines(&server.settled().await), 1);
    }
    let logged = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
    assert!(logged.contains("capture works"), "{logged}");
    assert!(logged.contains("logging in once"), "{logged}");
    assert_no_secret(&logged);
}
