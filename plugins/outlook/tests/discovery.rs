//! Discovery over a machine of real exports: several users (one loaded through ProfileList,
//! one not loaded), several profiles, Office 16.0, 15.0 and the Windows Messaging Subsystem,
//! IMAP, POP3 and Exchange accounts; stable ids; unreadable stores as findings; and no password
//! value ever read or shown.

mod common;

use common::{hku, home, Machine};
use mailmend_core::{
    Account, AuthMethod, ClientAdapter, Endpoint, Hive, Location, Protocol, RegPath, RegValue,
    Registry, RegistryError, Security,
};
use mailmend_outlook::{
    accounts, MountedRegistry, OutlookAdapter, ProfileListHives, RegFileStore, StaticHives,
    AMBIGUOUS_SECURITY, CONFIG_UNREADABLE,
};
use std::sync::{Arc, Mutex};

fn ep(
    protocol: Protocol,
    host: &str,
    port: u16,
    security: Security,
    auth: AuthMethod,
    user: Option<&str>,
) -> Option<Endpoint> {
    Some(Endpoint {
        protocol,
        host: host.into(),
        port,
        security,
        auth,
        username: user.map(str::to_string),
    })
}

fn by_email<'a>(accounts: &'a [Account], email: &str) -> &'a Account {
    accounts
        .iter()
        .find(|a| a.email.as_deref() == Some(email))
        .unwrap_or_else(|| panic!("no account {email}"))
}

