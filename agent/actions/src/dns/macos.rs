//! The macOS `dns_flush` performer: `dscacheutil -flushcache` empties the Directory Service
//! cache and `killall -HUP mDNSResponder` makes the resolver daemon drop its cache (Apple's
//! documented pair since macOS 10.10.4). Nothing to restore.

use super::{macos_flush_commands, valid_host};
use crate::exec::{find_program, run_or_fail, Cmd};
use mailmend_core::Action;
use mailmend_executor::{PerformError, Performer};
use serde_json::{json, Value};
use std::time::Duration;

/// The DNS cache flush performer for macOS.
#[derive(Debug, Clone, Default)]
pub struct DnsFlush;

impl DnsFlush {
    pub fn new() -> DnsFlush {
        DnsFlush
    }
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

impl Performer for DnsFlush {
    fn name(&self) -> &'static str {
        "dns_flush"
    }

    fn handles(&self, action: &Action) -> bool {
        matches!(action, Action::FlushDns { .. })
    }

    fn snapshot(&self, action: &Action) -> Result<Value, PerformError> {
        host_of(action)?;
        let present: Vec<&str> = macos_flush_commands()
            .iter()
            .filter(|(p, _)| find_program(p).is_some())
            .map(|(p, _)| *p)
            .collect();
        if present.is_empty() {
            return Err(PerformError::Unavailable(
                "neither dscacheutil nor killall is present".into(),
            ));
        }
        Ok(
            json!({ "tools": present, "undo": "a flushed cache refills itself; nothing to restore" }),
        )
    }

    fn apply(&self, fix_id: &str, action: &Action) -> Result<Value, PerformError> {
        let _ = fix_id;
        let host = host_of(action)?;
        let mut flushed = Vec::new();
        let mut failed = Vec::new();
        for (program, args) in macos_flush_commands() {
            let Some(path) = find_program(program) else {
                failed.push(json!({ "tool": program, "error": "not present" }));
                continue;
            };
            let mut c = Cmd::new(path, args.clone());
            c.timeout = Duration::from_secs(10);
            match run_or_fail(&c) {
                Ok(o) if o.success() => flushed.push(c.describe()),
                Ok(o) => failed.push(json!({ "tool": program, "error": o.failure() })),
                Err(e) => failed.push(json!({ "tool": program, "error": e.to_string() })),
            }
        }
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
