//! Client adapter for Outlook for Windows: reads the IMAP, POP3 and SMTP accounts (and lists the
//! Exchange accounts) of every Outlook profile of Office 16.0 and 15.0, and of the older Windows
//! Messaging Subsystem, from the user's registry hive, and plans registry edits of them.
//!
//! The registry sits behind [`mailmend_core::Registry`]: on Windows it is [`WindowsRegistry`]
//! (the `windows-registry` crate); on Linux, tests give the adapter a [`RegFileStore`] over
//! `.reg` export files (several, through [`MountedRegistry`]). [`HiveResolver`] maps a home to
//! the user's hive: HKEY_CURRENT_USER for the agent's own user, `HKEY_USERS\<SID>` for other
//! logged-on users ([`ProfileListHives`]).
//!
//! Nothing here writes: [`OutlookAdapter::plan`] returns an [`Edit::Registry`] with each value's
//! exact before and after, and the executor applies it. Password values (DPAPI blobs) are never
//! read ([`accounts::READ_VALUES`]). Exchange accounts are listed, with their server left empty
//! (it comes from Autodiscover), and never planned.
//!
//! Running: Microsoft supports changing a profile only through MAPI, with Outlook closed;
//! Outlook keeps its account settings in memory and writes them back, so a registry write while
//! OUTLOOK.EXE runs would be lost or raced. [`OutlookAdapter::is_running`] is therefore true
//! while any OUTLOOK.EXE runs, and the executor defers the change until it exits.

pub mod accounts;
pub mod hives;
pub mod mounts;
pub mod plan;
pub mod regfile;
pub mod store;
#[cfg(windows)]
pub mod windows;

pub use hives::{HiveResolver, ProfileListHives, StaticHives};
pub use mailmend_clientkit::process::{self, ProcFs, ProcessInfo, ProcessTable, StaticProcesses};
pub use mounts::MountedRegistry;
pub use regfile::{RegFile, SyntaxError};
pub use store::RegFileStore;
#[cfg(windows)]
pub use windows::{WindowsProcesses, WindowsRegistry};

use accounts::{Note, Values};
use mailmend_core::{
    Account, AccountId, AdapterError, ClientAdapter, ClientKind, Discovery, Edit, EndpointChange,
    Evidence, Finding, Home, Location, PluginInfo, RegPath, Registry, RegistryEdit, RegistryError,
    Role, Severity,
};
use std::path::PathBuf;
use std::sync::Arc;

/// The finding code for registry data mailmend cannot read (a `.reg` store with a syntax error,
/// a key it may not open).
pub const CONFIG_UNREADABLE: &str = "config.unreadable";
/// The finding code for a security setting of "Auto", which may fall back to plaintext.
pub const AMBIGUOUS_SECURITY: &str = "config.ambiguous_security";
/// The finding code for a value mailmend does not understand; that side is not checked.
pub const CONFIG_UNSUPPORTED: &str = "config.unsupported";

/// The program whose running defers a change.
pub const PROCESS_NAME: &str = "OUTLOOK.EXE";

/// The Outlook adapter.
pub struct OutlookAdapter {
    registry: Arc<dyn Registry>,
    hives: Arc<dyn HiveResolver>,
    processes: Arc<dyn ProcessTable>,
}

impl std::fmt::Debug for OutlookAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutlookAdapter")
            .field("hives", &self.hives)
            .finish_non_exhaustive()
    }
}

impl OutlookAdapter {
    /// An adapter over `registry`, finding each home's hive with `hives`, and reading the
    /// system's process table.
    pub fn new(registry: Arc<dyn Registry>, hives: Arc<dyn HiveResolver>) -> OutlookAdapter {
        OutlookAdapter {
            registry,
            hives,
            processes: default_processes(),
        }
    }

    /// The adapter for this Windows machine: the real registry, ProfileList, and the process
    /// table of Windows.
    #[cfg(windows)]
    pub fn windows() -> OutlookAdapter {
        OutlookAdapter::new(
            Arc::new(WindowsRegistry),
            Arc::new(ProfileListHives::from_env()),
        )
    }

    /// The same adapter asking `processes` which programs run.
    pub fn with_processes(mut self, processes: Arc<dyn ProcessTable>) -> OutlookAdapter {
        self.processes = processes;
        self
    }

    pub fn registry(&self) -> &dyn Registry {
        self.registry.as_ref()
    }
}

#[cfg(windows)]
fn default_processes() -> Arc<dyn ProcessTable> {
    Arc::new(WindowsProcesses)
}

