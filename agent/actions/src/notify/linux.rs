//! The Linux `notify_user` performer: a freedesktop notification on each logged-in user's
//! session bus, sent by `gdbus call` (or `notify-send`) run as that user.

use super::{
    gdbus_notify_args, no_session, notification_for_user, notification_or_error, notify_send_args,
    parse_gdbus_reply, runtime_dir_uid, Notification, SessionBus, PERFORMER_NAME,
};
use crate::exec::{find_program, run_or_fail, Cmd};
use mailmend_core::Action;
use mailmend_executor::{PerformError, Performer};
use serde_json::{json, Value};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The desktop notification performer for Linux.
#[derive(Debug, Clone)]
pub struct Notifier {
    runtime_dir: PathBuf,
    only_uids: Option<Vec<u32>>,
    expire_ms: i32,
    timeout: Duration,
}

impl Default for Notifier {
    fn default() -> Self {
        Notifier::new()
    }
}

impl Notifier {
    /// Looks for session buses under /run/user.
    pub fn new() -> Notifier {
        Notifier::with_runtime_dir("/run/user")
    }

    /// Looks for session buses under `dir` (`<dir>/<uid>/bus`) instead of /run/user.
    pub fn with_runtime_dir(dir: impl Into<PathBuf>) -> Notifier {
        Notifier {
            runtime_dir: dir.into(),
            only_uids: None,
            expire_ms: 30_000,
            timeout: Duration::from_secs(10),
        }
    }

    /// Notifies only these uids, whatever their number (the default is every uid from 1000 up
    /// except nobody's).
    pub fn only_uids(mut self, uids: &[u32]) -> Notifier {
        self.only_uids = Some(uids.to_vec());
        self
    }

    fn wanted(&self, name: &str) -> Option<u32> {
        match &self.only_uids {
            Some(list) => name.parse().ok().filter(|u| list.contains(u)),
            None => runtime_dir_uid(name),
        }
    }

    /// The session buses of logged-in users: `<runtime dir>/<uid>/bus` sockets owned by that
    /// uid (a socket someone else put there is not the user's bus).
    pub fn sessions(&self) -> Vec<SessionBus> {
        let Ok(dir) = std::fs::read_dir(&self.runtime_dir) else {
            return Vec::new();
        };
        let mut found: Vec<SessionBus> = dir
            .filter_map(Result::ok)
            .filter_map(|e| {
                let uid = self.wanted(&e.file_name().to_string_lossy())?;
                let path = e.path().join("bus");
                let meta = std::fs::symlink_metadata(&path).ok()?;
                (meta.file_type().is_socket() && meta.uid() == uid)
                    .then_some(SessionBus { uid, path })
            })
            .collect();
        found.sort_by_key(|s| s.uid);
        found
    }

    /// Shows the notification to one OS user, on that user's session bus.
    pub fn notify_os_user(&self, os_user: &str, n: &Notification) -> Result<Value, PerformError> {
        let user = nix::unistd::User::from_name(os_user)
            .map_err(|e| PerformError::Failed(format!("cannot look up OS user {os_user:?}: {e}")))?
            .ok_or_else(|| PerformError::Failed(format!("no OS user named {os_user:?}")))?;
        let uid = user.uid.as_raw();
        let bus = self
            .sessions()
            .into_iter()
            .find(|s| s.uid == uid)
            .ok_or_else(|| no_session(&format!("{os_user} has no session bus")))?;
        self.send(&bus, n).map_err(PerformError::Unavailable)
    }

