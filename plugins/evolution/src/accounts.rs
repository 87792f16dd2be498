//! How Evolution's sources map onto mailmend's model: the groups and keys of a server, its
//! security and authentication values, and the links between an account, its identity and
//! its transport.
//!
//! An account spans up to three `.source` files, each named `<uid>.source`:
//! `[Mail Account]` (the incoming server, `BackendName` `imapx` or `pop`) names its identity
//! with `IdentityUid`; the identity's `[Mail Identity] Address` is the email address, and its
//! `[Mail Submission] TransportUid` names the transport, whose `[Mail Transport]` has
//! `BackendName=smtp`. The servers' settings are in each file's `[Authentication]` (`Host`,
//! `Port`, `User`, `Method`) and `[Security]` (`Method`).

use crate::keyfile::{KeyFile, SyntaxError};
use mailmend_core::{AuthMethod, Endpoint, Protocol, Security};

pub const DATA_SOURCE: &str = "Data Source";
pub const MAIL_ACCOUNT: &str = "Mail Account";
pub const MAIL_IDENTITY: &str = "Mail Identity";
pub const MAIL_SUBMISSION: &str = "Mail Submission";
pub const MAIL_TRANSPORT: &str = "Mail Transport";
pub const AUTHENTICATION: &str = "Authentication";
pub const SECURITY: &str = "Security";

/// The protocol of a mail backend Evolution names in `BackendName`; `None` for backends
/// without a network server mailmend checks (local folders, `sendmail`, Exchange, …).
pub fn protocol_of(backend: &str) -> Option<Protocol> {
    match backend {
        // "imap" is the provider Evolution used before IMAP+ (imapx).
        "imapx" | "imap" => Some(Protocol::Imap),
        "pop" => Some(Protocol::Pop3),
        "smtp" => Some(Protocol::Smtp),
        _ => None,
    }
}

pub fn security_value(security: Security) -> &'static str {
    match security {
        Security::None => "none",
        Security::StartTls => "starttls-on-standard-port",
        Security::Tls => "ssl-on-alternate-port",
    }
}

fn security_of(value: &str) -> Option<Security> {
    match value.trim() {
        "none" => Some(Security::None),
        "starttls-on-standard-port" => Some(Security::StartTls),
        "ssl-on-alternate-port" => Some(Security::Tls),
        _ => None,
    }
}

/// Maps `[Authentication] Method`. An empty method (or `none`) is Camel's default: the plain
/// password login (IMAP `LOGIN`, POP3 `USER`/`PASS`) for incoming servers, and no
/// authentication at all for SMTP.
pub fn auth_of(method: &str, protocol: Protocol) -> AuthMethod {
    let m = method.trim();
    match m.to_ascii_uppercase().as_str() {
        "" | "NONE" if protocol == Protocol::Smtp => AuthMethod::None,
        "" | "NONE" | "PLAIN" | "LOGIN" => AuthMethod::PasswordCleartext,
        "+APOP" | "CRAM-MD5" | "DIGEST-MD5" | "SCRAM-SHA-1" | "SCRAM-SHA-256" => {
            AuthMethod::PasswordEncrypted
        }
        "GSSAPI" => AuthMethod::Gssapi,
        "NTLM" => AuthMethod::Ntlm,
        // Evolution's own OAuth2 mechanisms are named after the provider.
        "XOAUTH2" | "OAUTHBEARER" | "GOOGLE" | "OUTLOOK" | "YAHOO" => AuthMethod::OAuth2,
        _ => AuthMethod::Other(m.to_string()),
    }
}

/// The `[Authentication] Method` that selects `method`, or `None` when Evolution has none for
/// it (no authentication on an incoming server, "any", a client certificate).
pub fn auth_value(method: &AuthMethod, protocol: Protocol) -> Option<String> {
    Some(match (method, protocol) {
        (AuthMethod::None, Protocol::Smtp) => String::new(),
        (AuthMethod::None, _) => return None,
        (AuthMethod::PasswordCleartext, Protocol::Pop3) => String::new(),
        (AuthMethod::PasswordCleartext, _) => "PLAIN".into(),
        (AuthMethod::PasswordEncrypted, Protocol::Pop3) => "+APOP".into(),
        (AuthMethod::PasswordEncrypted, _) => "CRAM-MD5".into(),
        (AuthMethod::Gssapi, _) => "GSSAPI".into(),
        (AuthMethod::Ntlm, _) => "NTLM".into(),
        (AuthMethod::OAuth2, _) => "XOAUTH2".into(),
        (AuthMethod::Other(m), _) => {
            let ok = !m.is_empty()
                && m.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+'));
            if !ok {
                return None;
            }
            m.clone()
        }
        (AuthMethod::TlsCertificate | AuthMethod::Any, _) => return None,
    })
}

