//! The session after the TCP connect: implicit TLS or STARTTLS, the greeting, the capabilities
//! before and after TLS, and a polite goodbye.
//!
//! Lockout safety: the only commands ever sent are CAPABILITY, STARTTLS and LOGOUT (IMAP), CAPA,
//! STLS and QUIT (POP3), EHLO, HELO, STARTTLS and QUIT (SMTP). No credential, user name or AUTH
//! command is ever sent.

use crate::config::SESSION_IO_TIMEOUTS;
use crate::conn::{ConnError, Limits, LineConn};
use crate::replies::{
    self, excerpt, CapabilitySet, ImapGreeting, ImapLine, ImapStatus, Pop3DataLine, Pop3Status,
    ReplyError,
};
use crate::tls::TlsContext;
use mailmend_core::{Capabilities, Protocol, Security, TlsFailure, TlsOutcome};
use std::fmt;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The longest wait for the server's answer to LOGOUT/QUIT.
const GOODBYE_WAIT: Duration = Duration::from_millis(500);

/// What the session learnt.
#[derive(Debug, Default)]
pub(crate) struct SessionReport {
    pub tls: Option<TlsOutcome>,
    pub capabilities: Option<Capabilities>,
    pub protocol_error: Option<String>,
}

/// Everything a session needs besides the stream.
pub(crate) struct SessionParams<'a> {
    pub tls: &'a TlsContext,
    pub host: &'a str,
    pub protocol: Protocol,
    pub security: Security,
    pub ehlo_name: &'a str,
    pub limits: Limits,
}

/// Why a protocol step failed.
#[derive(Debug)]
pub(crate) enum StepError {
    Conn(ConnError),
    Reply(ReplyError),
    /// The server answered, but not as the protocol allows here.
    Server(String),
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::Conn(e) => e.fmt(f),
            StepError::Reply(e) => e.fmt(f),
            StepError::Server(s) => f.write_str(s),
        }
    }
}

impl From<ConnError> for StepError {
    fn from(e: ConnError) -> Self {
        StepError::Conn(e)
    }
}

impl From<ReplyError> for StepError {
    fn from(e: ReplyError) -> Self {
        StepError::Reply(e)
    }
}

/// The server's greeting.
pub(crate) struct Greeting {
    pub line: String,
    pub capabilities: Option<CapabilitySet>,
    /// IMAP PREAUTH: already authenticated, STARTTLS impossible.
    pub preauth: bool,
}

