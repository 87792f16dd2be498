//! Client adapter for Thunderbird: finds profiles through `profiles.ini` / `installs.ini`, reads
//! accounts from `prefs.js` and `user.js`, and plans byte-exact edits of those files.
//!
//! Nothing here writes: [`ThunderbirdAdapter::plan`] returns the bytes before and after, and the
//! agent's executor applies them once the policy allowed it and Thunderbird is not running.
//! Prefs whose name contains `password` are never read into any value, account or log.

pub mod accounts;
pub mod lock;
pub mod plan;
pub mod prefs;
pub mod profiles;

pub use prefs::{LineEnding, Pref, PrefKind, PrefValue, PrefsFile, SetError, SyntaxError};

use accounts::{account_names, links, Effective, EndpointPrefs};
use mailmend_core::{
    Account, AccountId, AdapterError, ClientAdapter, ClientKind, Discovery, Edit, EndpointChange,
    Evidence, FileEdit, Finding, Home, Location, PluginInfo, Role, Severity,
};
use plan::PlanError;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// The finding code for a configuration file mailmend cannot read or parse.
pub const CONFIG_UNREADABLE: &str = "config.unreadable";
/// The finding code for a profile that `profiles.ini` places outside the user's home; mailmend
/// runs with more rights than the user, so it neither reads nor changes such a profile.
pub const PROFILE_OUTSIDE_HOME: &str = "config.profile_outside_home";

/// The Thunderbird client adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThunderbirdAdapter;

impl ThunderbirdAdapter {
    pub fn new() -> ThunderbirdAdapter {
        ThunderbirdAdapter
    }
}

/// A profile directory found under a home.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Profile {
    /// The canonical directory.
    dir: PathBuf,
    /// Its last component, e.g. `abcd1234.default-release`.
    name: String,
}

/// The existing roots under a home and the profiles their INI files list, deduplicated.
fn find_profiles(home: &Home, findings: &mut Vec<Finding>) -> (Vec<PathBuf>, Vec<Profile>) {
    let home_canon = std::fs::canonicalize(&home.path).ok();
    let mut roots = Vec::new();
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    for rel in profiles::ROOTS {
        let root = home.path.join(rel);
        if !root.is_dir() {
            continue;
        }
        let profiles_ini = read_text(&root.join("profiles.ini"), findings);
        let installs_ini = read_text(&root.join("installs.ini"), findings);
        roots.push(root.clone());
        for dir in profiles::profile_dirs(&root, profiles_ini.as_deref(), installs_ini.as_deref()) {
            // Profiles listed but deleted are common; they simply are not there.
            let Ok(canon) = std::fs::canonicalize(&dir) else {
                continue;
            };
            if !canon.is_dir() || !seen.insert(canon.clone()) {
                continue;
            }
            if let Some(home_canon) = &home_canon {
                if !canon.starts_with(home_canon) {
                    findings.push(outside_home(&root, &canon));
                    continue;
                }
            }
            let name = canon
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            found.push(Profile { dir: canon, name });
        }
    }
    (roots, found)
}

/// Reads a small text file; a missing file is `None`, any other failure also a finding.
fn read_text(path: &Path, findings: &mut Vec<Finding>) -> Option<String> {
    match std::fs::read(path) {
        Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            findings.push(unreadable(
                path,
                path.display().to_string(),
                e.to_string(),
                format!(
                    "Thunderbird's {} cannot be read, so its accounts are not checked",
                    path.display()
                ),
            ));
            None
        }
    }
}

fn finding_id(path: &Path) -> AccountId {
    let location = Location::File {
        path: path.to_path_buf(),
    };
    AccountId::derive(ClientKind::Thunderbird, &location, "file")
}

fn unreadable(path: &Path, target: String, result: String, summary: String) -> Finding {
    Finding::new(
        CONFIG_UNREADABLE,
        Severity::Error,
        finding_id(path),
        None,
        summary,
    )
    .with_evidence(Evidence::new("config", target, result))
}

fn outside_home(root: &Path, dir: &Path) -> Finding {
    Finding::new(
        PROFILE_OUTSIDE_HOME,
        Severity::Warning,
        finding_id(dir),
        None,
        format!(
            "A Thunderbird profile listed in {} lies outside the user's home; mailmend does not check it",
            root.display()
        ),
    )
    .with_evidence(Evidence::new(
        "config",
        dir.display().to_string(),
        "outside the home directory",
    ))
}

/// Reads and parses one prefs file: `Ok(None)` when it does not exist, `Err` with the finding
/// when it cannot be read or parsed.
fn load(path: &Path) -> Result<Option<PrefsFile>, Box<Finding>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Box::new(unreadable(
                path,
                path.display().to_string(),
                e.to_string(),
                format!(
                    "Thunderbird settings file {} cannot be read, so its accounts are not checked",
                    path.display()
                ),
            )))
        }
    };
    PrefsFile::parse(&bytes).map(Some).map_err(|e| {
        Box::new(unreadable(
            path,
            format!("{}:{}:{}", path.display(), e.line, e.column),
            e.message.clone(),
            format!(
                "Thunderbird settings file {} has a syntax error at line {}, column {}; \
                 mailmend neither checks nor changes this profile until it is fixed",
                path.display(),
                e.line,
                e.column
            ),
        ))
    })
}

