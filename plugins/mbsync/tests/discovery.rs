//! Discovery over several homes: which file mbsync reads, servers in accounts and stores,
//! deprecated options, unreadable files and secrets.

// Some imports serve only the unix-only tests (symlinks, owners by uid).
#![cfg_attr(not(unix), allow(unused_imports))]

mod common;

use common::{adapter, adapter_for, crlf, fixture, home, home_with, write, CANARY, ISYNC_1_5};
use mailmend_core::{
    AccountId, AuthMethod, ClientAdapter, ClientKind, Discovery, Endpoint, Location, Protocol,
    Role, Security, Severity,
};
use mailmend_mbsync::{CONFIG_OUTSIDE_HOME, CONFIG_UNREADABLE};

fn imap(
    host: &str,
    port: u16,
    security: Security,
    auth: AuthMethod,
    user: Option<&str>,
) -> Endpoint {
    Endpoint {
        protocol: Protocol::Imap,
        host: host.into(),
        port,
        security,
        auth,
        username: user.map(Into::into),
    }
}

fn summary(d: &Discovery) -> Vec<(String, Option<Endpoint>, Option<String>)> {
    d.accounts
        .iter()
        .map(|a| (a.key.clone(), a.incoming.clone(), a.email.clone()))
        .collect()
}

#[test]
fn servers_of_two_homes_map_their_security_and_defaults() {
    let tmp = tempfile::tempdir().unwrap();
    let rene = home_with(tmp.path(), "rene", &fixture("mbsyncrc"));
    let ann = home(tmp.path(), "ann");
    write(
        &ann.path.join(".config/isyncrc"),
        b"IMAPAccount ann\nHost imap.ann.example\nUser ann\nTLSType IMAPS\n",
    );

    let d = adapter().discover(&rene);
    assert!(d.findings.is_empty(), "{:?}", d.findings);
    let path = std::fs::canonicalize(rene.path.join(".mbsyncrc")).unwrap();
    let location = Location::File { path };
    for a in &d.accounts {
        assert_eq!(a.location, location);
        assert_eq!(
            a.id,
            AccountId::derive(ClientKind::Mbsync, &location, &a.key)
        );
        assert_eq!((a.client, a.os_user.as_str()), (ClientKind::Mbsync, "rene"));
        assert_eq!(a.outgoing, None, "mbsync only fetches");
    }
    // The tunnel has no host and port to check; work-remote uses the work account.
    assert_eq!(
        summary(&d),
        [
            (
                "work".to_string(),
                Some(imap(
                    "imap.corp.example",
                    143,
                    Security::StartTls,
                    AuthMethod::PasswordCleartext,
                    Some("rene.dupont@corp.example")
                )),
                Some("rene.dupont@corp.example".to_string())
            ),
            (
                "private".to_string(),
                Some(imap(
                    "mail.private.example",
                    993,
                    Security::Tls,
                    AuthMethod::Any,
                    Some("rene")
                )),
                None
            ),
            (
                "legacy".to_string(),
                Some(imap(
                    "imap.legacy.example",
                    993,
                    Security::Tls,
                    AuthMethod::Any,
                    Some("old@legacy.example")
                )),
                Some("old@legacy.example".to_string())
            ),
            (
                "store:inline".to_string(),
                Some(imap(
                    "imap.inline.example",
                    993,
                    Security::Tls,
                    AuthMethod::Any,
                    Some("inline")
                )),
                None
            ),
        ]
    );

    // Only ~/.config/isyncrc exists in the second home: isync 1.5 reads it.
    let d = adapter_for(ISYNC_1_5).discover(&ann);
    assert!(d.findings.is_empty(), "{:?}", d.findings);
    assert_eq!(d.accounts.len(), 1);
    assert_eq!(d.accounts[0].os_user, "ann");
    assert_eq!(
        d.accounts[0].incoming,
        Some(imap(
            "imap.ann.example",
            993,
            Security::Tls,
            AuthMethod::Any,
            Some("ann")
        ))
    );
}

#[test]
fn crlf_files_read_like_lf_files() {
    let tmp = tempfile::tempdir().unwrap();
    let lf = adapter().discover(&home_with(
        &tmp.path().join("lf"),
        "rene",
        &fixture("mbsyncrc"),
    ));
    let cr = adapter().discover(&home_with(
        &tmp.path().join("cr"),
        "rene",
        &crlf(&fixture("mbsyncrc")),
    ));
    assert!(cr.findings.is_empty(), "{:?}", cr.findings);
    assert_eq!(summary(&lf), summary(&cr));
}

#[test]
fn the_installed_version_decides_which_file_wins() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with(tmp.path(), "rene", b"IMAPAccount dot\nHost dot.example\n");
    write(
        &h.path.join(".config/isyncrc"),
        b"IMAPAccount xdg\nHost xdg.example\n",
    );
    let keys = |d: Discovery| d.accounts.into_iter().map(|a| a.key).collect::<Vec<_>>();
    assert_eq!(keys(adapter().discover(&h)), ["dot"]);
    assert_eq!(keys(adapter_for(ISYNC_1_5).discover(&h)), ["xdg"]);
    assert_eq!(
        adapter().config_paths(&h),
        [h.path.join(".mbsyncrc"), h.path.join(".config/isyncrc")]
    );
}

