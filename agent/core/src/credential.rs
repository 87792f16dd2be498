//! Credentials and login results: a password that never shows itself, and what a server said to
//! one lockout-safe login attempt.
//!
//! [`Secret`] has no `Display`, no `Serialize` and a `Debug` that prints `Secret(<redacted>)`;
//! its bytes are zeroed when it is dropped. Everything else here is a plain value for the audit
//! log: a [`LoginReport`] holds what the server answered (sanitised by the prober), never what
//! was sent.

use crate::model::Endpoint;
use crate::probe::ProbeTarget;
use serde::{Deserialize, Serialize};
use std::fmt;
use zeroize::Zeroizing;

/// A password as the mail client stores it. Not `Clone`, so that copies stay few; zeroed on drop.
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Takes ownership of the bytes; they are zeroed when the secret is dropped.
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(Zeroizing::new(bytes))
    }

    /// The bytes, for the one place that must send them (the login probe) or fingerprint them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret::new(s.into_bytes())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// What one login needs: the login name, the password and, for SMTP, the sender address whose
/// acceptance is checked after the login (no mail is sent).
#[derive(Debug)]
pub struct LoginRequest {
    pub username: String,
    pub secret: Secret,
    /// The `MAIL FROM` address checked after a successful SMTP login, when set.
    pub sender: Option<String>,
}

/// What the server said to one login attempt, translated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case", deny_unknown_fields)]
pub enum LoginOutcome {
    /// The server accepted the login.
    Accepted,
    /// Wrong user name or password (IMAP `[AUTHENTICATIONFAILED]`, SMTP 535 5.7.8, POP3
    /// `-ERR [AUTH]`).
    Rejected,
    /// The account is locked or disabled; only an administrator can help (IMAP
    /// `[CONTACTADMIN]`, POP3 `[SYS/PERM]`, a reply that says "locked" or "disabled").
    Locked,
    /// The password has expired and must be changed (IMAP `[EXPIRED]`).
    PasswordExpired,
    /// The server wants a web sign-in, an app password or MFA instead of this password (SMTP
    /// 534 5.7.9 / 5.7.14, Microsoft 535 5.7.139, an `[ALERT]` asking for an app password).
    AppPasswordRequired,
    /// The server refuses to authenticate on this connection without (more) encryption (SMTP
    /// 530 5.7.0 or 538, IMAP `[PRIVACYREQUIRED]`).
    EncryptionRequired,
    /// The server could not check the password now (IMAP `[UNAVAILABLE]`, SMTP 454 4.7.0, POP3
    /// `[SYS/TEMP]` or `[IN-USE]`), or the exchange broke after the password was sent.
    TemporaryFailure,
    /// No password was sent.
    NotAttempted { reason: NotAttempted },
}

impl LoginOutcome {
    /// Whether trying the same credential again could count towards a lockout: the server
    /// refused the credential itself, or the account cannot log in at all.
    pub fn blocks_retry(&self) -> bool {
        matches!(
            self,
            LoginOutcome::Rejected
                | LoginOutcome::Locked
                | LoginOutcome::PasswordExpired
                | LoginOutcome::AppPasswordRequired
        )
    }

    /// Whether the credential was sent to the server.
    pub fn attempted(&self) -> bool {
        !matches!(self, LoginOutcome::NotAttempted { .. })
    }

    /// A short stable name: `accepted`, `rejected`, …, `not_attempted`.
    pub fn as_str(&self) -> &'static str {
        match self {
            LoginOutcome::Accepted => "accepted",
            LoginOutcome::Rejected => "rejected",
            LoginOutcome::Locked => "locked",
            LoginOutcome::PasswordExpired => "password_expired",
            LoginOutcome::AppPasswordRequired => "app_password_required",
            LoginOutcome::EncryptionRequired => "encryption_required",
            LoginOutcome::TemporaryFailure => "temporary_failure",
            LoginOutcome::NotAttempted { .. } => "not_attempted",
        }
    }
}

/// Why no password was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case", deny_unknown_fields)]
pub enum NotAttempted {
    /// The policy configures no credential source (`[credentials] source = "none"`).
    Disabled,
    /// This prober cannot log in (a test fake, or a prober without credential access).
    Unsupported,
    /// The mail client stores no password mailmend may use: it asks the user, runs a command
    /// (`passwordeval`, `PassCmd`, backticks), or uses a keyring.
    NoCredential,
    /// The endpoint names no login name.
    NoUsername,
    /// The account does not log in with a password (Kerberos, OAuth2, a certificate, none).
    NotPassword,
    /// The endpoint does not work as configured; the connectivity diagnostics explain why.
    EndpointUnhealthy,
    /// The connection would not be encrypted and verified; a password is never sent otherwise.
    NotEncrypted,
    /// The server offers no mechanism this prober sends a password with (PLAIN, LOGIN,
    /// USER/PASS).
    NoMechanism { offered: Vec<String> },
    /// The same credential was tried within the policy's interval.
    RateLimited {
        last_attempt: String,
        next_allowed: String,
    },
    /// The credential state could not be read or written, so an attempt could not be recorded.
    LedgerUnavailable { detail: String },
    /// Another mailmend process is checking credentials right now.
    Busy,
    /// The session failed before the credential was sent (connect, TLS, greeting).
    ConnectionFailed { detail: String },
}

