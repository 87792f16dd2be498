//! A loaded dynamic plugin seen through the `Diagnostic` trait: probes what its manifest asks
//! for, calls it on its own thread with a time limit, and turns every way it can fail into a
//! finding.
//!
//! Calls into one plugin are serialised (a plugin need not be reentrant); concurrent
//! `diagnose` calls wait their turn, and the time limit bounds each call, not the wait. A call that exceeds the time limit is *abandoned*: its
//! thread cannot be killed and keeps running, so until it returns every further call gives a
//! `plugin.busy` finding instead of piling up more stuck threads. The call runs on a dedicated
//! `std::thread` rather than `tokio::task::spawn_blocking`, because a tokio runtime waits for
//! its blocking tasks when it shuts down, and a plugin stuck forever would then hang the
//! agent's exit.
//!
//! `diagnose` must be polled inside a tokio runtime with the time driver enabled.

use crate::ffi::{Answer, Exports};
use crate::load::Checked;
use mailmend_core::{
    Account, BoxFuture, Diagnostic, Evidence, Finding, PluginInfo, ProbeTarget, Prober, Severity,
};
use mailmend_plugin_sdk::{probe_target, DiagnoseRequest, Manifest, Reply, Request};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{oneshot, Notify, Semaphore};

/// The plugin did not answer within the time limit.
pub const CODE_TIMEOUT: &str = "plugin.timeout";
/// The plugin panicked, reported an error, or answered something the host cannot accept.
pub const CODE_FAILED: &str = "plugin.failed";
/// The plugin is still running an earlier, abandoned call and was not called.
pub const CODE_BUSY: &str = "plugin.busy";

/// The longest plugin message quoted in a finding's evidence.
const MAX_MESSAGE_CHARS: usize = 500;

/// A dynamic plugin adapted to [`Diagnostic`]. Made by [`crate::load_dir`].
pub struct DynamicDiagnostic {
    shared: Arc<Shared>,
}

struct Shared {
    info: PluginInfo,
    manifest: Manifest,
    path: PathBuf,
    exports: Exports,
    call_timeout: Duration,
    /// One permit: held by the thread of the running call until the plugin returns.
    gate: Arc<Semaphore>,
    state: Mutex<CallState>,
    /// Wakes the callers waiting for the gate when the running call is abandoned.
    abandoned: Notify,
}

/// Which call is running and whether the caller gave up on it.
#[derive(Default)]
struct CallState {
    next_id: u64,
    running: Option<u64>,
    abandoned: bool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, CallState> {
        // The state is two plain fields, consistent after any panic, so poisoning is ignored.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn begin(&self) -> u64 {
        let mut state = self.state();
        state.next_id += 1;
        state.running = Some(state.next_id);
        state.abandoned = false;
        state.next_id
    }

    fn end(&self, id: u64) {
        let mut state = self.state();
        if state.running == Some(id) {
            state.running = None;
            state.abandoned = false;
        }
    }

    fn abandon(&self, id: u64) {
        let mut state = self.state();
        if state.running == Some(id) {
            state.abandoned = true;
            self.abandoned.notify_waiters();
        }
    }

    fn is_stuck(&self) -> bool {
        self.state().abandoned
    }
}

impl DynamicDiagnostic {
    pub(crate) fn new(checked: Checked, call_timeout: Duration) -> DynamicDiagnostic {
        let info = PluginInfo {
            name: checked.manifest.name.clone(),
            version: checked.manifest.version.clone(),
            origin: checked.sha256,
        };
        DynamicDiagnostic {
            shared: Arc::new(Shared {
                info,
                manifest: checked.manifest,
                path: checked.path,
                exports: checked.exports,
                call_timeout,
                gate: Arc::new(Semaphore::new(1)),
                state: Mutex::new(CallState::default()),
                abandoned: Notify::new(),
            }),
        }
    }

    /// The manifest the plugin gave at load time.
    pub fn manifest(&self) -> &Manifest {
        &self.shared.manifest
    }

    /// The file the plugin was loaded from (the directory entry, even when it is a link).
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The SHA-256 of the loaded file, lower-case hex; also `info().origin`.
    pub fn sha256(&self) -> &str {
        &self.shared.info.origin
    }

