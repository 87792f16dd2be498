//! Reading the log back: `read_all` returns every record in chain order (`read_since` only those
//! of the files written to since a time), and `verify` walks the
//! chain across all files and names the first record that was altered, removed, reordered or
//! cut short.

use crate::error::AuditError;
use crate::event::Record;
use crate::files::{self, HeadState, GENESIS, HEAD, LIVE, LOCK};
use crate::sys;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// What `verify` concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyReport {
    /// Every record links to its predecessor and the last one matches `audit.head`.
    Intact { records: u64 },
    /// The first problem found. `problem` starts with one of `altered`, `removed`, `reordered`,
    /// `truncated`, `not JSON`, `not a record`, `head behind` or `bad head`, then explains.
    Broken {
        file: PathBuf,
        /// 1-based line in `file`; for records missing at the end, the line where the first of
        /// them would be.
        line: usize,
        /// The seq of the broken record, or of the first missing one; `None` when unknown.
        seq: Option<u64>,
        problem: String,
    },
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        matches!(self, VerifyReport::Intact { .. })
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyReport::Intact { records } => {
                write!(f, "intact: {records} records, chain and head agree")
            }
            VerifyReport::Broken {
                file,
                line,
                seq,
                problem,
            } => {
                write!(f, "{}:{line}: ", file.display())?;
                if let Some(seq) = seq {
                    write!(f, "seq {seq}: ")?;
                }
                f.write_str(problem)
            }
        }
    }
}

/// Reads every record, oldest first, across rotated files and the live file.
///
/// An unterminated last line of the live file is an interrupted write, not a record, and is
/// skipped (the next append sets it aside; `verify` reports it). Any other line that is not a
/// record is an error naming its file and line.
pub fn read_all(dir: &Path) -> Result<Vec<Record>, AuditError> {
    read_since(dir, std::time::SystemTime::UNIX_EPOCH)
}

/// Reads the records that may have been written since `since`, oldest first: the live file and
/// every rotated file last modified at or after `since`. A rotated file is only ever appended
/// to and then renamed, so its modification time is that of its newest record, and an older
/// file holds nothing from that period; skipping it keeps start-up reads bounded however long
/// the log grows. Records before `since` in the files read are returned too (callers filter by
/// time).
pub fn read_since(dir: &Path, since: std::time::SystemTime) -> Result<Vec<Record>, AuditError> {
    let _lock = read_lock(dir)?;
    let live = dir.join(LIVE);
    let mut chain = files::chain_files(dir).map_err(AuditError::io("read directory", dir))?;
    chain.retain(|path| {
        *path == live
            || std::fs::metadata(path)
                .and_then(|m| m.modified())
                // A time the system cannot give is no reason to skip the file.
                .map_or(true, |modified| modified >= since)
    });
    let mut records = Vec::new();
    for path in &chain {
        let lines = files::read_lines(path).map_err(AuditError::io("read", path))?;
        for line in lines {
            if !line.terminated {
                continue;
            }
            let record =
                serde_json::from_slice::<Record>(&line.bytes).map_err(|e| AuditError::Parse {
                    path: path.clone(),
                    line: line.number,
                    column: e.column(),
                    message: e.to_string(),
                })?;
            records.push(record);
        }
    }
    Ok(records)
}

fn read_lock(dir: &Path) -> Result<sys::ReadLock, AuditError> {
    if !dir.is_dir() {
        // Report a missing directory as such, not as a lock failure.
        std::fs::read_dir(dir).map_err(AuditError::io("read directory", dir))?;
    }
    let path = dir.join(LOCK);
    sys::ReadLock::acquire(&path).map_err(|source| AuditError::Lock { path, source })
}

/// One line of the log, as `verify` sees it.
struct Entry {
    file: usize,
    line: usize,
    link: Result<Link, String>,
}

struct Link {
    seq: u64,
    prev: String,
    hash: String,
}

