//! The agent's wiring: client adapters, diagnostics (built-in and dynamic) and the prober, put
//! together for one run; it is also the executor's `Host`.

use crate::credentials::Gate;
use futures_util::future::join_all;
use mailmend_core::{
    Account, BoxFuture, ClientAdapter, ClientKind, Diagnostic, Finding, Home, PluginInfo,
};
use mailmend_core::{DiscoveredSettings, DnsReport, FirewallVerdict, KerberosReport};
use mailmend_core::{LoginReport, Role};
use mailmend_core::{ProbeReport, ProbeTarget, Prober};
use mailmend_executor::{Host, Performer, Recheck};
use mailmend_plugin_host::Refusal;
use mailmend_policy::Policy;
use mailmend_probe::{ProbeConfig, RealProber};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// One account's diagnosis: its findings, each with the plugin that produced it.
#[derive(Debug, Clone)]
pub struct Diagnosis {
    pub account: Account,
    pub findings: Vec<(Finding, PluginInfo)>,
}

impl Diagnosis {
    pub fn plain_findings(&self) -> Vec<Finding> {
        self.findings.iter().map(|(f, _)| f.clone()).collect()
    }
}

/// What discovery found over every home.
#[derive(Debug, Default)]
pub struct Scan {
    pub accounts: Vec<Account>,
    /// Configuration that could not be read (`config.unreadable`), as findings.
    pub problems: Vec<(Finding, PluginInfo)>,
}

pub struct Agent {
    policy: Policy,
    homes: Vec<Home>,
    adapters: Vec<Box<dyn ClientAdapter>>,
    diagnostics: Vec<Box<dyn Diagnostic>>,
    prober: RealProber,
    performers: Vec<Box<dyn Performer>>,
    refused: Vec<Refusal>,
    /// The only way to a login: policy, endpoint health and the lockout ledger.
    credentials: Gate,
}

impl Agent {
    pub fn new(policy: Policy, homes: Vec<Home>) -> anyhow::Result<Agent> {
        let prober = RealProber::new(ProbeConfig {
            connect_timeout: policy.connect_timeout(),
            io_timeout: policy.io_timeout(),
            extra_ca_files: policy.extra_ca_files().to_vec(),
            ..ProbeConfig::default()
        })?;
        let mut diagnostics = mailmend_diagnostics::builtin();
        let loaded = mailmend_plugin_host::load_dir(
            policy.plugin_dir(),
            &policy.allowed_plugin_hashes(),
            policy.io_timeout(),
        );
        for d in loaded.loaded {
            diagnostics.push(Box::new(d));
        }
        let credentials = Gate::new(&policy);
        // Built from the policy that the agent is made with: a reloaded policy makes a new agent.
        let performers = mailmend_actions::performers_with(&mailmend_actions::ActionOptions {
            windows_disable_blocking_rules: policy.windows_disable_blocking_rules(),
        });
        Ok(Agent {
            credentials,
            policy,
            homes,
            adapters: adapters(),
            diagnostics,
            prober,
            performers,
            refused: loaded.refused,
        })
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Keeps the credential ledger in the state directory `dir`; an agent without one never
    /// logs in, whatever the policy says.
    pub fn with_state_dir(mut self, dir: &std::path::Path) -> Agent {
        self.credentials.set_state_dir(dir);
        self
    }

    /// The agent's prober, built once from the policy (timeouts, extra CA files).
    pub fn prober(&self) -> &RealProber {
        &self.prober
    }

    /// Dynamic plugins that were refused, with the reason; the caller audits them.
    pub fn refused_plugins(&self) -> &[Refusal] {
        &self.refused
    }

    pub fn adapter_infos(&self) -> Vec<PluginInfo> {
        self.adapters.iter().map(|a| a.info()).collect()
    }

    pub fn diagnostic_infos(&self) -> Vec<PluginInfo> {
        self.diagnostics.iter().map(|d| d.info()).collect()
    }

    /// Finds every account of every client in every home.
    pub fn discover(&self) -> Scan {
        let mut scan = Scan::default();
        for home in &self.homes {
            for adapter in &self.adapters {
                let d = adapter.discover(home);
                scan.accounts.extend(d.accounts);
                let info = adapter.info();
                scan.problems
                    .extend(d.findings.into_iter().map(|f| (f, info.clone())));
            }
        }
        scan
    }

    /// Every file and directory, over every home, whose change may change what `discover`
    /// finds; the service watches them.
    pub fn config_paths(&self) -> Vec<std::path::PathBuf> {
        let mut paths: Vec<std::path::PathBuf> = self
            .homes
            .iter()
            .flat_map(|h| self.adapters.iter().flat_map(move |a| a.config_paths(h)))
            .collect();
        paths.sort();
        paths.dedup();
        paths
    }

    /// Runs every diagnostic on one account, concurrently, sharing one probe per target.
    pub async fn diagnose(&self, account: &Account) -> Diagnosis {
        let shared = SharedProbes::new(&self.prober).with_logins(&self.credentials, &self.adapters);
        let shared = &shared;
        let runs = self.diagnostics.iter().map(|d| async move {
            let info = d.info();
            d.diagnose(account, shared)
                .await
                .into_iter()
                .map(move |f| (f, info.clone()))
                .collect::<Vec<_>>()
        });
        let findings = join_all(runs).await.into_iter().flatten().collect();
        Diagnosis {
            account: account.clone(),
            findings,
        }
    }

    /// Diagnoses every account concurrently.
    pub async fn diagnose_all(&self, accounts: &[Account]) -> Vec<Diagnosis> {
        join_all(accounts.iter().map(|a| self.diagnose(a))).await
    }
}

impl Host for Agent {
    /// The registry that the Outlook adapter's edits change.
    #[cfg(windows)]
    fn registry(&self) -> Option<&dyn mailmend_core::Registry> {
        Some(&mailmend_outlook::WindowsRegistry)
    }

