//! Verify-or-roll-back, rollback by id and crash recovery, driven through the public API with a
//! tiny key=value "client" so that only the executor's own logic is under test.

use mailmend_audit::{EventKind, Outcome, VerifyReport};
use mailmend_core::*;
use mailmend_executor::journal::{FileSnapshot, FixRecord, FixState};
use mailmend_executor::{Executor, Host, Proposal, Recheck, Snapshot, StateDir};
use mailmend_policy::Policy;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// A client whose configuration is `port=N` lines; `is_running` is switchable.
struct KvAdapter {
    running: AtomicBool,
}

impl ClientAdapter for KvAdapter {
    fn info(&self) -> PluginInfo {
        PluginInfo::builtin("kv")
    }
    fn client(&self) -> ClientKind {
        ClientKind::Msmtp
    }
    fn discover(&self, _home: &Home) -> Discovery {
        Discovery::default()
    }
    fn config_paths(&self, _home: &Home) -> Vec<PathBuf> {
        Vec::new()
    }
    fn is_running(&self, _account: &Account) -> bool {
        self.running.load(Ordering::SeqCst)
    }
    fn plan(
        &self,
        account: &Account,
        _role: Role,
        change: &EndpointChange,
    ) -> Result<Vec<Edit>, AdapterError> {
        let Location::File { path } = &account.location else {
            unreachable!()
        };
        let before = fs::read(path).map_err(|source| AdapterError::Io {
            path: path.clone(),
            source,
        })?;
        let text = String::from_utf8(before.clone()).unwrap();
        let mut after = String::new();
        for line in text.split_inclusive('\n') {
            match (line.strip_prefix("port="), change.port) {
                (Some(_), Some(p)) => after.push_str(&format!("port={p}\n")),
                _ => after.push_str(line),
            }
        }
        Ok(vec![Edit::File(FileEdit {
            path: path.clone(),
            before,
            after: after.into_bytes(),
        })])
    }
}

/// Re-checks by reading the file: the account is healthy when it says `port=993`, and
/// `breaks_other` makes any change break the outgoing side too.
struct TestHost {
    adapter: KvAdapter,
    breaks_other: bool,
}

impl Host for TestHost {
    fn adapter(&self, _client: ClientKind) -> Option<&dyn ClientAdapter> {
        Some(&self.adapter)
    }
    fn recheck<'a>(&'a self, account: &'a Account) -> BoxFuture<'a, Recheck> {
        Box::pin(async move {
            let Location::File { path } = &account.location else {
                unreachable!()
            };
            let text = fs::read_to_string(path).unwrap();
            let mut findings = Vec::new();
            if !text.contains("port=993") {
                findings.push(wrong_port(account));
            }
            if self.breaks_other {
                findings.push(Finding::new(
                    "network.service_down",
                    Severity::Error,
                    account.id.clone(),
                    Some(Role::Outgoing),
                    "outgoing broke",
                ));
            }
            Recheck::Checked { findings }
        })
    }
}

fn host() -> TestHost {
    TestHost {
        adapter: KvAdapter {
            running: AtomicBool::new(false),
        },
        breaks_other: false,
    }
}

const ORIGINAL: &str = "# my mail\nhost=imap.example.com\nport=143\nsecurity=tls\n";

fn account(path: &Path) -> Account {
    let location = Location::File {
        path: path.to_path_buf(),
    };
    Account {
        id: AccountId::derive(ClientKind::Msmtp, &location, "default"),
        client: ClientKind::Msmtp,
        os_user: "alice".into(),
        email: Some("alice@example.com".into()),
        location,
        key: "default".into(),
        incoming: Some(Endpoint {
            protocol: Protocol::Imap,
            host: "imap.example.com".into(),
            port: 143,
            security: Security::Tls,
            auth: AuthMethod::PasswordCleartext,
            username: Some("alice".into()),
        }),
        outgoing: None,
    }
}

fn wrong_port(account: &Account) -> Finding {
    Finding::new(
        "settings.wrong_port",
        Severity::Error,
        account.id.clone(),
        Some(Role::Incoming),
        "wrong port",
    )
}

