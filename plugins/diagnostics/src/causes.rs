//! Causes of a connection failure that lie on this computer rather than at the server, shared
//! by the diagnostics so that each root cause is reported by exactly one of them.
//!
//! Ownership, for an endpoint whose configured probe failed at the TCP level (timed out,
//! refused, no route) although its name resolved, in this order:
//! 1. a local firewall rule drops or rejects it: the firewall diagnostic reports
//!    `firewall.blocked_locally`;
//! 2. otherwise, the system resolver's answer is stale (the authoritative servers give other
//!    addresses, and one of those answers): the DNS diagnostic reports `dns.stale_cache`;
//! 3. otherwise the connectivity diagnostic explains it (`settings.*`, `network.*`, including
//!    `network.blocked_upstream`).
//!
//! Each diagnostic runs the same checks, in the same order, and stays silent when an earlier
//! cause holds.
//!
//! What a server answers to a login (`auth.failed`, `auth.locked`, `auth.password_expired`,
//! `auth.app_password_required`, `auth.encryption_required`, `auth.temporary_failure`,
//! `smtp.sender_rejected`) is the credentials diagnostic's, and only for an endpoint that works
//! as configured over an encrypted connection ([`login_owned`]); every failure before that is
//! one of the causes above. What a server says before any login (`auth.method_not_offered`,
//! `security.plaintext_password`, and `auth.encryption_required` when the capabilities read
//! after TLS already refuse every password login: IMAP `LOGINDISABLED` with no password
//! mechanism, where the credentials diagnostic's login is never attempted) stays the
//! connectivity diagnostic's. Name failures are split the same way: NXDOMAIN, no records and other lookup
//! failures are the connectivity diagnostic's; a resolver that does not answer is the DNS
//! diagnostic's (`dns.resolver_unreachable`).
//!
//! Settings discovery (SRV, autoconfig, Autodiscover) is the connectivity diagnostic's alone: a
//! moved server it finds is `settings.wrong_host` (`dns.nxdomain` when the old name is gone),
//! and an Autodiscover that wants a login is `autodiscover.unauthorized`, reported once per
//! account (no role) and only when the lookup was needed and nothing named a working server;
//! the endpoint's own failure keeps its own code, since the login wall explains why no new
//! server was found, not why the old one fails. Exchange endpoints are the connectivity
//! diagnostic's too (their server comes from Autodiscover); the checks below skip them.

use crate::join::join_all;
use mailmend_core::{
    Account, DnsOutcome, DnsReport, Endpoint, FirewallRule, FirewallVerdict, ProbeReport,
    ProbeTarget, Prober, Protocol, Role, TcpOutcome,
};
use std::net::IpAddr;

/// How many of a name's addresses are checked against the firewall, at most.
const MAX_FIREWALL_ADDRESSES: usize = 8;

/// How many new authoritative addresses are probed, at most.
const MAX_FRESH_ADDRESSES: usize = 4;

/// The endpoints the network diagnostics check, with their configured targets. Exchange
/// endpoints are skipped: their server is found through Autodiscover, which is not spoken yet.
pub fn endpoints(account: &Account) -> Vec<(Role, &Endpoint, ProbeTarget)> {
    [Role::Incoming, Role::Outgoing]
        .into_iter()
        .filter_map(|role| account.endpoint(role).map(|ep| (role, ep)))
        .filter(|(_, ep)| ep.protocol != Protocol::Exchange)
        .map(|(role, ep)| {
            let target = ProbeTarget {
                protocol: ep.protocol,
                host: ep.host.clone(),
                port: ep.port,
                security: ep.security,
            };
            (role, ep, target)
        })
        .collect()
}

/// Whether a login to this probe's target is the credentials diagnostic's to judge: the
/// endpoint works as configured and is encrypted, so no connectivity cause explains anything.
pub fn login_owned(report: &ProbeReport) -> bool {
    report.is_healthy() && report.target.security.is_encrypted()
}

