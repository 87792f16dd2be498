//! Integration tests of the real prober against servers run in-process on 127.0.0.1.

mod auth_server;
#[cfg(unix)]
mod authoritative;
mod common;
mod concurrency;
mod config;
#[cfg(unix)]
mod discovery;
mod dns;
mod hostile;
#[cfg(unix)]
mod kerberos;
#[cfg(unix)]
mod lab_dns;
#[cfg(target_os = "linux")]
mod local_firewall;
mod login;
mod protocol;
mod starttls;
mod tcp;
mod tls;
