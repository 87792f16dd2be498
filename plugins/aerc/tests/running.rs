//! "Is aerc running for this account?" from an injected process table: an `aerc` process of
//! the user who owns accounts.conf.
#![cfg(unix)]

mod common;

use common::{fixture, with_accounts, write};
use mailmend_aerc::{AercAdapter, ProcFs, ProcessInfo, StaticProcesses};
use mailmend_core::{Account, ClientAdapter};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

fn setup() -> (tempfile::TempDir, Account, u32) {
    let tmp = tempfile::tempdir().unwrap();
    let (h, path) = with_accounts(tmp.path(), "rene", &fixture("accounts.conf"));
    let account = AercAdapter::with_version(None)
        .discover(&h)
        .accounts
        .remove(0);
    let uid = std::fs::metadata(path).unwrap().uid();
    (tmp, account, uid)
}

fn with(processes: Vec<ProcessInfo>) -> AercAdapter {
    AercAdapter::with_version(None).with_process_table(Arc::new(StaticProcesses(processes)))
}

fn proc(pid: u32, name: &str, uid: Option<u32>) -> ProcessInfo {
    ProcessInfo {
        pid,
        name: name.into(),
        uid,
    }
}

#[test]
fn aerc_of_the_files_owner_means_running() {
    let (_tmp, a, uid) = setup();
    assert!(with(vec![proc(5, "sh", Some(uid)), proc(6, "aerc", Some(uid))]).is_running(&a));
    assert!(with(vec![proc(6, "aerc", None)]).is_running(&a));
}

#[test]
fn other_users_and_other_programs_do_not_count() {
    let (_tmp, a, uid) = setup();
    assert!(!with(vec![]).is_running(&a));
    assert!(!with(vec![proc(6, "aerc", Some(uid + 1))]).is_running(&a));
    assert!(!with(vec![
        proc(6, "mutt", Some(uid)),
        proc(7, "aerc-foo", Some(uid))
    ])
    .is_running(&a));
}

#[test]
fn a_proc_directory_is_read_and_zombies_are_left_out() {
    let (tmp, a, uid) = setup();
    let fake = tmp.path().join("proc");
    let status = |state: &str| format!("State:\t{state}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n");
    write(&fake.join("300/comm"), b"aerc\n");
    write(&fake.join("300/status"), status("Z (zombie)").as_bytes());
    let adapter = AercAdapter::with_version(None).with_process_table(Arc::new(ProcFs::at(&fake)));
    assert!(!adapter.is_running(&a));
    write(&fake.join("301/comm"), b"aerc\n");
    write(&fake.join("301/status"), status("S (sleeping)").as_bytes());
    assert!(adapter.is_running(&a));
}
