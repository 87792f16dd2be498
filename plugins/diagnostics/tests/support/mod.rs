//! An in-memory network for testing the diagnostics' pure decision logic: every probe answer is
//! scripted per target, every call is logged, and nothing leaves the process.

#![allow(dead_code)]

use mailmend_core::{
    Account, AccountId, Action, AuthMethod, BoxFuture, Capabilities, ClientKind, Diagnostic,
    DnsOutcome, DnsReport, Endpoint, Finding, FirewallRule, FirewallVerdict, KerberosReport,
    KerberosTicket, Location, ProbeReport, ProbeTarget, Prober, Protocol, Security, TcpOutcome,
    TlsFailure, TlsOutcome,
};
use mailmend_diagnostics::{builtin, codes, Connectivity};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a scripted server does when probed on one port with one security.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// A server of this protocol answers and completes the greeting.
    Serve(Protocol, Capabilities),
    Refused,
    TimedOut,
    Unreachable,
    Tls(TlsFailure),
    ProtocolError(String),
}

/// One call the diagnostic made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Resolve(String),
    Probe(ProbeTarget),
    ProbeAll(Vec<ProbeTarget>),
}

/// One question beyond probing and resolving: the cause checks of the DNS, firewall and
/// Kerberos diagnostics. Kept apart from [`Call`], so that probing budgets stay countable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    ResolveVia(String, SocketAddr),
    Authoritative(String),
    Firewall(IpAddr, u16),
    Kerberos(String),
}

/// Hosts, their DNS answers and per-(port, security) behaviour; an unscripted name does not
/// exist, and an IP literal resolves to itself. Name servers, authoritative answers (by default
/// the same as the system's), firewall verdicts (by default allowed) and Kerberos caches (by
/// default unreadable) are scripted too.
#[derive(Default)]
pub struct FakeNet {
    dns: HashMap<String, DnsOutcome>,
    name_servers: Vec<SocketAddr>,
    dead_servers: Vec<SocketAddr>,
    authoritative: HashMap<String, DnsOutcome>,
    firewall: HashMap<(IpAddr, u16), FirewallVerdict>,
    kerberos: HashMap<String, KerberosReport>,
    checks: Mutex<Vec<Check>>,
    /// What a resolved host does on a port nobody scripted.
    host_default: HashMap<String, Behaviour>,
    services: HashMap<(String, u16, Security), Behaviour>,
    log: Mutex<Vec<Call>>,
    barrier: Option<Arc<tokio::sync::Barrier>>,
    /// Probes grouped by concurrency: a probe that starts while another is in flight joins its
    /// round; one that starts when none is in flight opens a new round. A `probe_all` call is a
    /// round of its own.
    rounds: Mutex<Vec<Vec<ProbeTarget>>>,
    in_flight: Arc<Mutex<usize>>,
}

/// Counts a probe as finished when its future completes or is dropped (a search that stops
/// early cancels the probes it no longer needs).
struct InFlight(Arc<Mutex<usize>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.lock().unwrap() -= 1;
    }
}

fn loopback() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}

impl FakeNet {
    pub fn new() -> Self {
        Self::default()
    }

    /// A host that resolves and refuses every port not scripted otherwise.
    pub fn host(self, host: &str) -> Self {
        self.host_with_default(host, Behaviour::Refused)
    }

    /// A host that resolves and drops (times out) every port not scripted otherwise.
    pub fn silent_host(self, host: &str) -> Self {
        self.host_with_default(host, Behaviour::TimedOut)
    }

    pub fn host_with_default(mut self, host: &str, default: Behaviour) -> Self {
        self.dns.insert(
            host.to_string(),
            DnsOutcome::Resolved {
                addresses: vec![loopback()],
            },
        );
        self.host_default.insert(host.to_string(), default);
        self
    }

    pub fn dns(mut self, host: &str, outcome: DnsOutcome) -> Self {
        self.dns.insert(host.to_string(), outcome);
        self
    }

    /// A host that resolves to these addresses and behaves as `default` on unscripted ports.
    pub fn host_at(mut self, host: &str, addresses: &[&str], default: Behaviour) -> Self {
        self.dns.insert(host.to_string(), resolved(addresses));
        self.host_default.insert(host.to_string(), default);
        self
    }

