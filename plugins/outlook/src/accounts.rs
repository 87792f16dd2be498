//! What one Outlook account key means: the values the adapter reads, and the pure reading of
//! them into endpoints.
//!
//! An account is a subkey named by eight hex digits under a profile's account manager key
//! `9375CFF0413111d3B88A00104B2A6676`. Its strings ("IMAP Server", "Email", …) are REG_BINARY
//! holding NUL-terminated UTF-16LE (REG_SZ is read too); ports and flags are REG_DWORD. The
//! `clsid` value (REG_SZ) names the account type.
//!
//! Security ("IMAP Use SSL", "POP3 Use SSL", "SMTP Secure Connection", older "SMTP Use SSL"):
//! mailmend reads 0 as none, 1 as SSL/TLS from the first byte, 2 as STARTTLS (Outlook 2010 calls
//! it "TLS") and 3 as "Auto". Outlook 2007 wrote only 0 and 1 ("This server requires an
//! encrypted connection (SSL)"); 2010 added the None/SSL/TLS/Auto list and 2016 renamed SSL to
//! "SSL/TLS" and TLS to "STARTTLS" on the same numbers. "Auto" lets Outlook fall back to
//! plaintext when the server offers no TLS, so it is read as [`Security::None`] (nothing
//! guarantees encryption) and reported as an ambiguous setting, as aerc's bare `smtp://` is.
//! "SMTP Secure Connection" wins over "SMTP Use SSL" when both exist; a value above 3 is not
//! guessed at. This reading is pinned by the `outlook_security_dword_reading` test.
//!
//! Password values ("IMAP Password", "POP3 Password", "SMTP Password" and the like, DPAPI blobs)
//! are not in [`READ_VALUES`], so they are never read.

use mailmend_core::{AuthMethod, Endpoint, Protocol, RegValue, Role, Security};

/// The account manager key of every Outlook profile.
pub const ACCOUNT_MANAGER: &str = "9375CFF0413111d3B88A00104B2A6676";

/// Where profiles are, below a user's hive root, with a short name for the Office version.
pub const PROFILE_ROOTS: [(&str, &str); 3] = [
    ("16.0", r"Software\Microsoft\Office\16.0\Outlook\Profiles"),
    ("15.0", r"Software\Microsoft\Office\15.0\Outlook\Profiles"),
    (
        "wms",
        r"Software\Microsoft\Windows NT\CurrentVersion\Windows Messaging Subsystem\Profiles",
    ),
];

/// `clsid` of an IMAP account.
pub const CLSID_IMAP: &str = "{ED475412-B0D6-11D2-8C3B-00104B2A6676}";
/// `clsid` of a POP3 account.
pub const CLSID_POP3: &str = "{ED475411-B0D6-11D2-8C3B-00104B2A6676}";
/// `clsid` of a MAPI service wrapper: Exchange when its "Service Name" is MSEMS, otherwise a data
/// file or an address book.
pub const CLSID_MAPI: &str = "{ED475414-B0D6-11D2-8C3B-00104B2A6676}";
/// `clsid` of an Exchange ActiveSync account (Outlook.com and hosted Exchange).
pub const CLSID_EAS: &str = "{4DB5CBF0-3B77-4852-BC8E-BB81908861F3}";

/// Every value the adapter reads. No password value is here, and nothing else is ever read.
pub const READ_VALUES: [&str; 24] = [
    "clsid",
    "Service Name",
    "Account Name",
    "Email",
    "SMTP Email Address",
    "IMAP Server",
    "IMAP Port",
    "IMAP Use SSL",
    "IMAP User",
    "IMAP Use SPA",
    "POP3 Server",
    "POP3 Port",
    "POP3 Use SSL",
    "POP3 User",
    "POP3 Use SPA",
    "SMTP Server",
    "SMTP Port",
    "SMTP Use SSL",
    "SMTP Secure Connection",
    "SMTP Use Auth",
    "SMTP Auth Method",
    "SMTP User",
    "SMTP Use SPA",
    // An Exchange ActiveSync account's server, when the key holds it (REG_SZ URL).
    "EAS Server URL",
];

