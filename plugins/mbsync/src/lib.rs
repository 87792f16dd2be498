//! Client adapter for mbsync (isync): reads the IMAP servers of `~/.mbsyncrc` or
//! `~/.config/isyncrc`, and plans byte-exact edits of that file.
//!
//! mbsync only fetches, so every account has an incoming endpoint and no outgoing one. An
//! account is an `IMAPAccount` section, or an `IMAPStore` that holds its server settings itself.
//! mbsync has no email address; a login that looks like one stands in for it.
//!
//! Nothing here writes: [`MbsyncAdapter::plan`] returns the bytes before and after, and the
//! agent's executor applies them while no mbsync of the user runs. The arguments of `Pass`,
//! `PassCmd` and `UserCmd` are never read into any value, account or log; only
//! [`ClientAdapter::credential`] reads the `Pass` argument, on request, into a
//! [`mailmend_core::Secret`]. `PassCmd` is never run.
//!
//! The configuration is looked up relative to the home being scanned (`~/.config`), never
//! through the agent's own `$XDG_CONFIG_HOME`.

pub mod accounts;
pub mod config;
pub mod plan;

pub use config::{MbsyncFile, Section, SectionKind, Server, SetError, SyntaxError, TlsMode};
pub use plan::TlsKeyword;
// The process table is shared with the other adapters; it stays reachable under this crate.
pub use mailmend_clientkit::process;
pub use process::{ProcFs, ProcessInfo, ProcessTable, StaticProcesses};

use mailmend_core::{
    Account, AccountId, AdapterError, ClientAdapter, ClientKind, Discovery, Edit, EndpointChange,
    Evidence, FileEdit, Finding, Home, Location, PluginInfo, Role, Severity,
};
use plan::PlanError;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// The finding code for a configuration file mailmend cannot read or parse.
pub const CONFIG_UNREADABLE: &str = "config.unreadable";
/// The finding code for a configuration file that resolves (through a symbolic link) outside
/// the user's home; mailmend runs with more rights than the user, so it neither reads nor
/// changes such a file.
pub const CONFIG_OUTSIDE_HOME: &str = "config.outside_home";

/// `~/.mbsyncrc`, the only file isync up to 1.4 reads.
pub const MBSYNCRC: &str = ".mbsyncrc";
/// `~/.config/isyncrc`, which isync 1.5 reads first.
pub const ISYNCRC: &str = ".config/isyncrc";
/// The programs whose running makes a write race: mbsync reads its configuration at start.
pub const PROGRAMS: [&str; 1] = ["mbsync"];

/// An isync version, as `mbsync --version` prints it (`isync 1.4.4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct IsyncVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl IsyncVersion {
    /// Reads the first `isync X.Y[.Z]` (or `mbsync X.Y[.Z]`) of `mbsync --version`'s output.
    pub fn parse(output: &str) -> Option<IsyncVersion> {
        let line = output.lines().next()?;
        let mut words = line.split_whitespace();
        let name = words.next()?;
        if name != "isync" && name != "mbsync" {
            return None;
        }
        let mut nums = words.next()?.split(['.', '-', '+']);
        let major = nums.next()?.parse().ok()?;
        let minor = nums.next()?.parse().ok()?;
        let patch = nums.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        Some(IsyncVersion {
            major,
            minor,
            patch,
        })
    }

    /// Whether this isync reads `~/.config/isyncrc` and knows `TLSType` (1.5 and later).
    pub fn is_1_5_or_later(self) -> bool {
        (self.major, self.minor) >= (1, 5)
    }

    /// The security keyword this isync documents.
    pub fn tls_keyword(self) -> TlsKeyword {
        if self.is_1_5_or_later() {
            TlsKeyword::TlsType
        } else {
            TlsKeyword::SslType
        }
    }
}

/// The installed isync's version, from `mbsync --version`; `None` when mbsync is not installed
/// or prints something else.
pub fn installed_version() -> Option<IsyncVersion> {
    let out = std::process::Command::new("mbsync")
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    IsyncVersion::parse(&String::from_utf8_lossy(&out.stdout))
}

type VersionProbe = dyn Fn() -> Option<IsyncVersion> + Send + Sync;

/// The mbsync client adapter.
#[derive(Clone)]
pub struct MbsyncAdapter {
    processes: Arc<dyn ProcessTable>,
    probe: Arc<VersionProbe>,
    version: Arc<OnceLock<Option<IsyncVersion>>>,
}

impl fmt::Debug for MbsyncAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MbsyncAdapter")
            .field("version", &self.version.get())
            .finish_non_exhaustive()
    }
}

