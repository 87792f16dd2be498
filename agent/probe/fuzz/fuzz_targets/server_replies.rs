//! Fuzz target: the IMAP, POP3 and SMTP reply parsers never panic on arbitrary server bytes,
//! and what they report stays within their documented shape (upper-cased, deduplicated words,
//! bounded excerpts); the translation of login replies never panics either, and its sanitised
//! text never holds the password it was told to hide.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailmend_probe::login;
use mailmend_probe::replies::{self, CapabilitySet, ImapGreeting, ImapLine, ImapStatus};

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
        // Login replies: every status, every protocol.
        let _ = login::imap_response_code(line);
        for status in [ImapStatus::Ok, ImapStatus::No, ImapStatus::Bad] {
            let _ = login::imap_login_outcome(status, line);
        }
        let _ = login::smtp_enhanced_status(line);
        if let Ok(l) = replies::parse_smtp_line(line) {
            let _ = login::smtp_auth_outcome(l.code, l.text);
            let _ = login::smtp_sender_outcome(l.code, "a@b", login::sanitise(l.text, b"", &[]));
        }
        let _ = login::pop3_login_outcome(false, line);
        let secret = b"pw-Canary";
        let sanitised = login::sanitise(&format!("{line}pw-Canary{line}"), secret, &["cHctQ2FuYXJ5"]);
        assert!(!sanitised.contains("pw-Canary"), "{sanitised:?}");
        assert!(sanitised.chars().count() <= replies::EXCERPT_CHARS + 1);
    }
    check(&replies::pop3_capabilities(&lines));
    let ehlo = replies::smtp_ehlo_capabilities(&lines);
    check(&ehlo);
    let caps = ehlo.into_capabilities(lines[0]);
    assert!(caps.greeting.chars().count() <= replies::EXCERPT_CHARS + 1);
});
