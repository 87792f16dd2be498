//! The Windows registry as adapters and the executor see it: key paths, typed values, the
//! planned change of some values of one key ([`RegistryEdit`]), and the small [`Registry`]
//! trait that the real registry (Windows) and a `.reg`-file store (tests, Linux) implement.
//!
//! Like everything in this crate these are values and a contract; the trait's implementations
//! do the I/O, and only the executor calls the writing half.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::hash::{Hash, Hasher};

/// A predefined root key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hive {
    ClassesRoot,
    CurrentUser,
    LocalMachine,
    Users,
    CurrentConfig,
}

impl Hive {
    pub const ALL: [Hive; 5] = [
        Hive::ClassesRoot,
        Hive::CurrentUser,
        Hive::LocalMachine,
        Hive::Users,
        Hive::CurrentConfig,
    ];

    /// The long name, as `reg export` writes it.
    pub fn name(self) -> &'static str {
        match self {
            Hive::ClassesRoot => "HKEY_CLASSES_ROOT",
            Hive::CurrentUser => "HKEY_CURRENT_USER",
            Hive::LocalMachine => "HKEY_LOCAL_MACHINE",
            Hive::Users => "HKEY_USERS",
            Hive::CurrentConfig => "HKEY_CURRENT_CONFIG",
        }
    }

    fn short_name(self) -> &'static str {
        match self {
            Hive::ClassesRoot => "HKCR",
            Hive::CurrentUser => "HKCU",
            Hive::LocalMachine => "HKLM",
            Hive::Users => "HKU",
            Hive::CurrentConfig => "HKCC",
        }
    }

    /// The hive a long or short name (`HKEY_CURRENT_USER`, `HKCU`) means, in any case.
    pub fn parse(s: &str) -> Option<Hive> {
        Hive::ALL
            .into_iter()
            .find(|h| s.eq_ignore_ascii_case(h.name()) || s.eq_ignore_ascii_case(h.short_name()))
    }
}

impl fmt::Display for Hive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A key: a hive and the names below it. Compared without regard to case, as Windows compares
/// key names, but kept and shown with the case it was given.
#[derive(Clone)]
pub struct RegPath {
    hive: Hive,
    /// Components joined by `\`; no empty component, no leading or trailing separator.
    path: String,
}

/// Windows compares names by their upper-case form; `to_uppercase` per character is the same
/// for every name an Outlook profile holds.
fn fold(s: &str) -> String {
    s.chars().flat_map(char::to_uppercase).collect()
}

/// Whether two names are equal as Windows compares key and value names.
pub fn names_equal(a: &str, b: &str) -> bool {
    a == b || fold(a) == fold(b)
}

impl RegPath {
    /// A key below `hive`; empty components (doubled or outer backslashes) are dropped.
    pub fn new(hive: Hive, path: &str) -> RegPath {
        let path = path
            .split('\\')
            .filter(|c| !c.is_empty())
            .collect::<Vec<_>>()
            .join("\\");
        RegPath { hive, path }
    }

    /// Parses `HKEY_CURRENT_USER\Software\…` (short hive names such as `HKCU` too).
    pub fn parse(s: &str) -> Result<RegPath, RegistryError> {
        let (hive, rest) = s.split_once('\\').unwrap_or((s, ""));
        let hive = Hive::parse(hive).ok_or_else(|| RegistryError::BadPath(s.to_string()))?;
        Ok(RegPath::new(hive, rest))
    }

    pub fn hive(&self) -> Hive {
        self.hive
    }

