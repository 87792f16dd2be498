//! Fuzz target: the prefs.js parser never panics, and whatever it accepts re-serialises byte
//! for byte, also after setting a pref to its own value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailmend_thunderbird::prefs::{PrefValue, PrefsFile};

fuzz_target!(|data: &[u8]| {
    let Ok(file) = PrefsFile::parse(data) else {
        return;
    };
    assert_eq!(file.as_bytes(), data);
    let mut same = file.clone();
    for p in file.prefs() {
        let current = file.get(&p.name).cloned();
        if let Some(v) = current.filter(|v| *v != PrefValue::Withheld) {
            assert!(!same.set(&p.name, &v).unwrap());
        }
    }
    assert_eq!(same.as_bytes(), data);
});