#[test]
fn alice_has_five_accounts_in_three_profiles_of_two_office_versions() {
    let m = Machine::new();
    let d = m.adapter().discover(&home("alice"));
    let emails: Vec<&str> = d
        .accounts
        .iter()
        .filter_map(|a| a.email.as_deref())
        .collect();
    assert_eq!(
        emails,
        [
            "alice@corp.example.com",
            "alice@example.com",
            "alice@example.net",
            "alice@work.example",
            "alice@legacy.example"
        ]
    );
    let exchange = by_email(&d.accounts, "alice@corp.example.com");
    assert_eq!(
        exchange.incoming,
        ep(
            Protocol::Exchange,
            "",
            443,
            Security::Tls,
            AuthMethod::Any,
            None
        )
    );
    assert_eq!(exchange.outgoing, None);

    let imap = by_email(&d.accounts, "alice@example.com");
    assert_eq!(
        imap.incoming,
        ep(
            Protocol::Imap,
            "imap.example.com",
            993,
            Security::Tls,
            AuthMethod::PasswordCleartext,
            Some("alice@example.com")
        )
    );
    assert_eq!(
        imap.outgoing,
        ep(
            Protocol::Smtp,
            "smtp.example.com",
            587,
            Security::StartTls,
            AuthMethod::PasswordCleartext,
            Some("alice@example.com")
        )
    );
    let hive = hku(1001).to_string();
    assert_eq!(
        imap.location,
        Location::Registry {
            key: format!(
                r"{hive}\Software\Microsoft\Office\16.0\Outlook\Profiles\Outlook\9375CFF0413111d3B88A00104B2A6676\00000002"
            )
        }
    );
    assert_eq!(imap.os_user, "alice");

    // No POP3 Port: the default for no encryption; SPA is NTLM; SMTP without auth.
    let pop = by_email(&d.accounts, "alice@example.net");
    assert_eq!(
        pop.incoming,
        ep(
            Protocol::Pop3,
            "pop.example.net",
            110,
            Security::None,
            AuthMethod::Ntlm,
            Some("alice")
        )
    );
    assert_eq!(
        pop.outgoing,
        ep(
            Protocol::Smtp,
            "smtp.example.net",
            25,
            Security::None,
            AuthMethod::None,
            None
        )
    );

    // Office 15.0: "SMTP Use SSL" = 1 without "SMTP Secure Connection"; a separate SMTP login.
    let legacy = by_email(&d.accounts, "alice@legacy.example");
    assert_eq!(
        legacy.outgoing,
        ep(
            Protocol::Smtp,
            "smtp.legacy.example",
            465,
            Security::Tls,
            AuthMethod::PasswordCleartext,
            Some("alice.smtp")
        )
    );
    assert!(legacy
        .key
        .starts_with(r"Software\Microsoft\Office\15.0\Outlook\Profiles\Old\"));
}

#[test]
fn auto_encryption_is_read_as_none_and_reported_as_ambiguous() {
    let m = Machine::new();
    let d = m.adapter().discover(&home("alice"));
    let work = by_email(&d.accounts, "alice@work.example");
    assert_eq!(
        work.incoming,
        ep(
            Protocol::Imap,
            "mail.work.example",
            143,
            Security::None,
            AuthMethod::PasswordCleartext,
            Some("alice")
        )
    );
    assert_eq!(
        work.outgoing,
        ep(
            Protocol::Smtp,
            "mail.work.example",
            587,
            Security::None,
            AuthMethod::Ntlm,
            Some("alice")
        )
    );
    let ambiguous: Vec<_> = d
        .findings
        .iter()
        .filter(|f| f.code == AMBIGUOUS_SECURITY)
        .collect();
    assert_eq!(ambiguous.len(), 2, "{:#?}", d.findings);
    assert!(ambiguous.iter().all(|f| f.account != work.id));
    assert!(ambiguous[1].evidence[0]
        .target
        .ends_with(r"\SMTP Secure Connection"));
    assert_eq!(d.findings.len(), 2);
}

#[test]
fn bob_is_found_through_profile_list_with_exchange_activesync_and_the_old_subsystem() {
    let m = Machine::new();
    let d = m.adapter().discover(&home("bob"));
    assert!(d.findings.is_empty(), "{:#?}", d.findings);
    assert_eq!(d.accounts.len(), 3);
    let imap = by_email(&d.accounts, "bob@example.org");
    assert_eq!(
        imap.incoming,
        ep(
            Protocol::Imap,
            "imap.example.org",
            143,
            Security::StartTls,
            AuthMethod::PasswordCleartext,
            Some("bob")
        )
    );
    let eas = by_email(&d.accounts, "bob@outlook.example");
    assert_eq!(
        eas.incoming,
        ep(
            Protocol::Exchange,
            "eas.outlook.example",
            443,
            Security::Tls,
            AuthMethod::Any,
            None
        )
    );
    // Outlook 2010's profile, without a clsid: the server values tell POP3.
    let old = by_email(&d.accounts, "bob@old.example");
    assert_eq!(
        old.incoming,
        ep(
            Protocol::Pop3,
            "pop.old.example",
            110,
            Security::None,
            AuthMethod::PasswordCleartext,
            Some("bob")
        )
    );
    assert!(old.key.contains("Windows Messaging Subsystem"));
    for a in &d.accounts {
        assert_eq!(a.os_user, "bob");
    }
}

#[test]
fn users_without_a_loaded_hive_have_no_accounts() {
    let m = Machine::new();
    let adapter = m.adapter();
    for user in ["carol", "dave"] {
        let d = adapter.discover(&home(user));
        assert!(
            d.accounts.is_empty() && d.findings.is_empty(),
            "{user}: {d:?}"
        );
    }
}

#[test]
fn ids_are_stable_and_the_same_through_hkcu_and_hkey_users() {
    let m = Machine::new();
    let a = m.adapter().discover(&home("alice"));
    let b = m.adapter().discover(&home("alice"));
    let ids =
        |d: &mailmend_core::Discovery| d.accounts.iter().map(|a| a.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&a), ids(&b));
    let mut sorted = ids(&a);
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), a.accounts.len(), "ids collide");

    // Alice running the agent herself: her hive is HKEY_CURRENT_USER.
    let own = Arc::new(MountedRegistry::new().mount(
        RegPath::new(Hive::CurrentUser, ""),
        Arc::new(RegFileStore::open(&m.alice)),
        RegPath::new(Hive::CurrentUser, ""),
    ));
    let hives = ProfileListHives {
        own_profile: Some("c:/users/Alice/".into()),
        system_drive: "C:".into(),
    };
    let as_alice = OutlookAdapter::new(own, Arc::new(hives)).discover(&home("alice"));
    assert_eq!(ids(&as_alice), ids(&a));
    assert!(
        matches!(&as_alice.accounts[1].location, Location::Registry { key } if key.starts_with("HKEY_CURRENT_USER\\Software"))
    );
}

