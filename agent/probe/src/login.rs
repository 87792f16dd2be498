//! One lockout-safe login: over a verified encrypted connection only, a single attempt (IMAP
//! `AUTHENTICATE PLAIN` or `LOGIN`, POP3 `AUTH PLAIN` or `USER`/`PASS`, SMTP `AUTH PLAIN` or
//! `LOGIN`), an optional SMTP sender check (`MAIL FROM` and `RCPT TO` the sender, never `DATA`),
//! then logout; and the pure
//! translation of what servers answer into a [`LoginOutcome`].
//!
//! Encryption is enforced by types: the commands that carry the credential take a
//! [`Secured`] session, and the only way to get one is [`secure`], which returns it after a TLS
//! handshake with full certificate verification (implicit TLS, or STARTTLS advertised, accepted
//! and followed by no pipelined plaintext). A target whose security is `None` is refused before
//! anything is connected.
//!
//! Secrets: the password is sent only through [`LineConn::write_secret_line`], whose buffer is
//! zeroed; every server text that goes into the report is [`sanitise`]d (the password and its
//! encodings replaced, control characters replaced, truncated), and nothing here logs a
//! credential or a line that carries one.
//!
//! Bounds: the session after the TCP connect takes at most [`LOGIN_SESSION_IO_TIMEOUTS`] ×
//! `io_timeout`, each step at most `io_timeout`, with the reads bounded in bytes as in every
//! probe.

use crate::conn::LineConn;
use crate::dialogue::{self, smtp_reply, Dialect, SessionParams, SmtpReply, StepError};
use crate::replies::{self, excerpt, CapabilitySet, ImapLine, ImapStatus, Pop3Status};
use mailmend_core::{
    LoginOutcome, LoginReport, LoginRequest, NotAttempted, ProbeTarget, Protocol, Security,
    SenderCheck, TlsOutcome,
};
use tokio::net::TcpStream;
use tokio::time::Instant;
use zeroize::Zeroizing;

/// How many `io_timeout`s a login session may take after the TCP connect: greeting,
/// capabilities, STARTTLS, handshake, capabilities again, the login (up to three exchanges),
/// the sender check and the goodbye each take one step, and not all are ever needed together.
pub const LOGIN_SESSION_IO_TIMEOUTS: u32 = 6;

/// What replaces a credential found in a server's text.
const REDACTED: &str = "<redacted>";

// ---------------------------------------------------------------------------------------------
// Translation of server replies (pure)
// ---------------------------------------------------------------------------------------------

/// An IMAP response code at the start of a status text (`[ALERT] text` → `("ALERT", "text")`),
/// upper-cased, without its arguments.
pub fn imap_response_code(text: &str) -> Option<(String, &str)> {
    let inner = text.strip_prefix('[')?;
    let end = inner.find(']')?;
    let code = inner[..end].split(' ').next().unwrap_or_default();
    Some((code.to_ascii_uppercase(), inner[end + 1..].trim_start()))
}

/// What words in a refusal say about its cause, when no code says it.
fn by_words(text: &str) -> Option<LoginOutcome> {
    let t = text.to_ascii_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| t.contains(w));
    if any(&[
        "application-specific password",
        "app password",
        "app-specific password",
        "web browser",
        "web login",
        "webloginrequired",
        "two-step",
        "2-step",
        "multi-factor",
        "mfa",
    ]) {
        Some(LoginOutcome::AppPasswordRequired)
    } else if any(&["locked", "disabled", "suspended", "blocked", "deactivated"]) {
        Some(LoginOutcome::Locked)
    } else if any(&["expired", "must be changed", "change your password"]) {
        Some(LoginOutcome::PasswordExpired)
    } else {
        None
    }
}

/// Translates the tagged completion of IMAP `AUTHENTICATE`/`LOGIN` (RFC 9051, RFC 5530 codes).
pub fn imap_login_outcome(status: ImapStatus, text: &str) -> LoginOutcome {
    if status == ImapStatus::Ok {
        return LoginOutcome::Accepted;
    }
    let code = imap_response_code(text).map(|(c, _)| c);
    match code.as_deref() {
        Some("EXPIRED") => LoginOutcome::PasswordExpired,
        // Dovecot puts every administrator's refusal text (passdb `nologin` with a `reason`)
        // under CONTACTADMIN, also "application-specific password required": the words tell
        // which; without telling words it is an account the administrator closed.
        Some("CONTACTADMIN") => by_words(text).unwrap_or(LoginOutcome::Locked),
        // SERVERBUG (RFC 5530): the server failed, not the credential (Dovecot as a proxy says
        // so when its back end refuses the forwarded login). Taking it for a refusal would
        // remember a right password as wrong and never try it again.
        Some("UNAVAILABLE") | Some("INUSE") | Some("LIMIT") | Some("SERVERBUG") => {
            LoginOutcome::TemporaryFailure
        }
        Some("PRIVACYREQUIRED") => LoginOutcome::EncryptionRequired,
        Some("AUTHENTICATIONFAILED") | Some("AUTHORIZATIONFAILED") => {
            by_words(text).unwrap_or(LoginOutcome::Rejected)
        }
        _ => match by_words(text) {
            Some(o) => o,
            // NO is a refusal of the credential; BAD means the command itself was not
            // understood, which says nothing about the password.
            None if status == ImapStatus::No => LoginOutcome::Rejected,
            None => LoginOutcome::TemporaryFailure,
        },
    }
}