    /// The path below the hive, `\`-separated; empty for the hive itself.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.path.split('\\').filter(|c| !c.is_empty())
    }

    /// The key's own name (the last component); empty for a hive.
    pub fn name(&self) -> &str {
        self.components().last().unwrap_or("")
    }

    /// The key `child` (which may itself contain `\`) below this one.
    pub fn join(&self, child: &str) -> RegPath {
        RegPath::new(self.hive, &format!("{}\\{}", self.path, child))
    }

    /// The key above this one; `None` for a hive.
    pub fn parent(&self) -> Option<RegPath> {
        if self.path.is_empty() {
            return None;
        }
        let parent = self.path.rsplit_once('\\').map_or("", |(p, _)| p);
        Some(RegPath::new(self.hive, parent))
    }

    /// The path of this key relative to `prefix`, when it is `prefix` or below it (`""` for
    /// `prefix` itself).
    pub fn strip_prefix(&self, prefix: &RegPath) -> Option<String> {
        if self.hive != prefix.hive {
            return None;
        }
        let mut mine = self.components();
        for p in prefix.components() {
            match mine.next() {
                Some(m) if names_equal(m, p) => {}
                _ => return None,
            }
        }
        Some(mine.collect::<Vec<_>>().join("\\"))
    }

    /// Whether this key is `prefix` or lies below it.
    pub fn starts_with(&self, prefix: &RegPath) -> bool {
        self.strip_prefix(prefix).is_some()
    }
}

impl PartialEq for RegPath {
    fn eq(&self, other: &RegPath) -> bool {
        self.hive == other.hive && names_equal(&self.path, &other.path)
    }
}

impl Eq for RegPath {}

impl Hash for RegPath {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.hive.hash(state);
        fold(&self.path).hash(state);
    }
}

impl fmt::Display for RegPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(self.hive.name())
        } else {
            write!(f, "{}\\{}", self.hive.name(), self.path)
        }
    }
}

impl fmt::Debug for RegPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegPath({self})")
    }
}

