//! The DNS diagnostic: name servers that do not answer, and a local cache still giving a moved
//! server's old address.
//!
//! Rules, and what they cost:
//! - Every endpoint's configured target is probed once, all at once (one `probe_all`).
//! - Name servers are compared only when there are two or more of them, or when the system
//!   lookup of an endpoint found no resolver: one `resolve_via` per configured server, all at
//!   once, for the account's first host name. A dead server beside a live one is a Warning
//!   (mail works, lookups wait for the dead one first); none answering is an Error.
//! - The authoritative answer is asked only for an endpoint whose probe failed at the TCP level
//!   (timed out, refused, no route): a healthy endpoint is never looked up twice, even though a
//!   stale cache can still "work" while the old server lives on. That endpoint first gets the
//!   local firewall check, which takes precedence (see `causes`).
//!
//! A healthy account with one name server costs one probe per endpoint and nothing else.

use crate::causes::{self, StaleCache};
use crate::codes;
use crate::join::join_all;
use crate::text::{self, protocol_name};
use mailmend_core::{
    Account, Action, BoxFuture, Diagnostic, DnsOutcome, DnsReport, Evidence, Finding, PluginInfo,
    ProbeReport, Prober, Role, Severity,
};
use std::net::{IpAddr, SocketAddr};

/// Whether the DNS answers a mail client gets are right, and whether its resolvers answer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Dns;

impl Diagnostic for Dns {
    fn info(&self) -> PluginInfo {
        PluginInfo::builtin("dns")
    }

    fn diagnose<'a>(
        &'a self,
        account: &'a Account,
        prober: &'a dyn Prober,
    ) -> BoxFuture<'a, Vec<Finding>> {
        Box::pin(async move {
            let endpoints = causes::endpoints(account);
            if endpoints.is_empty() {
                return Vec::new();
            }
            let targets: Vec<_> = endpoints.iter().map(|(_, _, t)| t.clone()).collect();
            let reports = prober.probe_all(&targets).await;
            let mut findings = resolvers(account, prober, &reports).await;
            let stale = join_all(
                endpoints
                    .iter()
                    .zip(&reports)
                    .map(|((role, _, _), report)| {
                        let check: BoxFuture<'_, Option<Finding>> =
                            Box::pin(stale_cache(account, *role, prober, report));
                        check
                    })
                    .collect(),
            )
            .await;
            findings.extend(stale.into_iter().flatten());
            findings
        })
    }
}

fn is_ip_literal(host: &str) -> bool {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok()
}

fn answered(outcome: &DnsOutcome) -> bool {
    !matches!(outcome, DnsOutcome::ResolverUnreachable { .. })
}

fn server_evidence(server: SocketAddr, report: &DnsReport) -> Evidence {
    let mut e = text::dns_evidence(report);
    e.probe = "dns.server".into();
    e.target = format!("{server} ({})", report.host);
    e
}

