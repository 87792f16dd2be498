//! Fuzz target: the key-file parser never panics, whatever it accepts keeps its bytes, setting
//! a value reads back, and a planned change never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailmend_core::{EndpointChange, Protocol, Security};
use mailmend_evolution::{plan, KeyFile};

fuzz_target!(|data: &[u8]| {
    let Ok(file) = KeyFile::parse(data) else {
        return;
    };
    assert_eq!(file.as_bytes(), data);
    let mut edited = file.clone();
    if edited.set("Authentication", "Port", "2525").is_ok() {
        let again = KeyFile::parse(edited.as_bytes()).expect("an edit parses");
        assert_eq!(
            again
                .get("Authentication", "Port")
                .ok()
                .flatten()
                .as_deref(),
            Some("2525")
        );
    }
    let change = EndpointChange {
        port: Some(1993),
        security: Some(Security::Tls),
        ..Default::default()
    };
    let mut planned = file.clone();
    let _ = plan::apply(&mut planned, Protocol::Imap, &change);
});
