//! The `.reg` reader and writer on real exports (written by Wine's `reg export`, see
//! fixtures/make-fixtures.sh): unchanged files come back byte for byte, a one-value change
//! touches only that value's lines, and broken files are errors with line and column.

mod common;

use common::{changed_lines, fixture, utf16_text};
use mailmend_core::{Hive, RegPath, RegValue, Registry};
use mailmend_outlook::accounts::wide_binary;
use mailmend_outlook::regfile::{Encoding, Version};
use mailmend_outlook::{RegFile, RegFileStore};

const FIXTURES: [&str; 4] = [
    "alice-hkcu.reg",
    "bob-hku.reg",
    "profilelist.reg",
    "zoe-regedit4-ansi.reg",
];

const ALICE_IMAP: &str = r"HKEY_CURRENT_USER\Software\Microsoft\Office\16.0\Outlook\Profiles\Outlook\9375CFF0413111d3B88A00104B2A6676\00000002";

fn key(s: &str) -> RegPath {
    RegPath::parse(s).unwrap()
}

#[test]
fn every_fixture_round_trips_byte_for_byte() {
    for name in FIXTURES {
        let bytes = std::fs::read(fixture(name)).unwrap();
        let f = RegFile::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(f.as_bytes(), &bytes[..], "{name}");
    }
    let alice = RegFile::parse(&std::fs::read(fixture("alice-hkcu.reg")).unwrap()).unwrap();
    assert_eq!(alice.encoding(), Encoding::Utf16Le);
    assert_eq!(alice.version(), Version::V5);
}

#[test]
fn a_port_change_touches_only_its_line() {
    let before = std::fs::read(fixture("alice-hkcu.reg")).unwrap();
    let mut f = RegFile::parse(&before).unwrap();
    f.set(&key(ALICE_IMAP), "IMAP Port", &RegValue::Dword(143))
        .unwrap();
    assert_eq!(f.as_bytes().len(), before.len());
    let diff = changed_lines(&utf16_text(&before), &utf16_text(f.as_bytes()));
    assert_eq!(
        diff,
        [(
            "\"IMAP Port\"=dword:000003e1".to_string(),
            "\"IMAP Port\"=dword:0000008f".to_string()
        )]
    );
}

#[test]
fn a_host_change_rewrites_only_that_values_lines_in_utf16_binary() {
    let before = std::fs::read(fixture("alice-hkcu.reg")).unwrap();
    let mut f = RegFile::parse(&before).unwrap();
    // Same length: the digits change in place.
    f.set(
        &key(ALICE_IMAP),
        "IMAP Server",
        &wide_binary("imap.example.org"),
    )
    .unwrap();
    let diff = changed_lines(&utf16_text(&before), &utf16_text(f.as_bytes()));
    assert_eq!(diff.len(), 1, "{diff:?}");
    assert!(
        diff[0].0.starts_with("  6c,00,65,00,2e,00,63,00"),
        "{diff:?}"
    );
    // Longer: the value is rewrapped as regedit wraps it; every other line stays.
    let mut g = RegFile::parse(&before).unwrap();
    g.set(
        &key(ALICE_IMAP),
        "IMAP Server",
        &wide_binary("imap-eu-west-3.mail.example.com"),
    )
    .unwrap();
    let (old, new) = (utf16_text(&before), utf16_text(g.as_bytes()));
    let start = old.find("\"IMAP Server\"=").unwrap();
    let old_end = start + old[start..].find("\"IMAP Use SSL\"").unwrap();
    let new_end = start + new[start..].find("\"IMAP Use SSL\"").unwrap();
    assert_eq!(old[..start], new[..start]);
    assert_eq!(old[old_end..], new[new_end..]);
    let value_lines: Vec<&str> = new[start..new_end].split_terminator("\r\n").collect();
    assert_eq!(value_lines.len(), 3, "{value_lines:?}");
    assert!(value_lines.iter().all(|l| l.chars().count() <= 80));
    assert_eq!(
        g.get(&key(ALICE_IMAP), "imap server"),
        Some(wide_binary("imap-eu-west-3.mail.example.com"))
    );
}

