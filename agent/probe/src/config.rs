//! The prober's configuration and the errors of setting it up.

use std::path::PathBuf;
use std::time::Duration;

/// Limits and trust settings of a [`crate::RealProber`].
///
/// Bounds of one probe: resolving takes at most `io_timeout`, connecting at most
/// `connect_timeout` (all addresses together, not each), and everything after the connect (TLS
/// handshakes, greeting, capabilities, STARTTLS, goodbye) at most [`SESSION_IO_TIMEOUTS`] ×
/// `io_timeout`, each single step at most `io_timeout`. So a probe ends within
/// `connect_timeout + 4 × io_timeout`, plus scheduling slack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeConfig {
    /// How long the TCP connect may take, over all of a host's addresses.
    pub connect_timeout: Duration,
    /// How long one step may take: a DNS lookup, a TLS handshake, one complete server reply.
    pub io_timeout: Duration,
    /// PEM (or DER) files of CAs to trust in addition to the system's bundle, such as a
    /// company's private CA.
    pub extra_ca_files: Vec<PathBuf>,
    /// The longest line a server may send, CRLF included.
    pub max_line_bytes: usize,
    /// The most protocol bytes a server may send on one connection.
    pub max_total_bytes: usize,
}

/// How many `io_timeout`s everything after the TCP connect may take in total.
pub const SESSION_IO_TIMEOUTS: u32 = 3;

/// The smallest accepted `max_line_bytes`: RFC 5321 allows 512-byte reply lines.
pub const MIN_LINE_BYTES: usize = 512;

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            connect_timeout: Duration::from_secs(5),
            io_timeout: Duration::from_secs(5),
            extra_ca_files: Vec::new(),
            max_line_bytes: 8 * 1024,
            max_total_bytes: 64 * 1024,
        }
    }
}

impl ProbeConfig {
    /// Checks that the limits make sense.
    pub fn validate(&self) -> Result<(), ProbeError> {
        if self.connect_timeout.is_zero() {
            return Err(ProbeError::InvalidConfig(
                "connect_timeout must be greater than zero".into(),
            ));
        }
        if self.io_timeout.is_zero() {
            return Err(ProbeError::InvalidConfig(
                "io_timeout must be greater than zero".into(),
            ));
        }
        if self.max_line_bytes < MIN_LINE_BYTES {
            return Err(ProbeError::InvalidConfig(format!(
                "max_line_bytes is {}, it must be at least {MIN_LINE_BYTES}",
                self.max_line_bytes
            )));
        }
        if self.max_total_bytes < self.max_line_bytes {
            return Err(ProbeError::InvalidConfig(format!(
                "max_total_bytes ({}) must be at least max_line_bytes ({})",
                self.max_total_bytes, self.max_line_bytes
            )));
        }
        Ok(())
    }
}

/// Why a [`crate::RealProber`] could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// An extra CA file could not be read: a wrong path, or no permission to read it.
    #[error("cannot read CA file {path}: {source}")]
    CaFileUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file holds no certificate: it is a key, another kind of file, or truncated.
    #[error("CA file {path} holds no usable certificate: {detail}")]
    CaFileInvalid { path: PathBuf, detail: String },
    /// A certificate in the file cannot serve as a trust anchor: it is malformed or uses an
    /// unsupported algorithm.
    #[error("CA file {path}: certificate #{index} is not a usable trust anchor: {detail}")]
    CaCertRejected {
        path: PathBuf,
        /// 1-based position of the certificate in the file.
        index: usize,
        detail: String,
    },
    /// The certificate verifier could not be built, for example because no trust root at all
    /// was found.
    #[error("cannot set up certificate verification: {0}")]
    Verifier(String),
    /// A limit is zero or inconsistent; the caller's configuration is wrong.
    #[error("invalid probe configuration: {0}")]
    InvalidConfig(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        ProbeConfig::default().validate().unwrap();
    }

    #[test]
    fn zero_timeout_is_rejected_with_its_name() {
        let cfg = ProbeConfig {
            io_timeout: Duration::ZERO,
            ..ProbeConfig::default()
        };
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("io_timeout"));
    }

    #[test]
    fn total_limit_below_line_limit_is_rejected() {
        let cfg = ProbeConfig {
            max_total_bytes: 1024,
            ..ProbeConfig::default()
        };
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("max_total_bytes"));
    }
}
