//! Passwords in a muttrc (`imap_pass`, `smtp_pass`, a password inside a URL, a hook's
//! command) never reach any account, finding, debug output or JSON, and survive every rewrite
//! byte for byte.

mod common;

use common::{apply, changed_lines, file_edits, home, rene, write};
use mailmend_core::{ClientAdapter, EndpointChange, Role, Security};
use mailmend_mutt::{MuttAdapter, MuttFile};

const CANARIES: [&str; 5] = [
    "CANARY-imap-pass-7f3a",
    "CANARY-smtp-pass-91c2",
    "CANARY-hook-pass-5d1e",
    "CANARY-url-pass-3e8b",
    "CANARY-broken-pass-c0de",
];

fn assert_clean(text: &str) {
    for c in CANARIES {
        assert!(!text.contains(c), "{c} leaked into: {text}");
        // Nor any recognisable part of it.
        assert!(!text.contains(&c[7..]), "part of {c} leaked into: {text}");
    }
}

#[test]
fn passwords_never_appear_in_discovery_output() {
    let tmp = tempfile::tempdir().unwrap();
    let h = rene(tmp.path(), false);
    write(
        &h.path.join(".muttrc"),
        b"set folder=\"imaps://ann:CANARY-url-pass-3e8b@imap.example.org/\"\nset smtp_url=smtps://ann:CANARY-url-pass-3e8b@smtp.example.org/\n",
    );
    let d = MuttAdapter::new().discover(&h);
    assert_eq!(d.accounts.len(), 3);
    assert_clean(&format!("{d:?}"));
    assert_clean(&serde_json::to_string(&d).unwrap());
    for path in MuttAdapter::new().config_paths(&h) {
        if let Ok(bytes) = std::fs::read(&path) {
            let f = MuttFile::parse(&bytes).unwrap();
            assert_clean(&format!("{f:?} {:?}", f.statements()));
        }
    }
}

#[test]
fn a_syntax_error_next_to_a_password_does_not_quote_it() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home(tmp.path(), "x");
    write(
        &h.path.join(".muttrc"),
        b"set folder=imaps://x@imap.example.org/\nset imap_pass=\"CANARY-broken-pass-c0de\nset smtp_url=`CANARY-broken-pass-c0de\n",
    );
    let d = MuttAdapter::new().discover(&h);
    assert_eq!(d.findings.len(), 1);
    assert_clean(&format!("{d:?}"));
    assert_clean(&serde_json::to_string(&d).unwrap());
    let e = MuttFile::parse(&std::fs::read(h.path.join(".muttrc")).unwrap()).unwrap_err();
    assert_clean(&format!("{e} {e:?}"));
}

#[test]
fn passwords_survive_a_rewrite_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home(tmp.path(), "y");
    let before = b"set imap_pass = \"CANARY-imap-pass-7f3a\"\n\
set folder = 'imaps://y:CANARY-url-pass-3e8b@imap.example.org/'\n\
set smtp_url = \"smtp://y:CANARY-url-pass-3e8b@smtp.example.org:587/\" smtp_pass=CANARY-smtp-pass-91c2\n"
        .to_vec();
    write(&h.path.join(".muttrc"), &before);
    let d = MuttAdapter::new().discover(&h);
    let a = &d.accounts[0];
    let edits = file_edits(
        MuttAdapter::new()
            .plan(
                a,
                Role::Incoming,
                &EndpointChange {
                    host: Some("imap.example.net".into()),
                    port: Some(1993),
                    ..Default::default()
                },
            )
            .unwrap(),
    );
    let e = &edits[0];
    assert_eq!(e.before, before);
    assert_eq!(changed_lines(&e.before, &e.after), [1]);
    let after = String::from_utf8(e.after.clone()).unwrap();
    assert!(
        after.contains("set folder = 'imaps://y:CANARY-url-pass-3e8b@imap.example.net:1993/'\n")
    );
    assert!(after.contains("set imap_pass = \"CANARY-imap-pass-7f3a\"\n"));
    apply(&edits);
    let edits = file_edits(
        MuttAdapter::new()
            .plan(
                &MuttAdapter::new().discover(&h).accounts[0],
                Role::Outgoing,
                &EndpointChange {
                    security: Some(Security::Tls),
                    port: Some(465),
                    ..Default::default()
                },
            )
            .unwrap(),
    );
    let after = String::from_utf8(edits[0].after.clone()).unwrap();
    assert!(after.ends_with(
        "set smtp_url = \"smtps://y:CANARY-url-pass-3e8b@smtp.example.org:465/\" smtp_pass=CANARY-smtp-pass-91c2\n"
    ));
    // The plan itself carries the file's bytes, which is what a byte-exact restore needs; its
    // debug form is not for logs, and the executor never logs it.
}