    /// How an address behaves when probed as an IP-literal target.
    pub fn address(mut self, ip: &str, default: Behaviour) -> Self {
        self.host_default.insert(ip.to_string(), default);
        self
    }

    /// The configured name servers, and which of them do not answer.
    pub fn name_servers(mut self, servers: &[&str], dead: &[&str]) -> Self {
        self.name_servers = servers.iter().map(|s| sock(s)).collect();
        self.dead_servers = dead.iter().map(|s| sock(s)).collect();
        self
    }

    pub fn authoritative(mut self, host: &str, outcome: DnsOutcome) -> Self {
        self.authoritative.insert(host.to_string(), outcome);
        self
    }

    pub fn firewall(mut self, ip: &str, port: u16, verdict: FirewallVerdict) -> Self {
        self.firewall.insert((ip.parse().unwrap(), port), verdict);
        self
    }

    pub fn kerberos(mut self, report: KerberosReport) -> Self {
        self.kerberos.insert(report.os_user.clone(), report);
        self
    }

    pub fn checks(&self) -> Vec<Check> {
        self.checks.lock().unwrap().clone()
    }

    fn check(&self, c: Check) {
        self.checks.lock().unwrap().push(c);
    }

    pub fn on(mut self, host: &str, port: u16, security: Security, b: Behaviour) -> Self {
        self.services.insert((host.to_string(), port, security), b);
        self
    }

    pub fn serve(
        self,
        protocol: Protocol,
        host: &str,
        port: u16,
        security: Security,
        caps: Capabilities,
    ) -> Self {
        self.on(host, port, security, Behaviour::Serve(protocol, caps))
    }

    /// Makes every single `probe` wait until `n` of them are in flight at once.
    pub fn with_barrier(mut self, n: usize) -> Self {
        self.barrier = Some(Arc::new(tokio::sync::Barrier::new(n)));
        self
    }

    pub fn calls(&self) -> Vec<Call> {
        self.log.lock().unwrap().clone()
    }

    /// Every target probed, in single probes and in `probe_all` rounds.
    pub fn probed_targets(&self) -> Vec<ProbeTarget> {
        self.calls()
            .into_iter()
            .flat_map(|c| match c {
                Call::Probe(t) => vec![t],
                Call::ProbeAll(ts) => ts,
                Call::Resolve(_) => vec![],
            })
            .collect()
    }

    /// The concurrent rounds of probes after the first one (the configured endpoints): each
    /// round is the targets that were in flight together. A diagnostic that probed one target
    /// after another would show one round per target here.
    pub fn probe_all_calls(&self) -> Vec<Vec<ProbeTarget>> {
        self.rounds
            .lock()
            .unwrap()
            .iter()
            .skip(1)
            .cloned()
            .collect()
    }

    fn dns_of(&self, host: &str) -> DnsOutcome {
        if let Some(outcome) = self.dns.get(host) {
            return outcome.clone();
        }
        match host.parse::<IpAddr>() {
            Ok(ip) => DnsOutcome::Resolved {
                addresses: vec![ip],
            },
            Err(_) => DnsOutcome::NxDomain,
        }
    }

    fn report(&self, t: &ProbeTarget) -> ProbeReport {
        let dns = self.dns_of(&t.host);
        let mut report = ProbeReport {
            target: t.clone(),
            dns: dns.clone(),
            tcp: TcpOutcome::NotResolved,
            tls: None,
            capabilities: None,
            protocol_error: None,
            elapsed_ms: 1,
        };
        let DnsOutcome::Resolved { addresses } = &dns else {
            return report;
        };
        let address = SocketAddr::new(addresses.first().copied().unwrap_or_else(loopback), t.port);
        let behaviour = self
            .services
            .get(&(t.host.clone(), t.port, t.security))
            .or_else(|| self.host_default.get(&t.host))
            .cloned()
            .unwrap_or(Behaviour::Refused);
        let established = (t.security != Security::None).then(|| TlsOutcome::Established {
            version: "TLSv1.3".into(),
            not_after: Some("2030-01-01T00:00:00Z".into()),
        });
        match behaviour {
            Behaviour::Serve(protocol, caps) => {
                report.tcp = TcpOutcome::Connected { address };
                report.tls = established;
                if protocol == t.protocol {
                    report.capabilities = Some(caps);
                } else {
                    report.protocol_error = Some(format!("a {protocol} greeting"));
                }
            }
            Behaviour::Refused => report.tcp = TcpOutcome::Refused { address },
            Behaviour::TimedOut => report.tcp = TcpOutcome::TimedOut { address },
            Behaviour::Unreachable => {
                report.tcp = TcpOutcome::Unreachable {
                    address,
                    detail: "no route to host".into(),
                }
            }
            Behaviour::Tls(failure) => {
                report.tcp = TcpOutcome::Connected { address };
                report.tls = Some(TlsOutcome::Failed { failure });
            }
            Behaviour::ProtocolError(e) => {
                report.tcp = TcpOutcome::Connected { address };
                report.tls = established;
                report.protocol_error = Some(e);
            }
        }
        report
    }
}

