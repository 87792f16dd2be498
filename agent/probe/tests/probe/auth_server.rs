//! A scriptable mail server that logs in (IMAP, POP3, SMTP over implicit TLS or STARTTLS), for
//! the login probe's tests; and helpers that find the test password in text.
#![allow(dead_code)]

use crate::common::*;
use mailmend_core::{LoginReport, LoginRequest, Protocol, Secret, Security};
use mailmend_probe::RealProber;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_rustls::TlsAcceptor;

pub const PASSWORD: &str = "CANARY-login-pa55-do-not-leak";
/// `\0ann\0CANARY-login-pa55-do-not-leak` in base64, as SASL PLAIN sends it.
pub fn plain_b64() -> String {
    mailmend_probe::login::base64(format!("\0ann\0{PASSWORD}").as_bytes()).to_string()
}

pub fn request(sender: Option<&str>) -> LoginRequest {
    LoginRequest {
        username: "ann".into(),
        secret: Secret::from(PASSWORD.to_string()),
        sender: sender.map(str::to_string),
    }
}

/// How the server offers TLS.
#[derive(Clone)]
pub enum Offer {
    Implicit(TlsAcceptor),
    StartTls(TlsAcceptor),
    /// STARTTLS accepted with plaintext pipelined behind the go-ahead.
    Injected(TlsAcceptor),
    /// STARTTLS advertised but refused.
    Refused,
}

/// What the server does once the credential arrived.
#[derive(Clone)]
pub enum After {
    /// These lines; `{tag}` is the IMAP tag, `{line}` the line received (an echo).
    Reply(Vec<String>),
    /// An endless line without a newline.
    Endless,
    /// The reply one byte every 200 ms.
    Drip(String),
}

/// A mail server that logs in: greeting, capabilities, STARTTLS, then the scripted answer to
/// the credential; `MAIL FROM`, `RCPT TO`, `RSET`, `QUIT`/`LOGOUT` are answered too. It records every line.
#[derive(Clone)]
pub struct AuthServer {
    pub speak: Speak,
    pub tls: Offer,
    pub caps: Vec<String>,
    pub after: After,
    /// The answer to `MAIL FROM`.
    pub mail_from: String,
    /// The answer to `RCPT TO`.
    pub rcpt_to: String,
    pub log: Arc<Mutex<Vec<String>>>,
    pub connections: Arc<Mutex<usize>>,
}