/// The addresses a probe's name resolved to.
pub fn resolved(report: &ProbeReport) -> &[IpAddr] {
    match &report.dns {
        DnsOutcome::Resolved { addresses } => addresses,
        _ => &[],
    }
}

/// Whether the probe resolved its name but got no TCP connection: where a firewall or a stale
/// address can be the cause.
pub fn failed_at_tcp(report: &ProbeReport) -> bool {
    !resolved(report).is_empty()
        && matches!(
            report.tcp,
            TcpOutcome::TimedOut { .. }
                | TcpOutcome::Refused { .. }
                | TcpOutcome::Unreachable { .. }
        )
}

/// A local firewall rule blocking the configured target.
#[derive(Debug, Clone)]
pub struct LocalBlock {
    pub backend: String,
    /// The first blocking rule found.
    pub rule: FirewallRule,
    /// Every resolved address some local rule blocks.
    pub addresses: Vec<IpAddr>,
}

/// Asks the local firewall about each resolved address of a probe that failed at TCP level.
pub async fn local_block(prober: &dyn Prober, report: &ProbeReport) -> Option<LocalBlock> {
    if !failed_at_tcp(report) {
        return None;
    }
    let port = report.target.port;
    let addresses: Vec<IpAddr> = resolved(report)
        .iter()
        .copied()
        .take(MAX_FIREWALL_ADDRESSES)
        .collect();
    let verdicts = join_all(
        addresses
            .iter()
            .map(|addr| prober.local_firewall(*addr, port))
            .collect(),
    )
    .await;
    let mut block: Option<LocalBlock> = None;
    for (addr, verdict) in addresses.iter().zip(verdicts) {
        if let FirewallVerdict::Blocked { backend, rule } = verdict {
            match &mut block {
                Some(block) => block.addresses.push(*addr),
                None => {
                    block = Some(LocalBlock {
                        backend,
                        rule,
                        addresses: vec![*addr],
                    })
                }
            }
        }
    }
    block
}

/// The system resolver answers with addresses the zone's authoritative servers no longer give,
/// and one of the authoritative addresses accepts connections.
#[derive(Debug, Clone)]
pub struct StaleCache {
    pub system: Vec<IpAddr>,
    pub authoritative: DnsReport,
    /// The probe of a new address that connected (its target's host is the address).
    pub working: ProbeReport,
}

/// Compares the system's answer with the authoritative one for a probe that failed at TCP
/// level, and probes the new addresses (as IP-literal targets with the configured port and
/// security; a TCP connection is what counts, since a certificate never names an address).
pub async fn stale_cache(prober: &dyn Prober, report: &ProbeReport) -> Option<StaleCache> {
    if !failed_at_tcp(report) {
        return None;
    }
    let system = resolved(report).to_vec();
    let authoritative = prober.resolve_authoritative(&report.target.host).await;
    let DnsOutcome::Resolved { addresses: fresh } = &authoritative.outcome else {
        return None;
    };
    if system.iter().all(|a| fresh.contains(a)) {
        return None;
    }
    let targets: Vec<ProbeTarget> = fresh
        .iter()
        .filter(|a| !system.contains(a))
        .take(MAX_FRESH_ADDRESSES)
        .map(|a| ProbeTarget {
            host: a.to_string(),
            ..report.target.clone()
        })
        .collect();
    if targets.is_empty() {
        return None;
    }
    let reports = prober.probe_all(&targets).await;
    let working = reports.into_iter().find(|r| r.tcp.is_connected())?;
    Some(StaleCache {
        system,
        authoritative,
        working,
    })
}

/// Whether a cause outside the connectivity diagnostic's remit explains this failure (see the
/// module documentation for the order).
pub async fn explained_elsewhere(prober: &dyn Prober, report: &ProbeReport) -> bool {
    if !failed_at_tcp(report) {
        return false;
    }
    local_block(prober, report).await.is_some() || stale_cache(prober, report).await.is_some()
}
