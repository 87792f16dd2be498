//! From a profile's prefs to mail accounts: the account manager's links, the incoming and
//! outgoing servers, and Thunderbird's defaults for what a file leaves out. Pure.

use crate::prefs::{is_secret_name, PrefKind, PrefValue, PrefsFile};
use mailmend_core::{AuthMethod, Endpoint, Protocol, Security};
use std::collections::HashMap;

/// The prefs Thunderbird would run with: `prefs.js`, then `user.js` over it (user.js is read at
/// start-up and wins). Default-setting statements rank below every `user_pref`. Secret prefs
/// are left out altogether.
#[derive(Debug, Clone, Default)]
pub struct Effective {
    values: HashMap<String, PrefValue>,
}

impl Effective {
    pub fn new(prefs: &PrefsFile, user: Option<&PrefsFile>) -> Effective {
        let files: Vec<&PrefsFile> = std::iter::once(prefs).chain(user).collect();
        let mut values = HashMap::new();
        for user_values in [false, true] {
            for file in &files {
                for p in file.prefs() {
                    if (p.kind == PrefKind::User) == user_values && !is_secret_name(&p.name) {
                        values.insert(p.name.clone(), p.value.clone());
                    }
                }
            }
        }
        Effective { values }
    }

    pub fn get(&self, name: &str) -> Option<&PrefValue> {
        self.values.get(name)
    }

    /// A string pref, when set and not blank (Thunderbird treats an empty string as unset).
    pub fn str(&self, name: &str) -> Option<&str> {
        self.get(name)
            .and_then(PrefValue::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    pub fn int(&self, name: &str) -> Option<i32> {
        self.get(name).and_then(PrefValue::as_int)
    }

    pub fn bool(&self, name: &str) -> Option<bool> {
        self.get(name).and_then(PrefValue::as_bool)
    }
}

/// The server types mailmend checks; Local Folders (`none`), feeds, news and movemail have no
/// mail server to diagnose, and add-on types are left to their add-ons.
pub fn protocol_of(server_type: &str) -> Option<Protocol> {
    match server_type {
        "imap" => Some(Protocol::Imap),
        "pop3" => Some(Protocol::Pop3),
        _ => None,
    }
}

/// `socketType` / `try_ssl`: 0 plain, 1 the obsolete "STARTTLS if offered", 2 STARTTLS,
/// 3 SSL/TLS. Thunderbird connects in plaintext for any other value, so that is what it means.
pub fn security_of(socket_type: i32) -> Security {
    match socket_type {
        1 | 2 => Security::StartTls,
        3 => Security::Tls,
        _ => Security::None,
    }
}

/// The `socketType` / `try_ssl` value mailmend writes for a security.
pub fn socket_type_of(security: Security) -> i32 {
    match security {
        Security::None => 0,
        Security::StartTls => 2,
        Security::Tls => 3,
    }
}

/// `authMethod` values, as `nsMsgAuthMethod` numbers them.
pub fn auth_of(method: i32) -> AuthMethod {
    match method {
        1 => AuthMethod::None,
        // 2 is the "old" method: a password sent as is, like 3.
        2 | 3 => AuthMethod::PasswordCleartext,
        4 => AuthMethod::PasswordEncrypted,
        5 => AuthMethod::Gssapi,
        6 => AuthMethod::Ntlm,
        7 => AuthMethod::TlsCertificate,
        // 8 is the deprecated "any secure method".
        8 | 9 => AuthMethod::Any,
        10 => AuthMethod::OAuth2,
        n => AuthMethod::Other(n.to_string()),
    }
}

/// The `authMethod` value mailmend writes for an auth method, when there is one.
pub fn auth_method_value(auth: &AuthMethod) -> Option<i32> {
    Some(match auth {
        AuthMethod::None => 1,
        AuthMethod::PasswordCleartext => 3,
        AuthMethod::PasswordEncrypted => 4,
        AuthMethod::Gssapi => 5,
        AuthMethod::Ntlm => 6,
        AuthMethod::TlsCertificate => 7,
        AuthMethod::Any => 9,
        AuthMethod::OAuth2 => 10,
        AuthMethod::Other(_) => return None,
    })
}

/// Thunderbird's default `authMethod`: a password sent as is.
const DEFAULT_AUTH_METHOD: i32 = 3;

/// The accounts listed by `mail.accountmanager.accounts`, in order.
pub fn account_names(eff: &Effective) -> Vec<String> {
    split_list(eff.str("mail.accountmanager.accounts"))
}

fn split_list(list: Option<&str>) -> Vec<String> {
    list.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// One account's links: its incoming server key, protocol, first identity and outgoing server key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountLinks {
    pub account: String,
    pub server: String,
    pub protocol: Protocol,
    pub email: Option<String>,
    pub smtp: Option<String>,
}

/// Follows `mail.account.<account>` to its server, identity and SMTP server. `None` when the
/// account has no server or its server is not a mail server mailmend checks.
pub fn links(eff: &Effective, account: &str) -> Option<AccountLinks> {
    let server = eff
        .str(&format!("mail.account.{account}.server"))?
        .to_string();
    let server_type = eff.str(&format!("mail.server.{server}.type"))?;
    let protocol = protocol_of(server_type)?;
    let identity = split_list(eff.str(&format!("mail.account.{account}.identities")))
        .into_iter()
        .next();
    let email = identity
        .as_ref()
        .and_then(|id| eff.str(&format!("mail.identity.{id}.useremail")))
        .map(str::to_string);
    let smtp = identity
        .as_ref()
        .and_then(|id| eff.str(&format!("mail.identity.{id}.smtpServer")))
        .or_else(|| eff.str("mail.smtp.defaultserver"))
        .map(str::to_string);
    Some(AccountLinks {
        account: account.to_string(),
        server,
        protocol,
        email,
        smtp,
    })
}

/// The pref names of one endpoint's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointPrefs {
    pub protocol: Protocol,
    pub hostname: String,
    /// `realhostname` for an incoming server; SMTP servers have none.
    pub realhostname: Option<String>,
    pub port: String,
    /// `socketType` (incoming) or `try_ssl` (outgoing).
    pub security: String,
    /// The legacy `isSecure` flag of incoming servers.
    pub is_secure: Option<String>,
    pub auth: String,
    pub username: String,
    pub realusername: Option<String>,
}

impl EndpointPrefs {
    pub fn incoming(server: &str, protocol: Protocol) -> EndpointPrefs {
        let p = |k: &str| format!("mail.server.{server}.{k}");
        EndpointPrefs {
            protocol,
            hostname: p("hostname"),
            realhostname: Some(p("realhostname")),
            port: p("port"),
            security: p("socketType"),
            is_secure: Some(p("isSecure")),
            auth: p("authMethod"),
            username: p("userName"),
            realusername: Some(p("realuserName")),
        }
    }

