//! Planning: an `Edit::Registry` that changes exactly the requested values (strings keep their
//! encoding), applied through the registry and read back by discovery; Exchange is never
//! planned; a change already in place plans nothing.

mod common;

use common::{changed_lines, hku, home, utf16_text, Machine};
use mailmend_core::{
    Account, AdapterError, AuthMethod, ClientAdapter, Edit, EndpointChange, Hive, Protocol,
    RegPath, RegValue, RegValueEdit, Registry, RegistryEdit, Role, Security,
};
use mailmend_outlook::accounts::wide_binary;
use mailmend_outlook::{MountedRegistry, OutlookAdapter, RegFileStore, StaticHives};
use std::sync::Arc;

fn account(adapter: &OutlookAdapter, user: &str, email: &str) -> Account {
    adapter
        .discover(&home(user))
        .accounts
        .into_iter()
        .find(|a| a.email.as_deref() == Some(email))
        .unwrap()
}

fn registry_edit(edits: Vec<Edit>) -> RegistryEdit {
    assert_eq!(edits.len(), 1, "{edits:?}");
    match edits.into_iter().next() {
        Some(Edit::Registry(r)) => r,
        other => panic!("not a registry edit: {other:?}"),
    }
}

/// Applies an edit as the executor does: each value must still hold its "before".
fn apply(reg: &dyn Registry, e: &RegistryEdit) {
    for v in &e.values {
        assert_eq!(reg.get(&e.key, &v.name).unwrap(), v.before, "stale before");
        match &v.after {
            Some(x) => reg.set(&e.key, &v.name, x).unwrap(),
            None => reg.delete_value(&e.key, &v.name).unwrap(),
        }
    }
}

fn change(f: impl FnOnce(&mut EndpointChange)) -> EndpointChange {
    let mut c = EndpointChange::default();
    f(&mut c);
    c
}

#[test]
fn a_port_change_is_one_dword_and_one_line() {
    let m = Machine::new();
    let adapter = m.adapter();
    let a = account(&adapter, "alice", "alice@example.com");
    let before = std::fs::read(&m.alice).unwrap();
    let e = registry_edit(
        adapter
            .plan(&a, Role::Incoming, &change(|c| c.port = Some(143)))
            .unwrap(),
    );
    assert_eq!(
        e.key.to_string(),
        match &a.location {
            mailmend_core::Location::Registry { key } => key.clone(),
            other => panic!("{other:?}"),
        }
    );
    assert_eq!(
        e.values,
        [RegValueEdit {
            name: "IMAP Port".into(),
            before: Some(RegValue::Dword(993)),
            after: Some(RegValue::Dword(143)),
        }]
    );
    apply(m.registry.as_ref(), &e);
    let diff = changed_lines(
        &utf16_text(&before),
        &utf16_text(&std::fs::read(&m.alice).unwrap()),
    );
    assert_eq!(diff.len(), 1);
    let again = account(&adapter, "alice", "alice@example.com");
    assert_eq!(again.id, a.id);
    assert_eq!(again.incoming.unwrap().port, 143);
    assert_eq!(again.outgoing, a.outgoing);
}

#[test]
fn a_host_change_stays_a_utf16_binary_string() {
    let m = Machine::new();
    let adapter = m.adapter();
    let a = account(&adapter, "alice", "alice@example.com");
    let e = registry_edit(
        adapter
            .plan(
                &a,
                Role::Outgoing,
                &change(|c| c.host = Some("submission.example.com".into())),
            )
            .unwrap(),
    );
    assert_eq!(e.values.len(), 1);
    assert_eq!(e.values[0].name, "SMTP Server");
    assert_eq!(e.values[0].before, Some(wide_binary("smtp.example.com")));
    assert_eq!(
        e.values[0].after,
        Some(wide_binary("submission.example.com"))
    );
    apply(m.registry.as_ref(), &e);
    let again = account(&adapter, "alice", "alice@example.com");
    assert_eq!(again.outgoing.unwrap().host, "submission.example.com");
}

#[test]
fn a_security_change_without_a_port_value_keeps_the_port() {
    let m = Machine::new();
    let adapter = m.adapter();
    // "IMAP Use SSL" = 3 (Auto) and no "IMAP Port": the default 143 must stay 143 under TLS.
    let a = account(&adapter, "alice", "alice@work.example");
    let e = registry_edit(
        adapter
            .plan(
                &a,
                Role::Incoming,
                &change(|c| c.security = Some(Security::Tls)),
            )
            .unwrap(),
    );
    let mut values = e.values.clone();
    values.sort_by(|x, y| x.name.cmp(&y.name));
    assert_eq!(
        values,
        [
            RegValueEdit {
                name: "IMAP Port".into(),
                before: None,
                after: Some(RegValue::Dword(143)),
            },
            RegValueEdit {
                name: "IMAP Use SSL".into(),
                before: Some(RegValue::Dword(3)),
                after: Some(RegValue::Dword(1)),
            },
        ]
    );
    apply(m.registry.as_ref(), &e);
    let d = adapter.discover(&home("alice"));
    let again = d.accounts.iter().find(|x| x.id == a.id).unwrap();
    let inc = again.incoming.as_ref().unwrap();
    assert_eq!((inc.port, inc.security), (143, Security::Tls));
    // The incoming side is no longer ambiguous; the outgoing still is.
    assert_eq!(d.findings.len(), 1, "{:#?}", d.findings);
    assert_eq!(d.findings[0].role, Some(Role::Outgoing));
}

