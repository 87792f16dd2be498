//! Stale mail credentials in Windows Credential Manager: find the credentials whose target
//! names the mail server, keep them DPAPI-encrypted in the snapshot, delete them so that the
//! mail client asks for the password again, and write them back on undo. See
//! `crate::credman` for the snapshot decision.
//!
//! Credential Manager is per user: from the agent's service (SYSTEM) the console user's
//! credentials are reached by impersonating that user (`WTSQueryUserToken`, which needs SYSTEM's
//! `SeTcbPrivilege`), and the snapshot is encrypted after reverting, under SYSTEM.
//!
//! `Action` has no variant for this change yet, so this is a library API rather than a
//! `Performer`: the variant to add is `ClearCachedCredentials { account, host }` (policy kind
//! `clear_cached_credentials`).

use super::wide;
use crate::credman::{
    from_hex, is_password_type, target_names_host, to_hex, CredentialInfo, SavedAttribute,
    SavedCredential, DPAPI_ENTROPY, TYPE_DOMAIN_PASSWORD,
};
use mailmend_executor::PerformError;
use serde_json::{json, Value};
use windows::core::{PCWSTR, PWSTR};
use windows::Win32::Foundation::{CloseHandle, LocalFree, ERROR_NOT_FOUND, HANDLE, HLOCAL};
use windows::Win32::Security::Credentials::{
    CredDeleteW, CredEnumerateW, CredFree, CredReadW, CredWriteW, CREDENTIALW,
    CREDENTIAL_ATTRIBUTEW, CRED_FLAGS, CRED_PERSIST, CRED_TYPE,
};
use windows::Win32::Security::Cryptography::{
    CryptProtectData, CryptUnprotectData, CRYPTPROTECT_UI_FORBIDDEN, CRYPT_INTEGER_BLOB,
};
use windows::Win32::Security::{ImpersonateLoggedOnUser, RevertToSelf};
use windows::Win32::System::RemoteDesktop::{WTSGetActiveConsoleSessionId, WTSQueryUserToken};

/// `CRED_FLAGS_PROMPT_NOW | CRED_FLAGS_USERNAME_TARGET`: the flags CredWriteW accepts back.
const WRITABLE_FLAGS: u32 = 0x2 | 0x4;

/// Whose credentials are read and changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The user the agent runs as (tests; an agent run by the user).
    CurrentUser,
    /// The user logged in at the console, impersonated (the service's case).
    ConsoleUser,
}

/// Credential Manager access for one scope.
#[derive(Debug, Clone)]
pub struct CredentialCache {
    scope: Scope,
}

/// Reverts an impersonation when dropped, so that no early return leaves the thread as the
/// user.
struct Impersonation(HANDLE);

impl Drop for Impersonation {
    fn drop(&mut self) {
        // SAFETY: this thread impersonates; the token handle is ours.
        unsafe {
            let _ = RevertToSelf();
            let _ = CloseHandle(self.0);
        }
    }
}

fn win_err(what: &str) -> impl Fn(windows::core::Error) -> String + '_ {
    move |e| format!("{what}: {} ({:#010x})", e.message().trim(), e.code().0)
}

/// # Safety
/// `p` is null or points to a NUL-terminated UTF-16 string, which need not be aligned: Wine's
/// credential API packs its strings at odd addresses.
unsafe fn string(p: PWSTR) -> String {
    if p.is_null() {
        return String::new();
    }
    let mut units = Vec::new();
    // CREDENTIALW strings are at most 32767 characters (CRED_MAX_STRING_LENGTH and smaller).
    for i in 0..32_768 {
        // SAFETY: per the function's contract every unit up to the NUL is readable.
        let u = unsafe { std::ptr::read_unaligned(p.0.add(i)) };
        if u == 0 {
            break;
        }
        units.push(u);
    }
    String::from_utf16_lossy(&units)
}

