//! `mailmend run`: the long-running agent. One instance per state directory. It sleeps until
//! something may have broken a mail setup and then looks only where it matters:
//!
//! - a configuration file changed (inotify through notify, debounced): the accounts stored in
//!   that file; a file that holds no known account, a new client directory or lost events:
//!   everything;
//! - the network changed (rtnetlink on Linux, IP Helper notifications on Windows, the routing
//!   socket on macOS): everything, at most once per [`watch::NETWORK_PASS_EVERY`];
//! - a Kerberos ticket of a GSSAPI account is about to expire: those accounts (only when the
//!   prober can read credential caches; otherwise the periodic check covers them);
//! - the policy interval elapsed (with jitter, so that a fleet does not probe in step):
//!   everything.
//!
//! Its own writes never wake it: the content it wrote is remembered, and an event on a file
//! whose content the agent already knows is dropped. The policy file is watched: a valid new
//! policy is used at once, an invalid one is refused in the audit log and the last good one
//! stays; SIGHUP reloads too. SIGTERM and SIGINT stop it, but only between fixes: a fix in
//! flight is finished (kept or rolled back) first. On Windows the service control manager's
//! Stop and Shutdown (or Ctrl+C in a console) do the same (`winsvc`, `stop`). Under systemd it
//! speaks sd_notify (READY, STATUS, STOPPING, WATCHDOG).

use crate::agent::Agent;
use crate::commands::{audit_refusals, fix_pass_scoped, FixPass};
use crate::sdnotify::Notifier;
use crate::watch::{self, Due, FsItem, FsWatch, Interest, NetWatch, Scheduler};
use crate::{homes, load_policy, Settings};
use anyhow::Context;
use mailmend_audit::{Event, EventKind, Outcome};
use mailmend_core::{Account, AuthMethod, Home, Location, Prober};
use mailmend_executor::{Executor, FixRecord, Host, Snapshot, StateDir};
use mailmend_policy::Policy;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// Wake this long before the earliest Kerberos ticket of a GSSAPI account expires, so that a
/// renewal happens while the ticket is still valid.
pub const KERBEROS_LEAD: Duration = Duration::from_secs(300);

/// While stopping, how often to look whether the fix in flight has finished.
const STOP_CHECK: Duration = Duration::from_millis(20);

/// Holds the single-instance lock for as long as it lives.
pub struct InstanceLock {
    #[cfg(unix)]
    _lock: nix::fcntl::Flock<File>,
    #[cfg(not(unix))]
    _file: File,
}

/// Windows: the lock is a byte-range lock far past the pid written at the start of the file,
/// so that a second instance can still read who holds it. The system releases it when the
/// handle closes, even after a crash.
#[cfg(windows)]
const LOCK_OFFSET: u64 = 1 << 40;

#[cfg(windows)]
pub(crate) fn try_lock_range(file: &File) -> std::io::Result<bool> {
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::Foundation::ERROR_LOCK_VIOLATION;
    use windows_sys::Win32::Storage::FileSystem::{
        LockFileEx, LOCKFILE_EXCLUSIVE_LOCK, LOCKFILE_FAIL_IMMEDIATELY,
    };
    use windows_sys::Win32::System::IO::OVERLAPPED;
    // SAFETY: OVERLAPPED is a plain C struct for which all-zero bytes are valid; only its
    // offset fields are set.
    let mut ov: OVERLAPPED = unsafe { std::mem::zeroed() };
    ov.Anonymous.Anonymous.Offset = (LOCK_OFFSET & 0xffff_ffff) as u32;
    ov.Anonymous.Anonymous.OffsetHigh = (LOCK_OFFSET >> 32) as u32;
    // SAFETY: the handle belongs to `file`, which outlives the call; the file is opened for
    // synchronous I/O, so LockFileEx completes before it returns and `ov` may be on the stack.
    let ok = unsafe {
        LockFileEx(
            file.as_raw_handle(),
            LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY,
            0,
            1,
            0,
            &mut ov,
        )
    };
    if ok != 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(ERROR_LOCK_VIOLATION as i32) {
        return Ok(false);
    }
    Err(err)
}

