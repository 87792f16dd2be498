//! Planning a change to an mbsync server's IMAP endpoint as an edit of its configuration file.
//! Pure: the adapter reads the file and the installed isync version, and turns the edited
//! document into a `FileEdit`.
//!
//! Security is written with the keyword the section already uses: `SSLType` or `TLSType`
//! rewritten in place, or the deprecated `UseIMAPS`/`RequireSSL` (which isync 1.4 refuses to
//! mix with `SSLType`). A section with none of them gets the keyword other sections of the file
//! use, and otherwise the one the installed isync reads: `SSLType` up to 1.4 (Debian 12 ships
//! 1.4.4), `TLSType` from 1.5 on. A deprecated `imaps:` host prefix is dropped when the
//! security changes away from IMAPS.

use crate::accounts::{auth_of, auth_of_mechs, auth_value, endpoint, mode_of};
use crate::config::{MbsyncFile, SetError, TlsMode};
use mailmend_core::{Endpoint, EndpointChange, Role};

/// The keyword that selects connection security.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsKeyword {
    /// isync up to 1.4.
    SslType,
    /// isync 1.5 and later (which still reads `SSLType` as a deprecated alias).
    TlsType,
}

impl TlsKeyword {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsKeyword::SslType => "SSLType",
            TlsKeyword::TlsType => "TLSType",
        }
    }
}

/// Why a change could not be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The server section is no longer in the file (removed or renamed).
    #[error("server {0} not found")]
    AccountGone(String),
    /// The change cannot be expressed: an outgoing change (mbsync only fetches), no
    /// authentication, an invalid host, port 0, plaintext through the deprecated options, or
    /// an auth change of a section with several `AuthMechs` lines or `RequireCRAM`.
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

fn unsupported(message: impl Into<String>) -> PlanError {
    PlanError::Unsupported(message.into())
}

/// The current endpoint of `key`.
fn current(file: &MbsyncFile, key: &str) -> Result<Endpoint, PlanError> {
    let section = file
        .server(key)
        .ok_or_else(|| PlanError::AccountGone(key.to_string()))?;
    endpoint(section)
        .ok_or_else(|| unsupported(format!("{key} has no imap server mailmend can change")))
}

/// The keyword to add to a section that has no security keyword yet.
fn keyword_for(file: &MbsyncFile, installed: TlsKeyword) -> TlsKeyword {
    if file.uses_keyword("TLSType") {
        TlsKeyword::TlsType
    } else if file.uses_keyword("SSLType") {
        TlsKeyword::SslType
    } else {
        installed
    }
}

