//! The TLS client: trust roots, a handshake with full certificate verification, and the
//! classification of failures into [`TlsFailure`].
//!
//! Trust roots are the system bundle (`$SSL_CERT_FILE`, then `/etc/ssl/certs/ca-certificates.crt`,
//! `/etc/pki/tls/certs/ca-bundle.crt`, `/etc/ssl/cert.pem`; the first that yields certificates
//! wins) plus the configured extra CA files. Where no bundle file exists (Windows, some macOS
//! set-ups) the Mozilla roots compiled in through `webpki-roots` are used instead; the OS
//! certificate store itself is not consulted, so a company CA must then come as an extra file.
//!
//! Verification is rustls' `WebPkiServerVerifier`, wrapped by [`RecordingVerifier`] only to
//! remember the presented chain and the verdict for classification: the wrapper returns the inner
//! verifier's verdict unchanged and never accepts what it rejects.

use crate::config::ProbeError;
use crate::conn::Io;
use crate::replies::excerpt;
use mailmend_core::{TlsFailure, TlsOutcome};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName,
    RootCertStore, SignatureScheme,
};
use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS;

/// System CA bundles, in the order tried.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// How many of the server's first bytes are kept to recognise a plaintext server.
const FIRST_BYTES: usize = 64;

/// Trust roots and the verifier, shared by all probes of a prober.
#[derive(Clone)]
pub(crate) struct TlsContext {
    provider: Arc<CryptoProvider>,
    verifier: Arc<WebPkiServerVerifier>,
    /// The DER of every root loaded from a file, to tell a trusted self-signed certificate from
    /// an untrusted one.
    trusted: Arc<HashSet<Vec<u8>>>,
}

impl std::fmt::Debug for TlsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsContext")
            .field("trusted_roots", &self.trusted.len())
            .finish_non_exhaustive()
    }
}

impl TlsContext {
    pub fn new(extra_ca_files: &[PathBuf]) -> Result<TlsContext, ProbeError> {
        // The ring provider is named explicitly: a process-wide default may not be installed,
        // or may be another provider that a different crate chose.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        let mut trusted = HashSet::new();
        load_system_roots(&mut roots, &mut trusted);
        for path in extra_ca_files {
            load_extra_ca(path, &mut roots, &mut trusted)?;
        }
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| ProbeError::Verifier(e.to_string()))?;
        Ok(TlsContext {
            provider,
            verifier,
            trusted: Arc::new(trusted),
        })
    }

    /// Runs a TLS handshake over `io` for `host`, finishing before `until`.
    pub async fn handshake(
        &self,
        io: Box<dyn Io>,
        host: &str,
        until: Instant,
    ) -> Result<(Box<dyn Io>, TlsOutcome), TlsFailure> {
        let name = server_name(host)?;
        let recorder = Arc::new(RecordingVerifier {
            inner: self.verifier.clone(),
            seen: Mutex::new(Seen::default()),
        });
        let config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsFailure::Other {
                detail: format!("cannot configure TLS: {e}"),
            })?
            // `dangerous()` is the only way to install a custom verifier; ours delegates every
            // decision to the WebPKI verifier, so verification stays fully on.
            .dangerous()
            .with_custom_certificate_verifier(recorder.clone())
            .with_no_client_auth();
        let connector = TlsConnector::from(Arc::new(config));
        let first = Arc::new(Mutex::new(Vec::new()));
        let wrapped = FirstBytes {
            inner: io,
            seen: first.clone(),
        };
        let started = Instant::now();
        tracing::debug!(host, "tls handshake");
        let result = tokio::time::timeout_at(until, connector.connect(name, wrapped)).await;
        let first_bytes = lock(&first).clone();
        match result {
            Ok(Ok(stream)) => {
                let (_, conn) = stream.get_ref();
                let version = match conn.protocol_version() {
                    Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
                    Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
                    Some(other) => format!("{other:?}"),
                    None => "unknown".to_string(),
                };
                let not_after = conn
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .and_then(|leaf| parse(leaf))
                    .and_then(|c| rfc3339(c.validity().not_after.to_datetime()));
                tracing::debug!(host, %version, "tls established");
                Ok((
                    Box::new(stream),
                    TlsOutcome::Established { version, not_after },
                ))
            }
            Ok(Err(e)) => {
                let seen = std::mem::take(&mut *lock(&recorder.seen));
                let failure = classify_failure(&seen, Some(&e), &first_bytes, &self.trusted);
                tracing::debug!(host, ?failure, "tls failed");
                Err(failure)
            }
            Err(_) => {
                let waited = started.elapsed().as_millis();
                let failure = if looks_plaintext(&first_bytes) {
                    TlsFailure::NotTls {
                        detail: describe_plaintext(&first_bytes),
                    }
                } else if first_bytes.is_empty() {
                    TlsFailure::Other {
                        detail: format!("no answer to the TLS handshake within {waited} ms"),
                    }
                } else {
                    TlsFailure::Other {
                        detail: format!("TLS handshake did not complete within {waited} ms"),
                    }
                };
                tracing::debug!(host, ?failure, "tls timed out");
                Err(failure)
            }
        }
    }
}