fn discover_profile(profile: &Profile, os_user: &str, discovery: &mut Discovery) {
    let prefs_path = profile.dir.join("prefs.js");
    let prefs = match load(&prefs_path) {
        Ok(Some(p)) => p,
        Ok(None) => return,
        Err(f) => return discovery.findings.push(*f),
    };
    let user = match load(&profile.dir.join("user.js")) {
        Ok(u) => u,
        Err(f) => return discovery.findings.push(*f),
    };
    let eff = Effective::new(&prefs, user.as_ref());
    let location = Location::File {
        path: prefs_path.clone(),
    };
    for name in account_names(&eff) {
        let Some(l) = links(&eff, &name) else {
            continue;
        };
        let key = format!("{}/{}", profile.name, name);
        let incoming = EndpointPrefs::incoming(&l.server, l.protocol).endpoint(&eff);
        let outgoing = l
            .smtp
            .as_deref()
            .and_then(|s| EndpointPrefs::outgoing(s).endpoint(&eff));
        tracing::debug!(path = %prefs_path.display(), key = %key, "thunderbird account found");
        discovery.accounts.push(Account {
            id: AccountId::derive(ClientKind::Thunderbird, &location, &key),
            client: ClientKind::Thunderbird,
            os_user: os_user.to_string(),
            email: l.email,
            location: location.clone(),
            key,
            incoming,
            outgoing,
        });
    }
}

/// Reads a file for planning: `None` when it does not exist.
fn read_for_plan(path: &Path) -> Result<Option<(Vec<u8>, PrefsFile)>, AdapterError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(AdapterError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let doc = PrefsFile::parse(&bytes).map_err(|e| AdapterError::Syntax {
        path: path.to_path_buf(),
        line: e.line,
        column: e.column,
        message: e.message,
    })?;
    Ok(Some((bytes, doc)))
}

impl ClientAdapter for ThunderbirdAdapter {
    fn info(&self) -> PluginInfo {
        PluginInfo::builtin("thunderbird")
    }

    fn client(&self) -> ClientKind {
        ClientKind::Thunderbird
    }

    fn discover(&self, home: &Home) -> Discovery {
        let mut discovery = Discovery::default();
        let (_, profiles) = find_profiles(home, &mut discovery.findings);
        for profile in &profiles {
            discover_profile(profile, &home.user, &mut discovery);
        }
        discovery
    }

    /// The `profiles.ini` and `installs.ini` of every existing profile root, and the `prefs.js`
    /// and `user.js` of every profile (whether or not they exist yet).
    fn config_paths(&self, home: &Home) -> Vec<PathBuf> {
        let (roots, profiles) = find_profiles(home, &mut Vec::new());
        let mut paths = Vec::new();
        for root in roots {
            paths.push(root.join("profiles.ini"));
            paths.push(root.join("installs.ini"));
        }
        for p in profiles {
            paths.push(p.dir.join("prefs.js"));
            paths.push(p.dir.join("user.js"));
        }
        paths
    }

    fn is_running(&self, account: &Account) -> bool {
        match &account.location {
            Location::File { path } => path.parent().is_some_and(lock::profile_in_use),
            Location::Registry { .. } => false,
        }
    }

    fn plan(
        &self,
        account: &Account,
        role: Role,
        change: &EndpointChange,
    ) -> Result<Vec<Edit>, AdapterError> {
        let Location::File { path } = &account.location else {
            return Err(AdapterError::Unsupported(
                "a thunderbird account lives in a prefs.js file".into(),
            ));
        };
        let gone = || AdapterError::AccountGone {
            path: path.clone(),
            key: account.key.clone(),
        };
        let name = account
            .key
            .rsplit_once('/')
            .map_or(account.key.as_str(), |(_, a)| a);
        let (prefs_before, mut prefs) = read_for_plan(path)?.ok_or_else(gone)?;
        let user_path = path.with_file_name("user.js");
        let mut user = read_for_plan(&user_path)?;
        plan::apply(
            &mut prefs,
            user.as_mut().map(|(_, doc)| doc),
            name,
            role,
            change,
        )
        .map_err(|e| match e {
            PlanError::AccountGone(_) => gone(),
            other => AdapterError::Unsupported(other.to_string()),
        })?;
        let mut edits = Vec::new();
        if prefs.as_bytes() != prefs_before {
            edits.push(Edit::File(FileEdit {
                path: path.clone(),
                before: prefs_before,
                after: prefs.into_bytes(),
            }));
        }
        if let Some((before, doc)) = user {
            if doc.as_bytes() != before {
                edits.push(Edit::File(FileEdit {
                    path: user_path,
                    before,
                    after: doc.into_bytes(),
                }));
            }
        }
        Ok(edits)
    }
}
