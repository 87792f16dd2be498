//! Planning a change to an msmtp account's SMTP endpoint as an edit of its configuration file.
//! Pure: the adapter reads the file and turns the edited document into a `FileEdit`.
//!
//! Every value is written into the changed account's own block. A value the account inherits
//! from `defaults` or from a parent account is therefore overridden there, with one inserted
//! line, and the defaults, the parent and the account's siblings keep what they had. A value the
//! account sets itself is rewritten in place; accounts that name this one as their parent
//! (`account default : work`) and do not set that value themselves follow the change, which is
//! what their inheritance declares.

use crate::accounts::{auth_of, auth_value, endpoint, security_of};
use crate::config::{AccountEntry, Field, MsmtpFile, SetError};
use mailmend_core::{Endpoint, EndpointChange, Role, Security};

/// Why a change could not be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The account is no longer defined (removed or renamed).
    #[error("account {0} not found")]
    AccountGone(String),
    /// The change cannot be expressed: an incoming change (msmtp only sends), an unknown auth
    /// method, an invalid host, port 0, or an account whose values come from `eval`.
    #[error("{0}")]
    Unsupported(String),
    /// The file refused the write.
    #[error(transparent)]
    Set(#[from] SetError),
}

/// Whether `host` can be written as a host name or address: no blanks, quotes, comment signs or
/// control characters, nothing a configuration file could read differently.
pub fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']' | '%'))
}

/// The writes (field, argument) that make `entry`'s endpoint take the values in `change`. A
/// field that already has the requested value gets no write. When the port is not set anywhere
/// and a change of security would move msmtp to another default port, the current port is
/// written so that the endpoint changes in nothing but what was asked.
pub fn writes(
    entry: &AccountEntry,
    change: &EndpointChange,
) -> Result<(Vec<(Field, String)>, Endpoint), PlanError> {
    let current = endpoint(entry).ok_or_else(|| {
        PlanError::Unsupported(format!(
            "account {} has no smtp server mailmend can change",
            entry.name
        ))
    })?;
    let mut expected = current.clone();
    let mut out = Vec::new();

    if let Some(host) = &change.host {
        let host = host.trim();
        if !valid_host(host) {
            return Err(PlanError::Unsupported(format!(
                "{host:?} is not a host name mailmend writes"
            )));
        }
        if !host.eq_ignore_ascii_case(&current.host) {
            out.push((Field::Host, host.to_string()));
            expected.host = host.to_string();
        }
    }

    let new_security = change.security.unwrap_or(current.security);
    if new_security != security_of(entry) {
        match new_security {
            Security::None => out.push((Field::Tls, "off".into())),
            Security::StartTls | Security::Tls => {
                if !entry.tls() {
                    out.push((Field::Tls, "on".into()));
                }
                let starttls = new_security == Security::StartTls;
                if entry.starttls() != starttls {
                    let v = if starttls { "on" } else { "off" };
                    out.push((Field::TlsStartTls, v.into()));
                }
            }
        }
        expected.security = new_security;
    }

    let wanted_port = change.port.unwrap_or(current.port);
    if wanted_port == 0 {
        return Err(PlanError::Unsupported("port 0".into()));
    }
    let port_after = entry.explicit_port().unwrap_or(AccountEntry::default_port(
        new_security != Security::None,
        new_security != Security::Tls,
    ));
    if wanted_port != port_after {
        out.push((Field::Port, wanted_port.to_string()));
    }
    expected.port = wanted_port;

    if let Some(auth) = &change.auth {
        let value = auth_value(auth).ok_or_else(|| {
            PlanError::Unsupported(format!("auth method {auth:?} has no msmtp value"))
        })?;
        let target = match value.as_str() {
            "off" => auth_of(None),
            "on" => auth_of(Some("")),
            method => auth_of(Some(method)),
        };
        if current.auth != target {
            out.push((Field::Auth, value));
        }
        expected.auth = target;
    }
    Ok((out, expected))
}

/// Applies a change of `role` of `account` to the file.
pub fn apply(
    file: &mut MsmtpFile,
    account: &str,
    role: Role,
    change: &EndpointChange,
) -> Result<(), PlanError> {
    if role != Role::Outgoing {
        return Err(PlanError::Unsupported(
            "msmtp only sends mail; its accounts have no incoming server".into(),
        ));
    }
    let entry = file
        .account(account)
        .ok_or_else(|| PlanError::AccountGone(account.to_string()))?;
    if entry.uses_eval() {
        return Err(PlanError::Unsupported(format!(
            "account {account} takes settings from eval lines, which mailmend does not run"
        )));
    }
    let (writes, expected) = writes(entry, change)?;
    let mut edited = file.clone();
    for (field, value) in writes {
        edited.set(account, field, &value)?;
    }
    let after = edited.account(account).and_then(endpoint);
    if after.as_ref() != Some(&expected) {
        return Err(PlanError::Set(SetError::WriteCheck {
            command: "account",
            detail: "the endpoint read back differs from the one planned".into(),
        }));
    }
    *file = edited;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailmend_core::AuthMethod;

    const FILE: &str = "defaults\ntls on\n\naccount work\nhost smtp.example.com\n";

    fn plan(change: EndpointChange) -> Result<String, PlanError> {
        let mut f = MsmtpFile::parse(FILE.as_bytes()).unwrap();
        apply(&mut f, "work", Role::Outgoing, &change)?;
        Ok(String::from_utf8(f.into_bytes()).unwrap())
    }

    #[test]
    fn a_security_change_alone_keeps_the_implicit_port() {
        let after = plan(EndpointChange {
            security: Some(Security::Tls),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            after,
            "defaults\ntls on\n\naccount work\nhost smtp.example.com\ntls_starttls off\nport 25\n"
        );
    }

    #[test]
    fn a_port_equal_to_the_new_default_needs_no_port_line() {
        let after = plan(EndpointChange {
            security: Some(Security::Tls),
            port: Some(465),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            after,
            "defaults\ntls on\n\naccount work\nhost smtp.example.com\ntls_starttls off\n"
        );
    }

    #[test]
    fn incoming_changes_unknown_methods_and_bad_hosts_are_unsupported() {
        let mut f = MsmtpFile::parse(FILE.as_bytes()).unwrap();
        let err = apply(&mut f, "work", Role::Incoming, &EndpointChange::default());
        assert!(matches!(err, Err(PlanError::Unsupported(_))));
        for change in [
            EndpointChange {
                auth: Some(AuthMethod::Other("magic".into())),
                ..Default::default()
            },
            EndpointChange {
                host: Some("evil.example # x".into()),
                ..Default::default()
            },
            EndpointChange {
                port: Some(0),
                ..Default::default()
            },
        ] {
            assert!(matches!(plan(change), Err(PlanError::Unsupported(_))));
        }
        assert_eq!(
            apply(&mut f, "gone", Role::Outgoing, &EndpointChange::default()),
            Err(PlanError::AccountGone("gone".into()))
        );
    }
}
