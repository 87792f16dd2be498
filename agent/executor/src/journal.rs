//! The state directory: intents of fixes in flight, records of finished fixes with their
//! snapshots (for `mailmend rollback`), and the audit log's directory.
//!
//! Snapshots hold the exact prior bytes of the files (or registry values) a fix changed, because
//! restoring them byte for byte is the promise. They can therefore contain whatever the user's
//! configuration contains; the state directory is created 0700 and its files 0600, and snapshots
//! are never printed or logged.

use crate::fsutil::{self, FileMeta};
use base64::Engine as _;
use mailmend_core::{Action, RegistryEdit};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// What a fix changed, as needed to undo it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Snapshot {
    /// Files rewritten by the fix, with their bytes before and after.
    Files { files: Vec<FileSnapshot> },
    /// The action has nothing to restore (a cache flush, a notification); the reason says why.
    Nothing { reason: String },
    /// Registry values rewritten by the fix (Outlook for Windows), each with its exact value
    /// before and after.
    Registry { edits: Vec<RegistryEdit> },
    /// A change made by a `Performer` (a firewall rule, a renewed ticket): what it recorded
    /// before applying, and what it reported after.
    Performed {
        performer: String,
        before: serde_json::Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<serde_json::Value>,
    },
}

/// One file's content before and after a fix, base64 so the record stays valid JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSnapshot {
    pub path: PathBuf,
    pub before: String,
    pub after: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<FileMeta>,
}

impl FileSnapshot {
    pub fn new(path: PathBuf, before: &[u8], after: &[u8], meta: Option<FileMeta>) -> Self {
        let b64 = base64::engine::general_purpose::STANDARD;
        FileSnapshot {
            path,
            before: b64.encode(before),
            after: b64.encode(after),
            meta,
        }
    }

    pub fn before_bytes(&self) -> io::Result<Vec<u8>> {
        decode(&self.before)
    }

    pub fn after_bytes(&self) -> io::Result<Vec<u8>> {
        decode(&self.after)
    }
}

fn decode(s: &str) -> io::Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("bad snapshot: {e}")))
}

/// Where a fix stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FixState {
    /// Recorded before anything was written; still in `intents/` if the agent died.
    Intended,
    Applied,
    /// Undone later by `mailmend rollback`.
    RolledBack,
}

/// Everything known about one fix, kept for rollback by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixRecord {
    pub fix_id: String,
    pub time: String,
    pub account_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub client: String,
    pub finding_code: String,
    pub action: Action,
    pub snapshot: Snapshot,
    pub state: FixState,
}

/// The agent's state directory and its layout.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// Opens (creating when missing, mode 0700) the state directory.
    pub fn open(root: &Path) -> io::Result<StateDir> {
        let s = StateDir {
            root: root.to_path_buf(),
        };
        for d in [s.root.clone(), s.intents(), s.fixes()] {
            create_private_dir(&d)?;
        }
        Ok(s)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn audit_dir(&self) -> PathBuf {
        self.root.join("audit")
    }

    fn intents(&self) -> PathBuf {
        self.root.join("intents")
    }

    fn fixes(&self) -> PathBuf {
        self.root.join("fixes")
    }

    fn intent_path(&self, id: &str) -> PathBuf {
        self.intents().join(format!("{id}.json"))
    }

    fn fix_path(&self, id: &str) -> PathBuf {
        self.fixes().join(format!("{id}.json"))
    }

    /// Durably records a fix about to be applied. Nothing may be written before this returns.
    pub fn write_intent(&self, rec: &FixRecord) -> io::Result<()> {
        write_private_json(&self.intent_path(&rec.fix_id), rec)
    }

    /// Records the fix's final state for later rollback and removes its intent.
    pub fn finish(&self, rec: &FixRecord) -> io::Result<()> {
        write_private_json(&self.fix_path(&rec.fix_id), rec)?;
        self.discard_intent(&rec.fix_id)
    }

    /// Removes an intent whose fix did not stay (rolled back, failed, recovered).
    pub fn discard_intent(&self, id: &str) -> io::Result<()> {
        match fs::remove_file(self.intent_path(id)) {
            Ok(()) => fsutil::sync_dir(&self.intent_path(id)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Intents left by an agent that died mid-fix. An unreadable intent file is returned as an
    /// error with its path, so that the caller can report it instead of silently skipping it.
    pub fn unfinished(&self) -> io::Result<Vec<Result<FixRecord, (PathBuf, String)>>> {
        let mut out = Vec::new();
        let mut paths: Vec<PathBuf> = fs::read_dir(self.intents())?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        for p in paths {
            out.push(read_json(&p).map_err(|e| (p.clone(), e.to_string())));
        }
        Ok(out)
    }

    /// A finished fix by id, or `None` when there is no such fix.
    pub fn fix(&self, id: &str) -> io::Result<Option<FixRecord>> {
        if !valid_fix_id(id) {
            return Ok(None);
        }
        match read_json(&self.fix_path(id)) {
            Ok(r) => Ok(Some(r)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Updates a finished fix's record (after a rollback).
    pub fn update_fix(&self, rec: &FixRecord) -> io::Result<()> {
        write_private_json(&self.fix_path(&rec.fix_id), rec)
    }
}

/// Fix ids are ours (`fx-…`); anything else, such as a path, is not looked up.
fn valid_fix_id(id: &str) -> bool {
    id.starts_with("fx-")
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn create_private_dir(d: &Path) -> io::Result<()> {
    fs::create_dir_all(d)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(d, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

fn write_private_json<T: Serialize>(path: &Path, v: &T) -> io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(v).map_err(io::Error::other)?;
    bytes.push(b'\n');
    let meta = FileMeta {
        mode: 0o600,
        uid: current_uid(),
        gid: current_gid(),
    };
    fsutil::atomic_write(path, &bytes, Some(meta))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> io::Result<T> {
    let bytes = fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })
}

#[cfg(unix)]
fn current_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

#[cfg(unix)]
fn current_gid() -> u32 {
    nix::unistd::getegid().as_raw()
}

#[cfg(not(unix))]
fn current_uid() -> u32 {
    0
}

#[cfg(not(unix))]
fn current_gid() -> u32 {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fix_ids_that_are_paths_are_not_looked_up() {
        assert!(valid_fix_id("fx-20261122T101010Z-abcdef"));
        assert!(!valid_fix_id("../../etc/passwd"));
        assert!(!valid_fix_id("fx-../x"));
    }
}
