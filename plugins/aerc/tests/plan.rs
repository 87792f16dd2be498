//! Planning endpoint changes as byte-exact edits of accounts.conf.

mod common;

use common::{
    apply, by_key, changed_lines, crlf, file_edits, fixture, line_at, lines, with_accounts,
};
use mailmend_aerc::{AercAdapter, AercVersion};
use mailmend_core::{
    Account, AdapterError, AuthMethod, ClientAdapter, EndpointChange, FileEdit, Home, Role,
    Security,
};

const OLD: Option<AercVersion> = Some(AercVersion::new(0, 14, 0));
const NEW: Option<AercVersion> = Some(AercVersion::new(0, 17, 0));

fn account(h: &Home, v: Option<AercVersion>, key: &str) -> Account {
    by_key(&AercAdapter::with_version(v).discover(h), key).clone()
}

fn plan(v: Option<AercVersion>, a: &Account, role: Role, change: EndpointChange) -> Vec<FileEdit> {
    file_edits(AercAdapter::with_version(v).plan(a, role, &change).unwrap())
}

fn plan_err(v: Option<AercVersion>, a: &Account, role: Role, change: EndpointChange) -> String {
    AercAdapter::with_version(v)
        .plan(a, role, &change)
        .unwrap_err()
        .to_string()
}

fn same_as(a: &Account, role: Role) -> EndpointChange {
    let e = a.endpoint(role).unwrap();
    EndpointChange {
        host: Some(e.host.clone()),
        port: Some(e.port),
        security: Some(e.security),
        auth: Some(e.auth.clone()),
    }
}

