//! Discovery over several homes: accounts linked across source files, skipped sources,
//! unreadable files, links that lead nowhere, and secrets.

// Some imports serve only the unix-only tests (symlinks, owners by uid).
#![cfg_attr(not(unix), allow(unused_imports))]

mod common;

use common::*;
use mailmend_core::{
    AccountId, AuthMethod, ClientAdapter, ClientKind, Discovery, Endpoint, Location, Protocol,
    Security, Severity,
};
use mailmend_evolution::{CONFIG_OUTSIDE_HOME, CONFIG_UNREADABLE};

fn ep(
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

fn by<'a>(d: &'a Discovery, key: &str) -> &'a mailmend_core::Account {
    d.accounts
        .iter()
        .find(|a| a.key == key)
        .unwrap_or_else(|| panic!("no {key} in {:?}", d.accounts))
}

#[test]
fn linked_sources_of_two_homes_make_whole_accounts() {
    let tmp = tempfile::tempdir().unwrap();
    let rene = home_with_fixtures(tmp.path(), "rene");
    let ann = home(tmp.path(), "ann");
    write(
        &sources(&ann).join("ann.source"),
        b"[Mail Account]\nBackendName=imapx\n\n[Authentication]\nHost=imap.ann.example\nUser=ann\n",
    );

    let d = adapter().discover(&rene);
    assert!(d.findings.is_empty(), "{:?}", d.findings);
    let keys: Vec<&str> = d.accounts.iter().map(|a| a.key.as_str()).collect();
    // Local folders, the disabled account, the collection and the calendar are no mail servers.
    assert_eq!(keys, [WORK, POP, GOOGLE]);

    let work = by(&d, WORK);
    let location = Location::File {
        path: source_path(&rene, WORK),
    };
    assert_eq!(work.location, location);
    assert_eq!(
        work.id,
        AccountId::derive(ClientKind::Evolution, &location, WORK)
    );
    assert_eq!(
        (work.client, work.os_user.as_str()),
        (ClientKind::Evolution, "rene")
    );
    assert_eq!(work.email.as_deref(), Some("rene.dupont@corp.example"));
    assert_eq!(
        work.incoming,
        Some(ep(
            Protocol::Imap,
            "imap.corp.example",
            143,
            Security::StartTls,
            AuthMethod::PasswordCleartext,
            Some("rdupont")
        ))
    );
    assert_eq!(
        work.outgoing,
        Some(ep(
            Protocol::Smtp,
            "smtp.corp.example",
            587,
            Security::StartTls,
            AuthMethod::PasswordCleartext,
            Some("rdupont")
        ))
    );

    // POP3 over TLS without a port: 995; SMTP over TLS without a port: 465; an empty method
    // is the password login incoming and no authentication outgoing.
    let pop = by(&d, POP);
    assert_eq!(pop.email.as_deref(), Some("rene@private.example"));
    assert_eq!(
        pop.incoming,
        Some(ep(
            Protocol::Pop3,
            "pop.private.example",
            995,
            Security::Tls,
            AuthMethod::PasswordCleartext,
            Some("rene")
        ))
    );
    assert_eq!(
        pop.outgoing,
        Some(ep(
            Protocol::Smtp,
            "smtp.private.example",
            465,
            Security::Tls,
            AuthMethod::None,
            Some("rene")
        ))
    );
    let google = by(&d, GOOGLE);
    assert_eq!(google.incoming.as_ref().unwrap().auth, AuthMethod::OAuth2);
    assert_eq!(google.outgoing.as_ref().unwrap().port, 465);

    // A source without [Security] is plaintext, and IMAP's default port is then 143.
    let d = adapter().discover(&ann);
    assert_eq!(d.accounts.len(), 1);
    assert_eq!(d.accounts[0].os_user, "ann");
    assert_eq!(
        (d.accounts[0].email.clone(), d.accounts[0].outgoing.clone()),
        (None, None)
    );
    assert_eq!(
        d.accounts[0].incoming,
        Some(ep(
            Protocol::Imap,
            "imap.ann.example",
            143,
            Security::None,
            AuthMethod::PasswordCleartext,
            Some("ann")
        ))
    );
}

#[test]
fn crlf_sources_read_like_lf_sources() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with_fixtures(tmp.path(), "rene");
    let before = adapter().discover(&h);
    for uid in [WORK, WORK_IDENTITY, WORK_TRANSPORT] {
        let crlf = String::from_utf8(fixture(uid))
            .unwrap()
            .replace('\n', "\r\n");
        write(&sources(&h).join(format!("{uid}.source")), crlf.as_bytes());
    }
    let after = adapter().discover(&h);
    assert!(after.findings.is_empty());
    assert_eq!(before.accounts, after.accounts);
}

