//! The connectivity diagnostic: probes each endpoint as configured and, when it does not work,
//! finds the most specific cause (DNS, TLS, port and security, host, network) and a fix that never
//! trades security for connectivity.
//!
//! Probing budget: a healthy account costs one probe per endpoint, both endpoints at once. A
//! broken endpoint costs its configured probe plus one concurrent round of alternatives on the
//! same host, which ends as soon as its best pair is settled (see `matrix::settled`), with the
//! email domain's settings discovery (SRV, autoconfig, Autodiscover:
//! [`Prober::discover_settings`]) running alongside and dropped when the first round finds a fix
//! (when the configured port timed out, the round also probes the other protocols' ports of the
//! host, to tell a dropped port from a dead host without waiting for a second timeout); plus one
//! round on other hosts only when that round found nothing (the servers the
//! domain's records name, then the standard host names of the email domain), or typo candidates
//! and named servers (one concurrent resolve round and one `probe_all`), or the in-domain names a
//! mismatched certificate presents (one `probe_all`).
//! An endpoint that failed at the TCP level also costs the shared cause checks of
//! [`crate::causes`] (the local firewall for each address, one authoritative lookup, and one
//! `probe_all` of new addresses only when the answers differ); the same-host round runs
//! alongside them, so their round trips are not added to the search's, and is dropped when they
//! explain the failure.
//!
//! Exchange endpoints get their server from Autodiscover: the configured server and the ones
//! Autodiscover names are probed over TLS, and what they say is reported; nothing is rewritten,
//! since Outlook repeats Autodiscover itself.
//!
//! Ownership: a local firewall rule, a stale DNS cache and an unanswering resolver are reported
//! by the firewall and DNS diagnostics; this one then reports nothing for that endpoint, so
//! that every root cause gets exactly one code.

use crate::auth;
use crate::causes;
use crate::codes;
use crate::discovered;
use crate::hosts;
use crate::join::{alongside, join2, join_all, join_until, Started};
use crate::matrix;
use crate::text::{self, client_name, protocol_name, security_name};
use mailmend_core::{
    Account, Action, BoxFuture, Capabilities, Diagnostic, DiscoveredServer, DiscoveredSettings,
    DiscoveryLookup, DnsOutcome, Endpoint, EndpointChange, Evidence, Finding, PluginInfo,
    ProbeReport, ProbeTarget, Prober, Protocol, Role, Security, Severity, TcpOutcome, TlsFailure,
    TlsOutcome,
};
use std::sync::{Mutex, MutexGuard};

/// What one concurrent round on the configured host found (see `Check::same_host_round`).
struct Round<'a> {
    /// The same-host alternatives that finished, in matrix order: all of them, unless the best
    /// pair was settled before the slower ones ended.
    reports: Vec<ProbeReport>,
    /// Whether every alternative finished.
    complete: bool,
    /// The other protocols' ports of the host, probed only when the configured port timed out.
    liveness: Vec<ProbeReport>,
    /// The domain's published settings, looked up alongside.
    discovery: Started<'a, Option<DiscoveredSettings>>,
}

/// How many names of a mismatched certificate are tried as the server's new name, at most.
const MAX_CERTIFICATE_NAMES: usize = 8;

/// Whether each endpoint of an account works as configured, and what to change when it does not.
#[derive(Debug, Clone, Copy, Default)]
pub struct Connectivity;

impl Diagnostic for Connectivity {
    fn info(&self) -> PluginInfo {
        PluginInfo::builtin("connectivity")
    }

    fn diagnose<'a>(
        &'a self,
        account: &'a Account,
        prober: &'a dyn Prober,
    ) -> BoxFuture<'a, Vec<Finding>> {
        Box::pin(async move {
            let mut checks: Vec<BoxFuture<'a, Outcome>> = Vec::new();
            for role in [Role::Incoming, Role::Outgoing] {
                let Some(endpoint) = account.endpoint(role) else {
                    continue;
                };
                let check = Check::new(account, role, endpoint, prober);
                // Exchange servers are found through Autodiscover, not by guessing ports.
                if endpoint.protocol == Protocol::Exchange {
                    checks.push(Box::pin(check.exchange()));
                } else {
                    checks.push(Box::pin(check.run()));
                }
            }
            let mut findings = Vec::new();
            let mut trusted: Vec<String> = Vec::new();
            let mut walls: Vec<DiscoveryLookup> = Vec::new();
            for outcome in join_all(checks).await {
                findings.extend(outcome.findings);
                trusted.extend(outcome.notes.trusted_hosts);
                for wall in outcome.notes.walls {
                    if !walls.contains(&wall) {
                        walls.push(wall);
                    }
                }
            }
            if !walls.is_empty() {
                findings.push(autodiscover_wall(account, &walls));
            }
            guard(account, findings, &trusted)
        })
    }
}

/// One endpoint's findings, and what its settings discovery learnt.
struct Outcome {
    findings: Vec<Finding>,
    notes: Notes,
}

/// What a check learnt from the domain's published settings, beyond its findings.
#[derive(Debug, Default)]
struct Notes {
    /// Hosts the email domain's own SRV, autoconfig and Autodiscover records name: the guard
    /// lets proposals point there.
    trusted_hosts: Vec<String>,
    /// Autodiscover lookups that wanted a login, when the server had to be looked up and
    /// nothing named a working one.
    walls: Vec<DiscoveryLookup>,
}

/// The one `autodiscover.unauthorized` finding of an account.
fn autodiscover_wall(account: &Account, walls: &[DiscoveryLookup]) -> Finding {
    let domain = account.email_domain().unwrap_or_default();
    let first = &walls[0];
    let status = discovered::wall_status(first).unwrap_or(401);
    let summary = format!(
        "The Autodiscover service of {domain} at {} answers only after a login (HTTP {status}), so where the account's server is could not be read there; mailmend never sends a password to it",
        first.source.location
    );
    let mut finding = Finding::new(
        codes::AUTODISCOVER_UNAUTHORIZED,
        Severity::Warning,
        account.id.clone(),
        None,
        summary,
    );
    finding
        .evidence
        .extend(walls.iter().map(discovered::lookup_evidence));
    finding
}

