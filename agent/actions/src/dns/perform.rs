//! The `dns_flush` performer: finds the local DNS caches and flushes the host from each.

use super::{flush_commands, parse_pid, valid_host, Cache, CacheKind};
use crate::exec::{find_program, run_or_fail, Cmd};
use mailmend_core::Action;
use mailmend_executor::{PerformError, Performer};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

const RESOLVED_STUB: &str = "/run/systemd/resolve/stub-resolv.conf";
const NSCD_SOCKETS: [&str; 2] = ["/run/nscd/socket", "/var/run/nscd/socket"];

/// The DNS cache flush performer.
#[derive(Debug, Clone)]
pub struct DnsFlush {
    unbound_config: PathBuf,
    dnsmasq_pid_file: PathBuf,
    kinds: Vec<CacheKind>,
    timeout: Duration,
}

impl Default for DnsFlush {
    fn default() -> Self {
        DnsFlush::new()
    }
}

impl DnsFlush {
    /// Looks for every known cache, with unbound's configuration at /etc/unbound/unbound.conf.
    pub fn new() -> DnsFlush {
        DnsFlush::with_unbound_config("/etc/unbound/unbound.conf")
    }

    /// Looks for every known cache, with unbound's configuration at `path`.
    pub fn with_unbound_config(path: impl Into<PathBuf>) -> DnsFlush {
        DnsFlush {
            unbound_config: path.into(),
            dnsmasq_pid_file: "/run/dnsmasq/dnsmasq.pid".into(),
            kinds: CacheKind::ALL.to_vec(),
            timeout: Duration::from_secs(10),
        }
    }

    /// Considers only these kinds of cache (an administrator's choice, or a test's).
    pub fn only(mut self, kinds: &[CacheKind]) -> DnsFlush {
        self.kinds = kinds.to_vec();
        self
    }

    /// Reads dnsmasq's pid from this file instead of /run/dnsmasq/dnsmasq.pid.
    pub fn dnsmasq_pid_file(mut self, path: impl Into<PathBuf>) -> DnsFlush {
        self.dnsmasq_pid_file = path.into();
        self
    }

    fn succeeds(&self, program: PathBuf, args: &[&str]) -> bool {
        let mut c = Cmd::new(program, args.iter().map(|s| s.to_string()).collect());
        c.timeout = self.timeout;
        run_or_fail(&c).is_ok_and(|o| o.success())
    }

    /// The caches found on this machine, in the order they are flushed.
    pub fn detect(&self) -> Vec<Cache> {
        let mut found = Vec::new();
        for kind in CacheKind::ALL {
            if !self.kinds.contains(&kind) {
                continue;
            }
            match kind {
                CacheKind::SystemdResolved => {
                    if let Some(p) = find_program("resolvectl") {
                        if Path::new(RESOLVED_STUB).exists() || self.succeeds(p, &["status"]) {
                            found.push(Cache::SystemdResolved);
                        }
                    }
                }
                CacheKind::Nscd => {
                    if find_program("nscd").is_some()
                        && NSCD_SOCKETS.iter().any(|s| Path::new(s).exists())
                    {
                        found.push(Cache::Nscd);
                    }
                }
                CacheKind::Unbound => {
                    if let Some(p) = find_program("unbound-control") {
                        let conf = self.unbound_config.display().to_string();
                        if self.unbound_config.is_file()
                            && self.succeeds(p, &["-c", &conf, "status"])
                        {
                            found.push(Cache::Unbound {
                                config: self.unbound_config.clone(),
                            });
                        }
                    }
                }
                CacheKind::Dnsmasq => {
                    let pid = std::fs::read_to_string(&self.dnsmasq_pid_file)
                        .ok()
                        .and_then(|t| parse_pid(&t));
                    // The pid must still be dnsmasq: a stale pid file may name a reused pid.
                    if let Some(pid) = pid.filter(|p| is_dnsmasq(*p)) {
                        found.push(Cache::Dnsmasq { pid });
                    }
                }
            }
        }
        found
    }

    fn flush(&self, cache: &Cache, host: &str) -> Result<(), String> {
        if let Cache::Dnsmasq { pid } = cache {
            use nix::sys::signal::{kill, Signal};
            use nix::unistd::Pid;
            let raw = i32::try_from(*pid).map_err(|_| format!("pid {pid} out of range"))?;
            return kill(Pid::from_raw(raw), Signal::SIGHUP)
                .map_err(|e| format!("cannot signal dnsmasq (pid {pid}): {e}"));
        }
        for (program, args) in flush_commands(cache, host) {
            let path = find_program(program).ok_or_else(|| format!("{program} is gone"))?;
            let mut c = Cmd::new(path, args);
            c.timeout = self.timeout;
            let out = run_or_fail(&c).map_err(|e| e.to_string())?;
            if !out.success() {
                return Err(format!("{} failed: {}", c.describe(), out.failure()));
            }
        }
        Ok(())
    }
}

fn is_dnsmasq(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "dnsmasq")
}

fn host_of(action: &Action) -> Result<&str, PerformError> {
    match action {
        Action::FlushDns { host } if valid_host(host) => Ok(host),
        Action::FlushDns { host } => Err(PerformError::Failed(format!(
            "{host:?} is not a host name that can be flushed"
        ))),
        other => Err(PerformError::Failed(format!(
            "the dns_flush performer cannot {}",
            other.describe()
        ))),
    }
}

fn none_found() -> PerformError {
    PerformError::Unavailable(
        "no local DNS cache found (systemd-resolved, nscd, unbound with remote control, dnsmasq)"
            .into(),
    )
}

impl Performer for DnsFlush {
    fn name(&self) -> &'static str {
        "dns_flush"
    }

    fn handles(&self, action: &Action) -> bool {
        matches!(action, Action::FlushDns { .. })
    }

    fn snapshot(&self, action: &Action) -> Result<Value, PerformError> {
        host_of(action)?;
        let caches = self.detect();
        if caches.is_empty() {
            return Err(none_found());
        }
        Ok(json!({ "caches": caches }))
    }

    fn apply(&self, fix_id: &str, action: &Action) -> Result<Value, PerformError> {
        let _ = fix_id;
        let host = host_of(action)?;
        let caches = self.detect();
        if caches.is_empty() {
            return Err(none_found());
        }
        let mut flushed = Vec::new();
        let mut failed = Vec::new();
        for cache in caches {
            match self.flush(&cache, host) {
                Ok(()) => flushed.push(cache),
                Err(error) => failed.push(json!({ "cache": cache, "error": error })),
            }
        }
        // A partial flush still helps; only when nothing was flushed did the fix fail.
        if flushed.is_empty() {
            return Err(PerformError::Failed(format!(
                "no DNS cache could be flushed: {}",
                Value::Array(failed)
            )));
        }
        Ok(json!({ "host": host, "flushed": flushed, "failed": failed }))
    }

    fn undo(&self, fix_id: &str, action: &Action, before: &Value) -> Result<(), PerformError> {
        // An emptied cache refills itself; there is nothing to restore.
        let _ = (fix_id, action, before);
        Ok(())
    }
}