impl Serialize for RegPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RegPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RegPath, D::Error> {
        let s = String::deserialize(d)?;
        RegPath::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A registry value with its type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum RegValue {
    /// REG_SZ.
    String(String),
    /// REG_EXPAND_SZ: a string with `%VARIABLE%` references, kept unexpanded.
    ExpandString(String),
    /// REG_MULTI_SZ.
    MultiString(Vec<String>),
    /// REG_BINARY. Outlook keeps its strings here, as NUL-terminated UTF-16LE.
    Binary(#[serde(with = "hex_bytes")] Vec<u8>),
    /// REG_DWORD (little-endian).
    Dword(u32),
    /// REG_QWORD (little-endian).
    Qword(u64),
    /// Any other type, or a typed value whose data is not well formed (a REG_SZ of odd length),
    /// kept as raw bytes with its type number.
    Other {
        kind: u32,
        #[serde(with = "hex_bytes")]
        data: Vec<u8>,
    },
}

impl RegValue {
    /// The type number (`REG_SZ` = 1, …) as the registry stores it.
    pub fn kind(&self) -> u32 {
        match self {
            RegValue::String(_) => REG_SZ,
            RegValue::ExpandString(_) => REG_EXPAND_SZ,
            RegValue::Binary(_) => REG_BINARY,
            RegValue::Dword(_) => REG_DWORD,
            RegValue::MultiString(_) => REG_MULTI_SZ,
            RegValue::Qword(_) => REG_QWORD,
            RegValue::Other { kind, .. } => *kind,
        }
    }

    /// The raw bytes the registry stores for this value (strings as NUL-terminated UTF-16LE).
    pub fn to_raw(&self) -> Vec<u8> {
        fn wide(s: &str, out: &mut Vec<u8>) {
            for u in s.encode_utf16().chain([0]) {
                out.extend_from_slice(&u.to_le_bytes());
            }
        }
        let mut out = Vec::new();
        match self {
            RegValue::String(s) | RegValue::ExpandString(s) => wide(s, &mut out),
            RegValue::MultiString(v) => {
                for s in v {
                    wide(s, &mut out);
                }
                out.extend_from_slice(&[0, 0]);
            }
            RegValue::Binary(b) | RegValue::Other { data: b, .. } => out.extend_from_slice(b),
            RegValue::Dword(n) => out.extend_from_slice(&n.to_le_bytes()),
            RegValue::Qword(n) => out.extend_from_slice(&n.to_le_bytes()),
        }
        out
    }

    /// The typed value for raw registry data. Data that does not fit its type (a DWORD of three
    /// bytes, a string of odd length or with unpaired surrogates) becomes [`RegValue::Other`].
    pub fn from_raw(kind: u32, data: &[u8]) -> RegValue {
        let other = || RegValue::Other {
            kind,
            data: data.to_vec(),
        };
        match kind {
            REG_BINARY => RegValue::Binary(data.to_vec()),
            REG_DWORD => match <[u8; 4]>::try_from(data) {
                Ok(b) => RegValue::Dword(u32::from_le_bytes(b)),
                Err(_) => other(),
            },
            REG_QWORD => match <[u8; 8]>::try_from(data) {
                Ok(b) => RegValue::Qword(u64::from_le_bytes(b)),
                Err(_) => other(),
            },
            REG_SZ | REG_EXPAND_SZ => {
                let Some(s) = wide_string(data) else {
                    return other();
                };
                // Only a single terminating NUL is canonical; anything else stays raw so that
                // writing it back gives the same bytes.
                match s.strip_suffix('\0') {
                    Some(t) if !t.contains('\0') => {
                        if kind == REG_SZ {
                            RegValue::String(t.to_string())
                        } else {
                            RegValue::ExpandString(t.to_string())
                        }
                    }
                    _ => other(),
                }
            }
            REG_MULTI_SZ => {
                let Some(s) = wide_string(data) else {
                    return other();
                };
                if s == "\0" {
                    // The canonical empty list: only the list's terminating NUL.
                    return RegValue::MultiString(Vec::new());
                }
                let Some(body) = s.strip_suffix("\0\0") else {
                    return other();
                };
                let items: Vec<String> = body.split('\0').map(str::to_string).collect();
                if items.iter().any(String::is_empty) {
                    return other();
                }
                RegValue::MultiString(items)
            }
            _ => other(),
        }
    }
}

/// Decodes UTF-16LE; `None` for an odd length or an unpaired surrogate.
fn wide_string(data: &[u8]) -> Option<String> {
    if data.len() % 2 == 1 {
        return None;
    }
    let units = data
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .ok()
}

pub const REG_NONE: u32 = 0;
pub const REG_SZ: u32 = 1;
pub const REG_EXPAND_SZ: u32 = 2;
pub const REG_BINARY: u32 = 3;
pub const REG_DWORD: u32 = 4;
pub const REG_MULTI_SZ: u32 = 7;
pub const REG_QWORD: u32 = 11;

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

/// One value's planned change: exactly what it holds before (`None`: absent) and after
/// (`None`: deleted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegValueEdit {
    /// The value's name; `""` is the key's default value.
    pub name: String,
    pub before: Option<RegValue>,
    pub after: Option<RegValue>,
}

/// A planned change of some values of one key: the registry's counterpart of a file's bytes
/// before and after. The executor writes `after` only where the key still holds `before`, and
/// restores `before` only where it still holds `after`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryEdit {
    pub key: RegPath,
    pub values: Vec<RegValueEdit>,
}

impl RegistryEdit {
    /// Whether applying this edit would change nothing.
    pub fn is_noop(&self) -> bool {
        self.values.iter().all(|v| v.before == v.after)
    }
}

/// Why a registry operation failed. Messages name keys and value names, never value data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The key does not exist: the user removed the profile, or the user's hive is not loaded.
    #[error("registry key {0} does not exist")]
    KeyNotFound(String),
    /// The text names no known hive; a typo, or a record written by something else.
    #[error("not a registry path: {0}")]
    BadPath(String),
    /// The agent lacks the right to read or write the key (another user's hive, a policy key).
    #[error("access to registry key {0} denied")]
    Denied(String),
    /// The store cannot hold this value: a `.reg` file whose encoding cannot express a character,
    /// or a type the store does not write.
    #[error("cannot store {name:?} under {key}: {reason}")]
    Unsupported {
        key: String,
        name: String,
        reason: String,
    },
    /// The store is a `.reg` file with a syntax error (written badly by hand or by a tool), at
    /// this line and column.
    #[error("{file}:{line}:{column}: {message}")]
    Unreadable {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// The store itself failed: an operating-system error, or a `.reg` file that cannot be read
    /// or replaced.
    #[error("registry key {key}: {detail}")]
    Store { key: String, detail: String },
}

