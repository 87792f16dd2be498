//! The connectivity diagnostic's decisions, against an in-memory network scripted per target.

mod support;

use mailmend_core::{
    AuthMethod, Capabilities, Diagnostic, DnsOutcome, EndpointChange, Protocol, Role, Security,
    TlsFailure,
};
use mailmend_diagnostics::{builtin, codes, Connectivity};
use support::*;
use Protocol::{Imap, Smtp};
use Security::{StartTls, Tls};

const IMAP_HOST: &str = "imap.example.com";
const SMTP_HOST: &str = "smtp.example.com";

fn imap_only(port: u16, security: Security) -> mailmend_core::Account {
    account(Some(endpoint(Imap, IMAP_HOST, port, security)), None)
}

fn smtp_only(port: u16, security: Security) -> mailmend_core::Account {
    account(None, Some(endpoint(Smtp, SMTP_HOST, port, security)))
}

#[test]
fn builtin_starts_with_connectivity() {
    let all = builtin();
    assert_eq!(all[0].info().name, "connectivity");
    assert_eq!(Connectivity.info().name, "connectivity");
}

#[tokio::test]
async fn healthy_account_has_no_findings_and_one_probe_per_endpoint() {
    let acc = account(
        Some(endpoint(Imap, IMAP_HOST, 993, Tls)),
        Some(endpoint(Smtp, SMTP_HOST, 465, Tls)),
    );
    let net = FakeNet::new()
        .host(IMAP_HOST)
        .host(SMTP_HOST)
        .serve(Imap, IMAP_HOST, 993, Tls, imap_caps())
        .serve(Smtp, SMTP_HOST, 465, Tls, smtp_caps(true));
    let findings = diagnose(&acc, &net).await;
    assert!(findings.is_empty(), "{findings:?}");
    let calls = net.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls.contains(&Call::Probe(target(Imap, IMAP_HOST, 993, Tls))));
    assert!(calls.contains(&Call::Probe(target(Smtp, SMTP_HOST, 465, Tls))));
}

#[tokio::test]
async fn incoming_and_outgoing_are_probed_concurrently() {
    // Each probe waits until both are in flight: a sequential diagnosis would never finish.
    let acc = account(
        Some(endpoint(Imap, IMAP_HOST, 993, Tls)),
        Some(endpoint(Smtp, SMTP_HOST, 465, Tls)),
    );
    let net = FakeNet::new()
        .host(IMAP_HOST)
        .host(SMTP_HOST)
        .serve(Imap, IMAP_HOST, 993, Tls, imap_caps())
        .serve(Smtp, SMTP_HOST, 465, Tls, smtp_caps(true))
        .with_barrier(2);
    assert!(diagnose(&acc, &net).await.is_empty());
}

#[tokio::test]
async fn imap_143_set_to_tls_moves_to_implicit_tls_on_993_even_when_starttls_works() {
    // Rule (RFC 8314): implicit TLS is preferred over STARTTLS, even on the configured port.
    // Only the port changes, so the finding is settings.wrong_port.
    let net = FakeNet::new()
        .host(IMAP_HOST)
        .on(
            IMAP_HOST,
            143,
            Tls,
            Behaviour::Tls(TlsFailure::NotTls {
                detail: "* OK IMAP4rev1".into(),
            }),
        )
        .serve(Imap, IMAP_HOST, 143, StartTls, imap_caps())
        .serve(Imap, IMAP_HOST, 993, Tls, imap_caps());
    let findings = diagnose(&imap_only(143, Tls), &net).await;
    assert_eq!(findings.len(), 1);
    let f = &findings[0];
    assert_eq!(f.code, codes::SETTINGS_WRONG_PORT);
    assert_eq!(f.role, Some(Role::Incoming));
    assert_eq!(
        the_change(f),
        EndpointChange {
            port: Some(993),
            ..Default::default()
        }
    );
    assert_eq!(
        f.summary,
        "Thunderbird is set to IMAP port 143 with SSL/TLS, but the server accepts SSL/TLS on port 993"
    );
    // Evidence: the failed configured probe, then the working one.
    assert_eq!(f.evidence.len(), 2);
    assert_eq!(f.evidence[0].probe, "tls");
    assert_eq!(f.evidence[0].target, "imap.example.com:143 (tls)");
    assert_eq!(f.evidence[1].probe, "imap");
    assert_eq!(f.evidence[1].target, "imap.example.com:993 (tls)");
}

