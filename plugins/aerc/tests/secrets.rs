//! Inline URL passwords and OAuth secrets in accounts.conf never reach any account, finding,
//! debug output or JSON, and survive every rewrite byte for byte.

mod common;

use common::{apply, fixture, with_accounts, write};
use mailmend_aerc::{AccountsFile, AercAdapter, AercVersion};
use mailmend_core::{ClientAdapter, EndpointChange, Role, Security};

const CANARIES: [&str; 3] = [
    "CANARY-inline-pass-44aa",
    "CANARY-oauth-secret-77ee",
    "CANARY-broken-pass-5f5f",
];

fn assert_clean(text: &str) {
    for c in CANARIES {
        assert!(!text.contains(c), "{c} leaked into: {text}");
        assert!(!text.contains(&c[7..]), "part of {c} leaked into: {text}");
    }
    // The credential commands are not kept either.
    assert!(
        !text.contains("pass show"),
        "a cred command leaked into: {text}"
    );
}

fn count(hay: &[u8], needle: &str) -> usize {
    hay.windows(needle.len())
        .filter(|w| *w == needle.as_bytes())
        .count()
}

#[test]
fn secrets_never_appear_in_discovery_output() {
    for v in [
        None,
        Some(AercVersion::new(0, 14, 0)),
        Some(AercVersion::new(0, 20, 0)),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let (h, _) = with_accounts(tmp.path(), "rene", &fixture("accounts.conf"));
        let d = AercAdapter::with_version(v).discover(&h);
        assert_eq!(d.accounts.len(), 4);
        assert_clean(&format!("{d:?}"));
        assert_clean(&serde_json::to_string(&d).unwrap());
        let f = AccountsFile::parse(&fixture("accounts.conf")).unwrap();
        assert_clean(&format!("{f:?} {:?}", f.blocks()));
    }
}

#[test]
fn a_syntax_error_next_to_a_password_does_not_quote_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (h, path) = with_accounts(
        tmp.path(),
        "x",
        b"[X]\nsource imaps://x:CANARY-broken-pass-5f5f@imap.example.com\n",
    );
    let d = AercAdapter::with_version(None).discover(&h);
    assert_eq!(d.findings.len(), 1);
    assert_clean(&format!("{d:?}"));
    assert_clean(&serde_json::to_string(&d).unwrap());
    write(
        &path,
        b"[X]\noutgoing = `smtps://x:CANARY-broken-pass-5f5f@h\n",
    );
    let d = AercAdapter::with_version(None).discover(&h);
    assert_eq!(d.findings.len(), 1);
    assert_clean(&format!("{d:?}"));
}

#[test]
fn inline_passwords_and_queries_survive_rewrites_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let (h, path) = with_accounts(tmp.path(), "rene", &fixture("accounts.conf"));
    let before = std::fs::read(&path).unwrap();
    let adapter = AercAdapter::with_version(Some(AercVersion::new(0, 17, 0)));
    let changes = [
        (
            "Personal",
            Role::Incoming,
            EndpointChange {
                host: Some("imap.example.net".into()),
                security: Some(Security::Tls),
                ..Default::default()
            },
        ),
        (
            "Personal",
            Role::Outgoing,
            EndpointChange {
                port: Some(2465),
                ..Default::default()
            },
        ),
        (
            "Gmail",
            Role::Incoming,
            EndpointChange {
                port: Some(994),
                ..Default::default()
            },
        ),
        (
            "Gmail",
            Role::Outgoing,
            EndpointChange {
                security: Some(Security::StartTls),
                port: Some(587),
                ..Default::default()
            },
        ),
    ];
    for (key, role, change) in changes {
        let d = adapter.discover(&h);
        let a = d.accounts.iter().find(|a| a.key == key).unwrap();
        let edits = common::file_edits(adapter.plan(a, role, &change).unwrap());
        assert_eq!(edits.len(), 1, "{key} {role}");
        assert_eq!(
            count(&edits[0].after, CANARIES[0]),
            count(&edits[0].before, CANARIES[0])
        );
        assert_eq!(
            count(&edits[0].after, CANARIES[1]),
            count(&edits[0].before, CANARIES[1])
        );
        apply(&edits);
    }
    let after = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
    assert!(
        after.contains("source   = imaps://rene:CANARY-inline-pass-44aa@imap.example.net:143\n")
    );
    assert!(after
        .contains("outgoing = smtps+login://rene:CANARY-inline-pass-44aa@mail.example.net:2465\n"));
    assert!(after.contains(
        "outgoing = smtp+oauthbearer://rene.d%40gmail.com@smtp.gmail.com:587?client_id=abc&client_secret=CANARY-oauth-secret-77ee\n"
    ));
    // Everything outside the four changed lines is as it was.
    let (b, a): (Vec<&str>, Vec<&str>) = (
        std::str::from_utf8(&before).unwrap().lines().collect(),
        after.lines().collect(),
    );
    assert_eq!(b.len(), a.len());
    let changed: Vec<usize> = (0..b.len()).filter(|&i| b[i] != a[i]).collect();
    assert_eq!(changed, [15, 16, 24, 25]);
}

// Unix only: the test makes its account's user the file's owner by uid, which Windows does not
// have; the Windows leg leaves it out.
#[cfg(unix)]
#[test]
fn credential_reads_inline_url_passwords_only() {
    let tmp = tempfile::tempdir().unwrap();
    let (h, _) = with_accounts(tmp.path(), "rene", &fixture("accounts.conf"));
    let adapter = AercAdapter::with_version(Some(AercVersion::new(0, 17, 0)));
    let d = adapter.discover(&h);
    let get = |key: &str, role: Role| {
        let a = d.accounts.iter().find(|a| a.key == key).unwrap();
        adapter.credential(&as_file_owner(a.clone()), role)
    };
    for role in [Role::Incoming, Role::Outgoing] {
        let secret = get("Personal", role).unwrap();
        assert_eq!(secret.expose(), CANARIES[0].as_bytes());
        assert_clean(&format!("{secret:?}"));
        // A cred-cmd is never run.
        assert!(get("Work", role).is_none());
        // An OAuth URL's query secret is no password.
        assert!(get("Gmail", role).is_none());
        assert!(get("Legacy", role).is_none());
    }
    // A file that is not the account's user's own is never read for a password.
    let personal = d.accounts.iter().find(|a| a.key == "Personal").unwrap();
    assert!(adapter
        .credential(&as_other_user(personal.clone()), Role::Incoming)
        .is_none());
    // Reading credentials leaves discovery's output as clean as before.
    let again = adapter.discover(&h);
    assert_clean(&format!("{again:?}"));
    assert_clean(&serde_json::to_string(&again).unwrap());
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
