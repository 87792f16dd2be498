//! Lab bookkeeping shared between processes: the lab root directory, lab ids claimed with file
//! locks, the slot semaphore that keeps labs from running all at once, and the cleanup of labs
//! left behind by a killed run.

use std::cell::RefCell;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::sys;

/// Prefix of every namespace, /etc/netns directory and host link a lab creates.
pub const NS_PREFIX: &str = "mml";

/// Name of the marker file that keeps a lab (MAILMEND_LAB_KEEP=1) from automatic cleanup.
pub const KEEP_MARKER: &str = "KEEP";

/// Highest lab id: ids are the third octet of the lab's 10.213.<id>.0/24 network.
const MAX_ID: u8 = 254;

/// The directory holding lock files and one directory per lab. It must be reachable by the
/// daemons' system users, hence not a private temporary directory, and it is fixed: the
/// namespaces are machine-wide, so every run must see the same lock files.
pub fn base_dir() -> PathBuf {
    PathBuf::from("/tmp/mailmend-lab")
}

/// The client and server namespace names of lab `id`.
pub fn ns_names(id: u8) -> [String; 2] {
    [
        format!("{NS_PREFIX}{id}-cli"),
        format!("{NS_PREFIX}{id}-srv"),
    ]
}

/// The lab id in a namespace or link name such as `mml12-cli`, if it is one of ours.
fn parse_id(name: &str) -> Option<u8> {
    let rest = name.strip_prefix(NS_PREFIX)?;
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let tail = &rest[digits.len()..];
    if digits.is_empty() || !(tail.is_empty() || tail.starts_with('-')) {
        return None;
    }
    digits.parse().ok().filter(|id| (1..=MAX_ID).contains(id))
}

fn lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open lock file {}", path.display()))
}

fn ensure_base() -> Result<PathBuf> {
    let base = base_dir();
    if !base.is_dir() {
        sys::mkdir(&base, 0o755)?;
    }
    Ok(base)
}

