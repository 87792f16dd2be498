//! The audit vocabulary: what a caller reports (`Event`) and what the log stores (`Record`).

use mailmend_core::{Action, Evidence, PluginInfo};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What kind of thing happened. Every record has exactly one kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The executor is about to change something; written (and fsynced) before the change.
    Intent,
    /// What became of an intent: applied, rolled back, failed, denied...
    Outcome,
    /// A diagnostic reported a finding.
    Finding,
    /// A policy was loaded; `policy_hash` names it.
    PolicyLoaded,
    /// A policy file was rejected; the message says why.
    PolicyRejected,
    /// A plugin was loaded; `plugin` names it.
    PluginLoaded,
    /// A plugin was refused (bad signature, wrong ABI...).
    PluginRefused,
    /// The agent recovered from an interrupted run, or the log repaired its own tail.
    Recovery,
    /// A change was rolled back.
    Rollback,
    /// Anything else worth an admin's attention.
    #[default]
    Notice,
}

impl EventKind {
    pub const ALL: [EventKind; 10] = [
        EventKind::Intent,
        EventKind::Outcome,
        EventKind::Finding,
        EventKind::PolicyLoaded,
        EventKind::PolicyRejected,
        EventKind::PluginLoaded,
        EventKind::PluginRefused,
        EventKind::Recovery,
        EventKind::Rollback,
        EventKind::Notice,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Intent => "intent",
            EventKind::Outcome => "outcome",
            EventKind::Finding => "finding",
            EventKind::PolicyLoaded => "policy_loaded",
            EventKind::PolicyRejected => "policy_rejected",
            EventKind::PluginLoaded => "plugin_loaded",
            EventKind::PluginRefused => "plugin_refused",
            EventKind::Recovery => "recovery",
            EventKind::Rollback => "rollback",
            EventKind::Notice => "notice",
        }
    }

    /// Parses a kind's name; `-` and `_` are interchangeable and case does not matter.
    pub fn parse(s: &str) -> Option<EventKind> {
        let s = normalise(s);
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What became of a fix (or a recommendation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Applied,
    RolledBack,
    Failed,
    Denied,
    Recommended,
    Deferred,
    Reverted,
    Skipped,
}

impl Outcome {
    pub const ALL: [Outcome; 8] = [
        Outcome::Applied,
        Outcome::RolledBack,
        Outcome::Failed,
        Outcome::Denied,
        Outcome::Recommended,
        Outcome::Deferred,
        Outcome::Reverted,
        Outcome::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::RolledBack => "rolled_back",
            Outcome::Failed => "failed",
            Outcome::Denied => "denied",
            Outcome::Recommended => "recommended",
            Outcome::Deferred => "deferred",
            Outcome::Reverted => "reverted",
            Outcome::Skipped => "skipped",
        }
    }

    /// Parses an outcome's name (`rolled_back`, also `rolled-back` or `Rolled_Back`).
    pub fn parse(s: &str) -> Option<Outcome> {
        let s = normalise(s);
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a change was only simulated or really made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    DryRun,
    Real,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::DryRun => "dry_run",
            Mode::Real => "real",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn normalise(s: &str) -> String {
    s.trim().to_ascii_lowercase().replace('-', "_")
}

/// What a caller reports. Everything but `kind` and `message` is optional, and absent fields are
/// left out of the JSON line so that records stay short.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    /// Ties an intent to its outcome (and to a rollback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding_code: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_hash: Option<String>,
    /// The policy rule that allowed or denied the action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<PluginInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// How the fix was verified, in words (`imap login probe succeeded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<String>,
    #[serde(default)]
    pub message: String,
}

impl Event {
    /// An event of `kind` with a message and nothing else; fill in the rest with struct update
    /// syntax or field assignments.
    pub fn new(kind: EventKind, message: impl Into<String>) -> Event {
        Event {
            kind,
            message: message.into(),
            ..Event::default()
        }
    }
}

/// One line of the log: the caller's event plus where, when, who, and the link to its predecessor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// 1 for the first record ever written, then +1 per record, across rotated files.
    pub seq: u64,
    /// RFC 3339, UTC.
    pub time: String,
    pub host: String,
    pub os_user: String,
    #[serde(flatten)]
    pub event: Event,
    /// SHA-256 (hex) of the previous record's line, without its newline; 64 zeros for seq 1.
    pub prev: String,
}

impl Record {
    /// The account the record is about: its e-mail address when known, else its id, else the
    /// account named by its action.
    pub fn account_label(&self) -> Option<String> {
        self.event
            .email
            .clone()
            .or_else(|| self.event.account_id.clone())
            .or_else(|| {
                self.event
                    .action
                    .as_ref()
                    .and_then(|a| a.account())
                    .map(|a| a.0.clone())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailmend_core::{AccountId, EndpointChange, Role, Security};

    #[test]
    fn names_round_trip_through_parse_and_serde() {
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
            assert_eq!(
                serde_json::to_string(&o).unwrap(),
                format!("\"{}\"", o.as_str())
            );
        }
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
            assert_eq!(
                serde_json::to_string(&k).unwrap(),
                format!("\"{}\"", k.as_str())
            );
        }
        assert_eq!(Outcome::parse("Rolled-Back"), Some(Outcome::RolledBack));
        assert_eq!(Outcome::parse("fixed"), None);
        assert_eq!(serde_json::to_string(&Mode::DryRun).unwrap(), "\"dry_run\"");
    }

    #[test]
    fn a_record_round_trips_with_the_event_flattened_and_empty_fields_left_out() {
        let record = Record {
            seq: 7,
            time: "2024-05-01T10:00:00Z".into(),
            host: "laptop".into(),
            os_user: "alice".into(),
            event: Event {
                kind: EventKind::Intent,
                account_id: Some("thunderbird-0123456789ab".into()),
                action: Some(Action::SetEndpoint {
                    account: AccountId("thunderbird-0123456789ab".into()),
                    role: Role::Incoming,
                    change: EndpointChange {
                        port: Some(993),
                        security: Some(Security::Tls),
                        ..Default::default()
                    },
                }),
                before: Some(serde_json::json!({"port": 143})),
                mode: Some(Mode::Real),
                message: "switch to implicit tls".into(),
                ..Event::default()
            },
            prev: "0".repeat(64),
        };
        let line = serde_json::to_string(&record).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["kind"], "intent");
        assert_eq!(v["action"]["kind"], "set_endpoint");
        assert!(v.get("event").is_none(), "event must be flattened: {line}");
        assert!(
            v.get("email").is_none(),
            "absent fields are left out: {line}"
        );
        let back: Record = serde_json::from_str(&line).unwrap();
        assert_eq!(back, record);
    }
}