// Unix only: the test makes its account's user the file's owner by uid, which Windows does not
// have; the Windows leg leaves it out.
#[cfg(unix)]
#[test]
fn credential_reads_the_password_mutt_would_use_and_runs_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let h = rene(tmp.path(), false);
    let adapter = MuttAdapter::new();
    let d = adapter.discover(&h);
    let find = |host: &str| {
        as_file_owner(
            d.accounts
                .iter()
                .find(|a| a.incoming.as_ref().is_some_and(|e| e.host == host))
                .unwrap()
                .clone(),
        )
    };
    let (work, personal) = (&find("imap.corp.example"), &find("mail.example.net"));
    let imap = adapter.credential(work, Role::Incoming).unwrap();
    assert_eq!(imap.expose(), CANARIES[0].as_bytes());
    assert_clean(&format!("{imap:?}"));
    let smtp = adapter.credential(work, Role::Outgoing).unwrap();
    assert_eq!(smtp.expose(), CANARIES[1].as_bytes());
    // The personal account's file sets no password; the work file's and the hook's are not its.
    assert!(adapter.credential(personal, Role::Incoming).is_none());
    assert!(adapter.credential(personal, Role::Outgoing).is_none());
    // A file that is not the account's user's own is never read for a password.
    assert!(adapter
        .credential(&as_other_user(work.clone()), Role::Incoming)
        .is_none());
    // Reading credentials leaves discovery's output as clean as before.
    let again = adapter.discover(&h);
    assert_clean(&format!("{again:?}"));
    assert_clean(&serde_json::to_string(&again).unwrap());
}

// Unix only: the test makes its account's user the file's owner by uid, which Windows does not
// have; the Windows leg leaves it out.
#[cfg(unix)]
#[test]
fn credential_prefers_the_url_password_and_never_expands_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home(tmp.path(), "z");
    write(
        &h.path.join(".muttrc"),
        b"set imap_pass = \"CANARY-imap-pass-7f3a\"\n\
set folder = 'imaps://z:CANARY-url-pass-3e8b@imap.example.org/'\n\
set smtp_url = \"smtp://z@smtp.example.org:587/\" smtp_pass=`pass show smtp`\n",
    );
    let adapter = MuttAdapter::new();
    let a = as_file_owner(adapter.discover(&h).accounts.remove(0));
    let secret = adapter.credential(&a, Role::Incoming).unwrap();
    assert_eq!(secret.expose(), CANARIES[3].as_bytes());
    // A backtick command is never run, so there is no credential.
    assert!(adapter.credential(&a, Role::Outgoing).is_none());

    write(
        &h.path.join(".muttrc"),
        b"set my_pw = CANARY-imap-pass-7f3a\nset imap_pass = $my_pw\nset folder = imaps://z@imap.example.org/\n",
    );
    let a = as_file_owner(adapter.discover(&h).accounts.remove(0));
    assert!(adapter.credential(&a, Role::Incoming).is_none());
    write(
        &h.path.join(".muttrc"),
        b"set imap_pass = \"pw\\\"with\\\\escapes\"\nset folder = imaps://z@imap.example.org/\n",
    );
    let a = as_file_owner(adapter.discover(&h).accounts.remove(0));
    assert_eq!(
        adapter.credential(&a, Role::Incoming).unwrap().expose(),
        b"pw\"with\\escapes"
    );
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
