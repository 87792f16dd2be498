//! Client adapter for Evolution: reads mail accounts from the key files in
//! `~/.config/evolution/sources/`, follows each account to its identity and transport, and
//! plans byte-exact edits of the file that holds the server to change.
//!
//! Nothing here writes: [`EvolutionAdapter::plan`] returns the bytes before and after, and the
//! agent's executor applies them while Evolution's source registry does not run (it keeps the
//! sources in memory and writes them back). Evolution keeps passwords in the keyring, never in
//! these files; values mailmend does not interpret are never decoded. The sources are looked
//! up relative to the home being scanned, never through the agent's own `$XDG_CONFIG_HOME`.

pub mod accounts;
pub mod keyfile;
pub mod plan;

pub use keyfile::{KeyFile, LineEnding, SetError, SyntaxError};
// The process table is shared with the other adapters; it stays reachable under this crate.
pub use mailmend_clientkit::process;
pub use process::{ProcFs, ProcessInfo, ProcessTable, StaticProcesses};

use accounts::{
    enabled, protocol_of, read_server, valid_uid, MAIL_ACCOUNT, MAIL_IDENTITY, MAIL_SUBMISSION,
    MAIL_TRANSPORT,
};
use mailmend_core::{
    Account, AccountId, AdapterError, ClientAdapter, ClientKind, Discovery, Edit, Endpoint,
    EndpointChange, Evidence, FileEdit, Finding, Home, Location, PluginInfo, Protocol, Role,
    Severity,
};
use plan::PlanError;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The finding code for a configuration file mailmend cannot read or parse.
pub const CONFIG_UNREADABLE: &str = "config.unreadable";
/// The finding code for a source file that resolves (through a symbolic link) outside the
/// user's home; mailmend runs with more rights than the user, so it neither reads nor changes
/// such a file.
pub const CONFIG_OUTSIDE_HOME: &str = "config.outside_home";

/// Where Evolution keeps its sources, relative to the home.
pub const SOURCES_DIR: &str = ".config/evolution/sources";
/// The programs whose running makes a write race: the source registry holds every source in
/// memory and writes it back, and Evolution itself talks to it.
pub const PROGRAMS: [&str; 2] = ["evolution-source-registry", "evolution"];

/// The Evolution client adapter.
#[derive(Clone)]
pub struct EvolutionAdapter {
    processes: Arc<dyn ProcessTable>,
}

impl fmt::Debug for EvolutionAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EvolutionAdapter").finish_non_exhaustive()
    }
}

impl Default for EvolutionAdapter {
    fn default() -> Self {
        EvolutionAdapter::new()
    }
}

impl EvolutionAdapter {
    /// The adapter for this machine, reading `/proc`.
    pub fn new() -> EvolutionAdapter {
        EvolutionAdapter {
            processes: Arc::new(ProcFs::new()),
        }
    }

    /// Uses another process table (tests).
    pub fn with_processes(mut self, table: impl ProcessTable + 'static) -> EvolutionAdapter {
        self.processes = Arc::new(table);
        self
    }
}

/// One readable source file.
struct Source {
    path: PathBuf,
    file: KeyFile,
}

fn finding_id(path: &Path) -> AccountId {
    let location = Location::File {
        path: path.to_path_buf(),
    };
    AccountId::derive(ClientKind::Evolution, &location, "file")
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

fn syntax_finding(path: &Path, e: &SyntaxError) -> Finding {
    unreadable(
        path,
        format!("{}:{}:{}", path.display(), e.line, e.column),
        e.message.clone(),
        format!(
            "Evolution source {} has an error at line {}, column {}; mailmend neither checks \
             nor changes the accounts that use it until it is fixed",
            path.display(),
            e.line,
            e.column
        ),
    )
}

fn outside_home(path: &Path, canon: &Path) -> Finding {
    Finding::new(
        CONFIG_OUTSIDE_HOME,
        Severity::Warning,
        finding_id(path),
        None,
        format!(
            "Evolution source {} points outside the user's home; mailmend does not check it",
            path.display()
        ),
    )
    .with_evidence(Evidence::new(
        "config",
        canon.display().to_string(),
        "outside the home directory",
    ))
}

/// Reads every `*.source` file of the home's sources directory, by uid. Files that cannot be
/// read or parsed, or that lead outside the home, become findings.
fn read_sources(home: &Home, findings: &mut Vec<Finding>) -> BTreeMap<String, Source> {
    let mut sources = BTreeMap::new();
    let dir = home.path.join(SOURCES_DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return sources;
    };
    let home_canon = std::fs::canonicalize(&home.path).ok();
    let mut names: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "source"))
        .collect();
    names.sort();
    for path in names {
        let Some(uid) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        let canon = match std::fs::canonicalize(&path) {
            Ok(c) => c,
            // A dangling link is no source.
            Err(_) => continue,
        };
        if home_canon.as_ref().is_some_and(|h| !canon.starts_with(h)) {
            findings.push(outside_home(&path, &canon));
            continue;
        }
        if !canon.is_file() {
            continue;
        }
        let bytes = match std::fs::read(&canon) {
            Ok(b) => b,
            Err(e) => {
                findings.push(unreadable(
                    &canon,
                    canon.display().to_string(),
                    e.to_string(),
                    format!(
                        "Evolution source {} cannot be read, so its accounts are not checked",
                        canon.display()
                    ),
                ));
                continue;
            }
        };
        match KeyFile::parse(&bytes) {
            Ok(file) => {
                sources.insert(uid, Source { path: canon, file });
            }
            Err(e) => findings.push(syntax_finding(&canon, &e)),
        }
    }
    sources
}

