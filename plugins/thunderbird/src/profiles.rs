//! Where Thunderbird keeps its profiles: the candidate roots under a home, and the profile
//! directories that `profiles.ini` and `installs.ini` list there.

use std::path::{Path, PathBuf};

/// Thunderbird's profile roots, relative to a home: Linux, the old Debian name, snap, flatpak,
/// macOS and Windows (roaming application data).
pub const ROOTS: [&str; 6] = [
    ".thunderbird",
    ".mozilla-thunderbird",
    "snap/thunderbird/common/.thunderbird",
    ".var/app/org.mozilla.Thunderbird/.thunderbird",
    "Library/Thunderbird",
    "AppData/Roaming/Thunderbird",
];

/// One section of an INI file: its name and its `key=value` lines in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniSection {
    pub name: String,
    pub entries: Vec<(String, String)>,
}

impl IniSection {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads an INI file the lenient way Mozilla's INI parser does: lines that are neither a
/// section header nor `key=value` (comments, junk) are skipped; a BOM and CRLF are accepted.
pub fn parse_ini(text: &str) -> Vec<IniSection> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut sections: Vec<IniSection> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            if let Some(name) = rest.strip_suffix(']') {
                sections.push(IniSection {
                    name: name.trim().to_string(),
                    entries: Vec::new(),
                });
            }
            continue;
        }
        let (Some(section), Some((k, v))) = (sections.last_mut(), line.split_once('=')) else {
            continue;
        };
        section
            .entries
            .push((k.trim().to_string(), v.trim().to_string()));
    }
    sections
}

/// Resolves a profile path from an INI file: relative paths are relative to the root.
fn resolve(root: &Path, path: &str, is_relative: Option<bool>) -> PathBuf {
    let relative = is_relative.unwrap_or_else(|| !Path::new(path).is_absolute());
    if relative {
        root.join(path)
    } else {
        PathBuf::from(path)
    }
}

/// The profile directories named by a root's `profiles.ini` (`[ProfileN] Path=`, honouring
/// `IsRelative`, and `[Install…] Default=`) and `installs.ini` (`[…] Default=`), in that order,
/// possibly with repeats. Pure: the caller reads the files.
pub fn profile_dirs(
    root: &Path,
    profiles_ini: Option<&str>,
    installs_ini: Option<&str>,
) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for section in profiles_ini.map(parse_ini).unwrap_or_default() {
        let is_profile = section.name.starts_with("Profile");
        let is_install = section.name.starts_with("Install");
        if is_profile {
            if let Some(path) = section.get("Path").filter(|p| !p.is_empty()) {
                let is_relative = section.get("IsRelative").map(|v| v.trim() == "1");
                dirs.push(resolve(root, path, is_relative));
            }
        } else if is_install {
            if let Some(path) = section.get("Default").filter(|p| !p.is_empty()) {
                dirs.push(resolve(root, path, None));
            }
        }
    }
    for section in installs_ini.map(parse_ini).unwrap_or_default() {
        if let Some(path) = section.get("Default").filter(|p| !p.is_empty()) {
            dirs.push(resolve(root, path, None));
        }
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_ini_paths_honour_is_relative_and_install_defaults() {
        let ini = "\u{feff}[Install4F96D1932A9F858E]\r\nDefault=Profiles/b.default-release\r\nLocked=1\r\n\r\n\
                   [Profile1]\r\nName=default\r\nIsRelative=1\r\nPath=Profiles/a.default\r\nDefault=1\r\n\r\n\
                   [Profile0]\r\nName=work\r\nIsRelative=0\r\nPath=/srv/tb/work\r\n\r\n\
                   [General]\r\nStartWithLastProfile=1\r\nVersion=2\r\n";
        let installs = "[4F96D1932A9F858E]\nDefault=Profiles/b.default-release\nLocked=1\n";
        let root = Path::new("/home/a/.thunderbird");
        let dirs = profile_dirs(root, Some(ini), Some(installs));
        assert_eq!(
            dirs,
            vec![
                root.join("Profiles/b.default-release"),
                root.join("Profiles/a.default"),
                PathBuf::from("/srv/tb/work"),
                root.join("Profiles/b.default-release"),
            ]
        );
    }

    #[test]
    fn junk_lines_in_an_ini_file_are_skipped() {
        let s = parse_ini("stray\n; comment\n[Profile0]\nno equals sign\nPath = x \n");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].get("path"), Some("x"));
    }
}
