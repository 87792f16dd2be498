//! What wakes `mailmend run`: file events on the mail clients' configuration (notify, inotify on
//! Linux), network changes (rtnetlink on Linux, the IP Helper's notifications on Windows, the
//! routing socket on macOS), a periodic timer and Kerberos ticket expiry, and the pure
//! scheduling that turns bursts of those into a bounded number of fix passes.
//!
//! Nothing here polls: every wait is on a kernel event or a timer set for a known deadline.
//! The scheduling types take the current time as an argument, so that tests drive them with an
//! injected clock.

use std::collections::{BTreeSet, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A burst of file events is handled once the files have been quiet this long…
pub const FILE_QUIET: Duration = Duration::from_millis(300);
/// …or at the latest this long after its first event, so that a file written continuously is
/// still looked at.
pub const FILE_MAX_WAIT: Duration = Duration::from_secs(2);
/// File-triggered passes may come in a burst of this many…
pub const FILE_PASS_BURST: u32 = 3;
/// …and then at most one per this long, however often the files change.
pub const FILE_PASS_EVERY: Duration = Duration::from_secs(5);
/// Network changes are handled once the network has been quiet this long…
pub const NETWORK_QUIET: Duration = Duration::from_secs(1);
/// …or at the latest this long after the first change.
pub const NETWORK_MAX_WAIT: Duration = Duration::from_secs(5);
/// The flap bound: at most one network-triggered pass per this long, so a link that goes up
/// and down many times a minute costs at most six passes a minute.
pub const NETWORK_PASS_EVERY: Duration = Duration::from_secs(10);

/// Collects events and says when a burst of them is over: after `quiet` without a new event, or
/// `max_wait` after the first one, whichever comes first.
#[derive(Debug)]
pub struct Debouncer<T: Ord> {
    quiet: Duration,
    max_wait: Duration,
    first: Option<Instant>,
    last: Option<Instant>,
    items: BTreeSet<T>,
}

impl<T: Ord> Debouncer<T> {
    pub fn new(quiet: Duration, max_wait: Duration) -> Debouncer<T> {
        Debouncer {
            quiet,
            max_wait,
            first: None,
            last: None,
            items: BTreeSet::new(),
        }
    }

    pub fn push(&mut self, now: Instant, item: T) {
        self.first.get_or_insert(now);
        self.last = Some(now);
        self.items.insert(item);
    }

    /// When the current burst is due, or `None` when nothing is pending.
    pub fn deadline(&self) -> Option<Instant> {
        let (first, last) = (self.first?, self.last?);
        Some((last + self.quiet).min(first + self.max_wait))
    }

    /// When the last event of the pending burst arrived.
    pub fn last_event(&self) -> Option<Instant> {
        self.last
    }

    /// The burst's items, when it is due at `now`.
    pub fn take_due(&mut self, now: Instant) -> Option<BTreeSet<T>> {
        if self.deadline()? > now {
            return None;
        }
        Some(self.take())
    }

    /// Everything pending, due or not.
    pub fn take(&mut self) -> BTreeSet<T> {
        self.first = None;
        self.last = None;
        std::mem::take(&mut self.items)
    }
}

/// A token bucket: `capacity` actions at once, then one more per `every`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: u32,
    every: Duration,
    tokens: u32,
    refilled_at: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(now: Instant, capacity: u32, every: Duration) -> TokenBucket {
        TokenBucket {
            capacity: capacity.max(1),
            every: every.max(Duration::from_millis(1)),
            tokens: capacity.max(1),
            refilled_at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        if self.tokens >= self.capacity {
            // A full bucket earns nothing: credit does not pile up while idle.
            self.refilled_at = now;
            return;
        }
        let elapsed = now.saturating_duration_since(self.refilled_at);
        let earned = u32::try_from(elapsed.as_nanos() / self.every.as_nanos()).unwrap_or(u32::MAX);
        if earned == 0 {
            return;
        }
        self.tokens = self.tokens.saturating_add(earned).min(self.capacity);
        self.refilled_at = if self.tokens >= self.capacity {
            now
        } else {
            self.refilled_at + self.every * earned
        };
    }

    /// Takes a token when there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }

    /// When the next token is available: `now` when there is one already.
    pub fn ready_at(&self, now: Instant) -> Instant {
        let mut probe = self.clone();
        probe.refill(now);
        if probe.tokens > 0 {
            now
        } else {
            probe.refilled_at + probe.every
        }
    }
}

/// A file-system event the service cares about, as classified by [`Interest::classify`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FsItem {
    /// A configuration or policy file was written, created, renamed or removed.
    Changed(PathBuf),
    /// A directory appeared where a mail client's configuration may appear (a new client, a
    /// new profile root).
    Appeared(PathBuf),
    /// Something was removed in this directory, which holds an account whose fix waits for its
    /// client to exit (the client's lock file going away is the usual cause).
    Released(PathBuf),
    /// Events were lost (the kernel queue or ours overflowed): everything is looked at again.
    Rescan,
    /// The policy was reloaded on SIGHUP: everything is looked at under the new one.
    Reloaded,
}

/// What the agent is due to do, as decided by [`Scheduler::take_due`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// A burst of file events is over; the service decides what they mean.
    Files(BTreeSet<FsItem>),
    /// The network changed (and the flap bound allows a pass).
    Network,
    /// The periodic check.
    Periodic,
    /// A Kerberos ticket of a GSSAPI account expires soon.
    Kerberos,
}

/// Turns triggers into due work, with the debouncing and rate limits of this module. Pure: the
/// caller passes the time in.
#[derive(Debug)]
pub struct Scheduler {
    files: Debouncer<FsItem>,
    /// File items that meant a pass while the file bucket was empty; they wait for a token.
    held: BTreeSet<FsItem>,
    network: Debouncer<()>,
    file_passes: TokenBucket,
    network_passes: TokenBucket,
    periodic_at: Instant,
    kerberos_at: Option<Instant>,
}

impl Scheduler {
    /// A scheduler whose first periodic pass is `first_period` from `now`.
    pub fn new(now: Instant, first_period: Duration) -> Scheduler {
        Scheduler {
            files: Debouncer::new(FILE_QUIET, FILE_MAX_WAIT),
            held: BTreeSet::new(),
            network: Debouncer::new(NETWORK_QUIET, NETWORK_MAX_WAIT),
            file_passes: TokenBucket::new(now, FILE_PASS_BURST, FILE_PASS_EVERY),
            network_passes: TokenBucket::new(now, 1, NETWORK_PASS_EVERY),
            periodic_at: now + first_period,
            kerberos_at: None,
        }
    }

    pub fn file_event(&mut self, now: Instant, item: FsItem) {
        self.files.push(now, item);
    }

    pub fn network_event(&mut self, now: Instant) {
        self.network.push(now, ());
    }

    /// Wake for Kerberos at `at` (or not at all).
    pub fn set_kerberos(&mut self, at: Option<Instant>) {
        self.kerberos_at = at;
    }

    /// Moves the periodic pass to `period` from `now` (after a full pass, or a policy reload
    /// that changed the interval).
    pub fn reset_periodic(&mut self, now: Instant, period: Duration) {
        self.periodic_at = now + period;
    }

    /// A full pass that started at `started` looked at everything: network changes seen
    /// before it need no pass of their own, and the periodic timer starts over.
    pub fn full_pass_done(&mut self, started: Instant, now: Instant, period: Duration) {
        if self.network.last_event().is_some_and(|t| t <= started) {
            self.network.take();
        }
        self.reset_periodic(now, period);
    }