/// # Safety
/// `c` is a credential returned by CredEnumerateW or CredReadW, not yet freed.
unsafe fn saved(c: &CREDENTIALW) -> SavedCredential {
    // SAFETY: the pointers and sizes come from the credential API.
    unsafe {
        let blob = if c.CredentialBlob.is_null() {
            &[][..]
        } else {
            std::slice::from_raw_parts(c.CredentialBlob, c.CredentialBlobSize as usize)
        };
        let attributes = if c.Attributes.is_null() {
            Vec::new()
        } else {
            std::slice::from_raw_parts(c.Attributes, c.AttributeCount as usize)
                .iter()
                .map(|a| SavedAttribute {
                    keyword: string(a.Keyword),
                    flags: a.Flags,
                    value_hex: if a.Value.is_null() {
                        String::new()
                    } else {
                        to_hex(std::slice::from_raw_parts(a.Value, a.ValueSize as usize))
                    },
                })
                .collect()
        };
        SavedCredential {
            cred_type: c.Type.0,
            flags: c.Flags.0,
            target_name: string(c.TargetName),
            target_alias: string(c.TargetAlias),
            comment: string(c.Comment),
            user_name: string(c.UserName),
            persist: c.Persist.0,
            attributes,
            blob_hex: to_hex(blob),
        }
    }
}

impl CredentialCache {
    pub fn new(scope: Scope) -> CredentialCache {
        CredentialCache { scope }
    }

    /// Runs `f` as the scope's user.
    fn as_user<T>(&self, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
        match self.scope {
            Scope::CurrentUser => f(),
            Scope::ConsoleUser => {
                // SAFETY: plain calls; the token is closed by the guard.
                let _guard = unsafe {
                    let session = WTSGetActiveConsoleSessionId();
                    if session == u32::MAX {
                        return Err("nobody is logged in at the console".into());
                    }
                    let mut token = HANDLE::default();
                    WTSQueryUserToken(session, &mut token)
                        .map_err(win_err("cannot get the console user's token"))?;
                    let guard = Impersonation(token);
                    ImpersonateLoggedOnUser(token)
                        .map_err(win_err("cannot impersonate the console user"))?;
                    guard
                };
                f()
            }
        }
    }

    /// The password credentials whose target or alias names `host`, and those of them whose
    /// secret Windows does not hand out (they cannot be kept, so they are not deleted).
    pub fn find(
        &self,
        host: &str,
    ) -> Result<(Vec<SavedCredential>, Vec<CredentialInfo>), PerformError> {
        self.as_user(|| enumerate(host))
            .map_err(PerformError::Failed)
    }

    /// Records the matching credentials: names in clear, the whole credentials
    /// DPAPI-encrypted (see `crate::credman`).
    pub fn snapshot(&self, host: &str) -> Result<Value, PerformError> {
        let (keep, unreadable) = self.find(host)?;
        let infos: Vec<CredentialInfo> = keep.iter().map(SavedCredential::info).collect();
        let protected = if keep.is_empty() {
            String::new()
        } else {
            // Serialising plain strings and numbers cannot fail.
            let plain = serde_json::to_vec(&keep).unwrap_or_default();
            to_hex(&protect(&plain).map_err(PerformError::Failed)?)
        };
        Ok(json!({
            "host": host,
            "credentials": infos,
            "left_alone": unreadable,
            "protected": protected,
        }))
    }

    /// Deletes the credentials the snapshot `before` kept, when they are still exactly as
    /// kept (a credential changed since is the user's newer one and stays).
    pub fn purge(&self, before: &Value) -> Result<Value, PerformError> {
        let kept = unprotect_snapshot(before)?;
        let host = before["host"].as_str().unwrap_or_default().to_string();
        let (deleted, changed) = self
            .as_user(|| {
                let (now, _) = enumerate(&host)?;
                let mut deleted = Vec::new();
                let mut changed = Vec::new();
                for k in &kept {
                    if now.iter().any(|n| n == k) {
                        let target = wide(&k.target_name);
                        // SAFETY: a NUL-terminated target name.
                        unsafe {
                            CredDeleteW(PCWSTR(target.as_ptr()), CRED_TYPE(k.cred_type), None)
                        }
                        .map_err(win_err("cannot delete a credential"))?;
                        deleted.push(k.info());
                    } else {
                        changed.push(k.info());
                    }
                }
                Ok((deleted, changed))
            })
            .map_err(PerformError::Failed)?;
        Ok(json!({ "deleted": deleted, "changed_since_snapshot": changed }))
    }

