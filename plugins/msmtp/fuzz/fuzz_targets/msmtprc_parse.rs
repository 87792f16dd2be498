//! Fuzz target: the msmtp parser never panics, whatever it accepts keeps its bytes, and a
//! planned change of an accepted account never panics and reads back as planned.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailmend_core::{EndpointChange, Role, Security};
use mailmend_msmtp::{plan, MsmtpFile};

fuzz_target!(|data: &[u8]| {
    let Ok(file) = MsmtpFile::parse(data) else {
        return;
    };
    assert_eq!(file.as_bytes(), data);
    let change = EndpointChange {
        port: Some(2525),
        security: Some(Security::Tls),
        ..Default::default()
    };
    for a in file.accounts() {
        let mut edited = file.clone();
        if plan::apply(&mut edited, &a.name, Role::Outgoing, &change).is_ok() {
            let again = MsmtpFile::parse(edited.as_bytes()).expect("planned edits parse");
            assert_eq!(again.account(&a.name).map(|e| e.port()), Some(2525));
        }
    }
});