#[test]
fn the_store_writes_atomically_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice.reg");
    std::fs::copy(fixture("alice-hkcu.reg"), &path).unwrap();
    let store = RegFileStore::open(&path);
    let k = key(ALICE_IMAP);
    assert_eq!(
        store.get(&k, "IMAP Port").unwrap(),
        Some(RegValue::Dword(993))
    );
    store.set(&k, "IMAP Port", &RegValue::Dword(143)).unwrap();
    assert_eq!(
        store.get(&k, "IMAP Port").unwrap(),
        Some(RegValue::Dword(143))
    );
    store.set(&k, "IMAP Port", &RegValue::Dword(993)).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(fixture("alice-hkcu.reg")).unwrap()
    );
    // A new value goes at the end of its key's section; deleting it gives the file back.
    store.set(&k, "Added", &RegValue::Dword(7)).unwrap();
    let text = utf16_text(&std::fs::read(&path).unwrap());
    let section = &text[text.find(&format!("[{ALICE_IMAP}]")).unwrap()..];
    let section = &section[..section.find("\r\n\r\n").unwrap()];
    assert!(section.ends_with("\"Added\"=dword:00000007"), "{section}");
    store.delete_value(&k, "added").unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(fixture("alice-hkcu.reg")).unwrap()
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["alice.reg"], "temporary file left behind");
    // A value of a key that is not in the file goes into a new section at the end.
    let fresh = key(r"HKEY_CURRENT_USER\Software\mailmend-test");
    store
        .set(&fresh, "Name", &RegValue::String("a \"b\" c:\\d".into()))
        .unwrap();
    let text = utf16_text(&std::fs::read(&path).unwrap());
    assert!(
        text.ends_with("\r\n\r\n[HKEY_CURRENT_USER\\Software\\mailmend-test]\r\n\"Name\"=\"a \\\"b\\\" c:\\\\d\"\r\n\r\n"),
        "{}",
        &text[text.len() - 120..]
    );
    assert!(store
        .subkeys(&key("HKEY_CURRENT_USER\\Software"))
        .unwrap()
        .contains(&"mailmend-test".to_string()));
}

#[test]
fn odd_escapes_are_read_and_kept() {
    let f = RegFile::parse(&std::fs::read(fixture("alice-hkcu.reg")).unwrap()).unwrap();
    let k = key(
        r"HKCU\Software\Microsoft\Office\16.0\Outlook\Profiles\Outlook\0a0d020000000000c000000000000046",
    );
    assert_eq!(
        f.get(&k, "Path \"quoted\"\\back"),
        Some(RegValue::String(
            "C:\\Users\\alice\\AppData\\Local\\Microsoft\\Outlook\\\"x\".ost".into()
        ))
    );
}

#[test]
fn an_ansi_regedit4_file_reads_and_writes_in_its_code_page() {
    let before = std::fs::read(fixture("zoe-regedit4-ansi.reg")).unwrap();
    let mut f = RegFile::parse(&before).unwrap();
    assert_eq!((f.encoding(), f.version()), (Encoding::Ansi, Version::V4));
    let k = key(
        r"HKEY_CURRENT_USER\Software\Microsoft\Office\16.0\Outlook\Profiles\Zoë\9375CFF0413111d3B88A00104B2A6676\0000000a",
    );
    assert_eq!(
        f.get(&k, "Account Name"),
        Some(RegValue::String("Zoë Müller".into()))
    );
    assert_eq!(f.get(&k, "IMAP Use SSL"), Some(RegValue::Dword(1)));
    assert_eq!(
        f.get(&k, "Signature"),
        Some(RegValue::ExpandString("%USERPROFILE%\\é".into()))
    );
    assert_eq!(
        f.get(&k, "Folders"),
        Some(RegValue::MultiString(vec!["Inbox".into(), "Sent".into()]))
    );
    f.set(
        &k,
        "SMTP Server",
        &RegValue::String("smtp.exämple.de".into()),
    )
    .unwrap();
    let after = f.as_bytes();
    let text = |b: &[u8]| {
        b.split(|&c| c == b'\n')
            .map(<[u8]>::to_vec)
            .collect::<Vec<_>>()
    };
    let (a, b) = (text(&before), text(after));
    let diff: Vec<_> = a.iter().zip(&b).filter(|(x, y)| x != y).collect();
    assert_eq!(diff.len(), 1);
    assert_eq!(diff[0].1, b"\"SMTP Server\"=\"smtp.ex\xe4mple.de\"\r");
}

