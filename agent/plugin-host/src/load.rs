//! Finding plugin files and deciding whether to load them: directory and file ownership and
//! permissions, the SHA-256 allowlist, the ABI handshake and the manifest.
//!
//! Order of the checks for each file, all on one open file descriptor: open without following
//! symbolic links → regular file? → SHA-256 of the bytes read from that descriptor → owner and
//! mode of that descriptor (`fstat`) → allowlist → load. On Linux the library is loaded
//! through `/proc/self/fd/N`, i.e. from the very inode that was hashed and checked, so a file
//! swapped in by rename after the checks is never loaded.
//!
//! Residual race: the checked inode could be rewritten in place between hashing and loading,
//! but only by root (the file is root-owned and not writable by group or others), who could
//! replace the agent itself. Where `/proc/self/fd` is unavailable (other Unixes, or `/proc`
//! not mounted) the library is loaded by path, and after loading the path's device and inode
//! are compared with the checked descriptor's; a mismatch is refused, but the swapped-in
//! library's initialisers have run by then. The directory checks (root-owned, not writable by
//! group or others, same for every directory above it unless sticky) are what make such a swap
//! require root in the first place.
//!
//! Windows: ownership and permission checks are skipped (ACLs do not map onto owner/mode bits);
//! only the allowlist protects the load there, and the library is loaded by path, so the
//! plugin directory must be protected by its ACL (e.g. under `%ProgramFiles%`).

use crate::dynamic::DynamicDiagnostic;
use crate::ffi::{Answer, Exports};
use crate::refusal::{Refusal, RefusalReason};
use libloading::Library;
use mailmend_plugin_sdk::{
    AbiVersionFn, CallFn, FreeFn, Manifest, ManifestFn, PluginRole, ABI_VERSION,
    SYMBOL_ABI_VERSION, SYMBOL_CALL, SYMBOL_FREE, SYMBOL_MANIFEST,
};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What `load_dir` did with each plugin file.
#[derive(Debug, Default)]
pub struct LoadOutcome {
    /// Plugins that passed every check, in file-name order.
    pub loaded: Vec<DynamicDiagnostic>,
    /// Files (or the directory) that were not loaded, with the reason; report these to the
    /// admin.
    pub refused: Vec<Refusal>,
}

/// A plugin file that passed every check and whose library is loaded.
pub(crate) struct Checked {
    pub path: PathBuf,
    pub sha256: String,
    pub manifest: Manifest,
    pub exports: Exports,
}

/// Loads every acceptable dynamic plugin from `dir` (not recursively).
///
/// Only files with the platform's library extension (`so`, `dylib`, `dll`) are considered;
/// other files are ignored. A missing `dir` gives an empty outcome: having no plugins is
/// normal. Everything else that is not loaded is listed in [`LoadOutcome::refused`].
///
/// `allowed_sha256` holds the hex SHA-256 of each approved plugin file (case-insensitive).
/// `call_timeout` bounds each later diagnose call of the loaded plugins.
///
/// Loading runs the library's initialisers in this process; that is the trust the admin
/// grants by allowlisting its hash. Loaded libraries are never unloaded.
pub fn load_dir(dir: &Path, allowed_sha256: &[String], call_timeout: Duration) -> LoadOutcome {
    let mut outcome = LoadOutcome::default();
    let allowed: HashSet<String> = allowed_sha256
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();

    let dir = match fs::canonicalize(dir) {
        Ok(dir) => dir,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            tracing::debug!(dir = %dir.display(), "no plugin directory, no dynamic plugins");
            return outcome;
        }
        Err(e) => {
            refuse(
                &mut outcome,
                dir,
                None,
                RefusalReason::DirectoryUnreadable(e.to_string()),
            );
            return outcome;
        }
    };
    if let Err(reason) = platform::check_directory(&dir) {
        refuse(&mut outcome, &dir, None, reason);
        return outcome;
    }
    let mut names = Vec::new();
    match fs::read_dir(&dir) {
        Ok(entries) => {
            for entry in entries {
                match entry {
                    Ok(entry) => names.push(entry.file_name()),
                    Err(e) => {
                        let reason = RefusalReason::DirectoryUnreadable(e.to_string());
                        refuse(&mut outcome, &dir, None, reason);
                    }
                }
            }
        }
        Err(e) => {
            refuse(
                &mut outcome,
                &dir,
                None,
                RefusalReason::DirectoryUnreadable(e.to_string()),
            );
            return outcome;
        }
    }
    names.sort();

    for name in names {
        let path = dir.join(&name);
        if path.extension() != Some(OsStr::new(std::env::consts::DLL_EXTENSION)) {
            continue;
        }
        let checked = match check_and_load(&dir, &path, &allowed) {
            Ok(checked) => checked,
            Err(refusal) => {
                tracing::warn!("{refusal}");
                outcome.refused.push(refusal);
                continue;
            }
        };
        let first = outcome
            .loaded
            .iter()
            .find(|d| d.manifest().name == checked.manifest.name);
        if let Some(first) = first {
            let reason = RefusalReason::DuplicateName {
                name: checked.manifest.name.clone(),
                first: first.path().to_path_buf(),
            };
            refuse(&mut outcome, &checked.path, Some(checked.sha256), reason);
            continue;
        }
        tracing::info!(
            plugin = %checked.manifest.name,
            version = %checked.manifest.version,
            path = %checked.path.display(),
            sha256 = %checked.sha256,
            "loaded dynamic plugin"
        );
        outcome
            .loaded
            .push(DynamicDiagnostic::new(checked, call_timeout));
    }
    outcome
}

