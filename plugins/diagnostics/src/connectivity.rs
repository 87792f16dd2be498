//! The connectivity diagnostic: probes each endpoint as configured and, when it does not work,
//! finds the most specific cause (DNS, TLS, port and security, host, network) and a fix that never
//! trades security for connectivity.
//!
//! Probing budget: a healthy account costs one probe per endpoint, both endpoints at once. A
//! broken endpoint costs its configured probe plus one concurrent round of alternatives on the
//! same host (one `probe_all`), plus one round on other hosts only when that round found nothing
//! (standard host names of the email domain), or typo candidates (one concurrent resolve round and
//! one `probe_all`), or the in-domain names a mismatched certificate presents (one `probe_all`).
//! An endpoint that failed at the TCP level first costs the shared cause checks of
//! [`crate::causes`] (the local firewall for each address, one authoritative lookup, and one
//! `probe_all` of new addresses only when the answers differ).
//!
//! Ownership: a local firewall rule, a stale DNS cache and an unanswering resolver are reported
//! by the firewall and DNS diagnostics; this one then reports nothing for that endpoint, so
//! that every root cause gets exactly one code.

use crate::auth;
use crate::causes;
use crate::codes;
use crate::hosts;
use crate::join::join_all;
use crate::matrix;
use crate::text::{self, client_name, protocol_name, security_name};
use mailmend_core::{
    Account, Action, BoxFuture, Capabilities, Diagnostic, DnsOutcome, Endpoint, EndpointChange,
    Evidence, Finding, PluginInfo, ProbeReport, ProbeTarget, Prober, Protocol, Role, Security,
    Severity, TcpOutcome, TlsFailure, TlsOutcome,
};

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
            let mut checks: Vec<BoxFuture<'a, Vec<Finding>>> = Vec::new();
            for role in [Role::Incoming, Role::Outgoing] {
                let Some(endpoint) = account.endpoint(role) else {
                    continue;
                };
                // Exchange servers are found through Autodiscover, which this diagnostic does
                // not speak yet; probing them as IMAP-like targets would only mislead.
                if endpoint.protocol == Protocol::Exchange {
                    continue;
                }
                let check = Check::new(account, role, endpoint, prober);
                checks.push(Box::pin(check.run()));
            }
            let findings = join_all(checks).await.into_iter().flatten().collect();
            guard(account, findings)
        })
    }
}