#[test]
fn a_malformed_source_is_a_finding_with_its_position_and_spares_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 5] = [
        (WORK, b"[Mail Account]\nBackendName=imapx\nno equals sign\n", ":3:1"),
        (WORK, b"Host=before.any.group\n", ":1:1"),
        (WORK, b"[Mail Account\nBackendName=imapx\n", ":1:1"),
        (WORK, b"[Mail Account]\nBackendName=imapx\n[Authentication]\nHost=h\nPort=99999\n", ":5:6"),
        (WORK_TRANSPORT, b"[Mail Transport]\nBackendName=smtp\n[Security]\nMethod=maybe\n[Authentication]\nHost=h\n", ":4:8"),
    ];
    for (i, (uid, bytes, position)) in cases.into_iter().enumerate() {
        let h = home_with_fixtures(tmp.path(), &format!("u{i}"));
        write(&sources(&h).join(format!("{uid}.source")), bytes);
        let d = adapter().discover(&h);
        assert_eq!(d.findings.len(), 1, "case {i}: {:?}", d.findings);
        let f = &d.findings[0];
        assert_eq!(
            (f.code.as_str(), f.severity),
            (CONFIG_UNREADABLE, Severity::Error)
        );
        let target = &f.evidence[0].target;
        assert!(
            target.ends_with(&format!("{uid}.source{position}")),
            "case {i}: {target}"
        );
        // The other accounts are still found.
        assert!(d.accounts.iter().any(|a| a.key == POP), "case {i}");
        if uid == WORK_TRANSPORT {
            // The account itself is fine; only its outgoing side cannot be read.
            let work = by(&d, WORK);
            assert!(work.incoming.is_some() && work.outgoing.is_none());
        } else {
            assert!(d.accounts.iter().all(|a| a.key != WORK));
        }
    }
}

#[test]
fn links_that_lead_nowhere_or_outside_the_directory_are_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with_fixtures(tmp.path(), "rene");
    std::fs::remove_file(sources(&h).join(format!("{WORK_TRANSPORT}.source"))).unwrap();
    let escape = "[Mail Account]\nBackendName=imapx\nIdentityUid=../../../secret\n\n[Authentication]\nHost=imap.esc.example\n";
    write(&sources(&h).join("escape.source"), escape.as_bytes());
    write(
        &h.path.join("secret.source"),
        b"[Mail Identity]\nAddress=stolen@example.com\n",
    );
    let d = adapter().discover(&h);
    assert!(d.findings.is_empty(), "{:?}", d.findings);
    let work = by(&d, WORK);
    assert_eq!(work.email.as_deref(), Some("rene.dupont@corp.example"));
    assert_eq!(work.outgoing, None);
    assert_eq!(by(&d, "escape").email, None);
}

#[cfg(unix)]
#[test]
fn a_source_linked_outside_the_home_is_neither_read_nor_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with_fixtures(tmp.path(), "rene");
    let outside = tmp.path().join("elsewhere.source");
    std::fs::write(
        &outside,
        b"[Mail Account]\nBackendName=imapx\n[Authentication]\nHost=h\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(&outside, sources(&h).join("linked.source")).unwrap();
    let d = adapter().discover(&h);
    assert!(d.accounts.iter().all(|a| a.key != "linked"));
    assert_eq!(d.findings.len(), 1);
    assert_eq!(d.findings[0].code, CONFIG_OUTSIDE_HOME);
}

#[test]
fn no_secret_appears_in_discovery_output() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with_fixtures(tmp.path(), "rene");
    let d = adapter().discover(&h);
    let json = serde_json::to_string(&d).unwrap();
    assert!(!format!("{d:?}").contains(CANARY));
    assert!(!json.contains(CANARY));
    let file = mailmend_evolution::KeyFile::parse(&fixture(WORK)).unwrap();
    assert!(!format!("{file:?}").contains(CANARY));
    let bad = format!("[Mail Account]\nBackendName=imapx\n{CANARY}\n");
    write(&sources(&h).join(format!("{WORK}.source")), bad.as_bytes());
    let d = adapter().discover(&h);
    assert_eq!(d.findings.len(), 1);
    assert!(!format!("{d:?}").contains(CANARY));
}

#[test]
fn the_sources_directory_is_the_config_path() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home(tmp.path(), "rene");
    assert_eq!(adapter().config_paths(&h), [sources(&h)]);
    assert_eq!(adapter().discover(&h), Discovery::default());
}
