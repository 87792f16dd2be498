//! Authentication reasoning: whether a configured method is offered by the server, whether a
//! password would cross the wire readable, and which replacement method is not weaker.
//!
//! Replacements stay inside the configured method's family and never get weaker: a cleartext
//! password may become a challenge-response password, NTLM may become Kerberos. A change of
//! credential kind (password, Kerberos, token, certificate) needs the user, and a step down
//! (challenge-response to cleartext, Kerberos to NTLM) trades security for connectivity, so
//! neither is ever proposed; the user is told instead.

use mailmend_core::{AuthMethod, Capabilities, Protocol};

/// A human name of an authentication method, in the words of the clients' settings dialogs.
pub fn method_name(method: &AuthMethod) -> String {
    match method {
        AuthMethod::None => "no authentication".into(),
        AuthMethod::PasswordCleartext => "normal password".into(),
        AuthMethod::PasswordEncrypted => "encrypted password".into(),
        AuthMethod::Gssapi => "Kerberos (GSSAPI)".into(),
        AuthMethod::Ntlm => "NTLM".into(),
        AuthMethod::TlsCertificate => "TLS certificate".into(),
        AuthMethod::OAuth2 => "OAuth2".into(),
        AuthMethod::Any => "any method".into(),
        AuthMethod::Other(name) => name.clone(),
    }
}

fn has_mech(caps: &Capabilities, wanted: &[&str]) -> bool {
    caps.auth_mechanisms
        .iter()
        .any(|m| wanted.iter().any(|w| m.eq_ignore_ascii_case(w)))
}

fn offers_challenge_response(protocol: Protocol, caps: &Capabilities) -> bool {
    let sasl = has_mech(caps, &["CRAM-MD5", "DIGEST-MD5"])
        || caps
            .auth_mechanisms
            .iter()
            .any(|m| m.to_ascii_uppercase().starts_with("SCRAM-"));
    // POP3 APOP is announced by a `<timestamp@host>` in the greeting (RFC 1939 section 7).
    let apop = protocol == Protocol::Pop3
        && {
            let g = &caps.greeting;
            matches!((g.find('<'), g.find('@'), g.rfind('>')), (Some(a), Some(b), Some(c)) if a < b && b < c)
        };
    sasl || apop
}

fn offers_cleartext(protocol: Protocol, caps: &Capabilities) -> bool {
    let sasl = has_mech(caps, &["PLAIN", "LOGIN"]);
    match protocol {
        Protocol::Imap => sasl || !caps.login_disabled,
        // An empty CAPA means the server does not support CAPA, and USER/PASS is then the norm.
        Protocol::Pop3 => sasl || caps.words.is_empty() || caps.words.iter().any(|w| w == "USER"),
        Protocol::Smtp | Protocol::Exchange => sasl,
    }
}

/// Whether `method` is offered on a connection with these capabilities; `None` when the method
/// is not one a capability list can confirm (no authentication, "any", unknown methods).
pub fn offered(method: &AuthMethod, protocol: Protocol, caps: &Capabilities) -> Option<bool> {
    Some(match method {
        AuthMethod::PasswordCleartext => offers_cleartext(protocol, caps),
        AuthMethod::PasswordEncrypted => offers_challenge_response(protocol, caps),
        AuthMethod::Gssapi => has_mech(caps, &["GSSAPI"]),
        AuthMethod::Ntlm => has_mech(caps, &["NTLM"]),
        AuthMethod::TlsCertificate => has_mech(caps, &["EXTERNAL"]),
        AuthMethod::OAuth2 => has_mech(caps, &["XOAUTH2", "OAUTHBEARER"]),
        AuthMethod::None | AuthMethod::Any | AuthMethod::Other(_) => return None,
    })
}

/// Whether logging in with `method` would put the password on the wire as is, given what the
/// server offers: always for a cleartext password, and for "any" when the server offers nothing
/// better than cleartext.
pub fn sends_password_in_clear(
    method: &AuthMethod,
    protocol: Protocol,
    caps: &Capabilities,
) -> bool {
    match method {
        AuthMethod::PasswordCleartext => true,
        AuthMethod::Any => {
            let better = offers_challenge_response(protocol, caps)
                || has_mech(
                    caps,
                    &["GSSAPI", "NTLM", "EXTERNAL", "XOAUTH2", "OAUTHBEARER"],
                );
            !better && offers_cleartext(protocol, caps)
        }
        _ => false,
    }
}