/// Checks the configured name servers, when that is worth its cost (see the module rules).
async fn resolvers(
    account: &Account,
    prober: &dyn Prober,
    reports: &[ProbeReport],
) -> Vec<Finding> {
    let Some(host) = reports
        .iter()
        .map(|r| r.target.host.as_str())
        .find(|h| !is_ip_literal(h))
    else {
        return Vec::new();
    };
    let failed_lookup = reports
        .iter()
        .find(|r| matches!(r.dns, DnsOutcome::ResolverUnreachable { .. }));
    let servers = prober.system_name_servers();
    if servers.len() < 2 && failed_lookup.is_none() {
        return Vec::new();
    }
    let via = join_all(
        servers
            .iter()
            .map(|s| prober.resolve_via(host, *s))
            .collect(),
    )
    .await;
    let dead: Vec<(SocketAddr, &DnsReport)> = servers
        .iter()
        .copied()
        .zip(&via)
        .filter(|(_, r)| !answered(&r.outcome))
        .collect();
    let alive: Vec<(SocketAddr, &DnsReport)> = servers
        .iter()
        .copied()
        .zip(&via)
        .filter(|(_, r)| answered(&r.outcome))
        .collect();
    let list = |servers: &[(SocketAddr, &DnsReport)]| {
        servers
            .iter()
            .map(|(s, _)| s.ip().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let code = codes::DNS_RESOLVER_UNREACHABLE;
    let mut evidence: Vec<Evidence> = servers
        .iter()
        .zip(&via)
        .map(|(s, r)| server_evidence(*s, r))
        .collect();

    let Some(failed) = failed_lookup else {
        // The system lookups worked: only a dead server beside a live one is worth a word.
        if dead.is_empty() || alive.is_empty() {
            return Vec::new();
        }
        let summary = format!(
            "This computer's DNS server{} {} {} not answer, while {} {}; name lookups wait for the dead one first",
            if dead.len() > 1 { "s" } else { "" },
            list(&dead),
            if dead.len() > 1 { "do" } else { "does" },
            list(&alive),
            if alive.len() > 1 { "do" } else { "does" },
        );
        let mut finding = Finding::new(code, Severity::Warning, account.id.clone(), None, summary);
        finding.evidence = evidence;
        return vec![finding];
    };

    evidence.insert(0, text::evidence(failed));
    let what = format!(
        "the {} server {}",
        protocol_name(failed.target.protocol),
        failed.target.host
    );
    if !alive.is_empty() {
        // The servers answer when asked one by one: the failure came and went, or the system
        // resolver is set up differently from what its configuration says.
        let summary = format!(
            "Looking up {what} found no DNS server answering, although {} answer{} now",
            list(&alive),
            if alive.len() > 1 { "" } else { "s" }
        );
        let mut finding = Finding::new(code, Severity::Error, account.id.clone(), None, summary);
        finding.evidence = evidence;
        return vec![finding];
    }
    let configured = if servers.is_empty() {
        "No DNS server is configured on this computer".to_string()
    } else {
        format!(
            "None of this computer's DNS servers ({}) answers",
            list(&dead)
        )
    };
    let authoritative = prober.resolve_authoritative(host).await;
    evidence.push({
        let mut e = text::dns_evidence(&authoritative);
        e.probe = "dns.authoritative".into();
        e
    });
    if answered(&authoritative.outcome) {
        let summary = format!(
            "{configured}, so {what} cannot be found, although the domain's own DNS servers are reachable"
        );
        let message = format!(
            "{summary}; check the VPN or network connection, or ask IT to fix the DNS settings"
        );
        let mut finding = Finding::new(code, Severity::Error, account.id.clone(), None, summary);
        finding.evidence = evidence;
        return vec![finding.proposing(Action::NotifyUser {
            account: account.id.clone(),
            problem: code.to_string(),
            message,
        })];
    }
    let summary = format!(
        "{configured}, and the domain's own DNS servers cannot be reached either: this computer is probably offline"
    );
    let mut finding = Finding::new(code, Severity::Error, account.id.clone(), None, summary);
    finding.evidence = evidence;
    vec![finding]
}

/// `dns.stale_cache` for one endpoint, unless a local firewall rule explains its failure.
async fn stale_cache(
    account: &Account,
    role: Role,
    prober: &dyn Prober,
    report: &ProbeReport,
) -> Option<Finding> {
    if !causes::failed_at_tcp(report) {
        return None;
    }
    if causes::local_block(prober, report).await.is_some() {
        return None;
    }
    let StaleCache {
        system,
        authoritative,
        working,
    } = causes::stale_cache(prober, report).await?;
    let join = |a: &[IpAddr]| {
        a.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let fresh = match &authoritative.outcome {
        DnsOutcome::Resolved { addresses } => join(addresses),
        _ => String::new(),
    };
    let host = &report.target.host;
    let summary = format!(
        "This computer's DNS cache still has the {} server {host} at {}, which does not answer; the domain's DNS servers now say {fresh}, and {} answers on port {}",
        protocol_name(report.target.protocol),
        join(&system),
        working.target.host,
        working.target.port,
    );
    let mut authoritative_evidence = text::dns_evidence(&authoritative);
    authoritative_evidence.probe = "dns.authoritative".into();
    let mut working_evidence = text::evidence(&working);
    if working.tcp.is_connected() && !working.is_healthy() {
        // A certificate never names an address, so only the connection itself counts here.
        working_evidence.result = format!("connected ({})", working_evidence.result);
    }
    Some(
        Finding::new(
            codes::DNS_STALE_CACHE,
            Severity::Error,
            account.id.clone(),
            Some(role),
            summary,
        )
        .with_evidence(text::evidence(report))
        .with_evidence(authoritative_evidence)
        .with_evidence(working_evidence)
        .proposing(Action::FlushDns { host: host.clone() }),
    )
}
