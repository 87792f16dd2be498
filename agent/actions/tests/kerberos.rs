//! The Kerberos renewal performer against a real MIT KDC on a loopback address, renewing a
//! ticket in a FILE cache owned by an unprivileged user (nobody), as that user.

#![cfg(target_os = "linux")]

mod common;

use common::{loopback, run, wait_for, ChildGuard};
use mailmend_actions::kerberos::parse_klist;
use mailmend_actions::{KerberosRenew, PerformError, Performer};
use mailmend_core::Action;
use std::io::Write;
use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const REALM: &str = "MMACT.TEST";
const NOBODY: u32 = 65534;
const NOGROUP: u32 = 65534;

/// A realm with one principal allowed renewable tickets, its KDC running on a loopback address.
struct Kdc {
    // Declared first so that the KDC stops before its directory is removed.
    _kdc: ChildGuard,
    dir: tempfile::TempDir,
}

impl Kdc {
    fn krb5_conf(&self) -> PathBuf {
        self.dir.path().join("krb5.conf")
    }

    /// A directory of ticket caches owned by nobody.
    fn cache_dir(&self) -> PathBuf {
        let d = self.dir.path().join("cc");
        if !d.exists() {
            std::fs::create_dir(&d).unwrap();
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
            chown(&d, Some(NOBODY), Some(NOGROUP)).unwrap();
        }
        d
    }

    /// `kinit` as nobody into `cache` with the given extra options, password on stdin.
    fn kinit(&self, cache: &Path, opts: &[&str]) {
        let mut child = Command::new("kinit")
            .args(opts)
            .arg(format!("alice@{REALM}"))
            .env_clear()
            .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
            .env("KRB5_CONFIG", self.krb5_conf())
            .env("KRB5CCNAME", format!("FILE:{}", cache.display()))
            .uid(NOBODY)
            .gid(NOGROUP)
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"alice-pw\n")
            .unwrap();
        assert!(child.wait().unwrap().success(), "kinit {opts:?} failed");
    }
}