#[cfg(not(windows))]
fn default_processes() -> Arc<dyn ProcessTable> {
    Arc::new(ProcFs::default())
}

/// Whether `name` (a process name from any process table) is Outlook: `OUTLOOK.EXE` in any
/// case, with or without `.exe`.
pub fn is_outlook_process(name: &str) -> bool {
    let base = name.rsplit(['\\', '/']).next().unwrap_or(name);
    base.eq_ignore_ascii_case(PROCESS_NAME) || base.eq_ignore_ascii_case("OUTLOOK")
}

/// The values of one account key, read one by one: only the names in
/// [`accounts::READ_VALUES`], so no password value is ever read.
pub fn read_values(registry: &dyn Registry, key: &RegPath) -> Result<Values, RegistryError> {
    let mut out = Values::default();
    for name in accounts::READ_VALUES {
        if let Some(v) = registry.get(key, name)? {
            out.0.push((name.to_string(), v));
        }
    }
    Ok(out)
}

/// Whether a subkey name is an account slot: eight hex digits.
fn is_account_slot(name: &str) -> bool {
    name.len() == 8 && name.chars().all(|c| c.is_ascii_hexdigit())
}

/// The id of an account: client, the key's path below the user's hive, and the user; so the
/// same account has the same id whether the hive was reached as HKEY_CURRENT_USER or as
/// `HKEY_USERS\<SID>`.
pub fn account_id(os_user: &str, relative: &str) -> AccountId {
    let location = Location::Registry {
        key: relative.to_string(),
    };
    AccountId::derive(ClientKind::Outlook, &location, os_user)
}

fn finding_id(os_user: &str, what: &str) -> AccountId {
    AccountId::derive(
        ClientKind::Outlook,
        &Location::Registry {
            key: what.to_string(),
        },
        &format!("{os_user}/finding"),
    )
}

/// A registry error as a `config.unreadable` finding (with line and column for a `.reg` store).
fn unreadable(home: &Home, key: &RegPath, e: &RegistryError) -> Finding {
    let (target, summary) = match e {
        RegistryError::Unreadable {
            file, line, column, ..
        } => (
            format!("{file}:{line}:{column}"),
            format!(
                "the registry export {file} has a syntax error at line {line}, column {column}; \
                 mailmend neither checks nor changes its Outlook accounts until it is fixed"
            ),
        ),
        other => (
            key.to_string(),
            format!(
                "Outlook settings of {} cannot be read ({other}), so its accounts are not checked",
                home.user
            ),
        ),
    };
    let result = match e {
        RegistryError::Unreadable { message, .. } => message.clone(),
        other => other.to_string(),
    };
    Finding::new(
        CONFIG_UNREADABLE,
        Severity::Error,
        finding_id(&home.user, &key.to_string()),
        None,
        summary,
    )
    .with_evidence(Evidence::new("registry", target, result))
}

fn role_of(prefix_is_smtp: bool) -> Role {
    if prefix_is_smtp {
        Role::Outgoing
    } else {
        Role::Incoming
    }
}

/// Findings about one side's notes ("Auto" security, values not understood).
fn side_findings(
    home: &Home,
    key: &RegPath,
    relative: &str,
    role: Role,
    notes: &[Note],
) -> Vec<Finding> {
    notes
        .iter()
        .map(|n| match n {
            Note::AutoSecurity(name) => Finding::new(
                AMBIGUOUS_SECURITY,
                Severity::Warning,
                finding_id(&home.user, &format!("{relative}/{role}-security")),
                Some(role),
                format!(
                    "the Outlook account at {key} has its {role} encryption set to \"Auto\", which \
                     falls back to plaintext when the server offers no TLS; mailmend treats it as \
                     unencrypted, and choosing SSL/TLS or STARTTLS makes it explicit"
                ),
            )
            .with_evidence(Evidence::new(
                "registry",
                format!("{key}\\{name}"),
                "3 (Auto)",
            )),
            Note::Unsupported(name, why) => Finding::new(
                CONFIG_UNSUPPORTED,
                Severity::Info,
                finding_id(&home.user, &format!("{relative}/{name}")),
                Some(role),
                format!(
                    "the Outlook account at {key} has a value {name:?} that mailmend does not \
                     understand ({why}); its {role} side is not checked"
                ),
            )
            .with_evidence(Evidence::new(
                "registry",
                format!("{key}\\{name}"),
                why.clone(),
            )),
        })
        .collect()
}

impl ClientAdapter for OutlookAdapter {
    fn info(&self) -> PluginInfo {
        PluginInfo::builtin("outlook")
    }

