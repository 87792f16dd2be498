//! Which programs run as which user: the process table, read from `/proc` for real and
//! injectable for tests.

use std::path::{Path, PathBuf};

/// One running process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    /// The real user id.
    pub uid: u32,
    /// The command name as the kernel keeps it (`/proc/<pid>/comm`): the executable's file name,
    /// cut to 15 bytes.
    pub name: String,
}

/// A source of the running processes.
pub trait ProcessTable: Send + Sync {
    fn processes(&self) -> Vec<Process>;
}

/// The process table of a Linux `/proc`. Zombies are left out: they run nothing. Elsewhere the
/// table is empty.
#[derive(Debug, Clone)]
pub struct ProcFs {
    root: PathBuf,
}

impl Default for ProcFs {
    fn default() -> Self {
        ProcFs::new()
    }
}

impl ProcFs {
    pub fn new() -> ProcFs {
        ProcFs::at("/proc")
    }

    /// A table read from another directory laid out like `/proc`.
    pub fn at(root: impl Into<PathBuf>) -> ProcFs {
        ProcFs { root: root.into() }
    }

    fn read(dir: &Path, pid: u32) -> Option<Process> {
        let status = std::fs::read_to_string(dir.join("status")).ok()?;
        let mut uid = None;
        for line in status.lines() {
            if let Some(state) = line.strip_prefix("State:") {
                let state = state.trim_start();
                if state.starts_with('Z') || state.starts_with('X') {
                    return None;
                }
            } else if let Some(ids) = line.strip_prefix("Uid:") {
                uid = ids.split_whitespace().next()?.parse().ok();
            }
        }
        let name = std::fs::read_to_string(dir.join("comm")).ok()?;
        Some(Process {
            pid,
            uid: uid?,
            name: name.trim_end_matches('\n').to_string(),
        })
    }
}

impl ProcessTable for ProcFs {
    fn processes(&self) -> Vec<Process> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let pid: u32 = e.file_name().to_str()?.parse().ok()?;
                // A process that exits while the table is read simply is not in it.
                ProcFs::read(&e.path(), pid)
            })
            .collect()
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

/// Whether one of `programs` runs as `uid` (as any user when the uid is unknown).
pub fn runs(table: &dyn ProcessTable, programs: &[&str], uid: Option<u32>) -> bool {
    table.processes().iter().any(|p| {
        programs.iter().any(|prog| p.name == comm_name(prog)) && uid.is_none_or(|u| p.uid == u)
    })
}

/// The user owning a file: the user whose configuration it is.
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
        proc("10", "mbsync", "S (sleeping)", 1000);
        proc("11", "mbsync", "Z (zombie)", 1001);
        proc("12", "bash", "R (running)", 1001);
        std::fs::create_dir_all(tmp.path().join("self")).unwrap();
        let table = ProcFs::at(tmp.path());
        let mut ps = table.processes();
        ps.sort_by_key(|p| p.pid);
        assert_eq!(
            ps,
            [
                Process {
                    pid: 10,
                    uid: 1000,
                    name: "mbsync".into()
                },
                Process {
                    pid: 12,
                    uid: 1001,
                    name: "bash".into()
                }
            ]
        );
        assert!(runs(&table, &["mbsync"], Some(1000)));
        assert!(!runs(&table, &["mbsync"], Some(1001)));
        assert!(runs(&table, &["mbsync"], None));
    }
}
