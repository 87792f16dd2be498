//! Fuzz target: the `.reg` reader never panics, whatever it accepts keeps its bytes, and a
//! value set in (then deleted from) an accepted file reads back, leaving a file that parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailmend_core::{RegPath, RegValue};
use mailmend_outlook::regfile::{EditError, EntryKind};
use mailmend_outlook::RegFile;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = RegFile::parse(data) else {
        return;
    };
    assert_eq!(file.as_bytes(), data);
    let mut keys: Vec<RegPath> = file
        .entries()
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::Key { path, .. } => Some(path.clone()),
            _ => None,
        })
        .take(2)
        .collect();
    keys.push(RegPath::parse("HKEY_CURRENT_USER\\Software\\mailmend-fuzz").expect("a valid path"));
    let values = [
        RegValue::Dword(587),
        RegValue::Binary(
            "smtp.example.com\0"
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect(),
        ),
        RegValue::String("a \"b\" \\ c".into()),
    ];
    for key in &keys {
        for (name, value) in ["SMTP Port", "SMTP Server", ""].iter().zip(&values) {
            let mut edited = file.clone();
            match edited.set(key, name, value) {
                Ok(()) => {
                    let again = RegFile::parse(edited.as_bytes()).expect("an edited file parses");
                    assert_eq!(again.get(key, name).as_ref(), Some(value));
                    let mut gone = again.clone();
                    gone.delete(key, name).expect("a value can be deleted");
                    let last = RegFile::parse(gone.as_bytes())
                        .expect("a file with a value deleted parses");
                    assert_eq!(last.get(key, name), None);
                }
                Err(EditError::Unrepresentable(_) | EditError::RawStringInV4(_)) => {}
                Err(e) => panic!("set failed on an accepted file: {e}"),
            }
        }
    }
});
