//! Results of network probes, as values: what diagnostics reason about and what the audit log
//! keeps as evidence. The probing itself lives in `mailmend-probe`.

use crate::model::{Protocol, Security};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// One server to probe: protocol, host, port and the security to negotiate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeTarget {
    pub protocol: Protocol,
    pub host: String,
    pub port: u16,
    pub security: Security,
}

impl fmt::Display for ProbeTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}:{} ({})",
            self.protocol, self.host, self.port, self.security
        )
    }
}

/// How a name resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case", deny_unknown_fields)]
pub enum DnsOutcome {
    Resolved {
        addresses: Vec<IpAddr>,
    },
    /// The name does not exist (NXDOMAIN).
    NxDomain,
    /// The name exists but has no address records.
    NoRecords,
    /// No resolver answered (down, or port 53 blocked).
    ResolverUnreachable {
        detail: String,
    },
    /// Some other failure (SERVFAIL, malformed answer).
    Failed {
        detail: String,
    },
}

/// A name's resolution as the system resolver sees it, with the time it took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsReport {
    pub host: String,
    pub outcome: DnsOutcome,
    pub elapsed_ms: u64,
}

/// The outcome of a TCP connect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case", deny_unknown_fields)]
pub enum TcpOutcome {
    Connected {
        address: SocketAddr,
    },
    /// The host answered with a reset: nothing listens, or a REJECT rule.
    Refused {
        address: SocketAddr,
    },
    /// No answer within the connect timeout: a DROP rule on the way, or the host is down.
    TimedOut {
        address: SocketAddr,
    },
    /// No route to the host or network.
    Unreachable {
        address: SocketAddr,
        detail: String,
    },
    /// The name did not resolve, so nothing was attempted.
    NotResolved,
    Failed {
        detail: String,
    },
}

impl TcpOutcome {
    pub fn is_connected(&self) -> bool {
        matches!(self, TcpOutcome::Connected { .. })
    }
}

/// Why a TLS handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case", deny_unknown_fields)]
pub enum TlsFailure {
    CertificateExpired {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        not_after: Option<String>,
    },
    CertificateNotYetValid {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        not_before: Option<String>,
    },
    SelfSigned,
    UntrustedIssuer {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        issuer: Option<String>,
    },
    IncompleteChain,
    NameMismatch {
        /// The names the certificate is valid for.
        presented: Vec<String>,
    },
    /// No common protocol version or cipher suite.
    ProtocolMismatch {
        detail: String,
    },
    /// The server did not speak TLS (a plaintext banner where a handshake was expected).
    NotTls {
        detail: String,
    },
    /// STARTTLS was not offered or was refused by the server.
    StartTlsUnavailable {
        detail: String,
    },
    Other {
        detail: String,
    },
}

/// The outcome of the TLS step, when one was attempted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case", deny_unknown_fields)]
pub enum TlsOutcome {
    Established {
        version: String,
        /// The peer certificate's expiry, RFC 3339.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        not_after: Option<String>,
    },
    Failed {
        failure: TlsFailure,
    },
}

/// What a server said it supports after the greeting (and after TLS, when TLS was negotiated).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// The first line the server sent, truncated.
    pub greeting: String,
    /// Capability words (IMAP CAPABILITY, POP3 CAPA, SMTP EHLO keywords), upper-cased.
    pub words: Vec<String>,
    /// SASL mechanisms offered, upper-cased.
    pub auth_mechanisms: Vec<String>,
    pub starttls: bool,
    /// IMAP LOGINDISABLED: no plaintext LOGIN on this connection.
    pub login_disabled: bool,
}

/// Everything one probe of one target learnt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeReport {
    pub target: ProbeTarget,
    pub dns: DnsOutcome,
    pub tcp: TcpOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsOutcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    /// A protocol-level problem: the server spoke something unexpected or too much, too slowly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_error: Option<String>,
    pub elapsed_ms: u64,
}

impl ProbeReport {
    /// Whether the target works as configured: connected, TLS (if any) established, and the
    /// server greeted in its protocol.
    pub fn is_healthy(&self) -> bool {
        self.tcp.is_connected()
            && !matches!(self.tls, Some(TlsOutcome::Failed { .. }))
            && self.capabilities.is_some()
            && self.protocol_error.is_none()
    }
}

/// What the local firewall does with outbound TCP to one address and port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case", deny_unknown_fields)]
pub enum FirewallVerdict {
    /// No local rule drops or rejects this traffic.
    Allowed { backend: String },
    /// A local rule drops or rejects it.
    Blocked { backend: String, rule: FirewallRule },
    /// The firewall could not be read (no tool, no permission); nothing is concluded.
    Unknown { detail: String },
}

/// A local firewall rule, as found in the ruleset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirewallRule {
    /// e.g. `inet`, `ip`, `ip6` (nftables), or `iptables`.
    pub family: String,
    pub table: String,
    pub chain: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<u64>,
    /// `drop` or `reject`.
    pub action: String,
    /// The rule as the firewall tool prints it, for the audit evidence.
    pub text: String,
}

/// One Kerberos ticket from a credential cache. Times are RFC 3339, UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KerberosTicket {
    pub server: String,
    pub starts: String,
    pub expires: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_until: Option<String>,
    pub renewable: bool,
}

/// A user's Kerberos credential cache as seen now. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KerberosReport {
    pub os_user: String,
    /// When the cache was read (RFC 3339, UTC); expiry is judged against this.
    pub checked_at: String,
    /// The cache name, e.g. `FILE:/tmp/krb5cc_1000`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ccache: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(default)]
    pub tickets: Vec<KerberosTicket>,
    /// Why the cache could not be read, when it could not (none, unreadable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
