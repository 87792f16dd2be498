//! [`RealProber`]: the network as diagnostics see it, for real.

use crate::authoritative;
use crate::config::{ProbeConfig, ProbeError};
use crate::conn::Limits;
use crate::dialogue::{self, SessionParams};
use crate::dns::{self, NameServers};
use crate::firewall_cmd;
use crate::kerberos;
use crate::resolv::DNS_PORT;
use crate::tcp;
use crate::tls::TlsContext;
use mailmend_core::DiscoveredSettings;
use mailmend_core::{
    BoxFuture, DnsOutcome, DnsReport, FirewallVerdict, KerberosReport, LoginReport, LoginRequest,
    NotAttempted, ProbeReport, ProbeTarget, Prober, TcpOutcome,
};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The EHLO name used when the machine's host name is not a fully qualified domain name.
pub const FALLBACK_EHLO_NAME: &str = "mailmend.invalid";

/// Probes DNS, TCP, TLS and the mail protocols over the real network.
///
/// Cheap to clone: clones share the trust roots. Needs a Tokio runtime to run its futures.
#[derive(Debug, Clone)]
pub struct RealProber {
    inner: Arc<Inner>,
}

#[derive(Debug, Clone)]
struct Inner {
    cfg: ProbeConfig,
    tls: TlsContext,
    name_servers: NameServers,
    ehlo_name: String,
    /// The port authoritative name servers are asked on.
    authoritative_port: u16,
    krb5_conf: PathBuf,
}

/// Where MIT Kerberos' configuration is, unless told otherwise.
pub const DEFAULT_KRB5_CONF: &str = "/etc/krb5.conf";

impl RealProber {
    /// Loads the system trust roots and the configured extra CA files.
    ///
    /// Fails when the configuration is inconsistent or an extra CA file cannot be read or holds
    /// no usable certificate; the error names the file.
    pub fn new(cfg: ProbeConfig) -> Result<RealProber, ProbeError> {
        cfg.validate()?;
        let tls = TlsContext::new(&cfg.extra_ca_files)?;
        Ok(RealProber {
            inner: Arc::new(Inner {
                cfg,
                tls,
                name_servers: NameServers::System,
                ehlo_name: local_ehlo_name(),
                authoritative_port: DNS_PORT,
                krb5_conf: PathBuf::from(DEFAULT_KRB5_CONF),
            }),
        })
    }

    /// Resolves through these name servers (UDP, TCP on truncation) instead of the system's
    /// configured ones; the hosts file is still honoured. Lets a diagnostic compare the
    /// system resolver with a known-good one.
    pub fn with_name_servers(mut self, servers: Vec<SocketAddr>) -> RealProber {
        Arc::make_mut(&mut self.inner).name_servers = NameServers::Explicit(servers);
        self
    }

    /// Asks authoritative name servers on this port instead of 53. Real zones are always served
    /// on 53; this exists so that tests can run their own authoritative server (NSD on a high
    /// port of 127.0.0.x) without the privileged port. The servers' addresses still come from
    /// the zone's NS records.
    pub fn with_authoritative_port(mut self, port: u16) -> RealProber {
        Arc::make_mut(&mut self.inner).authoritative_port = port;
        self
    }

    /// Reads Kerberos' `default_ccache_name` from this file instead of
    /// [`DEFAULT_KRB5_CONF`] (read afresh for every report).
    pub fn with_krb5_config(mut self, path: impl Into<PathBuf>) -> RealProber {
        Arc::make_mut(&mut self.inner).krb5_conf = path.into();
        self
    }

    /// The name sent in SMTP EHLO: the host name when it is fully qualified, otherwise
    /// [`FALLBACK_EHLO_NAME`].
    pub fn ehlo_name(&self) -> &str {
        &self.inner.ehlo_name
    }

    pub fn config(&self) -> &ProbeConfig {
        &self.inner.cfg
    }

    /// Probes `target` at the addresses of a resolution the caller already has (the system
    /// resolver's answer for `target.host`), instead of resolving again: a diagnosis resolves
    /// each name once and probes many ports of it, and every lookup costs a round trip.
    /// `elapsed_ms` then counts from the connect, not from the lookup.
    pub async fn probe_resolved(&self, target: &ProbeTarget, dns: DnsOutcome) -> ProbeReport {
        tracing::debug!(%target, "probing");
        self.inner.probe_resolved(target, dns, Instant::now()).await
    }

