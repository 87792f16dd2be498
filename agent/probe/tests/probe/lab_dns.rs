//! Real DNS servers for the authoritative-lookup tests: NSD serving `example.test` on a high
//! port of 127.77.N.1, and Unbound on 127.77.N.2 forwarding that zone to it (a stub zone), with
//! every other name refused so that nothing leaves the machine. Each lab has its own N and
//! ports, so tests run in parallel.

use mailmend_core::{DnsOutcome, Prober};
use mailmend_probe::{ProbeConfig, RealProber};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ZONE: &str = "example.test";

/// A port free for both UDP and TCP on `ip`, found by asking the kernel for one.
pub fn free_port(ip: Ipv4Addr) -> u16 {
    loop {
        let tcp = TcpListener::bind((ip, 0)).unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind((ip, port)).is_ok() {
            return port;
        }
    }
}

fn tool(name: &str) -> PathBuf {
    let path = PathBuf::from("/usr/sbin").join(name);
    assert!(
        path.is_file(),
        "{} is missing: install the nsd and unbound packages (tests/install-deps.sh)",
        path.display()
    );
    path
}

/// A daemon this test started, ended by its own process id when dropped.
pub struct Daemon(Option<Child>);

impl Daemon {
    pub fn spawn(command: &mut Command) -> Daemon {
        spawn(command)
    }

    /// Stands for a daemon not started yet; dropping it ends nothing.
    pub fn placeholder() -> Daemon {
        Daemon(None)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub struct DnsLab {
    dir: tempfile::TempDir,
    pub ns_ip: Ipv4Addr,
    pub auth_port: u16,
    pub resolver: SocketAddr,
    nsd: Option<Daemon>,
    _unbound: Daemon,
}

impl DnsLab {
    /// Starts NSD with `records` (zone-file lines relative to `example.test.`) and Unbound in
    /// front of it; `n` picks the 127.77.n.0 addresses and must differ between tests.
    pub async fn start(n: u8, records: &str) -> DnsLab {
        let ns_ip = Ipv4Addr::new(127, 77, n, 1);
        let resolver_ip = Ipv4Addr::new(127, 77, n, 2);
        let auth_port = free_port(ns_ip);
        let resolver = SocketAddr::new(IpAddr::V4(resolver_ip), free_port(resolver_ip));
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        std::fs::write(
            dir.path().join("unbound.conf"),
            format!(
                "server:\n  interface: {resolver_ip}@{port}\n  port: {port}\n  do-daemonize: no\n  username: \"\"\n  chroot: \"\"\n  directory: \"{d}\"\n  pidfile: \"{d}/unbound.pid\"\n  use-syslog: no\n  logfile: \"{d}/unbound.log\"\n  num-threads: 1\n  access-control: 127.0.0.0/8 allow\n  do-not-query-localhost: no\n  module-config: \"iterator\"\n  local-zone: \".\" refuse\n  local-zone: \"test.\" transparent\nremote-control:\n  control-enable: no\nstub-zone:\n  name: \"{ZONE}\"\n  stub-addr: {ns_ip}@{auth_port}\n",
                port = resolver.port()
            ),
        )
        .unwrap();
        let unbound = spawn(
            Command::new(tool("unbound"))
                .arg("-d")
                .arg("-c")
                .arg(dir.path().join("unbound.conf")),
        );
        let mut lab = DnsLab {
            dir,
            ns_ip,
            auth_port,
            resolver,
            nsd: None,
            _unbound: unbound,
        };
        lab.publish(records).await;
        lab.wait_until_answering(lab.resolver, "ns1.example.test")
            .await;
        lab
    }

    /// (Re)starts NSD with this zone content: what an administrator moving a server does.
    pub async fn publish(&mut self, records: &str) {
        self.nsd = None;
        let dir = self.dir.path();
        let serial = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            % 4_000_000_000;
        std::fs::write(
            dir.join("example.test.zone"),
            format!(
                "$ORIGIN {ZONE}.\n$TTL 3600\n@ IN SOA ns1 hostmaster {serial} 3600 600 86400 60\n@ IN NS ns1\nns1 IN A {}\n{records}\n",
                self.ns_ip
            ),
        )
        .unwrap();
        write_nsd_conf(dir, self.ns_ip, self.auth_port);
        self.nsd = Some(spawn(
            Command::new(tool("nsd"))
                .arg("-d")
                .arg("-c")
                .arg(dir.join("nsd.conf")),
        ));
        let nsd = SocketAddr::new(IpAddr::V4(self.ns_ip), self.auth_port);
        self.wait_until_answering(nsd, "ns1.example.test").await;
    }

    async fn wait_until_answering(&self, server: SocketAddr, name: &str) {
        let prober = quick();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let report = prober.resolve_via(name, server).await;
            if matches!(report.outcome, DnsOutcome::Resolved { .. }) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{server} does not answer: {report:?}; logs:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn logs(&self) -> String {
        ["nsd.log", "unbound.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A prober whose system resolver is this lab's Unbound and whose authoritative queries
    /// go to NSD's port.
    pub fn prober(&self, io: Duration) -> RealProber {
        RealProber::new(ProbeConfig {
            connect_timeout: Duration::from_secs(1),
            io_timeout: io,
            ..ProbeConfig::default()
        })
        .unwrap()
        .with_name_servers(vec![self.resolver])
        .with_authoritative_port(self.auth_port)
    }
}

fn write_nsd_conf(dir: &Path, ip: Ipv4Addr, port: u16) {
    let d = dir.display();
    std::fs::write(
        dir.join("nsd.conf"),
        format!(
            "server:\n  ip-address: {ip}@{port}\n  zonesdir: \"{d}\"\n  database: \"\"\n  pidfile: \"{d}/nsd.pid\"\n  xfrdfile: \"{d}/xfrd.state\"\n  zonelistfile: \"{d}/zone.list\"\n  username: \"\"\n  chroot: \"\"\n  logfile: \"{d}/nsd.log\"\n  server-count: 1\n  reuseport: no\nremote-control:\n  control-enable: no\nzone:\n  name: {ZONE}\n  zonefile: example.test.zone\n"
        ),
    )
    .unwrap();
}

fn spawn(command: &mut Command) -> Daemon {
    Daemon(Some(
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    ))
}

pub fn quick() -> RealProber {
    RealProber::new(ProbeConfig {
        connect_timeout: Duration::from_secs(1),
        io_timeout: Duration::from_millis(500),
        ..ProbeConfig::default()
    })
    .unwrap()
}