#[test]
fn smtp_security_goes_where_outlook_keeps_it() {
    let m = Machine::new();
    let adapter = m.adapter();
    // Only "SMTP Use SSL" exists: it gets the new number.
    let net = account(&adapter, "alice", "alice@example.net");
    let e = registry_edit(
        adapter
            .plan(
                &net,
                Role::Outgoing,
                &change(|c| {
                    c.security = Some(Security::StartTls);
                    c.port = Some(587);
                }),
            )
            .unwrap(),
    );
    let mut names: Vec<(&str, Option<&RegValue>)> = e
        .values
        .iter()
        .map(|v| (v.name.as_str(), v.after.as_ref()))
        .collect();
    names.sort_by_key(|(n, _)| *n);
    assert_eq!(
        names,
        [
            ("SMTP Port", Some(&RegValue::Dword(587))),
            ("SMTP Use SSL", Some(&RegValue::Dword(2)))
        ]
    );
    // Office 16 account with "SMTP Secure Connection": only that one.
    let com = account(&adapter, "alice", "alice@example.com");
    let e = registry_edit(
        adapter
            .plan(
                &com,
                Role::Outgoing,
                &change(|c| c.security = Some(Security::Tls)),
            )
            .unwrap(),
    );
    assert_eq!(e.values.len(), 1);
    assert_eq!(e.values[0].name, "SMTP Secure Connection");
    assert_eq!(e.values[0].after, Some(RegValue::Dword(1)));
}

#[test]
fn authentication_changes_map_to_outlooks_flags() {
    let m = Machine::new();
    let adapter = m.adapter();
    let net = account(&adapter, "alice", "alice@example.net");
    let e = registry_edit(
        adapter
            .plan(
                &net,
                Role::Outgoing,
                &change(|c| c.auth = Some(AuthMethod::PasswordCleartext)),
            )
            .unwrap(),
    );
    assert_eq!(
        e.values,
        [RegValueEdit {
            name: "SMTP Use Auth".into(),
            before: Some(RegValue::Dword(0)),
            after: Some(RegValue::Dword(1)),
        }]
    );
    let err = adapter
        .plan(
            &net,
            Role::Incoming,
            &change(|c| c.auth = Some(AuthMethod::OAuth2)),
        )
        .unwrap_err();
    assert!(matches!(err, AdapterError::Unsupported(_)), "{err}");
}

#[test]
fn exchange_accounts_are_listed_but_never_planned() {
    let m = Machine::new();
    let adapter = m.adapter();
    let ex = account(&adapter, "alice", "alice@corp.example.com");
    assert_eq!(ex.incoming.as_ref().unwrap().protocol, Protocol::Exchange);
    let err = adapter
        .plan(&ex, Role::Incoming, &change(|c| c.port = Some(443)))
        .unwrap_err();
    assert!(
        matches!(&err, AdapterError::Unsupported(m) if m.contains("Autodiscover")),
        "{err}"
    );
    let eas = account(&adapter, "bob", "bob@outlook.example");
    assert!(adapter
        .plan(
            &eas,
            Role::Incoming,
            &change(|c| c.host = Some("x.example".into()))
        )
        .is_err());
}

#[test]
fn a_change_already_in_place_plans_nothing() {
    let m = Machine::new();
    let adapter = m.adapter();
    let a = account(&adapter, "alice", "alice@example.com");
    let same = change(|c| {
        c.port = Some(993);
        c.security = Some(Security::Tls);
        c.host = Some("imap.example.com".into());
    });
    assert!(adapter.plan(&a, Role::Incoming, &same).unwrap().is_empty());
}

#[test]
fn a_vanished_account_is_gone() {
    let m = Machine::new();
    let adapter = m.adapter();
    let a = account(&adapter, "bob", "bob@example.org");
    let key = RegPath::parse(match &a.location {
        mailmend_core::Location::Registry { key } => key,
        other => panic!("{other:?}"),
    })
    .unwrap();
    m.registry.delete_value(&key, "IMAP Server").unwrap();
    let err = adapter
        .plan(&a, Role::Incoming, &change(|c| c.port = Some(993)))
        .unwrap_err();
    assert!(matches!(err, AdapterError::AccountGone { .. }), "{err}");
}

#[test]
fn a_reg_sz_server_stays_reg_sz_in_an_ansi_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zoe.reg");
    std::fs::copy(common::fixture("zoe-regedit4-ansi.reg"), &path).unwrap();
    let before = std::fs::read(&path).unwrap();
    let reg = Arc::new(MountedRegistry::new().mount(
        hku(1005),
        Arc::new(RegFileStore::open(&path)),
        RegPath::new(Hive::CurrentUser, ""),
    ));
    let adapter = OutlookAdapter::new(
        reg.clone(),
        Arc::new(StaticHives(vec![("zoe".into(), hku(1005))])),
    );
    let a = account(&adapter, "zoe", "zoe@example.de");
    assert_eq!(
        a.incoming.as_ref().unwrap().username.as_deref(),
        Some("zoë")
    );
    let e = registry_edit(
        adapter
            .plan(
                &a,
                Role::Outgoing,
                &change(|c| c.host = Some("mail.example.de".into())),
            )
            .unwrap(),
    );
    assert_eq!(
        e.values[0].after,
        Some(RegValue::String("mail.example.de".into()))
    );
    apply(reg.as_ref(), &e);
    let after = std::fs::read(&path).unwrap();
    let lines = |b: &[u8]| {
        b.split(|&c| c == b'\n')
            .map(<[u8]>::to_vec)
            .collect::<Vec<_>>()
    };
    let diff: Vec<_> = lines(&before)
        .into_iter()
        .zip(lines(&after))
        .filter(|(x, y)| x != y)
        .collect();
    assert_eq!(diff.len(), 1);
    assert_eq!(diff[0].1, b"\"SMTP Server\"=\"mail.example.de\"\r");
}
