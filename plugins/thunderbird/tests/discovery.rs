//! Discovery over several homes and profiles: profile roots, profiles.ini and installs.ini,
//! account links, Thunderbird's defaults, unreadable files and secrets.

mod common;

use common::{fixture, home, one_profile, profiles_ini, write};
use mailmend_core::{
    AccountId, AuthMethod, ClientAdapter, ClientKind, Discovery, Endpoint, Location, Protocol,
    Security, Severity,
};
use mailmend_thunderbird::{ThunderbirdAdapter, CONFIG_UNREADABLE, PROFILE_OUTSIDE_HOME};
use std::path::Path;

const WORK_PREFS: &str = r#"// Mozilla User Preferences
user_pref("mail.accountmanager.accounts", "account1,account2");
user_pref("mail.account.account1.server", "server1");
user_pref("mail.account.account1.identities", "id1,id9");
user_pref("mail.account.account2.server", "server2");
user_pref("mail.identity.id1.useremail", "rene.dupont@corp.example");
user_pref("mail.identity.id9.smtpServer", "smtp9");
user_pref("mail.server.server1.type", "imap");
user_pref("mail.server.server1.hostname", "mail.corp.example");
user_pref("mail.server.server1.socketType", 2);
user_pref("mail.server.server1.authMethod", 10);
user_pref("mail.server.server1.userName", "rdupont");
user_pref("mail.server.server2.type", "movemail");
user_pref("mail.server.server2.hostname", "localhost");
user_pref("mail.smtp.defaultserver", "smtp1");
user_pref("mail.smtpserver.smtp1.hostname", "smtp.corp.example");
user_pref("mail.smtpserver.smtp1.try_ssl", 3);
user_pref("mail.smtpserver.smtp1.authMethod", 4);
"#;

fn endpoint(
    protocol: Protocol,
    host: &str,
    port: u16,
    security: Security,
    auth: AuthMethod,
    user: Option<&str>,
) -> Endpoint {
    Endpoint {
        protocol,
        host: host.into(),
        port,
        security,
        auth,
        username: user.map(Into::into),
    }
}

/// rene: ~/.thunderbird with two profiles in profiles.ini, and installs.ini naming one again.
fn rene(base: &Path) -> mailmend_core::Home {
    let h = home(base, "rene");
    let root = h.path.join(".thunderbird");
    write(
        &root.join("profiles.ini"),
        profiles_ini(&["k3j2h1g0.default-release", "w0rk5678.work"]).as_bytes(),
    );
    write(
        &root.join("installs.ini"),
        b"[4F96D1932A9F858E]\r\nDefault=k3j2h1g0.default-release\r\nLocked=1\r\n",
    );
    write(
        &root.join("k3j2h1g0.default-release/prefs.js"),
        &fixture("prefs-tb115.js"),
    );
    write(&root.join("w0rk5678.work/prefs.js"), WORK_PREFS.as_bytes());
    h
}

fn by_key<'a>(d: &'a Discovery, key: &str) -> &'a mailmend_core::Account {
    d.accounts
        .iter()
        .find(|a| a.key == key)
        .unwrap_or_else(|| panic!("no account {key} in {:?}", d.accounts))
}

