//! `mailmend run` as laptops run it, driven through the real binary against a real IMAP server
//! (Dovecot on a loopback address of its own): repairs after an edit, ignores its own writes and
//! touches, stays bounded under floods, reloads or refuses policies live, stops cleanly between
//! fixes, refuses a second instance and speaks sd_notify.

// Unix only: the tests drive the agent with signals (nix), a Dovecot of the Linux lab and
// sd_notify; the Windows service is tested by tests/windows/service-under-wine.sh.
#![cfg(unix)]

#[path = "../benches/support/mod.rs"]
mod support;

use nix::sys::signal::Signal;
use std::path::Path;
use std::time::{Duration, Instant};
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_mailmend");

/// A test's world: the IMAP server, a home whose account uses it, state and policy.
struct World {
    server: ImapServer,
    dir: tempfile::TempDir,
    tb: TbHome,
}

impl World {
    fn new() -> World {
        let server = ImapServer::start();
        let dir = tempfile::tempdir().unwrap();
        let tb = thunderbird_home(dir.path(), &server.ip, 993);
        std::fs::write(
            dir.path().join("policy.toml"),
            policy_text(&server.ca(), ""),
        )
        .unwrap();
        World { server, dir, tb }
    }

    fn state(&self) -> std::path::PathBuf {
        self.dir.path().join("state")
    }

    fn policy(&self) -> std::path::PathBuf {
        self.dir.path().join("policy.toml")
    }

    /// Starts the agent and waits until it is ready and its first pass is done.
    fn agent(&self) -> Agent {
        let a = Agent::start(BIN, &self.tb.home, &self.state(), &self.policy(), &[]);
        assert!(
            a.wait_notify("READY=1", Duration::from_secs(10)),
            "no READY=1; log:\n{}",
            a.log()
        );
        assert!(
            a.wait_passes_done(1, Duration::from_secs(20)),
            "first pass did not finish; log:\n{}",
            a.log()
        );
        a
    }

    /// Breaks the account the way an editor does: a new file renamed over the old one.
    fn break_port(&self) {
        let tmp = self.tb.prefs.with_extension("js.tmp");
        std::fs::write(&tmp, prefs_text(&self.server.ip, WRONG_PORT, "")).unwrap();
        std::fs::rename(&tmp, &self.tb.prefs).unwrap();
    }

