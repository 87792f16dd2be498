//! Planning a change of one side of a mutt account as edits of the files that define it. Pure:
//! the adapter evaluates the configuration and turns the edited files into `FileEdit`s.
//!
//! Only the scheme, host and port of the URLs that define the side are rewritten, in place, in
//! whichever file holds them (an included file too); user names, passwords, paths and every
//! other byte stay as they were. Every URL of the server changes together (`folder`,
//! `spoolfile`, `mailboxes`), so that the account stays one account.

use crate::accounts::{default_port, protocol_of, scheme_of, Side};
use crate::config::{Evaluation, Event};
use crate::muttrc::{MuttFile, SetOp, StatementKind, Value};
use crate::url::{host_in_url, is_plain_host, Url};
use mailmend_core::{EndpointChange, FileEdit, Security};
use std::collections::BTreeMap;
use std::ops::Range;

/// Why a change could not be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The change cannot be expressed (a plaintext downgrade, an unusable host, port 0, an
    /// authentication change, or STARTTLS while `ssl_starttls` is off).
    #[error("{0}")]
    Unsupported(String),
    /// A part to rewrite is written with escapes or quotes inside it; mailmend does not guess
    /// how to re-quote it. The user can write the URL plainly.
    #[error("{path}:{line}: the URL is written with escapes or quotes inside the part to change; write it plainly to let mailmend change it")]
    Escaped { path: String, line: usize },
    /// The edited file did not read back as intended; this is a bug, and nothing was changed.
    #[error("{path}: the edited file did not read back as intended: {detail}")]
    ReadBack { path: String, detail: String },
}

/// The URL a statement holds.
fn url_at(file: &MuttFile, stmt: usize) -> Option<&Url> {
    match &file.statements().get(stmt)?.kind {
        StatementKind::Set {
            op: SetOp::Assign(Value::Url(u)),
            ..
        }
        | StatementKind::Mailbox {
            mailbox: Value::Url(u),
        } => Some(u),
        _ => None,
    }
}

/// The edits that make `side` take the values in `change`. No edit when nothing changes.
pub fn plan(
    eval: &Evaluation,
    side: &Side,
    change: &EndpointChange,
) -> Result<Vec<FileEdit>, PlanError> {
    let current = &side.endpoint;
    let new_host = match &change.host {
        Some(h) => {
            let h = h.trim();
            if !is_plain_host(h) {
                return Err(PlanError::Unsupported(format!(
                    "host name {h:?} cannot be written into a mutt URL"
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
                "mailmend does not change mutt's authenticators".into(),
            ));
        }
    }
    let security = change.security.unwrap_or(current.security);
    let tls = match security {
        Security::Tls => true,
        Security::StartTls if !side.starttls_holds => {
            return Err(PlanError::Unsupported(
                "ssl_starttls is off and ssl_force_tls is unset, so a plain URL would be \
                 plaintext; mutt cannot be set to STARTTLS by the URL alone"
                    .into(),
            ))
        }
        Security::StartTls => false,
        Security::None if current.security != Security::None => {
            return Err(PlanError::Unsupported(
                "refusing to move an encrypted connection to plaintext".into(),
            ))
        }
        Security::None => false,
    };
    let port = change.port.unwrap_or(current.port);

    // Replacements per file, keyed by the file's index so that each file is edited once.
    let mut per_file: BTreeMap<usize, Vec<(Range<usize>, String, usize)>> = BTreeMap::new();
    let mut seen: Vec<Event> = Vec::new();
    for &site in &side.sites {
        if seen.contains(&site) {
            continue;
        }
        seen.push(site);
        let loaded = &eval.files[site.file];
        let line = loaded.file.statements()[site.stmt].line;
        let escaped = || PlanError::Escaped {
            path: loaded.path.display().to_string(),
            line,
        };
        let url = url_at(&loaded.file, site.stmt).ok_or_else(|| PlanError::ReadBack {
            path: loaded.path.display().to_string(),
            detail: "the statement holds no URL".into(),
        })?;
        let Some((protocol, _)) = protocol_of(&url.scheme) else {
            return Err(PlanError::Unsupported(format!(
                "{}:{line}: not a mail server URL",
                loaded.path.display()
            )));
        };
        let scheme = scheme_of(protocol, tls)
            .ok_or_else(|| PlanError::Unsupported("not a mail server URL".into()))?;
        let edits = per_file.entry(site.file).or_default();
        if url.scheme != scheme {
            let span = url.spans.scheme.clone().ok_or_else(escaped)?;
            edits.push((span, scheme.to_string(), site.stmt));
        }
        if let Some(h) = &new_host {
            if !url.host.eq_ignore_ascii_case(h) {
                let span = url.spans.host.clone().ok_or_else(escaped)?;
                edits.push((span, host_in_url(h), site.stmt));
            }
        }
        match url.port {
            Some(p) if p != port => {
                let span = url.spans.port.clone().ok_or_else(escaped)?;
                edits.push((span, port.to_string(), site.stmt));
            }
            Some(_) => {}
            None if port != default_port(protocol, tls) => {
                let host = url.spans.host.clone().ok_or_else(escaped)?;
                edits.push((host.end..host.end, format!(":{port}"), site.stmt));
            }
            None => {}
        }
        // A statement with nothing to change still gets its read-back check.
        if edits.is_empty() {
            per_file.remove(&site.file);
        }
    }

    let mut out = Vec::new();
    for (file, mut edits) in per_file {
        let loaded = &eval.files[file];
        let before = loaded.file.as_bytes();
        edits.sort_by_key(|e| std::cmp::Reverse(e.0.start));
        let mut after = before.to_vec();
        let mut limit = usize::MAX;
        for (range, text, _) in &edits {
            if range.end > limit {
                return Err(PlanError::ReadBack {
                    path: loaded.path.display().to_string(),
                    detail: "overlapping edits".into(),
                });
            }
            limit = range.start;
            after.splice(range.clone(), text.bytes());
        }
        let read_back = |detail: String| PlanError::ReadBack {
            path: loaded.path.display().to_string(),
            detail,
        };
        let reparsed = MuttFile::parse(&after).map_err(|e| read_back(e.to_string()))?;
        if reparsed.statements().len() != loaded.file.statements().len() {
            return Err(read_back("the number of statements changed".into()));
        }
        for &(_, _, stmt) in &edits {
            let old = url_at(&loaded.file, stmt);
            let new = url_at(&reparsed, stmt);
            let (Some(old), Some(new)) = (old, new) else {
                return Err(read_back("the URL is gone".into()));
            };
            let (protocol, new_tls) =
                protocol_of(&new.scheme).ok_or_else(|| read_back("not a mail URL".into()))?;
            let want_host = new_host.as_deref().unwrap_or(&old.host);
            let as_wanted = new_tls == tls
                && new.port.unwrap_or(default_port(protocol, new_tls)) == port
                && new.host.eq_ignore_ascii_case(want_host)
                && old.user == new.user
                && old.has_password == new.has_password;
            if !as_wanted {
                return Err(read_back("the URL reads back differently".into()));
            }
        }
        if after != before {
            out.push(FileEdit {
                path: loaded.path.clone(),
                before: before.to_vec(),
                after,
            });
        }
    }
    Ok(out)
}
