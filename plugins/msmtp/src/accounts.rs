//! How an msmtp account's settings map onto mailmend's model: its SMTP endpoint, its
//! authentication method and its email address.

use crate::config::AccountEntry;
use mailmend_core::{AuthMethod, Endpoint, Protocol, Security};

/// The transport security msmtp uses: `tls off` is plaintext, `tls on` with `tls_starttls on`
/// (the default) is STARTTLS, and `tls_starttls off` is TLS from the first byte.
pub fn security_of(entry: &AccountEntry) -> Security {
    match (entry.tls(), entry.starttls()) {
        (false, _) => Security::None,
        (true, true) => Security::StartTls,
        (true, false) => Security::Tls,
    }
}

/// Maps msmtp's `auth` value: `None` is `auth off` (or never set, msmtp's default), `""` is
/// `auth on` (msmtp chooses a method).
pub fn auth_of(auth: Option<&str>) -> AuthMethod {
    match auth {
        None => AuthMethod::None,
        Some("") => AuthMethod::Any,
        Some("plain" | "login") => AuthMethod::PasswordCleartext,
        Some("cram-md5" | "digest-md5" | "scram-sha-1" | "scram-sha-256") => {
            AuthMethod::PasswordEncrypted
        }
        Some("gssapi") => AuthMethod::Gssapi,
        Some("ntlm") => AuthMethod::Ntlm,
        Some("external") => AuthMethod::TlsCertificate,
        Some("oauthbearer" | "xoauth2") => AuthMethod::OAuth2,
        Some(other) => AuthMethod::Other(other.to_string()),
    }
}

/// The `auth` argument that selects `method`, or `None` when msmtp has no such method.
/// "Password, encrypted" is written as CRAM-MD5, the method mailmend's other adapters mean by it.
pub fn auth_value(method: &AuthMethod) -> Option<String> {
    Some(match method {
        AuthMethod::None => "off".into(),
        AuthMethod::Any => "on".into(),
        AuthMethod::PasswordCleartext => "plain".into(),
        AuthMethod::PasswordEncrypted => "cram-md5".into(),
        AuthMethod::Gssapi => "gssapi".into(),
        AuthMethod::Ntlm => "ntlm".into(),
        AuthMethod::TlsCertificate => "external".into(),
        AuthMethod::OAuth2 => "oauthbearer".into(),
        AuthMethod::Other(m) => {
            let m = m.to_ascii_lowercase();
            if crate::config::AUTH_METHODS.contains(&m.as_str()) {
                m
            } else {
                return None;
            }
        }
    })
}

/// Why an account has no network endpoint mailmend can check, if it has none.
pub fn not_checkable(entry: &AccountEntry) -> Option<&'static str> {
    if entry.host().is_none() {
        // Typical for templates that other accounts inherit from; msmtp refuses to send with it.
        Some("no host")
    } else if entry.is_lmtp() {
        Some("lmtp delivery")
    } else if entry.socket().is_some() {
        Some("a unix socket instead of host and port")
    } else {
        None
    }
}

/// The SMTP endpoint msmtp connects to for this account.
pub fn endpoint(entry: &AccountEntry) -> Option<Endpoint> {
    if not_checkable(entry).is_some() {
        return None;
    }
    Some(Endpoint {
        protocol: Protocol::Smtp,
        host: entry.host()?.to_string(),
        port: entry.port(),
        security: security_of(entry),
        auth: auth_of(entry.auth()),
        username: entry.user().map(str::to_string),
    })
}

/// The account's email address: its envelope-from (`from`), with `%U` replaced by the user's
/// login name as msmtp does. A wildcard pattern or another substitution is no single address.
pub fn email(entry: &AccountEntry, os_user: &str) -> Option<String> {
    let from = entry.from()?.replace("%U", os_user);
    let plain = !from.contains(['%', '*', '?', '[']) && !from.contains(char::is_whitespace);
    let (local, domain) = from.rsplit_once('@')?;
    (plain && !local.is_empty() && !domain.is_empty()).then_some(from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MsmtpFile;

    fn entry(text: &str) -> AccountEntry {
        MsmtpFile::parse(text.as_bytes()).unwrap().accounts()[0].clone()
    }

    #[test]
    fn every_msmtp_method_maps_back_to_itself() {
        for m in crate::config::AUTH_METHODS {
            let method = auth_of(Some(m));
            assert!(!matches!(method, AuthMethod::Other(_)), "{m}");
            let written = auth_value(&method).unwrap();
            assert_eq!(auth_of(Some(&written)), method);
        }
        assert_eq!(auth_value(&AuthMethod::Other("bogus".into())), None);
    }

    #[test]
    fn from_patterns_and_substitutions_are_no_email_address() {
        assert_eq!(
            email(&entry("account a\nfrom %U@example.com\n"), "ann").as_deref(),
            Some("ann@example.com")
        );
        assert_eq!(
            email(&entry("account a\nfrom *@example.com\n"), "ann"),
            None
        );
        assert_eq!(email(&entry("account a\nfrom a@%H\n"), "ann"), None);
        assert_eq!(email(&entry("account a\nfrom nobody\n"), "ann"), None);
    }
}