fn set_port(account: &Account, port: u16, security: Option<Security>) -> Action {
    Action::SetEndpoint {
        account: account.id.clone(),
        role: Role::Incoming,
        change: EndpointChange {
            port: Some(port),
            security,
            ..Default::default()
        },
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    cfg: PathBuf,
    state: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("msmtprc");
    fs::write(&cfg, ORIGINAL).unwrap();
    let state = dir.path().join("state");
    Fixture {
        cfg,
        state,
        _dir: dir,
    }
}

fn policy(text: &str) -> Policy {
    Policy::parse(text, "test.toml").unwrap()
}

fn executor(f: &Fixture, p: Policy, dry_run: bool) -> Executor {
    Executor::new(StateDir::open(&f.state).unwrap(), p, dry_run).unwrap()
}

async fn handle(
    ex: &mut Executor,
    host: &dyn Host,
    acc: &Account,
    action: &Action,
) -> mailmend_executor::Report {
    let finding = wrong_port(acc);
    let findings = vec![finding.clone()];
    let plugin = PluginInfo::builtin("test");
    ex.handle(
        host,
        Proposal {
            account: acc,
            findings: &findings,
            finding: &finding,
            action,
            plugin: &plugin,
        },
    )
    .await
    .unwrap()
}

fn audit_outcomes(state: &Path) -> Vec<(EventKind, Option<Outcome>)> {
    mailmend_audit::read_all(&state.join("audit"))
        .unwrap()
        .into_iter()
        .map(|r| (r.event.kind, r.event.outcome))
        .collect()
}

#[tokio::test]
async fn a_verified_fix_is_kept_and_audited_with_intent_then_outcome() {
    let f = fixture();
    let acc = account(&f.cfg);
    let mut ex = executor(&f, Policy::embedded_default(), false);
    let r = handle(&mut ex, &host(), &acc, &set_port(&acc, 993, None)).await;
    assert_eq!(r.outcome, Outcome::Applied, "{r:?}");
    assert_eq!(
        fs::read_to_string(&f.cfg).unwrap(),
        "# my mail\nhost=imap.example.com\nport=993\nsecurity=tls\n"
    );
    assert_eq!(
        audit_outcomes(&f.state),
        vec![
            (EventKind::Intent, None),
            (EventKind::Outcome, Some(Outcome::Applied))
        ]
    );
    let id = r.fix_id.unwrap();
    let rec = StateDir::open(&f.state).unwrap().fix(&id).unwrap().unwrap();
    assert_eq!(rec.state, FixState::Applied);
    assert!(matches!(
        mailmend_audit::verify(&f.state.join("audit")).unwrap(),
        VerifyReport::Intact { records: 2 }
    ));
}

#[tokio::test]
async fn a_fix_that_does_not_remove_the_finding_is_rolled_back_byte_for_byte() {
    let f = fixture();
    let acc = account(&f.cfg);
    let mut ex = executor(&f, Policy::embedded_default(), false);
    // 995 does not make the re-check healthy, so the finding stays.
    let r = handle(&mut ex, &host(), &acc, &set_port(&acc, 995, None)).await;
    assert_eq!(r.outcome, Outcome::RolledBack, "{r:?}");
    assert!(r.verification.unwrap().contains("still found"));
    assert_eq!(fs::read_to_string(&f.cfg).unwrap(), ORIGINAL);
    let intents = fs::read_dir(f.state.join("intents")).unwrap().count();
    assert_eq!(intents, 0, "no intent may be left after a rollback");
}

#[tokio::test]
async fn a_fix_that_breaks_a_healthy_endpoint_is_rolled_back() {
    let f = fixture();
    let acc = account(&f.cfg);
    let mut ex = executor(&f, Policy::embedded_default(), false);
    let h = TestHost {
        breaks_other: true,
        ..host()
    };
    let r = handle(&mut ex, &h, &acc, &set_port(&acc, 993, None)).await;
    assert_eq!(r.outcome, Outcome::RolledBack, "{r:?}");
    assert!(r.verification.unwrap().contains("network.service_down"));
    assert_eq!(fs::read_to_string(&f.cfg).unwrap(), ORIGINAL);
}

#[tokio::test]
async fn rollback_by_id_restores_the_file_and_refuses_twice() {
    let f = fixture();
    let acc = account(&f.cfg);
    let mut ex = executor(&f, Policy::embedded_default(), false);
    let r = handle(&mut ex, &host(), &acc, &set_port(&acc, 993, None)).await;
    let id = r.fix_id.unwrap();
    let back = ex.rollback(&host(), &id).unwrap();
    assert_eq!(back.outcome, Outcome::Reverted);
    assert_eq!(fs::read_to_string(&f.cfg).unwrap(), ORIGINAL);
    let again = ex.rollback(&host(), &id).unwrap_err().to_string();
    assert!(again.contains("already rolled back"), "{again}");
    let unknown = ex.rollback(&host(), "fx-nope").unwrap_err().to_string();
    assert!(unknown.contains("no fix with id"), "{unknown}");
    assert!(matches!(
        mailmend_audit::verify(&f.state.join("audit")).unwrap(),
        VerifyReport::Intact { .. }
    ));
}

#[tokio::test]
async fn rollback_does_not_overwrite_later_edits_by_the_user() {
    let f = fixture();
    let acc = account(&f.cfg);
    let mut ex = executor(&f, Policy::embedded_default(), false);
    let id = handle(&mut ex, &host(), &acc, &set_port(&acc, 993, None))
        .await
        .fix_id
        .unwrap();
    fs::write(&f.cfg, "user edited this later\n").unwrap();
    let err = ex.rollback(&host(), &id).unwrap_err().to_string();
    assert!(err.contains("changed after fix"), "{err}");
    assert_eq!(
        fs::read_to_string(&f.cfg).unwrap(),
        "user edited this later\n"
    );
}

#[tokio::test]
async fn an_unfinished_intent_from_a_killed_agent_is_reverted_at_the_next_start() {
    let f = fixture();
    let acc = account(&f.cfg);
    // Simulate an agent killed after it recorded its intent and wrote the new bytes, but before
    // it verified: the intent is on disk and the file holds the "after" content.
    let after = ORIGINAL.replace("port=143", "port=993");
    let state = StateDir::open(&f.state).unwrap();
    let rec = FixRecord {
        fix_id: "fx-20260101T000000Z-abcdef".into(),
        time: "2026-01-01T00:00:00Z".into(),
        account_id: acc.id.0.clone(),
        email: acc.email.clone(),
        client: "msmtp".into(),
        finding_code: "settings.wrong_port".into(),
        action: set_port(&acc, 993, None),
        snapshot: Snapshot::Files {
            files: vec![FileSnapshot::new(
                f.cfg.clone(),
                ORIGINAL.as_bytes(),
                after.as_bytes(),
                None,
            )],
        },
        state: FixState::Intended,
    };
    state.write_intent(&rec).unwrap();
    fs::write(&f.cfg, &after).unwrap();

    let mut ex = executor(&f, Policy::embedded_default(), false);
    let reports = ex.recover(&host()).unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].outcome, Outcome::Reverted);
    assert_eq!(fs::read_to_string(&f.cfg).unwrap(), ORIGINAL);
    assert_eq!(
        audit_outcomes(&f.state),
        vec![(EventKind::Recovery, Some(Outcome::Reverted))]
    );
    // A second start finds nothing left to do.
    assert!(ex.recover(&host()).unwrap().is_empty());
}