/// How a server answered `MAIL FROM` (and `RCPT TO`) with the account's address after a
/// successful SMTP login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case", deny_unknown_fields)]
pub enum SenderCheck {
    Accepted {
        sender: String,
    },
    /// Refused, typically 550 5.7.1 / 553 5.7.1: this login may not send as this address. The
    /// reply is the answer to `MAIL FROM`, or, when the server refused only once a recipient was
    /// named, `RCPT TO:<sender>: ` and the answer to that.
    Rejected {
        sender: String,
        reply: String,
    },
    /// The check could not be made (a temporary reply, a broken exchange).
    Inconclusive {
        sender: String,
        reply: String,
    },
}

/// The result of one login check of one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginReport {
    pub target: ProbeTarget,
    pub outcome: LoginOutcome,
    /// The mechanism used: `PLAIN`, `LOGIN` (SASL or IMAP LOGIN) or `USER`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mechanism: Option<String>,
    /// The server's final reply to the login, sanitised and truncated; never the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_reply: Option<String>,
    /// The text of an IMAP `[ALERT]`, which servers use for what the user must be told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<SenderCheck>,
    /// When the outcome comes from an earlier attempt (RFC 3339): it is remembered, not retried,
    /// because trying the same credential again could lock the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remembered_from: Option<String>,
    pub elapsed_ms: u64,
}

impl LoginReport {
    pub fn not_attempted(target: ProbeTarget, reason: NotAttempted) -> LoginReport {
        LoginReport {
            target,
            outcome: LoginOutcome::NotAttempted { reason },
            mechanism: None,
            server_reply: None,
            alert: None,
            sender: None,
            remembered_from: None,
            elapsed_ms: 0,
        }
    }
}

/// The probe target of an endpoint as configured.
pub fn target_of(endpoint: &Endpoint) -> ProbeTarget {
    ProbeTarget {
        protocol: endpoint.protocol,
        host: endpoint.host.clone(),
        port: endpoint.port,
        security: endpoint.security,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Protocol, Security};

    #[test]
    fn secret_debug_never_shows_the_value() {
        let s = Secret::from("hunter2-canary".to_string());
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        let r = LoginRequest {
            username: "ann".into(),
            secret: s,
            sender: None,
        };
        assert!(!format!("{r:?}").contains("hunter2"));
        assert!(!format!("{r:#?}").contains("hunter2"));
        assert_eq!(r.secret.expose(), b"hunter2-canary");
    }

    #[test]
    fn outcomes_serialise_with_a_tag_and_round_trip() {
        let target = ProbeTarget {
            protocol: Protocol::Smtp,
            host: "smtp.example.com".into(),
            port: 587,
            security: Security::StartTls,
        };
        let r = LoginReport::not_attempted(
            target,
            NotAttempted::RateLimited {
                last_attempt: "2024-01-01T00:00:00Z".into(),
                next_allowed: "2024-01-02T00:00:00Z".into(),
            },
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["outcome"]["outcome"], "not_attempted");
        assert_eq!(v["outcome"]["reason"]["reason"], "rate_limited");
        let back: LoginReport = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
        let v = serde_json::to_value(LoginOutcome::PasswordExpired).unwrap();
        assert_eq!(v["outcome"], "password_expired");
    }

    #[test]
    fn only_replies_about_the_credential_block_a_retry() {
        assert!(LoginOutcome::Rejected.blocks_retry());
        assert!(LoginOutcome::Locked.blocks_retry());
        assert!(LoginOutcome::PasswordExpired.blocks_retry());
        assert!(LoginOutcome::AppPasswordRequired.blocks_retry());
        assert!(!LoginOutcome::Accepted.blocks_retry());
        assert!(!LoginOutcome::TemporaryFailure.blocks_retry());
        assert!(!LoginOutcome::EncryptionRequired.blocks_retry());
        assert!(!LoginOutcome::NotAttempted {
            reason: NotAttempted::Busy
        }
        .attempted());
    }
}
