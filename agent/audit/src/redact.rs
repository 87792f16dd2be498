//! A defensive pass that keeps secrets out of the log even if a caller slips one into an event.
//!
//! Callers never pass passwords, tokens or Kerberos tickets, but `before`/`after` snapshots and
//! evidence come from configuration files and server replies, so the log checks again:
//! - in `before`/`after`, every string or number under a key containing `password`, `passwd`,
//!   `secret`, `token` or `ticket` (any case, at any depth) becomes `"[redacted]"`; booleans and
//!   nulls stay, since they cannot carry a secret and say useful things (`"has_password": true`);
//! - in every other string of `before`/`after` and in evidence, text of the form
//!   `<key>=<value>`, `<key>: <value>`, `"<key>": "<value>"` or `"<key>", "<value>"` (prefs.js)
//!   whose key contains one of those
//!   words has its value replaced (`password=hunter2` → `password=[redacted]`).
//!
//! The cost of a false positive (a ticket's expiry date under a key named `ticket_expiry`) is a
//! less informative record; the cost of a false negative is a leaked secret, so the rule is broad.

use crate::event::Event;
use serde_json::Value;

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

const SECRET_WORDS: [&str; 5] = ["password", "passwd", "secret", "token", "ticket"];

/// Whether a key names something secret.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| key.contains(w))
}

/// Removes secrets from an event's `before`, `after` and evidence (see the module documentation).
pub fn redact(event: &mut Event) {
    if let Some(v) = event.before.as_mut() {
        redact_value(v, false);
    }
    if let Some(v) = event.after.as_mut() {
        redact_value(v, false);
    }
    for e in &mut event.evidence {
        e.probe = redact_text(&e.probe);
        e.target = redact_text(&e.target);
        e.result = redact_text(&e.result);
    }
}

/// Redacts a JSON value in place; `secret` says whether it sits under a secret key.
pub fn redact_value(value: &mut Value, secret: bool) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                redact_value(v, secret || is_secret_key(k));
            }
        }
        Value::Array(items) => {
            for v in items {
                redact_value(v, secret);
            }
        }
        Value::String(_) | Value::Number(_) if secret => {
            *value = Value::String(REDACTED.to_string());
        }
        Value::String(s) => {
            let cleaned = redact_text(s);
            if cleaned != *s {
                *s = cleaned;
            }
        }
        Value::Number(_) | Value::Bool(_) | Value::Null => {}
    }
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

fn ends_value(b: u8) -> bool {
    b.is_ascii_whitespace() || matches!(b, b',' | b';' | b'&' | b')' | b']' | b'}' | b'"' | b'\'')
}

/// Replaces the values of `key=value`-like pairs whose key names a secret.
pub fn redact_text(text: &str) -> String {
    // ASCII lower-casing keeps byte offsets, and every position cut below sits next to an ASCII
    // delimiter or at the ends of the text, so the slices are always on character boundaries.
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut pos = 0;
    while pos < bytes.len() {
        let Some(found) = SECRET_WORDS
            .iter()
            .filter_map(|w| lower[pos..].find(w).map(|i| (pos + i, w.len())))
            .min()
        else {
            break;
        };
        let (start, len) = found;
        let mut i = start + len;
        while i < bytes.len() && is_key_byte(bytes[i]) {
            i += 1;
        }
        // A quoted key may also be followed by a comma, as in prefs.js:
        // `user_pref("mail.server.server1.password", "pw");`.
        let quoted_key = i < bytes.len() && matches!(bytes[i], b'"' | b'\'');
        if quoted_key {
            i += 1;
        }
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        let separator = match bytes.get(i) {
            Some(b'=' | b':') => true,
            Some(b',') => quoted_key,
            _ => false,
        };
        if !separator {
            pos = start + len;
            continue;
        }
        i += 1;
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        let quote = match bytes.get(i) {
            Some(&q @ (b'"' | b'\'')) => {
                i += 1;
                Some(q)
            }
            _ => None,
        };
        let value_start = i;
        // Already redacted (a record redacted twice must not change).
        if text[value_start..].starts_with(REDACTED) {
            pos = value_start + REDACTED.len();
            continue;
        }
        while i < bytes.len() {
            let b = bytes[i];
            let end = match quote {
                Some(q) => b == q,
                None => ends_value(b),
            };
            if end {
                break;
            }
            i += 1;
        }
        let value = &text[value_start..i];
        if !value.is_empty() {
            out.push_str(&text[copied..value_start]);
            out.push_str(REDACTED);
            copied = i;
        }
        pos = i.max(start + len);
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailmend_core::Evidence;
    use serde_json::json;

    #[test]
    fn secrets_under_secret_keys_are_redacted_at_any_depth_in_before_and_after() {
        let mut e = Event {
            before: Some(json!({
                "host": "imap.example.com",
                "Password": "hunter2",
                "oauth": {"access_token": "ya29.abc", "refresh_TOKEN": ["r1", "r2"], "expires": 3600},
                "krb5": {"ticket": {"data": "BASE64==", "renewable": true}},
                "client_secret": 12345,
                "has_password": true,
                "smtp_passwd": null
            })),
            after: Some(json!([{"secret": "s3"}, "plain"])),
            ..Event::default()
        };
        redact(&mut e);
        assert_eq!(
            e.before.unwrap(),
            json!({
                "host": "imap.example.com",
                "Password": "[redacted]",
                "oauth": {"access_token": "[redacted]", "refresh_TOKEN": ["[redacted]", "[redacted]"], "expires": 3600},
                "krb5": {"ticket": {"data": "[redacted]", "renewable": true}},
                "client_secret": "[redacted]",
                "has_password": true,
                "smtp_passwd": null
            })
        );
        assert_eq!(e.after.unwrap(), json!([{"secret": "[redacted]"}, "plain"]));
    }

    #[test]
    fn secrets_inside_text_are_redacted_in_evidence_and_strings() {
        let mut e = Event {
            evidence: vec![Evidence::new(
                "config",
                "https://mail.example.com/?access_token=abc123&lang=en",
                "user=bob password=hunter2; Token: \"xyz\", note: fine",
            )],
            before: Some(json!({"line": "user_pref(\"mail.server.server1.password\", \"pw\");"})),
            ..Event::default()
        };
        redact(&mut e);
        let ev = &e.evidence[0];
        assert_eq!(ev.probe, "config");
        assert_eq!(
            ev.target,
            "https://mail.example.com/?access_token=[redacted]&lang=en"
        );
        assert_eq!(
            ev.result,
            "user=bob password=[redacted]; Token: \"[redacted]\", note: fine"
        );
        assert_eq!(
            e.before.unwrap()["line"],
            "user_pref(\"mail.server.server1.password\", \"[redacted]\");"
        );
    }

    #[test]
    fn words_that_merely_mention_a_secret_are_left_alone() {
        for text in [
            "ticket expires 2024-05-01",
            "server asked for a password",
            "token",
            "password=[redacted]",
            "naïve pässword: ünïcode",
            "a, b, \"ticket\" c",
        ] {
            assert_eq!(redact_text(text), text);
        }
        assert_eq!(
            redact_text("Grüße passwort password=ü€"),
            "Grüße passwort password=[redacted]"
        );
        assert_eq!(redact_text("PASSWORD : 'a b'"), "PASSWORD : '[redacted]'");
        assert_eq!(redact_text("ticket:"), "ticket:");
    }
}