    fn wait_port(&self, port: u16, within: Duration) -> bool {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if configured_port(&self.tb.prefs) == Some(port) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    fn audit(&self) -> Vec<serde_json::Value> {
        audit_records(BIN, &self.state())
    }

    fn wait_audit(&self, kind: &str, outcome: Option<&str>, n: usize, within: Duration) -> bool {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if records_of(&self.audit(), kind, outcome).len() >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

fn intents(state: &Path) -> Vec<String> {
    std::fs::read_dir(state.join("intents"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn an_edit_that_breaks_the_port_is_repaired_verified_and_audited_within_seconds() {
    let w = World::new();
    let mut agent = w.agent();
    let edited = Instant::now();
    w.break_port();
    assert!(
        w.wait_port(993, Duration::from_secs(10)),
        "not repaired; log:\n{}",
        agent.log()
    );
    let took = edited.elapsed();
    assert!(
        w.wait_audit("outcome", Some("applied"), 1, Duration::from_secs(5)),
        "no applied outcome in the audit log; log:\n{}",
        agent.log()
    );
    let applied = records_of(&w.audit(), "outcome", Some("applied"))[0].clone();
    assert_eq!(applied["finding_code"], "settings.wrong_port", "{applied}");
    assert!(
        applied["verification"]
            .as_str()
            .is_some_and(|v| !v.is_empty()),
        "{applied}"
    );
    eprintln!("edit → repaired in {} ms", took.as_millis());
    // The repair looked only at the edited file's accounts.
    assert!(
        agent.count("(configuration changed): accounts in") >= 1,
        "{}",
        agent.log()
    );
    // The agent's own write wakes nothing: two passes (start, edit) and no third.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(agent.count(" started ("), 2, "log:\n{}", agent.log());
    assert_eq!(agent.stop(Duration::from_secs(10)), Some(0));
}

#[test]
fn touches_and_unrelated_rewrites_wake_nothing_and_a_flood_of_edits_stays_bounded() {
    let w = World::new();
    let mut agent = w.agent();
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(&w.tb.prefs)
        .unwrap();
    for i in 0..50u64 {
        file.set_modified(std::time::SystemTime::now() + Duration::from_secs(i))
            .unwrap();
        std::thread::sleep(Duration::from_millis(40));
    }
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        agent.count(" started ("),
        1,
        "a touch woke the agent:\n{}",
        agent.log()
    );

    // A rewrite that leaves the accounts as they were (Thunderbird saving a window size) costs
    // no pass either.
    let extra = "user_pref(\"mail.ui.folderpane.width\", 300);\n";
    std::fs::write(&w.tb.prefs, prefs_text(&w.server.ip, 993, extra)).unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        agent.count(" started ("),
        1,
        "an unrelated pref woke a pass:\n{}",
        agent.log()
    );

    // 50 edits of the account in two seconds (the login name, so it stays healthy).
    let start = Instant::now();
    for i in 0..50 {
        let text = prefs_text(&w.server.ip, 993, "").replace("\"alice\"", &format!("\"alice{i}\""));
        std::fs::write(&w.tb.prefs, text).unwrap();
        std::thread::sleep(Duration::from_millis(40));
    }
    let storm = start.elapsed();
    std::thread::sleep(Duration::from_secs(3));
    let passes = agent.count(" started (") - 1;
    // The debouncer allows one pass per FILE_MAX_WAIT (2 s) while the edits go on, plus one
    // when they stop.
    let bound = 1 + storm.as_millis().div_ceil(2000) as usize;
    eprintln!(
        "{passes} passes for a {} ms storm of 50 edits",
        storm.as_millis()
    );
    assert!(
        (1..=bound).contains(&passes),
        "{passes} passes for a {} ms storm (bound {bound}):\n{}",
        storm.as_millis(),
        agent.log()
    );
    assert_eq!(agent.stop(Duration::from_secs(10)), Some(0));
}

#[test]
fn an_invalid_policy_is_refused_live_and_the_last_good_one_stays_until_a_valid_one_comes() {
    let w = World::new();
    let mut agent = w.agent();
    let first_hash = records_of(&w.audit(), "policy_loaded", None)[0]["policy_hash"].clone();

    std::fs::write(w.policy(), "dry_run = \"maybe\"\n").unwrap();
    assert!(
        w.wait_audit("policy_rejected", None, 1, Duration::from_secs(10)),
        "invalid policy not refused; log:\n{}",
        agent.log()
    );
    let rejected = records_of(&w.audit(), "policy_rejected", None)[0].clone();
    assert!(
        rejected["message"]
            .as_str()
            .unwrap()
            .contains("policy.toml:1:11: invalid type"),
        "the refusal says where and what is wrong: {rejected}"
    );
    assert_eq!(rejected["policy_hash"], first_hash, "{rejected}");

    // The last good policy (set_port = auto) still repairs.
    w.break_port();
    assert!(w.wait_port(993, Duration::from_secs(10)), "{}", agent.log());
    assert!(w.wait_audit("outcome", Some("applied"), 1, Duration::from_secs(5)));
    let applied = records_of(&w.audit(), "outcome", Some("applied"))[0].clone();
    assert_eq!(applied["policy_hash"], first_hash);

    // A valid policy that only recommends port changes is taken at once.
    std::fs::write(
        w.policy(),
        policy_text(&w.server.ca(), "[actions]\nset_port = \"recommend\"\n"),
    )
    .unwrap();
    assert!(
        w.wait_audit("policy_loaded", None, 2, Duration::from_secs(10)),
        "valid policy not loaded; log:\n{}",
        agent.log()
    );
    w.break_port();
    assert!(
        w.wait_audit("outcome", Some("recommended"), 1, Duration::from_secs(10)),
        "{}",
        agent.log()
    );
    assert_eq!(configured_port(&w.tb.prefs), Some(WRONG_PORT));

    // SIGHUP reloads as well.
    agent.signal(Signal::SIGHUP);
    assert!(
        w.wait_audit("policy_loaded", None, 3, Duration::from_secs(10)),
        "{}",
        agent.log()
    );
    let last = records_of(&w.audit(), "policy_loaded", None)[2].clone();
    assert!(
        last["message"].as_str().unwrap().contains("SIGHUP"),
        "{last}"
    );
    assert_eq!(agent.stop(Duration::from_secs(10)), Some(0));
}

#[test]
fn sigterm_during_or_after_a_fix_stops_cleanly_and_leaves_no_intent() {
    // Stop at several points around the repair: before, during and after the fix.
    for delay_ms in [200u64, 340, 380, 450, 1500] {
        let w = World::new();
        let mut agent = w.agent();
        w.break_port();
        std::thread::sleep(Duration::from_millis(delay_ms));
        assert_eq!(
            agent.stop(Duration::from_secs(20)),
            Some(0),
            "delay {delay_ms} ms; log:\n{}",
            agent.log()
        );
        assert!(
            intents(&w.state()).is_empty(),
            "intent left at {delay_ms} ms"
        );
        assert!(agent.wait_notify("STOPPING=1", Duration::from_secs(2)));
        let port = configured_port(&w.tb.prefs);
        let applied = records_of(&w.audit(), "outcome", Some("applied")).len();
        // Either the fix finished and is audited, or it never started: never half-done.
        match port {
            Some(993) => assert_eq!(applied, 1, "delay {delay_ms} ms"),
            Some(WRONG_PORT) => assert_eq!(applied, 0, "delay {delay_ms} ms"),
            other => panic!("prefs.js port {other:?} at {delay_ms} ms"),
        }
        let records = w.audit();
        let stopped = records_of(&records, "notice", None);
        assert!(
            stopped.iter().any(|r| r["message"] == "agent stopped"),
            "delay {delay_ms} ms"
        );
        let verify = std::process::Command::new(BIN)
            .arg("--state-dir")
            .arg(w.state())
            .args(["audit", "verify"])
            .output()
            .unwrap();
        assert!(verify.status.success(), "audit log broken at {delay_ms} ms");
        drop(w.server);
    }
}

#[test]
fn sigterm_while_a_fix_is_in_flight_finishes_that_fix_first() {
    let w = World::new();
    let mut agent = w.agent();
    w.break_port();
    // Catch the moment the executor has recorded its intent and is applying or verifying.
    let until = Instant::now() + Duration::from_secs(10);
    while intents(&w.state()).is_empty() {
        assert!(
            Instant::now() < until,
            "no fix started; log:\n{}",
            agent.log()
        );
        std::thread::yield_now();
    }
    agent.signal(Signal::SIGTERM);
    let until = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(status) = agent.child.try_wait().unwrap() {
            break status.code();
        }
        assert!(
            Instant::now() < until,
            "did not stop; log:\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(code, Some(0), "{}", agent.log());
    assert!(intents(&w.state()).is_empty());
    // The fix in flight was finished and verified, not cut off.
    assert_eq!(configured_port(&w.tb.prefs), Some(993), "{}", agent.log());
    assert_eq!(records_of(&w.audit(), "outcome", Some("applied")).len(), 1);
    assert!(agent.wait_notify("STOPPING=1", Duration::from_secs(2)));
}

#[test]
fn a_fix_deferred_while_thunderbird_runs_is_applied_as_soon_as_it_exits() {
    let w = World::new();
    let mut agent = w.agent();
    // Thunderbird's profile lock: a symlink naming a live process (this test).
    let lock = w.tb.prefs.with_file_name("lock");
    std::os::unix::fs::symlink(format!("127.0.0.1:+{}", std::process::id()), &lock).unwrap();
    w.break_port();
    assert!(
        w.wait_audit("outcome", Some("deferred"), 1, Duration::from_secs(10)),
        "fix not deferred while the client runs; log:\n{}",
        agent.log()
    );
    // The agent does not fight the running client: the file stays as the user left it.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(configured_port(&w.tb.prefs), Some(WRONG_PORT));
    // Thunderbird exits: its lock goes away, and the fix follows without waiting for the
    // periodic check.
    std::fs::remove_file(&lock).unwrap();
    assert!(
        w.wait_port(993, Duration::from_secs(10)),
        "not repaired after the client exited; log:\n{}",
        agent.log()
    );
    assert!(w.wait_audit("outcome", Some("applied"), 1, Duration::from_secs(5)));
    assert_eq!(agent.stop(Duration::from_secs(10)), Some(0));
}

#[test]
fn a_second_instance_refuses_to_start_with_a_clear_message_and_exit_code_2() {
    let w = World::new();
    let mut agent = w.agent();
    let out = std::process::Command::new(BIN)
        .arg("--home")
        .arg(&w.tb.home)
        .arg("--state-dir")
        .arg(w.state())
        .arg("--policy")
        .arg(w.policy())
        .arg("run")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("another mailmend is already running"), "{err}");
    assert!(
        err.contains(&agent.child.id().to_string()),
        "names the holder: {err}"
    );
    assert_eq!(agent.stop(Duration::from_secs(10)), Some(0));
}

#[test]
fn a_new_thunderbird_profile_appearing_later_is_found_and_repaired() {
    let server = ImapServer::start();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, policy_text(&server.ca(), "")).unwrap();
    let state = dir.path().join("state");
    let mut agent = Agent::start(BIN, &home, &state, &policy, &[]);
    assert!(agent.wait_notify("READY=1", Duration::from_secs(10)));
    assert!(agent.wait_passes_done(1, Duration::from_secs(20)));

    // Thunderbird's first start: the profile root, profiles.ini, then prefs.js, broken.
    let tb = thunderbird_home(dir.path(), &server.ip, WRONG_PORT);
    let until = Instant::now() + Duration::from_secs(15);
    while configured_port(&tb.prefs) != Some(993) {
        assert!(
            Instant::now() < until,
            "new profile not repaired; log:\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(agent.stop(Duration::from_secs(10)), Some(0));
}

/// Runs the agent in a network namespace of its own and changes that namespace's network.
#[test]
fn network_changes_wake_a_pass_and_a_flapping_link_stays_within_the_flap_bound() {
    // A test that quietly passes without running proves nothing: without root it fails.
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root for a network namespace: run the test command as root"
    );
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "[probes]\ncheck_interval_secs = 3600\n").unwrap();
    let state = dir.path().join("state");
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--net", "--", BIN]);
    let mut agent = Agent::start_with(cmd, &home, &state, &policy, &[]);
    assert!(
        agent.wait_notify("READY=1", Duration::from_secs(10)),
        "{}",
        agent.log()
    );
    assert!(agent.wait_passes_done(1, Duration::from_secs(20)));
    let ns = format!("--net=/proc/{}/ns/net", agent.child.id());
    let ip = |script: &str| {
        let out = std::process::Command::new("nsenter")
            .args([ns.as_str(), "sh", "-c", script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };

    ip("ip link set lo up");
    assert!(
        agent.wait_log("(network changed)", Duration::from_secs(10)),
        "bringing lo up woke nothing:\n{}",
        agent.log()
    );
    assert!(agent.wait_passes_done(2, Duration::from_secs(10)));

    // Flap: an address comes and goes 30 times in about three seconds.
    let flap_started = Instant::now();
    ip("for i in $(seq 1 30); do ip addr add 10.99.0.1/32 dev lo; ip addr del 10.99.0.1/32 dev lo; sleep 0.1; done");
    std::thread::sleep(Duration::from_secs(15).saturating_sub(flap_started.elapsed()));
    let window = flap_started.elapsed();
    let network_passes = agent.count("(network changed)") - 1;
    // NETWORK_PASS_EVERY is 10 s: at most one pass per 10 s of the window, plus one.
    let bound = 1 + (window.as_secs() / 10) as usize;
    assert!(
        (1..=bound).contains(&network_passes),
        "{network_passes} network passes in {} s (bound {bound}):\n{}",
        window.as_secs(),
        agent.log()
    );
    assert_eq!(agent.stop(Duration::from_secs(10)), Some(0));
}
