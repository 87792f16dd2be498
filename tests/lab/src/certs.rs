//! The lab's certificate authority and server certificates, made with the openssl command:
//! a good certificate for the mail host names, and expired, self-signed, wrong-host,
//! not-yet-valid and client-authentication-only ones.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::sys;

/// Which server certificate Dovecot and Postfix present.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertKind {
    /// Signed by the lab CA, valid now, names every mail host of example.com.
    Good,
    /// Signed by the lab CA with the right names, but valid only from 2020 to 2021.
    Expired,
    /// The right names and dates, but signed by its own key rather than the lab CA.
    SelfSigned,
    /// Signed by the lab CA and valid now, but for `wrong.example.net` only.
    WrongHost,
    /// Signed by the lab CA with the right names, but valid only from two years ahead: a
    /// certificate installed too early, or a server or client clock that is wrong.
    NotYetValid,
    /// Signed by the lab CA, valid now, with the right names, but its extended key usage
    /// allows client authentication only: a certificate issued for the wrong purpose.
    ClientAuthOnly,
}

impl CertKind {
    /// Every kind, in a fixed order.
    pub const ALL: [CertKind; 6] = [
        CertKind::Good,
        CertKind::Expired,
        CertKind::SelfSigned,
        CertKind::WrongHost,
        CertKind::NotYetValid,
        CertKind::ClientAuthOnly,
    ];

    /// File stem of the certificate in the lab's `certs/` directory.
    pub fn file_stem(self) -> &'static str {
        match self {
            CertKind::Good => "good",
            CertKind::Expired => "expired",
            CertKind::SelfSigned => "selfsigned",
            CertKind::WrongHost => "wronghost",
            CertKind::NotYetValid => "notyetvalid",
            CertKind::ClientAuthOnly => "clientonly",
        }
    }
}

/// Host names the good certificate covers.
pub const MAIL_NAMES: &[&str] = &[
    "mail.example.com",
    "imap.example.com",
    "pop.example.com",
    "smtp.example.com",
    "mail2.example.com",
    "autoconfig.example.com",
    "autodiscover.example.com",
    "example.com",
    // The provider in another domain that a moved server lives at (see the hosting.test zone).
    "mail.hosting.test",
];

/// Paths of the generated certificate material.
#[derive(Clone, Debug)]
pub struct Certs {
    /// Directory holding everything below.
    pub dir: PathBuf,
    /// The lab CA certificate (PEM), the trust anchor clients are given.
    pub ca: PathBuf,
    /// The one server key every server certificate is made for.
    pub key: PathBuf,
}

impl Certs {
    /// Path of the certificate of `kind`.
    pub fn cert(&self, kind: CertKind) -> PathBuf {
        self.dir.join(format!("{}.pem", kind.file_stem()))
    }

    /// Directory with `cert.pem` and `key.pem` that the daemons are configured to read.
    pub fn active_dir(&self) -> PathBuf {
        self.dir.join("active")
    }

    /// The paths of the material in `dir`, made or not.
    pub fn paths(dir: &Path) -> Certs {
        Certs {
            dir: dir.to_path_buf(),
            ca: dir.join("ca.pem"),
            key: dir.join("server.key"),
        }
    }