/// Runs the session over a connected stream.
pub(crate) async fn run(params: SessionParams<'_>, stream: TcpStream) -> SessionReport {
    let deadline = Instant::now() + params.limits.io_timeout * SESSION_IO_TIMEOUTS;
    let stream = crate::quickack::QuickAck(stream);
    let mut conn = LineConn::new(Box::new(stream), params.limits, deadline);
    let mut report = SessionReport::default();

    let implicit_tls = match params.protocol {
        // Exchange endpoints are HTTPS: TLS from the first byte whenever security is asked for.
        Protocol::Exchange => params.security != Security::None,
        _ => params.security == Security::Tls,
    };
    if implicit_tls {
        match upgrade(&params, &mut conn).await {
            Ok(established) => report.tls = Some(established),
            Err(failure) => {
                report.tls = Some(TlsOutcome::Failed { failure });
                return report;
            }
        }
    }

    let mut dialect = match params.protocol {
        Protocol::Imap => Dialect::Imap { next_tag: 1 },
        Protocol::Pop3 => Dialect::Pop3,
        Protocol::Smtp => Dialect::Smtp {
            ehlo_name: params.ehlo_name,
        },
        Protocol::Exchange => {
            // No protocol step for Exchange yet: a completed connect (and TLS) is all we check.
            report.capabilities = Some(Capabilities::default());
            conn.shutdown(goodbye_deadline(&conn)).await;
            return report;
        }
    };

    let greeting = match dialect.greet(&mut conn).await {
        Ok(g) => g,
        Err(e) => {
            report.protocol_error = Some(greeting_error(&e, params.security));
            return report;
        }
    };
    tracing::debug!(host = params.host, greeting = %excerpt(&greeting.line), "greeted");

    let before_tls = match greeting.capabilities.clone() {
        Some(caps) => caps,
        None => match dialect.capabilities(&mut conn).await {
            Ok(caps) => caps,
            Err(e) => {
                report.protocol_error = Some(format!("capabilities: {e}"));
                return report;
            }
        },
    };

    if params.security != Security::StartTls {
        report.capabilities = Some(before_tls.into_capabilities(&greeting.line));
        dialect.goodbye(&mut conn).await;
        return report;
    }

    // STARTTLS. Until it succeeds, the capabilities reported are the plaintext ones.
    let unavailable = |detail: String| TlsOutcome::Failed {
        failure: TlsFailure::StartTlsUnavailable { detail },
    };
    if greeting.preauth {
        report.tls = Some(unavailable(
            "server greeted with PREAUTH (already authenticated), so STARTTLS is not possible"
                .into(),
        ));
        report.capabilities = Some(before_tls.into_capabilities(&greeting.line));
        dialect.goodbye(&mut conn).await;
        return report;
    }
    if !before_tls.starttls {
        report.tls = Some(unavailable(format!(
            "server does not advertise {}",
            dialect.starttls_word()
        )));
        report.capabilities = Some(before_tls.into_capabilities(&greeting.line));
        dialect.goodbye(&mut conn).await;
        return report;
    }
    match dialect.start_tls(&mut conn).await {
        Ok(Ok(())) => {}
        Ok(Err(refusal)) => {
            report.tls = Some(unavailable(format!(
                "server refused {}: {refusal}",
                dialect.starttls_word()
            )));
            report.capabilities = Some(before_tls.into_capabilities(&greeting.line));
            dialect.goodbye(&mut conn).await;
            return report;
        }
        Err(e) => {
            report.protocol_error = Some(format!("{}: {e}", dialect.starttls_word()));
            report.capabilities = Some(before_tls.into_capabilities(&greeting.line));
            return report;
        }
    }
    if conn.has_buffered() {
        // Plaintext pipelined after the "go ahead" would be read as if it came over TLS
        // (the STARTTLS command injection class of bugs); a correct server never sends it.
        report.tls = Some(TlsOutcome::Failed {
            failure: TlsFailure::Other {
                detail: format!(
                    "server sent data after accepting {} and before the TLS handshake; not negotiating over it",
                    dialect.starttls_word()
                ),
            },
        });
        report.capabilities = Some(before_tls.into_capabilities(&greeting.line));
        return report;
    }
    match upgrade(&params, &mut conn).await {
        Ok(established) => report.tls = Some(established),
        Err(failure) => {
            report.tls = Some(TlsOutcome::Failed { failure });
            report.capabilities = Some(before_tls.into_capabilities(&greeting.line));
            return report;
        }
    }
    // Capabilities sent before TLS may have been tampered with; only the ones after count.
    match dialect.capabilities(&mut conn).await {
        Ok(after_tls) => {
            report.capabilities = Some(after_tls.into_capabilities(&greeting.line));
            dialect.goodbye(&mut conn).await;
        }
        Err(e) => report.protocol_error = Some(format!("capabilities after TLS: {e}")),
    }
    report
}

/// Replaces the connection's stream with TLS over it.
pub(crate) async fn upgrade(
    params: &SessionParams<'_>,
    conn: &mut LineConn,
) -> Result<TlsOutcome, TlsFailure> {
    let until = conn.step_deadline();
    let Some(io) = conn.take_io() else {
        return Err(TlsFailure::Other {
            detail: "connection lost before the TLS handshake".into(),
        });
    };
    let (io, established) = params.tls.handshake(io, params.host, until).await?;
    conn.put_io(io);
    Ok(established)
}

fn greeting_error(e: &StepError, security: Security) -> String {
    let hint = match (e, security) {
        (
            StepError::Conn(ConnError::TimedOut { received: 0, .. }),
            Security::None | Security::StartTls,
        ) => "; the port may expect TLS from the first byte (implicit TLS)",
        _ => "",
    };
    format!("greeting: {e}{hint}")
}

pub(crate) fn goodbye_deadline(conn: &LineConn) -> Instant {
    (Instant::now() + GOODBYE_WAIT.min(conn.io_timeout())).min(conn.session_deadline())
}

/// The protocol being spoken, with its per-session state.
pub(crate) enum Dialect<'a> {
    Imap { next_tag: u32 },
    Pop3,
    Smtp { ehlo_name: &'a str },
}