    /// File items that call for a pass. Returns them when the file bucket allows a pass now;
    /// otherwise holds them until it does ([`Scheduler::take_due`] returns them again then).
    pub fn admit_file_pass(
        &mut self,
        now: Instant,
        items: BTreeSet<FsItem>,
    ) -> Option<BTreeSet<FsItem>> {
        self.held.extend(items);
        if self.held.is_empty() || !self.file_passes.try_take(now) {
            return None;
        }
        Some(std::mem::take(&mut self.held))
    }

    /// The next time something may be due; the caller sleeps until then unless an event comes.
    pub fn next_wake(&self, now: Instant) -> Instant {
        let mut at = self.periodic_at;
        if let Some(k) = self.kerberos_at {
            at = at.min(k);
        }
        if let Some(d) = self.files.deadline() {
            at = at.min(d);
        }
        if !self.held.is_empty() {
            at = at.min(self.file_passes.ready_at(now));
        }
        if let Some(d) = self.network.deadline() {
            at = at.min(d.max(self.network_passes.ready_at(now)));
        }
        at
    }

    /// Everything due at `now`, in the order: files, network, Kerberos, periodic.
    pub fn take_due(&mut self, now: Instant) -> Vec<Due> {
        let mut due = Vec::new();
        let mut files = self.files.take_due(now).unwrap_or_default();
        if !self.held.is_empty() && self.file_passes.ready_at(now) <= now {
            files.append(&mut self.held);
        }
        if !files.is_empty() {
            due.push(Due::Files(files));
        }
        if self.network.deadline().is_some_and(|d| d <= now) && self.network_passes.try_take(now) {
            self.network.take();
            due.push(Due::Network);
        }
        if self.kerberos_at.is_some_and(|k| k <= now) {
            self.kerberos_at = None;
            due.push(Due::Kerberos);
        }
        if self.periodic_at <= now {
            due.push(Due::Periodic);
        }
        due
    }
}

/// A cheap fingerprint of a file's content, `None` when it cannot be read (missing). Used to
/// tell a real change from a touch, and the agent's own writes from someone else's.
pub fn content_hash(path: &Path) -> Option<u64> {
    let bytes = std::fs::read(path).ok()?;
    Some(bytes_hash(&bytes))
}

/// The fingerprint of some bytes, as [`content_hash`] computes it.
pub fn bytes_hash(bytes: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// Which paths matter, shared between the service and the watcher's callback thread.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Interest {
    /// Configuration files and the policy file: any change to one counts.
    pub files: HashSet<PathBuf>,
    /// Configuration paths that are directories: a change to any file in one counts.
    pub dirs: HashSet<PathBuf>,
    /// Homes and `~/.config`: a new subdirectory may be a new mail client.
    pub discovery: HashSet<PathBuf>,
    /// Missing directories on the way to a configuration path: their appearance counts.
    pub missing: HashSet<PathBuf>,
    /// Directories of accounts whose fix was deferred because their client was running.
    pub deferred: HashSet<PathBuf>,
}

impl Interest {
    /// Builds the interest and the directories to watch (non-recursively) from the adapters'
    /// configuration paths, the homes, the policy file and the deferred accounts' directories.
    pub fn build(
        config_paths: &[PathBuf],
        homes: &[PathBuf],
        policy: Option<&Path>,
        deferred: &HashSet<PathBuf>,
    ) -> (Interest, BTreeSet<PathBuf>) {
        let mut i = Interest {
            deferred: deferred.clone(),
            ..Interest::default()
        };
        let mut watch = BTreeSet::new();
        for p in config_paths {
            if p.is_dir() {
                i.dirs.insert(p.clone());
                watch.insert(p.clone());
                continue;
            }
            i.files.insert(p.clone());
            // Watch the nearest existing ancestor: a file's own inode would be lost when an
            // editor replaces it by renaming, and a missing directory may appear later.
            let mut dir = p.parent();
            while let Some(d) = dir {
                if d.is_dir() {
                    watch.insert(d.to_path_buf());
                    break;
                }
                i.missing.insert(d.to_path_buf());
                dir = d.parent();
            }
        }
        for h in homes {
            for d in [h.clone(), h.join(".config")] {
                if d.is_dir() {
                    i.discovery.insert(d.clone());
                    watch.insert(d);
                }
            }
        }
        if let Some(p) = policy {
            i.files.insert(p.to_path_buf());
            if let Some(d) = p.parent().filter(|d| d.is_dir()) {
                watch.insert(d.to_path_buf());
            }
        }
        watch.extend(deferred.iter().filter(|d| d.is_dir()).cloned());
        (i, watch)
    }

    /// What a notify event means to the service. `is_dir` tells whether a path is a directory
    /// (the file system in production, a fake in tests).
    pub fn classify(&self, event: &notify::Event, is_dir: impl Fn(&Path) -> bool) -> Vec<FsItem> {
        use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
        use notify::EventKind;
        if event.need_rescan() {
            return vec![FsItem::Rescan];
        }
        let content = match event.kind {
            // Reads and metadata (a touch, a chmod) never change what a file says.
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
            EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_)) => false,
            EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
            EventKind::Any | EventKind::Other => true,
        };
        if !content {
            return Vec::new();
        }
        let new_dir = |p: &Path| match event.kind {
            EventKind::Create(CreateKind::Folder) => true,
            EventKind::Create(CreateKind::File) => false,
            EventKind::Create(_)
            | EventKind::Modify(ModifyKind::Name(
                RenameMode::To | RenameMode::Both | RenameMode::Any,
            )) => is_dir(p),
            _ => false,
        };
        let removed = matches!(
            event.kind,
            EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(RenameMode::From))
        );
        let mut out = Vec::new();
        for p in &event.paths {
            let parent = p.parent().map(Path::to_path_buf).unwrap_or_default();
            if self.files.contains(p) || self.dirs.contains(&parent) {
                out.push(FsItem::Changed(p.clone()));
            } else if self.missing.contains(p) || (self.discovery.contains(&parent) && new_dir(p)) {
                out.push(FsItem::Appeared(p.clone()));
            } else if removed && self.deferred.contains(&parent) {
                out.push(FsItem::Released(parent));
            }
        }
        out
    }
}

/// The file-system watcher: notify's recommended backend (inotify on Linux) on a set of
/// directories, each watched non-recursively, feeding classified events into a channel.
pub struct FsWatch {
    watcher: notify::RecommendedWatcher,
    watched: BTreeSet<PathBuf>,
    interest: Arc<Mutex<Interest>>,
}

/// How many classified events may wait for the service; beyond that they are dropped and the
/// overflow flag makes the service look at everything instead.
pub const EVENT_QUEUE: usize = 256;

