//! `kerberos_tickets` against a credential cache written by MIT's own `kinit`, from a real KDC
//! (`krb5kdc`) started on a high port of 127.0.0.1 with a throw-away realm.

use crate::lab_dns::{free_port, Daemon};
use mailmend_core::Prober;
use mailmend_probe::{ProbeConfig, RealProber};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const REALM: &str = "EXAMPLE.TEST";

fn tool(dir: &str, name: &str) -> PathBuf {
    let path = Path::new(dir).join(name);
    assert!(
        path.is_file(),
        "{} is missing: install krb5-kdc, krb5-admin-server and krb5-user (tests/install-deps.sh)",
        path.display()
    );
    path
}

struct Kdc {
    dir: tempfile::TempDir,
    _kdc: Daemon,
}

impl Kdc {
    fn env(&self, command: &mut Command) {
        command
            .env("KRB5_CONFIG", self.dir.path().join("krb5.conf"))
            .env("KRB5_KDC_PROFILE", self.dir.path().join("kdc.conf"));
    }

    fn start() -> Kdc {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let port = free_port(Ipv4Addr::LOCALHOST);
        std::fs::write(
            dir.path().join("kdc.conf"),
            format!(
                "[kdcdefaults]\n kdc_listen = 127.0.0.1:{port}\n kdc_tcp_listen = 127.0.0.1:{port}\n[realms]\n {REALM} = {{\n  database_name = {d}/principal\n  key_stash_file = {d}/stash\n  acl_file = {d}/kadm5.acl\n  max_life = 10h\n  max_renewable_life = 7d\n }}\n[logging]\n kdc = FILE:{d}/kdc.log\n"
            ),
        )
        .unwrap();
        // The agent finds the cache through default_ccache_name, as for a real user.
        std::fs::write(
            dir.path().join("krb5.conf"),
            format!(
                "[libdefaults]\n default_realm = {REALM}\n dns_lookup_kdc = false\n dns_lookup_realm = false\n default_ccache_name = FILE:{d}/krb5cc_%{{uid}}\n[realms]\n {REALM} = {{\n  kdc = 127.0.0.1:{port}\n }}\n"
            ),
        )
        .unwrap();
        let mut kdc = Kdc {
            dir,
            _kdc: Daemon::placeholder(),
        };
        kdc.run(
            tool("/usr/sbin", "kdb5_util"),
            &["create", "-s", "-r", REALM, "-P", "master-password"],
            None,
        );
        for query in [
            "addprinc -pw ann-password -maxrenewlife 7d ann".to_string(),
            format!("modprinc -maxrenewlife 7d krbtgt/{REALM}"),
        ] {
            kdc.run(
                tool("/usr/sbin", "kadmin.local"),
                &["-r", REALM, "-q", &query],
                None,
            );
        }
        let mut command = Command::new(tool("/usr/sbin", "krb5kdc"));
        command.args(["-n", "-r", REALM]);
        kdc.env(&mut command);
        kdc._kdc = Daemon::spawn(&mut command);
        kdc
    }

    fn run(&self, program: PathBuf, args: &[&str], stdin: Option<&str>) -> bool {
        let mut command = Command::new(&program);
        command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        self.env(&mut command);
        let mut child = command.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        let output = child.wait_with_output().unwrap();
        if stdin.is_none() {
            assert!(
                output.status.success(),
                "{} {args:?}: {}",
                program.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        output.status.success()
    }

    /// `kinit` as ann, retried while the KDC starts.
    fn kinit(&self, args: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut all = args.to_vec();
        all.push("ann");
        while !self.run(tool("/usr/bin", "kinit"), &all, Some("ann-password\n")) {
            assert!(Instant::now() < deadline, "kinit never succeeded");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn prober(&self) -> RealProber {
        RealProber::new(ProbeConfig::default())
            .unwrap()
            .with_krb5_config(self.dir.path().join("krb5.conf"))
    }

    /// The OS user the test runs as: the cache name is expanded with its uid.
    fn user() -> String {
        let uid = nix::unistd::Uid::current();
        nix::unistd::User::from_uid(uid).unwrap().unwrap().name
    }
}

fn at(s: &str) -> OffsetDateTime {
    OffsetDateTime::parse(s, &Rfc3339).unwrap()
}

#[tokio::test]
async fn tickets_of_a_cache_written_by_kinit_are_read() {
    let kdc = Kdc::start();
    kdc.kinit(&["-l", "1h", "-r", "7d"]);
    let user = Kdc::user();
    let report = kdc.prober().kerberos_tickets(&user).await;
    assert_eq!(report.error, None, "{report:?}");
    assert_eq!(report.os_user, user);
    let uid = nix::unistd::Uid::current().as_raw();
    assert_eq!(
        report.ccache,
        Some(format!("FILE:{}/krb5cc_{uid}", kdc.dir.path().display()))
    );
    assert_eq!(report.principal.as_deref(), Some("ann@EXAMPLE.TEST"));
    assert_eq!(report.tickets.len(), 1, "{report:?}");
    let tgt = &report.tickets[0];
    assert_eq!(tgt.server, "krbtgt/EXAMPLE.TEST@EXAMPLE.TEST");
    assert!(tgt.renewable);
    let starts = at(&tgt.starts);
    assert_eq!(at(&tgt.expires) - starts, time::Duration::hours(1));
    assert_eq!(
        at(tgt.renew_until.as_deref().unwrap()) - starts,
        time::Duration::days(7)
    );
    let checked = at(&report.checked_at);
    assert!((checked - starts).abs() < time::Duration::minutes(1));
}

#[tokio::test]
async fn a_ticket_that_is_not_renewable_says_so() {
    let kdc = Kdc::start();
    kdc.kinit(&["-l", "30m"]);
    let report = kdc.prober().kerberos_tickets(&Kdc::user()).await;
    let tgt = &report.tickets[0];
    assert!(!tgt.renewable, "{report:?}");
    assert_eq!(tgt.renew_until, None);
}

#[tokio::test]
async fn no_cache_is_no_ticket_and_no_error() {
    let kdc = Kdc::start();
    let report = kdc.prober().kerberos_tickets(&Kdc::user()).await;
    assert_eq!(report.error, None);
    assert!(report.tickets.is_empty());
    assert!(report.ccache.is_some());
    assert_eq!(report.principal, None);
}

#[tokio::test]
async fn unsupported_cache_types_and_unknown_users_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("krb5.conf");
    std::fs::write(&conf, "[libdefaults]\n default_ccache_name = KCM:\n").unwrap();
    let prober = RealProber::new(ProbeConfig::default())
        .unwrap()
        .with_krb5_config(&conf);
    let report = prober.kerberos_tickets(&Kdc::user()).await;
    assert_eq!(report.error.as_deref(), Some("unsupported cache type KCM"));
    let report = prober.kerberos_tickets("no-such-user-mailmend").await;
    assert!(
        report.error.as_deref().unwrap().contains("no such user"),
        "{report:?}"
    );
}
