//! Atomic, metadata-preserving file writes: the user's mail configuration is never left half
//! written, and it keeps its owner, group and mode. On Windows the new content replaces the old
//! file through `ReplaceFileW`, which keeps the replaced file's ACL, owner and attributes (the
//! Windows counterpart of owner, group and mode); `FileMeta` only carries the read-only bit
//! there.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Owner, group and permission bits of a file, restored on every rewrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileMeta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Reads the metadata of an existing file.
pub fn meta_of(path: &Path) -> io::Result<FileMeta> {
    let m = fs::metadata(path)?;
    Ok(meta_from(&m))
}

#[cfg(unix)]
fn meta_from(m: &fs::Metadata) -> FileMeta {
    use std::os::unix::fs::MetadataExt;
    FileMeta {
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
    }
}

#[cfg(not(unix))]
fn meta_from(m: &fs::Metadata) -> FileMeta {
    FileMeta {
        mode: if m.permissions().readonly() {
            0o444
        } else {
            0o644
        },
        uid: 0,
        gid: 0,
    }
}

/// The temporary file's name: hidden, in the same directory (so `rename` is atomic), and
/// recognisable as ours if a crash leaves it behind.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.mailmend-{}.tmp", std::process::id()))
}

/// Replaces `path` with `bytes` atomically: temporary file in the same directory, fsync, rename,
/// directory fsync. `meta` (owner, group, mode) is applied to the new file before the rename, so
/// the file is never visible with the wrong permissions.
pub fn atomic_write(path: &Path, bytes: &[u8], meta: Option<FileMeta>) -> io::Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        if let Some(meta) = meta {
            apply_meta(&f, meta)?;
        }
        f.sync_all()?;
        drop(f);
        replace(&tmp, path)?;
        sync_dir(path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Puts `tmp` in place of `path`.
#[cfg(not(windows))]
fn replace(tmp: &Path, path: &Path) -> io::Result<()> {
    fs::rename(tmp, path)
}

/// Windows: ReplaceFileW when `path` exists, so that its security descriptor stays; a plain
/// rename for a new file, or when ReplaceFileW refuses (a read-only target, a file system
/// without the feature).
#[cfg(windows)]
fn replace(tmp: &Path, path: &Path) -> io::Result<()> {
    use std::os::windows::ffi::OsStrExt;
    use windows_sys::Win32::Storage::FileSystem::{ReplaceFileW, REPLACEFILE_IGNORE_MERGE_ERRORS};
    if !path.exists() {
        return fs::rename(tmp, path);
    }
    let wide = |p: &Path| -> Vec<u16> { p.as_os_str().encode_wide().chain([0]).collect() };
    let (target, source) = (wide(path), wide(tmp));
    // SAFETY: both strings are NUL-terminated UTF-16 that outlive the call; no backup file and
    // no reserved pointers.
    let ok = unsafe {
        ReplaceFileW(
            target.as_ptr(),
            source.as_ptr(),
            std::ptr::null(),
            REPLACEFILE_IGNORE_MERGE_ERRORS,
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    if ok != 0 {
        return Ok(());
    }
    fs::rename(tmp, path)
}

#[cfg(unix)]
fn apply_meta(f: &File, meta: FileMeta) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::io::AsRawFd;
    // Only root may give a file away; an unprivileged agent writes its own user's files, which
    // already have that owner, so a failed chown there is not an error worth aborting for.
    match nix::unistd::fchown(
        f.as_raw_fd(),
        Some(nix::unistd::Uid::from_raw(meta.uid)),
        Some(nix::unistd::Gid::from_raw(meta.gid)),
    ) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => {}
        Err(e) => return Err(io::Error::from(e)),
    }
    f.set_permissions(fs::Permissions::from_mode(meta.mode))
}

#[cfg(not(unix))]
fn apply_meta(f: &File, meta: FileMeta) -> io::Result<()> {
    let mut p = f.metadata()?.permissions();
    p.set_readonly(meta.mode & 0o200 == 0);
    f.set_permissions(p)
}

/// Fsyncs the directory holding `path`, so that a rename survives a power cut.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        File::open(dir.unwrap_or(Path::new(".")))?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_content_and_keeps_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("prefs.js");
        fs::write(&p, b"old").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        }
        let meta = meta_of(&p).unwrap();
        atomic_write(&p, b"new content", Some(meta)).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new content");
        assert_eq!(meta_of(&p).unwrap(), meta);
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            leftovers.len(),
            1,
            "temporary file left behind: {leftovers:?}"
        );
    }
}