impl FsWatch {
    /// Starts the watcher (watching nothing yet). Classified events go to `tx`; when `tx` is
    /// full, `overflow` is set.
    pub fn new(
        tx: tokio::sync::mpsc::Sender<FsItem>,
        overflow: Arc<AtomicBool>,
    ) -> notify::Result<FsWatch> {
        let interest = Arc::new(Mutex::new(Interest::default()));
        let shared = Arc::clone(&interest);
        let handler = move |res: notify::Result<notify::Event>| {
            let items = match res {
                Ok(event) => {
                    // A poisoned lock only means another thread panicked while holding it;
                    // the interest itself is a plain value and still usable.
                    let interest = shared.lock().unwrap_or_else(|e| e.into_inner());
                    interest.classify(&event, Path::is_dir)
                }
                Err(e) => {
                    tracing::warn!("file watch error, rescanning: {e}");
                    vec![FsItem::Rescan]
                }
            };
            for item in items {
                match tx.try_send(item) {
                    Ok(()) => {}
                    Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {
                        overflow.store(true, Ordering::SeqCst);
                    }
                    // The service is shutting down.
                    Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
        };
        let watcher = notify::recommended_watcher(handler)?;
        Ok(FsWatch {
            watcher,
            watched: BTreeSet::new(),
            interest,
        })
    }

    /// Watches exactly `dirs` from now on, with `interest` as the filter.
    pub fn update(&mut self, interest: Interest, dirs: BTreeSet<PathBuf>) {
        use notify::Watcher;
        *self.interest.lock().unwrap_or_else(|e| e.into_inner()) = interest;
        for gone in self.watched.difference(&dirs) {
            // The directory may have been deleted, which already ended its watch.
            let _ = self.watcher.unwatch(gone);
        }
        let mut now_watched = BTreeSet::new();
        for d in &dirs {
            if self.watched.contains(d) {
                now_watched.insert(d.clone());
                continue;
            }
            match self.watcher.watch(d, notify::RecursiveMode::NonRecursive) {
                Ok(()) => {
                    now_watched.insert(d.clone());
                }
                Err(e) => tracing::warn!("cannot watch {}: {e}", d.display()),
            }
        }
        tracing::debug!("watching {} directories", now_watched.len());
        self.watched = now_watched;
    }

    pub fn watched(&self) -> &BTreeSet<PathBuf> {
        &self.watched
    }
}

/// Route and address changes from the kernel (Linux rtnetlink). Windows has its own
/// notifications ([`NetWatch`]); macOS has the routing socket (`route_socket`).
#[cfg(any(target_os = "linux", test))]
// Elsewhere only the parser's tests use it.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub mod netlink {
    use std::collections::HashSet;

    const NLMSG_HDR: usize = 16;
    const NLMSG_ERROR: u16 = 2;
    const NLMSG_DONE: u16 = 3;
    pub const RTM_NEWADDR: u16 = 20;
    pub const RTM_DELADDR: u16 = 21;
    pub const RTM_GETADDR: u16 = 22;
    pub const RTM_NEWROUTE: u16 = 24;
    pub const RTM_DELROUTE: u16 = 25;
    pub const RTM_GETROUTE: u16 = 26;
    const IFA_ADDRESS: u16 = 1;
    const IFA_LOCAL: u16 = 2;
    const RTA_DST: u16 = 1;
    const RTA_OIF: u16 = 4;
    const RTA_GATEWAY: u16 = 5;
    const RTA_TABLE: u16 = 15;
    const RTN_UNICAST: u8 = 1;
    const RT_TABLE_MAIN: u32 = 254;
    const RTM_F_CLONED: u32 = 0x200;
    /// Multicast groups: IPv4 and IPv6 addresses and routes (not links: wireless drivers
    /// report link events for every scan, which would wake the agent for nothing).
    pub const GROUPS: u32 = 0x10 | 0x40 | 0x100 | 0x400;

    /// What identifies an address or a route, so that a refresh of the same one (IPv6 lifetimes
    /// are re-announced every few minutes) is no change.
    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    pub enum Key {
        Addr {
            family: u8,
            index: u32,
            prefix: u8,
            addr: Vec<u8>,
        },
        Route {
            family: u8,
            dst_len: u8,
            dst: Vec<u8>,
            gateway: Vec<u8>,
            oif: u32,
        },
    }

    /// One message of a netlink datagram.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Msg {
        New(Key),
        Del(Key),
        /// The end of a dump (or an error answer to one), with its sequence number.
        Done(u32),
        /// Anything else: other tables, cloned routes, other message types.
        Ignored,
    }

    fn u16_at(b: &[u8], at: usize) -> Option<u16> {
        Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
    }

    fn u32_at(b: &[u8], at: usize) -> Option<u32> {
        Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
    }

    fn align4(n: usize) -> usize {
        (n + 3) & !3
    }

    /// The (type, payload) attributes after a fixed header.
    fn attrs(b: &[u8]) -> Vec<(u16, &[u8])> {
        let mut out = Vec::new();
        let mut at = 0;
        while let (Some(len), Some(kind)) = (u16_at(b, at), u16_at(b, at + 2)) {
            let len = usize::from(len);
            if len < 4 || at + len > b.len() {
                break;
            }
            out.push((kind & 0x3fff, &b[at + 4..at + len]));
            at += align4(len);
        }
        out
    }

    fn addr_msg(body: &[u8], new: bool) -> Msg {
        let (Some(&family), Some(&prefix), Some(index)) =
            (body.first(), body.get(1), u32_at(body, 4))
        else {
            return Msg::Ignored;
        };
        let attrs = attrs(body.get(8..).unwrap_or_default());
        let find = |t| attrs.iter().find(|(k, _)| *k == t).map(|(_, v)| v.to_vec());
        let Some(addr) = find(IFA_LOCAL).or_else(|| find(IFA_ADDRESS)) else {
            return Msg::Ignored;
        };
        let key = Key::Addr {
            family,
            index,
            prefix,
            addr,
        };
        if new {
            Msg::New(key)
        } else {
            Msg::Del(key)
        }
    }

    fn route_msg(body: &[u8], new: bool) -> Msg {
        if body.len() < 12 {
            return Msg::Ignored;
        }
        let (family, dst_len, table, kind) = (body[0], body[1], u32::from(body[4]), body[7]);
        let flags = u32_at(body, 8).unwrap_or(0);
        let attrs = attrs(&body[12..]);
        let find = |t| attrs.iter().find(|(k, _)| *k == t).map(|(_, v)| v.to_vec());
        let table = find(RTA_TABLE)
            .and_then(|v| Some(u32::from_ne_bytes(v.get(..4)?.try_into().ok()?)))
            .unwrap_or(table);
        if table != RT_TABLE_MAIN || kind != RTN_UNICAST || flags & RTM_F_CLONED != 0 {
            return Msg::Ignored;
        }
        let oif = find(RTA_OIF)
            .and_then(|v| Some(u32::from_ne_bytes(v.get(..4)?.try_into().ok()?)))
            .unwrap_or(0);
        let key = Key::Route {
            family,
            dst_len,
            dst: find(RTA_DST).unwrap_or_default(),
            gateway: find(RTA_GATEWAY).unwrap_or_default(),
            oif,
        };
        if new {
            Msg::New(key)
        } else {
            Msg::Del(key)
        }
    }

    /// Parses one datagram. Truncated or malformed messages end the parse; what came before
    /// them is kept.
    pub fn parse(buf: &[u8]) -> Vec<Msg> {
        let mut out = Vec::new();
        let mut at = 0;
        while let (Some(len), Some(kind)) = (u32_at(buf, at), u16_at(buf, at + 4)) {
            let len = usize::try_from(len).unwrap_or(0);
            if len < NLMSG_HDR || at + len > buf.len() {
                break;
            }
            let seq = u32_at(buf, at + 8).unwrap_or(0);
            let body = &buf[at + NLMSG_HDR..at + len];
            out.push(match kind {
                RTM_NEWADDR => addr_msg(body, true),
                RTM_DELADDR => addr_msg(body, false),
                RTM_NEWROUTE => route_msg(body, true),
                RTM_DELROUTE => route_msg(body, false),
                NLMSG_DONE | NLMSG_ERROR => Msg::Done(seq),
                _ => Msg::Ignored,
            });
            at += align4(len);
        }
        out
    }

