//! The connectivity diagnostic with the email domain's published settings (SRV, autoconfig,
//! Autodiscover): which named server it proposes, in which order it trusts the sources, what it
//! never proposes, and what it says when Autodiscover wants a login. The network is the
//! in-memory `FakeNet` plus scripted discovery results.

mod support;

use mailmend_core::{
    Account, Action, BoxFuture, Capabilities, Diagnostic, DiscoveredServer, DiscoveredSettings,
    DiscoveryLookup, DiscoveryMethod, DiscoverySource, DnsReport, EndpointChange, Finding,
    LookupOutcome, ProbeReport, ProbeTarget, Prober, Protocol, Role, Security,
};
use mailmend_diagnostics::{codes, Connectivity};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use support::*;
use Protocol::{Exchange, Imap, Smtp};
use Security::{StartTls, Tls};

const IMAP_HOST: &str = "imap.example.com";
const MOVED: &str = "mail.hosting.test";
const AUTOCONFIG_URL: &str = "https://autoconfig.example.com/mail/config-v1.1.xml";
const AUTODISCOVER_URL: &str = "https://autodiscover.example.com/autodiscover/autodiscover.xml";

/// `FakeNet` plus what the domain publishes; `None` settings never answer (a lookup that hangs).
struct Published {
    net: FakeNet,
    settings: Option<DiscoveredSettings>,
    asked: AtomicUsize,
}

impl Published {
    fn new(net: FakeNet, settings: DiscoveredSettings) -> Published {
        Published {
            net,
            settings: Some(settings),
            asked: AtomicUsize::new(0),
        }
    }

    fn hanging(net: FakeNet) -> Published {
        Published {
            net,
            settings: None,
            asked: AtomicUsize::new(0),
        }
    }
}

impl Prober for Published {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, DnsReport> {
        self.net.resolve(host)
    }
    fn probe<'a>(&'a self, target: &'a ProbeTarget) -> BoxFuture<'a, ProbeReport> {
        self.net.probe(target)
    }
    fn probe_all<'a>(&'a self, targets: &'a [ProbeTarget]) -> BoxFuture<'a, Vec<ProbeReport>> {
        self.net.probe_all(targets)
    }
    fn discover_settings<'a>(
        &'a self,
        email_domain: &'a str,
        email: Option<&'a str>,
    ) -> BoxFuture<'a, DiscoveredSettings> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        assert_eq!(email_domain, "example.com");
        assert_eq!(email, Some("ann@example.com"));
        match &self.settings {
            Some(s) => {
                let s = s.clone();
                Box::pin(async move { s })
            }
            None => Box::pin(std::future::pending()),
        }
    }
}

fn settings(servers: Vec<DiscoveredServer>, lookups: Vec<DiscoveryLookup>) -> DiscoveredSettings {
    DiscoveredSettings {
        domain: "example.com".into(),
        servers,
        lookups,
        elapsed_ms: 3,
    }
}

fn named(
    method: DiscoveryMethod,
    location: &str,
    protocol: Protocol,
    host: &str,
    port: u16,
    security: Security,
) -> DiscoveredServer {
    let srv = method == DiscoveryMethod::Srv;
    DiscoveredServer {
        protocol,
        host: host.into(),
        port,
        security,
        priority: srv.then_some(0),
        weight: srv.then_some(1),
        url: None,
        source: DiscoverySource {
            method,
            location: location.into(),
        },
    }
}

fn srv(
    label: &str,
    protocol: Protocol,
    host: &str,
    port: u16,
    security: Security,
) -> DiscoveredServer {
    named(
        DiscoveryMethod::Srv,
        &format!("{label}.example.com"),
        protocol,
        host,
        port,
        security,
    )
}

fn wall(status: u16) -> DiscoveryLookup {
    DiscoveryLookup {
        source: DiscoverySource {
            method: DiscoveryMethod::Autodiscover,
            location: AUTODISCOVER_URL.into(),
        },
        outcome: LookupOutcome::Unauthorized {
            status,
            schemes: Some("Basic, NTLM".into()),
        },
    }
}

fn imap_account() -> Account {
    account(Some(endpoint(Imap, IMAP_HOST, 993, Tls)), None)
}

/// The old server: resolves, refuses every port.
fn old_server_gone() -> FakeNet {
    FakeNet::new().host(IMAP_HOST)
}