#[test]
fn a_change_to_the_current_values_plans_nothing() {
    for bytes in [fixture("accounts.conf"), crlf(&fixture("accounts.conf"))] {
        for v in [OLD, NEW, None] {
            let tmp = tempfile::tempdir().unwrap();
            let (h, _) = with_accounts(tmp.path(), "rene", &bytes);
            for a in AercAdapter::with_version(v).discover(&h).accounts {
                for role in [Role::Incoming, Role::Outgoing] {
                    if a.endpoint(role).is_some() {
                        assert!(
                            plan(v, &a, role, same_as(&a, role)).is_empty(),
                            "{} {role} {v:?}",
                            a.key
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn a_port_change_edits_one_line_and_rediscovery_keeps_the_account() {
    for crlf_endings in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let bytes = if crlf_endings {
            crlf(&fixture("accounts.conf"))
        } else {
            fixture("accounts.conf")
        };
        let (h, path) = with_accounts(tmp.path(), "rene", &bytes);
        let work = account(&h, NEW, "Work");
        let edits = plan(
            NEW,
            &work,
            Role::Incoming,
            EndpointChange {
                port: Some(1993),
                ..Default::default()
            },
        );
        assert_eq!(edits.len(), 1);
        let e = &edits[0];
        assert_eq!(e.path, path);
        assert_eq!(e.before, bytes);
        assert_eq!(changed_lines(&e.before, &e.after), [4]);
        let eol = if crlf_endings { "\r\n" } else { "\n" };
        assert_eq!(
            line_at(&e.after, 4),
            format!("source            = imaps://rene.dupont%40corp.example@imap.corp.example:1993{eol}")
        );
        apply(&edits);
        let again = account(&h, NEW, "Work");
        assert_eq!(again.id, work.id);
        assert_eq!(again.incoming.unwrap().port, 1993);
    }
}

#[test]
fn a_host_change_keeps_the_inline_password_and_the_query() {
    let tmp = tempfile::tempdir().unwrap();
    let (h, _) = with_accounts(tmp.path(), "rene", &fixture("accounts.conf"));
    let personal = account(&h, NEW, "Personal");
    let edits = plan(
        NEW,
        &personal,
        Role::Outgoing,
        EndpointChange {
            host: Some("smtp.example.net".into()),
            ..Default::default()
        },
    );
    let e = &edits[0];
    assert_eq!(changed_lines(&e.before, &e.after), [16]);
    assert_eq!(
        line_at(&e.after, 16),
        "outgoing = smtps+login://rene:CANARY-inline-pass-44aa@smtp.example.net\n"
    );
    let gmail = account(&h, NEW, "Gmail");
    let edits = plan(
        NEW,
        &gmail,
        Role::Incoming,
        EndpointChange {
            port: Some(994),
            ..Default::default()
        },
    );
    assert_eq!(
        line_at(&edits[0].after, 24),
        "source   = imaps+oauthbearer://rene.d%40gmail.com@imap.gmail.com:994?client_id=abc&client_secret=CANARY-oauth-secret-77ee&token_endpoint=https://oauth2.googleapis.com/token\n"
    );
}

#[test]
fn implicit_tls_is_written_as_smtps_and_imaps_and_drops_insecure() {
    let tmp = tempfile::tempdir().unwrap();
    let (h, _) = with_accounts(tmp.path(), "rene", &fixture("accounts.conf"));
    let work = account(&h, NEW, "Work");
    let edits = plan(
        NEW,
        &work,
        Role::Outgoing,
        EndpointChange {
            security: Some(Security::Tls),
            port: Some(465),
            ..Default::default()
        },
    );
    assert_eq!(
        line_at(&edits[0].after, 6),
        "outgoing          = smtps://rene.dupont%40corp.example@smtp.corp.example:465\n"
    );
    let legacy = account(&h, NEW, "Legacy");
    let edits = plan(
        NEW,
        &legacy,
        Role::Incoming,
        EndpointChange {
            security: Some(Security::Tls),
            ..Default::default()
        },
    );
    // The port was explicit and was not asked to change.
    assert_eq!(
        line_at(&edits[0].after, 29),
        "source        = imaps://old@legacy.example.org:143\n"
    );
    apply(&edits);
    let again = account(&h, NEW, "Legacy");
    assert_eq!(again.incoming.unwrap().security, Security::Tls);
}

#[test]
fn starttls_on_smtp_is_written_by_the_installed_version() {
    // aerc 0.15 and later: `smtp://` is STARTTLS; the implicit port of smtps is kept.
    let tmp = tempfile::tempdir().unwrap();
    let (h, _) = with_accounts(tmp.path(), "rene", &fixture("accounts.conf"));
    let personal = account(&h, NEW, "Personal");
    let edits = plan(
        NEW,
        &personal,
        Role::Outgoing,
        EndpointChange {
            security: Some(Security::StartTls),
            ..Default::default()
        },
    );
    let e = &edits[0];
    assert_eq!(changed_lines(&e.before, &e.after), [16]);
    assert_eq!(
        line_at(&e.after, 16),
        "outgoing = smtp+login://rene:CANARY-inline-pass-44aa@mail.example.net:465\n"
    );

    // Unknown or older aerc: `smtp://` alone could be plaintext, so `smtp-starttls = yes` is
    // added after the outgoing line, which both readings take as STARTTLS.
    for v in [None, OLD] {
        let tmp = tempfile::tempdir().unwrap();
        let (h, _) = with_accounts(tmp.path(), "rene", &fixture("accounts.conf"));
        let work = account(&h, v, "Work");
        assert_eq!(work.outgoing.as_ref().unwrap().security, Security::None);
        let edits = plan(
            v,
            &work,
            Role::Outgoing,
            EndpointChange {
                security: Some(Security::StartTls),
                ..Default::default()
            },
        );
        let e = &edits[0];
        let (b, a) = (lines(&e.before), lines(&e.after));
        assert_eq!(a.len(), b.len() + 1);
        assert_eq!(&a[..7], &b[..7]);
        assert_eq!(&a[8..], &b[7..]);
        assert_eq!(line_at(&e.after, 7), "smtp-starttls          = yes\n");
        apply(&edits);
        for reading in [None, OLD, NEW] {
            let again = account(&h, reading, "Work");
            assert_eq!(again.id, work.id);
            assert_eq!(again.outgoing.unwrap().security, Security::StartTls);
        }
        let d = AercAdapter::with_version(None).discover(&h);
        assert!(d.findings.is_empty(), "{:?}", d.findings);
    }
}

#[test]
fn an_existing_smtp_starttls_value_is_rewritten_and_a_last_line_is_ended() {
    let tmp = tempfile::tempdir().unwrap();
    let (h, _) = with_accounts(
        tmp.path(),
        "x",
        b"[X]\r\nsmtp-starttls = no\r\noutgoing = smtp+insecure://x@smtp.example.com\r\n",
    );
    let x = account(&h, OLD, "X");
    let edits = plan(
        OLD,
        &x,
        Role::Outgoing,
        EndpointChange {
            security: Some(Security::StartTls),
            ..Default::default()
        },
    );
    assert_eq!(
        edits[0].after,
        b"[X]\r\nsmtp-starttls = yes\r\noutgoing = smtp://x@smtp.example.com\r\n"
    );
    let tmp = tempfile::tempdir().unwrap();
    let (h, _) = with_accounts(
        tmp.path(),
        "y",
        b"[Y]\r\nfrom=y@example.com\r\n  outgoing=smtp+insecure://y@smtp.example.com",
    );
    let y = account(&h, None, "Y");
    let edits = plan(
        None,
        &y,
        Role::Outgoing,
        EndpointChange {
            security: Some(Security::StartTls),
            ..Default::default()
        },
    );
    assert_eq!(
        edits[0].after,
        b"[Y]\r\nfrom=y@example.com\r\n  outgoing=smtp://y@smtp.example.com\r\n  smtp-starttls=yes"
    );
}

#[test]
fn a_downgrade_to_plaintext_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (h, _) = with_accounts(tmp.path(), "rene", &fixture("accounts.conf"));
    for (key, role) in [("Work", Role::Incoming), ("Personal", Role::Outgoing)] {
        let a = account(&h, NEW, key);
        let msg = plan_err(
            NEW,
            &a,
            role,
            EndpointChange {
                security: Some(Security::None),
                ..Default::default()
            },
        );
        assert!(msg.contains("plaintext"), "{msg}");
    }
    // An ambiguous `smtp://` already reads as plaintext: asking for that changes nothing,
    // and in particular writes no `smtp+insecure://`.
    let work = account(&h, None, "Work");
    let change = EndpointChange {
        security: Some(Security::None),
        ..Default::default()
    };
    assert!(plan(None, &work, Role::Outgoing, change).is_empty());
}

#[test]
fn unsupported_changes_are_refused_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let (h, _) = with_accounts(tmp.path(), "rene", &fixture("accounts.conf"));
    let work = account(&h, NEW, "Work");
    let cases = [
        (
            EndpointChange {
                auth: Some(AuthMethod::OAuth2),
                ..Default::default()
            },
            "authentication",
        ),
        (
            EndpointChange {
                host: Some("a;b".into()),
                ..Default::default()
            },
            "cannot be written",
        ),
        (
            EndpointChange {
                port: Some(0),
                ..Default::default()
            },
            "port 0",
        ),
    ];
    for (change, needle) in cases {
        let msg = plan_err(NEW, &work, Role::Incoming, change);
        assert!(msg.contains(needle), "{msg}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let (h, _) = with_accounts(
        tmp.path(),
        "m",
        b"[M]\nsource = imaps://m@imap.example.com\n",
    );
    let m = account(&h, NEW, "M");
    let msg = plan_err(NEW, &m, Role::Outgoing, EndpointChange::default());
    assert!(msg.contains("no outgoing server"), "{msg}");
}

#[test]
fn a_removed_account_is_gone_and_a_broken_file_is_a_syntax_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (h, path) = with_accounts(tmp.path(), "rene", &fixture("accounts.conf"));
    let work = account(&h, NEW, "Work");
    let change = EndpointChange {
        port: Some(1993),
        ..Default::default()
    };
    std::fs::write(&path, b"[Other]\nsource = imaps://o@imap.example.com\n").unwrap();
    assert!(matches!(
        AercAdapter::with_version(NEW).plan(&work, Role::Incoming, &change),
        Err(AdapterError::AccountGone { .. })
    ));
    std::fs::write(&path, fixture("accounts-broken.conf")).unwrap();
    match AercAdapter::with_version(NEW).plan(&work, Role::Incoming, &change) {
        Err(AdapterError::Syntax { line, column, .. }) => assert_eq!((line, column), (3, 1)),
        other => panic!("{other:?}"),
    }
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        AercAdapter::with_version(NEW).plan(&work, Role::Incoming, &change),
        Err(AdapterError::AccountGone { .. })
    ));
}
