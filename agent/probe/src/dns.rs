//! Name resolution through the system's resolver configuration, classified into [`DnsOutcome`].
//!
//! A fresh resolver is built for every lookup, from the configuration as it is at that moment:
//! `/etc/resolv.conf` (which `ip netns exec` bind-mounts per network namespace) and `/etc/hosts`
//! (`localhost` is answered locally as RFC 6761 asks). Nothing is cached between lookups, so a
//! verification after a fix (a new resolver, a flushed cache) sees fresh answers.

use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::xfer::Protocol as DnsProtocol;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::{ResolveError, ResolveErrorKind, Resolver};
use mailmend_core::DnsOutcome;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Where the resolver's name servers come from.
#[derive(Debug, Clone, Default)]
pub(crate) enum NameServers {
    /// The system configuration, read afresh for every lookup.
    #[default]
    System,
    /// These servers over UDP (and TCP after truncation), with the system's hosts file.
    Explicit(Vec<SocketAddr>),
}

/// How a lookup treats the hosts file and the address families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// As the system resolver: the hosts file first, IPv4 then IPv6.
    System,
    /// A question to the name servers only: no hosts file, and both A and AAAA, so that
    /// answers of different servers can be compared.
    Direct,
}

/// Resolves `host` to its addresses within `timeout`.
pub(crate) async fn resolve(
    servers: &NameServers,
    host: &str,
    timeout: Duration,
    mode: Mode,
) -> DnsOutcome {
    // Host names from configurations may be bracketed IPv6 literals or carry a trailing dot.
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return DnsOutcome::Resolved {
            addresses: vec![ip],
        };
    }
    if host.is_empty() {
        return DnsOutcome::Failed {
            detail: "empty host name".into(),
        };
    }

    let (resolver, config_problem) = self::resolver(servers, timeout, mode);
    let outcome = match tokio::time::timeout(timeout, resolver.lookup_ip(host)).await {
        Err(_) => DnsOutcome::ResolverUnreachable {
            detail: format!(
                "no answer from the name servers within {} ms",
                timeout.as_millis()
            ),
        },
        Ok(Ok(lookup)) => {
            let mut addresses: Vec<IpAddr> = Vec::new();
            for ip in lookup.iter() {
                if !addresses.contains(&ip) {
                    addresses.push(ip);
                }
            }
            if addresses.is_empty() {
                DnsOutcome::NoRecords
            } else {
                DnsOutcome::Resolved { addresses }
            }
        }
        Ok(Err(e)) => classify(&e),
    };
    match (outcome, config_problem) {
        (DnsOutcome::ResolverUnreachable { detail }, Some(problem)) => {
            DnsOutcome::ResolverUnreachable {
                detail: format!("{detail} ({problem})"),
            }
        }
        (outcome, _) => outcome,
    }
}

/// A fresh resolver without a cache, whose single attempts fit in `timeout`, and why the
/// system's configuration could not be read (when it could not: then only the hosts file
/// answers). Also used for the SRV lookups of settings discovery.
pub(crate) fn resolver(
    servers: &NameServers,
    timeout: Duration,
    mode: Mode,
) -> (Resolver<TokioConnectionProvider>, Option<String>) {
    let (config, mut opts, config_problem) = load_config(servers);
    // One attempt must fit in the step's time; retries happen only if time remains.
    opts.timeout = opts.timeout.min(timeout);
    opts.cache_size = 0;
    if mode == Mode::Direct {
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        opts.use_hosts_file = ResolveHosts::Never;
    } else {
        opts.use_hosts_file = ResolveHosts::Always;
    }
    let mut builder = Resolver::builder_with_config(config, TokioConnectionProvider::default());
    *builder.options_mut() = opts;
    (builder.build(), config_problem)
}

/// The resolver configuration, and why the system's could not be read (when it could not: then
/// only the hosts file answers).
fn load_config(servers: &NameServers) -> (ResolverConfig, ResolverOpts, Option<String>) {
    match servers {
        NameServers::Explicit(addrs) => {
            let mut config = ResolverConfig::new();
            for addr in addrs {
                config.add_name_server(NameServerConfig::new(*addr, DnsProtocol::Udp));
                config.add_name_server(NameServerConfig::new(*addr, DnsProtocol::Tcp));
            }
            (config, ResolverOpts::default(), None)
        }
        NameServers::System => system_config(),
    }
}

