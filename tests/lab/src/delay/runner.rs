//! Measurements taken from inside the client namespace: wall-clock runs of a command and TCP
//! connect round-trip times. The benchmark re-executes itself there (`ip netns exec`), so the
//! cost of entering the namespace is not counted in what a user would see.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// One timed run of a command.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    /// Wall-clock time from spawn to exit, in microseconds.
    pub wall_us: u64,
    /// When it was spawned, in microseconds since the Unix epoch (to place its log lines).
    pub start_unix_us: u64,
    /// Exit code, `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn to_json(&self) -> Value {
        json!({
            "wall_us": self.wall_us,
            "start_unix_us": self.start_unix_us,
            "code": self.code,
            "stdout": self.stdout,
            "stderr": self.stderr,
        })
    }

    fn from_json(v: &Value) -> Option<Run> {
        Some(Run {
            wall_us: v["wall_us"].as_u64()?,
            start_unix_us: v["start_unix_us"].as_u64()?,
            code: v["code"].as_i64().map(|c| c as i32),
            stdout: v["stdout"].as_str()?.to_string(),
            stderr: v["stderr"].as_str()?.to_string(),
        })
    }

    /// Wall-clock time in milliseconds.
    pub fn wall_ms(&self) -> f64 {
        self.wall_us as f64 / 1000.0
    }
}

fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or_default()
}

/// Runs `program args` `runs` times one after another, with `env` (`KEY=VALUE` items) added
/// to its environment, and prints each run as a JSON line. `NO_COLOR` keeps log lines free of
/// terminal colours.
pub fn print_timed_runs(program: &str, args: &[String], env: &[String], runs: usize) -> Result<()> {
    let mut vars = Vec::new();
    for item in env {
        match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => vars.push((k, v)),
            _ => bail!("--env {item:?}: expected KEY=VALUE"),
        }
    }
    for _ in 0..runs {
        let start_unix_us = unix_us();
        let t0 = Instant::now();
        let out = Command::new(program)
            .args(args)
            .env("NO_COLOR", "1")
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("run {program}"))?;
        let run = Run {
            wall_us: t0.elapsed().as_micros() as u64,
            start_unix_us,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        println!("{}", run.to_json());
    }
    Ok(())
}

/// Connects to `addr` `count` times and prints each connect time in milliseconds, one per
/// line. A TCP connect is one round trip (SYN out, SYN-ACK back).
pub fn print_connect_rtts(addr: SocketAddr, count: usize) -> Result<()> {
    for i in 0..count {
        if i > 0 {
            thread::sleep(Duration::from_millis(20));
        }
        let t0 = Instant::now();
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .with_context(|| format!("connect to {addr} to measure the round-trip time"))?;
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        drop(s);
        println!("{ms:.3}");
    }
    Ok(())
}

fn in_ns(exe: &Path, ns: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).arg(exe);
    c
}

/// Runs `program args` `runs` times inside namespace `ns` (through `exe in-ns run`), with
/// `env` (`KEY=VALUE` items) added to its environment, and returns the runs.
pub fn timed_runs_in(
    exe: &Path,
    ns: &str,
    runs: usize,
    env: &[String],
    program: &Path,
    args: &[String],
) -> Result<Vec<Run>> {
    let mut c = in_ns(exe, ns);
    c.args(["in-ns", "run", "--runs", &runs.to_string()]);
    for item in env {
        c.arg("--env").arg(item);
    }
    let out = c
        .arg("--")
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("run the timing helper in the client namespace")?;
    if !out.status.success() {
        bail!(
            "the timing helper failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let runs: Vec<Run> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| Run::from_json(&v))
        .collect();
    if runs.is_empty() {
        bail!("the timing helper reported no run: {text}");
    }
    Ok(runs)
}

/// TCP connect times to `addr` from inside namespace `ns`, in milliseconds.
pub fn connect_rtts_in(exe: &Path, ns: &str, addr: SocketAddr, count: usize) -> Result<Vec<f64>> {
    let out = in_ns(exe, ns)
        .args([
            "in-ns",
            "rtt",
            "--addr",
            &addr.to_string(),
            "--count",
            &count.to_string(),
        ])
        .stdin(Stdio::null())
        .output()
        .context("run the round-trip helper in the client namespace")?;
    if !out.status.success() {
        bail!(
            "the round-trip helper failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let v: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    if v.is_empty() {
        bail!("the round-trip helper measured nothing");
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_survives_its_json_line() {
        let r = Run {
            wall_us: 123_456,
            start_unix_us: 1_700_000_000_000_000,
            code: Some(1),
            stdout: "{\"status\": \"findings\"}\n".into(),
            stderr: "line one\n\u{1b}[2mdim\u{1b}[0m".into(),
        };
        let line = r.to_json().to_string();
        assert!(!line.contains('\n'));
        let back = Run::from_json(&serde_json::from_str(&line).unwrap()).unwrap();
        assert_eq!(back, r);
        let killed = Run { code: None, ..r };
        assert_eq!(Run::from_json(&killed.to_json()).unwrap().code, None);
    }
}
