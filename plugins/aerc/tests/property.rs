//! Property tests of the accounts.conf parser on thousands of pseudo-random inputs: it never
//! panics, spans stay inside the input and point at what they describe, and rewriting a URL's
//! host or port in place reads back as exactly that change.

mod common;

use common::fixture;
use mailmend_aerc::ini::{AccountsFile, Value};
use mailmend_aerc::url::Url;

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

    fn pick_str(&mut self, items: &[&'static str]) -> &'static str {
        items[self.below(items.len())]
    }
}

const FRAGMENTS: &[&str] = &[
    "[",
    "]",
    "[A]\n",
    "[B]\r\n",
    "source",
    "outgoing",
    "from",
    "smtp-starttls",
    " = ",
    "=",
    "\n",
    "\r\n",
    "#",
    ";",
    "# c\n",
    "'",
    "\"",
    "`",
    "\"\"\"",
    "\\",
    " ",
    "\t",
    "\0",
    "é",
    "\u{feff}",
    "imaps://",
    "imap+insecure://",
    "smtp://",
    "smtps+plain://",
    "u@",
    "u:p@",
    "h.example",
    ":993",
    ":",
    "/",
    "?q=1",
    "[::1]",
    "%40",
    "yes",
];

/// Every URL entry as (section, key, url).
fn urls(f: &AccountsFile) -> Vec<(String, String, Url)> {
    let mut out = Vec::new();
    for s in f.sections() {
        for key in ["source", "outgoing"] {
            if let Some(Value::Url(u)) = f.get(s, key).map(|e| &e.value) {
                out.push((s.to_string(), key.to_string(), u.clone()));
            }
        }
    }
    out
}

fn url_after(f: &AccountsFile, section: &str, key: &str) -> Url {
    match f.get(section, key).map(|e| &e.value) {
        Some(Value::Url(u)) => u.clone(),
        other => panic!("the URL is gone: {other:?}"),
    }
}

/// Checks the properties on one input; returns whether it parsed.
fn check(bytes: &[u8]) -> bool {
    let lines = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
    let f = match AccountsFile::parse(bytes) {
        Ok(f) => f,
        Err(e) => {
            assert!(e.line >= 1 && e.line <= lines && e.column >= 1, "{e:?}");
            return false;
        }
    };
    assert_eq!(f.as_bytes(), bytes);
    for b in f.blocks() {
        for e in &b.entries {
            for r in [&e.value_span, &e.separator, &e.indent, &e.line_span, &e.eol] {
                assert!(r.start <= r.end && r.end <= bytes.len());
            }
            assert!(e.line_span.start <= e.value_span.start && e.value_span.end <= e.line_span.end);
        }
    }
    for (section, key, u) in urls(&f) {
        let host = String::from_utf8_lossy(&bytes[u.spans.host.clone()]).into_owned();
        assert!(
            host == u.host || host == format!("[{}]", u.host),
            "{host:?}"
        );
        if let Some(p) = &u.spans.port {
            assert_eq!(
                String::from_utf8_lossy(&bytes[p.clone()])
                    .parse::<u16>()
                    .ok(),
                u.port
            );
        }
        let mut edited = bytes.to_vec();
        edited.splice(u.spans.host.clone(), b"new.example".iter().copied());
        let g = AccountsFile::parse(&edited).expect("a host rewrite keeps the file readable");
        assert_eq!(g.sections(), f.sections());
        let v = url_after(&g, &section, &key);
        assert_eq!(v.host, "new.example");
        assert_eq!(
            (&v.protocol, &v.parts, &v.user, v.port),
            (&u.protocol, &u.parts, &u.user, u.port)
        );
        assert_eq!(v.has_password, u.has_password);

        let mut edited = bytes.to_vec();
        match &u.spans.port {
            Some(p) => drop(edited.splice(p.clone(), b"2525".iter().copied())),
            None => {
                let at = u.spans.host.end;
                drop(edited.splice(at..at, b":2525".iter().copied()))
            }
        }
        let g = AccountsFile::parse(&edited).expect("a port rewrite keeps the file readable");
        let v = url_after(&g, &section, &key);
        assert_eq!((v.port, &v.host), (Some(2525), &u.host));
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
                    *rng.pick(b"[]=#;'\"`\\:/@? \n\r\tsourcetgimap")
                } else {
                    rng.next() as u8
                }
            })
            .collect();
        parsed += usize::from(check(&bytes));
    }
    assert!(parsed > 0);
}

/// Mostly well-formed lines (sections, URL entries, comments), sometimes damaged.
fn soup(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.below(8) {
        let line = match rng.below(5) {
            0 => format!("[{}]", rng.pick(&["A", "B", "Work", " x ", "DEFAULT"])),
            1 => rng.pick(&["# c", "; c", "", "  "]).to_string(),
            2 => format!("from = {}", rng.pick(&["a@b.c", "\"N\" <n@x>", "'q'"])),
            _ => {
                let mut v = String::new();
                v.push_str(rng.pick_str(&[
                    "imaps://",
                    "imap+insecure://",
                    "smtp://",
                    "smtps+plain://",
                    "IMAP://",
                ]));
                v.push_str(rng.pick_str(&["", "u@", "u:p@", "a%40b@", "u:p:q@x@"]));
                v.push_str(rng.pick_str(&["h.example", "[::1]", "[fe80::1]", "h", ""]));
                v.push_str(rng.pick_str(&["", ":993", ":", ":0", ":65536"]));
                v.push_str(rng.pick_str(&["", "/", "/INBOX", "?client_secret=s", " # c", " ; c"]));
                let key = rng.pick(&["source", "outgoing", " source ", "`source`"]);
                let sep = rng.pick(&["=", " = ", "   =\t"]);
                let quoted = match rng.below(4) {
                    0 => format!("\"{v}\""),
                    1 => format!("`{v}`"),
                    _ => v,
                };
                format!("{key}{sep}{quoted}")
            }
        };
        let mut line = line.into_bytes();
        if rng.below(6) == 0 {
            let at = rng.below(line.len() + 1);
            line.splice(at..at, rng.pick(FRAGMENTS).bytes());
        }
        out.extend_from_slice(&line);
        out.extend_from_slice(rng.pick(&["\n", "\r\n", "\n"]).as_bytes());
    }
    out
}

#[test]
fn token_soup_never_panics_and_url_spans_hold() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let mut parsed = 0;
    let mut with_urls = 0;
    let total = 6000;
    for _ in 0..total {
        let bytes = soup(&mut rng);
        if check(&bytes) {
            parsed += 1;
            with_urls +=
                usize::from(AccountsFile::parse(&bytes).is_ok_and(|f| !urls(&f).is_empty()));
        }
    }
    assert!(parsed > total / 5, "only {parsed} of {total} parsed");
    assert!(with_urls > 0, "the generator never produced a URL");
}

#[test]
fn mutated_fixtures_never_panic_and_url_spans_hold() {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let sources = [fixture("accounts.conf"), fixture("accounts-broken.conf")];
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