#[tokio::test]
async fn an_intent_killed_before_any_write_is_recovered_without_touching_the_file() {
    let f = fixture();
    let acc = account(&f.cfg);
    let state = StateDir::open(&f.state).unwrap();
    let rec = FixRecord {
        fix_id: "fx-20260101T000000Z-000001".into(),
        time: "2026-01-01T00:00:00Z".into(),
        account_id: acc.id.0.clone(),
        email: None,
        client: "msmtp".into(),
        finding_code: "settings.wrong_port".into(),
        action: set_port(&acc, 993, None),
        snapshot: Snapshot::Files {
            files: vec![FileSnapshot::new(
                f.cfg.clone(),
                ORIGINAL.as_bytes(),
                b"port=993\n",
                None,
            )],
        },
        state: FixState::Intended,
    };
    state.write_intent(&rec).unwrap();
    let mut ex = executor(&f, Policy::embedded_default(), false);
    assert_eq!(ex.recover(&host()).unwrap()[0].outcome, Outcome::Reverted);
    assert_eq!(fs::read_to_string(&f.cfg).unwrap(), ORIGINAL);
}

#[tokio::test]
async fn recommend_deny_and_dry_run_change_nothing() {
    for (text, dry, want) in [
        (
            "[actions]\nset_port = \"recommend\"\n",
            false,
            Outcome::Recommended,
        ),
        ("[actions]\nset_port = \"deny\"\n", false, Outcome::Denied),
        ("", true, Outcome::Recommended),
        ("dry_run = true\n", false, Outcome::Recommended),
    ] {
        let f = fixture();
        let acc = account(&f.cfg);
        let mut ex = executor(&f, policy(text), dry);
        let r = handle(&mut ex, &host(), &acc, &set_port(&acc, 993, None)).await;
        assert_eq!(r.outcome, want, "policy {text:?} dry_run {dry}: {r:?}");
        assert_eq!(fs::read_to_string(&f.cfg).unwrap(), ORIGINAL);
        assert_eq!(
            audit_outcomes(&f.state),
            vec![(EventKind::Outcome, Some(want))]
        );
    }
}