#[test]
fn accounts_of_two_profiles_map_their_servers_and_defaults() {
    let tmp = tempfile::tempdir().unwrap();
    let h = rene(tmp.path());
    let d = ThunderbirdAdapter.discover(&h);
    assert!(d.findings.is_empty(), "{:?}", d.findings);
    let keys: Vec<&str> = d.accounts.iter().map(|a| a.key.as_str()).collect();
    // Local Folders, feeds, news and movemail are not mail servers to check.
    assert_eq!(
        keys,
        [
            "k3j2h1g0.default-release/account1",
            "k3j2h1g0.default-release/account3",
            "w0rk5678.work/account1"
        ]
    );

    let imap = by_key(&d, "k3j2h1g0.default-release/account1");
    let prefs_path = std::fs::canonicalize(h.path.join(".thunderbird/k3j2h1g0.default-release"))
        .unwrap()
        .join("prefs.js");
    let location = Location::File {
        path: prefs_path.clone(),
    };
    assert_eq!(imap.location, location);
    assert_eq!(
        imap.id,
        AccountId::derive(ClientKind::Thunderbird, &location, &imap.key)
    );
    assert_eq!(imap.client, ClientKind::Thunderbird);
    assert_eq!(imap.os_user, "rene");
    assert_eq!(imap.email.as_deref(), Some("rene@example.com"));
    assert_eq!(
        imap.incoming,
        Some(endpoint(
            Protocol::Imap,
            "imap.example.com",
            993,
            Security::Tls,
            AuthMethod::PasswordCleartext,
            Some("rene@example.com")
        ))
    );
    assert_eq!(
        imap.outgoing,
        Some(endpoint(
            Protocol::Smtp,
            "smtp.example.com",
            587,
            Security::StartTls,
            AuthMethod::PasswordCleartext,
            Some("rene@example.com")
        ))
    );

    // realhostname and realuserName win; isSecure means SSL, so POP3's default port is 995;
    // the identity names no SMTP server, so the default one is used.
    let pop = by_key(&d, "k3j2h1g0.default-release/account3");
    assert_eq!(pop.email.as_deref(), Some("rene.dupont@new-isp.net"));
    assert_eq!(
        pop.incoming,
        Some(endpoint(
            Protocol::Pop3,
            "pop3.new-isp.net",
            995,
            Security::Tls,
            AuthMethod::PasswordCleartext,
            Some("rene.dupont")
        ))
    );
    assert_eq!(
        pop.outgoing,
        Some(endpoint(
            Protocol::Smtp,
            "mail.new-isp.net",
            25,
            Security::None,
            AuthMethod::PasswordCleartext,
            Some("rene.dupont")
        ))
    );

    // Only the first identity counts; STARTTLS IMAP defaults to 143, SSL SMTP to 465.
    let work = by_key(&d, "w0rk5678.work/account1");
    assert_eq!(work.email.as_deref(), Some("rene.dupont@corp.example"));
    assert_eq!(
        work.incoming,
        Some(endpoint(
            Protocol::Imap,
            "mail.corp.example",
            143,
            Security::StartTls,
            AuthMethod::OAuth2,
            Some("rdupont")
        ))
    );
    assert_eq!(
        work.outgoing,
        Some(endpoint(
            Protocol::Smtp,
            "smtp.corp.example",
            465,
            Security::Tls,
            AuthMethod::PasswordEncrypted,
            None
        ))
    );

    // The same configuration gives the same ids on the next run.
    assert_eq!(ThunderbirdAdapter.discover(&h), d);
}

#[test]
fn every_profile_root_is_searched_and_each_home_keeps_its_user() {
    let tmp = tempfile::tempdir().unwrap();
    let rene = rene(tmp.path());
    let anna = home(tmp.path(), "anna");
    let roots = [
        ".mozilla-thunderbird",
        "snap/thunderbird/common/.thunderbird",
        ".var/app/org.mozilla.Thunderbird/.thunderbird",
        "Library/Thunderbird",
        "AppData/Roaming/Thunderbird",
    ];
    let prefs = [
        fixture("prefs-tb115.js"),
        fixture("prefs-tb115-crlf.js"),
        fixture("prefs-tb115-bom.js"),
        WORK_PREFS.as_bytes().to_vec(),
        fixture("prefs-tb115-crlf.js"),
    ];
    for (root, prefs) in roots.iter().zip(&prefs) {
        one_profile(&anna, root, "Profiles/p.default", prefs);
    }
    let d = ThunderbirdAdapter.discover(&anna);
    assert!(d.findings.is_empty(), "{:?}", d.findings);
    assert_eq!(d.accounts.len(), 2 + 2 + 2 + 1 + 2);
    assert!(d.accounts.iter().all(|a| a.os_user == "anna"));
    let paths: std::collections::HashSet<_> = d.accounts.iter().map(|a| &a.location).collect();
    assert_eq!(paths.len(), roots.len());
    let ids: std::collections::HashSet<_> = d.accounts.iter().map(|a| &a.id).collect();
    assert_eq!(ids.len(), d.accounts.len(), "ids must be unique");
    // The CRLF and BOM copies read like the LF original.
    let pop: Vec<_> = d
        .accounts
        .iter()
        .filter(|a| a.key.ends_with("account3"))
        .map(|a| a.incoming.clone())
        .collect();
    assert_eq!(pop.len(), 4);
    assert!(pop.windows(2).all(|w| w[0] == w[1]));

    let rd = ThunderbirdAdapter.discover(&rene);
    assert!(rd.accounts.iter().all(|a| a.os_user == "rene"));
    assert_eq!(rd.accounts.len(), 3);
}