    /// Writes back every credential the snapshot kept that is not there again; returns what
    /// was restored and what was left because a newer one exists. Idempotent.
    pub fn restore(&self, before: &Value) -> Result<Value, PerformError> {
        let kept = unprotect_snapshot(before)?;
        let (restored, newer) = self
            .as_user(|| {
                let mut restored = Vec::new();
                let mut newer = Vec::new();
                for k in &kept {
                    if exists(k)? {
                        newer.push(k.info());
                    } else {
                        write(k)?;
                        restored.push(k.info());
                    }
                }
                Ok((restored, newer))
            })
            .map_err(PerformError::Failed)?;
        Ok(json!({ "restored": restored, "newer_kept": newer }))
    }
}

fn enumerate(host: &str) -> Result<(Vec<SavedCredential>, Vec<CredentialInfo>), String> {
    let mut count = 0u32;
    let mut list: *mut *mut CREDENTIALW = std::ptr::null_mut();
    // SAFETY: out-pointers to locals; the list is freed with CredFree below.
    let r = unsafe { CredEnumerateW(PCWSTR::null(), None, &mut count, &mut list) };
    if let Err(e) = r {
        if e.code() == ERROR_NOT_FOUND.to_hresult() {
            return Ok((Vec::new(), Vec::new()));
        }
        return Err(win_err("cannot list credentials (CredEnumerateW)")(e));
    }
    let mut keep = Vec::new();
    let mut unreadable = Vec::new();
    // SAFETY: CredEnumerateW returned `count` valid credential pointers.
    unsafe {
        for &p in std::slice::from_raw_parts(list, count as usize) {
            let Some(c) = p.as_ref() else { continue };
            if !is_password_type(c.Type.0) {
                continue;
            }
            let s = saved(c);
            if !(target_names_host(&s.target_name, host)
                || (!s.target_alias.is_empty() && target_names_host(&s.target_alias, host)))
            {
                continue;
            }
            if s.blob_hex.is_empty() && s.cred_type == TYPE_DOMAIN_PASSWORD {
                unreadable.push(s.info());
            } else {
                keep.push(s);
            }
        }
        CredFree(list as *const _);
    }
    Ok((keep, unreadable))
}

fn exists(k: &SavedCredential) -> Result<bool, String> {
    let target = wide(&k.target_name);
    let mut out: *mut CREDENTIALW = std::ptr::null_mut();
    // SAFETY: a NUL-terminated name and an out-pointer; freed below.
    match unsafe {
        CredReadW(
            PCWSTR(target.as_ptr()),
            CRED_TYPE(k.cred_type),
            None,
            &mut out,
        )
    } {
        Ok(()) => {
            // SAFETY: returned by CredReadW.
            unsafe { CredFree(out as *const _) };
            Ok(true)
        }
        Err(e) if e.code() == ERROR_NOT_FOUND.to_hresult() => Ok(false),
        Err(e) => Err(win_err("cannot read a credential (CredReadW)")(e)),
    }
}

