//! Reading a configuration file for the password it holds, safely for an agent that runs as
//! root: only a regular file, reached without a symbolic link as its last component, and owned
//! by the user whose account it configures.
//!
//! Why: the agent reads a user's file and sends the password in it to the host the same user
//! configured. Were the file swapped (after discovery) for a link to a file only root can read,
//! such as root's own client configuration, that secret would go to the user's server. A file
//! the user owns holds nothing the user could not read anyway. The check is made on the opened
//! file (`fstat`), so the file cannot be swapped between the check and the read.

use std::io::Read;
use std::path::Path;
use zeroize::Zeroizing;

/// The bytes of `path` when it is a regular file owned by `os_user` (a login name, or a uid in
/// decimal); `None` otherwise or when it cannot be read. The buffer is zeroed on drop.
///
/// Off Unix there is no owner to compare, and the file is read as it is.
pub fn read_owned(path: &Path, os_user: &str) -> Option<Zeroizing<Vec<u8>>> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits());
    }
    let mut file = options.open(path).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if Some(meta.uid()) != uid_of(os_user) {
            return None;
        }
    }
    #[cfg(not(unix))]
    let _ = os_user;
    let len = usize::try_from(meta.len()).ok()?;
    // Allocated once, with room for the end-of-file check, so no reallocation leaves a copy.
    let mut bytes = Zeroizing::new(Vec::with_capacity(len.saturating_add(1)));
    file.read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// The uid of a login name, or of a uid written in decimal.
#[cfg(unix)]
fn uid_of(os_user: &str) -> Option<u32> {
    if let Ok(uid) = os_user.parse::<u32>() {
        return Some(uid);
    }
    nix::unistd::User::from_name(os_user)
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn me() -> String {
        nix::unistd::geteuid().as_raw().to_string()
    }

    #[test]
    fn a_file_of_the_user_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rc");
        std::fs::write(&path, b"password x\n").unwrap();
        assert_eq!(
            read_owned(&path, &me()).unwrap().as_slice(),
            b"password x\n"
        );
    }

    #[test]
    fn a_file_of_another_user_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rc");
        std::fs::write(&path, b"password x\n").unwrap();
        let other = (nix::unistd::geteuid().as_raw() + 1).to_string();
        assert!(read_owned(&path, &other).is_none());
        assert!(read_owned(&path, "no-such-user-mailmend").is_none());
    }

    #[test]
    fn a_symbolic_link_or_a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("secret");
        std::fs::write(&target, b"password root-only\n").unwrap();
        let link = dir.path().join("rc");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(read_owned(&link, &me()).is_none());
        assert!(read_owned(dir.path(), &me()).is_none());
        assert!(read_owned(&dir.path().join("missing"), &me()).is_none());
    }
}
