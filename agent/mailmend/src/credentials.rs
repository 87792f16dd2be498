//! Lockout safety for credential checks: the gate every login passes through, and the ledger in
//! the state directory that remembers each attempt.
//!
//! A login to `role` of an account is attempted only when all of these hold, checked in this
//! order: the policy's `[credentials] source` is not `none`; the endpoint logs in with a
//! password over an encrypted connection and works as configured (its probe is healthy); the
//! client stores the password in its settings file (commands are never run); the ledger can be
//! read and written; and the ledger allows it.
//!
//! The ledger counts attempts per *server account*: protocol, host and user name, which is what
//! a server's lockout counts, so two client accounts that log in as the same user to the same
//! server (an msmtp alias account, the same mailbox in two clients) share their attempts.
//! For each server account and credential:
//!
//! - never again after a refusal of that credential (rejected, locked, expired, app password
//!   required): the remembered answer is reported instead, until the password in the client's
//!   settings changes;
//! - at most one attempt per `min_interval_secs` (a changed password is tried at the next check);
//! - the attempt is written to the ledger (fsynced) *before* the password is sent, so a crash
//!   mid-login still counts it.
//!
//! The ledger (`credentials.json`, mode 0600, replaced atomically) identifies a credential only
//! by HMAC-SHA256 under a random per-machine key (`credentials.key`, mode 0600), so it holds no
//! password and no hash that could be checked against a guess without that key. Neither the
//! fingerprint nor the key is ever logged.
//!
//! The decisions ([`decide`], [`begin`], [`finish`], [`fingerprint`]) are pure; the file and
//! network work is in [`Gate::try_login`].

use mailmend_core::{
    Account, AuthMethod, ClientAdapter, LoginOutcome, LoginReport, LoginRequest, NotAttempted,
    ProbeReport, Role, SenderCheck, TlsOutcome,
};
use mailmend_policy::{CredentialSource, Policy};
use mailmend_probe::RealProber;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The ledger's file name in the state directory.
pub const LEDGER_FILE: &str = "credentials.json";
/// The fingerprint key's file name in the state directory.
pub const KEY_FILE: &str = "credentials.key";
/// The lock that keeps two mailmend processes from checking credentials at once.
pub const LOCK_FILE: &str = "credentials.lock";

const LEDGER_VERSION: u32 = 1;

/// What the ledger remembers of the last attempt with one credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// When the attempt started, in seconds since the Unix epoch.
    pub attempted_at: i64,
    /// The server's answer; `None` while the attempt runs, or when the agent died during it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<LoginOutcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mechanism: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_reply: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<SenderCheck>,
}

impl Entry {
    fn blocks_retry(&self) -> bool {
        self.outcome
            .as_ref()
            .is_some_and(LoginOutcome::blocks_retry)
    }
}

/// Every server account's attempts: by server account (`imap/ann@imap.example.com`), then by
/// credential fingerprint (HMAC-SHA256, lower-case hex), the last attempt with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ledger {
    pub version: u32,
    #[serde(default)]
    pub servers: BTreeMap<String, BTreeMap<String, Entry>>,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger {
            version: LEDGER_VERSION,
            servers: BTreeMap::new(),
        }
    }
}

/// How many credentials one server account remembers; beyond it the oldest that never got a
/// refusal is forgotten first.
const MAX_CREDENTIALS: usize = 16;

/// The ledger key of a server account: protocol, user name and host, lower-cased.
pub fn server_key(protocol: mailmend_core::Protocol, username: &str, host: &str) -> String {
    format!(
        "{}/{}@{}",
        protocol,
        username.to_lowercase(),
        host.trim_end_matches('.').to_ascii_lowercase()
    )
}

/// What the ledger says about an attempt now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Try the login.
    Attempt,
    /// Report this earlier answer instead of trying again.
    Remembered(Entry),
    /// The same credential was tried too recently; nothing to report.
    RateLimited { last: i64, next: i64 },
}