    pub fn outgoing(smtp: &str) -> EndpointPrefs {
        let p = |k: &str| format!("mail.smtpserver.{smtp}.{k}");
        EndpointPrefs {
            protocol: Protocol::Smtp,
            hostname: p("hostname"),
            realhostname: None,
            port: p("port"),
            security: p("try_ssl"),
            is_secure: None,
            auth: p("authMethod"),
            username: p("username"),
            realusername: None,
        }
    }

    /// The pref that holds the host Thunderbird connects to: `realhostname` when it is set.
    pub fn host_pref<'a>(&'a self, eff: &Effective) -> &'a str {
        match &self.realhostname {
            Some(real) if eff.str(real).is_some() => real,
            _ => &self.hostname,
        }
    }

    pub fn security(&self, eff: &Effective) -> Security {
        match eff.int(&self.security) {
            Some(t) => security_of(t),
            None => match self.is_secure.as_deref().and_then(|p| eff.bool(p)) {
                Some(true) => Security::Tls,
                _ => Security::None,
            },
        }
    }

    /// The explicit port, when the pref holds a usable one (Thunderbird reads 0 and -1 as "the
    /// default").
    pub fn explicit_port(&self, eff: &Effective) -> Option<u16> {
        eff.int(&self.port)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|&p| p != 0)
    }

    /// The endpoint as Thunderbird would connect to it; `None` without a host name.
    pub fn endpoint(&self, eff: &Effective) -> Option<Endpoint> {
        let host = eff.str(self.host_pref(eff))?.to_string();
        let security = self.security(eff);
        let port = self
            .explicit_port(eff)
            .unwrap_or_else(|| self.protocol.default_port(security));
        let auth = auth_of(eff.int(&self.auth).unwrap_or(DEFAULT_AUTH_METHOD));
        let username = self
            .realusername
            .as_deref()
            .and_then(|p| eff.str(p))
            .or_else(|| eff.str(&self.username))
            .map(str::to_string);
        Some(Endpoint {
            protocol: self.protocol,
            host,
            port,
            security,
            auth,
            username,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eff(s: &str) -> Effective {
        Effective::new(&PrefsFile::parse(s.as_bytes()).unwrap(), None)
    }

    #[test]
    fn every_auth_method_thunderbird_knows_maps_back_to_its_number() {
        for n in [1, 3, 4, 5, 6, 7, 9, 10] {
            assert_eq!(auth_method_value(&auth_of(n)), Some(n));
        }
        assert_eq!(auth_of(2), AuthMethod::PasswordCleartext);
        assert_eq!(auth_of(8), AuthMethod::Any);
        assert_eq!(auth_of(42), AuthMethod::Other("42".into()));
    }

    #[test]
    fn socket_type_overrides_the_legacy_is_secure_flag() {
        let p = EndpointPrefs::incoming("server1", Protocol::Imap);
        let e = eff("user_pref(\"mail.server.server1.isSecure\", true);");
        assert_eq!(p.security(&e), Security::Tls);
        let e = eff("user_pref(\"mail.server.server1.isSecure\", true);\n\
             user_pref(\"mail.server.server1.socketType\", 2);");
        assert_eq!(p.security(&e), Security::StartTls);
        let e = eff("user_pref(\"mail.server.server1.socketType\", 1);");
        assert_eq!(p.security(&e), Security::StartTls);
    }

    #[test]
    fn user_js_wins_over_prefs_js_and_user_prefs_over_defaults() {
        let prefs = PrefsFile::parse(b"user_pref(\"a\", 1);\nuser_pref(\"b\", 1);").unwrap();
        let user =
            PrefsFile::parse(b"user_pref(\"a\", 2);\npref(\"b\", 2);\npref(\"c\", 3);").unwrap();
        let e = Effective::new(&prefs, Some(&user));
        assert_eq!(e.int("a"), Some(2));
        assert_eq!(e.int("b"), Some(1));
        assert_eq!(e.int("c"), Some(3));
    }

    #[test]
    fn a_zero_port_means_the_default_port() {
        let e = eff(
            "user_pref(\"mail.smtpserver.smtp1.hostname\", \"smtp.example.com\");\n\
             user_pref(\"mail.smtpserver.smtp1.port\", 0);\n\
             user_pref(\"mail.smtpserver.smtp1.try_ssl\", 3);",
        );
        let ep = EndpointPrefs::outgoing("smtp1").endpoint(&e).unwrap();
        assert_eq!((ep.port, ep.security), (465, Security::Tls));
    }
}
