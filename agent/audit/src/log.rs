//! The writer: `AuditLog` appends records under an inter-process lock, fsyncs them before
//! returning, rotates files without breaking the chain, and repairs an interrupted tail.
//!
//! Every append, under the exclusive lock, re-reads the chain's tail from disk (another process
//! may have appended since) and compares it with `audit.head`:
//! - they agree, or the head lags by exactly the record whose head update a crash cut off:
//!   the chain continues from the tail;
//! - the head is ahead of the tail, or names the same seq with another hash: records were
//!   removed or the last one altered. The chain continues *from the head*, so that the damage
//!   stays visible to `verify` as a gap or a hash mismatch instead of being papered over;
//! - the head is missing, unreadable or behind: the chain continues from the tail.
//!
//! In the two disagreeing cases a `recovery` record says what was found.
//!
//! A live file that does not end with a newline holds a record whose write was cut short. If
//! the head agrees with the tail, that record was never acknowledged (the head is updated only
//! after the line is synced), so the incomplete bytes are cut off and kept, as text, in the
//! `before` of a `recovery` record: the chain stays verifiable and nothing is lost. Otherwise
//! the bytes belonged to an acknowledged record that was cut later; they are left in place
//! (terminated by a newline) as evidence that `verify` keeps reporting.

use crate::error::AuditError;
use crate::event::{Event, EventKind, Record};
use crate::files::{self, FileEnd, Head, HeadState, GENESIS, LIVE, LOCK};
use crate::redact::redact;
use crate::sys;
use serde::Deserialize;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The live file is rotated once the next line would take it past this size.
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;

/// How many times the log asked the system to make data durable; lets tests check that every
/// append really reaches `fsync`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// `fsync` of a log file or of the head's temporary file.
    pub file_syncs: u64,
    /// `fsync` of the log directory, after a file was created, renamed or replaced.
    pub dir_syncs: u64,
}

/// An open audit log directory. Cheap to hold; each append takes the lock, so several handles
/// (in one process or many) can share a directory.
pub struct AuditLog {
    dir: PathBuf,
    max_bytes: u64,
    host: String,
    os_user: String,
    stats: SyncStats,
}

/// Where the chain ends, as the next append needs it.
struct Tail {
    seq: u64,
    hash: String,
    live_len: u64,
    live_exists: bool,
}

/// The last record's chain fields, read without requiring the rest of the record to parse.
struct LastRecord {
    seq: u64,
    prev: String,
    hash: String,
}

#[derive(Deserialize)]
struct Link {
    seq: u64,
    prev: String,
}

fn parse_link(line: &[u8]) -> Option<Link> {
    serde_json::from_slice::<Link>(line).ok()
}

enum Verdict {
    Agree,
    /// A crash fell between syncing the last line and updating the head.
    LagOne,
    Disagree {
        from: Head,
        reason: String,
    },
}

