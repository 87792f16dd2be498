//! Helpers shared by the integration tests: fixtures, and homes with Thunderbird profiles.
#![allow(dead_code)]

use mailmend_core::Home;
use std::path::{Path, PathBuf};

pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
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

/// A `profiles.ini` listing relative profile paths, the first one the default.
pub fn profiles_ini(paths: &[&str]) -> String {
    let mut s = String::new();
    for (i, p) in paths.iter().enumerate() {
        s.push_str(&format!(
            "[Profile{i}]\nName=profile{i}\nIsRelative=1\nPath={p}\n{}\n",
            if i == 0 { "Default=1\n" } else { "" }
        ));
    }
    s.push_str("[General]\nStartWithLastProfile=1\nVersion=2\n");
    s
}

/// Creates `<root>/profiles.ini` listing one profile `<root>/<dir>` holding `prefs` as prefs.js;
/// returns the profile directory.
pub fn one_profile(home: &Home, root: &str, dir: &str, prefs: &[u8]) -> PathBuf {
    let root = home.path.join(root);
    write(&root.join("profiles.ini"), profiles_ini(&[dir]).as_bytes());
    let profile = root.join(dir);
    write(&profile.join("prefs.js"), prefs);
    std::fs::canonicalize(profile).unwrap()
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
