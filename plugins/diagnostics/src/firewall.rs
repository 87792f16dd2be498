//! The firewall diagnostic: a rule of this computer's own firewall that blocks the configured
//! server, with a proposed exception.
//!
//! Each endpoint's configured target is probed once (all at once); only a target that failed
//! at the TCP level (timed out, refused, no route) costs a look at the local firewall, one per
//! resolved address. Upstream blocking (`network.blocked_upstream`) stays the connectivity
//! diagnostic's, which probes the other ports anyway; see `causes` for who owns what.

use crate::causes;
use crate::codes;
use crate::join::join_all;
use crate::text::{self, client_name, protocol_name};
use mailmend_core::{
    Account, Action, BoxFuture, Diagnostic, Evidence, Finding, PluginInfo, ProbeReport, Prober,
    Role, Severity,
};

/// Whether this computer's firewall blocks an account's mail server.
#[derive(Debug, Clone, Copy, Default)]
pub struct Firewall;

impl Diagnostic for Firewall {
    fn info(&self) -> PluginInfo {
        PluginInfo::builtin("firewall")
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
            let checks = endpoints
                .iter()
                .zip(&reports)
                .map(|((role, _, _), report)| {
                    let check: BoxFuture<'_, Option<Finding>> =
                        Box::pin(blocked(account, *role, prober, report));
                    check
                })
                .collect();
            join_all(checks).await.into_iter().flatten().collect()
        })
    }
}

async fn blocked(
    account: &Account,
    role: Role,
    prober: &dyn Prober,
    report: &ProbeReport,
) -> Option<Finding> {
    let block = causes::local_block(prober, report).await?;
    let target = &report.target;
    let rule = &block.rule;
    let place = match rule.handle {
        Some(handle) => format!(
            "{} {} {} chain {}, handle {handle}",
            block.backend, rule.family, rule.table, rule.chain
        ),
        None => format!(
            "{} {} {} chain {}",
            block.backend, rule.family, rule.table, rule.chain
        ),
    };
    let summary = format!(
        "A firewall rule on this computer {}s {}'s {} connections to {} port {} ({place}: {})",
        if rule.action == "reject" {
            "reject"
        } else {
            "drop"
        },
        client_name(account.client),
        protocol_name(target.protocol),
        target.host,
        target.port,
        rule.text,
    );
    let addresses: Vec<String> = block.addresses.iter().map(ToString::to_string).collect();
    Some(
        Finding::new(
            codes::FIREWALL_BLOCKED_LOCALLY,
            Severity::Error,
            account.id.clone(),
            Some(role),
            summary,
        )
        .with_evidence(text::evidence(report))
        .with_evidence(Evidence::new(
            "firewall",
            format!("{} port {}", addresses.join(", "), target.port),
            format!("{} by {place}: {}", rule.action, rule.text),
        ))
        .proposing(Action::AddFirewallException {
            account: account.id.clone(),
            host: target.host.clone(),
            addresses: block.addresses.clone(),
            port: target.port,
        }),
    )
}
