//! Property tests of the mbsync parser on thousands of pseudo-random inputs: it never panics,
//! whatever it accepts keeps its bytes, and edits of what it accepts stay confined to one line.

mod common;

use common::lines;
use mailmend_core::{EndpointChange, Role, Security};
use mailmend_mbsync::plan::{self, TlsKeyword};
use mailmend_mbsync::MbsyncFile;

/// xorshift64*: a small deterministic generator, so that a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const FRAGMENTS: &[&str] = &[
    "IMAPAccount a",
    "IMAPAccount b",
    "IMAPStore s",
    "IMAPStore t",
    "Account a",
    "MaildirStore l",
    "Channel c",
    "Group g",
    "Channel c",
    "Host h.example",
    "Host \"q h\"",
    "Host imaps:h",
    "Host imap://h",
    "Port 993",
    "Port 0",
    "Port +1",
    "Port x",
    "User u@example.com",
    "Pass \"p\\\"w\"",
    "PassCmd \"echo x\"",
    "SSLType IMAPS",
    "SSLType None",
    "TLSType STARTTLS",
    "UseIMAPS yes",
    "RequireSSL no",
    "UseTLSv1 no",
    "AuthMechs LOGIN PLAIN",
    "AuthMechs *",
    "RequireCRAM yes",
    "Tunnel \"ssh h\"",
    "# comment",
    "  # indented",
    "Path ~/m/",
    "",
    "",
    "\t",
    "\"",
    "\\",
    "é",
];

/// Checks the properties on one input; returns whether it parsed.
fn check(bytes: &[u8]) -> bool {
    let Ok(f) = MbsyncFile::parse(bytes) else {
        return false;
    };
    assert_eq!(f.as_bytes(), bytes);
    for s in f.sections().iter().filter(|s| s.is_server()) {
        assert!(s.lines.end <= f.lines().len());
        let key = s.key();
        let mut edited = f.clone();
        match edited.set(&key, &["Port"], "2525") {
            Ok(true) => {
                let n = lines(bytes).len();
                let m = lines(edited.as_bytes()).len();
                assert!(m == n || m == n + 1, "{n} -> {m}");
                let port = edited.server(&key).unwrap().server.explicit_port();
                assert_eq!(port, Some(2525));
            }
            Ok(false) => assert_eq!(edited.as_bytes(), bytes),
            Err(_) => {}
        }
        let mut planned = f.clone();
        for security in [Security::Tls, Security::StartTls, Security::None] {
            let change = EndpointChange {
                security: Some(security),
                port: Some(1143),
                ..Default::default()
            };
            let _ = plan::apply(
                &mut planned,
                &key,
                Role::Incoming,
                &change,
                TlsKeyword::SslType,
            );
        }
    }
    true
}

#[test]
fn random_bytes_never_panic_and_what_parses_round_trips() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut parsed = 0;
    for _ in 0..4000 {
        let len = rng.below(80);
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                if rng.below(3) == 0 {
                    *rng.pick(b"\"#\\\n\r\t 0123456789:/AHIMPSTacehmnoprstu")
                } else {
                    rng.next() as u8
                }
            })
            .collect();
        parsed += usize::from(check(&bytes));
    }
    assert!(parsed > 0);
}

#[test]
fn random_lines_never_panic_and_edits_stay_on_one_line() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let mut parsed = 0;
    for _ in 0..3000 {
        let mut text = Vec::new();
        for _ in 0..rng.below(12) {
            text.extend_from_slice(rng.pick(FRAGMENTS).as_bytes());
            text.extend_from_slice(rng.pick(&["\n", "\n", "\r\n", " ", ""]).as_bytes());
        }
        parsed += usize::from(check(&text));
    }
    assert!(parsed > 300, "only {parsed} parsed");
}