    fn client(&self) -> ClientKind {
        ClientKind::Outlook
    }

    fn discover(&self, home: &Home) -> Discovery {
        let mut discovery = Discovery::default();
        let reg = self.registry.as_ref();
        let Some(root) = self.hives.hive_root(home, reg) else {
            tracing::debug!(user = %home.user, "no loaded registry hive for this home");
            return discovery;
        };
        for (version, rel) in accounts::PROFILE_ROOTS {
            let profiles_key = root.join(rel);
            let profiles = match reg.subkeys(&profiles_key) {
                Ok(p) => p,
                Err(e) if e.is_not_found() => continue,
                Err(e) => {
                    discovery.findings.push(unreadable(home, &profiles_key, &e));
                    // A .reg store that does not parse fails every read the same way.
                    if matches!(e, RegistryError::Unreadable { .. }) {
                        return discovery;
                    }
                    continue;
                }
            };
            for profile in profiles {
                let manager = profiles_key.join(&profile).join(accounts::ACCOUNT_MANAGER);
                let slots = match reg.subkeys(&manager) {
                    Ok(s) => s,
                    Err(e) if e.is_not_found() => continue,
                    Err(e) => {
                        discovery.findings.push(unreadable(home, &manager, &e));
                        continue;
                    }
                };
                for slot in slots.into_iter().filter(|s| is_account_slot(s)) {
                    let key = manager.join(&slot);
                    let values = match read_values(reg, &key) {
                        Ok(v) => v,
                        Err(e) => {
                            discovery.findings.push(unreadable(home, &key, &e));
                            continue;
                        }
                    };
                    let Some(acc) = accounts::read(&values) else {
                        tracing::debug!(key = %key, "not a mail account mailmend knows");
                        continue;
                    };
                    let relative = key.strip_prefix(&root).unwrap_or_default();
                    for (smtp, side) in [(false, &acc.incoming), (true, &acc.outgoing)] {
                        discovery.findings.extend(side_findings(
                            home,
                            &key,
                            &relative,
                            role_of(smtp),
                            &side.notes,
                        ));
                    }
                    tracing::debug!(key = %key, office = version, profile = %profile, "Outlook account found");
                    discovery.accounts.push(Account {
                        id: account_id(&home.user, &relative),
                        client: ClientKind::Outlook,
                        os_user: home.user.clone(),
                        email: acc.email.clone(),
                        location: Location::Registry {
                            key: key.to_string(),
                        },
                        key: relative,
                        incoming: acc.incoming.endpoint.clone(),
                        outgoing: acc.outgoing.endpoint.clone(),
                    });
                }
            }
        }
        discovery
    }

    /// None: Outlook keeps its accounts in the registry, not in files.
    fn config_paths(&self, _home: &Home) -> Vec<PathBuf> {
        Vec::new()
    }

    /// True while any OUTLOOK.EXE runs (see the crate documentation). Windows process tables do
    /// not give a numeric user, so Outlook of any user counts, to be safe.
    fn is_running(&self, _account: &Account) -> bool {
        self.processes
            .processes()
            .iter()
            .any(|p| is_outlook_process(&p.name))
    }

    fn plan(
        &self,
        account: &Account,
        role: Role,
        change: &EndpointChange,
    ) -> Result<Vec<Edit>, AdapterError> {
        let Location::Registry { key } = &account.location else {
            return Err(AdapterError::Unsupported(
                "an Outlook account lives in the registry".into(),
            ));
        };
        let key = RegPath::parse(key).map_err(|e| AdapterError::Unsupported(e.to_string()))?;
        let gone = || AdapterError::AccountGone {
            path: PathBuf::from(key.to_string()),
            key: account.key.clone(),
        };
        let values = read_values(self.registry.as_ref(), &key).map_err(|e| match e {
            RegistryError::Unreadable {
                file,
                line,
                column,
                message,
            } => AdapterError::Syntax {
                path: PathBuf::from(file),
                line,
                column,
                message,
            },
            other => AdapterError::Io {
                path: PathBuf::from(key.to_string()),
                source: std::io::Error::other(other.to_string()),
            },
        })?;
        if accounts::read(&values).is_none() {
            return Err(gone());
        }
        let edits = plan::plan(&values, role, change).map_err(|e| match e {
            plan::PlanError::NoEndpoint(_) => gone(),
            other => AdapterError::Unsupported(other.to_string()),
        })?;
        if edits.is_empty() {
            return Ok(Vec::new());
        }
        Ok(vec![Edit::Registry(RegistryEdit { key, values: edits })])
    }
}
