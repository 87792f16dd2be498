//! Planning endpoint changes as byte-exact edits of prefs.js and user.js.

mod common;

use common::{changed_lines, fixture, home, lines, one_profile, write};
use mailmend_core::{
    Account, AccountId, AdapterError, AuthMethod, ClientAdapter, ClientKind, Edit, EndpointChange,
    FileEdit, Location, Role, Security,
};
use mailmend_thunderbird::ThunderbirdAdapter;
use std::path::{Path, PathBuf};

struct Setup {
    _tmp: tempfile::TempDir,
    home: mailmend_core::Home,
    profile: PathBuf,
}

fn setup(prefs: &[u8], user_js: Option<&[u8]>) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let home = home(tmp.path(), "rene");
    let profile = one_profile(&home, ".thunderbird", "k3j2h1g0.default-release", prefs);
    if let Some(u) = user_js {
        write(&profile.join("user.js"), u);
    }
    Setup {
        _tmp: tmp,
        home,
        profile,
    }
}

fn account(s: &Setup, name: &str) -> Account {
    let d = ThunderbirdAdapter.discover(&s.home);
    let key = format!("k3j2h1g0.default-release/{name}");
    d.accounts
        .into_iter()
        .find(|a| a.key == key)
        .unwrap_or_else(|| panic!("no {key}"))
}

fn file_edits(edits: Vec<Edit>) -> Vec<FileEdit> {
    edits
        .into_iter()
        .map(|e| match e {
            Edit::File(f) => f,
            other => panic!("unexpected edit {other:?}"),
        })
        .collect()
}

fn apply(edits: &[FileEdit]) {
    for e in edits {
        assert_eq!(std::fs::read(&e.path).unwrap(), e.before, "stale before");
        std::fs::write(&e.path, &e.after).unwrap();
    }
}

fn plan(a: &Account, role: Role, change: EndpointChange) -> Vec<FileEdit> {
    file_edits(ThunderbirdAdapter.plan(a, role, &change).unwrap())
}

fn line_at(bytes: &[u8], i: usize) -> String {
    String::from_utf8(lines(bytes)[i].to_vec()).unwrap()
}

#[test]
fn a_port_change_edits_one_line_of_prefs_js_and_rediscovery_sees_it() {
    for fixture_name in [
        "prefs-tb115.js",
        "prefs-tb115-crlf.js",
        "prefs-tb115-bom.js",
    ] {
        let s = setup(&fixture(fixture_name), None);
        let a = account(&s, "account1");
        let edits = plan(
            &a,
            Role::Incoming,
            EndpointChange {
                port: Some(143),
                security: Some(Security::StartTls),
                ..Default::default()
            },
        );
        assert_eq!(edits.len(), 1);
        let e = &edits[0];
        assert_eq!(e.path, s.profile.join("prefs.js"));
        assert_eq!(e.before, fixture(fixture_name));
        let changed = changed_lines(&e.before, &e.after);
        assert_eq!(changed.len(), 2, "{fixture_name}");
        let eol = if fixture_name.contains("crlf") {
            "\r\n"
        } else {
            "\n"
        };
        assert_eq!(
            line_at(&e.after, changed[0]),
            format!("user_pref(\"mail.server.server1.port\", 143);{eol}")
        );
        assert_eq!(
            line_at(&e.after, changed[1]),
            format!("user_pref(\"mail.server.server1.socketType\", 2);{eol}")
        );
        apply(&edits);
        let again = account(&s, "account1");
        assert_eq!(again.id, a.id);
        let incoming = again.incoming.unwrap();
        assert_eq!(
            (incoming.port, incoming.security),
            (143, Security::StartTls)
        );
    }
}

#[test]
fn a_change_to_the_current_values_plans_nothing() {
    let s = setup(&fixture("prefs-tb115.js"), None);
    let a = account(&s, "account1");
    let incoming = a.incoming.clone().unwrap();
    let same = EndpointChange {
        host: Some(incoming.host.clone()),
        port: Some(incoming.port),
        security: Some(incoming.security),
        auth: Some(incoming.auth.clone()),
    };
    assert!(plan(&a, Role::Incoming, same).is_empty());
    // POP3 on the default port: asking for that port needs no pref either.
    let pop = account(&s, "account3");
    let change = EndpointChange {
        port: Some(995),
        security: Some(Security::Tls),
        ..Default::default()
    };
    assert!(plan(&pop, Role::Incoming, change).is_empty());
    // An applied plan, planned again, plans nothing.
    let change = EndpointChange {
        port: Some(465),
        security: Some(Security::Tls),
        ..Default::default()
    };
    apply(&plan(&a, Role::Outgoing, change.clone()));
    assert!(plan(&account(&s, "account1"), Role::Outgoing, change).is_empty());
}

