//! Planning a change to one server of an Evolution account as an edit of the source file that
//! holds it: the account's own file for the incoming server, the transport's file for the
//! outgoing one. Pure: the adapter finds and reads the file and turns the edited document into
//! a `FileEdit`.

use crate::accounts::{auth_of, auth_value, read_server, security_value, AUTHENTICATION, SECURITY};
use crate::keyfile::{KeyFile, SetError};
use mailmend_core::{EndpointChange, Protocol};

/// Why a change could not be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The change cannot be expressed: a server without a host, an auth method Evolution has
    /// no value for, an invalid host, or port 0.
    #[error("{0}")]
    Unsupported(String),
    /// The file refused the write.
    #[error(transparent)]
    Set(#[from] SetError),
}

/// Whether `host` can be written as a host name or address.
pub fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']' | '%'))
}

/// Applies `change` to the server the file holds. A field that already has the requested value
/// gets no write. When the port is not set and a change of security would move Evolution to
/// another default port, the current port is written, so that the endpoint changes in nothing
/// but what was asked.
pub fn apply(
    file: &mut KeyFile,
    protocol: Protocol,
    change: &EndpointChange,
) -> Result<(), PlanError> {
    let unsupported = |m: String| PlanError::Unsupported(m);
    let current = read_server(file, protocol)
        .map_err(|e| unsupported(format!("the server settings cannot be read: {e}")))?
        .ok_or_else(|| unsupported("the source names no server host".into()))?;
    let before = current.endpoint();
    let mut expected = before.clone();
    let mut f = file.clone();

    if let Some(host) = &change.host {
        let host = host.trim();
        if !valid_host(host) {
            return Err(unsupported(format!(
                "{host:?} is not a host name mailmend writes"
            )));
        }
        if !host.eq_ignore_ascii_case(&before.host) {
            f.set(AUTHENTICATION, "Host", host)?;
            expected.host = host.to_string();
        }
    }

    let security = change.security.unwrap_or(before.security);
    if security != before.security {
        f.set(SECURITY, "Method", security_value(security))?;
        expected.security = security;
    }

    let wanted = change.port.unwrap_or(before.port);
    if wanted == 0 {
        return Err(unsupported("port 0".into()));
    }
    let port_after = current
        .explicit_port
        .unwrap_or_else(|| protocol.default_port(security));
    if wanted != port_after {
        f.set(AUTHENTICATION, "Port", &wanted.to_string())?;
    }
    expected.port = wanted;

    if let Some(auth) = &change.auth {
        if auth_of(&current.method, protocol) != *auth {
            let value = auth_value(auth, protocol).ok_or_else(|| {
                unsupported(format!("auth method {auth:?} has no Evolution value"))
            })?;
            f.set(AUTHENTICATION, "Method", &value)?;
            expected.auth = auth_of(&value, protocol);
        }
    }

    let after = read_server(&f, protocol)
        .ok()
        .flatten()
        .map(|s| s.endpoint());
    if after.as_ref() != Some(&expected) {
        return Err(PlanError::Set(SetError::WriteCheck {
            group: AUTHENTICATION.into(),
            key: "*".into(),
            detail: "the endpoint read back differs from the one planned".into(),
        }));
    }
    *file = f;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailmend_core::Security;

    const TRANSPORT: &str = "[Data Source]\nDisplayName=x\n\n[Mail Transport]\nBackendName=smtp\n\n[Authentication]\nHost=smtp.example.com\nUser=ann\n";

    fn plan(change: EndpointChange) -> Result<String, PlanError> {
        let mut f = KeyFile::parse(TRANSPORT.as_bytes()).unwrap();
        apply(&mut f, Protocol::Smtp, &change)?;
        Ok(String::from_utf8(f.into_bytes()).unwrap())
    }

    #[test]
    fn a_missing_security_group_is_appended_and_the_implicit_port_kept() {
        let after = plan(EndpointChange {
            security: Some(Security::Tls),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            after,
            format!("{TRANSPORT}Port=25\n\n[Security]\nMethod=ssl-on-alternate-port\n")
        );
    }

    #[test]
    fn a_port_equal_to_the_new_default_needs_no_port_key() {
        let after = plan(EndpointChange {
            security: Some(Security::Tls),
            port: Some(465),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            after,
            format!("{TRANSPORT}\n[Security]\nMethod=ssl-on-alternate-port\n")
        );
    }

    #[test]
    fn unknown_methods_bad_hosts_and_port_zero_are_unsupported() {
        for change in [
            EndpointChange {
                auth: Some(mailmend_core::AuthMethod::Any),
                ..Default::default()
            },
            EndpointChange {
                host: Some("a b".into()),
                ..Default::default()
            },
            EndpointChange {
                port: Some(0),
                ..Default::default()
            },
        ] {
            assert!(matches!(plan(change), Err(PlanError::Unsupported(_))));
        }
    }
}
