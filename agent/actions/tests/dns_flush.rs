//! The DNS flush performer against a real unbound cache (forwarding to a second unbound that
//! serves the lab zone) on loopback addresses, controlled through a unix socket.

#![cfg(target_os = "linux")]

mod common;

use common::{loopback, run, wait_for, ChildGuard};
use mailmend_actions::dns::CacheKind;
use mailmend_actions::{DnsFlush, PerformError, Performer};
use mailmend_core::Action;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn start_unbound(conf: &Path) -> ChildGuard {
    let child = Command::new("unbound")
        .args(["-d", "-c"])
        .arg(conf)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("unbound is installed (tests/install-deps.sh)");
    ChildGuard(child)
}

fn server_conf(dir: &Path, name: &str, addr: &str) -> String {
    format!(
        "server:\n  interface: {addr}\n  port: 53\n  do-ip6: no\n  username: \"\"\n  chroot: \"\"\n  \
         directory: \"{d}\"\n  pidfile: \"{d}/{name}.pid\"\n  use-syslog: no\n  logfile: \"{d}/{name}.log\"\n  \
         module-config: \"iterator\"\n  access-control: 127.0.0.0/8 allow\n",
        d = dir.display()
    )
}

fn dig(addr: &str, name: &str) -> String {
    let out = Command::new("dig")
        .args([
            &format!("@{addr}"),
            "+short",
            "+time=1",
            "+tries=1",
            name,
            "A",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn dump_cache(conf: &Path) -> String {
    let out = run(Command::new("unbound-control")
        .arg("-c")
        .arg(conf)
        .arg("dump_cache"));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_flush_removes_the_host_from_a_running_unbound_cache_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let upstream_addr = loopback(1);
    let cache_addr = loopback(2);
    let upstream = dir.path().join("upstream.conf");
    let cache = dir.path().join("cache.conf");
    std::fs::write(
        &upstream,
        server_conf(dir.path(), "upstream", &upstream_addr)
            + "  local-zone: \"mmact.test.\" static\n  \
               local-data: \"mail.mmact.test. 3600 IN A 127.0.0.5\"\n  \
               local-data: \"other.mmact.test. 3600 IN A 127.0.0.6\"\nremote-control:\n  control-enable: no\n",
    )
    .unwrap();
    std::fs::write(
        &cache,
        server_conf(dir.path(), "cache", &cache_addr)
            + &format!(
                "  do-not-query-localhost: no\n  local-zone: \"test.\" nodefault\n  domain-insecure: \"test.\"\n\
                 forward-zone:\n  name: \"mmact.test.\"\n  forward-addr: {upstream_addr}\n\
                 remote-control:\n  control-enable: yes\n  control-interface: \"{}/cache.ctl\"\n  control-use-cert: no\n",
                dir.path().display()
            ),
    )
    .unwrap();
    let _up = start_unbound(&upstream);
    let _cache = start_unbound(&cache);
    assert!(
        wait_for(Duration::from_secs(5), || dig(
            &cache_addr,
            "mail.mmact.test"
        ) == "127.0.0.5"),
        "the caching unbound never answered: {}",
        std::fs::read_to_string(dir.path().join("cache.log")).unwrap_or_default()
    );
    assert_eq!(dig(&cache_addr, "other.mmact.test"), "127.0.0.6");
    let dump = dump_cache(&cache);
    assert!(dump.contains("mail.mmact.test."), "{dump}");
    assert!(dump.contains("other.mmact.test."), "{dump}");

    let flush = DnsFlush::with_unbound_config(&cache).only(&[CacheKind::Unbound]);
    let action = Action::FlushDns {
        host: "mail.mmact.test".into(),
    };
    assert!(flush.handles(&action));
    let snap = flush.snapshot(&action).unwrap();
    assert_eq!(snap["caches"][0]["cache"], "unbound", "{snap:#}");
    let out = flush.apply("fx-dns-1", &action).unwrap();
    assert_eq!(out["flushed"].as_array().unwrap().len(), 1, "{out:#}");
    assert!(out["failed"].as_array().unwrap().is_empty(), "{out:#}");

    let dump = dump_cache(&cache);
    assert!(
        !dump.contains("mail.mmact.test."),
        "the host is gone: {dump}"
    );
    assert!(
        dump.contains("other.mmact.test."),
        "other names stay cached: {dump}"
    );
    // The cache refills from upstream on the next lookup.
    assert_eq!(dig(&cache_addr, "mail.mmact.test"), "127.0.0.5");
    flush.undo("fx-dns-1", &action, &snap).unwrap();
}

#[test]
fn with_no_cache_found_the_flush_is_unavailable() {
    let flush = DnsFlush::with_unbound_config("/nonexistent/unbound.conf")
        .only(&[CacheKind::Unbound])
        .dnsmasq_pid_file("/nonexistent/dnsmasq.pid");
    let action = Action::FlushDns {
        host: "mail.mmact.test".into(),
    };
    for r in [flush.snapshot(&action), flush.apply("fx-dns-2", &action)] {
        match r {
            Err(PerformError::Unavailable(m)) => assert!(m.contains("no local DNS cache"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_host_that_looks_like_an_option_is_refused_before_anything_runs() {
    let flush = DnsFlush::new();
    let action = Action::FlushDns {
        host: "-c/etc/passwd".into(),
    };
    assert!(matches!(
        flush.apply("fx-dns-3", &action),
        Err(PerformError::Failed(_))
    ));
}
