//! The Windows `dns_flush` performer: empties the DNS Client service's cache with
//! `DnsFlushResolverCache` (dnsapi.dll, exported but undocumented, loaded from System32 only),
//! or `ipconfig /flushdns` when that export is missing or fails. Nothing to restore.

use super::wide;
use crate::dns::{valid_host, windows_flush_command};
use crate::exec::{find_program, run_or_fail, Cmd};
use mailmend_core::Action;
use mailmend_executor::{PerformError, Performer};
use serde_json::{json, Value};
use std::time::Duration;
use windows::core::{s, BOOL, PCWSTR};
use windows::Win32::Foundation::FreeLibrary;
use windows::Win32::System::LibraryLoader::{
    GetProcAddress, LoadLibraryExW, LOAD_LIBRARY_SEARCH_SYSTEM32,
};

/// The DNS cache flush performer for Windows.
#[derive(Debug, Clone)]
pub struct DnsFlush {
    use_api: bool,
}

impl Default for DnsFlush {
    fn default() -> Self {
        DnsFlush::new()
    }
}

impl DnsFlush {
    pub fn new() -> DnsFlush {
        DnsFlush { use_api: true }
    }

    /// Skips the dnsapi.dll call and runs only `ipconfig /flushdns` (for tests of the fallback).
    pub fn command_only() -> DnsFlush {
        DnsFlush { use_api: false }
    }

    /// Calls `DnsFlushResolverCache`.
    pub fn flush_with_api() -> Result<(), String> {
        let name = wide("dnsapi.dll");
        // SAFETY: a NUL-terminated name; the module is freed below.
        let module =
            unsafe { LoadLibraryExW(PCWSTR(name.as_ptr()), None, LOAD_LIBRARY_SEARCH_SYSTEM32) }
                .map_err(|e| format!("cannot load dnsapi.dll: {}", e.message()))?;
        // SAFETY: a valid module handle and a NUL-terminated ASCII name.
        let proc = unsafe { GetProcAddress(module, s!("DnsFlushResolverCache")) };
        let result = match proc {
            None => Err("dnsapi.dll has no DnsFlushResolverCache".to_string()),
            Some(f) => {
                // SAFETY: DnsFlushResolverCache takes no argument and returns a BOOL.
                let flush: unsafe extern "system" fn() -> BOOL = unsafe { std::mem::transmute(f) };
                // SAFETY: see above.
                if unsafe { flush() }.as_bool() {
                    Ok(())
                } else {
                    Err(format!(
                        "DnsFlushResolverCache failed: {}",
                        windows::core::Error::from_thread().message()
                    ))
                }
            }
        };
        // SAFETY: the handle from LoadLibraryExW above, no longer used.
        let _ = unsafe { FreeLibrary(module) };
        result
    }

    /// Runs `ipconfig /flushdns`.
    pub fn flush_with_command() -> Result<String, String> {
        let (program, args) = windows_flush_command();
        let path = find_program(program).ok_or_else(|| format!("{program} is missing"))?;
        let mut c = Cmd::new(path, args);
        c.timeout = Duration::from_secs(20);
        let out = run_or_fail(&c).map_err(|e| e.to_string())?;
        if !out.success() {
            return Err(format!("{} failed: {}", c.describe(), out.failure()));
        }
        Ok(c.describe())
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
        Ok(json!({
            "cache": "windows dns client",
            "undo": "a flushed cache refills itself; nothing to restore",
        }))
    }

    fn apply(&self, fix_id: &str, action: &Action) -> Result<Value, PerformError> {
        let _ = fix_id;
        let host = host_of(action)?;
        let api = if self.use_api {
            match DnsFlush::flush_with_api() {
                Ok(()) => {
                    return Ok(json!({ "host": host, "flushed_by": "DnsFlushResolverCache" }))
                }
                Err(e) => Some(e),
            }
        } else {
            None
        };
        match DnsFlush::flush_with_command() {
            Ok(cmd) => Ok(json!({ "host": host, "flushed_by": cmd, "api_error": api })),
            Err(e) => Err(PerformError::Failed(match api {
                Some(a) => format!("the DNS cache could not be flushed: {a}; {e}"),
                None => format!("the DNS cache could not be flushed: {e}"),
            })),
        }
    }

    fn undo(&self, fix_id: &str, action: &Action, before: &Value) -> Result<(), PerformError> {
        // An emptied cache refills itself; there is nothing to restore.
        let _ = (fix_id, action, before);
        Ok(())
    }
}
