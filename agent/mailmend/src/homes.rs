//! Which home directories to scan: one given with `--home`, every user's when running as root,
//! otherwise the caller's own.

use mailmend_core::Home;
use std::path::{Path, PathBuf};

/// One line of /etc/passwd that matters to us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

/// Parses /etc/passwd text. Malformed lines are skipped: the file is the system's, not the
/// user's mail configuration, and one bad line must not hide every other user.
pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: PathBuf::from(f[5]),
            })
        })
        .collect()
}

/// Human users: root and regular accounts (uid 1000 and up), not `nobody`.
pub fn human_users(entries: Vec<PasswdEntry>) -> Vec<PasswdEntry> {
    entries
        .into_iter()
        .filter(|e| e.uid == 0 || (e.uid >= 1000 && e.uid != 65534))
        .collect()
}

/// The homes to scan for this run.
pub fn homes(explicit: Option<&Path>) -> Vec<Home> {
    if let Some(path) = explicit {
        return vec![home_for_path(path)];
    }
    #[cfg(unix)]
    {
        if nix::unistd::geteuid().is_root() {
            let text = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
            return human_users(parse_passwd(&text))
                .into_iter()
                .filter(|e| e.home.is_dir())
                .map(|e| Home {
                    user: e.name,
                    path: e.home,
                    uid: Some(e.uid),
                    gid: Some(e.gid),
                })
                .collect();
        }
    }
    match std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE")) {
        Some(h) => vec![home_for_path(Path::new(&h))],
        None => Vec::new(),
    }
}

/// A home given by path: its owner, when we can tell, is the user.
fn home_for_path(path: &Path) -> Home {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(m) = std::fs::metadata(path) {
            let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(m.uid()))
                .ok()
                .flatten()
                .map(|u| u.name)
                .unwrap_or_else(|| m.uid().to_string());
            return Home {
                user: name,
                path: path.to_path_buf(),
                uid: Some(m.uid()),
                gid: Some(m.gid()),
            };
        }
    }
    Home {
        user: std::env::var("USER")
            .or_else(|_| std::env::var("USERNAME"))
            .unwrap_or_else(|_| "unknown".to_string()),
        path: path.to_path_buf(),
        uid: None,
        gid: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_parsing_keeps_humans_and_skips_bad_lines() {
        let text = "root:x:0:0:root:/root:/bin/bash\n\
                    daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
                    broken line\n\
                    alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash\n\
                    nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
                    bob:x:1001:1001::/home/bob:/bin/zsh\n";
        let users: Vec<String> = human_users(parse_passwd(text))
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(users, vec!["root", "alice", "bob"]);
    }
}