/// A method of the same family, not weaker than `method`, that the server offers.
pub fn replacement(
    method: &AuthMethod,
    protocol: Protocol,
    caps: &Capabilities,
) -> Option<AuthMethod> {
    let stronger_in_family: &[AuthMethod] = match method {
        AuthMethod::PasswordCleartext => &[AuthMethod::PasswordEncrypted],
        AuthMethod::Ntlm => &[AuthMethod::Gssapi],
        _ => &[],
    };
    stronger_in_family
        .iter()
        .find(|m| offered(m, protocol, caps) == Some(true))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(mechs: &[&str]) -> Capabilities {
        Capabilities {
            greeting: "* OK ready".into(),
            words: vec!["IMAP4REV1".into()],
            auth_mechanisms: mechs.iter().map(|m| m.to_string()).collect(),
            starttls: false,
            login_disabled: false,
        }
    }

    #[test]
    fn imap_login_is_offered_unless_login_disabled() {
        let mut c = caps(&[]);
        assert_eq!(
            offered(&AuthMethod::PasswordCleartext, Protocol::Imap, &c),
            Some(true)
        );
        c.login_disabled = true;
        assert_eq!(
            offered(&AuthMethod::PasswordCleartext, Protocol::Imap, &c),
            Some(false)
        );
        c.auth_mechanisms.push("PLAIN".into());
        assert_eq!(
            offered(&AuthMethod::PasswordCleartext, Protocol::Imap, &c),
            Some(true)
        );
    }

    #[test]
    fn kerberos_needs_gssapi() {
        assert_eq!(
            offered(&AuthMethod::Gssapi, Protocol::Imap, &caps(&["PLAIN"])),
            Some(false)
        );
        assert_eq!(
            offered(&AuthMethod::Gssapi, Protocol::Imap, &caps(&["GSSAPI"])),
            Some(true)
        );
    }

    #[test]
    fn pop3_apop_counts_as_encrypted_password() {
        let mut c = caps(&[]);
        c.greeting = "+OK POP3 ready <1896.697170952@dbc.mtview.ca.us>".into();
        assert_eq!(
            offered(&AuthMethod::PasswordEncrypted, Protocol::Pop3, &c),
            Some(true)
        );
        c.greeting = "+OK POP3 ready".into();
        assert_eq!(
            offered(&AuthMethod::PasswordEncrypted, Protocol::Pop3, &c),
            Some(false)
        );
    }

    #[test]
    fn replacements_never_get_weaker() {
        let everything = caps(&["PLAIN", "LOGIN", "CRAM-MD5", "NTLM", "GSSAPI"]);
        assert_eq!(
            replacement(&AuthMethod::PasswordEncrypted, Protocol::Imap, &everything),
            None
        );
        assert_eq!(
            replacement(&AuthMethod::Gssapi, Protocol::Imap, &everything),
            None
        );
        assert_eq!(
            replacement(&AuthMethod::PasswordCleartext, Protocol::Imap, &everything),
            Some(AuthMethod::PasswordEncrypted)
        );
        assert_eq!(
            replacement(&AuthMethod::Ntlm, Protocol::Imap, &everything),
            Some(AuthMethod::Gssapi)
        );
    }

    #[test]
    fn any_method_leaks_only_when_nothing_better_is_offered() {
        assert!(sends_password_in_clear(
            &AuthMethod::Any,
            Protocol::Smtp,
            &caps(&["PLAIN"])
        ));
        assert!(!sends_password_in_clear(
            &AuthMethod::Any,
            Protocol::Smtp,
            &caps(&["PLAIN", "CRAM-MD5"])
        ));
        assert!(!sends_password_in_clear(
            &AuthMethod::Gssapi,
            Protocol::Smtp,
            &caps(&["PLAIN"])
        ));
    }
}