    /// Makes the CA and all server certificates, with elliptic-curve keys because they take
    /// milliseconds where RSA takes far longer, and activates the good certificate.
    pub fn create(&self, lab_id: u8) -> Result<()> {
        let dir = self.dir.as_path();
        sys::mkdir(dir, 0o755)?;
        sys::mkdir(&dir.join("newcerts"), 0o755)?;
        let sans: Vec<String> = MAIL_NAMES.iter().map(|n| format!("DNS:{n}")).collect();
        let sans = sans.join(",");
        fs::write(dir.join("index.txt"), "")?;
        fs::write(dir.join("serial"), "1000\n")?;
        fs::write(
            dir.join("ca.cnf"),
            format!(
                "[ca]\n\
                 default_ca = lab\n\
                 [lab]\n\
                 dir = {d}\n\
                 database = {d}/index.txt\n\
                 new_certs_dir = {d}/newcerts\n\
                 certificate = {d}/ca.pem\n\
                 private_key = {d}/ca.key\n\
                 serial = {d}/serial\n\
                 default_md = sha256\n\
                 default_days = 825\n\
                 policy = policy_any\n\
                 unique_subject = no\n\
                 copy_extensions = none\n\
                 email_in_dn = no\n\
                 [policy_any]\n\
                 commonName = supplied\n\
                 [good_ext]\n\
                 basicConstraints = critical,CA:FALSE\n\
                 keyUsage = critical,digitalSignature\n\
                 extendedKeyUsage = serverAuth\n\
                 subjectAltName = {sans}\n\
                 [wrong_ext]\n\
                 basicConstraints = critical,CA:FALSE\n\
                 keyUsage = critical,digitalSignature\n\
                 extendedKeyUsage = serverAuth\n\
                 subjectAltName = DNS:wrong.example.net\n\
                 [client_ext]\n\
                 basicConstraints = critical,CA:FALSE\n\
                 keyUsage = critical,digitalSignature\n\
                 extendedKeyUsage = clientAuth\n\
                 subjectAltName = {sans}\n",
                d = dir.display()
            ),
        )?;
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        let ca_subject = format!("/O=mailmend lab/CN=mailmend lab {lab_id} CA");
        openssl(
            dir,
            &["req", "-x509"],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "3650",
                "-subj",
                &ca_subject,
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        )?;
        openssl(
            dir,
            &["req", "-new"],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=mail.example.com",
            ],
        )?;
        let ca = [
            "ca",
            "-batch",
            "-notext",
            "-config",
            "ca.cnf",
            "-in",
            "server.csr",
        ];
        openssl(
            dir,
            &ca,
            &[],
            &["-extensions", "good_ext", "-out", "good.pem"],
        )?;
        // OpenSSL 3.0 makes an already-expired certificate only through `openssl ca` with
        // explicit dates (LAB-NOTES 9).
        openssl(
            dir,
            &ca,
            &[],
            &[
                "-extensions",
                "good_ext",
                "-startdate",
                "20200101000000Z",
                "-enddate",
                "20210101000000Z",
                "-out",
                "expired.pem",
            ],
        )?;
        openssl(
            dir,
            &ca,
            &[],
            &[
                "-extensions",
                "wrong_ext",
                "-subj",
                "/CN=wrong.example.net",
                "-out",
                "wronghost.pem",
            ],
        )?;
        // Valid from the first of January two years ahead, whatever today is (an approximate
        // year is enough for that).
        let year = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| 1970 + d.as_secs() / 31_556_952)
            .unwrap_or(2030);
        let (start, end) = (
            format!("{}0101000000Z", year + 2),
            format!("{}0101000000Z", year + 3),
        );
        openssl(
            dir,
            &ca,
            &[],
            &[
                "-extensions",
                "good_ext",
                "-startdate",
                &start,
                "-enddate",
                &end,
                "-out",
                "notyetvalid.pem",
            ],
        )?;
        openssl(
            dir,
            &ca,
            &[],
            &["-extensions", "client_ext", "-out", "clientonly.pem"],
        )?;
        let san_ext = format!("subjectAltName={sans}");
        openssl(
            dir,
            &["req", "-x509", "-key", "server.key"],
            &[],
            &[
                "-out",
                "selfsigned.pem",
                "-days",
                "825",
                "-subj",
                "/CN=mail.example.com",
                "-addext",
                &san_ext,
                "-addext",
                "basicConstraints=critical,CA:FALSE",
            ],
        )?;
        // nginx workers and unprivileged helpers may read these: throwaway lab material, so
        // world-readable is harmless.
        for f in [
            "ca.pem",
            "server.key",
            "good.pem",
            "expired.pem",
            "wronghost.pem",
            "selfsigned.pem",
            "notyetvalid.pem",
            "clientonly.pem",
        ] {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir.join(f), fs::Permissions::from_mode(0o644))?;
        }
        sys::mkdir(&self.active_dir(), 0o755)?;
        self.activate(CertKind::Good)
    }

    /// Copies the certificate of `kind` (and the key) to the active paths. Copying over the
    /// same paths keeps every daemon configuration unchanged; the caller reloads the daemons.
    pub fn activate(&self, kind: CertKind) -> Result<()> {
        let active = self.active_dir();
        let tmp = active.join("cert.pem.new");
        fs::copy(self.cert(kind), &tmp).context("cannot copy certificate")?;
        fs::rename(&tmp, active.join("cert.pem")).context("cannot install certificate")?;
        if !active.join("key.pem").exists() {
            fs::copy(&self.key, active.join("key.pem")).context("cannot copy key")?;
        }
        Ok(())
    }
}

fn openssl(dir: &Path, head: &[&str], mid: &[&str], tail: &[&str]) -> Result<()> {
    sys::run(
        Command::new("openssl")
            .args(head)
            .args(mid)
            .args(tail)
            .current_dir(dir),
    )
    .map(|_| ())
}