/// The enhanced status code (RFC 3463) at the start of an SMTP reply text, e.g. `5.7.8`.
pub fn smtp_enhanced_status(text: &str) -> Option<(u8, u16, u16)> {
    let word = text.split_ascii_whitespace().next()?;
    let mut parts = word.split('.');
    let class: u8 = parts.next()?.parse().ok()?;
    let subject: u16 = parts.next()?.parse().ok()?;
    let detail: u16 = parts.next()?.parse().ok()?;
    (parts.next().is_none() && matches!(class, 2 | 4 | 5)).then_some((class, subject, detail))
}

/// Translates the final reply to SMTP `AUTH` (RFC 4954, RFC 3207, and the codes big providers
/// use: 534 5.7.9 / 5.7.14 for an app password or web sign-in, 535 5.7.139 for basic
/// authentication turned off).
pub fn smtp_auth_outcome(code: u16, text: &str) -> LoginOutcome {
    let enhanced = smtp_enhanced_status(text);
    match code {
        200..=299 => LoginOutcome::Accepted,
        432 => LoginOutcome::PasswordExpired,
        400..=499 => LoginOutcome::TemporaryFailure,
        530 | 538 => LoginOutcome::EncryptionRequired,
        534 => LoginOutcome::AppPasswordRequired,
        535 if enhanced == Some((5, 7, 139)) => LoginOutcome::AppPasswordRequired,
        500..=599 => by_words(text).unwrap_or(LoginOutcome::Rejected),
        // 1xx/3xx at the end of an exchange: not an answer to a login.
        _ => LoginOutcome::TemporaryFailure,
    }
}

/// Translates a POP3 `-ERR` (or `+OK`) answer to `PASS` or `AUTH` (RFC 2449, RFC 3206 codes).
pub fn pop3_login_outcome(ok: bool, text: &str) -> LoginOutcome {
    if ok {
        return LoginOutcome::Accepted;
    }
    let code = imap_response_code(text).map(|(c, _)| c);
    match code.as_deref() {
        Some("AUTH") => by_words(text).unwrap_or(LoginOutcome::Rejected),
        // IN-USE: the password was right but the mailbox is locked by another session.
        Some("IN-USE") | Some("SYS/TEMP") | Some("LOGIN-DELAY") => LoginOutcome::TemporaryFailure,
        Some("SYS/PERM") => LoginOutcome::Locked,
        _ => by_words(text).unwrap_or(LoginOutcome::Rejected),
    }
}

/// How a server answered `MAIL FROM` after the login.
pub fn smtp_sender_outcome(code: u16, sender: &str, reply: String) -> SenderCheck {
    let sender = sender.to_string();
    match code {
        200..=299 => SenderCheck::Accepted { sender },
        500..=599 => SenderCheck::Rejected { sender, reply },
        _ => SenderCheck::Inconclusive { sender, reply },
    }
}

/// Whether a reply text speaks of the sender, outside any `<address>` it quotes (an address
/// may itself contain the word).
fn says_sender(reply: &str) -> bool {
    let mut outside = String::with_capacity(reply.len());
    let mut depth = 0usize;
    for c in reply.chars() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            c if depth == 0 => outside.push(c),
            _ => {}
        }
    }
    outside.to_ascii_lowercase().contains("sender")
}

/// How a server answered `RCPT TO:<sender>` after accepting `MAIL FROM:<sender>`. Servers that
/// delay their restrictions to the recipient (Postfix's default `smtpd_delay_reject = yes`)
/// refuse a sender the login does not own only here; a refusal counts against the sender only
/// when it says so, since a recipient can be refused for reasons of its own.
pub fn smtp_recipient_outcome(code: u16, sender: &str, reply: String) -> SenderCheck {
    let sender = sender.to_string();
    match code {
        200..=299 => SenderCheck::Accepted { sender },
        500..=599 if says_sender(&reply) => SenderCheck::Rejected { sender, reply },
        _ => SenderCheck::Inconclusive { sender, reply },
    }
}

/// A server text made safe for a report: the credential, in any form it was sent, replaced,
/// then control characters replaced and the text cut to [`replies::EXCERPT_CHARS`].
pub fn sanitise(text: &str, secret: &[u8], sent_forms: &[&str]) -> String {
    let mut t = text.to_string();
    if let Ok(password) = std::str::from_utf8(secret) {
        if !password.is_empty() {
            t = t.replace(password, REDACTED);
        }
    }
    for form in sent_forms {
        if !form.is_empty() {
            t = t.replace(form, REDACTED);
        }
    }
    excerpt(&t)
}

/// Standard base64 with padding, into a buffer that is zeroed on drop.
pub fn base64(input: &[u8]) -> Zeroizing<String> {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    // Allocated once at its final size, so that no reallocation leaves a copy behind.
    let mut out = Zeroizing::new(String::with_capacity(input.len().div_ceil(3) * 4));
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(TABLE[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The SASL PLAIN message (RFC 4616): no authorisation identity, the user, the password.
fn sasl_plain(username: &str, secret: &[u8]) -> Zeroizing<String> {
    let mut raw = Zeroizing::new(Vec::with_capacity(username.len() + secret.len() + 2));
    raw.push(0);
    raw.extend_from_slice(username.as_bytes());
    raw.push(0);
    raw.extend_from_slice(secret);
    base64(&raw)
}

/// An IMAP quoted string, or `None` when the bytes cannot be one (CR, LF or NUL).
fn imap_quoted(bytes: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if bytes.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
        return None;
    }
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len() * 2 + 2));
    out.push(b'"');
    for &b in bytes {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
    Some(out)
}

/// Whether an address can be sent in `MAIL FROM:<…>` as is.
fn plain_address(addr: &str) -> bool {
    addr.len() <= 254
        && addr.contains('@')
        && addr
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b'\\'))
}

