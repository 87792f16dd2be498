//! Small operating-system helpers: running commands, signals, and reading /proc for liveness,
//! namespace membership and listening sockets.

use std::fs;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Runs `cmd` to completion with empty stdin and fails with its stderr when it exits non-zero.
pub fn run(cmd: &mut Command) -> Result<Output> {
    run_with_input(cmd, None)
}

/// Runs `cmd` with `input` on its stdin and fails with its stderr when it exits non-zero.
pub fn run_with_input(cmd: &mut Command, input: Option<&[u8]>) -> Result<Output> {
    let out = output_with_input(cmd, input)?;
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}{}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(out)
}

/// Runs `cmd` with `input` on stdin and returns its output whatever its exit status.
pub fn output_with_input(cmd: &mut Command, input: Option<&[u8]>) -> Result<Output> {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", describe(cmd)))?;
    if let Some(input) = input {
        // Writing from this thread is fine: every input here is small, far below a pipe buffer.
        let mut stdin = child.stdin.take().context("child stdin was not piped")?;
        stdin.write_all(input).ok();
    }
    child
        .wait_with_output()
        .with_context(|| format!("cannot wait for {}", describe(cmd)))
}

/// A readable one-line rendering of a command for error messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Sends `sig` to `pid`; a process that is already gone is not an error.
pub fn signal(pid: i32, sig: i32) {
    if pid > 1 {
        // SAFETY: kill(2) has no memory-safety preconditions; pid > 1 keeps us from signalling
        // init or, with 0 or negative values, whole process groups.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// Whether `pid` is a live process: zombies count as dead, because this machine's init reaps
/// slowly (a stopped daemon can stay a zombie for seconds).
pub fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => match stat.rfind(')') {
            Some(i) => !matches!(stat[i + 1..].trim_start().chars().next(), Some('Z' | 'X')),
            None => false,
        },
        Err(_) => false,
    }
}

/// Waits until none of `pids` is alive, or `timeout` passes; returns the ones still alive.
pub fn wait_dead(pids: &[i32], timeout: Duration) -> Vec<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        let left: Vec<i32> = pids.iter().copied().filter(|p| alive(*p)).collect();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Every numeric entry of /proc, that is every process id.
pub fn all_pids() -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// The identity of the named network namespace (`/run/netns/<ns>`) as the kernel shows it in
/// `/proc/<pid>/ns/net`, e.g. `net:[4026532300]`.
pub fn netns_id(ns: &str) -> Option<String> {
    let meta = fs::metadata(Path::new("/run/netns").join(ns)).ok()?;
    Some(format!("net:[{}]", meta.ino()))
}

/// Processes in any of the network namespaces `ids` (see `netns_id`), found the way
/// `ip netns pids` does it but without a process start.
pub fn pids_in_netns(ids: &[String]) -> Vec<i32> {
    if ids.is_empty() {
        return Vec::new();
    }
    all_pids()
        .into_iter()
        .filter(|pid| {
            fs::read_link(format!("/proc/{pid}/ns/net"))
                .map(|l| ids.iter().any(|id| l.to_string_lossy() == *id))
                .unwrap_or(false)
        })
        .collect()
}

/// The command line of `pid`, arguments joined by spaces, or empty when it is gone.
pub fn cmdline(pid: i32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .split('\0')
                .filter(|a| !a.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Transport of a socket to wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    /// A listening TCP socket.
    Tcp,
    /// A bound UDP socket.
    Udp,
}

/// The sockets listening (TCP) or bound (UDP) in the network namespace of `pid`, read from
/// `/proc/<pid>/net/*`, which shows the sockets of the whole namespace the process is in.
pub fn listening_sockets(pid: i32, proto: Proto) -> Vec<(Ipv4Addr, u16)> {
    let (file, listen_state) = match proto {
        Proto::Tcp => ("tcp", "0A"),
        Proto::Udp => ("udp", "07"),
    };
    let Ok(table) = fs::read_to_string(format!("/proc/{pid}/net/{file}")) else {
        return Vec::new();
    };
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (_, local, _, state) = (f.next()?, f.next()?, f.next()?, f.next()?);
            if state != listen_state {
                return None;
            }
            let (a, p) = local.split_once(':')?;
            let a = u32::from_str_radix(a, 16).ok()?;
            let p = u16::from_str_radix(p, 16).ok()?;
            // The kernel prints the address as the raw 32-bit word in host (little-endian)
            // order.
            Some((Ipv4Addr::from(a.to_le_bytes()), p))
        })
        .collect()
}

/// Paths of the unix sockets listening in the network namespace of `pid`, from
/// `/proc/<pid>/net/unix` (a socket file exists from bind(), but takes connections only
/// after listen(), which sets the __SO_ACCEPTCON flag 0x10000 shown there).
pub fn listening_unix_sockets(pid: i32) -> Vec<String> {
    let Ok(table) = fs::read_to_string(format!("/proc/{pid}/net/unix")) else {
        return Vec::new();
    };
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let flags = u32::from_str_radix(f.get(3)?, 16).ok()?;
            let path = f.get(7)?;
            (flags & 0x10000 != 0 && path.starts_with('/')).then(|| path.to_string())
        })
        .collect()
}

/// Whether `sockets` has one on `addr:port` or on the wildcard address with that port.
pub fn covers(sockets: &[(Ipv4Addr, u16)], addr: Ipv4Addr, port: u16) -> bool {
    sockets
        .iter()
        .any(|(a, p)| *p == port && (*a == addr || a.is_unspecified()))
}

/// Writes `text` to `path` and sets the mode.
pub fn write_file(path: &Path, text: &str, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot chmod {}", path.display()))
}

/// Creates `path` and its parents with the given mode on the last component.
pub fn mkdir(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(path).with_context(|| format!("cannot create {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot chmod {}", path.display()))
}

/// Looks up a system user's uid and gid by name in /etc/passwd.
pub fn user_ids(name: &str) -> Result<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").context("cannot read /etc/passwd")?;
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() > 3 && f[0] == name {
            return Ok((f[2].parse()?, f[3].parse()?));
        }
    }
    bail!("no user {name:?} in /etc/passwd: run tests/install-deps.sh to install the lab packages")
}

/// Looks up a system group's gid by name in /etc/group.
pub fn group_id(name: &str) -> Result<u32> {
    let group = fs::read_to_string("/etc/group").context("cannot read /etc/group")?;
    for line in group.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() > 2 && f[0] == name {
            return Ok(f[2].parse()?);
        }
    }
    bail!("no group {name:?} in /etc/group: run tests/install-deps.sh to install the lab packages")
}

/// Sets a file's modification time into the past. Postfix stalls about two seconds in any
/// command when main.cf or a texthash table changed within the last second (LAB-NOTES 4).
pub fn backdate(path: &Path) -> Result<()> {
    let f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let past = std::time::SystemTime::now() - Duration::from_secs(30);
    f.set_modified(past)
        .with_context(|| format!("cannot set mtime of {}", path.display()))
}
