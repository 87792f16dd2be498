//! The real Windows registry behind [`Registry`] (the `windows-registry` crate), and the Windows
//! process table (Toolhelp snapshots) behind [`ProcessTable`].

use mailmend_clientkit::process::{ProcessInfo, ProcessTable};
use mailmend_core::{Hive, RegPath, RegValue, Registry, RegistryError};
use windows_registry::{Key, Type};

/// HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND): the key or value does not exist.
const NOT_FOUND: i32 = 0x8007_0002_u32 as i32;
/// HRESULT_FROM_WIN32(ERROR_ACCESS_DENIED).
const DENIED: i32 = 0x8007_0005_u32 as i32;

/// The registry of this machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct WindowsRegistry;

fn hive(h: Hive) -> &'static Key {
    match h {
        Hive::ClassesRoot => windows_registry::CLASSES_ROOT,
        Hive::CurrentUser => windows_registry::CURRENT_USER,
        Hive::LocalMachine => windows_registry::LOCAL_MACHINE,
        Hive::Users => windows_registry::USERS,
        Hive::CurrentConfig => windows_registry::CURRENT_CONFIG,
    }
}

fn fail(key: &RegPath, e: &windows_result::Error) -> RegistryError {
    match e.code().0 {
        NOT_FOUND => RegistryError::KeyNotFound(key.to_string()),
        DENIED => RegistryError::Denied(key.to_string()),
        _ => RegistryError::Store {
            key: key.to_string(),
            detail: e.message(),
        },
    }
}

fn is_not_found(e: &windows_result::Error) -> bool {
    e.code().0 == NOT_FOUND
}

fn open(key: &RegPath) -> Result<Key, RegistryError> {
    hive(key.hive()).open(key.path()).map_err(|e| fail(key, &e))
}

impl WindowsRegistry {
    /// Removes a key and everything below it. Only tests use it, for their scratch keys; the
    /// adapter and the executor never remove keys.
    pub fn remove_tree(&self, key: &RegPath) -> Result<(), RegistryError> {
        match hive(key.hive()).remove_tree(key.path()) {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(fail(key, &e)),
        }
    }
}

impl Registry for WindowsRegistry {
    fn subkeys(&self, key: &RegPath) -> Result<Vec<String>, RegistryError> {
        let k = open(key)?;
        let names = k.keys().map_err(|e| fail(key, &e))?;
        Ok(names.collect())
    }

    /// Value names through RegEnumValueW with no data buffer, so listing never reads a value.
    fn values(&self, key: &RegPath) -> Result<Vec<String>, RegistryError> {
        use windows_sys::Win32::System::Registry::{RegEnumValueW, RegQueryInfoKeyW, HKEY};
        let k = open(key)?;
        let h = k.as_raw() as HKEY;
        let mut count = 0u32;
        let mut max_name = 0u32;
        // SAFETY: `h` is an open key handle owned by `k`, alive for the call; every out pointer
        // is either null or points at a local of the right type.
        let rc = unsafe {
            RegQueryInfoKeyW(
                h,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut count,
                &mut max_name,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if rc != 0 {
            return Err(RegistryError::Store {
                key: key.to_string(),
                detail: format!("RegQueryInfoKeyW failed with {rc}"),
            });
        }
        let mut names = Vec::new();
        let mut buf = vec![0u16; max_name as usize + 1];
        for i in 0..count {
            let mut len = buf.len() as u32;
            // SAFETY: `buf` holds `len` u16s; type, data and data length are null, so no value
            // data is read.
            let rc = unsafe {
                RegEnumValueW(
                    h,
                    i,
                    buf.as_mut_ptr(),
                    &mut len,
                    std::ptr::null(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            };
            if rc != 0 {
                // A value removed meanwhile ends the listing early; what was listed stays true.
                break;
            }
            names.push(String::from_utf16_lossy(&buf[..len as usize]));
        }
        Ok(names)
    }

    fn get(&self, key: &RegPath, name: &str) -> Result<Option<RegValue>, RegistryError> {
        let k = match hive(key.hive()).open(key.path()) {
            Ok(k) => k,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(fail(key, &e)),
        };
        match k.get_value(name) {
            Ok(v) => Ok(Some(RegValue::from_raw(u32::from(v.ty()), &v))),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(fail(key, &e)),
        }
    }

    fn set(&self, key: &RegPath, name: &str, value: &RegValue) -> Result<(), RegistryError> {
        let k = hive(key.hive())
            .create(key.path())
            .map_err(|e| fail(key, &e))?;
        k.set_bytes(name, Type::from(value.kind()), &value.to_raw())
            .map_err(|e| fail(key, &e))
    }

    fn delete_value(&self, key: &RegPath, name: &str) -> Result<(), RegistryError> {
        let k = match hive(key.hive()).options().read().write().open(key.path()) {
            Ok(k) => k,
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(fail(key, &e)),
        };
        match k.remove_value(name) {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(fail(key, &e)),
        }
    }
}

/// The processes of this machine, from a Toolhelp snapshot. Windows identifies users by SID,
/// not by a number, so `uid` is `None` (which the adapters count as "maybe this user").
#[derive(Debug, Clone, Copy, Default)]
pub struct WindowsProcesses;

impl ProcessTable for WindowsProcesses {
    fn processes(&self) -> Vec<ProcessInfo> {
        use windows_sys::Win32::Foundation::{CloseHandle, INVALID_HANDLE_VALUE};
        use windows_sys::Win32::System::Diagnostics::ToolHelp::{
            CreateToolhelp32Snapshot, Process32FirstW, Process32NextW, PROCESSENTRY32W,
            TH32CS_SNAPPROCESS,
        };
        let mut out = Vec::new();
        // SAFETY: plain Win32 calls; the snapshot handle is closed below, and the entry is a
        // zeroed PROCESSENTRY32W with dwSize set, as the API requires.
        unsafe {
            let snap = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
            if snap == INVALID_HANDLE_VALUE || snap.is_null() {
                return out;
            }
            let mut entry: PROCESSENTRY32W = std::mem::zeroed();
            entry.dwSize = std::mem::size_of::<PROCESSENTRY32W>() as u32;
            let mut ok = Process32FirstW(snap, &mut entry);
            while ok != 0 {
                let len = entry
                    .szExeFile
                    .iter()
                    .position(|&c| c == 0)
                    .unwrap_or(entry.szExeFile.len());
                out.push(ProcessInfo {
                    pid: entry.th32ProcessID,
                    name: String::from_utf16_lossy(&entry.szExeFile[..len]),
                    uid: None,
                });
                ok = Process32NextW(snap, &mut entry);
            }
            CloseHandle(snap);
        }
        out
    }
}