/// The values read for one account, by name (names compare without case).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Values(pub Vec<(String, RegValue)>);

// Values hold no password, but a Debug of user data is still kept to names and types.
impl std::fmt::Debug for Values {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(n, v)| (n, v.kind())))
            .finish()
    }
}

impl Values {
    pub fn get(&self, name: &str) -> Option<&RegValue> {
        self.0
            .iter()
            .find(|(n, _)| mailmend_core::registry::names_equal(n, name))
            .map(|(_, v)| v)
    }

    /// Sets or (with `None`) removes a value, as a planned edit would.
    pub fn put(&mut self, name: &str, value: Option<RegValue>) {
        self.0
            .retain(|(n, _)| !mailmend_core::registry::names_equal(n, name));
        if let Some(v) = value {
            self.0.push((name.to_string(), v));
        }
    }

    /// A string value: UTF-16LE in REG_BINARY (Outlook's way) or REG_SZ. Empty strings count as
    /// absent; data that is not UTF-16 is not guessed at.
    pub fn text(&self, name: &str) -> Option<String> {
        let s = match self.get(name)? {
            RegValue::Binary(b) => decode_wide(b)?,
            RegValue::String(s) | RegValue::ExpandString(s) => s.clone(),
            _ => return None,
        };
        let s = s.trim_end_matches('\0').trim().to_string();
        (!s.is_empty()).then_some(s)
    }

    /// A DWORD value.
    pub fn dword(&self, name: &str) -> Option<u32> {
        match self.get(name)? {
            RegValue::Dword(n) => Some(*n),
            _ => None,
        }
    }
}

fn decode_wide(b: &[u8]) -> Option<String> {
    if b.len() % 2 == 1 {
        return None;
    }
    let units = b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .ok()
}

/// A string as Outlook stores it: NUL-terminated UTF-16LE in REG_BINARY.
pub fn wide_binary(s: &str) -> RegValue {
    RegValue::Binary(
        s.encode_utf16()
            .chain([0])
            .flat_map(u16::to_le_bytes)
            .collect(),
    )
}

/// What kind of account a key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Imap,
    Pop3,
    Exchange,
}

impl Kind {
    /// The value-name prefix of the incoming side.
    pub fn incoming_prefix(self) -> Option<&'static str> {
        match self {
            Kind::Imap => Some("IMAP"),
            Kind::Pop3 => Some("POP3"),
            Kind::Exchange => None,
        }
    }
}

/// MAPI services that are not mail accounts: data files and address books.
const NOT_ACCOUNTS: [&str; 5] = ["MSUPST MS", "MSPST MS", "CONTAB", "EMABLT", "MSPST AB"];

/// The account kind, or `None` for entries that are not mail accounts (data files, address
/// books, LDAP directories) or that mailmend does not know.
pub fn kind(v: &Values) -> Option<Kind> {
    let clsid = v.text("clsid").map(|c| c.to_ascii_uppercase());
    match clsid.as_deref() {
        Some(CLSID_IMAP) => Some(Kind::Imap),
        Some(CLSID_POP3) => Some(Kind::Pop3),
        Some(CLSID_EAS) => Some(Kind::Exchange),
        Some(CLSID_MAPI) => match v.text("Service Name") {
            Some(s) if s.eq_ignore_ascii_case("MSEMS") => Some(Kind::Exchange),
            Some(s) if NOT_ACCOUNTS.iter().any(|n| n.eq_ignore_ascii_case(&s)) => None,
            _ => None,
        },
        Some(_) => None,
        // Without a clsid (older Outlook), the servers tell.
        None if v.text("IMAP Server").is_some() => Some(Kind::Imap),
        None if v.text("POP3 Server").is_some() => Some(Kind::Pop3),
        None => None,
    }
}

/// A security DWORD as mailmend reads it (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityCode {
    None,
    Tls,
    StartTls,
    /// 3: Outlook negotiates and may fall back to plaintext.
    Auto,
}

