//! Emulated network delay for the lab and the measuring helpers of the probe benchmark.
//!
//! This kernel has no netem, so a delay is an iptables NFQUEUE rule in the client namespace
//! (`mangle OUTPUT`, matching the lab's /24) plus a userspace delayer bound to that queue,
//! which holds each packet for the delay and then accepts it. Only the client → server
//! direction is delayed, so the added round-trip time equals the delay.

pub mod queue;
pub mod report;
pub mod runner;

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// The line the delayer prints on stdout once it is bound to its queue.
pub const READY_LINE: &str = "delayer ready";

/// A delay in force on the client namespace's traffic to the lab network. Dropping it removes
/// the rule first (so no packet is left queued to nobody) and then ends the delayer.
pub struct NetDelay {
    ns: String,
    rule: Vec<String>,
    child: Child,
}

impl NetDelay {
    /// Starts `exe delayer --queue <queue> --delay-ms <ms>` inside namespace `ns`, waits until
    /// it is bound, then queues every packet from `ns` to `net`/24 through it.
    pub fn start(exe: &Path, ns: &str, net: Ipv4Addr, queue: u16, delay_ms: u64) -> Result<Self> {
        if !Path::new("/usr/sbin/iptables").exists() {
            bail!(
                "iptables is missing: run tests/install-deps.sh (it installs the iptables package)"
            );
        }
        ensure_queue_support();
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(exe)
            .args([
                "delayer",
                "--queue",
                &queue.to_string(),
                "--delay-ms",
                &delay_ms.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("start the delayer with ip netns exec")?;
        // `ip netns exec` execs the program, so the child's pid is the delayer's.
        let stdout = child.stdout.take().context("delayer stdout")?;
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
        if line.trim() != READY_LINE {
            let _ = child.kill();
            let status = child.wait().ok();
            bail!(
                "the delayer did not start (exit status {status:?}, said {line:?}); \
                 its error is on stderr above"
            );
        }
        let cidr = format!("{net}/24");
        let rule: Vec<String> = [
            "OUTPUT",
            "-d",
            &cidr,
            "-j",
            "NFQUEUE",
            "--queue-num",
            &queue.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let delay = NetDelay {
            ns: ns.to_string(),
            rule,
            child,
        };
        delay.iptables("-A")?;
        Ok(delay)
    }

    /// The delayer's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn iptables(&self, op: &str) -> Result<()> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, "iptables", "-t", "mangle", op])
            .args(&self.rule)
            .output()
            .context("run iptables in the client namespace")?;
        if !out.status.success() {
            bail!(
                "iptables -t mangle {op} {} failed: {}",
                self.rule.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}

impl Drop for NetDelay {
    fn drop(&mut self) {
        if let Err(e) = self.iptables("-D") {
            eprintln!("probe-bench: {e:#}");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Loads nfnetlink_queue when the kernel has it as a module that is not loaded yet; a kernel
/// with it built in (or without it) is left alone, and the delayer's bind then says which.
fn ensure_queue_support() {
    if !Path::new("/proc/net/netfilter/nfnetlink_queue").exists() {
        let _ = Command::new("modprobe")
            .arg("nfnetlink_queue")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