#[tokio::test]
async fn imap_143_set_to_tls_gets_starttls_when_993_is_closed() {
    let net = FakeNet::new()
        .host(IMAP_HOST)
        .on(
            IMAP_HOST,
            143,
            Tls,
            Behaviour::Tls(TlsFailure::NotTls {
                detail: "* OK".into(),
            }),
        )
        .serve(Imap, IMAP_HOST, 143, StartTls, imap_caps());
    let findings = diagnose(&imap_only(143, Tls), &net).await;
    let f = &findings[0];
    assert_eq!(f.code, codes::SETTINGS_WRONG_SECURITY);
    assert_eq!(
        the_change(f),
        EndpointChange {
            security: Some(StartTls),
            ..Default::default()
        }
    );
    assert!(
        f.summary.contains("only accepts STARTTLS on port 143"),
        "{}",
        f.summary
    );
}

#[tokio::test]
async fn imap_set_to_the_pop3_port_is_moved_to_993() {
    let net = FakeNet::new()
        .host(IMAP_HOST)
        .serve(Protocol::Pop3, IMAP_HOST, 995, Tls, imap_caps())
        .serve(Imap, IMAP_HOST, 993, Tls, imap_caps());
    let findings = diagnose(&imap_only(995, Tls), &net).await;
    let f = &findings[0];
    assert_eq!(f.code, codes::SETTINGS_WRONG_PORT);
    assert_eq!(
        the_change(f),
        EndpointChange {
            port: Some(993),
            ..Default::default()
        }
    );
    assert_eq!(
        f.summary,
        "Thunderbird is set to IMAP port 995 with SSL/TLS, but the server only accepts SSL/TLS on port 993"
    );
    assert_eq!(f.evidence[0].probe, "imap");
    assert!(f.evidence[0].result.contains("unexpected reply"));
}

#[tokio::test]
async fn refused_starttls_port_moves_to_993_with_tls() {
    let net = FakeNet::new()
        .host(IMAP_HOST)
        .serve(Imap, IMAP_HOST, 993, Tls, imap_caps());
    let findings = diagnose(&imap_only(143, StartTls), &net).await;
    let f = &findings[0];
    assert_eq!(f.code, codes::SETTINGS_WRONG_PORT_SECURITY);
    assert_eq!(
        the_change(f),
        EndpointChange {
            port: Some(993),
            security: Some(Tls),
            ..Default::default()
        }
    );
    assert_eq!(f.evidence[0].probe, "tcp");
    assert!(f.evidence[0].result.contains("refused"));
}

#[tokio::test]
async fn the_matrix_is_requested_in_one_probe_all_call() {
    let net = FakeNet::new()
        .host(SMTP_HOST)
        .serve(Smtp, SMTP_HOST, 587, StartTls, smtp_caps(true));
    let findings = diagnose(&smtp_only(2525, StartTls), &net).await;
    assert_eq!(findings[0].code, codes::SETTINGS_WRONG_PORT);
    // The configured probe, then every alternative in flight at once (one round, not one
    // probe after another).
    assert_eq!(
        net.calls()[0],
        Call::Probe(target(Smtp, SMTP_HOST, 2525, StartTls))
    );
    assert_eq!(
        net.probe_all_calls(),
        vec![vec![
            target(Smtp, SMTP_HOST, 465, Tls),
            target(Smtp, SMTP_HOST, 587, StartTls),
            target(Smtp, SMTP_HOST, 25, StartTls),
            target(Smtp, SMTP_HOST, 2525, Tls),
        ]]
    );
}

#[tokio::test]
async fn smtp_prefers_587_with_auth_over_25_without_auth() {
    let net = FakeNet::new()
        .host(SMTP_HOST)
        .serve(Smtp, SMTP_HOST, 587, StartTls, smtp_caps(true))
        .serve(Smtp, SMTP_HOST, 25, StartTls, smtp_caps(false));
    let findings = diagnose(&smtp_only(465, Tls), &net).await;
    let f = &findings[0];
    assert_eq!(f.role, Some(Role::Outgoing));
    assert_eq!(f.code, codes::SETTINGS_WRONG_PORT_SECURITY);
    assert_eq!(
        the_change(f),
        EndpointChange {
            port: Some(587),
            security: Some(StartTls),
            ..Default::default()
        }
    );
}

#[tokio::test]
async fn smtp_port_25_without_auth_moves_to_587_when_the_account_logs_in() {
    let net = FakeNet::new()
        .host(SMTP_HOST)
        .serve(Smtp, SMTP_HOST, 25, StartTls, smtp_caps(false))
        .serve(Smtp, SMTP_HOST, 587, StartTls, smtp_caps(true));
    let findings = diagnose(&smtp_only(25, StartTls), &net).await;
    let f = &findings[0];
    assert_eq!(f.code, codes::SETTINGS_WRONG_PORT);
    assert_eq!(
        the_change(f),
        EndpointChange {
            port: Some(587),
            ..Default::default()
        }
    );
    assert!(
        f.summary.contains("does not accept logins"),
        "{}",
        f.summary
    );
}

