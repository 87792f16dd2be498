//! Windows Credential Manager: which stored credentials belong to a mail server, and the form a
//! removed credential is kept in so that undo can put it back. Pure; the Windows code that
//! enumerates, deletes and restores is `crate::win::credentials`.
//!
//! # Snapshot decision
//!
//! A deleted credential cannot be re-created without its secret, so the snapshot keeps it:
//! every field of the credential (type, target, user name, comment, persistence, attributes and
//! the secret blob) is serialised, encrypted with DPAPI (`CryptProtectData`, in the agent's own
//! SYSTEM context with extra entropy, so that only the agent on this machine can decrypt it),
//! and stored hex-encoded in the fix record in the state directory. It never goes into the audit
//! log or an error: the audit record and `Debug` output show only type, target and user name.
//! Undo decrypts and writes the credential back, unless a credential with the same target and
//! type exists again (the user typed the password anew): that one is newer and is kept.
//!
//! Credentials whose secret Windows does not hand out (`CRED_TYPE_DOMAIN_PASSWORD` blobs are
//! readable only by the LSA) cannot be kept, so they are not deleted either; the apply result
//! lists them as left alone. Certificate credentials are never touched.

use serde::{Deserialize, Serialize};
use std::fmt;

/// `CRED_TYPE_GENERIC`.
pub const TYPE_GENERIC: u32 = 1;
/// `CRED_TYPE_DOMAIN_PASSWORD`.
pub const TYPE_DOMAIN_PASSWORD: u32 = 2;
/// `CRED_TYPE_DOMAIN_VISIBLE_PASSWORD`.
pub const TYPE_DOMAIN_VISIBLE_PASSWORD: u32 = 4;

/// Whether the agent may consider a credential of this type (password kinds only).
pub fn is_password_type(t: u32) -> bool {
    matches!(
        t,
        TYPE_GENERIC | TYPE_DOMAIN_PASSWORD | TYPE_DOMAIN_VISIBLE_PASSWORD
    )
}

/// Whether a credential's target name (or alias) names `host`: the host must appear whole, with
/// neither a host-name character nor a dot next to it, and case does not matter. So
/// `MicrosoftOffice16_Data:imap.example.com` and `imap.example.com` match `imap.example.com`,
/// `smtp.imap.example.com` and `imap.example.com.evil` do not.
pub fn target_names_host(target: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() {
        return false;
    }
    let t = target.to_ascii_lowercase();
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.';
    let mut from = 0;
    while let Some(i) = t[from..].find(&host) {
        let start = from + i;
        let end = start + host.len();
        let before = t[..start].chars().next_back();
        let after = t[end..].chars().next();
        if !before.is_some_and(is_name_char) && !after.is_some_and(is_name_char) {
            return true;
        }
        from = start + 1;
        while !t.is_char_boundary(from) {
            from += 1;
        }
    }
    false
}

/// A credential attribute (`CREDENTIAL_ATTRIBUTEW`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedAttribute {
    pub keyword: String,
    pub flags: u32,
    pub value_hex: String,
}

/// Every field of a removed credential: what undo needs to write it back. Holds the secret;
/// it is only ever stored DPAPI-encrypted, and its `Debug` output leaves the secret out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedCredential {
    pub cred_type: u32,
    pub flags: u32,
    pub target_name: String,
    #[serde(default)]
    pub target_alias: String,
    #[serde(default)]
    pub comment: String,
    #[serde(default)]
    pub user_name: String,
    pub persist: u32,
    #[serde(default)]
    pub attributes: Vec<SavedAttribute>,
    pub blob_hex: String,
}

impl fmt::Debug for SavedCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SavedCredential")
            .field("cred_type", &self.cred_type)
            .field("target_name", &self.target_name)
            .field("user_name", &self.user_name)
            .finish_non_exhaustive()
    }
}

/// What the audit record and the snapshot show of a credential: no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialInfo {
    pub cred_type: u32,
    pub target_name: String,
    #[serde(default)]
    pub user_name: String,
}

impl SavedCredential {
    pub fn info(&self) -> CredentialInfo {
        CredentialInfo {
            cred_type: self.cred_type,
            target_name: self.target_name.clone(),
            user_name: self.user_name.clone(),
        }
    }
}

/// Lower-case hex of bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// The bytes of a hex string; None when it is not hex.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

/// The extra DPAPI entropy of the agent's credential snapshots: another program running as
/// SYSTEM cannot decrypt them by accident through a plain `CryptUnprotectData`.
pub const DPAPI_ENTROPY: &[u8] = b"mailmend credential snapshot v1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_names_a_host_only_as_a_whole_name() {
        let h = "imap.example.com";
        assert!(target_names_host("imap.example.com", h));
        assert!(target_names_host("IMAP.Example.COM", h));
        assert!(target_names_host(
            "MicrosoftOffice16_Data:imap.example.com",
            h
        ));
        assert!(target_names_host(
            "LegacyGeneric:target=imap.example.com/alice",
            h
        ));
        assert!(target_names_host("imap.example.com:993", h));
        assert!(!target_names_host("x", ""));
        assert!(!target_names_host("smtp.imap.example.com", h));
        assert!(!target_names_host("imap.example.com.evil.net", h));
        assert!(!target_names_host("myimap.example.com", h));
        assert!(!target_names_host("imap.example.community", h));
        // A second, whole occurrence after a partial one still counts.
        assert!(target_names_host("ximap.example.com;imap.example.com", h));
        assert!(target_names_host("imap.example.com", "imap.example.com."));
        assert!(!target_names_host("é-imap.example.comé", "imap.example.co"));
    }

    #[test]
    fn only_password_credentials_are_considered() {
        assert!(is_password_type(TYPE_GENERIC));
        assert!(is_password_type(TYPE_DOMAIN_PASSWORD));
        assert!(!is_password_type(3));
        assert!(!is_password_type(5));
    }

    #[test]
    fn hex_round_trips_and_refuses_garbage() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(from_hex(&to_hex(&bytes)).unwrap(), bytes);
        assert_eq!(from_hex("0A"), Some(vec![10]));
        assert_eq!(from_hex("0"), None);
        assert_eq!(from_hex("zz"), None);
    }

    #[test]
    fn a_saved_credential_never_shows_its_secret_in_debug_output() {
        let c = SavedCredential {
            cred_type: TYPE_GENERIC,
            flags: 0,
            target_name: "imap.example.com".into(),
            target_alias: String::new(),
            comment: String::new(),
            user_name: "alice".into(),
            persist: 2,
            attributes: vec![],
            blob_hex: to_hex(b"hunter2"),
        };
        let d = format!("{c:?}");
        assert!(d.contains("imap.example.com") && d.contains("alice"));
        assert!(!d.contains(&to_hex(b"hunter2")) && !d.contains("hunter2"));
        let json = serde_json::to_string(&c).unwrap();
        let back: SavedCredential = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.info().user_name, "alice");
    }
}
