//! Client adapter for aerc: reads `~/.config/aerc/accounts.conf`, finds accounts in its
//! `source` and `outgoing` URLs, and plans byte-exact edits of those URLs.
//!
//! Nothing here writes: [`AercAdapter::plan`] returns the bytes before and after, and the
//! agent's executor applies them. A password inside a URL (`imaps://user:PASS@host`) and the
//! URL's query (OAuth parameters) are dropped while the file is parsed and never rewritten, so
//! they reach no account, finding or log and stay in the file byte for byte; only
//! [`ClientAdapter::credential`] reads a URL password, on request, into a
//! [`mailmend_core::Secret`]. The `*-cred-cmd` commands are never run or kept.
//!
//! The meaning of a bare `smtp://` changed in aerc 0.15 (see [`accounts`]), so the adapter runs
//! the system's `aerc -v` once ([`version`]); tests inject the version instead.
//!
//! Running: [`AercAdapter::is_running`] is true while an `aerc` process runs as the owner of
//! accounts.conf. aerc reads the file at start-up only, so a fix would not reach the running
//! instance, and its `:new-account` wizard rewrites the whole file from what it read, which
//! would undo a fix made meanwhile. The executor therefore defers the change until aerc exits.

pub mod accounts;
pub mod credential;
pub mod ini;
pub mod plan;
pub mod url;
pub mod version;

pub use ini::{AccountsFile, SyntaxError};
// The process table is shared with the other adapters; it stays reachable under this crate.
pub use mailmend_clientkit::process;
pub use process::{ProcFs, ProcessInfo, ProcessTable, StaticProcesses};
pub use version::AercVersion;

use mailmend_core::{
    Account, AccountId, AdapterError, ClientAdapter, ClientKind, Discovery, Edit, EndpointChange,
    Evidence, FileEdit, Finding, Home, Location, PluginInfo, Role, Severity,
};
use plan::PlanError;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// The finding code for a configuration file mailmend cannot read or parse.
pub const CONFIG_UNREADABLE: &str = "config.unreadable";
/// The finding code for an accounts.conf that is a link to a file outside the user's home;
/// mailmend runs with more rights than the user, so it neither reads nor changes it.
pub const CONFIG_OUTSIDE_HOME: &str = "config.outside_home";
/// The finding code for a bare `smtp://` whose security depends on an unknown aerc version.
pub const AMBIGUOUS_SECURITY: &str = "config.ambiguous_security";
/// The finding code for `imaps+insecure://`, TLS without certificate checks.
pub const TLS_UNVERIFIED: &str = "config.tls_unverified";

/// Where accounts.conf is, relative to the home.
pub const ACCOUNTS_CONF: &str = ".config/aerc/accounts.conf";

/// The process name of aerc.
pub const PROCESS_NAME: &str = "aerc";

/// Where the adapter learns the installed aerc's version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionSource {
    /// `aerc -v` of the system's aerc ([`version::SYSTEM_PATHS`]).
    System,
    /// `-v` of this binary (it must be trusted, see [`version`]).
    Command(PathBuf),
    /// A known version, or `None` for "not installed / unknown".
    Fixed(Option<AercVersion>),
}

/// The aerc client adapter.
#[derive(Debug, Clone)]
pub struct AercAdapter {
    source: VersionSource,
    version: OnceLock<Option<AercVersion>>,
    processes: Arc<dyn ProcessTable>,
}

impl Default for AercAdapter {
    fn default() -> AercAdapter {
        AercAdapter::new()
    }
}

impl AercAdapter {
    /// An adapter that asks the system's aerc for its version (once, when first needed) and
    /// reads the system's process table.
    pub fn new() -> AercAdapter {
        AercAdapter::with_version_source(VersionSource::System)
    }

    pub fn with_version_source(source: VersionSource) -> AercAdapter {
        AercAdapter {
            source,
            version: OnceLock::new(),
            processes: Arc::new(ProcFs::default()),
        }
    }

    /// An adapter that takes the aerc version as given.
    pub fn with_version(version: Option<AercVersion>) -> AercAdapter {
        AercAdapter::with_version_source(VersionSource::Fixed(version))
    }

    /// The same adapter, asking `processes` which processes run.
    pub fn with_process_table(mut self, processes: Arc<dyn ProcessTable>) -> AercAdapter {
        self.processes = processes;
        self
    }