#[tokio::test]
async fn smtp_port_25_without_auth_is_fine_for_an_account_that_does_not_log_in() {
    let mut acc = smtp_only(25, StartTls);
    acc.outgoing.as_mut().unwrap().auth = AuthMethod::None;
    let net = FakeNet::new()
        .host(SMTP_HOST)
        .serve(Smtp, SMTP_HOST, 25, StartTls, smtp_caps(false));
    assert!(diagnose(&acc, &net).await.is_empty());
    assert_eq!(net.calls().len(), 1);
}

#[tokio::test]
async fn smtp_port_25_without_auth_is_never_proposed() {
    let net = FakeNet::new()
        .host(SMTP_HOST)
        .serve(Smtp, SMTP_HOST, 25, StartTls, smtp_caps(false));
    let findings = diagnose(&smtp_only(465, Tls), &net).await;
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].code, codes::NETWORK_SERVICE_DOWN);
    assert!(findings[0].proposed.is_empty());
}

#[tokio::test]
async fn only_plaintext_works_gives_no_proposal_and_notifies() {
    let net = FakeNet::new().host(IMAP_HOST).on(
        IMAP_HOST,
        143,
        StartTls,
        Behaviour::Tls(TlsFailure::StartTlsUnavailable {
            detail: "no STARTTLS capability".into(),
        }),
    );
    let findings = diagnose(&imap_only(993, Tls), &net).await;
    assert_eq!(findings.len(), 1);
    let f = &findings[0];
    assert_eq!(f.code, codes::SECURITY_TLS_UNAVAILABLE);
    assert!(only_notifies(f));
    // Plaintext is never even tried.
    assert!(net
        .probed_targets()
        .iter()
        .all(|t| t.security != Security::None));
}

#[tokio::test]
async fn typo_host_is_corrected_inside_the_email_domain() {
    let acc = account(Some(endpoint(Imap, "imap.exmaple.com", 993, Tls)), None);
    let net = FakeNet::new()
        .host(IMAP_HOST)
        .serve(Imap, IMAP_HOST, 993, Tls, imap_caps());
    let findings = diagnose(&acc, &net).await;
    assert_eq!(findings.len(), 1);
    let f = &findings[0];
    assert_eq!(f.code, codes::DNS_NXDOMAIN);
    assert_eq!(
        the_change(f),
        EndpointChange {
            host: Some(IMAP_HOST.into()),
            ..Default::default()
        }
    );
    assert!(
        f.summary.contains("imap.exmaple.com does not exist"),
        "{}",
        f.summary
    );
    assert_eq!(f.evidence[0].probe, "dns");
    // Candidates are resolved first; only those that resolve are probed, in one round.
    let rounds = net.probe_all_calls();
    assert_eq!(rounds.len(), 1);
    assert!(rounds[0].iter().all(|t| t.host == IMAP_HOST));
    assert!(net.calls().contains(&Call::Resolve(IMAP_HOST.into())));
}

#[tokio::test]
async fn typo_host_with_a_wrong_port_too_gets_host_and_port() {
    let acc = account(Some(endpoint(Imap, "imap.exmaple.com", 143, Tls)), None);
    let net = FakeNet::new()
        .host(IMAP_HOST)
        .serve(Imap, IMAP_HOST, 993, Tls, imap_caps());
    let findings = diagnose(&acc, &net).await;
    assert_eq!(
        the_change(&findings[0]),
        EndpointChange {
            host: Some(IMAP_HOST.into()),
            port: Some(993),
            ..Default::default()
        }
    );
}

#[tokio::test]
async fn nxdomain_without_a_near_candidate_has_no_proposal() {
    let acc = account(
        Some(endpoint(Imap, "imap.totally-different.org", 993, Tls)),
        None,
    );
    let net = FakeNet::new()
        .host(IMAP_HOST)
        .serve(Imap, IMAP_HOST, 993, Tls, imap_caps());
    let findings = diagnose(&acc, &net).await;
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].code, codes::DNS_NXDOMAIN);
    assert!(findings[0].proposed.is_empty());
    assert_eq!(net.calls().len(), 1, "nothing but the configured probe");
}

#[tokio::test]
async fn nxdomain_whose_candidates_do_not_work_has_no_proposal() {
    let acc = account(Some(endpoint(Imap, "imap.exmaple.com", 993, Tls)), None);
    let net = FakeNet::new().silent_host(IMAP_HOST);
    let findings = diagnose(&acc, &net).await;
    assert_eq!(findings[0].code, codes::DNS_NXDOMAIN);
    assert!(findings[0].proposed.is_empty());
}

