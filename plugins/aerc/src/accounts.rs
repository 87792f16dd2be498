//! From accounts.conf sections to mail accounts. Pure.
//!
//! Every section but `DEFAULT` is an account; its incoming side is an `imap`/`imaps` `source`
//! and its outgoing side an `smtp`/`smtps` `outgoing` (maildir, notmuch, JMAP and sendmail
//! are not servers mailmend checks). aerc's port defaults: 143 for `imap`, 993 for `imaps`, 587
//! for `smtp` and `smtp+insecure`, 465 for `smtps`.
//!
//! Security:
//! - `imaps` is implicit TLS (`imaps+insecure` too, but without certificate checks, which is
//!   reported); `imap` is STARTTLS, required; `imap+insecure` is plaintext.
//! - `smtps` is implicit TLS; `smtp+insecure` is plaintext; a bare `smtp` depends on the
//!   installed aerc: STARTTLS from 0.15 on, and before that plaintext unless the section sets
//!   `smtp-starttls = yes`. When the version is unknown and the section does not set
//!   `smtp-starttls = yes`, the two readings differ: the endpoint reads as plaintext (the
//!   cautious reading) and is marked ambiguous.
//!
//! Not modelled: go-ini's child sections (`[a.b]` inheriting keys of `[a]`).

use crate::ini::{AccountsFile, Value};
use crate::url::Url;
use crate::version::AercVersion;
use mailmend_core::{AuthMethod, Endpoint, Protocol, Security};

/// The key that turned STARTTLS on for a bare `smtp://` before aerc 0.15.
pub const STARTTLS_KEY: &str = "smtp-starttls";

/// An account found in accounts.conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AercAccount {
    /// The section name, which is also the account's key.
    pub section: String,
    pub email: Option<String>,
    pub incoming: Option<Endpoint>,
    pub outgoing: Option<Endpoint>,
    /// Whether the outgoing security depends on the unknown aerc version.
    pub ambiguous_outgoing: bool,
    /// Whether `imaps+insecure` turns certificate checks off.
    pub unverified_incoming: bool,
    /// The lines of the `source` and `outgoing` entries, for findings.
    pub source_line: Option<usize>,
    pub outgoing_line: Option<usize>,
}

/// The authentication a scheme's mechanism part names; aerc uses PLAIN (or LOGIN) by default.
pub fn auth_of(u: &Url) -> AuthMethod {
    match u.mechanism().as_deref() {
        None | Some("plain") | Some("login") => AuthMethod::PasswordCleartext,
        Some("none") => AuthMethod::None,
        Some("oauthbearer") | Some("xoauth2") => AuthMethod::OAuth2,
        Some(other) => AuthMethod::Other(other.to_string()),
    }
}

/// The port aerc uses when a URL names none.
pub fn default_port(protocol: &str) -> u16 {
    match protocol {
        "imaps" => 993,
        "imap" => 143,
        "smtps" => 465,
        _ => 587,
    }
}

/// The incoming endpoint of a `source` URL, and whether certificate checks are off.
pub fn incoming_of(u: &Url) -> Option<(Endpoint, bool)> {
    let (security, unverified) = match (u.protocol.as_str(), u.insecure()) {
        ("imaps", insecure) => (Security::Tls, insecure),
        ("imap", false) => (Security::StartTls, false),
        ("imap", true) => (Security::None, false),
        _ => return None,
    };
    Some((endpoint(u, Protocol::Imap, security), unverified))
}

/// The security of an `outgoing` URL and whether it depends on the unknown version. `None` for
/// what aerc cannot send through (`smtps+insecure`, other protocols).
pub fn smtp_security(
    u: &Url,
    starttls_key: bool,
    version: Option<AercVersion>,
) -> Option<(Security, bool)> {
    Some(match (u.protocol.as_str(), u.insecure()) {
        ("smtps", false) => (Security::Tls, false),
        ("smtp", true) => (Security::None, false),
        ("smtp", false) => match version {
            Some(v) if v.smtp_means_starttls() => (Security::StartTls, false),
            _ if starttls_key => (Security::StartTls, false),
            Some(_) => (Security::None, false),
            None => (Security::None, true),
        },
        _ => return None,
    })
}

/// The outgoing endpoint of an `outgoing` URL, and whether its security is ambiguous.
pub fn outgoing_of(
    u: &Url,
    starttls_key: bool,
    version: Option<AercVersion>,
) -> Option<(Endpoint, bool)> {
    let (security, ambiguous) = smtp_security(u, starttls_key, version)?;
    Some((endpoint(u, Protocol::Smtp, security), ambiguous))
}

fn endpoint(u: &Url, protocol: Protocol, security: Security) -> Endpoint {
    Endpoint {
        protocol,
        host: u.host.clone(),
        port: u.port.unwrap_or(default_port(&u.protocol)),
        security,
        auth: auth_of(u),
        username: u.user.clone().filter(|s| !s.is_empty()),
    }
}

