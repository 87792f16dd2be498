//! Client adapter for msmtp: reads the accounts of `~/.msmtprc` (or, when that file does not
//! exist, `~/.config/msmtp/config`, as msmtp itself does), and plans byte-exact edits of it.
//!
//! msmtp only sends, so every account has an outgoing endpoint and no incoming one. Nothing
//! here writes: [`MsmtpAdapter::plan`] returns the bytes before and after, and the agent's
//! executor applies them. The arguments of `password`, `passwordeval` and `eval` are never
//! read into any value, account or log; only [`ClientAdapter::credential`] reads the applying
//! `password` argument, on request, into a [`mailmend_core::Secret`].
//!
//! The user configuration is looked up relative to the home being scanned, never through the
//! agent's own `$XDG_CONFIG_HOME`; a user who moved `$XDG_CONFIG_HOME` elsewhere is not seen.

pub mod accounts;
pub mod config;
pub mod plan;

pub use config::{AccountEntry, Field, LineEnding, MsmtpFile, SetError, SyntaxError};

use mailmend_core::{
    Account, AccountId, AdapterError, ClientAdapter, ClientKind, Discovery, Edit, EndpointChange,
    Evidence, FileEdit, Finding, Home, Location, PluginInfo, Role, Severity,
};
use plan::PlanError;
use std::path::{Path, PathBuf};

/// The finding code for a configuration file mailmend cannot read or parse.
pub const CONFIG_UNREADABLE: &str = "config.unreadable";
/// The finding code for a configuration file that resolves (through a symbolic link) to a place
/// outside the user's home; mailmend runs with more rights than the user, so it neither reads
/// nor changes such a file.
pub const CONFIG_OUTSIDE_HOME: &str = "config.outside_home";
/// The finding code for an account mailmend cannot understand without running a command
/// (`eval`), which it never does.
pub const CONFIG_UNSUPPORTED: &str = "config.unsupported";

/// The user configuration files msmtp reads, relative to the home, in the order it tries them:
/// the first that exists is the only one used.
pub const CONFIG_FILES: [&str; 2] = [".msmtprc", ".config/msmtp/config"];

/// The msmtp client adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct MsmtpAdapter;

impl MsmtpAdapter {
    pub fn new() -> MsmtpAdapter {
        MsmtpAdapter
    }
}

/// The configuration file msmtp would read for this home, if any.
pub fn effective_config(home: &Home) -> Option<PathBuf> {
    CONFIG_FILES
        .iter()
        .map(|rel| home.path.join(rel))
        .find(|p| p.exists())
}