#[tokio::test]
async fn an_unanswering_resolver_is_left_to_the_dns_diagnostic() {
    // The DNS diagnostic owns dns.resolver_unreachable: it can tell which server is dead.
    let net = FakeNet::new().dns(
        IMAP_HOST,
        DnsOutcome::ResolverUnreachable {
            detail: "timeout".into(),
        },
    );
    assert!(diagnose(&imap_only(993, Tls), &net).await.is_empty());
    assert_eq!(net.calls().len(), 1);
}

#[tokio::test]
async fn a_local_firewall_rule_or_a_stale_cache_is_left_to_their_diagnostics() {
    // Without the deference, 993 timing out while 143 STARTTLS works would move the account
    // to 143, hiding a local rule (or a moved server) behind a worse setting.
    let local_rule = FakeNet::new()
        .host_at(IMAP_HOST, &["192.0.2.1"], Behaviour::Refused)
        .on(IMAP_HOST, 993, Tls, Behaviour::TimedOut)
        .serve(Imap, IMAP_HOST, 143, StartTls, imap_caps())
        .firewall("192.0.2.1", 993, blocked("drop", 3, "tcp dport 993 drop"));
    // The same-host round runs alongside the cause checks to save their round trips, and its
    // result is thrown away: nothing is proposed, whatever the other ports said.
    assert!(diagnose(&imap_only(993, Tls), &local_rule).await.is_empty());

    let stale = FakeNet::new()
        .host_at(IMAP_HOST, &["192.0.2.1"], Behaviour::TimedOut)
        .authoritative(IMAP_HOST, resolved(&["192.0.2.2"]))
        .address("192.0.2.2", Behaviour::Serve(Imap, imap_caps()));
    assert!(diagnose(&imap_only(993, Tls), &stale).await.is_empty());
}

#[tokio::test]
async fn dns_failures_get_their_own_codes_and_no_port_search() {
    for (outcome, code) in [
        (DnsOutcome::NoRecords, codes::DNS_NO_RECORDS),
        (
            DnsOutcome::Failed {
                detail: "SERVFAIL".into(),
            },
            codes::DNS_FAILED,
        ),
    ] {
        let net = FakeNet::new().dns(IMAP_HOST, outcome);
        let findings = diagnose(&imap_only(993, Tls), &net).await;
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].code, code);
        assert!(findings[0].proposed.is_empty());
        assert_eq!(net.calls().len(), 1);
    }
}

#[tokio::test]
async fn each_tls_failure_gets_its_code_and_only_a_notification() {
    let cases = [
        (
            TlsFailure::CertificateExpired {
                not_after: Some("2024-01-01".into()),
            },
            codes::TLS_CERTIFICATE_EXPIRED,
        ),
        (
            TlsFailure::CertificateNotYetValid {
                not_before: Some("2031-01-01".into()),
            },
            codes::TLS_CERTIFICATE_NOT_YET_VALID,
        ),
        (TlsFailure::SelfSigned, codes::TLS_CERTIFICATE_SELF_SIGNED),
        (
            TlsFailure::UntrustedIssuer {
                issuer: Some("CN=Proxy CA".into()),
            },
            codes::TLS_CERTIFICATE_UNTRUSTED,
        ),
        (
            TlsFailure::IncompleteChain,
            codes::TLS_CERTIFICATE_UNTRUSTED,
        ),
        (
            TlsFailure::NameMismatch {
                presented: vec!["www.hosting.example.net".into()],
            },
            codes::TLS_NAME_MISMATCH,
        ),
        (
            TlsFailure::ProtocolMismatch {
                detail: "server offers only TLS 1.0".into(),
            },
            codes::TLS_PROTOCOL_MISMATCH,
        ),
        (
            TlsFailure::Other {
                detail: "decode error".into(),
            },
            codes::TLS_HANDSHAKE_FAILED,
        ),
    ];
    for (failure, code) in cases {
        // Another port works: proposing it would hide a possible attack, so it is not even tried.
        let net = FakeNet::new()
            .host(IMAP_HOST)
            .on(IMAP_HOST, 993, Tls, Behaviour::Tls(failure.clone()))
            .serve(Imap, IMAP_HOST, 143, StartTls, imap_caps());
        let findings = diagnose(&imap_only(993, Tls), &net).await;
        assert_eq!(findings.len(), 1, "{failure:?}");
        let f = &findings[0];
        assert_eq!(f.code, code, "{failure:?}");
        assert!(only_notifies(f), "{failure:?}: {:?}", f.proposed);
        assert!(
            net.probe_all_calls().is_empty(),
            "{failure:?}: alternatives were probed"
        );
        assert_eq!(f.evidence[0].probe, "tls");
        let mailmend_core::Action::NotifyUser { message, .. } = &f.proposed[0] else {
            unreachable!()
        };
        assert!(message.contains("ask IT"), "{message}");
        assert!(message.contains("mailmend will not"), "{message}");
    }
}

