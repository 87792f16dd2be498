//! Discovery of aerc accounts: sections, schemes, version-dependent `smtp://`, findings about
//! ambiguous or unverified security, unreadable files and homes.

// Some imports serve only the unix-only tests (symlinks, owners by uid).
#![cfg_attr(not(unix), allow(unused_imports))]

mod common;

use common::{by_key, crlf, fixture, home, with_accounts, write};
use mailmend_aerc::{
    AercAdapter, AercVersion, AMBIGUOUS_SECURITY, CONFIG_OUTSIDE_HOME, CONFIG_UNREADABLE,
    TLS_UNVERIFIED,
};
use mailmend_core::{
    AccountId, AuthMethod, ClientAdapter, ClientKind, Endpoint, Location, Protocol, Role, Security,
    Severity,
};

const OLD: Option<AercVersion> = Some(AercVersion::new(0, 14, 0));
const NEW: Option<AercVersion> = Some(AercVersion::new(0, 17, 0));

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

#[test]
fn every_server_section_is_an_account() {
    for bytes in [fixture("accounts.conf"), crlf(&fixture("accounts.conf"))] {
        let tmp = tempfile::tempdir().unwrap();
        let (h, path) = with_accounts(tmp.path(), "rene", &bytes);
        let d = AercAdapter::with_version(NEW).discover(&h);
        assert!(d.findings.is_empty(), "{:?}", d.findings);
        let keys: Vec<&str> = d.accounts.iter().map(|a| a.key.as_str()).collect();
        // A maildir source with no outgoing server is nothing to check.
        assert_eq!(keys, ["Work", "Personal", "Gmail", "Legacy"]);

        let location = Location::File { path: path.clone() };
        let work = by_key(&d, "Work");
        assert_eq!(work.location, location);
        assert_eq!(
            work.id,
            AccountId::derive(ClientKind::Aerc, &location, "Work")
        );
        assert_eq!(work.client, ClientKind::Aerc);
        assert_eq!(work.os_user, "rene");
        assert_eq!(work.email.as_deref(), Some("rene.dupont@corp.example"));
        assert_eq!(
            work.incoming,
            Some(endpoint(
                Protocol::Imap,
                "imap.corp.example",
                993,
                Security::Tls,
                AuthMethod::PasswordCleartext,
                Some("rene.dupont@corp.example")
            ))
        );
        assert_eq!(
            work.outgoing,
            Some(endpoint(
                Protocol::Smtp,
                "smtp.corp.example",
                587,
                Security::StartTls,
                AuthMethod::PasswordCleartext,
                Some("rene.dupont@corp.example")
            ))
        );

        let personal = by_key(&d, "Personal");
        assert_eq!(personal.email.as_deref(), Some("rene@example.net"));
        assert_eq!(
            personal.incoming,
            Some(endpoint(
                Protocol::Imap,
                "mail.example.net",
                143,
                Security::StartTls,
                AuthMethod::PasswordCleartext,
                Some("rene")
            ))
        );
        assert_eq!(
            personal.outgoing,
            Some(endpoint(
                Protocol::Smtp,
                "mail.example.net",
                465,
                Security::Tls,
                AuthMethod::PasswordCleartext,
                Some("rene")
            ))
        );

        let gmail = by_key(&d, "Gmail");
        assert_eq!(
            gmail.incoming,
            Some(endpoint(
                Protocol::Imap,
                "imap.gmail.com",
                993,
                Security::Tls,
                AuthMethod::OAuth2,
                Some("rene.d@gmail.com")
            ))
        );
        assert_eq!(gmail.outgoing.as_ref().unwrap().port, 465);

        let legacy = by_key(&d, "Legacy");
        let (i, o) = (
            legacy.incoming.as_ref().unwrap(),
            legacy.outgoing.as_ref().unwrap(),
        );
        assert_eq!((i.security, i.port), (Security::None, 143));
        assert_eq!((o.security, o.port), (Security::StartTls, 587));
    }
}

#[test]
fn a_bare_smtp_url_reads_by_the_installed_version() {
    let tmp = tempfile::tempdir().unwrap();
    let (h, path) = with_accounts(tmp.path(), "rene", &fixture("accounts.conf"));
    let security = |v: Option<AercVersion>, key: &str| {
        let d = AercAdapter::with_version(v).discover(&h);
        by_key(&d, key).outgoing.as_ref().unwrap().security
    };
    // Work has `smtp://` and no `smtp-starttls`.
    assert_eq!(security(NEW, "Work"), Security::StartTls);
    assert_eq!(
        security(Some(AercVersion::new(0, 15, 0)), "Work"),
        Security::StartTls
    );
    assert_eq!(security(OLD, "Work"), Security::None);
    assert_eq!(security(None, "Work"), Security::None);
    // Legacy has `smtp+plain://` with `smtp-starttls = yes`: STARTTLS in every reading.
    for v in [OLD, NEW, None] {
        assert_eq!(security(v, "Legacy"), Security::StartTls);
    }

    // Only an unknown version makes the reading ambiguous, and that is a finding.
    for v in [OLD, NEW] {
        let d = AercAdapter::with_version(v).discover(&h);
        assert!(d.findings.iter().all(|f| f.code != AMBIGUOUS_SECURITY));
    }
    let d = AercAdapter::with_version(None).discover(&h);
    let ambiguous: Vec<_> = d
        .findings
        .iter()
        .filter(|f| f.code == AMBIGUOUS_SECURITY)
        .collect();
    assert_eq!(ambiguous.len(), 1);
    let f = ambiguous[0];
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(f.role, Some(Role::Outgoing));
    assert!(f.summary.contains("\"Work\""), "{}", f.summary);
    assert!(f.summary.contains("before 0.15") && f.summary.contains("plaintext"));
    assert!(f.summary.contains("0.15 and later uses STARTTLS"));
    assert!(f.summary.contains("smtp.corp.example:587"));
    assert_eq!(f.evidence[0].target, format!("{}:7", path.display()));
    // The finding is not filed under the account's own id: the agent would take it for an
    // unreadable account and roll back every fix of it.
    assert_ne!(f.account, by_key(&d, "Work").id);
}