impl Prober for FakeNet {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, DnsReport> {
        self.log
            .lock()
            .unwrap()
            .push(Call::Resolve(host.to_string()));
        let outcome = self.dns_of(host);
        Box::pin(async move {
            DnsReport {
                host: host.to_string(),
                outcome,
                elapsed_ms: 1,
            }
        })
    }

    fn probe<'a>(&'a self, target: &'a ProbeTarget) -> BoxFuture<'a, ProbeReport> {
        self.log.lock().unwrap().push(Call::Probe(target.clone()));
        Box::pin(async move {
            let _in_flight = {
                let mut n = self.in_flight.lock().unwrap();
                let mut rounds = self.rounds.lock().unwrap();
                if *n == 0 {
                    rounds.push(Vec::new());
                }
                if let Some(round) = rounds.last_mut() {
                    round.push(target.clone());
                }
                *n += 1;
                InFlight(self.in_flight.clone())
            };
            // Hand control back once, as a real probe waits for the network: probes started
            // together are then in flight together, and the rounds show it.
            tokio::task::yield_now().await;
            if let Some(b) = &self.barrier {
                b.wait().await;
            }
            self.report(target)
        })
    }

    fn probe_all<'a>(&'a self, targets: &'a [ProbeTarget]) -> BoxFuture<'a, Vec<ProbeReport>> {
        self.log
            .lock()
            .unwrap()
            .push(Call::ProbeAll(targets.to_vec()));
        self.rounds.lock().unwrap().push(targets.to_vec());
        Box::pin(async move { targets.iter().map(|t| self.report(t)).collect() })
    }

    fn system_name_servers(&self) -> Vec<SocketAddr> {
        self.name_servers.clone()
    }

    fn resolve_via<'a>(&'a self, host: &'a str, server: SocketAddr) -> BoxFuture<'a, DnsReport> {
        self.check(Check::ResolveVia(host.to_string(), server));
        let outcome = if self.dead_servers.contains(&server) {
            DnsOutcome::ResolverUnreachable {
                detail: format!("no answer from {server}"),
            }
        } else {
            self.authoritative
                .get(host)
                .cloned()
                .unwrap_or_else(|| self.dns_of(host))
        };
        Box::pin(async move {
            DnsReport {
                host: host.to_string(),
                outcome,
                elapsed_ms: 1,
            }
        })
    }

    fn resolve_authoritative<'a>(&'a self, host: &'a str) -> BoxFuture<'a, DnsReport> {
        self.check(Check::Authoritative(host.to_string()));
        let outcome = self
            .authoritative
            .get(host)
            .cloned()
            .unwrap_or_else(|| self.dns_of(host));
        Box::pin(async move {
            DnsReport {
                host: host.to_string(),
                outcome,
                elapsed_ms: 1,
            }
        })
    }

    fn local_firewall<'a>(&'a self, addr: IpAddr, port: u16) -> BoxFuture<'a, FirewallVerdict> {
        self.check(Check::Firewall(addr, port));
        let verdict = self
            .firewall
            .get(&(addr, port))
            .cloned()
            .unwrap_or_else(|| FirewallVerdict::Allowed {
                backend: "nftables".into(),
            });
        Box::pin(async move { verdict })
    }

    fn kerberos_tickets<'a>(&'a self, os_user: &'a str) -> BoxFuture<'a, KerberosReport> {
        self.check(Check::Kerberos(os_user.to_string()));
        let report = self
            .kerberos
            .get(os_user)
            .cloned()
            .unwrap_or(KerberosReport {
                os_user: os_user.to_string(),
                checked_at: String::new(),
                ccache: None,
                principal: None,
                tickets: Vec::new(),
                error: Some("no cache scripted".into()),
            });
        Box::pin(async move { report })
    }
}