// ---------------------------------------------------------------------------------------------
// The session
// ---------------------------------------------------------------------------------------------

/// A session whose TLS was negotiated and whose certificate was verified. Only [`secure`]
/// makes one, so nothing that takes it can run over plaintext.
pub(crate) struct Secured<'p> {
    conn: LineConn,
    dialect: Dialect<'p>,
    /// The capabilities sent after TLS (never the ones sent before it).
    caps: CapabilitySet,
}

/// Connects the session's security: implicit TLS, or STARTTLS when the target asks for it.
/// `Err` holds why no encrypted session exists; no credential has been sent then.
pub(crate) async fn secure<'p>(
    params: &SessionParams<'p>,
    stream: TcpStream,
) -> Result<Secured<'p>, String> {
    let deadline = Instant::now() + params.limits.io_timeout * LOGIN_SESSION_IO_TIMEOUTS;
    let mut conn = LineConn::new(Box::new(stream), params.limits, deadline);
    let mut dialect = match params.protocol {
        Protocol::Imap => Dialect::Imap { next_tag: 1 },
        Protocol::Pop3 => Dialect::Pop3,
        Protocol::Smtp => Dialect::Smtp {
            ehlo_name: params.ehlo_name,
        },
        Protocol::Exchange => return Err("Exchange endpoints are not logged in to".into()),
    };
    let tls_failed = |f: &mailmend_core::TlsFailure| format!("TLS failed: {f:?}");
    let greeting = match params.security {
        Security::None => return Err("the connection would not be encrypted".into()),
        Security::Tls => {
            match dialogue::upgrade(params, &mut conn).await {
                Ok(TlsOutcome::Established { .. }) => {}
                Ok(TlsOutcome::Failed { failure }) | Err(failure) => {
                    return Err(tls_failed(&failure))
                }
            }
            dialect
                .greet(&mut conn)
                .await
                .map_err(|e| format!("greeting: {e}"))?
        }
        Security::StartTls => {
            let greeting = dialect
                .greet(&mut conn)
                .await
                .map_err(|e| format!("greeting: {e}"))?;
            if greeting.preauth {
                return Err("server greeted with PREAUTH; STARTTLS is not possible".into());
            }
            let before = match greeting.capabilities.clone() {
                Some(c) => c,
                None => dialect
                    .capabilities(&mut conn)
                    .await
                    .map_err(|e| format!("capabilities: {e}"))?,
            };
            if !before.starttls {
                return Err(format!(
                    "server does not advertise {}",
                    dialect.starttls_word()
                ));
            }
            match dialect.start_tls(&mut conn).await {
                Ok(Ok(())) => {}
                Ok(Err(refusal)) => {
                    return Err(format!(
                        "server refused {}: {refusal}",
                        dialect.starttls_word()
                    ))
                }
                Err(e) => return Err(format!("{}: {e}", dialect.starttls_word())),
            }
            if conn.has_buffered() {
                return Err("server sent data after accepting STARTTLS and before TLS".into());
            }
            match dialogue::upgrade(params, &mut conn).await {
                Ok(TlsOutcome::Established { .. }) => {}
                Ok(TlsOutcome::Failed { failure }) | Err(failure) => {
                    return Err(tls_failed(&failure))
                }
            }
            greeting
        }
    };
    if greeting.preauth {
        return Err("server greeted with PREAUTH; there is nothing to log in to".into());
    }
    // After STARTTLS the capabilities must be asked again; with implicit TLS the greeting's
    // list (sent over TLS) is good.
    let caps = match (params.security, greeting.capabilities) {
        (Security::Tls, Some(caps)) => caps,
        _ => dialect
            .capabilities(&mut conn)
            .await
            .map_err(|e| format!("capabilities after TLS: {e}"))?,
    };
    Ok(Secured {
        conn,
        dialect,
        caps,
    })
}

/// How the credential is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mechanism {
    /// SASL PLAIN; `initial` sends the response with the command (SASL-IR, RFC 4954, RFC 5034).
    Plain { initial: bool },
    /// SASL LOGIN (SMTP).
    SaslLogin,
    /// IMAP `LOGIN user pass`.
    ImapLogin,
    /// POP3 `USER` / `PASS`.
    UserPass,
}

impl Mechanism {
    fn name(self) -> &'static str {
        match self {
            Mechanism::Plain { .. } => "PLAIN",
            Mechanism::SaslLogin | Mechanism::ImapLogin => "LOGIN",
            Mechanism::UserPass => "USER",
        }
    }
}

