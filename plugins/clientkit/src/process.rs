//! Which programs run as which user: the process table, read from `/proc/<pid>/comm` and
//! `/proc/<pid>/status` for real, and behind a trait so that tests can hand in a table of their
//! own.

use std::fmt;
use std::path::{Path, PathBuf};

/// One running process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: u32,
    /// The command name as the kernel keeps it (`/proc/<pid>/comm`): the executable's file name,
    /// cut to 15 bytes.
    pub name: String,
    /// The real user id, when known.
    pub uid: Option<u32>,
}

/// A source of the running processes.
pub trait ProcessTable: Send + Sync + fmt::Debug {
    /// Every live process (zombies left out).
    fn processes(&self) -> Vec<ProcessInfo>;
}

/// The process table of a `/proc` file system (Linux). Zombies are left out: they run nothing.
/// Elsewhere, or when `/proc` cannot be read, it lists nothing.
#[derive(Debug, Clone)]
pub struct ProcFs {
    root: PathBuf,
}

impl Default for ProcFs {
    fn default() -> ProcFs {
        ProcFs::new()
    }
}

impl ProcFs {
    /// The system's process table, `/proc`.
    pub fn new() -> ProcFs {
        ProcFs::at("/proc")
    }

    /// A process table read from a directory laid out like `/proc`, at `root`.
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

/// The kernel's name for a program: its file name cut to 15 bytes.
pub fn comm_name(program: &str) -> &str {
    let mut end = program.len().min(15);
    while !program.is_char_boundary(end) {
        end -= 1;
    }
    &program[..end]
}

/// Whether one of `programs` runs as `uid` (as any user when `uid` is unknown). Programs are
/// compared by the name the kernel keeps ([`comm_name`]), and a process whose user is unknown
/// counts, to be safe: a fix is then deferred rather than raced.
pub fn any_running(table: &dyn ProcessTable, programs: &[&str], uid: Option<u32>) -> bool {
    table.processes().iter().any(|p| {
        programs.iter().any(|prog| p.name == comm_name(prog))
            && match (uid, p.uid) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            }
    })
}

/// The user owning a file: the user whose configuration it is. `None` where files have no
/// numeric owner (not Unix) or the file cannot be read.
pub fn owner_uid(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| m.uid())
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_program_names_compare_as_the_kernel_cuts_them() {
        assert_eq!(comm_name("evolution-source-registry"), "evolution-sourc");
        assert_eq!(comm_name("mbsync"), "mbsync");
    }

    #[test]
    fn status_fields_are_read_by_name() {
        let s = "Name:\tmutt\nState:\tS (sleeping)\nUid:\t1000\t1000\t1000\t1000\n";
        assert_eq!(status_field(s, "Uid"), Some("1000\t1000\t1000\t1000"));
        assert_eq!(status_field(s, "State"), Some("S (sleeping)"));
        assert_eq!(status_field(s, "Gid"), None);
    }

    #[test]
    fn a_fake_proc_tree_reads_names_uids_and_skips_zombies() {
        let tmp = tempfile::tempdir().unwrap();
        let proc = |pid: &str, comm: &str, state: &str, uid: u32| {
            let d = tmp.path().join(pid);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("comm"), format!("{comm}\n")).unwrap();
            std::fs::write(
                d.join("status"),
                format!("Name:\t{comm}\nState:\t{state}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n"),
            )
            .unwrap();
        };
        proc("10", "evolution-sourc", "S (sleeping)", 1000);
        proc("11", "evolution", "Z (zombie)", 1001);
        proc("12", "bash", "R (running)", 1001);
        std::fs::create_dir_all(tmp.path().join("self")).unwrap();
        let table = ProcFs::at(tmp.path());
        let mut ps = table.processes();
        ps.sort_by_key(|p| p.pid);
        assert_eq!(
            ps,
            [
                ProcessInfo {
                    pid: 10,
                    uid: Some(1000),
                    name: "evolution-sourc".into()
                },
                ProcessInfo {
                    pid: 12,
                    uid: Some(1001),
                    name: "bash".into()
                }
            ]
        );
        let evolution = ["evolution-source-registry", "evolution"];
        assert!(any_running(&table, &evolution, Some(1000)));
        assert!(!any_running(&table, &evolution, Some(1001)));
        assert!(any_running(&table, &evolution, None));
    }

    #[test]
    fn a_process_of_unknown_user_counts_to_be_safe() {
        let p = |name: &str, uid| ProcessInfo {
            pid: 1,
            name: name.into(),
            uid,
        };
        let table = StaticProcesses(vec![p("mutt", None), p("aerc", Some(1000))]);
        assert!(any_running(&table, &["mutt"], Some(1000)));
        assert!(!any_running(&table, &["aerc"], Some(1001)));
        assert!(!any_running(&table, &["neomutt"], None));
    }

    #[test]
    fn this_process_is_listed_on_linux() {
        if cfg!(target_os = "linux") {
            let me = std::process::id();
            assert!(ProcFs::default().processes().iter().any(|p| p.pid == me));
        }
    }
}
