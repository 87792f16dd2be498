//! Property tests of the msmtp parser on thousands of pseudo-random inputs: it never panics,
//! whatever it accepts keeps its bytes, and edits of what it accepts stay confined to one line.

mod common;

use common::lines;
use mailmend_core::{EndpointChange, Role, Security};
use mailmend_msmtp::{plan, Field, MsmtpFile};

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
    "account a",
    "account b : a",
    "account c : a, b",
    "account default : a",
    "account",
    "account : a",
    "defaults",
    "host h.example",
    "host \"q\"",
    "host",
    "port 587",
    "port 0x1d1",
    "port 0",
    "port \"25\"",
    "tls",
    "tls on",
    "tls off",
    "tls_starttls off",
    "auth",
    "auth plain",
    "auth xoauth2",
    "auth PLAIN",
    "user \" u \"",
    "user",
    "from %U@example.com",
    "password p#w",
    "eval echo host x",
    "protocol lmtp",
    "socket /run/s",
    "# comment",
    "  \t# indented",
    "",
    "\t",
    "\"",
    "é",
    "\0",
];

/// Checks the properties on one input; returns whether it parsed.
fn check(bytes: &[u8]) -> bool {
    let Ok(f) = MsmtpFile::parse(bytes) else {
        return false;
    };
    assert_eq!(f.as_bytes(), bytes);
    for a in f.accounts() {
        assert!(a.block.end <= f.lines().len());
        let mut edited = f.clone();
        match edited.set(&a.name, Field::Port, "2525") {
            Ok(true) => {
                let n = lines(bytes).len();
                let m = lines(edited.as_bytes()).len();
                assert!(m == n || m == n + 1, "{n} -> {m}");
                assert_eq!(edited.account(&a.name).unwrap().port(), 2525);
            }
            Ok(false) => assert_eq!(edited.as_bytes(), bytes),
            Err(_) => {}
        }
        let mut planned = f.clone();
        let change = EndpointChange {
            security: Some(Security::Tls),
            ..Default::default()
        };
        let _ = plan::apply(&mut planned, &a.name, Role::Outgoing, &change);
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
                    *rng.pick(b"\"#:,\n\r\t 0123456789abcdefhlnoprstux")
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
