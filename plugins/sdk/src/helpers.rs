//! Small helpers that turn probe reports into evidence, so plugins describe them alike.

use mailmend_core::{Evidence, ProbeReport, TcpOutcome};

/// The TCP step of a probe as evidence, e.g. `tcp smtp.example.com:25 connected to 192.0.2.1:25`.
pub fn tcp_evidence(report: &ProbeReport) -> Evidence {
    let result = match &report.tcp {
        TcpOutcome::Connected { address } => format!("connected to {address}"),
        TcpOutcome::Refused { address } => format!("refused by {address}"),
        TcpOutcome::TimedOut { address } => format!("no answer from {address} (timed out)"),
        TcpOutcome::Unreachable { address, detail } => format!("{address} unreachable: {detail}"),
        TcpOutcome::NotResolved => "not attempted: the name did not resolve".to_string(),
        TcpOutcome::Failed { detail } => format!("failed: {detail}"),
    };
    Evidence::new(
        "tcp",
        format!("{}:{}", report.target.host, report.target.port),
        result,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailmend_core::{DnsOutcome, ProbeTarget, Protocol, Security};

    #[test]
    fn tcp_evidence_names_the_configured_target_and_the_address_reached() {
        let report = ProbeReport {
            target: ProbeTarget {
                protocol: Protocol::Smtp,
                host: "smtp.example.com".into(),
                port: 25,
                security: Security::StartTls,
            },
            dns: DnsOutcome::Resolved {
                addresses: vec!["127.0.0.1".parse().unwrap()],
            },
            tcp: TcpOutcome::Refused {
                address: "127.0.0.1:25".parse().unwrap(),
            },
            tls: None,
            capabilities: None,
            protocol_error: None,
            elapsed_ms: 3,
        };
        assert_eq!(
            tcp_evidence(&report),
            Evidence::new("tcp", "smtp.example.com:25", "refused by 127.0.0.1:25")
        );
    }
}