/// Takes the state directory's instance lock, or says which process holds it.
pub fn lock_instance(state: &StateDir) -> anyhow::Result<InstanceLock> {
    use std::io::{Read, Seek, Write};
    let path = state.root().join("agent.lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    #[cfg(unix)]
    {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let mut lock =
            match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
                Ok(l) => l,
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => anyhow::bail!(
                    "another mailmend is already running with state directory {} (pid {})",
                    state.root().display(),
                    holder.trim()
                ),
                Err((_, e)) => return Err(e).context("cannot lock the state directory"),
            };
        lock.set_len(0)?;
        lock.rewind()?;
        write!(lock, "{}", std::process::id())?;
        Ok(InstanceLock { _lock: lock })
    }
    #[cfg(windows)]
    {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        if !try_lock_range(&file).context("cannot lock the state directory")? {
            anyhow::bail!(
                "another mailmend is already running with state directory {} (pid {})",
                state.root().display(),
                holder.trim()
            );
        }
        file.set_len(0)?;
        file.rewind()?;
        write!(file, "{}", std::process::id())?;
        Ok(InstanceLock { _file: file })
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = (&mut file).read(&mut [0u8; 0]);
        file.set_len(0)?;
        file.rewind()?;
        write!(file, "{}", std::process::id())?;
        Ok(InstanceLock { _file: file })
    }
}

fn policy_event(kind: EventKind, policy: Option<&Policy>, message: String) -> Event {
    Event {
        kind,
        policy_hash: policy.map(|p| p.hash().to_string()),
        outcome: (kind == EventKind::PolicyRejected).then_some(Outcome::Denied),
        message,
        ..Event::default()
    }
}

/// A delay of `base` plus up to a tenth of it, drawn from the clock: enough to spread a fleet.
fn jittered(base: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tenth = base / 10;
    base + tenth.mul_f64(f64::from(nanos % 1000) / 1000.0)
}

/// What a pass looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    Everything,
    /// The accounts stored in these files.
    Files(HashSet<PathBuf>),
}

impl Scope {
    fn merge(self, other: Scope) -> Scope {
        match (self, other) {
            (Scope::Files(mut a), Scope::Files(b)) => {
                a.extend(b);
                Scope::Files(a)
            }
            _ => Scope::Everything,
        }
    }

    fn describe(&self) -> String {
        match self {
            Scope::Everything => "all accounts".to_string(),
            Scope::Files(f) => {
                let mut names: Vec<String> = f.iter().map(|p| p.display().to_string()).collect();
                names.sort();
                format!("accounts in {}", names.join(", "))
            }
        }
    }
}

/// What happened to the signals while a pass ran.
#[derive(Debug, Default)]
struct Pending {
    stop: bool,
    reload: bool,
}

/// Why the policy is being reloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    Signal,
    FileChanged,
}

/// The Kerberos wake-up: which ticket expiry it was set for.
#[derive(Default)]
struct Kerberos {
    /// The expiry the agent already woke up for (or found too close to wake up for).
    handled: Option<OffsetDateTime>,
    /// The expiry the pending wake-up is for.
    target: Option<OffsetDateTime>,
    told_unsupported: bool,
}

/// The running agent's state between passes.
struct Service {
    policy_path: Option<PathBuf>,
    homes: Vec<Home>,
    policy: Policy,
    agent: Agent,
    executor: Executor,
    notifier: Notifier,
    /// Problems already audited (see `fix_pass`).
    seen: HashSet<String>,
    /// Each configuration file's content as the agent last knew it: read just before a pass
    /// looked at it, or written by a fix. An event that leaves a file at this content is the
    /// agent's own write (or a touch) and wakes nothing.
    known: HashMap<PathBuf, Option<u64>>,
    /// Accounts by the file that stores them, from the latest passes.
    accounts: HashMap<PathBuf, Vec<Account>>,
    /// Accounts whose fix was deferred because their client was running, by directory.
    deferred: HashMap<PathBuf, Vec<Account>>,
    /// The configuration files being watched (not the policy file).
    config_files: BTreeSet<PathBuf>,
    watch: Option<FsWatch>,
    /// The content of the last policy file refused, so that it is audited once.
    rejected_policy: Option<u64>,
    kerberos: Kerberos,
    passes: u64,
}

