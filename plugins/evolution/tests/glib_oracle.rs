//! The key-file parser checked against GLib itself, which is what Evolution reads its sources
//! with: on the fixtures and on thousands of pseudo-random files, both accept or both refuse,
//! they see the same groups and keys, and every string value decodes the same (or fails to in
//! both). Loads the system's `libglib-2.0.so.0`, present wherever Evolution can run.
#![cfg(target_os = "linux")]

mod common;

use libloading::Library;
use mailmend_evolution::keyfile::LineKind;
use mailmend_evolution::KeyFile;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr;

type New = unsafe extern "C" fn() -> *mut c_void;
type Load =
    unsafe extern "C" fn(*mut c_void, *const c_char, usize, c_int, *mut *mut c_void) -> c_int;
type Groups = unsafe extern "C" fn(*mut c_void, *mut usize) -> *mut *mut c_char;
type Keys = unsafe extern "C" fn(
    *mut c_void,
    *const c_char,
    *mut usize,
    *mut *mut c_void,
) -> *mut *mut c_char;
type GetString = unsafe extern "C" fn(
    *mut c_void,
    *const c_char,
    *const c_char,
    *mut *mut c_void,
) -> *mut c_char;
type Free = unsafe extern "C" fn(*mut c_void);
type StrFreev = unsafe extern "C" fn(*mut *mut c_char);

/// `G_KEY_FILE_KEEP_COMMENTS | G_KEY_FILE_KEEP_TRANSLATIONS`: every key is kept.
const KEEP_ALL: c_int = 3;

struct Glib {
    _lib: Library,
    new: New,
    load: Load,
    groups: Groups,
    keys: Keys,
    get_string: GetString,
    key_file_free: Free,
    free: Free,
    error_free: Free,
    strfreev: StrFreev,
}

/// What GLib read from a file: each group with each key and its string value (`None` when
/// GLib refuses to decode it).
type Reading = Vec<(String, Vec<(String, Option<String>)>)>;

impl Glib {
    fn load() -> Glib {
        // SAFETY: libglib's initialisers have no preconditions, and every symbol is used with
        // the C signature GLib documents for it.
        unsafe {
            let lib = Library::new("libglib-2.0.so.0")
                .expect("libglib-2.0.so.0 must be installed for this test");
            let new = *lib.get::<New>(b"g_key_file_new\0").unwrap();
            let load = *lib.get::<Load>(b"g_key_file_load_from_data\0").unwrap();
            let groups = *lib.get::<Groups>(b"g_key_file_get_groups\0").unwrap();
            let keys = *lib.get::<Keys>(b"g_key_file_get_keys\0").unwrap();
            let get_string = *lib.get::<GetString>(b"g_key_file_get_string\0").unwrap();
            let key_file_free = *lib.get::<Free>(b"g_key_file_free\0").unwrap();
            let free = *lib.get::<Free>(b"g_free\0").unwrap();
            let error_free = *lib.get::<Free>(b"g_error_free\0").unwrap();
            let strfreev = *lib.get::<StrFreev>(b"g_strfreev\0").unwrap();
            Glib {
                _lib: lib,
                new,
                load,
                groups,
                keys,
                get_string,
                key_file_free,
                free,
                error_free,
                strfreev,
            }
        }
    }

    /// Takes a NULL-terminated string vector GLib allocated, as C strings (names need not be
    /// UTF-8).
    unsafe fn strings(&self, v: *mut *mut c_char) -> Vec<CString> {
        let mut out = Vec::new();
        if v.is_null() {
            return out;
        }
        let mut i = 0;
        while !(*v.add(i)).is_null() {
            out.push(CStr::from_ptr(*v.add(i)).to_owned());
            i += 1;
        }
        (self.strfreev)(v);
        out
    }

    /// GLib's reading of `bytes`, or `None` when it refuses the file.
    fn read(&self, bytes: &[u8]) -> Option<Reading> {
        // SAFETY: the key file is created, used and freed here only; every string passed in is
        // NUL-terminated, and every string and error GLib returns is freed with its own free.
        unsafe {
            let kf = (self.new)();
            let mut err: *mut c_void = ptr::null_mut();
            let ok = (self.load)(kf, bytes.as_ptr().cast(), bytes.len(), KEEP_ALL, &mut err);
            if ok == 0 {
                if !err.is_null() {
                    (self.error_free)(err);
                }
                (self.key_file_free)(kf);
                return None;
            }
            let mut out = Vec::new();
            for gc in self.strings((self.groups)(kf, ptr::null_mut())) {
                let g = gc.to_string_lossy().into_owned();
                let mut err: *mut c_void = ptr::null_mut();
                let keys = self.strings((self.keys)(kf, gc.as_ptr(), ptr::null_mut(), &mut err));
                if !err.is_null() {
                    (self.error_free)(err);
                }
                let mut entries: Vec<(String, Option<String>)> = Vec::new();
                for kc in keys {
                    let k = kc.to_string_lossy().into_owned();
                    // GLib lists a key set twice twice; its value is the last one.
                    if entries.iter().any(|(seen, _)| *seen == k) {
                        continue;
                    }
                    let mut err: *mut c_void = ptr::null_mut();
                    let v = (self.get_string)(kf, gc.as_ptr(), kc.as_ptr(), &mut err);
                    let mut value = None;
                    if !v.is_null() {
                        value = Some(CStr::from_ptr(v).to_string_lossy().into_owned());
                        (self.free)(v.cast());
                    }
                    // GLib may hand back a string and an error (an invalid escape); Evolution
                    // then uses the property's default, as if the key were not there.
                    if !err.is_null() {
                        value = None;
                        (self.error_free)(err);
                    }
                    entries.push((k, value));
                }
                out.push((g, entries));
            }
            (self.key_file_free)(kf);
            Some(out)
        }
    }
}

