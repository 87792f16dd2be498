//! `mailmend run` as a Windows service, driven through the real binary and the real service
//! control manager (Wine's services.exe in the test command's Wine leg): `mailmend service
//! install` creates the service and the Event Log source, the service control manager starts
//! it, Stop makes it stop gracefully (the audit log ends with "agent stopped", as after SIGTERM
//! on Linux), and `mailmend service uninstall` removes both. Needs administrator rights, which
//! the Wine prefix's user has.
#![cfg(windows)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use windows_service::service::{ServiceAccess, ServiceState};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};

const BIN: &str = env!("CARGO_BIN_EXE_mailmend");

/// The two tests never overlap: Wine's service control manager lets any process that calls
/// StartServiceCtrlDispatcher while a service start is pending take that service's control
/// pipe (Windows checks the process id), so a console `mailmend run` starting at the same time
/// as the service could be taken for it.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}
const EVENT_SOURCE_KEY: &str = r"SYSTEM\CurrentControlSet\Services\EventLog\Application\mailmend";

fn mailmend(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "mailmend {args:?} failed: {text}");
    text
}

fn audit_text(state: &Path) -> String {
    std::fs::read_to_string(state.join("audit").join("audit.jsonl")).unwrap_or_default()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_service_installs_starts_stops_gracefully_and_uninstalls() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let state_arg = state.to_str().unwrap();
    // A leftover from an interrupted run would make `install` fail.
    mailmend(&["service", "uninstall"]);

    let out = mailmend(&["--state-dir", state_arg, "service", "install"]);
    assert!(out.contains("installed service mailmend"), "{out}");
    let source = windows_registry::LOCAL_MACHINE
        .open(EVENT_SOURCE_KEY)
        .expect("install registers the Event Log source");
    assert_eq!(source.get_u32("TypesSupported").unwrap(), 7);

    let manager =
        ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT).unwrap();
    let service = manager
        .open_service(
            "mailmend",
            ServiceAccess::QUERY_STATUS
                | ServiceAccess::QUERY_CONFIG
                | ServiceAccess::START
                | ServiceAccess::STOP,
        )
        .unwrap();
    let config = service.query_config().unwrap();
    let command = config.executable_path.to_string_lossy().into_owned();
    assert!(command.contains("mailmend"), "{command}");
    assert!(
        command.contains("--state-dir") && command.ends_with("run"),
        "the service runs `mailmend --state-dir DIR run`: {command}"
    );

    service.start::<&str>(&[]).unwrap();
    wait_for("the service to run", Duration::from_secs(60), || {
        service.query_status().unwrap().current_state == ServiceState::Running
    });
    wait_for(
        "the agent's start in the audit log",
        Duration::from_secs(60),
        || audit_text(&state).contains("agent started"),
    );

    service.stop().unwrap();
    wait_for("the service to stop", Duration::from_secs(90), || {
        service.query_status().unwrap().current_state == ServiceState::Stopped
    });
    let audit = audit_text(&state);
    assert!(
        audit.contains("agent stopped"),
        "Stop is the graceful path (as SIGTERM on Linux): {audit}"
    );
    assert!(
        state
            .join("intents")
            .read_dir()
            .map_or(true, |mut d| d.next().is_none()),
        "no fix was left half applied"
    );
    drop(service);

    let out = mailmend(&["service", "uninstall"]);
    assert!(out.contains("uninstalled service mailmend"), "{out}");
    assert!(manager
        .open_service("mailmend", ServiceAccess::QUERY_STATUS)
        .is_err());
    assert!(windows_registry::LOCAL_MACHINE
        .open(EVENT_SOURCE_KEY)
        .is_err());
    // Uninstalling again is no error.
    let out = mailmend(&["service", "uninstall"]);
    assert!(out.contains("not installed"), "{out}");
}

#[test]
fn run_started_from_a_console_runs_without_the_service_control_manager() {
    let _serial = one_at_a_time();
    // `mailmend run` outside the service control manager must not fail on the dispatcher: it
    // runs in the console. A second instance on the same state directory then refuses to
    // start, which shows the first one got as far as holding the lock.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let args = [
        "--state-dir",
        state.to_str().unwrap(),
        "--home",
        home.to_str().unwrap(),
        "run",
    ];
    let mut first = Command::new(BIN).args(args).spawn().unwrap();
    wait_for(
        "the console agent to start",
        Duration::from_secs(60),
        || audit_text(&state).contains("agent started"),
    );
    let second = Command::new(BIN).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(err.contains("another mailmend is already running"), "{err}");
    assert!(err.contains(&first.id().to_string()), "{err}");
    first.kill().unwrap();
    first.wait().unwrap();
}
