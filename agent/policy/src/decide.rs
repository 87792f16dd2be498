//! The decision logic: built-in safety rules first, then limits, then the admin's modes.

use crate::settings::{in_domain, is_dns_name, normalize_host, Mode, MAIL_PORTS};
use crate::Policy;
use mailmend_core::{Account, Action, AuthMethod, EndpointChange, Role, Security};
use serde::Serialize;

/// What the executor knows at decision time that the policy cannot know by itself.
#[derive(Clone, Debug, Default)]
pub struct DecisionContext {
    /// Hosts named by the account domain's MX/SRV/autoconfig records.
    pub extra_allowed_hosts: Vec<String>,
    /// Fixes already applied to this account in the last hour.
    pub fixes_in_last_hour: u32,
    /// Times this same fix (same account, same action) was applied in the last 24 h.
    pub recurrences: u32,
}

/// The verdict on one proposed action, with the rule that decided it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub verdict: Mode,
    /// The dotted name of the deciding rule, e.g. `builtin.no_downgrade`, `actions.set_port`.
    pub rule: String,
    /// One sentence for the audit log and the admin.
    pub reason: String,
}

impl Decision {
    fn deny(rule: &str, reason: String) -> Decision {
        Decision {
            verdict: Mode::Deny,
            rule: rule.to_string(),
            reason,
        }
    }
}

pub(crate) fn decide(
    policy: &Policy,
    action: &Action,
    account: Option<&Account>,
    ctx: &DecisionContext,
) -> Decision {
    if let (Some(id), Some(acc)) = (action.account(), account) {
        if *id != acc.id {
            return Decision::deny(
                "builtin.account_mismatch",
                format!(
                    "the action is for account {id} but was decided against account {}",
                    acc.id
                ),
            );
        }
    }
    match action {
        Action::SetEndpoint { role, change, .. } => {
            if change.is_empty() {
                return Decision::deny(
                    "builtin.empty_change",
                    "the change sets nothing".to_string(),
                );
            }
            if let Some(d) = no_downgrade(*role, change, account) {
                return d;
            }
            if let Some(host) = &change.host {
                if let Err(d) = host_allowed(policy, host, account, ctx) {
                    return d;
                }
            }
        }
        Action::AddFirewallException {
            host,
            port,
            addresses,
            ..
        } => {
            if !MAIL_PORTS.contains(port) {
                return Decision::deny(
                    "builtin.firewall_ports",
                    format!(
                        "port {port} is not a mail port; firewall exceptions are limited to {}",
                        MAIL_PORTS.map(|p| p.to_string()).join(", ")
                    ),
                );
            }
            if let Some(a) = addresses
                .iter()
                .find(|a| a.is_unspecified() || a.is_multicast() || is_broadcast(a))
            {
                return Decision::deny(
                    "builtin.firewall_addresses",
                    format!("{a} is not the address of a single mail server"),
                );
            }
            let wanted = normalize_host(host);
            let is_current = account.is_some_and(|acc| {
                [Role::Incoming, Role::Outgoing]
                    .into_iter()
                    .filter_map(|r| acc.endpoint(r))
                    .any(|e| normalize_host(&e.host) == wanted)
            });
            if !is_current {
                if let Err(d) = host_allowed(policy, host, account, ctx) {
                    return d;
                }
            }
        }
        Action::FlushDns { .. } | Action::RenewKerberos { .. } | Action::NotifyUser { .. } => {}
    }

    // Notifying the user changes nothing on the machine, so it is never held back by limits that
    // exist to stop the agent fighting other tools.
    if !matches!(action, Action::NotifyUser { .. }) {
        if ctx.recurrences >= policy.quarantine_after() {
            return Decision::deny(
                "limits.quarantine_after",
                format!(
                    "this fix was already applied {} times in 24 hours (limit {}); something keeps undoing it, so the account is quarantined",
                    ctx.recurrences,
                    policy.quarantine_after()
                ),
            );
        }
        if ctx.fixes_in_last_hour >= policy.fixes_per_account_per_hour() {
            return Decision::deny(
                "limits.fixes_per_account_per_hour",
                format!(
                    "{} fixes were already applied to this account in the last hour (limit {})",
                    ctx.fixes_in_last_hour,
                    policy.fixes_per_account_per_hour()
                ),
            );
        }
    }

    let mut strictest: Option<(Mode, String)> = None;
    for kind in action.kinds() {
        let (mode, rule) = policy.mode_for(kind, account);
        if strictest
            .as_ref()
            .is_none_or(|(m, _)| mode.strictness() > m.strictness())
        {
            strictest = Some((mode, rule));
        }
    }
    match strictest {
        Some((mode, rule)) => {
            let what = match mode {
                Mode::Auto => "the fix may be applied",
                Mode::Recommend => "the fix is recommended, not applied",
                Mode::Deny => "the fix is not allowed",
            };
            Decision {
                verdict: mode,
                reason: format!("{rule} is {mode}: {what}"),
                rule,
            }
        }
        // Every action has at least one kind; an endpoint change with none was refused above.
        None => Decision::deny(
            "builtin.empty_change",
            "the action involves no policy kind".to_string(),
        ),
    }
}

