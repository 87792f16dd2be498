//! The append-only, hash-chained audit log: write, read, filter and verify.
//!
//! Layout of a log directory (0700 on unix; every file 0600):
//! - `audit.jsonl`: the live file, one JSON record per line;
//! - `audit.<N>.jsonl`: rotated files, `1` the oldest; the chain runs through them in order and
//!   on into the live file;
//! - `audit.head`: the seq and hash of the last line written, replaced atomically, so that
//!   removing or editing the last record (which no successor vouches for) is detected;
//! - `audit.lock`: what writers lock around read-tail-and-append.
//!
//! Each record's `prev` is the SHA-256 of the previous record's line bytes (without the
//! newline); the first record's is 64 zeros. An append returns only after the line and the
//! head are fsynced. There is no key: the chain detects edits, deletions and reordering by
//! anyone who does not recompute every later hash, which is what an append-only log on an
//! endpoint can promise.
//!
//! Interruptions and damage (details in the `log` module's documentation):
//! - writers take an exclusive lock on `audit.lock` and re-read the tail under it, so two
//!   processes appending at once never fork the chain; readers take a shared lock (unix);
//! - a crash mid-write leaves a last line without a newline. `verify` reports it as
//!   `truncated`, `read_all` skips it, and the next `open` or `append` cuts it off and keeps its
//!   text in a `recovery` record: that record was never acknowledged (the head had not moved),
//!   so cutting it loses nothing and keeps the log verifiable after an ordinary power cut;
//! - if `audit.head` shows that acknowledged records were removed, cut or altered, the writer
//!   continues the chain from the head and writes a `recovery` record, so the damage stays
//!   visible to `verify` rather than being covered by later appends;
//! - a crash between syncing a line and replacing the head leaves the head one record behind;
//!   that is accepted as intact and healed by the next append.

mod error;
mod event;
mod files;
mod log;
pub mod redact;
mod sys;
mod verify;
mod view;

pub use error::AuditError;
pub use event::{Event, EventKind, Mode, Outcome, Record};
pub use files::{GENESIS, HEAD, LIVE, LOCK};
pub use log::{AuditLog, SyncStats, DEFAULT_MAX_BYTES};
pub use verify::{read_all, read_since, verify, VerifyReport};
pub use view::{filter, parse_since, render_table, Filter, TABLE_WIDTH};
