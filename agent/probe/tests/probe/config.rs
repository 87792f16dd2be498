//! Prober construction: extra CA files and configuration errors.

use crate::common::*;
use mailmend_core::{Prober, Protocol, Security};
use mailmend_probe::{ProbeConfig, ProbeError, RealProber};
use std::io::Write;
use std::time::Duration;

fn with_ca(path: std::path::PathBuf) -> Result<RealProber, ProbeError> {
    RealProber::new(ProbeConfig {
        extra_ca_files: vec![path],
        ..ProbeConfig::default()
    })
}

#[test]
fn missing_ca_file_error_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("company-ca.pem");
    let err = with_ca(path.clone()).unwrap_err();
    assert!(matches!(err, ProbeError::CaFileUnreadable { .. }));
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn ca_file_without_a_certificate_error_names_the_file() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(b"this is not a certificate\n").unwrap();
    let err = with_ca(file.path().to_path_buf()).unwrap_err();
    assert!(matches!(err, ProbeError::CaFileInvalid { .. }), "{err:?}");
    assert!(err.to_string().contains(&file.path().display().to_string()));
}

#[test]
fn invalid_limits_are_rejected() {
    let err = RealProber::new(ProbeConfig {
        connect_timeout: Duration::ZERO,
        ..ProbeConfig::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("connect_timeout"), "{err}");
}

#[tokio::test]
async fn der_ca_file_is_accepted_and_trusted() {
    let ca = Ca::new("DER test CA");
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(ca.cert.der()).unwrap();
    let prober = with_ca(file.path().to_path_buf()).unwrap();
    let mut server = MailServer::new(Speak::Pop3).caps(&["USER"], &["USER"]);
    server.implicit = Some(ca.leaf(&["localhost"]).acceptor());
    let port = server.start().await;
    let report = prober
        .probe(&target(Protocol::Pop3, port, Security::Tls))
        .await;
    assert!(report.is_healthy(), "{report:?}");
}
