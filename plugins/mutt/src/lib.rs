//! Client adapter for mutt and neomutt: reads the start-up files (`~/.muttrc`,
//! `~/.mutt/muttrc`, `~/.config/mutt/muttrc`, `~/.neomuttrc`, `~/.config/neomutt/neomuttrc`)
//! and the files they `source`, finds accounts in their IMAP, POP and SMTP URLs, and plans
//! byte-exact edits of those URLs.
//!
//! Nothing here writes: [`MuttAdapter::plan`] returns the bytes before and after, and the
//! agent's executor applies them. Passwords (`imap_pass`, `smtp_pass`, a password inside a URL)
//! are never read into any value, account or log, and their bytes are never rewritten; only
//! [`ClientAdapter::credential`] reads the one mutt would use, on request, into a
//! [`mailmend_core::Secret`]. Values mutt computes (backticks, `$variables`) are never run.
//!
//! Each start-up file is read as its own configuration (mutt reads the first of its three,
//! neomutt its own), and an account reached from two of them is reported once.
//!
//! Running: [`MuttAdapter::is_running`] is true while a `mutt` or `neomutt` process runs as the
//! owner of the account's file. Mutt never writes its muttrc, so a write would not race it; but
//! it reads the file only at start-up, so a fix made now would not reach the running instance,
//! and the user would keep the broken settings while mailmend reports the account fixed. The
//! adapter therefore reports the client as running, and the executor defers the change until
//! mutt exits, when the next start picks it up.

pub mod accounts;
pub mod config;
pub mod credential;
pub mod muttrc;
pub mod plan;
pub mod url;

pub use config::MAX_INCLUDE_DEPTH;
pub use muttrc::{MuttFile, SyntaxError};
// The process table is shared with the other adapters; it stays reachable under this crate.
pub use mailmend_clientkit::process;
pub use process::{ProcFs, ProcessInfo, ProcessTable, StaticProcesses};

use config::{Evaluation, Unreadable};
use mailmend_core::{
    Account, AccountId, AdapterError, ClientAdapter, ClientKind, Discovery, Edit, EndpointChange,
    Evidence, Finding, Home, Location, PluginInfo, Role, Severity,
};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The finding code for a configuration file mailmend cannot read or parse.
pub const CONFIG_UNREADABLE: &str = "config.unreadable";
/// The finding code for a `source` of a file outside the user's home; mailmend runs with more
/// rights than the user, so it neither reads nor changes such a file.
pub const INCLUDE_OUTSIDE_HOME: &str = "config.include_outside_home";

/// The start-up files, relative to the home, in the order mailmend reads them.
pub const ROOT_FILES: [&str; 5] = [
    ".muttrc",
    ".mutt/muttrc",
    ".config/mutt/muttrc",
    ".neomuttrc",
    ".config/neomutt/neomuttrc",
];

/// The process names of the clients this adapter serves.
pub const PROCESS_NAMES: [&str; 2] = ["mutt", "neomutt"];

/// The mutt and neomutt client adapter.
#[derive(Debug, Clone)]
pub struct MuttAdapter {
    processes: Arc<dyn ProcessTable>,
}

impl Default for MuttAdapter {
    fn default() -> MuttAdapter {
        MuttAdapter::new()
    }
}

impl MuttAdapter {
    /// An adapter that reads the system's process table.
    pub fn new() -> MuttAdapter {
        MuttAdapter::with_process_table(Arc::new(ProcFs::default()))
    }

    /// An adapter that asks `processes` which processes run.
    pub fn with_process_table(processes: Arc<dyn ProcessTable>) -> MuttAdapter {
        MuttAdapter { processes }
    }
}

/// The id of findings about a file as a whole.
pub(crate) fn finding_id(path: &Path) -> AccountId {
    let location = Location::File {
        path: path.to_path_buf(),
    };
    AccountId::derive(ClientKind::Mutt, &location, "file")
}

pub(crate) fn unreadable(path: &Path, target: String, result: String, summary: String) -> Finding {
    Finding::new(
        CONFIG_UNREADABLE,
        Severity::Error,
        finding_id(path),
        None,
        summary,
    )
    .with_evidence(Evidence::new("config", target, result))
}

/// Every configuration root that exists in a home, evaluated.
fn evaluations(home: &Path) -> Vec<Evaluation> {
    ROOT_FILES
        .iter()
        .filter_map(|rel| config::evaluate(home, &home.join(rel)))
        .collect()
}

fn to_account(eval: &Evaluation, a: &accounts::MuttAccount, os_user: &str) -> Account {
    let location = Location::File {
        path: eval.files[a.file].path.clone(),
    };
    Account {
        id: AccountId::derive(ClientKind::Mutt, &location, &a.key),
        client: ClientKind::Mutt,
        os_user: os_user.to_string(),
        email: a.email.clone(),
        location,
        key: a.key.clone(),
        incoming: a.incoming.as_ref().map(|s| s.endpoint.clone()),
        outgoing: a.outgoing.as_ref().map(|s| s.endpoint.clone()),
    }
}

impl ClientAdapter for MuttAdapter {
    fn info(&self) -> PluginInfo {
        PluginInfo::builtin("mutt")
    }

    fn client(&self) -> ClientKind {
        ClientKind::Mutt
    }