/// mailmend's reading of the same file, in GLib's shape.
fn ours(f: &KeyFile) -> Reading {
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut out: Reading = Vec::new();
    for (i, line) in f.lines().iter().enumerate() {
        let (LineKind::Entry { .. }, Some(g)) = (&line.kind, line.group) else {
            continue;
        };
        let group_raw = &f.as_bytes()[f.groups()[g].raw.clone()];
        let key_raw = f.key(i).unwrap();
        let (group, key) = (lossy(group_raw), lossy(key_raw));
        let at = match out.iter().position(|(name, _)| *name == group) {
            Some(at) => at,
            None => {
                out.push((group, Vec::new()));
                out.len() - 1
            }
        };
        if !out[at].1.iter().any(|(k, _)| *k == key) {
            let value = f.get_raw(group_raw, key_raw).ok().flatten();
            out[at].1.push((key, value));
        }
    }
    // Groups without entries are groups too.
    for g in f.groups() {
        if !out.iter().any(|(name, _)| name == &g.name) {
            out.push((g.name.clone(), Vec::new()));
        }
    }
    out
}

/// Compares both readings of one input, ignoring order.
fn agree(glib: &Glib, bytes: &[u8]) -> bool {
    let theirs = glib.read(bytes);
    let mine = KeyFile::parse(bytes);
    assert_eq!(
        mine.is_ok(),
        theirs.is_some(),
        "GLib and mailmend disagree on accepting {:?} ({:?})",
        String::from_utf8_lossy(bytes),
        mine.err()
    );
    let (Ok(mine), Some(mut theirs)) = (mine, theirs) else {
        return false;
    };
    let mut mine = ours(&mine);
    for r in [&mut mine, &mut theirs] {
        r.sort();
        for (_, entries) in r.iter_mut() {
            entries.sort();
        }
    }
    assert_eq!(
        mine,
        theirs,
        "readings differ for {:?}",
        String::from_utf8_lossy(bytes)
    );
    true
}

#[test]
fn the_fixtures_read_as_glib_reads_them() {
    let glib = Glib::load();
    for e in std::fs::read_dir(common::fixtures_dir()).unwrap() {
        let bytes = std::fs::read(e.unwrap().path()).unwrap();
        assert!(agree(&glib, &bytes));
    }
}

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
    "[ Spaced ]  ",
    "[Tab]\t",
    "[]",
    "[a[b]",
    "[a]b",
    "[a]=b",
    "Host=h.example",
    "Host = h ",
    "Host\t=\th",
    "Port=993",
    "Name[de]=x",
    "Name[]=y",
    "Name[d e]=z",
    "Name[sr@latin]=w",
    "Name[de]x=v",
    " Key=v",
    "Key =v",
    "Ke y=v",
    "=v",
    "a=b=c",
    "K=a\\sb\\\\c",
    "K=bad\\q",
    "K=end\\",
    "K=\\s lead",
    "Encoding=UTF-8",
    "Encoding=utf-8",
    "Encoding=latin1",
    "# comment",
    "  # indented",
    "no equals",
    "",
    "\t",
    "\r",
    "é=1",
    "K=\u{e9}",
    "\u{feff}[Bom]",
];

#[test]
fn random_files_read_as_glib_reads_them() {
    let glib = Glib::load();
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut accepted = 0;
    for _ in 0..3000 {
        let mut text = Vec::new();
        for _ in 0..rng.below(10) {
            text.extend_from_slice(rng.pick(FRAGMENTS).as_bytes());
            text.extend_from_slice(rng.pick(&["\n", "\n", "\r\n", ""]).as_bytes());
        }
        if rng.below(10) == 0 {
            // Some bytes that are not UTF-8.
            text.insert(rng.below(text.len() + 1), 0xE9);
        }
        accepted += usize::from(agree(&glib, &text));
    }
    assert!(accepted > 300, "only {accepted} accepted");
}