#[cfg(any(unix, windows))]
fn system_config() -> (ResolverConfig, ResolverOpts, Option<String>) {
    match hickory_resolver::system_conf::read_system_conf() {
        Ok((config, opts)) => (config, opts, None),
        Err(e) => {
            tracing::debug!(error = %e, "cannot read the system resolver configuration");
            (
                ResolverConfig::new(),
                ResolverOpts::default(),
                Some(format!(
                    "cannot read the system resolver configuration: {e}"
                )),
            )
        }
    }
}

#[cfg(not(any(unix, windows)))]
fn system_config() -> (ResolverConfig, ResolverOpts, Option<String>) {
    (
        ResolverConfig::new(),
        ResolverOpts::default(),
        Some("no system resolver configuration on this platform".into()),
    )
}

/// The name servers lookups through `servers` ask: the explicit ones, or those of
/// `/etc/resolv.conf` as it is now (inside `ip netns exec`, the namespace's own file).
pub(crate) fn configured_servers(servers: &NameServers) -> Vec<SocketAddr> {
    match servers {
        NameServers::Explicit(addrs) => addrs.clone(),
        NameServers::System => system_servers(),
    }
}

#[cfg(unix)]
fn system_servers() -> Vec<SocketAddr> {
    match std::fs::read_to_string("/etc/resolv.conf") {
        Ok(text) => crate::resolv::name_servers(&text),
        Err(e) => {
            tracing::debug!(error = %e, "cannot read /etc/resolv.conf");
            Vec::new()
        }
    }
}

#[cfg(windows)]
fn system_servers() -> Vec<SocketAddr> {
    match hickory_resolver::system_conf::read_system_conf() {
        Ok((config, _)) => {
            let mut servers: Vec<SocketAddr> = Vec::new();
            for ns in config.name_servers() {
                if !servers.contains(&ns.socket_addr) {
                    servers.push(ns.socket_addr);
                }
            }
            servers
        }
        Err(_) => Vec::new(),
    }
}

#[cfg(not(any(unix, windows)))]
fn system_servers() -> Vec<SocketAddr> {
    Vec::new()
}

/// Maps a resolver error to what it means for the user.
pub(crate) fn classify(e: &ResolveError) -> DnsOutcome {
    let proto = match e.kind() {
        ResolveErrorKind::Proto(p) => p,
        _ => {
            return DnsOutcome::Failed {
                detail: e.to_string(),
            }
        }
    };
    match proto.kind() {
        ProtoErrorKind::NoRecordsFound { response_code, .. } => match *response_code {
            ResponseCode::NXDomain => DnsOutcome::NxDomain,
            ResponseCode::NoError => DnsOutcome::NoRecords,
            // A server that refuses to answer us is, for this machine, no resolver at all.
            ResponseCode::Refused => DnsOutcome::ResolverUnreachable {
                detail: "the name servers refused the query".into(),
            },
            code => DnsOutcome::Failed {
                detail: format!("name server answered {code}"),
            },
        },
        ProtoErrorKind::Timeout => DnsOutcome::ResolverUnreachable {
            detail: "the name servers did not answer".into(),
        },
        ProtoErrorKind::NoConnections => DnsOutcome::ResolverUnreachable {
            detail: "no name server is configured or reachable".into(),
        },
        ProtoErrorKind::RequestRefused => DnsOutcome::ResolverUnreachable {
            detail: "the name servers refused the query".into(),
        },
        ProtoErrorKind::Io(io) => DnsOutcome::ResolverUnreachable {
            detail: format!("cannot reach the name servers: {io}"),
        },
        ProtoErrorKind::Busy => DnsOutcome::ResolverUnreachable {
            detail: "the name servers are busy".into(),
        },
        _ => DnsOutcome::Failed {
            detail: proto.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ip_literals_resolve_to_themselves() {
        let t = Duration::from_secs(1);
        assert_eq!(
            resolve(&NameServers::System, "[::1]", t, Mode::System).await,
            DnsOutcome::Resolved {
                addresses: vec!["::1".parse().unwrap()]
            }
        );
        assert_eq!(
            resolve(&NameServers::System, "127.0.0.1", t, Mode::System).await,
            DnsOutcome::Resolved {
                addresses: vec!["127.0.0.1".parse().unwrap()]
            }
        );
    }

    #[tokio::test]
    async fn empty_host_is_a_failure_not_a_lookup() {
        assert!(matches!(
            resolve(
                &NameServers::System,
                "",
                Duration::from_secs(1),
                Mode::System
            )
            .await,
            DnsOutcome::Failed { .. }
        ));
    }
}
