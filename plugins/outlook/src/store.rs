//! [`RegFileStore`]: the [`Registry`] trait over one `.reg` export file, so that the adapter and
//! the executor run on Linux against real exports. Every operation reads the file again (a
//! parse is reused while the bytes are unchanged), so a change made by someone else between two
//! operations is seen, as it would be in the real registry.
//!
//! A write rewrites only the changed value's text ([`RegFile::set`]) and replaces the file
//! atomically: a temporary file in the same directory, fsync, rename, directory fsync; the
//! file's permission bits are kept.

use crate::regfile::{EditError, RegFile, State};
use mailmend_core::{RegPath, RegValue, Registry, RegistryError};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// A registry held in a `.reg` file.
#[derive(Debug)]
pub struct RegFileStore {
    path: PathBuf,
    cache: Mutex<Option<Cached>>,
}

#[derive(Debug)]
struct Cached {
    file: RegFile,
    state: State,
}

impl RegFileStore {
    /// A store over the file at `path`; the file is read at each operation.
    pub fn open(path: impl Into<PathBuf>) -> RegFileStore {
        RegFileStore {
            path: path.into(),
            cache: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Option<Cached>> {
        // A panic in another thread while holding the lock leaves at worst a stale cache, which
        // the next load replaces after comparing bytes.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn store_error(&self, detail: impl std::fmt::Display) -> RegistryError {
        RegistryError::Store {
            key: self.path.display().to_string(),
            detail: detail.to_string(),
        }
    }

    /// Reads and parses the file, reusing the last parse when the bytes are the same.
    fn load<'a>(&self, cache: &'a mut Option<Cached>) -> Result<&'a Cached, RegistryError> {
        let bytes = fs::read(&self.path).map_err(|e| self.store_error(e))?;
        let fresh = !matches!(cache, Some(c) if c.file.as_bytes() == &bytes[..]);
        if fresh {
            let file = RegFile::parse(&bytes).map_err(|e| RegistryError::Unreadable {
                file: self.path.display().to_string(),
                line: e.line,
                column: e.column,
                message: e.message,
            })?;
            let state = file.state();
            *cache = Some(Cached { file, state });
        }
        // Filled just above when it was empty or stale.
        cache
            .as_ref()
            .ok_or_else(|| self.store_error("no parse cached"))
    }

    fn edit(
        &self,
        key: &RegPath,
        name: &str,
        change: impl FnOnce(&mut RegFile) -> Result<(), EditError>,
    ) -> Result<(), RegistryError> {
        let mut guard = self.lock();
        let mut file = self.load(&mut guard)?.file.clone();
        let before = file.as_bytes().to_vec();
        change(&mut file).map_err(|e| match e {
            EditError::Unrepresentable(_) | EditError::RawStringInV4(_) => {
                RegistryError::Unsupported {
                    key: key.to_string(),
                    name: name.to_string(),
                    reason: e.to_string(),
                }
            }
            other => self.store_error(other),
        })?;
        if file.as_bytes() != &before[..] {
            atomic_write(&self.path, file.as_bytes()).map_err(|e| self.store_error(e))?;
        }
        let state = file.state();
        *guard = Some(Cached { file, state });
        Ok(())
    }
}

impl Registry for RegFileStore {
    fn subkeys(&self, key: &RegPath) -> Result<Vec<String>, RegistryError> {
        let mut guard = self.lock();
        let c = self.load(&mut guard)?;
        if !c.state.has_key(key) {
            return Err(RegistryError::KeyNotFound(key.to_string()));
        }
        Ok(c.state.subkeys(key))
    }

    fn values(&self, key: &RegPath) -> Result<Vec<String>, RegistryError> {
        let mut guard = self.lock();
        let c = self.load(&mut guard)?;
        if !c.state.has_key(key) {
            return Err(RegistryError::KeyNotFound(key.to_string()));
        }
        Ok(c.state.value_names(key))
    }

    fn get(&self, key: &RegPath, name: &str) -> Result<Option<RegValue>, RegistryError> {
        let mut guard = self.lock();
        let c = self.load(&mut guard)?;
        Ok(c.file.get_in(&c.state, key, name))
    }

    fn set(&self, key: &RegPath, name: &str, value: &RegValue) -> Result<(), RegistryError> {
        self.edit(key, name, |f| f.set(key, name, value))
    }

    fn delete_value(&self, key: &RegPath, name: &str) -> Result<(), RegistryError> {
        self.edit(key, name, |f| f.delete(key, name))
    }
}

/// Replaces `path` with `bytes` atomically, keeping its permission bits.
fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.mailmend-{}.tmp", std::process::id()));
    let result = (|| {
        let perms = fs::metadata(path)?.permissions();
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.set_permissions(perms)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        sync_dir(path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn sync_dir(path: &Path) -> io::Result<()> {
    if cfg!(unix) {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        File::open(dir.unwrap_or(Path::new(".")))?.sync_all()
    } else {
        // Windows cannot open a directory as a file; NTFS orders the rename itself.
        Ok(())
    }
}
