//! "Is mutt running for this account?" from an injected process table: a `mutt` or `neomutt`
//! process of the user who owns the account's file.
#![cfg(unix)]

mod common;

use common::{ann, write};
use mailmend_core::{Account, ClientAdapter};
use mailmend_mutt::{MuttAdapter, ProcFs, ProcessInfo, StaticProcesses};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

fn setup() -> (tempfile::TempDir, Account, u32) {
    let tmp = tempfile::tempdir().unwrap();
    let h = ann(tmp.path());
    let account = MuttAdapter::new().discover(&h).accounts.remove(0);
    let uid = std::fs::metadata(h.path.join(".muttrc")).unwrap().uid();
    (tmp, account, uid)
}

fn with(processes: Vec<ProcessInfo>) -> MuttAdapter {
    MuttAdapter::with_process_table(Arc::new(StaticProcesses(processes)))
}

fn proc(pid: u32, name: &str, uid: Option<u32>) -> ProcessInfo {
    ProcessInfo {
        pid,
        name: name.into(),
        uid,
    }
}

#[test]
fn mutt_or_neomutt_of_the_files_owner_means_running() {
    let (_tmp, a, uid) = setup();
    assert!(with(vec![
        proc(10, "bash", Some(uid)),
        proc(11, "mutt", Some(uid))
    ])
    .is_running(&a));
    assert!(with(vec![proc(12, "neomutt", Some(uid))]).is_running(&a));
}

#[test]
fn other_users_and_other_programs_do_not_count() {
    let (_tmp, a, uid) = setup();
    assert!(!with(vec![]).is_running(&a));
    assert!(!with(vec![proc(11, "mutt", Some(uid + 1))]).is_running(&a));
    assert!(!with(vec![
        proc(11, "muttx", Some(uid)),
        proc(12, "aerc", Some(uid))
    ])
    .is_running(&a));
}

#[test]
fn a_process_of_unknown_user_counts_to_be_safe() {
    let (_tmp, a, _uid) = setup();
    assert!(with(vec![proc(11, "mutt", None)]).is_running(&a));
}

#[test]
fn a_proc_directory_is_read_and_zombies_are_left_out() {
    let (tmp, a, uid) = setup();
    let fake = tmp.path().join("proc");
    let status = |state: &str, uid: u32| {
        format!("Name:\tx\nState:\t{state}\nPid:\t1\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n")
    };
    write(&fake.join("self/comm"), b"mutt\n");
    write(&fake.join("100/comm"), b"neomutt\n");
    write(
        &fake.join("100/status"),
        status("Z (zombie)", uid).as_bytes(),
    );
    write(&fake.join("101/comm"), b"mutt\n");
    write(
        &fake.join("101/status"),
        status("S (sleeping)", uid + 7).as_bytes(),
    );
    let adapter = MuttAdapter::with_process_table(Arc::new(ProcFs::at(&fake)));
    assert!(!adapter.is_running(&a));
    write(&fake.join("102/comm"), b"neomutt\n");
    write(
        &fake.join("102/status"),
        status("S (sleeping)", uid).as_bytes(),
    );
    assert!(adapter.is_running(&a));
}