pub async fn run(s: Settings) -> anyhow::Result<u8> {
    let state = StateDir::open(&s.state_dir)
        .with_context(|| format!("cannot open state directory {}", s.state_dir.display()))?;
    let _lock = lock_instance(&state)?;
    let policy = s.policy.clone();
    let homes = homes::homes(s.home.as_deref());
    let agent = Agent::new(policy.clone(), homes.clone())?.with_state_dir(&s.state_dir);
    let mut executor = Executor::new(state, policy.clone(), false)?;
    executor.audit().append(policy_event(
        EventKind::PolicyLoaded,
        Some(&policy),
        format!("agent started with policy {}", policy.origin()),
    ))?;
    audit_refusals(executor.audit(), &agent)?;

    let (tx, mut rx) = tokio::sync::mpsc::channel(watch::EVENT_QUEUE);
    let overflow = Arc::new(AtomicBool::new(false));
    let fs = match FsWatch::new(tx, Arc::clone(&overflow)) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!("file watching unavailable, relying on the periodic check: {e}");
            None
        }
    };
    let mut fs_alive = fs.is_some();
    let mut net = match NetWatch::open() {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::info!("network change events unavailable: {e}");
            None
        }
    };
    let mut svc = Service {
        policy_path: s.policy_path.clone(),
        homes,
        policy,
        agent,
        executor,
        notifier: Notifier::from_env(),
        seen: HashSet::new(),
        known: HashMap::new(),
        accounts: HashMap::new(),
        deferred: HashMap::new(),
        config_files: BTreeSet::new(),
        watch: fs,
        rejected_policy: None,
        kerberos: Kerberos::default(),
        passes: 0,
    };
    svc.resync_watches();
    let mut signals = Signals::new()?;
    let mut sched = Scheduler::new(Instant::now(), jittered(svc.policy.check_interval()));
    let mut watchdog = svc.notifier.watchdog_every().map(|every| {
        let mut i = tokio::time::interval(every);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    });
    let watched = svc.watch.as_ref().map_or(0, |w| w.watched().len());
    tracing::info!(
        "mailmend agent running; policy {}; watching {watched} directories; network events {}",
        svc.policy.origin(),
        if net.is_some() { "on" } else { "off" }
    );
    svc.notifier
        .ready(&format!("starting; watching {watched} directories"));

    let mut next: Option<(Scope, &'static str)> = Some((Scope::Everything, "start"));
    loop {
        if let Some((scope, why)) = next.take() {
            let started = Instant::now();
            let pending = svc
                .pass(&scope, why, &mut signals, &mut watchdog, &mut sched)
                .await?;
            if pending.stop {
                break;
            }
            if scope == Scope::Everything {
                sched.full_pass_done(
                    started,
                    Instant::now(),
                    jittered(svc.policy.check_interval()),
                );
            }
            if pending.reload && svc.reload(Cause::Signal)? {
                sched.file_event(Instant::now(), FsItem::Reloaded);
            }
        }
        let now = Instant::now();
        let wake = sched.next_wake(now);
        tokio::select! {
            w = signals.recv() => match w {
                Wake::Stop => break,
                // The pass under the new policy goes through the debouncer and the file
                // bucket, so that a burst of SIGHUPs costs one pass.
                Wake::Reload => {
                    if svc.reload(Cause::Signal)? {
                        sched.file_event(Instant::now(), FsItem::Reloaded);
                    }
                }
            },
            item = rx.recv(), if fs_alive => match item {
                Some(item) => {
                    let now = Instant::now();
                    sched.file_event(now, item);
                    while let Ok(item) = rx.try_recv() {
                        sched.file_event(now, item);
                    }
                    if watch::take_overflow(&overflow) {
                        tracing::warn!("file event queue overflowed; looking at everything");
                        sched.file_event(now, FsItem::Rescan);
                    }
                }
                None => fs_alive = false,
            },
            r = net_changed(&mut net) => match r {
                Ok(()) => {
                    tracing::debug!("network changed");
                    sched.network_event(Instant::now());
                }
                Err(e) => {
                    tracing::warn!("network change events stopped: {e}");
                    net = None;
                }
            },
            _ = tokio::time::sleep_until(wake.into()) => {}
            _ = tick(&mut watchdog) => svc.notifier.watchdog(),
        }
        let now = Instant::now();
        let mut work: Option<(Scope, &'static str)> = None;
        let mut add = |scope: Scope, why: &'static str| {
            work = Some(match work.take() {
                Some((s, w)) => (s.merge(scope), w),
                None => (scope, why),
            });
        };
        for due in sched.take_due(now) {
            match due {
                Due::Files(items) => {
                    let relevant = svc.relevant(items)?;
                    if let Some(admitted) = sched.admit_file_pass(now, relevant) {
                        if let Some(scope) = svc.scope_for(&admitted) {
                            add(scope, "configuration changed");
                        }
                    }
                }
                Due::Network => add(Scope::Everything, "network changed"),
                Due::Periodic => add(Scope::Everything, "periodic check"),
                Due::Kerberos => {
                    svc.kerberos.handled = svc.kerberos.target.take();
                    add(svc.kerberos_scope(), "kerberos ticket expiring");
                }
            }
        }
        next = work;
    }
    svc.notifier.stopping();
    svc.executor.audit().append(policy_event(
        EventKind::Notice,
        Some(&svc.policy),
        "agent stopped".to_string(),
    ))?;
    tracing::info!("mailmend agent stopped");
    Ok(crate::exit::HEALTHY)
}

