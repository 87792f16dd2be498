//! Mail accounts as found in a client's configuration, and their server endpoints.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::PathBuf;

/// The mail clients mailmend understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    Thunderbird,
    Outlook,
    Evolution,
    Msmtp,
    Mbsync,
    Mutt,
    Aerc,
}

impl ClientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Thunderbird => "thunderbird",
            ClientKind::Outlook => "outlook",
            ClientKind::Evolution => "evolution",
            ClientKind::Msmtp => "msmtp",
            ClientKind::Mbsync => "mbsync",
            ClientKind::Mutt => "mutt",
            ClientKind::Aerc => "aerc",
        }
    }
}

impl fmt::Display for ClientKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The protocol an endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Imap,
    Pop3,
    Smtp,
    /// Microsoft Exchange (MAPI/EWS); the server is found through Autodiscover.
    Exchange,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Imap => "imap",
            Protocol::Pop3 => "pop3",
            Protocol::Smtp => "smtp",
            Protocol::Exchange => "exchange",
        }
    }

    /// The port a client uses when its configuration names none.
    pub fn default_port(self, security: Security) -> u16 {
        match (self, security) {
            (Protocol::Imap, Security::Tls) => 993,
            (Protocol::Imap, _) => 143,
            (Protocol::Pop3, Security::Tls) => 995,
            (Protocol::Pop3, _) => 110,
            (Protocol::Smtp, Security::Tls) => 465,
            (Protocol::Smtp, _) => 25,
            (Protocol::Exchange, _) => 443,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Transport security of a connection.
///
/// The order is meaningful: `None < StartTls < Tls` is "less to more protected from the first
/// byte", which is what the downgrade ban compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    /// Plaintext for the whole session.
    None,
    /// Plaintext greeting, then STARTTLS (STLS for POP3).
    #[serde(rename = "starttls")]
    StartTls,
    /// TLS from the first byte (implicit TLS, "SSL/TLS").
    Tls,
}

impl Security {
    pub fn as_str(self) -> &'static str {
        match self {
            Security::None => "none",
            Security::StartTls => "starttls",
            Security::Tls => "tls",
        }
    }

    /// Whether the connection is encrypted before credentials are sent.
    pub fn is_encrypted(self) -> bool {
        self != Security::None
    }
}

impl fmt::Display for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a client authenticates.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// No authentication.
    None,
    /// A password sent as is (LOGIN, PLAIN, USER/PASS); safe only over TLS.
    PasswordCleartext,
    /// A challenge-response password mechanism (CRAM-MD5 and similar).
    PasswordEncrypted,
    /// Kerberos through GSSAPI.
    Gssapi,
    Ntlm,
    /// A TLS client certificate (SASL EXTERNAL).
    TlsCertificate,
    OAuth2,
    /// Let the client pick whatever the server offers.
    Any,
    /// A value this version does not know, kept verbatim.
    Other(String),
}

impl AuthMethod {
    /// Whether this method would put a reusable secret on the wire as is.
    pub fn sends_password_in_clear(&self) -> bool {
        matches!(self, AuthMethod::PasswordCleartext)
    }
}

/// Incoming or outgoing side of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Incoming,
    Outgoing,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Incoming => "incoming",
            Role::Outgoing => "outgoing",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One server an account talks to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    pub protocol: Protocol,
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub auth: AuthMethod,
    /// The login name; never a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// Where an account's settings are stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Location {
    File { path: PathBuf },
    Registry { key: String },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File { path } => write!(f, "{}", path.display()),
            Location::Registry { key } => f.write_str(key),
        }
    }
}

/// A stable identifier for an account: the same configuration entry gets the same id on every run.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(pub String);

impl AccountId {
    /// Derives the id from what identifies the entry: its client, where it is stored, and the
    /// adapter's key inside that store (for example `server2` in a prefs.js).
    pub fn derive(client: ClientKind, location: &Location, key: &str) -> AccountId {
        let mut h = Sha256::new();
        h.update(client.as_str().as_bytes());
        h.update([0]);
        h.update(location.to_string().as_bytes());
        h.update([0]);
        h.update(key.as_bytes());
        let digest = h.finalize();
        AccountId(format!("{}-{}", client.as_str(), hex::encode(&digest[..6])))
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A mail account found in a client's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub id: AccountId,
    pub client: ClientKind,
    /// The OS user whose configuration holds the account.
    pub os_user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub location: Location,
    /// The adapter's own key for finding this entry again (e.g. `server2`, an msmtp account name).
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incoming: Option<Endpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outgoing: Option<Endpoint>,
}

impl Account {
    pub fn endpoint(&self, role: Role) -> Option<&Endpoint> {
        match role {
            Role::Incoming => self.incoming.as_ref(),
            Role::Outgoing => self.outgoing.as_ref(),
        }
    }

    pub fn endpoint_mut(&mut self, role: Role) -> Option<&mut Endpoint> {
        match role {
            Role::Incoming => self.incoming.as_mut(),
            Role::Outgoing => self.outgoing.as_mut(),
        }
    }

    /// The domain of the account's email address, lower-cased.
    pub fn email_domain(&self) -> Option<String> {
        let email = self.email.as_deref()?;
        let (_, domain) = email.rsplit_once('@')?;
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        (!domain.is_empty()).then_some(domain)
    }
}

/// A user's home directory to scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Home {
    pub user: String,
    pub path: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_id_is_stable_and_distinguishes_entries() {
        let loc = Location::File {
            path: "/home/a/prefs.js".into(),
        };
        let a = AccountId::derive(ClientKind::Thunderbird, &loc, "server1");
        let b = AccountId::derive(ClientKind::Thunderbird, &loc, "server1");
        let c = AccountId::derive(ClientKind::Thunderbird, &loc, "server2");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.0.starts_with("thunderbird-"));
    }

    #[test]
    fn security_order_ranks_plaintext_lowest() {
        assert!(Security::None < Security::StartTls);
        assert!(Security::StartTls < Security::Tls);
    }

    #[test]
    fn email_domain_is_lower_cased() {
        let acc = Account {
            id: AccountId("x".into()),
            client: ClientKind::Msmtp,
            os_user: "u".into(),
            email: Some("Ann@Example.COM".into()),
            location: Location::File { path: "/x".into() },
            key: "k".into(),
            incoming: None,
            outgoing: None,
        };
        assert_eq!(acc.email_domain().as_deref(), Some("example.com"));
    }
}
