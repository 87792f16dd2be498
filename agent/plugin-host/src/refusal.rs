//! Why a plugin file was not loaded, in words that tell the admin what to do about it.

use std::fmt;
use std::path::{Path, PathBuf};

/// A plugin file (or the whole plugin directory) that was not loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The file, or the directory when the directory itself is refused.
    pub path: PathBuf,
    /// The file's SHA-256 (lower-case hex), when it was read far enough to compute it.
    pub sha256: Option<String>,
    pub reason: RefusalReason,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        write!(f, "plugin {path} not loaded: {}", self.reason)?;
        if let Some(sha) = &self.sha256 {
            write!(f, " (sha256 {sha})")?;
        }
        f.write_str("; ")?;
        f.write_str(&advice(&self.reason, &self.path, self.sha256.as_deref()))
    }
}

impl std::error::Error for Refusal {}

/// What the admin can do about a refusal.
fn advice(reason: &RefusalReason, path: &Path, sha256: Option<&str>) -> String {
    let path = path.display();
    match reason {
        RefusalReason::NotInAllowlist => match sha256 {
            Some(sha) => format!(
                "if you trust this file, add {{ name = \"<plugin name>\", sha256 = \"{sha}\" }} \
                 to [plugins] allowed in the policy"
            ),
            None => "if you trust this file, add its sha256 to [plugins] allowed in the policy"
                .to_string(),
        },
        RefusalReason::WrongOwner { .. } => format!(
            "someone other than root could replace it; if the file is genuine, run \
             `chown root {path}`"
        ),
        RefusalReason::WritableByOthers { .. } => format!(
            "anyone in its group (or anyone at all) could replace its code; run `chmod go-w {path}`"
        ),
        RefusalReason::DirectoryNotSecure { dir, .. } => format!(
            "no plugin in it was loaded; make {} and every directory above it owned by root \
             and not writable by group or others",
            dir.display()
        ),
        RefusalReason::DirectoryUnreadable(_) => {
            "check that the plugin directory in the policy exists and is a readable directory"
                .to_string()
        }
        RefusalReason::SymlinkLeavesDirectory { .. } => {
            "copy the plugin file into the plugin directory instead of linking to it".to_string()
        }
        RefusalReason::NotRegularFile => {
            "remove it; only regular files are loaded as plugins".to_string()
        }
        RefusalReason::Unreadable(_) => "check that the file is readable by root".to_string(),
        RefusalReason::AbiMismatch { .. } => {
            "install the plugin build made for this version of mailmend".to_string()
        }
        RefusalReason::BadManifest(_) | RefusalReason::LoadFailed(_) => {
            "the file is not a working mailmend plugin; ask its vendor for a fixed build"
                .to_string()
        }
        RefusalReason::DuplicateName { .. } => {
            "remove one of the two files; each plugin name may be loaded once".to_string()
        }
    }
}

/// Why a plugin was refused. None of these is fatal to the agent: the plugin is skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefusalReason {
    /// The file's SHA-256 is not in the policy's allowlist: a new or updated plugin that the
    /// admin has not approved yet, or a file that was tampered with.
    #[error("its sha256 is not in the policy's plugin allowlist")]
    NotInAllowlist,
    /// The file is not owned by root, so its owner could swap its code.
    #[error("it is owned by uid {uid}, not root")]
    WrongOwner { uid: u32 },
    /// The file's permissions let group or others write it (`chmod 664` or looser).
    #[error("its mode {mode:04o} lets group or others write it")]
    WritableByOthers { mode: u32 },
    /// The plugin directory, or a directory above it, could be changed by someone other than
    /// root (wrong owner, or writable by group or others without the sticky bit).
    #[error("directory {} {problem}", dir.display())]
    DirectoryNotSecure { dir: PathBuf, problem: String },
    /// The plugin directory exists but cannot be read: not a directory, or an I/O error.
    #[error("the plugin directory cannot be read: {0}")]
    DirectoryUnreadable(String),
    /// A symbolic link in the plugin directory points outside it, where the directory's
    /// protection does not apply.
    #[error("it is a symbolic link to {}, outside the plugin directory", target.display())]
    SymlinkLeavesDirectory { target: PathBuf },
    /// A directory, device or pipe carries a library's name.
    #[error("it is not a regular file")]
    NotRegularFile,
    /// The file could not be opened or read (vanished, permissions, I/O error).
    #[error("it cannot be read: {0}")]
    Unreadable(String),
    /// The plugin was built against another plugin ABI version than this agent speaks.
    #[error("it was built for plugin abi version {found}, this agent speaks version {expected}")]
    AbiMismatch { found: u32, expected: u32 },
    /// The plugin's manifest could not be read or is invalid (bad JSON, bad name, wrong role).
    #[error("its manifest is invalid: {0}")]
    BadManifest(String),
    /// The dynamic loader refused the file or a required symbol is missing: not a mailmend
    /// plugin, built for another platform, or missing a system library.
    #[error("it cannot be loaded: {0}")]
    LoadFailed(String),
    /// Another file in the directory (often a copy or a link of the same plugin) already
    /// provided a plugin of this name.
    #[error("a plugin named {name:?} was already loaded from {}", first.display())]
    DuplicateName { name: String, first: PathBuf },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_says_what_happened_and_what_to_do() {
        let r = Refusal {
            path: "/usr/lib/mailmend/plugins/libx.so".into(),
            sha256: Some("ab".repeat(32)),
            reason: RefusalReason::WrongOwner { uid: 1000 },
        };
        let text = r.to_string();
        assert!(text.contains("/usr/lib/mailmend/plugins/libx.so"), "{text}");
        assert!(text.contains("owned by uid 1000, not root"), "{text}");
        assert!(
            text.contains("chown root /usr/lib/mailmend/plugins/libx.so"),
            "{text}"
        );
    }

    #[test]
    fn an_unlisted_plugin_refusal_quotes_the_hash_to_add() {
        let sha = "cd".repeat(32);
        let r = Refusal {
            path: "/p/liby.so".into(),
            sha256: Some(sha.clone()),
            reason: RefusalReason::NotInAllowlist,
        };
        assert!(r.to_string().contains(&format!("sha256 = \"{sha}\"")));
    }

    #[test]
    fn modes_are_shown_in_octal() {
        let reason = RefusalReason::WritableByOthers {
            mode: 0o100664 & 0o7777,
        };
        assert_eq!(
            reason.to_string(),
            "its mode 0664 lets group or others write it"
        );
    }
}
