//! The macOS `notify_user` performer: a Notification Center notification shown by `osascript`
//! in the console user's context (`launchctl asuser <uid> sudo -u <user>`).

use super::{
    macos_notify_command, no_session, notification_for_user, notification_or_error,
    parse_console_uid, same_user, Notification, PERFORMER_NAME,
};
use crate::exec::{find_program, run_or_fail, Cmd};
use mailmend_core::Action;
use mailmend_executor::{PerformError, Performer};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

/// The Notification Center notifier for macOS.
#[derive(Debug, Clone, Default)]
pub struct Notifier;

impl Notifier {
    pub fn new() -> Notifier {
        Notifier
    }

    /// The uid and name of the user at the console, from the owner of /dev/console; None at
    /// the login window (owned by root).
    pub fn console_user() -> Result<Option<(u32, String)>, PerformError> {
        let stat = find_program("/usr/bin/stat")
            .ok_or_else(|| PerformError::Unavailable("/usr/bin/stat is missing".into()))?;
        let mut c = Cmd::new(stat, vec!["-f".into(), "%u".into(), "/dev/console".into()]);
        c.timeout = Duration::from_secs(5);
        let out = run_or_fail(&c)?;
        if !out.success() {
            return Err(PerformError::Failed(format!(
                "cannot tell who is at the console: {}",
                out.failure()
            )));
        }
        let Some(uid) = parse_console_uid(&out.stdout) else {
            return Ok(None);
        };
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .map_err(|e| PerformError::Failed(format!("cannot look up uid {uid}: {e}")))?
            .ok_or_else(|| PerformError::Failed(format!("uid {uid} has no user entry")))?;
        Ok(Some((uid, user.name)))
    }

    /// Shows the notification to the console user.
    pub fn send(&self, uid: u32, user: &str, n: &Notification) -> Result<Value, PerformError> {
        let (program, args) = macos_notify_command(uid, user, n);
        let mut c = Cmd::new(PathBuf::from(program), args);
        c.timeout = Duration::from_secs(15);
        let out = run_or_fail(&c)?;
        if !out.success() {
            return Err(no_session(&format!(
                "osascript as {user} failed: {}",
                out.failure()
            )));
        }
        Ok(json!({ "uid": uid, "user": user, "via": "osascript" }))
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
        let (uid, user) = Notifier::console_user()?
            .ok_or_else(|| no_session("nobody is logged in at the console"))?;
        Ok(json!({ "uid": uid, "user": user, "undo": "a notification cannot be taken back" }))
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
        let (uid, user) = Notifier::console_user()?
            .ok_or_else(|| no_session("nobody is logged in at the console"))?;
        if !same_user(os_user, &user) {
            return Err(no_session(&format!(
                "{user} is at the console, not {os_user}"
            )));
        }
        self.send(uid, &user, &n)
    }

    fn apply(&self, fix_id: &str, action: &Action) -> Result<Value, PerformError> {
        let _ = fix_id;
        let n = notification_or_error(action)?;
        let (uid, user) = Notifier::console_user()?
            .ok_or_else(|| no_session("nobody is logged in at the console"))?;
        self.send(uid, &user, &n)
    }

    fn undo(&self, fix_id: &str, action: &Action, before: &Value) -> Result<(), PerformError> {
        // A message already shown cannot be unshown; there is nothing to restore.
        let _ = (fix_id, action, before);
        Ok(())
    }
}