impl RegistryError {
    /// Whether the error only says that the key is not there.
    pub fn is_not_found(&self) -> bool {
        matches!(self, RegistryError::KeyNotFound(_))
    }
}

/// The registry, as adapters read it and the executor writes it. Value names compare without
/// regard to case. Implemented by the real registry on Windows and by a `.reg`-file store.
pub trait Registry: Send + Sync {
    /// The names of the key's direct subkeys, in the store's order.
    fn subkeys(&self, key: &RegPath) -> Result<Vec<String>, RegistryError>;
    /// The names of the key's values (not their data, so that listing a key never reads a
    /// secret such as a password blob).
    fn values(&self, key: &RegPath) -> Result<Vec<String>, RegistryError>;
    /// One value; `Ok(None)` when the value or its key is absent.
    fn get(&self, key: &RegPath, name: &str) -> Result<Option<RegValue>, RegistryError>;
    /// Writes one value, creating the key when missing.
    fn set(&self, key: &RegPath, name: &str, value: &RegValue) -> Result<(), RegistryError>;
    /// Removes one value; removing an absent value (or a value of an absent key) is not an error.
    fn delete_value(&self, key: &RegPath, name: &str) -> Result<(), RegistryError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_compare_without_case_and_keep_their_spelling() {
        let a = RegPath::parse("HKCU\\Software\\Microsoft\\Office").unwrap();
        let b = RegPath::parse("hkey_current_user\\SOFTWARE\\microsoft\\office\\").unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.to_string(),
            "HKEY_CURRENT_USER\\Software\\Microsoft\\Office"
        );
        let mut set = std::collections::HashSet::new();
        set.insert(a.clone());
        assert!(set.contains(&b));
        assert_eq!(
            a.join("16.0\\Outlook").strip_prefix(&b).as_deref(),
            Some("16.0\\Outlook")
        );
        assert!(RegPath::parse("HKXX\\Software").is_err());
        assert_eq!(a.parent().unwrap().name(), "Microsoft");
    }

    #[test]
    fn raw_values_round_trip_and_malformed_ones_stay_raw() {
        for v in [
            RegValue::String("imap.example.com".into()),
            RegValue::ExpandString("%USERPROFILE%\\x".into()),
            RegValue::MultiString(vec!["a".into(), "b".into()]),
            RegValue::Dword(993),
            RegValue::Qword(5),
            RegValue::Binary(vec![1, 2, 3]),
        ] {
            assert_eq!(RegValue::from_raw(v.kind(), &v.to_raw()), v);
        }
        assert_eq!(
            RegValue::from_raw(REG_SZ, &[0x61]),
            RegValue::Other {
                kind: REG_SZ,
                data: vec![0x61]
            }
        );
        assert!(matches!(
            RegValue::from_raw(REG_DWORD, &[1, 2, 3]),
            RegValue::Other { .. }
        ));
    }

    #[test]
    fn an_edit_serialises_with_its_path_as_text() {
        let e = RegistryEdit {
            key: RegPath::parse("HKEY_USERS\\S-1-5-21-1\\Software").unwrap(),
            values: vec![RegValueEdit {
                name: "IMAP Port".into(),
                before: Some(RegValue::Dword(143)),
                after: Some(RegValue::Dword(993)),
            }],
        };
        let json = serde_json::to_string(&e).unwrap();
        assert!(
            json.contains("\"HKEY_USERS\\\\S-1-5-21-1\\\\Software\""),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<RegistryEdit>(&json).unwrap(), e);
        assert!(!e.is_noop());
    }
}
