//! From the statements of an evaluated muttrc to mail accounts. Pure.
//!
//! - Every IMAP or POP URL set as `folder` or `spoolfile` (neomutt: `spool_file`), or listed by
//!   `mailboxes` / `named-mailboxes`, is a *site* of a server. Sites of the same server (protocol,
//!   user, host and port) make one account; the account is keyed by its first site
//!   (`folder@12`: variable and line), in the file that holds it, so that its id survives a
//!   change of host, port or security, which rewrites the URL in place.
//! - The other settings (`imap_user`, `ssl_force_tls`, `smtp_url`, `from`, …) apply to an account
//!   by scope: in a file that sets a server's URL, a setting after it belongs to that account,
//!   and a setting before the first URL of a file that names only one server belongs to that
//!   server's account too (the usual one-file-per-account layout). Settings in files without a
//!   URL are global. An account's value of a setting is the last one in reading order among the
//!   global ones and its own.
//! - When no IMAP or POP site exists (local mail fetched by another program), each distinct
//!   `smtp_url` server makes an account with only an outgoing side.
//!
//! Security: `imaps`, `pops` and `smtps` are implicit TLS. A plain `imap://`, `pop://` or
//! `smtp://` is STARTTLS when `ssl_force_tls` is set (mutt then requires it) or `ssl_starttls`
//! is not `no` (mutt uses it whenever the server offers it), and plaintext otherwise. The
//! defaults are those of mutt 2.x and neomutt: both variables set.
//!
//! Not evaluated: hooks (`account-hook`, `folder-hook`, …) and `ifdef`, whose commands run only
//! in some situations, and values mutt computes while reading (`$variables`, `` `commands` ``).

use crate::config::{Evaluation, Event};
use crate::muttrc::{SetOp, StatementKind, Value};
use crate::url::Url;
use mailmend_core::{AuthMethod, Endpoint, Protocol, Security};
use std::collections::HashMap;

/// Mutt 2.x and neomutt set `ssl_force_tls` by default.
pub const SSL_FORCE_TLS_DEFAULT: bool = true;
/// `ssl_starttls` is `yes` by default.
pub const SSL_STARTTLS_DEFAULT: bool = true;

/// One side of an account and the statements that define it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Side {
    pub endpoint: Endpoint,
    /// The statements whose URL is this server; a change rewrites all of them.
    pub sites: Vec<Event>,
    /// Whether a plain `imap://` / `smtp://` URL means STARTTLS under this account's settings.
    pub starttls_holds: bool,
    /// The statement whose word holds the password mutt logs in with: the site's URL when it
    /// holds one (mutt prefers it), else the last `imap_pass`, `pop_pass` or `smtp_pass`. Only
    /// where it is; the value is read on request ([`crate::muttrc::MuttFile::assigned_word`]).
    pub password: Option<Event>,
}

/// An account found in a muttrc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MuttAccount {
    /// The file (index into [`Evaluation::files`]) that holds the key's statement.
    pub file: usize,
    /// `variable@line` of the first site, unique in its file.
    pub key: String,
    pub email: Option<String>,
    pub incoming: Option<Side>,
    pub outgoing: Option<Side>,
}

/// neomutt renamed some variables; the old names still work.
fn canonical(name: &str) -> &str {
    match name {
        "spool_file" => "spoolfile",
        "real_name" => "realname",
        other => other,
    }
}

/// The protocol of a URL scheme and whether it is implicit TLS.
pub fn protocol_of(scheme: &str) -> Option<(Protocol, bool)> {
    Some(match scheme {
        "imap" => (Protocol::Imap, false),
        "imaps" => (Protocol::Imap, true),
        "pop" => (Protocol::Pop3, false),
        "pops" => (Protocol::Pop3, true),
        "smtp" => (Protocol::Smtp, false),
        "smtps" => (Protocol::Smtp, true),
        _ => return None,
    })
}

/// The scheme for a protocol and whether it is implicit TLS.
pub fn scheme_of(protocol: Protocol, tls: bool) -> Option<&'static str> {
    Some(match (protocol, tls) {
        (Protocol::Imap, false) => "imap",
        (Protocol::Imap, true) => "imaps",
        (Protocol::Pop3, false) => "pop",
        (Protocol::Pop3, true) => "pops",
        (Protocol::Smtp, false) => "smtp",
        (Protocol::Smtp, true) => "smtps",
        (Protocol::Exchange, _) => return None,
    })
}