    /// The time limit of one diagnose call.
    pub fn call_timeout(&self) -> Duration {
        self.shared.call_timeout
    }

    /// The probe targets the manifest asks for, for the endpoints this account has.
    fn targets(&self, account: &Account) -> Vec<ProbeTarget> {
        let mut targets: Vec<ProbeTarget> = Vec::new();
        for role in &self.shared.manifest.probes {
            if let Some(endpoint) = account.endpoint(*role) {
                let target = probe_target(endpoint);
                if !targets.contains(&target) {
                    targets.push(target);
                }
            }
        }
        targets
    }

    async fn run(&self, account: &Account, prober: &dyn Prober) -> Vec<Finding> {
        let shared = &self.shared;
        // Created before the check, so that an abandonment right after it still wakes us.
        let abandoned = shared.abandoned.notified();
        if shared.is_stuck() {
            return vec![self.busy(account)];
        }
        let targets = self.targets(account);
        let probes = if targets.is_empty() {
            Vec::new()
        } else {
            prober.probe_all(&targets).await
        };
        let request = Request::Diagnose(DiagnoseRequest {
            account: account.clone(),
            probes,
        });
        let request = match serde_json::to_vec(&request) {
            Ok(request) => request,
            Err(e) => return vec![self.failed(account, format!("cannot encode the request: {e}"))],
        };

        // Wait for the running call (if any) to finish, however long the queue; give up only
        // when that call is abandoned, since then it may never finish.
        let permit = tokio::select! {
            permit = Arc::clone(&shared.gate).acquire_owned() => match permit {
                Ok(permit) => permit,
                // The gate is never closed; treat it like a stuck plugin all the same.
                Err(_) => return vec![self.busy(account)],
            },
            () = abandoned => return vec![self.busy(account)],
        };

        let id = shared.begin();
        let (tx, rx) = oneshot::channel();
        let thread_shared = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name(format!("plugin {}", shared.manifest.name))
            .spawn(move || {
                let answer = thread_shared.exports.call(&request);
                thread_shared.end(id);
                drop(permit);
                // The receiver is gone when the caller abandoned the call; nobody is waiting.
                let _ = tx.send(answer);
            });
        if let Err(e) = spawned {
            shared.end(id);
            return vec![self.failed(account, format!("cannot start a thread for it: {e}"))];
        }

        match tokio::time::timeout(shared.call_timeout, rx).await {
            Ok(Ok(answer)) => self.interpret(account, answer),
            Ok(Err(_)) => vec![self.failed(account, "its call ended without an answer".into())],
            Err(_) => {
                shared.abandon(id);
                tracing::warn!(
                    plugin = %shared.manifest.name,
                    account = %account.id,
                    timeout = ?shared.call_timeout,
                    "dynamic plugin timed out; its thread keeps running and the plugin is \
                     skipped until it returns"
                );
                vec![self.timeout(account)]
            }
        }
    }

    fn interpret(&self, account: &Account, answer: Answer) -> Vec<Finding> {
        let problem = match answer {
            Answer::Ok(bytes) => match serde_json::from_slice::<Reply>(&bytes) {
                Ok(reply) => match self.check_reply(account, &reply.findings) {
                    Ok(()) => return reply.findings,
                    Err(problem) => problem,
                },
                Err(e) => format!("its reply is not valid plugin json: {e}"),
            },
            Answer::Error(message) => format!("it reported an error: {message}"),
            Answer::Panic(message) => message,
            Answer::Broken(problem) => problem,
        };
        vec![self.failed(account, problem)]
    }

    /// A plugin may speak only for itself and only about the account it was asked about.
    fn check_reply(&self, account: &Account, findings: &[Finding]) -> Result<(), String> {
        let prefix = self.shared.manifest.code_prefix();
        for finding in findings {
            if !finding.code.starts_with(&prefix) || finding.code.len() == prefix.len() {
                return Err(format!(
                    "finding code {:?} does not start with {prefix:?}",
                    finding.code
                ));
            }
            if finding.account != account.id {
                return Err(format!(
                    "finding {} is about account {}, not {}",
                    finding.code, finding.account, account.id
                ));
            }
            for action in &finding.proposed {
                if action.account().is_some_and(|a| *a != account.id) {
                    return Err(format!(
                        "finding {} proposes `{}` for another account",
                        finding.code,
                        action.describe()
                    ));
                }
            }
        }
        Ok(())
    }