/// The mechanism to use with these capabilities: PLAIN first, as every client does.
fn choose(protocol: Protocol, caps: &CapabilitySet) -> Option<Mechanism> {
    let has = |m: &str| caps.auth_mechanisms.iter().any(|a| a == m);
    match protocol {
        Protocol::Imap if has("PLAIN") => Some(Mechanism::Plain {
            initial: caps.words.iter().any(|w| w == "SASL-IR"),
        }),
        Protocol::Imap if !caps.login_disabled => Some(Mechanism::ImapLogin),
        Protocol::Pop3 if has("PLAIN") => Some(Mechanism::Plain { initial: true }),
        // A POP3 server without CAPA (empty list) speaks RFC 1939, where USER/PASS is the norm.
        Protocol::Pop3 if caps.words.is_empty() || caps.words.iter().any(|w| w == "USER") => {
            Some(Mechanism::UserPass)
        }
        Protocol::Smtp if has("PLAIN") => Some(Mechanism::Plain { initial: true }),
        Protocol::Smtp if has("LOGIN") => Some(Mechanism::SaslLogin),
        _ => None,
    }
}

/// What the login step learnt.
struct Attempt {
    outcome: LoginOutcome,
    reply: Option<String>,
    alert: Option<String>,
}

/// Everything one login needs besides the stream.
pub(crate) struct LoginParams<'p> {
    pub session: SessionParams<'p>,
    pub check_sender: bool,
}

/// Runs one login over `stream` to `target`: secure, authenticate once, check the sender,
/// say goodbye. `started` is when the whole check began, for the report's time.
pub(crate) async fn run(
    params: LoginParams<'_>,
    target: &ProbeTarget,
    stream: TcpStream,
    request: &LoginRequest,
    started: Instant,
) -> LoginReport {
    let elapsed = || u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut secured = match secure(&params.session, stream).await {
        Ok(s) => s,
        Err(detail) => {
            let mut r = LoginReport::not_attempted(
                target.clone(),
                NotAttempted::ConnectionFailed { detail },
            );
            r.elapsed_ms = elapsed();
            return r;
        }
    };
    let Some(mechanism) = choose(target.protocol, &secured.caps) else {
        let offered = secured.caps.auth_mechanisms.clone();
        secured.dialect.goodbye(&mut secured.conn).await;
        let mut r =
            LoginReport::not_attempted(target.clone(), NotAttempted::NoMechanism { offered });
        r.elapsed_ms = elapsed();
        return r;
    };
    tracing::debug!(%target, mechanism = mechanism.name(), "logging in once");
    let attempt = authenticate(&mut secured, mechanism, request).await;
    let mut sender = None;
    if attempt.outcome == LoginOutcome::Accepted && target.protocol == Protocol::Smtp {
        if let Some(addr) = request
            .sender
            .as_deref()
            .filter(|a| params.check_sender && plain_address(a))
        {
            sender = check_sender(&mut secured, addr, request).await;
        }
    }
    secured.dialect.goodbye(&mut secured.conn).await;
    tracing::debug!(%target, outcome = attempt.outcome.as_str(), "login checked");
    LoginReport {
        target: target.clone(),
        outcome: attempt.outcome,
        mechanism: Some(mechanism.name().to_string()),
        server_reply: attempt.reply,
        alert: attempt.alert,
        sender,
        remembered_from: None,
        elapsed_ms: elapsed(),
    }
}

/// The error of a step after the credential was sent, as a temporary failure: the server's
/// answer could not be read, so nothing is known about the password.
fn broken(e: &StepError, request: &LoginRequest, forms: &[&str]) -> Attempt {
    Attempt {
        outcome: LoginOutcome::TemporaryFailure,
        reply: Some(sanitise(
            &format!("no usable answer: {e}"),
            request.secret.expose(),
            forms,
        )),
        alert: None,
    }
}

async fn authenticate(s: &mut Secured<'_>, m: Mechanism, request: &LoginRequest) -> Attempt {
    match &s.dialect {
        Dialect::Imap { .. } => imap_login(s, m, request).await,
        Dialect::Pop3 => pop3_login(s, m, request).await,
        Dialect::Smtp { .. } => smtp_login(s, m, request).await,
    }
}

fn next_tag(d: &mut Dialect<'_>) -> String {
    match d {
        Dialect::Imap { next_tag } => {
            let tag = format!("a{next_tag}");
            *next_tag += 1;
            tag
        }
        _ => "a0".to_string(),
    }
}

