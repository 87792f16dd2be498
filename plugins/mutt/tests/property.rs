//! Property tests of the muttrc parser on thousands of pseudo-random inputs: it never panics,
//! positions stay inside the input, URL spans point at the bytes they describe, and rewriting a
//! URL's host in place reads back as exactly that change.

mod common;

use common::fixture;
use mailmend_mutt::muttrc::{MuttFile, SetOp, StatementKind, Value};
use mailmend_mutt::url::Url;

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
    "set ",
    "unset ",
    "reset ",
    "toggle ",
    "source ",
    "mailboxes ",
    "named-mailboxes ",
    "folder-hook ",
    "folder",
    "spoolfile",
    "smtp_url",
    "imap_pass",
    "no",
    "inv",
    "&",
    "?",
    "=",
    " = ",
    "+=",
    ";",
    "#",
    "# c\n",
    "\n",
    "\r\n",
    "\\\n",
    "\\",
    "\\\\",
    "\\n",
    "\\101",
    "\\cA",
    "\"",
    "'",
    "`",
    "`x`",
    "$",
    "$HOME",
    "${X}",
    "${",
    " ",
    "\t",
    "\r",
    "\0",
    "é",
    "imaps://",
    "imap://",
    "smtps://",
    "pop://",
    "u@",
    "u:p@",
    "h.example",
    ":993",
    ":",
    "/",
    "[::1]",
    "%40",
    "~/",
    "x|",
];

fn urls(f: &MuttFile) -> Vec<(usize, Url)> {
    f.statements()
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match &s.kind {
            StatementKind::Set {
                op: SetOp::Assign(Value::Url(u)),
                ..
            }
            | StatementKind::Mailbox {
                mailbox: Value::Url(u),
            }
            | StatementKind::Source {
                file: Value::Url(u),
            } => Some((i, u.clone())),
            _ => None,
        })
        .collect()
}

/// Checks the properties on one input; returns whether it parsed.
fn check(bytes: &[u8]) -> bool {
    let lines = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
    let f = match MuttFile::parse(bytes) {
        Ok(f) => f,
        Err(e) => {
            assert!(e.line >= 1 && e.line <= lines, "{e:?}");
            assert!(e.column >= 1);
            return false;
        }
    };
    assert_eq!(f.as_bytes(), bytes);
    for s in f.statements() {
        assert!(s.line >= 1 && s.line <= lines && s.column >= 1);
    }
    for (i, u) in urls(&f) {
        if let Some(r) = &u.spans.scheme {
            assert_eq!(
                String::from_utf8_lossy(&bytes[r.clone()]).to_ascii_lowercase(),
                u.scheme
            );
        }
        if let Some(r) = &u.spans.port {
            let digits = String::from_utf8_lossy(&bytes[r.clone()]).into_owned();
            assert_eq!(digits.parse::<u16>().ok(), u.port);
        }
        if let Some(r) = &u.spans.host {
            let text = String::from_utf8_lossy(&bytes[r.clone()]).into_owned();
            assert!(
                text == u.host || text == format!("[{}]", u.host),
                "{text:?}"
            );
            // Rewriting the host in place changes that URL's host and nothing else.
            let mut edited = bytes.to_vec();
            edited.splice(r.clone(), b"new.example".iter().copied());
            let g = MuttFile::parse(&edited).expect("a host rewrite keeps the file readable");
            assert_eq!(g.statements().len(), f.statements().len());
            let after = urls(&g);
            let (_, v) = after.iter().find(|(j, _)| *j == i).expect("url kept");
            assert_eq!(
                v.host,
                "new.example",
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
            assert_eq!((&v.scheme, &v.user, v.port), (&u.scheme, &u.user, u.port));
            assert_eq!(v.has_password, u.has_password);
            // So does inserting a port after the host, or rewriting the one there is.
            let mut edited = bytes.to_vec();
            match &u.spans.port {
                Some(p) => drop(edited.splice(p.clone(), b"2525".iter().copied())),
                None if u.port.is_none() => {
                    drop(edited.splice(r.end..r.end, b":2525".iter().copied()))
                }
                None => continue,
            }
            let g = MuttFile::parse(&edited).expect("a port rewrite keeps the file readable");
            let after = urls(&g);
            let (_, v) = after.iter().find(|(j, _)| *j == i).expect("url kept");
            assert_eq!((v.port, &v.host), (Some(2525), &u.host));
        }
    }
    true
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut parsed = 0;
    for _ in 0..5000 {
        let len = rng.below(80);
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                if rng.below(3) == 0 {
                    *rng.pick(b"\"'\\`$#;=:/@[] \n\r\tsetfoldrimap")
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
fn token_soup_never_panics_and_url_spans_hold() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let mut parsed = 0;
    let total = 6000;
    for _ in 0..total {
        let mut bytes = Vec::new();
        for _ in 0..rng.below(14) {
            bytes.extend_from_slice(rng.pick(FRAGMENTS).as_bytes());
        }
        parsed += usize::from(check(&bytes));
    }
    assert!(parsed > total / 5, "only {parsed} of {total} parsed");
}

#[test]
fn mutated_fixtures_never_panic_and_url_spans_hold() {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let sources: Vec<Vec<u8>> = [
        "mutt-multi/muttrc",
        "mutt-multi/accounts/work",
        "mutt-multi/accounts/personal",
        "muttrc-simple",
        "muttrc-broken",
    ]
    .iter()
    .map(|n| fixture(n))
    .collect();
    let mut parsed = 0;
    let total = 2000;
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
        parsed += usize::from(check(&bytes));
    }
    assert!(parsed > total / 10, "only {parsed} of {total} parsed");
}