fn finding_id(path: &Path) -> AccountId {
    let location = Location::File {
        path: path.to_path_buf(),
    };
    AccountId::derive(ClientKind::Msmtp, &location, "file")
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

/// The canonical path of a configuration file, when it lies inside the canonical home.
fn inside_home(home: &Home, path: &Path) -> Result<PathBuf, Box<Finding>> {
    let canon = std::fs::canonicalize(path).map_err(|e| {
        Box::new(unreadable(
            path,
            path.display().to_string(),
            e.to_string(),
            format!(
                "msmtp configuration {} cannot be read, so its accounts are not checked",
                path.display()
            ),
        ))
    })?;
    match std::fs::canonicalize(&home.path) {
        Ok(home_canon) if !canon.starts_with(&home_canon) => Err(Box::new(
            Finding::new(
                CONFIG_OUTSIDE_HOME,
                Severity::Warning,
                finding_id(path),
                None,
                format!(
                    "msmtp configuration {} points outside the user's home; mailmend does not check it",
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

/// Reads and parses the file; `Err` with the finding when it cannot be read or parsed.
fn load(path: &Path) -> Result<MsmtpFile, Box<Finding>> {
    let bytes = std::fs::read(path).map_err(|e| {
        Box::new(unreadable(
            path,
            path.display().to_string(),
            e.to_string(),
            format!(
                "msmtp configuration {} cannot be read, so its accounts are not checked",
                path.display()
            ),
        ))
    })?;
    MsmtpFile::parse(&bytes).map_err(|e| {
        Box::new(unreadable(
            path,
            format!("{}:{}:{}", path.display(), e.line, e.column),
            e.message.clone(),
            format!(
                "msmtp configuration {} has a syntax error at line {}, column {}; \
                 mailmend neither checks nor changes it until it is fixed",
                path.display(),
                e.line,
                e.column
            ),
        ))
    })
}

impl ClientAdapter for MsmtpAdapter {
    fn info(&self) -> PluginInfo {
        PluginInfo::builtin("msmtp")
    }

    fn client(&self) -> ClientKind {
        ClientKind::Msmtp
    }

    fn discover(&self, home: &Home) -> Discovery {
        let mut discovery = Discovery::default();
        let Some(found) = effective_config(home) else {
            return discovery;
        };
        let path = match inside_home(home, &found) {
            Ok(p) => p,
            Err(f) => {
                discovery.findings.push(*f);
                return discovery;
            }
        };
        let file = match load(&path) {
            Ok(f) => f,
            Err(f) => {
                discovery.findings.push(*f);
                return discovery;
            }
        };
        let location = Location::File { path: path.clone() };
        for entry in file.accounts() {
            let id = AccountId::derive(ClientKind::Msmtp, &location, &entry.name);
            if entry.uses_eval() {
                discovery.findings.push(
                    Finding::new(
                        CONFIG_UNSUPPORTED,
                        Severity::Info,
                        id,
                        Some(Role::Outgoing),
                        format!(
                            "msmtp account {} takes settings from eval lines, which mailmend \
                             does not run; it is not checked",
                            entry.name
                        ),
                    )
                    .with_evidence(Evidence::new(
                        "config",
                        format!("{}#{}", path.display(), entry.name),
                        "eval",
                    )),
                );
                continue;
            }
            let Some(outgoing) = accounts::endpoint(entry) else {
                tracing::debug!(
                    path = %path.display(),
                    account = %entry.name,
                    reason = accounts::not_checkable(entry).unwrap_or("-"),
                    "msmtp account skipped"
                );
                continue;
            };
            tracing::debug!(path = %path.display(), account = %entry.name, "msmtp account found");
            discovery.accounts.push(Account {
                id,
                client: ClientKind::Msmtp,
                os_user: home.user.clone(),
                email: accounts::email(entry, &home.user),
                location: location.clone(),
                key: entry.name.clone(),
                incoming: None,
                outgoing: Some(outgoing),
            });
        }
        discovery
    }

    /// Both files msmtp may read: creating `~/.msmtprc` hides `~/.config/msmtp/config`.
    fn config_paths(&self, home: &Home) -> Vec<PathBuf> {
        CONFIG_FILES.iter().map(|rel| home.path.join(rel)).collect()
    }

    /// Always `false`: msmtp reads its configuration once, when a message is sent, and keeps
    /// nothing open, so no running msmtp can race a write or undo it. A send that starts while
    /// the executor replaces the file reads either the old or the new file whole, because the
    /// executor replaces files atomically.
    fn is_running(&self, _account: &Account) -> bool {
        false
    }

    fn plan(
        &self,
        account: &Account,
        role: Role,
        change: &EndpointChange,
    ) -> Result<Vec<Edit>, AdapterError> {
        let Location::File { path } = &account.location else {
            return Err(AdapterError::Unsupported(
                "an msmtp account lives in a file".into(),
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
        let mut file = MsmtpFile::parse(&before).map_err(|e| AdapterError::Syntax {
            path: path.clone(),
            line: e.line,
            column: e.column,
            message: e.message,
        })?;
        plan::apply(&mut file, &account.key, role, change).map_err(|e| match e {
            PlanError::AccountGone(_) => gone(),
            other => AdapterError::Unsupported(other.to_string()),
        })?;
        if file.as_bytes() == before {
            return Ok(Vec::new());
        }
        Ok(vec![Edit::File(FileEdit {
            path: path.clone(),
            before,
            after: file.into_bytes(),
        })])
    }

    /// The `password` that applies to the account, read from the file now; `None` when
    /// `passwordeval` or `eval` applies (commands are never run) or no password is written.
    fn credential(&self, account: &Account, role: Role) -> Option<mailmend_core::Secret> {
        let Location::File { path } = &account.location else {
            return None;
        };
        if role != Role::Outgoing {
            return None;
        }
        // Only a file the user owns: see `mailmend_clientkit::owned`.
        let bytes = mailmend_clientkit::owned::read_owned(path, &account.os_user)?;
        MsmtpFile::parse(&bytes).ok()?.password(&account.key)
    }
}