    /// A dump request (`RTM_GETADDR` or `RTM_GETROUTE`) for every family.
    pub fn dump_request(kind: u16, seq: u32) -> Vec<u8> {
        const NLM_F_REQUEST: u16 = 1;
        const NLM_F_DUMP: u16 = 0x300;
        // Header, then an ifaddrmsg or rtmsg of zeros (family AF_UNSPEC); both fit in 12 bytes.
        let body = if kind == RTM_GETADDR { 8 } else { 12 };
        let len = NLMSG_HDR + body;
        let mut b = Vec::with_capacity(len);
        b.extend_from_slice(&u32::try_from(len).unwrap_or(0).to_ne_bytes());
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        b.extend_from_slice(&seq.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.resize(len, 0);
        b
    }

    /// The addresses and routes known so far; says whether a message changes them.
    #[derive(Debug, Default)]
    pub struct NetState {
        known: HashSet<Key>,
    }

    impl NetState {
        /// Applies a message; true when the set of addresses or routes changed.
        pub fn apply(&mut self, msg: Msg) -> bool {
            match msg {
                Msg::New(k) => self.known.insert(k),
                Msg::Del(k) => self.known.remove(&k),
                Msg::Done(_) | Msg::Ignored => false,
            }
        }

        pub fn len(&self) -> usize {
            self.known.len()
        }
    }
}

/// Route, address and interface changes from the macOS routing socket (`PF_ROUTE`): the pure
/// parser and state; the socket itself is in [`NetWatch`].
#[cfg(any(target_os = "macos", test))]
// Elsewhere only the parser's tests use it.
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
pub mod route_socket;

// The parser's numbers and layouts, checked against the libc crate's Darwin definitions
// wherever the crate is compiled for macOS (the parser itself is tested on Linux).
#[cfg(target_os = "macos")]
const _: () = {
    use route_socket as rs;
    use std::mem::{offset_of, size_of};
    assert!(size_of::<libc::rt_msghdr>() == rs::RT_MSGHDR_LEN);
    assert!(size_of::<libc::ifa_msghdr>() == rs::IFA_MSGHDR_LEN);
    assert!(size_of::<libc::if_msghdr>() == rs::IF_MSGHDR_LEN);
    assert!(offset_of!(libc::rt_msghdr, rtm_index) == rs::RTM_INDEX_AT);
    assert!(offset_of!(libc::rt_msghdr, rtm_flags) == rs::RTM_FLAGS_AT);
    assert!(offset_of!(libc::rt_msghdr, rtm_addrs) == rs::RTM_ADDRS_AT);
    assert!(offset_of!(libc::rt_msghdr, rtm_errno) == rs::RTM_ERRNO_AT);
    assert!(offset_of!(libc::ifa_msghdr, ifam_addrs) == rs::IFM_ADDRS_AT);
    assert!(offset_of!(libc::ifa_msghdr, ifam_flags) == rs::IFM_FLAGS_AT);
    assert!(offset_of!(libc::ifa_msghdr, ifam_index) == rs::IFM_INDEX_AT);
    assert!(offset_of!(libc::if_msghdr, ifm_addrs) == rs::IFM_ADDRS_AT);
    assert!(offset_of!(libc::if_msghdr, ifm_flags) == rs::IFM_FLAGS_AT);
    assert!(offset_of!(libc::if_msghdr, ifm_index) == rs::IFM_INDEX_AT);
    assert!(libc::RTM_VERSION == rs::RTM_VERSION as i32);
    assert!(libc::RTM_ADD == rs::RTM_ADD as i32);
    assert!(libc::RTM_DELETE == rs::RTM_DELETE as i32);
    assert!(libc::RTM_CHANGE == rs::RTM_CHANGE as i32);
    assert!(libc::RTM_GET == rs::RTM_GET as i32);
    assert!(libc::RTM_NEWADDR == rs::RTM_NEWADDR as i32);
    assert!(libc::RTM_DELADDR == rs::RTM_DELADDR as i32);
    assert!(libc::RTM_IFINFO == rs::RTM_IFINFO as i32);
    assert!(libc::RTF_HOST == rs::RTF_HOST as i32);
    assert!(libc::RTF_DYNAMIC == rs::RTF_DYNAMIC as i32);
    assert!(libc::RTF_LLINFO == rs::RTF_LLINFO as i32);
    assert!(libc::RTF_WASCLONED == rs::RTF_WASCLONED as i32);
    assert!(libc::RTF_LOCAL == rs::RTF_LOCAL as i32);
    assert!(libc::RTF_BROADCAST == rs::RTF_BROADCAST as i32);
    assert!(libc::RTF_MULTICAST == rs::RTF_MULTICAST as i32);
    assert!(libc::RTF_IFSCOPE == rs::RTF_IFSCOPE as i32);
    assert!(libc::RTA_DST == 1 << rs::RTAX_DST);
    assert!(libc::RTA_GATEWAY == 1 << rs::RTAX_GATEWAY);
    assert!(libc::RTA_NETMASK == 1 << rs::RTAX_NETMASK);
    assert!(libc::RTA_IFA == 1 << rs::RTAX_IFA);
    assert!(libc::RTAX_MAX as usize == rs::RTAX_MAX);
    assert!(libc::IFF_UP == rs::IFF_UP as i32);
    assert!(libc::IFF_RUNNING == rs::IFF_RUNNING as i32);
    assert!(libc::AF_INET == rs::AF_INET as i32);
    assert!(libc::AF_INET6 == rs::AF_INET6 as i32);
    assert!(libc::AF_LINK == rs::AF_LINK as i32);
};

/// Network change notifications: a netlink socket on Linux; on Windows the IP Helper's unicast
/// address and route change callbacks (NotifyUnicastIpAddressChange, NotifyRouteChange2); on
/// macOS the routing socket (`PF_ROUTE`: addresses, routes, interfaces going up or down).
pub struct NetWatch {
    #[cfg(windows)]
    win: win_net::Notifications,
    #[cfg(target_os = "linux")]
    fd: tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
    #[cfg(target_os = "linux")]
    state: netlink::NetState,
    /// The dump in progress (1: addresses, 2: routes); changes seen during it only build the
    /// initial state.
    #[cfg(target_os = "linux")]
    dumping: Option<u32>,
    #[cfg(target_os = "linux")]
    buf: Vec<u8>,
    #[cfg(target_os = "macos")]
    route: tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
    #[cfg(target_os = "macos")]
    route_state: route_socket::NetState,
    #[cfg(target_os = "macos")]
    route_buf: Vec<u8>,
}

impl NetWatch {
    /// Opens the netlink socket and asks for the current addresses and routes.
    #[cfg(target_os = "linux")]
    pub fn open() -> std::io::Result<NetWatch> {
        use nix::sys::socket::{
            bind, socket, AddressFamily, NetlinkAddr, SockFlag, SockProtocol, SockType,
        };
        use std::os::fd::AsRawFd;
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::NetlinkRoute,
        )?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, netlink::GROUPS))?;
        // SAFETY: the OwnedFd is moved into the AsyncFd, which owns it until it is dropped, so
        // the descriptor stays open and refers to this socket for the AsyncFd's whole life.
        let fd = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
        }
        .map_err(std::io::Error::from)?;
        let mut w = NetWatch {
            fd,
            state: netlink::NetState::default(),
            dumping: None,
            buf: vec![0; 32 * 1024],
        };
        w.request_dump(1)?;
        Ok(w)
    }

    /// Registers for address and route changes (all families). Windows calls back on a
    /// thread of its own; the callbacks only wake the waiting task.
    #[cfg(windows)]
    pub fn open() -> std::io::Result<NetWatch> {
        Ok(NetWatch {
            win: win_net::Notifications::register()?,
        })
    }

    /// Opens the routing socket, then reads the current interfaces, addresses and routes
    /// (`sysctl` dumps) as the state that later messages are compared with. Opening first
    /// means nothing is missed: a message about something the dump already shows is no change.
    #[cfg(target_os = "macos")]
    pub fn open() -> std::io::Result<NetWatch> {
        use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
        use nix::sys::socket::{setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType};
        use std::os::fd::AsRawFd;
        // Darwin's socket(2) takes neither SOCK_CLOEXEC nor SOCK_NONBLOCK: set both afterwards.
        let fd = socket(AddressFamily::Route, SockType::Raw, SockFlag::empty(), None)?;
        fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
        fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
        // The default 8 KiB fills when a VPN installs dozens of routes at once, and the kernel
        // drops what does not fit without telling; a failure here only keeps the default.
        if let Err(e) = setsockopt(&fd, sockopt::RcvBuf, &(256 * 1024)) {
            tracing::debug!("routing socket receive buffer unchanged: {e}");
        }
        // SAFETY: the OwnedFd is moved into the AsyncFd, which owns it until it is dropped, so
        // the descriptor stays open and refers to this socket for the AsyncFd's whole life.
        let route = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
        }
        .map_err(std::io::Error::from)?;
        let mut w = NetWatch {
            route,
            route_state: route_socket::NetState::default(),
            // One message per read; the largest possible (eight 255-byte sockaddrs) is 2140.
            route_buf: vec![0; 4096],
        };
        w.load_route_state();
        Ok(w)
    }

    #[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
    pub fn open() -> std::io::Result<NetWatch> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "network change events are only implemented on Linux, Windows and macOS",
        ))
    }

    /// Starts the state over from the kernel's interface list and routing table. A dump that
    /// cannot be read leaves that part empty: its first refresh then counts as one change.
    #[cfg(target_os = "macos")]
    fn load_route_state(&mut self) {
        self.route_state = route_socket::NetState::default();
        for (what, name) in [
            (libc::NET_RT_IFLIST, "interface list"),
            (libc::NET_RT_DUMP, "routing table"),
        ] {
            match route_dump(what) {
                Ok(buf) => {
                    for msg in route_socket::parse(&buf) {
                        self.route_state.apply(msg);
                    }
                }
                Err(e) => tracing::warn!("cannot read the {name}: {e}"),
            }
        }
        tracing::debug!(
            "network state: {} addresses, routes and interfaces",
            self.route_state.len()
        );
    }

    #[cfg(target_os = "linux")]
    fn request_dump(&mut self, seq: u32) -> std::io::Result<()> {
        use nix::sys::socket::{sendto, MsgFlags, NetlinkAddr};
        use std::os::fd::AsRawFd;
        let kind = if seq == 1 {
            netlink::RTM_GETADDR
        } else {
            netlink::RTM_GETROUTE
        };
        let req = netlink::dump_request(kind, seq);
        sendto(
            self.fd.get_ref().as_raw_fd(),
            &req,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )?;
        self.dumping = Some(seq);
        Ok(())
    }

    /// Returns when an address or a route was added or removed.
    #[cfg(target_os = "linux")]
    pub async fn changed(&mut self) -> std::io::Result<()> {
        use nix::sys::socket::{recv, MsgFlags};
        use std::os::fd::AsRawFd;
        loop {
            let got = {
                let mut guard = self.fd.readable().await?;
                let buf = &mut self.buf;
                guard.try_io(|fd| {
                    recv(fd.get_ref().as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT)
                        .map_err(std::io::Error::from)
                })
            };
            let n = match got {
                Ok(Ok(n)) => n,
                Ok(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    // The kernel dropped notifications: our view is stale, so start over and
                    // count it as a change.
                    self.state = netlink::NetState::default();
                    self.request_dump(1)?;
                    return Ok(());
                }
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            };
            let mut changed = false;
            for msg in netlink::parse(&self.buf[..n]) {
                if let netlink::Msg::Done(seq) = msg {
                    if self.dumping == Some(seq) {
                        if seq == 1 {
                            self.request_dump(2)?;
                        } else {
                            self.dumping = None;
                            tracing::debug!(
                                "network state: {} addresses and routes",
                                self.state.len()
                            );
                        }
                    }
                    continue;
                }
                changed |= self.state.apply(msg);
            }
            if changed && self.dumping.is_none() {
                return Ok(());
            }
        }
    }

    /// Returns when an address or a route was added, changed or removed.
    #[cfg(windows)]
    pub async fn changed(&mut self) -> std::io::Result<()> {
        self.win.changed().await
    }

    /// Returns when an address or a route was added, changed or removed, or an interface
    /// holding an address went up or down.
    #[cfg(target_os = "macos")]
    pub async fn changed(&mut self) -> std::io::Result<()> {
        use nix::sys::socket::{recv, MsgFlags};
        use std::os::fd::AsRawFd;
        loop {
            let got = {
                let mut guard = self.route.readable().await?;
                let buf = &mut self.route_buf;
                guard.try_io(|fd| {
                    recv(fd.get_ref().as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT)
                        .map_err(std::io::Error::from)
                })
            };
            let n = match got {
                Ok(Ok(n)) => n,
                Ok(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    // Messages were lost: our view is stale, so start over and count it as a
                    // change.
                    self.load_route_state();
                    return Ok(());
                }
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            };
            let mut changed = false;
            for msg in route_socket::parse(&self.route_buf[..n]) {
                let default = matches!(
                    &msg,
                    route_socket::Msg::RouteSet { route, .. } | route_socket::Msg::RouteRemoved(route)
                        if route.is_default()
                );
                let this = self.route_state.apply(msg);
                if this && default {
                    tracing::debug!("the default route changed");
                }
                changed |= this;
            }
            if changed {
                return Ok(());
            }
        }
    }

    #[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
    pub async fn changed(&mut self) -> std::io::Result<()> {
        std::future::pending().await
    }
}