/// The port mutt uses when a URL names none.
pub fn default_port(protocol: Protocol, tls: bool) -> u16 {
    protocol.default_port(if tls { Security::Tls } else { Security::None })
}

/// What a URL scheme means under the given settings.
pub fn security_of(tls: bool, starttls_holds: bool) -> Security {
    match (tls, starttls_holds) {
        (true, _) => Security::Tls,
        (false, true) => Security::StartTls,
        (false, false) => Security::None,
    }
}

/// The first method of an `*_authenticators` list; mutt tries every method when it is unset.
pub fn auth_of(list: Option<&str>) -> AuthMethod {
    let Some(first) = list.and_then(|l| l.split(':').map(str::trim).find(|s| !s.is_empty())) else {
        return AuthMethod::Any;
    };
    match first.to_ascii_lowercase().as_str() {
        "gssapi" => AuthMethod::Gssapi,
        "cram-md5" | "digest-md5" | "scram-sha-1" | "scram-sha-256" => {
            AuthMethod::PasswordEncrypted
        }
        "login" | "plain" | "user" => AuthMethod::PasswordCleartext,
        "oauthbearer" | "xoauth2" => AuthMethod::OAuth2,
        "external" => AuthMethod::TlsCertificate,
        other => AuthMethod::Other(other.to_string()),
    }
}

/// The address in a `from` value: `Name <a@b>` or `a@b`.
pub fn address_of(from: &str) -> Option<String> {
    let from = from.trim();
    let addr = match (from.rfind('<'), from.rfind('>')) {
        (Some(l), Some(r)) if l < r => &from[l + 1..r],
        _ => from,
    };
    let addr = addr.trim().trim_matches('"');
    (addr.contains('@') && !addr.contains(char::is_whitespace)).then(|| addr.to_string())
}

/// A URL of a server mailmend checks.
#[derive(Debug, Clone)]
struct Site {
    event: Event,
    seq: usize,
    var: String,
    line: usize,
    url: Url,
    protocol: Protocol,
    tls: bool,
}

impl Site {
    fn server(&self) -> (Protocol, Option<String>, String, u16) {
        (
            self.protocol,
            self.url.user.clone(),
            self.url.host.to_ascii_lowercase(),
            self.url
                .port
                .unwrap_or(default_port(self.protocol, self.tls)),
        )
    }
}

/// Where a setting applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Global,
    Group(usize),
}

struct Assignment<'a> {
    scope: Scope,
    event: Event,
    name: &'a str,
    op: &'a SetOp,
}

/// The settings one account sees.
struct View<'a, 'e> {
    assignments: &'e [Assignment<'a>],
    group: Option<usize>,
}