#[test]
fn a_malformed_file_is_a_finding_with_its_position_and_no_account() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&[u8], &str); 7] = [
        (b"IMAPAccount a\nHost h\nPort 70000\n", ":3:6"),
        (b"IMAPAccount a\nHost h\nPort 1 2\n", ":3:8"),
        (b"IMAPAccount a\nHost h\nPass \"unterminated\n", ":3:6"),
        (b"IMAPAccount a\nHost h\n\nPort 993\n", ":4:1"),
        (
            b"IMAPAccount a\nHost h\nUseIMAPS yes\nSSLType IMAPS\n",
            ":1:1",
        ),
        (b"IMAPAccount a\nHost h\nSSLType maybe\n", ":3:9"),
        (b"IMAPStore s\nAccount nosuch\n", ":2:9"),
    ];
    for (i, (bytes, position)) in cases.into_iter().enumerate() {
        let h = home_with(tmp.path(), &format!("u{i}"), bytes);
        let d = adapter().discover(&h);
        assert!(d.accounts.is_empty());
        assert_eq!(d.findings.len(), 1, "case {i}");
        let f = &d.findings[0];
        assert_eq!(
            (f.code.as_str(), f.severity),
            (CONFIG_UNREADABLE, Severity::Error)
        );
        assert!(
            f.evidence[0]
                .target
                .ends_with(&format!(".mbsyncrc{position}")),
            "{} for case {i}",
            f.evidence[0].target
        );
    }
}

#[cfg(unix)]
#[test]
fn a_config_linked_outside_the_home_is_neither_read_nor_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("shared-mbsyncrc");
    std::fs::write(&outside, b"IMAPAccount a\nHost h.example\n").unwrap();
    let h = home(tmp.path(), "rene");
    std::os::unix::fs::symlink(&outside, h.path.join(".mbsyncrc")).unwrap();
    let d = adapter().discover(&h);
    assert!(d.accounts.is_empty());
    assert_eq!(d.findings[0].code, CONFIG_OUTSIDE_HOME);
}

#[test]
fn no_secret_appears_in_discovery_output() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with(tmp.path(), "rene", &fixture("mbsyncrc"));
    let d = adapter().discover(&h);
    let debug = format!("{d:?}");
    let json = serde_json::to_string(&d).unwrap();
    for out in [&debug, &json] {
        assert!(!out.contains(CANARY));
        assert!(!out.contains("secret-tool"));
    }
    let file = mailmend_mbsync::MbsyncFile::parse(&fixture("mbsyncrc")).unwrap();
    assert!(!format!("{file:?}").contains(CANARY));
    let bad = format!("IMAPAccount a\nHost h\nPass \"{CANARY}\n");
    let d = adapter().discover(&home_with(tmp.path(), "ann", bad.as_bytes()));
    assert_eq!(d.findings.len(), 1);
    assert!(!format!("{d:?}").contains(CANARY));
}

// Unix only: the test makes its account's user the file's owner by uid, which Windows does not
// have; the Windows leg leaves it out.
#[cfg(unix)]
#[test]
fn credential_reads_pass_and_never_runs_passcmd() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with(tmp.path(), "rene", &fixture("mbsyncrc"));
    let d = adapter().discover(&h);
    let get = |key: &str, role: Role| {
        let a = d.accounts.iter().find(|a| a.key == key).unwrap();
        adapter().credential(&as_file_owner(a.clone()), role)
    };
    // Quoted, and bare.
    assert_eq!(
        get("private", Role::Incoming).unwrap().expose(),
        CANARY.as_bytes()
    );
    assert_eq!(
        get("legacy", Role::Incoming).unwrap().expose(),
        CANARY.as_bytes()
    );
    // PassCmd is a command: never run, no credential.
    assert!(get("work", Role::Incoming).is_none());
    assert!(get("store:inline", Role::Incoming).is_none());
    // mbsync has no outgoing side.
    assert!(get("private", Role::Outgoing).is_none());
    let secret = get("private", Role::Incoming).unwrap();
    assert!(!format!("{secret:?}").contains(CANARY));
    // A file that is not the account's user's own is never read for a password.
    let private = d.accounts.iter().find(|a| a.key == "private").unwrap();
    assert!(adapter()
        .credential(&as_other_user(private.clone()), Role::Incoming)
        .is_none());
    // Reading the credential leaves discovery's output as clean as before.
    let again = adapter().discover(&h);
    assert!(!format!("{again:?}").contains(CANARY));
    assert!(!serde_json::to_string(&again).unwrap().contains(CANARY));
}

// Unix only: the test makes its account's user the file's owner by uid, which Windows does not
// have; the Windows leg leaves it out.
#[cfg(unix)]
#[test]
fn credential_decodes_escapes_and_takes_the_last_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let text = "IMAPAccount a\nHost h.example\nUser u\nPass first\nPass \"se\\\"c ret\"\n\n\
                IMAPAccount k\nHost h.example\nUser u\nPass x\nUseKeychain yes\n";
    let h = home_with(tmp.path(), "ann", text.as_bytes());
    let d = adapter().discover(&h);
    let a = as_file_owner(d.accounts.iter().find(|a| a.key == "a").unwrap().clone());
    let secret = adapter().credential(&a, Role::Incoming).unwrap();
    assert_eq!(secret.expose(), b"se\"c ret");
    let k = as_file_owner(d.accounts.iter().find(|a| a.key == "k").unwrap().clone());
    assert!(adapter().credential(&k, Role::Incoming).is_none());
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
