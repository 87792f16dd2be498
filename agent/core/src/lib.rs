//! mailmend's shared vocabulary: the account model, findings, actions, probe reports and the
//! plugin contracts that client adapters and diagnostics implement.
//!
//! Architecture invariant: this crate performs no I/O. Every type here is a value that can be
//! serialised into the audit log or across the dynamic-plugin ABI, so everything derives serde.

pub mod action;
pub mod credential;
pub mod discovery;
pub mod finding;
pub mod model;
pub mod plugin;
pub mod probe;
pub mod registry;

pub use action::{Action, ActionKind, EndpointChange};
pub use credential::{LoginOutcome, LoginReport, LoginRequest, NotAttempted, Secret, SenderCheck};
pub use discovery::{
    DiscoveredServer, DiscoveredSettings, DiscoveryLookup, DiscoveryMethod, DiscoverySource,
    LookupOutcome,
};
pub use finding::{Evidence, Finding, Severity};
pub use model::{
    Account, AccountId, AuthMethod, ClientKind, Endpoint, Home, Location, Protocol, Role, Security,
};
pub use plugin::{
    AdapterError, BoxFuture, ClientAdapter, Diagnostic, Discovery, Edit, FileEdit, PluginInfo,
    Prober,
};
pub use probe::{
    Capabilities, DnsOutcome, DnsReport, FirewallRule, FirewallVerdict, KerberosReport,
    KerberosTicket, ProbeReport, ProbeTarget, TcpOutcome, TlsFailure, TlsOutcome,
};
pub use registry::{Hive, RegPath, RegValue, RegValueEdit, Registry, RegistryEdit, RegistryError};
