//! Planning endpoint changes as byte-exact edits of the muttrc files that define them.

mod common;

use common::{
    ann, apply, by_key, canonical, changed_lines, file_edits, home, line_at, rene, write,
};
use mailmend_core::{
    Account, AdapterError, AuthMethod, ClientAdapter, EndpointChange, FileEdit, Home, Role,
    Security,
};
use mailmend_mutt::MuttAdapter;

fn account(h: &Home, key: &str) -> Account {
    by_key(&MuttAdapter::new().discover(h), key).clone()
}

fn plan(a: &Account, role: Role, change: EndpointChange) -> Vec<FileEdit> {
    file_edits(MuttAdapter::new().plan(a, role, &change).unwrap())
}

fn plan_err(a: &Account, role: Role, change: EndpointChange) -> String {
    MuttAdapter::new()
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
    for crlf in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let h = rene(tmp.path(), crlf);
        for key in ["folder@3", "folder@4"] {
            let a = account(&h, key);
            for role in [Role::Incoming, Role::Outgoing] {
                assert!(plan(&a, role, same_as(&a, role)).is_empty(), "{key} {role}");
            }
        }
    }
}

#[test]
fn a_port_change_edits_one_line_and_rediscovery_keeps_the_account() {
    for crlf in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let h = ann(tmp.path());
        let path = h.path.join(".muttrc");
        if crlf {
            write(&path, &common::crlf(&std::fs::read(&path).unwrap()));
        }
        let a = account(&h, "folder@3");
        let edits = plan(
            &a,
            Role::Incoming,
            EndpointChange {
                port: Some(1993),
                ..Default::default()
            },
        );
        assert_eq!(edits.len(), 1);
        let e = &edits[0];
        assert_eq!(e.path, canonical(&path));
        assert_eq!(e.before, std::fs::read(&path).unwrap());
        let changed = changed_lines(&e.before, &e.after);
        assert_eq!(changed, [2]);
        let eol = if crlf { "\r\n" } else { "\n" };
        assert_eq!(
            line_at(&e.after, 2),
            format!("set folder = \"imaps://ann@imap.example.org:1993/\"{eol}")
        );
        apply(&edits);
        let again = account(&h, "folder@3");
        assert_eq!(again.id, a.id);
        assert_eq!(again.incoming.unwrap().port, 1993);
        // Planned again, the applied change plans nothing.
        let change = EndpointChange {
            port: Some(1993),
            ..Default::default()
        };
        assert!(plan(&account(&h, "folder@3"), Role::Incoming, change).is_empty());
    }
}

#[test]
fn a_host_change_rewrites_every_url_of_the_server_in_the_included_file() {
    let tmp = tempfile::tempdir().unwrap();
    let h = rene(tmp.path(), false);
    let work = account(&h, "folder@4");
    let edits = plan(
        &work,
        Role::Incoming,
        EndpointChange {
            host: Some("imap2.corp.example".into()),
            ..Default::default()
        },
    );
    assert_eq!(edits.len(), 1);
    let e = &edits[0];
    assert_eq!(e.path, canonical(&h.path.join(".mutt/accounts/work")));
    assert_eq!(changed_lines(&e.before, &e.after), [3, 6]);
    assert_eq!(
        line_at(&e.after, 3),
        "set folder = \"imaps://imap2.corp.example/\"\n"
    );
    assert_eq!(
        line_at(&e.after, 6),
        "mailboxes =INBOX =Lists/rust imaps://imap2.corp.example/Archive\n"
    );
    apply(&edits);
    let d = MuttAdapter::new().discover(&h);
    assert_eq!(d.accounts.len(), 2);
    let again = by_key(&d, "folder@4");
    assert_eq!(again.id, work.id);
    assert_eq!(again.incoming.as_ref().unwrap().host, "imap2.corp.example");
}

#[test]
fn a_security_change_keeps_the_port_unless_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let h = rene(tmp.path(), true);
    let personal = account(&h, "folder@3");
    let edits = plan(
        &personal,
        Role::Incoming,
        EndpointChange {
            security: Some(Security::Tls),
            ..Default::default()
        },
    );
    let e = &edits[0];
    assert_eq!(changed_lines(&e.before, &e.after), [2, 3]);
    assert_eq!(
        line_at(&e.after, 2),
        "set folder=imaps://rene@mail.example.net:143/   # the server offers STARTTLS\r\n"
    );
    assert_eq!(
        line_at(&e.after, 3),
        "set spoolfile=imaps://rene@mail.example.net:143/INBOX\r\n"
    );
    let edits = plan(
        &personal,
        Role::Incoming,
        EndpointChange {
            security: Some(Security::Tls),
            port: Some(993),
            ..Default::default()
        },
    );
    let e = &edits[0];
    assert_eq!(
        line_at(&e.after, 2),
        "set folder=imaps://rene@mail.example.net/   # the server offers STARTTLS\r\n"
    );
    apply(&edits);
    let again = account(&h, "folder@3");
    let incoming = again.incoming.unwrap();
    assert_eq!((incoming.port, incoming.security), (993, Security::Tls));
}