    fn discover(&self, home: &Home) -> Discovery {
        let mut discovery = Discovery::default();
        let mut ids = HashSet::new();
        for eval in evaluations(&home.path) {
            for f in &eval.findings {
                if !discovery.findings.contains(f) {
                    discovery.findings.push(f.clone());
                }
            }
            if eval.unreadable.is_some() {
                continue;
            }
            for a in accounts::build(&eval) {
                let account = to_account(&eval, &a, &home.user);
                if ids.insert(account.id.clone()) {
                    tracing::debug!(path = %account.location, key = %account.key, "mutt account found");
                    discovery.accounts.push(account);
                }
            }
        }
        discovery
    }

    /// The start-up files (whether or not they exist) and every file they include.
    fn config_paths(&self, home: &Home) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = ROOT_FILES.iter().map(|r| home.path.join(r)).collect();
        for eval in evaluations(&home.path) {
            for f in eval.files {
                if !paths.contains(&f.path) {
                    paths.push(f.path);
                }
            }
        }
        paths
    }

    fn is_running(&self, account: &Account) -> bool {
        let uid = match &account.location {
            Location::File { path } => process::owner_uid(path),
            Location::Registry { .. } => None,
        };
        process::any_running(self.processes.as_ref(), &PROCESS_NAMES, uid)
    }

    fn plan(
        &self,
        account: &Account,
        role: Role,
        change: &EndpointChange,
    ) -> Result<Vec<Edit>, AdapterError> {
        let Location::File { path } = &account.location else {
            return Err(AdapterError::Unsupported(
                "a mutt account lives in a muttrc file".into(),
            ));
        };
        let home = home_of(path);
        let mut first_error = None;
        for eval in evaluations(&home) {
            if let Some(u) = eval.unreadable {
                first_error.get_or_insert(u);
                continue;
            }
            let Some(found) = accounts::build(&eval)
                .into_iter()
                .find(|a| to_account(&eval, a, &account.os_user).id == account.id)
            else {
                continue;
            };
            let side = match role {
                Role::Incoming => found.incoming.as_ref(),
                Role::Outgoing => found.outgoing.as_ref(),
            };
            let Some(side) = side else {
                return Err(AdapterError::Unsupported(format!(
                    "account {} has no {role} server",
                    account.key
                )));
            };
            let edits = plan::plan(&eval, side, change)
                .map_err(|e| AdapterError::Unsupported(e.to_string()))?;
            return Ok(edits.into_iter().map(Edit::File).collect());
        }
        Err(match first_error {
            Some(Unreadable::Syntax { path, error }) => AdapterError::Syntax {
                path,
                line: error.line,
                column: error.column,
                message: error.message,
            },
            Some(Unreadable::Io { path, error }) => AdapterError::Io {
                path,
                source: error,
            },
            None => AdapterError::AccountGone {
                path: path.clone(),
                key: account.key.clone(),
            },
        })
    }

    /// The password mutt logs in with, read now: a URL password, else `imap_pass`, `pop_pass`
    /// or `smtp_pass` when written literally. `None` for backticks and `$variables`, which are
    /// never run or expanded, and for hooks, which are not evaluated.
    fn credential(&self, account: &Account, role: Role) -> Option<mailmend_core::Secret> {
        self.password_of(account, role)
    }
}

impl MuttAdapter {
    /// The statement holding the password of `role` of `account`, in the first readable
    /// configuration that has the account, with that configuration.
    fn password_of(&self, account: &Account, role: Role) -> Option<mailmend_core::Secret> {
        let Location::File { path } = &account.location else {
            return None;
        };
        for eval in evaluations(&home_of(path)) {
            if eval.unreadable.is_some() {
                continue;
            }
            let Some(found) = accounts::build(&eval)
                .into_iter()
                .find(|a| to_account(&eval, a, &account.os_user).id == account.id)
            else {
                continue;
            };
            let side = match role {
                Role::Incoming => found.incoming.as_ref(),
                Role::Outgoing => found.outgoing.as_ref(),
            }?;
            let event = side.password?;
            let loaded = eval.files.get(event.file)?;
            // The word is read again from a file the user owns (see
            // `mailmend_clientkit::owned`), and only when it is still the file evaluated.
            let bytes = mailmend_clientkit::owned::read_owned(&loaded.path, &account.os_user)?;
            if bytes.as_slice() != loaded.file.as_bytes() {
                return None;
            }
            let file = muttrc::MuttFile::parse(&bytes).ok()?;
            let word = file.assigned_word(event.stmt)?;
            let is_url = matches!(
                &file.statements().get(event.stmt)?.kind,
                muttrc::StatementKind::Set {
                    op: muttrc::SetOp::Assign(muttrc::Value::Url(_)),
                    ..
                } | muttrc::StatementKind::Mailbox { .. }
            );
            let password = if is_url {
                credential::url_password(&word)?
            } else {
                word
            };
            return (!password.is_empty()).then(|| mailmend_core::Secret::new(password.to_vec()));
        }
        None
    }
}

/// The home an account's file belongs to: the nearest ancestor directory that holds one of the
/// start-up files. Accounts only come from files inside a home, reached from such a file.
fn home_of(path: &Path) -> PathBuf {
    for dir in path.ancestors().skip(1) {
        if ROOT_FILES.iter().any(|r| dir.join(r).exists()) {
            return dir.to_path_buf();
        }
    }
    path.parent().unwrap_or(Path::new("/")).to_path_buf()
}
