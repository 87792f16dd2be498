//! Why an audit operation failed.

use std::io;
use std::path::PathBuf;

/// Why the log could not be opened, written, read or filtered.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A file or the directory of the log could not be created, read, written or synced:
    /// usually permissions (the log belongs to another user), a full disk, or a path that is
    /// not a directory.
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The lock that serialises writers could not be taken: the lock file belongs to another
    /// user, or (on windows) another writer held it for more than 30 seconds.
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A line of a log file is not an audit record: the file was damaged or edited by hand.
    #[error("{path}:{line}:{column}: not an audit record: {message}; run verify to find out whether the log was tampered with")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// The `since` filter is not a time: the user typed something other than RFC 3339 or a date.
    #[error("invalid --since value {value:?}: {reason}; use RFC 3339 like 2024-05-01T09:30:00Z or a date like 2024-05-01")]
    BadSince { value: String, reason: String },
    /// A record's `time` is not RFC 3339: the record was edited or damaged.
    #[error("record seq {seq} has an invalid time {value:?}; run verify to find out whether the log was tampered with")]
    BadRecordTime { seq: u64, value: String },
    /// A record could not be encoded as JSON; this indicates a bug, not bad input.
    #[error("cannot encode audit record: {0}")]
    Encode(#[source] serde_json::Error),
    /// The system clock is outside what RFC 3339 can express (before year 0 or after 9999).
    #[error("cannot format the current time as rfc 3339: {0}")]
    Clock(String),
}

impl AuditError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> AuditError {
        let path = path.into();
        move |source| AuditError::Io {
            action,
            path,
            source,
        }
    }
}