impl SecurityCode {
    pub fn from_dword(n: u32) -> Option<SecurityCode> {
        match n {
            0 => Some(SecurityCode::None),
            1 => Some(SecurityCode::Tls),
            2 => Some(SecurityCode::StartTls),
            3 => Some(SecurityCode::Auto),
            _ => None,
        }
    }

    pub fn to_dword(self) -> u32 {
        match self {
            SecurityCode::None => 0,
            SecurityCode::Tls => 1,
            SecurityCode::StartTls => 2,
            SecurityCode::Auto => 3,
        }
    }

    /// What the setting guarantees: "Auto" guarantees no encryption.
    pub fn security(self) -> Security {
        match self {
            SecurityCode::None | SecurityCode::Auto => Security::None,
            SecurityCode::Tls => Security::Tls,
            SecurityCode::StartTls => Security::StartTls,
        }
    }

    pub fn for_security(s: Security) -> SecurityCode {
        match s {
            Security::None => SecurityCode::None,
            Security::Tls => SecurityCode::Tls,
            Security::StartTls => SecurityCode::StartTls,
        }
    }
}

/// The value names that hold the security of a side, in the order they are read: the first that
/// exists decides.
pub fn security_names(role_prefix: &str) -> Vec<String> {
    if role_prefix == "SMTP" {
        vec!["SMTP Secure Connection".into(), "SMTP Use SSL".into()]
    } else {
        vec![format!("{role_prefix} Use SSL")]
    }
}

/// Something about a side that mailmend reports instead of guessing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// The security is "Auto" (value name given).
    AutoSecurity(String),
    /// A value mailmend does not understand (name and why); the side is not checked.
    Unsupported(String, String),
}

/// One side of an account read from its values: the endpoint, or notes saying why not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Side {
    pub endpoint: Option<Endpoint>,
    pub notes: Vec<Note>,
}

fn protocol_of(prefix: &str) -> Protocol {
    match prefix {
        "IMAP" => Protocol::Imap,
        "POP3" => Protocol::Pop3,
        _ => Protocol::Smtp,
    }
}

/// Reads one side ("IMAP", "POP3" or "SMTP") of an account.
pub fn side(v: &Values, prefix: &str) -> Side {
    let mut out = Side::default();
    let Some(host) = v.text(&format!("{prefix} Server")) else {
        return out;
    };
    let protocol = protocol_of(prefix);
    let sec_name = security_names(prefix)
        .into_iter()
        .find(|n| v.get(n).is_some());
    let code = match &sec_name {
        None => SecurityCode::None,
        Some(n) => match v.dword(n).and_then(SecurityCode::from_dword) {
            Some(c) => c,
            None => {
                out.notes.push(Note::Unsupported(
                    n.clone(),
                    "not a security setting mailmend knows (0 to 3)".into(),
                ));
                return out;
            }
        },
    };
    if code == SecurityCode::Auto {
        out.notes
            .push(Note::AutoSecurity(sec_name.clone().unwrap_or_default()));
    }
    let security = code.security();
    let port_name = format!("{prefix} Port");
    let port = match v.get(&port_name) {
        None => protocol.default_port(security),
        Some(_) => match v.dword(&port_name).map(u16::try_from) {
            Some(Ok(p)) if p != 0 => p,
            _ => {
                out.notes.push(Note::Unsupported(
                    port_name,
                    "not a TCP port (a DWORD from 1 to 65535)".into(),
                ));
                return out;
            }
        },
    };
    let spa = v.dword(&format!("{prefix} Use SPA")).unwrap_or(0) != 0;
    let (auth, username) = if prefix == "SMTP" {
        smtp_auth(v, spa)
    } else {
        let auth = if spa {
            AuthMethod::Ntlm
        } else {
            AuthMethod::PasswordCleartext
        };
        (auth, v.text(&format!("{prefix} User")))
    };
    out.endpoint = Some(Endpoint {
        protocol,
        host,
        port,
        security,
        auth,
        username,
    });
    out
}

