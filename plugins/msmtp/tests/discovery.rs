//! Discovery over several homes: which file msmtp reads, defaults and inheritance, unreadable
//! files and secrets.

// Some imports serve only the unix-only tests (symlinks, owners by uid).
#![cfg_attr(not(unix), allow(unused_imports))]

mod common;

use common::{crlf, fixture, home, home_with, write, CANARY, EVAL_CANARY};
use mailmend_core::{
    AccountId, AuthMethod, ClientAdapter, ClientKind, Endpoint, Location, Protocol, Role, Security,
    Severity,
};
use mailmend_msmtp::{MsmtpAdapter, CONFIG_OUTSIDE_HOME, CONFIG_UNREADABLE, CONFIG_UNSUPPORTED};

fn smtp(
    host: &str,
    port: u16,
    security: Security,
    auth: AuthMethod,
    user: Option<&str>,
) -> Endpoint {
    Endpoint {
        protocol: Protocol::Smtp,
        host: host.into(),
        port,
        security,
        auth,
        username: user.map(Into::into),
    }
}

#[test]
fn accounts_of_two_homes_resolve_defaults_and_inheritance() {
    let tmp = tempfile::tempdir().unwrap();
    let rene = home_with(tmp.path(), "rene", &fixture("msmtprc"));
    let ann = home(tmp.path(), "ann");
    write(
        &ann.path.join(".config/msmtp/config"),
        b"account ann\nhost smtp.ann.example\nport 587\ntls on\nauth plain\nuser ann\nfrom ann@ann.example\n",
    );

    let d = MsmtpAdapter.discover(&rene);
    assert!(d.findings.is_empty(), "{:?}", d.findings);
    let keys: Vec<&str> = d.accounts.iter().map(|a| a.key.as_str()).collect();
    // The template has no host, so msmtp cannot send with it and it is not checked.
    assert_eq!(
        keys,
        ["work", "private", "private-alias", "legacy", "default"]
    );

    let path = std::fs::canonicalize(rene.path.join(".msmtprc")).unwrap();
    let location = Location::File { path };
    for a in &d.accounts {
        assert_eq!(a.location, location);
        assert_eq!(
            a.id,
            AccountId::derive(ClientKind::Msmtp, &location, &a.key)
        );
        assert_eq!(a.client, ClientKind::Msmtp);
        assert_eq!(a.os_user, "rene");
        assert_eq!(a.incoming, None, "msmtp only sends");
    }
    let by = |k: &str| d.accounts.iter().find(|a| a.key == k).unwrap();

    // `auth on` and `tls on` come from the defaults; STARTTLS is msmtp's default TLS mode.
    assert_eq!(
        by("work").outgoing,
        Some(smtp(
            "smtp.corp.example",
            587,
            Security::StartTls,
            AuthMethod::Any,
            Some("rdupont")
        ))
    );
    assert_eq!(
        by("work").email.as_deref(),
        Some("rene.dupont@corp.example")
    );
    // Quotes are removed; implicit TLS without a port means 465.
    assert_eq!(
        by("private").outgoing,
        Some(smtp(
            "mail.private.example",
            465,
            Security::Tls,
            AuthMethod::Any,
            Some("rene@private.example")
        ))
    );
    // The alias copies its parent's own settings and keeps its own from.
    assert_eq!(by("private-alias").outgoing, by("private").outgoing);
    assert_eq!(
        by("private-alias").email.as_deref(),
        Some("alias@private.example")
    );
    // Blanks inside quotes are kept; %U is the user's login name.
    assert_eq!(
        by("legacy").outgoing,
        Some(smtp(
            "mx.legacy.example",
            25,
            Security::None,
            AuthMethod::None,
            Some("  spaced user  ")
        ))
    );
    assert_eq!(by("legacy").email.as_deref(), Some("rene@legacy.example"));
    assert_eq!(by("default").outgoing, by("work").outgoing);

    // The second home only has the XDG file, which msmtp then reads.
    let d = MsmtpAdapter.discover(&ann);
    assert!(d.findings.is_empty(), "{:?}", d.findings);
    assert_eq!(d.accounts.len(), 1);
    assert_eq!(d.accounts[0].os_user, "ann");
    assert_eq!(
        d.accounts[0].outgoing,
        Some(smtp(
            "smtp.ann.example",
            587,
            Security::StartTls,
            AuthMethod::PasswordCleartext,
            Some("ann")
        ))
    );
}

