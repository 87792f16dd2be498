//! Logging to the Windows Event Log (Application log, source `mailmend`) when `mailmend run`
//! runs as a service, where stderr goes nowhere: a tracing layer that reports each event with
//! `ReportEventW`, and the registration of the event source done by `mailmend service install`.
//!
//! The source's message file is the system's `EventCreate.exe`, whose message table maps event
//! ids 1 to 1000 to the text `%1`: Event Viewer then shows the agent's sentence as it is,
//! without a message DLL of our own. Ids: 1 information, 2 warning, 3 error.

use tracing::Level;
#[cfg(windows)]
use {
    crate::logtext::event_text,
    tracing::{Event, Subscriber},
    tracing_subscriber::{layer::Context, Layer},
};

/// The event source name, in the Application log.
#[cfg(windows)]
pub const SOURCE: &str = "mailmend";

/// Where Windows looks up an event source.
#[cfg(windows)]
const SOURCE_KEY: &str = r"SYSTEM\CurrentControlSet\Services\EventLog\Application\mailmend";

/// Event ids by level (see the module documentation).
pub fn event_id(level: Level) -> u32 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 2,
        _ => 1,
    }
}

#[cfg(windows)]
pub use imp::{deregister_source, register_source, EventLogLayer};

#[cfg(windows)]
mod imp {
    use super::*;
    use std::io;
    use windows_sys::Win32::System::EventLog::{
        DeregisterEventSource, RegisterEventSourceW, ReportEventW, EVENTLOG_ERROR_TYPE,
        EVENTLOG_INFORMATION_TYPE, EVENTLOG_WARNING_TYPE,
    };

    fn wide(s: &str) -> Vec<u16> {
        s.encode_utf16()
            .map(|c| if c == 0 { u16::from(b' ') } else { c })
            .chain(std::iter::once(0))
            .collect()
    }

    /// Creates (or updates) the Application log's `mailmend` source. Needs administrator
    /// rights, as `sc create` does.
    pub fn register_source() -> windows_registry::Result<()> {
        let key = windows_registry::LOCAL_MACHINE.create(SOURCE_KEY)?;
        key.set_expand_string("EventMessageFile", r"%SystemRoot%\System32\EventCreate.exe")?;
        // Error, warning and information.
        key.set_u32("TypesSupported", 7)?;
        Ok(())
    }