impl AuditLog {
    /// Opens the log in `dir`, creating the directory (0700 on unix) if it is missing, and
    /// repairs the tail if a write was interrupted (see the module documentation).
    pub fn open(dir: &Path) -> Result<AuditLog, AuditError> {
        let existed = dir.is_dir();
        sys::create_private_dir(dir).map_err(AuditError::io("create directory", dir))?;
        let mut log = AuditLog {
            dir: dir.to_path_buf(),
            max_bytes: DEFAULT_MAX_BYTES,
            host: sys::host_name(),
            os_user: sys::os_user(),
            stats: SyncStats::default(),
        };
        if !existed {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sys::sync_dir(parent).map_err(AuditError::io("sync directory", parent))?;
                log.stats.dir_syncs += 1;
            }
        }
        let _lock = log.lock()?;
        log.sync_tail()?;
        Ok(log)
    }

    /// Sets the size past which the live file is rotated (default 10 MiB).
    pub fn with_max_bytes(mut self, n: u64) -> Self {
        self.max_bytes = n;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How often this handle has synced files and the directory so far.
    pub fn sync_stats(&self) -> SyncStats {
        self.stats
    }

    /// Appends one record. When this returns `Ok`, the line and the head are on disk (fsynced),
    /// so a caller may go on to make the change the record announces.
    pub fn append(&mut self, event: Event) -> Result<Record, AuditError> {
        let _lock = self.lock()?;
        let mut tail = self.sync_tail()?;
        self.write_record(&mut tail, event)
    }

    fn lock(&self) -> Result<sys::WriteLock, AuditError> {
        let path = self.dir.join(LOCK);
        sys::WriteLock::acquire(&path).map_err(|source| AuditError::Lock { path, source })
    }

    /// Reads the tail under the lock, repairs what an interrupted write or damage left, and
    /// says where the next record goes.
    fn sync_tail(&mut self) -> Result<Tail, AuditError> {
        let live = self.dir.join(LIVE);
        let live_end = match files::read_end(&live) {
            Ok(e) => Some(e),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(AuditError::io("read", &live)(e)),
        };
        let last = self.last_record(live_end.as_ref())?;
        let head = files::read_head(&self.dir)
            .map_err(AuditError::io("read", self.dir.join(files::HEAD)))?;
        let verdict = judge(&head, last.as_ref());
        let mut tail = Tail {
            seq: last.as_ref().map_or(0, |l| l.seq),
            hash: last
                .as_ref()
                .map_or_else(|| GENESIS.to_string(), |l| l.hash.clone()),
            live_len: live_end.as_ref().map_or(0, |e| e.len),
            live_exists: live_end.is_some(),
        };

        let mut notes = Vec::new();
        let mut before = None;
        if let Some((offset, bytes)) = live_end.and_then(|e| e.partial) {
            let file = sys::private_options()
                .append(true)
                .open(&live)
                .map_err(AuditError::io("open", &live))?;
            if matches!(verdict, Verdict::Agree | Verdict::LagOne) {
                file.set_len(offset)
                    .map_err(AuditError::io("truncate", &live))?;
                tail.live_len = offset;
                notes.push(format!(
                    "set aside an incomplete record left by an interrupted write ({} bytes at \
                     byte {offset} of {LIVE}); it was never acknowledged to its writer, and its \
                     text is kept in `before`",
                    bytes.len()
                ));
                before = Some(serde_json::json!({
                    "partial": String::from_utf8_lossy(&bytes),
                    "bytes": bytes.len(),
                    "sha256": files::line_hash(&bytes),
                }));
            } else {
                (&file)
                    .write_all(b"\n")
                    .map_err(AuditError::io("write", &live))?;
                tail.live_len += 1;
                notes.push(format!(
                    "left the incomplete line at byte {offset} of {LIVE} in place as evidence"
                ));
            }
            file.sync_all().map_err(AuditError::io("sync", &live))?;
            self.stats.file_syncs += 1;
        }
        if let Verdict::Disagree { from, reason } = verdict {
            notes.insert(
                0,
                format!(
                    "{reason}; the chain continues from seq {} so that verify keeps reporting it",
                    from.seq
                ),
            );
            tail.seq = from.seq;
            tail.hash = from.hash;
        }
        if !notes.is_empty() {
            let mut event = Event::new(EventKind::Recovery, notes.join("; "));
            event.before = before;
            self.write_record(&mut tail, event)?;
        }
        Ok(tail)
    }

    /// The chain fields of the last complete record, looking back through older files when the
    /// live file has none.
    fn last_record(&self, live_end: Option<&FileEnd>) -> Result<Option<LastRecord>, AuditError> {
        // The common case needs no directory listing: the live file ends with a record.
        if let Some(line) = live_end.and_then(|e| e.last_line.as_deref()) {
            if let Some(link) = parse_link(line) {
                return Ok(Some(LastRecord {
                    seq: link.seq,
                    prev: link.prev,
                    hash: files::line_hash(line),
                }));
            }
        }
        let chain =
            files::chain_files(&self.dir).map_err(AuditError::io("list directory", &self.dir))?;
        let live = self.dir.join(LIVE);
        for path in chain.iter().rev() {
            let end;
            let end = match live_end {
                Some(e) if *path == live => e,
                _ => {
                    end = files::read_end(path).map_err(AuditError::io("read", path))?;
                    &end
                }
            };
            let Some(line) = &end.last_line else {
                continue;
            };
            if let Some(link) = parse_link(line) {
                return Ok(Some(LastRecord {
                    seq: link.seq,
                    prev: link.prev,
                    hash: files::line_hash(line),
                }));
            }
            // The last line is damaged; look further back for the last record that is not.
            // Rare, so reading the whole file is acceptable.
            let lines = files::read_lines(path).map_err(AuditError::io("read", path))?;
            for line in lines.iter().rev().filter(|l| l.terminated) {
                if let Some(link) = parse_link(&line.bytes) {
                    return Ok(Some(LastRecord {
                        seq: link.seq,
                        prev: link.prev,
                        hash: files::line_hash(&line.bytes),
                    }));
                }
            }
        }
        Ok(None)
    }

    fn write_record(&mut self, tail: &mut Tail, mut event: Event) -> Result<Record, AuditError> {
        redact(&mut event);
        let time = OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .map_err(|e| AuditError::Clock(e.to_string()))?;
        let record = Record {
            seq: tail.seq.saturating_add(1),
            time,
            host: self.host.clone(),
            os_user: self.os_user.clone(),
            event,
            prev: tail.hash.clone(),
        };
        let mut line = serde_json::to_vec(&record).map_err(AuditError::Encode)?;
        let hash = files::line_hash(&line);
        line.push(b'\n');

        if tail.live_len > 0 && tail.live_len.saturating_add(line.len() as u64) > self.max_bytes {
            self.rotate(tail)?;
        }
        let live = self.dir.join(LIVE);
        let mut file = sys::private_options()
            .append(true)
            .create(true)
            .open(&live)
            .map_err(AuditError::io("open", &live))?;
        // One write of the whole line: with O_APPEND it lands at the end even if a writer that
        // ignores the lock appended meanwhile, and a crash leaves at most one incomplete line.
        file.write_all(&line)
            .map_err(AuditError::io("write", &live))?;
        file.sync_all().map_err(AuditError::io("sync", &live))?;
        self.stats.file_syncs += 1;
        if !tail.live_exists {
            sys::sync_dir(&self.dir).map_err(AuditError::io("sync directory", &self.dir))?;
            self.stats.dir_syncs += 1;
            tail.live_exists = true;
        }
        tail.live_len += line.len() as u64;
        tail.seq = record.seq;
        tail.hash = hash.clone();

        let head = Head {
            seq: record.seq,
            hash,
        };
        files::write_head(&self.dir, &head)
            .map_err(AuditError::io("write", self.dir.join(files::HEAD)))?;
        self.stats.file_syncs += 1;
        self.stats.dir_syncs += 1;
        Ok(record)
    }

    /// Renames the live file to the next `audit.<N>.jsonl`; the next line starts a new live
    /// file whose first record's `prev` is the hash of the renamed file's last line.
    fn rotate(&mut self, tail: &mut Tail) -> Result<(), AuditError> {
        let numbers = files::rotated_numbers(&self.dir)
            .map_err(AuditError::io("list directory", &self.dir))?;
        let next = numbers.last().map_or(1, |n| n + 1);
        let from = self.dir.join(LIVE);
        let to = self.dir.join(files::rotated_name(next));
        std::fs::rename(&from, &to).map_err(AuditError::io("rotate", &from))?;
        sys::sync_dir(&self.dir).map_err(AuditError::io("sync directory", &self.dir))?;
        self.stats.dir_syncs += 1;
        tail.live_len = 0;
        tail.live_exists = false;
        Ok(())
    }
}