/// The largest routing-table or interface dump read (a laptop's is a few KiB).
#[cfg(target_os = "macos")]
const MAX_ROUTE_DUMP: usize = 4 << 20;

/// One `sysctl` dump of the routing socket's messages (`NET_RT_IFLIST` or `NET_RT_DUMP`, every
/// family), in the same format the socket delivers.
#[cfg(target_os = "macos")]
fn route_dump(what: libc::c_int) -> std::io::Result<Vec<u8>> {
    let mut mib = [libc::CTL_NET, libc::PF_ROUTE, 0, libc::AF_UNSPEC, what, 0];
    // The table may grow between asking for the size and reading: try again a few times.
    for _ in 0..4 {
        let mut len: libc::size_t = 0;
        // SAFETY: `mib` holds the 6 names passed; a null buffer asks for the size only, which
        // is written to `len`.
        let rc = unsafe {
            libc::sysctl(
                mib.as_mut_ptr(),
                6,
                std::ptr::null_mut(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if len > MAX_ROUTE_DUMP {
            return Err(std::io::Error::other(format!(
                "dump of {len} bytes is too large"
            )));
        }
        let mut buf = vec![0u8; len + len / 4 + 1024];
        let mut got: libc::size_t = buf.len();
        // SAFETY: `buf` is writable for `got` bytes; the kernel writes at most that many and
        // sets `got` to what it wrote.
        let rc = unsafe {
            libc::sysctl(
                mib.as_mut_ptr(),
                6,
                buf.as_mut_ptr().cast(),
                &mut got,
                std::ptr::null_mut(),
                0,
            )
        };
        if rc == 0 {
            buf.truncate(got);
            return Ok(buf);
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ENOMEM) {
            return Err(e);
        }
    }
    Err(std::io::Error::other(
        "the table kept growing while it was read",
    ))
}

/// The Windows side of [`NetWatch`].
#[cfg(windows)]
mod win_net {
    use std::ffi::c_void;
    use tokio::sync::mpsc::{channel, Receiver, Sender};
    use windows_sys::Win32::Foundation::{HANDLE, NO_ERROR};
    use windows_sys::Win32::NetworkManagement::IpHelper::{
        CancelMibChangeNotify2, MibInitialNotification, NotifyRouteChange2,
        NotifyUnicastIpAddressChange, MIB_IPFORWARD_ROW2, MIB_NOTIFICATION_TYPE,
        MIB_UNICASTIPADDRESS_ROW,
    };
    use windows_sys::Win32::Networking::WinSock::AF_UNSPEC;

    /// The registrations; cancelled (which waits for running callbacks) before the channel
    /// they write to is freed.
    pub struct Notifications {
        handles: Vec<HANDLE>,
        /// Leaked box: the context pointer the callbacks receive.
        tx: *mut Sender<()>,
        rx: Receiver<()>,
    }

    // SAFETY: the handles are only passed to CancelMibChangeNotify2, from whichever thread
    // drops this; the Sender behind `tx` is Sync and lives until after the cancellations.
    unsafe impl Send for Notifications {}

    /// Wakes the waiting task. A full channel already holds a wake-up, which is all that is
    /// needed: changes are counted as "something changed", not one by one.
    pub fn signal(tx: &Sender<()>, kind: MIB_NOTIFICATION_TYPE) {
        if kind != MibInitialNotification {
            let _ = tx.try_send(());
        }
    }

    unsafe extern "system" fn on_address(
        ctx: *const c_void,
        _row: *const MIB_UNICASTIPADDRESS_ROW,
        kind: MIB_NOTIFICATION_TYPE,
    ) {
        // SAFETY: `ctx` is the Sender registered below, alive until every registration is
        // cancelled.
        signal(unsafe { &*ctx.cast::<Sender<()>>() }, kind);
    }

    unsafe extern "system" fn on_route(
        ctx: *const c_void,
        _row: *const MIB_IPFORWARD_ROW2,
        kind: MIB_NOTIFICATION_TYPE,
    ) {
        // SAFETY: as in `on_address`.
        signal(unsafe { &*ctx.cast::<Sender<()>>() }, kind);
    }

    impl Notifications {
        pub fn register() -> std::io::Result<Notifications> {
            let (tx, rx) = channel(1);
            let mut n = Notifications {
                handles: Vec::new(),
                tx: Box::into_raw(Box::new(tx)),
                rx,
            };
            let ctx = n.tx.cast_const().cast::<c_void>();
            let mut h: HANDLE = std::ptr::null_mut();
            // SAFETY: the callback matches the documented signature; `ctx` outlives the
            // registration (see Drop); `h` receives the handle.
            let rc = unsafe {
                NotifyUnicastIpAddressChange(AF_UNSPEC, Some(on_address), ctx, false, &mut h)
            };
            if rc != NO_ERROR {
                // Drop cancels nothing yet and frees the box.
                return Err(std::io::Error::from_raw_os_error(rc as i32));
            }
            n.handles.push(h);
            let mut h: HANDLE = std::ptr::null_mut();
            // SAFETY: as above.
            let rc = unsafe { NotifyRouteChange2(AF_UNSPEC, Some(on_route), ctx, false, &mut h) };
            if rc != NO_ERROR {
                return Err(std::io::Error::from_raw_os_error(rc as i32));
            }
            n.handles.push(h);
            Ok(n)
        }

        pub async fn changed(&mut self) -> std::io::Result<()> {
            match self.rx.recv().await {
                Some(()) => Ok(()),
                // Cannot happen while `tx` is alive; treated as the end of the notifications.
                None => Err(std::io::Error::other("network notifications ended")),
            }
        }

        /// The context pointer, for tests that play the system's part.
        #[cfg(test)]
        pub fn context(&self) -> *const c_void {
            self.tx.cast_const().cast()
        }
    }

    impl Drop for Notifications {
        fn drop(&mut self) {
            for h in self.handles.drain(..) {
                // SAFETY: each handle came from a successful registration and is cancelled
                // once; cancelling waits for callbacks in progress.
                unsafe { CancelMibChangeNotify2(h) };
            }
            // SAFETY: `tx` came from Box::into_raw and no callback can use it any more.
            drop(unsafe { Box::from_raw(self.tx) });
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use windows_sys::Win32::NetworkManagement::IpHelper::{MibAddInstance, MibDeleteInstance};

        /// Under Wine: registering and cancelling work, and a callback the system makes wakes
        /// the watcher once however many came, while the initial notification wakes nothing.
        /// Wine's network stack cannot be made to change from a test, so the system's own
        /// calls are played by calling the callbacks as it would.
        #[test]
        fn address_and_route_callbacks_wake_the_watcher_once_per_burst() {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut n = Notifications::register().expect("registration");
                let ctx = n.context();
                // SAFETY: `ctx` is the live context of `n`; rows are not read.
                unsafe {
                    on_address(ctx, std::ptr::null(), MibInitialNotification);
                }
                let quiet =
                    tokio::time::timeout(std::time::Duration::from_millis(100), n.changed()).await;
                assert!(quiet.is_err(), "the initial notification woke the watcher");
                // SAFETY: as above.
                unsafe {
                    on_address(ctx, std::ptr::null(), MibAddInstance);
                    on_route(ctx, std::ptr::null(), MibDeleteInstance);
                    on_route(ctx, std::ptr::null(), MibAddInstance);
                }
                n.changed().await.unwrap();
                let again =
                    tokio::time::timeout(std::time::Duration::from_millis(100), n.changed()).await;
                assert!(again.is_err(), "a burst woke the watcher more than once");
                drop(n);
            });
        }
    }
}

/// Whether an overflow happened since the last call, clearing the flag.
pub fn take_overflow(flag: &AtomicBool) -> bool {
    flag.swap(false, Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::netlink::{self, Key, Msg, NetState};
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn debouncer_waits_for_quiet_but_never_longer_than_the_maximum() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(ms(300), ms(2000));
        d.push(t0, 1);
        assert_eq!(d.deadline(), Some(t0 + ms(300)));
        assert_eq!(d.take_due(t0 + ms(299)), None);
        // A steady stream every 100 ms keeps it quiet-less: the maximum wait decides.
        for i in 1..=30 {
            d.push(t0 + ms(100 * i), 1 + i);
        }
        assert_eq!(d.deadline(), Some(t0 + ms(2000)));
        let got = d.take_due(t0 + ms(2000)).unwrap();
        assert_eq!(got.len(), 31);
        assert_eq!(d.deadline(), None);
        assert!(d.take_due(t0 + ms(9000)).is_none());
    }

    #[test]
    fn debouncer_merges_repeats_of_the_same_item() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(ms(300), ms(2000));
        for i in 0..50 {
            d.push(t0 + ms(i), "prefs.js");
        }
        assert_eq!(d.take_due(t0 + ms(400)).unwrap().len(), 1);
    }

    #[test]
    fn token_bucket_allows_a_burst_then_one_per_period_and_does_not_hoard() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(t0, 3, Duration::from_secs(5));
        assert!(b.try_take(t0));
        assert!(b.try_take(t0));
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0 + ms(4999)));
        assert_eq!(b.ready_at(t0 + ms(10)), t0 + Duration::from_secs(5));
        assert!(b.try_take(t0 + Duration::from_secs(5)));
        assert!(!b.try_take(t0 + Duration::from_secs(6)));
        // An hour idle refills to the capacity, not to 720 tokens.
        let later = t0 + Duration::from_secs(3600);
        let taken = (0..10).filter(|_| b.try_take(later)).count();
        assert_eq!(taken, 3);
    }

    /// Drives a scheduler like the service does, with an injected clock: returns the due work
    /// seen at each wake-up.
    fn run_until(s: &mut Scheduler, from: Instant, until: Instant) -> Vec<(Instant, Due)> {
        let mut now = from;
        let mut out = Vec::new();
        while now <= until {
            for d in s.take_due(now) {
                if let Due::Files(items) = &d {
                    if s.admit_file_pass(now, items.clone()).is_none() {
                        continue;
                    }
                }
                out.push((now, d));
            }
            let next = s.next_wake(now);
            now = if next > now { next } else { now + ms(1) };
        }
        out
    }

    #[test]
    fn a_network_flapping_every_half_second_for_a_minute_stays_within_the_flap_bound() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(t0, Duration::from_secs(3600));
        let mut passes = 0;
        let mut now = t0;
        let end = t0 + Duration::from_secs(60);
        while now < end {
            s.network_event(now);
            for d in s.take_due(now) {
                if d == Due::Network {
                    passes += 1;
                }
            }
            now += ms(500);
        }
        // Let the last burst settle.
        passes += run_until(&mut s, now, now + Duration::from_secs(30))
            .iter()
            .filter(|(_, d)| *d == Due::Network)
            .count();
        let bound = 1 + (60 / NETWORK_PASS_EVERY.as_secs()) as usize;
        assert!(passes >= 1, "a flapping network must still be looked at");
        assert!(passes <= bound, "{passes} network passes, bound {bound}");
    }

    #[test]
    fn network_passes_are_spaced_by_the_flap_bound() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(t0, Duration::from_secs(3600));
        let mut times = Vec::new();
        for i in 0..120u64 {
            let now = t0 + ms(250 * i);
            s.network_event(now);
            if s.take_due(now).contains(&Due::Network) {
                times.push(now);
            }
        }
        for w in times.windows(2) {
            assert!(w[1] - w[0] >= NETWORK_PASS_EVERY, "{:?}", w[1] - w[0]);
        }
    }

    #[test]
    fn a_full_pass_absorbs_network_changes_seen_before_it_started() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(t0, Duration::from_secs(3600));
        s.network_event(t0);
        s.full_pass_done(t0 + ms(10), t0 + ms(500), Duration::from_secs(3600));
        assert!(run_until(&mut s, t0 + ms(500), t0 + Duration::from_secs(20)).is_empty());
    }

    #[test]
    fn a_single_edit_is_due_after_the_quiet_period() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(t0, Duration::from_secs(3600));
        s.file_event(t0, FsItem::Changed("/h/prefs.js".into()));
        assert_eq!(s.next_wake(t0), t0 + FILE_QUIET);
        assert!(s.take_due(t0 + ms(299)).is_empty());
        let due = s.take_due(t0 + FILE_QUIET);
        assert_eq!(
            due,
            vec![Due::Files(
                [FsItem::Changed("/h/prefs.js".into())]
                    .into_iter()
                    .collect()
            )]
        );
    }

    #[test]
    fn edits_every_40ms_for_two_seconds_cost_at_most_two_passes() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(t0, Duration::from_secs(3600));
        let mut passes = 0;
        for i in 0..50u64 {
            let now = t0 + ms(40 * i);
            s.file_event(now, FsItem::Changed("/h/prefs.js".into()));
            for d in s.take_due(now) {
                if let Due::Files(items) = d {
                    passes += usize::from(s.admit_file_pass(now, items).is_some());
                }
            }
        }
        let last = t0 + ms(40 * 49);
        passes += run_until(&mut s, last, last + Duration::from_secs(10))
            .iter()
            .filter(|(_, d)| matches!(d, Due::Files(_)))
            .count();
        assert!((1..=2).contains(&passes), "{passes} passes");
    }

    #[test]
    fn sustained_edits_are_held_by_the_file_bucket_not_dropped() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(t0, Duration::from_secs(3600));
        let mut admitted = Vec::new();
        // One real change every 400 ms for 30 s: each burst settles, the bucket decides.
        for i in 0..75u64 {
            let now = t0 + ms(400 * i);
            s.file_event(now, FsItem::Changed(format!("/h/{i}").into()));
            for d in s.take_due(now) {
                if let Due::Files(items) = d {
                    if let Some(got) = s.admit_file_pass(now, items) {
                        admitted.push((now, got.len()));
                    }
                }
            }
        }
        let end = t0 + ms(400 * 75);
        for (now, d) in run_until(&mut s, end, end + Duration::from_secs(30)) {
            if let Due::Files(items) = d {
                admitted.push((now, items.len()));
            }
        }
        let bound = FILE_PASS_BURST as usize + (60 / FILE_PASS_EVERY.as_secs()) as usize;
        assert!(admitted.len() <= bound, "{} passes", admitted.len());
        // Every change was looked at by some pass.
        assert_eq!(admitted.iter().map(|(_, n)| n).sum::<usize>(), 75);
    }

    #[test]
    fn the_periodic_pass_comes_back_after_each_full_pass() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(t0, Duration::from_secs(60));
        assert_eq!(s.next_wake(t0), t0 + Duration::from_secs(60));
        assert_eq!(
            s.take_due(t0 + Duration::from_secs(60)),
            vec![Due::Periodic]
        );
        let t1 = t0 + Duration::from_secs(61);
        s.full_pass_done(t0 + Duration::from_secs(60), t1, Duration::from_secs(60));
        assert!(s.take_due(t1).is_empty());
        assert_eq!(s.next_wake(t1), t1 + Duration::from_secs(60));
    }

    #[test]
    fn kerberos_wake_fires_once() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(t0, Duration::from_secs(3600));
        s.set_kerberos(Some(t0 + Duration::from_secs(5)));
        assert_eq!(s.next_wake(t0), t0 + Duration::from_secs(5));
        assert_eq!(s.take_due(t0 + Duration::from_secs(5)), vec![Due::Kerberos]);
        assert!(s.take_due(t0 + Duration::from_secs(6)).is_empty());
    }

    fn interest() -> Interest {
        Interest {
            files: [
                "/h/.thunderbird/p/prefs.js".into(),
                "/etc/mm/policy.toml".into(),
            ]
            .into_iter()
            .collect(),
            dirs: ["/h/.config/evolution/sources".into()]
                .into_iter()
                .collect(),
            discovery: ["/h".into(), "/h/.config".into()].into_iter().collect(),
            missing: ["/h/.config/msmtp".into()].into_iter().collect(),
            deferred: ["/h/.thunderbird/p".into()].into_iter().collect(),
        }
    }

    fn ev(kind: notify::EventKind, path: &str) -> notify::Event {
        notify::Event::new(kind).add_path(path.into())
    }

    #[test]
    fn classify_keeps_content_changes_and_drops_reads_and_touches() {
        use notify::event::{AccessKind, AccessMode, MetadataKind, ModifyKind, RenameMode};
        use notify::EventKind as K;
        let i = interest();
        let prefs = "/h/.thunderbird/p/prefs.js";
        let changed = vec![FsItem::Changed(prefs.into())];
        let no_dir = |_: &Path| false;
        for kind in [
            K::Modify(ModifyKind::Data(notify::event::DataChange::Any)),
            K::Access(AccessKind::Close(AccessMode::Write)),
            K::Modify(ModifyKind::Name(RenameMode::To)),
            K::Remove(notify::event::RemoveKind::File),
            K::Create(notify::event::CreateKind::File),
        ] {
            assert_eq!(i.classify(&ev(kind, prefs), no_dir), changed, "{kind:?}");
        }
        for kind in [
            K::Access(AccessKind::Open(AccessMode::Any)),
            K::Access(AccessKind::Close(AccessMode::Read)),
            K::Modify(ModifyKind::Metadata(MetadataKind::WriteTime)),
        ] {
            assert!(i.classify(&ev(kind, prefs), no_dir).is_empty(), "{kind:?}");
        }
        // The editor's temporary file next to it is nobody's business.
        let tmp = ev(
            K::Create(notify::event::CreateKind::File),
            "/h/.thunderbird/p/prefs-1.js",
        );
        assert!(i.classify(&tmp, no_dir).is_empty());
    }

    #[test]
    fn classify_sees_new_client_directories_and_released_locks() {
        use notify::event::{CreateKind, ModifyKind, RemoveKind, RenameMode};
        use notify::EventKind as K;
        let i = interest();
        let no_dir = |_: &Path| false;
        assert_eq!(
            i.classify(
                &ev(K::Create(CreateKind::Folder), "/h/.thunderbird2"),
                no_dir
            ),
            vec![FsItem::Appeared("/h/.thunderbird2".into())]
        );
        // A file created in the home is not a mail client.
        assert!(i
            .classify(&ev(K::Create(CreateKind::File), "/h/.bash_history"), no_dir)
            .is_empty());
        // A directory renamed into ~/.config is.
        let renamed = ev(
            K::Modify(ModifyKind::Name(RenameMode::To)),
            "/h/.config/aerc",
        );
        assert_eq!(
            i.classify(&renamed, |_| true),
            vec![FsItem::Appeared("/h/.config/aerc".into())]
        );
        assert_eq!(
            i.classify(
                &ev(K::Create(CreateKind::Folder), "/h/.config/msmtp"),
                no_dir
            ),
            vec![FsItem::Appeared("/h/.config/msmtp".into())]
        );
        assert_eq!(
            i.classify(
                &ev(K::Remove(RemoveKind::Any), "/h/.thunderbird/p/lock"),
                no_dir
            ),
            vec![FsItem::Released("/h/.thunderbird/p".into())]
        );
        assert_eq!(
            i.classify(
                &ev(
                    K::Modify(ModifyKind::Data(notify::event::DataChange::Any)),
                    "/h/.config/evolution/sources/x.source"
                ),
                no_dir
            ),
            vec![FsItem::Changed(
                "/h/.config/evolution/sources/x.source".into()
            )]
        );
        let overflow = notify::Event::new(K::Other).set_flag(notify::event::Flag::Rescan);
        assert_eq!(i.classify(&overflow, no_dir), vec![FsItem::Rescan]);
    }

    #[test]
    fn interest_watches_parents_and_the_nearest_existing_ancestor() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let profile = home.join(".thunderbird/p");
        std::fs::create_dir_all(&profile).unwrap();
        let prefs = profile.join("prefs.js");
        let msmtp = home.join(".config/msmtp/config");
        let policy = dir.path().join("policy.toml");
        let (i, watch) = Interest::build(
            &[prefs.clone(), msmtp.clone()],
            std::slice::from_ref(&home),
            Some(&policy),
            &HashSet::new(),
        );
        assert!(i.files.contains(&prefs) && i.files.contains(&msmtp) && i.files.contains(&policy));
        assert!(i.missing.contains(&home.join(".config/msmtp")));
        assert!(i.missing.contains(&home.join(".config")));
        assert!(watch.contains(&profile));
        assert!(watch.contains(&home));
        assert!(watch.contains(dir.path()));
        assert!(!watch.contains(&home.join(".config")));
    }

    fn nlmsg(kind: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let len = 16 + body.len();
        let mut b = Vec::new();
        b.extend_from_slice(&(len as u32).to_ne_bytes());
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(&0u16.to_ne_bytes());
        b.extend_from_slice(&seq.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(body);
        while b.len() % 4 != 0 {
            b.push(0);
        }
        b
    }

    fn rtattr(kind: u16, data: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(data);
        while b.len() % 4 != 0 {
            b.push(0);
        }
        b
    }

    fn addr_body(index: u32, addr: [u8; 4]) -> Vec<u8> {
        let mut b = vec![2u8, 24, 0, 0];
        b.extend_from_slice(&index.to_ne_bytes());
        b.extend(rtattr(2, &addr));
        b
    }

    fn route_body(table: u8, gateway: [u8; 4]) -> Vec<u8> {
        // family, dst_len, src_len, tos, table, protocol, scope, type; flags.
        let mut b = vec![2u8, 0, 0, 0, table, 3, 0, 1];
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend(rtattr(5, &gateway));
        b.extend(rtattr(4, &3u32.to_ne_bytes()));
        b
    }

    #[test]
    fn netlink_address_refreshes_are_no_change_but_new_and_removed_ones_are() {
        let mut state = NetState::default();
        let new = nlmsg(netlink::RTM_NEWADDR, 0, &addr_body(3, [192, 168, 1, 7]));
        let msgs = netlink::parse(&new);
        assert!(matches!(
            &msgs[..],
            [Msg::New(Key::Addr {
                index: 3,
                prefix: 24,
                ..
            })]
        ));
        assert!(state.apply(msgs[0].clone()));
        // The same address announced again (a lifetime refresh) changes nothing.
        assert!(!state.apply(netlink::parse(&new)[0].clone()));
        let del = nlmsg(netlink::RTM_DELADDR, 0, &addr_body(3, [192, 168, 1, 7]));
        assert!(state.apply(netlink::parse(&del)[0].clone()));
        assert!(!state.apply(netlink::parse(&del)[0].clone()));
    }

    #[test]
    fn netlink_routes_outside_the_main_table_are_ignored() {
        let mut buf = nlmsg(netlink::RTM_NEWROUTE, 0, &route_body(254, [10, 0, 0, 1]));
        buf.extend(nlmsg(
            netlink::RTM_NEWROUTE,
            0,
            &route_body(255, [10, 0, 0, 1]),
        ));
        buf.extend(nlmsg(3, 7, &[0, 0, 0, 0]));
        let msgs = netlink::parse(&buf);
        assert_eq!(msgs.len(), 3);
        assert!(matches!(&msgs[0], Msg::New(Key::Route { oif: 3, .. })));
        assert_eq!(msgs[1], Msg::Ignored);
        assert_eq!(msgs[2], Msg::Done(7));
    }

    #[test]
    fn netlink_parser_survives_truncated_and_garbage_input() {
        let good = nlmsg(netlink::RTM_NEWADDR, 0, &addr_body(1, [10, 1, 1, 1]));
        for cut in 0..good.len() {
            let _ = netlink::parse(&good[..cut]);
        }
        let mut lying = good.clone();
        lying[0] = 0xff;
        assert!(netlink::parse(&lying).is_empty());
        assert!(netlink::parse(&[0u8; 64]).is_empty());
        let bad_attr = nlmsg(
            netlink::RTM_NEWADDR,
            0,
            &[2, 24, 0, 0, 1, 0, 0, 0, 0xff, 0x7f],
        );
        assert_eq!(netlink::parse(&bad_attr), vec![Msg::Ignored]);
    }

    #[test]
    fn dump_requests_are_well_formed() {
        let r = netlink::dump_request(netlink::RTM_GETROUTE, 2);
        assert_eq!(r.len(), 28);
        assert_eq!(u32::from_ne_bytes(r[0..4].try_into().unwrap()), 28);
        assert_eq!(
            u16::from_ne_bytes(r[4..6].try_into().unwrap()),
            netlink::RTM_GETROUTE
        );
        assert_eq!(u32::from_ne_bytes(r[8..12].try_into().unwrap()), 2);
    }
}