async fn net_changed(net: &mut Option<NetWatch>) -> std::io::Result<()> {
    match net {
        Some(n) => n.changed().await,
        None => std::future::pending().await,
    }
}

async fn tick(watchdog: &mut Option<tokio::time::Interval>) {
    match watchdog {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Whether no fix is between its intent and its outcome.
fn no_fix_in_flight(state: &StateDir) -> bool {
    // An unreadable intents directory cannot be waited on; the next start's recovery handles
    // whatever is there.
    state.unfinished().map(|u| u.is_empty()).unwrap_or(true)
}

fn location_file(a: &Account) -> Option<&Path> {
    match &a.location {
        Location::File { path } => Some(path),
        Location::Registry { .. } => None,
    }
}

fn uses_gssapi(a: &Account) -> bool {
    [&a.incoming, &a.outgoing]
        .into_iter()
        .flatten()
        .any(|e| e.auth == AuthMethod::Gssapi)
}

impl Service {
    /// Runs one pass, answering signals meanwhile: a reload waits for the pass; a stop lets the
    /// fix in flight finish (verified and kept, or rolled back) and abandons the rest.
    async fn pass(
        &mut self,
        scope: &Scope,
        why: &str,
        signals: &mut Signals,
        watchdog: &mut Option<tokio::time::Interval>,
        sched: &mut Scheduler,
    ) -> anyhow::Result<Pending> {
        self.passes += 1;
        let n = self.passes;
        tracing::info!("pass {n} started ({why}): {}", scope.describe());
        self.notifier.status(&format!("pass {n}: {why}"));
        let started = Instant::now();
        self.remember_content(scope);
        let only = match scope {
            Scope::Everything => None,
            Scope::Files(f) => Some(f),
        };
        let state = self.executor.state().clone();
        let mut pending = Pending::default();
        let result = {
            let fut = fix_pass_scoped(&self.agent, &mut self.executor, &mut self.seen, only);
            let mut fut = std::pin::pin!(fut);
            let mut stop_check = tokio::time::interval(STOP_CHECK);
            loop {
                tokio::select! {
                    r = &mut fut => break Some(r?),
                    w = signals.recv(), if !pending.stop => match w {
                        Wake::Stop => {
                            pending.stop = true;
                            self.notifier.stopping();
                            tracing::info!("stopping after the fix in flight, if any");
                            if no_fix_in_flight(&state) {
                                break None;
                            }
                        }
                        Wake::Reload => pending.reload = true,
                    },
                    _ = stop_check.tick(), if pending.stop => {
                        if no_fix_in_flight(&state) {
                            break None;
                        }
                    }
                    _ = tick(watchdog) => self.notifier.watchdog(),
                }
            }
        };
        let Some(pass) = result else {
            tracing::info!("pass {n} abandoned between fixes to stop");
            return Ok(pending);
        };
        for r in &pass.reports {
            tracing::info!(
                "{} {} {}: {}",
                r.account_id,
                r.finding_code,
                r.outcome.as_str(),
                r.reason
            );
        }
        self.remember_own_writes(&pass);
        self.update_accounts(scope, &pass);
        let before: BTreeSet<PathBuf> = self
            .watch
            .as_ref()
            .map(|w| w.watched().clone())
            .unwrap_or_default();
        self.resync_watches();
        self.look_in_new_directories(&before, sched);
        if matches!(scope, Scope::Everything) || why.starts_with("kerberos") {
            let at = self.kerberos_wake().await;
            sched.set_kerberos(at);
        }
        let applied = pass
            .reports
            .iter()
            .filter(|r| r.outcome == Outcome::Applied)
            .count();
        let accounts = pass.remaining.len();
        tracing::info!(
            "pass {n} done in {} ms: {accounts} accounts, {applied} fixes applied",
            started.elapsed().as_millis()
        );
        self.notifier.status(&format!(
            "idle; pass {n} ({why}): {accounts} accounts, {applied} fixes applied"
        ));
        Ok(pending)
    }

    /// Records the content of the files the pass is about to read, so that their later events
    /// can be told from real changes.
    fn remember_content(&mut self, scope: &Scope) {
        let files: Vec<PathBuf> = match scope {
            Scope::Everything => self.config_files.iter().cloned().collect(),
            Scope::Files(f) => f.iter().cloned().collect(),
        };
        for f in files {
            let h = watch::content_hash(&f);
            self.known.insert(f, h);
        }
    }

    /// The files the pass's fixes wrote are known at the content written: their events are the
    /// agent's own and must not wake it.
    fn remember_own_writes(&mut self, pass: &FixPass) {
        for r in &pass.reports {
            let Some(id) = &r.fix_id else { continue };
            let record: Option<FixRecord> = self.executor.state().fix(id).ok().flatten();
            match record {
                Some(FixRecord {
                    snapshot: Snapshot::Files { files },
                    ..
                }) => {
                    for f in files {
                        if let Ok(after) = f.after_bytes() {
                            self.known
                                .insert(f.path.clone(), Some(watch::bytes_hash(&after)));
                        }
                    }
                }
                Some(_) => {}
                // Rolled back or failed: the files hold their content from before the fix,
                // restored by the executor; remember it as it is now.
                None => {
                    let dirs: HashSet<PathBuf> = pass
                        .remaining
                        .iter()
                        .filter(|d| d.account.id.0 == r.account_id)
                        .filter_map(|d| location_file(&d.account)?.parent().map(Path::to_path_buf))
                        .collect();
                    let files: Vec<PathBuf> = self
                        .config_files
                        .iter()
                        .filter(|f| f.parent().is_some_and(|p| dirs.contains(p)))
                        .cloned()
                        .collect();
                    for f in files {
                        let h = watch::content_hash(&f);
                        self.known.insert(f, h);
                    }
                }
            }
        }
    }

    fn update_accounts(&mut self, scope: &Scope, pass: &FixPass) {
        let in_scope = |p: &Path| match scope {
            Scope::Everything => true,
            Scope::Files(f) => f.contains(p),
        };
        self.accounts.retain(|p, _| !in_scope(p));
        for d in &pass.remaining {
            if let Some(p) = location_file(&d.account) {
                self.accounts
                    .entry(p.to_path_buf())
                    .or_default()
                    .push(d.account.clone());
            }
        }
        for accounts in self.deferred.values_mut() {
            accounts.retain(|a| location_file(a).is_some_and(|p| !in_scope(p)));
        }
        for r in pass
            .reports
            .iter()
            .filter(|r| r.outcome == Outcome::Deferred)
        {
            let Some(a) = pass
                .remaining
                .iter()
                .map(|d| &d.account)
                .find(|a| a.id.0 == r.account_id)
            else {
                continue;
            };
            if let Some(dir) = location_file(a).and_then(Path::parent) {
                let list = self.deferred.entry(dir.to_path_buf()).or_default();
                if !list.iter().any(|x| x.id == a.id) {
                    list.push(a.clone());
                }
            }
        }
        self.deferred.retain(|_, v| !v.is_empty());
    }

    /// Watches what the adapters' configuration paths, the homes, the policy file and the
    /// deferred accounts need.
    fn resync_watches(&mut self) {
        let config = self.agent.config_paths();
        let homes: Vec<PathBuf> = self.homes.iter().map(|h| h.path.clone()).collect();
        let deferred: HashSet<PathBuf> = self.deferred.keys().cloned().collect();
        let (interest, dirs) =
            Interest::build(&config, &homes, self.policy_path.as_deref(), &deferred);
        self.config_files = interest
            .files
            .iter()
            .filter(|f| Some(f.as_path()) != self.policy_path.as_deref())
            .cloned()
            .collect();
        if let Some(w) = self.watch.as_mut() {
            w.update(interest, dirs);
        }
    }

    /// A directory watched only now may already hold a configuration file written before its
    /// watch existed (a new profile written quickly): look at such files.
    fn look_in_new_directories(&mut self, before: &BTreeSet<PathBuf>, sched: &mut Scheduler) {
        let Some(w) = &self.watch else { return };
        let new: Vec<&PathBuf> = w.watched().difference(before).collect();
        if new.is_empty() || before.is_empty() {
            return;
        }
        let now = Instant::now();
        for f in &self.config_files {
            let in_new = f
                .parent()
                .is_some_and(|p| new.iter().any(|d| d.as_path() == p));
            if in_new && self.known.get(f) != Some(&watch::content_hash(f)) {
                sched.file_event(now, FsItem::Changed(f.clone()));
            }
        }
    }

    /// Keeps the items that mean something changed: a configuration file whose content the
    /// agent does not know yet, a new client directory, a released client lock, lost events.
    /// A policy file change is handled here, at once.
    fn relevant(&mut self, items: BTreeSet<FsItem>) -> anyhow::Result<BTreeSet<FsItem>> {
        let mut out = BTreeSet::new();
        let mut rediscover = false;
        for item in items {
            match &item {
                FsItem::Changed(p) if Some(p.as_path()) == self.policy_path.as_deref() => {
                    if self.reload(Cause::FileChanged)? {
                        out.insert(item);
                    }
                }
                FsItem::Changed(p) => {
                    let now = watch::content_hash(p);
                    if self.known.get(p) == Some(&now) {
                        tracing::debug!(
                            "{} unchanged (the agent's own write or a touch)",
                            p.display()
                        );
                    } else {
                        rediscover |= self.accounts.contains_key(p);
                        out.insert(item);
                    }
                }
                FsItem::Released(dir) => {
                    let free = self.deferred.get(dir).is_some_and(|accounts| {
                        accounts.iter().any(|a| {
                            Host::adapter(&self.agent, a.client).is_some_and(|c| !c.is_running(a))
                        })
                    });
                    if free {
                        out.insert(item);
                    }
                }
                FsItem::Appeared(_) | FsItem::Rescan | FsItem::Reloaded => {
                    out.insert(item);
                }
            }
        }
        if rediscover {
            self.drop_unchanged_accounts(&mut out);
        }
        Ok(out)
    }

    /// Drops changed files whose accounts read exactly as before: a client rewriting its
    /// configuration for other reasons (Thunderbird saves prefs.js for window sizes and
    /// folder states) cannot have broken them, and probing their servers again would cost
    /// logins for nothing.
    fn drop_unchanged_accounts(&mut self, items: &mut BTreeSet<FsItem>) {
        let scan = self.agent.discover();
        let mut unchanged = Vec::new();
        for item in items.iter() {
            let FsItem::Changed(p) = item else { continue };
            let Some(before) = self.accounts.get(p) else {
                continue;
            };
            let mut now: Vec<&Account> = scan
                .accounts
                .iter()
                .filter(|a| location_file(a) == Some(p.as_path()))
                .collect();
            let mut was: Vec<&Account> = before.iter().collect();
            now.sort_by(|a, b| a.id.cmp(&b.id));
            was.sort_by(|a, b| a.id.cmp(&b.id));
            // A file that became unreadable has no accounts now, so it is never "unchanged".
            if now == was {
                unchanged.push(item.clone());
            }
        }
        for item in unchanged {
            if let FsItem::Changed(p) = &item {
                tracing::debug!("{} changed, but not its accounts", p.display());
                let h = watch::content_hash(p);
                self.known.insert(p.clone(), h);
            }
            items.remove(&item);
        }
    }

    /// What to look at for admitted file items: the accounts of changed files that hold known
    /// accounts, everything otherwise.
    fn scope_for(&self, items: &BTreeSet<FsItem>) -> Option<Scope> {
        let mut files = HashSet::new();
        for item in items {
            match item {
                FsItem::Changed(p) if self.accounts.contains_key(p) => {
                    files.insert(p.clone());
                }
                FsItem::Released(dir) => {
                    let accounts = self.deferred.get(dir).into_iter().flatten();
                    files.extend(accounts.filter_map(|a| location_file(a).map(Path::to_path_buf)));
                }
                FsItem::Changed(_) | FsItem::Appeared(_) | FsItem::Rescan | FsItem::Reloaded => {
                    return Some(Scope::Everything)
                }
            }
        }
        (!files.is_empty()).then_some(Scope::Files(files))
    }

    fn kerberos_scope(&self) -> Scope {
        let files: HashSet<PathBuf> = self
            .accounts
            .iter()
            .filter(|(_, accounts)| accounts.iter().any(uses_gssapi))
            .map(|(p, _)| p.clone())
            .collect();
        if files.is_empty() {
            Scope::Everything
        } else {
            Scope::Files(files)
        }
    }

    /// When to wake for Kerberos: [`KERBEROS_LEAD`] before the earliest ticket expiry among the
    /// GSSAPI accounts' users, once per expiry. `None` when there is no such account, the
    /// prober cannot read credential caches, or the expiry was already handled.
    async fn kerberos_wake(&mut self) -> Option<Instant> {
        let users: BTreeSet<String> = self
            .accounts
            .values()
            .flatten()
            .filter(|a| uses_gssapi(a))
            .map(|a| a.os_user.clone())
            .collect();
        if users.is_empty() {
            self.kerberos = Kerberos::default();
            return None;
        }
        // The agent's own prober: a second one would load the trust roots again.
        let prober = self.agent.prober();
        let mut earliest: Option<OffsetDateTime> = None;
        for user in &users {
            let report = prober.kerberos_tickets(user).await;
            if let Some(e) = &report.error {
                if !self.kerberos.told_unsupported {
                    tracing::info!("no kerberos expiry wake-up for {user}: {e}");
                    self.kerberos.told_unsupported = true;
                }
                continue;
            }
            for t in &report.tickets {
                let Ok(exp) = OffsetDateTime::parse(
                    &t.expires,
                    &time::format_description::well_known::Rfc3339,
                ) else {
                    continue;
                };
                earliest = Some(earliest.map_or(exp, |e| e.min(exp)));
            }
        }
        let wake = kerberos_wake_at(
            earliest?,
            self.kerberos.handled,
            OffsetDateTime::now_utc(),
            Instant::now(),
        );
        match wake {
            Some(_) => self.kerberos.target = earliest,
            // Too close already: the pass that just ran saw it.
            None => self.kerberos.handled = self.kerberos.handled.max(earliest),
        }
        wake
    }

    /// Reloads the policy. Returns whether a different valid policy is now in force. An
    /// invalid one is refused in the audit log (once per content) and the last good one stays.
    fn reload(&mut self, cause: Cause) -> anyhow::Result<bool> {
        let loaded = match cause {
            Cause::Signal => load_policy(self.policy_path.as_deref()).map(|(p, _)| p),
            Cause::FileChanged => match self.policy_path.as_deref() {
                Some(path) => Policy::load(path).map_err(|e| anyhow::anyhow!("{e}")),
                None => return Ok(false),
            },
        };
        let loaded = loaded.and_then(|p| {
            let agent = Agent::new(p.clone(), self.homes.clone())
                .with_context(|| format!("cannot use policy {}", p.origin()))?
                .with_state_dir(self.executor.state().root());
            Ok((p, agent))
        });
        match loaded {
            Ok((p, _)) if cause == Cause::FileChanged && p.hash() == self.policy.hash() => {
                self.rejected_policy = None;
                Ok(false)
            }
            Ok((p, agent)) => {
                let how = match cause {
                    Cause::Signal => "on SIGHUP",
                    Cause::FileChanged => "after the file changed",
                };
                tracing::info!("policy reloaded from {} {how}", p.origin());
                self.executor.audit().append(policy_event(
                    EventKind::PolicyLoaded,
                    Some(&p),
                    format!("policy reloaded from {} {how}", p.origin()),
                ))?;
                audit_refusals(self.executor.audit(), &agent)?;
                self.agent = agent;
                self.executor.set_policy(p.clone());
                self.policy = p;
                self.rejected_policy = None;
                self.resync_watches();
                Ok(true)
            }
            Err(e) => {
                let content = self.policy_path.as_deref().and_then(watch::content_hash);
                if cause == Cause::FileChanged
                    && content.is_some()
                    && content == self.rejected_policy
                {
                    return Ok(false);
                }
                self.rejected_policy = content;
                tracing::error!("policy reload refused, keeping the last good one: {e:#}");
                self.executor.audit().append(policy_event(
                    EventKind::PolicyRejected,
                    Some(&self.policy),
                    format!("reload refused, last good policy kept: {e:#}"),
                ))?;
                Ok(false)
            }
        }
    }
}

/// When to wake up for a ticket that expires at `expiry` (wall clock), given the expiry
/// already handled and the current time on both clocks. Pure, for tests.
fn kerberos_wake_at(
    expiry: OffsetDateTime,
    handled: Option<OffsetDateTime>,
    now_wall: OffsetDateTime,
    now: Instant,
) -> Option<Instant> {
    if handled.is_some_and(|h| expiry <= h) {
        return None;
    }
    let lead = time::Duration::try_from(KERBEROS_LEAD).ok()?;
    let until = expiry - lead - now_wall;
    if until <= time::Duration::ZERO {
        return None;
    }
    let until = Duration::try_from(until).ok()?;
    now.checked_add(until)
}

enum Wake {
    /// SIGHUP. Windows has no such signal: there the policy file's watch reloads.
    #[cfg_attr(not(unix), allow(dead_code))]
    Reload,
    Stop,
}

struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
                hup: signal(SignalKind::hangup())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    /// The next signal. Signals are queued by the runtime, so one that arrives during a pass
    /// is seen when the pass looks.
    async fn recv(&mut self) -> Wake {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.hup.recv() => Wake::Reload,
                _ = self.term.recv() => Wake::Stop,
                _ = self.int.recv() => Wake::Stop,
            }
        }
        #[cfg(windows)]
        {
            // Ctrl+C in a console, or the service control manager's Stop or Shutdown. A
            // service has no console: when the console handler cannot be set, only the
            // service control manager can stop the agent.
            let ctrl_c = async {
                if tokio::signal::ctrl_c().await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                _ = ctrl_c => Wake::Stop,
                _ = crate::stop::requested() => Wake::Stop,
            }
        }
        #[cfg(not(any(unix, windows)))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
            Wake::Stop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_merge_files_and_everything_wins() {
        let a = Scope::Files(["/a".into()].into_iter().collect());
        let b = Scope::Files(["/b".into()].into_iter().collect());
        assert_eq!(
            a.clone().merge(b),
            Scope::Files(["/a".into(), "/b".into()].into_iter().collect())
        );
        assert_eq!(a.merge(Scope::Everything), Scope::Everything);
    }

    #[test]
    fn kerberos_wakes_before_expiry_once_per_expiry() {
        let wall = OffsetDateTime::now_utc();
        let now = Instant::now();
        let expiry = wall + time::Duration::hours(1);
        let at = kerberos_wake_at(expiry, None, wall, now).unwrap();
        let lead = at.duration_since(now);
        assert!(lead > Duration::from_secs(3600 - 301) && lead <= Duration::from_secs(3300));
        assert_eq!(kerberos_wake_at(expiry, Some(expiry), wall, now), None);
        // A renewed ticket (later expiry) gets a new wake-up.
        let renewed = expiry + time::Duration::hours(10);
        assert!(kerberos_wake_at(renewed, Some(expiry), wall, now).is_some());
        // Already inside the lead window: no wake-up (the pass just ran).
        let soon = wall + time::Duration::minutes(2);
        assert_eq!(kerberos_wake_at(soon, None, wall, now), None);
    }

    #[test]
    fn a_second_instance_lock_on_one_state_directory_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let first = lock_instance(&state).unwrap();
        let err = format!("{:#}", lock_instance(&state).err().unwrap());
        assert!(err.contains("another mailmend is already running"), "{err}");
        assert!(err.contains(&std::process::id().to_string()), "{err}");
        drop(first);
        drop(lock_instance(&state).expect("the lock is free once its holder is gone"));
    }

    #[test]
    fn jitter_adds_at_most_a_tenth() {
        for _ in 0..100 {
            let j = jittered(Duration::from_secs(900));
            assert!(j >= Duration::from_secs(900) && j <= Duration::from_secs(990));
        }
    }
}
