//! Words: evidence lines from probe reports and the names helpdesk people know for clients,
//! protocols and security settings.

use mailmend_core::{
    ClientKind, DnsOutcome, DnsReport, Evidence, ProbeReport, ProbeTarget, Protocol, Security,
    TcpOutcome, TlsFailure, TlsOutcome,
};

/// The client's name as its users write it.
pub fn client_name(client: ClientKind) -> &'static str {
    match client {
        ClientKind::Thunderbird => "Thunderbird",
        ClientKind::Outlook => "Outlook",
        ClientKind::Evolution => "Evolution",
        ClientKind::Msmtp => "msmtp",
        ClientKind::Mbsync => "mbsync",
        ClientKind::Mutt => "mutt",
        ClientKind::Aerc => "aerc",
    }
}

pub fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Imap => "IMAP",
        Protocol::Pop3 => "POP3",
        Protocol::Smtp => "SMTP",
        Protocol::Exchange => "Exchange",
    }
}

/// The security setting as the clients' dialogs name it.
pub fn security_name(security: Security) -> &'static str {
    match security {
        Security::None => "no encryption",
        Security::StartTls => "STARTTLS",
        Security::Tls => "SSL/TLS",
    }
}

/// `host:port (security)`, the evidence form of a target.
pub fn target_text(target: &ProbeTarget) -> String {
    format!("{}:{} ({})", target.host, target.port, target.security)
}

/// The evidence line for one probe: the deepest layer it reached and what happened there.
pub fn evidence(report: &ProbeReport) -> Evidence {
    let target = target_text(&report.target);
    if let Some(text) = dns_failure_text(&report.dns) {
        return Evidence::new("dns", target, text);
    }
    let tcp = match &report.tcp {
        TcpOutcome::Connected { .. } => None,
        TcpOutcome::Refused { address } => Some(format!("connection refused by {address}")),
        TcpOutcome::TimedOut { address } => Some(format!("no answer from {address} (timed out)")),
        TcpOutcome::Unreachable { address, detail } => {
            Some(format!("no route to {address}: {detail}"))
        }
        TcpOutcome::NotResolved => Some("not attempted: the name did not resolve".to_string()),
        TcpOutcome::Failed { detail } => Some(format!("connect failed: {detail}")),
    };
    if let Some(text) = tcp {
        return Evidence::new("tcp", target, text);
    }
    if let Some(TlsOutcome::Failed { failure }) = &report.tls {
        return Evidence::new("tls", target, tls_failure_text(failure));
    }
    let protocol = report.target.protocol.as_str();
    if let Some(error) = &report.protocol_error {
        return Evidence::new(protocol, target, format!("unexpected reply: {error}"));
    }
    let Some(caps) = &report.capabilities else {
        return Evidence::new(
            protocol,
            target,
            "connected, but the server sent no greeting",
        );
    };
    let mut text = String::from("ready");
    if let Some(TlsOutcome::Established { version, .. }) = &report.tls {
        text.push_str(&format!(" over {version}"));
    }
    if caps.starttls {
        text.push_str("; offers STARTTLS");
    }
    if caps.login_disabled {
        text.push_str("; LOGINDISABLED");
    }
    if caps.auth_mechanisms.is_empty() {
        text.push_str("; no AUTH mechanisms");
    } else {
        text.push_str(&format!("; AUTH {}", caps.auth_mechanisms.join(" ")));
    }
    Evidence::new(protocol, target, text)
}

/// The evidence line for a name lookup.
pub fn dns_evidence(report: &DnsReport) -> Evidence {
    let text = match &report.outcome {
        DnsOutcome::Resolved { addresses } => {
            let list: Vec<String> = addresses.iter().map(ToString::to_string).collect();
            format!("resolves to {}", list.join(", "))
        }
        other => dns_failure_text(other).unwrap_or_default(),
    };
    Evidence::new("dns", report.host.clone(), text)
}

fn dns_failure_text(outcome: &DnsOutcome) -> Option<String> {
    match outcome {
        DnsOutcome::Resolved { .. } => None,
        DnsOutcome::NxDomain => Some("no such name (NXDOMAIN)".into()),
        DnsOutcome::NoRecords => Some("the name has no address records".into()),
        DnsOutcome::ResolverUnreachable { detail } => {
            Some(format!("no resolver answered: {detail}"))
        }
        DnsOutcome::Failed { detail } => Some(format!("lookup failed: {detail}")),
    }
}

/// A short description of a TLS failure, for evidence.
pub fn tls_failure_text(failure: &TlsFailure) -> String {
    match failure {
        TlsFailure::CertificateExpired { not_after } => match not_after {
            Some(date) => format!("certificate expired on {date}"),
            None => "certificate expired".into(),
        },
        TlsFailure::CertificateNotYetValid { not_before } => match not_before {
            Some(date) => format!("certificate not valid before {date}"),
            None => "certificate not valid yet".into(),
        },
        TlsFailure::SelfSigned => "self-signed certificate".into(),
        TlsFailure::UntrustedIssuer { issuer } => match issuer {
            Some(issuer) => format!("certificate issued by untrusted {issuer}"),
            None => "certificate issuer not trusted".into(),
        },
        TlsFailure::IncompleteChain => "certificate chain incomplete".into(),
        TlsFailure::NameMismatch { presented } => {
            format!("certificate is for {}", presented.join(", "))
        }
        TlsFailure::ProtocolMismatch { detail } => {
            format!("no common TLS version or cipher: {detail}")
        }
        TlsFailure::NotTls { detail } => format!("server does not speak TLS here: {detail}"),
        TlsFailure::StartTlsUnavailable { detail } => format!("STARTTLS not available: {detail}"),
        TlsFailure::Other { detail } => format!("handshake failed: {detail}"),
    }
}
