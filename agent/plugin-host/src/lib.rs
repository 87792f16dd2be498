//! Loads dynamic diagnostic plugins safely and adapts them to the Diagnostic trait.
//!
//! [`load_dir`] looks at the plugin directory named in the policy and loads a library only
//! when it and its directory are root's alone and its SHA-256 is on the policy's allowlist
//! (details and the remaining race in [`load`]'s documentation). Each loaded plugin becomes a
//! [`DynamicDiagnostic`], which implements `mailmend_core::Diagnostic` like the built-in
//! diagnostics do. Whatever a plugin does wrong at call time — panic, error, garbage reply,
//! hang — becomes a finding (`plugin.failed`, `plugin.timeout`, `plugin.busy`), never a crash
//! of the agent; the one exception is a library not built with the SDK that lets a panic
//! unwind through `extern "C"`, which aborts the process (Rust guarantees that).
//!
//! The ABI itself is documented in the `mailmend-plugin-sdk` crate.

mod dynamic;
mod ffi;
pub mod load;
mod refusal;

pub use dynamic::{DynamicDiagnostic, CODE_BUSY, CODE_FAILED, CODE_TIMEOUT};
pub use ffi::MAX_ANSWER_BYTES;
pub use load::{load_dir, LoadOutcome};
pub use refusal::{Refusal, RefusalReason};