impl<'a> View<'a, '_> {
    fn relevant(&self, a: &Assignment<'_>) -> bool {
        match (a.scope, self.group) {
            (Scope::Global, _) | (_, None) => true,
            (Scope::Group(g), Some(h)) => g == h,
        }
    }

    /// The last assignment of `name` this account sees.
    fn last(&self, name: &str) -> Option<&Assignment<'a>> {
        self.assignments
            .iter()
            .rev()
            .find(|a| a.name == name && self.relevant(a))
    }

    fn text(&self, name: &str) -> Option<&'a str> {
        match self.last(name)?.op {
            SetOp::Assign(Value::Text(t)) => Some(t.as_str()).filter(|t| !t.trim().is_empty()),
            _ => None,
        }
    }

    /// A boolean or quad-option, folded over every assignment in order.
    fn flag(&self, name: &str, default: bool) -> bool {
        let mut v = default;
        for a in self
            .assignments
            .iter()
            .filter(|a| a.name == name && self.relevant(a))
        {
            v = match a.op {
                SetOp::Bool(b) => *b,
                SetOp::Toggle => !v,
                SetOp::Reset => default,
                SetOp::Assign(Value::Text(t)) => match t.trim().to_ascii_lowercase().as_str() {
                    "yes" | "on" | "true" | "1" | "ask-yes" | "ask-no" => true,
                    "no" | "off" | "false" | "0" => false,
                    _ => v,
                },
                SetOp::Assign(_) => v,
            };
        }
        v
    }

    fn starttls_holds(&self) -> bool {
        self.flag("ssl_force_tls", SSL_FORCE_TLS_DEFAULT)
            || self.flag("ssl_starttls", SSL_STARTTLS_DEFAULT)
    }

    fn endpoint(&self, site: &Site) -> Endpoint {
        let starttls = self.starttls_holds();
        let (user_var, auth_var) = match site.protocol {
            Protocol::Imap => ("imap_user", "imap_authenticators"),
            Protocol::Pop3 => ("pop_user", "pop_authenticators"),
            _ => ("smtp_user", "smtp_authenticators"),
        };
        Endpoint {
            protocol: site.protocol,
            host: site.url.host.clone(),
            port: site
                .url
                .port
                .unwrap_or(default_port(site.protocol, site.tls)),
            security: security_of(site.tls, starttls),
            auth: auth_of(self.text(auth_var)),
            username: site
                .url
                .user
                .clone()
                .filter(|u| !u.is_empty())
                .or_else(|| self.text(user_var).map(str::to_string)),
        }
    }

    fn password(&self, site: &Site) -> Option<Event> {
        if site.url.has_password {
            return Some(site.event);
        }
        let var = match site.protocol {
            Protocol::Imap => "imap_pass",
            Protocol::Pop3 => "pop_pass",
            _ => "smtp_pass",
        };
        let last = self.last(var)?;
        matches!(last.op, SetOp::Assign(Value::Withheld)).then_some(last.event)
    }

    fn email(&self, endpoint: Option<&Endpoint>) -> Option<String> {
        self.text("from").and_then(address_of).or_else(|| {
            endpoint
                .and_then(|e| e.username.as_deref())
                .and_then(address_of)
        })
    }
}

/// The URL site a statement defines, if it names a server mailmend checks.
fn site_of(eval: &Evaluation, event: Event, seq: usize, smtp: bool) -> Option<Site> {
    let s = &eval.files[event.file].file.statements()[event.stmt];
    let (var, value) = match &s.kind {
        StatementKind::Set {
            name,
            op: SetOp::Assign(v),
        } => (canonical(name), v),
        StatementKind::Mailbox { mailbox } => ("mailboxes", mailbox),
        _ => return None,
    };
    let wanted = if smtp {
        var == "smtp_url"
    } else {
        matches!(var, "folder" | "spoolfile" | "mailboxes")
    };
    let url = value.as_url().filter(|_| wanted)?;
    let (protocol, tls) = protocol_of(&url.scheme)?;
    if (protocol == Protocol::Smtp) != smtp || url.host.is_empty() {
        return None;
    }
    Some(Site {
        event,
        seq,
        var: var.to_string(),
        line: s.line,
        url: url.clone(),
        protocol,
        tls,
    })
}

