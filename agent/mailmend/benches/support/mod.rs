//! Shared by the service tests and the footprint bench: a real IMAP server (Dovecot) on a
//! loopback address of its own, a Thunderbird profile pointing at it, a policy trusting its
//! throwaway CA, and a `mailmend run` child with a notify socket and its stderr collected.
//!
//! Everything listens on and talks to 127.0.0.0/8 only.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The port nothing listens on, that the tests break the account to.
pub const WRONG_PORT: u16 = 9993;

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A loopback address no other test of this process uses, whose IMAP ports are free.
fn free_loopback_ip() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let pid = std::process::id();
    for _ in 0..200 {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let ip = format!(
            "127.{}.{}.{}",
            100 + pid % 100,
            (pid / 100) % 250,
            1 + n % 250
        );
        let free = [143u16, 993, WRONG_PORT]
            .iter()
            .all(|p| TcpListener::bind(format!("{ip}:{p}")).is_ok());
        if free {
            return ip;
        }
    }
    panic!("no free loopback address for the test IMAP server");
}

/// Dovecot serving IMAP (143, STARTTLS) and IMAPS (993) on its own loopback address.
pub struct ImapServer {
    pub ip: String,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl ImapServer {
    pub fn start() -> ImapServer {
        let ip = free_loopback_ip();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Dovecot's unprivileged login processes must reach their sockets in here.
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        std::fs::write(
            d.join("ext.cnf"),
            format!(
                "subjectAltName=IP:{ip}\nbasicConstraints=critical,CA:FALSE\n\
                 extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n"
            ),
        )
        .unwrap();
        let ssl = |args: &[&str]| run(Command::new("openssl").args(args).current_dir(d));
        ssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=mailmend test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ]);
        ssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            &format!("/CN={ip}"),
        ]);
        ssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        for sub in ["run", "state", "mail"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let dh = if Path::new("/usr/share/dovecot/dh.pem").exists() {
            "ssl_dh = </usr/share/dovecot/dh.pem\n"
        } else {
            ""
        };
        let p = |s: &str| d.join(s).display().to_string();
        let conf = format!(
            "instance_name = mmsvc-{ip}\nbase_dir = {run}\nstate_dir = {state}\n\
             log_path = {log}\nprotocols = imap\nlisten = {ip}\nssl = yes\n\
             ssl_cert = <{cert}\nssl_key = <{key}\n{dh}disable_plaintext_auth = yes\n\
             auth_mechanisms = plain login\nlogin_greeting = mailmend test IMAP ready\n\
             mail_location = maildir:{mail}/%n\nfirst_valid_uid = 0\n\
             passdb {{\n  driver = static\n  args = password=unused-by-these-tests\n}}\n\
             userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup home={mail}/%n\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    port = 143\n  }}\n\
             inet_listener imaps {{\n    port = 993\n    ssl = yes\n  }}\n}}\n",
            run = p("run"),
            state = p("state"),
            log = p("dovecot.log"),
            cert = p("server.pem"),
            key = p("server.key"),
            mail = p("mail"),
        );
        std::fs::write(d.join("dovecot.conf"), conf).unwrap();
        let child = Command::new("dovecot")
            .args(["-F", "-c"])
            .arg(d.join("dovecot.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dovecot (is it installed?)");
        let server = ImapServer { ip, dir, child };
        let addr: SocketAddr = format!("{}:993", server.ip).parse().unwrap();
        let until = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < until,
                "dovecot did not start: {}",
                std::fs::read_to_string(server.dir.path().join("dovecot.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

impl Drop for ImapServer {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

/// A home with one Thunderbird profile whose IMAP account uses `ip:port` with SSL/TLS.
pub struct TbHome {
    pub home: PathBuf,
    pub prefs: PathBuf,
}

pub fn prefs_text(ip: &str, port: u16, extra: &str) -> String {
    format!(
        "// Mozilla User Preferences\n\
         user_pref(\"mail.accountmanager.accounts\", \"account1\");\n\
         user_pref(\"mail.account.account1.server\", \"server1\");\n\
         user_pref(\"mail.account.account1.identities\", \"id1\");\n\
         user_pref(\"mail.identity.id1.useremail\", \"alice@example.test\");\n\
         user_pref(\"mail.server.server1.hostname\", \"{ip}\");\n\
         user_pref(\"mail.server.server1.port\", {port});\n\
         user_pref(\"mail.server.server1.socketType\", 3);\n\
         user_pref(\"mail.server.server1.type\", \"imap\");\n\
         user_pref(\"mail.server.server1.userName\", \"alice\");\n{extra}"
    )
}

pub fn thunderbird_home(root: &Path, ip: &str, port: u16) -> TbHome {
    let home = root.join("home");
    let profile = home.join(".thunderbird/abc.default");
    std::fs::create_dir_all(&profile).unwrap();
    std::fs::write(
        home.join(".thunderbird/profiles.ini"),
        "[Profile0]\nName=default\nIsRelative=1\nPath=abc.default\nDefault=1\n",
    )
    .unwrap();
    let prefs = profile.join("prefs.js");
    std::fs::write(&prefs, prefs_text(ip, port, "")).unwrap();
    TbHome { home, prefs }
}

/// The configured port of the account, as prefs.js says now.
pub fn configured_port(prefs: &Path) -> Option<u16> {
    let text = std::fs::read_to_string(prefs).ok()?;
    let line = text
        .lines()
        .find(|l| l.contains("\"mail.server.server1.port\""))?;
    line.rsplit(',')
        .next()?
        .trim()
        .trim_end_matches(");")
        .trim()
        .parse()
        .ok()
}

pub fn policy_text(ca: &Path, extra: &str) -> String {
    format!(
        "log_level = \"info\"\n{extra}\n[probes]\nconnect_timeout_ms = 2000\nio_timeout_ms = 2000\n\
         check_interval_secs = 3600\n\n[tls]\nextra_ca_files = [\"{}\"]\n",
        ca.display()
    )
}

/// A running `mailmend run`, with its stderr lines collected and its sd_notify messages
/// received on a socket of its own.
pub struct Agent {
    pub child: Child,
    pub stderr: Arc<Mutex<Vec<String>>>,
    pub notify: UnixDatagram,
    pub state: PathBuf,
    _notify_dir: tempfile::TempDir,
}

impl Agent {
    pub fn start(bin: &str, home: &Path, state: &Path, policy: &Path, extra: &[&str]) -> Agent {
        Agent::start_with(Command::new(bin), home, state, policy, extra)
    }

    /// Starts the agent from `cmd` (the binary, or a wrapper such as `unshare` that runs it).
    pub fn start_with(
        mut cmd: Command,
        home: &Path,
        state: &Path,
        policy: &Path,
        extra: &[&str],
    ) -> Agent {
        let notify_dir = tempfile::tempdir().unwrap();
        let sock = notify_dir.path().join("notify");
        let notify = UnixDatagram::bind(&sock).unwrap();
        notify
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        cmd.arg("--home")
            .arg(home)
            .arg("--state-dir")
            .arg(state)
            .arg("--policy")
            .arg(policy)
            .args(extra)
            .arg("run")
            .env("NOTIFY_SOCKET", &sock)
            .env_remove("MAILMEND_LOG")
            .env_remove("JOURNAL_STREAM")
            .env_remove("WATCHDOG_USEC")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start mailmend run");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&stderr);
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        Agent {
            child,
            stderr,
            notify,
            state: state.to_path_buf(),
            _notify_dir: notify_dir,
        }
    }

    /// Waits for an sd_notify message containing `what` (e.g. `READY=1`).
    pub fn wait_notify(&self, what: &str, within: Duration) -> bool {
        let until = Instant::now() + within;
        let mut buf = [0u8; 4096];
        while Instant::now() < until {
            if let Ok(n) = self.notify.recv(&mut buf) {
                if String::from_utf8_lossy(&buf[..n]).contains(what) {
                    return true;
                }
            }
        }
        false
    }

    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// How many log lines contain `what`.
    pub fn count(&self, what: &str) -> usize {
        self.stderr
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(what))
            .count()
    }

    /// Waits until a log line contains `what`.
    pub fn wait_log(&self, what: &str, within: Duration) -> bool {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if self.count(what) > 0 {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Waits until `n` passes have finished.
    pub fn wait_passes_done(&self, n: usize, within: Duration) -> bool {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if self.count(" done in ") >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig).unwrap();
    }

    /// Sends SIGTERM and waits for the exit; returns the exit code.
    pub fn stop(&mut self, within: Duration) -> Option<i32> {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        let until = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The audit records, as `mailmend audit show --json` prints them.
pub fn audit_records(bin: &str, state: &Path) -> Vec<serde_json::Value> {
    let out = Command::new(bin)
        .arg("--state-dir")
        .arg(state)
        .args(["audit", "show", "--json"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Records of one kind (`policy_rejected`, `outcome`…), optionally with one outcome.
pub fn records_of<'a>(
    records: &'a [serde_json::Value],
    kind: &str,
    outcome: Option<&str>,
) -> Vec<&'a serde_json::Value> {
    records
        .iter()
        .filter(|r| r["kind"] == kind)
        .filter(|r| outcome.is_none_or(|o| r["outcome"] == o))
        .collect()
}

/// A kB figure of /proc/PID/status, such as `VmRSS` or `RssAnon`.
pub fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.strip_prefix(key).is_some_and(|r| r.starts_with(':')))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Resident set size in kB, from /proc/PID/status.
pub fn rss_kb(pid: u32) -> Option<u64> {
    status_kb(pid, "VmRSS")
}

/// User plus system CPU time in clock ticks, from /proc/PID/stat.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; fields after it are space-separated.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Clock ticks per second.
pub fn ticks_per_sec() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|v| u64::try_from(v).ok())
        .unwrap_or(100)
}