#[test]
fn an_absent_port_is_appended_as_one_line() {
    let s = setup(&fixture("prefs-tb115.js"), None);
    let pop = account(&s, "account3");
    let edits = plan(
        &pop,
        Role::Incoming,
        EndpointChange {
            port: Some(1995),
            ..Default::default()
        },
    );
    assert_eq!(edits.len(), 1);
    let e = &edits[0];
    assert_eq!(&e.after[..e.before.len()], &e.before[..]);
    assert_eq!(
        &e.after[e.before.len()..],
        b"user_pref(\"mail.server.server3.port\", 1995);\n"
    );
}

#[test]
fn a_host_change_writes_realhostname_when_it_is_set() {
    let s = setup(&fixture("prefs-tb115.js"), None);
    let pop = account(&s, "account3");
    let edits = plan(
        &pop,
        Role::Incoming,
        EndpointChange {
            host: Some("pop.new-isp.net".into()),
            ..Default::default()
        },
    );
    let e = &edits[0];
    let changed = changed_lines(&e.before, &e.after);
    assert_eq!(changed.len(), 1);
    assert_eq!(
        line_at(&e.after, changed[0]),
        "user_pref(\"mail.server.server3.realhostname\", \"pop.new-isp.net\");\n"
    );
    let imap = account(&s, "account1");
    let edits = plan(
        &imap,
        Role::Incoming,
        EndpointChange {
            host: Some("imap2.example.com".into()),
            ..Default::default()
        },
    );
    let e = &edits[0];
    let changed = changed_lines(&e.before, &e.after);
    assert_eq!(
        line_at(&e.after, changed[0]),
        "user_pref(\"mail.server.server1.hostname\", \"imap2.example.com\");\n"
    );
}

#[test]
fn outgoing_security_and_auth_go_to_try_ssl_and_auth_method() {
    let s = setup(&fixture("prefs-tb115.js"), None);
    let pop = account(&s, "account3");
    // smtp2 (the default server) has no port: moving it to TLS on 465 needs try_ssl only.
    let edits = plan(
        &pop,
        Role::Outgoing,
        EndpointChange {
            port: Some(465),
            security: Some(Security::Tls),
            auth: Some(AuthMethod::OAuth2),
            ..Default::default()
        },
    );
    let e = &edits[0];
    let added = &e.after[e.before.len()..];
    assert_eq!(
        added,
        b"user_pref(\"mail.smtpserver.smtp2.try_ssl\", 3);\nuser_pref(\"mail.smtpserver.smtp2.authMethod\", 10);\n"
    );
    apply(&edits);
    let out = account(&s, "account3").outgoing.unwrap();
    assert_eq!(
        (out.port, out.security, out.auth),
        (465, Security::Tls, AuthMethod::OAuth2)
    );
}

#[test]
fn a_key_set_in_user_js_is_edited_there_too() {
    let s = setup(&fixture("prefs-tb115.js"), Some(&fixture("user.js")));
    let a = account(&s, "account1");
    // user.js pins smtp1's port to 587; prefs.js has 587 too. Both must move, or user.js
    // would put 587 back at the next start.
    let edits = plan(
        &a,
        Role::Outgoing,
        EndpointChange {
            port: Some(465),
            security: Some(Security::Tls),
            ..Default::default()
        },
    );
    assert_eq!(edits.len(), 2);
    assert_eq!(edits[0].path, s.profile.join("prefs.js"));
    assert_eq!(changed_lines(&edits[0].before, &edits[0].after).len(), 2);
    assert_eq!(edits[1].path, s.profile.join("user.js"));
    let changed = changed_lines(&edits[1].before, &edits[1].after);
    assert_eq!(changed.len(), 1);
    assert_eq!(
        line_at(&edits[1].after, changed[0]),
        "user_pref(\"mail.smtpserver.smtp1.port\", 465); // keep submission\n"
    );
    apply(&edits);
    let out = account(&s, "account1").outgoing.unwrap();
    assert_eq!((out.port, out.security), (465, Security::Tls));
}

#[test]
fn when_only_user_js_is_wrong_only_user_js_is_edited() {
    let s = setup(&fixture("prefs-tb115.js"), Some(&fixture("user.js")));
    let a = account(&s, "account1");
    let incoming = a.incoming.as_ref().unwrap();
    assert_eq!(
        (incoming.port, incoming.security),
        (143, Security::StartTls)
    );
    let edits = plan(
        &a,
        Role::Incoming,
        EndpointChange {
            port: Some(993),
            security: Some(Security::Tls),
            ..Default::default()
        },
    );
    assert_eq!(edits.len(), 1);
    assert_eq!(edits[0].path, s.profile.join("user.js"));
    assert_eq!(changed_lines(&edits[0].before, &edits[0].after), vec![1, 2]);
}

