//! The verify-or-roll-back loop for one proposed action, crash recovery and rollback by id.

use crate::fsutil::{self, FileMeta};
use crate::journal::{FileSnapshot, FixRecord, FixState, Snapshot, StateDir};
use crate::registry::{self as reg, RegError};
use mailmend_audit::{AuditLog, Event, EventKind, Mode, Outcome};
use mailmend_core::{
    Account, Action, ActionKind, BoxFuture, ClientAdapter, ClientKind, Edit, Endpoint, Finding,
    PluginInfo, Registry, RegistryEdit, Severity,
};
use mailmend_policy::{DecisionContext, Mode as Verdict, Policy};
use serde::Serialize;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use time::OffsetDateTime;

/// What the executor needs from the agent around it: the client adapters, and a way to re-read
/// and re-diagnose an account after a change.
pub trait Host: Send + Sync {
    fn adapter(&self, client: ClientKind) -> Option<&dyn ClientAdapter>;
    /// Re-reads the account from its configuration and re-runs every diagnostic on it.
    fn recheck<'a>(&'a self, account: &'a Account) -> BoxFuture<'a, Recheck>;
    /// Hosts that the account domain's MX, SRV and autoconfig records name, which the policy
    /// accepts as destinations of a host change.
    /// The performer for a non-settings action, when this machine has one.
    fn performer(&self, action: &Action) -> Option<&dyn Performer> {
        let _ = action;
        None
    }
    fn extra_allowed_hosts<'a>(&'a self, account: &'a Account) -> BoxFuture<'a, Vec<String>> {
        let _ = account;
        Box::pin(async { Vec::new() })
    }
    /// The registry that `Edit::Registry` edits change (Windows); `None` where there is none,
    /// and then such an edit fails instead of being applied.
    fn registry(&self) -> Option<&dyn Registry> {
        None
    }
}

/// Makes one kind of system change real (a firewall exception, a DNS cache flush, a ticket
/// renewal) and undoes it. The executor calls it only after the policy allowed the action, with
/// an intent already recorded.
pub trait Performer: Send + Sync {
    /// A stable name, stored in snapshots so that recovery finds the performer again.
    fn name(&self) -> &'static str;
    /// Whether this performer handles the action on this machine.
    fn handles(&self, action: &Action) -> bool;
    /// Records what `apply` will change; changes nothing.
    fn snapshot(&self, action: &Action) -> Result<serde_json::Value, PerformError>;
    /// Makes the change; `fix_id` tags whatever it creates so that undo finds exactly that.
    /// Returns a description of the new state for the audit record.
    fn apply(&self, fix_id: &str, action: &Action) -> Result<serde_json::Value, PerformError>;
    /// Makes the change for one OS user only: `notify_user` shows the message in the session of
    /// the account's owner and nobody else's (on a shared computer, another user must not read
    /// about this account). The executor passes the account's user, taken from the client
    /// adapter, never from the plugin that proposed the action. Performers that change the
    /// machine, not a session, keep this default.
    fn apply_for_user(
        &self,
        fix_id: &str,
        action: &Action,
        os_user: &str,
    ) -> Result<serde_json::Value, PerformError> {
        let _ = os_user;
        self.apply(fix_id, action)
    }
    /// Restores the snapshot. Idempotent: recovery may call it for a change that never happened.
    fn undo(
        &self,
        fix_id: &str,
        action: &Action,
        before: &serde_json::Value,
    ) -> Result<(), PerformError>;
}

/// Why a performer could not act.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PerformError {
    /// The tool or service needed is not on this machine (no nftables, no nscd); the action
    /// becomes a recommendation.
    #[error("not available on this machine: {0}")]
    Unavailable(String),
    /// The tool ran and failed; the message includes what it said.
    #[error("{0}")]
    Failed(String),
}

/// The result of re-checking an account after a change.
#[derive(Debug, Clone)]
pub enum Recheck {
    Checked {
        findings: Vec<Finding>,
    },
    /// The account could no longer be found or read; the change is not trusted.
    Gone {
        reason: String,
    },
}

/// One proposed action with the context the executor decides in.
#[derive(Debug, Clone, Copy)]
pub struct Proposal<'a> {
    pub account: &'a Account,
    /// Every finding the account had before the change, to tell what was healthy.
    pub findings: &'a [Finding],
    /// The finding that proposed the action.
    pub finding: &'a Finding,
    pub action: &'a Action,
    pub plugin: &'a PluginInfo,
}

