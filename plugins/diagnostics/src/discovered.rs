//! What the email domain publishes (SRV, autoconfig, Autodiscover), as diagnostics use it:
//! candidate targets to verify by probing, the record that named a target, and evidence lines.
//! Pure: the lookups themselves are the prober's.

use mailmend_core::{
    DiscoveredServer, DiscoveredSettings, DiscoveryLookup, DiscoveryMethod, Evidence,
    LookupOutcome, ProbeTarget, Protocol, Security,
};

/// The servers named for `protocol` that may ever be proposed (encrypted; implicit TLS for
/// Exchange, which is HTTPS), best first.
pub fn candidates(settings: &DiscoveredSettings, protocol: Protocol) -> Vec<&DiscoveredServer> {
    settings
        .servers_for(protocol)
        .filter(|s| match protocol {
            Protocol::Exchange => s.security == Security::Tls,
            _ => s.security.is_encrypted(),
        })
        .collect()
}

/// The probe target for a named server.
pub fn target(server: &DiscoveredServer) -> ProbeTarget {
    ProbeTarget {
        protocol: server.protocol,
        host: server.host.clone(),
        port: server.port,
        security: server.security,
    }
}

/// The first (best) named server that is exactly this target.
pub fn origin<'s>(
    servers: &[&'s DiscoveredServer],
    t: &ProbeTarget,
) -> Option<&'s DiscoveredServer> {
    servers.iter().copied().find(|s| {
        s.protocol == t.protocol
            && s.host.eq_ignore_ascii_case(t.host.trim_end_matches('.'))
            && s.port == t.port
            && s.security == t.security
    })
}

/// The hosts of `servers`, each once, in order.
pub fn hosts(servers: &[&DiscoveredServer]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in servers {
        if !out.contains(&s.host) {
            out.push(s.host.clone());
        }
    }
    out
}

/// `the domain's SRV record _imaps._tcp.example.com`, for sentences.
pub fn source_phrase(server: &DiscoveredServer) -> String {
    match server.source.method {
        DiscoveryMethod::Srv => format!("the domain's SRV record {}", server.source.location),
        DiscoveryMethod::Autoconfig => {
            format!("the domain's autoconfig at {}", server.source.location)
        }
        DiscoveryMethod::Autodiscover => {
            format!("the domain's Autodiscover at {}", server.source.location)
        }
    }
}

/// The evidence line saying where a server was named.
pub fn server_evidence(server: &DiscoveredServer) -> Evidence {
    let mut result = format!(
        "names {}:{} ({})",
        server.host, server.port, server.security
    );
    if let (Some(p), Some(w)) = (server.priority, server.weight) {
        result.push_str(&format!(", priority {p}, weight {w}"));
    }
    Evidence::new(
        format!("discovery.{}", server.source.method),
        server.source.location.clone(),
        result,
    )
}

/// The evidence line of one lookup.
pub fn lookup_evidence(lookup: &DiscoveryLookup) -> Evidence {
    Evidence::new(
        format!("discovery.{}", lookup.source.method),
        lookup.source.location.clone(),
        lookup.outcome.describe(),
    )
}

/// The Autodiscover lookups that wanted a login.
pub fn walls(settings: &DiscoveredSettings) -> Vec<DiscoveryLookup> {
    settings.unauthorized().cloned().collect()
}

/// The HTTP status of a login wall.
pub fn wall_status(lookup: &DiscoveryLookup) -> Option<u16> {
    match lookup.outcome {
        LookupOutcome::Unauthorized { status, .. } => Some(status),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailmend_core::DiscoverySource;

    fn server(protocol: Protocol, host: &str, security: Security) -> DiscoveredServer {
        DiscoveredServer {
            protocol,
            host: host.into(),
            port: 993,
            security,
            priority: Some(0),
            weight: Some(1),
            url: None,
            source: DiscoverySource {
                method: DiscoveryMethod::Srv,
                location: "_imaps._tcp.example.com".into(),
            },
        }
    }

    #[test]
    fn plaintext_settings_are_never_candidates() {
        let settings = DiscoveredSettings {
            domain: "example.com".into(),
            servers: vec![
                server(Protocol::Imap, "plain.example.com", Security::None),
                server(Protocol::Imap, "mail.hosting.test", Security::Tls),
                server(Protocol::Smtp, "smtp.hosting.test", Security::Tls),
                server(Protocol::Exchange, "ex.example.com", Security::StartTls),
            ],
            lookups: Vec::new(),
            elapsed_ms: 0,
        };
        let imap = candidates(&settings, Protocol::Imap);
        assert_eq!(hosts(&imap), vec!["mail.hosting.test".to_string()]);
        assert!(candidates(&settings, Protocol::Exchange).is_empty());
        let t = target(imap[0]);
        assert_eq!(
            origin(&imap, &t).map(|s| s.host.as_str()),
            Some("mail.hosting.test")
        );
    }

    #[test]
    fn evidence_says_which_record_named_the_server() {
        let s = server(Protocol::Imap, "mail.hosting.test", Security::Tls);
        let e = server_evidence(&s);
        assert_eq!(e.probe, "discovery.srv");
        assert_eq!(e.target, "_imaps._tcp.example.com");
        assert_eq!(
            e.result,
            "names mail.hosting.test:993 (tls), priority 0, weight 1"
        );
        assert_eq!(
            source_phrase(&s),
            "the domain's SRV record _imaps._tcp.example.com"
        );
    }
}