#[test]
fn a_malformed_prefs_js_cannot_be_planned() {
    let s = setup(&fixture("prefs-tb115.js"), None);
    let a = account(&s, "account1");
    write(&s.profile.join("prefs.js"), &fixture("prefs-broken.js"));
    let err = ThunderbirdAdapter
        .plan(
            &a,
            Role::Incoming,
            &EndpointChange {
                port: Some(143),
                ..Default::default()
            },
        )
        .unwrap_err();
    match err {
        AdapterError::Syntax {
            path,
            line,
            column,
            message,
        } => {
            assert_eq!(path, s.profile.join("prefs.js"));
            assert_eq!((line, column), (5, 42));
            assert!(message.contains("expected ','"));
        }
        other => panic!("expected a syntax error, got {other}"),
    }
}

#[test]
fn a_malformed_user_js_cannot_be_planned_either() {
    let s = setup(&fixture("prefs-tb115.js"), None);
    let a = account(&s, "account1");
    write(&s.profile.join("user.js"), b"user_pref(\"x\", 1) oops\n");
    let err = ThunderbirdAdapter
        .plan(&a, Role::Incoming, &EndpointChange::default())
        .unwrap_err();
    assert!(
        matches!(err, AdapterError::Syntax { ref path, line: 1, column: 19, .. } if path.ends_with("user.js")),
        "{err}"
    );
}

#[test]
fn a_removed_account_is_gone() {
    let s = setup(&fixture("prefs-tb115.js"), None);
    let a = account(&s, "account1");
    let text = String::from_utf8(fixture("prefs-tb115.js"))
        .unwrap()
        .replace(
            "\"account1,account3,account5,account2,account4\"",
            "\"account3,account5,account2,account4\"",
        );
    write(&s.profile.join("prefs.js"), text.as_bytes());
    let err = ThunderbirdAdapter
        .plan(
            &a,
            Role::Incoming,
            &EndpointChange {
                port: Some(143),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, AdapterError::AccountGone { .. }), "{err}");
    std::fs::remove_file(s.profile.join("prefs.js")).unwrap();
    let err = ThunderbirdAdapter
        .plan(&a, Role::Incoming, &EndpointChange::default())
        .unwrap_err();
    assert!(matches!(err, AdapterError::AccountGone { .. }), "{err}");
}

#[test]
fn changes_thunderbird_cannot_express_are_unsupported() {
    let s = setup(&fixture("prefs-tb115.js"), None);
    let a = account(&s, "account1");
    for change in [
        EndpointChange {
            auth: Some(AuthMethod::Other("kerberos-ish".into())),
            ..Default::default()
        },
        EndpointChange {
            host: Some("bad\0host".into()),
            ..Default::default()
        },
    ] {
        let err = ThunderbirdAdapter
            .plan(&a, Role::Incoming, &change)
            .unwrap_err();
        assert!(matches!(err, AdapterError::Unsupported(_)), "{err}");
    }
    let elsewhere = Account {
        location: Location::Registry {
            key: "HKCU\\x".into(),
        },
        ..a
    };
    assert!(matches!(
        ThunderbirdAdapter.plan(&elsewhere, Role::Incoming, &EndpointChange::default()),
        Err(AdapterError::Unsupported(_))
    ));
}

#[test]
fn an_account_without_smtp_server_has_no_outgoing_to_change() {
    let prefs = b"user_pref(\"mail.accountmanager.accounts\", \"account1\");\n\
user_pref(\"mail.account.account1.server\", \"server1\");\n\
user_pref(\"mail.server.server1.type\", \"imap\");\n\
user_pref(\"mail.server.server1.hostname\", \"imap.example.com\");\n";
    let s = setup(prefs, None);
    let a = account(&s, "account1");
    assert!(a.outgoing.is_none());
    let err = ThunderbirdAdapter
        .plan(
            &a,
            Role::Outgoing,
            &EndpointChange {
                port: Some(587),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, AdapterError::Unsupported(_)), "{err}");
}

#[test]
fn a_hand_made_account_for_a_missing_profile_is_gone() {
    let location = Location::File {
        path: Path::new("/nonexistent/profile/prefs.js").into(),
    };
    let a = Account {
        id: AccountId::derive(ClientKind::Thunderbird, &location, "p/account1"),
        client: ClientKind::Thunderbird,
        os_user: "x".into(),
        email: None,
        location,
        key: "p/account1".into(),
        incoming: None,
        outgoing: None,
    };
    assert!(matches!(
        ThunderbirdAdapter.plan(&a, Role::Incoming, &EndpointChange::default()),
        Err(AdapterError::AccountGone { .. })
    ));
}
