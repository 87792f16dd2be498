//! Findings: what a diagnostic concluded about an account, with its evidence and proposed fixes.

use crate::action::Action;
use crate::model::{AccountId, Role};
use serde::{Deserialize, Serialize};
use std::fmt;

/// How much a finding matters to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; mail works.
    Info,
    /// Mail works but something is wrong or will break soon (an expiring ticket).
    Warning,
    /// Mail does not work for this endpoint.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One observation behind a finding: what was probed and what came back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// The probe, e.g. `tcp`, `tls`, `imap.capability`, `dns.system`, `config`.
    pub probe: String,
    /// What was probed, e.g. `imap.example.com:993`.
    pub target: String,
    /// What came back, in words an admin can read (`refused`, `certificate expired 2024-01-01`).
    pub result: String,
}

impl Evidence {
    pub fn new(
        probe: impl Into<String>,
        target: impl Into<String>,
        result: impl Into<String>,
    ) -> Self {
        Evidence {
            probe: probe.into(),
            target: target.into(),
            result: result.into(),
        }
    }
}

/// What a diagnostic concluded about one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    /// A stable dotted code, e.g. `settings.wrong_port`, `tls.certificate_expired`.
    pub code: String,
    pub severity: Severity,
    pub account: AccountId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// One sentence a helpdesk person understands.
    pub summary: String,
    #[serde(default)]
    pub evidence: Vec<Evidence>,
    /// Fixes the diagnostic proposes; the policy decides which, if any, are applied.
    #[serde(default)]
    pub proposed: Vec<Action>,
}

impl Finding {
    pub fn new(
        code: impl Into<String>,
        severity: Severity,
        account: AccountId,
        role: Option<Role>,
        summary: impl Into<String>,
    ) -> Self {
        Finding {
            code: code.into(),
            severity,
            account,
            role,
            summary: summary.into(),
            evidence: Vec::new(),
            proposed: Vec::new(),
        }
    }

    pub fn with_evidence(mut self, e: Evidence) -> Self {
        self.evidence.push(e);
        self
    }

    pub fn proposing(mut self, a: Action) -> Self {
        self.proposed.push(a);
        self
    }

    /// The key that identifies "the same problem" across runs: code, account and role.
    pub fn problem_key(&self) -> String {
        format!(
            "{}/{}/{}",
            self.account,
            self.role.map(Role::as_str).unwrap_or("-"),
            self.code
        )
    }
}
