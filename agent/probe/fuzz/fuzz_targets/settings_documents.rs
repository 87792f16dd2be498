//! Fuzz target: the autoconfig (config-v1.1) and Autodiscover (POX) parsers never panic on
//! arbitrary documents, and every server they return has a valid host name and port, within
//! their count limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailmend_probe::autodiscover::{self, PoxAnswer};
use mailmend_probe::{autoconfig, http};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for email in [None, Some("ann@example.com")] {
        if let Ok(servers) = autoconfig::parse(&text, "example.com", email) {
            assert!(servers.len() <= autoconfig::MAX_SERVERS);
            for s in servers {
                assert!(http::is_host_name(&s.host), "{:?}", s.host);
                assert!(s.port > 0);
            }
        }
    }
    if let Ok(PoxAnswer::Settings(servers)) = autodiscover::parse(&text) {
        assert!(servers.len() <= autodiscover::MAX_SERVERS);
        for s in servers {
            assert!(http::is_host_name(&s.host), "{:?}", s.host);
            assert!(s.port > 0);
        }
    }
});