fn is_broadcast(a: &std::net::IpAddr) -> bool {
    matches!(a, std::net::IpAddr::V4(v4) if v4.is_broadcast())
}

/// The downgrade ban. Not configurable: no policy may trade transport security for
/// connectivity.
fn no_downgrade(
    role: Role,
    change: &EndpointChange,
    account: Option<&Account>,
) -> Option<Decision> {
    let current = account.and_then(|a| a.endpoint(role)).map(|e| e.security);
    if change.security == Some(Security::None) {
        match current {
            Some(sec @ (Security::StartTls | Security::Tls)) => {
                return Some(Decision::deny(
                    "builtin.no_downgrade",
                    format!(
                        "changing {role} security from {sec} to none would send mail and credentials in plaintext; mailmend never downgrades transport security"
                    ),
                ));
            }
            None => {
                return Some(Decision::deny(
                    "builtin.no_downgrade",
                    format!(
                        "the current {role} security is unknown, so setting it to none may be a downgrade to plaintext"
                    ),
                ));
            }
            Some(Security::None) => {}
        }
    }
    if change.auth == Some(AuthMethod::PasswordCleartext) {
        match change.security.or(current) {
            Some(Security::None) => {
                return Some(Decision::deny(
                    "builtin.no_downgrade",
                    format!(
                        "a cleartext password on an unencrypted {role} connection would expose it on the network"
                    ),
                ));
            }
            None => {
                return Some(Decision::deny(
                    "builtin.no_downgrade",
                    format!(
                        "the {role} security is unknown, so a cleartext password might be sent unencrypted"
                    ),
                ));
            }
            Some(Security::StartTls | Security::Tls) => {}
        }
    }
    None
}

/// The host constraint: a new host must be inside the account's email domain, an allowed
/// domain, or be one of the hosts the domain's own records name.
fn host_allowed(
    policy: &Policy,
    host: &str,
    account: Option<&Account>,
    ctx: &DecisionContext,
) -> Result<(), Decision> {
    let h = normalize_host(host);
    if ctx
        .extra_allowed_hosts
        .iter()
        .any(|e| normalize_host(e) == h && !h.is_empty())
    {
        return Ok(());
    }
    if !is_dns_name(&h) {
        return Err(Decision::deny(
            "builtin.host_syntax",
            format!("\"{host}\" is not a valid host name"),
        ));
    }
    let email_domain = account.and_then(Account::email_domain);
    if let Some(d) = &email_domain {
        if in_domain(&h, d) {
            return Ok(());
        }
    }
    if policy.allowed_domains().iter().any(|d| in_domain(&h, d)) {
        return Ok(());
    }
    let mut inside: Vec<String> = email_domain.into_iter().collect();
    inside.extend(policy.allowed_domains().iter().cloned());
    let inside = if inside.is_empty() {
        "no domain is allowed: the account has no email domain and hosts.allowed_domains is empty"
            .to_string()
    } else {
        format!("allowed: {}", inside.join(", "))
    };
    Err(Decision::deny(
        "hosts.allowed_domains",
        format!(
            "host {h} is outside the allowed domains and not named by the domain's DNS or autoconfig records ({inside})"
        ),
    ))
}
