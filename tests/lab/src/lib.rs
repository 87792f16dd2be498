//! The mailmend end-to-end test lab: real Dovecot, Postfix, NSD, Unbound, MIT Kerberos and
//! nginx from Debian packages, started in network namespaces for one test and torn down after.
//!
//! ```text
//!  client ns mml<id>-cli                      server ns mml<id>-srv
//!  10.213.<id>.100 eth0 ===== veth ===== eth0 .2 NSD  .3 Unbound  .4 KDC
//!  127.0.0.1 local caching Unbound               .10 mail  .11 mail2 (Dovecot, Postfix)
//!  nftables table `inet lab`                     .20 nginx (autoconfig, autodiscover)
//! ```
//!
//! Every address lives inside the two namespaces; neither has a default route, so nothing a
//! test does can leave the lab. See tests/README.md for how to run and debug.

mod certs;
mod conf;
mod state;
mod sys;
mod zone;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

pub use certs::{CertKind, MAIL_NAMES};
pub use zone::HOSTING_DOMAIN;

use certs::Certs;
use conf::{Addrs, Layout};
use sys::Proto;
use zone::{Zone, ZoneAddrs};

/// The lab's mail domain.
pub const DOMAIN: &str = "example.com";
/// The lab's Kerberos realm.
pub const REALM: &str = "EXAMPLE.COM";

/// A mail user of the lab, known to Dovecot, Postfix and the KDC with the same password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct User {
    /// IMAP/POP3/SMTP login and mail address.
    pub login: &'static str,
    /// The password everywhere (Dovecot passwd-file, Kerberos principal).
    pub password: &'static str,
    /// Kerberos principal name without the realm.
    pub principal: &'static str,
}

/// alice@example.com.
pub const ALICE: User = User {
    login: "alice@example.com",
    password: "alice-lab-password",
    principal: "alice",
};
/// bob@example.com.
pub const BOB: User = User {
    login: "bob@example.com",
    password: "bob-lab-password",
    principal: "bob",
};
/// Every lab user.
pub const USERS: [User; 2] = [ALICE, BOB];

/// How a client secures a mail connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tls {
    /// TLS from the first byte (993, 995, 465).
    Implicit,
    /// Plain connect, then STARTTLS/STLS, which the client requires.
    StartTls,
    /// No TLS at all (servers refuse authentication on such connections).
    Plain,
}

/// Text views of a command's output.
pub trait OutputExt {
    /// Standard output, lossily decoded.
    fn stdout_text(&self) -> String;
    /// Standard error, lossily decoded.
    fn stderr_text(&self) -> String;
    /// Exit status, stdout and stderr together, for assertion messages.
    fn describe(&self) -> String;
}

impl OutputExt for Output {
    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    fn describe(&self) -> String {
        format!(
            "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            self.stdout_text(),
            self.stderr_text()
        )
    }
}

/// One request nginx answered, as its access log records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebRequest {
    /// The client's address.
    pub client: String,
    /// `http` or `https`.
    pub scheme: String,
    /// The Host the client asked for.
    pub host: String,
    /// The request line, e.g. `POST /autodiscover/autodiscover.xml HTTP/1.1`.
    pub request: String,
    pub status: u16,
}

impl WebRequest {
    /// Reads one line of the `lab` log format: `addr scheme host "request" status`.
    fn parse(line: &str) -> Option<WebRequest> {
        let (head, rest) = line.split_once(" \"")?;
        let (request, status) = rest.rsplit_once("\" ")?;
        let mut head = head.split(' ');
        Some(WebRequest {
            client: head.next()?.to_string(),
            scheme: head.next()?.to_string(),
            host: head.next()?.to_string(),
            request: request.to_string(),
            status: status.trim().parse().ok()?,
        })
    }
}

/// A message to send over SMTP.
#[derive(Clone, Copy, Debug)]
pub struct Mail<'a> {
    /// Envelope and header sender.
    pub from: &'a str,
    /// Envelope and header recipient.
    pub to: &'a str,
    /// Subject header.
    pub subject: &'a str,
    /// Body text.
    pub body: &'a str,
}

