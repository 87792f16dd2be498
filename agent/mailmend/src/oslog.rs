//! The macOS unified log for the launchd daemon: a tracing layer that writes each event through
//! os_log (subsystem `com.mailmend.agent`, category `agent`), so that
//! `log show --predicate 'subsystem == "com.mailmend.agent"'` shows the agent's lines. Stderr
//! keeps its lines too (launchd's StandardErrorPath).
//!
//! `os_log_with_type` is a C macro; what it expands to is called here directly: `_os_log_impl`
//! with the image's `__dso_handle`, the format `%{public}s` and the argument buffer the compiler
//! builds for one public string (summary 0x02 "has non-scalar items", count 1, then the item:
//! descriptor 0x22 "string, public", size 8, the pointer). Built and checked only on macOS.

use crate::logtext::event_text;
use std::ffi::{c_char, c_void, CString};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

const SUBSYSTEM: &[u8] = b"com.mailmend.agent\0";
const CATEGORY: &[u8] = b"agent\0";
const FORMAT: &[u8] = b"%{public}s\0";

/// os_log_type_t values.
const OS_LOG_TYPE_DEFAULT: u8 = 0x00;
const OS_LOG_TYPE_INFO: u8 = 0x01;
const OS_LOG_TYPE_DEBUG: u8 = 0x02;
const OS_LOG_TYPE_ERROR: u8 = 0x10;

#[repr(C)]
struct OsLog {
    _opaque: [u8; 0],
}

extern "C" {
    fn os_log_create(subsystem: *const c_char, category: *const c_char) -> *mut OsLog;
    fn _os_log_impl(
        dso: *const c_void,
        log: *mut OsLog,
        kind: u8,
        format: *const c_char,
        buf: *mut u8,
        size: u32,
    );
    /// The Mach-O header of this image, which os_log uses to find the format string.
    static __dso_handle: u8;
}

/// The layer: one unified-log entry per event that passes the filter.
pub struct OsLogLayer {
    log: *mut OsLog,
}

// SAFETY: os_log handles are immutable, never freed and documented as thread-safe.
unsafe impl Send for OsLogLayer {}
// SAFETY: as above.
unsafe impl Sync for OsLogLayer {}

impl OsLogLayer {
    pub fn new() -> OsLogLayer {
        // SAFETY: both arguments are NUL-terminated static strings.
        let log = unsafe { os_log_create(SUBSYSTEM.as_ptr().cast(), CATEGORY.as_ptr().cast()) };
        OsLogLayer { log }
    }

    fn write(&self, level: Level, text: &str) {
        let kind = match level {
            Level::ERROR => OS_LOG_TYPE_ERROR,
            Level::WARN => OS_LOG_TYPE_DEFAULT,
            Level::INFO => OS_LOG_TYPE_INFO,
            _ => OS_LOG_TYPE_DEBUG,
        };
        // A NUL inside the text would end it early; replace it.
        let Ok(c) = CString::new(text.replace('\0', " ")) else {
            return;
        };
        let mut buf = [0u8; 12];
        buf[0] = 0x02;
        buf[1] = 1;
        buf[2] = 0x22;
        buf[3] = 8;
        buf[4..12].copy_from_slice(&(c.as_ptr() as usize as u64).to_ne_bytes());
        // SAFETY: `log` came from os_log_create; the format is a static C string in this
        // image (identified by __dso_handle); the buffer describes one public C string that
        // stays alive for the call.
        unsafe {
            _os_log_impl(
                std::ptr::addr_of!(__dso_handle).cast(),
                self.log,
                kind,
                FORMAT.as_ptr().cast(),
                buf.as_mut_ptr(),
                buf.len() as u32,
            );
        }
    }
}

impl<S: Subscriber> Layer<S> for OsLogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        self.write(*event.metadata().level(), &event_text(event));
    }
}

/// Logging for `mailmend run` on macOS: the unified log and stderr.
pub fn init(filter: EnvFilter) {
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(OsLogLayer::new())
        .try_init();
}
