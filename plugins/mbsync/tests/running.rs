//! "Is mbsync running for this user?" from the process table, which decides whether a fix is
//! applied now or deferred.

// Unix only: "running" means a process of the file owner's uid in /proc; Windows has no uids
// (owner_uid is None there) and the adapter reads no Windows process table.
#![cfg(unix)]

mod common;

use common::{adapter, fixture, home_with, FakeTable};
use mailmend_core::ClientAdapter;
use mailmend_mbsync::{MbsyncAdapter, ProcessInfo};
use std::process::Command;

fn uid_of_files() -> u32 {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("f");
    std::fs::write(&p, b"").unwrap();
    mailmend_mbsync::process::owner_uid(&p).unwrap()
}

#[test]
fn an_mbsync_of_the_user_means_running_and_another_users_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with(tmp.path(), "rene", &fixture("mbsyncrc"));
    let a = adapter().discover(&h).accounts.remove(0);
    let me = uid_of_files();
    let table = |procs: Vec<(u32, &str)>| {
        FakeTable(
            procs
                .into_iter()
                .enumerate()
                .map(|(i, (uid, name))| ProcessInfo {
                    pid: 100 + i as u32,
                    uid: Some(uid),
                    name: name.into(),
                })
                .collect(),
        )
    };
    let running = |t: FakeTable| adapter().with_processes(t).is_running(&a);
    assert!(!running(table(vec![])));
    assert!(running(table(vec![(me, "bash"), (me, "mbsync")])));
    assert!(!running(table(vec![(me + 1, "mbsync")])));
    assert!(!running(table(vec![
        (me, "mbsync-get-cert"),
        (me, "offlineimap")
    ])));
}

#[cfg(target_os = "linux")]
#[test]
fn a_real_process_named_mbsync_is_seen_in_proc() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with(tmp.path(), "rene", &fixture("mbsyncrc"));
    let real = MbsyncAdapter::new();
    let a = real.discover(&h).accounts.remove(0);
    // A copy of sleep named mbsync: the kernel names the process after its executable.
    let fake_mbsync = tmp.path().join("mbsync");
    std::fs::copy("/bin/sleep", &fake_mbsync).unwrap();
    let was_running = real.is_running(&a);
    let mut child = Command::new(&fake_mbsync).arg("30").spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !real.is_running(&a) {
        assert!(std::time::Instant::now() < deadline, "mbsync never seen");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Unless a real mbsync of this user happens to run, it is no longer seen.
    if !was_running {
        assert!(!real.is_running(&a));
    }
}