    /// The installed aerc's version, when known.
    pub fn version(&self) -> Option<AercVersion> {
        *self.version.get_or_init(|| match &self.source {
            VersionSource::System => version::detect_system(),
            VersionSource::Command(path) => version::detect(std::slice::from_ref(path)),
            VersionSource::Fixed(v) => *v,
        })
    }
}

/// The id of findings about the file as a whole, or about one part of a section (`suffix`).
fn finding_id(path: &Path, suffix: &str) -> AccountId {
    let location = Location::File {
        path: path.to_path_buf(),
    };
    AccountId::derive(ClientKind::Aerc, &location, suffix)
}

fn unreadable(path: &Path, target: String, result: String, summary: String) -> Finding {
    Finding::new(
        CONFIG_UNREADABLE,
        Severity::Error,
        finding_id(path, "file"),
        None,
        summary,
    )
    .with_evidence(Evidence::new("config", target, result))
}

/// Reads accounts.conf for discovery: `Ok(None)` when there is none, `Err` with the finding
/// when it cannot be used.
fn load(home: &Home) -> Result<Option<(PathBuf, AccountsFile)>, Box<Finding>> {
    let path = home.path.join(ACCOUNTS_CONF);
    let canon = match std::fs::canonicalize(&path) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Box::new(unreadable(
                &path,
                path.display().to_string(),
                e.to_string(),
                format!(
                    "aerc settings file {} cannot be read, so its accounts are not checked",
                    path.display()
                ),
            )))
        }
    };
    let inside = std::fs::canonicalize(&home.path).is_ok_and(|h| canon.starts_with(h));
    if !inside {
        return Err(Box::new(
            Finding::new(
                CONFIG_OUTSIDE_HOME,
                Severity::Warning,
                finding_id(&canon, "file"),
                None,
                format!(
                    "aerc settings file {} is a link to {}, outside the user's home; mailmend \
                     neither reads nor changes it",
                    path.display(),
                    canon.display()
                ),
            )
            .with_evidence(Evidence::new(
                "config",
                path.display().to_string(),
                format!("{} is outside the home directory", canon.display()),
            )),
        ));
    }
    let bytes = std::fs::read(&canon).map_err(|e| {
        Box::new(unreadable(
            &canon,
            canon.display().to_string(),
            e.to_string(),
            format!(
                "aerc settings file {} cannot be read, so its accounts are not checked",
                canon.display()
            ),
        ))
    })?;
    let file = AccountsFile::parse(&bytes).map_err(|e| {
        Box::new(unreadable(
            &canon,
            format!("{}:{}:{}", canon.display(), e.line, e.column),
            e.message.clone(),
            format!(
                "aerc settings file {} has a syntax error at line {}, column {}; mailmend \
                 neither checks nor changes it until it is fixed",
                canon.display(),
                e.line,
                e.column
            ),
        ))
    })?;
    Ok(Some((canon, file)))
}

/// Findings about one account's settings. They carry an id of their own (not the account's),
/// because the agent treats a discovery finding on an account as "the account is unreadable".
fn account_findings(path: &Path, a: &accounts::AercAccount) -> Vec<Finding> {
    let mut out = Vec::new();
    if a.ambiguous_outgoing {
        let place = format!("{}:{}", path.display(), a.outgoing_line.unwrap_or(0));
        let endpoint = a
            .outgoing
            .as_ref()
            .map(|e| format!("{}:{}", e.host, e.port))
            .unwrap_or_default();
        out.push(
            Finding::new(
                AMBIGUOUS_SECURITY,
                Severity::Warning,
                finding_id(path, &format!("{}/outgoing-security", a.section)),
                Some(Role::Outgoing),
                format!(
                    "aerc account \"{}\" sends mail through smtp://{endpoint}: aerc before 0.15 \
                     sends that in plaintext, aerc 0.15 and later uses STARTTLS, and the \
                     installed aerc version is unknown, so mailmend treats it as plaintext; \
                     writing smtps://, smtp+insecure:// or smtp-starttls = yes makes it explicit",
                    a.section
                ),
            )
            .with_evidence(Evidence::new(
                "config",
                place,
                "smtp:// without smtp-starttls; aerc version unknown",
            )),
        );
    }
    if a.unverified_incoming {
        let place = format!("{}:{}", path.display(), a.source_line.unwrap_or(0));
        out.push(
            Finding::new(
                TLS_UNVERIFIED,
                Severity::Warning,
                finding_id(path, &format!("{}/incoming-certificate", a.section)),
                Some(Role::Incoming),
                format!(
                    "aerc account \"{}\" reads mail over imaps+insecure://, which does not check \
                     the server's certificate; anyone on the network path can read the password",
                    a.section
                ),
            )
            .with_evidence(Evidence::new(
                "config",
                place,
                "imaps+insecure: certificate checks off",
            )),
        );
    }
    out
}

