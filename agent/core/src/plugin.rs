//! The contracts plugins implement: client adapters read and change a client's configuration,
//! diagnostics turn probe results into findings, and a prober gives diagnostics the network.
//!
//! Architecture invariant: no trait here can change the system. An adapter only *plans* edits
//! (old bytes → new bytes); the agent's executor writes them, after the policy allowed it.

use crate::action::EndpointChange;
use crate::credential::{self, LoginReport, NotAttempted, Secret};
use crate::discovery::DiscoveredSettings;
use crate::finding::Finding;
use crate::model::{Account, ClientKind, Home, Role};
use crate::probe::{
    DnsOutcome, DnsReport, FirewallVerdict, KerberosReport, ProbeReport, ProbeTarget,
};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;

/// A boxed future, so that the traits stay object-safe (`dyn Diagnostic`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Who a plugin is, for `plugins list` and for the audit record of every decision it caused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    /// `builtin`, or the SHA-256 of the dynamic library it was loaded from.
    pub origin: String,
}

impl PluginInfo {
    pub fn builtin(name: &str) -> PluginInfo {
        PluginInfo {
            name: name.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            origin: "builtin".to_string(),
        }
    }
}

/// The network as diagnostics see it. Implemented for real by `mailmend-probe`; unit tests of
/// pure diagnostic logic may use an in-memory fake.
pub trait Prober: Send + Sync {
    /// Resolves a host name through the system resolver.
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, DnsReport>;
    /// Resolves, connects, negotiates the target's security and reads the server's capabilities.
    fn probe<'a>(&'a self, target: &'a ProbeTarget) -> BoxFuture<'a, ProbeReport>;
    /// Probes every target concurrently; the reports come back in the order of `targets`.
    fn probe_all<'a>(&'a self, targets: &'a [ProbeTarget]) -> BoxFuture<'a, Vec<ProbeReport>>;

    /// The name servers the system resolver uses (from resolv.conf or the OS).
    fn system_name_servers(&self) -> Vec<SocketAddr> {
        Vec::new()
    }

    /// Resolves through one name server directly, bypassing every cache in between.
    fn resolve_via<'a>(&'a self, host: &'a str, server: SocketAddr) -> BoxFuture<'a, DnsReport> {
        let _ = server;
        Box::pin(async move { unsupported_dns(host) })
    }

    /// Resolves through the zone's authoritative servers, bypassing every cache: what the
    /// name "really" is now, to compare with what the local resolver says.
    fn resolve_authoritative<'a>(&'a self, host: &'a str) -> BoxFuture<'a, DnsReport> {
        Box::pin(async move { unsupported_dns(host) })
    }

    /// What the local firewall does with outbound TCP to `addr:port`.
    fn local_firewall<'a>(&'a self, addr: IpAddr, port: u16) -> BoxFuture<'a, FirewallVerdict> {
        let _ = (addr, port);
        Box::pin(async {
            FirewallVerdict::Unknown {
                detail: "this prober does not read the local firewall".to_string(),
            }
        })
    }

    /// The Kerberos tickets in an OS user's default credential cache.
    fn kerberos_tickets<'a>(&'a self, os_user: &'a str) -> BoxFuture<'a, KerberosReport> {
        Box::pin(async move {
            KerberosReport {
                os_user: os_user.to_string(),
                checked_at: String::new(),
                ccache: None,
                principal: None,
                tickets: Vec::new(),
                error: Some("this prober does not read kerberos caches".to_string()),
            }
        })
    }

    /// What the email domain publishes about its mail servers: RFC 6186/8314 SRV records,
    /// autoconfig and Autodiscover over HTTPS, looked up concurrently and within a bounded
    /// time. `email` is the full address, which autoconfig and Autodiscover ask for; without
    /// it Autodiscover is not asked. Nothing found is an empty result, never an error.
    fn discover_settings<'a>(
        &'a self,
        email_domain: &'a str,
        email: Option<&'a str>,
    ) -> BoxFuture<'a, DiscoveredSettings> {
        let _ = email;
        Box::pin(async move { DiscoveredSettings::empty(email_domain) })
    }

    /// Logs in once to `role` of `account` with the password its mail client stores, when the
    /// agent's policy and its lockout rules allow it, and says what the server answered. The
    /// password never passes through the caller: the implementation fetches it, sends it only
    /// over a verified encrypted connection, and reports no more than the translated reply.
    fn try_login<'a>(&'a self, account: &'a Account, role: Role) -> BoxFuture<'a, LoginReport> {
        Box::pin(async move {
            let target = match account.endpoint(role) {
                Some(endpoint) => credential::target_of(endpoint),
                None => ProbeTarget {
                    protocol: crate::model::Protocol::Imap,
                    host: String::new(),
                    port: 0,
                    security: crate::model::Security::None,
                },
            };
            LoginReport::not_attempted(target, NotAttempted::Unsupported)
        })
    }
}

