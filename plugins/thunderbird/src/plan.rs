//! Planning a change to one endpoint of a Thunderbird account as edits of its prefs files. Pure:
//! the adapter reads the files and turns the edited documents into `FileEdit`s.

use crate::accounts::{
    account_names, auth_method_value, auth_of, links, socket_type_of, Effective, EndpointPrefs,
};
use crate::prefs::{PrefValue, PrefsFile, SetError};
use mailmend_core::{EndpointChange, Role};

/// Why a change could not be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The account is no longer listed, or no longer has a mail server (removed or renamed).
    #[error("account {0} not found")]
    AccountGone(String),
    /// The change cannot be expressed in prefs (an unknown auth method, an empty host, port 0,
    /// or an outgoing change for an account without an outgoing server).
    #[error("{0}")]
    Unsupported(String),
    /// A prefs file refused the write.
    #[error(transparent)]
    Set(#[from] SetError),
}

/// The pref writes that make `role` of `account` take the values in `change`. A field whose
/// value already is the requested one gets no write. When the port is not set explicitly and a
/// change of security would move Thunderbird to another default port, the current port is
/// written so that the endpoint changes in nothing but what was asked.
pub fn pref_writes(
    eff: &Effective,
    account: &str,
    role: Role,
    change: &EndpointChange,
) -> Result<Vec<(String, PrefValue)>, PlanError> {
    if !account_names(eff).iter().any(|a| a == account) {
        return Err(PlanError::AccountGone(account.to_string()));
    }
    let links = links(eff, account).ok_or_else(|| PlanError::AccountGone(account.to_string()))?;
    let ep = match role {
        Role::Incoming => EndpointPrefs::incoming(&links.server, links.protocol),
        Role::Outgoing => match &links.smtp {
            Some(smtp) => EndpointPrefs::outgoing(smtp),
            None => {
                return Err(PlanError::Unsupported(format!(
                    "account {account} has no outgoing server"
                )))
            }
        },
    };
    let mut writes = Vec::new();

    if let Some(host) = &change.host {
        let host = host.trim();
        if host.is_empty() {
            return Err(PlanError::Unsupported("empty host name".into()));
        }
        let pref = ep.host_pref(eff);
        let same = eff
            .str(pref)
            .is_some_and(|cur| cur.eq_ignore_ascii_case(host));
        if !same {
            writes.push((pref.to_string(), PrefValue::String(host.to_string())));
        }
    }

    let current_security = ep.security(eff);
    let new_security = change.security.unwrap_or(current_security);
    if new_security != current_security {
        writes.push((
            ep.security.clone(),
            PrefValue::Int(socket_type_of(new_security)),
        ));
    }

    let explicit = ep.explicit_port(eff);
    let current_port = explicit.unwrap_or_else(|| ep.protocol.default_port(current_security));
    let wanted_port = change.port.unwrap_or(current_port);
    if wanted_port == 0 {
        return Err(PlanError::Unsupported("port 0".into()));
    }
    let port_after = explicit.unwrap_or_else(|| ep.protocol.default_port(new_security));
    if wanted_port != port_after {
        writes.push((ep.port.clone(), PrefValue::Int(i32::from(wanted_port))));
    }

    if let Some(auth) = &change.auth {
        let value = auth_method_value(auth).ok_or_else(|| {
            PlanError::Unsupported(format!("auth method {auth:?} has no Thunderbird value"))
        })?;
        let current = auth_of(eff.int(&ep.auth).unwrap_or(3));
        if &current != auth {
            writes.push((ep.auth.clone(), PrefValue::Int(value)));
        }
    }
    Ok(writes)
}

/// Applies the writes for a change: every write goes to `prefs.js` (rewritten in place, or
/// appended), and also to `user.js` when it sets the same pref, since `user.js` would otherwise
/// undo the fix at the next start.
pub fn apply(
    prefs: &mut PrefsFile,
    mut user: Option<&mut PrefsFile>,
    account: &str,
    role: Role,
    change: &EndpointChange,
) -> Result<(), PlanError> {
    let eff = Effective::new(prefs, user.as_deref());
    for (name, value) in pref_writes(&eff, account, role, change)? {
        prefs.set(&name, &value)?;
        if let Some(user) = user.as_deref_mut() {
            if user.contains(&name) {
                user.set(&name, &value)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailmend_core::Security;

    const PREFS: &str = "user_pref(\"mail.accountmanager.accounts\", \"account1\");\n\
user_pref(\"mail.account.account1.server\", \"server1\");\n\
user_pref(\"mail.account.account1.identities\", \"id1\");\n\
user_pref(\"mail.identity.id1.smtpServer\", \"smtp1\");\n\
user_pref(\"mail.server.server1.type\", \"imap\");\n\
user_pref(\"mail.server.server1.hostname\", \"imap.example.com\");\n\
user_pref(\"mail.smtpserver.smtp1.hostname\", \"smtp.example.com\");\n";

    fn writes(change: EndpointChange, role: Role) -> Vec<(String, PrefValue)> {
        let f = PrefsFile::parse(PREFS.as_bytes()).unwrap();
        pref_writes(&Effective::new(&f, None), "account1", role, &change).unwrap()
    }

    #[test]
    fn a_security_change_alone_keeps_the_implicit_port() {
        let w = writes(
            EndpointChange {
                security: Some(Security::Tls),
                ..Default::default()
            },
            Role::Incoming,
        );
        assert_eq!(
            w,
            vec![
                ("mail.server.server1.socketType".into(), PrefValue::Int(3)),
                ("mail.server.server1.port".into(), PrefValue::Int(143)),
            ]
        );
    }

    #[test]
    fn a_port_equal_to_the_new_default_needs_no_port_pref() {
        let w = writes(
            EndpointChange {
                port: Some(465),
                security: Some(Security::Tls),
                ..Default::default()
            },
            Role::Outgoing,
        );
        assert_eq!(
            w,
            vec![("mail.smtpserver.smtp1.try_ssl".into(), PrefValue::Int(3))]
        );
    }

    #[test]
    fn host_names_compare_without_case() {
        let w = writes(
            EndpointChange {
                host: Some("IMAP.Example.com".into()),
                ..Default::default()
            },
            Role::Incoming,
        );
        assert!(w.is_empty());
    }

    #[test]
    fn unknown_auth_methods_and_port_zero_are_unsupported() {
        let f = PrefsFile::parse(PREFS.as_bytes()).unwrap();
        let eff = Effective::new(&f, None);
        let bad = [
            EndpointChange {
                auth: Some(mailmend_core::AuthMethod::Other("x".into())),
                ..Default::default()
            },
            EndpointChange {
                port: Some(0),
                ..Default::default()
            },
            EndpointChange {
                host: Some("  ".into()),
                ..Default::default()
            },
        ];
        for change in bad {
            assert!(matches!(
                pref_writes(&eff, "account1", Role::Incoming, &change),
                Err(PlanError::Unsupported(_))
            ));
        }
    }
}
