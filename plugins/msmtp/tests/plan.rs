//! Planning endpoint changes as byte-exact edits of the msmtp configuration.

mod common;

use common::{
    account, apply, changed_lines, crlf, file_edits, fixture, home_with, inserted_line, lines,
};
use mailmend_core::{
    AdapterError, AuthMethod, ClientAdapter, EndpointChange, Home, Role, Security,
};
use mailmend_msmtp::{MsmtpAdapter, MsmtpFile};

fn plan(h: &Home, key: &str, change: EndpointChange) -> Vec<mailmend_core::FileEdit> {
    file_edits(
        MsmtpAdapter
            .plan(&account(h, key), Role::Outgoing, &change)
            .unwrap(),
    )
}

fn line_at(bytes: &[u8], i: usize) -> String {
    String::from_utf8(lines(bytes)[i].to_vec()).unwrap()
}

#[test]
fn parsing_and_a_no_op_plan_keep_every_byte() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, bytes) in [fixture("msmtprc"), crlf(&fixture("msmtprc"))]
        .into_iter()
        .enumerate()
    {
        assert_eq!(MsmtpFile::parse(&bytes).unwrap().as_bytes(), bytes);
        let h = home_with(&tmp.path().join(i.to_string()), "rene", &bytes);
        for a in MsmtpAdapter.discover(&h).accounts {
            let ep = a.outgoing.clone().unwrap();
            let same = EndpointChange {
                host: Some(ep.host.to_uppercase()),
                port: Some(ep.port),
                security: Some(ep.security),
                auth: Some(ep.auth.clone()),
            };
            let edits = MsmtpAdapter.plan(&a, Role::Outgoing, &same).unwrap();
            assert!(edits.is_empty(), "{}: {edits:?}", a.key);
        }
    }
}

#[test]
fn a_port_change_rewrites_one_line_and_keeps_crlf() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, bytes) in [fixture("msmtprc"), crlf(&fixture("msmtprc"))]
        .into_iter()
        .enumerate()
    {
        let h = home_with(&tmp.path().join(i.to_string()), "rene", &bytes);
        let edits = plan(
            &h,
            "work",
            EndpointChange {
                port: Some(2587),
                ..Default::default()
            },
        );
        assert_eq!(edits.len(), 1);
        let e = &edits[0];
        assert_eq!(e.before, bytes);
        assert_eq!(changed_lines(&e.before, &e.after), [11]);
        let eol = if i == 0 { "\n" } else { "\r\n" };
        assert_eq!(line_at(&e.after, 11), format!("port           2587{eol}"));
        apply(&edits);
        assert_eq!(account(&h, "work").outgoing.unwrap().port, 2587);
        // `account default : work` copies what work sets itself, so it follows.
        assert_eq!(account(&h, "default").outgoing.unwrap().port, 2587);
        assert_eq!(account(&h, "private").outgoing.unwrap().port, 465);
    }
}

#[test]
fn an_inherited_value_is_overridden_in_the_accounts_own_block_only() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with(tmp.path(), "rene", &fixture("msmtprc"));
    // private-alias inherits host and TLS mode from private, and its port is msmtp's default.
    let edits = plan(
        &h,
        "private-alias",
        EndpointChange {
            port: Some(587),
            security: Some(Security::StartTls),
            ..Default::default()
        },
    );
    let e = &edits[0];
    let before = lines(&e.before);
    let after = lines(&e.after);
    assert_eq!(after.len(), before.len() + 2);
    // Both lines go right after the alias's `from`, aligned like it.
    assert_eq!(
        line_at(&e.after, 26),
        "from           alias@private.example\n"
    );
    assert_eq!(line_at(&e.after, 27), "tls_starttls   on\n");
    assert_eq!(line_at(&e.after, 28), "port           587\n");
    assert_eq!(&after[..27], &before[..27]);
    assert_eq!(&after[29..], &before[27..]);
    apply(&edits);
    let alias = account(&h, "private-alias").outgoing.unwrap();
    assert_eq!((alias.port, alias.security), (587, Security::StartTls));
    let private = account(&h, "private").outgoing.unwrap();
    assert_eq!((private.port, private.security), (465, Security::Tls));
}