/// Locks a mutex, recovering the data if another thread panicked while holding it (the data is
/// a plain record, never left half-written).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn server_name(host: &str) -> Result<ServerName<'static>, TlsFailure> {
    let host = host.trim_end_matches('.');
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|e| TlsFailure::Other {
        detail: format!("{host:?} cannot be a TLS server name: {e}"),
    })
}

fn load_system_roots(roots: &mut RootCertStore, trusted: &mut HashSet<Vec<u8>>) {
    let env = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    let candidates = env
        .into_iter()
        .chain(SYSTEM_BUNDLES.iter().map(PathBuf::from));
    for path in candidates {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut bytes.as_slice())
            .filter_map(Result::ok)
            .collect();
        for c in &certs {
            trusted.insert(c.as_ref().to_vec());
        }
        // A system bundle may hold a certificate webpki cannot use; skip it, keep the others.
        let (added, ignored) = roots.add_parsable_certificates(certs);
        if added > 0 {
            tracing::debug!(path = %path.display(), added, ignored, "loaded system CA bundle");
            return;
        }
    }
    tracing::debug!("no system CA bundle found; using the compiled-in Mozilla roots");
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
}

fn load_extra_ca(
    path: &Path,
    roots: &mut RootCertStore,
    trusted: &mut HashSet<Vec<u8>>,
) -> Result<(), ProbeError> {
    let bytes = std::fs::read(path).map_err(|source| ProbeError::CaFileUnreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let mut certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut bytes.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| ProbeError::CaFileInvalid {
            path: path.to_path_buf(),
            detail: format!("malformed PEM: {e}"),
        })?;
    if certs.is_empty() {
        // Not PEM; a DER certificate starts with a SEQUENCE tag.
        if bytes.first() == Some(&0x30) {
            certs.push(CertificateDer::from(bytes.clone()));
        } else {
            return Err(ProbeError::CaFileInvalid {
                path: path.to_path_buf(),
                detail: "no \"-----BEGIN CERTIFICATE-----\" block, and not a DER certificate"
                    .into(),
            });
        }
    }
    for (i, cert) in certs.into_iter().enumerate() {
        trusted.insert(cert.as_ref().to_vec());
        roots.add(cert).map_err(|e| ProbeError::CaCertRejected {
            path: path.to_path_buf(),
            index: i + 1,
            detail: e.to_string(),
        })?;
    }
    Ok(())
}

/// What the verifier was shown and what it decided.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    pub chain: Vec<CertificateDer<'static>>,
    pub error: Option<rustls::Error>,
}

/// Delegates every decision to the WebPKI verifier and records the chain and the verdict.
#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    seen: Mutex<Seen>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        let mut seen = lock(&self.seen);
        seen.chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        seen.error = verdict.as_ref().err().cloned();
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.inner.requires_raw_public_keys()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}

/// Passes a stream through, keeping a copy of the first bytes the server sent.
struct FirstBytes {
    inner: Box<dyn Io>,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl AsyncRead for FirstBytes {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &result {
            let mut seen = lock(&this.seen);
            if seen.len() < FIRST_BYTES {
                let new = &buf.filled()[before..];
                let take = new.len().min(FIRST_BYTES - seen.len());
                seen.extend_from_slice(&new[..take]);
            }
        }
        result
    }
}

