//! Fuzz target: the muttrc parser never panics, keeps the bytes it accepted, and a rewrite of a
//! URL's host in place reads back as that host with every other part unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailmend_mutt::muttrc::{MuttFile, SetOp, StatementKind, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(file) = MuttFile::parse(data) else {
        return;
    };
    assert_eq!(file.as_bytes(), data);
    for (i, s) in file.statements().iter().enumerate() {
        let url = match &s.kind {
            StatementKind::Set {
                op: SetOp::Assign(Value::Url(u)),
                ..
            }
            | StatementKind::Mailbox {
                mailbox: Value::Url(u),
            } => u,
            _ => continue,
        };
        let Some(host) = url.spans.host.clone() else {
            continue;
        };
        let mut edited = data.to_vec();
        edited.splice(host, b"fuzz.example".iter().copied());
        let again = MuttFile::parse(&edited).expect("a host rewrite keeps the file readable");
        match &again.statements()[i].kind {
            StatementKind::Set {
                op: SetOp::Assign(Value::Url(v)),
                ..
            }
            | StatementKind::Mailbox {
                mailbox: Value::Url(v),
            } => {
                assert_eq!(v.host, "fuzz.example");
                assert_eq!((&v.scheme, &v.user, v.port), (&url.scheme, &url.user, url.port));
            }
            _ => panic!("the URL is gone after a host rewrite"),
        }
    }
});