/// Groups sites by server, in order of first appearance.
fn group(sites: &[Site]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut index = HashMap::new();
    for (i, s) in sites.iter().enumerate() {
        let g = *index.entry(s.server()).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    groups
}

/// Every account of an evaluated configuration.
pub fn build(eval: &Evaluation) -> Vec<MuttAccount> {
    let incoming: Vec<Site> = eval
        .events
        .iter()
        .enumerate()
        .filter_map(|(seq, &e)| site_of(eval, e, seq, false))
        .collect();
    let smtp: Vec<Site> = eval
        .events
        .iter()
        .enumerate()
        .filter_map(|(seq, &e)| site_of(eval, e, seq, true))
        .collect();
    let groups = group(&incoming);
    let mut group_of = vec![0; incoming.len()];
    for (g, members) in groups.iter().enumerate() {
        for &m in members {
            group_of[m] = g;
        }
    }
    // The incoming sites of each file, as (reading position, group).
    let mut by_file: HashMap<usize, Vec<(usize, usize)>> = HashMap::new();
    for (i, s) in incoming.iter().enumerate() {
        by_file
            .entry(s.event.file)
            .or_default()
            .push((s.seq, group_of[i]));
    }
    let scope = |seq: usize, file: usize| -> Scope {
        let Some(in_file) = by_file.get(&file) else {
            return Scope::Global;
        };
        if let Some(&(_, g)) = in_file.iter().rev().find(|&&(s, _)| s < seq) {
            return Scope::Group(g);
        }
        let first = in_file[0].1;
        if in_file.iter().all(|&(_, g)| g == first) {
            Scope::Group(first)
        } else {
            Scope::Global
        }
    };
    let assignments: Vec<Assignment<'_>> = eval
        .events
        .iter()
        .enumerate()
        .filter_map(
            |(seq, &e)| match &eval.files[e.file].file.statements()[e.stmt].kind {
                StatementKind::Set { name, op } => Some(Assignment {
                    scope: scope(seq, e.file),
                    event: e,
                    name: canonical(name),
                    op,
                }),
                _ => None,
            },
        )
        .collect();

    let mut keys = Keys::default();
    let mut accounts = Vec::new();
    for (g, members) in groups.iter().enumerate() {
        let view = View {
            assignments: &assignments,
            group: Some(g),
        };
        let first = &incoming[members[0]];
        let endpoint = view.endpoint(first);
        let outgoing = view.last("smtp_url").and_then(|a| {
            let seq = eval.events.iter().position(|&e| e == a.event)?;
            let site = site_of(eval, a.event, seq, true)?;
            Some(Side {
                endpoint: view.endpoint(&site),
                sites: vec![site.event],
                starttls_holds: view.starttls_holds(),
                password: view.password(&site),
            })
        });
        accounts.push(MuttAccount {
            file: first.event.file,
            key: keys.make(first),
            email: view.email(Some(&endpoint)),
            incoming: Some(Side {
                endpoint,
                sites: members.iter().map(|&m| incoming[m].event).collect(),
                starttls_holds: view.starttls_holds(),
                password: view.password(first),
            }),
            outgoing,
        });
    }
    if groups.is_empty() {
        let view = View {
            assignments: &assignments,
            group: None,
        };
        for members in group(&smtp) {
            let first = &smtp[members[0]];
            let endpoint = view.endpoint(first);
            accounts.push(MuttAccount {
                file: first.event.file,
                key: keys.make(first),
                email: view.email(Some(&endpoint)),
                incoming: None,
                outgoing: Some(Side {
                    endpoint,
                    sites: members.iter().map(|&m| smtp[m].event).collect(),
                    starttls_holds: view.starttls_holds(),
                    password: view.password(first),
                }),
            });
        }
    }
    accounts
}

/// Account keys, unique within each file.
#[derive(Default)]
struct Keys {
    taken: HashMap<(usize, String), usize>,
}

impl Keys {
    fn make(&mut self, site: &Site) -> String {
        let base = format!("{}@{}", site.var, site.line);
        let n = self
            .taken
            .entry((site.event.file, base.clone()))
            .or_insert(0);
        *n += 1;
        if *n == 1 {
            base
        } else {
            format!("{base}.{n}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authenticator_lists_map_their_first_method() {
        assert_eq!(auth_of(None), AuthMethod::Any);
        assert_eq!(auth_of(Some(" : ")), AuthMethod::Any);
        assert_eq!(auth_of(Some("GSSAPI:login")), AuthMethod::Gssapi);
        assert_eq!(auth_of(Some("cram-md5")), AuthMethod::PasswordEncrypted);
        assert_eq!(auth_of(Some("plain:login")), AuthMethod::PasswordCleartext);
        assert_eq!(auth_of(Some("oauthbearer")), AuthMethod::OAuth2);
        assert_eq!(auth_of(Some("x-new")), AuthMethod::Other("x-new".into()));
    }

    #[test]
    fn from_values_give_their_address() {
        assert_eq!(
            address_of("Ann Example <ann@example.com>").as_deref(),
            Some("ann@example.com")
        );
        assert_eq!(
            address_of("ann@example.com").as_deref(),
            Some("ann@example.com")
        );
        assert_eq!(address_of("\"Ann\" <>"), None);
        assert_eq!(address_of("Ann"), None);
    }

    #[test]
    fn plain_schemes_follow_the_starttls_settings() {
        assert_eq!(security_of(true, false), Security::Tls);
        assert_eq!(security_of(false, true), Security::StartTls);
        assert_eq!(security_of(false, false), Security::None);
        assert_eq!(default_port(Protocol::Imap, true), 993);
        assert_eq!(default_port(Protocol::Pop3, false), 110);
        assert_eq!(default_port(Protocol::Smtp, false), 25);
        assert_eq!(scheme_of(Protocol::Smtp, true), Some("smtps"));
    }
}