/// Defence in depth: drops any proposal that would set plaintext, rewrite an Exchange endpoint
/// (Outlook takes its server from Autodiscover), or set a host outside the account's email
/// domain and the hosts that domain's own records named (`trusted`), whatever bug might have
/// produced it.
fn guard(account: &Account, mut findings: Vec<Finding>, trusted: &[String]) -> Vec<Finding> {
    let domain = account.email_domain();
    for finding in &mut findings {
        finding.proposed.retain(|action| {
            let Action::SetEndpoint { change, role, .. } = action else {
                return true;
            };
            let plaintext = change.security == Some(Security::None);
            let exchange = account
                .endpoint(*role)
                .is_some_and(|e| e.protocol == Protocol::Exchange);
            let foreign_host = change.host.as_deref().is_some_and(|host| {
                let named = trusted
                    .iter()
                    .any(|t| hosts::normalize(t) == hosts::normalize(host));
                !named
                    && !domain
                        .as_deref()
                        .is_some_and(|domain| hosts::in_domain(host, domain))
            });
            if plaintext || exchange || foreign_host {
                tracing::warn!(
                    code = %finding.code,
                    action = %action.describe(),
                    "dropping a proposal that would weaken security or leave the email domain"
                );
                return false;
            }
            true
        });
    }
    findings
}

/// One endpoint's check.
struct Check<'a> {
    account: &'a Account,
    role: Role,
    ep: &'a Endpoint,
    prober: &'a dyn Prober,
    configured: ProbeTarget,
    notes: Mutex<Notes>,
}

impl<'a> Check<'a> {
    fn new(account: &'a Account, role: Role, ep: &'a Endpoint, prober: &'a dyn Prober) -> Self {
        let configured = ProbeTarget {
            protocol: ep.protocol,
            host: ep.host.clone(),
            port: ep.port,
            security: ep.security,
        };
        Check {
            account,
            role,
            ep,
            prober,
            configured,
            notes: Mutex::new(Notes::default()),
        }
    }

    async fn run(self) -> Outcome {
        let report = self.prober.probe(&self.configured).await;
        let findings = if report.is_healthy() {
            self.healthy(report).await
        } else {
            self.broken(report).await
        };
        self.outcome(findings)
    }