#[test]
fn a_malformed_export_is_config_unreadable_with_line_and_column() {
    let m = Machine::new();
    let text = common::utf16_text(&std::fs::read(&m.alice).unwrap());
    let broken = text.replacen(
        "\"SMTP Port\"=dword:0000024b",
        "\"SMTP Port\"=dword:0000024b junk",
        1,
    );
    let line = broken[..broken.find(" junk").unwrap()]
        .matches('\n')
        .count()
        + 1;
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(broken.encode_utf16().flat_map(u16::to_le_bytes));
    std::fs::write(&m.alice, &bytes).unwrap();

    let adapter = m.adapter();
    let d = adapter.discover(&home("alice"));
    assert!(d.accounts.is_empty());
    assert_eq!(d.findings.len(), 1, "{:#?}", d.findings);
    let f = &d.findings[0];
    assert_eq!(f.code, CONFIG_UNREADABLE);
    let column = "\"SMTP Port\"=dword:0000024b ".len() + 1;
    assert_eq!(
        f.evidence[0].target,
        format!("{}:{line}:{column}", m.alice.display())
    );
    assert!(
        f.summary.contains(&format!("line {line}, column {column}")),
        "{}",
        f.summary
    );
    // Bob's export is fine and still read.
    assert_eq!(adapter.discover(&home("bob")).accounts.len(), 3);
    // The file was not touched.
    assert_eq!(std::fs::read(&m.alice).unwrap(), bytes);
}

/// A registry that records every value name asked for, and refuses to list values.
struct Recording {
    inner: Arc<dyn Registry>,
    asked: Mutex<Vec<String>>,
}

impl Registry for Recording {
    fn subkeys(&self, key: &RegPath) -> Result<Vec<String>, RegistryError> {
        self.inner.subkeys(key)
    }
    fn values(&self, key: &RegPath) -> Result<Vec<String>, RegistryError> {
        panic!("the adapter listed the values of {key}")
    }
    fn get(&self, key: &RegPath, name: &str) -> Result<Option<RegValue>, RegistryError> {
        self.asked.lock().unwrap().push(name.to_string());
        self.inner.get(key, name)
    }
    fn set(&self, key: &RegPath, name: &str, value: &RegValue) -> Result<(), RegistryError> {
        self.inner.set(key, name, value)
    }
    fn delete_value(&self, key: &RegPath, name: &str) -> Result<(), RegistryError> {
        self.inner.delete_value(key, name)
    }
}

