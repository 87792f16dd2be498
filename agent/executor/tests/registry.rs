//! Registry edits through the executor, exactly as file edits go: intent, write only over the
//! planned values, verify or roll back, crash recovery, rollback by id, idempotence, and a
//! running client deferring the change. The registry is a real `reg export` file (the Outlook
//! adapter's fixture) behind the `.reg`-file store, and the plans come from the real Outlook
//! adapter.

use mailmend_audit::{EventKind, Outcome, VerifyReport};
use mailmend_core::*;
use mailmend_executor::journal::{FixRecord, FixState};
use mailmend_executor::{Executor, ExecutorError, Host, Proposal, Recheck, Snapshot, StateDir};
use mailmend_outlook::{OutlookAdapter, ProcessInfo, RegFileStore, StaticHives, StaticProcesses};
use mailmend_policy::Policy;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const SMTP_KEY: &str = r"HKEY_CURRENT_USER\Software\Microsoft\Office\16.0\Outlook\Profiles\Outlook\9375CFF0413111d3B88A00104B2A6676\00000002";

fn original() -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../plugins/outlook/tests/fixtures/alice-hkcu.reg");
    fs::read(p).unwrap()
}

/// Healthy when the outgoing port is 465; `registry: false` is a host without a registry.
struct RegHost {
    adapter: OutlookAdapter,
    store: Arc<dyn Registry>,
    registry: bool,
}

impl Host for RegHost {
    fn adapter(&self, _client: ClientKind) -> Option<&dyn ClientAdapter> {
        Some(&self.adapter)
    }
    fn registry(&self) -> Option<&dyn Registry> {
        self.registry
            .then_some(self.store.as_ref() as &dyn Registry)
    }
    fn recheck<'a>(&'a self, account: &'a Account) -> BoxFuture<'a, Recheck> {
        Box::pin(async move {
            let d = self.adapter.discover(&home());
            let Some(fresh) = d.accounts.into_iter().find(|a| a.id == account.id) else {
                return Recheck::Gone {
                    reason: "gone".into(),
                };
            };
            let findings = if fresh.outgoing.as_ref().map(|e| e.port) == Some(465) {
                Vec::new()
            } else {
                vec![wrong_port(&fresh)]
            };
            Recheck::Checked { findings }
        })
    }
}