    /// Logs in once to `target` with `request` and reports the translated answer (see
    /// [`crate::login`]): only over implicit TLS or STARTTLS with a verified certificate, one
    /// attempt, then logout; after a successful SMTP login, `MAIL FROM` and `RCPT TO` with the
    /// request's sender when `check_sender` is set, then `RSET` (never `DATA`). The caller decides
    /// whether a login may be tried at all; this only does it safely. Ends within
    /// `connect_timeout + (1 + LOGIN_SESSION_IO_TIMEOUTS) × io_timeout`.
    pub async fn login(
        &self,
        target: &ProbeTarget,
        request: &LoginRequest,
        check_sender: bool,
    ) -> LoginReport {
        let started = Instant::now();
        let refuse = |reason| LoginReport::not_attempted(target.clone(), reason);
        if !target.security.is_encrypted() {
            return refuse(NotAttempted::NotEncrypted);
        }
        if request.username.is_empty() {
            return refuse(NotAttempted::NoUsername);
        }
        if request.secret.is_empty() {
            return refuse(NotAttempted::NoCredential);
        }
        let inner = &self.inner;
        let dns = inner.resolve(&target.host).await.outcome;
        let addresses = match &dns {
            DnsOutcome::Resolved { addresses } => tcp::interleave(addresses, target.port),
            other => {
                return refuse(NotAttempted::ConnectionFailed {
                    detail: format!("name not resolved: {other:?}"),
                })
            }
        };
        let (stream, tcp) = tcp::connect(addresses, inner.cfg.connect_timeout).await;
        let Some(stream) = stream else {
            return refuse(NotAttempted::ConnectionFailed {
                detail: format!("tcp: {tcp:?}"),
            });
        };
        let params = crate::login::LoginParams {
            session: SessionParams {
                tls: &inner.tls,
                host: &target.host,
                protocol: target.protocol,
                security: target.security,
                ehlo_name: &inner.ehlo_name,
                limits: Limits {
                    io_timeout: inner.cfg.io_timeout,
                    max_line_bytes: inner.cfg.max_line_bytes,
                    max_total_bytes: inner.cfg.max_total_bytes,
                },
            },
            check_sender,
        };
        crate::login::run(params, target, stream, request, started).await
    }
}

impl Inner {
    async fn resolve(&self, host: &str) -> DnsReport {
        let started = Instant::now();
        tracing::debug!(host, "resolving");
        let outcome = dns::resolve(
            &self.name_servers,
            host,
            self.cfg.io_timeout,
            dns::Mode::System,
        )
        .await;
        tracing::debug!(host, ?outcome, "resolved");
        DnsReport {
            host: host.to_string(),
            outcome,
            elapsed_ms: elapsed_ms(started),
        }
    }

    async fn resolve_via(&self, host: &str, server: SocketAddr) -> DnsReport {
        let started = Instant::now();
        let servers = NameServers::Explicit(vec![server]);
        // The hosts file is no name server: a comparison of servers must not see it.
        let outcome = dns::resolve(&servers, host, self.cfg.io_timeout, dns::Mode::Direct).await;
        tracing::debug!(host, %server, ?outcome, "resolved through one server");
        DnsReport {
            host: host.to_string(),
            outcome,
            elapsed_ms: elapsed_ms(started),
        }
    }

    async fn resolve_authoritative(&self, host: &str) -> DnsReport {
        let started = Instant::now();
        let lookup = authoritative::Lookup {
            name_servers: &self.name_servers,
            recursive: dns::configured_servers(&self.name_servers),
            port: self.authoritative_port,
            timeout: self.cfg.io_timeout,
        };
        let outcome = authoritative::resolve(&lookup, host).await;
        tracing::debug!(host, ?outcome, "resolved authoritatively");
        DnsReport {
            host: host.to_string(),
            outcome,
            elapsed_ms: elapsed_ms(started),
        }
    }

    async fn probe(&self, target: &ProbeTarget) -> ProbeReport {
        let started = Instant::now();
        tracing::debug!(%target, "probing");
        let dns = self.resolve(&target.host).await.outcome;
        self.probe_resolved(target, dns, started).await
    }

    /// Probes `target` at the addresses `dns` gave (`elapsed_ms` counts from `started`).
    async fn probe_resolved(
        &self,
        target: &ProbeTarget,
        dns: DnsOutcome,
        started: Instant,
    ) -> ProbeReport {
        let addresses = match &dns {
            DnsOutcome::Resolved { addresses } => tcp::interleave(addresses, target.port),
            _ => Vec::new(),
        };
        let (stream, tcp) = tcp::connect(addresses, self.cfg.connect_timeout).await;
        let mut report = ProbeReport {
            target: target.clone(),
            dns,
            tcp,
            tls: None,
            capabilities: None,
            protocol_error: None,
            elapsed_ms: 0,
        };
        if let Some(stream) = stream {
            let params = SessionParams {
                tls: &self.tls,
                host: &target.host,
                protocol: target.protocol,
                security: target.security,
                ehlo_name: &self.ehlo_name,
                limits: Limits {
                    io_timeout: self.cfg.io_timeout,
                    max_line_bytes: self.cfg.max_line_bytes,
                    max_total_bytes: self.cfg.max_total_bytes,
                },
            };
            let session = dialogue::run(params, stream).await;
            report.tls = session.tls;
            report.capabilities = session.capabilities;
            report.protocol_error = session.protocol_error;
        }
        report.elapsed_ms = elapsed_ms(started);
        tracing::debug!(%target, healthy = report.is_healthy(), elapsed_ms = report.elapsed_ms, "probed");
        report
    }
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Aborts the probes still running when `probe_all`'s future is dropped.
struct AbortOnDrop(Vec<JoinHandle<ProbeReport>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for handle in &self.0 {
            handle.abort();
        }
    }
}