#[tokio::test]
async fn a_downgrade_to_plaintext_is_denied_even_when_the_policy_says_auto() {
    let f = fixture();
    let acc = account(&f.cfg);
    let mut ex = executor(
        &f,
        policy("[actions]\nset_port = \"auto\"\nset_security = \"auto\"\n"),
        false,
    );
    let r = handle(
        &mut ex,
        &host(),
        &acc,
        &set_port(&acc, 993, Some(Security::None)),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Denied);
    assert_eq!(r.rule, "builtin.no_downgrade");
    assert_eq!(fs::read_to_string(&f.cfg).unwrap(), ORIGINAL);
}

#[tokio::test]
async fn a_running_client_defers_the_write() {
    let f = fixture();
    let acc = account(&f.cfg);
    let mut ex = executor(&f, Policy::embedded_default(), false);
    let h = host();
    h.adapter.running.store(true, Ordering::SeqCst);
    let r = handle(&mut ex, &h, &acc, &set_port(&acc, 993, None)).await;
    assert_eq!(r.outcome, Outcome::Deferred);
    assert_eq!(fs::read_to_string(&f.cfg).unwrap(), ORIGINAL);
    // Once the client exits, the same proposal goes through.
    h.adapter.running.store(false, Ordering::SeqCst);
    let r = handle(&mut ex, &h, &acc, &set_port(&acc, 993, None)).await;
    assert_eq!(r.outcome, Outcome::Applied);
}

#[tokio::test]
async fn applying_the_same_fix_twice_changes_nothing_the_second_time() {
    let f = fixture();
    let acc = account(&f.cfg);
    let mut ex = executor(&f, Policy::embedded_default(), false);
    assert_eq!(
        handle(&mut ex, &host(), &acc, &set_port(&acc, 993, None))
            .await
            .outcome,
        Outcome::Applied
    );
    let after_first = fs::read(&f.cfg).unwrap();
    let r = handle(&mut ex, &host(), &acc, &set_port(&acc, 993, None)).await;
    assert_eq!(r.outcome, Outcome::Skipped, "{r:?}");
    assert_eq!(fs::read(&f.cfg).unwrap(), after_first);
}