/// A server's settings as one source file holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    pub protocol: Protocol,
    pub host: String,
    /// `Port`, when set and not 0.
    pub explicit_port: Option<u16>,
    pub security: Security,
    /// `[Authentication] Method` as written.
    pub method: String,
    pub user: Option<String>,
}

impl ServerSettings {
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            protocol: self.protocol,
            host: self.host.clone(),
            port: self
                .explicit_port
                .unwrap_or_else(|| self.protocol.default_port(self.security)),
            security: self.security,
            auth: auth_of(&self.method, self.protocol),
            username: self.user.clone(),
        }
    }
}

/// The server settings of a source file; `Ok(None)` when it names no host.
pub fn read_server(
    file: &KeyFile,
    protocol: Protocol,
) -> Result<Option<ServerSettings>, SyntaxError> {
    let host = file.get(AUTHENTICATION, "Host")?.unwrap_or_default();
    let host = host.trim();
    if host.is_empty() {
        return Ok(None);
    }
    let explicit_port = match file.get(AUTHENTICATION, "Port")? {
        None => None,
        Some(p) => {
            let p = p.trim_end();
            match p.parse::<u32>() {
                Ok(0) => None,
                Ok(n) if n <= 65535 => Some(n as u16),
                _ => {
                    return Err(file.value_error(
                        AUTHENTICATION,
                        "Port",
                        "Port is not a port number",
                    ))
                }
            }
        }
    };
    let security = match file.get(SECURITY, "Method")? {
        None => Security::None,
        Some(m) => security_of(&m)
            .ok_or_else(|| file.value_error(SECURITY, "Method", "unknown security method"))?,
    };
    let method = file.get(AUTHENTICATION, "Method")?.unwrap_or_default();
    let user = file
        .get(AUTHENTICATION, "User")?
        .filter(|u| !u.trim().is_empty());
    Ok(Some(ServerSettings {
        protocol,
        host: host.to_string(),
        explicit_port,
        security,
        method,
        user,
    }))
}

/// Whether `[Data Source] Enabled` leaves the source on (GLib booleans; on when absent).
pub fn enabled(file: &KeyFile) -> Result<bool, SyntaxError> {
    match file.get(DATA_SOURCE, "Enabled")? {
        None => Ok(true),
        Some(v) => match v.trim_end() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(file.value_error(DATA_SOURCE, "Enabled", "Enabled is not a boolean")),
        },
    }
}

/// Whether a uid read from a file can name a source file: no path separators or `..`, so
/// that a link never leads out of the sources directory.
pub fn valid_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid != "."
        && uid != ".."
        && !uid.contains(['/', '\\', '\0'])
        && !uid.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_method_means_password_login_incoming_and_none_outgoing() {
        assert_eq!(auth_of("", Protocol::Imap), AuthMethod::PasswordCleartext);
        assert_eq!(auth_of("", Protocol::Pop3), AuthMethod::PasswordCleartext);
        assert_eq!(auth_of("", Protocol::Smtp), AuthMethod::None);
        assert_eq!(auth_of("none", Protocol::Smtp), AuthMethod::None);
        assert_eq!(auth_of("Google", Protocol::Imap), AuthMethod::OAuth2);
        assert_eq!(
            auth_of("+APOP", Protocol::Pop3),
            AuthMethod::PasswordEncrypted
        );
        assert_eq!(
            auth_of("X-MAGIC", Protocol::Imap),
            AuthMethod::Other("X-MAGIC".into())
        );
    }

    #[test]
    fn every_written_method_reads_back_as_requested() {
        for protocol in [Protocol::Imap, Protocol::Pop3, Protocol::Smtp] {
            for m in [
                AuthMethod::None,
                AuthMethod::PasswordCleartext,
                AuthMethod::PasswordEncrypted,
                AuthMethod::Gssapi,
                AuthMethod::Ntlm,
                AuthMethod::OAuth2,
                AuthMethod::TlsCertificate,
                AuthMethod::Any,
            ] {
                if let Some(v) = auth_value(&m, protocol) {
                    assert_eq!(auth_of(&v, protocol), m, "{protocol:?} {m:?}");
                }
            }
        }
    }

    #[test]
    fn uids_cannot_leave_the_sources_directory() {
        assert!(valid_uid("1493050983.9471.2@laptop"));
        assert!(valid_uid("b3a6e5f1c2d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8"));
        assert!(!valid_uid("../../etc/passwd"));
        assert!(!valid_uid(".."));
        assert!(!valid_uid(""));
    }
}
