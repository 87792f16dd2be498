//! The `kerberos_renew` performer: renews the user's renewable ticket-granting ticket in the
//! user's own credential cache, running `kinit -R` as that user.

use super::{check_renewable, format_time, parse_klist, Ticket};
use crate::exec::{find_program, run_or_fail, Cmd};
use mailmend_core::Action;
use mailmend_executor::{PerformError, Performer};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The Kerberos renewal performer.
#[derive(Debug, Clone, Default)]
pub struct KerberosRenew {
    krb5_config: Option<PathBuf>,
}

/// The OS user a renewal runs as.
struct OsUser {
    name: String,
    uid: u32,
    gid: u32,
    home: PathBuf,
}

impl KerberosRenew {
    /// Uses the Kerberos configuration the agent's environment names (KRB5_CONFIG), or the
    /// system's /etc/krb5.conf.
    pub fn new() -> KerberosRenew {
        KerberosRenew { krb5_config: None }
    }

    /// Uses the Kerberos configuration at `path` for klist and kinit.
    pub fn with_krb5_config(path: impl Into<PathBuf>) -> KerberosRenew {
        KerberosRenew {
            krb5_config: Some(path.into()),
        }
    }

    /// A Kerberos command run as `user` with a clean environment: only PATH, the fixed locale
    /// and time zone klist's output is parsed in, the user's identity, the cache and the config.
    fn cmd(
        &self,
        program: &str,
        user: &OsUser,
        ccache: Option<&str>,
        args: &[&str],
    ) -> Result<Cmd, PerformError> {
        let path = find_program(program).ok_or_else(|| {
            PerformError::Unavailable(format!(
                "{program} (MIT Kerberos, krb5-user) is not installed"
            ))
        })?;
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        if let Some(c) = ccache {
            a.push("-c".into());
            a.push(c.to_string());
        }
        let mut c = Cmd::new(path, a);
        c.clean_env = true;
        c.user = Some((user.uid, user.gid));
        c.timeout = Duration::from_secs(30);
        c.env.extend([
            ("LC_ALL".to_string(), "C".to_string()),
            ("TZ".to_string(), "UTC".to_string()),
            ("HOME".to_string(), user.home.display().to_string()),
            ("USER".to_string(), user.name.clone()),
            ("LOGNAME".to_string(), user.name.clone()),
        ]);
        if let Some(cc) = ccache {
            c.env.push(("KRB5CCNAME".into(), cc.to_string()));
        }
        let config = self
            .krb5_config
            .as_ref()
            .map(|p| p.display().to_string())
            .or_else(|| std::env::var("KRB5_CONFIG").ok());
        if let Some(conf) = config {
            c.env.push(("KRB5_CONFIG".into(), conf));
        }
        Ok(c)
    }

    fn ticket(&self, user: &OsUser, ccache: Option<&str>) -> Result<Ticket, PerformError> {
        let c = self.cmd("klist", user, ccache, &["-f"])?;
        let out = run_or_fail(&c)?;
        if !out.success() {
            return Err(PerformError::Failed(format!(
                "no ticket to renew for {}: klist {}",
                user.name,
                out.failure()
            )));
        }
        parse_klist(&out.stdout).map_err(|e| PerformError::Failed(e.to_string()))
    }
}

fn lookup(name: &str) -> Result<OsUser, PerformError> {
    match nix::unistd::User::from_name(name) {
        Ok(Some(u)) => Ok(OsUser {
            name: u.name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            home: u.dir,
        }),
        Ok(None) => Err(PerformError::Failed(format!("no OS user named {name:?}"))),
        Err(e) => Err(PerformError::Failed(format!(
            "cannot look up OS user {name:?}: {e}"
        ))),
    }
}

struct Target<'a> {
    user: OsUser,
    principal: Option<&'a str>,
    ccache: Option<&'a str>,
}

fn target(action: &Action) -> Result<Target<'_>, PerformError> {
    match action {
        Action::RenewKerberos {
            os_user,
            principal,
            ccache,
        } => Ok(Target {
            user: lookup(os_user)?,
            principal: principal.as_deref(),
            ccache: ccache.as_deref().filter(|c| !c.is_empty()),
        }),
        other => Err(PerformError::Failed(format!(
            "the kerberos_renew performer cannot {}",
            other.describe()
        ))),
    }
}

fn check_principal(t: &Ticket, want: Option<&str>) -> Result<(), PerformError> {
    match want {
        Some(p) if p != t.principal => Err(PerformError::Failed(format!(
            "the credential cache {} holds tickets of {}, not of {p}",
            t.cache, t.principal
        ))),
        _ => Ok(()),
    }
}

fn describe(t: &Ticket) -> Value {
    json!({
        "cache": t.cache,
        "principal": t.principal,
        "expires": format_time(t.expires),
        "renew_until": t.renew_until.map(format_time),
        "renewable": t.renewable,
    })
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Performer for KerberosRenew {
    fn name(&self) -> &'static str {
        "kerberos_renew"
    }

    fn handles(&self, action: &Action) -> bool {
        matches!(action, Action::RenewKerberos { .. })
    }

    fn snapshot(&self, action: &Action) -> Result<Value, PerformError> {
        let t = target(action)?;
        let ticket = self.ticket(&t.user, t.ccache)?;
        check_principal(&ticket, t.principal)?;
        Ok(json!({ "os_user": t.user.name, "ticket": describe(&ticket) }))
    }

    fn apply(&self, fix_id: &str, action: &Action) -> Result<Value, PerformError> {
        let _ = fix_id;
        let t = target(action)?;
        let before = self.ticket(&t.user, t.ccache)?;
        check_principal(&before, t.principal)?;
        check_renewable(&before, now()).map_err(PerformError::Failed)?;
        let c = self.cmd("kinit", &t.user, t.ccache, &["-R"])?;
        let out = run_or_fail(&c)?;
        if !out.success() {
            return Err(PerformError::Failed(format!(
                "kinit -R as {} failed: {}",
                t.user.name,
                out.failure()
            )));
        }
        let after = self.ticket(&t.user, t.ccache)?;
        Ok(json!({
            "os_user": t.user.name,
            "before": describe(&before),
            "after": describe(&after),
            "undo": "a renewal cannot be undone; it only extends the ticket the user already had",
        }))
    }

    fn undo(&self, fix_id: &str, action: &Action, before: &Value) -> Result<(), PerformError> {
        // A renewal only moves the end time of the user's own ticket later; undoing it would
        // mean destroying a valid ticket, which leaves the user worse off.
        let _ = (fix_id, action, before);
        Ok(())
    }
}
