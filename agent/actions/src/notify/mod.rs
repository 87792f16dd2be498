//! User notification for what only a person can fix (`notify_user`): the text shown, how it is
//! quoted for each platform's tool, how a user session is found, and the `notify_user`
//! performer of each platform.
//!
//! - Linux ([`Notifier`]): a freedesktop notification (`org.freedesktop.Notifications.Notify`)
//!   on the session bus of every logged-in user (`/run/user/<uid>/bus`, uid 1000 and above, so a
//!   display manager's greeter is left out), sent by `gdbus call` (or `notify-send`) run *as that
//!   user* with `DBUS_SESSION_BUS_ADDRESS` set: the agent runs as root, and a session bus only
//!   trusts its own user. No D-Bus library in the agent: one short-lived process per message.
//! - macOS: `osascript -e 'display notification …'` in the console user's context
//!   (`launchctl asuser <uid> sudo -u <user>`); nobody at the console (uid 0: the login window)
//!   means no session.
//! - Windows: `WTSSendMessageW` to the active console session. A toast cannot be raised from a
//!   service in session 0 (it needs a process in the user's session with a registered
//!   AppUserModelID); a message box from `WTSSendMessageW` can, without a helper. It is sent
//!   without waiting for the user's answer.
//!
//! When no session exists the performer returns [`PerformError::Unavailable`]; the message then
//! stays in the audit log and in `check`'s output, which is where it went before.
//! A notification cannot be taken back: `undo` does nothing. The text is the finding's message,
//! which by the diagnostics' rule never holds a secret; control characters are removed and the
//! length is bounded, so that a hostile server name cannot forge extra lines of a dialog.
//!
//! Whom: the executor calls `apply_for_user` with the account's OS user (from the client
//! adapter, never from the plugin that proposed the message), and only that user's session is
//! notified: on a shared computer another user must not read about this account. Linux finds
//! that user's session bus; Windows and macOS notify the console session only when its user is
//! the account's ([`same_user`]); otherwise the message stays in the audit log. `apply` without
//! a user (an account with no known OS user) notifies every logged-in user, as before.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "macos")]
mod macos;
#[cfg(windows)]
mod win;

#[cfg(target_os = "linux")]
pub use linux::Notifier;
#[cfg(target_os = "macos")]
pub use macos::Notifier;
#[cfg(windows)]
pub use win::Notifier;

use mailmend_core::Action;
use mailmend_executor::PerformError;

/// The name every platform's notifier has in snapshots.
pub const PERFORMER_NAME: &str = "notify_user";

/// The application name shown with the notification.
pub const APP_NAME: &str = "mailmend";

/// The longest body shown, in characters; the rest is cut with an ellipsis.
pub const MAX_BODY_CHARS: usize = 600;

/// What is shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub summary: String,
    pub body: String,
}

/// The notification for a `notify_user` action, or None for any other action.
pub fn notification_for(action: &Action) -> Option<Notification> {
    match action {
        Action::NotifyUser {
            problem, message, ..
        } => {
            let mut body = clean_text(message, MAX_BODY_CHARS);
            let problem = clean_text(problem, 80);
            if !problem.is_empty() {
                body.push_str("\n(helpdesk reference: ");
                body.push_str(&problem);
                body.push(')');
            }
            Some(Notification {
                summary: "Your mail needs attention".to_string(),
                body,
            })
        }
        _ => None,
    }
}

/// Whether the user of a session, as the system names it (`alice`, `CORP\\alice`), is the
/// account's OS user, as the client adapter found it. Windows and macOS user names do not
/// depend on case, and a Windows session may carry its domain; an empty name is nobody.
pub fn same_user(os_user: &str, session_user: &str) -> bool {
    let bare = |name: &str| -> String {
        let name = name.trim();
        name.rsplit('\\').next().unwrap_or(name).to_lowercase()
    };
    let (a, b) = (bare(os_user), bare(session_user));
    !a.is_empty() && a == b
}

