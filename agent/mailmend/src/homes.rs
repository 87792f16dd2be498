//! Which home directories to scan: one given with `--home`, every user's when running as root
//! (on Windows: as SYSTEM or elevated, every profile in the registry's ProfileList), otherwise
//! the caller's own.

use mailmend_core::Home;
use std::path::{Path, PathBuf};

#[cfg(any(unix, test))]
/// One line of /etc/passwd that matters to us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

#[cfg(any(unix, test))]
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

#[cfg(any(unix, test))]
/// Human users: root and regular accounts (uid 1000 and up), not `nobody`.
pub fn human_users(entries: Vec<PasswdEntry>) -> Vec<PasswdEntry> {
    entries
        .into_iter()
        .filter(|e| e.uid == 0 || (e.uid >= 1000 && e.uid != 65534))
        .collect()
}

#[cfg(any(windows, test))]
/// One user profile from the registry's ProfileList: the key name (a SID) and the
/// `ProfileImagePath` value as stored (usually with `%SystemDrive%` unexpanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileEntry {
    pub sid: String,
    pub image_path: String,
}

#[cfg(any(windows, test))]
/// The people's profiles among ProfileList entries: SIDs of local and domain accounts
/// (`S-1-5-21-…`; not SYSTEM, LocalService and NetworkService) with their `%VAR%` references
/// expanded through `env`. Entries whose path names an unknown variable are skipped: guessing a
/// drive could scan the wrong user's files. Returns (user, home): the user is the profile
/// folder's name, which Windows makes from the account name.
pub fn profile_homes(
    entries: Vec<ProfileEntry>,
    env: impl Fn(&str) -> Option<String>,
) -> Vec<(String, PathBuf)> {
    entries
        .into_iter()
        .filter(|e| e.sid.starts_with("S-1-5-21-"))
        .filter_map(|e| {
            let path = expand_env(&e.image_path, &env)?;
            let user = path
                .rsplit(['\\', '/'])
                .find(|s| !s.is_empty())?
                .to_string();
            Some((user, PathBuf::from(path)))
        })
        .collect()
}

#[cfg(any(windows, test))]
/// Expands `%NAME%` references (REG_EXPAND_SZ); `None` when a name is unknown.
fn expand_env(s: &str, env: &impl Fn(&str) -> Option<String>) -> Option<String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find('%') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after.find('%')?;
        out.push_str(&env(&after[..end])?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// The ProfileList of this machine.
#[cfg(windows)]
fn read_profile_list() -> Vec<ProfileEntry> {
    const KEY: &str = r"SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList";
    let Ok(list) = windows_registry::LOCAL_MACHINE.open(KEY) else {
        return Vec::new();
    };
    let Ok(sids) = list.keys() else {
        return Vec::new();
    };
    sids.filter_map(|sid| {
        let image_path = list.open(&sid).ok()?.get_string("ProfileImagePath").ok()?;
        Some(ProfileEntry { sid, image_path })
    })
    .collect()
}

/// Whether this process may read every user's files: LocalSystem (the service) or an elevated
/// administrator.
#[cfg(windows)]
fn is_elevated() -> bool {
    use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
    use windows_sys::Win32::Security::{
        GetTokenInformation, TokenElevation, TOKEN_ELEVATION, TOKEN_QUERY,
    };
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: GetCurrentProcess returns a pseudo-handle that needs no closing; `token` receives
    // a handle that is closed below.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
        return false;
    }
    let mut elevation = TOKEN_ELEVATION { TokenIsElevated: 0 };
    let mut len = 0u32;
    // SAFETY: the buffer is a TOKEN_ELEVATION of the size passed; `token` is open.
    let ok = unsafe {
        GetTokenInformation(
            token,
            TokenElevation,
            (&mut elevation as *mut TOKEN_ELEVATION).cast(),
            std::mem::size_of::<TOKEN_ELEVATION>() as u32,
            &mut len,
        )
    };
    // SAFETY: `token` came from OpenProcessToken and is closed exactly once.
    unsafe { CloseHandle(token) };
    ok != 0 && elevation.TokenIsElevated != 0
}

/// The homes to scan for this run.
pub fn homes(explicit: Option<&Path>) -> Vec<Home> {
    if let Some(path) = explicit {
        return vec![home_for_path(path)];
    }
    #[cfg(windows)]
    {
        if is_elevated() {
            let found = profile_homes(read_profile_list(), |k| std::env::var(k).ok());
            let homes: Vec<Home> = found
                .into_iter()
                .filter(|(_, p)| p.is_dir())
                .map(|(user, path)| Home {
                    user,
                    path,
                    uid: None,
                    gid: None,
                })
                .collect();
            if !homes.is_empty() {
                return homes;
            }
        }
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

    #[test]
    fn profile_list_keeps_people_and_expands_the_system_drive() {
        let e = |sid: &str, p: &str| ProfileEntry {
            sid: sid.to_string(),
            image_path: p.to_string(),
        };
        let entries = vec![
            e("S-1-5-18", r"%systemroot%\system32\config\systemprofile"),
            e("S-1-5-19", r"%systemroot%\ServiceProfiles\LocalService"),
            e("S-1-5-21-1-2-3-1001", r"%SystemDrive%\Users\alice"),
            e("S-1-5-21-1-2-3-1002", r"D:\Profiles\bob\"),
            e("S-1-5-21-1-2-3-1003", r"%NoSuchVar%\Users\eve"),
            e("S-1-5-21-1-2-3-1004", r"%SystemDrive\Users\broken"),
        ];
        let env = |k: &str| (k == "SystemDrive").then(|| "C:".to_string());
        assert_eq!(
            profile_homes(entries, env),
            vec![
                ("alice".to_string(), PathBuf::from(r"C:\Users\alice")),
                ("bob".to_string(), PathBuf::from(r"D:\Profiles\bob\")),
            ]
        );
    }

    /// Under Wine: the prefix's own user has a profile in the ProfileList.
    #[cfg(windows)]
    #[test]
    fn the_profile_list_of_this_machine_names_the_current_user() {
        let entries = read_profile_list();
        assert!(!entries.is_empty(), "no ProfileList entries");
        let found = profile_homes(entries, |k| std::env::var(k).ok());
        let me = std::env::var("USERNAME").unwrap();
        assert!(
            found.iter().any(|(u, _)| u.eq_ignore_ascii_case(&me)),
            "{me} not among {found:?}"
        );
    }
}