fn write(k: &SavedCredential) -> Result<(), String> {
    let bad = || format!("the snapshot of credential {:?} is damaged", k.target_name);
    let mut target = wide(&k.target_name);
    let mut alias = wide(&k.target_alias);
    let mut comment = wide(&k.comment);
    let mut user = wide(&k.user_name);
    let mut blob = from_hex(&k.blob_hex).ok_or_else(bad)?;
    let mut keywords: Vec<Vec<u16>> = k.attributes.iter().map(|a| wide(&a.keyword)).collect();
    let mut values: Vec<Vec<u8>> = k
        .attributes
        .iter()
        .map(|a| from_hex(&a.value_hex).ok_or_else(bad))
        .collect::<Result<_, _>>()?;
    let mut attrs: Vec<CREDENTIAL_ATTRIBUTEW> = k
        .attributes
        .iter()
        .zip(keywords.iter_mut().zip(values.iter_mut()))
        .map(|(a, (kw, v))| CREDENTIAL_ATTRIBUTEW {
            Keyword: PWSTR(kw.as_mut_ptr()),
            Flags: a.flags,
            ValueSize: v.len() as u32,
            Value: v.as_mut_ptr(),
        })
        .collect();
    let opt = |v: &mut Vec<u16>, s: &str| {
        if s.is_empty() {
            PWSTR::null()
        } else {
            PWSTR(v.as_mut_ptr())
        }
    };
    let cred = CREDENTIALW {
        Flags: CRED_FLAGS(k.flags & WRITABLE_FLAGS),
        Type: CRED_TYPE(k.cred_type),
        TargetName: PWSTR(target.as_mut_ptr()),
        Comment: opt(&mut comment, &k.comment),
        CredentialBlobSize: blob.len() as u32,
        CredentialBlob: if blob.is_empty() {
            std::ptr::null_mut()
        } else {
            blob.as_mut_ptr()
        },
        Persist: CRED_PERSIST(k.persist),
        AttributeCount: attrs.len() as u32,
        Attributes: if attrs.is_empty() {
            std::ptr::null_mut()
        } else {
            attrs.as_mut_ptr()
        },
        TargetAlias: opt(&mut alias, &k.target_alias),
        UserName: opt(&mut user, &k.user_name),
        ..Default::default()
    };
    // SAFETY: every pointer in `cred` points into a buffer alive until after the call.
    let r = unsafe { CredWriteW(&cred, 0) }
        .map_err(win_err("cannot write a credential back (CredWriteW)"));
    // The secret does not outlive its use in this process's memory longer than needed.
    blob.iter_mut().for_each(|b| *b = 0);
    r
}

/// DPAPI-encrypts `plain` for the current (non-impersonated) account.
fn protect(plain: &[u8]) -> Result<Vec<u8>, String> {
    dpapi(plain, true)
}

fn dpapi(data: &[u8], encrypt: bool) -> Result<Vec<u8>, String> {
    let input = CRYPT_INTEGER_BLOB {
        cbData: data.len() as u32,
        pbData: data.as_ptr() as *mut u8,
    };
    let entropy = CRYPT_INTEGER_BLOB {
        cbData: DPAPI_ENTROPY.len() as u32,
        pbData: DPAPI_ENTROPY.as_ptr() as *mut u8,
    };
    let mut out = CRYPT_INTEGER_BLOB::default();
    // SAFETY: input and entropy point to live buffers DPAPI only reads; the output is freed
    // with LocalFree after copying.
    unsafe {
        if encrypt {
            let desc = wide("mailmend credential snapshot");
            CryptProtectData(
                &input,
                PCWSTR(desc.as_ptr()),
                Some(&entropy),
                None,
                None,
                CRYPTPROTECT_UI_FORBIDDEN,
                &mut out,
            )
            .map_err(win_err(
                "cannot encrypt the credential snapshot (CryptProtectData)",
            ))?;
        } else {
            CryptUnprotectData(
                &input,
                None,
                Some(&entropy),
                None,
                None,
                CRYPTPROTECT_UI_FORBIDDEN,
                &mut out,
            )
            .map_err(win_err(
                "cannot decrypt the credential snapshot (CryptUnprotectData)",
            ))?;
        }
        let bytes = std::slice::from_raw_parts(out.pbData, out.cbData as usize).to_vec();
        let _ = LocalFree(Some(HLOCAL(out.pbData as *mut _)));
        Ok(bytes)
    }
}

/// The credentials a snapshot kept, decrypted.
fn unprotect_snapshot(before: &Value) -> Result<Vec<SavedCredential>, PerformError> {
    let hex = before["protected"].as_str().unwrap_or_default();
    if hex.is_empty() {
        return Ok(Vec::new());
    }
    let damaged = || PerformError::Failed("the credential snapshot is damaged".into());
    let sealed = from_hex(hex).ok_or_else(damaged)?;
    let mut plain = dpapi(&sealed, false).map_err(PerformError::Failed)?;
    let kept = serde_json::from_slice(&plain).map_err(|_| damaged());
    plain.iter_mut().for_each(|b| *b = 0);
    kept
}