fn refuse(outcome: &mut LoadOutcome, path: &Path, sha256: Option<String>, reason: RefusalReason) {
    let refusal = Refusal {
        path: path.to_path_buf(),
        sha256,
        reason,
    };
    tracing::warn!("{refusal}");
    outcome.refused.push(refusal);
}

/// Runs every check on one file and, when all pass, loads it and reads its manifest.
fn check_and_load(dir: &Path, path: &Path, allowed: &HashSet<String>) -> Result<Checked, Refusal> {
    let refusal = |sha256: Option<&String>, reason| Refusal {
        path: path.to_path_buf(),
        sha256: sha256.cloned(),
        reason,
    };
    let unreadable = |e: io::Error| refusal(None, RefusalReason::Unreadable(e.to_string()));

    // A link may point at another file of the (protected) directory, never outside it.
    let link = fs::symlink_metadata(path).map_err(unreadable)?;
    let open_path = if link.file_type().is_symlink() {
        let target = fs::canonicalize(path).map_err(unreadable)?;
        if target.parent() != Some(dir) {
            return Err(refusal(
                None,
                RefusalReason::SymlinkLeavesDirectory { target },
            ));
        }
        target
    } else {
        path.to_path_buf()
    };

    let file = platform::open_no_follow(&open_path).map_err(unreadable)?;
    if !file.metadata().map_err(unreadable)?.is_file() {
        return Err(refusal(None, RefusalReason::NotRegularFile));
    }
    let sha256 = sha256_of(&file).map_err(unreadable)?;
    let sha = Some(&sha256);
    // The metadata of the descriptor just hashed: what we check is what we hashed.
    let metadata = file
        .metadata()
        .map_err(|e| refusal(sha, RefusalReason::Unreadable(e.to_string())))?;
    platform::check_file(&metadata).map_err(|reason| refusal(sha, reason))?;
    if !allowed.contains(&sha256) {
        return Err(refusal(sha, RefusalReason::NotInAllowlist));
    }

    let library = platform::open_library(file, &open_path, &metadata)
        .map_err(|e| refusal(sha, RefusalReason::LoadFailed(e)))?;
    // Never unloaded: code of a dlclose'd library could still be on some thread's stack (an
    // abandoned, timed-out call), and Rust thread-local destructors registered by it would
    // jump into unmapped memory at thread exit. Leaking it makes the symbols `'static`.
    let library: &'static Library = Box::leak(Box::new(library));

    let exports = handshake(library).map_err(|reason| refusal(sha, reason))?;
    let manifest =
        read_manifest(&exports).map_err(|e| refusal(sha, RefusalReason::BadManifest(e)))?;
    Ok(Checked {
        path: path.to_path_buf(),
        sha256,
        manifest,
        exports,
    })
}

