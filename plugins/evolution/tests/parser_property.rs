//! Property tests of the key-file parser on thousands of pseudo-random inputs: it never
//! panics, whatever it accepts keeps its bytes, and edits of what it accepts stay confined to
//! one line.

mod common;

use common::lines;
use mailmend_core::{EndpointChange, Protocol, Security};
use mailmend_evolution::{plan, KeyFile};

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
    "[Authentication]",
    "[Security]",
    "[Mail Account]",
    "[ Spaced ]  ",
    "[]",
    "[a[b]",
    "Host=h.example",
    "Host = h ",
    "Port=993",
    "Port=0",
    "Port=99999",
    "Port=x",
    "Method=ssl-on-alternate-port",
    "Method=none",
    "Method=PLAIN",
    "Method=",
    "Name[de]=x",
    "Name[]=y",
    "Name[d e]=z",
    " Key=v",
    "=v",
    "v\\sx=1",
    "K=a\\sb\\\\c",
    "K=bad\\q",
    "Encoding=UTF-8",
    "Encoding=latin1",
    "# comment",
    "  # indented",
    "no equals",
    "",
    "\t",
    "é=1",
];

/// Checks the properties on one input; returns whether it parsed.
fn check(bytes: &[u8]) -> bool {
    let Ok(f) = KeyFile::parse(bytes) else {
        return false;
    };
    assert_eq!(f.as_bytes(), bytes);
    let n = lines(bytes).len();
    let mut edited = f.clone();
    match edited.set("Authentication", "Port", "2525") {
        Ok(true) => {
            let m = lines(edited.as_bytes()).len();
            // One line rewritten or inserted, or a group appended (with a blank line before it).
            assert!(m >= n && m <= n + 3, "{n} -> {m}");
            assert_eq!(
                edited.get("Authentication", "Port").unwrap().as_deref(),
                Some("2525")
            );
        }
        Ok(false) => assert_eq!(edited.as_bytes(), bytes),
        Err(_) => {}
    }
    for protocol in [Protocol::Imap, Protocol::Smtp] {
        let mut planned = f.clone();
        let change = EndpointChange {
            security: Some(Security::Tls),
            port: Some(1993),
            ..Default::default()
        };
        let _ = plan::apply(&mut planned, protocol, &change);
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
                    *rng.pick(b"[]=#\\\n\r\t sAHMPaehmnorst09")
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
            text.extend_from_slice(rng.pick(&["\n", "\n", "\r\n", ""]).as_bytes());
        }
        parsed += usize::from(check(&text));
    }
    assert!(parsed > 300, "only {parsed} parsed");
}