#[tokio::test]
async fn expired_certificate_message_names_the_date() {
    let net = FakeNet::new().host(IMAP_HOST).on(
        IMAP_HOST,
        993,
        Tls,
        Behaviour::Tls(TlsFailure::CertificateExpired {
            not_after: Some("2024-01-01".into()),
        }),
    );
    let findings = diagnose(&imap_only(993, Tls), &net).await;
    assert_eq!(
        findings[0].summary,
        "The server's certificate at imap.example.com (port 993) expired on 2024-01-01"
    );
    let mailmend_core::Action::NotifyUser { message, .. } = &findings[0].proposed[0] else {
        panic!("expected a notification")
    };
    assert!(message.contains("mailmend will not turn certificate checks off"));
}

#[tokio::test]
async fn name_mismatch_with_a_working_in_domain_name_proposes_that_host() {
    let acc = account(Some(endpoint(Imap, "mail.example.com", 993, Tls)), None);
    let net = FakeNet::new()
        .host("mail.example.com")
        .host(IMAP_HOST)
        .on(
            "mail.example.com",
            993,
            Tls,
            Behaviour::Tls(TlsFailure::NameMismatch {
                presented: vec![
                    "*.example.com".into(),
                    "imap.other.example.net".into(),
                    "IMAP.example.com".into(),
                ],
            }),
        )
        .serve(Imap, IMAP_HOST, 993, Tls, imap_caps());
    let findings = diagnose(&acc, &net).await;
    let f = &findings[0];
    assert_eq!(f.code, codes::TLS_NAME_MISMATCH);
    assert_eq!(
        the_change(f),
        EndpointChange {
            host: Some(IMAP_HOST.into()),
            ..Default::default()
        }
    );
    // Only the in-domain, non-wildcard name was tried, with the same port and security.
    assert_eq!(
        net.probe_all_calls(),
        vec![vec![target(Imap, IMAP_HOST, 993, Tls)]]
    );
}

#[tokio::test]
async fn name_mismatch_whose_in_domain_name_fails_only_notifies() {
    let acc = account(Some(endpoint(Imap, "mail.example.com", 993, Tls)), None);
    let net = FakeNet::new().host("mail.example.com").host(IMAP_HOST).on(
        "mail.example.com",
        993,
        Tls,
        Behaviour::Tls(TlsFailure::NameMismatch {
            presented: vec![IMAP_HOST.into()],
        }),
    );
    let findings = diagnose(&acc, &net).await;
    assert_eq!(findings[0].code, codes::TLS_NAME_MISMATCH);
    assert!(only_notifies(&findings[0]));
}

#[tokio::test]
async fn timeouts_on_the_configured_port_while_others_answer_is_blocked_upstream() {
    let net = FakeNet::new()
        .host(IMAP_HOST)
        .on(IMAP_HOST, 993, Tls, Behaviour::TimedOut);
    let findings = diagnose(&imap_only(993, Tls), &net).await;
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].code, codes::NETWORK_BLOCKED_UPSTREAM);
    assert!(findings[0].proposed.is_empty());
    assert!(findings[0].summary.contains("not on port 993"));
}

#[tokio::test]
async fn timeouts_on_every_port_is_an_unreachable_host() {
    let net = FakeNet::new().silent_host(IMAP_HOST);
    let findings = diagnose(&imap_only(993, Tls), &net).await;
    assert_eq!(findings[0].code, codes::NETWORK_UNREACHABLE_HOST);
    // Configured probe, one same-host round (the matrix, and the other protocols' ports, which
    // tell a dead host from a dropped port), one round on the email domain's other hosts.
    let rounds = net.probe_all_calls();
    assert_eq!(rounds.len(), 2, "{rounds:#?}");
    assert!(rounds[0].contains(&target(Imap, IMAP_HOST, 143, StartTls)));
    assert!(rounds[0].contains(&target(Smtp, IMAP_HOST, 587, StartTls)));
    assert!(rounds[0].contains(&target(Protocol::Pop3, IMAP_HOST, 995, Tls)));
    // Before that, the shared cause checks: the firewall for the one address, and the
    // authoritative answer (the same as the system's here, so no probe of new addresses).
    assert_eq!(
        net.checks(),
        vec![
            Check::Firewall("127.0.0.1".parse().unwrap(), 993),
            Check::Authoritative(IMAP_HOST.into())
        ]
    );
}

