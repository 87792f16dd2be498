//! Network probes: DNS, TCP, TLS and the IMAP, POP3 and SMTP greetings, bounded in size and time.
//!
//! [`RealProber`] implements [`mailmend_core::Prober`] with Tokio: it resolves through the system
//! resolver, connects "happy eyeballs" style, negotiates implicit TLS or STARTTLS with full
//! certificate verification (rustls with the ring provider), and reads the server's greeting and
//! capabilities. It never sends credentials, so probing can never lock an account out.
//!
//! Every server is treated as hostile: reads are bounded by `io_timeout`, by `max_line_bytes`
//! per line and by `max_total_bytes` per connection, and a whole probe ends within
//! `connect_timeout + 4 × io_timeout` (see [`ProbeConfig`]).

mod config;
mod conn;
mod dialogue;
mod dns;
mod prober;
pub mod replies;
mod tcp;
mod tls;

pub use config::{ProbeConfig, ProbeError, MIN_LINE_BYTES, SESSION_IO_TIMEOUTS};
pub use prober::{RealProber, FALLBACK_EHLO_NAME};
