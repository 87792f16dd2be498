//! Helpers shared by the integration tests: unique names, checked commands, and guards that
//! stop what a test started (by its own handle) and delete the namespaces it made.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A number unique to this test process and call.
pub fn uniq() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// A loopback address unique to this process and call: 127.A.B.C with A and B from the pid.
pub fn loopback(host: u8) -> String {
    let pid = std::process::id();
    let n = uniq();
    format!(
        "127.{}.{}.{}",
        100 + pid % 100,
        (pid / 100) % 250,
        10 * (n % 20) + u32::from(host)
    )
}

/// Runs a command and panics, with what it printed, unless it succeeds.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// A child process stopped (by its own handle) when the guard is dropped, even on panic.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns a command whose stdout is read until a line containing `ready`.
pub fn spawn_until_ready(cmd: &mut Command, ready: &str) -> ChildGuard {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let stdout = child.stdout.take().expect("stdout is piped");
    let guard = ChildGuard(child);
    let mut lines = BufReader::new(stdout).lines();
    loop {
        match lines.next() {
            Some(Ok(l)) if l.contains(ready) => break,
            Some(Ok(_)) => continue,
            other => panic!("{cmd:?} ended before it was ready: {other:?}"),
        }
    }
    guard
}

/// Polls `f` until it returns true or `limit` passes.
pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A network namespace deleted when dropped (after the guards declared after it).
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new() -> Netns {
        let name = format!("mmact-{}-{}", std::process::id(), uniq());
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        run(Command::new("ip").args(["netns", "exec", &ns.name, "ip", "link", "set", "lo", "up"]));
        ns
    }

    /// A command run inside the namespace.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}