fn unsupported_dns(host: &str) -> DnsReport {
    DnsReport {
        host: host.to_string(),
        outcome: DnsOutcome::Failed {
            detail: "this prober cannot query a specific name server".to_string(),
        },
        elapsed_ms: 0,
    }
}

/// A diagnostic: takes an account and the network, returns findings with proposed fixes.
pub trait Diagnostic: Send + Sync {
    fn info(&self) -> PluginInfo;
    fn diagnose<'a>(
        &'a self,
        account: &'a Account,
        prober: &'a dyn Prober,
    ) -> BoxFuture<'a, Vec<Finding>>;
}

/// What an adapter found in one home: accounts, and findings about configuration it could not
/// read (`config.unreadable`), which are data, never a crash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovery {
    pub accounts: Vec<Account>,
    pub findings: Vec<Finding>,
}

/// One planned change of a file: the exact bytes before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEdit {
    pub path: PathBuf,
    pub before: Vec<u8>,
    pub after: Vec<u8>,
}

/// A planned change to a client's configuration store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "store", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Edit {
    File(FileEdit),
    /// Values of one registry key (Outlook for Windows), each with its exact before and after.
    Registry(crate::registry::RegistryEdit),
}

/// A client adapter: discovers a client's accounts and plans changes to its configuration.
pub trait ClientAdapter: Send + Sync {
    fn info(&self) -> PluginInfo;
    fn client(&self) -> ClientKind;
    /// Finds every account of this client in one home.
    fn discover(&self, home: &Home) -> Discovery;
    /// The files and directories whose changes may change what `discover` finds.
    fn config_paths(&self, home: &Home) -> Vec<PathBuf>;
    /// Whether the client is running with this account's configuration open, so that a write
    /// now would race it.
    fn is_running(&self, account: &Account) -> bool;
    /// Plans the edits that make `role` of `account` take the values in `change`, touching
    /// nothing else.
    fn plan(
        &self,
        account: &Account,
        role: Role,
        change: &EndpointChange,
    ) -> Result<Vec<Edit>, AdapterError>;

    /// The password the client itself stores for `role` of `account`, read afresh from its
    /// configuration, when it stores one in the file (msmtp `password`, mbsync `Pass`, a URL
    /// password, mutt `imap_pass`). `None` when the client gets it any other way: a command
    /// (`passwordeval`, `PassCmd`, backticks), which is never run, a keyring, or a prompt.
    /// Called only when the policy configures the client as the credential source.
    fn credential(&self, account: &Account, role: Role) -> Option<Secret> {
        let _ = (account, role);
        None
    }
}

/// Why an adapter could not read or plan.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdapterError {
    /// The configuration file has a syntax error; the user or another program wrote it badly.
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// The account is no longer where discovery found it (the user removed or renamed it).
    #[error("account {key} not found in {path}")]
    AccountGone { path: PathBuf, key: String },
    /// The file could not be read; permissions or a vanished file are the usual causes.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The requested change cannot be expressed in this client's configuration.
    #[error("unsupported change: {0}")]
    Unsupported(String),
}
