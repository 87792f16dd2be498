//! Helpers shared by the integration tests: fixtures, homes, and line comparisons.
#![allow(dead_code)]

use mailmend_core::{Account, ClientAdapter, Edit, FileEdit, Home};
use mailmend_mbsync::{IsyncVersion, MbsyncAdapter, ProcessInfo, ProcessTable};
use std::path::Path;

/// A password that must never leave the configuration file.
pub const CANARY: &str = "CANARY-Pa55w0rd-do-not-leak";

/// Debian 12's isync.
pub const ISYNC_1_4: IsyncVersion = IsyncVersion {
    major: 1,
    minor: 4,
    patch: 4,
};
pub const ISYNC_1_5: IsyncVersion = IsyncVersion {
    major: 1,
    minor: 5,
    patch: 0,
};

/// A process table that is a fixed list.
#[derive(Debug, Clone, Default)]
pub struct FakeTable(pub Vec<ProcessInfo>);

impl ProcessTable for FakeTable {
    fn processes(&self) -> Vec<ProcessInfo> {
        self.0.clone()
    }
}

/// An adapter that believes isync 1.4.4 is installed and nothing runs.
pub fn adapter() -> MbsyncAdapter {
    adapter_for(ISYNC_1_4)
}

pub fn adapter_for(v: IsyncVersion) -> MbsyncAdapter {
    MbsyncAdapter::new()
        .with_version(move || Some(v))
        .with_processes(FakeTable::default())
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fixture with every `\n` turned into `\r\n`.
pub fn crlf(bytes: &[u8]) -> Vec<u8> {
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .replace('\n', "\r\n")
        .into_bytes()
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
        path,
        uid: None,
        gid: None,
    }
}

/// A home with `bytes` as `~/.mbsyncrc`.
pub fn home_with(base: &Path, user: &str, bytes: &[u8]) -> Home {
    let h = home(base, user);
    write(&h.path.join(".mbsyncrc"), bytes);
    h
}

pub fn account(home: &Home, key: &str) -> Account {
    adapter()
        .discover(home)
        .accounts
        .into_iter()
        .find(|a| a.key == key)
        .unwrap_or_else(|| panic!("no account {key}"))
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

/// The lines of `after` that are not in `before` at the same place, for one inserted line:
/// returns its index and text.
pub fn inserted_line(before: &[u8], after: &[u8]) -> (usize, String) {
    let (b, a) = (lines(before), lines(after));
    assert_eq!(a.len(), b.len() + 1, "expected exactly one inserted line");
    let i = (0..b.len()).find(|&i| a[i] != b[i]).unwrap_or(b.len());
    assert_eq!(&a[i + 1..], &b[i..], "more than one line changed");
    (i, String::from_utf8(a[i].to_vec()).unwrap())
}