/// A string value of a source, or a finding when it cannot be decoded.
fn value(source: &Source, group: &str, key: &str, findings: &mut Vec<Finding>) -> Option<String> {
    match source.file.get(group, key) {
        Ok(v) => v,
        Err(e) => {
            findings.push(syntax_finding(&source.path, &e));
            None
        }
    }
}

/// The server a source holds, or a finding when its settings cannot be read.
fn server(source: &Source, protocol: Protocol, findings: &mut Vec<Finding>) -> Option<Endpoint> {
    match read_server(&source.file, protocol) {
        Ok(s) => s.map(|s| s.endpoint()),
        Err(e) => {
            findings.push(syntax_finding(&source.path, &e));
            None
        }
    }
}

/// The source a uid read from another source names, when it is a valid uid.
fn linked(sources: &BTreeMap<String, Source>, uid: Option<String>) -> Option<&Source> {
    let uid = uid?;
    let uid = uid.trim();
    if !valid_uid(uid) {
        return None;
    }
    sources.get(uid)
}

/// The identity and transport of an account, as far as they can be followed.
fn links<'a>(
    sources: &'a BTreeMap<String, Source>,
    account: &Source,
    findings: &mut Vec<Finding>,
) -> (Option<&'a Source>, Option<&'a Source>) {
    let identity_uid = value(account, MAIL_ACCOUNT, "IdentityUid", findings);
    let identity = linked(sources, identity_uid);
    let transport = identity.and_then(|id| {
        let uid = value(id, MAIL_SUBMISSION, "TransportUid", findings);
        linked(sources, uid)
    });
    (identity, transport)
}

/// Dedupes findings: a broken file shared by several accounts is reported once.
fn dedupe(findings: &mut Vec<Finding>) {
    let mut seen = std::collections::HashSet::new();
    findings.retain(|f| {
        let targets: Vec<&str> = f.evidence.iter().map(|e| e.target.as_str()).collect();
        seen.insert(format!("{}\0{}\0{}", f.code, f.account, targets.join("\0")))
    });
}

impl ClientAdapter for EvolutionAdapter {
    fn info(&self) -> PluginInfo {
        PluginInfo::builtin("evolution")
    }

    fn client(&self) -> ClientKind {
        ClientKind::Evolution
    }

    fn discover(&self, home: &Home) -> Discovery {
        let mut discovery = Discovery::default();
        let findings = &mut discovery.findings;
        let sources = read_sources(home, findings);
        for (uid, source) in &sources {
            if !source.file.has_group(MAIL_ACCOUNT) {
                continue;
            }
            let on = enabled(&source.file).unwrap_or_else(|e| {
                findings.push(syntax_finding(&source.path, &e));
                false
            });
            let backend = value(source, MAIL_ACCOUNT, "BackendName", findings);
            let protocol = backend.as_deref().map(str::trim).and_then(protocol_of);
            let Some(protocol @ (Protocol::Imap | Protocol::Pop3)) = protocol else {
                continue; // local folders, Exchange and the like
            };
            if !on {
                tracing::debug!(uid = %uid, "disabled evolution account skipped");
                continue;
            }
            let Some(incoming) = server(source, protocol, findings) else {
                continue;
            };
            let (identity, transport) = links(&sources, source, findings);
            let email = identity
                .and_then(|id| value(id, MAIL_IDENTITY, "Address", findings))
                .map(|a| a.trim().to_string())
                .filter(|a| a.contains('@'));
            let outgoing = transport.and_then(|t| {
                let backend = value(t, MAIL_TRANSPORT, "BackendName", findings)?;
                match protocol_of(backend.trim()) {
                    Some(Protocol::Smtp) => server(t, Protocol::Smtp, findings),
                    _ => None, // sendmail, or Exchange's own transport
                }
            });
            let location = Location::File {
                path: source.path.clone(),
            };
            tracing::debug!(uid = %uid, "evolution account found");
            discovery.accounts.push(Account {
                id: AccountId::derive(ClientKind::Evolution, &location, uid),
                client: ClientKind::Evolution,
                os_user: home.user.clone(),
                email,
                location,
                key: uid.clone(),
                incoming: Some(incoming),
                outgoing,
            });
        }
        dedupe(&mut discovery.findings);
        discovery
    }