/// Defence in depth: drops any proposal that would set plaintext or a host outside the account's
/// email domain, whatever bug might have produced it.
fn guard(account: &Account, mut findings: Vec<Finding>) -> Vec<Finding> {
    let domain = account.email_domain();
    for finding in &mut findings {
        finding.proposed.retain(|action| {
            let Action::SetEndpoint { change, .. } = action else {
                return true;
            };
            let plaintext = change.security == Some(Security::None);
            let foreign_host = change.host.as_deref().is_some_and(|host| {
                !domain
                    .as_deref()
                    .is_some_and(|domain| hosts::in_domain(host, domain))
            });
            if plaintext || foreign_host {
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
        }
    }

    async fn run(self) -> Vec<Finding> {
        let report = self.prober.probe(&self.configured).await;
        if report.is_healthy() {
            self.healthy(report).await
        } else {
            self.broken(report).await
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
        if auth::offered(&self.ep.auth, self.ep.protocol, &caps) == Some(false) {
            return vec![self.method_not_offered(&report, &caps)];
        }
        Vec::new()
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
        // diagnostic; a settings change here would only hide it.
        if causes::explained_elsewhere(self.prober, &report).await {
            return Vec::new();
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
        self.search(report).await
    }

    fn dns_finding(&self, code: &str, summary: String, report: &ProbeReport) -> Finding {
        self.finding(code, Severity::Error, summary)
            .with_evidence(text::evidence(report))
    }

    /// The configured pair failed below the certificate layer: try the discovery matrix on the same
    /// host, then the email domain's standard hosts, then explain the failure.
    async fn search(&self, configured: ProbeReport) -> Vec<Finding> {
        let alternatives = matrix::same_host_alternatives(self.ep);
        let reports = self.prober.probe_all(&alternatives).await;
        if let Some(best) = matrix::best(&reports, self.ep) {
            let usable = reports
                .iter()
                .filter(|r| matrix::usable(r, self.ep))
                .count();
            return vec![self.settings_finding(&configured, best, usable == 1)];
        }
        let mut evidence = vec![text::evidence(&configured)];
        evidence.extend(reports.iter().map(text::evidence));
        let (moved, other_evidence) = self.other_hosts(&configured).await;
        if let Some(finding) = moved {
            return vec![finding];
        }
        evidence.extend(other_evidence);
        vec![self.explain(&configured, &reports, evidence)]
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

    /// A moved server: the standard host names of the email domain, in one concurrent round. Runs
    /// only when the configured host is not the email domain itself.
    async fn other_hosts(&self, configured: &ProbeReport) -> (Option<Finding>, Vec<Evidence>) {
        let Some(domain) = self.account.email_domain() else {
            return (None, Vec::new());
        };
        let host = hosts::normalize(self.host());
        if host == domain {
            return (None, Vec::new());
        }
        let candidates: Vec<String> = hosts::standard_hosts(self.ep.protocol, &domain)
            .into_iter()
            .filter(|h| *h != host)
            .collect();
        let targets = matrix::other_host_targets(self.ep, &candidates);
        if targets.is_empty() {
            return (None, Vec::new());
        }
        let reports = self.prober.probe_all(&targets).await;
        let Some(best) = matrix::best_on_hosts(&reports, &candidates, self.ep) else {
            return (None, reports.iter().map(text::evidence).collect());
        };
        let summary = format!(
            "{} is set to the {} server {}, which does not work; {} accepts {} on port {}",
            self.client(),
            self.proto(),
            self.host(),
            best.target.host,
            security_name(best.target.security),
            best.target.port,
        );
        let finding = self
            .finding(codes::SETTINGS_WRONG_HOST, Severity::Error, summary)
            .with_evidence(text::evidence(configured))
            .with_evidence(text::evidence(best))
            .proposing(self.set_endpoint(matrix::change_to(self.ep, &best.target)));
        (Some(finding), Vec::new())
    }

    /// Nothing works anywhere: name the layer that failed, most specific first.
    fn explain(
        &self,
        configured: &ProbeReport,
        alternatives: &[ProbeReport],
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
            TcpOutcome::TimedOut { .. } if alternatives.iter().any(answered) => (
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

    /// The name does not exist: try near names inside the email domain (typos) and propose the
    /// first that works.
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
        if candidates.is_empty() {
            return vec![finding];
        }
        let lookups = join_all(
            candidates
                .iter()
                .map(|host| self.prober.resolve(host))
                .collect(),
        )
        .await;
        finding
            .evidence
            .extend(lookups.iter().map(text::dns_evidence));
        let resolved: Vec<String> = candidates
            .iter()
            .zip(&lookups)
            .filter(|(_, lookup)| matches!(lookup.outcome, DnsOutcome::Resolved { .. }))
            .map(|(host, _)| host.clone())
            .collect();
        let targets = matrix::other_host_targets(self.ep, &resolved);
        if targets.is_empty() {
            return vec![finding];
        }
        let reports = self.prober.probe_all(&targets).await;
        match matrix::best_on_hosts(&reports, &resolved, self.ep) {
            Some(best) => {
                finding.summary = format!(
                    "{head}; {} probably meant {}, which works",
                    self.client(),
                    best.target.host
                );
                finding.evidence.push(text::evidence(best));
                let change = matrix::change_to(self.ep, &best.target);
                vec![finding.proposing(self.set_endpoint(change))]
            }
            None => {
                finding.evidence.extend(reports.iter().map(text::evidence));
                vec![finding]
            }
        }
    }
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
        let kept = guard(&account(), findings);
        assert!(kept[0].proposed.is_empty());
        assert!(kept[1].proposed.is_empty());
        assert_eq!(kept[2].proposed.len(), 1);
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
