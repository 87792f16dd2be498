//! The closed set of changes the agent may make; plugins propose them, only the executor applies them.

use crate::model::{AccountId, AuthMethod, Role, Security};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// The policy's names for kinds of change. A policy rule names one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    SetHost,
    SetPort,
    SetSecurity,
    SetAuthMethod,
    FlushDns,
    RenewKerberos,
    AddFirewallException,
    NotifyUser,
}

impl ActionKind {
    pub const ALL: [ActionKind; 8] = [
        ActionKind::SetHost,
        ActionKind::SetPort,
        ActionKind::SetSecurity,
        ActionKind::SetAuthMethod,
        ActionKind::FlushDns,
        ActionKind::RenewKerberos,
        ActionKind::AddFirewallException,
        ActionKind::NotifyUser,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::SetHost => "set_host",
            ActionKind::SetPort => "set_port",
            ActionKind::SetSecurity => "set_security",
            ActionKind::SetAuthMethod => "set_auth_method",
            ActionKind::FlushDns => "flush_dns",
            ActionKind::RenewKerberos => "renew_kerberos",
            ActionKind::AddFirewallException => "add_firewall_exception",
            ActionKind::NotifyUser => "notify_user",
        }
    }

    pub fn parse(s: &str) -> Option<ActionKind> {
        ActionKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// New values for some fields of an endpoint; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<Security>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthMethod>,
}

impl EndpointChange {
    pub fn is_empty(&self) -> bool {
        self.host.is_none() && self.port.is_none() && self.security.is_none() && self.auth.is_none()
    }
}

/// A typed change the agent may make. Every variant names what it touches; nothing here can turn
/// off certificate verification, which is why no such fix exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Change host, port, security or auth method of one endpoint through the client's adapter.
    SetEndpoint {
        account: AccountId,
        role: Role,
        change: EndpointChange,
    },
    /// Flush the machine's DNS caches so that a moved server's new address is seen.
    FlushDns { host: String },
    /// Renew the user's renewable Kerberos ticket before it expires.
    RenewKerberos {
        os_user: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        principal: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ccache: Option<String>,
    },
    /// Allow outbound TCP to the account's mail host on one port.
    AddFirewallException {
        account: AccountId,
        host: String,
        addresses: Vec<IpAddr>,
        port: u16,
    },
    /// Tell the user about something only a person can fix (a password, MFA, a certificate).
    NotifyUser {
        account: AccountId,
        /// The finding code the message is about; it bounds notifications to one per problem.
        problem: String,
        message: String,
    },
}

impl Action {
    /// The policy kinds this action involves. A change of port and security together involves
    /// both, and the policy must allow both.
    pub fn kinds(&self) -> Vec<ActionKind> {
        match self {
            Action::SetEndpoint { change, .. } => {
                let mut kinds = Vec::new();
                if change.host.is_some() {
                    kinds.push(ActionKind::SetHost);
                }
                if change.port.is_some() {
                    kinds.push(ActionKind::SetPort);
                }
                if change.security.is_some() {
                    kinds.push(ActionKind::SetSecurity);
                }
                if change.auth.is_some() {
                    kinds.push(ActionKind::SetAuthMethod);
                }
                kinds
            }
            Action::FlushDns { .. } => vec![ActionKind::FlushDns],
            Action::RenewKerberos { .. } => vec![ActionKind::RenewKerberos],
            Action::AddFirewallException { .. } => vec![ActionKind::AddFirewallException],
            Action::NotifyUser { .. } => vec![ActionKind::NotifyUser],
        }
    }

    /// The account the action is for, when it is for one.
    pub fn account(&self) -> Option<&AccountId> {
        match self {
            Action::SetEndpoint { account, .. }
            | Action::AddFirewallException { account, .. }
            | Action::NotifyUser { account, .. } => Some(account),
            Action::FlushDns { .. } | Action::RenewKerberos { .. } => None,
        }
    }

    /// A short human description, e.g. `set incoming port 993, security tls`.
    pub fn describe(&self) -> String {
        match self {
            Action::SetEndpoint { role, change, .. } => {
                let mut parts = Vec::new();
                if let Some(h) = &change.host {
                    parts.push(format!("host {h}"));
                }
                if let Some(p) = change.port {
                    parts.push(format!("port {p}"));
                }
                if let Some(s) = change.security {
                    parts.push(format!("security {s}"));
                }
                if let Some(a) = &change.auth {
                    parts.push(format!("auth {a:?}"));
                }
                format!("set {role} {}", parts.join(", "))
            }
            Action::FlushDns { host } => format!("flush dns cache (for {host})"),
            Action::RenewKerberos { os_user, .. } => format!("renew kerberos ticket of {os_user}"),
            Action::AddFirewallException { host, port, .. } => {
                format!("allow outbound tcp to {host} port {port}")
            }
            Action::NotifyUser { problem, .. } => format!("notify user ({problem})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_combined_endpoint_change_involves_every_kind_it_touches() {
        let a = Action::SetEndpoint {
            account: AccountId("a".into()),
            role: Role::Incoming,
            change: EndpointChange {
                port: Some(993),
                security: Some(Security::Tls),
                ..Default::default()
            },
        };
        assert_eq!(
            a.kinds(),
            vec![ActionKind::SetPort, ActionKind::SetSecurity]
        );
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in ActionKind::ALL {
            assert_eq!(ActionKind::parse(k.as_str()), Some(k));
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
        }
    }

    #[test]
    fn actions_serialise_with_their_kind_tag() {
        let a = Action::FlushDns {
            host: "imap.example.com".into(),
        };
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["kind"], "flush_dns");
        let back: Action = serde_json::from_value(v).unwrap();
        assert_eq!(back, a);
    }
}