    fn adapter(&self, client: ClientKind) -> Option<&dyn ClientAdapter> {
        self.adapters
            .iter()
            .find(|a| a.client() == client)
            .map(|a| a.as_ref())
    }

    fn performer(&self, action: &mailmend_core::Action) -> Option<&dyn Performer> {
        self.performers
            .iter()
            .find(|p| p.handles(action))
            .map(|p| p.as_ref())
    }

    /// The hosts the account's email domain names for its mail, looked up afresh: its SRV
    /// records, and autoconfig and Autodiscover fetched over HTTPS with a verified certificate
    /// (see [`Prober::discover_settings`]). Nothing from plain HTTP or another domain's records.
    fn extra_allowed_hosts<'a>(&'a self, account: &'a Account) -> BoxFuture<'a, Vec<String>> {
        Box::pin(async move {
            let Some(domain) = account.email_domain() else {
                return Vec::new();
            };
            self.prober
                .discover_settings(&domain, account.email.as_deref())
                .await
                .named_hosts()
        })
    }

    fn recheck<'a>(&'a self, account: &'a Account) -> BoxFuture<'a, Recheck> {
        Box::pin(async move {
            let Some(adapter) = Host::adapter(self, account.client) else {
                return Recheck::Gone {
                    reason: format!("no adapter for {}", account.client),
                };
            };
            for home in &self.homes {
                let d = adapter.discover(home);
                // Only an unreadable file means the account cannot be judged; other findings
                // about its configuration (an ambiguous setting) do not.
                if let Some(bad) = d
                    .findings
                    .iter()
                    .find(|f| f.account == account.id && f.code == "config.unreadable")
                {
                    return Recheck::Gone {
                        reason: bad.summary.clone(),
                    };
                }
                if let Some(fresh) = d.accounts.into_iter().find(|a| a.id == account.id) {
                    let diagnosis = self.diagnose(&fresh).await;
                    return Recheck::Checked {
                        findings: diagnosis.plain_findings(),
                    };
                }
            }
            Recheck::Gone {
                reason: "the account is no longer in its configuration".to_string(),
            }
        })
    }
}

/// The built-in client adapters available on this platform.
fn adapters() -> Vec<Box<dyn ClientAdapter>> {
    #[allow(unused_mut)] // pushed to only on Windows
    let mut adapters: Vec<Box<dyn ClientAdapter>> = vec![
        Box::new(mailmend_thunderbird::ThunderbirdAdapter::new()),
        Box::new(mailmend_mutt::MuttAdapter::new()),
        Box::new(mailmend_aerc::AercAdapter::new()),
        Box::new(mailmend_msmtp::MsmtpAdapter::new()),
        Box::new(mailmend_mbsync::MbsyncAdapter::new()),
        Box::new(mailmend_evolution::EvolutionAdapter::new()),
    ];
    // Outlook keeps its accounts in the Windows registry; other systems have none to read.
    #[cfg(windows)]
    adapters.push(Box::new(mailmend_outlook::OutlookAdapter::windows()));
    adapters
}

/// An email domain and address whose published settings were looked up.
type DiscoveryKey = (String, Option<String>);

/// The prober as the diagnostics of one account see it: every diagnostic asks about the same
/// configured endpoints, so each target is probed, each name resolved and each domain's
/// published settings looked up once per diagnosis, and concurrent askers wait for the one
/// lookup in flight. A new diagnosis (a re-check after a fix) starts empty, so it always sees
/// the network as it is now.
struct SharedProbes<'a> {
    inner: &'a RealProber,
    probes: Mutex<HashMap<ProbeTarget, Arc<OnceCell<ProbeReport>>>>,
    resolves: Mutex<HashMap<String, Arc<OnceCell<DnsReport>>>>,
    /// The authoritative answers: the connectivity diagnostic (is a moved server reachable?)
    /// and the DNS diagnostic (is the cache stale?) both ask for a failed endpoint's host, and
    /// the walk to the zone's servers is several round trips.
    authoritative: Mutex<HashMap<String, Arc<OnceCell<DnsReport>>>>,
    discoveries: Mutex<HashMap<DiscoveryKey, Arc<OnceCell<DiscoveredSettings>>>>,
    /// The login gate and the adapters that know the clients' passwords; `None`: no logins.
    logins: Option<(&'a Gate, &'a [Box<dyn ClientAdapter>])>,
}