#[tokio::test]
async fn refusals_on_every_port_is_a_service_down() {
    let net = FakeNet::new().host(IMAP_HOST);
    let findings = diagnose(&imap_only(993, Tls), &net).await;
    assert_eq!(findings[0].code, codes::NETWORK_SERVICE_DOWN);
    assert!(findings[0].proposed.is_empty());
}

#[tokio::test]
async fn no_route_is_reported_as_no_route() {
    let net = FakeNet::new().host_with_default(IMAP_HOST, Behaviour::Unreachable);
    let findings = diagnose(&imap_only(993, Tls), &net).await;
    assert_eq!(findings[0].code, codes::NETWORK_NO_ROUTE);
}

#[tokio::test]
async fn wrong_protocol_on_the_port_with_nothing_else_working_is_an_unexpected_reply() {
    let net = FakeNet::new()
        .host(IMAP_HOST)
        .serve(Smtp, IMAP_HOST, 993, Tls, smtp_caps(true));
    let findings = diagnose(&imap_only(993, Tls), &net).await;
    assert_eq!(findings[0].code, codes::PROTOCOL_UNEXPECTED_REPLY);
    assert!(only_notifies(&findings[0]));
}

#[tokio::test]
async fn a_certificate_problem_on_the_only_other_port_is_named_instead_of_the_settings() {
    let net = FakeNet::new()
        .host(IMAP_HOST)
        .on(
            IMAP_HOST,
            143,
            Tls,
            Behaviour::Tls(TlsFailure::NotTls {
                detail: "* OK".into(),
            }),
        )
        .on(IMAP_HOST, 993, Tls, Behaviour::Tls(TlsFailure::SelfSigned));
    let findings = diagnose(&imap_only(143, Tls), &net).await;
    assert_eq!(findings[0].code, codes::TLS_CERTIFICATE_SELF_SIGNED);
    assert!(only_notifies(&findings[0]));
}

#[tokio::test]
async fn a_moved_server_is_found_on_a_standard_host_of_the_email_domain() {
    let acc = account(
        Some(endpoint(Imap, "imap.old-provider.example.net", 993, Tls)),
        None,
    );
    let net = FakeNet::new()
        .silent_host("imap.old-provider.example.net")
        .host(IMAP_HOST)
        .serve(Imap, IMAP_HOST, 993, Tls, imap_caps());
    let findings = diagnose(&acc, &net).await;
    let f = &findings[0];
    assert_eq!(f.code, codes::SETTINGS_WRONG_HOST);
    assert_eq!(
        the_change(f),
        EndpointChange {
            host: Some(IMAP_HOST.into()),
            ..Default::default()
        }
    );
    let rounds = net.probe_all_calls();
    assert_eq!(rounds.len(), 2);
    assert!(rounds[1]
        .iter()
        .all(|t| t.host.ends_with(".example.com") || t.host == "example.com"));
}

#[tokio::test]
async fn plaintext_password_is_moved_to_implicit_tls() {
    let mut caps = imap_caps();
    caps.starttls = true;
    let net = FakeNet::new()
        .host(IMAP_HOST)
        .serve(Imap, IMAP_HOST, 143, Security::None, caps)
        .serve(Imap, IMAP_HOST, 143, StartTls, imap_caps())
        .serve(Imap, IMAP_HOST, 993, Tls, imap_caps());
    let findings = diagnose(&imap_only(143, Security::None), &net).await;
    let f = &findings[0];
    assert_eq!(f.code, codes::SECURITY_PLAINTEXT_PASSWORD);
    assert_eq!(f.severity, mailmend_core::Severity::Error);
    assert_eq!(
        the_change(f),
        EndpointChange {
            port: Some(993),
            security: Some(Tls),
            ..Default::default()
        }
    );
}

#[tokio::test]
async fn plaintext_password_is_upgraded_to_starttls_on_the_same_port() {
    let mut caps = imap_caps();
    caps.starttls = true;
    let net = FakeNet::new()
        .host(IMAP_HOST)
        .serve(Imap, IMAP_HOST, 143, Security::None, caps)
        .serve(Imap, IMAP_HOST, 143, StartTls, imap_caps());
    let findings = diagnose(&imap_only(143, Security::None), &net).await;
    assert_eq!(
        the_change(&findings[0]),
        EndpointChange {
            security: Some(StartTls),
            ..Default::default()
        }
    );
}

#[tokio::test]
async fn plaintext_password_without_encryption_on_offer_only_notifies() {
    let net =
        FakeNet::new()
            .host(IMAP_HOST)
            .serve(Imap, IMAP_HOST, 143, Security::None, imap_caps());
    let findings = diagnose(&imap_only(143, Security::None), &net).await;
    assert_eq!(findings[0].code, codes::SECURITY_PLAINTEXT_PASSWORD);
    assert!(only_notifies(&findings[0]));
}

