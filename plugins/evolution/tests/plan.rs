//! Planning endpoint changes as byte-exact edits of the source file holding the server.

mod common;

use common::*;
use mailmend_core::{
    AdapterError, AuthMethod, ClientAdapter, EndpointChange, Home, Role, Security,
};
use mailmend_evolution::KeyFile;

fn plan(h: &Home, key: &str, role: Role, change: EndpointChange) -> Vec<mailmend_core::FileEdit> {
    file_edits(adapter().plan(&account(h, key), role, &change).unwrap())
}

/// `bytes` without its line `i`.
fn without(bytes: &[u8], i: usize) -> Vec<u8> {
    let mut l = lines(bytes);
    l.remove(i);
    l.concat()
}

fn line_at(bytes: &[u8], i: usize) -> String {
    String::from_utf8(lines(bytes)[i].to_vec()).unwrap()
}

#[test]
fn parsing_and_a_no_op_plan_keep_every_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with_fixtures(tmp.path(), "rene");
    for e in std::fs::read_dir(fixtures_dir()).unwrap() {
        let bytes = std::fs::read(e.unwrap().path()).unwrap();
        assert_eq!(KeyFile::parse(&bytes).unwrap().as_bytes(), bytes);
    }
    for a in adapter().discover(&h).accounts {
        for role in [Role::Incoming, Role::Outgoing] {
            let Some(ep) = a.endpoint(role).cloned() else {
                continue;
            };
            let same = EndpointChange {
                host: Some(ep.host.to_uppercase()),
                port: Some(ep.port),
                security: Some(ep.security),
                auth: Some(ep.auth.clone()),
            };
            let edits = adapter().plan(&a, role, &same).unwrap();
            assert!(edits.is_empty(), "{} {role}: {edits:?}", a.key);
        }
    }
}

#[test]
fn an_incoming_port_change_rewrites_one_line_of_the_account_source() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with_fixtures(tmp.path(), "rene");
    let edits = plan(
        &h,
        WORK,
        Role::Incoming,
        EndpointChange {
            port: Some(1143),
            ..Default::default()
        },
    );
    assert_eq!(edits.len(), 1);
    let e = &edits[0];
    assert_eq!(e.path, source_path(&h, WORK));
    assert_eq!(changed_lines(&e.before, &e.after), [24]);
    assert_eq!(line_at(&e.after, 24), "Port=1143\n");
    apply(&edits);
    let a = account(&h, WORK);
    assert_eq!(a.incoming.unwrap().port, 1143);
    assert_eq!(a.outgoing.unwrap().port, 587);
}

#[test]
fn an_outgoing_change_edits_only_the_transport_source() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with_fixtures(tmp.path(), "rene");
    let edits = plan(
        &h,
        WORK,
        Role::Outgoing,
        EndpointChange {
            host: Some("mail.corp.example".into()),
            security: Some(Security::Tls),
            port: Some(465),
            ..Default::default()
        },
    );
    assert_eq!(edits.len(), 1);
    let e = &edits[0];
    assert_eq!(e.path, source_path(&h, WORK_TRANSPORT));
    // The spaces around `=` stay; only the values change.
    assert_eq!(changed_lines(&e.before, &e.after), [9, 11, 18]);
    assert_eq!(line_at(&e.after, 9), "Host = mail.corp.example\n");
    assert_eq!(line_at(&e.after, 11), "Port=465\n");
    assert_eq!(line_at(&e.after, 18), "Method=ssl-on-alternate-port\n");
    apply(&edits);
    let out = account(&h, WORK).outgoing.unwrap();
    assert_eq!(
        (out.host.as_str(), out.port, out.security),
        ("mail.corp.example", 465, Security::Tls)
    );
}