impl<'a> SharedProbes<'a> {
    fn new(inner: &'a RealProber) -> Self {
        SharedProbes {
            inner,
            probes: Mutex::new(HashMap::new()),
            resolves: Mutex::new(HashMap::new()),
            authoritative: Mutex::new(HashMap::new()),
            discoveries: Mutex::new(HashMap::new()),
            logins: None,
        }
    }

    fn with_logins(mut self, gate: &'a Gate, adapters: &'a [Box<dyn ClientAdapter>]) -> Self {
        self.logins = Some((gate, adapters));
        self
    }
}

/// The cell for `key`, created on first use. A poisoned lock only means another diagnostic
/// panicked while inserting; the map itself is still consistent, so its content is used.
fn cell<K: std::hash::Hash + Eq + Clone, V>(
    map: &Mutex<HashMap<K, Arc<OnceCell<V>>>>,
    key: &K,
) -> Arc<OnceCell<V>> {
    let mut m = map.lock().unwrap_or_else(|e| e.into_inner());
    m.entry(key.clone()).or_default().clone()
}

impl Prober for SharedProbes<'_> {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, DnsReport> {
        Box::pin(async move {
            let c = cell(&self.resolves, &host.to_string());
            c.get_or_init(|| self.inner.resolve(host)).await.clone()
        })
    }

    fn probe<'a>(&'a self, target: &'a ProbeTarget) -> BoxFuture<'a, ProbeReport> {
        Box::pin(async move {
            let c = cell(&self.probes, target);
            // The name is resolved once per diagnosis (the cached `resolve`), not once per port:
            // a search over the port matrix would otherwise pay a lookup round trip per probe.
            c.get_or_init(|| async {
                let dns = self.resolve(&target.host).await.outcome;
                self.inner.probe_resolved(target, dns).await
            })
            .await
            .clone()
        })
    }

    fn probe_all<'a>(&'a self, targets: &'a [ProbeTarget]) -> BoxFuture<'a, Vec<ProbeReport>> {
        Box::pin(join_all(targets.iter().map(|t| self.probe(t))))
    }

    fn system_name_servers(&self) -> Vec<SocketAddr> {
        self.inner.system_name_servers()
    }

    fn resolve_via<'a>(&'a self, host: &'a str, server: SocketAddr) -> BoxFuture<'a, DnsReport> {
        self.inner.resolve_via(host, server)
    }

    fn resolve_authoritative<'a>(&'a self, host: &'a str) -> BoxFuture<'a, DnsReport> {
        Box::pin(async move {
            let c = cell(&self.authoritative, &host.to_string());
            c.get_or_init(|| self.inner.resolve_authoritative(host))
                .await
                .clone()
        })
    }

    fn local_firewall<'a>(&'a self, addr: IpAddr, port: u16) -> BoxFuture<'a, FirewallVerdict> {
        self.inner.local_firewall(addr, port)
    }

    fn kerberos_tickets<'a>(&'a self, os_user: &'a str) -> BoxFuture<'a, KerberosReport> {
        self.inner.kerberos_tickets(os_user)
    }

    /// Through the gate: the endpoint's probe of this diagnosis decides whether it is healthy,
    /// the account's adapter supplies the password, the ledger decides whether to try.
    fn try_login<'a>(&'a self, account: &'a Account, role: Role) -> BoxFuture<'a, LoginReport> {
        Box::pin(async move {
            let target = match account.endpoint(role) {
                Some(ep) => mailmend_core::credential::target_of(ep),
                None => return Prober::try_login(self.inner, account, role).await,
            };
            let Some((gate, adapters)) = self.logins else {
                return LoginReport::not_attempted(
                    target,
                    mailmend_core::NotAttempted::Unsupported,
                );
            };
            let probe = self.probe(&target).await;
            let adapter = adapters
                .iter()
                .find(|a| a.client() == account.client)
                .map(|a| a.as_ref());
            gate.try_login(adapter, self.inner, &probe, account, role)
                .await
        })
    }

    fn discover_settings<'a>(
        &'a self,
        email_domain: &'a str,
        email: Option<&'a str>,
    ) -> BoxFuture<'a, DiscoveredSettings> {
        Box::pin(async move {
            let key = (email_domain.to_string(), email.map(str::to_string));
            let c = cell(&self.discoveries, &key);
            c.get_or_init(|| self.inner.discover_settings(email_domain, email))
                .await
                .clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailmend_core::{DnsOutcome, Protocol, Security};
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn diagnostics_of_one_account_share_one_connection_per_target() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                drop(sock);
            }
        });
        let real = RealProber::new(ProbeConfig::default()).unwrap();
        let shared = SharedProbes::new(&real);
        let target = ProbeTarget {
            protocol: Protocol::Imap,
            host: "127.0.0.1".into(),
            port,
            security: Security::None,
        };
        let targets = vec![target.clone(), target.clone()];
        let (a, b, c) = tokio::join!(
            shared.probe(&target),
            shared.probe(&target),
            shared.probe_all(&targets)
        );
        assert_eq!(a, b);
        assert_eq!(c, vec![a.clone(), a]);
        assert_eq!(accepted.load(Ordering::SeqCst), 1);

        // A new diagnosis probes again: a re-check after a fix must see the network as it is.
        let fresh = SharedProbes::new(&real);
        fresh.probe(&target).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    /// Regression: the connectivity and DNS diagnostics each walked to the zone's authoritative
    /// servers for the same failed host, so a broken account paid that walk (three round trips
    /// or more) twice, one after the other.
    #[tokio::test]
    async fn diagnostics_of_one_account_share_one_authoritative_walk() {
        // A name server that refuses everything: each walk asks it once and then gives up, so
        // the datagrams it receives count the walks.
        let server = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        let queries = Arc::new(AtomicUsize::new(0));
        let counter = queries.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = server.recv_from(&mut buf).await {
                counter.fetch_add(1, Ordering::SeqCst);
                if n >= 12 {
                    // The query's id and question, flagged as a response with rcode REFUSED.
                    let mut reply = buf[..n].to_vec();
                    reply[2] |= 0x80;
                    reply[3] = (reply[3] & 0xf0) | 5;
                    let _ = server.send_to(&reply, from).await;
                }
            }
        });
        let real = RealProber::new(ProbeConfig::default())
            .unwrap()
            .with_name_servers(vec![addr]);
        let shared = SharedProbes::new(&real);
        let host = "imap.example.test";
        let (a, b) = tokio::join!(
            shared.resolve_authoritative(host),
            shared.resolve_authoritative(host)
        );
        let c = shared.resolve_authoritative(host).await;
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert!(
            matches!(a.outcome, DnsOutcome::ResolverUnreachable { .. }),
            "a refusing server is unreachable for the walk: {a:?}"
        );
        let one_walk = queries.load(Ordering::SeqCst);
        assert!(one_walk >= 1, "the walk asked the name server");

        // A new diagnosis walks again: a re-check after a fix must see the zone as it is now.
        SharedProbes::new(&real).resolve_authoritative(host).await;
        assert_eq!(queries.load(Ordering::SeqCst), 2 * one_walk);
    }
}