impl Dialect<'_> {
    pub(crate) fn starttls_word(&self) -> &'static str {
        match self {
            Dialect::Pop3 => "STLS",
            Dialect::Imap { .. } | Dialect::Smtp { .. } => "STARTTLS",
        }
    }

    pub(crate) async fn greet(&mut self, conn: &mut LineConn) -> Result<Greeting, StepError> {
        let until = conn.step_deadline();
        match self {
            Dialect::Imap { .. } => {
                let line = conn.read_line(until).await?;
                let (capabilities, preauth) = match replies::parse_imap_greeting(&line)? {
                    ImapGreeting::Ok { capabilities } => (capabilities, false),
                    ImapGreeting::Preauth { capabilities } => (capabilities, true),
                    ImapGreeting::Bye { text } => {
                        return Err(StepError::Server(format!(
                            "server refused the connection: * BYE {text}"
                        )))
                    }
                };
                Ok(Greeting {
                    line,
                    capabilities,
                    preauth,
                })
            }
            Dialect::Pop3 => {
                let line = conn.read_line(until).await?;
                match replies::parse_pop3_status(&line)? {
                    Pop3Status::Ok(_) => {}
                    Pop3Status::Err(text) => {
                        return Err(StepError::Server(format!(
                            "server refused the session: -ERR {}",
                            excerpt(text)
                        )))
                    }
                }
                Ok(Greeting {
                    line,
                    capabilities: None,
                    preauth: false,
                })
            }
            Dialect::Smtp { .. } => {
                let reply = smtp_reply(conn, until).await?;
                if reply.code != 220 {
                    return Err(StepError::Server(format!(
                        "server refused the session: {}",
                        excerpt(&reply.first_line)
                    )));
                }
                Ok(Greeting {
                    line: reply.first_line,
                    capabilities: None,
                    preauth: false,
                })
            }
        }
    }

    pub(crate) async fn capabilities(
        &mut self,
        conn: &mut LineConn,
    ) -> Result<CapabilitySet, StepError> {
        match self {
            Dialect::Imap { .. } => {
                let (status, text, caps) = self.imap_command(conn, "CAPABILITY").await?;
                match (status, caps) {
                    (ImapStatus::Ok, Some(caps)) => Ok(caps),
                    (ImapStatus::Ok, None) => Err(StepError::Server(
                        "CAPABILITY completed without a capability list".into(),
                    )),
                    (status, _) => Err(StepError::Server(format!(
                        "server rejected CAPABILITY: {} {text}",
                        status_word(status)
                    ))),
                }
            }
            Dialect::Pop3 => {
                conn.write_line("CAPA", conn.step_deadline()).await?;
                let until = conn.step_deadline();
                let status = conn.read_line(until).await?;
                match replies::parse_pop3_status(&status)? {
                    // A server without CAPA (RFC 1939 only) offers no extension we can see.
                    Pop3Status::Err(_) => return Ok(CapabilitySet::default()),
                    Pop3Status::Ok(_) => {}
                }
                let mut lines = Vec::new();
                loop {
                    let line = conn.read_line(until).await?;
                    match replies::parse_pop3_data_line(&line) {
                        Pop3DataLine::End => break,
                        Pop3DataLine::Data(d) => lines.push(d.to_string()),
                    }
                }
                Ok(replies::pop3_capabilities(&lines))
            }
            Dialect::Smtp { ehlo_name } => {
                let ehlo_name = *ehlo_name;
                conn.write_line(&format!("EHLO {ehlo_name}"), conn.step_deadline())
                    .await?;
                let reply = smtp_reply(conn, conn.step_deadline()).await?;
                if reply.code == 250 {
                    return Ok(replies::smtp_ehlo_capabilities(&reply.texts));
                }
                // An SMTP server without ESMTP: HELO works but offers no extension.
                conn.write_line(&format!("HELO {ehlo_name}"), conn.step_deadline())
                    .await?;
                let helo = smtp_reply(conn, conn.step_deadline()).await?;
                if helo.code == 250 {
                    Ok(CapabilitySet::default())
                } else {
                    Err(StepError::Server(format!(
                        "server rejected EHLO ({}) and HELO ({})",
                        excerpt(&reply.first_line),
                        excerpt(&helo.first_line)
                    )))
                }
            }
        }
    }

    /// Asks for TLS; `Ok(Err(text))` is the server's refusal.
    pub(crate) async fn start_tls(
        &mut self,
        conn: &mut LineConn,
    ) -> Result<Result<(), String>, StepError> {
        match self {
            Dialect::Imap { .. } => {
                let (status, text, _) = self.imap_command(conn, "STARTTLS").await?;
                Ok(match status {
                    ImapStatus::Ok => Ok(()),
                    other => Err(format!("{} {text}", status_word(other))),
                })
            }
            Dialect::Pop3 => {
                conn.write_line("STLS", conn.step_deadline()).await?;
                let line = conn.read_line(conn.step_deadline()).await?;
                Ok(match replies::parse_pop3_status(&line)? {
                    Pop3Status::Ok(_) => Ok(()),
                    Pop3Status::Err(text) => Err(format!("-ERR {}", excerpt(text))),
                })
            }
            Dialect::Smtp { .. } => {
                conn.write_line("STARTTLS", conn.step_deadline()).await?;
                let reply = smtp_reply(conn, conn.step_deadline()).await?;
                Ok(if reply.code == 220 {
                    Ok(())
                } else {
                    Err(excerpt(&reply.first_line))
                })
            }
        }
    }

    /// Says goodbye and closes. The server's answer tells the probe nothing, and waiting for it
    /// would cost every probe a round trip (probe-bench), so the command is sent and the
    /// connection closed at once; servers handle a close after LOGOUT/QUIT as normal.
    pub(crate) async fn goodbye(&mut self, conn: &mut LineConn) {
        let until = goodbye_deadline(conn);
        let command = match self {
            Dialect::Imap { next_tag } => format!("a{next_tag} LOGOUT"),
            Dialect::Pop3 | Dialect::Smtp { .. } => "QUIT".to_string(),
        };
        let _ = conn.write_line(&command, until).await;
        conn.shutdown(until).await;
    }

    /// Sends a tagged IMAP command and reads up to its completion, collecting a capability list
    /// if one comes.
    async fn imap_command(
        &mut self,
        conn: &mut LineConn,
        command: &str,
    ) -> Result<(ImapStatus, String, Option<CapabilitySet>), StepError> {
        let tag = match self {
            Dialect::Imap { next_tag } => {
                let tag = format!("a{next_tag}");
                *next_tag += 1;
                tag
            }
            _ => return Err(StepError::Server("not an IMAP session".into())),
        };
        conn.write_line(&format!("{tag} {command}"), conn.step_deadline())
            .await?;
        let until = conn.step_deadline();
        let mut caps = None;
        loop {
            let line = conn.read_line(until).await?;
            match replies::parse_imap_line(&line)? {
                ImapLine::Capability(c) => caps = Some(c),
                ImapLine::Untagged(text) => {
                    let bye = text.get(..3).is_some_and(|w| w.eq_ignore_ascii_case("BYE"));
                    if bye && command != "LOGOUT" {
                        return Err(StepError::Server(format!(
                            "server closed the session: * {}",
                            excerpt(text)
                        )));
                    }
                }
                ImapLine::Continuation(_) => {
                    return Err(StepError::Server(format!(
                        "unexpected continuation request in reply to {command}"
                    )))
                }
                ImapLine::Tagged {
                    tag: t,
                    status,
                    text,
                } if t == tag => return Ok((status, excerpt(text), caps)),
                ImapLine::Tagged { .. } => {
                    return Err(StepError::Server(format!(
                        "reply with an unknown tag: {:?}",
                        excerpt(&line)
                    )))
                }
            }
        }
    }
}

fn status_word(status: ImapStatus) -> &'static str {
    match status {
        ImapStatus::Ok => "OK",
        ImapStatus::No => "NO",
        ImapStatus::Bad => "BAD",
    }
}

/// A complete SMTP reply.
pub(crate) struct SmtpReply {
    pub code: u16,
    /// The first line as sent, for the greeting and for errors.
    pub first_line: String,
    /// The text of each line, without code and separator.
    pub texts: Vec<String>,
}

pub(crate) async fn smtp_reply(
    conn: &mut LineConn,
    until: Instant,
) -> Result<SmtpReply, StepError> {
    let mut first_line = None;
    let mut texts = Vec::new();
    loop {
        let line = conn.read_line(until).await?;
        let parsed = replies::parse_smtp_line(&line)?;
        texts.push(parsed.text.to_string());
        let code = parsed.code;
        let last = parsed.last;
        let first = first_line.get_or_insert(line);
        if last {
            return Ok(SmtpReply {
                code,
                first_line: std::mem::take(first),
                texts,
            });
        }
    }
}
