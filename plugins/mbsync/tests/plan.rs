//! Planning endpoint changes as byte-exact edits of the mbsync configuration.

mod common;

use common::{
    account, adapter, adapter_for, apply, changed_lines, crlf, file_edits, fixture, home_with,
    inserted_line, lines, ISYNC_1_5,
};
use mailmend_core::{
    AdapterError, AuthMethod, ClientAdapter, EndpointChange, Home, Role, Security,
};
use mailmend_mbsync::{MbsyncAdapter, MbsyncFile};

fn plan_with(
    a: &MbsyncAdapter,
    h: &Home,
    key: &str,
    change: EndpointChange,
) -> Vec<mailmend_core::FileEdit> {
    let acc = a
        .discover(h)
        .accounts
        .into_iter()
        .find(|x| x.key == key)
        .unwrap();
    file_edits(a.plan(&acc, Role::Incoming, &change).unwrap())
}

fn plan(h: &Home, key: &str, change: EndpointChange) -> Vec<mailmend_core::FileEdit> {
    plan_with(&adapter(), h, key, change)
}

fn line_at(bytes: &[u8], i: usize) -> String {
    String::from_utf8(lines(bytes)[i].to_vec()).unwrap()
}

#[test]
fn parsing_and_a_no_op_plan_keep_every_byte() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, bytes) in [fixture("mbsyncrc"), crlf(&fixture("mbsyncrc"))]
        .into_iter()
        .enumerate()
    {
        assert_eq!(MbsyncFile::parse(&bytes).unwrap().as_bytes(), bytes);
        let h = home_with(&tmp.path().join(i.to_string()), "rene", &bytes);
        for a in adapter().discover(&h).accounts {
            let ep = a.incoming.clone().unwrap();
            let same = EndpointChange {
                host: Some(ep.host.to_uppercase()),
                port: Some(ep.port),
                security: Some(ep.security),
                auth: Some(ep.auth.clone()),
            };
            let edits = adapter().plan(&a, Role::Incoming, &same).unwrap();
            assert!(edits.is_empty(), "{}: {edits:?}", a.key);
        }
    }
}

#[test]
fn a_port_change_rewrites_one_line_and_keeps_crlf_quotes_and_comments() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, bytes) in [fixture("mbsyncrc"), crlf(&fixture("mbsyncrc"))]
        .into_iter()
        .enumerate()
    {
        let h = home_with(&tmp.path().join(i.to_string()), "rene", &bytes);
        let eol = if i == 0 { "\n" } else { "\r\n" };
        let edits = plan(
            &h,
            "private",
            EndpointChange {
                port: Some(1993),
                host: Some("imap.private.example".into()),
                ..Default::default()
            },
        );
        let e = &edits[0];
        assert_eq!(e.before, bytes);
        assert_eq!(changed_lines(&e.before, &e.after), [29, 30]);
        assert_eq!(
            line_at(&e.after, 29),
            format!(
                "Host          \"imap.private.example\"   # quoted, with a trailing comment{eol}"
            )
        );
        assert_eq!(line_at(&e.after, 30), format!("Port          1993{eol}"));
        apply(&edits);
        let a = account(&h, "private").incoming.unwrap();
        assert_eq!((a.host.as_str(), a.port), ("imap.private.example", 1993));
    }
}

#[test]
fn the_security_keyword_in_use_is_rewritten_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with(tmp.path(), "rene", &fixture("mbsyncrc"));
    let edits = plan(
        &h,
        "work",
        EndpointChange {
            security: Some(Security::Tls),
            port: Some(993),
            ..Default::default()
        },
    );
    assert_eq!(changed_lines(&edits[0].before, &edits[0].after), [10]);
    assert_eq!(line_at(&edits[0].after, 10), "SSLType IMAPS\n");
    // A 1.5 file keeps its TLSType, whatever is installed.
    let text = b"IMAPAccount a\nHost h\nTLSType STARTTLS\n";
    let h = home_with(tmp.path(), "ann", text);
    let edits = plan(
        &h,
        "a",
        EndpointChange {
            security: Some(Security::Tls),
            port: Some(993),
            ..Default::default()
        },
    );
    assert_eq!(edits[0].after, b"IMAPAccount a\nHost h\nTLSType IMAPS\n");
}