#[test]
fn an_outgoing_change_rewrites_smtp_url_and_keeps_the_user_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let h = rene(tmp.path(), false);
    let work = account(&h, "folder@4");
    let edits = plan(
        &work,
        Role::Outgoing,
        EndpointChange {
            port: Some(465),
            security: Some(Security::Tls),
            ..Default::default()
        },
    );
    let e = &edits[0];
    assert_eq!(changed_lines(&e.before, &e.after), [7]);
    assert_eq!(
        line_at(&e.after, 7),
        "set smtp_url = \"smtps://rene.dupont%40corp.example@smtp.corp.example:465/\"\n"
    );
    apply(&edits);
    let out = account(&h, "folder@4").outgoing.unwrap();
    assert_eq!((out.port, out.security), (465, Security::Tls));
}

#[test]
fn a_downgrade_to_plaintext_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let h = ann(tmp.path());
    let a = account(&h, "folder@3");
    let msg = plan_err(
        &a,
        Role::Incoming,
        EndpointChange {
            security: Some(Security::None),
            ..Default::default()
        },
    );
    assert!(msg.contains("plaintext"), "{msg}");
}

#[test]
fn starttls_is_refused_when_mutt_would_not_use_it() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home(tmp.path(), "p");
    write(
        &h.path.join(".muttrc"),
        b"unset ssl_force_tls\nset ssl_starttls=no\nset folder=imaps://p@imap.example.com/\n",
    );
    let a = account(&h, "folder@3");
    let msg = plan_err(
        &a,
        Role::Incoming,
        EndpointChange {
            security: Some(Security::StartTls),
            ..Default::default()
        },
    );
    assert!(msg.contains("ssl_starttls"), "{msg}");
}

#[test]
fn an_escaped_url_part_is_not_rewritten() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home(tmp.path(), "e");
    write(
        &h.path.join(".muttrc"),
        b"set folder=\"imaps://e@imap.exam\\ple.com/\"\n",
    );
    let a = account(&h, "folder@1");
    assert_eq!(a.incoming.as_ref().unwrap().host, "imap.example.com");
    let msg = plan_err(
        &a,
        Role::Incoming,
        EndpointChange {
            host: Some("imap.example.net".into()),
            ..Default::default()
        },
    );
    assert!(msg.contains("write it plainly"), "{msg}");
    // The port, written nowhere yet, is inserted after the host, which needs the host's bytes.
    assert!(MuttAdapter::new()
        .plan(
            &a,
            Role::Incoming,
            &EndpointChange {
                port: Some(1993),
                ..Default::default()
            }
        )
        .is_err());
}

#[test]
fn unsupported_changes_are_refused_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home(tmp.path(), "u");
    write(
        &h.path.join(".muttrc"),
        b"set folder=imaps://u@imap.example.com/\n",
    );
    let a = account(&h, "folder@1");
    for (change, role, needle) in [
        (
            EndpointChange {
                auth: Some(AuthMethod::Gssapi),
                ..Default::default()
            },
            Role::Incoming,
            "authenticators",
        ),
        (
            EndpointChange {
                host: Some("bad host".into()),
                ..Default::default()
            },
            Role::Incoming,
            "cannot be written",
        ),
        (
            EndpointChange {
                port: Some(0),
                ..Default::default()
            },
            Role::Incoming,
            "port 0",
        ),
        (
            EndpointChange {
                port: Some(587),
                ..Default::default()
            },
            Role::Outgoing,
            "no outgoing server",
        ),
    ] {
        let msg = plan_err(&a, role, change);
        assert!(msg.contains(needle), "{msg}");
    }
}

#[test]
fn a_removed_account_is_gone_and_a_broken_file_is_a_syntax_error() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home(tmp.path(), "g");
    let path = h.path.join(".muttrc");
    write(&path, b"set folder=imaps://g@imap.example.com/\n");
    let a = account(&h, "folder@1");
    let change = EndpointChange {
        port: Some(1993),
        ..Default::default()
    };
    write(&path, b"# moved away\n");
    assert!(matches!(
        MuttAdapter::new().plan(&a, Role::Incoming, &change),
        Err(AdapterError::AccountGone { .. })
    ));
    write(&path, b"set folder=\"imaps://g@imap.example.com/\n");
    match MuttAdapter::new().plan(&a, Role::Incoming, &change) {
        Err(AdapterError::Syntax { line, column, .. }) => assert_eq!((line, column), (1, 12)),
        other => panic!("{other:?}"),
    }
}