impl AuthServer {
    pub fn new(speak: Speak, tls: Offer, caps: &[&str], reply: &[&str]) -> AuthServer {
        AuthServer {
            speak,
            tls,
            caps: caps.iter().map(|s| s.to_string()).collect(),
            after: After::Reply(reply.iter().map(|s| s.to_string()).collect()),
            mail_from: "250 2.1.0 Ok".into(),
            rcpt_to: "250 2.1.5 Ok".into(),
            log: Arc::new(Mutex::new(Vec::new())),
            connections: Arc::new(Mutex::new(0)),
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The received lines once the client said goodbye or closed (bounded wait).
    pub async fn settled(&self) -> Vec<String> {
        let until = Instant::now() + Duration::from_secs(2);
        loop {
            let log = self.lines();
            let done = log
                .last()
                .is_some_and(|c| c.ends_with("LOGOUT") || c == "QUIT" || c == "<closed>");
            if done || Instant::now() >= until {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn start(self) -> u16 {
        serve(move |tcp| {
            let server = self.clone();
            async move {
                *server.connections.lock().unwrap() += 1;
                let (stream, tls): (Box<dyn Stream>, bool) = match &server.tls {
                    Offer::Implicit(acceptor) => match acceptor.accept(tcp).await {
                        Ok(s) => (Box::new(s), true),
                        Err(_) => return,
                    },
                    _ => (Box::new(tcp), false),
                };
                let _ = server.session(stream, tls).await;
                server.log.lock().unwrap().push("<closed>".into());
            }
        })
        .await
    }

    async fn send(conn: &mut BufReader<Box<dyn Stream>>, lines: &[String]) -> std::io::Result<()> {
        let mut out = String::new();
        for l in lines {
            out.push_str(l);
            out.push_str("\r\n");
        }
        conn.get_mut().write_all(out.as_bytes()).await?;
        conn.get_mut().flush().await
    }

    fn caps_reply(&self, tag: &str, tls: bool) -> Vec<String> {
        let mut caps: Vec<String> = self.caps.clone();
        if !tls {
            // Before TLS only STARTTLS is offered, so that a login there would be a bug.
            caps.retain(|c| !c.starts_with("AUTH") && !c.starts_with("SASL") && c != "USER");
            caps.push(match self.speak {
                Speak::Pop3 => "STLS".into(),
                _ => "STARTTLS".into(),
            });
        }
        match self.speak {
            Speak::Imap => vec![
                format!("* CAPABILITY {}", caps.join(" ")),
                format!("{tag} OK done"),
            ],
            Speak::Pop3 => {
                let mut r = vec!["+OK caps".to_string()];
                r.extend(caps);
                r.push(".".into());
                r
            }
            Speak::Smtp => {
                let mut r = vec!["localhost hello".to_string()];
                r.extend(caps);
                let n = r.len();
                r.iter()
                    .enumerate()
                    .map(|(i, t)| format!("250{}{t}", if i + 1 == n { ' ' } else { '-' }))
                    .collect()
            }
        }
    }

    async fn answer_credential(
        &self,
        conn: &mut BufReader<Box<dyn Stream>>,
        tag: &str,
        line: &str,
    ) -> std::io::Result<()> {
        match &self.after {
            After::Reply(lines) => {
                let lines: Vec<String> = lines
                    .iter()
                    .map(|l| l.replace("{tag}", tag).replace("{line}", line))
                    .collect();
                Self::send(conn, &lines).await
            }
            After::Endless => loop {
                conn.get_mut().write_all(&[b'x'; 1024]).await?;
            },
            After::Drip(text) => {
                for b in text.bytes() {
                    conn.get_mut().write_all(&[b]).await?;
                    conn.get_mut().flush().await?;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Ok(())
            }
        }
    }

    async fn session(&self, stream: Box<dyn Stream>, mut tls: bool) -> std::io::Result<()> {
        let mut conn = BufReader::new(stream);
        let greeting = match self.speak {
            Speak::Imap => "* OK test IMAP ready",
            Speak::Pop3 => "+OK test POP3 ready",
            Speak::Smtp => "220 localhost ESMTP test",
        };
        Self::send(&mut conn, &[greeting.to_string()]).await?;
        // An AUTH LOGIN / AUTHENTICATE exchange in progress: how many more lines it takes.
        let mut pending: u8 = 0;
        let mut pending_tag = String::new();
        loop {
            let mut raw = String::new();
            if conn.read_line(&mut raw).await? == 0 {
                return Ok(());
            }
            let line = raw.trim_end().to_string();
            self.log.lock().unwrap().push(line.clone());
            if pending > 0 {
                pending -= 1;
                if pending == 0 {
                    self.answer_credential(&mut conn, &pending_tag, &line)
                        .await?;
                } else {
                    Self::send(&mut conn, &["334 UGFzc3dvcmQ6".to_string()]).await?;
                }
                continue;
            }
            let (tag, rest) = match self.speak {
                Speak::Imap => line
                    .split_once(' ')
                    .map(|(t, r)| (t.to_string(), r.to_string()))
                    .unwrap_or((line.clone(), String::new())),
                _ => (String::new(), line.clone()),
            };
            let upper = rest.to_ascii_uppercase();
            let verb = upper.split(' ').next().unwrap_or("").to_string();
            let reply: Vec<String> = match (self.speak, verb.as_str()) {
                (Speak::Imap, "CAPABILITY") | (Speak::Pop3, "CAPA") | (Speak::Smtp, "EHLO") => {
                    self.caps_reply(&tag, tls)
                }
                (_, "STARTTLS") | (Speak::Pop3, "STLS") if !tls => {
                    let ok = match self.speak {
                        Speak::Imap => format!("{tag} OK begin TLS"),
                        Speak::Pop3 => "+OK begin TLS".into(),
                        Speak::Smtp => "220 go ahead".into(),
                    };
                    let (acceptor, inject) = match &self.tls {
                        Offer::StartTls(a) => (a.clone(), false),
                        Offer::Injected(a) => (a.clone(), true),
                        _ => {
                            let no = match self.speak {
                                Speak::Imap => format!("{tag} NO not now"),
                                Speak::Pop3 => "-ERR not now".into(),
                                Speak::Smtp => "454 4.7.0 TLS not available".into(),
                            };
                            Self::send(&mut conn, &[no]).await?;
                            continue;
                        }
                    };
                    let mut lines = vec![ok];
                    if inject {
                        lines.push(format!("{tag} OK injected"));
                    }
                    Self::send(&mut conn, &lines).await?;
                    let upgraded = acceptor.accept(conn.into_inner()).await?;
                    conn = BufReader::new(Box::new(upgraded));
                    tls = true;
                    continue;
                }
                (Speak::Imap, "AUTHENTICATE") => {
                    if upper.split(' ').count() >= 3 {
                        self.answer_credential(&mut conn, &tag, &line).await?;
                        continue;
                    }
                    pending = 1;
                    pending_tag = tag.clone();
                    vec!["+ ".to_string()]
                }
                (Speak::Imap, "LOGIN") | (Speak::Pop3, "PASS") => {
                    self.answer_credential(&mut conn, &tag, &line).await?;
                    continue;
                }
                (Speak::Pop3, "AUTH") | (Speak::Smtp, "AUTH") => {
                    if upper.starts_with("AUTH LOGIN") {
                        pending = 2;
                        vec!["334 VXNlcm5hbWU6".to_string()]
                    } else {
                        self.answer_credential(&mut conn, &tag, &line).await?;
                        continue;
                    }
                }
                (Speak::Pop3, "USER") => vec!["+OK send PASS".into()],
                (Speak::Smtp, "MAIL") => vec![self.mail_from.clone()],
                (Speak::Smtp, "RCPT") => vec![self.rcpt_to.clone()],
                (Speak::Smtp, "RSET") => vec!["250 2.0.0 Ok".into()],
                (Speak::Imap, "LOGOUT") => {
                    Self::send(&mut conn, &["* BYE".into(), format!("{tag} OK bye")]).await?;
                    return Ok(());
                }
                (_, "QUIT") => {
                    let bye = if self.speak == Speak::Pop3 {
                        "+OK bye"
                    } else {
                        "221 bye"
                    };
                    Self::send(&mut conn, &[bye.to_string()]).await?;
                    return Ok(());
                }
                (Speak::Imap, _) => vec![format!("{tag} BAD unknown")],
                (Speak::Pop3, _) => vec!["-ERR unknown".into()],
                (Speak::Smtp, _) => vec!["502 unknown".into()],
            };
            Self::send(&mut conn, &reply).await?;
        }
    }
}

pub fn prober(pki: &Pki) -> RealProber {
    pki.prober(Duration::from_secs(2), Duration::from_secs(1))
}

pub async fn login(
    pki: &Pki,
    server: &AuthServer,
    protocol: Protocol,
    security: Security,
) -> LoginReport {
    let port = server.clone().start().await;
    prober(pki)
        .login(
            &target(protocol, port, security),
            &request(Some("ann@example.com")),
            true,
        )
        .await
}

/// Fails when the password, or the SASL PLAIN blob that carries it, is anywhere in `text`.
pub fn assert_no_secret(text: &str) {
    assert!(!text.contains(PASSWORD), "password leaked: {text}");
    assert!(
        !text.contains(&plain_b64()),
        "encoded password leaked: {text}"
    );
    let login_b64 = mailmend_probe::login::base64(PASSWORD.as_bytes()).to_string();
    assert!(
        !text.contains(&login_b64),
        "encoded password leaked: {text}"
    );
}

pub fn assert_report_clean(r: &LoginReport) {
    assert_no_secret(&format!("{r:?}"));
    assert_no_secret(&serde_json::to_string(r).unwrap());
}

/// How many lines carried the credential.
pub fn credential_lines(lines: &[String]) -> usize {
    lines
        .iter()
        .filter(|l| {
            l.contains(PASSWORD) || l.contains(&plain_b64()) || {
                let b = mailmend_probe::login::base64(PASSWORD.as_bytes()).to_string();
                l.contains(&b)
            }
        })
        .count()
}

pub fn imap_tls(pki: &Pki) -> Offer {
    Offer::Implicit(pki.ca.leaf(&["localhost"]).acceptor())
}

pub fn starttls(pki: &Pki) -> Offer {
    Offer::StartTls(pki.ca.leaf(&["localhost"]).acceptor())
}
