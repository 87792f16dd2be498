//! Property tests of the prefs parser on thousands of pseudo-random inputs: it never panics,
//! whatever it accepts re-serialises byte for byte, and edits of what it accepts stay confined
//! to the value they change.

mod common;

use common::fixture;
use mailmend_thunderbird::prefs::{is_secret_name, PrefValue, PrefsFile};

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
    "user_pref",
    "pref",
    "sticky_pref",
    "lock_pref",
    "(",
    ")",
    ",",
    ";",
    "-",
    "+",
    "0",
    "993",
    "2147483647",
    "2147483648",
    "-2147483648",
    "true",
    "false",
    "locked",
    "\"a\"",
    "'b'",
    "\"mail.server.server1.port\"",
    "\"x\\\"y\"",
    "'\\u00e9'",
    "\"\\uD83D\\uDE00\"",
    "\"\\x41\"",
    "\"\\x00\"",
    "\"\\uDE00\"",
    "\"\\\\\"",
    "\"unterminated",
    " ",
    "\t",
    "\n",
    "\r\n",
    "\r",
    "\x0b",
    "// c\n",
    "# c\r\n",
    "/* c */",
    "/* open",
    "/",
    "\u{feff}",
    "é",
    "\0",
    "\"password\"",
    "\"a.password\"",
    "@",
    "123abc",
];

/// A mostly valid statement, with random spacing and comments, sometimes damaged.
fn statement(rng: &mut Rng, out: &mut Vec<u8>) {
    let gap = |rng: &mut Rng, out: &mut Vec<u8>| {
        for _ in 0..rng.below(3) {
            out.extend_from_slice(
                rng.pick(&[" ", "", "\n", "\r\n", "\t", "/* c */", "\r"])
                    .as_bytes(),
            );
        }
    };
    let names = [
        "\"a\"",
        "'b'",
        "\"mail.server.server1.port\"",
        "\"c\\u00e9\"",
        "\"pw.Password\"",
    ];
    let values = [
        "1",
        "-5",
        "+ 7",
        "true",
        "false",
        "\"s\"",
        "'t\\'x'",
        "\"\\n\\r\\x7f\"",
        "\"é\"",
    ];
    let kind = *rng.pick(&["user_pref", "user_pref", "user_pref", "pref", "sticky_pref"]);
    let parts = [
        kind,
        "(",
        *rng.pick(&names),
        ",",
        *rng.pick(&values),
        ")",
        ";",
    ];
    for part in parts {
        if rng.below(40) == 0 {
            out.extend_from_slice(rng.pick(FRAGMENTS).as_bytes());
        } else {
            out.extend_from_slice(part.as_bytes());
        }
        gap(rng, out);
    }
    if rng.below(4) == 0 {
        out.extend_from_slice(rng.pick(&["// end\n", "# end\n", "\n", "\r\n"]).as_bytes());
    }
}

/// Checks the properties on one input; returns whether it parsed.
fn check(bytes: &[u8], rng: &mut Rng) -> bool {
    let Ok(f) = PrefsFile::parse(bytes) else {
        return false;
    };
    assert_eq!(f.as_bytes(), bytes);
    for p in f.prefs() {
        assert!(p.span.start <= p.value_span.start);
        assert!(p.value_span.end <= p.span.end && p.span.end <= bytes.len());
        assert_eq!(is_secret_name(&p.name), p.value == PrefValue::Withheld);
    }
    if f.prefs().is_empty() {
        return true;
    }
    // Setting a pref to its own value changes nothing.
    let p = rng.pick(f.prefs()).clone();
    let current = f.get(&p.name).unwrap().clone();
    let mut same = f.clone();
    if current != PrefValue::Withheld {
        assert!(!same.set(&p.name, &current).unwrap());
        assert_eq!(same.as_bytes(), bytes);
    }
    // Setting a new value rewrites only the deciding statement's value token.
    let target = f.find(&p.name).unwrap().clone();
    let new = if rng.below(2) == 0 {
        PrefValue::Int(rng.next() as i32)
    } else {
        PrefValue::String("new \"v\"\n".into())
    };
    let mut edited = f.clone();
    match edited.set(&p.name, &new) {
        Ok(_) => {
            let after = edited.as_bytes();
            let tail = bytes.len() - target.value_span.end;
            assert_eq!(
                &after[..target.value_span.start],
                &bytes[..target.value_span.start]
            );
            assert_eq!(
                &after[after.len() - tail..],
                &bytes[target.value_span.end..]
            );
            assert_eq!(edited.get(&p.name), Some(&new));
            assert_eq!(edited.prefs().len(), f.prefs().len());
        }
        Err(_) => assert!(is_secret_name(&p.name)),
    }
    // Appending a new pref keeps every byte before it.
    let mut appended = f.clone();
    appended
        .set("mailmend.property.new", &PrefValue::Bool(true))
        .unwrap();
    assert_eq!(&appended.as_bytes()[..bytes.len()], bytes);
    assert_eq!(appended.prefs().len(), f.prefs().len() + 1);
    true
}

#[test]
fn random_bytes_never_panic_and_what_parses_round_trips() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut parsed = 0;
    for _ in 0..4000 {
        let len = rng.below(64);
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                if rng.below(3) == 0 {
                    *rng.pick(b"\"'\\()+,-;/*#\n\r 0123456789_abcdefprtux")
                } else {
                    rng.next() as u8
                }
            })
            .collect();
        parsed += usize::from(check(&bytes, &mut rng));
    }
    // Empty and whitespace-only inputs parse; most random bytes do not.
    assert!(parsed > 0);
}

#[test]
fn token_soup_never_panics_and_what_parses_round_trips() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let mut parsed = 0;
    let total = 6000;
    for _ in 0..total {
        let mut bytes = Vec::new();
        if rng.below(10) == 0 {
            bytes.extend_from_slice("\u{feff}".as_bytes());
        }
        for _ in 0..rng.below(6) {
            if rng.below(8) == 0 {
                bytes.extend_from_slice(rng.pick(FRAGMENTS).as_bytes());
            } else {
                statement(&mut rng, &mut bytes);
            }
        }
        parsed += usize::from(check(&bytes, &mut rng));
    }
    // The generator must exercise the accepting path a good share of the time.
    assert!(parsed > total / 5, "only {parsed} of {total} parsed");
}

#[test]
fn mutated_fixtures_never_panic_and_what_parses_round_trips() {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let sources: Vec<Vec<u8>> = [
        "prefs-tb115.js",
        "prefs-tb115-crlf.js",
        "prefs-tb115-bom.js",
        "user.js",
        "prefs-broken.js",
    ]
    .iter()
    .map(|n| fixture(n))
    .collect();
    let mut parsed = 0;
    let total = 1500;
    for _ in 0..total {
        let mut bytes = rng.pick(&sources).clone();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(bytes.len() + 1);
            match rng.below(4) {
                0 if at < bytes.len() => bytes[at] = rng.next() as u8,
                1 => {
                    let end = (at + rng.below(16)).min(bytes.len());
                    bytes.drain(at..end);
                }
                2 => {
                    let frag = rng.pick(FRAGMENTS).as_bytes().to_vec();
                    bytes.splice(at..at, frag);
                }
                _ => {
                    let end = (at + rng.below(40)).min(bytes.len());
                    let copy = bytes[at..end].to_vec();
                    bytes.splice(at..at, copy);
                }
            }
        }
        parsed += usize::from(check(&bytes, &mut rng));
    }
    assert!(parsed > total / 10, "only {parsed} of {total} parsed");
}