/// The ledger's rule for server account `key` with credential `fingerprint` at time `now`.
pub fn decide(
    ledger: &Ledger,
    key: &str,
    fingerprint: &str,
    now: i64,
    interval: Duration,
) -> Decision {
    let Some(entry) = ledger.servers.get(key).and_then(|c| c.get(fingerprint)) else {
        // Never tried, or the user changed the password: checked at once.
        return Decision::Attempt;
    };
    if entry.blocks_retry() {
        return Decision::Remembered(entry.clone());
    }
    let interval = i64::try_from(interval.as_secs()).unwrap_or(i64::MAX);
    let next = entry.attempted_at.saturating_add(interval);
    if now >= next {
        return Decision::Attempt;
    }
    let worth_repeating = match &entry.outcome {
        // A pending attempt (the agent died during it) still counts, but says nothing.
        None | Some(LoginOutcome::NotAttempted { .. }) => false,
        Some(LoginOutcome::Accepted) => {
            matches!(entry.sender, Some(SenderCheck::Rejected { .. }))
        }
        Some(_) => true,
    };
    if worth_repeating {
        Decision::Remembered(entry.clone())
    } else {
        Decision::RateLimited {
            last: entry.attempted_at,
            next,
        }
    }
}

/// Records that an attempt starts now; returns the entry it replaces, for [`finish`].
pub fn begin(ledger: &mut Ledger, key: &str, fingerprint: &str, now: i64) -> Option<Entry> {
    let credentials = ledger.servers.entry(key.to_string()).or_default();
    let previous = credentials.insert(
        fingerprint.to_string(),
        Entry {
            attempted_at: now,
            outcome: None,
            mechanism: None,
            server_reply: None,
            alert: None,
            sender: None,
        },
    );
    while credentials.len() > MAX_CREDENTIALS {
        // Refused credentials are kept longest: forgetting one could allow its retry.
        let oldest = credentials
            .iter()
            .filter(|(f, _)| f.as_str() != fingerprint)
            .min_by_key(|(_, e)| (e.blocks_retry(), e.attempted_at))
            .map(|(f, _)| f.clone());
        match oldest {
            Some(f) => credentials.remove(&f),
            None => break,
        };
    }
    previous
}

/// Records the answer of the attempt [`begin`] started. When the credential was not sent after
/// all (the connection failed first), the previous entry comes back: no attempt was made.
pub fn finish(
    ledger: &mut Ledger,
    key: &str,
    fingerprint: &str,
    previous: Option<Entry>,
    report: &LoginReport,
) {
    let credentials = ledger.servers.entry(key.to_string()).or_default();
    if !report.outcome.attempted() {
        match previous {
            Some(p) => credentials.insert(fingerprint.to_string(), p),
            None => credentials.remove(fingerprint),
        };
        if credentials.is_empty() {
            ledger.servers.remove(key);
        }
        return;
    }
    if let Some(e) = credentials.get_mut(fingerprint) {
        e.outcome = Some(report.outcome.clone());
        e.mechanism.clone_from(&report.mechanism);
        e.server_reply.clone_from(&report.server_reply);
        e.alert.clone_from(&report.alert);
        e.sender.clone_from(&report.sender);
    }
}

/// The report of a remembered answer, for the diagnostic to show again.
pub fn remembered(entry: &Entry, target: mailmend_core::ProbeTarget) -> LoginReport {
    LoginReport {
        target,
        outcome: entry
            .outcome
            .clone()
            .unwrap_or(LoginOutcome::TemporaryFailure),
        mechanism: entry.mechanism.clone(),
        server_reply: entry.server_reply.clone(),
        alert: entry.alert.clone(),
        sender: entry.sender.clone(),
        remembered_from: Some(rfc3339(entry.attempted_at)),
        elapsed_ms: 0,
    }
}

/// HMAC-SHA256 (RFC 2104) of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = zeroize::Zeroizing::new([0u8; BLOCK]);
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner);
    outer.finalize().into()
}

