//! The Linux notifier against a real session bus (dbus-daemon) and a real notification server
//! (dunst on an Xvfb display, printing what it receives), both run as an unprivileged user
//! (nobody) the way a desktop session runs as its user; and without a bus or without a server,
//! where the performer must say so, so that the message stays in the audit log.

#![cfg(target_os = "linux")]

mod common;

use common::{run, wait_for, ChildGuard};
use mailmend_actions::notify::{freedesktop_body, notification_for, Notifier};
use mailmend_actions::{PerformError, Performer};
use mailmend_core::{AccountId, Action};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const NOBODY: u32 = 65534;

/// nobody's primary group (nogroup on Debian).
fn nogroup() -> u32 {
    let out = run(Command::new("id").args(["-g", "nobody"]));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn as_nobody(cmd: &mut Command) -> &mut Command {
    cmd.uid(NOBODY).gid(nogroup())
}

fn need(program: &str) {
    assert!(
        Command::new("sh")
            .args(["-c", &format!("command -v {program}")])
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success(),
        "{program} is missing: run tests/install-deps.sh (packages dbus, dunst, xvfb, libglib2.0-bin)"
    );
}

/// A directory tree like /run/user: `<root>/run/65534/` owned by nobody, mode 0700.
struct Runtime {
    dir: tempfile::TempDir,
}

impl Runtime {
    fn new() -> Runtime {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let user_dir = dir.path().join("run").join(NOBODY.to_string());
        std::fs::create_dir_all(&user_dir).unwrap();
        std::fs::set_permissions(
            dir.path().join("run"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::chown(&user_dir, Some(NOBODY), Some(nogroup())).unwrap();
        std::fs::set_permissions(&user_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir(&home).unwrap();
        std::os::unix::fs::chown(&home, Some(NOBODY), Some(nogroup())).unwrap();
        Runtime { dir }
    }

    fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    fn bus(&self) -> PathBuf {
        self.run_dir().join(NOBODY.to_string()).join("bus")
    }

    fn address(&self) -> String {
        format!("unix:path={}", self.bus().display())
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// A session bus of nobody's, without service activation (so that nothing but the test's
    /// own server can answer).
    fn start_bus(&self) -> ChildGuard {
        let conf = self.dir.path().join("bus.conf");
        std::fs::write(
            &conf,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>{}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                self.address()
            ),
        )
        .unwrap();
        let mut cmd = Command::new("dbus-daemon");
        cmd.arg(format!("--config-file={}", conf.display()))
            .args(["--nofork", "--print-address"]);
        as_nobody(&mut cmd);
        common::spawn_until_ready(&mut cmd, "unix:path=")
    }

    fn gdbus_as_nobody(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("gdbus");
        cmd.args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("DBUS_SESSION_BUS_ADDRESS", self.address());
        as_nobody(&mut cmd);
        let out = cmd.output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn has_notification_server(&self) -> bool {
        self.gdbus_as_nobody(&[
            "call",
            "--session",
            "--dest",
            "org.freedesktop.DBus",
            "--object-path",
            "/org/freedesktop/DBus",
            "--method",
            "org.freedesktop.DBus.NameHasOwner",
            "org.freedesktop.Notifications",
        ])
        .contains("true")
    }
}

/// An X server for dunst; the display number is what Xvfb prints on `-displayfd 1`.
fn start_xvfb() -> (ChildGuard, String) {
    let mut child = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-ac",
            "-nolisten",
            "tcp",
            "-nolisten",
            "unix",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start Xvfb");
    let stdout = child.stdout.take().expect("stdout is piped");
    let guard = ChildGuard(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let display = line.trim().to_string();
    assert!(
        !display.is_empty() && display.bytes().all(|b| b.is_ascii_digit()),
        "Xvfb printed no display number: {line:?}"
    );
    (guard, format!(":{display}"))
}

/// dunst as nobody on the test's bus, printing every notification it receives.
fn start_dunst(rt: &Runtime, display: &str) -> (ChildGuard, Arc<Mutex<String>>) {
    let mut cmd = Command::new("dunst");
    cmd.arg("-print")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", rt.home())
        .env("DISPLAY", display)
        .env("DBUS_SESSION_BUS_ADDRESS", rt.address())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    as_nobody(&mut cmd);
    let mut child = cmd.spawn().expect("cannot start dunst");
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let printed = Arc::new(Mutex::new(String::new()));
    let sink = printed.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            // The lock is only held for an append; a poisoned lock means the test already failed.
            if let Ok(mut s) = sink.lock() {
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    });
    let guard = ChildGuard(child);
    assert!(
        wait_for(Duration::from_secs(10), || rt.has_notification_server()),
        "dunst did not take the org.freedesktop.Notifications name"
    );
    (guard, printed)
}

/// The (appname, summary, body) of every notification in dunst's `-print` output.
fn printed_notifications(text: &str) -> Vec<(String, String, String)> {
    let field = |block: &str, name: &str, next: &str| -> Option<String> {
        let start = block.find(&format!("\t{name}: '"))? + name.len() + 4;
        let end = block[start..].find(&format!("'\n\t{next}:"))? + start;
        Some(block[start..end].to_string())
    };
    text.split("\n}")
        .filter_map(|block| {
            Some((
                field(block, "appname", "summary")?,
                field(block, "summary", "body")?,
                field(block, "body", "icon")?,
            ))
        })
        .collect()
}

fn notify_action(message: &str) -> Action {
    Action::NotifyUser {
        account: AccountId("thunderbird-0123456789ab".into()),
        problem: "tls.cert_expired".into(),
        message: message.into(),
    }
}

#[test]
fn a_notification_reaches_the_users_notification_server_as_that_user() {
    for p in ["dbus-daemon", "dunst", "Xvfb", "gdbus"] {
        need(p);
    }
    let rt = Runtime::new();
    let _bus = rt.start_bus();
    let (_x, display) = start_xvfb();
    let (_dunst, printed) = start_dunst(&rt, &display);

    let notifier = Notifier::with_runtime_dir(rt.run_dir()).only_uids(&[NOBODY]);
    let action = notify_action(
        "The certificate of imap.example.com expired <2026-11-01> & it's not your fault",
    );
    let before = notifier.snapshot(&action).unwrap();
    assert_eq!(before["session_uids"], serde_json::json!([NOBODY]));
    let after = notifier.apply("fx-test", &action).unwrap();
    assert_eq!(after["shown"][0]["uid"], NOBODY);
    assert_eq!(after["shown"][0]["user"], "nobody");
    assert_eq!(after["shown"][0]["via"], "gdbus");
    assert!(after["shown"][0]["id"].as_u64().is_some(), "{after}");
    assert_eq!(after["failed"], serde_json::json!([]));

    let expected = notification_for(&action).unwrap();
    let arrived = wait_for(Duration::from_secs(5), || {
        let text = printed.lock().unwrap().clone();
        !printed_notifications(&text).is_empty()
    });
    let text = printed.lock().unwrap().clone();
    assert!(arrived, "dunst printed no notification: {text}");
    let got = printed_notifications(&text);
    assert_eq!(got.len(), 1, "{text}");
    assert_eq!(got[0].0, "mailmend");
    assert_eq!(got[0].1, expected.summary);
    // Markup characters arrive escaped, so the server shows them as text.
    assert_eq!(got[0].2, freedesktop_body(&expected.body));
    assert!(got[0].2.contains(
        "&lt;2026-11-01&gt; &amp; it's not your fault\n(helpdesk reference: tls.cert_expired)"
    ));

    // A notification cannot be taken back; undo succeeds and sends nothing.
    notifier.undo("fx-test", &action, &before).unwrap();

    // The same user, named: notify_os_user finds the bus by the user's uid.
    let one = notifier
        .notify_os_user(
            "nobody",
            &notification_for(&notify_action("second")).unwrap(),
        )
        .unwrap();
    assert_eq!(one["uid"], NOBODY);
    assert!(wait_for(Duration::from_secs(5), || {
        printed_notifications(&printed.lock().unwrap()).len() == 2
    }));

    // What the executor calls: the account's own user is notified...
    let mine = notifier
        .apply_for_user("fx-test", &notify_action("third, for nobody"), "nobody")
        .unwrap();
    assert_eq!(mine["uid"], NOBODY);
    assert!(wait_for(Duration::from_secs(5), || {
        printed_notifications(&printed.lock().unwrap()).len() == 3
    }));
    // ...and an account of another OS user (one with no session here) is not shown in this
    // session: the message stays in the audit log. Regression: every logged-in user was told
    // about any account on the computer.
    match notifier.apply_for_user("fx-test", &notify_action("for daemon"), "daemon") {
        Err(PerformError::Unavailable(m)) => {
            assert!(m.contains("daemon has no session bus"), "{m}");
            assert!(m.contains("audit log"), "{m}");
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
    match notifier.apply_for_user("fx-test", &notify_action("for a ghost"), "no-such-user-x") {
        Err(PerformError::Unavailable(m)) => assert!(m.contains("no-such-user-x"), "{m}"),
        other => panic!("expected unavailable, got {other:?}"),
    }
    // Give a wrongly sent notification time to arrive before counting.
    std::thread::sleep(Duration::from_millis(500));
    let text = printed.lock().unwrap().clone();
    let got = printed_notifications(&text);
    assert_eq!(got.len(), 3, "{text}");
    assert!(
        !text.contains("for daemon") && !text.contains("for a ghost"),
        "{text}"
    );
}

#[test]
fn a_session_bus_without_a_notification_server_falls_back_to_the_audit_log() {
    need("dbus-daemon");
    need("gdbus");
    let rt = Runtime::new();
    let _bus = rt.start_bus();
    let notifier = Notifier::with_runtime_dir(rt.run_dir()).only_uids(&[NOBODY]);
    let action = notify_action("m");
    // The bus exists, so the snapshot finds a session; nothing answers the notification.
    notifier.snapshot(&action).unwrap();
    match notifier.apply("fx-test", &action) {
        Err(PerformError::Unavailable(m)) => {
            assert!(m.contains("no session bus took the notification"), "{m}");
            assert!(m.contains("audit log"), "{m}");
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
}

#[test]
fn without_a_session_bus_the_notifier_is_unavailable() {
    let rt = Runtime::new();
    let notifier = Notifier::with_runtime_dir(rt.run_dir()).only_uids(&[NOBODY]);
    for result in [
        notifier.snapshot(&notify_action("m")).map(|_| ()),
        notifier.apply("fx-test", &notify_action("m")).map(|_| ()),
    ] {
        match result {
            Err(PerformError::Unavailable(m)) => assert!(m.contains("no user session"), "{m}"),
            other => panic!("expected unavailable, got {other:?}"),
        }
    }
}

#[test]
fn nobodys_session_bus_is_not_a_persons_and_is_not_notified_by_default() {
    need("dbus-daemon");
    let rt = Runtime::new();
    let _bus = rt.start_bus();
    assert!(Path::new(&rt.bus()).exists());
    let default_rule = Notifier::with_runtime_dir(rt.run_dir());
    assert!(default_rule.sessions().is_empty());
    assert!(matches!(
        default_rule.snapshot(&notify_action("m")),
        Err(PerformError::Unavailable(_))
    ));
    // Declared explicitly, the same bus is found.
    let explicit = Notifier::with_runtime_dir(rt.run_dir()).only_uids(&[NOBODY]);
    assert_eq!(explicit.sessions().len(), 1);
}
