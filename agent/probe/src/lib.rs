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
//!
//! [`RealProber::login`] is the one exception to "never sends credentials": called by the
//! agent only when its policy and lockout rules allow, it logs in once over a verified
//! encrypted connection and translates the server's answer (see [`login`]).
//!
//! [`mailmend_core::Prober::discover_settings`] reads what an email domain publishes about its
//! servers: RFC 6186/8314 SRV records ([`srv`]), autoconfig ([`autoconfig`]) and Exchange
//! Autodiscover ([`autodiscover`]) over a small HTTPS-only client ([`http`]), concurrently and
//! within `connect_timeout + 4 × io_timeout`.
//!
//! Beyond probing targets it answers the questions the DNS, firewall and Kerberos diagnostics
//! ask: the configured name servers, a lookup through one server, the authoritative answer
//! ([`RealProber::with_authoritative_port`] lets tests serve a zone on a high port), what the
//! local firewall does with a connection ([`firewall`], a pure evaluator), and the tickets in a
//! user's credential cache ([`ccache`], a pure parser that never keeps key or ticket bytes).

mod authoritative;
pub mod autoconfig;
pub mod autodiscover;
pub mod ccache;
mod config;
mod conn;
mod dialogue;
mod discover;
mod dns;
pub mod firewall;
mod firewall_cmd;
pub mod http;
pub mod kerberos;
pub mod login;
mod prober;
mod quickack;
pub mod replies;
pub mod resolv;
pub mod srv;
mod tcp;
#[cfg(test)]
mod testgen;
mod tls;
mod wire;

pub use config::{ProbeConfig, ProbeError, MIN_LINE_BYTES, SESSION_IO_TIMEOUTS};
pub use prober::{RealProber, DEFAULT_KRB5_CONF, FALLBACK_EHLO_NAME};