impl Prober for RealProber {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, DnsReport> {
        Box::pin(self.inner.resolve(host))
    }

    /// The `nameserver` entries of `/etc/resolv.conf`, read afresh (inside `ip netns exec`,
    /// the namespace's own file), or the servers given to [`RealProber::with_name_servers`].
    fn system_name_servers(&self) -> Vec<SocketAddr> {
        dns::configured_servers(&self.inner.name_servers)
    }

    /// A and AAAA through exactly this server over UDP (TCP after truncation), with no cache
    /// and no hosts file, within `io_timeout`; classified as [`Prober::resolve`] is.
    fn resolve_via<'a>(&'a self, host: &'a str, server: SocketAddr) -> BoxFuture<'a, DnsReport> {
        Box::pin(self.inner.resolve_via(host, server))
    }

    /// The zone's authoritative answer, asked without recursion, within `io_timeout` overall
    /// (see the `authoritative` module for the walk).
    fn resolve_authoritative<'a>(&'a self, host: &'a str) -> BoxFuture<'a, DnsReport> {
        Box::pin(self.inner.resolve_authoritative(host))
    }

    /// Evaluates `nft -j list ruleset` (else `iptables -S`) for outbound TCP to `addr:port`;
    /// the tool may take `io_timeout`. Unknown when neither tool can be run or the ruleset's
    /// verdict depends on what cannot be known here.
    fn local_firewall<'a>(&'a self, addr: IpAddr, port: u16) -> BoxFuture<'a, FirewallVerdict> {
        Box::pin(firewall_cmd::verdict(addr, port, self.inner.cfg.io_timeout))
    }

    /// The user's default FILE cache, found through krb5.conf (never `KRB5CCNAME`, which is
    /// the user's own environment). A missing cache is no error: the report has no tickets.
    fn kerberos_tickets<'a>(&'a self, os_user: &'a str) -> BoxFuture<'a, KerberosReport> {
        Box::pin(kerberos::report(os_user, &self.inner.krb5_conf))
    }

    fn probe<'a>(&'a self, target: &'a ProbeTarget) -> BoxFuture<'a, ProbeReport> {
        Box::pin(self.inner.probe(target))
    }

    /// SRV, autoconfig and Autodiscover of `email_domain`, concurrently, over this prober's
    /// resolver and trust roots (HTTPS only), within `connect_timeout + 4 × io_timeout`.
    fn discover_settings<'a>(
        &'a self,
        email_domain: &'a str,
        email: Option<&'a str>,
    ) -> BoxFuture<'a, DiscoveredSettings> {
        let net = crate::http::Net {
            tls: self.inner.tls.clone(),
            name_servers: self.inner.name_servers.clone(),
            connect_timeout: self.inner.cfg.connect_timeout,
            io_timeout: self.inner.cfg.io_timeout,
        };
        Box::pin(crate::discover::discover(net, email_domain, email))
    }

    fn probe_all<'a>(&'a self, targets: &'a [ProbeTarget]) -> BoxFuture<'a, Vec<ProbeReport>> {
        Box::pin(async move {
            let started = Instant::now();
            // Each target runs as its own task, so that one slow target delays no other.
            let mut tasks = AbortOnDrop(
                targets
                    .iter()
                    .map(|target| {
                        let inner = self.inner.clone();
                        let target = target.clone();
                        tokio::spawn(async move { inner.probe(&target).await })
                    })
                    .collect(),
            );
            let mut reports = Vec::with_capacity(targets.len());
            for (handle, target) in tasks.0.iter_mut().zip(targets) {
                let report = match handle.await {
                    Ok(report) => report,
                    Err(e) => ProbeReport {
                        target: target.clone(),
                        dns: DnsOutcome::Failed {
                            detail: format!("probe task failed: {e}"),
                        },
                        tcp: TcpOutcome::Failed {
                            detail: format!("probe task failed: {e}"),
                        },
                        tls: None,
                        capabilities: None,
                        protocol_error: Some(format!("probe task failed: {e}")),
                        elapsed_ms: elapsed_ms(started),
                    },
                };
                reports.push(report);
            }
            reports
        })
    }
}

/// The machine's host name if it is a fully qualified domain name, else the fallback.
fn local_ehlo_name() -> String {
    for path in ["/proc/sys/kernel/hostname", "/etc/hostname"] {
        if let Ok(name) = std::fs::read_to_string(path) {
            let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
            if is_fqdn(&name) {
                return name;
            }
        }
    }
    FALLBACK_EHLO_NAME.to_string()
}

/// Whether `name` is a syntactically valid domain name with at least two labels (RFC 5321
/// wants a fully qualified name in EHLO, and strict servers reject a bare host name).
fn is_fqdn(name: &str) -> bool {
    name.len() <= 253
        && name.contains('.')
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ehlo_names_must_be_fully_qualified() {
        assert!(is_fqdn("laptop.corp.example.com"));
        assert!(!is_fqdn("laptop"));
        assert!(!is_fqdn("bad_name.example"));
        assert!(!is_fqdn("-x.example"));
        assert!(!is_fqdn("a..b"));
    }
}
