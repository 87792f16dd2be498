//! Fuzz target: the accounts.conf parser never panics, keeps the bytes it accepted, and a
//! rewrite of a URL's host in place reads back as that host with every other part unchanged;
//! planning a port change on every account never panics either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailmend_aerc::ini::{AccountsFile, Value};
use mailmend_core::{EndpointChange, Role};

fuzz_target!(|data: &[u8]| {
    let Ok(file) = AccountsFile::parse(data) else {
        return;
    };
    assert_eq!(file.as_bytes(), data);
    for section in file.sections() {
        for key in ["source", "outgoing"] {
            let Some(Value::Url(url)) = file.get(section, key).map(|e| &e.value) else {
                continue;
            };
            let mut edited = data.to_vec();
            edited.splice(url.spans.host.clone(), b"fuzz.example".iter().copied());
            let again = AccountsFile::parse(&edited).expect("a host rewrite keeps the file readable");
            match again.get(section, key).map(|e| &e.value) {
                Some(Value::Url(v)) => {
                    assert_eq!(v.host, "fuzz.example");
                    assert_eq!((&v.protocol, &v.user, v.port), (&url.protocol, &url.user, url.port));
                }
                _ => panic!("the URL is gone after a host rewrite"),
            }
        }
        for role in [Role::Incoming, Role::Outgoing] {
            let change = EndpointChange {
                port: Some(2525),
                ..Default::default()
            };
            let _ = mailmend_aerc::plan::plan(&file, section, role, &change, None);
        }
    }
});
