//! Authentication reasoning: whether a configured method is offered by the server, whether a
//! password would cross the wire readable, and which replacement method is not weaker.
//!
//! Replacements stay inside the configured method's family and never get weaker: a cleartext
//! password may become a challenge-response password, NTLM may become Kerberos. A change of
//! credential kind (password, Kerberos, token, certificate) needs the user, and a step down
//! (challenge-response to cleartext, Kerberos to NTLM) trades security for connectivity, so
//! neither is ever proposed; the user is told instead.

use mailmend_core::{AuthMethod, Capabilities, ProbeReport, Protocol, TlsOutcome};

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

/// Whether the server asks for encryption on a connection that is already encrypted, so that
/// an account logging in with a password (`method` cleartext or "any") cannot log in at all:
/// IMAP capabilities read after a verified TLS handshake (implicit TLS, or after STARTTLS) say
/// `LOGINDISABLED` and offer no password mechanism (`AUTH=PLAIN`, `LOGIN`, nor a
/// challenge-response one the client could switch to). The usual cause is a TLS terminator in front of
/// the server that the server does not trust (Dovecot's `login_trusted_networks`), so that it
/// sees plaintext from a foreign address: the server's fault, not the account's method.
pub fn asks_for_encryption_over_tls(method: &AuthMethod, report: &ProbeReport) -> bool {
    let verified = report.target.security.is_encrypted()
        && matches!(report.tls, Some(TlsOutcome::Established { .. }));
    let Some(caps) = &report.capabilities else {
        return false;
    };
    if !verified || report.target.protocol != Protocol::Imap || !caps.login_disabled {
        return false;
    }
    // A challenge-response mechanism still takes the password: then the account has a way in
    // (a cleartext account is offered the switch to it as `auth.method_not_offered`).
    let password_mechanism =
        has_mech(caps, &["PLAIN", "LOGIN"]) || offers_challenge_response(Protocol::Imap, caps);
    matches!(method, AuthMethod::PasswordCleartext | AuthMethod::Any) && !password_mechanism
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
    use mailmend_core::Security;

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

    fn over(security: Security, tls: bool, caps: Capabilities) -> ProbeReport {
        use mailmend_core::{DnsOutcome, ProbeTarget, TcpOutcome};
        let address: std::net::SocketAddr = "10.0.0.1:993".parse().unwrap();
        ProbeReport {
            target: ProbeTarget {
                protocol: Protocol::Imap,
                host: "imap.example.com".into(),
                port: 993,
                security,
            },
            dns: DnsOutcome::Resolved {
                addresses: vec![address.ip()],
            },
            tcp: TcpOutcome::Connected { address },
            tls: tls.then(|| TlsOutcome::Established {
                version: "TLSv1.3".into(),
                not_after: None,
            }),
            capabilities: Some(caps),
            protocol_error: None,
            elapsed_ms: 1,
        }
    }

    fn login_disabled(mechs: &[&str]) -> Capabilities {
        Capabilities {
            login_disabled: true,
            ..caps(mechs)
        }
    }

    #[test]
    fn logindisabled_after_verified_tls_asks_for_encryption() {
        let behind_proxy = over(Security::Tls, true, login_disabled(&[]));
        for method in [AuthMethod::PasswordCleartext, AuthMethod::Any] {
            assert!(asks_for_encryption_over_tls(&method, &behind_proxy));
        }
        let after_starttls = over(Security::StartTls, true, login_disabled(&[]));
        assert!(asks_for_encryption_over_tls(
            &AuthMethod::Any,
            &after_starttls
        ));
    }

    #[test]
    fn logindisabled_is_no_fault_without_verified_tls() {
        // Before STARTTLS, LOGINDISABLED is what every careful server says.
        let plain = over(Security::None, false, login_disabled(&[]));
        assert!(!asks_for_encryption_over_tls(
            &AuthMethod::PasswordCleartext,
            &plain
        ));
        let no_handshake = over(Security::Tls, false, login_disabled(&[]));
        assert!(!asks_for_encryption_over_tls(
            &AuthMethod::PasswordCleartext,
            &no_handshake
        ));
    }

    #[test]
    fn a_password_mechanism_or_another_method_is_no_encryption_demand() {
        let plain = over(Security::Tls, true, login_disabled(&["PLAIN"]));
        assert!(!asks_for_encryption_over_tls(
            &AuthMethod::PasswordCleartext,
            &plain
        ));
        // A challenge-response mechanism still takes the password: "any" logs in with it, and
        // a cleartext account can be switched to it.
        let cram = over(Security::Tls, true, login_disabled(&["CRAM-MD5"]));
        assert!(!asks_for_encryption_over_tls(&AuthMethod::Any, &cram));
        assert!(!asks_for_encryption_over_tls(
            &AuthMethod::PasswordCleartext,
            &cram
        ));
        // OAuth2 is no password: a cleartext account behind the proxy still cannot log in.
        let oauth = over(Security::Tls, true, login_disabled(&["XOAUTH2"]));
        assert!(asks_for_encryption_over_tls(
            &AuthMethod::PasswordCleartext,
            &oauth
        ));
        // Kerberos without GSSAPI is a method question, not an encryption one.
        let none = over(Security::Tls, true, login_disabled(&[]));
        assert!(!asks_for_encryption_over_tls(&AuthMethod::Gssapi, &none));
        // Without LOGINDISABLED, IMAP LOGIN is offered.
        let open = over(Security::Tls, true, caps(&[]));
        assert!(!asks_for_encryption_over_tls(
            &AuthMethod::PasswordCleartext,
            &open
        ));
    }

    #[test]
    fn only_imap_says_logindisabled() {
        let mut pop = over(Security::Tls, true, login_disabled(&[]));
        pop.target.protocol = Protocol::Pop3;
        assert!(!asks_for_encryption_over_tls(&AuthMethod::Any, &pop));
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
