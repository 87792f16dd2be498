//! Helpers shared by the integration tests: fixture sources, homes, a fake process table and
//! line comparisons.
#![allow(dead_code)]

use mailmend_core::{Account, ClientAdapter, Edit, FileEdit, Home};
use mailmend_evolution::{EvolutionAdapter, ProcessInfo, ProcessTable};
use std::path::{Path, PathBuf};

/// A secret that must never leave the source files.
pub const CANARY: &str = "CANARY-Pa55w0rd-do-not-leak";

pub const WORK: &str = "1493050983.9471.2@laptop";
pub const WORK_IDENTITY: &str = "1493050983.9471.3@laptop";
pub const WORK_TRANSPORT: &str = "1493050983.9471.4@laptop";
pub const POP: &str = "b3a6e5f1c2d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8";
pub const POP_TRANSPORT: &str = "e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4";
pub const GOOGLE: &str = "google-rene";

/// A process table that is a fixed list.
#[derive(Debug, Clone, Default)]
pub struct FakeTable(pub Vec<ProcessInfo>);

impl ProcessTable for FakeTable {
    fn processes(&self) -> Vec<ProcessInfo> {
        self.0.clone()
    }
}

/// An adapter that sees no process running.
pub fn adapter() -> EvolutionAdapter {
    EvolutionAdapter::new().with_processes(FakeTable::default())
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sources")
}

pub fn fixture(uid: &str) -> Vec<u8> {
    let path = fixtures_dir().join(format!("{uid}.source"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
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

pub fn sources(home: &Home) -> PathBuf {
    home.path.join(".config/evolution/sources")
}

pub fn source_path(home: &Home, uid: &str) -> PathBuf {
    std::fs::canonicalize(sources(home))
        .unwrap()
        .join(format!("{uid}.source"))
}

/// A home whose sources directory holds every fixture.
pub fn home_with_fixtures(base: &Path, user: &str) -> Home {
    let h = home(base, user);
    for e in std::fs::read_dir(fixtures_dir()).unwrap() {
        let e = e.unwrap();
        write(
            &sources(&h).join(e.file_name()),
            &std::fs::read(e.path()).unwrap(),
        );
    }
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

/// For one inserted line: its index and text.
pub fn inserted_line(before: &[u8], after: &[u8]) -> (usize, String) {
    let (b, a) = (lines(before), lines(after));
    assert_eq!(a.len(), b.len() + 1, "expected exactly one inserted line");
    let i = (0..b.len()).find(|&i| a[i] != b[i]).unwrap_or(b.len());
    assert_eq!(&a[i + 1..], &b[i..], "more than one line changed");
    (i, String::from_utf8(a[i].to_vec()).unwrap())
}