fn home() -> Home {
    Home {
        user: "alice".into(),
        path: PathBuf::from(r"C:\Users\alice"),
        uid: None,
        gid: None,
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    reg: PathBuf,
    state: PathBuf,
    host: RegHost,
}

fn fixture_with(processes: Vec<ProcessInfo>, registry: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let reg = dir.path().join("alice.reg");
    fs::write(&reg, original()).unwrap();
    let store: Arc<dyn Registry> = Arc::new(RegFileStore::open(&reg));
    let hives = StaticHives(vec![("alice".into(), RegPath::new(Hive::CurrentUser, ""))]);
    let adapter = OutlookAdapter::new(store.clone(), Arc::new(hives))
        .with_processes(Arc::new(StaticProcesses(processes)));
    Fixture {
        state: dir.path().join("state"),
        reg,
        host: RegHost {
            adapter,
            store,
            registry,
        },
        _dir: dir,
    }
}

fn fixture() -> Fixture {
    fixture_with(Vec::new(), true)
}

fn account(f: &Fixture) -> Account {
    f.host
        .adapter
        .discover(&home())
        .accounts
        .into_iter()
        .find(|a| a.email.as_deref() == Some("alice@example.com"))
        .unwrap()
}

fn wrong_port(account: &Account) -> Finding {
    Finding::new(
        "settings.wrong_port",
        Severity::Error,
        account.id.clone(),
        Some(Role::Outgoing),
        "wrong port",
    )
}

fn set_port(account: &Account, port: u16) -> Action {
    Action::SetEndpoint {
        account: account.id.clone(),
        role: Role::Outgoing,
        change: EndpointChange {
            port: Some(port),
            ..Default::default()
        },
    }
}

fn executor(f: &Fixture) -> Executor {
    Executor::new(
        StateDir::open(&f.state).unwrap(),
        Policy::embedded_default(),
        false,
    )
    .unwrap()
}

async fn handle(
    ex: &mut Executor,
    host: &dyn Host,
    acc: &Account,
    port: u16,
) -> mailmend_executor::Report {
    let finding = wrong_port(acc);
    let findings = vec![finding.clone()];
    let plugin = PluginInfo::builtin("test");
    let action = set_port(acc, port);
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

fn port_value(f: &Fixture) -> Option<RegValue> {
    f.host
        .store
        .get(&RegPath::parse(SMTP_KEY).unwrap(), "SMTP Port")
        .unwrap()
}

fn intents(f: &Fixture) -> usize {
    fs::read_dir(f.state.join("intents")).unwrap().count()
}

#[tokio::test]
async fn a_verified_registry_fix_is_kept_and_changes_one_line() {
    let f = fixture();
    let acc = account(&f);
    let mut ex = executor(&f);
    let r = handle(&mut ex, &f.host, &acc, 465).await;
    assert_eq!(r.outcome, Outcome::Applied, "{r:?}");
    assert_eq!(port_value(&f), Some(RegValue::Dword(465)));
    let (before, after) = (original(), fs::read(&f.reg).unwrap());
    assert_eq!(before.len(), after.len());
    let differing: Vec<usize> = (0..before.len())
        .filter(|&i| before[i] != after[i])
        .collect();
    assert!(
        differing.len() <= 6 && differing.last().unwrap() - differing[0] < 16,
        "more than the port's digits changed: {differing:?}"
    );
    let rec = StateDir::open(&f.state)
        .unwrap()
        .fix(r.fix_id.as_deref().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(rec.state, FixState::Applied);
    let Snapshot::Registry { edits } = &rec.snapshot else {
        panic!("{:?}", rec.snapshot)
    };
    assert_eq!(edits[0].values[0].before, Some(RegValue::Dword(587)));
    assert_eq!(intents(&f), 0);
    let kinds: Vec<_> = mailmend_audit::read_all(&f.state.join("audit"))
        .unwrap()
        .into_iter()
        .map(|r| (r.event.kind, r.event.outcome))
        .collect();
    assert_eq!(
        kinds,
        [
            (EventKind::Intent, None),
            (EventKind::Outcome, Some(Outcome::Applied))
        ]
    );
}

#[tokio::test]
async fn a_registry_fix_that_does_not_verify_is_rolled_back_byte_for_byte() {
    let f = fixture();
    let acc = account(&f);
    let mut ex = executor(&f);
    let r = handle(&mut ex, &f.host, &acc, 2525).await;
    assert_eq!(r.outcome, Outcome::RolledBack, "{r:?}");
    assert_eq!(fs::read(&f.reg).unwrap(), original());
    assert_eq!(intents(&f), 0);
}

#[tokio::test]
async fn rollback_by_id_restores_and_refuses_over_later_changes() {
    let f = fixture();
    let acc = account(&f);
    let mut ex = executor(&f);
    let id = handle(&mut ex, &f.host, &acc, 465).await.fix_id.unwrap();
    assert_eq!(
        ex.rollback(&f.host, &id).unwrap().outcome,
        Outcome::Reverted
    );
    assert_eq!(fs::read(&f.reg).unwrap(), original());
    assert!(matches!(
        ex.rollback(&f.host, &id),
        Err(ExecutorError::AlreadyRolledBack(_))
    ));

    // Applied again, then the user changes the value: the rollback leaves it alone.
    let id = handle(&mut ex, &f.host, &acc, 465).await.fix_id.unwrap();
    let key = RegPath::parse(SMTP_KEY).unwrap();
    f.host
        .store
        .set(&key, "SMTP Port", &RegValue::Dword(2587))
        .unwrap();
    let err = ex.rollback(&f.host, &id).unwrap_err();
    assert!(
        matches!(&err, ExecutorError::RegistryChangedSince { name, .. } if name == "SMTP Port"),
        "{err}"
    );
    assert_eq!(port_value(&f), Some(RegValue::Dword(2587)));
    assert!(matches!(
        mailmend_audit::verify(&f.state.join("audit")).unwrap(),
        VerifyReport::Intact { .. }
    ));
}

fn intent(acc: &Account, id: &str) -> FixRecord {
    FixRecord {
        fix_id: id.into(),
        time: "2026-01-01T00:00:00Z".into(),
        account_id: acc.id.0.clone(),
        email: acc.email.clone(),
        client: "outlook".into(),
        finding_code: "settings.wrong_port".into(),
        action: set_port(acc, 465),
        snapshot: Snapshot::Registry {
            edits: vec![RegistryEdit {
                key: RegPath::parse(SMTP_KEY).unwrap(),
                values: vec![RegValueEdit {
                    name: "SMTP Port".into(),
                    before: Some(RegValue::Dword(587)),
                    after: Some(RegValue::Dword(465)),
                }],
            }],
        },
        state: FixState::Intended,
    }
}

#[tokio::test]
async fn an_unfinished_registry_intent_is_reverted_at_the_next_start() {
    let f = fixture();
    let acc = account(&f);
    // Killed after writing the new value, before verifying.
    StateDir::open(&f.state)
        .unwrap()
        .write_intent(&intent(&acc, "fx-20260101T000000Z-aaaaaa"))
        .unwrap();
    f.host
        .store
        .set(
            &RegPath::parse(SMTP_KEY).unwrap(),
            "SMTP Port",
            &RegValue::Dword(465),
        )
        .unwrap();
    let mut ex = executor(&f);
    let reports = ex.recover(&f.host).unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].outcome, Outcome::Reverted, "{reports:?}");
    assert_eq!(fs::read(&f.reg).unwrap(), original());
    assert!(ex.recover(&f.host).unwrap().is_empty());

    // Killed before writing anything: recovery changes nothing.
    StateDir::open(&f.state)
        .unwrap()
        .write_intent(&intent(&acc, "fx-20260101T000000Z-bbbbbb"))
        .unwrap();
    assert_eq!(ex.recover(&f.host).unwrap()[0].outcome, Outcome::Reverted);
    assert_eq!(fs::read(&f.reg).unwrap(), original());
}

#[tokio::test]
async fn recovery_without_a_registry_keeps_the_intent_for_later() {
    let f = fixture_with(Vec::new(), false);
    let acc = account(&f);
    StateDir::open(&f.state)
        .unwrap()
        .write_intent(&intent(&acc, "fx-20260101T000000Z-cccccc"))
        .unwrap();
    let mut ex = executor(&f);
    let reports = ex.recover(&f.host).unwrap();
    assert_eq!(reports[0].outcome, Outcome::Failed);
    assert!(
        reports[0].reason.contains("no registry"),
        "{}",
        reports[0].reason
    );
    assert_eq!(intents(&f), 1, "the intent stays until it can be reverted");
}

#[tokio::test]
async fn the_same_registry_fix_twice_changes_nothing_the_second_time() {
    let f = fixture();
    let acc = account(&f);
    let mut ex = executor(&f);
    assert_eq!(
        handle(&mut ex, &f.host, &acc, 465).await.outcome,
        Outcome::Applied
    );
    let after_first = fs::read(&f.reg).unwrap();
    let fresh = account(&f);
    let r = handle(&mut ex, &f.host, &fresh, 465).await;
    assert_eq!(r.outcome, Outcome::Skipped, "{r:?}");
    assert_eq!(fs::read(&f.reg).unwrap(), after_first);
}

#[tokio::test]
async fn a_registry_edit_without_a_registry_fails_clearly() {
    let f = fixture_with(Vec::new(), false);
    let acc = account(&f);
    let mut ex = executor(&f);
    let r = handle(&mut ex, &f.host, &acc, 465).await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert!(r.reason.contains("no registry"), "{}", r.reason);
    assert_eq!(fs::read(&f.reg).unwrap(), original());
}

/// An adapter whose plan was made from a value that is no longer there.
struct StalePlan;

impl ClientAdapter for StalePlan {
    fn info(&self) -> PluginInfo {
        PluginInfo::builtin("stale")
    }
    fn client(&self) -> ClientKind {
        ClientKind::Outlook
    }
    fn discover(&self, _home: &Home) -> Discovery {
        Discovery::default()
    }
    fn config_paths(&self, _home: &Home) -> Vec<PathBuf> {
        Vec::new()
    }
    fn is_running(&self, _account: &Account) -> bool {
        false
    }
    fn plan(&self, _a: &Account, _r: Role, _c: &EndpointChange) -> Result<Vec<Edit>, AdapterError> {
        Ok(vec![Edit::Registry(RegistryEdit {
            key: RegPath::parse(SMTP_KEY).unwrap(),
            values: vec![
                RegValueEdit {
                    name: "SMTP Use Auth".into(),
                    before: Some(RegValue::Dword(1)),
                    after: Some(RegValue::Dword(0)),
                },
                RegValueEdit {
                    name: "SMTP Port".into(),
                    before: Some(RegValue::Dword(25)),
                    after: Some(RegValue::Dword(465)),
                },
            ],
        })])
    }
}

struct StaleHost(RegHost);

impl Host for StaleHost {
    fn adapter(&self, _client: ClientKind) -> Option<&dyn ClientAdapter> {
        Some(&StalePlan)
    }
    fn registry(&self) -> Option<&dyn Registry> {
        self.0.registry()
    }
    fn recheck<'a>(&'a self, account: &'a Account) -> BoxFuture<'a, Recheck> {
        self.0.recheck(account)
    }
}

#[tokio::test]
async fn a_value_changed_since_planning_refuses_the_whole_fix() {
    let f = fixture();
    let acc = account(&f);
    let mut ex = executor(&f);
    let host = StaleHost(f.host);
    let r = handle(&mut ex, &host, &acc, 465).await;
    assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
    assert!(
        r.reason.contains("changed since the fix was planned"),
        "{}",
        r.reason
    );
    // Not even the value that still matched was written.
    assert_eq!(fs::read(&f.reg).unwrap(), original());
}

#[tokio::test]
async fn a_running_outlook_defers_the_registry_write() {
    let outlook = ProcessInfo {
        pid: 4242,
        name: "OUTLOOK.EXE".into(),
        uid: None,
    };
    let f = fixture_with(vec![outlook], true);
    let acc = account(&f);
    let mut ex = executor(&f);
    let r = handle(&mut ex, &f.host, &acc, 465).await;
    assert_eq!(r.outcome, Outcome::Deferred, "{r:?}");
    assert_eq!(fs::read(&f.reg).unwrap(), original());
    // Once Outlook has exited, the same proposal goes through.
    let f2 = Fixture {
        host: RegHost {
            adapter: f
                .host
                .adapter
                .with_processes(Arc::new(StaticProcesses(Vec::new()))),
            store: f.host.store.clone(),
            registry: true,
        },
        ..f
    };
    let r = handle(&mut ex, &f2.host, &acc, 465).await;
    assert_eq!(r.outcome, Outcome::Applied, "{r:?}");
}

/// The same verify-or-roll-back and rollback by id on the real Windows registry (under Wine on
/// Linux), with a scratch key of HKEY_CURRENT_USER as Alice's hive.
#[cfg(windows)]
mod real_registry {
    use super::*;
    use mailmend_outlook::accounts::{wide_binary, ACCOUNT_MANAGER, CLSID_IMAP};
    use mailmend_outlook::WindowsRegistry;

    struct Scratch(RegPath);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = WindowsRegistry.remove_tree(&self.0);
        }
    }

    #[tokio::test]
    async fn a_registry_fix_on_the_real_registry_is_kept_rolled_back_by_id_or_undone() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let root = RegPath::new(
            Hive::CurrentUser,
            &format!(
                r"Software\mailmend-test-exec-{}-{nanos:08x}",
                std::process::id()
            ),
        );
        let _scratch = Scratch(root.clone());
        let key = root.join(&format!(
            r"Software\Microsoft\Office\16.0\Outlook\Profiles\Outlook\{ACCOUNT_MANAGER}\00000002"
        ));
        let reg = WindowsRegistry;
        for (name, value) in [
            ("clsid", RegValue::String(CLSID_IMAP.into())),
            ("Email", wide_binary("alice@example.com")),
            ("IMAP Server", wide_binary("imap.example.com")),
            ("IMAP Port", RegValue::Dword(993)),
            ("IMAP Use SSL", RegValue::Dword(1)),
            ("SMTP Server", wide_binary("smtp.example.com")),
            ("SMTP Port", RegValue::Dword(587)),
            ("SMTP Secure Connection", RegValue::Dword(2)),
        ] {
            reg.set(&key, name, &value).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let host = RegHost {
            adapter: OutlookAdapter::new(
                Arc::new(WindowsRegistry),
                Arc::new(StaticHives(vec![("alice".into(), root.clone())])),
            )
            .with_processes(Arc::new(StaticProcesses(Vec::new()))),
            store: Arc::new(WindowsRegistry),
            registry: true,
        };
        let acc = host.adapter.discover(&home()).accounts.remove(0);
        let mut ex = Executor::new(
            StateDir::open(&dir.path().join("state")).unwrap(),
            Policy::embedded_default(),
            false,
        )
        .unwrap();
        let port = || reg.get(&key, "SMTP Port").unwrap();

        let r = handle(&mut ex, &host, &acc, 2525).await;
        assert_eq!(r.outcome, Outcome::RolledBack, "{r:?}");
        assert_eq!(port(), Some(RegValue::Dword(587)));

        let r = handle(&mut ex, &host, &acc, 465).await;
        assert_eq!(r.outcome, Outcome::Applied, "{r:?}");
        assert_eq!(port(), Some(RegValue::Dword(465)));
        let back = ex.rollback(&host, r.fix_id.as_deref().unwrap()).unwrap();
        assert_eq!(back.outcome, Outcome::Reverted);
        assert_eq!(port(), Some(RegValue::Dword(587)));
    }
}