impl Default for MbsyncAdapter {
    fn default() -> Self {
        MbsyncAdapter::new()
    }
}

impl MbsyncAdapter {
    /// The adapter for this machine: `/proc` and the installed mbsync.
    pub fn new() -> MbsyncAdapter {
        MbsyncAdapter {
            processes: Arc::new(ProcFs::new()),
            probe: Arc::new(installed_version),
            version: Arc::new(OnceLock::new()),
        }
    }

    /// Uses another process table (tests).
    pub fn with_processes(mut self, table: impl ProcessTable + 'static) -> MbsyncAdapter {
        self.processes = Arc::new(table);
        self
    }

    /// Uses another way to learn the installed isync version (tests); `None` means unknown.
    pub fn with_version(
        mut self,
        probe: impl Fn() -> Option<IsyncVersion> + Send + Sync + 'static,
    ) -> MbsyncAdapter {
        self.probe = Arc::new(probe);
        self.version = Arc::new(OnceLock::new());
        self
    }

    /// The installed isync version, asked once.
    pub fn installed(&self) -> Option<IsyncVersion> {
        *self.version.get_or_init(|| (self.probe)())
    }

    /// The files mbsync may read, in the order the installed version tries them (1.5:
    /// `~/.config/isyncrc`, then `~/.mbsyncrc`; older: `~/.mbsyncrc`). The other file comes
    /// last: a user of an older isync who keeps `~/.config/isyncrc` passes it with `-c`.
    pub fn candidates(&self, home: &Home) -> [PathBuf; 2] {
        let (m, i) = (home.path.join(MBSYNCRC), home.path.join(ISYNCRC));
        if self.installed().is_some_and(IsyncVersion::is_1_5_or_later) {
            [i, m]
        } else {
            [m, i]
        }
    }

    /// The configuration file mbsync would read for this home, if any.
    pub fn effective_config(&self, home: &Home) -> Option<PathBuf> {
        self.candidates(home).into_iter().find(|p| p.exists())
    }

    fn keyword(&self) -> TlsKeyword {
        self.installed()
            .map_or(TlsKeyword::SslType, IsyncVersion::tls_keyword)
    }
}

fn finding_id(path: &Path) -> AccountId {
    let location = Location::File {
        path: path.to_path_buf(),
    };
    AccountId::derive(ClientKind::Mbsync, &location, "file")
}

fn unreadable(path: &Path, target: String, result: String, summary: String) -> Box<Finding> {
    Box::new(
        Finding::new(
            CONFIG_UNREADABLE,
            Severity::Error,
            finding_id(path),
            None,
            summary,
        )
        .with_evidence(Evidence::new("config", target, result)),
    )
}

fn cannot_read(path: &Path, e: &std::io::Error) -> Box<Finding> {
    unreadable(
        path,
        path.display().to_string(),
        e.to_string(),
        format!(
            "mbsync configuration {} cannot be read, so its accounts are not checked",
            path.display()
        ),
    )
}

/// The canonical path of a configuration file, when it lies inside the canonical home.
fn inside_home(home: &Home, path: &Path) -> Result<PathBuf, Box<Finding>> {
    let canon = std::fs::canonicalize(path).map_err(|e| cannot_read(path, &e))?;
    match std::fs::canonicalize(&home.path) {
        Ok(home_canon) if !canon.starts_with(&home_canon) => Err(Box::new(
            Finding::new(
                CONFIG_OUTSIDE_HOME,
                Severity::Warning,
                finding_id(path),
                None,
                format!(
                    "mbsync configuration {} points outside the user's home; mailmend does not check it",
                    path.display()
                ),
            )
            .with_evidence(Evidence::new(
                "config",
                canon.display().to_string(),
                "outside the home directory",
            )),
        )),
        _ => Ok(canon),
    }
}

fn load(path: &Path) -> Result<MbsyncFile, Box<Finding>> {
    let bytes = std::fs::read(path).map_err(|e| cannot_read(path, &e))?;
    MbsyncFile::parse(&bytes).map_err(|e| {
        unreadable(
            path,
            format!("{}:{}:{}", path.display(), e.line, e.column),
            e.message.clone(),
            format!(
                "mbsync configuration {} has an error at line {}, column {}; \
                 mailmend neither checks nor changes it until it is fixed",
                path.display(),
                e.line,
                e.column
            ),
        )
    })
}

impl ClientAdapter for MbsyncAdapter {
    fn info(&self) -> PluginInfo {
        PluginInfo::builtin("mbsync")
    }

    fn client(&self) -> ClientKind {
        ClientKind::Mbsync
    }