    /// The sources directory: adding, removing or changing any source there may change what
    /// `discover` finds.
    fn config_paths(&self, home: &Home) -> Vec<PathBuf> {
        vec![home.path.join(SOURCES_DIR)]
    }

    /// Whether `evolution-source-registry` or `evolution` runs as the user owning the account's
    /// source file (as any user, when the owner cannot be learnt). The registry keeps every
    /// source in memory and writes it back when anything changes it, which would undo a fix.
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
                "an evolution account lives in a source file".into(),
            ));
        };
        let gone = || AdapterError::AccountGone {
            path: path.clone(),
            key: account.key.clone(),
        };
        let (_, account_file) = read_for_plan(path)?.ok_or_else(gone)?;
        let backend = account_file
            .get(MAIL_ACCOUNT, "BackendName")
            .map_err(|e| syntax_error(path, e))?
            .ok_or_else(gone)?;
        let (target, protocol) = match role {
            Role::Incoming => {
                let protocol = protocol_of(backend.trim())
                    .filter(|p| *p != Protocol::Smtp)
                    .ok_or_else(gone)?;
                (path.clone(), protocol)
            }
            Role::Outgoing => (transport_path(path, &account_file)?, Protocol::Smtp),
        };
        let (before, mut file) = read_for_plan(&target)?.ok_or_else(|| {
            AdapterError::Unsupported(format!("{} does not exist", target.display()))
        })?;
        if role == Role::Outgoing {
            let backend = file
                .get(MAIL_TRANSPORT, "BackendName")
                .map_err(|e| syntax_error(&target, e))?
                .unwrap_or_default();
            if protocol_of(backend.trim()) != Some(Protocol::Smtp) {
                return Err(AdapterError::Unsupported(
                    "the account does not send through an smtp server".into(),
                ));
            }
        }
        plan::apply(&mut file, protocol, change).map_err(|e| match e {
            PlanError::Unsupported(m) => AdapterError::Unsupported(m),
            other => AdapterError::Unsupported(other.to_string()),
        })?;
        if file.as_bytes() == before {
            return Ok(Vec::new());
        }
        Ok(vec![Edit::File(FileEdit {
            path: target,
            before,
            after: file.into_bytes(),
        })])
    }
}

fn syntax_error(path: &Path, e: SyntaxError) -> AdapterError {
    AdapterError::Syntax {
        path: path.to_path_buf(),
        line: e.line,
        column: e.column,
        message: e.message,
    }
}

/// Reads and parses a source for planning; `None` when it does not exist.
fn read_for_plan(path: &Path) -> Result<Option<(Vec<u8>, KeyFile)>, AdapterError> {
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
    let file = KeyFile::parse(&bytes).map_err(|e| syntax_error(path, e))?;
    Ok(Some((bytes, file)))
}

/// The transport source of an account: account → identity → transport, each a file of the
/// account's directory.
fn transport_path(account_path: &Path, account: &KeyFile) -> Result<PathBuf, AdapterError> {
    let dir = account_path.parent().unwrap_or(Path::new("."));
    let no_transport =
        || AdapterError::Unsupported("the account has no outgoing server to change".into());
    let uid = |file: &KeyFile, group: &str, key: &str, path: &Path| {
        file.get(group, key)
            .map_err(|e| syntax_error(path, e))
            .map(|v| v.map(|s| s.trim().to_string()).filter(|s| valid_uid(s)))
    };
    let identity_uid =
        uid(account, MAIL_ACCOUNT, "IdentityUid", account_path)?.ok_or_else(no_transport)?;
    let identity_path = dir.join(format!("{identity_uid}.source"));
    let (_, identity) = read_for_plan(&identity_path)?.ok_or_else(no_transport)?;
    let transport_uid = uid(&identity, MAIL_SUBMISSION, "TransportUid", &identity_path)?
        .ok_or_else(no_transport)?;
    let path = dir.join(format!("{transport_uid}.source"));
    // The executor replaces the file it is given; a transport that is a link to a file
    // elsewhere is not one mailmend may change.
    match std::fs::canonicalize(&path) {
        Ok(canon) if canon.parent() == Some(dir) => Ok(canon),
        Ok(_) => Err(AdapterError::Unsupported(format!(
            "{} links outside the sources directory",
            path.display()
        ))),
        Err(_) => Err(no_transport()),
    }
}