#[tokio::test]
async fn the_rate_limit_stops_a_fix_that_keeps_recurring() {
    let f = fixture();
    let acc = account(&f.cfg);
    let mut ex = executor(
        &f,
        policy("[limits]\nfixes_per_account_per_hour = 2\nquarantine_after = 5\n"),
        false,
    );
    for _ in 0..2 {
        fs::write(&f.cfg, ORIGINAL).unwrap();
        let r = handle(&mut ex, &host(), &acc, &set_port(&acc, 993, None)).await;
        assert_eq!(r.outcome, Outcome::Applied);
    }
    fs::write(&f.cfg, ORIGINAL).unwrap();
    let r = handle(&mut ex, &host(), &acc, &set_port(&acc, 993, None)).await;
    assert_eq!(r.outcome, Outcome::Denied, "{r:?}");
    assert_eq!(fs::read_to_string(&f.cfg).unwrap(), ORIGINAL);
    // The history survives a restart of the agent: a new executor still knows.
    drop(ex);
    let mut ex = executor(
        &f,
        policy("[limits]\nfixes_per_account_per_hour = 2\nquarantine_after = 5\n"),
        false,
    );
    let r = handle(&mut ex, &host(), &acc, &set_port(&acc, 993, None)).await;
    assert_eq!(r.outcome, Outcome::Denied);
}

#[tokio::test]
async fn the_user_is_notified_at_most_once_a_day_per_problem() {
    let f = fixture();
    let acc = account(&f.cfg);
    let mut ex = executor(&f, Policy::embedded_default(), false);
    let notify = Action::NotifyUser {
        account: acc.id.clone(),
        problem: "tls.certificate_expired".into(),
        message: "the server's certificate expired".into(),
    };
    assert_eq!(
        handle(&mut ex, &host(), &acc, &notify).await.outcome,
        Outcome::Applied
    );
    assert_eq!(
        handle(&mut ex, &host(), &acc, &notify).await.outcome,
        Outcome::Skipped
    );
}

/// A desktop that shows notifications, or has no user session when `session` is false. It
/// records whom each message was shown to: `*` when the executor asked for everyone's sessions.
struct Desktop {
    session: bool,
    shown: std::sync::Mutex<Vec<String>>,
}

impl Desktop {
    fn show(
        &self,
        action: &Action,
        to: &str,
    ) -> Result<serde_json::Value, mailmend_executor::PerformError> {
        if !self.session {
            return Err(mailmend_executor::PerformError::Unavailable(
                "no user session".into(),
            ));
        }
        let Action::NotifyUser { message, .. } = action else {
            unreachable!("handles() admits only notify_user")
        };
        self.shown.lock().unwrap().push(format!("{to}: {message}"));
        Ok(serde_json::Value::Null)
    }
}

impl mailmend_executor::Performer for Desktop {
    fn name(&self) -> &'static str {
        "notify_user"
    }
    fn handles(&self, action: &Action) -> bool {
        matches!(action, Action::NotifyUser { .. })
    }
    fn snapshot(&self, _: &Action) -> Result<serde_json::Value, mailmend_executor::PerformError> {
        Ok(serde_json::Value::Null)
    }
    fn apply(
        &self,
        _fix_id: &str,
        action: &Action,
    ) -> Result<serde_json::Value, mailmend_executor::PerformError> {
        self.show(action, "*")
    }
    fn apply_for_user(
        &self,
        _fix_id: &str,
        action: &Action,
        os_user: &str,
    ) -> Result<serde_json::Value, mailmend_executor::PerformError> {
        self.show(action, os_user)
    }
    fn undo(
        &self,
        _: &str,
        _: &Action,
        _: &serde_json::Value,
    ) -> Result<(), mailmend_executor::PerformError> {
        Ok(())
    }
}

struct DesktopHost {
    inner: TestHost,
    desktop: Desktop,
}

impl Host for DesktopHost {
    fn adapter(&self, client: ClientKind) -> Option<&dyn ClientAdapter> {
        self.inner.adapter(client)
    }
    fn performer(&self, action: &Action) -> Option<&dyn mailmend_executor::Performer> {
        use mailmend_executor::Performer as _;
        self.desktop.handles(action).then_some(&self.desktop as _)
    }
    fn recheck<'a>(&'a self, account: &'a Account) -> BoxFuture<'a, Recheck> {
        self.inner.recheck(account)
    }
}