/// The mailmend binary the scenario tests run: `MAILMEND_BIN`, else the `mailmend` next to
/// this test executable's profile directory (honours a custom target dir), else
/// `<workspace>/target/debug/mailmend`.
pub fn mailmend_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("MAILMEND_BIN") {
        return PathBuf::from(p);
    }
    if let Ok(exe) = std::env::current_exe() {
        // Test executables live in <target>/<profile>/deps/.
        if let Some(profile) = exe.parent().and_then(Path::parent) {
            let candidate = profile.join("mailmend");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/mailmend")
}

/// Removes what killed runs left behind: processes, namespaces, /etc/netns directories and
/// lab directories of every lab whose owning process is gone, including labs kept with
/// MAILMEND_LAB_KEEP. Live labs (of this or another process) are never touched. Returns a line
/// per thing removed.
pub fn cleanup_stale() -> Result<Vec<String>> {
    state::cleanup(true)
}

/// The directory holding every lab's directory (`<root>/<id>/`) and the lock files.
pub fn lab_root() -> PathBuf {
    state::base_dir()
}

/// A held lab slot (see `reserve_slot`).
#[derive(Debug)]
pub struct LabSlot {
    _slot: Arc<fs::File>,
}

/// Takes one of the machine's lab slots (MAILMEND_LAB_PARALLEL, default 1) and holds it until
/// dropped: with the default, no other lab of any process starts meanwhile. Labs this thread
/// starts while holding it share the slot instead of waiting for another.
pub fn reserve_slot() -> Result<LabSlot> {
    Ok(LabSlot {
        _slot: state::acquire_slot()?,
    })
}

/// The ports each daemon must listen on before the lab counts as started.
const DOVECOT_PORTS: [u16; 4] = [143, 993, 110, 995];
const POSTFIX_PORTS: [u16; 3] = [25, 587, 465];

/// A sign that a daemon has started.
#[derive(Clone, Debug)]
enum Ready {
    /// A TCP socket listening, or a UDP socket bound, on this address and port in the
    /// daemon's namespace.
    Inet(Proto, Ipv4Addr, u16),
    /// A unix socket listening at this path.
    Unix(PathBuf),
    /// This text in this log file.
    Log(PathBuf, &'static str),
}

/// A daemon name with one sign that it has started.
type Check = (&'static str, Ready);

struct Daemon {
    name: &'static str,
    child: Child,
}

/// A running lab. Dropping it stops every daemon it started and removes its namespaces, its
/// /etc/netns files and its directory, also when a test panics (the daemon logs are printed
/// first). With `MAILMEND_LAB_KEEP=1` it is left running for inspection instead.
pub struct Lab {
    id: u8,
    addrs: Addrs,
    layout: Layout,
    ns: [String; 2],
    certs: Certs,
    daemons: Mutex<Vec<Daemon>>,
    zone: Mutex<Zone>,
    /// hosting.test, the provider in another domain.
    hosting_zone: Mutex<Zone>,
    keep: bool,
    startup: Duration,
    _claim: state::IdClaim,
    _slot: Arc<fs::File>,
}

// Scenario tests share a lab across threads and async tasks.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Lab>();
};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind that is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Lab {
    /// Builds and starts a complete lab: namespaces and addresses, certificates, then every
    /// daemon, returning once each listens. Needs root and the packages of
    /// tests/install-deps.sh. Waits for a free slot first (MAILMEND_LAB_PARALLEL, default 1).
    pub fn start() -> Result<Lab> {
        preflight()?;
        let slot = state::acquire_slot()?;
        let t0 = Instant::now();
        state::cleanup(false)?;
        let claim = state::claim_id()?;
        let id = claim.id;
        let root = state::base_dir().join(id.to_string());
        sys::mkdir(&root, 0o755)?;
        let layout = Layout { root };
        let addrs = Addrs { id };
        let mut lab = Lab {
            id,
            addrs,
            certs: Certs::paths(&layout.p("certs")),
            zone: Mutex::new(Zone::example(ZoneAddrs {
                ns: addrs.ns(),
                mail: addrs.mail(),
                new_mail: addrs.new_mail(),
                web: addrs.web(),
                kdc: addrs.kdc(),
            })),
            hosting_zone: Mutex::new(Zone::hosting(ZoneAddrs {
                ns: addrs.ns(),
                mail: addrs.mail(),
                new_mail: addrs.new_mail(),
                web: addrs.web(),
                kdc: addrs.kdc(),
            })),
            layout,
            ns: state::ns_names(id),
            daemons: Mutex::new(Vec::new()),
            keep: env_flag("MAILMEND_LAB_KEEP"),
            startup: Duration::ZERO,
            _claim: claim,
            _slot: slot,
        };
        if let Err(e) = lab.build() {
            let logs = lab.logs_tail(30);
            drop(lab);
            return Err(e.context(format!("lab {id} failed to start; daemon logs:\n{logs}")));
        }
        lab.startup = t0.elapsed();
        Ok(lab)
    }

    fn build(&mut self) -> Result<()> {
        let l = self.layout.clone();
        for dir in [
            "logs",
            "dovecot",
            "dovecot/state",
            "nsd",
            "nsd/xfr",
            "unbound",
            "unbound-local",
            "krb5",
            "krb5cc",
            "nginx",
            "www",
            "www/mail",
            "www/.well-known/autoconfig/mail",
            "www/autodiscover",
            "www-http",
            "www-http/mail",
            "www-http/.well-known/autoconfig/mail",
            "home",
            "state",
            "postfix",
            "postfix/conf",
        ] {
            sys::mkdir(&l.p(dir), 0o755)?;
        }
        let (mail_uid, mail_gid) = sys::user_ids("mail")?;
        let mail_root = l.p("mail");
        sys::mkdir(&mail_root, 0o770)?;
        std::os::unix::fs::chown(&mail_root, Some(mail_uid), Some(mail_gid))?;

        // The slow independent steps run beside the network setup.
        let certs = self.certs.clone();
        let id = self.id;
        let t0 = Instant::now();
        let certs_job = thread::spawn(move || {
            let r = certs.create(id);
            trace("certificates", t0);
            r
        });
        let kdc_job = {
            let (l, a) = (l.clone(), self.addrs);
            thread::spawn(move || {
                let r = create_kdc_database(&l, a);
                trace("kerberos database", t0);
                r
            })
        };

        self.setup_network()?;
        // Recorded now so that a run killed during start-up can still be cleaned up.
        self.write_lab_json()?;
        trace("network", t0);
        self.write_configs(mail_uid, mail_gid)?;
        trace("configs", t0);
        let [cli, srv] = self.ns.clone();
        let cfg = |rel: &str| l.p(rel).display().to_string();
        self.spawn("nsd", &srv, "nsd", &["-d", "-c", &cfg("nsd/nsd.conf")], &[])?;
        self.spawn(
            "unbound",
            &srv,
            "unbound",
            &["-d", "-c", &cfg("unbound/unbound.conf")],
            &[],
        )?;
        self.spawn(
            "unbound-local",
            &cli,
            "unbound",
            &["-d", "-c", &cfg("unbound-local/unbound.conf")],
            &[],
        )?;

        join(certs_job, "certificate")?;
        self.spawn(
            "dovecot",
            &srv,
            "dovecot",
            &["-F", "-c", &cfg("dovecot/dovecot.conf")],
            &[],
        )?;
        self.spawn(
            "postfix",
            &srv,
            "/usr/lib/postfix/sbin/master",
            &["-c", &cfg("postfix/conf")],
            &[],
        )?;
        self.spawn(
            "nginx",
            &srv,
            "nginx",
            &[
                "-c",
                &cfg("nginx/nginx.conf"),
                "-p",
                &cfg("nginx"),
                "-e",
                &cfg("logs/nginx-error.log"),
            ],
            &[],
        )?;
        join(kdc_job, "Kerberos database")?;
        self.spawn(
            "krb5kdc",
            &srv,
            "krb5kdc",
            &["-n", "-r", REALM, "-P", &cfg("krb5/krb5kdc.pid")],
            &krb5_env(&l),
        )?;

        let a = self.addrs;
        let inet = |name, proto, ip, port| (name, Ready::Inet(proto, ip, port));
        let unix = |name, rel: &str| (name, Ready::Unix(l.p(rel)));
        let mut checks: Vec<Check> = vec![
            inet("nsd", Proto::Udp, a.ns(), 53),
            inet("nsd", Proto::Tcp, a.ns(), 53),
            unix("nsd", "nsd/nsd.ctl"),
            inet("unbound", Proto::Udp, a.resolver(), 53),
            unix("unbound", "unbound/control.sock"),
            inet("unbound-local", Proto::Udp, Ipv4Addr::LOCALHOST, 53),
            unix("unbound-local", "unbound-local/control.sock"),
            inet("krb5kdc", Proto::Udp, a.kdc(), 88),
            inet("krb5kdc", Proto::Tcp, a.kdc(), 88),
            inet("nginx", Proto::Tcp, a.web(), 80),
            inet("nginx", Proto::Tcp, a.web(), 443),
            unix("dovecot", "dovecot/run/auth-postfix"),
            unix("dovecot", "dovecot/run/lmtp-postfix"),
            // Dovecot and Postfix open their listening sockets before they install their
            // signal handlers: a SIGHUP (switch_cert) sent before these log lines kills them.
            (
                "dovecot",
                Ready::Log(l.p("logs/dovecot.log"), "starting up"),
            ),
            (
                "postfix",
                Ready::Log(l.p("logs/postfix.log"), "daemon started"),
            ),
        ];
        for ip in [a.mail(), a.new_mail()] {
            checks.extend(
                DOVECOT_PORTS
                    .iter()
                    .map(|p| inet("dovecot", Proto::Tcp, ip, *p)),
            );
            checks.extend(
                POSTFIX_PORTS
                    .iter()
                    .map(|p| inet("postfix", Proto::Tcp, ip, *p)),
            );
        }
        trace("daemons spawned", t0);
        self.wait_ready(&checks, Duration::from_secs(20))?;
        trace("daemons ready", t0);
        self.write_lab_json()?;
        Ok(())
    }

    fn setup_network(&self) -> Result<()> {
        let [cli, srv] = &self.ns;
        let a = self.addrs;
        sys::run_with_input(
            Command::new("ip").arg("-batch").arg("-"),
            Some(format!("netns add {cli}\nnetns add {srv}\n").as_bytes()),
        )?;
        // The veth pair is made inside the client namespace with its peer moved straight into
        // the server namespace, so no lab link ever appears in the host namespace.
        sys::run_with_input(
            Command::new("ip").args(["-n", cli, "-batch", "-"]),
            Some(
                format!(
                    "link add eth0 type veth peer name eth0 netns {srv}\n\
                     link set lo up\nlink set eth0 up\naddr add {}/24 dev eth0\n",
                    a.client()
                )
                .as_bytes(),
            ),
        )?;
        let mut batch = String::from("link set lo up\nlink set eth0 up\n");
        for ip in a.server_side() {
            batch.push_str(&format!("addr add {ip}/24 dev eth0\n"));
        }
        sys::run_with_input(
            Command::new("ip").args(["-n", srv, "-batch", "-"]),
            Some(batch.as_bytes()),
        )?;
        // Daemons bind their own addresses; nonlocal_bind lets them (re)bind one that a test
        // took down, and promote_secondaries keeps the other addresses when one goes away.
        sys::run(Command::new("ip").args([
            "netns",
            "exec",
            srv,
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.ip_nonlocal_bind=1",
            "net.ipv4.conf.all.promote_secondaries=1",
            "net.ipv4.conf.eth0.promote_secondaries=1",
        ]))?;

        // Files `ip netns exec` bind-mounts over /etc inside each namespace.
        let hosts = "127.0.0.1 localhost\n";
        let cli_etc = Path::new("/etc/netns").join(cli);
        let srv_etc = Path::new("/etc/netns").join(srv);
        sys::mkdir(&cli_etc.join("unbound"), 0o755)?;
        sys::mkdir(&srv_etc, 0o755)?;
        sys::write_file(
            &cli_etc.join("resolv.conf"),
            &format!("nameserver {}\n", a.resolver()),
            0o644,
        )?;
        sys::write_file(&cli_etc.join("hosts"), hosts, 0o644)?;
        sys::write_file(
            &cli_etc.join("krb5.conf"),
            &conf::krb5_conf(&self.layout, a),
            0o644,
        )?;
        // So that a plain `unbound-control` inside the client namespace (as an agent would
        // run it to flush DNS) reaches the client's local cache.
        sys::write_file(
            &cli_etc.join("unbound/unbound.conf"),
            &conf::unbound_local(&self.layout, a),
            0o644,
        )?;
        sys::write_file(
            &srv_etc.join("resolv.conf"),
            &format!("nameserver {}\n", a.resolver()),
            0o644,
        )?;
        sys::write_file(&srv_etc.join("hosts"), hosts, 0o644)?;
        Ok(())
    }

    fn write_configs(&self, mail_uid: u32, mail_gid: u32) -> Result<()> {
        let l = &self.layout;
        let a = self.addrs;
        let id = self.id;
        sys::write_file(
            &l.p("dovecot/dovecot.conf"),
            &conf::dovecot(l, a, id, mail_uid, mail_gid),
            0o644,
        )?;
        sys::write_file(&l.p("dovecot/users"), &conf::dovecot_users(&USERS), 0o644)?;

        // Postfix: configuration, then the queue tree with the ownership its daemons expect.
        let pconf = l.postfix_conf();
        sys::write_file(&pconf.join("main.cf"), &conf::postfix_main(l), 0o644)?;
        sys::write_file(&pconf.join("master.cf"), &conf::postfix_master(), 0o644)?;
        sys::write_file(
            &pconf.join("vmailbox"),
            &conf::postfix_vmailbox(&USERS),
            0o644,
        )?;
        for f in ["main.cf", "master.cf", "vmailbox"] {
            sys::backdate(&pconf.join(f))?;
        }
        let (pf_uid, _) = sys::user_ids("postfix")?;
        let postdrop = sys::group_id("postdrop")?;
        let queue = l.postfix_queue();
        sys::mkdir(&queue, 0o755)?;
        sys::mkdir(&queue.join("pid"), 0o755)?;
        for (sub, mode, gid) in [
            ("active", 0o700, None),
            ("bounce", 0o700, None),
            ("corrupt", 0o700, None),
            ("defer", 0o700, None),
            ("deferred", 0o700, None),
            ("flush", 0o700, None),
            ("hold", 0o700, None),
            ("incoming", 0o700, None),
            ("private", 0o700, None),
            ("saved", 0o700, None),
            ("trace", 0o700, None),
            ("maildrop", 0o730, Some(postdrop)),
            ("public", 0o710, Some(postdrop)),
        ] {
            let p = queue.join(sub);
            sys::mkdir(&p, mode)?;
            std::os::unix::fs::chown(&p, Some(pf_uid), gid)?;
        }
        let data = l.p("postfix/data");
        sys::mkdir(&data, 0o700)?;
        std::os::unix::fs::chown(&data, Some(pf_uid), None)?;

        let zone = lock(&self.zone).render();
        sys::write_file(&l.p("nsd/example.com.zone"), &zone, 0o644)?;
        let hosting = lock(&self.hosting_zone).render();
        sys::write_file(&l.p(&format!("nsd/{HOSTING_DOMAIN}.zone")), &hosting, 0o644)?;
        sys::write_file(&l.p("nsd/nsd.conf"), &conf::nsd(l, a), 0o644)?;
        sys::write_file(
            &l.p("unbound/unbound.conf"),
            &conf::unbound_resolver(l, a),
            0o644,
        )?;
        sys::write_file(
            &l.p("unbound-local/unbound.conf"),
            &conf::unbound_local(l, a),
            0o644,
        )?;
        sys::write_file(&l.p("nginx/nginx.conf"), &conf::nginx(l, a), 0o644)?;
        self.write_autoconfig(&conf::autoconfig_xml())?;
        sys::write_file(
            &l.p("www/autodiscover/autodiscover.xml"),
            &conf::autodiscover_xml(),
            0o644,
        )?;
        Ok(())
    }

    fn spawn(
        &self,
        name: &'static str,
        ns: &str,
        program: &str,
        args: &[&str],
        envs: &[(&str, PathBuf)],
    ) -> Result<()> {
        let out_path = self.layout.logs().join(format!("{name}.out"));
        let out = fs::File::create(&out_path)
            .with_context(|| format!("cannot create {}", out_path.display()))?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, program])
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LANG", "C")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        // `ip netns exec` execs the program, so the child's pid is the daemon's pid.
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", sys::describe(&cmd)))?;
        lock(&self.daemons).push(Daemon { name, child });
        Ok(())
    }

    fn wait_ready(&self, checks: &[Check], timeout: Duration) -> Result<()> {
        let started = Instant::now();
        let deadline = started + timeout;
        let mut pending: Vec<Check> = checks.to_vec();
        loop {
            {
                let mut daemons = lock(&self.daemons);
                for d in daemons.iter_mut() {
                    if let Some(status) = d.child.try_wait()? {
                        bail!("{} exited during start-up ({status})", d.name);
                    }
                }
                // Socket tables are read once per daemon and round.
                let mut inet: HashMap<(&str, Proto), Vec<(Ipv4Addr, u16)>> = HashMap::new();
                let mut unix: HashMap<&str, Vec<String>> = HashMap::new();
                pending.retain(|(name, ready)| {
                    let Some(pid) = daemons
                        .iter()
                        .find(|d| d.name == *name)
                        .map(|d| d.child.id() as i32)
                    else {
                        return true;
                    };
                    let up = match ready {
                        Ready::Inet(proto, ip, port) => {
                            let socks = inet
                                .entry((name, *proto))
                                .or_insert_with(|| sys::listening_sockets(pid, *proto));
                            sys::covers(socks, *ip, *port)
                        }
                        Ready::Unix(path) => unix
                            .entry(name)
                            .or_insert_with(|| sys::listening_unix_sockets(pid))
                            .iter()
                            .any(|p| Path::new(p) == path),
                        Ready::Log(path, text) => fs::read_to_string(path)
                            .map(|t| t.contains(text))
                            .unwrap_or(false),
                    };
                    if up {
                        trace(&format!("{name} ready: {ready:?}"), started);
                    }
                    !up
                });
            }
            if pending.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let list: Vec<String> = pending.iter().map(|(n, r)| format!("{n} {r:?}")).collect();
                bail!("not ready after {timeout:?}: {}", list.join(", "));
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn write_lab_json(&self) -> Result<()> {
        let pids: serde_json::Map<String, serde_json::Value> = self
            .daemon_pids()
            .into_iter()
            .map(|(n, p)| (n, p.into()))
            .collect();
        let a = self.addrs;
        let info = serde_json::json!({
            "id": self.id,
            "dir": self.layout.root,
            "client_ns": self.ns[0],
            "server_ns": self.ns[1],
            "client_ip": a.client().to_string(),
            "mail_ip": a.mail().to_string(),
            "new_mail_ip": a.new_mail().to_string(),
            "resolver_ip": a.resolver().to_string(),
            "pids": pids,
        });
        sys::write_file(
            &self.layout.p("lab.json"),
            &serde_json::to_string_pretty(&info)?,
            0o644,
        )
    }

    // ---- Identity and addresses ----

    /// The lab id (1-254), also the third octet of its network.
    pub fn id(&self) -> u8 {
        self.id
    }
    /// The client namespace (`mml<id>-cli`).
    pub fn client_ns(&self) -> &str {
        &self.ns[0]
    }
    /// The server namespace (`mml<id>-srv`).
    pub fn server_ns(&self) -> &str {
        &self.ns[1]
    }
    /// The lab directory (configs, logs, mail, homes, state).
    pub fn dir(&self) -> &Path {
        &self.layout.root
    }
    /// The directory `run_mailmend` passes as `--state-dir`.
    pub fn state_dir(&self) -> PathBuf {
        self.layout.p("state")
    }
    /// How long `Lab::start` took, not counting the wait for a slot.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }
    /// The client's address, 10.213.<id>.100.
    pub fn client_ip(&self) -> Ipv4Addr {
        self.addrs.client()
    }
    /// The mail server's address that mail.example.com, imap, pop and smtp resolve to.
    pub fn mail_ip(&self) -> Ipv4Addr {
        self.addrs.mail()
    }
    /// The second mail server address (mail2.example.com): the same Dovecot and Postfix.
    pub fn new_mail_ip(&self) -> Ipv4Addr {
        self.addrs.new_mail()
    }
    /// The caching resolver the client's resolv.conf names by default.
    pub fn resolver_ip(&self) -> Ipv4Addr {
        self.addrs.resolver()
    }
    /// NSD, authoritative for example.com.
    pub fn nameserver_ip(&self) -> Ipv4Addr {
        self.addrs.ns()
    }
    /// The Kerberos KDC (also kdc.example.com).
    pub fn kdc_ip(&self) -> Ipv4Addr {
        self.addrs.kdc()
    }
    /// nginx (autoconfig.example.com, autodiscover.example.com).
    pub fn web_ip(&self) -> Ipv4Addr {
        self.addrs.web()
    }
    /// The lab CA certificate (PEM) that clients must trust.
    pub fn ca_pem_path(&self) -> PathBuf {
        self.certs.ca.clone()
    }
    /// The certificate file of `kind`.
    pub fn cert_path(&self, kind: CertKind) -> PathBuf {
        self.certs.cert(kind)
    }
    /// Name and pid of every daemon the lab started.
    pub fn daemon_pids(&self) -> Vec<(String, i32)> {
        lock(&self.daemons)
            .iter()
            .map(|d| (d.name.to_string(), d.child.id() as i32))
            .collect()
    }

    // ---- Running things ----

    /// A command that runs `program` inside the client namespace, where /etc/resolv.conf,
    /// /etc/hosts, /etc/krb5.conf and /etc/unbound are the lab's.
    pub fn client_command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.client_ns()]).arg(program);
        c
    }

    /// Runs `program args...` in the client namespace and returns its output, whatever its
    /// exit status.
    pub fn client_exec<I, S>(&self, program: &str, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        sys::output_with_input(self.client_command(program).args(args), None)
    }

    /// Runs `program args...` in the server namespace.
    pub fn server_exec<I, S>(&self, program: &str, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.server_ns(), program])
            .args(args);
        sys::output_with_input(&mut c, None)
    }

    /// A command running the mailmend binary in the client namespace with
    /// `--home <home> --state-dir <lab state dir>` before the caller's arguments.
    pub fn mailmend_command(&self, home: &Path) -> Command {
        let mut c = self.client_command(mailmend_bin());
        c.arg("--home")
            .arg(home)
            .arg("--state-dir")
            .arg(self.state_dir());
        c
    }

    /// Runs mailmend in the client namespace (see `mailmend_command`).
    pub fn run_mailmend<I, S>(&self, home: &Path, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let bin = mailmend_bin();
        if !bin.is_file() {
            bail!(
                "no mailmend binary at {}: build it (cargo build -p mailmend) or set MAILMEND_BIN",
                bin.display()
            );
        }
        sys::output_with_input(self.mailmend_command(home).args(args), None)
    }

    /// A fake home directory for test user `user` under the lab directory, created empty.
    pub fn home(&self, user: &str) -> Result<PathBuf> {
        if user.is_empty() || user.contains('/') || user.starts_with('.') {
            bail!("invalid home name {user:?}: use a plain user name");
        }
        let p = self.layout.p("home").join(user);
        sys::mkdir(&p, 0o755)?;
        Ok(p)
    }

    // ---- Logs ----

    /// Every daemon log of the lab, each under a header, for failure output.
    pub fn logs(&self) -> String {
        self.collect_logs(usize::MAX)
    }

    fn logs_tail(&self, lines: usize) -> String {
        self.collect_logs(lines)
    }

    fn collect_logs(&self, lines: usize) -> String {
        let mut files: Vec<PathBuf> = fs::read_dir(self.layout.logs())
            .map(|rd| rd.filter_map(|e| Some(e.ok()?.path())).collect())
            .unwrap_or_default();
        files.sort();
        let mut s = String::new();
        for f in files {
            let text = fs::read_to_string(&f).unwrap_or_default();
            if text.trim().is_empty() {
                continue;
            }
            let all: Vec<&str> = text.lines().collect();
            let start = all.len().saturating_sub(lines);
            s.push_str(&format!(
                "==== {} ====\n{}\n",
                f.file_name().unwrap_or_default().to_string_lossy(),
                all[start..].join("\n")
            ));
        }
        s
    }

    // ---- Certificates ----

    /// Makes Dovecot and Postfix present the certificate of `kind`, and returns once every
    /// TLS port (993, 995, 465, 587, 25) serves it.
    pub fn switch_cert(&self, kind: CertKind) -> Result<()> {
        self.certs.activate(kind)?;
        let want = pem_body(&fs::read_to_string(self.certs.cert(kind))?);
        let pid_of = |name: &str| {
            self.daemon_pids()
                .into_iter()
                .find(|(n, _)| n == name)
                .map(|(_, p)| p)
                .ok_or_else(|| anyhow!("{name} is not running"))
        };
        // Dovecot first, and completely: its reload re-creates the auth socket, and a Postfix
        // smtpd starting in that moment finds no SASL mechanisms, exits, and gets its service
        // throttled.
        let sockets = [
            self.layout.p("dovecot/run/auth-postfix"),
            self.layout.p("dovecot/run/lmtp-postfix"),
        ];
        let inode = |p: &PathBuf| {
            use std::os::unix::fs::MetadataExt;
            fs::metadata(p).map(|m| m.ino()).ok()
        };
        let before: Vec<Option<u64>> = sockets.iter().map(inode).collect();
        let dovecot = pid_of("dovecot")?;
        sys::signal(dovecot, libc::SIGHUP);
        let hup = Instant::now();
        self.wait_cert_served(&want, &[(993, None), (995, None)], kind)?;
        let deadline = hup + Duration::from_secs(10);
        loop {
            let listening = sys::listening_unix_sockets(dovecot);
            let renewed = sockets.iter().zip(&before).all(|(p, old)| {
                let now = inode(p);
                // Dovecot 2.3 re-creates its unix listeners on reload; if one day it keeps
                // them, a second is long enough for the reload to be over.
                now.is_some()
                    && (now != *old || hup.elapsed() > Duration::from_secs(1))
                    && listening.iter().any(|l| Path::new(l) == p)
            });
            if renewed {
                break;
            }
            if Instant::now() >= deadline {
                bail!("Dovecot did not re-create its Postfix sockets after reload");
            }
            thread::sleep(Duration::from_millis(10));
        }
        sys::signal(pid_of("postfix")?, libc::SIGHUP);
        self.wait_cert_served(
            &want,
            &[(465, None), (587, Some("smtp")), (25, Some("smtp"))],
            kind,
        )
    }

    /// Polls TLS `ports` (with the STARTTLS protocol where given) until each presents the
    /// certificate `want` (a `pem_body`).
    fn wait_cert_served(
        &self,
        want: &str,
        ports: &[(u16, Option<&str>)],
        kind: CertKind,
    ) -> Result<()> {
        let ip = self.mail_ip().to_string();
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut pending: Vec<(u16, Option<&str>)> = ports.to_vec();
        loop {
            let results: Vec<bool> = thread::scope(|s| {
                let handles: Vec<_> = pending
                    .iter()
                    .map(|(port, starttls)| {
                        let ip = &ip;
                        s.spawn(move || {
                            self.served_cert(ip, *port, *starttls)
                                .map(|pem| pem.as_deref() == Some(want))
                                .unwrap_or(false)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or(false))
                    .collect()
            });
            let mut served = results.into_iter();
            pending.retain(|_| !served.next().unwrap_or(false));
            if pending.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "after reload, ports {pending:?} still do not serve the {kind:?} certificate"
                );
            }
            thread::sleep(Duration::from_millis(30));
        }
    }

    /// The certificate (PEM body) a TLS port of the mail server presents, seen from the
    /// server namespace; `None` when the handshake gave none.
    fn served_cert(&self, ip: &str, port: u16, starttls: Option<&str>) -> Result<Option<String>> {
        let connect = format!("{ip}:{port}");
        let mut args = vec![
            "5",
            "openssl",
            "s_client",
            "-connect",
            connect.as_str(),
            "-servername",
            "mail.example.com",
        ];
        if let Some(proto) = starttls {
            args.extend(["-starttls", proto]);
        }
        let out = self.server_exec("timeout", &args)?;
        let text = out.stdout_text();
        Ok(text
            .find("-----BEGIN CERTIFICATE-----")
            .map(|i| pem_body(&text[i..])))
    }

    // ---- DNS ----

    /// Asks the client's configured resolver (its /etc/resolv.conf) for `name`/`rtype` with
    /// dig and returns the answer lines (`+short` form).
    pub fn dig(&self, name: &str, rtype: &str) -> Result<Vec<String>> {
        let out = self.client_exec("dig", ["+short", "+time=2", "+tries=1", name, rtype])?;
        if !out.status.success() {
            bail!("dig {name} {rtype} failed: {}", out.describe());
        }
        Ok(out
            .stdout_text()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with(';'))
            .map(String::from)
            .collect())
    }

    /// Like `dig`, but returns the full output with the status line (to see REFUSED,
    /// NXDOMAIN, SERVFAIL).
    pub fn dig_full(&self, name: &str, rtype: &str) -> Result<Output> {
        self.client_exec("dig", ["+time=2", "+tries=1", name, rtype])
    }

    /// Points `name` (`imap`, `imap.example.com`) at `ip`, replacing its A records, then
    /// returns once NSD serves the change and the lab resolver's cache has been flushed.
    /// The client's local cache (see `use_local_cache`) is left stale on purpose.
    pub fn set_a_record(&self, name: &str, ip: Ipv4Addr) -> Result<()> {
        self.set_records(name, "A", &[&ip.to_string()])
    }

    /// Replaces every record of `rtype` at `name` with `rdata` (zone-file syntax, e.g.
    /// `"0 1 993 imap.example.com."` for SRV); an empty list removes them. Names in
    /// hosting.test (`_imaps._tcp.hosting.test`) change that zone; every other name (`imap`,
    /// `_imaps._tcp`, `imap.example.com`) is example.com's.
    pub fn set_records(&self, name: &str, rtype: &str, rdata: &[&str]) -> Result<()> {
        let in_hosting = lock(&self.hosting_zone).contains(name);
        let mut zone = if in_hosting {
            lock(&self.hosting_zone)
        } else {
            lock(&self.zone)
        };
        let owner = zone.relative(name).ok_or_else(|| {
            anyhow!("{name} is outside the lab zones example.com and {HOSTING_DOMAIN}")
        })?;
        let rdata: Vec<String> = rdata.iter().map(|s| s.to_string()).collect();
        zone.set(&owner, rtype, &rdata);
        let origin = zone.origin.clone();
        let path = self.layout.p(&format!("nsd/{origin}.zone"));
        let tmp = path.with_extension("zone.new");
        sys::write_file(&tmp, &zone.render(), 0o644)?;
        fs::rename(&tmp, &path)?;
        sys::run(Command::new("nsd-control").args([
            "-c",
            &self.layout.p("nsd/nsd.conf").display().to_string(),
            "reload",
            &origin,
        ]))?;
        let serial = zone.serial;
        drop(zone);
        self.wait_nsd_serial(&origin, serial)?;
        self.flush_resolver_cache()
    }

    /// The records of `rtype` at `name` in the zone NSD serves (the authoritative data).
    pub fn zone_records(&self, name: &str, rtype: &str) -> Vec<String> {
        let in_hosting = lock(&self.hosting_zone).contains(name);
        let zone = if in_hosting {
            lock(&self.hosting_zone)
        } else {
            lock(&self.zone)
        };
        zone.relative(name)
            .map(|owner| zone.get(&owner, rtype))
            .unwrap_or_default()
    }

    fn wait_nsd_serial(&self, origin: &str, serial: u32) -> Result<()> {
        let server = format!("@{}", self.addrs.ns());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = self.server_exec(
                "dig",
                [
                    "+short",
                    "+norecurse",
                    "+time=1",
                    "+tries=1",
                    &server,
                    origin,
                    "SOA",
                ],
            )?;
            let got: Option<u32> = out
                .stdout_text()
                .split_whitespace()
                .nth(2)
                .and_then(|s| s.parse().ok());
            if got == Some(serial) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "NSD still serves serial {got:?} of {origin} instead of {serial} after reload"
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Empties the lab resolver's cache (the server-side Unbound).
    pub fn flush_resolver_cache(&self) -> Result<()> {
        self.unbound_control("unbound/unbound.conf", &["flush_zone", "."])
    }

    /// Empties the client's local caching Unbound (127.0.0.1 in the client namespace).
    pub fn flush_local_cache(&self) -> Result<()> {
        self.unbound_control("unbound-local/unbound.conf", &["flush_zone", "."])
    }

    fn unbound_control(&self, conf: &str, args: &[&str]) -> Result<()> {
        sys::run(
            Command::new("unbound-control")
                .arg("-c")
                .arg(self.layout.p(conf))
                .args(args),
        )
        .map(|_| ())
    }

    /// Points the client's resolv.conf at its local caching Unbound on 127.0.0.1 (which keeps
    /// answers for a day) or back at the lab resolver. Takes effect for every command started
    /// in the client namespace afterwards.
    pub fn use_local_cache(&self, on: bool) -> Result<()> {
        let ns = if on {
            Ipv4Addr::LOCALHOST
        } else {
            self.addrs.resolver()
        };
        let path = Path::new("/etc/netns")
            .join(self.client_ns())
            .join("resolv.conf");
        sys::write_file(&path, &format!("nameserver {ns}\n"), 0o644)
    }

    /// Writes the client's resolv.conf naming these DNS servers, in order: the system resolver
    /// tries them in turn. [`Lab::unused_ip`] stands for a DNS server that is down. Takes
    /// effect for every command started in the client namespace afterwards.
    pub fn set_client_nameservers(&self, servers: &[Ipv4Addr]) -> Result<()> {
        let path = Path::new("/etc/netns")
            .join(self.client_ns())
            .join("resolv.conf");
        let text: String = servers
            .iter()
            .map(|s| format!("nameserver {s}\n"))
            .collect();
        sys::write_file(&path, &text, 0o644)
    }

    /// An address inside the lab's network that no host has: a server there is "down" (the
    /// client's ARP gets no answer, so packets to it are lost and, after about 3 s, reported
    /// as "no route to host").
    pub fn unused_ip(&self) -> Ipv4Addr {
        self.addrs.ip(250)
    }

    // ---- Addresses ----

    /// Removes `ip` from the server namespace: connections to it then fail as if the host
    /// were gone ("No route to host" after about 3 s of unanswered ARP, sooner with a client
    /// timeout). The client's neighbour entry is flushed so the change is seen at once.
    pub fn take_down_address(&self, ip: Ipv4Addr) -> Result<()> {
        self.check_server_ip(ip)?;
        sys::run(Command::new("ip").args([
            "-n",
            self.server_ns(),
            "addr",
            "del",
            &format!("{ip}/24"),
            "dev",
            "eth0",
        ]))?;
        // Absent entries are fine: the client may never have talked to that address.
        let _ = sys::output_with_input(
            Command::new("ip").args([
                "-n",
                self.client_ns(),
                "neigh",
                "del",
                &ip.to_string(),
                "dev",
                "eth0",
            ]),
            None,
        );
        Ok(())
    }

    /// Puts back an address removed by `take_down_address`.
    pub fn bring_up_address(&self, ip: Ipv4Addr) -> Result<()> {
        self.check_server_ip(ip)?;
        sys::run(Command::new("ip").args([
            "-n",
            self.server_ns(),
            "addr",
            "add",
            &format!("{ip}/24"),
            "dev",
            "eth0",
        ]))
        .map(|_| ())
    }

    fn check_server_ip(&self, ip: Ipv4Addr) -> Result<()> {
        if !self.addrs.server_side().contains(&ip) || ip == self.addrs.ns() {
            bail!(
                "{ip} is not a removable server address of lab {}: use mail_ip(), new_mail_ip(), \
                 resolver_ip(), kdc_ip() or web_ip()",
                self.id
            );
        }
        Ok(())
    }

    // ---- Kerberos ----

    /// Gets a ticket for `user` with `kinit -l lifetime -r renew` in the client namespace,
    /// into a FILE ccache (`<lab>/krb5cc/krb5cc_<uid>`) owned by `uid`, and returns its path.
    pub fn kinit(
        &self,
        user: &User,
        lifetime: Duration,
        renew: Duration,
        uid: u32,
    ) -> Result<PathBuf> {
        let path = self.layout.p("krb5cc").join(format!("krb5cc_{uid}"));
        self.kinit_to(user, lifetime, renew, uid, &path)?;
        Ok(path)
    }

    /// Like `kinit`, into the ccache file `path`.
    pub fn kinit_to(
        &self,
        user: &User,
        lifetime: Duration,
        renew: Duration,
        uid: u32,
        path: &Path,
    ) -> Result<()> {
        let ccache = format!("FILE:{}", path.display());
        let principal = format!("{}@{REALM}", user.principal);
        let (l, r) = (
            format!("{}s", lifetime.as_secs().max(1)),
            format!("{}s", renew.as_secs()),
        );
        let out = sys::output_with_input(
            self.client_command("kinit")
                .args(["-l", &l, "-r", &r, "-c", &ccache, &principal]),
            Some(format!("{}\n", user.password).as_bytes()),
        )?;
        if !out.status.success() {
            bail!("kinit {principal} failed: {}", out.describe());
        }
        std::os::unix::fs::chown(path, Some(uid), Some(uid))
            .with_context(|| format!("cannot chown {}", path.display()))?;
        Ok(())
    }

    /// `klist -f -c FILE:<ccache>` in the client namespace.
    pub fn klist(&self, ccache: &Path) -> Result<Output> {
        self.client_exec("klist", ["-f", "-c", &format!("FILE:{}", ccache.display())])
    }

    /// `kinit -R -c FILE:<ccache>` (renewal) in the client namespace.
    pub fn kinit_renew(&self, ccache: &Path) -> Result<Output> {
        self.client_exec("kinit", ["-R", "-c", &format!("FILE:{}", ccache.display())])
    }

    // ---- Firewall ----

    /// Appends `rule` (nft syntax, e.g. `tcp dport 993 drop` or
    /// `tcp dport 587 reject with tcp reset`) to the client's output chain, `inet lab output`.
    pub fn nft_client(&self, rule: &str) -> Result<()> {
        self.nft_client_script(&format!("add rule inet lab output {rule}\n"))
    }

    /// Runs an nft script in the client namespace, after making sure table `inet lab` with
    /// its `output` chain (hook output, priority 0, policy accept) exists.
    pub fn nft_client_script(&self, script: &str) -> Result<()> {
        let full = format!(
            "add table inet lab\n\
             add chain inet lab output {{ type filter hook output priority 0 ; policy accept ; }}\n\
             {script}"
        );
        sys::run_with_input(
            self.client_command("nft").args(["-f", "-"]),
            Some(full.as_bytes()),
        )
        .map(|_| ())
    }

    /// Removes every rule of the client's `inet lab output` chain.
    pub fn nft_client_flush(&self) -> Result<()> {
        self.nft_client_script("flush chain inet lab output\n")
    }

    // ---- Server-side faults (a firewall on the way, a server reconfigured) ----

    /// Appends `rule` (nft syntax, e.g. `ip daddr 10.213.7.10 tcp dport 993 drop`) to the
    /// input chain of table `inet lab-srv` in the server namespace: a firewall in front of the
    /// servers or on the way to them, which the client's own ruleset does not show (that is
    /// `nft_client`). The table goes with the namespace at teardown; `nft_server_flush` removes
    /// its rules earlier.
    pub fn nft_server(&self, rule: &str) -> Result<()> {
        self.nft_server_script(&format!("add rule inet lab-srv input {rule}\n"))
    }

    /// Removes every rule `nft_server` added.
    pub fn nft_server_flush(&self) -> Result<()> {
        self.nft_server_script("flush chain inet lab-srv input\n")
    }

    fn nft_server_script(&self, script: &str) -> Result<()> {
        let full = format!(
            "add table inet lab-srv\n\
             add chain inet lab-srv input {{ type filter hook input priority 0 ; policy accept ; }}\n\
             {script}"
        );
        sys::run_with_input(
            Command::new("ip").args(["netns", "exec", self.server_ns(), "nft", "-f", "-"]),
            Some(full.as_bytes()),
        )
        .map(|_| ())
    }

    /// Runs Dovecot with the lab's configuration plus `extra` (dovecot.conf syntax: a setting
    /// given again wins, a `service` block given again is merged, and a listener's `port = 0`
    /// turns it off), replacing the `extra` of an earlier call. Dovecot reloads; this returns
    /// once it listens on exactly `ports` (of 143, 993, 110, 995) on the mail address, its
    /// Postfix sockets are back and a plaintext port greets normally again. `extra` is checked
    /// with `doveconf` first, so a typo fails here rather than leaving the old configuration
    /// running. `restore_dovecot` undoes it; teardown removes the file with the lab anyway.
    pub fn reconfigure_dovecot(&self, extra: &str, ports: &[u16]) -> Result<()> {
        let (uid, gid) = sys::user_ids("mail")?;
        let l = &self.layout;
        let path = l.p("dovecot/dovecot.conf");
        let text = format!(
            "{}\n# ---- added by Lab::reconfigure_dovecot ----\n{extra}\n",
            conf::dovecot(l, self.addrs, self.id, uid, gid)
        );
        let candidate = l.p("dovecot/dovecot.conf.new");
        sys::write_file(&candidate, &text, 0o644)?;
        let out = sys::output_with_input(
            Command::new("doveconf").arg("-c").arg(&candidate).arg("-n"),
            None,
        )?;
        if !out.status.success() {
            bail!("doveconf rejects the configuration: {}", out.describe());
        }
        fs::rename(&candidate, &path)?;
        self.reload_dovecot(ports)
    }

    /// Puts Dovecot's lab configuration back (see `reconfigure_dovecot`).
    pub fn restore_dovecot(&self) -> Result<()> {
        self.reconfigure_dovecot("", &DOVECOT_PORTS)
    }

    /// Makes Dovecot offer Kerberos logins (`AUTH=GSSAPI`) beside PLAIN and LOGIN, as the mail
    /// server of a company that uses Kerberos does: service principals `imap/<host>` and
    /// `pop/<host>` for every mail host name get random keys in the KDC, their keytab is
    /// exported into the lab directory, and Dovecot is reconfigured to use it (with the lab's
    /// krb5.conf). Needs the `dovecot-gssapi` package.
    pub fn enable_gssapi(&self) -> Result<()> {
        if !Path::new("/usr/lib/dovecot/modules/auth/libmech_gssapi.so").exists() {
            bail!("Dovecot's GSSAPI module is missing: run tests/install-deps.sh (dovecot-gssapi)");
        }
        let l = &self.layout;
        let keytab = l.p("krb5/dovecot.keytab");
        let mut script = String::new();
        for host in ["imap", "pop", "mail"] {
            for service in ["imap", "pop"] {
                let principal = format!("{service}/{host}.{DOMAIN}@{REALM}");
                script.push_str(&format!(
                    "addprinc -randkey {principal}\nktadd -k {} {principal}\n",
                    keytab.display()
                ));
            }
        }
        let mut kadmin = Command::new("kadmin.local");
        kadmin.args(["-r", REALM]);
        kadmin.envs(krb5_env(l).iter().map(|(k, v)| (k, v)));
        let out = sys::run_with_input(&mut kadmin, Some(script.as_bytes()))?;
        let text = format!("{}{}", out.stdout_text(), out.stderr_text());
        // kadmin.local exits 0 even when a command fails, so look for its complaints.
        if text.contains("error") || text.contains("while ") {
            bail!("kadmin.local reported a problem: {text}");
        }
        // Dovecot's auth process is not root: throwaway lab keys, so world-readable is harmless.
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&keytab, fs::Permissions::from_mode(0o644))?;
        }
        let extra = format!(
            "auth_mechanisms = plain login gssapi\n\
             auth_gssapi_hostname = \"$ALL\"\n\
             auth_krb5_keytab = {}\n\
             import_environment = TZ KRB5_CONFIG={}\n",
            keytab.display(),
            l.p("krb5/krb5.conf").display()
        );
        self.reconfigure_dovecot(&extra, &DOVECOT_PORTS)
    }

    /// Runs Postfix with the lab's main.cf plus `extra` (main.cf lines: a parameter given again
    /// wins), replacing the `extra` of an earlier call, and returns once the master has
    /// reloaded; each new SMTP connection then gets a server process with the new settings.
    /// `restore_postfix` undoes it; teardown removes the file with the lab anyway.
    pub fn reconfigure_postfix(&self, extra: &str) -> Result<()> {
        let text = format!(
            "{}# ---- added by Lab::reconfigure_postfix ----\n{extra}\n",
            conf::postfix_main(&self.layout)
        );
        self.install_postfix_main(&text)
    }

    /// Writes `text` as Postfix's main.cf, has postconf check it, and returns once the master
    /// has reloaded it.
    fn install_postfix_main(&self, text: &str) -> Result<()> {
        let l = &self.layout;
        let main_cf = l.postfix_conf().join("main.cf");
        sys::write_file(&main_cf, text, 0o644)?;
        // Postfix stalls about 2 s on a main.cf changed within the last second (LAB-NOTES 4).
        sys::backdate(&main_cf)?;
        let check = sys::output_with_input(
            Command::new("postconf")
                .arg("-c")
                .arg(l.postfix_conf())
                .arg("-n"),
            None,
        )?;
        if !check.status.success() || !check.stderr_text().trim().is_empty() {
            bail!(
                "postconf complains about the configuration: {}",
                check.describe()
            );
        }
        let log = l.logs().join("postfix.log");
        let reloads = || {
            fs::read_to_string(&log)
                .map(|t| t.matches("reload -- version").count())
                .unwrap_or(0)
        };
        let before = reloads();
        let master = self
            .daemon_pids()
            .into_iter()
            .find(|(n, _)| n == "postfix")
            .map(|(_, p)| p)
            .ok_or_else(|| anyhow!("postfix is not running"))?;
        sys::signal(master, libc::SIGHUP);
        let deadline = Instant::now() + Duration::from_secs(10);
        while reloads() == before {
            if Instant::now() >= deadline {
                bail!("Postfix did not log a reload; log:\n{}", self.logs_tail(20));
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Puts Postfix's lab main.cf back (see `reconfigure_postfix`).
    pub fn restore_postfix(&self) -> Result<()> {
        self.reconfigure_postfix("")
    }

    /// Sends Dovecot SIGHUP and waits as `reconfigure_dovecot` says.
    fn reload_dovecot(&self, ports: &[u16]) -> Result<()> {
        let dovecot = self
            .daemon_pids()
            .into_iter()
            .find(|(n, _)| n == "dovecot")
            .map(|(_, p)| p)
            .ok_or_else(|| anyhow!("dovecot is not running"))?;
        let sockets = [
            self.layout.p("dovecot/run/auth-postfix"),
            self.layout.p("dovecot/run/lmtp-postfix"),
        ];
        let inode = |p: &PathBuf| {
            use std::os::unix::fs::MetadataExt;
            fs::metadata(p).map(|m| m.ino()).ok()
        };
        let before: Vec<Option<u64>> = sockets.iter().map(inode).collect();
        sys::signal(dovecot, libc::SIGHUP);
        let hup = Instant::now();
        let deadline = hup + Duration::from_secs(10);
        let ip = self.mail_ip();
        let mut wanted: Vec<u16> = ports.to_vec();
        wanted.sort_unstable();
        loop {
            let tcp = sys::listening_sockets(dovecot, Proto::Tcp);
            let mut listening: Vec<u16> = DOVECOT_PORTS
                .iter()
                .copied()
                .filter(|p| sys::covers(&tcp, ip, *p))
                .collect();
            listening.sort_unstable();
            let unix = sys::listening_unix_sockets(dovecot);
            // Dovecot 2.3 re-creates its unix listeners on reload; as in switch_cert, a second
            // is long enough should a later version keep them.
            let renewed = sockets.iter().zip(&before).all(|(p, old)| {
                let now = inode(p);
                now.is_some()
                    && (now != *old || hup.elapsed() > Duration::from_secs(1))
                    && unix.iter().any(|u| Path::new(u) == p)
            });
            if listening == wanted && renewed {
                break;
            }
            if Instant::now() >= deadline {
                bail!(
                    "after reload Dovecot listens on {listening:?} (wanted {wanted:?}), sockets \
                     renewed: {renewed}; log:\n{}",
                    self.logs_tail(20)
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
        // Right after a reload the login processes greet with "Waiting for authentication
        // process to respond" until the new auth process is up.
        let Some(port) = [143u16, 110].into_iter().find(|p| ports.contains(p)) else {
            return Ok(());
        };
        let read_greeting =
            format!("exec 3<>/dev/tcp/{ip}/{port}; read -r line <&3; echo \"$line\"");
        loop {
            let out = self.server_exec("timeout", ["3", "bash", "-c", read_greeting.as_str()])?;
            let line = out.stdout_text();
            let greeted = line.starts_with("* OK") || line.starts_with("+OK");
            if greeted && !line.contains("Waiting for authentication") {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("Dovecot on port {port} greets with {line:?} after reload");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    // ---- Web ----

    /// Replaces the autoconfig document served at /mail/config-v1.1.xml and
    /// /.well-known/autoconfig/mail/config-v1.1.xml.
    pub fn write_autoconfig(&self, xml: &str) -> Result<()> {
        for rel in [
            "www/mail/config-v1.1.xml",
            "www/.well-known/autoconfig/mail/config-v1.1.xml",
        ] {
            sys::write_file(&self.layout.p(rel), xml, 0o644)?;
        }
        Ok(())
    }

    /// Serves `xml` as autoconfig over plain HTTP only: the HTTPS copies are removed (so
    /// `https://` gets 404) and `http://autoconfig.example.com/mail/config-v1.1.xml` and the
    /// `.well-known` path answer with it.
    pub fn write_autoconfig_http_only(&self, xml: &str) -> Result<()> {
        self.remove_autoconfig()?;
        for rel in [
            "www-http/mail/config-v1.1.xml",
            "www-http/.well-known/autoconfig/mail/config-v1.1.xml",
        ] {
            sys::write_file(&self.layout.p(rel), xml, 0o644)?;
        }
        Ok(())
    }

    /// Removes every autoconfig document: both URLs answer 404 over HTTPS and HTTP.
    pub fn remove_autoconfig(&self) -> Result<()> {
        for rel in [
            "www/mail/config-v1.1.xml",
            "www/.well-known/autoconfig/mail/config-v1.1.xml",
            "www-http/mail/config-v1.1.xml",
            "www-http/.well-known/autoconfig/mail/config-v1.1.xml",
        ] {
            match fs::remove_file(self.layout.p(rel)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("cannot remove {rel}"))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Replaces the Autodiscover POX answer (served for POST and GET).
    pub fn write_autodiscover(&self, xml: &str) -> Result<()> {
        sys::write_file(
            &self.layout.p("www/autodiscover/autodiscover.xml"),
            xml,
            0o644,
        )
    }

    /// Makes Autodiscover answer `401` (with `WWW-Authenticate: Basic`) or `403` instead of
    /// its document, as an Exchange server does to a client that has not logged in; `None`
    /// serves the document again. Takes effect at once (nginx tests a flag file per request).
    pub fn set_autodiscover_refusal(&self, status: Option<u16>) -> Result<()> {
        let flag = |code: u16| self.layout.p(&format!("nginx/autodiscover-{code}"));
        for code in [401, 403] {
            match fs::remove_file(flag(code)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        match status {
            None => Ok(()),
            Some(code @ (401 | 403)) => sys::write_file(&flag(code), "", 0o644),
            Some(other) => bail!("autodiscover can refuse with 401 or 403, not {other}"),
        }
    }

    /// Makes the web server's address refuse the mail ports (a reset), as a real web host
    /// does: in the lab Postfix listens on every server address (see `conf::postfix_main`), so
    /// `example.com`, which is the web server, would otherwise answer SMTP. A table `inet
    /// lab-web` in the server namespace, gone with the namespace.
    pub fn web_refuses_mail(&self) -> Result<()> {
        let script = format!(
            "add table inet lab-web\n\
             add chain inet lab-web input {{ type filter hook input priority 0 ; policy accept ; }}\n\
             add rule inet lab-web input ip daddr {} tcp dport {{ 25, 110, 143, 465, 587, 993, 995 }} reject with tcp reset\n",
            self.addrs.web()
        );
        sys::run_with_input(
            Command::new("ip").args(["netns", "exec", self.server_ns(), "nft", "-f", "-"]),
            Some(script.as_bytes()),
        )
        .map(|_| ())
    }

    /// Every request nginx has answered so far, oldest first, from its access log.
    pub fn web_requests(&self) -> Vec<WebRequest> {
        let text =
            fs::read_to_string(self.layout.logs().join("nginx-access.log")).unwrap_or_default();
        text.lines().filter_map(WebRequest::parse).collect()
    }

    // ---- Client probes (curl inside the client namespace) ----

    /// Runs `curl -sS -v --cacert <lab CA>` with short timeouts and `args` in the client
    /// namespace. `-v` puts the protocol exchange on stderr.
    pub fn curl<I, S>(&self, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.curl_with_input(args, None)
    }

    fn curl_with_input<I, S>(&self, args: I, input: Option<&[u8]>) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = self.client_command("curl");
        c.args([
            "-sS",
            "-v",
            "--max-time",
            "20",
            "--connect-timeout",
            "5",
            "--cacert",
        ])
        .arg(self.ca_pem_path())
        .args(args);
        sys::output_with_input(&mut c, input)
    }

    fn mail_url(scheme: &str, host: &str, port: u16, tls: Tls, path: &str) -> (String, bool) {
        let (s, reqd) = match tls {
            Tls::Implicit => (format!("{scheme}s"), false),
            Tls::StartTls => (scheme.to_string(), true),
            Tls::Plain => (scheme.to_string(), false),
        };
        (format!("{s}://{host}:{port}/{path}"), reqd)
    }

    /// Logs in to IMAP on `host:port` and lists the mailboxes. The exchange (with the
    /// server's `NO [AUTHENTICATIONFAILED]` on a wrong password) is on stderr.
    pub fn imap_login(
        &self,
        host: &str,
        user: &str,
        password: &str,
        port: u16,
        tls: Tls,
    ) -> Result<Output> {
        let (url, reqd) = Self::mail_url("imap", host, port, tls, "");
        let userpass = format!("{user}:{password}");
        let mut args = vec!["--user", userpass.as_str(), url.as_str()];
        if reqd {
            args.push("--ssl-reqd");
        }
        self.curl(args)
    }

    /// Whether an IMAP login to imap.example.com works.
    pub fn imap_login_works(
        &self,
        user: &str,
        password: &str,
        port: u16,
        tls: Tls,
    ) -> Result<bool> {
        Ok(self
            .imap_login("imap.example.com", user, password, port, tls)?
            .status
            .success())
    }

    /// Logs in to POP3 on `host:port` and lists the messages.
    pub fn pop3_login(
        &self,
        host: &str,
        user: &str,
        password: &str,
        port: u16,
        tls: Tls,
    ) -> Result<Output> {
        let (url, reqd) = Self::mail_url("pop3", host, port, tls, "");
        let userpass = format!("{user}:{password}");
        let mut args = vec!["--user", userpass.as_str(), url.as_str()];
        if reqd {
            args.push("--ssl-reqd");
        }
        self.curl(args)
    }

    /// Sends `mail` over SMTP to `host:port`, authenticating as `auth` (login, password)
    /// when given. The exchange (EHLO capabilities included) is on stderr.
    pub fn smtp_send(
        &self,
        host: &str,
        port: u16,
        tls: Tls,
        auth: Option<(&str, &str)>,
        mail: &Mail,
    ) -> Result<Output> {
        let (url, reqd) = Self::mail_url("smtp", host, port, tls, "lab-client.example.com");
        let mut args: Vec<String> = vec![
            url,
            "--mail-from".into(),
            mail.from.into(),
            "--mail-rcpt".into(),
            mail.to.into(),
            "--upload-file".into(),
            "-".into(),
        ];
        if reqd {
            args.push("--ssl-reqd".into());
        }
        if let Some((u, p)) = auth {
            args.push("--user".into());
            args.push(format!("{u}:{p}"));
        }
        let message = format!(
            "From: <{}>\r\nTo: <{}>\r\nSubject: {}\r\nMessage-ID: <{}.{}@lab.example.com>\r\n\r\n{}\r\n",
            mail.from,
            mail.to,
            mail.subject,
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
            mail.body
        );
        self.curl_with_input(args, Some(message.as_bytes()))
    }

    /// Whether `user` can send a message to themselves through smtp.example.com:`port`.
    pub fn smtp_send_works(&self, user: &str, password: &str, port: u16, tls: Tls) -> Result<bool> {
        let mail = Mail {
            from: user,
            to: user,
            subject: "mailmend lab send check",
            body: "sent by smtp_send_works",
        };
        Ok(self
            .smtp_send("smtp.example.com", port, tls, Some((user, password)), &mail)?
            .status
            .success())
    }

    /// UIDs of the INBOX messages of `user` whose subject contains `subject`, over IMAPS.
    pub fn imap_search_subject(
        &self,
        user: &str,
        password: &str,
        subject: &str,
    ) -> Result<Vec<u32>> {
        let userpass = format!("{user}:{password}");
        let search = format!("UID SEARCH SUBJECT \"{subject}\"");
        let out = self.curl([
            "--user",
            &userpass,
            "imaps://imap.example.com:993/INBOX",
            "-X",
            &search,
        ])?;
        if !out.status.success() {
            bail!("IMAP search failed: {}", out.describe());
        }
        Ok(out
            .stdout_text()
            .lines()
            .filter_map(|l| l.trim().strip_prefix("* SEARCH"))
            .flat_map(|rest| {
                rest.split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect::<Vec<u32>>()
            })
            .collect())
    }

    /// Waits until a message whose subject contains `subject` is in `user`'s INBOX and
    /// returns it as fetched over IMAPS.
    pub fn wait_for_message(
        &self,
        user: &str,
        password: &str,
        subject: &str,
        timeout: Duration,
    ) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(uid) = self.imap_search_subject(user, password, subject)?.first() {
                let userpass = format!("{user}:{password}");
                let url = format!("imaps://imap.example.com:993/INBOX;UID={uid}");
                let out = self.curl(["--user", userpass.as_str(), url.as_str()])?;
                if !out.status.success() {
                    bail!("IMAP fetch of UID {uid} failed: {}", out.describe());
                }
                return Ok(out.stdout_text());
            }
            if Instant::now() >= deadline {
                bail!("no message with subject {subject:?} for {user} after {timeout:?}");
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    // ---- Teardown ----

    fn teardown(&mut self) -> Result<()> {
        let t0 = Instant::now();
        let mut daemons = std::mem::take(&mut *lock(&self.daemons));
        for d in &daemons {
            sys::signal(d.child.id() as i32, libc::SIGTERM);
        }
        // Dovecot's master lingers about a second after SIGTERM waiting on its children; the
        // namespace sweep below ends those children anyway, so stragglers get SIGKILL early.
        let deadline = Instant::now() + Duration::from_millis(300);
        loop {
            let mut running = 0;
            for d in daemons.iter_mut() {
                if matches!(d.child.try_wait(), Ok(None)) {
                    running += 1;
                }
            }
            if running == 0 || Instant::now() >= deadline {
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
        for d in daemons.iter_mut() {
            if matches!(d.child.try_wait(), Ok(None)) {
                trace(&format!("{} still running, killing it", d.name), t0);
                let _ = d.child.kill();
            }
            let _ = d.child.wait();
        }
        trace("daemons stopped", t0);
        // What is left (daemon children still exiting, commands a test started in the
        // namespaces) goes with the namespaces, directories and /etc/netns files.
        state::clean_id(self.id)?;
        trace("teardown", t0);
        Ok(())
    }

    fn keep_notice(&self) {
        let _ = fs::write(
            self.layout.p(state::KEEP_MARKER),
            "kept by MAILMEND_LAB_KEEP\n",
        );
        // The Child handles are dropped without waiting: the daemons keep running.
        lock(&self.daemons).clear();
        eprintln!(
            "mailmend-lab: lab {id} kept running (MAILMEND_LAB_KEEP). Enter it with:\n  \
             ip netns exec {cli} bash      # the client: curl, dig, kinit, nft, mailmend\n  \
             ip netns exec {srv} bash      # the servers\n\
             files, configs and logs: {dir}  (lab.json lists addresses and pids)\n\
             mail server {mail}, resolver {res}, CA {ca}\n\
             remove it with: cargo run -p mailmend-lab -- cleanup",
            id = self.id,
            cli = self.client_ns(),
            srv = self.server_ns(),
            dir = self.dir().display(),
            mail = self.mail_ip(),
            res = self.resolver_ip(),
            ca = self.ca_pem_path().display(),
        );
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "mailmend-lab: test panicked; lab {} daemon logs:\n{}",
                self.id,
                self.logs_tail(60)
            );
        }
        if self.keep {
            self.keep_notice();
            return;
        }
        if let Err(e) = self.teardown() {
            eprintln!("mailmend-lab: teardown of lab {} failed: {e:#}", self.id);
        }
    }
}

// ---- Credential faults on the server side (tests/lab/tests/auth_replies.rs) ----

impl Lab {
    /// Rewrites Dovecot's passwd-file with `fields` as `user`'s passdb extra fields (e.g.
    /// `nologin`: the account is disabled, the right password is refused), or without `user`
    /// when `fields` is `None`, so that a passdb added with `reconfigure_dovecot` answers for
    /// them. `Some("")` puts the lab's line back. Returns once Dovecot will read the new file:
    /// passwd-file looks at the file at most once a second.
    pub fn set_passdb_fields(&self, user: &User, fields: Option<&str>) -> Result<()> {
        let l = &self.layout;
        let path = l.p("dovecot/users");
        let new = l.p("dovecot/users.new");
        sys::write_file(
            &new,
            &conf::dovecot_users_with_fields(&USERS, user.login, fields),
            0o644,
        )?;
        // A new inode, so that no lookup ever reads a half-written file.
        fs::rename(&new, &path)?;
        thread::sleep(Duration::from_millis(1100));
        Ok(())
    }

    /// Writes a Postfix lookup table (`texthash:` syntax) into the lab's Postfix configuration
    /// directory and returns its path, for `reconfigure_postfix` lines such as
    /// `smtpd_sender_login_maps = texthash:<path>`. The file is backdated (LAB-NOTES 4).
    pub fn write_postfix_table(&self, name: &str, text: &str) -> Result<PathBuf> {
        let path = self.layout.postfix_conf().join(name);
        sys::write_file(&path, text, 0o644)?;
        sys::backdate(&path)?;
        Ok(path)
    }

    /// Runs Postfix with the lab's main.cf where each `(parameter, value)` replaces the lab's
    /// own line (or is added), unlike `reconfigure_postfix`, which can only add parameters: a
    /// parameter given twice makes every Postfix process warn through postlogd, which then
    /// blocks on its own socket and smtpd stops greeting. Returns once the master reloaded.
    /// `restore_postfix` undoes it.
    pub fn replace_postfix_params(&self, params: &[(&str, &str)]) -> Result<()> {
        let l = &self.layout;
        let mut text: String = conf::postfix_main(l)
            .lines()
            .filter(|line| {
                let key = line.split('=').next().unwrap_or_default().trim();
                !params.iter().any(|(k, _)| *k == key)
            })
            .map(|line| format!("{line}\n"))
            .collect();
        text.push_str("# ---- replaced by Lab::replace_postfix_params ----\n");
        for (k, v) in params {
            text.push_str(&format!("{k} = {v}\n"));
        }
        self.install_postfix_main(&text)
    }
}

// ---- A TLS terminator Dovecot does not trust (tests/lab/tests/auth_replies.rs) ----

impl Lab {
    /// Puts a TLS terminator in front of IMAP that Dovecot does not know about, as a load
    /// balancer or an nginx `stream` proxy added by IT would be: nginx's stream module (package
    /// libnginx-mod-stream) answers `mail_ip:993` (imap.example.com) with the `Good`
    /// certificate and passes each connection on as plaintext to Dovecot's port 143 on
    /// `new_mail_ip`, connecting from `mail_ip`. Dovecot treats a connection as secure only
    /// when it is TLS, from its own address or loopback, or from `login_trusted_networks`, so
    /// behind this terminator it answers `LOGINDISABLED` and offers no `AUTH=` mechanism
    /// although the client's link is encrypted and verified. Dovecot first stops listening on
    /// 993 (`reconfigure_dovecot`, replacing an earlier `extra`), so that the terminator is
    /// what answers there; 143 (STARTTLS, direct) still works. Returns once the terminator
    /// listens; it runs until teardown, logging to `logs/tls-terminator*.log`.
    pub fn start_imaps_terminator(&self) -> Result<()> {
        let module = Path::new("/usr/lib/nginx/modules/ngx_stream_module.so");
        if !module.exists() {
            bail!(
                "nginx's stream module is missing: run tests/install-deps.sh (libnginx-mod-stream)"
            );
        }
        self.reconfigure_dovecot(
            "service imap-login {\n  inet_listener imaps {\n    port = 0\n  }\n}\n",
            &[143, 110, 995],
        )?;
        let l = &self.layout;
        let dir = l.p("tls-terminator");
        sys::mkdir(&dir, 0o755)?;
        let (mail, new_mail) = (self.mail_ip(), self.new_mail_ip());
        let conf = format!(
            r#"# mailmend lab {id}: a TLS terminator in front of Dovecot, not in its trusted networks
daemon off;
master_process on;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {logs}/tls-terminator.log info;
load_module {module};
events {{
    worker_connections 64;
}}
stream {{
    log_format lab '$remote_addr -> $upstream_addr $status sent=$bytes_sent received=$bytes_received';
    access_log {logs}/tls-terminator-access.log lab;
    server {{
        listen {mail}:993 ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        # Not Dovecot's own address: it would count that as a secure connection.
        proxy_bind {mail};
        proxy_pass {new_mail}:143;
    }}
}}
"#,
            id = self.id,
            dir = dir.display(),
            logs = l.logs().display(),
            module = module.display(),
            cert = self.cert_path(CertKind::Good).display(),
            key = self.certs.key.display(),
        );
        let path = dir.join("nginx.conf");
        sys::write_file(&path, &conf, 0o644)?;
        let (path, prefix) = (path.display().to_string(), dir.display().to_string());
        let early_log = l.logs().join("tls-terminator.log").display().to_string();
        let srv = self.server_ns().to_string();
        self.spawn(
            "tls-terminator",
            &srv,
            "nginx",
            &["-c", &path, "-p", &prefix, "-e", &early_log],
            &[],
        )?;
        self.wait_ready(
            &[("tls-terminator", Ready::Inet(Proto::Tcp, mail, 993))],
            Duration::from_secs(10),
        )
    }
}

/// Prints how long a step took when MAILMEND_LAB_TRACE is set, to find slow start-up steps.
fn trace(what: &str, since: Instant) {
    if env_flag("MAILMEND_LAB_TRACE") {
        eprintln!("mailmend-lab: {what}: {} ms", since.elapsed().as_millis());
    }
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

fn join(job: thread::JoinHandle<Result<()>>, what: &str) -> Result<()> {
    job.join()
        .map_err(|_| anyhow!("the {what} set-up thread panicked"))?
        .with_context(|| format!("{what} set-up failed"))
}

/// The first PEM certificate block of `text`, without line breaks, for comparisons.
fn pem_body(text: &str) -> String {
    let start = text.find("-----BEGIN CERTIFICATE-----").unwrap_or(0);
    let rest = &text[start..];
    let end = rest
        .find("-----END CERTIFICATE-----")
        .map(|i| i + "-----END CERTIFICATE-----".len())
        .unwrap_or(rest.len());
    rest[..end].split_whitespace().collect()
}

fn krb5_env(l: &Layout) -> Vec<(&'static str, PathBuf)> {
    vec![
        ("KRB5_CONFIG", l.p("krb5/krb5.conf")),
        ("KRB5_KDC_PROFILE", l.p("krb5/kdc.conf")),
    ]
}

/// Writes the KDC configuration and creates the realm database with a principal per user.
fn create_kdc_database(l: &Layout, a: Addrs) -> Result<()> {
    sys::write_file(&l.p("krb5/krb5.conf"), &conf::krb5_conf(l, a), 0o644)?;
    sys::write_file(&l.p("krb5/kdc.conf"), &conf::kdc_conf(l, a), 0o644)?;
    sys::write_file(&l.p("krb5/kadm5.acl"), "", 0o644)?;
    let env = krb5_env(l);
    let mut create = Command::new("kdb5_util");
    create.args(["-r", REALM, "create", "-s", "-P", "mailmend-lab-master-key"]);
    create.envs(env.iter().map(|(k, v)| (k, v)));
    sys::run(&mut create)?;
    let mut kadmin = Command::new("kadmin.local");
    kadmin.args(["-r", REALM]);
    kadmin.envs(env.iter().map(|(k, v)| (k, v)));
    let script = conf::kadmin_script(&USERS);
    let out = sys::run_with_input(&mut kadmin, Some(script.as_bytes()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // kadmin.local exits 0 even when a command fails, so look for its complaints.
    if text.contains("error") || text.contains("while ") {
        bail!("kadmin.local reported a problem: {text}");
    }
    Ok(())
}

/// Fails early, with what to do, when the lab cannot run here.
fn preflight() -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the mailmend lab needs root (network namespaces, daemons on privileged ports)");
    }
    let needed = [
        "/usr/sbin/dovecot",
        "/usr/lib/postfix/sbin/master",
        "/usr/sbin/nsd",
        "/usr/sbin/nsd-control",
        "/usr/sbin/unbound",
        "/usr/sbin/unbound-control",
        "/usr/sbin/krb5kdc",
        "/usr/sbin/kdb5_util",
        "/usr/sbin/kadmin.local",
        "/usr/bin/kinit",
        "/usr/sbin/nginx",
        "/usr/bin/curl",
        "/usr/bin/openssl",
        "/usr/bin/dig",
        "/usr/sbin/nft",
    ];
    let missing: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if !missing.is_empty() {
        bail!(
            "missing {}: run tests/install-deps.sh as root",
            missing.join(", ")
        );
    }
    if !Path::new("/etc/krb5.conf").exists() {
        bail!(
            "/etc/krb5.conf is missing, so `ip netns exec` cannot show the lab's krb5.conf: \
             run tests/install-deps.sh (it creates an empty one)"
        );
    }
    Ok(())
}
