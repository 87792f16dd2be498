//! A Windows machine made of `.reg` exports: Alice's own HKEY_CURRENT_USER export mounted as her
//! loaded hive `HKEY_USERS\<SID>-1001`, Bob's export taken by an administrator from
//! `HKEY_USERS\<SID>-1002`, and the machine's ProfileList. Every test gets its own copies.
#![allow(dead_code)]

use mailmend_core::{Hive, Home, RegPath, Registry};
use mailmend_outlook::{MountedRegistry, OutlookAdapter, ProfileListHives, RegFileStore};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const SID_PREFIX: &str = "S-1-5-21-3623811015-3361044348-30300820";

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn hku(rid: u32) -> RegPath {
    RegPath::new(Hive::Users, &format!("{SID_PREFIX}-{rid}"))
}

pub struct Machine {
    pub dir: tempfile::TempDir,
    pub alice: PathBuf,
    pub bob: PathBuf,
    pub profiles: PathBuf,
    pub registry: Arc<MountedRegistry>,
}

impl Machine {
    pub fn new() -> Machine {
        let dir = tempfile::tempdir().unwrap();
        let copy = |name: &str| {
            let to = dir.path().join(name);
            std::fs::copy(fixture(name), &to).unwrap();
            to
        };
        let alice = copy("alice-hkcu.reg");
        let bob = copy("bob-hku.reg");
        let profiles = copy("profilelist.reg");
        let registry = Arc::new(
            MountedRegistry::new()
                .mount(
                    hku(1001),
                    Arc::new(RegFileStore::open(&alice)),
                    RegPath::new(Hive::CurrentUser, ""),
                )
                .mount(hku(1002), Arc::new(RegFileStore::open(&bob)), hku(1002))
                .mount(
                    RegPath::new(Hive::LocalMachine, "SOFTWARE"),
                    Arc::new(RegFileStore::open(&profiles)),
                    RegPath::new(Hive::LocalMachine, "SOFTWARE"),
                ),
        );
        Machine {
            dir,
            alice,
            bob,
            profiles,
            registry,
        }
    }

    /// The adapter as SYSTEM sees the machine: every home through ProfileList.
    pub fn adapter(&self) -> OutlookAdapter {
        let hives = ProfileListHives {
            own_profile: None,
            system_drive: "C:".into(),
        };
        OutlookAdapter::new(self.registry.clone() as Arc<dyn Registry>, Arc::new(hives))
            .with_processes(Arc::new(mailmend_outlook::StaticProcesses(Vec::new())))
    }
}

pub fn home(user: &str) -> Home {
    Home {
        user: user.into(),
        path: PathBuf::from(format!("C:\\Users\\{user}")),
        uid: None,
        gid: None,
    }
}

/// The text of a UTF-16LE file with BOM.
pub fn utf16_text(bytes: &[u8]) -> String {
    assert_eq!(&bytes[..2], &[0xFF, 0xFE], "no UTF-16LE byte-order mark");
    let units: Vec<u16> = bytes[2..]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).unwrap()
}

/// The lines of `a` and `b` that differ, by index, when both have the same number of lines.
pub fn changed_lines(a: &str, b: &str) -> Vec<(String, String)> {
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.split("\r\n").collect(), b.split("\r\n").collect());
    assert_eq!(la.len(), lb.len(), "the number of lines changed");
    la.iter()
        .zip(&lb)
        .filter(|(x, y)| x != y)
        .map(|(x, y)| (x.to_string(), y.to_string()))
        .collect()
}
