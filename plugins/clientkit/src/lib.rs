//! Shared pieces of the client adapters, so that each lives in one place:
//!
//! - [`process`]: which programs run as which user, read from `/proc` for real and injectable
//!   for tests; adapters use it to defer a fix while their client runs.
//! - [`url`]: the parts of a server URL (`imaps://user@host:993`) that mutt's and aerc's
//!   grammars read alike: the user information (whose password is never kept), the port, the
//!   percent escapes, and a host's text inside a URL.
//! - [`owned`]: reading a configuration file for its password only when the user owns it, so
//!   that the agent, running as root, never sends a secret the user could not read.
//!
//! Everything here is a small, pure helper or a read-only view of the system; nothing writes.

pub mod owned;
pub mod process;
pub mod url;