#[tokio::test]
async fn plaintext_without_a_password_is_no_finding() {
    let mut acc = smtp_only(25, Security::None);
    acc.outgoing.as_mut().unwrap().auth = AuthMethod::None;
    let net =
        FakeNet::new()
            .host(SMTP_HOST)
            .serve(Smtp, SMTP_HOST, 25, Security::None, smtp_caps(false));
    assert!(diagnose(&acc, &net).await.is_empty());
}

fn imap_with_auth(auth: AuthMethod) -> mailmend_core::Account {
    let mut acc = imap_only(993, Tls);
    acc.incoming.as_mut().unwrap().auth = auth;
    acc
}

fn caps_with(mechs: &[&str], login_disabled: bool) -> Capabilities {
    let mut caps = imap_caps();
    caps.auth_mechanisms = mechs.iter().map(|m| m.to_string()).collect();
    caps.login_disabled = login_disabled;
    // As the probe's parser keeps every capability word.
    caps.words
        .extend(caps.auth_mechanisms.iter().map(|m| format!("AUTH={m}")));
    if login_disabled {
        caps.words.push("LOGINDISABLED".into());
    }
    caps
}

#[tokio::test]
async fn kerberos_not_offered_warns_and_notifies_without_weakening() {
    let net = FakeNet::new().host(IMAP_HOST).serve(
        Imap,
        IMAP_HOST,
        993,
        Tls,
        caps_with(&["PLAIN", "NTLM"], false),
    );
    let findings = diagnose(&imap_with_auth(AuthMethod::Gssapi), &net).await;
    let f = &findings[0];
    assert_eq!(f.code, codes::AUTH_METHOD_NOT_OFFERED);
    assert_eq!(f.severity, mailmend_core::Severity::Warning);
    assert!(only_notifies(f));
    assert!(f.summary.contains("Kerberos (GSSAPI)"));
}

#[tokio::test]
async fn ntlm_not_offered_but_kerberos_is_proposes_kerberos() {
    let net = FakeNet::new().host(IMAP_HOST).serve(
        Imap,
        IMAP_HOST,
        993,
        Tls,
        caps_with(&["GSSAPI"], false),
    );
    let findings = diagnose(&imap_with_auth(AuthMethod::Ntlm), &net).await;
    assert_eq!(
        the_change(&findings[0]),
        EndpointChange {
            auth: Some(AuthMethod::Gssapi),
            ..Default::default()
        }
    );
}

#[tokio::test]
async fn login_disabled_over_tls_proposes_the_encrypted_password() {
    let net = FakeNet::new().host(IMAP_HOST).serve(
        Imap,
        IMAP_HOST,
        993,
        Tls,
        caps_with(&["CRAM-MD5"], true),
    );
    let findings = diagnose(&imap_with_auth(AuthMethod::PasswordCleartext), &net).await;
    assert_eq!(findings[0].code, codes::AUTH_METHOD_NOT_OFFERED);
    assert_eq!(
        the_change(&findings[0]),
        EndpointChange {
            auth: Some(AuthMethod::PasswordEncrypted),
            ..Default::default()
        }
    );
}

/// An untrusted TLS proxy in front of the IMAP server: after the verified handshake the server
/// says LOGINDISABLED and offers no password mechanism. That is the server asking for
/// encryption, not a method question, and nothing else is probed or proposed.
#[tokio::test]
async fn login_disabled_with_no_password_mechanism_over_tls_is_encryption_required() {
    for auth in [AuthMethod::PasswordCleartext, AuthMethod::Any] {
        let net = FakeNet::new()
            .host(IMAP_HOST)
            .serve(Imap, IMAP_HOST, 993, Tls, caps_with(&[], true))
            .serve(Imap, IMAP_HOST, 143, StartTls, caps_with(&["PLAIN"], false));
        let findings = diagnose_all(&imap_with_auth(auth.clone()), &net).await;
        assert_eq!(findings.len(), 1, "{auth:?}: {findings:#?}");
        let f = &findings[0];
        assert_eq!(f.code, codes::AUTH_ENCRYPTION_REQUIRED);
        assert_eq!(f.severity, mailmend_core::Severity::Error);
        assert!(only_notifies(f));
        assert!(f
            .evidence
            .iter()
            .any(|e| e.probe == "imap.capability" && e.result.contains("LOGINDISABLED")));
        // The direct STARTTLS port works, but moving the account is no fix for the server's
        // fault: it is never even probed.
        assert!(net.probed_targets().iter().all(|t| t.port == 993));
    }
}