/// Runs the diagnostic and checks what holds for every output: known codes, evidence, no
/// plaintext proposal or probe, and new hosts only inside the email domain or named by its
/// published settings.
async fn run(account: &Account, p: &Published) -> Vec<Finding> {
    let findings = tokio::time::timeout(Duration::from_secs(5), Connectivity.diagnose(account, p))
        .await
        .expect("the diagnosis finished");
    let named: Vec<String> = p
        .settings
        .as_ref()
        .map(DiscoveredSettings::named_hosts)
        .unwrap_or_default();
    for f in &findings {
        assert!(
            codes::ALL.contains(&f.code.as_str()),
            "unknown code {}",
            f.code
        );
        assert!(!f.evidence.is_empty(), "{} has no evidence", f.code);
        for a in &f.proposed {
            if let Action::SetEndpoint { change, .. } = a {
                assert_ne!(change.security, Some(Security::None), "plaintext proposed");
                if let Some(h) = &change.host {
                    assert!(
                        h.ends_with(".example.com") || named.contains(h),
                        "{h} is neither in the domain nor named by it"
                    );
                }
            }
        }
    }
    for t in p.net.probed_targets() {
        assert!(t.security != Security::None, "plaintext target probed: {t}");
    }
    findings
}

fn the_change(f: &Finding) -> EndpointChange {
    match f.proposed.as_slice() {
        [Action::SetEndpoint { change, .. }] => change.clone(),
        other => panic!("expected one endpoint change, got {other:?}"),
    }
}

fn only_notifies(f: &Finding) -> bool {
    !f.proposed.is_empty()
        && f.proposed
            .iter()
            .all(|a| matches!(a, Action::NotifyUser { .. }))
}

