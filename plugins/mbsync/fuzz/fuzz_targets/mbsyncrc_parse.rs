//! Fuzz target: the mbsync parser never panics, whatever it accepts keeps its bytes, and a
//! planned change of an accepted server never panics and reads back as planned.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailmend_core::{EndpointChange, Role, Security};
use mailmend_mbsync::plan::{self, TlsKeyword};
use mailmend_mbsync::MbsyncFile;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = MbsyncFile::parse(data) else {
        return;
    };
    assert_eq!(file.as_bytes(), data);
    let change = EndpointChange {
        port: Some(1143),
        security: Some(Security::Tls),
        ..Default::default()
    };
    for s in file.sections().iter().filter(|s| s.is_server()) {
        let mut edited = file.clone();
        let key = s.key();
        if plan::apply(
            &mut edited,
            &key,
            Role::Incoming,
            &change,
            TlsKeyword::SslType,
        )
        .is_ok()
        {
            let again = MbsyncFile::parse(edited.as_bytes()).expect("planned edits parse");
            let server = &again.server(&key).expect("server kept").server;
            assert_eq!(server.security(), Ok(mailmend_mbsync::TlsMode::Imaps));
        }
    }
});
