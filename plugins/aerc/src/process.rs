//! Which processes run, by name and user, from `/proc/<pid>/comm` and `/proc/<pid>/status`;
//! behind a trait so that tests can hand in a process table of their own.

use std::fmt;
use std::path::PathBuf;

/// One running process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: u32,
    /// The command name (`comm`, at most 15 bytes on Linux).
    pub name: String,
    /// The real user id, when known.
    pub uid: Option<u32>,
}

/// A source of the running processes.
pub trait ProcessTable: Send + Sync + fmt::Debug {
    /// Every live process (zombies left out).
    fn processes(&self) -> Vec<ProcessInfo>;
}

/// The process table of a `/proc` file system (Linux). Elsewhere, or when `/proc` cannot be
/// read, it lists nothing.
#[derive(Debug, Clone)]
pub struct ProcFs {
    root: PathBuf,
}

impl Default for ProcFs {
    fn default() -> ProcFs {
        ProcFs::at("/proc")
    }
}

impl ProcFs {
    /// A process table read from a `/proc`-like directory at `root`.
    pub fn at(root: impl Into<PathBuf>) -> ProcFs {
        ProcFs { root: root.into() }
    }
}

impl ProcessTable for ProcFs {
    fn processes(&self) -> Vec<ProcessInfo> {
        let Ok(dir) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            // A process may exit between the listing and the reads; it is then simply gone.
            let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) else {
                continue;
            };
            let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
            if let Some(state) = status_field(&status, "State") {
                if state.starts_with('Z') || state.starts_with('X') {
                    continue;
                }
            }
            let uid = status_field(&status, "Uid")
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok());
            out.push(ProcessInfo {
                pid,
                name: comm.trim_end_matches('\n').to_string(),
                uid,
            });
        }
        out
    }
}

/// A `Name:\tvalue` field of `/proc/<pid>/status`.
fn status_field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == name).then(|| v.trim())
    })
}

/// A fixed process table, for tests and for callers that list processes themselves.
#[derive(Debug, Clone, Default)]
pub struct StaticProcesses(pub Vec<ProcessInfo>);

impl ProcessTable for StaticProcesses {
    fn processes(&self) -> Vec<ProcessInfo> {
        self.0.clone()
    }
}

/// Whether a process named one of `names` runs as `uid` (as anyone, when `uid` is unknown).
pub fn any_running(table: &dyn ProcessTable, names: &[&str], uid: Option<u32>) -> bool {
    table.processes().iter().any(|p| {
        names.contains(&p.name.as_str())
            && match (uid, p.uid) {
                (Some(want), Some(have)) => want == have,
                // Unknown on either side: count it, to be safe.
                _ => true,
            }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_are_read_by_name() {
        let s = "Name:\tmutt\nState:\tS (sleeping)\nUid:\t1000\t1000\t1000\t1000\n";
        assert_eq!(status_field(s, "Uid"), Some("1000\t1000\t1000\t1000"));
        assert_eq!(status_field(s, "State"), Some("S (sleeping)"));
        assert_eq!(status_field(s, "Gid"), None);
    }

    #[test]
    fn this_process_is_listed_on_linux() {
        if cfg!(target_os = "linux") {
            let me = std::process::id();
            assert!(ProcFs::default().processes().iter().any(|p| p.pid == me));
        }
    }
}