#[test]
fn password_canaries_are_never_read_shown_or_serialised() {
    let m = Machine::new();
    let rec = Arc::new(Recording {
        inner: m.registry.clone(),
        asked: Mutex::new(Vec::new()),
    });
    let hives = ProfileListHives {
        own_profile: None,
        system_drive: "C:".into(),
    };
    let adapter = OutlookAdapter::new(rec.clone(), Arc::new(hives));
    let mut shown = String::new();
    for user in ["alice", "bob"] {
        let d = adapter.discover(&home(user));
        shown.push_str(&format!("{d:?}{d:#?}"));
        shown.push_str(&serde_json::to_string(&d.accounts).unwrap());
        shown.push_str(&serde_json::to_string(&d.findings).unwrap());
        for a in &d.accounts {
            for role in [mailmend_core::Role::Incoming, mailmend_core::Role::Outgoing] {
                let change = mailmend_core::EndpointChange {
                    port: Some(2525),
                    ..Default::default()
                };
                match adapter.plan(a, role, &change) {
                    Ok(edits) => {
                        shown.push_str(&format!("{edits:?}"));
                        shown.push_str(&serde_json::to_string(&edits).unwrap());
                    }
                    Err(e) => shown.push_str(&format!("{e:?}{e}")),
                }
            }
        }
    }
    shown.push_str(&format!("{adapter:?}"));
    let canary_hex: String = "s3cr3t"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .map(|b| format!("{b:02x}"))
        .collect();
    for needle in ["s3cr3t", canary_hex.as_str(), "d08c9ddf", "208, 140, 157"] {
        assert!(!shown.contains(needle), "{needle} shown");
    }
    let asked = rec.asked.lock().unwrap();
    assert!(!asked.is_empty());
    assert!(
        asked.iter().all(|n| !n.to_lowercase().contains("password")),
        "a password value was read"
    );
    // The canaries are really in the fixtures, so the test can fail.
    let raw = common::utf16_text(&std::fs::read(&m.alice).unwrap());
    assert!(raw.contains("\"IMAP Password\"=hex:01,00,00,00,d0,8c,9d,df"));
}

/// "IMAP Use SSL" and friends: 0 none, 1 SSL/TLS, 2 STARTTLS, 3 Auto (read as none, flagged),
/// anything else not guessed; "SMTP Secure Connection" wins over "SMTP Use SSL".
#[test]
fn outlook_security_dword_reading() {
    let base = |extra: &[(&str, RegValue)]| {
        let mut v = accounts::Values(vec![
            (
                "IMAP Server".into(),
                accounts::wide_binary("imap.example.com"),
            ),
            (
                "SMTP Server".into(),
                accounts::wide_binary("smtp.example.com"),
            ),
        ]);
        for (n, x) in extra {
            v.put(n, Some(x.clone()));
        }
        v
    };
    let d = RegValue::Dword;
    for (n, want, port, auto) in [
        (0, Some(Security::None), 143, false),
        (1, Some(Security::Tls), 993, false),
        (2, Some(Security::StartTls), 143, false),
        (3, Some(Security::None), 143, true),
        (4, None, 0, false),
    ] {
        let side = accounts::side(&base(&[("IMAP Use SSL", d(n))]), "IMAP");
        assert_eq!(
            side.endpoint.as_ref().map(|e| e.security),
            want,
            "IMAP Use SSL = {n}"
        );
        if let Some(e) = &side.endpoint {
            assert_eq!(e.port, port);
        }
        assert_eq!(
            side.notes
                .iter()
                .any(|x| matches!(x, accounts::Note::AutoSecurity(_))),
            auto
        );
    }
    let smtp = |extra: &[(&str, RegValue)]| accounts::side(&base(extra), "SMTP").endpoint.unwrap();
    assert_eq!(smtp(&[]).security, Security::None);
    assert_eq!(smtp(&[]).port, 25);
    assert_eq!(smtp(&[("SMTP Use SSL", d(1))]).port, 465);
    assert_eq!(
        smtp(&[("SMTP Use SSL", d(1)), ("SMTP Secure Connection", d(2))]).security,
        Security::StartTls
    );
    assert_eq!(
        smtp(&[("SMTP Use SSL", d(0)), ("SMTP Secure Connection", d(1))]).security,
        Security::Tls
    );
    assert_eq!(
        smtp(&[("SMTP Secure Connection", d(2)), ("SMTP Port", d(587))]).port,
        587
    );
}

#[test]
fn a_static_map_finds_hives_too() {
    let m = Machine::new();
    let hives = StaticHives(vec![("Alice".into(), hku(1001))]);
    let a = OutlookAdapter::new(m.registry.clone(), Arc::new(hives));
    assert_eq!(a.discover(&home("alice")).accounts.len(), 5);
    assert!(a.discover(&home("bob")).accounts.is_empty());
}