/// What happened to one proposal; `mailmend fix --json` prints these.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix_id: Option<String>,
    pub account_id: String,
    pub finding_code: String,
    pub action: Action,
    pub outcome: Outcome,
    pub mode: Mode,
    pub rule: String,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<String>,
}

/// Why the executor itself could not work (as opposed to a fix that failed, which is a report).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecutorError {
    /// The state directory or audit log is not writable; wrong `--state-dir` or permissions.
    #[error("state directory {path}: {source}")]
    State {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The audit log cannot be written; the executor refuses to act without an audit trail.
    #[error("audit log: {0}")]
    Audit(#[from] mailmend_audit::AuditError),
    /// `mailmend rollback` was given an id that no fix has.
    #[error("no fix with id {0} (see `mailmend audit show` for fix ids)")]
    UnknownFix(String),
    /// The fix was already rolled back.
    #[error("fix {0} was already rolled back")]
    AlreadyRolledBack(String),
    /// A file changed after the fix; restoring would throw away those later edits.
    #[error("{path} changed after fix {fix_id}; not rolling back over later edits (restore it by hand from the snapshot in the state directory)")]
    ChangedSince { fix_id: String, path: PathBuf },
    /// A registry value changed after the fix; restoring would throw away that later change.
    #[error("registry value {name:?} of {key} changed after fix {fix_id}; not rolling back over later edits")]
    RegistryChangedSince {
        fix_id: String,
        key: String,
        name: String,
    },
    /// Restoring registry values failed: the agent has no registry here (the fix was made on
    /// Windows), or the registry refused the write.
    #[error("cannot restore registry key {key}: {detail}")]
    RegistryRestore { key: String, detail: String },
    /// A performer could not undo its change (the tool failed, or is gone from the machine).
    #[error("cannot undo fix {fix_id}: {detail}")]
    Undo { fix_id: String, detail: String },
    /// Restoring a file failed; the message names the file.
    #[error("cannot restore {path}: {source}")]
    Restore {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// One record of the audit history that the rate limits look at.
#[derive(Debug, Clone)]
struct Applied {
    at: OffsetDateTime,
    account_id: String,
    action: Action,
}

/// The executor. It owns the audit log handle and the state directory.
pub struct Executor {
    state: StateDir,
    audit: AuditLog,
    policy: Policy,
    dry_run: bool,
    history: Vec<Applied>,
}

impl Executor {
    /// Opens the state directory and audit log, and loads the recent history the rate limits use.
    pub fn new(state: StateDir, policy: Policy, dry_run: bool) -> Result<Executor, ExecutorError> {
        let audit_dir = state.audit_dir();
        let audit = AuditLog::open(&audit_dir)?;
        // The rate limits look back a day at most; an hour more covers clock adjustments.
        let since = std::time::SystemTime::now() - std::time::Duration::from_secs(25 * 3600);
        let history = mailmend_audit::read_since(&audit_dir, since)?
            .into_iter()
            .filter(|r| {
                r.event.kind == EventKind::Outcome && r.event.outcome == Some(Outcome::Applied)
            })
            .filter_map(|r| {
                let at =
                    OffsetDateTime::parse(&r.time, &time::format_description::well_known::Rfc3339)
                        .ok()?;
                Some(Applied {
                    at,
                    account_id: r.event.account_id?,
                    action: r.event.action?,
                })
            })
            .collect();
        Ok(Executor {
            state,
            audit,
            policy,
            dry_run,
            history,
        })
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Replaces the policy (a reload); later decisions use the new one.
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    pub fn audit(&mut self) -> &mut AuditLog {
        &mut self.audit
    }

    pub fn state(&self) -> &StateDir {
        &self.state
    }

    fn is_dry_run(&self) -> bool {
        self.dry_run || self.policy.dry_run()
    }

    fn decision_context(&self, account: &Account, action: &Action) -> DecisionContext {
        let now = OffsetDateTime::now_utc();
        let hour = now - time::Duration::HOUR;
        let day = now - time::Duration::DAY;
        let mine = || {
            self.history
                .iter()
                .filter(|a| a.account_id == account.id.0)
                .filter(|a| !matches!(a.action, Action::NotifyUser { .. }))
        };
        DecisionContext {
            extra_allowed_hosts: Vec::new(),
            fixes_in_last_hour: mine().filter(|a| a.at >= hour).count() as u32,
            recurrences: mine()
                .filter(|a| a.at >= day && a.action == *action)
                .count() as u32,
        }
    }

    fn base_event(&self, kind: EventKind, p: &Proposal<'_>) -> Event {
        Event {
            kind,
            account_id: Some(p.account.id.0.clone()),
            email: p.account.email.clone(),
            client: Some(p.account.client.as_str().to_string()),
            finding_code: Some(p.finding.code.clone()),
            evidence: p.finding.evidence.clone(),
            policy_hash: Some(self.policy.hash().to_string()),
            plugin: Some(p.plugin.clone()),
            action: Some(p.action.clone()),
            mode: Some(if self.is_dry_run() {
                Mode::DryRun
            } else {
                Mode::Real
            }),
            ..Event::default()
        }
    }

    /// Decides one proposal and, when the policy allows it, applies and verifies it.
    pub async fn handle(
        &mut self,
        host: &dyn Host,
        p: Proposal<'_>,
    ) -> Result<Report, ExecutorError> {
        let mut ctx = self.decision_context(p.account, p.action);
        if p.action.kinds().contains(&ActionKind::SetHost) {
            ctx.extra_allowed_hosts = host.extra_allowed_hosts(p.account).await;
        }
        let decision = self.policy.decide(p.action, Some(p.account), &ctx);
        let (before, after) = endpoint_values(p.account, p.action);
        let mut event = self.base_event(EventKind::Outcome, &p);
        event.rule = Some(decision.rule.clone());
        event.before = before;
        event.after = after;
        let mut report = Report {
            fix_id: None,
            account_id: p.account.id.0.clone(),
            finding_code: p.finding.code.clone(),
            action: p.action.clone(),
            outcome: Outcome::Skipped,
            mode: event.mode.unwrap_or(Mode::Real),
            rule: decision.rule.clone(),
            reason: decision.reason.clone(),
            verification: None,
        };

        let outcome = match decision.verdict {
            Verdict::Deny => Some((Outcome::Denied, decision.reason.clone())),
            Verdict::Recommend => Some((
                Outcome::Recommended,
                format!("recommended, not applied: {}", decision.reason),
            )),
            Verdict::Auto if self.is_dry_run() => Some((
                Outcome::Recommended,
                "dry run: the policy would apply this".to_string(),
            )),
            Verdict::Auto => None,
        };
        if let Some((outcome, message)) = outcome {
            report.outcome = outcome;
            report.reason = message.clone();
            event.outcome = Some(outcome);
            event.message = message;
            self.audit.append(event)?;
            return Ok(report);
        }

        let (outcome, message, verification, fix_id) = self.apply_verified(host, &p).await?;
        report.outcome = outcome;
        report.reason = message.clone();
        report.verification = verification.clone();
        report.fix_id = fix_id.clone();
        event.outcome = Some(outcome);
        event.message = message;
        event.verification = verification;
        event.fix_id = fix_id;
        self.audit.append(event)?;
        if outcome == Outcome::Applied {
            let now = OffsetDateTime::now_utc();
            // The service runs for months: keep only what the rate limits can still count.
            self.history.retain(|a| a.at >= now - time::Duration::DAY);
            self.history.push(Applied {
                at: now,
                account_id: p.account.id.0.clone(),
                action: p.action.clone(),
            });
        }
        Ok(report)
    }

    /// Applies an approved action. Returns outcome, message, verification and fix id.
    async fn apply_verified(
        &mut self,
        host: &dyn Host,
        p: &Proposal<'_>,
    ) -> Result<(Outcome, String, Option<String>, Option<String>), ExecutorError> {
        match p.action {
            Action::SetEndpoint { role, change, .. } => {
                let Some(adapter) = host.adapter(p.account.client) else {
                    return Ok((
                        Outcome::Failed,
                        format!("no adapter for {} on this system", p.account.client),
                        None,
                        None,
                    ));
                };
                if adapter.is_running(p.account) {
                    return Ok((
                        Outcome::Deferred,
                        format!(
                            "{} is running; the change waits until it exits, so that it does not overwrite it",
                            p.account.client
                        ),
                        None,
                        None,
                    ));
                }
                let edits = match adapter.plan(p.account, *role, change) {
                    Ok(e) => e,
                    Err(e) => {
                        return Ok((Outcome::Failed, format!("cannot plan: {e}"), None, None))
                    }
                };
                let files = match snapshot_files(&edits) {
                    Ok(f) => f,
                    Err(e) => {
                        return Ok((Outcome::Failed, format!("cannot snapshot: {e}"), None, None))
                    }
                };
                let registry_edits = reg::planned(&edits);
                if !registry_edits.is_empty() {
                    if !files.is_empty() {
                        return Ok((
                            Outcome::Failed,
                            "cannot plan: the adapter mixed file and registry edits in one plan"
                                .to_string(),
                            None,
                            None,
                        ));
                    }
                    return self.apply_registry(host, p, registry_edits).await;
                }
                if files.is_empty() {
                    return Ok((
                        Outcome::Skipped,
                        "already set: nothing to change".to_string(),
                        None,
                        None,
                    ));
                }
                self.apply_files(host, p, files).await
            }
            Action::NotifyUser {
                problem, message, ..
            } => {
                let day = OffsetDateTime::now_utc() - time::Duration::DAY;
                let already = self.history.iter().any(|a| {
                    a.at >= day
                        && a.account_id == p.account.id.0
                        && matches!(&a.action, Action::NotifyUser { problem: q, .. } if q == problem)
                });
                if already {
                    return Ok((
                        Outcome::Skipped,
                        "the user was already told about this problem today".to_string(),
                        None,
                        None,
                    ));
                }
                // The desktop notification is best effort: without a user session (a server, the
                // login screen, a service with no console user) the message stays where it always
                // goes, the audit log and `check`'s output, and the outcome says which happened.
                let how = match host.performer(p.action) {
                    Some(performer) => {
                        match performer.apply_for_user("", p.action, &p.account.os_user) {
                            Ok(_) => "on the desktop and in the audit log".to_string(),
                            Err(e) => format!("in the audit log and check output only ({e})"),
                        }
                    }
                    None => "in the audit log and check output".to_string(),
                };
                Ok((
                    Outcome::Applied,
                    format!("user notified {how}: {message}"),
                    None,
                    None,
                ))
            }
            Action::FlushDns { .. }
            | Action::RenewKerberos { .. }
            | Action::AddFirewallException { .. } => match host.performer(p.action) {
                Some(performer) => self.apply_performed(host, p, performer).await,
                None => Ok((
                    Outcome::Recommended,
                    format!(
                        "nothing on this machine can perform {}; recorded as a recommendation",
                        p.action.kinds().first().map(|k| k.as_str()).unwrap_or("it")
                    ),
                    None,
                    None,
                )),
            },
        }
    }

    /// Writes the intent, lets the performer apply, re-checks, and undoes when not healthier.
    async fn apply_performed(
        &mut self,
        host: &dyn Host,
        p: &Proposal<'_>,
        performer: &dyn Performer,
    ) -> Result<(Outcome, String, Option<String>, Option<String>), ExecutorError> {
        let before = match performer.snapshot(p.action) {
            Ok(b) => b,
            Err(PerformError::Unavailable(why)) => {
                return Ok((
                    Outcome::Recommended,
                    format!("cannot perform here: {why}"),
                    None,
                    None,
                ))
            }
            Err(e) => return Ok((Outcome::Failed, format!("cannot snapshot: {e}"), None, None)),
        };
        let fix_id = new_fix_id();
        let rec = self.fix_record(
            &fix_id,
            p,
            Snapshot::Performed {
                performer: performer.name().to_string(),
                before: before.clone(),
                after: None,
            },
        );
        self.write_verify_or_restore(
            host,
            p,
            rec,
            || {
                performer
                    .apply(&fix_id, p.action)
                    .map(Some)
                    .map_err(|e| e.to_string())
            },
            || {
                performer
                    .undo(&fix_id, p.action, &before)
                    .map_err(|e| e.to_string())
            },
        )
        .await
    }

    /// Verify or roll back, the same for every kind of change: the intent made durable, the
    /// write, the re-check of the account, then keep (finishing the record, with what `write`
    /// says the new state is) or restore. Nothing is written before the intent is recorded.
    async fn write_verify_or_restore(
        &mut self,
        host: &dyn Host,
        p: &Proposal<'_>,
        mut rec: FixRecord,
        write: impl FnOnce() -> Result<Option<serde_json::Value>, String>,
        restore: impl Fn() -> Result<(), String>,
    ) -> Result<(Outcome, String, Option<String>, Option<String>), ExecutorError> {
        let fix_id = rec.fix_id.clone();
        self.record_intent(&rec, p)?;
        let after = match write() {
            Ok(after) => after,
            Err(e) => {
                let undo = restore();
                self.discard(&fix_id)?;
                let msg = match undo {
                    Ok(()) => format!("apply failed and was undone: {e}"),
                    Err(u) => format!("apply failed: {e}; undo also failed: {u}"),
                };
                return Ok((Outcome::Failed, msg, None, Some(fix_id)));
            }
        };
        let (ok, verification) = match host.recheck(p.account).await {
            Recheck::Checked { findings } => verify(p.findings, p.finding, &findings),
            Recheck::Gone { reason } => (
                false,
                format!("account unreadable after the change: {reason}"),
            ),
        };
        if ok {
            if let (Some(after), Snapshot::Performed { after: slot, .. }) =
                (after, &mut rec.snapshot)
            {
                *slot = Some(after);
            }
            rec.state = FixState::Applied;
            self.finish(&rec)?;
            return Ok((
                Outcome::Applied,
                format!("{} (verified)", p.action.describe()),
                Some(verification),
                Some(fix_id),
            ));
        }
        let undo = restore();
        self.discard(&fix_id)?;
        match undo {
            Ok(()) => Ok((
                Outcome::RolledBack,
                "the account was not healthier after the change, so it was undone".to_string(),
                Some(verification),
                Some(fix_id),
            )),
            Err(e) => Ok((
                Outcome::Failed,
                format!("verification failed and the undo failed too: {e}"),
                Some(verification),
                Some(fix_id),
            )),
        }
    }

    fn fix_record(&self, fix_id: &str, p: &Proposal<'_>, snapshot: Snapshot) -> FixRecord {
        FixRecord {
            fix_id: fix_id.to_string(),
            time: now_rfc3339(),
            account_id: p.account.id.0.clone(),
            email: p.account.email.clone(),
            client: p.account.client.as_str().to_string(),
            finding_code: p.finding.code.clone(),
            action: p.action.clone(),
            snapshot,
            state: FixState::Intended,
        }
    }

    /// Makes the intent durable in the state directory and the audit log; nothing may be
    /// changed before this returns.
    fn record_intent(&mut self, rec: &FixRecord, p: &Proposal<'_>) -> Result<(), ExecutorError> {
        self.state
            .write_intent(rec)
            .map_err(|e| self.state_error(e))?;
        let mut intent = self.base_event(EventKind::Intent, p);
        intent.fix_id = Some(rec.fix_id.clone());
        intent.message = format!("about to {}", p.action.describe());
        self.audit.append(intent)?;
        Ok(())
    }

    fn finish(&self, rec: &FixRecord) -> Result<(), ExecutorError> {
        self.state.finish(rec).map_err(|e| self.state_error(e))
    }

    async fn apply_files(
        &mut self,
        host: &dyn Host,
        p: &Proposal<'_>,
        files: Vec<FileSnapshot>,
    ) -> Result<(Outcome, String, Option<String>, Option<String>), ExecutorError> {
        let rec = self.fix_record(
            &new_fix_id(),
            p,
            Snapshot::Files {
                files: files.clone(),
            },
        );
        self.write_verify_or_restore(
            host,
            p,
            rec,
            || {
                write_after(&files)
                    .map(|()| None)
                    .map_err(|e| e.to_string())
            },
            || restore_files(&files).map_err(|e| e.to_string()),
        )
        .await
    }

    /// `apply_files` for registry values (written only over the planned values).
    async fn apply_registry(
        &mut self,
        host: &dyn Host,
        p: &Proposal<'_>,
        edits: Vec<RegistryEdit>,
    ) -> Result<(Outcome, String, Option<String>, Option<String>), ExecutorError> {
        let Some(registry) = host.registry() else {
            return Ok((
                Outcome::Failed,
                "the plan changes the registry, and this agent has no registry to write"
                    .to_string(),
                None,
                None,
            ));
        };
        let rec = self.fix_record(
            &new_fix_id(),
            p,
            Snapshot::Registry {
                edits: edits.clone(),
            },
        );
        self.write_verify_or_restore(
            host,
            p,
            rec,
            || {
                reg::write_after(registry, &edits)
                    .map(|()| None)
                    .map_err(|e| e.to_string())
            },
            || reg::restore(registry, &edits).map_err(|e| e.to_string()),
        )
        .await
    }

    /// A state-directory failure, naming the directory.
    fn state_error(&self, source: io::Error) -> ExecutorError {
        ExecutorError::State {
            path: self.state.root().to_path_buf(),
            source,
        }
    }

    fn discard(&self, fix_id: &str) -> Result<(), ExecutorError> {
        self.state
            .discard_intent(fix_id)
            .map_err(|e| self.state_error(e))
    }

    /// Reverts every fix an earlier agent left unfinished (killed between intent and outcome).
    pub fn recover(&mut self, host: &dyn Host) -> Result<Vec<Report>, ExecutorError> {
        let unfinished = self.state.unfinished().map_err(|e| self.state_error(e))?;
        let mut reports = Vec::new();
        for item in unfinished {
            let rec = match item {
                Ok(r) => r,
                Err((path, msg)) => {
                    self.audit.append(Event {
                        kind: EventKind::Recovery,
                        outcome: Some(Outcome::Failed),
                        message: format!(
                            "unreadable intent {}: {msg}; left in place for an admin",
                            path.display()
                        ),
                        ..Event::default()
                    })?;
                    continue;
                }
            };
            let (outcome, message) = match &rec.snapshot {
                Snapshot::Files { files } => match restore_files(files) {
                    Ok(()) => (
                        Outcome::Reverted,
                        "an unfinished fix from an interrupted run was reverted".to_string(),
                    ),
                    Err(e) => (
                        Outcome::Failed,
                        format!("could not revert an unfinished fix: {e}"),
                    ),
                },
                Snapshot::Nothing { reason } => (Outcome::Reverted, reason.clone()),
                Snapshot::Registry { edits } => match host.registry() {
                    Some(registry) => match reg::restore(registry, edits) {
                        Ok(()) => (
                            Outcome::Reverted,
                            "an unfinished fix from an interrupted run was reverted".to_string(),
                        ),
                        Err(e) => (
                            Outcome::Failed,
                            format!("could not revert an unfinished fix: {e}"),
                        ),
                    },
                    None => (
                        Outcome::Failed,
                        "could not revert an unfinished fix: it changed the registry, and this \
                         agent has no registry"
                            .to_string(),
                    ),
                },
                Snapshot::Performed {
                    performer, before, ..
                } => match undo_performed(host, performer, &rec, before) {
                    Ok(()) => (
                        Outcome::Reverted,
                        "an unfinished fix from an interrupted run was reverted".to_string(),
                    ),
                    Err(e) => (
                        Outcome::Failed,
                        format!("could not revert an unfinished fix: {e}"),
                    ),
                },
            };
            self.audit.append(Event {
                kind: EventKind::Recovery,
                fix_id: Some(rec.fix_id.clone()),
                account_id: Some(rec.account_id.clone()),
                email: rec.email.clone(),
                client: Some(rec.client.clone()),
                finding_code: Some(rec.finding_code.clone()),
                action: Some(rec.action.clone()),
                policy_hash: Some(self.policy.hash().to_string()),
                mode: Some(Mode::Real),
                outcome: Some(outcome),
                message: message.clone(),
                ..Event::default()
            })?;
            if outcome == Outcome::Reverted {
                self.discard(&rec.fix_id)?;
            }
            reports.push(Report {
                fix_id: Some(rec.fix_id.clone()),
                account_id: rec.account_id.clone(),
                finding_code: rec.finding_code.clone(),
                action: rec.action.clone(),
                outcome,
                mode: Mode::Real,
                rule: "recovery".to_string(),
                reason: message,
                verification: None,
            });
        }
        Ok(reports)
    }

    /// Restores the snapshot of a past fix by id, refusing when the files changed since.
    pub fn rollback(&mut self, host: &dyn Host, fix_id: &str) -> Result<Report, ExecutorError> {
        let io_err = |e| self.state_error(e);
        let mut rec = self
            .state
            .fix(fix_id)
            .map_err(io_err)?
            .ok_or_else(|| ExecutorError::UnknownFix(fix_id.to_string()))?;
        if rec.state == FixState::RolledBack {
            return Err(ExecutorError::AlreadyRolledBack(fix_id.to_string()));
        }
        if let Snapshot::Files { files } = &rec.snapshot {
            for f in files {
                let current = fs::read(&f.path).ok();
                let after = f.after_bytes().map_err(|source| ExecutorError::Restore {
                    path: f.path.clone(),
                    source,
                })?;
                let before = f.before_bytes().map_err(|source| ExecutorError::Restore {
                    path: f.path.clone(),
                    source,
                })?;
                if current.as_deref() != Some(&after[..]) && current.as_deref() != Some(&before[..])
                {
                    return Err(ExecutorError::ChangedSince {
                        fix_id: fix_id.to_string(),
                        path: f.path.clone(),
                    });
                }
            }
            restore_files(files).map_err(|e| match e {
                RestoreError::Io { path, source } => ExecutorError::Restore { path, source },
                RestoreError::Changed { path } => ExecutorError::ChangedSince {
                    fix_id: fix_id.to_string(),
                    path,
                },
            })?;
        }
        if let Snapshot::Registry { edits } = &rec.snapshot {
            rollback_registry(host, fix_id, edits)?;
        }
        if let Snapshot::Performed {
            performer, before, ..
        } = &rec.snapshot
        {
            undo_performed(host, performer, &rec, before).map_err(|e| ExecutorError::Undo {
                fix_id: fix_id.to_string(),
                detail: e,
            })?;
        }
        rec.state = FixState::RolledBack;
        self.state
            .update_fix(&rec)
            .map_err(|e| self.state_error(e))?;
        let message = format!("fix {fix_id} rolled back on request");
        self.audit.append(Event {
            kind: EventKind::Rollback,
            fix_id: Some(fix_id.to_string()),
            account_id: Some(rec.account_id.clone()),
            email: rec.email.clone(),
            client: Some(rec.client.clone()),
            finding_code: Some(rec.finding_code.clone()),
            action: Some(rec.action.clone()),
            policy_hash: Some(self.policy.hash().to_string()),
            mode: Some(Mode::Real),
            outcome: Some(Outcome::Reverted),
            message: message.clone(),
            ..Event::default()
        })?;
        Ok(Report {
            fix_id: Some(fix_id.to_string()),
            account_id: rec.account_id,
            finding_code: rec.finding_code,
            action: rec.action,
            outcome: Outcome::Reverted,
            mode: Mode::Real,
            rule: "rollback".to_string(),
            reason: message,
            verification: None,
        })
    }
}

/// Restores the registry values of a past fix, refusing when any changed since.
fn rollback_registry(
    host: &dyn Host,
    fix_id: &str,
    edits: &[RegistryEdit],
) -> Result<(), ExecutorError> {
    let key = edits.first().map(|e| e.key.to_string()).unwrap_or_default();
    let registry = host
        .registry()
        .ok_or_else(|| ExecutorError::RegistryRestore {
            key,
            detail: "this agent has no registry".to_string(),
        })?;
    let to_error = |e: RegError| {
        let (key, name) = e.key_and_name();
        match e {
            RegError::Changed { .. } => ExecutorError::RegistryChangedSince {
                fix_id: fix_id.to_string(),
                key,
                name,
            },
            RegError::Registry { .. } => ExecutorError::RegistryRestore {
                key,
                detail: e.to_string(),
            },
        }
    };
    reg::check_unchanged(registry, edits).map_err(to_error)?;
    reg::restore(registry, edits).map_err(to_error)
}

/// Finds the performer a snapshot names and lets it undo the fix.
fn undo_performed(
    host: &dyn Host,
    performer: &str,
    rec: &FixRecord,
    before: &serde_json::Value,
) -> Result<(), String> {
    let p = host
        .performer(&rec.action)
        .filter(|p| p.name() == performer)
        .ok_or_else(|| format!("no performer {performer} on this machine"))?;
    p.undo(&rec.fix_id, &rec.action, before)
        .map_err(|e| e.to_string())
}

/// Keeps a change only when the finding it was for is gone and no problem appeared that was not
/// there before. Returns the verdict and a sentence for the audit record.
pub(crate) fn verify(before: &[Finding], fixed: &Finding, after: &[Finding]) -> (bool, String) {
    let still = after
        .iter()
        .any(|f| f.code == fixed.code && f.role == fixed.role);
    let new: Vec<&Finding> = after
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .filter(|f| !before.iter().any(|b| b.problem_key() == f.problem_key()))
        .collect();
    if still {
        (
            false,
            format!("{} is still found after the change", fixed.code),
        )
    } else if !new.is_empty() {
        let codes: Vec<&str> = new.iter().map(|f| f.code.as_str()).collect();
        (
            false,
            format!(
                "{} is gone but the change caused {}",
                fixed.code,
                codes.join(", ")
            ),
        )
    } else {
        (
            true,
            format!("{} is gone and nothing else broke", fixed.code),
        )
    }
}

fn endpoint_values(
    account: &Account,
    action: &Action,
) -> (Option<serde_json::Value>, Option<serde_json::Value>) {
    let Action::SetEndpoint { role, change, .. } = action else {
        return (None, None);
    };
    let Some(current) = account.endpoint(*role) else {
        return (None, None);
    };
    let mut after: Endpoint = current.clone();
    if let Some(h) = &change.host {
        after.host = h.clone();
    }
    if let Some(p) = change.port {
        after.port = p;
    }
    if let Some(s) = change.security {
        after.security = s;
    }
    if let Some(a) = &change.auth {
        after.auth = a.clone();
    }
    (
        serde_json::to_value(current).ok(),
        serde_json::to_value(&after).ok(),
    )
}

fn snapshot_files(edits: &[Edit]) -> io::Result<Vec<FileSnapshot>> {
    let mut out = Vec::new();
    for edit in edits {
        match edit {
            Edit::File(f) if f.before != f.after => {
                let meta = fsutil::meta_of(&f.path)?;
                out.push(FileSnapshot::new(
                    f.path.clone(),
                    &f.before,
                    &f.after,
                    Some(meta),
                ));
            }
            Edit::File(_) => {}
            // Registry edits have their own snapshot (`registry::planned`).
            Edit::Registry(_) => {}
            other => {
                return Err(io::Error::other(format!(
                    "this build cannot snapshot a {other:?} edit"
                )))
            }
        }
    }
    Ok(out)
}

/// Writes every file's "after" content, each only if it still holds the "before" content the
/// plan was made from (someone may have edited it in between).
fn write_after(files: &[FileSnapshot]) -> io::Result<()> {
    for f in files {
        let before = f.before_bytes()?;
        let after = f.after_bytes()?;
        let current = fs::read(&f.path)?;
        if current != before {
            return Err(io::Error::other(format!(
                "{} changed since the fix was planned",
                f.path.display()
            )));
        }
        fsutil::atomic_write(&f.path, &after, f.meta)?;
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
enum RestoreError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} holds neither the content before nor after the fix; left as it is")]
    Changed { path: PathBuf },
}

/// Writes every file's "before" content back. A file that already holds it is left alone; a file
/// that holds something else was changed by someone else and is not overwritten.
fn restore_files(files: &[FileSnapshot]) -> Result<(), RestoreError> {
    let mut first_err = None;
    for f in files {
        let io_err = |source| RestoreError::Io {
            path: f.path.clone(),
            source,
        };
        let before = f.before_bytes().map_err(io_err)?;
        let after = f.after_bytes().map_err(io_err)?;
        let current = fs::read(&f.path).ok();
        if current.as_deref() == Some(&before[..]) {
            continue;
        }
        if current.as_deref() != Some(&after[..]) {
            first_err.get_or_insert(RestoreError::Changed {
                path: f.path.clone(),
            });
            continue;
        }
        let meta: Option<FileMeta> = f.meta;
        if let Err(e) = fsutil::atomic_write(&f.path, &before, meta) {
            first_err.get_or_insert(io_err(e));
        }
    }
    first_err.map_or(Ok(()), Err)
}

fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A unique, sortable fix id such as `fx-20261122T190102Z-3fa9c1`.
fn new_fix_id() -> String {
    use sha2::{Digest, Sha256};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = OffsetDateTime::now_utc();
    let mut h = Sha256::new();
    h.update(now.unix_timestamp_nanos().to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    format!("fx-{stamp}-{}", hex::encode(&h.finalize()[..3]))
}
