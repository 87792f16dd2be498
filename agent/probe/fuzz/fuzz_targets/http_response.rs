//! Fuzz target: the HTTP response parser and the https URL handling of settings discovery
//! never panic on arbitrary server bytes, and what they accept stays within their limits (body
//! size, header count, lower-case names, https URLs without spaces or user information).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailmend_probe::http::{self, HttpsUrl, Parsed};

fuzz_target!(|data: &[u8]| {
    for eof in [false, true] {
        if let Ok(Parsed::Complete(r)) = http::parse_response(data, eof) {
            assert!((200..600).contains(&r.status), "status {}", r.status);
            assert!(r.body.len() <= http::MAX_RESPONSE_BYTES);
            assert!(r.headers.len() <= http::MAX_HEADERS);
            for (name, _) in &r.headers {
                assert_eq!(*name, name.to_ascii_lowercase());
            }
            if let Some(schemes) = r.auth_schemes() {
                assert!(!schemes.contains('='));
            }
        }
    }
    let text = String::from_utf8_lossy(data);
    if let Ok(url) = HttpsUrl::parse(&text) {
        assert!(url.path.starts_with('/'));
        assert!(!url.to_string().contains(char::is_whitespace));
        assert_eq!(HttpsUrl::parse(&url.to_string()), Ok(url.clone()));
    }
    let base = HttpsUrl::parse("https://example.com/autodiscover/autodiscover.xml").unwrap();
    if let Ok(next) = base.join(&text) {
        assert!(next.path.starts_with('/'));
        assert!(!next.to_string().contains(['\r', '\n']));
    }
});
