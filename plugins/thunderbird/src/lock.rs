//! Whether a Thunderbird instance has a profile open, from the locks Mozilla's profile lock
//! leaves in the profile directory.
//!
//! - Linux and macOS: `.parentlock` carries an fcntl (POSIX record) write lock while the profile
//!   is open. It is tested with `F_GETLK`, which only asks and never takes a lock. A leftover
//!   `.parentlock` without a lock means nothing.
//! - Linux also: `lock` is a symlink whose target is `<address>:+<pid>` (the `+` says the fcntl
//!   lock is held too). It counts when that pid is alive and not a zombie (`/proc/<pid>/stat`
//!   state `Z`/`X`); a lock left by a dead process is stale. The address is not compared with
//!   this machine's, so a profile on a shared home opened on another machine is not detected
//!   by the symlink alone. A target mailmend cannot read counts as running, to be safe.
//! - Windows: `parent.lock` held open without sharing by the running instance.

use std::path::Path;

/// Whether Thunderbird is running with the profile in `dir` open.
pub fn profile_in_use(dir: &Path) -> bool {
    symlink_lock_held(dir) || parent_lock_held(dir)
}

/// The pid in a `lock` symlink's target, `127.0.1.1:+12345` (the `+` is optional).
pub fn lock_target_pid(target: &str) -> Option<i32> {
    let (_, pid) = target.rsplit_once(':')?;
    let pid = pid.strip_prefix('+').unwrap_or(pid);
    let pid: i32 = pid.parse().ok()?;
    (pid > 0).then_some(pid)
}

#[cfg(unix)]
fn symlink_lock_held(dir: &Path) -> bool {
    let path = dir.join("lock");
    match std::fs::read_link(&path) {
        Ok(target) => match lock_target_pid(&target.to_string_lossy()) {
            Some(pid) => pid_alive(pid),
            None => {
                tracing::warn!(path = %path.display(), "unreadable profile lock; assuming thunderbird runs");
                true
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        // A `lock` that is not a symlink is not Mozilla's; EINVAL says so.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => false,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read profile lock; assuming thunderbird runs");
            true
        }
    }
}

#[cfg(not(unix))]
fn symlink_lock_held(_dir: &Path) -> bool {
    false
}

/// Whether process `pid` exists and is not a zombie.
#[cfg(unix)]
pub fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 sends nothing; kill only checks that the process exists and may be
    // signalled. `pid` is positive, so it names one process, never a group.
    let r = unsafe { libc::kill(pid, 0) };
    let exists = r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    if !exists {
        return false;
    }
    #[cfg(target_os = "linux")]
    if let Some(state) = proc_state(pid) {
        return state != 'Z' && state != 'X';
    }
    true
}

/// The state letter in `/proc/<pid>/stat`: after the command name, which is in parentheses and
/// may itself hold spaces and parentheses, hence the last `)`.
#[cfg(target_os = "linux")]
fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.trim_start().chars().next()
}

#[cfg(unix)]
fn parent_lock_held(dir: &Path) -> bool {
    use std::os::unix::io::AsRawFd;
    let path = dir.join(".parentlock");
    // Opening read-only is enough for F_GETLK. Closing it would drop any POSIX lock this
    // process holds on the file, and mailmend holds none.
    let Ok(file) = std::fs::File::open(&path) else {
        return false;
    };
    // SAFETY: flock is a plain C struct for which all-zero bytes are a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as _;
    fl.l_whence = libc::SEEK_SET as _;
    fl.l_start = 0;
    fl.l_len = 0;
    // SAFETY: the descriptor stays open for the call and `fl` is a valid, writable flock.
    let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut fl) };
    r == 0 && fl.l_type != libc::F_UNLCK as _
}

#[cfg(windows)]
fn parent_lock_held(dir: &Path) -> bool {
    use std::os::windows::fs::OpenOptionsExt;
    const ERROR_SHARING_VIOLATION: i32 = 32;
    let path = dir.join("parent.lock");
    if !path.exists() {
        return false;
    }
    match std::fs::OpenOptions::new()
        .read(true)
        .share_mode(0)
        .open(&path)
    {
        Ok(_) => false,
        Err(e) => e.raw_os_error() == Some(ERROR_SHARING_VIOLATION),
    }
}

#[cfg(not(any(unix, windows)))]
fn parent_lock_held(_dir: &Path) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_targets_parse_with_and_without_the_fcntl_plus() {
        assert_eq!(lock_target_pid("127.0.1.1:+12345"), Some(12345));
        assert_eq!(lock_target_pid("192.168.1.5:777"), Some(777));
        assert_eq!(lock_target_pid("127.0.1.1:+0"), None);
        assert_eq!(lock_target_pid("127.0.1.1:-1"), None);
        assert_eq!(lock_target_pid("garbage"), None);
    }
}