#[tokio::test]
async fn a_server_only_the_srv_records_name_in_another_domain_is_proposed_with_its_record() {
    let net = old_server_gone()
        .host(MOVED)
        .serve(Imap, MOVED, 993, Tls, imap_caps());
    let p = Published::new(
        net,
        settings(vec![srv("_imaps._tcp", Imap, MOVED, 993, Tls)], Vec::new()),
    );
    let findings = run(&imap_account(), &p).await;
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let f = &findings[0];
    assert_eq!(f.code, codes::SETTINGS_WRONG_HOST);
    assert_eq!(
        the_change(f),
        EndpointChange {
            host: Some(MOVED.into()),
            ..Default::default()
        }
    );
    assert!(
        f.summary
            .contains("the domain's SRV record _imaps._tcp.example.com names mail.hosting.test"),
        "{}",
        f.summary
    );
    let record = f
        .evidence
        .iter()
        .find(|e| e.probe == "discovery.srv")
        .expect("the SRV record is evidence");
    assert_eq!(record.target, "_imaps._tcp.example.com");
    assert!(record.result.starts_with("names mail.hosting.test:993"));
    assert_eq!(p.asked.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn published_servers_come_before_the_standard_names_and_srv_priority_is_kept() {
    // Both the domain's standard name and two SRV targets work; the SRV record of the best
    // priority wins, and a broken first target is passed over.
    let net = old_server_gone()
        .host("mail.example.com")
        .serve(Imap, "mail.example.com", 993, Tls, imap_caps())
        .host("broken.hosting.test")
        .host(MOVED)
        .serve(Imap, MOVED, 993, Tls, imap_caps())
        .host("backup.hosting.test")
        .serve(Imap, "backup.hosting.test", 993, Tls, imap_caps());
    let mut first = srv("_imaps._tcp", Imap, "broken.hosting.test", 993, Tls);
    first.priority = Some(0);
    let mut second = srv("_imaps._tcp", Imap, MOVED, 993, Tls);
    second.priority = Some(5);
    let mut third = srv("_imaps._tcp", Imap, "backup.hosting.test", 993, Tls);
    third.priority = Some(10);
    let p = Published::new(net, settings(vec![first, second, third], Vec::new()));
    let findings = run(&imap_account(), &p).await;
    assert_eq!(the_change(&findings[0]).host.as_deref(), Some(MOVED));
    // Named servers and standard names were probed in one round.
    assert_eq!(p.net.probe_all_calls().len(), 2);
}

#[tokio::test]
async fn autoconfig_alone_can_name_the_new_server_and_implicit_tls_is_preferred_there() {
    let net = old_server_gone()
        .host(MOVED)
        .serve(Imap, MOVED, 143, StartTls, imap_caps())
        .serve(Imap, MOVED, 993, Tls, imap_caps());
    let p = Published::new(
        net,
        settings(
            vec![
                named(
                    DiscoveryMethod::Autoconfig,
                    AUTOCONFIG_URL,
                    Imap,
                    MOVED,
                    143,
                    StartTls,
                ),
                named(
                    DiscoveryMethod::Autoconfig,
                    AUTOCONFIG_URL,
                    Imap,
                    MOVED,
                    993,
                    Tls,
                ),
            ],
            Vec::new(),
        ),
    );
    // The document lists STARTTLS first; implicit TLS still wins on the same host.
    let acc = account(Some(endpoint(Imap, IMAP_HOST, 1993, Tls)), None);
    let findings = run(&acc, &p).await;
    let f = &findings[0];
    assert_eq!(f.code, codes::SETTINGS_WRONG_HOST);
    assert_eq!(
        the_change(f),
        EndpointChange {
            host: Some(MOVED.into()),
            port: Some(993),
            ..Default::default()
        }
    );
    assert!(f
        .evidence
        .iter()
        .any(|e| e.probe == "discovery.autoconfig" && e.target == AUTOCONFIG_URL));
}

#[tokio::test]
async fn a_plaintext_setting_is_never_probed_or_proposed() {
    let net = old_server_gone()
        .host(MOVED)
        .serve(Imap, MOVED, 143, Security::None, imap_caps());
    let p = Published::new(
        net,
        settings(
            vec![named(
                DiscoveryMethod::Autoconfig,
                AUTOCONFIG_URL,
                Imap,
                MOVED,
                143,
                Security::None,
            )],
            Vec::new(),
        ),
    );
    let findings = run(&imap_account(), &p).await;
    assert!(
        findings.iter().all(|f| f.proposed.is_empty()),
        "{findings:#?}"
    );
    assert!(p.net.probed_targets().iter().all(|t| t.host != MOVED));
}

#[tokio::test]
async fn a_fix_on_the_same_host_does_not_wait_for_the_published_settings() {
    // The lookups never answer; the matrix's fix must still come back.
    let net = FakeNet::new()
        .host(IMAP_HOST)
        .serve(Imap, IMAP_HOST, 993, Tls, imap_caps());
    let p = Published::hanging(net);
    let acc = account(Some(endpoint(Imap, IMAP_HOST, 1993, Tls)), None);
    let findings = run(&acc, &p).await;
    assert_eq!(findings[0].code, codes::SETTINGS_WRONG_PORT);
    assert_eq!(
        p.asked.load(Ordering::SeqCst),
        1,
        "looked up alongside the matrix"
    );
}

#[tokio::test]
async fn a_named_server_on_the_configured_host_with_another_port_is_a_settings_fix() {
    let net = FakeNet::new()
        .host(IMAP_HOST)
        .serve(Imap, IMAP_HOST, 10993, Tls, imap_caps());
    let p = Published::new(
        net,
        settings(
            vec![srv("_imaps._tcp", Imap, IMAP_HOST, 10993, Tls)],
            Vec::new(),
        ),
    );
    let findings = run(&imap_account(), &p).await;
    let f = &findings[0];
    assert_eq!(f.code, codes::SETTINGS_WRONG_PORT);
    assert_eq!(
        the_change(f),
        EndpointChange {
            port: Some(10993),
            ..Default::default()
        }
    );
    assert!(f.evidence.iter().any(|e| e.probe == "discovery.srv"));
}

#[tokio::test]
async fn a_vanished_name_is_replaced_by_the_server_the_records_name() {
    let net = FakeNet::new()
        .host(MOVED)
        .serve(Imap, MOVED, 993, Tls, imap_caps());
    let p = Published::new(
        net,
        settings(vec![srv("_imaps._tcp", Imap, MOVED, 993, Tls)], Vec::new()),
    );
    let acc = account(Some(endpoint(Imap, "imap-old.example.com", 993, Tls)), None);
    let findings = run(&acc, &p).await;
    let f = &findings[0];
    assert_eq!(f.code, codes::DNS_NXDOMAIN);
    assert_eq!(the_change(f).host.as_deref(), Some(MOVED));
    assert!(f.evidence.iter().any(|e| e.probe == "discovery.srv"));
}

#[tokio::test]
async fn an_autodiscover_login_wall_is_one_clear_finding_when_nothing_was_found() {
    let acc = account(
        Some(endpoint(Imap, IMAP_HOST, 993, Tls)),
        Some(endpoint(Smtp, "smtp.example.com", 465, Tls)),
    );
    let net = old_server_gone().host("smtp.example.com");
    let p = Published::new(net, settings(Vec::new(), vec![wall(401)]));
    let findings = run(&acc, &p).await;
    let walls: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.code == codes::AUTODISCOVER_UNAUTHORIZED)
        .collect();
    assert_eq!(walls.len(), 1, "{findings:#?}");
    assert_eq!(walls[0].role, None);
    assert!(
        walls[0].summary.contains("HTTP 401"),
        "{}",
        walls[0].summary
    );
    assert!(walls[0].summary.contains(AUTODISCOVER_URL));
    assert!(walls[0].evidence[0].result.contains("Basic, NTLM"));
    // Each endpoint's own failure keeps its own code.
    assert!(findings
        .iter()
        .any(|f| f.role == Some(Role::Incoming) && f.code == codes::NETWORK_SERVICE_DOWN));
    assert!(findings
        .iter()
        .any(|f| f.role == Some(Role::Outgoing) && f.code == codes::NETWORK_SERVICE_DOWN));
}

#[tokio::test]
async fn a_login_wall_is_not_reported_when_another_record_found_the_server() {
    let net = old_server_gone()
        .host(MOVED)
        .serve(Imap, MOVED, 993, Tls, imap_caps());
    let p = Published::new(
        net,
        settings(
            vec![srv("_imaps._tcp", Imap, MOVED, 993, Tls)],
            vec![wall(403)],
        ),
    );
    let findings = run(&imap_account(), &p).await;
    assert!(findings
        .iter()
        .all(|f| f.code != codes::AUTODISCOVER_UNAUTHORIZED));
}

#[tokio::test]
async fn a_login_wall_does_not_matter_while_the_configured_server_works() {
    let net = FakeNet::new()
        .host(IMAP_HOST)
        .serve(Imap, IMAP_HOST, 993, Tls, imap_caps());
    let p = Published::new(net, settings(Vec::new(), vec![wall(401)]));
    assert!(run(&imap_account(), &p).await.is_empty());
    assert_eq!(
        p.asked.load(Ordering::SeqCst),
        0,
        "a healthy account looks nothing up"
    );
}

// ---- Exchange ----

const EXCH: &str = "outlook.example.com";
const EXCH_NEW: &str = "mail.hosting.test";

fn exchange_account(host: &str) -> Account {
    account(Some(endpoint(Exchange, host, 443, Tls)), None)
}

fn autodiscover_names(host: &str) -> DiscoveredServer {
    let mut s = named(
        DiscoveryMethod::Autodiscover,
        AUTODISCOVER_URL,
        Exchange,
        host,
        443,
        Tls,
    );
    s.url = Some(format!("https://{host}/EWS/Exchange.asmx"));
    s
}

#[tokio::test]
async fn an_exchange_account_whose_server_moved_is_told_and_not_rewritten() {
    let net = FakeNet::new().host(EXCH).host(EXCH_NEW).serve(
        Exchange,
        EXCH_NEW,
        443,
        Tls,
        Capabilities::default(),
    );
    let p = Published::new(
        net,
        settings(vec![autodiscover_names(EXCH_NEW)], Vec::new()),
    );
    let findings = run(&exchange_account(EXCH), &p).await;
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let f = &findings[0];
    assert_eq!(f.code, codes::SETTINGS_WRONG_HOST);
    assert!(only_notifies(f), "{f:#?}");
    assert!(f.summary.contains(EXCH_NEW), "{}", f.summary);
    assert!(f
        .evidence
        .iter()
        .any(|e| e.probe == "discovery.autodiscover" && e.target == AUTODISCOVER_URL));
    // Autodiscover's server was probed over TLS on 443.
    assert!(p.net.probed_targets().contains(&ProbeTarget {
        protocol: Exchange,
        host: EXCH_NEW.into(),
        port: 443,
        security: Tls,
    }));
}

#[tokio::test]
async fn an_exchange_account_without_a_server_relies_on_autodiscover() {
    // Autodiscover names a working server: healthy.
    let net =
        FakeNet::new()
            .host(EXCH_NEW)
            .serve(Exchange, EXCH_NEW, 443, Tls, Capabilities::default());
    let p = Published::new(
        net,
        settings(vec![autodiscover_names(EXCH_NEW)], Vec::new()),
    );
    assert!(run(&exchange_account(""), &p).await.is_empty());

    // Autodiscover names nothing: Outlook cannot find its server.
    let p = Published::new(FakeNet::new(), settings(Vec::new(), Vec::new()));
    let findings = run(&exchange_account(""), &p).await;
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].code, codes::AUTODISCOVER_NOT_FOUND);

    // Autodiscover wants a login: that is the one finding.
    let p = Published::new(FakeNet::new(), settings(Vec::new(), vec![wall(401)]));
    let findings = run(&exchange_account(""), &p).await;
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].code, codes::AUTODISCOVER_UNAUTHORIZED);
}

#[tokio::test]
async fn a_certificate_problem_on_the_autodiscover_server_is_reported_as_such() {
    let net = FakeNet::new().host(EXCH_NEW).on(
        EXCH_NEW,
        443,
        Tls,
        Behaviour::Tls(mailmend_core::TlsFailure::CertificateExpired {
            not_after: Some("2021-01-01T00:00:00Z".into()),
        }),
    );
    let p = Published::new(
        net,
        settings(vec![autodiscover_names(EXCH_NEW)], Vec::new()),
    );
    let findings = run(&exchange_account(""), &p).await;
    assert_eq!(findings[0].code, codes::TLS_CERTIFICATE_EXPIRED);
    assert!(only_notifies(&findings[0]));
}