/// Try to take an exclusive lock; `Ok(None)` when another handle holds it.
fn try_lock(path: &Path) -> Result<Option<File>> {
    let f = lock_file(path)?;
    match f.try_lock() {
        Ok(()) => Ok(Some(f)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// A lab id held for the life of this value: the lock is an `flock` on `<root>/<id>.lock`,
/// which the kernel releases when the process dies, so a killed run leaves no claim behind.
/// Lock files are never deleted, so two processes can never lock different files for one id.
#[derive(Debug)]
pub struct IdClaim {
    /// The claimed id, 1 to 254.
    pub id: u8,
    _lock: File,
}

/// Claims a free lab id, cleaning the leftovers of a dead lab that had it.
pub fn claim_id() -> Result<IdClaim> {
    let base = ensure_base()?;
    // Start from a process-dependent id so concurrent processes rarely race for one id, and
    // move on with every claim so that a lab never reuses the id of the one just torn down
    // (tests check that a dropped lab's names and directory are gone).
    static CLAIMS: AtomicU32 = AtomicU32::new(0);
    let n = std::process::id().wrapping_add(CLAIMS.fetch_add(1, Ordering::Relaxed));
    let start = (n % u32::from(MAX_ID)) as u8;
    for i in 0..MAX_ID {
        let id = (start.wrapping_add(i) % MAX_ID) + 1;
        let Some(lock) = try_lock(&base.join(format!("{id}.lock")))? else {
            continue;
        };
        if base.join(id.to_string()).join(KEEP_MARKER).exists() {
            continue;
        }
        clean_id(id)?;
        return Ok(IdClaim { id, _lock: lock });
    }
    bail!(
        "no free lab id in {}: all 254 are held or kept; run `mailmend-lab cleanup`",
        base.display()
    )
}

thread_local! {
    // The slot this thread already holds, so one thread can run two labs at once (a test that
    // checks two labs side by side) without waiting on itself.
    static SLOT: RefCell<Weak<File>> = const { RefCell::new(Weak::new()) };
}

/// A share of the machine: at most `MAILMEND_LAB_PARALLEL` (default 1) threads, in any
/// process, run labs at the same time. The slot is released when the last clone is dropped.
pub fn acquire_slot() -> Result<Arc<File>> {
    if let Some(held) = SLOT.with(|s| s.borrow().upgrade()) {
        return Ok(held);
    }
    let base = ensure_base()?;
    let slots: usize = std::env::var("MAILMEND_LAB_PARALLEL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .clamp(1, 16);
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        for i in 0..slots {
            if let Some(f) = try_lock(&base.join(format!("slot-{i}.lock")))? {
                let held = Arc::new(f);
                SLOT.with(|s| *s.borrow_mut() = Arc::downgrade(&held));
                return Ok(held);
            }
        }
        if Instant::now() >= deadline {
            bail!("waited 15 minutes for a lab slot in {}", base.display());
        }
        thread::sleep(Duration::from_millis(25));
    }
}

/// Every lab id that has some trace on this machine: a namespace, an /etc/netns directory,
/// a host link or a lab directory.
fn traced_ids() -> Vec<u8> {
    let mut ids = Vec::new();
    for dir in ["/run/netns", "/etc/netns", "/sys/class/net"] {
        if let Ok(rd) = fs::read_dir(dir) {
            ids.extend(rd.filter_map(|e| parse_id(e.ok()?.file_name().to_str()?)));
        }
    }
    if let Ok(rd) = fs::read_dir(base_dir()) {
        ids.extend(rd.filter_map(|e| {
            let e = e.ok()?;
            if !e.path().is_dir() {
                return None;
            }
            e.file_name().to_str()?.parse::<u8>().ok()
        }));
    }
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Removes leftovers of labs whose owner is gone; `include_kept` also removes labs kept for
/// debugging with MAILMEND_LAB_KEEP. Returns a line per thing removed.
pub fn cleanup(include_kept: bool) -> Result<Vec<String>> {
    let base = ensure_base()?;
    let mut done = Vec::new();
    for id in traced_ids() {
        let Some(_lock) = try_lock(&base.join(format!("{id}.lock")))? else {
            continue; // A live lab owns it.
        };
        if !include_kept && base.join(id.to_string()).join(KEEP_MARKER).exists() {
            continue;
        }
        done.extend(clean_id(id)?);
    }
    Ok(done)
}

/// Removes everything lab `id` may have left; the caller holds the id's lock.
///
/// Processes ended here are those inside the lab's namespaces and those whose command line
/// names the lab's directory (daemons started with configs there), never anything else.
pub fn clean_id(id: u8) -> Result<Vec<String>> {
    let mut done = Vec::new();
    let lab_dir = base_dir().join(id.to_string());
    let marker = format!("{}/", lab_dir.display());
    let me = std::process::id() as i32;
    let names = ns_names(id);

    // Processes inside the lab's namespaces. Only names are trusted: namespace inode numbers
    // are recycled, so a recorded one could belong to someone else by now.
    let netns: Vec<String> = names.iter().filter_map(|ns| sys::netns_id(ns)).collect();
    let info: Option<serde_json::Value> = fs::read_to_string(lab_dir.join("lab.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let mut pids: Vec<i32> = sys::pids_in_netns(&netns);
    // Daemon pids the lab recorded count only while they still run with the lab's configs
    // (a recycled pid belongs to someone else).
    if let Some(recorded) = info
        .as_ref()
        .and_then(|i| i.get("pids"))
        .and_then(|v| v.as_object())
    {
        pids.extend(
            recorded
                .values()
                .filter_map(|v| v.as_i64())
                .map(|p| p as i32)
                .filter(|p| sys::cmdline(*p).contains(&marker)),
        );
    }
    pids.extend(
        sys::all_pids()
            .into_iter()
            .filter(|p| sys::cmdline(*p).contains(&marker)),
    );
    pids.retain(|p| *p != me && *p > 1);
    pids.sort_unstable();
    pids.dedup();
    if !pids.is_empty() {
        for p in &pids {
            done.push(format!("stopped process {p} ({})", sys::cmdline(*p)));
            sys::signal(*p, libc::SIGTERM);
        }
        let left = sys::wait_dead(&pids, Duration::from_secs(2));
        for p in &left {
            sys::signal(*p, libc::SIGKILL);
        }
        let left = sys::wait_dead(&left, Duration::from_secs(3));
        if !left.is_empty() {
            bail!("lab {id}: processes {left:?} survived SIGKILL");
        }
    }

    for ns in &names {
        if Path::new("/run/netns").join(ns).exists() {
            sys::run(Command::new("ip").args(["netns", "delete", ns]))?;
            done.push(format!("deleted namespace {ns}"));
        }
        let etc = Path::new("/etc/netns").join(ns);
        if etc.exists() {
            fs::remove_dir_all(&etc).with_context(|| format!("cannot remove {}", etc.display()))?;
            done.push(format!("removed {}", etc.display()));
        }
    }
    // The lab creates its veth pair inside the namespaces, so no link should ever show up in
    // the host namespace; remove any that does (an interrupted setup of an older layout).
    if let Ok(rd) = fs::read_dir("/sys/class/net") {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if parse_id(&name) == Some(id) {
                sys::run(Command::new("ip").args(["link", "delete", &name]))?;
                done.push(format!("deleted host link {name}"));
            }
        }
    }
    if lab_dir.exists() {
        fs::remove_dir_all(&lab_dir)
            .with_context(|| format!("cannot remove {}", lab_dir.display()))?;
        done.push(format!("removed {}", lab_dir.display()));
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_names_are_recognised_and_others_are_not() {
        assert_eq!(parse_id("mml12-cli"), Some(12));
        assert_eq!(parse_id("mml3"), Some(3));
        assert_eq!(parse_id("mml254-srv"), Some(254));
        assert_eq!(parse_id("mml0-cli"), None);
        assert_eq!(parse_id("mml255-cli"), None);
        assert_eq!(parse_id("mmlx-cli"), None);
        assert_eq!(parse_id("mml12cli"), None);
        assert_eq!(parse_id("eth0"), None);
    }
}