fn start_kdc() -> Kdc {
    let dir = tempfile::tempdir().unwrap();
    // nobody must read krb5.conf in here.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let d = dir.path().display().to_string();
    let addr = loopback(3);
    std::fs::write(
        dir.path().join("krb5.conf"),
        format!(
            "[libdefaults]\n default_realm = {REALM}\n dns_lookup_realm = false\n dns_lookup_kdc = false\n rdns = false\n\
             [realms]\n {REALM} = {{\n  kdc = {addr}:88\n }}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("kdc.conf"),
        format!(
            "[kdcdefaults]\n kdc_listen = {addr}:88\n kdc_tcp_listen = {addr}:88\n\
             [realms]\n {REALM} = {{\n  database_name = {d}/principal\n  key_stash_file = {d}/stash\n  \
             acl_file = {d}/kadm5.acl\n  max_life = 1d\n  max_renewable_life = 7d\n  \
             supported_enctypes = aes256-cts-hmac-sha1-96:normal\n  kdc_listen = {addr}:88\n  kdc_tcp_listen = {addr}:88\n }}\n\
             [logging]\n kdc = FILE:{d}/kdc.log\n default = FILE:{d}/tools.log\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("kadm5.acl"), "").unwrap();
    let env = [
        ("KRB5_CONFIG", dir.path().join("krb5.conf")),
        ("KRB5_KDC_PROFILE", dir.path().join("kdc.conf")),
    ];
    run(Command::new("kdb5_util")
        .args(["-r", REALM, "create", "-s", "-P", "mmact-master-key"])
        .envs(env.clone())
        .stdout(Stdio::null()));
    // Renewal needs a renew limit on the realm (kdc.conf), on krbtgt and on the principal.
    let mut kadmin = Command::new("kadmin.local")
        .args(["-r", REALM])
        .envs(env.clone())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    kadmin
        .stdin
        .take()
        .unwrap()
        .write_all(
            format!("modprinc -maxrenewlife 7d krbtgt/{REALM}\naddprinc -pw alice-pw -maxrenewlife 7d alice\n")
                .as_bytes(),
        )
        .unwrap();
    let out = kadmin.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !text.contains("while "),
        "kadmin.local: {text}"
    );
    let kdc = Command::new("krb5kdc")
        .args(["-n", "-r", REALM, "-P"])
        .arg(dir.path().join("kdc.pid"))
        .envs(env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("krb5kdc is installed (tests/install-deps.sh)");
    let guard = ChildGuard(kdc);
    assert!(
        wait_for(Duration::from_secs(5), || std::net::TcpStream::connect((
            addr.as_str(),
            88
        ))
        .is_ok()),
        "the KDC never listened"
    );
    Kdc { _kdc: guard, dir }
}

fn renew(cache: &Path, principal: &str) -> Action {
    Action::RenewKerberos {
        os_user: "nobody".into(),
        principal: Some(principal.into()),
        ccache: Some(format!("FILE:{}", cache.display())),
    }
}

/// The cache's ticket as klist shows it to root.
fn klist(kdc: &Kdc, cache: &Path) -> mailmend_actions::kerberos::Ticket {
    let out = run(Command::new("klist")
        .args(["-f", "-c"])
        .arg(format!("FILE:{}", cache.display()))
        .env("KRB5_CONFIG", kdc.krb5_conf())
        .env("LC_ALL", "C")
        .env("TZ", "UTC"));
    parse_klist(&String::from_utf8(out.stdout).unwrap()).unwrap()
}

#[test]
fn a_renewable_ticket_is_renewed_as_its_user_and_its_end_time_moves_later() {
    let kdc = start_kdc();
    let cache = kdc.cache_dir().join("renewable");
    kdc.kinit(&cache, &["-r", "2d", "-l", "1h"]);
    let before = klist(&kdc, &cache);
    assert!(before.renewable);
    // Ticket times have one-second resolution: let one pass so that the new end time differs.
    std::thread::sleep(Duration::from_millis(1100));

    let perf = KerberosRenew::with_krb5_config(kdc.krb5_conf());
    let action = renew(&cache, &format!("alice@{REALM}"));
    assert!(perf.handles(&action));
    let snap = perf.snapshot(&action).unwrap();
    assert_eq!(snap["ticket"]["principal"], format!("alice@{REALM}"));
    assert_eq!(snap["ticket"]["renewable"], true);
    let out = perf.apply("fx-krb-1", &action).unwrap();
    let after = klist(&kdc, &cache);
    assert!(after.expires > before.expires, "{before:?} -> {after:?}");
    assert_eq!(after.renew_until, before.renew_until);
    assert_eq!(
        out["after"]["expires"],
        mailmend_actions::kerberos::format_time(after.expires)
    );
    let text = out.to_string();
    assert!(!text.contains("alice-pw"), "no secret in the audit record");
    // Renewed as the user: the cache still belongs to nobody and is private.
    let meta = std::fs::metadata(&cache).unwrap();
    assert_eq!(meta.uid(), NOBODY);
    assert_eq!(meta.mode() & 0o077, 0);
    perf.undo("fx-krb-1", &action, &snap).unwrap();
    assert_eq!(
        klist(&kdc, &cache),
        after,
        "undo leaves the renewed ticket alone"
    );

    let wrong = renew(&cache, &format!("bob@{REALM}"));
    match perf.apply("fx-krb-2", &wrong) {
        Err(PerformError::Failed(m)) => assert!(m.contains("not of bob@"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_ticket_that_is_not_renewable_or_has_expired_fails_and_is_left_alone() {
    let kdc = start_kdc();
    let perf = KerberosRenew::with_krb5_config(kdc.krb5_conf());
    let plain = kdc.cache_dir().join("plain");
    kdc.kinit(&plain, &["-l", "1h"]);
    let before = klist(&kdc, &plain);
    match perf.apply("fx-krb-3", &renew(&plain, &format!("alice@{REALM}"))) {
        Err(PerformError::Failed(m)) => assert!(m.contains("not renewable"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(klist(&kdc, &plain), before);

    let short = kdc.cache_dir().join("short");
    kdc.kinit(&short, &["-r", "1d", "-l", "2s"]);
    let before = klist(&kdc, &short);
    std::thread::sleep(Duration::from_millis(2500));
    match perf.apply("fx-krb-4", &renew(&short, &format!("alice@{REALM}"))) {
        Err(PerformError::Failed(m)) => assert!(m.contains("expired"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(klist(&kdc, &short), before);
}

#[test]
fn a_missing_cache_or_user_is_a_clear_failure() {
    let perf = KerberosRenew::new();
    let dir = tempfile::tempdir().unwrap();
    let action = Action::RenewKerberos {
        os_user: "nobody".into(),
        principal: None,
        ccache: Some(format!("FILE:{}/none", dir.path().display())),
    };
    match perf.snapshot(&action) {
        Err(PerformError::Failed(m)) => assert!(m.contains("no ticket to renew for nobody"), "{m}"),
        other => panic!("{other:?}"),
    }
    let action = Action::RenewKerberos {
        os_user: "mailmend-no-such-user".into(),
        principal: None,
        ccache: None,
    };
    match perf.apply("fx-krb-5", &action) {
        Err(PerformError::Failed(m)) => assert!(m.contains("no OS user"), "{m}"),
        other => panic!("{other:?}"),
    }
}