/// The capabilities after STARTTLS count as those of an encrypted connection too.
#[tokio::test]
async fn login_disabled_after_starttls_is_encryption_required() {
    let net =
        FakeNet::new()
            .host(IMAP_HOST)
            .serve(Imap, IMAP_HOST, 143, StartTls, caps_with(&[], true));
    let acc = account(Some(endpoint(Imap, IMAP_HOST, 143, StartTls)), None);
    let findings = diagnose(&acc, &net).await;
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].code, codes::AUTH_ENCRYPTION_REQUIRED);
    assert!(only_notifies(&findings[0]));
}

/// When the configured pair is broken, the search never proposes a pair whose server asks for
/// encryption after TLS (no login works there), but the one that works.
#[tokio::test]
async fn the_search_skips_a_port_behind_an_untrusted_tls_proxy() {
    let net = FakeNet::new()
        .host(IMAP_HOST)
        .on(
            IMAP_HOST,
            143,
            Tls,
            Behaviour::Tls(TlsFailure::NotTls {
                detail: "* OK".into(),
            }),
        )
        .serve(Imap, IMAP_HOST, 993, Tls, caps_with(&[], true))
        .serve(Imap, IMAP_HOST, 143, StartTls, caps_with(&["PLAIN"], false));
    let findings = diagnose(&imap_only(143, Tls), &net).await;
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].code, codes::SETTINGS_WRONG_SECURITY);
    assert_eq!(
        the_change(&findings[0]),
        EndpointChange {
            security: Some(StartTls),
            ..Default::default()
        }
    );
}

#[tokio::test]
async fn encrypted_password_not_offered_is_never_downgraded_to_cleartext() {
    let net = FakeNet::new().host(IMAP_HOST).serve(
        Imap,
        IMAP_HOST,
        993,
        Tls,
        caps_with(&["PLAIN"], false),
    );
    let findings = diagnose(&imap_with_auth(AuthMethod::PasswordEncrypted), &net).await;
    assert_eq!(findings[0].code, codes::AUTH_METHOD_NOT_OFFERED);
    assert!(only_notifies(&findings[0]));
}

#[tokio::test]
async fn exchange_endpoints_are_probed_over_tls_and_never_rewritten() {
    let acc = account(
        Some(endpoint(
            Protocol::Exchange,
            "outlook.example.com",
            443,
            Tls,
        )),
        None,
    );
    // A working Exchange server: one TLS probe, nothing to say.
    let net = FakeNet::new().host("outlook.example.com").serve(
        Protocol::Exchange,
        "outlook.example.com",
        443,
        Tls,
        Capabilities::default(),
    );
    assert!(diagnose(&acc, &net).await.is_empty());
    assert_eq!(net.probed_targets().len(), 1);
    // A server that is gone is explained, and nothing proposes a change of settings.
    let net = FakeNet::new().host("outlook.example.com");
    let findings = diagnose(&acc, &net).await;
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].code, codes::NETWORK_SERVICE_DOWN);
    assert!(findings[0]
        .proposed
        .iter()
        .all(|a| !matches!(a, mailmend_core::Action::SetEndpoint { .. })));
}

#[tokio::test]
async fn both_endpoints_broken_give_one_finding_each() {
    let acc = account(
        Some(endpoint(Imap, IMAP_HOST, 143, Tls)),
        Some(endpoint(Smtp, SMTP_HOST, 25, Tls)),
    );
    let net = FakeNet::new()
        .host(IMAP_HOST)
        .host(SMTP_HOST)
        .serve(Imap, IMAP_HOST, 993, Tls, imap_caps())
        .serve(Smtp, SMTP_HOST, 465, Tls, smtp_caps(true));
    let findings = diagnose(&acc, &net).await;
    assert_eq!(findings.len(), 2);
    assert_eq!(findings[0].role, Some(Role::Incoming));
    assert_eq!(findings[1].role, Some(Role::Outgoing));
    assert_eq!(
        the_change(&findings[1]),
        EndpointChange {
            port: Some(465),
            ..Default::default()
        }
    );
}

#[tokio::test]
async fn imap_ports_dropped_while_smtp_on_the_same_host_answers_is_blocked_upstream() {
    // A firewall on the way drops 993 and 143 only: the host is up, as its SMTP port shows.
    let net = FakeNet::new().silent_host(IMAP_HOST).serve(
        Smtp,
        IMAP_HOST,
        587,
        StartTls,
        smtp_caps(true),
    );
    let findings = diagnose(&imap_only(993, Tls), &net).await;
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].code, codes::NETWORK_BLOCKED_UPSTREAM);
    assert!(findings[0].proposed.is_empty());
}