#[cfg(unix)]
#[test]
fn a_profile_listed_twice_or_through_a_symlinked_root_is_read_once() {
    let tmp = tempfile::tempdir().unwrap();
    let h = rene(tmp.path());
    // An old Debian name pointing at the same directory.
    std::os::unix::fs::symlink(
        h.path.join(".thunderbird"),
        h.path.join(".mozilla-thunderbird"),
    )
    .unwrap();
    let d = ThunderbirdAdapter.discover(&h);
    assert_eq!(d.accounts.len(), 3);
}

#[test]
fn a_malformed_prefs_js_is_a_finding_and_other_profiles_still_count() {
    let tmp = tempfile::tempdir().unwrap();
    let h = rene(tmp.path());
    let broken = h
        .path
        .join(".thunderbird/k3j2h1g0.default-release/prefs.js");
    write(&broken, &fixture("prefs-broken.js"));
    let d = ThunderbirdAdapter.discover(&h);
    assert_eq!(d.accounts.len(), 1, "{:?}", d.accounts);
    assert_eq!(d.accounts[0].key, "w0rk5678.work/account1");
    assert_eq!(d.findings.len(), 1);
    let f = &d.findings[0];
    assert_eq!(f.code, CONFIG_UNREADABLE);
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(f.evidence.len(), 1);
    let e = &f.evidence[0];
    assert_eq!(e.probe, "config");
    let canon = std::fs::canonicalize(&broken).unwrap();
    assert_eq!(e.target, format!("{}:5:42", canon.display()));
    assert!(
        e.result.contains("expected ',' after pref name"),
        "{}",
        e.result
    );
    assert!(f.summary.contains("line 5, column 42"), "{}", f.summary);
}

#[test]
fn a_malformed_user_js_keeps_the_whole_profile_out() {
    let tmp = tempfile::tempdir().unwrap();
    let h = rene(tmp.path());
    let user_js = h.path.join(".thunderbird/w0rk5678.work/user.js");
    write(&user_js, b"user_pref(\"mail.server.server1.port\", 993)\n");
    let d = ThunderbirdAdapter.discover(&h);
    assert_eq!(d.accounts.len(), 2);
    assert!(d.accounts.iter().all(|a| !a.key.starts_with("w0rk5678")));
    assert_eq!(d.findings.len(), 1);
    assert_eq!(
        d.findings[0].evidence[0].target,
        format!("{}:2:1", std::fs::canonicalize(&user_js).unwrap().display())
    );
}

#[test]
fn user_js_values_override_prefs_js_in_discovery() {
    let tmp = tempfile::tempdir().unwrap();
    let h = rene(tmp.path());
    write(
        &h.path.join(".thunderbird/k3j2h1g0.default-release/user.js"),
        &fixture("user.js"),
    );
    let d = ThunderbirdAdapter.discover(&h);
    let imap = by_key(&d, "k3j2h1g0.default-release/account1");
    let incoming = imap.incoming.as_ref().unwrap();
    assert_eq!(
        (incoming.port, incoming.security),
        (143, Security::StartTls)
    );
}