#[tokio::test]
async fn a_notification_reaches_the_desktop_once_and_falls_back_without_a_session() {
    let f = fixture();
    let acc = account(&f.cfg);
    let mut ex = executor(&f, Policy::embedded_default(), false);
    let notify = |problem: &str| Action::NotifyUser {
        account: acc.id.clone(),
        problem: problem.into(),
        message: format!("{problem} needs you"),
    };
    let with_session = DesktopHost {
        inner: host(),
        desktop: Desktop {
            session: true,
            shown: std::sync::Mutex::new(Vec::new()),
        },
    };
    let first = handle(&mut ex, &with_session, &acc, &notify("auth.failed")).await;
    assert_eq!(first.outcome, Outcome::Applied);
    assert!(first.reason.contains("on the desktop"), "{}", first.reason);
    let again = handle(&mut ex, &with_session, &acc, &notify("auth.failed")).await;
    assert_eq!(again.outcome, Outcome::Skipped);
    assert_eq!(
        *with_session.desktop.shown.lock().unwrap(),
        vec!["alice: auth.failed needs you".to_string()],
        "shown once, not again the same day, and only to the account's own user (regression: \
         every logged-in user was told about any account)"
    );

    let no_session = DesktopHost {
        inner: host(),
        desktop: Desktop {
            session: false,
            shown: std::sync::Mutex::new(Vec::new()),
        },
    };
    let fallback = handle(
        &mut ex,
        &no_session,
        &acc,
        &notify("tls.certificate_expired"),
    )
    .await;
    assert_eq!(fallback.outcome, Outcome::Applied);
    assert!(
        fallback.reason.contains("audit log and check output only")
            && fallback.reason.contains("no user session"),
        "{}",
        fallback.reason
    );
}

/// A performer whose "system" is an in-memory set of rule tags, so the executor's handling of
/// performed changes (intent, verify, undo, recovery, rollback) is tested on its own.
struct TagPerformer {
    rules: std::sync::Mutex<Vec<String>>,
}

impl mailmend_executor::Performer for TagPerformer {
    fn name(&self) -> &'static str {
        "tags"
    }
    fn handles(&self, action: &Action) -> bool {
        matches!(action, Action::AddFirewallException { .. })
    }
    fn snapshot(
        &self,
        _action: &Action,
    ) -> Result<serde_json::Value, mailmend_executor::PerformError> {
        Ok(serde_json::json!({ "rules": self.rules.lock().unwrap().len() }))
    }
    fn apply(
        &self,
        fix_id: &str,
        _action: &Action,
    ) -> Result<serde_json::Value, mailmend_executor::PerformError> {
        self.rules.lock().unwrap().push(fix_id.to_string());
        Ok(serde_json::json!({ "added": fix_id }))
    }
    fn undo(
        &self,
        fix_id: &str,
        _action: &Action,
        _before: &serde_json::Value,
    ) -> Result<(), mailmend_executor::PerformError> {
        self.rules.lock().unwrap().retain(|r| r != fix_id);
        Ok(())
    }
}

/// Healthy once any rule exists, like a firewall exception that unblocks the port.
struct FirewallHost {
    performer: TagPerformer,
    heals: bool,
}

impl Host for FirewallHost {
    fn adapter(&self, _client: ClientKind) -> Option<&dyn ClientAdapter> {
        None
    }
    fn performer(&self, action: &Action) -> Option<&dyn mailmend_executor::Performer> {
        use mailmend_executor::Performer as _;
        self.performer
            .handles(action)
            .then_some(&self.performer as _)
    }
    fn recheck<'a>(&'a self, account: &'a Account) -> BoxFuture<'a, Recheck> {
        Box::pin(async move {
            let blocked = !self.heals || self.performer.rules.lock().unwrap().is_empty();
            let findings = if blocked {
                vec![blocked_finding(account)]
            } else {
                vec![]
            };
            Recheck::Checked { findings }
        })
    }
}