/// Checks the ABI version and only then looks up the other exports, whose signatures depend
/// on the version.
fn handshake(library: &'static Library) -> Result<Exports, RefusalReason> {
    let missing = |name: &[u8], e: libloading::Error| {
        let name = String::from_utf8_lossy(name.strip_suffix(b"\0").unwrap_or(name)).into_owned();
        RefusalReason::LoadFailed(format!("it does not export {name}: {e}"))
    };
    // SAFETY: every mailmend plugin ABI exports this symbol with this type; a library that
    // exports a different thing under this name is not one, and the allowlist vouches for it.
    let abi_version: AbiVersionFn = *unsafe { library.get::<AbiVersionFn>(SYMBOL_ABI_VERSION) }
        .map_err(|e| missing(SYMBOL_ABI_VERSION, e))?;
    // SAFETY: see above; the function takes nothing and returns a number.
    let found = unsafe { abi_version() };
    if found != ABI_VERSION {
        return Err(RefusalReason::AbiMismatch {
            found,
            expected: ABI_VERSION,
        });
    }
    // SAFETY: the handshake established ABI version 1, which defines these symbols' types.
    let exports = unsafe {
        Exports {
            manifest: *library
                .get::<ManifestFn>(SYMBOL_MANIFEST)
                .map_err(|e| missing(SYMBOL_MANIFEST, e))?,
            call: *library
                .get::<CallFn>(SYMBOL_CALL)
                .map_err(|e| missing(SYMBOL_CALL, e))?,
            free: *library
                .get::<FreeFn>(SYMBOL_FREE)
                .map_err(|e| missing(SYMBOL_FREE, e))?,
        }
    };
    Ok(exports)
}

fn read_manifest(exports: &Exports) -> Result<Manifest, String> {
    let bytes = match exports.manifest() {
        Answer::Ok(bytes) => bytes,
        Answer::Error(message) => return Err(format!("the plugin reported an error: {message}")),
        Answer::Panic(message) => return Err(message),
        Answer::Broken(problem) => return Err(problem),
    };
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    manifest.validate()?;
    if manifest.role != PluginRole::Diagnostic {
        return Err(format!("role {:?} is not supported", manifest.role));
    }
    Ok(manifest)
}

/// The SHA-256 of everything readable from `file`, as lower-case hex.
fn sha256_of(mut file: &File) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(unix)]
mod platform {
    //! Unix: root ownership, no group/other write, and loading from the checked descriptor.

    use crate::refusal::RefusalReason;
    use libloading::os::unix::{Library as UnixLibrary, RTLD_LOCAL, RTLD_NOW};
    use libloading::Library;
    use std::fs::{self, File, Metadata, OpenOptions};
    use std::io;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    use std::path::Path;

    const GROUP_OR_OTHER_WRITE: u32 = 0o022;
    const STICKY: u32 = 0o1000;