/// The fingerprint of a credential for one server account: the account key and the password,
/// each length-prefixed so that no two different inputs run together.
pub fn fingerprint(key: &[u8], server: &str, secret: &[u8]) -> String {
    let mut message = zeroize::Zeroizing::new(Vec::new());
    for part in [server.as_bytes(), secret] {
        message.extend_from_slice(&(part.len() as u64).to_be_bytes());
        message.extend_from_slice(part);
    }
    hex::encode(hmac_sha256(key, &message))
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Whether an endpoint with this method logs in with a password.
fn password_method(auth: &AuthMethod) -> bool {
    matches!(
        auth,
        AuthMethod::PasswordCleartext | AuthMethod::PasswordEncrypted | AuthMethod::Any
    )
}

/// The gate in front of every login: policy, endpoint health, the client's stored password and
/// the ledger, in that order.
#[derive(Debug)]
pub struct Gate {
    source: CredentialSource,
    interval: Duration,
    check_sender: bool,
    state_dir: Option<PathBuf>,
    /// One login at a time in this process, so that the ledger's read-decide-write is atomic.
    busy: tokio::sync::Mutex<()>,
}

impl Gate {
    pub fn new(policy: &Policy) -> Gate {
        Gate {
            source: policy.credential_source(),
            interval: policy.credential_min_interval(),
            check_sender: policy.credential_check_sender(),
            state_dir: None,
            busy: tokio::sync::Mutex::new(()),
        }
    }

    /// Keeps the ledger in `dir`; without one, no login is ever attempted.
    pub fn set_state_dir(&mut self, dir: &Path) {
        self.state_dir = Some(dir.to_path_buf());
    }

    /// Logs in once to `role` of `account` when every rule allows it (see the module
    /// documentation); `probe` is the endpoint's probe of this diagnosis.
    pub async fn try_login(
        &self,
        adapter: Option<&dyn ClientAdapter>,
        prober: &RealProber,
        probe: &ProbeReport,
        account: &Account,
        role: Role,
    ) -> LoginReport {
        let target = probe.target.clone();
        let refuse = |reason| LoginReport::not_attempted(target.clone(), reason);
        let Some(endpoint) = account.endpoint(role) else {
            return refuse(NotAttempted::Unsupported);
        };
        if self.source == CredentialSource::None {
            return refuse(NotAttempted::Disabled);
        }
        if !password_method(&endpoint.auth) {
            return refuse(NotAttempted::NotPassword);
        }
        if !endpoint.security.is_encrypted() {
            return refuse(NotAttempted::NotEncrypted);
        }
        let tls_ok = matches!(probe.tls, Some(TlsOutcome::Established { .. }));
        if !probe.is_healthy() || !tls_ok {
            return refuse(NotAttempted::EndpointUnhealthy);
        }
        let Some(username) = endpoint.username.clone().filter(|u| !u.is_empty()) else {
            return refuse(NotAttempted::NoUsername);
        };
        let Some(state_dir) = &self.state_dir else {
            return refuse(NotAttempted::LedgerUnavailable {
                detail: "no state directory".into(),
            });
        };
        let Some(secret) = adapter.and_then(|a| a.credential(account, role)) else {
            return refuse(NotAttempted::NoCredential);
        };
        let _one_at_a_time = self.busy.lock().await;
        let _lock = match store::lock(state_dir) {
            Ok(Some(lock)) => lock,
            Ok(None) => return refuse(NotAttempted::Busy),
            Err(e) => {
                return refuse(NotAttempted::LedgerUnavailable {
                    detail: e.to_string(),
                })
            }
        };
        let loaded = store::key(state_dir).and_then(|k| Ok((k, store::load(state_dir)?)));
        let (fp_key, mut ledger) = match loaded {
            Ok(loaded) => loaded,
            Err(e) => {
                return refuse(NotAttempted::LedgerUnavailable {
                    detail: e.to_string(),
                })
            }
        };
        let entry_key = server_key(endpoint.protocol, &username, &endpoint.host);
        let fp = fingerprint(&fp_key, &entry_key, secret.expose());
        let now = now_unix();
        match decide(&ledger, &entry_key, &fp, now, self.interval) {
            Decision::Remembered(entry) => {
                tracing::debug!(account = %account.id, %role, "login answer remembered, not retried");
                return remembered(&entry, target);
            }
            Decision::RateLimited { last, next } => {
                return refuse(NotAttempted::RateLimited {
                    last_attempt: rfc3339(last),
                    next_allowed: rfc3339(next),
                })
            }
            Decision::Attempt => {}
        }
        let previous = begin(&mut ledger, &entry_key, &fp, now);
        // The attempt is on disk before the password leaves the machine.
        if let Err(e) = store::save(state_dir, &ledger) {
            return refuse(NotAttempted::LedgerUnavailable {
                detail: e.to_string(),
            });
        }
        let request = LoginRequest {
            username,
            secret,
            sender: account.email.clone(),
        };
        let report = prober.login(&target, &request, self.check_sender).await;
        drop(request);
        finish(&mut ledger, &entry_key, &fp, previous, &report);
        if let Err(e) = store::save(state_dir, &ledger) {
            // The pending entry stays: the attempt still counts towards the interval.
            tracing::warn!(error = %e, "cannot record the answer of a login");
        }
        tracing::info!(account = %account.id, %role, outcome = report.outcome.as_str(), "login checked");
        report
    }
}

/// The ledger's files.
mod store {
    use super::{Ledger, KEY_FILE, LEDGER_FILE, LOCK_FILE};
    use mailmend_executor::fsutil::{atomic_write, FileMeta};
    use std::io;
    use std::path::Path;

    fn private_meta() -> FileMeta {
        #[cfg(unix)]
        {
            FileMeta {
                mode: 0o600,
                uid: nix::unistd::geteuid().as_raw(),
                gid: nix::unistd::getegid().as_raw(),
            }
        }
        #[cfg(not(unix))]
        {
            FileMeta {
                mode: 0o600,
                uid: 0,
                gid: 0,
            }
        }
    }

    fn invalid(what: &str, e: impl std::fmt::Display) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, format!("{what}: {e}"))
    }

    /// The fingerprint key, made (32 random bytes, mode 0600) on first use.
    pub fn key(dir: &Path) -> io::Result<zeroize::Zeroizing<Vec<u8>>> {
        let path = dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let key = zeroize::Zeroizing::new(
                    hex::decode(text.trim()).map_err(|e| invalid(KEY_FILE, e))?,
                );
                if key.len() != 32 {
                    return Err(invalid(KEY_FILE, "not 32 bytes"));
                }
                Ok(key)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut key = zeroize::Zeroizing::new(vec![0u8; 32]);
                getrandom::getrandom(&mut key).map_err(|e| invalid("random key", e))?;
                let text = zeroize::Zeroizing::new(hex::encode(&*key));
                atomic_write(&path, text.as_bytes(), Some(private_meta()))?;
                Ok(key)
            }
            Err(e) => Err(e),
        }
    }

    pub fn load(dir: &Path) -> io::Result<Ledger> {
        match std::fs::read(dir.join(LEDGER_FILE)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| invalid(LEDGER_FILE, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Ledger::default()),
            Err(e) => Err(e),
        }
    }

    pub fn save(dir: &Path, ledger: &Ledger) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(ledger).map_err(|e| invalid(LEDGER_FILE, e))?;
        atomic_write(&dir.join(LEDGER_FILE), &bytes, Some(private_meta()))
    }

    /// An exclusive lock on the ledger across processes; `None` when another process holds it.
    #[cfg(unix)]
    pub fn lock(dir: &Path) -> io::Result<Option<nix::fcntl::Flock<std::fs::File>>> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(dir.join(LOCK_FILE))?;
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Some(lock)),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, e)) => Err(io::Error::from(e)),
        }
    }

    /// Windows: a byte-range lock as for the agent's instance lock; the system releases it
    /// when the handle closes, also after a crash. Without it, a `mailmend check` started by an
    /// admin while the service runs could read the ledger before the service's attempt is
    /// written, and log in a second time.
    #[cfg(windows)]
    pub fn lock(dir: &Path) -> io::Result<Option<std::fs::File>> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(dir.join(LOCK_FILE))?;
        Ok(crate::service::try_lock_range(&file)?.then_some(file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailmend_core::{ProbeTarget, Protocol, Security};

    const DAY: Duration = Duration::from_secs(86_400);

    fn target() -> ProbeTarget {
        ProbeTarget {
            protocol: Protocol::Smtp,
            host: "smtp.example.com".into(),
            port: 587,
            security: Security::StartTls,
        }
    }

    fn answered(outcome: LoginOutcome) -> LoginReport {
        LoginReport {
            target: target(),
            outcome,
            mechanism: Some("PLAIN".into()),
            server_reply: Some("535 5.7.8 Error: authentication failed".into()),
            alert: None,
            sender: None,
            remembered_from: None,
            elapsed_ms: 5,
        }
    }

    /// One attempt at `now` with `fp`, answered with `outcome`.
    fn attempt(ledger: &mut Ledger, fp: &str, now: i64, outcome: LoginOutcome) {
        let prev = begin(ledger, "k", fp, now);
        finish(ledger, "k", fp, prev, &answered(outcome));
    }

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block is hashed first.
        let mac = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            hex::encode(mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn fingerprints_depend_on_key_server_account_and_password_and_hide_them() {
        let server = server_key(Protocol::Smtp, "Ann@Example.com", "SMTP.example.com.");
        assert_eq!(server, "smtp/ann@example.com@smtp.example.com");
        let fp = fingerprint(b"k1", &server, b"pw-canary");
        assert_eq!(fp.len(), 64);
        assert!(!fp.contains("pw-canary") && !fp.contains("ann"));
        assert_eq!(fp, fingerprint(b"k1", &server, b"pw-canary"));
        assert_ne!(fp, fingerprint(b"k2", &server, b"pw-canary"));
        assert_ne!(
            fp,
            fingerprint(b"k1", "imap/ann@example.com@smtp.example.com", b"pw-canary")
        );
        assert_ne!(fp, fingerprint(b"k1", &server, b"pw-canary2"));
        // Length prefixes: moving a byte between the parts changes the fingerprint.
        assert_ne!(
            fingerprint(b"k1", "ab", b"c"),
            fingerprint(b"k1", "a", b"bc")
        );
    }

    #[test]
    fn a_first_attempt_is_allowed() {
        assert_eq!(
            decide(&Ledger::default(), "k", "fp", 1000, DAY),
            Decision::Attempt
        );
    }

    #[test]
    fn a_rejected_credential_is_never_tried_again_whatever_the_time() {
        let mut l = Ledger::default();
        attempt(&mut l, "fp", 1000, LoginOutcome::Rejected);
        for later in [1001, 1000 + 86_400, 1000 + 365 * 86_400] {
            match decide(&l, "k", "fp", later, DAY) {
                Decision::Remembered(e) => assert_eq!(e.outcome, Some(LoginOutcome::Rejected)),
                other => panic!("{other:?}"),
            }
        }
        for blocking in [
            LoginOutcome::Locked,
            LoginOutcome::PasswordExpired,
            LoginOutcome::AppPasswordRequired,
        ] {
            let mut l = Ledger::default();
            attempt(&mut l, "fp", 1000, blocking);
            assert!(matches!(
                decide(&l, "k", "fp", 10_000_000, DAY),
                Decision::Remembered(_)
            ));
        }
    }

    #[test]
    fn a_changed_password_is_tried_at_once() {
        let mut l = Ledger::default();
        attempt(&mut l, "old", 1000, LoginOutcome::Rejected);
        assert_eq!(decide(&l, "k", "new", 1001, DAY), Decision::Attempt);
        attempt(&mut l, "old", 1000, LoginOutcome::Accepted);
        assert_eq!(decide(&l, "k", "new", 1001, DAY), Decision::Attempt);
    }

    #[test]
    fn an_accepted_credential_is_checked_again_only_after_the_interval() {
        let mut l = Ledger::default();
        attempt(&mut l, "fp", 1000, LoginOutcome::Accepted);
        assert_eq!(
            decide(&l, "k", "fp", 1000 + 86_399, DAY),
            Decision::RateLimited {
                last: 1000,
                next: 1000 + 86_400
            }
        );
        assert_eq!(decide(&l, "k", "fp", 1000 + 86_400, DAY), Decision::Attempt);
    }

    #[test]
    fn a_temporary_failure_is_remembered_until_the_interval_passes() {
        let mut l = Ledger::default();
        attempt(&mut l, "fp", 1000, LoginOutcome::TemporaryFailure);
        assert!(matches!(
            decide(&l, "k", "fp", 2000, DAY),
            Decision::Remembered(_)
        ));
        assert_eq!(decide(&l, "k", "fp", 1000 + 86_400, DAY), Decision::Attempt);
    }

    #[test]
    fn a_sender_rejection_stays_visible_within_the_interval() {
        let mut l = Ledger::default();
        let prev = begin(&mut l, "k", "fp", 1000);
        let mut r = answered(LoginOutcome::Accepted);
        r.sender = Some(SenderCheck::Rejected {
            sender: "ann@example.com".into(),
            reply: "550 5.7.1 no".into(),
        });
        finish(&mut l, "k", "fp", prev, &r);
        assert!(matches!(
            decide(&l, "k", "fp", 2000, DAY),
            Decision::Remembered(_)
        ));
        assert_eq!(decide(&l, "k", "fp", 1000 + 86_400, DAY), Decision::Attempt);
    }

    #[test]
    fn an_attempt_interrupted_by_a_crash_still_counts() {
        let mut l = Ledger::default();
        begin(&mut l, "k", "fp", 1000);
        // No finish: the agent died while the password was on its way.
        assert!(matches!(
            decide(&l, "k", "fp", 1500, DAY),
            Decision::RateLimited { last: 1000, .. }
        ));
    }

    #[test]
    fn a_connection_that_failed_before_the_password_was_sent_is_no_attempt() {
        let mut l = Ledger::default();
        attempt(&mut l, "fp", 1000, LoginOutcome::Accepted);
        let before = l.clone();
        let prev = begin(&mut l, "k", "fp", 1000 + 86_400);
        let refused = LoginReport::not_attempted(
            target(),
            NotAttempted::ConnectionFailed {
                detail: "tcp refused".into(),
            },
        );
        finish(&mut l, "k", "fp", prev, &refused);
        assert_eq!(l, before);
        let mut empty = Ledger::default();
        let prev = begin(&mut empty, "k", "fp", 5);
        finish(&mut empty, "k", "fp", prev, &refused);
        assert!(empty.servers.is_empty());
    }

    #[test]
    fn remembered_reports_carry_the_answer_and_its_time() {
        let mut l = Ledger::default();
        attempt(&mut l, "fp", 1_700_000_000, LoginOutcome::Rejected);
        let Decision::Remembered(e) = decide(&l, "k", "fp", 1_700_000_100, DAY) else {
            panic!()
        };
        let r = remembered(&e, target());
        assert_eq!(r.outcome, LoginOutcome::Rejected);
        assert_eq!(r.remembered_from.as_deref(), Some("2023-11-14T22:13:20Z"));
        assert_eq!(
            r.server_reply.as_deref(),
            Some("535 5.7.8 Error: authentication failed")
        );
    }

    #[test]
    fn the_ledger_round_trips_and_refuses_unknown_fields() {
        let mut l = Ledger::default();
        attempt(&mut l, "fp", 1000, LoginOutcome::Locked);
        let json = serde_json::to_string(&l).unwrap();
        assert_eq!(serde_json::from_str::<Ledger>(&json).unwrap(), l);
        assert!(serde_json::from_str::<Ledger>(r#"{"version":1,"servers":{},"x":1}"#).is_err());
    }

    #[test]
    fn the_key_is_made_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let k1 = store::key(dir.path()).unwrap();
        let k2 = store::key(dir.path()).unwrap();
        assert_eq!(*k1, *k2);
        assert_eq!(k1.len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let other = tempfile::tempdir().unwrap();
        assert_ne!(*store::key(other.path()).unwrap(), *k1);
        std::fs::write(dir.path().join(KEY_FILE), "not hex").unwrap();
        assert!(store::key(dir.path()).is_err());
    }

    #[test]
    fn the_ledger_file_is_private_and_a_second_holder_of_the_lock_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = store::load(dir.path()).unwrap();
        attempt(&mut l, "fp", 1000, LoginOutcome::Rejected);
        store::save(dir.path(), &l).unwrap();
        assert_eq!(store::load(dir.path()).unwrap(), l);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(LEDGER_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let first = store::lock(dir.path()).unwrap();
        assert!(first.is_some());
        assert!(store::lock(dir.path()).unwrap().is_none());
        drop(first);
        assert!(store::lock(dir.path()).unwrap().is_some());
    }

    #[test]
    fn a_refused_credential_stays_refused_while_another_one_works() {
        // Two client accounts log in as the same user: one with an old password, one with the
        // right one. The old one must not be retried every time the right one succeeds.
        let mut l = Ledger::default();
        attempt(&mut l, "old", 1000, LoginOutcome::Rejected);
        attempt(&mut l, "right", 1001, LoginOutcome::Accepted);
        assert!(matches!(
            decide(&l, "k", "old", 1002, DAY),
            Decision::Remembered(_)
        ));
        assert!(matches!(
            decide(&l, "k", "right", 1002, DAY),
            Decision::RateLimited { .. }
        ));
        assert!(matches!(
            decide(&l, "k", "old", 1000 + 400 * 86_400, DAY),
            Decision::Remembered(_)
        ));
        // Other server accounts are not affected.
        assert_eq!(decide(&l, "other", "old", 1002, DAY), Decision::Attempt);
    }

    #[test]
    fn many_credentials_forget_the_oldest_unrefused_first() {
        let mut l = Ledger::default();
        attempt(&mut l, "refused", 1, LoginOutcome::Rejected);
        for i in 0..40 {
            attempt(&mut l, &format!("fp{i}"), 10 + i, LoginOutcome::Accepted);
        }
        let kept = &l.servers["k"];
        assert_eq!(kept.len(), MAX_CREDENTIALS);
        assert!(kept.contains_key("refused"));
        assert!(kept.contains_key("fp39"));
        assert!(!kept.contains_key("fp0"));
    }
}
