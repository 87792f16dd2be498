//! Helpers shared by the integration tests: fixtures, homes, and line-level comparisons.
#![allow(dead_code)]

use mailmend_core::{Account, Discovery, Edit, FileEdit, Home};
use std::path::{Path, PathBuf};

pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The same text with CRLF line endings.
pub fn crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 20);
    for &b in bytes {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

pub fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

pub fn home(base: &Path, user: &str) -> Home {
    let path = base.join(user);
    std::fs::create_dir_all(&path).unwrap();
    Home {
        user: user.into(),
        path: std::fs::canonicalize(path).unwrap(),
        uid: None,
        gid: None,
    }
}

/// René: `~/.mutt/muttrc` sourcing one file per account (work read last), with `eol` line endings.
pub fn rene(base: &Path, eol_crlf: bool) -> Home {
    let h = home(base, "rene");
    let conv = |b: Vec<u8>| if eol_crlf { crlf(&b) } else { b };
    write(
        &h.path.join(".mutt/muttrc"),
        &conv(fixture("mutt-multi/muttrc")),
    );
    write(
        &h.path.join(".mutt/accounts/work"),
        &conv(fixture("mutt-multi/accounts/work")),
    );
    write(
        &h.path.join(".mutt/accounts/personal"),
        &conv(fixture("mutt-multi/accounts/personal")),
    );
    h
}

/// Ann: a single `~/.muttrc`.
pub fn ann(base: &Path) -> Home {
    let h = home(base, "ann");
    write(&h.path.join(".muttrc"), &fixture("muttrc-simple"));
    h
}

pub fn by_key<'a>(d: &'a Discovery, key: &str) -> &'a Account {
    d.accounts
        .iter()
        .find(|a| a.key == key)
        .unwrap_or_else(|| panic!("no account {key} in {:?}", d.accounts))
}

pub fn file_edits(edits: Vec<Edit>) -> Vec<FileEdit> {
    edits
        .into_iter()
        .map(|e| match e {
            Edit::File(f) => f,
            other => panic!("unexpected edit {other:?}"),
        })
        .collect()
}

pub fn apply(edits: &[FileEdit]) {
    for e in edits {
        assert_eq!(std::fs::read(&e.path).unwrap(), e.before, "stale before");
        std::fs::write(&e.path, &e.after).unwrap();
    }
}

/// Lines split after each `\n`, keeping their endings, so that CRLF files compare exactly.
pub fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    bytes.split_inclusive(|&b| b == b'\n').collect()
}

/// The indices of lines that differ between two texts with the same number of lines.
pub fn changed_lines(before: &[u8], after: &[u8]) -> Vec<usize> {
    let (b, a) = (lines(before), lines(after));
    assert_eq!(b.len(), a.len(), "line count changed");
    (0..b.len()).filter(|&i| b[i] != a[i]).collect()
}

pub fn line_at(bytes: &[u8], i: usize) -> String {
    String::from_utf8(lines(bytes)[i].to_vec()).unwrap()
}

pub fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap()
}