    /// An Exchange endpoint: the configured server (when the account names one) and the ones
    /// the domain's Autodiscover (or autoconfig) names are probed over TLS. A working configured
    /// server, or a working named one for an account that names none, is healthy; a working
    /// named server other than the failing configured one is reported with a notification,
    /// since Outlook takes its server from Autodiscover and mailmend rewrites nothing here.
    async fn exchange(self) -> Outcome {
        let has_host = !self.host().trim().is_empty();
        let configured: BoxFuture<'_, Option<ProbeReport>> = if has_host {
            Box::pin(async { Some(self.prober.probe(&self.configured).await) })
        } else {
            Box::pin(async { None })
        };
        let (configured, settings) = join2(configured, Box::pin(self.discover())).await;
        if configured.as_ref().is_some_and(ProbeReport::is_healthy) {
            return self.outcome(Vec::new());
        }
        let named: Vec<&DiscoveredServer> = settings
            .as_ref()
            .map(|s| discovered::candidates(s, Protocol::Exchange))
            .unwrap_or_default();
        let mut targets: Vec<ProbeTarget> = Vec::new();
        for t in named.iter().map(|s| discovered::target(s)) {
            let is_configured = configured
                .as_ref()
                .is_some_and(|c| same_target(&c.target, &t));
            if !is_configured && !targets.iter().any(|x| same_target(x, &t)) {
                targets.push(t);
            }
        }
        let reports = if targets.is_empty() {
            Vec::new()
        } else {
            self.prober.probe_all(&targets).await
        };
        let mut evidence: Vec<Evidence> = configured.iter().map(text::evidence).collect();
        if let Some(working) = reports.iter().find(|r| r.is_healthy()) {
            let Some(configured) = &configured else {
                // Outlook finds this server through Autodiscover by itself.
                return self.outcome(Vec::new());
            };
            let origin = discovered::origin(&named, &working.target);
            let named_by = origin
                .map(discovered::source_phrase)
                .unwrap_or_else(|| "the domain's Autodiscover".to_string());
            let summary = format!(
                "{} is set to the Exchange server {}, which does not work; {named_by} names {}, which works",
                self.client(),
                self.host(),
                working.target.host,
            );
            let message = format!(
                "{summary}; restart {} so that it repeats Autodiscover, or ask IT — mailmend does not rewrite Exchange settings",
                self.client()
            );
            let mut finding = self
                .finding(codes::SETTINGS_WRONG_HOST, Severity::Error, summary)
                .with_evidence(text::evidence(configured));
            if let Some(origin) = origin {
                finding = finding.with_evidence(discovered::server_evidence(origin));
            }
            let finding = finding
                .with_evidence(text::evidence(working))
                .proposing(self.notify(codes::SETTINGS_WRONG_HOST, message));
            return self.outcome(vec![finding]);
        }
        evidence.extend(reports.iter().map(text::evidence));
        if let Some(settings) = &settings {
            evidence.extend(settings.lookups.iter().map(discovered::lookup_evidence));
        }
        self.note_walls(settings.as_ref());
        let tls_problem = reports.iter().find_map(|r| match &r.tls {
            Some(TlsOutcome::Failed { failure }) if r.tcp.is_connected() => {
                Some((r, failure.clone()))
            }
            _ => None,
        });
        let findings = match (&configured, tls_problem) {
            (Some(configured), _) => vec![self.exchange_failure(configured, evidence)],
            (None, Some((report, failure))) => vec![self.tls_finding(report, &failure, evidence)],
            (None, None) if !self.notes().walls.is_empty() => Vec::new(),
            (None, None) => {
                let domain = self.account.email_domain().unwrap_or_default();
                let summary = if reports.is_empty() {
                    format!(
                        "{} has no Exchange server set, and the Autodiscover service of {domain} names none",
                        self.client()
                    )
                } else {
                    format!(
                        "{} has no Exchange server set, and no server the Autodiscover service of {domain} names answers",
                        self.client()
                    )
                };
                let mut finding =
                    self.finding(codes::AUTODISCOVER_NOT_FOUND, Severity::Error, summary);
                finding.evidence = evidence;
                if finding.evidence.is_empty() {
                    finding.evidence.push(Evidence::new(
                        "discovery",
                        domain,
                        "no published setting names an Exchange server",
                    ));
                }
                vec![finding]
            }
        };
        self.outcome(findings)
    }

    /// Why the configured Exchange server fails, most specific layer first; never a change.
    fn exchange_failure(&self, configured: &ProbeReport, evidence: Vec<Evidence>) -> Finding {
        let dns = |code: &str, summary: String| {
            let mut f = self.finding(code, Severity::Error, summary);
            f.evidence = evidence.clone();
            f
        };
        match &configured.dns {
            DnsOutcome::NxDomain => {
                return dns(
                    codes::DNS_NXDOMAIN,
                    format!(
                        "The Exchange server name {} does not exist in DNS",
                        self.host()
                    ),
                )
            }
            DnsOutcome::NoRecords => {
                return dns(
                    codes::DNS_NO_RECORDS,
                    format!(
                        "The Exchange server name {} exists in DNS but has no address",
                        self.host()
                    ),
                )
            }
            DnsOutcome::ResolverUnreachable { detail } | DnsOutcome::Failed { detail } => {
                return dns(
                    codes::DNS_FAILED,
                    format!(
                        "Looking up the Exchange server {} in DNS failed ({detail})",
                        self.host()
                    ),
                )
            }
            DnsOutcome::Resolved { .. } => {}
        }
        if let Some(TlsOutcome::Failed { failure }) = &configured.tls {
            if configured.tcp.is_connected() {
                return self.tls_finding(configured, failure, evidence);
            }
        }
        // Other hosts are no "other ports" of this one: the failure is explained on its own.
        self.explain(configured, &[], &[], evidence)
    }

    fn outcome(self, findings: Vec<Finding>) -> Outcome {
        Outcome {
            findings,
            notes: self.notes.into_inner().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// The notes; a poisoned lock only means a panic elsewhere while pushing to a list.
    fn notes(&self) -> MutexGuard<'_, Notes> {
        self.notes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the email domain publishes, when the account has one; the hosts it names become
    /// trusted for this account's proposals.
    async fn discover(&self) -> Option<DiscoveredSettings> {
        let domain = self.account.email_domain()?;
        let settings = self
            .prober
            .discover_settings(&domain, self.account.email.as_deref())
            .await;
        self.notes().trusted_hosts.extend(settings.named_hosts());
        Some(settings)
    }

    /// Notes the login walls of a lookup that was needed but found nothing working.
    fn note_walls(&self, settings: Option<&DiscoveredSettings>) {
        if let Some(settings) = settings {
            self.notes().walls.extend(discovered::walls(settings));
        }
    }

    // ---- building blocks ----

    fn finding(&self, code: &str, severity: Severity, summary: String) -> Finding {
        Finding::new(
            code,
            severity,
            self.account.id.clone(),
            Some(self.role),
            summary,
        )
    }

    fn set_endpoint(&self, change: EndpointChange) -> Action {
        Action::SetEndpoint {
            account: self.account.id.clone(),
            role: self.role,
            change,
        }
    }

    fn notify(&self, problem: &str, message: String) -> Action {
        Action::NotifyUser {
            account: self.account.id.clone(),
            problem: problem.to_string(),
            message,
        }
    }

    fn client(&self) -> &'static str {
        client_name(self.account.client)
    }

    fn proto(&self) -> &'static str {
        protocol_name(self.ep.protocol)
    }

    fn host(&self) -> &str {
        &self.ep.host
    }

    // ---- the endpoint works: check how it logs in ----

    async fn healthy(&self, report: ProbeReport) -> Vec<Finding> {
        if !matrix::offers_needed_auth(&report, self.ep) {
            return self.smtp_without_auth(report).await;
        }
        let caps = report.capabilities.clone().unwrap_or_default();
        if !self.ep.security.is_encrypted() {
            if auth::sends_password_in_clear(&self.ep.auth, self.ep.protocol, &caps) {
                return self.plaintext_password(report).await;
            }
            return Vec::new();
        }
        // Before the method question: no method of the account's would help here.
        if auth::asks_for_encryption_over_tls(&self.ep.auth, &report) {
            return vec![self.encryption_required(&report, &caps)];
        }
        if auth::offered(&self.ep.auth, self.ep.protocol, &caps) == Some(false) {
            return vec![self.method_not_offered(&report, &caps)];
        }
        Vec::new()
    }

    /// The server asks for encryption on the verified TLS connection (IMAP `LOGINDISABLED`, no
    /// password mechanism): no client setting helps and no password is ever sent there, so the
    /// user is told to ask IT, whose server does not trust what terminates TLS in front of it.
    fn encryption_required(&self, configured: &ProbeReport, caps: &Capabilities) -> Finding {
        let code = codes::AUTH_ENCRYPTION_REQUIRED;
        let summary = format!(
            "The {} server {} answers LOGINDISABLED with no password login on the verified {} connection on port {}, as if it were unencrypted: {} cannot log in. Usually a TLS proxy or load balancer in front of the server that the server does not trust",
            self.proto(),
            self.host(),
            security_name(self.ep.security),
            self.ep.port,
            self.client(),
        );
        let message = format!(
            "The mail server {} refuses every login from {} on its encrypted connection. Please contact your IT helpdesk: the server must trust the TLS proxy in front of it (Dovecot: login_trusted_networks, or the PROXY protocol).",
            self.host(),
            self.client(),
        );
        self.finding(code, Severity::Error, summary)
            .with_evidence(text::evidence(configured))
            .with_evidence(Evidence::new(
                "imap.capability",
                text::target_text(&configured.target),
                format!("CAPABILITY {}", caps.words.join(" ")),
            ))
            .proposing(self.notify(code, message))
    }

    /// SMTP answers but offers no AUTH to an account that logs in: look for a submission port
    /// that does.
    async fn smtp_without_auth(&self, configured: ProbeReport) -> Vec<Finding> {
        let alternatives = matrix::same_host_alternatives(self.ep);
        let reports = self.prober.probe_all(&alternatives).await;
        if let Some(best) = matrix::best(&reports, self.ep) {
            let change = matrix::change_to(self.ep, &best.target);
            let summary = format!(
                "{} sends mail through SMTP port {} with {}, where the server {} does not accept logins; port {} with {} does",
                self.client(),
                self.ep.port,
                security_name(self.ep.security),
                self.host(),
                best.target.port,
                security_name(best.target.security),
            );
            return vec![self
                .finding(settings_code(&change), Severity::Error, summary)
                .with_evidence(text::evidence(&configured))
                .with_evidence(text::evidence(best))
                .proposing(self.set_endpoint(change))];
        }
        let summary = format!(
            "{} logs in to send mail, but the SMTP server {} offers no login on port {} and no other submission port works",
            self.client(),
            self.host(),
            self.ep.port,
        );
        let message = format!("{summary}; ask IT which server and port to use for sending mail");
        let mut finding = self
            .finding(codes::AUTH_METHOD_NOT_OFFERED, Severity::Warning, summary)
            .with_evidence(text::evidence(&configured));
        finding.evidence.extend(reports.iter().map(text::evidence));
        vec![finding.proposing(self.notify(codes::AUTH_METHOD_NOT_OFFERED, message))]
    }

    /// A cleartext password on a plaintext connection: propose the best encrypted pair the same
    /// host accepts, verified by probing it.
    async fn plaintext_password(&self, configured: ProbeReport) -> Vec<Finding> {
        let alternatives = matrix::same_host_alternatives(self.ep);
        let reports = self.prober.probe_all(&alternatives).await;
        let code = codes::SECURITY_PLAINTEXT_PASSWORD;
        let head = format!(
            "{} sends the {} password unencrypted to {} port {}",
            self.client(),
            self.proto(),
            self.host(),
            self.ep.port
        );
        if let Some(best) = matrix::best(&reports, self.ep) {
            let summary = format!(
                "{head}; the server also accepts {} on port {}",
                security_name(best.target.security),
                best.target.port
            );
            let change = matrix::change_to(self.ep, &best.target);
            return vec![self
                .finding(code, Severity::Error, summary)
                .with_evidence(text::evidence(&configured))
                .with_evidence(text::evidence(best))
                .proposing(self.set_endpoint(change))];
        }
        let summary = format!("{head}, and the server offers no encrypted connection");
        let message = format!("{summary}; ask IT to enable TLS on the server");
        let mut finding = self
            .finding(code, Severity::Error, summary)
            .with_evidence(text::evidence(&configured));
        finding.evidence.extend(reports.iter().map(text::evidence));
        vec![finding.proposing(self.notify(code, message))]
    }

    /// The configured authentication method is not offered on the encrypted connection.
    fn method_not_offered(&self, configured: &ProbeReport, caps: &Capabilities) -> Finding {
        let code = codes::AUTH_METHOD_NOT_OFFERED;
        let offers = if caps.auth_mechanisms.is_empty() {
            "no login mechanisms".to_string()
        } else {
            caps.auth_mechanisms.join(", ")
        };
        let summary = format!(
            "{} is set to log in to {} with {}, which the server does not offer; it offers {}",
            self.client(),
            self.host(),
            auth::method_name(&self.ep.auth),
            offers
        );
        let finding = self
            .finding(code, Severity::Warning, summary.clone())
            .with_evidence(text::evidence(configured));
        match auth::replacement(&self.ep.auth, self.ep.protocol, caps) {
            Some(method) => finding.proposing(self.set_endpoint(EndpointChange {
                auth: Some(method),
                ..Default::default()
            })),
            None => {
                let message = format!("{summary}; ask IT which login method to use");
                finding.proposing(self.notify(code, message))
            }
        }
    }

    // ---- the endpoint does not work: find the most specific cause ----

    async fn broken(&self, report: ProbeReport) -> Vec<Finding> {
        match &report.dns {
            DnsOutcome::Resolved { .. } => {}
            DnsOutcome::NxDomain => return self.nxdomain(report).await,
            DnsOutcome::NoRecords => {
                let summary = format!(
                    "The {} server name {} exists in DNS but has no address",
                    self.proto(),
                    self.host()
                );
                return vec![self.dns_finding(codes::DNS_NO_RECORDS, summary, &report)];
            }
            // The DNS diagnostic owns this: it can tell which name server is dead and whether
            // the rest of the network works.
            DnsOutcome::ResolverUnreachable { .. } => return Vec::new(),
            DnsOutcome::Failed { detail } => {
                let summary = format!(
                    "Looking up the {} server {} in DNS failed ({detail})",
                    self.proto(),
                    self.host()
                );
                return vec![self.dns_finding(codes::DNS_FAILED, summary, &report)];
            }
        }
        // A local firewall rule or a stale DNS cache is reported by the firewall or the DNS
        // diagnostic; a settings change here would only hide it. Those checks cost round trips
        // of their own (an authoritative lookup), so the same-host round starts alongside them
        // and is dropped, probes cancelled, when they explain the failure.
        if causes::failed_at_tcp(&report) {
            let (elsewhere, round) = alongside(
                Box::pin(causes::explained_elsewhere(self.prober, &report)),
                Box::pin(self.same_host_round(&report)),
            )
            .await;
            if elsewhere {
                return Vec::new();
            }
            let round = round.finish().await;
            return self.search(report, round).await;
        }
        if report.tcp.is_connected() {
            if let Some(TlsOutcome::Failed { failure }) = &report.tls {
                match failure {
                    // The server speaks plaintext where TLS was expected: a settings question.
                    TlsFailure::NotTls { .. } | TlsFailure::StartTlsUnavailable { .. } => {}
                    TlsFailure::NameMismatch { presented } => {
                        return self.name_mismatch(&report, presented).await;
                    }
                    // A certificate or TLS-version problem on a reachable server: only a person
                    // can fix it, and another port or security would only hide an attack.
                    _ => {
                        let evidence = vec![text::evidence(&report)];
                        return vec![self.tls_finding(&report, failure, evidence)];
                    }
                }
            }
        }
        let round = self.same_host_round(&report).await;
        self.search(report, round).await
    }

    fn dns_finding(&self, code: &str, summary: String, report: &ProbeReport) -> Finding {
        self.finding(code, Severity::Error, summary)
            .with_evidence(text::evidence(report))
    }

    /// One concurrent round on the configured host: the discovery matrix, which ends as soon as
    /// its best pair is settled (a slow STARTTLS dialogue is not waited for once implicit TLS
    /// works), with the domain's published settings looked up alongside. When the configured
    /// port timed out, the other protocols' ports of the host are probed in the same round:
    /// whether any answers tells a path that drops one port from a host that is gone, without
    /// a second wait for a timeout.
    async fn same_host_round(&self, configured: &ProbeReport) -> Round<'_> {
        let alternatives = matrix::same_host_alternatives(self.ep);
        let liveness = if matches!(configured.tcp, TcpOutcome::TimedOut { .. }) {
            matrix::other_protocols_on(self.ep.protocol, &self.ep.host)
        } else {
            Vec::new()
        };
        let n = alternatives.len();
        let targets: Vec<ProbeTarget> = alternatives.iter().chain(&liveness).cloned().collect();
        // The probes own their targets, so that what the round leaves running (the discovery)
        // borrows only `self`.
        let probes: BoxFuture<'_, Vec<Option<ProbeReport>>> = Box::pin(async move {
            let futures = targets.iter().map(|t| self.prober.probe(t)).collect();
            join_until(futures, |slots| {
                matrix::settled(&alternatives, &slots[..n], self.ep)
            })
            .await
        });
        let (mut slots, discovery) = alongside(probes, Box::pin(self.discover())).await;
        let complete = slots.iter().all(Option::is_some);
        let liveness = slots.split_off(n).into_iter().flatten().collect();
        Round {
            reports: slots.into_iter().flatten().collect(),
            complete,
            liveness,
            discovery,
        }
    }

    /// The configured pair failed below the certificate layer: take the same-host round's best
    /// pair, else the servers the domain's settings name and the email domain's standard hosts,
    /// else explain the failure.
    async fn search(&self, configured: ProbeReport, round: Round<'_>) -> Vec<Finding> {
        let Round {
            reports,
            complete,
            liveness,
            discovery,
        } = round;
        if let Some(best) = matrix::best(&reports, self.ep) {
            let usable = reports
                .iter()
                .filter(|r| matrix::usable(r, self.ep))
                .count();
            // The lookups still running are dropped: this host works.
            return vec![self.settings_finding(&configured, best, complete && usable == 1)];
        }
        let settings = discovery.finish().await;
        let mut evidence = vec![text::evidence(&configured)];
        evidence.extend(reports.iter().map(text::evidence));
        evidence.extend(liveness.iter().map(text::evidence));
        let probed: Vec<ProbeReport> = std::iter::once(configured.clone())
            .chain(reports.iter().cloned())
            .collect();
        let (moved, other_evidence) = self
            .other_hosts(&configured, settings.as_ref(), &probed)
            .await;
        if let Some(finding) = moved {
            return vec![finding];
        }
        evidence.extend(other_evidence);
        if let Some(settings) = &settings {
            evidence.extend(settings.lookups.iter().map(discovered::lookup_evidence));
        }
        self.note_walls(settings.as_ref());
        vec![self.explain(&configured, &reports, &liveness, evidence)]
    }

    fn settings_finding(
        &self,
        configured: &ProbeReport,
        best: &ProbeReport,
        only: bool,
    ) -> Finding {
        let change = matrix::change_to(self.ep, &best.target);
        let summary = format!(
            "{} is set to {} port {} with {}, but the server {}accepts {} on port {}",
            self.client(),
            self.proto(),
            self.ep.port,
            security_name(self.ep.security),
            if only { "only " } else { "" },
            security_name(best.target.security),
            best.target.port,
        );
        self.finding(settings_code(&change), Severity::Error, summary)
            .with_evidence(text::evidence(configured))
            .with_evidence(text::evidence(best))
            .proposing(self.set_endpoint(change))
    }

    /// A moved server: the servers the email domain's SRV, autoconfig and Autodiscover records
    /// name (in that order), then the domain's standard host names (only when the configured
    /// host is not the email domain itself), in one concurrent round; targets already probed
    /// (`probed`) are not probed again. A named server on the configured host with another port
    /// or security is a settings change like the matrix's.
    async fn other_hosts(
        &self,
        configured: &ProbeReport,
        settings: Option<&DiscoveredSettings>,
        probed: &[ProbeReport],
    ) -> (Option<Finding>, Vec<Evidence>) {
        let Some(domain) = self.account.email_domain() else {
            return (None, Vec::new());
        };
        let host = hosts::normalize(self.host());
        let named: Vec<&DiscoveredServer> = settings
            .map(|s| discovered::candidates(s, self.ep.protocol))
            .unwrap_or_default();
        let mut order = discovered::hosts(&named);
        let mut targets: Vec<ProbeTarget> = named.iter().map(|s| discovered::target(s)).collect();
        if host != domain {
            let standard: Vec<String> = hosts::standard_hosts(self.ep.protocol, &domain)
                .into_iter()
                .filter(|h| *h != host && !order.contains(h))
                .collect();
            targets.extend(matrix::other_host_targets(self.ep, &standard));
            order.extend(standard);
        }
        let mut fresh: Vec<ProbeTarget> = Vec::new();
        for t in targets {
            let seen = probed.iter().any(|r| same_target(&r.target, &t));
            if !seen && !fresh.iter().any(|f| same_target(f, &t)) {
                fresh.push(t);
            }
        }
        if fresh.is_empty() {
            return (None, Vec::new());
        }
        let reports = self.prober.probe_all(&fresh).await;
        let all: Vec<ProbeReport> = reports.iter().chain(probed).cloned().collect();
        let Some(best) = matrix::best_on_hosts(&all, &order, self.ep) else {
            return (None, reports.iter().map(text::evidence).collect());
        };
        let origin = discovered::origin(&named, &best.target);
        let change = matrix::change_to(self.ep, &best.target);
        let (code, summary) = match (change.host.is_some(), origin) {
            (false, Some(origin)) => (
                settings_code(&change),
                format!(
                    "{} is set to {} port {} with {}, which does not work; {} names port {} with {}, which works",
                    self.client(),
                    self.proto(),
                    self.ep.port,
                    security_name(self.ep.security),
                    discovered::source_phrase(origin),
                    best.target.port,
                    security_name(best.target.security),
                ),
            ),
            (_, Some(origin)) => (
                codes::SETTINGS_WRONG_HOST,
                format!(
                    "{} is set to the {} server {}, which does not work; {} names {}, which accepts {} on port {}",
                    self.client(),
                    self.proto(),
                    self.host(),
                    discovered::source_phrase(origin),
                    best.target.host,
                    security_name(best.target.security),
                    best.target.port,
                ),
            ),
            (_, None) => (
                codes::SETTINGS_WRONG_HOST,
                format!(
                    "{} is set to the {} server {}, which does not work; {} accepts {} on port {}",
                    self.client(),
                    self.proto(),
                    self.host(),
                    best.target.host,
                    security_name(best.target.security),
                    best.target.port,
                ),
            ),
        };
        let mut finding = self
            .finding(code, Severity::Error, summary)
            .with_evidence(text::evidence(configured));
        if let Some(origin) = origin {
            finding = finding.with_evidence(discovered::server_evidence(origin));
        }
        let finding = finding
            .with_evidence(text::evidence(best))
            .proposing(self.set_endpoint(change));
        (Some(finding), Vec::new())
    }

    /// Nothing works anywhere: name the layer that failed, most specific first.
    /// `liveness` are the other protocols' ports of the same host: they only tell whether the
    /// host answers at all, never which settings to use.
    fn explain(
        &self,
        configured: &ProbeReport,
        alternatives: &[ProbeReport],
        liveness: &[ProbeReport],
        evidence: Vec<Evidence>,
    ) -> Finding {
        let answered = |r: &ProbeReport| {
            matches!(
                r.tcp,
                TcpOutcome::Connected { .. } | TcpOutcome::Refused { .. }
            )
        };
        let port = self.ep.port;
        let (code, summary) = match &configured.tcp {
            TcpOutcome::TimedOut { .. } if alternatives.iter().chain(liveness).any(answered) => (
                codes::NETWORK_BLOCKED_UPSTREAM,
                format!(
                    "The {} server {} answers on other ports but not on port {port}; something on the network path drops that port",
                    self.proto(),
                    self.host()
                ),
            ),
            TcpOutcome::TimedOut { .. } => (
                codes::NETWORK_UNREACHABLE_HOST,
                format!(
                    "The {} server {} does not answer on any mail port; it is down or the network path to it is blocked",
                    self.proto(),
                    self.host()
                ),
            ),
            TcpOutcome::Unreachable { .. } => (
                codes::NETWORK_NO_ROUTE,
                format!(
                    "There is no network route to the {} server {}",
                    self.proto(),
                    self.host()
                ),
            ),
            TcpOutcome::Failed { detail } => (
                codes::NETWORK_CONNECT_FAILED,
                format!(
                    "Connecting to the {} server {} on port {port} failed ({detail})",
                    self.proto(),
                    self.host()
                ),
            ),
            TcpOutcome::NotResolved => (
                codes::NETWORK_CONNECT_FAILED,
                format!(
                    "The {} server {} could not be connected to because its name did not resolve",
                    self.proto(),
                    self.host()
                ),
            ),
            // The server is up (it answered, if only with a refusal): what it said is the cause.
            TcpOutcome::Refused { .. } | TcpOutcome::Connected { .. } => {
                return self.explain_server_side(configured, alternatives, evidence);
            }
        };
        let mut finding = self.finding(code, Severity::Error, summary);
        finding.evidence = evidence;
        finding
    }

    /// The host answers but nothing usable: a TLS problem on another port, plaintext only, the
    /// wrong protocol, or the service refusing connections.
    fn explain_server_side(
        &self,
        configured: &ProbeReport,
        alternatives: &[ProbeReport],
        evidence: Vec<Evidence>,
    ) -> Finding {
        let tls_failure = |r: &ProbeReport| match &r.tls {
            Some(TlsOutcome::Failed { failure }) if r.tcp.is_connected() => Some(failure.clone()),
            _ => None,
        };
        let plaintext_only = |f: &TlsFailure| {
            matches!(
                f,
                TlsFailure::NotTls { .. } | TlsFailure::StartTlsUnavailable { .. }
            )
        };
        if let Some((report, failure)) = alternatives.iter().find_map(|r| {
            tls_failure(r)
                .filter(|f| !plaintext_only(f))
                .map(|f| (r, f))
        }) {
            return self.tls_finding(report, &failure, evidence);
        }
        let all = std::iter::once(configured).chain(alternatives);
        if all.filter_map(tls_failure).any(|f| plaintext_only(&f)) {
            let code = codes::SECURITY_TLS_UNAVAILABLE;
            let summary = format!(
                "The {} server {} only offers unencrypted connections",
                self.proto(),
                self.host()
            );
            let message = format!(
                "{summary}; ask IT to enable TLS on it — mailmend will not switch the account to plaintext"
            );
            let mut finding = self.finding(code, Severity::Error, summary);
            finding.evidence = evidence;
            return finding.proposing(self.notify(code, message));
        }
        if configured.tcp.is_connected() {
            let code = codes::PROTOCOL_UNEXPECTED_REPLY;
            let summary = format!(
                "The server {} does not answer in {} on port {}, and no other mail port works",
                self.host(),
                self.proto(),
                self.ep.port
            );
            let message = format!("{summary}; ask IT for the right server settings");
            let mut finding = self.finding(code, Severity::Error, summary);
            finding.evidence = evidence;
            return finding.proposing(self.notify(code, message));
        }
        let summary = format!(
            "The {} server {} refuses connections on port {} and no other mail port works; the mail service is down",
            self.proto(),
            self.host(),
            self.ep.port
        );
        let mut finding = self.finding(codes::NETWORK_SERVICE_DOWN, Severity::Error, summary);
        finding.evidence = evidence;
        finding
    }

    /// A certificate or TLS problem: the user is told, nothing is changed.
    fn tls_finding(
        &self,
        report: &ProbeReport,
        failure: &TlsFailure,
        evidence: Vec<Evidence>,
    ) -> Finding {
        let at = format!("{} (port {})", report.target.host, report.target.port);
        let never = "mailmend will not turn certificate checks off";
        let (code, summary, advice) = match failure {
            TlsFailure::CertificateExpired { not_after } => (
                codes::TLS_CERTIFICATE_EXPIRED,
                match not_after {
                    Some(date) => format!("The server's certificate at {at} expired on {date}"),
                    None => format!("The server's certificate at {at} has expired"),
                },
                format!("ask IT to renew it — {never}"),
            ),
            TlsFailure::CertificateNotYetValid { not_before } => (
                codes::TLS_CERTIFICATE_NOT_YET_VALID,
                match not_before {
                    Some(date) => {
                        format!("The server's certificate at {at} is not valid until {date}")
                    }
                    None => format!("The server's certificate at {at} is not valid yet"),
                },
                format!("check this computer's date and time, or ask IT — {never}"),
            ),
            TlsFailure::SelfSigned => (
                codes::TLS_CERTIFICATE_SELF_SIGNED,
                format!(
                    "The server at {at} presents a self-signed certificate that cannot be verified"
                ),
                format!("ask IT — {never}"),
            ),
            TlsFailure::UntrustedIssuer { .. } | TlsFailure::IncompleteChain => (
                codes::TLS_CERTIFICATE_UNTRUSTED,
                format!(
                    "The server's certificate at {at} is not from a trusted authority ({})",
                    text::tls_failure_text(failure)
                ),
                format!("ask IT, as this can also mean the connection is intercepted — {never}"),
            ),
            TlsFailure::NameMismatch { presented } => (
                codes::TLS_NAME_MISMATCH,
                format!(
                    "The server's certificate at {at} is for {}, not for {}",
                    presented.join(", "),
                    report.target.host
                ),
                format!("ask IT for the right server name — {never}"),
            ),
            TlsFailure::ProtocolMismatch { .. } => (
                codes::TLS_PROTOCOL_MISMATCH,
                format!("The server at {at} offers no TLS version or cipher this computer accepts"),
                "ask IT to update the server — mailmend will not weaken encryption".to_string(),
            ),
            TlsFailure::NotTls { .. } | TlsFailure::StartTlsUnavailable { .. } => (
                codes::SECURITY_TLS_UNAVAILABLE,
                format!("The server at {at} does not offer an encrypted connection"),
                "ask IT to enable TLS — mailmend will not switch the account to plaintext"
                    .to_string(),
            ),
            TlsFailure::Other { detail } => (
                codes::TLS_HANDSHAKE_FAILED,
                format!("The encrypted connection to {at} failed ({detail})"),
                format!("ask IT — {never}"),
            ),
        };
        let message = format!("{summary}; {advice}");
        let mut finding = self.finding(code, Severity::Error, summary);
        finding.evidence = evidence;
        finding.proposing(self.notify(code, message))
    }

    /// The certificate names other hosts: when one of them is inside the email domain and works
    /// with the same port and security, the server has moved or has another name.
    async fn name_mismatch(&self, configured: &ProbeReport, presented: &[String]) -> Vec<Finding> {
        let mut evidence = vec![text::evidence(configured)];
        let failure = TlsFailure::NameMismatch {
            presented: presented.to_vec(),
        };
        let Some(domain) = self.account.email_domain() else {
            return vec![self.tls_finding(configured, &failure, evidence)];
        };
        let host = hosts::normalize(self.host());
        let mut names: Vec<String> = Vec::new();
        for name in presented.iter().map(|n| hosts::normalize(n)) {
            // A wildcard names no host to connect to.
            if name.contains('*') || name == host || !hosts::in_domain(&name, &domain) {
                continue;
            }
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names.truncate(MAX_CERTIFICATE_NAMES);
        if names.is_empty() {
            return vec![self.tls_finding(configured, &failure, evidence)];
        }
        let targets: Vec<ProbeTarget> = names
            .iter()
            .map(|name| ProbeTarget {
                host: name.clone(),
                ..self.configured.clone()
            })
            .collect();
        let reports = self.prober.probe_all(&targets).await;
        if let Some(working) = reports.iter().find(|r| matrix::usable(r, self.ep)) {
            let summary = format!(
                "The server's certificate at {} is for {}, which works: the server has moved or has another name",
                self.host(),
                working.target.host
            );
            return vec![self
                .finding(codes::TLS_NAME_MISMATCH, Severity::Error, summary)
                .with_evidence(text::evidence(configured))
                .with_evidence(text::evidence(working))
                .proposing(self.set_endpoint(matrix::change_to(self.ep, &working.target)))];
        }
        evidence.extend(reports.iter().map(text::evidence));
        vec![self.tls_finding(configured, &failure, evidence)]
    }

    /// The name does not exist: try near names inside the email domain (typos), then the servers
    /// the domain's SRV, autoconfig and Autodiscover records name, and propose the first that
    /// works. The near names are resolved while the records are looked up, and every candidate
    /// is probed in one round.
    async fn nxdomain(&self, configured: ProbeReport) -> Vec<Finding> {
        let code = codes::DNS_NXDOMAIN;
        let head = format!(
            "The {} server name {} does not exist in DNS",
            self.proto(),
            self.host()
        );
        let candidates = self
            .account
            .email_domain()
            .map(|domain| hosts::typo_candidates(self.host(), &domain))
            .unwrap_or_default();
        let mut finding = self
            .finding(code, Severity::Error, head.clone())
            .with_evidence(text::evidence(&configured));
        let resolves = join_all(
            candidates
                .iter()
                .map(|host| self.prober.resolve(host))
                .collect(),
        );
        let (lookups, settings) = join2(Box::pin(resolves), Box::pin(self.discover())).await;
        finding
            .evidence
            .extend(lookups.iter().map(text::dns_evidence));
        let resolved: Vec<String> = candidates
            .iter()
            .zip(&lookups)
            .filter(|(_, lookup)| matches!(lookup.outcome, DnsOutcome::Resolved { .. }))
            .map(|(host, _)| host.clone())
            .collect();
        let named: Vec<&DiscoveredServer> = settings
            .as_ref()
            .map(|s| discovered::candidates(s, self.ep.protocol))
            .unwrap_or_default();
        let mut targets = matrix::other_host_targets(self.ep, &resolved);
        for t in named.iter().map(|s| discovered::target(s)) {
            if !targets.iter().any(|x| same_target(x, &t)) {
                targets.push(t);
            }
        }
        if targets.is_empty() {
            if let Some(settings) = &settings {
                finding
                    .evidence
                    .extend(settings.lookups.iter().map(discovered::lookup_evidence));
            }
            self.note_walls(settings.as_ref());
            return vec![finding];
        }
        let reports = self.prober.probe_all(&targets).await;
        let typo = matrix::best_on_hosts(&reports, &resolved, self.ep);
        let from_records = || matrix::best_on_hosts(&reports, &discovered::hosts(&named), self.ep);
        match typo
            .map(|b| (b, None))
            .or_else(|| from_records().map(|b| (b, discovered::origin(&named, &b.target))))
        {
            Some((best, None)) => {
                finding.summary = format!(
                    "{head}; {} probably meant {}, which works",
                    self.client(),
                    best.target.host
                );
                finding.evidence.push(text::evidence(best));
                let change = matrix::change_to(self.ep, &best.target);
                vec![finding.proposing(self.set_endpoint(change))]
            }
            Some((best, Some(origin))) => {
                finding.summary = format!(
                    "{head}; {} names {}, which works",
                    discovered::source_phrase(origin),
                    best.target.host
                );
                finding.evidence.push(discovered::server_evidence(origin));
                finding.evidence.push(text::evidence(best));
                let change = matrix::change_to(self.ep, &best.target);
                vec![finding.proposing(self.set_endpoint(change))]
            }
            None => {
                finding.evidence.extend(reports.iter().map(text::evidence));
                if let Some(settings) = &settings {
                    finding
                        .evidence
                        .extend(settings.lookups.iter().map(discovered::lookup_evidence));
                }
                self.note_walls(settings.as_ref());
                vec![finding]
            }
        }
    }
}

