//! Shared helpers of the plugin host's integration tests: building real plugin libraries,
//! plugin directories with the owner and modes the host requires, and an in-memory prober.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use mailmend_core::{
    Account, AccountId, AuthMethod, BoxFuture, Capabilities, ClientKind, DnsOutcome, DnsReport,
    Endpoint, Location, ProbeReport, ProbeTarget, Prober, Protocol, Security, TcpOutcome,
};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use tempfile::TempDir;

pub const EXAMPLE: &str = "mailmend-example-plugin";
pub const TESTKIT: &str = "mailmend-plugin-testkit";

/// Builds a plugin crate (with one feature) into its own target directory under `target/`,
/// once per test binary, and returns the built library.
pub fn built_library(package: &str, feature: Option<&str>) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let key = format!("{package}-{}", feature.unwrap_or("default"));
    // Holding the lock while building also keeps parallel tests from building the same thing.
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(&key) {
        return path.clone();
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target_dir = workspace.join("target/plugin-tests").join(&key);
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .current_dir(&workspace)
        .args(["build", "--quiet", "-p", package, "--target-dir"])
        .arg(&target_dir)
        // Without debug info the libraries are a tenth of the size, which keeps hashing them
        // with the unoptimised test build of sha2 quick.
        .args([
            "--config",
            "profile.dev.debug=0",
            "--config",
            "profile.dev.strip=true",
        ]);
    if let Some(feature) = feature {
        cargo.args(["--features", feature]);
    }
    let output = cargo.output().expect("cargo runs");
    assert!(
        output.status.success(),
        "building {key} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let file = format!(
        "{}{}.{}",
        std::env::consts::DLL_PREFIX,
        package.replace('-', "_"),
        std::env::consts::DLL_EXTENSION
    );
    let path = target_dir.join("debug").join(file);
    assert!(path.is_file(), "{} was not built", path.display());
    built.insert(key, path.clone());
    path
}

pub fn example_library() -> PathBuf {
    built_library(EXAMPLE, None)
}

pub fn testkit_library(feature: &str) -> PathBuf {
    built_library(TESTKIT, Some(feature))
}

/// A library file name the host considers, e.g. `example.so`.
pub fn lib_name(stem: &str) -> String {
    format!("{stem}.{}", std::env::consts::DLL_EXTENSION)
}

/// A plugin directory as the host wants it: root-owned, mode 0755 (the tests run as root).
pub struct PluginDir {
    dir: TempDir,
}

impl PluginDir {
    pub fn new() -> PluginDir {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the plugin host tests must run as root to create root-owned plugin files"
        );
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::chown(dir.path(), Some(0), Some(0)).unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        PluginDir { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The directory as the host reports it (symbolic links above it resolved).
    pub fn canonical(&self) -> PathBuf {
        fs::canonicalize(self.dir.path()).unwrap()
    }

    /// Copies a library in as `name`, owned by root with mode 0644.
    pub fn add(&self, library: &Path, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::copy(library, &path).unwrap();
        std::os::unix::fs::chown(&path, Some(0), Some(0)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        path
    }

    pub fn chmod(&self, path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }
}

pub fn sha256_file(path: &Path) -> String {
    hex::encode(Sha256::digest(fs::read(path).unwrap()))
}

/// An account with an IMAP incoming and an SMTP outgoing endpoint.
pub fn account(smtp_port: u16, smtp_auth: AuthMethod) -> Account {
    Account {
        id: AccountId("msmtp-0123456789ab".into()),
        client: ClientKind::Msmtp,
        os_user: "ann".into(),
        email: Some("ann@example.com".into()),
        location: Location::File {
            path: "/home/ann/.msmtprc".into(),
        },
        key: "default".into(),
        incoming: Some(Endpoint {
            protocol: Protocol::Imap,
            host: "imap.example.com".into(),
            port: 993,
            security: Security::Tls,
            auth: AuthMethod::PasswordCleartext,
            username: Some("ann".into()),
        }),
        outgoing: Some(Endpoint {
            protocol: Protocol::Smtp,
            host: "smtp.example.com".into(),
            port: smtp_port,
            security: Security::StartTls,
            auth: smtp_auth,
            username: Some("ann".into()),
        }),
    }
}

/// An in-memory prober: every target "answers" on 127.0.0.1; it records what was probed.
#[derive(Default)]
pub struct FakeProber {
    pub probed: Mutex<Vec<ProbeTarget>>,
}

impl FakeProber {
    pub fn report(target: &ProbeTarget) -> ProbeReport {
        ProbeReport {
            target: target.clone(),
            dns: DnsOutcome::Resolved {
                addresses: vec!["127.0.0.1".parse().unwrap()],
            },
            tcp: TcpOutcome::Connected {
                address: format!("127.0.0.1:{}", target.port).parse().unwrap(),
            },
            tls: None,
            capabilities: Some(Capabilities {
                greeting: format!("220 {} ESMTP", target.host),
                ..Capabilities::default()
            }),
            protocol_error: None,
            elapsed_ms: 1,
        }
    }

    pub fn probed(&self) -> Vec<ProbeTarget> {
        self.probed.lock().unwrap().clone()
    }
}

impl Prober for FakeProber {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, DnsReport> {
        Box::pin(async move {
            DnsReport {
                host: host.to_string(),
                outcome: DnsOutcome::Resolved {
                    addresses: vec!["127.0.0.1".parse().unwrap()],
                },
                elapsed_ms: 0,
            }
        })
    }

    fn probe<'a>(&'a self, target: &'a ProbeTarget) -> BoxFuture<'a, ProbeReport> {
        self.probed.lock().unwrap().push(target.clone());
        Box::pin(async move { FakeProber::report(target) })
    }

    fn probe_all<'a>(&'a self, targets: &'a [ProbeTarget]) -> BoxFuture<'a, Vec<ProbeReport>> {
        self.probed.lock().unwrap().extend(targets.iter().cloned());
        Box::pin(async move { targets.iter().map(FakeProber::report).collect() })
    }
}
