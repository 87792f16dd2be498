//! The JSON messages of the plugin ABI: the manifest, requests and replies.

use mailmend_core::{Account, Endpoint, Finding, ProbeReport, ProbeTarget, Role};
use serde::{Deserialize, Serialize};

/// The longest plugin name the host accepts.
pub const MAX_NAME_LEN: usize = 64;
/// The longest plugin version the host accepts.
pub const MAX_VERSION_LEN: usize = 64;

/// What a plugin is for. Only diagnostics exist in ABI version 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PluginRole {
    Diagnostic,
}

/// Who a plugin is and what the host must do before calling it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Lower-case letters, digits and `_`; also the prefix of every finding code it emits.
    pub name: String,
    pub version: String,
    pub role: PluginRole,
    /// The account's endpoints the host probes before each call; their reports come in
    /// [`DiagnoseRequest::probes`].
    #[serde(default)]
    pub probes: Vec<Role>,
}

impl Manifest {
    /// The manifest of a diagnostic plugin.
    pub fn diagnostic(name: &str, version: &str, probes: &[Role]) -> Manifest {
        Manifest {
            name: name.to_string(),
            version: version.to_string(),
            role: PluginRole::Diagnostic,
            probes: probes.to_vec(),
        }
    }

    /// Checks what the host relies on: a usable name (it prefixes finding codes and appears
    /// in the audit log) and a short printable version.
    pub fn validate(&self) -> Result<(), String> {
        let name = &self.name;
        let name_ok = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !name_ok {
            return Err(format!(
                "plugin name {name:?} is not 1 to {MAX_NAME_LEN} lower-case letters, digits or \
                 `_` starting with a letter"
            ));
        }
        let version = &self.version;
        let version_ok = !version.is_empty()
            && version.len() <= MAX_VERSION_LEN
            && version.chars().all(|c| c.is_ascii_graphic());
        if !version_ok {
            return Err(format!(
                "plugin version {version:?} is not 1 to {MAX_VERSION_LEN} printable ASCII \
                 characters without spaces"
            ));
        }
        Ok(())
    }

    /// The prefix every finding code of this plugin must start with, e.g. `example.`.
    pub fn code_prefix(&self) -> String {
        format!("{}.", self.name)
    }
}

/// A request from the host, tagged by `op`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Request {
    /// `{"op":"diagnose","account":…,"probes":[…]}`
    Diagnose(DiagnoseRequest),
}

/// Diagnose one account, given the reports of the probes the manifest asked for.
///
/// Unknown fields are ignored (no `deny_unknown_fields`) so that the host can add optional
/// fields within one ABI version without breaking older plugins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiagnoseRequest {
    pub account: Account,
    /// One report per probed endpoint, in the order of the manifest's `probes`; an endpoint
    /// the account does not have is not probed.
    #[serde(default)]
    pub probes: Vec<ProbeReport>,
}

impl DiagnoseRequest {
    /// The report of the probe of the account's `role` endpoint, when it was probed.
    pub fn report_for(&self, role: Role) -> Option<&ProbeReport> {
        let target = probe_target(self.account.endpoint(role)?);
        self.probes.iter().find(|r| r.target == target)
    }
}

/// The answer to a [`Request::Diagnose`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    pub findings: Vec<Finding>,
}

/// The probe target of an endpoint exactly as configured; the host probes this and
/// [`DiagnoseRequest::report_for`] finds its report by it.
pub fn probe_target(endpoint: &Endpoint) -> ProbeTarget {
    ProbeTarget {
        protocol: endpoint.protocol,
        host: endpoint.host.clone(),
        port: endpoint.port,
        security: endpoint.security,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use mailmend_core::{
        AccountId, AuthMethod, ClientKind, DnsOutcome, Location, Protocol, Security, TcpOutcome,
    };

    pub(crate) fn account() -> Account {
        Account {
            id: AccountId("msmtp-1".into()),
            client: ClientKind::Msmtp,
            os_user: "ann".into(),
            email: Some("ann@example.com".into()),
            location: Location::File {
                path: "/home/ann/.msmtprc".into(),
            },
            key: "default".into(),
            incoming: None,
            outgoing: Some(Endpoint {
                protocol: Protocol::Smtp,
                host: "smtp.example.com".into(),
                port: 25,
                security: Security::StartTls,
                auth: AuthMethod::PasswordCleartext,
                username: Some("ann".into()),
            }),
        }
    }

    #[test]
    fn a_diagnose_request_has_the_documented_json_shape() {
        let request = Request::Diagnose(DiagnoseRequest {
            account: account(),
            probes: Vec::new(),
        });
        let value = serde_json::to_value(&request).unwrap();
        assert_eq!(value["op"], "diagnose");
        assert_eq!(value["account"]["id"], "msmtp-1");
        assert_eq!(value["probes"], serde_json::json!([]));
        assert_eq!(value.as_object().unwrap().len(), 3);
        let back: Request = serde_json::from_value(value).unwrap();
        assert_eq!(back, request);
    }

    #[test]
    fn a_newer_host_may_add_request_fields_without_breaking_plugins() {
        let mut value = serde_json::to_value(Request::Diagnose(DiagnoseRequest {
            account: account(),
            probes: Vec::new(),
        }))
        .unwrap();
        value["deadline_ms"] = serde_json::json!(5000);
        let parsed: Request = serde_json::from_value(value).unwrap();
        assert!(matches!(parsed, Request::Diagnose(_)));
    }

    #[test]
    fn the_manifest_has_the_documented_json_shape() {
        let m = Manifest::diagnostic("example", "0.1.0", &[Role::Outgoing]);
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"name":"example","version":"0.1.0","role":"diagnostic","probes":["outgoing"]}"#
        );
    }

    #[test]
    fn an_unknown_probe_kind_in_a_manifest_is_named_in_the_error() {
        let err = serde_json::from_str::<Manifest>(
            r#"{"name":"x","version":"1","role":"diagnostic","probes":["dns"]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("dns"), "{err}");
    }

    #[test]
    fn manifest_names_that_could_spoof_codes_or_logs_are_rejected() {
        for bad in [
            "",
            "Example",
            "tls.fake",
            "a b",
            "1st",
            "x\n",
            &"a".repeat(65),
        ] {
            let m = Manifest::diagnostic(bad, "1.0", &[]);
            assert!(m.validate().is_err(), "{bad:?} was accepted");
        }
        for good in ["example", "acme_smtp2"] {
            assert_eq!(
                Manifest::diagnostic(good, "1.0.0-rc1", &[]).validate(),
                Ok(())
            );
        }
        assert!(Manifest::diagnostic("x", "1 0", &[]).validate().is_err());
        assert!(Manifest::diagnostic("x", "", &[]).validate().is_err());
    }

    #[test]
    fn report_for_finds_the_report_of_the_configured_endpoint_only() {
        let acc = account();
        let target = probe_target(acc.outgoing.as_ref().unwrap());
        let report = ProbeReport {
            target: target.clone(),
            dns: DnsOutcome::NoRecords,
            tcp: TcpOutcome::NotResolved,
            tls: None,
            capabilities: None,
            protocol_error: None,
            elapsed_ms: 1,
        };
        let mut other = report.clone();
        other.target.port = 587;
        let request = DiagnoseRequest {
            account: acc,
            probes: vec![other, report.clone()],
        };
        assert_eq!(request.report_for(Role::Outgoing), Some(&report));
        assert_eq!(request.report_for(Role::Incoming), None);
    }
}