pub fn sock(s: &str) -> SocketAddr {
    SocketAddr::new(s.parse().unwrap(), 53)
}

pub fn resolved(addresses: &[&str]) -> DnsOutcome {
    DnsOutcome::Resolved {
        addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
    }
}

pub fn blocked(action: &str, handle: u64, text: &str) -> FirewallVerdict {
    FirewallVerdict::Blocked {
        backend: "nftables".into(),
        rule: FirewallRule {
            family: "inet".into(),
            table: "filter".into(),
            chain: "output".into(),
            handle: Some(handle),
            action: action.into(),
            text: text.into(),
        },
    }
}

// ---- Kerberos reports ----

pub const REALM: &str = "EXAMPLE.COM";
pub const CHECKED_AT: &str = "2026-03-01T12:00:00Z";

/// A ticket-granting ticket that started an hour before [`CHECKED_AT`].
pub fn tgt(expires: &str, renew_until: Option<&str>, renewable: bool) -> KerberosTicket {
    KerberosTicket {
        server: format!("krbtgt/{REALM}@{REALM}"),
        starts: "2026-03-01T11:00:00Z".into(),
        expires: expires.into(),
        renew_until: renew_until.map(str::to_string),
        renewable,
    }
}

pub fn ticket_report(user: &str, tickets: Vec<KerberosTicket>) -> KerberosReport {
    KerberosReport {
        os_user: user.into(),
        checked_at: CHECKED_AT.into(),
        ccache: Some("FILE:/tmp/krb5cc_1000".into()),
        principal: Some(format!("{user}@{REALM}")),
        tickets,
        error: None,
    }
}

// ---- accounts and capabilities ----

pub fn endpoint(protocol: Protocol, host: &str, port: u16, security: Security) -> Endpoint {
    Endpoint {
        protocol,
        host: host.into(),
        port,
        security,
        auth: AuthMethod::PasswordCleartext,
        username: Some("ann".into()),
    }
}

pub fn account(incoming: Option<Endpoint>, outgoing: Option<Endpoint>) -> Account {
    Account {
        id: AccountId("thunderbird-test".into()),
        client: ClientKind::Thunderbird,
        os_user: "ann".into(),
        email: Some("ann@example.com".into()),
        location: Location::File {
            path: "/home/ann/.thunderbird/p/prefs.js".into(),
        },
        key: "server1".into(),
        incoming,
        outgoing,
    }
}

pub fn imap_caps() -> Capabilities {
    Capabilities {
        greeting: "* OK IMAP4rev1 ready".into(),
        words: vec!["IMAP4REV1".into(), "AUTH=PLAIN".into()],
        auth_mechanisms: vec!["PLAIN".into(), "LOGIN".into()],
        starttls: false,
        login_disabled: false,
    }
}

pub fn smtp_caps(auth: bool) -> Capabilities {
    Capabilities {
        greeting: "220 smtp.example.com ESMTP".into(),
        words: vec!["PIPELINING".into(), "8BITMIME".into()],
        auth_mechanisms: if auth {
            vec!["PLAIN".into(), "LOGIN".into()]
        } else {
            vec![]
        },
        starttls: false,
        login_disabled: false,
    }
}

// ---- running the diagnostic, with the invariants every output must keep ----