#[test]
fn a_missing_key_is_one_inserted_line_in_its_group_and_crlf_stays() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with_fixtures(tmp.path(), "rene");
    // The POP3 account (a CRLF file) has no Port: its TLS default is 995.
    let edits = plan(
        &h,
        POP,
        Role::Incoming,
        EndpointChange {
            port: Some(1995),
            ..Default::default()
        },
    );
    let e = &edits[0];
    let (i, text) = inserted_line(&e.before, &e.after);
    assert_eq!((i, text.as_str()), (16, "Port=1995\r\n"));
    assert_eq!(line_at(&e.after, 15), "User=rene\r\n");
    // A security change alone keeps the implicit port.
    let edits = plan(
        &h,
        POP,
        Role::Incoming,
        EndpointChange {
            security: Some(Security::StartTls),
            ..Default::default()
        },
    );
    let e = &edits[0];
    assert_eq!(line_at(&e.after, 16), "Port=995\r\n");
    assert_eq!(changed_lines(&e.before, &without(&e.after, 16)), [18]);
    assert_eq!(
        line_at(&e.after, 19),
        "Method=starttls-on-standard-port\r\n"
    );
    apply(&edits);
    let a = account(&h, POP).incoming.unwrap();
    assert_eq!((a.port, a.security), (995, Security::StartTls));
}

#[test]
fn auth_changes_write_evolutions_mechanism_names() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with_fixtures(tmp.path(), "rene");
    let edits = plan(
        &h,
        POP,
        Role::Outgoing,
        EndpointChange {
            auth: Some(AuthMethod::PasswordCleartext),
            ..Default::default()
        },
    );
    assert_eq!(edits[0].path, source_path(&h, POP_TRANSPORT));
    assert_eq!(changed_lines(&edits[0].before, &edits[0].after), [10]);
    assert_eq!(line_at(&edits[0].after, 10), "Method=PLAIN\n");
    let edits = plan(
        &h,
        WORK,
        Role::Incoming,
        EndpointChange {
            auth: Some(AuthMethod::Gssapi),
            ..Default::default()
        },
    );
    assert_eq!(line_at(&edits[0].after, 23), "Method=GSSAPI\n");
    let no_auth = EndpointChange {
        auth: Some(AuthMethod::None),
        ..Default::default()
    };
    assert!(matches!(
        adapter().plan(&account(&h, WORK), Role::Incoming, &no_auth),
        Err(AdapterError::Unsupported(_))
    ));
}

#[test]
fn vanished_accounts_broken_links_and_broken_files_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with_fixtures(tmp.path(), "rene");
    let work = account(&h, WORK);
    let change = EndpointChange {
        port: Some(2525),
        ..Default::default()
    };
    // The identity names a transport outside the directory.
    let identity = String::from_utf8(fixture(WORK_IDENTITY))
        .unwrap()
        .replace(WORK_TRANSPORT, "../../../../etc/passwd");
    write(
        &sources(&h).join(format!("{WORK_IDENTITY}.source")),
        identity.as_bytes(),
    );
    assert!(matches!(
        adapter().plan(&work, Role::Outgoing, &change),
        Err(AdapterError::Unsupported(_))
    ));
    let path = source_path(&h, WORK);
    std::fs::write(&path, b"[Mail Account]\nBackendName=imapx\nbroken line\n").unwrap();
    match adapter().plan(&work, Role::Incoming, &change) {
        Err(AdapterError::Syntax { line, column, .. }) => assert_eq!((line, column), (3, 1)),
        other => panic!("{other:?}"),
    }
    std::fs::write(
        &path,
        b"[Data Source]\nDisplayName=not an account any more\n",
    )
    .unwrap();
    assert!(matches!(
        adapter().plan(&work, Role::Incoming, &change),
        Err(AdapterError::AccountGone { .. })
    ));
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        adapter().plan(&work, Role::Incoming, &change),
        Err(AdapterError::AccountGone { .. })
    ));
}

#[cfg(unix)]
#[test]
fn a_transport_linked_outside_the_sources_directory_is_not_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with_fixtures(tmp.path(), "rene");
    let work = account(&h, WORK);
    let transport = sources(&h).join(format!("{WORK_TRANSPORT}.source"));
    let elsewhere = h.path.join("transport-copy.source");
    std::fs::rename(&transport, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &transport).unwrap();
    let change = EndpointChange {
        port: Some(2525),
        ..Default::default()
    };
    assert!(matches!(
        adapter().plan(&work, Role::Outgoing, &change),
        Err(AdapterError::Unsupported(_))
    ));
}