    /// The plugin directory must be root's alone; the directories above it must not let
    /// anyone else rename it away (sticky world-writable ones like /tmp are fine for that).
    pub fn check_directory(dir: &Path) -> Result<(), RefusalReason> {
        let insecure = |d: &Path, problem: String| RefusalReason::DirectoryNotSecure {
            dir: d.to_path_buf(),
            problem,
        };
        let meta =
            fs::metadata(dir).map_err(|e| RefusalReason::DirectoryUnreadable(e.to_string()))?;
        if !meta.is_dir() {
            return Err(RefusalReason::DirectoryUnreadable(format!(
                "{} is not a directory",
                dir.display()
            )));
        }
        if meta.uid() != 0 {
            return Err(insecure(
                dir,
                format!("is owned by uid {}, not root", meta.uid()),
            ));
        }
        let mode = meta.mode() & 0o7777;
        if mode & GROUP_OR_OTHER_WRITE != 0 {
            return Err(insecure(
                dir,
                format!("has mode {mode:04o}, which lets group or others change its files"),
            ));
        }
        for ancestor in dir.ancestors().skip(1) {
            let meta = fs::metadata(ancestor)
                .map_err(|e| insecure(ancestor, format!("cannot be checked: {e}")))?;
            if meta.uid() != 0 {
                return Err(insecure(
                    ancestor,
                    format!("is owned by uid {}, not root", meta.uid()),
                ));
            }
            let mode = meta.mode() & 0o7777;
            if mode & GROUP_OR_OTHER_WRITE != 0 && mode & STICKY == 0 {
                return Err(insecure(
                    ancestor,
                    format!(
                        "has mode {mode:04o}, which lets group or others replace the plugin \
                         directory"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Opens for reading without following a final symbolic link and without blocking on a
    /// FIFO that carries a library's name.
    pub fn open_no_follow(path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
            .open(path)
    }

    pub fn check_file(meta: &Metadata) -> Result<(), RefusalReason> {
        if meta.uid() != 0 {
            return Err(RefusalReason::WrongOwner { uid: meta.uid() });
        }
        let mode = meta.mode() & 0o7777;
        if mode & GROUP_OR_OTHER_WRITE != 0 {
            return Err(RefusalReason::WritableByOthers { mode });
        }
        Ok(())
    }

    /// Loads the library from the checked descriptor when the system allows it, else by path
    /// with an identity check afterwards.
    pub fn open_library(file: File, path: &Path, checked: &Metadata) -> Result<Library, String> {
        use std::os::fd::AsRawFd;
        let flags = RTLD_NOW | RTLD_LOCAL;
        let by_fd = Path::new("/proc/self/fd").join(file.as_raw_fd().to_string());
        if fs::metadata(&by_fd).is_ok_and(|m| m.dev() == checked.dev() && m.ino() == checked.ino())
        {
            // SAFETY: the file passed ownership, permission and allowlist checks; running its
            // initialisers is the trust the admin granted.
            let library =
                unsafe { UnixLibrary::open(Some(&by_fd), flags) }.map_err(|e| e.to_string())?;
            // The descriptor stays open for the life of the process: the dynamic loader
            // remembers the library by its name `/proc/self/fd/N`, and would hand this
            // library out again for a later plugin opened under a reused descriptor number.
            std::mem::forget(file);
            return Ok(library.into());
        }
        // SAFETY: as above.
        let library = unsafe { UnixLibrary::open(Some(path), flags) }.map_err(|e| e.to_string())?;
        let now = fs::metadata(path).map_err(|e| e.to_string())?;
        if now.dev() != checked.dev() || now.ino() != checked.ino() {
            // The library stays loaded but unused; see the module documentation.
            std::mem::forget(library);
            return Err("the file was replaced while it was being loaded".to_string());
        }
        Ok(library.into())
    }
}

#[cfg(not(unix))]
mod platform {
    //! Windows and others: no owner/mode checks (see the module documentation); load by path.

    use crate::refusal::RefusalReason;
    use libloading::Library;
    use std::fs::{self, File, Metadata};
    use std::io;
    use std::path::Path;

    pub fn check_directory(dir: &Path) -> Result<(), RefusalReason> {
        let meta =
            fs::metadata(dir).map_err(|e| RefusalReason::DirectoryUnreadable(e.to_string()))?;
        if !meta.is_dir() {
            return Err(RefusalReason::DirectoryUnreadable(format!(
                "{} is not a directory",
                dir.display()
            )));
        }
        Ok(())
    }

    pub fn open_no_follow(path: &Path) -> io::Result<File> {
        File::open(path)
    }

    pub fn check_file(_meta: &Metadata) -> Result<(), RefusalReason> {
        Ok(())
    }

    pub fn open_library(file: File, path: &Path, _checked: &Metadata) -> Result<Library, String> {
        // Loaded by path: the residual race is described in the module documentation.
        drop(file);
        // SAFETY: the file passed the allowlist check; running its initialisers is the trust
        // the admin granted.
        unsafe { Library::new(path) }.map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_lower_case_hex_of_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.bin");
        fs::write(&path, b"abc").unwrap();
        let file = File::open(&path).unwrap();
        assert_eq!(
            sha256_of(&file).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_missing_directory_means_no_plugins_and_no_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let outcome = load_dir(&dir.path().join("absent"), &[], Duration::from_secs(1));
        assert!(outcome.loaded.is_empty());
        assert!(outcome.refused.is_empty());
    }
}