#[test]
fn a_profile_outside_the_home_is_reported_and_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home(tmp.path(), "mallory");
    let victim = tmp.path().join("victim/.thunderbird/v.default");
    write(&victim.join("prefs.js"), &fixture("prefs-tb115.js"));
    let ini = format!(
        "[Profile0]\nName=x\nIsRelative=0\nPath={}\nDefault=1\n",
        victim.display()
    );
    write(&h.path.join(".thunderbird/profiles.ini"), ini.as_bytes());
    let d = ThunderbirdAdapter.discover(&h);
    assert!(d.accounts.is_empty());
    assert_eq!(d.findings.len(), 1);
    assert_eq!(d.findings[0].code, PROFILE_OUTSIDE_HOME);
    assert!(ThunderbirdAdapter
        .config_paths(&h)
        .iter()
        .all(|p| !p.starts_with(tmp.path().join("victim"))));
}

#[test]
fn a_home_without_thunderbird_has_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home(tmp.path(), "nobody");
    assert_eq!(ThunderbirdAdapter.discover(&h), Discovery::default());
    assert!(ThunderbirdAdapter.config_paths(&h).is_empty());
}

#[test]
fn config_paths_name_the_ini_files_and_every_profiles_prefs_files() {
    let tmp = tempfile::tempdir().unwrap();
    let h = rene(tmp.path());
    let root = h.path.join(".thunderbird");
    let canon = |p: &str| std::fs::canonicalize(root.join(p)).unwrap();
    let paths = ThunderbirdAdapter.config_paths(&h);
    assert_eq!(
        paths,
        vec![
            root.join("profiles.ini"),
            root.join("installs.ini"),
            canon("k3j2h1g0.default-release").join("prefs.js"),
            canon("k3j2h1g0.default-release").join("user.js"),
            canon("w0rk5678.work").join("prefs.js"),
            canon("w0rk5678.work").join("user.js"),
        ]
    );
}

#[test]
fn a_canary_password_never_appears_in_accounts_or_findings() {
    let canary = "CANARY-s3cr3t-d4e1";
    let tmp = tempfile::tempdir().unwrap();
    let h = rene(tmp.path());
    let profile = h.path.join(".thunderbird/k3j2h1g0.default-release");
    let mut prefs = fixture("prefs-tb115.js");
    prefs.extend_from_slice(
        format!(
            "user_pref(\"mail.server.server1.password\", \"{canary}\");\n\
             user_pref(\"mail.smtpserver.smtp1.Password\", '{canary}');\n\
             user_pref(\"signon.masterPassword.hint\", \"{canary}\");\n"
        )
        .as_bytes(),
    );
    write(&profile.join("prefs.js"), &prefs);
    write(
        &profile.join("user.js"),
        format!("user_pref(\"mail.server.server3.password\", \"{canary}\");\n").as_bytes(),
    );
    // A broken file with a password in it: the finding must not quote it.
    write(
        &h.path.join(".thunderbird/w0rk5678.work/prefs.js"),
        format!(
            "user_pref(\"mail.server.server1.password\", \"{canary}\");\n\
             user_pref(\"mail.server.server2.password\", canaryword);\n"
        )
        .as_bytes(),
    );
    let d = ThunderbirdAdapter.discover(&h);
    assert_eq!(d.accounts.len(), 2);
    assert_eq!(d.findings.len(), 1);
    let debug = format!("{d:?}");
    let json = serde_json::to_string(&d).unwrap();
    for rendered in [&debug, &json] {
        assert!(!rendered.contains(canary), "{rendered}");
        assert!(!rendered.contains("s3cr3t"));
        assert!(!rendered.contains("canaryword"), "{rendered}");
    }
    for a in &d.accounts {
        assert!(!format!("{a:?}").contains(canary));
    }
}
