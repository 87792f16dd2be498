//! Planning a change of one side of an aerc account as an edit of accounts.conf. Pure.
//!
//! Only the scheme, host and port of the section's `source` or `outgoing` URL are rewritten, in
//! place; the user name, the password, the query and every other byte stay as they were.
//! Security is written as a scheme:
//!
//! - implicit TLS: `imaps://`, `smtps://` (an `insecure` part is dropped, since on `imaps` it
//!   would turn certificate checks off);
//! - STARTTLS: `imap://`, `smtp://`. For `smtp://` the meaning depends on the aerc version
//!   (see [`crate::accounts`]): unless aerc 0.15 or later is known to be installed, the section
//!   also gets `smtp-starttls = yes` (its value rewritten, or a line added after `outgoing`),
//!   which aerc before 0.15 needs and later releases ignore with a deprecation notice. There is
//!   no `smtp+starttls` scheme in any aerc: `+starttls` would be read as an authentication
//!   mechanism and fail.
//! - plaintext is never written: mailmend does not move an endpoint to plaintext.
//!
//! Authentication changes are refused: the mechanism is part of the scheme, but a change of it
//! is not something mailmend's fixes need.

use crate::accounts::{self, default_port, url_of, STARTTLS_KEY};
use crate::ini::{AccountsFile, Value};
use crate::url::{host_in_url, is_plain_host};
use crate::version::AercVersion;
use mailmend_core::{EndpointChange, Role, Security};
use std::ops::Range;

/// Why a change could not be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The section is gone or no longer has a server (the user removed or renamed it).
    #[error("account {0} not found")]
    AccountGone(String),
    /// The change cannot be expressed (a plaintext downgrade, an unusable host, port 0, an
    /// authentication change, or a side the account does not have).
    #[error("{0}")]
    Unsupported(String),
    /// The edited file did not read back as intended; this is a bug, and nothing was changed.
    #[error("the edited accounts.conf did not read back as intended: {0}")]
    ReadBack(String),
}

/// The bytes of `file` after the change; the same bytes when nothing changes.
pub fn plan(
    file: &AccountsFile,
    section: &str,
    role: Role,
    change: &EndpointChange,
    version: Option<AercVersion>,
) -> Result<Vec<u8>, PlanError> {
    let before = accounts::account(file, section, version)
        .ok_or_else(|| PlanError::AccountGone(section.to_string()))?;
    let (key, current) = match role {
        Role::Incoming => ("source", before.incoming.as_ref()),
        Role::Outgoing => ("outgoing", before.outgoing.as_ref()),
    };
    let current = current
        .ok_or_else(|| PlanError::Unsupported(format!("account {section} has no {role} server")))?;
    let url = url_of(file, section, key).ok_or_else(|| PlanError::AccountGone(section.into()))?;

    let new_host = match &change.host {
        Some(h) => {
            let h = h.trim();
            if !is_plain_host(h) {
                return Err(PlanError::Unsupported(format!(
                    "host name {h:?} cannot be written into an aerc URL"
                )));
            }
            Some(h.to_string())
        }
        None => None,
    };
    if change.port == Some(0) {
        return Err(PlanError::Unsupported("port 0".into()));
    }
    if let Some(auth) = &change.auth {
        if auth != &current.auth {
            return Err(PlanError::Unsupported(
                "mailmend does not change aerc's authentication mechanism".into(),
            ));
        }
    }
    let security = change.security.unwrap_or(current.security);
    let mut protocol = url.protocol.clone();
    let mut scheme = None;
    let mut starttls_key = false;
    if security != current.security {
        let (p, needs_key) = match (role, security) {
            (_, Security::None) => {
                return Err(PlanError::Unsupported(
                    "refusing to move an encrypted connection to plaintext".into(),
                ))
            }
            (Role::Incoming, Security::Tls) => ("imaps", false),
            (Role::Incoming, Security::StartTls) => ("imap", false),
            (Role::Outgoing, Security::Tls) => ("smtps", false),
            (Role::Outgoing, Security::StartTls) => (
                "smtp",
                !version.is_some_and(AercVersion::smtp_means_starttls),
            ),
        };
        protocol = p.to_string();
        let mut text = p.to_string();
        for part in url.parts.iter().filter(|&x| x != "insecure") {
            text.push('+');
            text.push_str(part);
        }
        scheme = Some(text);
        starttls_key = needs_key;
    }
    let port = change.port.unwrap_or(current.port);

    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    let written = String::from_utf8_lossy(&file.as_bytes()[url.spans.scheme.clone()]);
    if let Some(s) = scheme.filter(|s| !written.eq_ignore_ascii_case(s)) {
        edits.push((url.spans.scheme.clone(), s));
    }
    if let Some(h) = &new_host {
        if !url.host.eq_ignore_ascii_case(h) {
            edits.push((url.spans.host.clone(), host_in_url(h)));
        }
    }
    match (&url.spans.port, url.port) {
        (Some(span), Some(p)) if p != port => edits.push((span.clone(), port.to_string())),
        (None, None) if port != default_port(&protocol) => {
            edits.push((url.spans.host.end..url.spans.host.end, format!(":{port}")))
        }
        _ => {}
    }
    if starttls_key {
        match file.get(section, STARTTLS_KEY) {
            Some(e) if matches!(&e.value, Value::Text(t) if t.trim() == "yes") => {}
            Some(e) => edits.push((e.value_span.clone(), "yes".into())),
            None => {
                // The outgoing entry exists: its URL was read just above.
                let Some(out) = file.get(section, "outgoing") else {
                    return Err(PlanError::AccountGone(section.into()));
                };
                let bytes = file.as_bytes();
                let line = format!(
                    "{}{STARTTLS_KEY}{}yes",
                    String::from_utf8_lossy(&bytes[out.indent.clone()]),
                    String::from_utf8_lossy(&bytes[out.separator.clone()]),
                );
                if out.eol.is_empty() {
                    let at = out.line_span.end;
                    edits.push((at..at, format!("{}{line}", file.line_ending())));
                } else {
                    let eol = String::from_utf8_lossy(&bytes[out.eol.clone()]).into_owned();
                    edits.push((out.eol.end..out.eol.end, format!("{line}{eol}")));
                }
            }
        }
    }
    if edits.is_empty() {
        return Ok(file.as_bytes().to_vec());
    }

    edits.sort_by_key(|e| std::cmp::Reverse(e.0.start));
    let mut after = file.as_bytes().to_vec();
    let mut limit = usize::MAX;
    for (range, text) in &edits {
        if range.end > limit {
            return Err(PlanError::ReadBack("overlapping edits".into()));
        }
        limit = range.start;
        after.splice(range.clone(), text.bytes());
    }
    check(file, &after, section, role, version, &|e| {
        e.host
            .eq_ignore_ascii_case(new_host.as_deref().unwrap_or(&current.host))
            && e.port == port
            && e.security == security
            && e.auth == current.auth
            && e.username == current.username
    })?;
    Ok(after)
}

