//! "Is Thunderbird running with this profile?" from the profile's `lock` symlink and
//! `.parentlock`, which decides whether a fix is applied now or deferred.
#![cfg(target_os = "linux")]

mod common;

use common::{fixture, home, one_profile};
use mailmend_core::{Account, ClientAdapter};
use mailmend_thunderbird::ThunderbirdAdapter;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn profile_account() -> (tempfile::TempDir, PathBuf, Account) {
    let tmp = tempfile::tempdir().unwrap();
    let h = home(tmp.path(), "rene");
    let profile = one_profile(&h, ".thunderbird", "p.default", &fixture("prefs-tb115.js"));
    let account = ThunderbirdAdapter.discover(&h).accounts.remove(0);
    (tmp, profile, account)
}

fn lock_with(profile: &Path, target: &str) {
    std::os::unix::fs::symlink(target, profile.join("lock")).unwrap();
}

fn state_of(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

#[test]
fn no_lock_means_not_running() {
    let (_tmp, _profile, a) = profile_account();
    assert!(!ThunderbirdAdapter.is_running(&a));
}

#[test]
fn a_lock_held_by_a_live_process_means_running() {
    let (_tmp, profile, a) = profile_account();
    lock_with(&profile, &format!("127.0.1.1:+{}", std::process::id()));
    assert!(ThunderbirdAdapter.is_running(&a));
}

#[test]
fn a_lock_left_by_a_dead_process_is_stale() {
    let (_tmp, profile, a) = profile_account();
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    lock_with(&profile, &format!("127.0.1.1:+{pid}"));
    assert!(!ThunderbirdAdapter.is_running(&a));
}

#[test]
fn a_lock_held_by_a_zombie_is_stale() {
    let (_tmp, profile, a) = profile_account();
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    // Not reaped yet, the exited child stays a zombie.
    let deadline = Instant::now() + Duration::from_secs(10);
    while state_of(pid) != Some('Z') {
        assert!(Instant::now() < deadline, "child never became a zombie");
        std::thread::sleep(Duration::from_millis(10));
    }
    lock_with(&profile, &format!("127.0.1.1:+{pid}"));
    assert!(!ThunderbirdAdapter.is_running(&a));
    child.wait().unwrap();
}

#[test]
fn an_unreadable_lock_target_is_treated_as_running() {
    let (_tmp, profile, a) = profile_account();
    lock_with(&profile, "not-a-mozilla-lock");
    assert!(ThunderbirdAdapter.is_running(&a));
}

#[test]
fn a_leftover_parentlock_file_without_a_lock_means_not_running() {
    let (_tmp, profile, a) = profile_account();
    std::fs::write(profile.join(".parentlock"), b"").unwrap();
    assert!(!ThunderbirdAdapter.is_running(&a));
}

#[test]
fn a_parentlock_with_a_record_lock_means_running() {
    let (_tmp, profile, a) = profile_account();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(profile.join(".parentlock"))
        .unwrap();
    // An open-file-description lock conflicts with the adapter's F_GETLK even within this
    // process, which stands in for Thunderbird's lock held by another process.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as _;
    fl.l_whence = libc::SEEK_SET as _;
    let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &mut fl) };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
    assert!(ThunderbirdAdapter.is_running(&a));
    drop(file);
    assert!(!ThunderbirdAdapter.is_running(&a));
}