    fn discover(&self, home: &Home) -> Discovery {
        let mut discovery = Discovery::default();
        let Some(found) = self.effective_config(home) else {
            return discovery;
        };
        let loaded = inside_home(home, &found).and_then(|p| Ok((load(&p)?, p)));
        let (file, path) = match loaded {
            Ok(x) => x,
            Err(f) => {
                discovery.findings.push(*f);
                return discovery;
            }
        };
        let location = Location::File { path: path.clone() };
        let mut seen = std::collections::HashSet::new();
        for section in file.sections().iter().filter(|s| s.is_server()) {
            let key = section.key();
            // mbsync uses the first of several sections with one name.
            if !seen.insert(key.clone()) {
                continue;
            }
            let Some(incoming) = accounts::endpoint(section) else {
                tracing::debug!(
                    path = %path.display(),
                    key = %key,
                    reason = accounts::not_checkable(section).unwrap_or("-"),
                    "mbsync server skipped"
                );
                continue;
            };
            tracing::debug!(path = %path.display(), key = %key, "mbsync account found");
            discovery.accounts.push(Account {
                id: AccountId::derive(ClientKind::Mbsync, &location, &key),
                client: ClientKind::Mbsync,
                os_user: home.user.clone(),
                email: accounts::email(section),
                location: location.clone(),
                key,
                incoming: Some(incoming),
                outgoing: None,
            });
        }
        discovery
    }

    /// Both files mbsync may read.
    fn config_paths(&self, home: &Home) -> Vec<PathBuf> {
        self.candidates(home).into()
    }

    /// Whether an `mbsync` process runs as the user owning the account's configuration file
    /// (as any user, when the owner cannot be learnt). mbsync reads the file at start, so a
    /// write while it runs does not race it, but a fix could not be verified against what the
    /// running sync does; the executor waits for it to end.
    fn is_running(&self, account: &Account) -> bool {
        let uid = match &account.location {
            Location::File { path } => process::owner_uid(path),
            Location::Registry { .. } => return false,
        };
        process::any_running(self.processes.as_ref(), &PROGRAMS, uid)
    }

    fn plan(
        &self,
        account: &Account,
        role: Role,
        change: &EndpointChange,
    ) -> Result<Vec<Edit>, AdapterError> {
        let Location::File { path } = &account.location else {
            return Err(AdapterError::Unsupported(
                "an mbsync account lives in a file".into(),
            ));
        };
        let gone = || AdapterError::AccountGone {
            path: path.clone(),
            key: account.key.clone(),
        };
        let before = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(gone()),
            Err(source) => {
                return Err(AdapterError::Io {
                    path: path.clone(),
                    source,
                })
            }
        };
        let mut file = MbsyncFile::parse(&before).map_err(|e| AdapterError::Syntax {
            path: path.clone(),
            line: e.line,
            column: e.column,
            message: e.message,
        })?;
        plan::apply(&mut file, &account.key, role, change, self.keyword()).map_err(
            |e| match e {
                PlanError::AccountGone(_) => gone(),
                other => AdapterError::Unsupported(other.to_string()),
            },
        )?;
        if file.as_bytes() == before {
            return Ok(Vec::new());
        }
        Ok(vec![Edit::File(FileEdit {
            path: path.clone(),
            before,
            after: file.into_bytes(),
        })])
    }

    /// The `Pass` of the account's server section, read from the file now; `None` with
    /// `PassCmd` (a command, never run) or without `Pass`.
    fn credential(&self, account: &Account, role: Role) -> Option<mailmend_core::Secret> {
        let Location::File { path } = &account.location else {
            return None;
        };
        if role != Role::Incoming {
            return None;
        }
        // Only a file the user owns: see `mailmend_clientkit::owned`.
        let bytes = mailmend_clientkit::owned::read_owned(path, &account.os_user)?;
        MbsyncFile::parse(&bytes).ok()?.password(&account.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_from_mbsync_output() {
        let v = IsyncVersion::parse("isync 1.4.4\n").unwrap();
        assert_eq!((v.major, v.minor, v.patch), (1, 4, 4));
        assert_eq!(v.tls_keyword(), TlsKeyword::SslType);
        let v = IsyncVersion::parse("isync 1.5.0\n").unwrap();
        assert_eq!(v.tls_keyword(), TlsKeyword::TlsType);
        assert_eq!(IsyncVersion::parse("isync 1.5\n").unwrap().patch, 0);
        assert_eq!(IsyncVersion::parse("usage: mbsync"), None);
        assert_eq!(IsyncVersion::parse(""), None);
    }
}