#[test]
fn a_section_without_a_keyword_gets_the_installed_isyncs_keyword() {
    let tmp = tempfile::tempdir().unwrap();
    let text = b"IMAPAccount a\nHost h\nUser u\n\nMaildirStore l\nPath ~/m/\n";
    let change = EndpointChange {
        security: Some(Security::Tls),
        port: Some(993),
        ..Default::default()
    };
    let h = home_with(tmp.path(), "rene", text);
    let (i, line) = inserted_line(text, &plan(&h, "a", change.clone())[0].after);
    assert_eq!((i, line.as_str()), (3, "SSLType IMAPS\n"));
    let (_, line) = inserted_line(
        text,
        &plan_with(&adapter_for(ISYNC_1_5), &h, "a", change)[0].after,
    );
    assert_eq!(line, "TLSType IMAPS\n");
}

#[test]
fn deprecated_options_and_url_prefixes_are_kept_consistent() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with(tmp.path(), "rene", &fixture("mbsyncrc"));
    let edits = plan(
        &h,
        "legacy",
        EndpointChange {
            security: Some(Security::StartTls),
            port: Some(143),
            ..Default::default()
        },
    );
    assert_eq!(changed_lines(&edits[0].before, &edits[0].after), [41]);
    assert_eq!(line_at(&edits[0].after, 41), "UseIMAPS no\n");
    let edits = plan(
        &h,
        "store:inline",
        EndpointChange {
            security: Some(Security::StartTls),
            ..Default::default()
        },
    );
    let e = &edits[0];
    assert_eq!(lines(&e.after).len(), lines(&e.before).len() + 1);
    assert_eq!(line_at(&e.after, 46), "Host imap.inline.example\n");
    assert_eq!(line_at(&e.after, 49), "Port 993\n");
    apply(&edits);
    let a = account(&h, "store:inline").incoming.unwrap();
    assert_eq!((a.port, a.security), (993, Security::StartTls));
}

#[test]
fn an_auth_change_writes_auth_mechs() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with(tmp.path(), "rene", &fixture("mbsyncrc"));
    let edits = plan(
        &h,
        "work",
        EndpointChange {
            auth: Some(AuthMethod::Gssapi),
            ..Default::default()
        },
    );
    assert_eq!(changed_lines(&edits[0].before, &edits[0].after), [11]);
    assert_eq!(line_at(&edits[0].after, 11), "AuthMechs GSSAPI\n");
    let edits = plan(
        &h,
        "private",
        EndpointChange {
            auth: Some(AuthMethod::PasswordCleartext),
            ..Default::default()
        },
    );
    let (i, line) = inserted_line(&edits[0].before, &edits[0].after);
    assert_eq!((i, line.as_str()), (35, "AuthMechs     PLAIN LOGIN\n"));
}

#[test]
fn other_sections_keep_their_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with(tmp.path(), "rene", &fixture("mbsyncrc"));
    let before: Vec<_> = adapter().discover(&h).accounts;
    let edits = plan(
        &h,
        "private",
        EndpointChange {
            security: Some(Security::StartTls),
            port: Some(143),
            ..Default::default()
        },
    );
    apply(&edits);
    for a in adapter().discover(&h).accounts {
        if a.key != "private" {
            let old = before.iter().find(|b| b.key == a.key).unwrap();
            assert_eq!(a.incoming, old.incoming, "{}", a.key);
        }
    }
}

#[test]
fn a_vanished_server_a_broken_file_and_impossible_changes_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with(tmp.path(), "rene", &fixture("mbsyncrc"));
    let a = account(&h, "work");
    let path = h.path.join(".mbsyncrc");
    let change = EndpointChange {
        port: Some(993),
        ..Default::default()
    };
    assert!(matches!(
        adapter().plan(&a, Role::Outgoing, &change),
        Err(AdapterError::Unsupported(_))
    ));
    let no_auth = EndpointChange {
        auth: Some(AuthMethod::None),
        ..Default::default()
    };
    assert!(matches!(
        adapter().plan(&a, Role::Incoming, &no_auth),
        Err(AdapterError::Unsupported(_))
    ));
    std::fs::write(&path, b"IMAPAccount other\nHost h\n").unwrap();
    assert!(matches!(
        adapter().plan(&a, Role::Incoming, &change),
        Err(AdapterError::AccountGone { .. })
    ));
    std::fs::write(&path, b"IMAPAccount work\nHost h\nPort x\n").unwrap();
    match adapter().plan(&a, Role::Incoming, &change) {
        Err(AdapterError::Syntax { line, column, .. }) => assert_eq!((line, column), (3, 6)),
        other => panic!("{other:?}"),
    }
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        adapter().plan(&a, Role::Incoming, &change),
        Err(AdapterError::AccountGone { .. })
    ));
}
