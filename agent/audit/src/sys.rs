//! Operating-system details the log needs: host and user names, private files and directories,
//! directory fsync, and the inter-process lock around appends.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// The machine's host name, or `unknown` when the system will not say.
pub fn host_name() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for `buf.len()` bytes; gethostname writes at most that many.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            let name = String::from_utf8_lossy(&buf[..end]).into_owned();
            if !name.is_empty() {
                return name;
            }
        }
        "unknown".to_string()
    }
    #[cfg(windows)]
    {
        std::env::var("COMPUTERNAME").unwrap_or_else(|_| "unknown".to_string())
    }
    #[cfg(not(any(unix, windows)))]
    {
        "unknown".to_string()
    }
}

/// The effective user's name; `uid N` when the user database has no entry for the uid.
pub fn os_user() -> String {
    #[cfg(unix)]
    {
        // SAFETY: geteuid cannot fail and has no preconditions.
        let uid = unsafe { libc::geteuid() };
        let mut pwd: libc::passwd = unsafe {
            // SAFETY: passwd is a plain C struct for which all-zero bytes are a valid value; it
            // is only read after getpwuid_r filled it in.
            std::mem::zeroed()
        };
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the duration of the call and `buf.len()` is the
        // buffer's true length; getpwuid_r is the thread-safe variant.
        let rc =
            unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
        if rc == 0 && !result.is_null() && !pwd.pw_name.is_null() {
            // SAFETY: on success pw_name points at a NUL-terminated string inside `buf`.
            let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
            let name = name.to_string_lossy().into_owned();
            if !name.is_empty() {
                return name;
            }
        }
        format!("uid {uid}")
    }
    #[cfg(windows)]
    {
        std::env::var("USERNAME").unwrap_or_else(|_| "unknown".to_string())
    }
    #[cfg(not(any(unix, windows)))]
    {
        "unknown".to_string()
    }
}

/// Creates `dir` and its missing parents; the directories created are private (0700 on unix).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Options that create files readable and writable by the owner only (0600 on unix).
pub fn private_options() -> OpenOptions {
    // Only unix sets a mode here; Windows files inherit the state directory's ACL.
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o
}

/// Makes a directory's entries (a created or renamed file) durable. Windows cannot open a
/// directory for flushing through std and flushes metadata with the file, so this is unix only.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// An exclusive lock on `audit.lock`, held while a writer reads the tail and appends, so that
/// two processes never both extend the same record and fork the chain. Dropping it releases it.
pub struct WriteLock {
    _file: File,
}

impl WriteLock {
    /// Unix: blocks until an exclusive `flock` is held. The lock belongs to this open file
    /// description, so two handles in one process exclude each other just as two processes do,
    /// and closing the file (or dying) releases it.
    #[cfg(unix)]
    pub fn acquire(path: &Path) -> io::Result<WriteLock> {
        let file = private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        flock(&file, libc::LOCK_EX)?;
        Ok(WriteLock { _file: file })
    }

    /// Windows: the lock is a handle to `audit.lock` opened with no sharing, which the system
    /// releases when the handle closes, even after a crash. Best effort: waits up to 30 seconds.
    #[cfg(windows)]
    pub fn acquire(path: &Path) -> io::Result<WriteLock> {
        use std::os::windows::fs::OpenOptionsExt;
        const ERROR_SHARING_VIOLATION: i32 = 32;
        let start = std::time::Instant::now();
        loop {
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .share_mode(0)
                .open(path)
            {
                Ok(file) => return Ok(WriteLock { _file: file }),
                Err(e)
                    if e.raw_os_error() == Some(ERROR_SHARING_VIOLATION)
                        && start.elapsed() < std::time::Duration::from_secs(30) =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Elsewhere there is no lock; a single writer is assumed.
    #[cfg(not(any(unix, windows)))]
    pub fn acquire(path: &Path) -> io::Result<WriteLock> {
        let file = private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        Ok(WriteLock { _file: file })
    }
}

/// A shared lock on `audit.lock` for readers (unix), so that `verify` and `read_all` never see a
/// line that a writer is still writing. Without a lock file there is no writer to wait for.
pub struct ReadLock {
    #[cfg(unix)]
    _file: Option<File>,
}

impl ReadLock {
    pub fn acquire(path: &Path) -> io::Result<ReadLock> {
        #[cfg(unix)]
        {
            match File::open(path) {
                Ok(file) => {
                    flock(&file, libc::LOCK_SH)?;
                    Ok(ReadLock { _file: Some(file) })
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(ReadLock { _file: None }),
                Err(e) => Err(e),
            }
        }
        #[cfg(not(unix))]
        {
            // Windows writers hold an unshared handle; a reader opening it would fail rather
            // than wait, so readers do not lock there.
            let _ = path;
            Ok(ReadLock {})
        }
    }
}

#[cfg(unix)]
fn flock(file: &File, op: libc::c_int) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;
    loop {
        // SAFETY: the descriptor belongs to `file`, which outlives the call.
        let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}