#[test]
fn a_value_from_the_defaults_is_overridden_without_touching_the_defaults() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with(tmp.path(), "rene", &fixture("msmtprc"));
    let edits = plan(
        &h,
        "private",
        EndpointChange {
            auth: Some(AuthMethod::PasswordCleartext),
            ..Default::default()
        },
    );
    let (i, text) = inserted_line(&edits[0].before, &edits[0].after);
    // After the block's last command (the password line), before the alias's comment.
    assert_eq!(i, 23);
    assert_eq!(text, "auth           plain\n");
    apply(&edits);
    assert_eq!(
        account(&h, "private").outgoing.unwrap().auth,
        AuthMethod::PasswordCleartext
    );
    // The alias copies what private sets itself, so it follows; a sibling keeps the defaults.
    assert_eq!(
        account(&h, "private-alias").outgoing.unwrap().auth,
        AuthMethod::PasswordCleartext
    );
    assert_eq!(account(&h, "work").outgoing.unwrap().auth, AuthMethod::Any);
}

#[test]
fn a_host_change_keeps_quotes_and_spacing() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with(tmp.path(), "rene", &fixture("msmtprc"));
    let edits = plan(
        &h,
        "private",
        EndpointChange {
            host: Some("smtp.private.example".into()),
            ..Default::default()
        },
    );
    assert_eq!(changed_lines(&edits[0].before, &edits[0].after), [18]);
    assert_eq!(
        line_at(&edits[0].after, 18),
        "host           \"smtp.private.example\"\n"
    );
    let edits = plan(
        &h,
        "legacy",
        EndpointChange {
            host: Some("mx2.legacy.example".into()),
            security: Some(Security::StartTls),
            ..Default::default()
        },
    );
    let e = &edits[0];
    assert_eq!(changed_lines(&e.before, &e.after), [30, 32]);
    assert_eq!(line_at(&e.after, 30), "host mx2.legacy.example\n");
    assert_eq!(line_at(&e.after, 32), "tls on\n");
}

#[test]
fn files_without_a_final_newline_or_account_lines_get_one_clean_line() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with(
        tmp.path(),
        "rene",
        b"host old.example\r\nfrom a@old.example",
    );
    let edits = plan(
        &h,
        "default",
        EndpointChange {
            port: Some(587),
            ..Default::default()
        },
    );
    assert_eq!(
        edits[0].after,
        b"host old.example\r\nfrom a@old.example\r\nport 587".to_vec()
    );
}

#[test]
fn a_security_change_keeps_an_implicit_port() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with(tmp.path(), "rene", &fixture("msmtprc"));
    let edits = plan(
        &h,
        "private",
        EndpointChange {
            security: Some(Security::StartTls),
            ..Default::default()
        },
    );
    let e = &edits[0];
    assert_eq!(lines(&e.after).len(), lines(&e.before).len() + 1);
    assert_eq!(line_at(&e.after, 19), "tls_starttls   on\n");
    assert_eq!(line_at(&e.after, 23), "port           465\n");
    apply(&edits);
    let private = account(&h, "private").outgoing.unwrap();
    assert_eq!((private.port, private.security), (465, Security::StartTls));
}

#[test]
fn a_vanished_account_or_file_and_a_broken_file_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with(tmp.path(), "rene", &fixture("msmtprc"));
    let a = account(&h, "legacy");
    let path = h.path.join(".msmtprc");
    let change = EndpointChange {
        port: Some(587),
        ..Default::default()
    };
    std::fs::write(&path, b"account other\nhost h\n").unwrap();
    assert!(matches!(
        MsmtpAdapter.plan(&a, Role::Outgoing, &change),
        Err(AdapterError::AccountGone { .. })
    ));
    std::fs::write(&path, b"account legacy\nhost h\nport x\n").unwrap();
    match MsmtpAdapter.plan(&a, Role::Outgoing, &change) {
        Err(AdapterError::Syntax { line, column, .. }) => assert_eq!((line, column), (3, 6)),
        other => panic!("{other:?}"),
    }
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        MsmtpAdapter.plan(&a, Role::Outgoing, &change),
        Err(AdapterError::AccountGone { .. })
    ));
}

#[test]
fn an_incoming_change_is_unsupported() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with(tmp.path(), "rene", &fixture("msmtprc"));
    let err = MsmtpAdapter.plan(
        &account(&h, "work"),
        Role::Incoming,
        &EndpointChange::default(),
    );
    assert!(matches!(err, Err(AdapterError::Unsupported(_))));
}