async fn imap_login(s: &mut Secured<'_>, m: Mechanism, request: &LoginRequest) -> Attempt {
    let plain = sasl_plain(&request.username, request.secret.expose());
    let forms: [&str; 1] = [plain.as_str()];
    let tag = next_tag(&mut s.dialect);
    let mut continuation_answered = false;
    let sent = match m {
        Mechanism::Plain { initial: true } => {
            let mut line = Zeroizing::new(format!("{tag} AUTHENTICATE PLAIN ").into_bytes());
            line.extend_from_slice(plain.as_bytes());
            s.conn
                .write_secret_line(&line, s.conn.step_deadline())
                .await
        }
        Mechanism::Plain { initial: false } => {
            s.conn
                .write_line(&format!("{tag} AUTHENTICATE PLAIN"), s.conn.step_deadline())
                .await
        }
        _ => {
            let (Some(user), Some(pass)) = (
                imap_quoted(request.username.as_bytes()),
                imap_quoted(request.secret.expose()),
            ) else {
                return Attempt {
                    outcome: LoginOutcome::NotAttempted {
                        reason: NotAttempted::NoMechanism {
                            offered: s.caps.auth_mechanisms.clone(),
                        },
                    },
                    reply: Some("the user name or password cannot be sent with IMAP LOGIN".into()),
                    alert: None,
                };
            };
            let mut line = Zeroizing::new(format!("{tag} LOGIN ").into_bytes());
            line.extend_from_slice(&user);
            line.push(b' ');
            line.extend_from_slice(&pass);
            s.conn
                .write_secret_line(&line, s.conn.step_deadline())
                .await
        }
    };
    if let Err(e) = sent {
        return broken(&StepError::Conn(e), request, &forms);
    }
    let until = s.conn.step_deadline();
    let mut alert = None;
    loop {
        let line = match s.conn.read_line(until).await {
            Ok(l) => l,
            Err(e) => return broken(&StepError::Conn(e), request, &forms),
        };
        let parsed = match replies::parse_imap_line(&line) {
            Ok(p) => p,
            Err(e) => return broken(&StepError::Reply(e), request, &forms),
        };
        match parsed {
            ImapLine::Continuation(_) if m == Mechanism::Plain { initial: false } => {
                if continuation_answered {
                    // A second challenge: PLAIN has only one step. Cancel (RFC 9051 6.2.2).
                    if let Err(e) = s.conn.write_line("*", s.conn.step_deadline()).await {
                        return broken(&StepError::Conn(e), request, &forms);
                    }
                    continue;
                }
                continuation_answered = true;
                if let Err(e) = s
                    .conn
                    .write_secret_line(plain.as_bytes(), s.conn.step_deadline())
                    .await
                {
                    return broken(&StepError::Conn(e), request, &forms);
                }
            }
            ImapLine::Continuation(_) => {
                return broken(
                    &StepError::Server("unexpected continuation request".into()),
                    request,
                    &forms,
                )
            }
            ImapLine::Capability(_) => {}
            ImapLine::Untagged(text) => {
                let rest = text.split_once(' ').map_or("", |(_, r)| r.trim_start());
                if let Some((code, body)) = imap_response_code(rest) {
                    if code == "ALERT" {
                        alert = Some(sanitise(body, request.secret.expose(), &forms));
                    }
                }
            }
            ImapLine::Tagged {
                tag: t,
                status,
                text,
            } if t == tag => {
                if let Some(("ALERT", body)) = imap_response_code(text)
                    .as_ref()
                    .map(|(c, b)| (c.as_str(), *b))
                {
                    alert = Some(sanitise(body, request.secret.expose(), &forms));
                }
                let mut outcome = imap_login_outcome(status, text);
                if outcome == LoginOutcome::Rejected {
                    // An alert may say more than the completion (Gmail's app-password text).
                    if let Some(better) = alert.as_deref().and_then(by_words) {
                        outcome = better;
                    }
                }
                return Attempt {
                    outcome,
                    reply: Some(sanitise(&line, request.secret.expose(), &forms)),
                    alert,
                };
            }
            ImapLine::Tagged { .. } => {
                return broken(
                    &StepError::Server("reply with an unknown tag".into()),
                    request,
                    &forms,
                )
            }
        }
    }
}

async fn pop3_status(
    s: &mut Secured<'_>,
    request: &LoginRequest,
    forms: &[&str],
) -> Result<(bool, String, String), Attempt> {
    let line = s
        .conn
        .read_line(s.conn.step_deadline())
        .await
        .map_err(|e| broken(&StepError::Conn(e), request, forms))?;
    if line == "+" || line.starts_with("+ ") {
        // A SASL challenge where none was expected: cancel, as RFC 5034 says.
        let _ = s.conn.write_line("*", s.conn.step_deadline()).await;
        return Err(broken(
            &StepError::Server("server asked for more SASL data".into()),
            request,
            forms,
        ));
    }
    match replies::parse_pop3_status(&line) {
        Ok(Pop3Status::Ok(t)) => Ok((true, t.to_string(), line.clone())),
        Ok(Pop3Status::Err(t)) => Ok((false, t.to_string(), line.clone())),
        Err(e) => Err(broken(&StepError::Reply(e), request, forms)),
    }
}

async fn pop3_login(s: &mut Secured<'_>, m: Mechanism, request: &LoginRequest) -> Attempt {
    let plain = sasl_plain(&request.username, request.secret.expose());
    let forms: [&str; 1] = [plain.as_str()];
    let secret = request.secret.expose();
    let finish = |ok: bool, text: &str, line: &str| Attempt {
        outcome: pop3_login_outcome(ok, text),
        reply: Some(sanitise(line, secret, &forms)),
        alert: None,
    };
    if let Mechanism::Plain { .. } = m {
        let mut line = Zeroizing::new(b"AUTH PLAIN ".to_vec());
        line.extend_from_slice(plain.as_bytes());
        if let Err(e) = s
            .conn
            .write_secret_line(&line, s.conn.step_deadline())
            .await
        {
            return broken(&StepError::Conn(e), request, &forms);
        }
        return match pop3_status(s, request, &forms).await {
            Ok((ok, text, line)) => finish(ok, &text, &line),
            Err(a) => a,
        };
    }
    if request
        .username
        .bytes()
        .any(|b| b == b'\r' || b == b'\n' || b == 0)
        || secret.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0)
    {
        return Attempt {
            outcome: LoginOutcome::NotAttempted {
                reason: NotAttempted::NoMechanism {
                    offered: s.caps.auth_mechanisms.clone(),
                },
            },
            reply: Some("the user name or password cannot be sent with USER/PASS".into()),
            alert: None,
        };
    }
    if let Err(e) = s
        .conn
        .write_line(
            &format!("USER {}", request.username),
            s.conn.step_deadline(),
        )
        .await
    {
        return broken(&StepError::Conn(e), request, &forms);
    }
    match pop3_status(s, request, &forms).await {
        Ok((true, _, _)) => {}
        Ok((false, text, line)) => return finish(false, &text, &line),
        Err(a) => return a,
    }
    let mut line = Zeroizing::new(b"PASS ".to_vec());
    line.extend_from_slice(secret);
    if let Err(e) = s
        .conn
        .write_secret_line(&line, s.conn.step_deadline())
        .await
    {
        return broken(&StepError::Conn(e), request, &forms);
    }
    match pop3_status(s, request, &forms).await {
        Ok((ok, text, line)) => finish(ok, &text, &line),
        Err(a) => a,
    }
}