impl ClientAdapter for AercAdapter {
    fn info(&self) -> PluginInfo {
        PluginInfo::builtin("aerc")
    }

    fn client(&self) -> ClientKind {
        ClientKind::Aerc
    }

    fn discover(&self, home: &Home) -> Discovery {
        let mut discovery = Discovery::default();
        let (path, file) = match load(home) {
            Ok(Some(loaded)) => loaded,
            Ok(None) => return discovery,
            Err(f) => {
                discovery.findings.push(*f);
                return discovery;
            }
        };
        let version = self.version();
        let location = Location::File { path: path.clone() };
        for a in accounts::build(&file, version) {
            discovery.findings.extend(account_findings(&path, &a));
            tracing::debug!(path = %path.display(), section = %a.section, "aerc account found");
            discovery.accounts.push(Account {
                id: AccountId::derive(ClientKind::Aerc, &location, &a.section),
                client: ClientKind::Aerc,
                os_user: home.user.clone(),
                email: a.email,
                location: location.clone(),
                key: a.section,
                incoming: a.incoming,
                outgoing: a.outgoing,
            });
        }
        discovery
    }

    fn config_paths(&self, home: &Home) -> Vec<PathBuf> {
        vec![home.path.join(ACCOUNTS_CONF)]
    }

    fn is_running(&self, account: &Account) -> bool {
        let uid = match &account.location {
            Location::File { path } => process::owner_uid(path),
            Location::Registry { .. } => None,
        };
        process::any_running(self.processes.as_ref(), &[PROCESS_NAME], uid)
    }

    fn plan(
        &self,
        account: &Account,
        role: Role,
        change: &EndpointChange,
    ) -> Result<Vec<Edit>, AdapterError> {
        let Location::File { path } = &account.location else {
            return Err(AdapterError::Unsupported(
                "an aerc account lives in accounts.conf".into(),
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
        let file = AccountsFile::parse(&before).map_err(|e| AdapterError::Syntax {
            path: path.clone(),
            line: e.line,
            column: e.column,
            message: e.message,
        })?;
        let after =
            plan::plan(&file, &account.key, role, change, self.version()).map_err(|e| match e {
                PlanError::AccountGone(_) => gone(),
                other => AdapterError::Unsupported(other.to_string()),
            })?;
        if after == before {
            return Ok(Vec::new());
        }
        Ok(vec![Edit::File(FileEdit {
            path: path.clone(),
            before,
            after,
        })])
    }

    /// The password inside the account's `source` (incoming) or `outgoing` URL, read from the
    /// file now. aerc prefers it to `*-cred-cmd`, which is never run; `None` without one, and
    /// for OAuth schemes, whose URL "password" is a token, not a password.
    fn credential(&self, account: &Account, role: Role) -> Option<mailmend_core::Secret> {
        let Location::File { path } = &account.location else {
            return None;
        };
        // Only a file the user owns: see `mailmend_clientkit::owned`.
        let bytes = mailmend_clientkit::owned::read_owned(path, &account.os_user)?;
        let file = AccountsFile::parse(&bytes).ok()?;
        let key = match role {
            Role::Incoming => "source",
            Role::Outgoing => "outgoing",
        };
        let entry = file.get(&account.key, key)?;
        let ini::Value::Url(url) = &entry.value else {
            return None;
        };
        if accounts::auth_of(url) != mailmend_core::AuthMethod::PasswordCleartext {
            return None;
        }
        let password = credential::url_password(file.as_bytes().get(entry.value_span.clone())?)?;
        Some(mailmend_core::Secret::new(password.to_vec()))
    }
}