#[test]
fn a_deleted_key_is_gone_and_its_name_can_return() {
    let f = RegFile::parse(&std::fs::read(fixture("zoe-regedit4-ansi.reg")).unwrap()).unwrap();
    let st = f.state();
    let zoe = RegPath::new(
        Hive::CurrentUser,
        r"Software\Microsoft\Office\16.0\Outlook\Profiles\Zoë",
    );
    assert!(!st.has_key(&zoe.join("Stale")));
    assert!(st.has_key(&zoe));
}

/// A UTF-16LE file from text, as `reg export` writes it.
fn utf16_file(text: &str) -> Vec<u8> {
    let mut out = vec![0xFF, 0xFE];
    out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    out
}

#[test]
fn malformed_exports_are_errors_with_line_and_column_never_panics() {
    let text = utf16_text(&std::fs::read(fixture("alice-hkcu.reg")).unwrap());
    let broken = text.replacen(
        "\"IMAP Port\"=dword:000003e1",
        "\"IMAP Port\"=dword:000003g1",
        1,
    );
    let line = broken[..broken.find("000003g1").unwrap()]
        .matches('\n')
        .count()
        + 1;
    let e = RegFile::parse(&utf16_file(&broken)).unwrap_err();
    assert_eq!(
        (e.line, e.column),
        (line, "\"IMAP Port\"=dword:000003".len() + 1),
        "{e}"
    );

    // Cut after a continuation backslash.
    let cut = &text[..text.find("00,\\\r\n").unwrap() + 6];
    let e = RegFile::parse(&utf16_file(cut)).unwrap_err();
    assert!(e.message.contains("continuation"), "{e}");

    // An odd number of bytes, a lone surrogate, no header, a value outside a key.
    let mut odd = utf16_file(&text);
    odd.push(0x41);
    assert!(RegFile::parse(&odd).is_err());
    let mut lone = utf16_file("Windows Registry Editor Version 5.00\r\n");
    lone.extend([0x00, 0xD8]);
    assert!(RegFile::parse(&lone).is_err());
    assert_eq!(
        RegFile::parse(&utf16_file("\"a\"=dword:1\r\n"))
            .unwrap_err()
            .line,
        1
    );
    let e = RegFile::parse(&utf16_file(
        "Windows Registry Editor Version 5.00\r\n\r\n\"a\"=\"x\"\r\n",
    ))
    .unwrap_err();
    assert_eq!((e.line, e.column), (3, 1));
    let e = RegFile::parse(&utf16_file(
        "Windows Registry Editor Version 5.00\r\n[HKEY_USERS\\x]\r\n\"a\"=\"unterminated\r\n",
    ))
    .unwrap_err();
    assert_eq!((e.line, e.column), (3, 5), "{e}");
    let e = RegFile::parse(&utf16_file("Windows Registry Editor Version 5.00\r\n[HKEY_USERS\\x]\r\n\"a\"=\"C:\\Program Files\"\r\n")).unwrap_err();
    assert!(e.message.contains("unknown escape"), "{e}");
}