async fn smtp_read(
    s: &mut Secured<'_>,
    request: &LoginRequest,
    forms: &[&str],
) -> Result<SmtpReply, Attempt> {
    let until = s.conn.step_deadline();
    smtp_reply(&mut s.conn, until)
        .await
        .map_err(|e| broken(&e, request, forms))
}

fn smtp_finish(reply: &SmtpReply, request: &LoginRequest, forms: &[&str]) -> Attempt {
    let text = reply.texts.join(" ");
    Attempt {
        outcome: smtp_auth_outcome(reply.code, &text),
        reply: Some(sanitise(
            &format!("{} {text}", reply.code),
            request.secret.expose(),
            forms,
        )),
        alert: None,
    }
}

async fn smtp_login(s: &mut Secured<'_>, m: Mechanism, request: &LoginRequest) -> Attempt {
    let secret = request.secret.expose();
    if m != Mechanism::SaslLogin {
        let plain = sasl_plain(&request.username, secret);
        let forms: [&str; 1] = [plain.as_str()];
        let mut line = Zeroizing::new(b"AUTH PLAIN ".to_vec());
        line.extend_from_slice(plain.as_bytes());
        if let Err(e) = s
            .conn
            .write_secret_line(&line, s.conn.step_deadline())
            .await
        {
            return broken(&StepError::Conn(e), request, &forms);
        }
        return match smtp_read(s, request, &forms).await {
            Ok(reply) => smtp_finish(&reply, request, &forms),
            Err(a) => a,
        };
    }
    let user = base64(request.username.as_bytes());
    let pass = base64(secret);
    let forms: [&str; 1] = [pass.as_str()];
    if let Err(e) = s
        .conn
        .write_line("AUTH LOGIN", s.conn.step_deadline())
        .await
    {
        return broken(&StepError::Conn(e), request, &forms);
    }
    for (i, answer) in [user.as_str(), pass.as_str()].into_iter().enumerate() {
        let reply = match smtp_read(s, request, &forms).await {
            Ok(r) => r,
            Err(a) => return a,
        };
        if reply.code != 334 {
            return smtp_finish(&reply, request, &forms);
        }
        let written = if i == 0 {
            s.conn.write_line(answer, s.conn.step_deadline()).await
        } else {
            s.conn
                .write_secret_line(answer.as_bytes(), s.conn.step_deadline())
                .await
        };
        if let Err(e) = written {
            return broken(&StepError::Conn(e), request, &forms);
        }
    }
    match smtp_read(s, request, &forms).await {
        Ok(reply) => smtp_finish(&reply, request, &forms),
        Err(a) => a,
    }
}

/// Sends one SMTP command and reads its reply, as a sanitised `code text` line.
async fn smtp_step(
    s: &mut Secured<'_>,
    command: &str,
    secret: &[u8],
) -> Result<(u16, String), String> {
    let write = s.conn.write_line(command, s.conn.step_deadline()).await;
    let reply = match write {
        Ok(()) => {
            let until = s.conn.step_deadline();
            smtp_reply(&mut s.conn, until).await
        }
        Err(e) => Err(StepError::Conn(e)),
    };
    match reply {
        Ok(reply) => Ok((
            reply.code,
            sanitise(
                &format!("{} {}", reply.code, reply.texts.join(" ")),
                secret,
                &[],
            ),
        )),
        Err(e) => Err(sanitise(&format!("no usable answer: {e}"), secret, &[])),
    }
}