    /// Removes the source's registration; a source that is not registered is no error.
    pub fn deregister_source() -> windows_registry::Result<()> {
        match windows_registry::LOCAL_MACHINE.remove_tree(SOURCE_KEY) {
            Ok(()) => Ok(()),
            // ERROR_FILE_NOT_FOUND as an HRESULT: the key is already gone.
            Err(e) if e.code().0 as u32 == 0x8007_0002 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The tracing layer: one Event Log entry per event that passes the filter.
    pub struct EventLogLayer {
        handle: Handle,
    }

    struct Handle(windows_sys::Win32::Foundation::HANDLE);

    // SAFETY: an event source handle may be used from any thread; ReportEventW is thread-safe.
    unsafe impl Send for Handle {}
    // SAFETY: as above; the handle is only passed to ReportEventW and DeregisterEventSource.
    unsafe impl Sync for Handle {}

    impl Drop for Handle {
        fn drop(&mut self) {
            // SAFETY: the handle came from RegisterEventSourceW and is closed exactly once.
            unsafe { DeregisterEventSource(self.0) };
        }
    }

    impl EventLogLayer {
        /// Opens the `mailmend` source of the local Application log. Works even when the
        /// source is not registered (Event Viewer then shows the text with a note).
        pub fn open() -> io::Result<EventLogLayer> {
            let name = wide(SOURCE);
            // SAFETY: `name` is a NUL-terminated UTF-16 string that outlives the call; a null
            // server name means the local computer.
            let h = unsafe { RegisterEventSourceW(std::ptr::null(), name.as_ptr()) };
            if h.is_null() {
                return Err(io::Error::last_os_error());
            }
            Ok(EventLogLayer { handle: Handle(h) })
        }

        /// Writes one entry.
        pub fn report(&self, level: Level, text: &str) -> io::Result<()> {
            let kind = match level {
                Level::ERROR => EVENTLOG_ERROR_TYPE,
                Level::WARN => EVENTLOG_WARNING_TYPE,
                _ => EVENTLOG_INFORMATION_TYPE,
            };
            let text = wide(text);
            let strings = [text.as_ptr()];
            // SAFETY: the handle is open; `strings` holds one pointer to a NUL-terminated
            // UTF-16 string, both alive for the call; no SID and no raw data.
            let ok = unsafe {
                ReportEventW(
                    self.handle.0,
                    kind,
                    0,
                    event_id(level),
                    std::ptr::null_mut(),
                    1,
                    0,
                    strings.as_ptr(),
                    std::ptr::null(),
                )
            };
            if ok == 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }
    }

    impl<S: Subscriber> Layer<S> for EventLogLayer {
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            // A full or unavailable Event Log must not stop the agent; there is nowhere else
            // to say so.
            let _ = self.report(*event.metadata().level(), &event_text(event));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logtext::{cut, event_text, MAX_CHARS};
    use std::sync::{Arc, Mutex};
    use tracing::{Event, Subscriber};
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::Layer;

    /// Collects the texts the layer would report.
    struct Collect(Arc<Mutex<Vec<(Level, String)>>>);

    impl<S: Subscriber> Layer<S> for Collect {
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
            v.push((*event.metadata().level(), event_text(event)));
        }
    }

    #[test]
    fn events_become_the_message_then_the_fields() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let sub = tracing_subscriber::registry().with(Collect(Arc::clone(&got)));
        tracing::subscriber::with_default(sub, || {
            tracing::warn!(account = "a1", port = 993, "probe failed: {}", "timed out");
            tracing::error!("policy reload refused");
        });
        let got = got.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert_eq!(
            got,
            vec![
                (
                    Level::WARN,
                    "probe failed: timed out account=\"a1\" port=993".to_string()
                ),
                (Level::ERROR, "policy reload refused".to_string()),
            ]
        );
        assert_eq!(event_id(Level::WARN), 2);
        assert_eq!(event_id(Level::ERROR), 3);
        assert_eq!(event_id(Level::INFO), 1);
    }

    #[test]
    fn a_message_longer_than_the_event_log_takes_is_cut() {
        let long = "x".repeat(40_000);
        let cut = cut(long);
        assert_eq!(cut.chars().count(), MAX_CHARS + 1);
        assert!(cut.ends_with('…'));
    }

    /// Under Wine: the source registers in HKLM, RegisterEventSourceW opens it and
    /// ReportEventW accepts an entry of each level. Wine keeps no log to read the entries
    /// back from, so what Event Viewer shows is not checked here.
    #[cfg(windows)]
    #[test]
    fn the_event_source_registers_and_accepts_entries() {
        register_source().expect("registering the event source needs administrator rights");
        let key = windows_registry::LOCAL_MACHINE
            .open(SOURCE_KEY)
            .expect("the source key exists after registering");
        assert_eq!(key.get_u32("TypesSupported").unwrap(), 7);
        assert!(key
            .get_string("EventMessageFile")
            .unwrap()
            .ends_with("EventCreate.exe"));
        let layer = EventLogLayer::open().unwrap();
        for level in [Level::INFO, Level::WARN, Level::ERROR] {
            layer.report(level, "mailmend event log test").unwrap();
        }
        deregister_source().unwrap();
        assert!(windows_registry::LOCAL_MACHINE.open(SOURCE_KEY).is_err());
        // Deregistering twice is no error (uninstall after a failed install).
        deregister_source().unwrap();
    }
}
