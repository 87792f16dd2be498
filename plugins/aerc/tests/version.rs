//! Detecting the installed aerc through `aerc -v`, with stand-in binaries: the answer decides
//! what a bare `smtp://` means, and a slow or untrusted binary gives no answer.
#![cfg(unix)]

mod common;

use common::{by_key, fixture, with_accounts};
use mailmend_aerc::{AercAdapter, AercVersion, VersionSource, AMBIGUOUS_SECURITY};
use mailmend_core::{ClientAdapter, Security};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A stand-in `aerc` that runs `body` as a shell script.
fn fake_aerc(dir: &Path, name: &str, body: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn adapter(path: PathBuf) -> AercAdapter {
    AercAdapter::with_version_source(VersionSource::Command(path))
}

#[test]
fn the_version_output_decides_what_smtp_means() {
    let tmp = tempfile::tempdir().unwrap();
    let (h, _) = with_accounts(tmp.path(), "rene", &fixture("accounts.conf"));
    let old = fake_aerc(
        tmp.path(),
        "aerc-old",
        "echo 'aerc 0.14.0 +notmuch (go1.19.8 amd64 linux)'",
        0o755,
    );
    let new = fake_aerc(
        tmp.path(),
        "aerc-new",
        "echo 'aerc 0.18.2-52-g3d7a1b0'",
        0o755,
    );
    let a = adapter(old);
    assert_eq!(a.version(), Some(AercVersion::new(0, 14, 0)));
    let d = a.discover(&h);
    assert_eq!(
        by_key(&d, "Work").outgoing.as_ref().unwrap().security,
        Security::None
    );
    assert!(d.findings.iter().all(|f| f.code != AMBIGUOUS_SECURITY));
    let a = adapter(new);
    assert_eq!(a.version(), Some(AercVersion::new(0, 18, 2)));
    let d = a.discover(&h);
    assert_eq!(
        by_key(&d, "Work").outgoing.as_ref().unwrap().security,
        Security::StartTls
    );
}

#[test]
fn no_answer_means_unknown_and_an_ambiguous_finding() {
    let tmp = tempfile::tempdir().unwrap();
    let (h, _) = with_accounts(tmp.path(), "rene", &fixture("accounts.conf"));
    let cases = [
        fake_aerc(tmp.path(), "garbled", "echo 'usage: aerc [-v]'", 0o755),
        fake_aerc(tmp.path(), "failing", "exit 3", 0o755),
        // Another user could have replaced a group- or world-writable binary: not run.
        fake_aerc(tmp.path(), "writable", "echo 'aerc 0.17.0'", 0o777),
        tmp.path().join("missing"),
    ];
    for path in cases {
        let a = adapter(path.clone());
        assert_eq!(a.version(), None, "{}", path.display());
        let d = a.discover(&h);
        assert!(
            d.findings.iter().any(|f| f.code == AMBIGUOUS_SECURITY),
            "{}",
            path.display()
        );
    }
}

#[test]
fn a_binary_that_hangs_is_given_up_on_in_time() {
    let tmp = tempfile::tempdir().unwrap();
    let slow = fake_aerc(tmp.path(), "slow", "exec sleep 30", 0o755);
    let started = Instant::now();
    assert_eq!(adapter(slow).version(), None);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn the_version_is_asked_once_per_adapter() {
    let tmp = tempfile::tempdir().unwrap();
    let counter = tmp.path().join("count");
    let script = format!("echo x >> {}\necho 'aerc 0.16.0'", counter.display());
    let a = adapter(fake_aerc(tmp.path(), "counted", &script, 0o755));
    for _ in 0..3 {
        assert_eq!(a.version(), Some(AercVersion::new(0, 16, 0)));
    }
    assert_eq!(
        std::fs::read_to_string(&counter).unwrap().lines().count(),
        1
    );
}
