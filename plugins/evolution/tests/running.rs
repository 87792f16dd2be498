//! "Is Evolution's source registry (or Evolution) running for this user?" from the process
//! table, which decides whether a fix is applied now or deferred.

// Unix only: "running" means a process of the file owner's uid in /proc; Windows has no uids
// (owner_uid is None there) and the adapter reads no Windows process table.
#![cfg(unix)]

mod common;

use common::*;
use mailmend_core::ClientAdapter;
use mailmend_evolution::{EvolutionAdapter, ProcessInfo};
use std::process::Command;

fn uid_of_files() -> u32 {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("f");
    std::fs::write(&p, b"").unwrap();
    mailmend_evolution::process::owner_uid(&p).unwrap()
}

fn table(procs: &[(u32, &str)]) -> FakeTable {
    FakeTable(
        procs
            .iter()
            .enumerate()
            .map(|(i, (uid, name))| ProcessInfo {
                pid: 100 + i as u32,
                uid: Some(*uid),
                name: name.to_string(),
            })
            .collect(),
    )
}

#[test]
fn the_registry_or_evolution_of_the_user_means_running() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with_fixtures(tmp.path(), "rene");
    let a = account(&h, WORK);
    let me = uid_of_files();
    let running = |t: FakeTable| adapter().with_processes(t).is_running(&a);
    assert!(!running(table(&[])));
    // The kernel cuts the registry's name to 15 bytes.
    assert!(running(table(&[(me, "evolution-sourc")])));
    assert!(running(table(&[(me, "evolution")])));
    assert!(!running(table(&[
        (me + 1, "evolution-sourc"),
        (me + 1, "evolution")
    ])));
    assert!(!running(table(&[
        (me, "evolution-calen"),
        (me, "evolution-alarm")
    ])));
}

#[cfg(target_os = "linux")]
#[test]
fn a_real_process_named_like_the_registry_is_seen_in_proc() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with_fixtures(tmp.path(), "rene");
    let real = EvolutionAdapter::new();
    let a = account(&h, WORK);
    let registry = tmp.path().join("evolution-source-registry");
    std::fs::copy("/bin/sleep", &registry).unwrap();
    let was_running = real.is_running(&a);
    let mut child = Command::new(&registry).arg("30").spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !real.is_running(&a) {
        assert!(std::time::Instant::now() < deadline, "registry never seen");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    if !was_running {
        assert!(!real.is_running(&a));
    }
}
