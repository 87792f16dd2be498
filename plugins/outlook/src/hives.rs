//! From a user's home to that user's registry hive. As the user, it is HKEY_CURRENT_USER; as
//! SYSTEM, every loaded user hive is `HKEY_USERS\<SID>`, and the machine's ProfileList
//! (`HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList\<SID>\ProfileImagePath`) says
//! which SID a profile directory belongs to. The lookup reads only through the [`Registry`]
//! trait, so it runs against `.reg` exports on Linux too; the one OS-specific input is which
//! profile directory is the agent's own (`%USERPROFILE%`).

use mailmend_core::{Hive, Home, RegPath, RegValue, Registry};
use std::fmt;
use std::path::{Path, PathBuf};

/// Where the machine lists its user profiles.
pub const PROFILE_LIST: &str = r"SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList";

/// Finds the registry hive of a home's user.
pub trait HiveResolver: Send + Sync + fmt::Debug {
    /// The root of the user's hive, or `None` when the user has none loaded (a user who is not
    /// logged on, as seen by SYSTEM) or the home is not a Windows profile.
    fn hive_root(&self, home: &Home, registry: &dyn Registry) -> Option<RegPath>;
}

/// A fixed map from OS user name to hive root, for tests and for callers that know it.
#[derive(Debug, Clone, Default)]
pub struct StaticHives(pub Vec<(String, RegPath)>);

impl HiveResolver for StaticHives {
    fn hive_root(&self, home: &Home, _registry: &dyn Registry) -> Option<RegPath> {
        self.0
            .iter()
            .find(|(user, _)| user.eq_ignore_ascii_case(&home.user))
            .map(|(_, root)| root.clone())
    }
}

/// The lookup Windows needs: the agent's own profile is HKEY_CURRENT_USER; any other profile is
/// `HKEY_USERS\<SID>` when ProfileList names it and the hive is loaded.
#[derive(Debug, Clone, Default)]
pub struct ProfileListHives {
    /// The agent's own profile directory (`%USERPROFILE%`); `None` when it runs as SYSTEM with
    /// no profile of interest.
    pub own_profile: Option<PathBuf>,
    /// `%SystemDrive%`, to expand ProfileImagePath values that use it.
    pub system_drive: String,
}

impl ProfileListHives {
    /// The lookup for this process, from `%USERPROFILE%` and `%SystemDrive%`.
    pub fn from_env() -> ProfileListHives {
        ProfileListHives {
            own_profile: std::env::var_os("USERPROFILE").map(PathBuf::from),
            system_drive: std::env::var("SystemDrive").unwrap_or_else(|_| "C:".to_string()),
        }
    }

    fn expand(&self, s: &str) -> String {
        let lower = s.to_ascii_lowercase();
        match lower.find("%systemdrive%") {
            Some(i) => format!("{}{}{}", &s[..i], self.system_drive, &s[i + 13..]),
            None => s.to_string(),
        }
    }
}

/// A Windows path for comparison: forward slashes as backslashes, no trailing separator, and
/// no case.
fn normal(p: &str) -> String {
    p.replace('/', "\\").trim_end_matches('\\').to_lowercase()
}

fn same_path(a: &Path, b: &str) -> bool {
    normal(&a.to_string_lossy()) == normal(b)
}

impl HiveResolver for ProfileListHives {
    fn hive_root(&self, home: &Home, registry: &dyn Registry) -> Option<RegPath> {
        if let Some(own) = &self.own_profile {
            if same_path(&home.path, &own.to_string_lossy()) {
                return Some(RegPath::new(Hive::CurrentUser, ""));
            }
        }
        let list = RegPath::new(Hive::LocalMachine, PROFILE_LIST);
        for sid in registry.subkeys(&list).ok()? {
            let image = match registry.get(&list.join(&sid), "ProfileImagePath") {
                Ok(Some(RegValue::ExpandString(s) | RegValue::String(s))) => self.expand(&s),
                _ => continue,
            };
            if !same_path(&home.path, &image) {
                continue;
            }
            let root = RegPath::new(Hive::Users, &sid);
            // Only a loaded hive is there; SYSTEM does not load the hives of logged-off users.
            // A hive that is there but cannot be read is returned, so that discovery reports it.
            return match registry.subkeys(&root) {
                Err(e) if e.is_not_found() => None,
                _ => Some(root),
            };
        }
        None
    }
}
