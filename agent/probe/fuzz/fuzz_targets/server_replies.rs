//! Fuzz target: the IMAP, POP3 and SMTP reply parsers never panic on arbitrary server bytes,
//! and what they report stays within their documented shape (upper-cased, deduplicated words,
//! bounded excerpts).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailmend_probe::replies::{self, CapabilitySet, ImapGreeting, ImapLine};

/// Checks the invariants every capability set must hold.
fn check(set: &CapabilitySet) {
    for list in [&set.words, &set.auth_mechanisms] {
        for (i, w) in list.iter().enumerate() {
            assert_eq!(*w, w.to_ascii_uppercase());
            assert!(!list[..i].contains(w), "duplicate {w:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<&str> = text.split('\n').map(|l| l.trim_end_matches('\r')).collect();
    for line in &lines {
        match replies::parse_imap_greeting(line) {
            Ok(ImapGreeting::Ok {
                capabilities: Some(c),
            })
            | Ok(ImapGreeting::Preauth {
                capabilities: Some(c),
            }) => check(&c),
            _ => {}
        }
        if let Ok(ImapLine::Capability(c)) = replies::parse_imap_line(line) {
            check(&c);
        }
        check(&replies::imap_capabilities(line));
        let _ = replies::parse_pop3_status(line);
        let _ = replies::parse_pop3_data_line(line);
        if let Ok(l) = replies::parse_smtp_line(line) {
            assert!((200..600).contains(&l.code));
        }
        assert!(replies::excerpt(line).chars().count() <= replies::EXCERPT_CHARS + 1);
    }
    check(&replies::pop3_capabilities(&lines));
    let ehlo = replies::smtp_ehlo_capabilities(&lines);
    check(&ehlo);
    let caps = ehlo.into_capabilities(lines[0]);
    assert!(caps.greeting.chars().count() <= replies::EXCERPT_CHARS + 1);
});