    fn finding(&self, account: &Account, code: &str, summary: String, result: String) -> Finding {
        let info = &self.shared.info;
        Finding::new(code, Severity::Warning, account.id.clone(), None, summary).with_evidence(
            Evidence::new(
                "plugin",
                format!(
                    "{} {} ({})",
                    info.name,
                    info.version,
                    self.shared.path.display()
                ),
                result,
            ),
        )
    }

    fn timeout(&self, account: &Account) -> Finding {
        let limit = self.shared.call_timeout;
        self.finding(
            account,
            CODE_TIMEOUT,
            format!(
                "The {} plugin did not finish within {limit:?}, so its checks were skipped for \
                 this account",
                self.shared.info.name
            ),
            format!("no answer within {limit:?}"),
        )
    }

    fn busy(&self, account: &Account) -> Finding {
        self.finding(
            account,
            CODE_BUSY,
            format!(
                "The {} plugin is still stuck in an earlier check, so its checks were skipped \
                 for this account",
                self.shared.info.name
            ),
            "an earlier call has not returned".to_string(),
        )
    }

    fn failed(&self, account: &Account, problem: String) -> Finding {
        tracing::warn!(
            plugin = %self.shared.info.name,
            account = %account.id,
            "dynamic plugin failed: {problem}"
        );
        self.finding(
            account,
            CODE_FAILED,
            format!(
                "The {} plugin failed, so its checks were skipped for this account",
                self.shared.info.name
            ),
            truncate(&problem, MAX_MESSAGE_CHARS),
        )
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

impl Diagnostic for DynamicDiagnostic {
    fn info(&self) -> PluginInfo {
        self.shared.info.clone()
    }

    fn diagnose<'a>(
        &'a self,
        account: &'a Account,
        prober: &'a dyn Prober,
    ) -> BoxFuture<'a, Vec<Finding>> {
        Box::pin(self.run(account, prober))
    }
}

