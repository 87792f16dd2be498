//! Integration tests of the real prober against servers run in-process on 127.0.0.1.

#[cfg(unix)]
mod authoritative;
mod common;
mod concurrency;
mod config;
mod dns;
#[cfg(unix)]
mod discovery;
mod hostile;
#[cfg(unix)]
mod kerberos;
#[cfg(unix)]
mod lab_dns;
#[cfg(target_os = "linux")]
mod local_firewall;
mod protocol;
mod starttls;
mod tcp;
mod tls;