/// Applies a change of `role` of the server `key` to the file. A field that already has the
/// requested value gets no write. When the port is not written and a change of security would
/// move mbsync to another default port, the current port is written, so that the endpoint
/// changes in nothing but what was asked.
pub fn apply(
    file: &mut MbsyncFile,
    key: &str,
    role: Role,
    change: &EndpointChange,
    installed: TlsKeyword,
) -> Result<(), PlanError> {
    if role != Role::Incoming {
        return Err(unsupported(
            "mbsync only fetches mail; its servers have no outgoing side",
        ));
    }
    let before = current(file, key)?;
    let mut expected = before.clone();
    let mut f = file.clone();
    let target = change.security.unwrap_or(before.security);
    let target_mode = mode_of(target);

    // Host, and a deprecated URL prefix that would contradict the new security.
    let section = f
        .server(key)
        .ok_or_else(|| PlanError::AccountGone(key.into()))?;
    let prefix = match (&section.server.host, section.server.host_prefix) {
        (Some(h), n) if n > 0 => {
            let line = &f.lines()[h.line];
            let raw = &f.as_bytes()[line.tokens[1].raw.clone()];
            crate::config::decode(raw)[..n].to_string()
        }
        _ => String::new(),
    };
    let mut host = before.host.clone();
    if let Some(h) = &change.host {
        let h = h.trim();
        if !valid_host(h) {
            return Err(unsupported(format!(
                "{h:?} is not a host name mailmend writes"
            )));
        }
        if !h.eq_ignore_ascii_case(&before.host) {
            host = h.to_string();
            expected.host = host.clone();
        }
    }
    let drop_prefix = prefix.starts_with("imaps:") && target_mode != TlsMode::Imaps;
    if drop_prefix {
        f.set(key, &["Host"], &host)?;
    } else if host != before.host {
        f.set(key, &["Host"], &format!("{prefix}{host}"))?;
    }

    // Security.
    let section = f
        .server(key)
        .ok_or_else(|| PlanError::AccountGone(key.into()))?;
    let mode_now = section
        .server
        .security()
        .map_err(|e| unsupported(e.to_string()))?;
    if mode_now != target_mode {
        let server = section.server.clone();
        if server.legacy() {
            match target_mode {
                TlsMode::Imaps => {
                    f.set(key, &["UseIMAPS"], "yes")?;
                }
                TlsMode::StartTls => {
                    if server.use_imaps.as_ref().is_some_and(|s| s.value) {
                        f.set(key, &["UseIMAPS"], "no")?;
                    }
                    if server.require_ssl.as_ref().is_some_and(|s| !s.value) {
                        f.set(key, &["RequireSSL"], "yes")?;
                    }
                }
                TlsMode::None => {
                    return Err(unsupported(
                        "the deprecated UseIMAPS/RequireSSL options express plaintext only by \
                         disabling every TLS version; mailmend does not write that",
                    ))
                }
            }
        } else {
            let keyword = match f.find(section, &["SSLType", "TLSType"]) {
                Some(line) => f.keyword(line).unwrap_or_default(),
                None => keyword_for(&f, installed).as_str().to_string(),
            };
            let other = if keyword.eq_ignore_ascii_case("TLSType") {
                "SSLType"
            } else {
                "TLSType"
            };
            f.set(key, &[&keyword, other], target_mode.keyword())?;
        }
    }
    expected.security = target;

    // Port.
    let section = f
        .server(key)
        .ok_or_else(|| PlanError::AccountGone(key.into()))?;
    let wanted = change.port.unwrap_or(before.port);
    if wanted == 0 {
        return Err(unsupported("port 0"));
    }
    let port_after = section
        .server
        .explicit_port()
        .unwrap_or(crate::config::Server::default_port(target_mode));
    if wanted != port_after {
        f.set(key, &["Port"], &wanted.to_string())?;
    }
    expected.port = wanted;

    // Authentication.
    if let Some(auth) = &change.auth {
        let section = f
            .server(key)
            .ok_or_else(|| PlanError::AccountGone(key.into()))?;
        let server = section.server.clone();
        if auth_of(&server) != *auth {
            let value = auth_value(auth)
                .ok_or_else(|| unsupported(format!("auth method {auth:?} has no mbsync value")))?;
            if server.require_cram.is_some() {
                return Err(unsupported(
                    "the section uses the deprecated RequireCRAM; change it by hand",
                ));
            }
            if server.auth_lines.len() > 1 {
                return Err(unsupported(
                    "the section has several AuthMechs lines; change them by hand",
                ));
            }
            f.set(key, &["AuthMechs", "AuthMech"], &value)?;
            let mechs: Vec<String> = value.split(' ').map(str::to_string).collect();
            expected.auth = auth_of_mechs(&mechs);
        }
    }

    let after = current(&f, key)?;
    if after != expected {
        return Err(PlanError::Set(SetError::WriteCheck {
            keyword: "section".into(),
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

    fn plan(
        text: &str,
        change: EndpointChange,
        installed: TlsKeyword,
    ) -> Result<String, PlanError> {
        let mut f = MbsyncFile::parse(text.as_bytes()).unwrap();
        apply(&mut f, "a", Role::Incoming, &change, installed)?;
        Ok(String::from_utf8(f.into_bytes()).unwrap())
    }

    fn tls() -> EndpointChange {
        EndpointChange {
            security: Some(Security::Tls),
            ..Default::default()
        }
    }

    #[test]
    fn a_security_change_alone_keeps_the_implicit_port() {
        assert_eq!(
            plan("IMAPAccount a\nHost h\n", tls(), TlsKeyword::SslType).unwrap(),
            "IMAPAccount a\nHost h\nSSLType IMAPS\nPort 143\n"
        );
    }

    #[test]
    fn the_installed_isync_decides_the_keyword_only_when_the_file_does_not() {
        assert_eq!(
            plan(
                "IMAPAccount a\nHost h\nPort 993\n",
                tls(),
                TlsKeyword::TlsType
            )
            .unwrap(),
            "IMAPAccount a\nHost h\nPort 993\nTLSType IMAPS\n"
        );
        let other = "IMAPAccount b\nHost b\nSSLType IMAPS\n\nIMAPAccount a\nHost h\nPort 993\n";
        assert!(plan(other, tls(), TlsKeyword::TlsType)
            .unwrap()
            .ends_with("Port 993\nSSLType IMAPS\n"));
    }

    #[test]
    fn deprecated_options_are_changed_with_deprecated_options() {
        let text = "IMAPAccount a\nHost h\nUseIMAPS no\nRequireSSL no\n";
        assert_eq!(
            plan(text, tls(), TlsKeyword::SslType).unwrap(),
            "IMAPAccount a\nHost h\nUseIMAPS yes\nRequireSSL no\nPort 143\n"
        );
        let plain = EndpointChange {
            security: Some(Security::None),
            ..Default::default()
        };
        assert!(matches!(
            plan(text, plain, TlsKeyword::SslType),
            Err(PlanError::Unsupported(_))
        ));
    }

    #[test]
    fn an_imaps_prefix_is_dropped_when_security_leaves_imaps() {
        let change = EndpointChange {
            security: Some(Security::StartTls),
            port: Some(143),
            ..Default::default()
        };
        assert_eq!(
            plan(
                "IMAPAccount a\nHost imaps://h\n",
                change,
                TlsKeyword::SslType
            )
            .unwrap(),
            "IMAPAccount a\nHost h\n"
        );
        let host = EndpointChange {
            host: Some("h2".into()),
            ..Default::default()
        };
        assert_eq!(
            plan("IMAPAccount a\nHost imaps:h\n", host, TlsKeyword::SslType).unwrap(),
            "IMAPAccount a\nHost imaps:h2\n"
        );
    }
}