impl fmt::Debug for DynamicDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamicDiagnostic")
            .field("name", &self.shared.info.name)
            .field("version", &self.shared.info.version)
            .field("sha256", &self.shared.info.origin)
            .field("path", &self.shared.path)
            .field("call_timeout", &self.shared.call_timeout)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailmend_core::{AccountId, Action, ClientKind, DnsReport, Location, ProbeReport, Role};
    use mailmend_plugin_sdk::{MmBuffer, STATUS_OK};

    /// A plugin whose answer depends on the account's `os_user`, built from plain functions
    /// in this process: the host's checks of replies need no real library.
    unsafe extern "C" fn fake_call(req: *const u8, len: usize, out: *mut MmBuffer) -> i32 {
        let request: Request =
            serde_json::from_slice(unsafe { std::slice::from_raw_parts(req, len) }).unwrap();
        let Request::Diagnose(request) = request else {
            unreachable!("only diagnose exists")
        };
        let id = request.account.id.clone();
        let finding = |code: &str, account: AccountId| {
            Finding::new(code, Severity::Info, account, Some(Role::Incoming), "x")
        };
        let (status, bytes): (i32, Vec<u8>) = match request.account.os_user.as_str() {
            "impostor" => (
                STATUS_OK,
                serde_json::to_vec(&Reply {
                    findings: vec![finding("tls.certificate_expired", id)],
                })
                .unwrap(),
            ),
            "bare-prefix" => (
                STATUS_OK,
                serde_json::to_vec(&Reply {
                    findings: vec![finding("fake.", id)],
                })
                .unwrap(),
            ),
            "other-account" => (
                STATUS_OK,
                serde_json::to_vec(&Reply {
                    findings: vec![finding("fake.x", AccountId("someone-else".into()))],
                })
                .unwrap(),
            ),
            "other-action" => (
                STATUS_OK,
                serde_json::to_vec(&Reply {
                    findings: vec![finding("fake.x", id).proposing(Action::NotifyUser {
                        account: AccountId("someone-else".into()),
                        problem: "fake.x".into(),
                        message: "hi".into(),
                    })],
                })
                .unwrap(),
            ),
            "garbage" => (STATUS_OK, b"{\"findings\": 42}".to_vec()),
            "error" => (1, b"no can do".to_vec()),
            "status7" => (7, Vec::new()),
            _ => (
                STATUS_OK,
                serde_json::to_vec(&Reply {
                    findings: vec![finding("fake.ok", id)],
                })
                .unwrap(),
            ),
        };
        unsafe { out.write(MmBuffer::from_vec(bytes)) };
        status
    }

    unsafe extern "C" fn fake_manifest(_out: *mut MmBuffer) -> i32 {
        unreachable!("the manifest is read at load time only")
    }

    unsafe extern "C" fn fake_free(buf: MmBuffer) {
        drop(unsafe { buf.into_vec() });
    }

    fn fake_plugin() -> DynamicDiagnostic {
        DynamicDiagnostic::new(
            Checked {
                path: "/usr/lib/mailmend/plugins/fake.so".into(),
                sha256: "ab".repeat(32),
                manifest: Manifest::diagnostic("fake", "1.0", &[]),
                exports: Exports {
                    manifest: fake_manifest,
                    call: fake_call,
                    free: fake_free,
                },
            },
            Duration::from_secs(5),
        )
    }

    /// The fake plugin asks for no probes, so this prober is never used.
    struct NoNetwork;
    impl Prober for NoNetwork {
        fn resolve<'a>(&'a self, _: &'a str) -> BoxFuture<'a, DnsReport> {
            unreachable!("no probes were asked for")
        }
        fn probe<'a>(&'a self, _: &'a ProbeTarget) -> BoxFuture<'a, ProbeReport> {
            unreachable!("no probes were asked for")
        }
        fn probe_all<'a>(&'a self, _: &'a [ProbeTarget]) -> BoxFuture<'a, Vec<ProbeReport>> {
            unreachable!("no probes were asked for")
        }
    }

    async fn diagnose_as(os_user: &str) -> Vec<Finding> {
        let account = Account {
            id: AccountId("acc-1".into()),
            client: ClientKind::Mutt,
            os_user: os_user.into(),
            email: None,
            location: Location::File {
                path: "/home/u/.muttrc".into(),
            },
            key: "k".into(),
            incoming: None,
            outgoing: None,
        };
        fake_plugin().diagnose(&account, &NoNetwork).await
    }

    async fn failure_of(os_user: &str) -> String {
        let findings = diagnose_as(os_user).await;
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].code, CODE_FAILED, "{findings:?}");
        assert_eq!(findings[0].account, AccountId("acc-1".into()));
        findings[0].evidence[0].result.clone()
    }

    #[tokio::test]
    async fn a_well_behaved_reply_is_passed_through() {
        let findings = diagnose_as("ann").await;
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].code, "fake.ok");
    }

    #[tokio::test]
    async fn a_plugin_cannot_emit_findings_under_another_plugins_code() {
        let problem = failure_of("impostor").await;
        assert!(problem.contains("tls.certificate_expired"), "{problem}");
        failure_of("bare-prefix").await;
    }

    #[tokio::test]
    async fn a_plugin_cannot_speak_about_or_act_on_another_account() {
        let problem = failure_of("other-account").await;
        assert!(problem.contains("someone-else"), "{problem}");
        let problem = failure_of("other-action").await;
        assert!(problem.contains("another account"), "{problem}");
    }

    #[tokio::test]
    async fn a_reply_that_is_not_the_reply_json_is_a_failure_not_a_crash() {
        let problem = failure_of("garbage").await;
        assert!(
            problem.starts_with("its reply is not valid plugin json"),
            "{problem}"
        );
    }

    #[tokio::test]
    async fn plugin_errors_and_unknown_statuses_become_failures_with_the_message() {
        assert_eq!(failure_of("error").await, "it reported an error: no can do");
        assert_eq!(
            failure_of("status7").await,
            "the plugin returned unknown status 7"
        );
    }

    #[test]
    fn long_plugin_messages_are_cut_on_a_character_boundary() {
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("short", 10), "short");
    }
}
