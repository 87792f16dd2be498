//! How an mbsync server section maps onto mailmend's model: its IMAP endpoint, its
//! authentication method and, when the login is one, its email address.

use crate::config::{Section, Server, TlsMode};
use mailmend_core::{AuthMethod, Endpoint, Protocol, Security};

pub fn security_of(mode: TlsMode) -> Security {
    match mode {
        TlsMode::None => Security::None,
        TlsMode::StartTls => Security::StartTls,
        TlsMode::Imaps => Security::Tls,
    }
}

pub fn mode_of(security: Security) -> TlsMode {
    match security {
        Security::None => TlsMode::None,
        Security::StartTls => TlsMode::StartTls,
        Security::Tls => TlsMode::Imaps,
    }
}

/// The class of one SASL mechanism (or IMAP `LOGIN`).
fn mechanism(m: &str) -> AuthMethod {
    match m {
        "LOGIN" | "PLAIN" => AuthMethod::PasswordCleartext,
        "CRAM-MD5" | "DIGEST-MD5" | "SCRAM-SHA-1" | "SCRAM-SHA-256" | "SCRAM-SHA-1-PLUS"
        | "SCRAM-SHA-256-PLUS" => AuthMethod::PasswordEncrypted,
        "GSSAPI" => AuthMethod::Gssapi,
        "NTLM" => AuthMethod::Ntlm,
        "EXTERNAL" => AuthMethod::TlsCertificate,
        "XOAUTH2" | "OAUTHBEARER" => AuthMethod::OAuth2,
        other => AuthMethod::Other(other.to_string()),
    }
}

/// What `AuthMechs` allows: `*` (the default) lets mbsync pick; a list of one class is that
/// class; a list mixing classes is kept verbatim.
pub fn auth_of(server: &Server) -> AuthMethod {
    if server.auth_mechs.is_empty() {
        return match &server.require_cram {
            Some(s) if s.value => AuthMethod::PasswordEncrypted,
            _ => AuthMethod::Any,
        };
    }
    auth_of_mechs(&server.auth_mechs)
}

/// The method a non-empty list of upper-case mechanisms allows (see [`auth_of`]).
pub fn auth_of_mechs(mechs: &[String]) -> AuthMethod {
    if mechs.is_empty() || mechs.iter().any(|m| m == "*") {
        return AuthMethod::Any;
    }
    let first = mechanism(&mechs[0]);
    if mechs.iter().all(|m| mechanism(m) == first) {
        first
    } else {
        AuthMethod::Other(mechs.join(" "))
    }
}

/// The `AuthMechs` arguments that select `method`, or `None` when mbsync cannot express it
/// (no authentication at all).
pub fn auth_value(method: &AuthMethod) -> Option<String> {
    Some(match method {
        AuthMethod::None => return None,
        AuthMethod::Any => "*".into(),
        // IMAP LOGIN as well, for servers that offer no SASL PLAIN.
        AuthMethod::PasswordCleartext => "PLAIN LOGIN".into(),
        AuthMethod::PasswordEncrypted => "CRAM-MD5".into(),
        AuthMethod::Gssapi => "GSSAPI".into(),
        AuthMethod::Ntlm => "NTLM".into(),
        AuthMethod::TlsCertificate => "EXTERNAL".into(),
        AuthMethod::OAuth2 => "XOAUTH2".into(),
        AuthMethod::Other(m) => {
            let m = m.to_ascii_uppercase();
            let ok = !m.is_empty()
                && m.split(' ').all(|t| {
                    !t.is_empty()
                        && t.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '*')
                });
            if !ok {
                return None;
            }
            m
        }
    })
}

/// Why a section has no network endpoint mailmend can check, if it has none.
pub fn not_checkable(section: &Section) -> Option<&'static str> {
    if !section.is_server() {
        Some("no server of its own")
    } else if section.server.tunnel {
        Some("a tunnel command instead of host and port")
    } else if section
        .server
        .host
        .as_ref()
        .is_none_or(|h| h.value.is_empty())
    {
        Some("no host")
    } else {
        None
    }
}

/// The IMAP endpoint mbsync connects to for this section.
pub fn endpoint(section: &Section) -> Option<Endpoint> {
    if not_checkable(section).is_some() {
        return None;
    }
    let server = &section.server;
    let mode = server.security().ok()?;
    Some(Endpoint {
        protocol: Protocol::Imap,
        host: server.host.as_ref()?.value.clone(),
        port: server
            .explicit_port()
            .unwrap_or_else(|| Server::default_port(mode)),
        security: security_of(mode),
        auth: auth_of(server),
        username: server.user.as_ref().map(|u| u.value.clone()),
    })
}

/// mbsync knows no email address; a login that looks like one is taken as it.
pub fn email(section: &Section) -> Option<String> {
    let user = &section.server.user.as_ref()?.value;
    let (local, domain) = user.rsplit_once('@')?;
    (!local.is_empty() && !domain.is_empty() && !user.contains(char::is_whitespace))
        .then(|| user.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MbsyncFile;

    fn server(text: &str) -> Section {
        let f = MbsyncFile::parse(format!("IMAPAccount a\nHost h\n{text}").as_bytes()).unwrap();
        f.sections()[0].clone()
    }

    #[test]
    fn auth_mechs_map_to_one_method_or_stay_verbatim() {
        assert_eq!(auth_of(&server("").server), AuthMethod::Any);
        assert_eq!(auth_of(&server("AuthMechs *\n").server), AuthMethod::Any);
        assert_eq!(
            auth_of(&server("AuthMechs login plain\n").server),
            AuthMethod::PasswordCleartext
        );
        assert_eq!(
            auth_of(&server("AuthMech XOAUTH2\n").server),
            AuthMethod::OAuth2
        );
        assert_eq!(
            auth_of(&server("AuthMechs XOAUTH2 PLAIN\n").server),
            AuthMethod::Other("XOAUTH2 PLAIN".into())
        );
        assert_eq!(
            auth_of(&server("RequireCRAM yes\n").server),
            AuthMethod::PasswordEncrypted
        );
        for m in [
            AuthMethod::Any,
            AuthMethod::PasswordCleartext,
            AuthMethod::PasswordEncrypted,
            AuthMethod::Gssapi,
            AuthMethod::Ntlm,
            AuthMethod::TlsCertificate,
            AuthMethod::OAuth2,
        ] {
            let text = format!("AuthMechs {}\n", auth_value(&m).unwrap());
            assert_eq!(auth_of(&server(&text).server), m);
        }
        assert_eq!(auth_value(&AuthMethod::None), None);
        assert_eq!(auth_value(&AuthMethod::Other("a\"b".into())), None);
    }

    #[test]
    fn only_a_login_that_looks_like_an_address_is_an_email() {
        assert_eq!(
            email(&server("User ann@example.com\n")).as_deref(),
            Some("ann@example.com")
        );
        assert_eq!(email(&server("User ann\n")), None);
        assert_eq!(email(&server("")), None);
    }
}
