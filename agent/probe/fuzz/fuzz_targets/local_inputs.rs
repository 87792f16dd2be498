//! Fuzz target: the credential cache parser and the firewall evaluators never panic on
//! arbitrary bytes, and a parsed cache never holds more credentials than its size allows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailmend_probe::{ccache, firewall};

fuzz_target!(|data: &[u8]| {
    if let Ok(cache) = ccache::parse(data) {
        // A credential takes well over 40 bytes on disk.
        assert!(cache.credentials.len() <= data.len() / 40 + 1);
    }
    let text = String::from_utf8_lossy(data);
    for (addr, port) in [("192.0.2.1", 993u16), ("2001:db8::1", 25)] {
        let addr = addr.parse().unwrap();
        let _ = firewall::evaluate_nft(&text, addr, port);
        let _ = firewall::evaluate_iptables(&text, "iptables", addr, port);
    }
});