/// Whether two targets are the same, host names compared as DNS compares them.
fn same_target(a: &ProbeTarget, b: &ProbeTarget) -> bool {
    a.protocol == b.protocol
        && a.port == b.port
        && a.security == b.security
        && hosts::normalize(&a.host) == hosts::normalize(&b.host)
}

/// The settings code for a change of port and/or security on the same host.
fn settings_code(change: &EndpointChange) -> &'static str {
    match (change.port.is_some(), change.security.is_some()) {
        (true, false) => codes::SETTINGS_WRONG_PORT,
        (false, true) => codes::SETTINGS_WRONG_SECURITY,
        _ => codes::SETTINGS_WRONG_PORT_SECURITY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailmend_core::{AccountId, AuthMethod, ClientKind, Location};

    fn account() -> Account {
        Account {
            id: AccountId("a".into()),
            client: ClientKind::Thunderbird,
            os_user: "u".into(),
            email: Some("ann@example.com".into()),
            location: Location::File { path: "/p".into() },
            key: "server1".into(),
            incoming: Some(Endpoint {
                protocol: Protocol::Imap,
                host: "imap.example.com".into(),
                port: 993,
                security: Security::Tls,
                auth: AuthMethod::PasswordCleartext,
                username: None,
            }),
            outgoing: None,
        }
    }

    fn proposing(change: EndpointChange) -> Finding {
        Finding::new("x.y", Severity::Error, AccountId("a".into()), None, "s").proposing(
            Action::SetEndpoint {
                account: AccountId("a".into()),
                role: Role::Incoming,
                change,
            },
        )
    }

    #[test]
    fn guard_drops_plaintext_and_foreign_hosts_but_keeps_the_rest() {
        let findings = vec![
            proposing(EndpointChange {
                security: Some(Security::None),
                ..Default::default()
            }),
            proposing(EndpointChange {
                host: Some("imap.evil.example.net".into()),
                ..Default::default()
            }),
            proposing(EndpointChange {
                host: Some("mail.example.com".into()),
                port: Some(993),
                security: Some(Security::Tls),
                ..Default::default()
            }),
        ];
        let kept = guard(&account(), findings, &[]);
        assert!(kept[0].proposed.is_empty());
        assert!(kept[1].proposed.is_empty());
        assert_eq!(kept[2].proposed.len(), 1);
    }

    #[test]
    fn guard_keeps_hosts_the_domains_records_named_and_only_those() {
        let to = |host: &str| {
            proposing(EndpointChange {
                host: Some(host.into()),
                ..Default::default()
            })
        };
        let findings = vec![to("Mail.Hosting.test."), to("mail.elsewhere.test")];
        let kept = guard(&account(), findings, &["mail.hosting.test".to_string()]);
        assert_eq!(kept[0].proposed.len(), 1);
        assert!(kept[1].proposed.is_empty());
    }

    #[test]
    fn guard_never_lets_an_exchange_endpoint_be_rewritten() {
        let mut acc = account();
        if let Some(ep) = acc.incoming.as_mut() {
            ep.protocol = Protocol::Exchange;
        }
        let findings = vec![proposing(EndpointChange {
            host: Some("mail.example.com".into()),
            ..Default::default()
        })];
        assert!(guard(&acc, findings, &[])[0].proposed.is_empty());
    }

    #[test]
    fn settings_code_follows_what_changes() {
        let port = EndpointChange {
            port: Some(993),
            ..Default::default()
        };
        let security = EndpointChange {
            security: Some(Security::StartTls),
            ..Default::default()
        };
        let both = EndpointChange {
            port: Some(993),
            security: Some(Security::Tls),
            ..Default::default()
        };
        assert_eq!(settings_code(&port), codes::SETTINGS_WRONG_PORT);
        assert_eq!(settings_code(&security), codes::SETTINGS_WRONG_SECURITY);
        assert_eq!(settings_code(&both), codes::SETTINGS_WRONG_PORT_SECURITY);
    }
}