/// Whether two readings of an account agree on everything but line numbers, which an added
/// line shifts.
fn same_account(a: &accounts::AercAccount, b: &accounts::AercAccount) -> bool {
    (
        &a.section,
        &a.email,
        &a.incoming,
        &a.outgoing,
        a.ambiguous_outgoing,
        a.unverified_incoming,
    ) == (
        &b.section,
        &b.email,
        &b.incoming,
        &b.outgoing,
        b.ambiguous_outgoing,
        b.unverified_incoming,
    )
}

/// Checks that the edited bytes read back with every other account and side unchanged, and
/// the changed side as `wanted` says.
fn check(
    file: &AccountsFile,
    after: &[u8],
    section: &str,
    role: Role,
    version: Option<AercVersion>,
    wanted: &dyn Fn(&mailmend_core::Endpoint) -> bool,
) -> Result<(), PlanError> {
    let reparsed = AccountsFile::parse(after).map_err(|e| PlanError::ReadBack(e.to_string()))?;
    let old = accounts::build(file, version);
    let new = accounts::build(&reparsed, version);
    if old.len() != new.len() {
        return Err(PlanError::ReadBack("the number of accounts changed".into()));
    }
    for (o, n) in old.iter().zip(&new) {
        if o.section != section {
            if !same_account(o, n) {
                return Err(PlanError::ReadBack(format!(
                    "account {} changed",
                    o.section
                )));
            }
            continue;
        }
        let (other_old, other_new, this) = match role {
            Role::Incoming => (&o.outgoing, &n.outgoing, &n.incoming),
            Role::Outgoing => (&o.incoming, &n.incoming, &n.outgoing),
        };
        if other_old != other_new || o.email != n.email {
            return Err(PlanError::ReadBack("the other side changed".into()));
        }
        if !this.as_ref().is_some_and(wanted) {
            return Err(PlanError::ReadBack(
                "the endpoint reads back differently".into(),
            ));
        }
    }
    let key = match role {
        Role::Incoming => "source",
        Role::Outgoing => "outgoing",
    };
    let (Some(o), Some(n)) = (url_of(file, section, key), url_of(&reparsed, section, key)) else {
        return Err(PlanError::ReadBack("the URL is gone".into()));
    };
    if o.user != n.user || o.has_password != n.has_password {
        return Err(PlanError::ReadBack("the user information changed".into()));
    }
    Ok(())
}
