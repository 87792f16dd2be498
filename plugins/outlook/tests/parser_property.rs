//! Property tests of the `.reg` reader on thousands of pseudo-random inputs (fragments of real
//! grammar, and byte mutations of the real fixtures): it never panics, whatever it accepts keeps
//! its bytes, and a value written into what it accepts reads back while the rest stays.

mod common;

use mailmend_core::{RegPath, RegValue};
use mailmend_outlook::regfile::EditError;
use mailmend_outlook::RegFile;

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
}

const FRAGMENTS: &[&str] = &[
    "Windows Registry Editor Version 5.00",
    "REGEDIT4",
    "",
    "  ",
    "; comment",
    "[HKEY_CURRENT_USER\\Software\\A]",
    "[HKEY_CURRENT_USER\\Software\\A\\B]",
    "[-HKEY_CURRENT_USER\\Software\\A]",
    "[HKEY_USERS\\S-1-5-21-1\\x]",
    "[HKCU\\Software\\A",
    "[HKEY_NOWHERE\\x]",
    "[]",
    "\"IMAP Port\"=dword:000003e1",
    "\"IMAP Port\"=dword:",
    "\"IMAP Port\"=dword:123456789",
    "\"Name\"=\"value\"",
    "\"Na\\\"me\"=\"va\\\\lue\"",
    "\"bad\"=\"\\q\"",
    "\"x\"=-",
    "@=\"default\"",
    "@=hex:",
    "\"b\"=hex:01,02,03",
    "\"b\"=hex:01,02,\\",
    "  03,04",
    "  ",
    "\"b\"=hex:0",
    "\"b\"=hex:01,,02",
    "\"e\"=hex(2):41,00,00,00",
    "\"m\"=hex(7):41,00,00,00,00,00",
    "\"q\"=hex(b):01,00,00,00,00,00,00,00",
    "\"q\"=hex(b):01",
    "\"n\"=hex(0):",
    "\"t\"=hex(ffffffff):00",
    "\"t\"=hex(123456789):00",
    "\"u\"=\"unterminated",
    "\"v\" = \"spaced\"",
    "\"IMAP Server\"=hex:69,00,6d,00,00,00",
    "junk",
];

const NAMES: [&str; 4] = ["IMAP Port", "Name", "new value", ""];

fn values(r: &mut Rng) -> RegValue {
    match r.below(6) {
        0 => RegValue::Dword(r.next() as u32),
        1 => RegValue::String("a \"quoted\" \\ value".into()),
        2 => RegValue::Binary((0..r.below(90)).map(|i| i as u8).collect()),
        3 => RegValue::ExpandString("%USERPROFILE%\\é".into()),
        4 => RegValue::MultiString(vec!["a".into(), "b".into()]),
        _ => RegValue::Qword(r.next()),
    }
}

/// What every accepted input must satisfy.
fn check(bytes: &[u8], r: &mut Rng) {
    let Ok(file) = RegFile::parse(bytes) else {
        return;
    };
    assert_eq!(file.as_bytes(), bytes);
    let keys: Vec<RegPath> = file
        .entries()
        .iter()
        .filter_map(|e| match &e.kind {
            mailmend_outlook::regfile::EntryKind::Key { path, .. } => Some(path.clone()),
            _ => None,
        })
        .chain([RegPath::parse("HKEY_CURRENT_USER\\Software\\New").unwrap()])
        .collect();
    for _ in 0..3 {
        let key = &keys[r.below(keys.len())];
        let name = NAMES[r.below(NAMES.len())];
        let value = values(r);
        let mut edited = file.clone();
        match edited.set(key, name, &value) {
            Ok(()) => {
                let again = RegFile::parse(edited.as_bytes()).expect("an edited file parses");
                assert_eq!(again.get(key, name), Some(value.clone()));
                let mut deleted = again.clone();
                deleted.delete(key, name).expect("a value can be deleted");
                assert_eq!(
                    RegFile::parse(deleted.as_bytes()).unwrap().get(key, name),
                    None
                );
            }
            Err(EditError::Unrepresentable(_) | EditError::RawStringInV4(_)) => {}
            Err(e) => panic!("set failed on an accepted file: {e}"),
        }
    }
}

fn utf16(s: &str) -> Vec<u8> {
    let mut out = vec![0xFF, 0xFE];
    out.extend(s.encode_utf16().flat_map(u16::to_le_bytes));
    out
}

#[test]
fn random_fragments_never_panic_and_round_trip() {
    let mut r = Rng(0x5EED_0F00_7100_C0DE);
    for _ in 0..4000 {
        let n = 1 + r.below(12);
        let newline = if r.below(2) == 0 { "\r\n" } else { "\n" };
        let mut text = String::new();
        for i in 0..n {
            let f = if i == 0 && r.below(8) != 0 {
                FRAGMENTS[r.below(2)]
            } else {
                FRAGMENTS[r.below(FRAGMENTS.len())]
            };
            text.push_str(f);
            if r.below(10) != 0 {
                text.push_str(newline);
            }
        }
        let bytes = match r.below(3) {
            0 => utf16(&text),
            1 => text.clone().into_bytes(),
            _ => {
                let mut b = vec![0xEF, 0xBB, 0xBF];
                b.extend(text.bytes());
                b
            }
        };
        check(&bytes, &mut r);
    }
}

#[test]
fn mutated_fixtures_never_panic_and_round_trip() {
    let mut r = Rng(0xF1C7_0E5A_1100_BEEF);
    for name in ["alice-hkcu.reg", "bob-hku.reg", "zoe-regedit4-ansi.reg"] {
        let original = std::fs::read(common::fixture(name)).unwrap();
        check(&original, &mut r);
        for _ in 0..150 {
            let mut b = original.clone();
            for _ in 0..1 + r.below(4) {
                if b.is_empty() {
                    break;
                }
                let at = r.below(b.len());
                match r.below(4) {
                    0 => b[at] = r.next() as u8,
                    1 => {
                        b.remove(at);
                    }
                    2 => b.insert(at, *b"\\,\r\n\"[]-:=".get(r.below(10)).unwrap_or(&0)),
                    _ => b.truncate(at),
                }
            }
            check(&b, &mut r);
        }
    }
}