/// Whether the section sets `smtp-starttls = yes`.
pub fn starttls_key(file: &AccountsFile, section: &str) -> bool {
    matches!(
        file.get(section, STARTTLS_KEY).map(|e| &e.value),
        Some(Value::Text(t)) if t.trim() == "yes"
    )
}

/// The address in a `from` value: `Name <a@b>` or `a@b`.
pub fn address_of(from: &str) -> Option<String> {
    let from = from.trim();
    let addr = match (from.rfind('<'), from.rfind('>')) {
        (Some(l), Some(r)) if l < r => &from[l + 1..r],
        _ => from,
    };
    let addr = addr.trim().trim_matches('"');
    (addr.contains('@') && !addr.contains(char::is_whitespace)).then(|| addr.to_string())
}

/// The URL an entry holds.
pub fn url_of<'a>(file: &'a AccountsFile, section: &str, key: &str) -> Option<&'a Url> {
    match &file.get(section, key)?.value {
        Value::Url(u) => Some(u),
        _ => None,
    }
}

/// One section as an account; `None` when it has no server mailmend checks.
pub fn account(
    file: &AccountsFile,
    section: &str,
    version: Option<AercVersion>,
) -> Option<AercAccount> {
    let incoming = url_of(file, section, "source")
        .filter(|u| !u.host.is_empty())
        .and_then(incoming_of);
    let outgoing = url_of(file, section, "outgoing")
        .filter(|u| !u.host.is_empty())
        .and_then(|u| outgoing_of(u, starttls_key(file, section), version));
    if incoming.is_none() && outgoing.is_none() {
        return None;
    }
    let email = match file.get(section, "from").map(|e| &e.value) {
        Some(Value::Text(t)) => address_of(t),
        _ => None,
    };
    Some(AercAccount {
        section: section.to_string(),
        email,
        unverified_incoming: incoming.as_ref().is_some_and(|(_, u)| *u),
        ambiguous_outgoing: outgoing.as_ref().is_some_and(|(_, a)| *a),
        incoming: incoming.map(|(e, _)| e),
        outgoing: outgoing.map(|(e, _)| e),
        source_line: file.get(section, "source").map(|e| e.line),
        outgoing_line: file.get(section, "outgoing").map(|e| e.line),
    })
}

/// Every account of a file.
pub fn build(file: &AccountsFile, version: Option<AercVersion>) -> Vec<AercAccount> {
    file.sections()
        .into_iter()
        .filter_map(|s| account(file, s, version))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s, 0).unwrap()
    }

    #[test]
    fn bare_smtp_depends_on_the_version_and_the_legacy_key() {
        let u = url("smtp://a@h");
        let old = Some(AercVersion::new(0, 14, 0));
        let new = Some(AercVersion::new(0, 15, 2));
        assert_eq!(
            smtp_security(&u, false, new),
            Some((Security::StartTls, false))
        );
        assert_eq!(smtp_security(&u, false, old), Some((Security::None, false)));
        assert_eq!(
            smtp_security(&u, true, old),
            Some((Security::StartTls, false))
        );
        assert_eq!(
            smtp_security(&u, true, None),
            Some((Security::StartTls, false))
        );
        assert_eq!(smtp_security(&u, false, None), Some((Security::None, true)));
        let insecure = url("smtp+insecure+login://a@h");
        assert_eq!(
            smtp_security(&insecure, true, new),
            Some((Security::None, false))
        );
        assert_eq!(
            smtp_security(&url("smtps://h"), false, None),
            Some((Security::Tls, false))
        );
        assert_eq!(smtp_security(&url("smtps+insecure://h"), false, None), None);
        assert_eq!(smtp_security(&url("jmap://h"), false, None), None);
    }

    #[test]
    fn imap_schemes_and_ports() {
        let (e, unverified) = incoming_of(&url("imaps+insecure://a@h")).unwrap();
        assert_eq!((e.security, e.port, unverified), (Security::Tls, 993, true));
        let (e, _) = incoming_of(&url("imap://h")).unwrap();
        assert_eq!((e.security, e.port), (Security::StartTls, 143));
        let (e, _) = incoming_of(&url("imap+insecure://h:1143")).unwrap();
        assert_eq!((e.security, e.port), (Security::None, 1143));
        assert!(incoming_of(&url("maildir://~/Mail")).is_none());
        assert_eq!(default_port("smtp"), 587);
    }

    #[test]
    fn mechanisms_map_to_auth_methods() {
        assert_eq!(auth_of(&url("smtp://h")), AuthMethod::PasswordCleartext);
        assert_eq!(
            auth_of(&url("smtp+login://h")),
            AuthMethod::PasswordCleartext
        );
        assert_eq!(auth_of(&url("smtp+none://h")), AuthMethod::None);
        assert_eq!(auth_of(&url("imaps+xoauth2://h")), AuthMethod::OAuth2);
        assert_eq!(
            auth_of(&url("imaps+insecure+scram://h")),
            AuthMethod::Other("scram".into())
        );
    }
}