/// SMTP authentication: "SMTP Use Auth" switches it on; "SMTP Auth Method" 0 uses the incoming
/// login, 1 "SMTP User", 2 logs on to the incoming server before sending (no SMTP AUTH).
fn smtp_auth(v: &Values, spa: bool) -> (AuthMethod, Option<String>) {
    if v.dword("SMTP Use Auth").unwrap_or(0) == 0 {
        return (AuthMethod::None, None);
    }
    let method = if spa {
        AuthMethod::Ntlm
    } else {
        AuthMethod::PasswordCleartext
    };
    match v.dword("SMTP Auth Method").unwrap_or(0) {
        1 => (method, v.text("SMTP User")),
        2 => (AuthMethod::Other("pop-before-smtp".into()), None),
        _ => (method, v.text("IMAP User").or_else(|| v.text("POP3 User"))),
    }
}

/// An account read from its key's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutlookAccount {
    pub kind: Kind,
    pub email: Option<String>,
    pub name: Option<String>,
    pub incoming: Side,
    pub outgoing: Side,
}

impl OutlookAccount {
    pub fn side(&self, role: Role) -> &Side {
        match role {
            Role::Incoming => &self.incoming,
            Role::Outgoing => &self.outgoing,
        }
    }
}

/// Reads an account key's values; `None` when the key is not a mail account mailmend knows.
pub fn read(v: &Values) -> Option<OutlookAccount> {
    let kind = kind(v)?;
    let name = v.text("Account Name");
    let email = v
        .text("Email")
        .or_else(|| v.text("SMTP Email Address"))
        .or_else(|| name.clone().filter(|n| n.contains('@')));
    let (incoming, outgoing) = match kind.incoming_prefix() {
        Some(p) => (side(v, p), side(v, "SMTP")),
        None => {
            // Exchange: the server comes from Autodiscover, which the registry does not hold.
            let host = v
                .text("EAS Server URL")
                .map(|u| url_host(&u))
                .unwrap_or_default();
            let endpoint = Endpoint {
                protocol: Protocol::Exchange,
                host,
                port: Protocol::Exchange.default_port(Security::Tls),
                security: Security::Tls,
                auth: AuthMethod::Any,
                username: None,
            };
            (
                Side {
                    endpoint: Some(endpoint),
                    notes: Vec::new(),
                },
                Side::default(),
            )
        }
    };
    Some(OutlookAccount {
        kind,
        email,
        name,
        incoming,
        outgoing,
    })
}

/// The host of `https://host[:port]/path`.
fn url_host(u: &str) -> String {
    let rest = u.split_once("://").map_or(u, |(_, r)| r);
    let hostport = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = hostport.rsplit_once('@').map_or(hostport, |(_, h)| h);
    if let Some(inner) = host.strip_prefix('[') {
        return inner.split(']').next().unwrap_or("").to_string();
    }
    host.split(':').next().unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(v: &[(&str, RegValue)]) -> Values {
        Values(v.iter().map(|(n, x)| (n.to_string(), x.clone())).collect())
    }

    #[test]
    fn no_password_value_is_ever_read() {
        assert!(READ_VALUES
            .iter()
            .all(|n| !n.to_ascii_lowercase().contains("password")));
    }

    #[test]
    fn strings_are_utf16_in_binary_or_plain() {
        let v = values(&[
            ("IMAP Server", wide_binary("imap.example.com")),
            ("IMAP User", RegValue::String("ann".into())),
            ("Email", RegValue::Binary(vec![0x61])),
        ]);
        assert_eq!(v.text("imap server").as_deref(), Some("imap.example.com"));
        assert_eq!(v.text("IMAP User").as_deref(), Some("ann"));
        assert_eq!(v.text("Email"), None);
    }

    #[test]
    fn an_eas_url_gives_its_host() {
        assert_eq!(
            url_host("https://eas.outlook.com/Microsoft-Server-ActiveSync"),
            "eas.outlook.com"
        );
        assert_eq!(url_host("https://[::1]:8443/x"), "::1");
    }
}