impl AsyncWrite for FirstBytes {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Whether the first bytes cannot start a TLS record (content types 20 to 24).
fn looks_plaintext(first: &[u8]) -> bool {
    match first.first() {
        None => false,
        Some(b) => !(0x14..=0x18).contains(b),
    }
}

fn describe_plaintext(first: &[u8]) -> String {
    let line_end = first
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(first.len());
    let line = &first[..line_end];
    let printable = line
        .iter()
        .all(|&b| b == b'\r' || b == b'\t' || (0x20..0x7f).contains(&b));
    if printable {
        let text = String::from_utf8_lossy(line);
        format!(
            "server sent plaintext {:?} instead of a TLS handshake",
            excerpt(text.trim_end_matches('\r'))
        )
    } else {
        let hex: Vec<String> = first.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!(
            "server sent non-TLS bytes {} instead of a TLS handshake",
            hex.join(" ")
        )
    }
}

/// Classifies a failed handshake: the verifier's verdict first (the server spoke TLS), then the
/// server's first bytes (it did not), then the TLS error itself.
pub(crate) fn classify_failure(
    seen: &Seen,
    error: Option<&io::Error>,
    first: &[u8],
    trusted: &HashSet<Vec<u8>>,
) -> TlsFailure {
    if let Some(verdict) = &seen.error {
        return classify_certificate(verdict, &seen.chain, trusted);
    }
    if looks_plaintext(first) {
        // An SSLv2 server hello has the high bit set and message type 4.
        if first.len() >= 3 && first[0] & 0x80 != 0 && first[2] == 0x04 {
            return TlsFailure::ProtocolMismatch {
                detail: "server only speaks SSLv2".into(),
            };
        }
        return TlsFailure::NotTls {
            detail: describe_plaintext(first),
        };
    }
    let Some(error) = error else {
        return TlsFailure::Other {
            detail: "TLS handshake failed".into(),
        };
    };
    let tls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls_error {
        Some(rustls::Error::AlertReceived(
            alert @ (AlertDescription::ProtocolVersion
            | AlertDescription::HandshakeFailure
            | AlertDescription::InsufficientSecurity),
        )) => TlsFailure::ProtocolMismatch {
            detail: format!(
                "server sent the TLS alert {alert:?}: no common protocol version or cipher suite"
            ),
        },
        Some(rustls::Error::PeerIncompatible(why)) => TlsFailure::ProtocolMismatch {
            detail: format!("server is incompatible: {why:?}"),
        },
        Some(e @ rustls::Error::InvalidCertificate(_)) => {
            classify_certificate(e, &seen.chain, trusted)
        }
        Some(e) => TlsFailure::Other {
            detail: format!("TLS error: {e}"),
        },
        None if error.kind() == io::ErrorKind::UnexpectedEof && first.is_empty() => {
            TlsFailure::Other {
                detail: "server closed the connection without answering the TLS handshake".into(),
            }
        }
        None if error.kind() == io::ErrorKind::UnexpectedEof => TlsFailure::Other {
            detail: "server closed the connection during the TLS handshake".into(),
        },
        None => TlsFailure::Other {
            detail: format!("connection error during the TLS handshake: {error}"),
        },
    }
}

fn parse<'a>(der: &'a CertificateDer<'_>) -> Option<X509Certificate<'a>> {
    x509_parser::parse_x509_certificate(der.as_ref())
        .ok()
        .map(|(_, c)| c)
}

fn rfc3339(t: OffsetDateTime) -> Option<String> {
    t.format(&Rfc3339).ok()
}

fn unix_rfc3339(t: UnixTime) -> Option<String> {
    let secs = i64::try_from(t.as_secs()).ok()?;
    rfc3339(OffsetDateTime::from_unix_timestamp(secs).ok()?)
}

fn self_issued(c: &X509Certificate<'_>) -> bool {
    c.issuer().as_raw() == c.subject().as_raw()
}

/// Whether the certificate names where its issuer's certificate can be downloaded (AIA
/// caIssuers): public CAs put it in certificates they issue from intermediates.
fn has_ca_issuers_url(c: &X509Certificate<'_>) -> bool {
    c.extensions()
        .iter()
        .any(|ext| match ext.parsed_extension() {
            ParsedExtension::AuthorityInfoAccess(aia) => aia
                .accessdescs
                .iter()
                .any(|d| d.access_method == OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS),
            _ => false,
        })
}

/// The DNS names and IP addresses a certificate is valid for.
fn presented_names(c: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(san)) = c.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some(d.to_string()),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes)
                    .ok()
                    .map(|a| std::net::IpAddr::from(a).to_string()),
                16 => <[u8; 16]>::try_from(*bytes)
                    .ok()
                    .map(|a| std::net::IpAddr::from(a).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Classifies a certificate the verifier rejected.
///
/// Precedence: a self-signed leaf that is not itself trusted is `SelfSigned` whatever else is
/// wrong with it (fixing its dates would not make it trusted). `UnknownIssuer` becomes
/// `UntrustedIssuer` when the server sent a chain up to a self-signed root we do not trust, or
/// when its top certificate carries no issuer URL (a private CA); it becomes `IncompleteChain`
/// when the top certificate is not self-signed and carries an AIA caIssuers URL, the mark of a
/// public CA's intermediate that the server forgot to send. This is a heuristic: no issuer
/// certificate is fetched.
pub(crate) fn classify_certificate(
    error: &rustls::Error,
    chain: &[CertificateDer<'_>],
    trusted: &HashSet<Vec<u8>>,
) -> TlsFailure {
    let rustls::Error::InvalidCertificate(cert_error) = error else {
        return TlsFailure::Other {
            detail: format!("TLS error: {error}"),
        };
    };
    let leaf_der = chain.first();
    let leaf = leaf_der.and_then(|d| parse(d));
    let is_name_error = matches!(
        cert_error,
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
    );
    if let (Some(der), Some(cert)) = (leaf_der, &leaf) {
        if !is_name_error && self_issued(cert) && !trusted.contains(der.as_ref()) {
            return TlsFailure::SelfSigned;
        }
    }
    match cert_error {
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            TlsFailure::NameMismatch {
                presented: leaf.as_ref().map(presented_names).unwrap_or_default(),
            }
        }
        CertificateError::ExpiredContext { not_after, .. } => TlsFailure::CertificateExpired {
            not_after: unix_rfc3339(*not_after),
        },
        CertificateError::Expired => TlsFailure::CertificateExpired {
            not_after: leaf
                .as_ref()
                .and_then(|c| rfc3339(c.validity().not_after.to_datetime())),
        },
        CertificateError::NotValidYetContext { not_before, .. } => {
            TlsFailure::CertificateNotYetValid {
                not_before: unix_rfc3339(*not_before),
            }
        }
        CertificateError::NotValidYet => TlsFailure::CertificateNotYetValid {
            not_before: leaf
                .as_ref()
                .and_then(|c| rfc3339(c.validity().not_before.to_datetime())),
        },
        CertificateError::UnknownIssuer => {
            let top = chain.iter().rev().find_map(|d| parse(d));
            match top {
                Some(top) if self_issued(&top) => TlsFailure::UntrustedIssuer {
                    issuer: Some(top.subject().to_string()),
                },
                Some(top) if has_ca_issuers_url(&top) => TlsFailure::IncompleteChain,
                Some(top) => TlsFailure::UntrustedIssuer {
                    issuer: Some(top.issuer().to_string()),
                },
                None => TlsFailure::UntrustedIssuer { issuer: None },
            }
        }
        other => TlsFailure::Other {
            detail: format!("certificate rejected: {other:?}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imap_banner_is_recognised_as_plaintext() {
        let f = classify_failure(
            &Seen::default(),
            None,
            b"* OK [CAPABILITY IMAP4rev1] ready\r\n",
            &HashSet::new(),
        );
        match f {
            TlsFailure::NotTls { detail } => assert!(detail.contains("* OK"), "{detail}"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn binary_garbage_is_shown_as_hex() {
        let f = classify_failure(&Seen::default(), None, &[0x00, 0xff, 0x10], &HashSet::new());
        match f {
            TlsFailure::NotTls { detail } => assert!(detail.contains("00 ff 10"), "{detail}"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn tls_alert_record_is_not_mistaken_for_plaintext() {
        assert!(!looks_plaintext(&[
            0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46
        ]));
        assert!(looks_plaintext(b"220 smtp"));
    }

    #[test]
    fn protocol_version_alert_is_a_protocol_mismatch() {
        let e = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(AlertDescription::ProtocolVersion),
        );
        assert!(matches!(
            classify_failure(&Seen::default(), Some(&e), &[0x15], &HashSet::new()),
            TlsFailure::ProtocolMismatch { .. }
        ));
    }

    #[test]
    fn expired_context_gives_rfc3339_not_after() {
        let e = rustls::Error::InvalidCertificate(CertificateError::ExpiredContext {
            time: UnixTime::since_unix_epoch(std::time::Duration::from_secs(2_000_000_000)),
            not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_700_000_000)),
        });
        assert_eq!(
            classify_certificate(&e, &[], &HashSet::new()),
            TlsFailure::CertificateExpired {
                not_after: Some("2023-11-14T22:13:20Z".into())
            }
        );
    }

    #[test]
    fn server_names_drop_brackets_and_trailing_dot() {
        assert!(server_name("mail.example.com.").is_ok());
        assert!(server_name("[::1]").is_ok());
        assert!(server_name("bad name!").is_err());
    }
}
