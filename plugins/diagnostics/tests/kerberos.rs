//! The Kerberos diagnostic: missing, expired and expiring tickets, judged at the time the cache
//! was read.

mod support;

use mailmend_core::{Action, AuthMethod, Diagnostic, KerberosTicket, Protocol, Security, Severity};
use mailmend_diagnostics::{codes, Kerberos};
use support::*;

fn kerberos_account() -> mailmend_core::Account {
    let mut ep = endpoint(Protocol::Imap, "imap.example.com", 993, Security::Tls);
    ep.auth = AuthMethod::Gssapi;
    account(Some(ep), None)
}

async fn judge(tickets: Vec<KerberosTicket>) -> Vec<mailmend_core::Finding> {
    let net = FakeNet::new().kerberos(ticket_report("ann", tickets));
    Kerberos.diagnose(&kerberos_account(), &net).await
}

#[tokio::test]
async fn no_ticket_tells_the_user_to_log_in() {
    let findings = judge(vec![]).await;
    assert_eq!(codes_of(&findings), [codes::KERBEROS_NO_TICKET]);
    let f = &findings[0];
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(f.role, None);
    assert!(only_notifies(f));
    assert_eq!(f.evidence[0].target, "FILE:/tmp/krb5cc_1000");
}

#[tokio::test]
async fn service_tickets_without_a_tgt_are_no_ticket() {
    let service = KerberosTicket {
        server: "imap/imap.example.com@EXAMPLE.COM".into(),
        ..tgt("2026-03-01T20:00:00Z", None, false)
    };
    let findings = judge(vec![service]).await;
    assert_eq!(codes_of(&findings), [codes::KERBEROS_NO_TICKET]);
    assert!(findings[0].evidence[0].result.contains("among 1 tickets"));
}

#[tokio::test]
async fn an_expired_ticket_cannot_be_renewed_and_the_user_is_told() {
    let findings = judge(vec![tgt(
        "2026-03-01T11:59:59Z",
        Some("2026-03-07T11:00:00Z"),
        true,
    )])
    .await;
    assert_eq!(codes_of(&findings), [codes::KERBEROS_TICKET_EXPIRED]);
    assert!(only_notifies(&findings[0]));
    let Action::NotifyUser { message, .. } = &findings[0].proposed[0] else {
        unreachable!()
    };
    assert!(message.contains("cannot be renewed"), "{message}");
}

#[tokio::test]
async fn a_renewable_ticket_expiring_within_the_hour_is_renewed() {
    let findings = judge(vec![tgt(
        "2026-03-01T12:59:00Z",
        Some("2026-03-07T11:00:00Z"),
        true,
    )])
    .await;
    assert_eq!(codes_of(&findings), [codes::KERBEROS_TICKET_EXPIRING]);
    assert_eq!(findings[0].severity, Severity::Warning);
    assert_eq!(
        findings[0].proposed,
        vec![Action::RenewKerberos {
            os_user: "ann".into(),
            principal: Some("ann@EXAMPLE.COM".into()),
            ccache: Some("FILE:/tmp/krb5cc_1000".into()),
        }]
    );
}

#[tokio::test]
async fn an_expiring_ticket_that_is_not_renewable_only_notifies() {
    for ticket in [
        tgt("2026-03-01T12:30:00Z", None, false),
        // Renewable, but not beyond its end: a renewal would gain nothing.
        tgt("2026-03-01T12:30:00Z", Some("2026-03-01T12:30:00Z"), true),
    ] {
        let findings = judge(vec![ticket]).await;
        assert_eq!(codes_of(&findings), [codes::KERBEROS_TICKET_EXPIRING]);
        assert!(only_notifies(&findings[0]), "{:?}", findings[0].proposed);
    }
}

#[tokio::test]
async fn a_ticket_valid_for_hours_is_fine() {
    assert!(judge(vec![tgt("2026-03-01T13:00:01Z", None, false)])
        .await
        .is_empty());
}

#[tokio::test]
async fn a_tgt_of_another_realm_does_not_count() {
    let foreign = KerberosTicket {
        server: "krbtgt/OTHER.ORG@OTHER.ORG".into(),
        ..tgt("2026-03-01T20:00:00Z", None, false)
    };
    assert_eq!(
        codes_of(&judge(vec![foreign]).await),
        [codes::KERBEROS_NO_TICKET]
    );
}

#[tokio::test]
async fn an_unreadable_cache_is_information_only() {
    let mut report = ticket_report("ann", vec![]);
    report.error = Some("unsupported cache type KCM".into());
    let net = FakeNet::new().kerberos(report);
    let findings = Kerberos.diagnose(&kerberos_account(), &net).await;
    assert_eq!(codes_of(&findings), [codes::KERBEROS_CACHE_UNREADABLE]);
    assert_eq!(findings[0].severity, Severity::Info);
    assert!(findings[0].proposed.is_empty());
    assert_eq!(findings[0].evidence[0].result, "unsupported cache type KCM");
}

#[tokio::test]
async fn accounts_without_kerberos_never_read_a_cache() {
    let acc = account(
        Some(endpoint(
            Protocol::Imap,
            "imap.example.com",
            993,
            Security::Tls,
        )),
        None,
    );
    let net = FakeNet::new();
    assert!(Kerberos.diagnose(&acc, &net).await.is_empty());
    assert!(net.checks().is_empty());
}

/// A site with one-hour tickets: right after a renewal the ticket has its whole hour left, and
/// must not count as expiring, or every pass would renew, fail to verify and roll back.
#[tokio::test]
async fn short_lived_tickets_are_not_always_expiring() {
    // Checked at 12:00 (CHECKED_AT); a fresh one-hour ticket from 12:00 to 13:00.
    let fresh = KerberosTicket {
        starts: "2026-03-01T12:00:00Z".into(),
        ..tgt("2026-03-01T13:00:00Z", Some("2026-03-07T12:00:00Z"), true)
    };
    assert!(judge(vec![fresh]).await.is_empty());
    // The same kind of ticket with 20 minutes left (less than half its hour) is expiring.
    let late = KerberosTicket {
        starts: "2026-03-01T11:20:00Z".into(),
        ..tgt("2026-03-01T12:20:00Z", Some("2026-03-07T12:00:00Z"), true)
    };
    assert_eq!(
        codes_of(&judge(vec![late]).await),
        [codes::KERBEROS_TICKET_EXPIRING]
    );
}