fn judge(head: &HeadState, last: Option<&LastRecord>) -> Verdict {
    let (tail_seq, tail_hash) = last.map_or((0, GENESIS), |l| (l.seq, l.hash.as_str()));
    let tail = Head {
        seq: tail_seq,
        hash: tail_hash.to_string(),
    };
    let head = match head {
        HeadState::Missing => Head {
            seq: 0,
            hash: GENESIS.to_string(),
        },
        HeadState::Valid(h) => h.clone(),
        HeadState::Invalid(why) => {
            return Verdict::Disagree {
                from: tail,
                reason: format!("audit.head is not valid ({why})"),
            }
        }
    };
    if head == tail {
        return Verdict::Agree;
    }
    if last.is_some_and(|l| l.seq == head.seq + 1 && l.prev == head.hash) {
        return Verdict::LagOne;
    }
    if head.seq > tail.seq {
        let reason = format!(
            "audit.head records seq {} but the log ends at seq {}: the last record(s) were \
             removed or cut short",
            head.seq, tail.seq
        );
        Verdict::Disagree { from: head, reason }
    } else if head.seq == tail.seq {
        let reason = format!(
            "the last record (seq {}) does not match the hash audit.head holds for it: it was \
             altered",
            tail.seq
        );
        Verdict::Disagree { from: head, reason }
    } else if head.seq == 0 && head.hash == GENESIS {
        let reason = format!(
            "audit.head is missing although the log holds records up to seq {}",
            tail.seq
        );
        Verdict::Disagree { from: tail, reason }
    } else {
        let reason = format!(
            "audit.head records seq {}, behind the log's last record (seq {}): records were \
             appended without updating it, or it was replaced by an older copy",
            head.seq, tail.seq
        );
        Verdict::Disagree { from: tail, reason }
    }
}
