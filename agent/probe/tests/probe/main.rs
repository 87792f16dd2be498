//! Integration tests of the real prober against servers run in-process on 127.0.0.1.

mod common;
mod concurrency;
mod config;
mod dns;
mod hostile;
mod protocol;
mod starttls;
mod tcp;
mod tls;
