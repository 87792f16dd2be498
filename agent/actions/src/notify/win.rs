//! The Windows `notify_user` performer: a message box in the active console session through
//! `WTSSendMessageW`, which a service in session 0 may send; it does not wait for the answer.

use super::{
    no_session, notification_for_user, notification_or_error, same_user, utf16, Notification,
    APP_NAME, PERFORMER_NAME,
};
use mailmend_core::Action;
use mailmend_executor::{PerformError, Performer};
use serde_json::{json, Value};
use windows::core::PCWSTR;
use windows::Win32::System::RemoteDesktop::{
    WTSFreeMemory, WTSGetActiveConsoleSessionId, WTSQuerySessionInformationW, WTSSendMessageW,
    WTSUserName,
};
use windows::Win32::UI::WindowsAndMessaging::{
    MB_ICONWARNING, MB_OK, MB_SETFOREGROUND, MB_TOPMOST, MESSAGEBOX_RESULT,
};

/// The message-box notifier for Windows.
#[derive(Debug, Clone)]
pub struct Notifier {
    /// Seconds the box stays before it closes itself (0: until the user closes it).
    timeout_secs: u32,
}

impl Default for Notifier {
    fn default() -> Self {
        Notifier::new()
    }
}

/// No session is attached to the physical console (`WTSGetActiveConsoleSessionId`).
const NO_CONSOLE_SESSION: u32 = u32::MAX;

impl Notifier {
    pub fn new() -> Notifier {
        Notifier { timeout_secs: 0 }
    }

    /// The active console session, if any.
    pub fn console_session() -> Option<u32> {
        // SAFETY: no arguments.
        let s = unsafe { WTSGetActiveConsoleSessionId() };
        (s != NO_CONSOLE_SESSION).then_some(s)
    }

    /// The name of the user logged on in `session` (empty when nobody is).
    pub fn session_user(session: u32) -> Result<String, String> {
        let mut buffer = windows::core::PWSTR::null();
        let mut bytes = 0u32;
        // SAFETY: the out pointers are valid for the call; on success the system allocates the
        // buffer, which is read up to its NUL and freed with WTSFreeMemory below.
        unsafe { WTSQuerySessionInformationW(None, session, WTSUserName, &mut buffer, &mut bytes) }
            .map_err(|e| e.message().trim().to_string())?;
        if buffer.is_null() {
            return Ok(String::new());
        }
        // SAFETY: a successful call returned a NUL-terminated UTF-16 string in `buffer`.
        let name = unsafe { buffer.to_string() }.map_err(|e| e.to_string());
        // SAFETY: `buffer` was allocated by WTSQuerySessionInformationW and is freed once.
        unsafe { WTSFreeMemory(buffer.0 as *mut core::ffi::c_void) };
        name
    }

    /// Shows the notification in `session`.
    pub fn send(&self, session: u32, n: &Notification) -> Result<Value, PerformError> {
        let title: Vec<u16> = utf16(&format!("{APP_NAME}: {}", n.summary));
        let message: Vec<u16> = utf16(&n.body);
        let mut response = MESSAGEBOX_RESULT(0);
        // SAFETY: the buffers live until the call returns; the lengths are in bytes.
        unsafe {
            WTSSendMessageW(
                None,
                session,
                PCWSTR(title.as_ptr()),
                (title.len() * 2) as u32,
                PCWSTR(message.as_ptr()),
                (message.len() * 2) as u32,
                MB_OK | MB_ICONWARNING | MB_SETFOREGROUND | MB_TOPMOST,
                self.timeout_secs,
                &mut response,
                false,
            )
        }
        .map_err(|e| {
            no_session(&format!(
                "WTSSendMessageW to session {session} failed: {}",
                e.message().trim()
            ))
        })?;
        Ok(json!({ "session": session, "via": "WTSSendMessageW" }))
    }
}

impl Performer for Notifier {
    fn name(&self) -> &'static str {
        PERFORMER_NAME
    }

    fn handles(&self, action: &Action) -> bool {
        matches!(action, Action::NotifyUser { .. })
    }

    fn snapshot(&self, action: &Action) -> Result<Value, PerformError> {
        notification_or_error(action)?;
        let session =
            Notifier::console_session().ok_or_else(|| no_session("no session at the console"))?;
        Ok(json!({ "session": session, "undo": "a notification cannot be taken back" }))
    }

    fn apply_for_user(
        &self,
        fix_id: &str,
        action: &Action,
        os_user: &str,
    ) -> Result<Value, PerformError> {
        let Some(n) = notification_for_user(action, os_user)? else {
            return self.apply(fix_id, action);
        };
        let session =
            Notifier::console_session().ok_or_else(|| no_session("no session at the console"))?;
        let user = Notifier::session_user(session)
            .map_err(|e| no_session(&format!("cannot tell who uses session {session}: {e}")))?;
        if !same_user(os_user, &user) {
            return Err(no_session(&format!(
                "session {session} at the console is {user:?}'s, not {os_user}'s"
            )));
        }
        self.send(session, &n)
    }

    fn apply(&self, fix_id: &str, action: &Action) -> Result<Value, PerformError> {
        let _ = fix_id;
        let n = notification_or_error(action)?;
        let session =
            Notifier::console_session().ok_or_else(|| no_session("no session at the console"))?;
        self.send(session, &n)
    }

    fn undo(&self, fix_id: &str, action: &Action, before: &Value) -> Result<(), PerformError> {
        // A message already shown cannot be unshown; there is nothing to restore.
        let _ = (fix_id, action, before);
        Ok(())
    }
}
