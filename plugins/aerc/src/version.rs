//! Which aerc is installed, from `aerc -v`. The version decides what a bare `smtp://` means:
//! plaintext before 0.15 (STARTTLS only with `smtp-starttls = yes`), STARTTLS from 0.15 on
//! (`smtp+insecure://` is plaintext there).
//!
//! mailmend runs as root, so it runs only an `aerc` that no other user could have replaced: the
//! file (its real path) and its directory must belong to root or to the user mailmend runs as,
//! and neither may be writable by group or others (a sticky directory may). It runs with an empty environment, no input, and a time limit.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where the system's aerc is looked for, in order. The user's own directories are not
/// searched: a binary the user can replace must not be run with mailmend's rights.
pub const SYSTEM_PATHS: [&str; 3] = ["/usr/bin/aerc", "/usr/local/bin/aerc", "/bin/aerc"];

/// How long `aerc -v` may take.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// An aerc release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AercVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl fmt::Display for AercVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl AercVersion {
    /// The release in which a bare `smtp://` became STARTTLS.
    pub const SMTP_STARTTLS: AercVersion = AercVersion::new(0, 15, 0);

    pub const fn new(major: u32, minor: u32, patch: u32) -> AercVersion {
        AercVersion {
            major,
            minor,
            patch,
        }
    }

    /// Whether a bare `smtp://` means STARTTLS in this release.
    pub fn smtp_means_starttls(self) -> bool {
        self >= AercVersion::SMTP_STARTTLS
    }

    /// Reads the version from `aerc -v` output: `aerc 0.14.0 +notmuch (go1.19.8 amd64 linux)`,
    /// `aerc 0.18.2-52-g3d7a1b0`, or a bare `0.17.0`.
    pub fn parse_output(output: &str) -> Option<AercVersion> {
        let mut words = output.split_whitespace();
        let word = match words.next()? {
            "aerc" => words.next()?,
            w => w,
        };
        let word = word.strip_prefix('v').unwrap_or(word);
        let end = word
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(word.len());
        let mut nums = word[..end].split('.');
        let major = nums.next()?.parse().ok()?;
        let minor = nums.next()?.parse().ok()?;
        let patch = nums.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        Some(AercVersion::new(major, minor, patch))
    }
}

/// The version of the first trusted aerc among `candidates` that answers `-v`.
pub fn detect(candidates: &[PathBuf]) -> Option<AercVersion> {
    candidates.iter().find_map(|p| run_version(p))
}

/// The version of the system's aerc, from [`SYSTEM_PATHS`].
pub fn detect_system() -> Option<AercVersion> {
    let paths: Vec<PathBuf> = SYSTEM_PATHS.iter().map(PathBuf::from).collect();
    detect(&paths)
}

fn run_version(path: &Path) -> Option<AercVersion> {
    let real = std::fs::canonicalize(path).ok()?;
    if !trusted(&real) {
        tracing::warn!(path = %real.display(), "not running aerc: another user could have replaced it");
        return None;
    }
    let mut child = Command::new(&real)
        .arg("-v")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                tracing::warn!(path = %real.display(), "aerc -v did not answer in time");
                // Ends only the child this function started.
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let mut out = String::new();
    child
        .stdout
        .take()?
        .take(4096)
        .read_to_string(&mut out)
        .ok()?;
    let version = AercVersion::parse_output(&out);
    tracing::debug!(path = %real.display(), version = ?version, "aerc version");
    version
}

/// Whether a binary is safe to run with mailmend's rights.
#[cfg(unix)]
fn trusted(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let owned = |m: &std::fs::Metadata| m.uid() == 0 || m.uid() == me;
    // Nobody else may change the file, nor replace it in its directory (a sticky directory
    // such as /tmp lets only the file's owner do that).
    let dir_ok = path
        .parent()
        .and_then(|d| std::fs::metadata(d).ok())
        .is_some_and(|d| owned(&d) && (d.mode() & 0o022 == 0 || d.mode() & 0o1000 != 0));
    meta.is_file() && owned(&meta) && meta.mode() & 0o022 == 0 && dir_ok
}

#[cfg(not(unix))]
fn trusted(path: &Path) -> bool {
    path.is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_output_of_several_releases_parses() {
        let v = |s| AercVersion::parse_output(s);
        assert_eq!(
            v("aerc 0.14.0 +notmuch (go1.19.8 amd64 linux)"),
            Some(AercVersion::new(0, 14, 0))
        );
        assert_eq!(
            v("aerc 0.18.2-52-g3d7a1b0\n"),
            Some(AercVersion::new(0, 18, 2))
        );
        assert_eq!(v("0.15"), Some(AercVersion::new(0, 15, 0)));
        assert_eq!(v("aerc v1.0.0"), Some(AercVersion::new(1, 0, 0)));
        assert_eq!(v("aerc"), None);
        assert_eq!(v("usage: aerc [-v]"), None);
        assert_eq!(v(""), None);
    }

    #[test]
    fn starttls_began_with_0_15() {
        assert!(!AercVersion::new(0, 14, 9).smtp_means_starttls());
        assert!(AercVersion::new(0, 15, 0).smtp_means_starttls());
        assert!(AercVersion::new(1, 0, 0).smtp_means_starttls());
    }
}