#[test]
fn crlf_files_read_like_lf_files() {
    let tmp = tempfile::tempdir().unwrap();
    let lf = MsmtpAdapter.discover(&home_with(
        &tmp.path().join("lf"),
        "rene",
        &fixture("msmtprc"),
    ));
    let cr = MsmtpAdapter.discover(&home_with(
        &tmp.path().join("cr"),
        "rene",
        &crlf(&fixture("msmtprc")),
    ));
    assert!(cr.findings.is_empty(), "{:?}", cr.findings);
    let ends = |d: &mailmend_core::Discovery| {
        d.accounts
            .iter()
            .map(|a| (a.key.clone(), a.outgoing.clone(), a.email.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(ends(&lf), ends(&cr));
}

#[test]
fn msmtprc_hides_the_xdg_file_as_in_msmtp() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with(tmp.path(), "rene", b"account dot\nhost dot.example\n");
    write(
        &h.path.join(".config/msmtp/config"),
        b"account xdg\nhost xdg.example\n",
    );
    let d = MsmtpAdapter.discover(&h);
    let keys: Vec<&str> = d.accounts.iter().map(|a| a.key.as_str()).collect();
    assert_eq!(keys, ["dot"]);
    assert_eq!(
        MsmtpAdapter.config_paths(&h),
        [h.path.join(".msmtprc"), h.path.join(".config/msmtp/config")]
    );
}

#[test]
fn old_files_without_account_lines_form_the_default_account() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with(
        tmp.path(),
        "rene",
        b"# msmtp 1.2 style\nhost old.example\nfrom rene@old.example\n",
    );
    let d = MsmtpAdapter.discover(&h);
    assert_eq!(d.accounts.len(), 1);
    assert_eq!(d.accounts[0].key, "default");
    assert_eq!(d.accounts[0].outgoing.as_ref().unwrap().port, 25);
}

#[test]
fn a_malformed_file_is_a_finding_with_its_position_and_no_account() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&[u8], &str); 5] = [
        (b"account a\nhost h\nport 99999\n", ":3:6"),
        (b"account a\nhost h\n  tls  maybe\n", ":3:8"),
        (b"account a : nosuch\nhost h\n", ":1:13"),
        (b"account a\nhost h\naccount a\n", ":3:9"),
        (b"defaults now\n", ":1:10"),
    ];
    for (i, (bytes, position)) in cases.into_iter().enumerate() {
        let h = home_with(tmp.path(), &format!("u{i}"), bytes);
        let d = MsmtpAdapter.discover(&h);
        assert!(d.accounts.is_empty());
        assert_eq!(d.findings.len(), 1);
        let f = &d.findings[0];
        assert_eq!(f.code, CONFIG_UNREADABLE);
        assert_eq!(f.severity, Severity::Error);
        assert!(
            f.evidence[0]
                .target
                .ends_with(&format!(".msmtprc{position}")),
            "{} for case {i}",
            f.evidence[0].target
        );
    }
}

#[test]
fn a_line_msmtp_finds_too_long_is_a_finding() {
    let tmp = tempfile::tempdir().unwrap();
    let long = format!("account a\nhost {}\n", "h".repeat(495));
    let d = MsmtpAdapter.discover(&home_with(tmp.path(), "rene", long.as_bytes()));
    assert_eq!(d.findings[0].code, CONFIG_UNREADABLE);
    assert!(d.findings[0].evidence[0].target.ends_with(":2:500"));
}

#[test]
fn accounts_set_by_eval_are_reported_not_guessed() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with(
        tmp.path(),
        "rene",
        b"account a\neval echo host secret-host.example\naccount b\nhost b.example\n",
    );
    let d = MsmtpAdapter.discover(&h);
    assert_eq!(d.accounts.len(), 1);
    assert_eq!(d.accounts[0].key, "b");
    assert_eq!(d.findings.len(), 1);
    assert_eq!(d.findings[0].code, CONFIG_UNSUPPORTED);
    assert!(!format!("{:?}", d).contains("secret-host"));
}

#[cfg(unix)]
#[test]
fn a_config_linked_outside_the_home_is_neither_read_nor_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("etc-msmtprc");
    std::fs::write(&outside, b"account a\nhost h.example\n").unwrap();
    let h = home(tmp.path(), "rene");
    std::os::unix::fs::symlink(&outside, h.path.join(".msmtprc")).unwrap();
    let d = MsmtpAdapter.discover(&h);
    assert!(d.accounts.is_empty());
    assert_eq!(d.findings[0].code, CONFIG_OUTSIDE_HOME);
}

#[test]
fn no_secret_appears_in_discovery_output() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with(tmp.path(), "rene", &fixture("msmtprc"));
    let d = MsmtpAdapter.discover(&h);
    let debug = format!("{d:?}");
    let json = serde_json::to_string(&d).unwrap();
    for out in [&debug, &json] {
        assert!(!out.contains(CANARY));
        assert!(!out.contains(EVAL_CANARY));
        assert!(!out.contains("echo"));
    }
    let file = mailmend_msmtp::MsmtpFile::parse(&fixture("msmtprc")).unwrap();
    assert!(!format!("{file:?}").contains(CANARY));
    // A syntax error on the password's line does not quote it either.
    let bad = format!("account a\nhost h\nport {CANARY}\n");
    let d = MsmtpAdapter.discover(&home_with(tmp.path(), "ann", bad.as_bytes()));
    assert!(!format!("{d:?}").contains(CANARY));
}

