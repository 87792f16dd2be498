//! Planning a change of one side of an Outlook account: which values change, from what, to
//! what. Pure: it takes the values as read and returns value edits, and it re-reads its own
//! result and refuses when that is not exactly the endpoint asked for.

use crate::accounts::{self, Kind, Note, SecurityCode, Values};
use mailmend_core::{AuthMethod, EndpointChange, RegValue, RegValueEdit, Role};

/// Why a change cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// Exchange settings come from Autodiscover; mailmend does not rewrite them.
    #[error("the settings of an Exchange account come from Autodiscover; mailmend does not rewrite them")]
    Exchange,
    /// The account has no server on this side (an account without outgoing mail).
    #[error("the account has no {0} server to change")]
    NoEndpoint(Role),
    /// A value of this side is not understood, so a change could not be checked.
    #[error("{0}")]
    NotUnderstood(String),
    /// The requested authentication cannot be expressed in Outlook's settings.
    #[error("Outlook cannot be set to authenticate with {0:?} on this side")]
    Auth(AuthMethod),
    /// A host that is empty or has characters no server name has.
    #[error("{0:?} is not a server name")]
    BadHost(String),
    /// The planned values do not read back as the endpoint asked for (a bug); nothing is written.
    #[error("the planned values do not read back as asked: {0}")]
    ReadBack(String),
}

fn prefix(kind: Kind, role: Role) -> Result<&'static str, PlanError> {
    match (kind, role) {
        (Kind::Exchange, _) => Err(PlanError::Exchange),
        (_, Role::Outgoing) => Ok("SMTP"),
        (k, Role::Incoming) => k.incoming_prefix().ok_or(PlanError::Exchange),
    }
}

/// A new string in the encoding the old one had: UTF-16LE REG_BINARY stays that, REG_SZ stays
/// REG_SZ. A new value is written as Outlook writes it, REG_BINARY.
fn like(old: Option<&RegValue>, s: &str) -> RegValue {
    match old {
        Some(RegValue::String(_)) => RegValue::String(s.to_string()),
        _ => accounts::wide_binary(s),
    }
}

/// The value edits that make `role` of the account take `change`, touching nothing else.
pub fn plan(
    values: &Values,
    role: Role,
    change: &EndpointChange,
) -> Result<Vec<RegValueEdit>, PlanError> {
    let kind = accounts::kind(values).ok_or_else(|| {
        PlanError::NotUnderstood("the key is no longer an account mailmend knows".into())
    })?;
    let p = prefix(kind, role)?;
    let current_side = accounts::side(values, p);
    if let Some(Note::Unsupported(name, why)) = current_side
        .notes
        .iter()
        .find(|n| matches!(n, Note::Unsupported(..)))
    {
        return Err(PlanError::NotUnderstood(format!("{name:?}: {why}")));
    }
    let current = current_side.endpoint.ok_or(PlanError::NoEndpoint(role))?;
    let mut want = current.clone();
    let mut after = values.clone();

    if let Some(h) = &change.host {
        if h.is_empty()
            || h.chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '\0')
        {
            return Err(PlanError::BadHost(h.clone()));
        }
        want.host = h.clone();
        if *h != current.host {
            let name = format!("{p} Server");
            let new = like(values.get(&name), h);
            after.put(&name, Some(new));
        }
    }
    if let Some(s) = change.security {
        want.security = s;
        let auto = current_side
            .notes
            .iter()
            .any(|n| matches!(n, Note::AutoSecurity(_)));
        if s != current.security || auto {
            let code = RegValue::Dword(SecurityCode::for_security(s).to_dword());
            let names: Vec<String> = accounts::security_names(p)
                .into_iter()
                .filter(|n| values.get(n).is_some())
                .collect();
            if names.is_empty() {
                after.put(&accounts::security_names(p)[0], Some(code.clone()));
            }
            // Every value that may hold the setting gets the same number, so that no Outlook
            // version reads an older one.
            for n in names {
                after.put(&n, Some(code.clone()));
            }
        }
    }
    if let Some(port) = change.port {
        want.port = port;
    }
    if let Some(a) = &change.auth {
        want.auth = a.clone();
        if *a != current.auth {
            set_auth(&mut after, p, a)?;
        }
    }
    // The port is written when asked, and also when it is implicit and another change would
    // move the default (a security change on an account without "IMAP Port").
    let port_name = format!("{p} Port");
    if accounts::side(&after, p)
        .endpoint
        .is_some_and(|e| e.port != want.port)
    {
        after.put(&port_name, Some(RegValue::Dword(u32::from(want.port))));
    }

    let got = accounts::side(&after, p).endpoint;
    // The login name follows the authentication setting (switching SMTP AUTH on uses the
    // incoming login), so it is compared only when authentication stays as it was.
    if let (Some(g), true) = (&got, change.auth.is_some()) {
        want.username = g.username.clone();
    }
    if got.as_ref() != Some(&want) {
        return Err(PlanError::ReadBack(format!(
            "wanted {want:?}, the values give {got:?}"
        )));
    }
    let mut edits = Vec::new();
    for (name, new) in &after.0 {
        let old = values.get(name);
        if old != Some(new) {
            edits.push(RegValueEdit {
                name: name.clone(),
                before: old.cloned(),
                after: Some(new.clone()),
            });
        }
    }
    Ok(edits)
}

fn set_auth(after: &mut Values, p: &str, a: &AuthMethod) -> Result<(), PlanError> {
    let dword = |n: u32| Some(RegValue::Dword(n));
    let spa = format!("{p} Use SPA");
    match (p, a) {
        ("SMTP", AuthMethod::None) => after.put("SMTP Use Auth", dword(0)),
        ("SMTP", AuthMethod::PasswordCleartext | AuthMethod::Ntlm) => {
            after.put("SMTP Use Auth", dword(1));
            let on = u32::from(*a == AuthMethod::Ntlm);
            if after.get(&spa).is_some() || on == 1 {
                after.put(&spa, dword(on));
            }
            // Method 2 (log on to the incoming server first) has no SMTP login to switch.
            if after.dword("SMTP Auth Method") == Some(2) {
                after.put("SMTP Auth Method", dword(0));
            }
        }
        (_, AuthMethod::PasswordCleartext) => {
            if after.get(&spa).is_some() {
                after.put(&spa, dword(0));
            }
        }
        (_, AuthMethod::Ntlm) => after.put(&spa, dword(1)),
        (_, other) => return Err(PlanError::Auth(other.clone())),
    }
    Ok(())
}
