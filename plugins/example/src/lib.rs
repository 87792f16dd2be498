//! An example dynamic plugin: flags SMTP submission on port 25.
//!
//! This is the template for third-party plugins: copy the crate, rename it, keep
//! `crate-type = ["cdylib", ...]`, and replace the check in `diagnose`. Build it with
//! `cargo build --release`, copy the `.so`/`.dylib`/`.dll` into the agent's plugin directory
//! (owned by root, not writable by group or others) and add its SHA-256 to the policy's
//! `[plugins] allowed` list.
//!
//! The check: port 25 is where mail servers hand mail to each other. A mail program that logs
//! in to send should use the submission ports, 587 (STARTTLS) or 465 (TLS); many networks
//! block port 25 outright, and servers often refuse logins on it.

use mailmend_plugin_sdk::core::{AuthMethod, Evidence, Finding, Protocol, Role, Severity};
use mailmend_plugin_sdk::helpers::tcp_evidence;
use mailmend_plugin_sdk::{DiagnoseRequest, Manifest, Plugin};

/// The plugin. It has no state: the host passes everything it needs in each request.
pub struct Example;

/// Finding codes must start with the plugin's name and a dot; the host enforces it.
pub const CODE: &str = "example.smtp_submission_port_25";

impl Plugin for Example {
    fn manifest() -> Manifest {
        // Ask the host to probe the outgoing endpoint, so we can cite what it saw.
        Manifest::diagnostic("example", env!("CARGO_PKG_VERSION"), &[Role::Outgoing])
    }

    fn diagnose(request: DiagnoseRequest) -> Result<Vec<Finding>, String> {
        let account = &request.account;
        let Some(smtp) = account.outgoing.as_ref() else {
            return Ok(Vec::new());
        };
        if smtp.protocol != Protocol::Smtp || smtp.port != 25 || smtp.auth == AuthMethod::None {
            return Ok(Vec::new());
        }

        let mut finding = Finding::new(
            CODE,
            Severity::Warning,
            account.id.clone(),
            Some(Role::Outgoing),
            "Port 25 is for server-to-server mail; mail programs should send on 587 (STARTTLS) \
             or 465 (TLS)",
        )
        .with_evidence(Evidence::new(
            "config",
            format!("{}:{}", smtp.host, smtp.port),
            format!("smtp on port 25 with authentication ({})", smtp.security),
        ));
        if let Some(report) = request.report_for(Role::Outgoing) {
            finding = finding.with_evidence(tcp_evidence(report));
        }
        // We propose no fix: the built-in diagnostics probe 587 and 465 and propose a port
        // change only once one of them is verified to work.
        Ok(vec![finding])
    }
}

mailmend_plugin_sdk::export_plugin!(Example);

#[cfg(test)]
mod tests {
    use super::*;
    use mailmend_plugin_sdk::core::{Account, AccountId, ClientKind, Endpoint, Location, Security};

    fn request(port: u16, auth: AuthMethod) -> DiagnoseRequest {
        let account = Account {
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
                port,
                security: Security::StartTls,
                auth,
                username: Some("ann".into()),
            }),
        };
        DiagnoseRequest {
            account,
            probes: Vec::new(),
        }
    }

    #[test]
    fn authenticated_smtp_on_port_25_is_flagged_without_a_proposed_fix() {
        let findings = Example::diagnose(request(25, AuthMethod::PasswordCleartext)).unwrap();
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].code, CODE);
        assert_eq!(findings[0].severity, Severity::Warning);
        assert!(findings[0].proposed.is_empty());
    }

    #[test]
    fn submission_ports_and_unauthenticated_relay_are_not_flagged() {
        assert!(
            Example::diagnose(request(587, AuthMethod::PasswordCleartext))
                .unwrap()
                .is_empty()
        );
        assert!(Example::diagnose(request(25, AuthMethod::None))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn the_manifest_is_valid_and_asks_for_the_outgoing_probe() {
        let manifest = Example::manifest();
        assert_eq!(manifest.validate(), Ok(()));
        assert_eq!(manifest.probes, vec![Role::Outgoing]);
        assert!(CODE.starts_with(&manifest.code_prefix()));
    }
}