#[test]
fn msmtp_is_never_reported_as_running() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with(tmp.path(), "rene", &fixture("msmtprc"));
    for a in MsmtpAdapter.discover(&h).accounts {
        assert!(!MsmtpAdapter.is_running(&a));
    }
}

// Unix only: the test makes its account's user the file's owner by uid, which Windows does not
// have; the Windows leg leaves it out.
#[cfg(unix)]
#[test]
fn credential_reads_the_applying_password_and_never_runs_passwordeval() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with(tmp.path(), "rene", &fixture("msmtprc"));
    let accounts: Vec<_> = MsmtpAdapter
        .discover(&h)
        .accounts
        .into_iter()
        .map(as_file_owner)
        .collect();
    let get = |key: &str| {
        let a = accounts.iter().find(|a| a.key == key).unwrap();
        MsmtpAdapter.credential(a, Role::Outgoing)
    };
    assert_eq!(get("private").unwrap().expose(), CANARY.as_bytes());
    // Inherited from the parent account.
    assert_eq!(get("private-alias").unwrap().expose(), CANARY.as_bytes());
    // passwordeval is a command: never run, so no credential.
    assert!(get("work").is_none());
    assert!(get("legacy").is_none());
    let private = accounts.iter().find(|a| a.key == "private").unwrap();
    assert!(MsmtpAdapter.credential(private, Role::Incoming).is_none());
    // A file that is not the account's user's own is never read for a password.
    let foreign = as_other_user(private.clone());
    assert!(MsmtpAdapter.credential(&foreign, Role::Outgoing).is_none());
    // The secret shows itself nowhere, and discovery still does not see it.
    let secret = get("private").unwrap();
    assert!(!format!("{secret:?}").contains(CANARY));
    let d = MsmtpAdapter.discover(&h);
    assert!(!format!("{d:?}").contains(CANARY));
    assert!(!serde_json::to_string(&d).unwrap().contains(CANARY));
}

// Unix only: the test makes its account's user the file's owner by uid, which Windows does not
// have; the Windows leg leaves it out.
#[cfg(unix)]
#[test]
fn credential_follows_msmtp_inheritance_of_password_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let text = "defaults\npassword d1\naccount a\nhost h.example\nauth on\nuser u\n\
                defaults\npassword d2\naccount b : a\nhost h.example\n\
                account c\nhost h.example\npassword own\npasswordeval \"echo x\"\n\
                account d : c\npasswordeval\n\
                account e\nhost h.example\npassword\n";
    let h = home_with(tmp.path(), "ann", text.as_bytes());
    let accounts: Vec<_> = MsmtpAdapter
        .discover(&h)
        .accounts
        .into_iter()
        .map(as_file_owner)
        .collect();
    let get = |key: &str| {
        let a = accounts.iter().find(|a| a.key == key).unwrap();
        MsmtpAdapter
            .credential(a, Role::Outgoing)
            .map(|s| String::from_utf8(s.expose().to_vec()).unwrap())
    };
    assert_eq!(get("a").as_deref(), Some("d1"));
    // A parent's value that came from the defaults is not copied: b keeps the newer default.
    assert_eq!(get("b").as_deref(), Some("d2"));
    assert_eq!(get("c"), None);
    // An empty passwordeval unsets the inherited one, so the inherited password applies.
    assert_eq!(get("d").as_deref(), Some("own"));
    // An empty password unsets the default one.
    assert_eq!(get("e"), None);
}

// Unix only: the test makes its account's user the file's owner by uid, which Windows does not
// have; the Windows leg leaves it out.
#[cfg(unix)]
#[test]
fn credential_of_a_vanished_or_broken_file_is_none() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with(tmp.path(), "rene", &fixture("msmtprc"));
    let a = as_file_owner(
        MsmtpAdapter
            .discover(&h)
            .accounts
            .into_iter()
            .find(|a| a.key == "private")
            .unwrap(),
    );
    write(&h.path.join(".msmtprc"), b"account private\nport nope\n");
    assert!(MsmtpAdapter.credential(&a, Role::Outgoing).is_none());
    std::fs::remove_file(h.path.join(".msmtprc")).unwrap();
    assert!(MsmtpAdapter.credential(&a, Role::Outgoing).is_none());
}

#[cfg(unix)]
/// The account as the agent sees it for a real user: the owner of its file. (The test homes'
/// user names are not users of this machine.)
fn as_file_owner(mut a: mailmend_core::Account) -> mailmend_core::Account {
    use std::os::unix::fs::MetadataExt;
    let mailmend_core::Location::File { path } = &a.location else {
        panic!("not a file account")
    };
    a.os_user = std::fs::metadata(path).unwrap().uid().to_string();
    a
}

#[cfg(unix)]
/// The same account as seen for another user: its file is not theirs.
fn as_other_user(mut a: mailmend_core::Account) -> mailmend_core::Account {
    a = as_file_owner(a);
    a.os_user = (a.os_user.parse::<u32>().unwrap() + 1).to_string();
    a
}