/// Removes control characters (a newline is kept, other line breaks and tabs become spaces),
/// trims, and cuts the text to `max` characters.
pub fn clean_text(text: &str, max: usize) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| match c {
            '\n' => '\n',
            c if c.is_whitespace() => ' ',
            c => c,
        })
        .filter(|c| *c == '\n' || !c.is_control())
        // Bidirectional overrides could make a host name read as another.
        .filter(|c| !matches!(*c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.chars().count() <= max {
        return cleaned.to_string();
    }
    let mut cut: String = cleaned.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The freedesktop body: servers that support markup read `&`, `<` and `>` as markup, so they
/// are escaped (the specification asks clients to do so).
pub fn freedesktop_body(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    for c in body.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// A GVariant text-format string literal (what `gdbus call` parses its arguments as).
pub fn gvariant_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The arguments of `gdbus call` that send one notification on the session bus.
pub fn gdbus_notify_args(n: &Notification, timeout_ms: i32) -> Vec<String> {
    vec![
        "call".into(),
        "--session".into(),
        "--dest".into(),
        "org.freedesktop.Notifications".into(),
        "--object-path".into(),
        "/org/freedesktop/Notifications".into(),
        "--method".into(),
        "org.freedesktop.Notifications.Notify".into(),
        gvariant_string(APP_NAME),
        "0".into(),
        gvariant_string("dialog-warning"),
        gvariant_string(&n.summary),
        gvariant_string(&freedesktop_body(&n.body)),
        "@as []".into(),
        // Urgency normal (1): critical notifications stay until dismissed on some servers.
        "{'urgency': <byte 1>}".into(),
        timeout_ms.to_string(),
    ]
}

/// The notification id in `gdbus call`'s reply, `(uint32 7,)`.
pub fn parse_gdbus_reply(text: &str) -> Option<u32> {
    let t = text.trim();
    let inner = t.strip_prefix('(')?.strip_suffix(')')?;
    let inner = inner.trim().trim_end_matches(',').trim();
    inner.strip_prefix("uint32")?.trim().parse().ok()
}

/// The arguments of `notify-send` (libnotify) for one notification: the fallback where gdbus is
/// missing. `--` keeps a summary starting with `-` from being read as an option.
pub fn notify_send_args(n: &Notification, timeout_ms: i32) -> Vec<String> {
    vec![
        format!("--app-name={APP_NAME}"),
        "--icon=dialog-warning".into(),
        format!("--expire-time={timeout_ms}"),
        "--".into(),
        n.summary.clone(),
        freedesktop_body(&n.body),
    ]
}

/// A logged-in user's session bus, found under the runtime directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionBus {
    pub uid: u32,
    pub path: std::path::PathBuf,
}

/// Uids below this are system accounts (and display-manager greeters); the usual `UID_MIN`.
pub const FIRST_USER_UID: u32 = 1000;

/// The uid a `/run/user/<uid>` entry names, when it is a user's (not a system account's).
pub fn runtime_dir_uid(name: &str) -> Option<u32> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let uid: u32 = name.parse().ok()?;
    // 65534 is nobody, never a person.
    (uid >= FIRST_USER_UID && uid != 65534).then_some(uid)
}

/// An AppleScript string literal.
pub fn applescript_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The AppleScript that shows one notification in Notification Center.
pub fn applescript_notification(n: &Notification) -> String {
    format!(
        "display notification {} with title {} subtitle {}",
        applescript_string(&n.body),
        applescript_string(APP_NAME),
        applescript_string(&n.summary)
    )
}

/// The command (program and arguments) that runs `osascript` as the console user on macOS:
/// `launchctl asuser` enters the user's bootstrap namespace (where Notification Center is),
/// `sudo -u` drops root.
pub fn macos_notify_command(uid: u32, user: &str, n: &Notification) -> (String, Vec<String>) {
    (
        "/bin/launchctl".to_string(),
        vec![
            "asuser".into(),
            uid.to_string(),
            "/usr/bin/sudo".into(),
            "-n".into(),
            "-u".into(),
            user.to_string(),
            "/usr/bin/osascript".into(),
            "-e".into(),
            applescript_notification(n),
        ],
    )
}

/// The console user's uid from `stat -f %u /dev/console`; None when nobody is logged in at the
/// console (the login window runs as root).
pub fn parse_console_uid(text: &str) -> Option<u32> {
    let uid: u32 = text.trim().parse().ok()?;
    (uid != 0).then_some(uid)
}

/// The message and title of the Windows message box, as UTF-16 without a terminator (the
/// lengths `WTSSendMessageW` takes are in bytes).
pub fn utf16(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

/// Why nothing was shown; the executor falls back to the audit log and `check`'s output.
pub fn no_session(detail: &str) -> PerformError {
    PerformError::Unavailable(format!(
        "no user session to notify ({detail}); the message stays in the audit log and in check's output"
    ))
}

/// The notification of a `notify_user` action meant for `os_user`; `None` when the account has
/// no known OS user, for which `apply` notifies every session.
pub fn notification_for_user(
    action: &Action,
    os_user: &str,
) -> Result<Option<Notification>, PerformError> {
    if os_user.trim().is_empty() {
        return Ok(None);
    }
    notification_or_error(action).map(Some)
}

/// The action's text, or the error for an action this performer does not handle.
pub fn notification_or_error(action: &Action) -> Result<Notification, PerformError> {
    notification_for(action).ok_or_else(|| {
        PerformError::Failed(format!(
            "the notify_user performer cannot {}",
            action.describe()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailmend_core::AccountId;

    #[test]
    fn the_console_user_is_the_accounts_user_only_by_name_whatever_the_case_or_domain() {
        assert!(same_user("alice", "alice"));
        assert!(same_user("Alice", "ALICE"));
        assert!(same_user("alice", "CORP\\alice"));
        assert!(same_user("CORP\\Alice", "alice"));
        assert!(!same_user("alice", "bob"));
        assert!(!same_user("alice", "alice2"));
        assert!(!same_user("alice", "alice\\bob"));
        // Nobody is nobody's user: an empty name never matches.
        assert!(!same_user("", ""));
        assert!(!same_user(" ", "CORP\\"));
    }

    fn action(message: &str) -> Action {
        Action::NotifyUser {
            account: AccountId("thunderbird-abc".into()),
            problem: "tls.cert_expired".into(),
            message: message.into(),
        }
    }

    #[test]
    fn the_notification_carries_the_message_and_the_problem_code() {
        let n = notification_for(&action("The certificate of imap.example.com expired")).unwrap();
        assert_eq!(n.summary, "Your mail needs attention");
        assert_eq!(
            n.body,
            "The certificate of imap.example.com expired\n(helpdesk reference: tls.cert_expired)"
        );
        assert!(notification_for(&Action::FlushDns { host: "x".into() }).is_none());
    }

    #[test]
    fn a_hostile_message_cannot_forge_lines_or_grow_without_bound() {
        let n = notification_for(&action("evil\r\x1b[2Jhost\u{202e}moc.\t x")).unwrap();
        assert!(n.body.starts_with("evil [2Jhostmoc.  x\n"), "{:?}", n.body);
        let long = "a".repeat(5000);
        let n = notification_for(&action(&long)).unwrap();
        let first = n.body.lines().next().unwrap();
        assert_eq!(first.chars().count(), MAX_BODY_CHARS);
        assert!(first.ends_with('…'));
    }

    #[test]
    fn gdbus_arguments_quote_every_string_as_gvariant_text() {
        assert_eq!(gvariant_string("it's a\\b\nc"), r"'it\'s a\\b\nc'");
        assert_eq!(gvariant_string("\u{7}"), r"'\u0007'");
        let args = gdbus_notify_args(
            &Notification {
                summary: "S".into(),
                body: "a <b> & c".into(),
            },
            10_000,
        );
        assert_eq!(args[7], "org.freedesktop.Notifications.Notify");
        assert_eq!(
            args[8..],
            [
                "'mailmend'",
                "0",
                "'dialog-warning'",
                "'S'",
                "'a &lt;b&gt; &amp; c'",
                "@as []",
                "{'urgency': <byte 1>}",
                "10000"
            ]
        );
    }

    #[test]
    fn the_gdbus_reply_gives_the_notification_id() {
        assert_eq!(parse_gdbus_reply("(uint32 7,)\n"), Some(7));
        assert_eq!(parse_gdbus_reply("(uint32 12)"), Some(12));
        assert_eq!(parse_gdbus_reply("()"), None);
        assert_eq!(parse_gdbus_reply("Error: GDBus.Error"), None);
    }

    #[test]
    fn notify_send_cannot_take_the_summary_for_an_option() {
        let a = notify_send_args(
            &Notification {
                summary: "-u critical".into(),
                body: "b".into(),
            },
            5000,
        );
        let dashdash = a.iter().position(|x| x == "--").unwrap();
        assert_eq!(a[dashdash + 1], "-u critical");
    }

    #[test]
    fn only_people_have_session_buses_worth_notifying() {
        assert_eq!(runtime_dir_uid("1000"), Some(1000));
        assert_eq!(runtime_dir_uid("120"), None);
        assert_eq!(runtime_dir_uid("0"), None);
        assert_eq!(runtime_dir_uid("65534"), None);
        assert_eq!(runtime_dir_uid("1000x"), None);
        assert_eq!(runtime_dir_uid(""), None);
    }

    #[test]
    fn applescript_strings_cannot_break_out_of_their_quotes() {
        assert_eq!(applescript_string(r#"a"b\c"#), r#""a\"b\\c""#);
        let n = Notification {
            summary: "S".into(),
            body: "x\" & do shell script \"id".into(),
        };
        let script = applescript_notification(&n);
        assert_eq!(
            script,
            r#"display notification "x\" & do shell script \"id" with title "mailmend" subtitle "S""#
        );
        let (program, args) = macos_notify_command(501, "alice", &n);
        assert_eq!(program, "/bin/launchctl");
        assert_eq!(
            args[..7],
            [
                "asuser",
                "501",
                "/usr/bin/sudo",
                "-n",
                "-u",
                "alice",
                "/usr/bin/osascript"
            ]
        );
        assert_eq!(args[8], script);
    }

    #[test]
    fn the_login_window_is_not_a_console_user() {
        assert_eq!(parse_console_uid("501\n"), Some(501));
        assert_eq!(parse_console_uid("0\n"), None);
        assert_eq!(parse_console_uid("root"), None);
    }
}