fn blocked_finding(account: &Account) -> Finding {
    Finding::new(
        "firewall.blocked_locally",
        Severity::Error,
        account.id.clone(),
        Some(Role::Incoming),
        "blocked",
    )
}

fn exception(account: &Account) -> Action {
    Action::AddFirewallException {
        account: account.id.clone(),
        host: "imap.example.com".into(),
        addresses: vec!["10.0.0.1".parse().unwrap()],
        port: 993,
    }
}

async fn handle_firewall(
    ex: &mut Executor,
    host: &FirewallHost,
    acc: &Account,
) -> mailmend_executor::Report {
    let finding = blocked_finding(acc);
    let findings = vec![finding.clone()];
    let plugin = PluginInfo::builtin("test");
    let action = exception(acc);
    ex.handle(
        host,
        Proposal {
            account: acc,
            findings: &findings,
            finding: &finding,
            action: &action,
            plugin: &plugin,
        },
    )
    .await
    .unwrap()
}

fn firewall_host(heals: bool) -> FirewallHost {
    FirewallHost {
        performer: TagPerformer {
            rules: std::sync::Mutex::new(Vec::new()),
        },
        heals,
    }
}

const ALLOW_FIREWALL: &str = "[actions]\nadd_firewall_exception = \"auto\"\n";

#[tokio::test]
async fn a_performed_change_is_kept_when_verified_and_can_be_rolled_back_by_id() {
    let f = fixture();
    let acc = account(&f.cfg);
    let host = firewall_host(true);
    let mut ex = executor(&f, policy(ALLOW_FIREWALL), false);
    let r = handle_firewall(&mut ex, &host, &acc).await;
    assert_eq!(r.outcome, Outcome::Applied, "{r:?}");
    let id = r.fix_id.unwrap();
    assert_eq!(*host.performer.rules.lock().unwrap(), vec![id.clone()]);
    assert_eq!(ex.rollback(&host, &id).unwrap().outcome, Outcome::Reverted);
    assert!(host.performer.rules.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_performed_change_that_does_not_help_is_undone() {
    let f = fixture();
    let acc = account(&f.cfg);
    let host = firewall_host(false);
    let mut ex = executor(&f, policy(ALLOW_FIREWALL), false);
    let r = handle_firewall(&mut ex, &host, &acc).await;
    assert_eq!(r.outcome, Outcome::RolledBack, "{r:?}");
    assert!(host.performer.rules.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_firewall_exception_is_only_recommended_under_the_default_policy() {
    let f = fixture();
    let acc = account(&f.cfg);
    let host = firewall_host(true);
    let mut ex = executor(&f, Policy::embedded_default(), false);
    let r = handle_firewall(&mut ex, &host, &acc).await;
    assert_eq!(r.outcome, Outcome::Recommended, "{r:?}");
    assert!(host.performer.rules.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_unfinished_performed_change_is_undone_at_the_next_start() {
    let f = fixture();
    let acc = account(&f.cfg);
    let host = firewall_host(true);
    let fix_id = "fx-20260101T000000Z-f1f1f1";
    // The killed agent had recorded its intent and added its rule.
    host.performer
        .rules
        .lock()
        .unwrap()
        .push(fix_id.to_string());
    let state = StateDir::open(&f.state).unwrap();
    state
        .write_intent(&FixRecord {
            fix_id: fix_id.into(),
            time: "2026-01-01T00:00:00Z".into(),
            account_id: acc.id.0.clone(),
            email: None,
            client: "msmtp".into(),
            finding_code: "firewall.blocked_locally".into(),
            action: exception(&acc),
            snapshot: Snapshot::Performed {
                performer: "tags".into(),
                before: serde_json::json!({}),
                after: None,
            },
            state: FixState::Intended,
        })
        .unwrap();
    let mut ex = executor(&f, policy(ALLOW_FIREWALL), false);
    let reports = ex.recover(&host).unwrap();
    assert_eq!(reports[0].outcome, Outcome::Reverted);
    assert!(host.performer.rules.lock().unwrap().is_empty());
}