/// Checks the whole chain and `audit.head`, and names the first problem.
///
/// `Err` means the log could not be read at all (permissions, a missing directory); damage
/// inside the files is a `Broken` report, never an error.
pub fn verify(dir: &Path) -> Result<VerifyReport, AuditError> {
    let _lock = read_lock(dir)?;
    let chain = files::chain_files(dir).map_err(AuditError::io("read directory", dir))?;
    let mut entries = Vec::new();
    let mut lines_per_file = Vec::new();
    for (file, path) in chain.iter().enumerate() {
        let lines = files::read_lines(path).map_err(AuditError::io("read", path))?;
        lines_per_file.push(lines.len());
        for line in lines {
            let link = if !line.terminated {
                Err(format!(
                    "truncated: line {} has no final newline: a write was cut short (a crash \
                     mid-write) or the file was cut; an interrupted write is set aside by the \
                     next append",
                    line.number
                ))
            } else {
                parse_entry(&line.bytes)
            };
            entries.push(Entry {
                file,
                line: line.number,
                link,
            });
        }
    }

    // Where each seq first occurs, to tell records that moved from records that are gone.
    let mut first_at: HashMap<u64, usize> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        if let Ok(l) = &e.link {
            first_at.entry(l.seq).or_insert(i);
        }
    }
    let broken = |e: &Entry, seq: Option<u64>, problem: String| VerifyReport::Broken {
        file: chain[e.file].clone(),
        line: e.line,
        seq,
        problem,
    };

    let mut expected_seq = 1u64;
    let mut expected_prev = GENESIS.to_string();
    let mut previous: Option<usize> = None;
    for (i, e) in entries.iter().enumerate() {
        let link = match &e.link {
            Ok(l) => l,
            Err(problem) => return Ok(broken(e, None, problem.clone())),
        };
        if link.seq == expected_seq {
            if link.prev != expected_prev {
                return Ok(match previous {
                    Some(p) => {
                        let pe = &entries[p];
                        broken(
                            pe,
                            Some(expected_seq - 1),
                            format!(
                                "altered: this record no longer matches the hash that the next \
                                 record (seq {}, {}:{}) holds for it",
                                link.seq,
                                file_name(&chain[e.file]),
                                e.line
                            ),
                        )
                    }
                    None => broken(
                        e,
                        Some(link.seq),
                        format!(
                            "altered: the first record must hold the all-zero hash as prev, \
                             found {:?}",
                            link.prev
                        ),
                    ),
                });
            }
        } else if first_at.get(&expected_seq).is_some_and(|&j| j > i) {
            return Ok(broken(
                e,
                Some(link.seq),
                format!(
                    "reordered: found seq {} where seq {expected_seq} was expected; seq \
                     {expected_seq} comes later in the log",
                    link.seq
                ),
            ));
        } else if link.seq > expected_seq {
            let missing = link.seq - expected_seq;
            let mut problem = if missing == 1 {
                format!(
                    "removed: expected seq {expected_seq}, found seq {}: 1 record is missing \
                     before this one",
                    link.seq
                )
            } else {
                format!(
                    "removed: expected seq {expected_seq}, found seq {}: {missing} records \
                     (seq {expected_seq} to {}) are missing before this one",
                    link.seq,
                    link.seq - 1
                )
            };
            if e.line == 1 {
                problem.push_str(
                    " (this is the first line of its file: an older file, or the start of this \
                     one, was deleted)",
                );
            }
            return Ok(broken(e, Some(link.seq), problem));
        } else {
            return Ok(broken(
                e,
                Some(link.seq),
                format!(
                    "reordered: found seq {} after seq {}: records are out of order or \
                     duplicated",
                    link.seq,
                    expected_seq - 1
                ),
            ));
        }
        expected_seq = link.seq.saturating_add(1);
        expected_prev = link.hash.clone();
        previous = Some(i);
    }

    let last_seq = expected_seq - 1;
    let head_path = dir.join(HEAD);
    let head = files::read_head(dir).map_err(AuditError::io("read", &head_path))?;
    // Where the record after the last one would go, for reports about missing records.
    let (end_file, end_line) = match chain.last() {
        Some(path) => (
            path.clone(),
            lines_per_file.last().copied().unwrap_or(0) + 1,
        ),
        None => (dir.join(LIVE), 1),
    };
    let last_entry = previous.map(|p| &entries[p]);
    let last_link = last_entry.and_then(|e| e.link.as_ref().ok());
    let head = match head {
        HeadState::Valid(h) => h,
        HeadState::Invalid(why) => {
            return Ok(VerifyReport::Broken {
                file: head_path,
                line: 1,
                seq: None,
                problem: format!("bad head: audit.head is not valid ({why})"),
            })
        }
        HeadState::Missing => {
            // Only the first record may lack a head: a crash after writing it, before the head.
            if last_seq <= 1 {
                return Ok(VerifyReport::Intact { records: last_seq });
            }
            return Ok(VerifyReport::Broken {
                file: head_path,
                line: 1,
                seq: None,
                problem: format!(
                    "removed: audit.head is missing, so the last record (seq {last_seq}) cannot \
                     be checked"
                ),
            });
        }
    };
    let last_hash = last_link.map_or(GENESIS, |l| l.hash.as_str());
    if head.seq == last_seq && head.hash == last_hash {
        return Ok(VerifyReport::Intact { records: last_seq });
    }
    // A crash between syncing the last line and replacing the head leaves the head one behind.
    if last_link.is_some_and(|l| l.seq == head.seq + 1 && l.prev == head.hash) {
        return Ok(VerifyReport::Intact { records: last_seq });
    }
    if head.seq > last_seq {
        let missing = head.seq - last_seq;
        return Ok(VerifyReport::Broken {
            file: end_file,
            line: end_line,
            seq: Some(last_seq + 1),
            problem: format!(
                "truncated: the log ends at seq {last_seq} but audit.head records seq {}: the \
                 last {missing} record(s) were removed",
                head.seq
            ),
        });
    }
    if head.seq == last_seq {
        // `last_entry` is some: last_seq >= 1 here, since a head of seq 0 equals the genesis.
        let (file, line) = match last_entry {
            Some(e) => (chain[e.file].clone(), e.line),
            None => (end_file, end_line),
        };
        return Ok(VerifyReport::Broken {
            file,
            line,
            seq: Some(last_seq),
            problem: "altered: the last record does not match the hash audit.head holds for it"
                .to_string(),
        });
    }
    // The head is behind. If the record it names does not have its hash, the head is wrong;
    // otherwise records were added past it: name the first one beyond the crash window.
    let named = entries
        .iter()
        .find(|e| e.link.as_ref().is_ok_and(|l| l.seq == head.seq));
    let named_hash = match named {
        Some(e) => e.link.as_ref().ok().map(|l| l.hash.as_str()),
        None if head.seq == 0 => Some(GENESIS),
        None => None,
    };
    if named_hash != Some(head.hash.as_str()) {
        return Ok(VerifyReport::Broken {
            file: head_path,
            line: 1,
            seq: None,
            problem: format!(
                "bad head: audit.head records seq {} with a hash that does not match that                  record; it was edited or replaced",
                head.seq
            ),
        });
    }
    let first_past = entries
        .iter()
        .find(|e| e.link.as_ref().is_ok_and(|l| l.seq == head.seq + 2));
    let (file, line) = match first_past {
        Some(e) => (chain[e.file].clone(), e.line),
        None => (end_file, end_line),
    };
    Ok(VerifyReport::Broken {
        file,
        line,
        seq: Some(head.seq + 2),
        problem: format!(
            "head behind: audit.head records seq {} but the log continues to seq {last_seq}: \
             records were appended without updating audit.head, or it was replaced by an older \
             copy",
            head.seq
        ),
    })
}

fn parse_entry(bytes: &[u8]) -> Result<Link, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let record: Record = serde_json::from_value(value).map_err(|e| format!("not a record: {e}"))?;
    Ok(Link {
        seq: record.seq,
        prev: record.prev,
        hash: files::line_hash(bytes),
    })
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