/// Runs the connectivity diagnostic and checks what must hold for every output: known codes,
/// notifications about their own finding, and no proposal of plaintext, of an empty change or
/// of a host outside the account's email domain; no plaintext target ever probed other than the
/// configured one.
pub async fn diagnose(account: &Account, net: &FakeNet) -> Vec<Finding> {
    let findings =
        tokio::time::timeout(Duration::from_secs(5), Connectivity.diagnose(account, net))
            .await
            .expect("the diagnosis finished");
    let domain = account.email_domain().unwrap_or_default();
    for f in &findings {
        assert!(
            codes::ALL.contains(&f.code.as_str()),
            "unknown code {}",
            f.code
        );
        assert_eq!(f.account, account.id);
        assert!(f.role.is_some());
        assert!(!f.summary.is_empty());
        assert!(!f.evidence.is_empty(), "{} has no evidence", f.code);
        for a in &f.proposed {
            match a {
                Action::SetEndpoint { change, role, .. } => {
                    assert_eq!(Some(*role), f.role);
                    assert!(!change.is_empty());
                    assert_ne!(change.security, Some(Security::None), "plaintext proposed");
                    if let Some(h) = &change.host {
                        assert!(
                            h == &domain || h.ends_with(&format!(".{domain}")),
                            "{h} is outside {domain}"
                        );
                    }
                }
                Action::NotifyUser {
                    problem, message, ..
                } => {
                    assert_eq!(problem, &f.code);
                    assert!(!message.is_empty());
                }
                other => panic!("unexpected proposal {other:?}"),
            }
        }
    }
    let configured: Vec<ProbeTarget> = [account.incoming.as_ref(), account.outgoing.as_ref()]
        .into_iter()
        .flatten()
        .map(|e| ProbeTarget {
            protocol: e.protocol,
            host: e.host.clone(),
            port: e.port,
            security: e.security,
        })
        .collect();
    for t in net.probed_targets() {
        assert!(
            t.security != Security::None || configured.contains(&t),
            "plaintext target probed: {t}"
        );
    }
    findings
}

/// Runs every built-in diagnostic (as the agent does) and checks what must hold for every
/// output: known codes, evidence, notifications about their own finding, proposals that stay
/// inside the account (its endpoints' hosts, its user), no plaintext and no empty change.
pub async fn diagnose_all(account: &Account, net: &FakeNet) -> Vec<Finding> {
    let mut findings = Vec::new();
    for diagnostic in builtin() {
        let found = tokio::time::timeout(Duration::from_secs(5), diagnostic.diagnose(account, net))
            .await
            .expect("the diagnosis finished");
        findings.extend(found);
    }
    let hosts: Vec<String> = [account.incoming.as_ref(), account.outgoing.as_ref()]
        .into_iter()
        .flatten()
        .map(|e| e.host.clone())
        .collect();
    for f in &findings {
        assert!(
            codes::ALL.contains(&f.code.as_str()),
            "unknown code {}",
            f.code
        );
        assert_eq!(f.account, account.id);
        assert!(!f.summary.is_empty());
        assert!(!f.evidence.is_empty(), "{} has no evidence", f.code);
        let machine_wide =
            f.code == codes::DNS_RESOLVER_UNREACHABLE || f.code.starts_with("kerberos.");
        assert_eq!(
            f.role.is_none(),
            machine_wide,
            "{}: role {:?}",
            f.code,
            f.role
        );
        for a in &f.proposed {
            match a {
                Action::SetEndpoint { change, .. } => {
                    assert!(!change.is_empty());
                    assert_ne!(change.security, Some(Security::None), "plaintext proposed");
                }
                Action::NotifyUser {
                    problem, message, ..
                } => {
                    assert_eq!(problem, &f.code);
                    assert!(!message.is_empty());
                }
                Action::FlushDns { host } => assert!(hosts.contains(host), "{host}"),
                Action::AddFirewallException {
                    account: id,
                    host,
                    addresses,
                    ..
                } => {
                    assert_eq!(id, &account.id);
                    assert!(hosts.contains(host), "{host}");
                    assert!(!addresses.is_empty());
                }
                Action::RenewKerberos { os_user, .. } => assert_eq!(os_user, &account.os_user),
            }
        }
    }
    findings
}

/// The codes of findings, in order.
pub fn codes_of(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.code.as_str()).collect()
}

/// The single SetEndpoint change a finding proposes.
pub fn the_change(f: &Finding) -> mailmend_core::EndpointChange {
    let changes: Vec<_> = f
        .proposed
        .iter()
        .filter_map(|a| match a {
            Action::SetEndpoint { change, .. } => Some(change.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        changes.len(),
        1,
        "expected one SetEndpoint in {:?}",
        f.proposed
    );
    changes[0].clone()
}

/// Whether the finding proposes exactly one thing, a notification.
pub fn only_notifies(f: &Finding) -> bool {
    f.proposed.len() == 1 && matches!(f.proposed[0], Action::NotifyUser { .. })
}

pub fn target(protocol: Protocol, host: &str, port: u16, security: Security) -> ProbeTarget {
    ProbeTarget {
        protocol,
        host: host.into(),
        port,
        security,
    }
}