#[test]
fn imaps_insecure_is_tls_without_certificate_checks_and_a_finding() {
    let tmp = tempfile::tempdir().unwrap();
    let (h, _) = with_accounts(
        tmp.path(),
        "u",
        b"[Lab]\nsource = imaps+insecure://u@imap.lab.example\nfrom = u@lab.example\n",
    );
    let d = AercAdapter::with_version(NEW).discover(&h);
    assert_eq!(
        d.accounts[0].incoming.as_ref().unwrap().security,
        Security::Tls
    );
    assert_eq!(d.findings.len(), 1);
    assert_eq!(d.findings[0].code, TLS_UNVERIFIED);
    assert_eq!(d.findings[0].role, Some(Role::Incoming));
}

#[test]
fn two_homes_are_discovered_separately() {
    let tmp = tempfile::tempdir().unwrap();
    let (rene, _) = with_accounts(tmp.path(), "rene", &fixture("accounts.conf"));
    let (ann, ann_path) = with_accounts(
        tmp.path(),
        "ann",
        b"[Ann]\r\nsource = imaps://ann@imap.example.org\r\noutgoing = smtps://ann@smtp.example.org\r\nfrom = Ann <ann@example.org>\r\n",
    );
    let adapter = AercAdapter::with_version(NEW);
    let dr = adapter.discover(&rene);
    let da = adapter.discover(&ann);
    assert_eq!(dr.accounts.len(), 4);
    assert!(dr.accounts.iter().all(|a| a.os_user == "rene"));
    assert_eq!(da.accounts.len(), 1);
    assert_eq!(da.accounts[0].os_user, "ann");
    assert_eq!(da.accounts[0].email.as_deref(), Some("ann@example.org"));
    assert_ne!(da.accounts[0].id, dr.accounts[0].id);
    assert_eq!(adapter.config_paths(&ann), [ann_path]);
}

#[test]
fn a_home_without_aerc_has_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home(tmp.path(), "none");
    let d = AercAdapter::with_version(None).discover(&h);
    assert!(d.accounts.is_empty() && d.findings.is_empty());
}

#[test]
fn a_malformed_file_is_a_finding_with_its_position() {
    let tmp = tempfile::tempdir().unwrap();
    let (h, path) = with_accounts(tmp.path(), "bob", &fixture("accounts-broken.conf"));
    let d = AercAdapter::with_version(NEW).discover(&h);
    assert!(d.accounts.is_empty());
    assert_eq!(d.findings.len(), 1);
    let f = &d.findings[0];
    assert_eq!(f.code, CONFIG_UNREADABLE);
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(f.evidence[0].target, format!("{}:3:1", path.display()));
    assert!(f.summary.contains("line 3, column 1"));
    // The offending line may hold a password, so it is not quoted.
    assert!(!f.evidence[0].result.contains("smtp.example.com"));
}

// Unix only: the test makes a symbolic link with std::os::unix; on Windows a symlink needs
// the SeCreateSymbolicLink privilege and is a different API, so the Windows leg skips it.
#[cfg(unix)]
#[test]
fn an_accounts_conf_linked_outside_the_home_is_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home(tmp.path(), "l");
    let outside = tmp.path().join("elsewhere/accounts.conf");
    write(&outside, &fixture("accounts.conf"));
    std::fs::create_dir_all(h.path.join(".config/aerc")).unwrap();
    std::os::unix::fs::symlink(&outside, h.path.join(".config/aerc/accounts.conf")).unwrap();
    let d = AercAdapter::with_version(NEW).discover(&h);
    assert!(d.accounts.is_empty());
    assert_eq!(d.findings.len(), 1);
    assert_eq!(d.findings[0].code, CONFIG_OUTSIDE_HOME);
}

#[test]
fn a_bom_duplicate_sections_and_the_default_section_are_handled() {
    let tmp = tempfile::tempdir().unwrap();
    let (h, _) = with_accounts(
        tmp.path(),
        "d",
        b"\xEF\xBB\xBFsource = imaps://default@ignored.example\n[A]\nsource = imaps://a@one.example\n[B]\nsource = imap://b@two.example\n[A]\nsource = imaps://a@three.example\n",
    );
    let d = AercAdapter::with_version(NEW).discover(&h);
    let hosts: Vec<(&str, &str)> = d
        .accounts
        .iter()
        .map(|a| (a.key.as_str(), a.incoming.as_ref().unwrap().host.as_str()))
        .collect();
    assert_eq!(hosts, [("A", "three.example"), ("B", "two.example")]);
}
