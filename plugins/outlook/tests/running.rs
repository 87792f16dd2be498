//! "Is Outlook running?" from a process table: any OUTLOOK.EXE, whatever the case of its name,
//! defers a change (the executor reports it as deferred; see the executor's registry tests).

mod common;

use common::{home, Machine};
use mailmend_core::ClientAdapter;
use mailmend_outlook::{is_outlook_process, ProcFs, ProcessInfo, StaticProcesses};
use std::sync::Arc;

fn proc(pid: u32, name: &str) -> ProcessInfo {
    ProcessInfo {
        pid,
        name: name.into(),
        uid: None,
    }
}

#[test]
fn outlook_exe_in_any_case_means_running() {
    let m = Machine::new();
    let account = m.adapter().discover(&home("alice")).accounts.remove(1);
    for name in ["OUTLOOK.EXE", "outlook.exe", "Outlook.exe", "OUTLOOK"] {
        let adapter = m.adapter().with_processes(Arc::new(StaticProcesses(vec![
            proc(1, "explorer.exe"),
            proc(2, name),
        ])));
        assert!(adapter.is_running(&account), "{name}");
    }
    for name in [
        "OUTLOOK.EXE.bak",
        "outlookhelper.exe",
        "olk.exe",
        "thunderbird",
    ] {
        let adapter = m
            .adapter()
            .with_processes(Arc::new(StaticProcesses(vec![proc(2, name)])));
        assert!(!adapter.is_running(&account), "{name}");
    }
    assert!(is_outlook_process(
        r"C:\Program Files\Microsoft Office\root\Office16\OUTLOOK.EXE"
    ));
}

#[test]
fn a_proc_tree_with_outlook_under_wine_counts() {
    // Under Wine a Windows program shows in /proc with its .exe name as comm.
    let m = Machine::new();
    let account = m.adapter().discover(&home("bob")).accounts.remove(0);
    let fake = m.dir.path().join("proc");
    let write = |pid: &str, comm: &str, state: &str| {
        let d = fake.join(pid);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("comm"), format!("{comm}\n")).unwrap();
        std::fs::write(
            d.join("status"),
            format!("Name:\t{comm}\nState:\t{state}\nUid:\t0\t0\t0\t0\n"),
        )
        .unwrap();
    };
    write("10", "OUTLOOK.EXE", "Z (zombie)");
    write("11", "wineserver", "S (sleeping)");
    let adapter = m.adapter().with_processes(Arc::new(ProcFs::at(&fake)));
    assert!(!adapter.is_running(&account), "a zombie runs nothing");
    write("12", "OUTLOOK.EXE", "S (sleeping)");
    assert!(adapter.is_running(&account));
}