/// `MAIL FROM:<sender>` and `RCPT TO:<sender>` after a successful SMTP login, then `RSET`: no
/// `DATA`, so no mail is ever sent. The recipient step is there because many servers judge
/// the sender only when a recipient is named.
async fn check_sender(
    s: &mut Secured<'_>,
    sender: &str,
    request: &LoginRequest,
) -> Option<SenderCheck> {
    let secret = request.secret.expose();
    let inconclusive = |reply: String| SenderCheck::Inconclusive {
        sender: sender.to_string(),
        reply,
    };
    let (code, text) = match smtp_step(s, &format!("MAIL FROM:<{sender}>"), secret).await {
        Ok(answer) => answer,
        Err(e) => return Some(inconclusive(e)),
    };
    if !(200..300).contains(&code) {
        return Some(smtp_sender_outcome(code, sender, text));
    }
    let rcpt = format!("RCPT TO:<{sender}>");
    let outcome = match smtp_step(s, &rcpt, secret).await {
        // The reply names the command, so that the evidence says where the refusal came.
        Ok((code, text)) => smtp_recipient_outcome(code, sender, format!("{rcpt}: {text}")),
        Err(e) => return Some(inconclusive(e)),
    };
    // Undo the transaction before QUIT; the answer does not matter.
    let _ = smtp_step(s, "RSET", secret).await;
    Some(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()).as_str(), want);
        }
        assert_eq!(
            sasl_plain("tim", b"tanstaaftanstaaf").as_str(),
            "AHRpbQB0YW5zdGFhZnRhbnN0YWFm"
        );
    }

    #[test]
    fn imap_codes_are_translated() {
        let no = |t| imap_login_outcome(ImapStatus::No, t);
        assert_eq!(
            no("[AUTHENTICATIONFAILED] Authentication failed."),
            LoginOutcome::Rejected
        );
        assert_eq!(
            no("[EXPIRED] That password isn't valid any more"),
            LoginOutcome::PasswordExpired
        );
        assert_eq!(no("[CONTACTADMIN] Account disabled"), LoginOutcome::Locked);
        // Dovecot's wording for a passdb `nologin` without a reason, and with one.
        assert_eq!(
            no("[CONTACTADMIN] Login disabled for this user"),
            LoginOutcome::Locked
        );
        assert_eq!(
            no("[CONTACTADMIN] Application-specific password required: create one at https://id.example.com"),
            LoginOutcome::AppPasswordRequired,
            "regression: every CONTACTADMIN was taken for a locked account"
        );
        assert_eq!(
            no("[SERVERBUG] Account is temporarily unavailable."),
            LoginOutcome::TemporaryFailure,
            "regression: SERVERBUG was taken for a wrong password, and the right one never retried"
        );
        assert_eq!(
            no("[UNAVAILABLE] Temporary authentication failure"),
            LoginOutcome::TemporaryFailure
        );
        assert_eq!(
            no("[PRIVACYREQUIRED] Use TLS"),
            LoginOutcome::EncryptionRequired
        );
        assert_eq!(
            no("[ALERT] Application-specific password required: https://support.google.com/"),
            LoginOutcome::AppPasswordRequired
        );
        assert_eq!(
            no("[ALERT] Please log in via your web browser"),
            LoginOutcome::AppPasswordRequired
        );
        assert_eq!(
            no("[AUTHENTICATIONFAILED] Account locked"),
            LoginOutcome::Locked
        );
        assert_eq!(no("bad password"), LoginOutcome::Rejected);
        assert_eq!(
            imap_login_outcome(ImapStatus::Bad, "Invalid arguments"),
            LoginOutcome::TemporaryFailure
        );
        assert_eq!(
            imap_login_outcome(ImapStatus::Ok, "[CAPABILITY IMAP4rev1] Logged in"),
            LoginOutcome::Accepted
        );
    }

    #[test]
    fn smtp_codes_are_translated() {
        assert_eq!(
            smtp_auth_outcome(235, "2.7.0 Authentication successful"),
            LoginOutcome::Accepted
        );
        assert_eq!(
            smtp_auth_outcome(
                535,
                "5.7.8 Error: authentication failed: authentication failure"
            ),
            LoginOutcome::Rejected
        );
        assert_eq!(
            smtp_auth_outcome(534, "5.7.9 Application-specific password required"),
            LoginOutcome::AppPasswordRequired
        );
        assert_eq!(
            smtp_auth_outcome(534, "5.7.14 Please log in via your web browser"),
            LoginOutcome::AppPasswordRequired
        );
        assert_eq!(
            smtp_auth_outcome(
                535,
                "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled"
            ),
            LoginOutcome::AppPasswordRequired
        );
        assert_eq!(
            smtp_auth_outcome(530, "5.7.0 Must issue a STARTTLS command first"),
            LoginOutcome::EncryptionRequired
        );
        assert_eq!(
            smtp_auth_outcome(454, "4.7.0 Temporary authentication failure"),
            LoginOutcome::TemporaryFailure
        );
        assert_eq!(
            smtp_auth_outcome(535, "5.7.8 Account locked"),
            LoginOutcome::Locked
        );
        assert_eq!(
            smtp_auth_outcome(432, "4.7.12 A password transition is needed"),
            LoginOutcome::PasswordExpired
        );
        assert_eq!(smtp_enhanced_status("5.7.8 x"), Some((5, 7, 8)));
        assert_eq!(smtp_enhanced_status("hello"), None);
        assert_eq!(smtp_enhanced_status("5.7"), None);
    }

    #[test]
    fn pop3_codes_are_translated() {
        assert_eq!(
            pop3_login_outcome(false, "[AUTH] Authentication failed."),
            LoginOutcome::Rejected
        );
        assert_eq!(
            pop3_login_outcome(false, "[IN-USE] Mailbox locked by another session"),
            LoginOutcome::TemporaryFailure
        );
        assert_eq!(
            pop3_login_outcome(false, "[SYS/TEMP] Try later"),
            LoginOutcome::TemporaryFailure
        );
        assert_eq!(
            pop3_login_outcome(false, "[SYS/PERM] Account closed"),
            LoginOutcome::Locked
        );
        assert_eq!(
            pop3_login_outcome(true, "Logged in."),
            LoginOutcome::Accepted
        );
    }

    #[test]
    fn a_sender_refused_only_at_the_recipient_is_rejected_and_a_refused_recipient_is_not() {
        // Postfix with smtpd_delay_reject = yes (its default) and reject_sender_login_mismatch.
        let postfix = "553 5.7.1 <sales@example.com>: Sender address rejected: not owned by user alice@example.com";
        assert!(matches!(
            smtp_recipient_outcome(553, "sales@example.com", postfix.into()),
            SenderCheck::Rejected { .. }
        ));
        assert!(matches!(
            smtp_recipient_outcome(250, "a@b", "250 2.1.5 Ok".into()),
            SenderCheck::Accepted { .. }
        ));
        // The recipient's own problems say nothing about the sender.
        assert!(matches!(
            smtp_recipient_outcome(
                550,
                "a@b",
                "550 5.1.1 <a@b>: Recipient address rejected: User unknown".into()
            ),
            SenderCheck::Inconclusive { .. }
        ));
        // An address that contains the word is not a reason.
        assert!(matches!(
            smtp_recipient_outcome(
                550,
                "sender@b",
                "550 5.1.1 <sender@b>: Recipient address rejected: User unknown".into()
            ),
            SenderCheck::Inconclusive { .. }
        ));
        assert!(matches!(
            smtp_recipient_outcome(554, "a@b", "554 5.7.1 <a@b>: Relay access denied".into()),
            SenderCheck::Inconclusive { .. }
        ));
        assert!(matches!(
            smtp_recipient_outcome(
                450,
                "a@b",
                "450 4.7.1 <a@b>: Sender address rejected: try later".into()
            ),
            SenderCheck::Inconclusive { .. }
        ));
    }

    #[test]
    fn sender_replies_are_translated() {
        assert!(matches!(
            smtp_sender_outcome(250, "a@b", "250 2.1.0 Ok".into()),
            SenderCheck::Accepted { .. }
        ));
        assert!(matches!(
            smtp_sender_outcome(550, "a@b", "550 5.7.1 Sender rejected".into()),
            SenderCheck::Rejected { .. }
        ));
        assert!(matches!(
            smtp_sender_outcome(451, "a@b", "451 4.3.0 later".into()),
            SenderCheck::Inconclusive { .. }
        ));
    }

    #[test]
    fn sanitise_removes_the_password_and_its_encodings() {
        let secret = b"s3cret-canary";
        let plain = sasl_plain("ann", secret);
        let t = sanitise(
            &format!("535 bad s3cret-canary or {} \u{1b}[31m", plain.as_str()),
            secret,
            &[plain.as_str()],
        );
        assert!(!t.contains("s3cret-canary"), "{t}");
        assert!(!t.contains(plain.as_str()), "{t}");
        assert!(t.contains("<redacted>"));
        assert!(!t.contains('\u{1b}'));
        assert!(sanitise(&"x".repeat(500), secret, &[]).chars().count() <= 121);
    }

    #[test]
    fn imap_quoting_escapes_and_refuses_line_breaks() {
        assert_eq!(
            imap_quoted(br#"a"b\c"#).unwrap().as_slice(),
            br#""a\"b\\c""#
        );
        assert!(imap_quoted(b"a\r\nb").is_none());
    }

    #[test]
    fn random_lines_never_panic_the_login_translation() {
        // The same calls as the `server_replies` fuzz target, over reproducible input.
        const ALPHABET: &[u8] =
            b"[]. 0123456789-/ABCDEFGHIJKLMNOPQRSTUVWXYZalertexpired\xc3\xa9\xff";
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let len = (next() % 80) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            let line = String::from_utf8_lossy(&bytes);
            let _ = imap_response_code(&line);
            for status in [ImapStatus::Ok, ImapStatus::No, ImapStatus::Bad] {
                let _ = imap_login_outcome(status, &line);
            }
            let _ = smtp_enhanced_status(&line);
            let _ = smtp_auth_outcome((next() % 600) as u16, &line);
            let _ = pop3_login_outcome(false, &line);
            let s = sanitise(&format!("{line}pw-Canary{line}"), b"pw-Canary", &[]);
            assert!(!s.contains("pw-Canary"));
        }
    }

    #[test]
    fn mechanisms_prefer_plain_and_respect_logindisabled() {
        let mut caps = replies::imap_capabilities("IMAP4rev1 SASL-IR AUTH=PLAIN");
        assert_eq!(
            choose(Protocol::Imap, &caps),
            Some(Mechanism::Plain { initial: true })
        );
        caps = replies::imap_capabilities("IMAP4rev1 LOGINDISABLED");
        assert_eq!(choose(Protocol::Imap, &caps), None);
        caps = replies::imap_capabilities("IMAP4rev1");
        assert_eq!(choose(Protocol::Imap, &caps), Some(Mechanism::ImapLogin));
        caps = replies::smtp_ehlo_capabilities(&["x", "AUTH LOGIN"]);
        assert_eq!(choose(Protocol::Smtp, &caps), Some(Mechanism::SaslLogin));
        caps = replies::smtp_ehlo_capabilities(&["x", "SIZE 100"]);
        assert_eq!(choose(Protocol::Smtp, &caps), None);
        caps = replies::pop3_capabilities(&["USER", "TOP"]);
        assert_eq!(choose(Protocol::Pop3, &caps), Some(Mechanism::UserPass));
    }
}