    /// Sends one notification on one session bus, as the bus's user.
    fn send(&self, bus: &SessionBus, n: &Notification) -> Result<Value, String> {
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(bus.uid))
            .map_err(|e| format!("cannot look up uid {}: {e}", bus.uid))?
            .ok_or_else(|| format!("uid {} has a session bus but no passwd entry", bus.uid))?;
        let (via, program, args) = if let Some(p) = find_program("gdbus") {
            ("gdbus", p, gdbus_notify_args(n, self.expire_ms))
        } else if let Some(p) = find_program("notify-send") {
            ("notify-send", p, notify_send_args(n, self.expire_ms))
        } else {
            return Err(
                "neither gdbus (libglib2.0-bin) nor notify-send (libnotify-bin) is installed"
                    .into(),
            );
        };
        let mut c = Cmd::new(program, args);
        c.clean_env = true;
        c.user = Some((bus.uid, user.gid.as_raw()));
        c.timeout = self.timeout;
        // The reply is one number; the user controls the bus, so keep little of what comes.
        c.max_output = 64 << 10;
        let runtime = bus.path.parent().unwrap_or(Path::new("/"));
        c.env.extend([
            (
                "DBUS_SESSION_BUS_ADDRESS".to_string(),
                dbus_address(&bus.path),
            ),
            ("XDG_RUNTIME_DIR".to_string(), runtime.display().to_string()),
            ("HOME".to_string(), user.dir.display().to_string()),
            ("USER".to_string(), user.name.clone()),
            ("LOGNAME".to_string(), user.name.clone()),
            // The text is UTF-8 whatever the agent's locale.
            ("LC_ALL".to_string(), "C.UTF-8".to_string()),
        ]);
        let out = run_or_fail(&c).map_err(|e| e.to_string())?;
        if !out.success() {
            return Err(format!("{via} as {} failed: {}", user.name, out.failure()));
        }
        let id = if via == "gdbus" {
            parse_gdbus_reply(&out.stdout)
        } else {
            None
        };
        Ok(json!({ "uid": bus.uid, "user": user.name, "via": via, "id": id }))
    }
}

/// A D-Bus `unix:path=` address, with the bytes the address syntax reserves %-escaped.
pub fn dbus_address(path: &Path) -> String {
    let mut out = String::from("unix:path=");
    use std::os::unix::ffi::OsStrExt;
    for b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"-_/.*".contains(b) {
            out.push(*b as char);
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
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
        let sessions = self.sessions();
        if sessions.is_empty() {
            return Err(no_session(&format!(
                "no user session bus under {}",
                self.runtime_dir.display()
            )));
        }
        let uids: Vec<u32> = sessions.iter().map(|s| s.uid).collect();
        Ok(json!({ "session_uids": uids, "undo": "a notification cannot be taken back" }))
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
        match self.notify_os_user(os_user, &n) {
            // A home that belongs to no OS user (a copied profile, a test home) has no session:
            // the message stays in the audit log, as for a user who is not logged in.
            Err(PerformError::Failed(e)) => Err(no_session(&e)),
            other => other,
        }
    }

    fn apply(&self, fix_id: &str, action: &Action) -> Result<Value, PerformError> {
        let _ = fix_id;
        let n = notification_or_error(action)?;
        let sessions = self.sessions();
        if sessions.is_empty() {
            return Err(no_session(&format!(
                "no user session bus under {}",
                self.runtime_dir.display()
            )));
        }
        let mut shown = Vec::new();
        let mut failed = Vec::new();
        for bus in &sessions {
            match self.send(bus, &n) {
                Ok(v) => shown.push(v),
                Err(e) => failed.push(json!({ "uid": bus.uid, "error": e })),
            }
        }
        if shown.is_empty() {
            // A session without a notification service is no session to notify in.
            return Err(no_session(&format!(
                "no session bus took the notification: {}",
                Value::Array(failed)
            )));
        }
        Ok(json!({ "shown": shown, "failed": failed }))
    }

    fn undo(&self, fix_id: &str, action: &Action, before: &Value) -> Result<(), PerformError> {
        // A message already shown cannot be unshown; there is nothing to restore.
        let _ = (fix_id, action, before);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_addresses_escape_what_the_address_syntax_reserves() {
        assert_eq!(
            dbus_address(Path::new("/run/user/1000/bus")),
            "unix:path=/run/user/1000/bus"
        );
        assert_eq!(
            dbus_address(Path::new("/tmp/a b,c=d;e/bus")),
            "unix:path=/tmp/a%20b%2cc%3dd%3be/bus"
        );
    }

    #[test]
    fn a_runtime_dir_without_buses_has_no_sessions() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("1000")).unwrap();
        // A regular file is not a bus.
        std::fs::write(dir.path().join("1000/bus"), b"").unwrap();
        let n = Notifier::with_runtime_dir(dir.path());
        assert!(n.sessions().is_empty());
        let a = Action::NotifyUser {
            account: mailmend_core::AccountId("a".into()),
            problem: "p".into(),
            message: "m".into(),
        };
        match n.snapshot(&a) {
            Err(PerformError::Unavailable(m)) => assert!(m.contains("no user session"), "{m}"),
            other => panic!("expected unavailable, got {other:?}"),
        }
    }
}
