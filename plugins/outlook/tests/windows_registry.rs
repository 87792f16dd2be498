//! The adapter on the real Windows registry (run under Wine on Linux): Outlook-like values
//! written with REG_BINARY and REG_DWORD under a scratch key of HKEY_CURRENT_USER, discovered,
//! planned, applied through `WindowsRegistry`, read back, and removed.
#![cfg(windows)]

use mailmend_core::{
    AuthMethod, ClientAdapter, Edit, EndpointChange, Hive, Home, Protocol, RegPath, RegValue,
    Registry, Role, Security,
};
use mailmend_outlook::accounts::{wide_binary, ACCOUNT_MANAGER, CLSID_IMAP};
use mailmend_outlook::{
    HiveResolver, OutlookAdapter, ProcessTable, ProfileListHives, StaticHives, WindowsProcesses,
    WindowsRegistry,
};
use std::sync::Arc;

/// A scratch key under HKCU\Software, removed with everything below it when dropped.
struct Scratch(String);

impl Scratch {
    fn new() -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        Scratch(format!(
            r"Software\mailmend-test-{}-{nanos:08x}",
            std::process::id()
        ))
    }

    fn root(&self) -> RegPath {
        RegPath::new(Hive::CurrentUser, &self.0)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = windows_registry::CURRENT_USER.remove_tree(&self.0);
    }
}

fn home() -> Home {
    Home {
        user: "tester".into(),
        path: r"C:\users\tester".into(),
        uid: None,
        gid: None,
    }
}

#[test]
fn an_outlook_account_in_the_real_registry_is_found_planned_applied_and_read_back() {
    let scratch = Scratch::new();
    let reg = WindowsRegistry;
    let key = scratch.root().join(&format!(
        r"Software\Microsoft\Office\16.0\Outlook\Profiles\Outlook\{ACCOUNT_MANAGER}\00000001"
    ));
    let canary = RegValue::Binary(b"\x01\0\0\0s3cr3t-canary".to_vec());
    for (name, value) in [
        ("clsid", RegValue::String(CLSID_IMAP.into())),
        ("Account Name", wide_binary("tester@example.com")),
        ("Email", wide_binary("tester@example.com")),
        ("IMAP Server", wide_binary("imap.example.com")),
        ("IMAP User", wide_binary("tester")),
        ("IMAP Port", RegValue::Dword(143)),
        ("IMAP Use SSL", RegValue::Dword(2)),
        ("IMAP Password", canary.clone()),
        ("SMTP Server", wide_binary("smtp.example.com")),
        ("SMTP Port", RegValue::Dword(587)),
        ("SMTP Secure Connection", RegValue::Dword(2)),
        ("SMTP Use Auth", RegValue::Dword(1)),
    ] {
        reg.set(&key, name, &value).unwrap();
    }
    // What was written is what the registry holds, type and bytes.
    assert_eq!(
        reg.get(&key, "imap server").unwrap(),
        Some(wide_binary("imap.example.com"))
    );
    assert_eq!(
        reg.get(&key, "IMAP Port").unwrap(),
        Some(RegValue::Dword(143))
    );
    assert_eq!(reg.get(&key, "IMAP Password").unwrap(), Some(canary));
    assert_eq!(reg.get(&key, "Nothing").unwrap(), None);
    assert_eq!(reg.get(&key.join("missing"), "x").unwrap(), None);
    let names = reg.values(&key).unwrap();
    assert_eq!(names.len(), 12, "{names:?}");
    assert!(reg
        .subkeys(&scratch.root().join("missing"))
        .unwrap_err()
        .is_not_found());

    let hives = StaticHives(vec![("tester".into(), scratch.root())]);
    let adapter = OutlookAdapter::new(Arc::new(WindowsRegistry), Arc::new(hives));
    let d = adapter.discover(&home());
    assert!(d.findings.is_empty(), "{:?}", d.findings);
    assert_eq!(d.accounts.len(), 1);
    let a = &d.accounts[0];
    let inc = a.incoming.clone().unwrap();
    assert_eq!(
        (
            inc.protocol,
            inc.host.as_str(),
            inc.port,
            inc.security,
            inc.auth.clone()
        ),
        (
            Protocol::Imap,
            "imap.example.com",
            143,
            Security::StartTls,
            AuthMethod::PasswordCleartext
        )
    );
    assert!(!format!("{d:?}").contains("s3cr3t"));

    let change = EndpointChange {
        port: Some(993),
        security: Some(Security::Tls),
        ..Default::default()
    };
    let edits = adapter.plan(a, Role::Incoming, &change).unwrap();
    let [Edit::Registry(e)] = edits.as_slice() else {
        panic!("{edits:?}")
    };
    assert_eq!(e.key, key);
    for v in &e.values {
        assert_eq!(reg.get(&e.key, &v.name).unwrap(), v.before);
        match &v.after {
            Some(x) => reg.set(&e.key, &v.name, x).unwrap(),
            None => reg.delete_value(&e.key, &v.name).unwrap(),
        }
    }
    assert_eq!(
        reg.get(&key, "IMAP Port").unwrap(),
        Some(RegValue::Dword(993))
    );
    assert_eq!(
        reg.get(&key, "IMAP Use SSL").unwrap(),
        Some(RegValue::Dword(1))
    );
    let again = adapter.discover(&home()).accounts.remove(0);
    assert_eq!(again.id, a.id);
    let inc = again.incoming.clone().unwrap();
    assert_eq!((inc.port, inc.security), (993, Security::Tls));
    assert_eq!(again.outgoing, a.outgoing);
    // Nothing more to do once it is in place.
    assert!(adapter
        .plan(&again, Role::Incoming, &change)
        .unwrap()
        .is_empty());

    reg.delete_value(&key, "SMTP Use Auth").unwrap();
    reg.delete_value(&key, "SMTP Use Auth").unwrap();
    assert_eq!(reg.get(&key, "SMTP Use Auth").unwrap(), None);
}

#[test]
fn the_agents_own_profile_is_hkey_current_user() {
    let hives = ProfileListHives::from_env();
    let own = hives.own_profile.clone().expect("USERPROFILE is set");
    let h = Home {
        user: "me".into(),
        path: own,
        uid: None,
        gid: None,
    };
    assert_eq!(
        hives.hive_root(&h, &WindowsRegistry),
        Some(RegPath::new(Hive::CurrentUser, ""))
    );
    let nobody = Home {
        path: r"C:\Users\nobody-mailmend".into(),
        ..h
    };
    assert_eq!(hives.hive_root(&nobody, &WindowsRegistry), None);
}

#[test]
fn the_windows_process_table_lists_this_test() {
    let me = std::process::id();
    let ps = WindowsProcesses.processes();
    let mine = ps
        .iter()
        .find(|p| p.pid == me)
        .expect("this process is listed");
    assert!(
        mine.name.to_ascii_lowercase().ends_with(".exe"),
        "{}",
        mine.name
    );
}
