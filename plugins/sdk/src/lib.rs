//! The plugin SDK: the C ABI of dynamic plugins and a macro that writes it for you.
//!
//! mailmend's built-in diagnostics implement `mailmend_core::Diagnostic` directly. A third party
//! adds a diagnostic without rebuilding the agent by shipping a *dynamic plugin*: a `cdylib`
//! that the agent (`mailmend-plugin-host`) loads from its plugin directory, once an admin has
//! put the file's SHA-256 in the policy's allowlist.
//!
//! # Writing a plugin
//!
//! ```
//! use mailmend_plugin_sdk::{core::{Finding, Role}, DiagnoseRequest, Manifest, Plugin};
//!
//! pub struct MyPlugin;
//!
//! impl Plugin for MyPlugin {
//!     fn manifest() -> Manifest {
//!         Manifest::diagnostic("my_plugin", env!("CARGO_PKG_VERSION"), &[Role::Outgoing])
//!     }
//!     fn diagnose(request: DiagnoseRequest) -> Result<Vec<Finding>, String> {
//!         Ok(Vec::new())
//!     }
//! }
//!
//! mailmend_plugin_sdk::export_plugin!(MyPlugin);
//! # fn main() {}
//! ```
//!
//! with `crate-type = ["cdylib"]` in the plugin's `Cargo.toml`. `plugins/example` in the
//! mailmend repository is a complete plugin to copy.
//!
//! # Rules a plugin must follow
//!
//! - Finding codes must start with the plugin's name and a dot (`my_plugin.something`), and
//!   every finding and proposed action must be about the account in the request. The host
//!   rejects a reply that breaks either rule, so a plugin cannot impersonate a built-in
//!   diagnostic or touch another account.
//! - Proposed actions are only proposals: the admin's policy decides whether the agent applies
//!   them, and the agent verifies and rolls back every change.
//! - A plugin needs no network and should do no I/O: the host probes the endpoints named in
//!   the manifest's `probes` and passes the reports in the request.
//! - Calls into one plugin are serialised by the host, so a plugin need not be reentrant. A
//!   call that exceeds the host's time limit is abandoned (the thread cannot be killed) and the
//!   plugin is not called again until that call returns.
//!
//! # The ABI (version 1)
//!
//! Everything crosses the boundary as plain C types and UTF-8 JSON, so the plugin and the
//! host may be built by different compiler versions. The library exports four symbols:
//!
//! | symbol | C signature |
//! |---|---|
//! | `mailmend_plugin_abi_version` | `uint32_t (void)` |
//! | `mailmend_plugin_manifest` | `int32_t (MmBuffer *out)` |
//! | `mailmend_plugin_call` | `int32_t (const uint8_t *req, size_t len, MmBuffer *out)` |
//! | `mailmend_plugin_free` | `void (MmBuffer buf)` |
//!
//! with `struct MmBuffer { uint8_t *ptr; size_t len; size_t cap; }` ([`MmBuffer`]).
//!
//! 1. **Handshake.** The host first calls `mailmend_plugin_abi_version` and compares the result
//!    with its own [`ABI_VERSION`]. On a mismatch it refuses the plugin without looking up or
//!    calling anything else, because the other symbols may have other signatures.
//! 2. **Manifest.** `mailmend_plugin_manifest` writes a JSON [`Manifest`] into `*out`:
//!    `{"name":"example","version":"0.1.0","role":"diagnostic","probes":["outgoing"]}`.
//!    `probes` lists the account's endpoints (`incoming`, `outgoing`) the host must probe
//!    before each call.
//! 3. **Calls.** `mailmend_plugin_call` takes a JSON [`Request`] in `req[0..len]`:
//!    `{"op":"diagnose","account":<Account>,"probes":[<ProbeReport>...]}` and writes the
//!    JSON [`Reply`] `{"findings":[<Finding>...]}` into `*out`. Plugins ignore request fields
//!    they do not know, so the host may add optional fields without a new ABI version.
//! 4. **Status.** Both functions return [`STATUS_OK`] (0) with JSON in `*out`,
//!    [`STATUS_ERROR`] (1) with a UTF-8 error message in `*out`, or [`STATUS_PANIC`] (2) with
//!    the panic message in `*out`. Every export catches panics (`catch_unwind`), because a
//!    panic unwinding into the host through `extern "C"` would abort the agent.
//! 5. **Memory.** Whoever allocates frees. The request buffer belongs to the host and is only
//!    borrowed for the duration of the call. Every buffer the plugin writes into `*out`
//!    (whatever the status) was allocated by the plugin's allocator, and the host hands it back
//!    exactly once to `mailmend_plugin_free`, after copying the bytes out. A buffer with a
//!    null `ptr` is empty and needs no freeing (freeing it is harmless).
//!
//! The [`export_plugin!`] macro writes all four exports; nobody needs to write them by hand.

mod abi;
mod export;
pub mod helpers;
pub(crate) mod protocol;

pub use abi::{
    AbiVersionFn, CallFn, FreeFn, ManifestFn, MmBuffer, ABI_VERSION, STATUS_ERROR, STATUS_OK,
    STATUS_PANIC, SYMBOL_ABI_VERSION, SYMBOL_CALL, SYMBOL_FREE, SYMBOL_MANIFEST,
};
pub use export::Plugin;
pub use protocol::{
    probe_target, DiagnoseRequest, Manifest, PluginRole, Reply, Request, MAX_NAME_LEN,
    MAX_VERSION_LEN,
};

/// The shared model crate, re-exported so that a plugin needs only this dependency.
pub use mailmend_core as core;

/// What [`export_plugin!`] expands to; not part of the stable API.
#[doc(hidden)]
pub mod __export {
    pub use crate::export::{call, free, manifest};
}

/// Exports the C ABI of a dynamic plugin for a type that implements [`Plugin`].
///
/// Use it once, at the root of a `cdylib` crate: `mailmend_plugin_sdk::export_plugin!(MyPlugin);`
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        /// The ABI version this plugin was built for; the host checks it before anything else.
        #[unsafe(no_mangle)]
        pub extern "C" fn mailmend_plugin_abi_version() -> u32 {
            $crate::ABI_VERSION
        }

        /// Writes the plugin's JSON manifest into `*out`.
        ///
        /// # Safety
        ///
        /// `out` must be null or valid for writing one `MmBuffer`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn mailmend_plugin_manifest(out: *mut $crate::MmBuffer) -> i32 {
            unsafe { $crate::__export::manifest::<$plugin>(out) }
        }

        /// Answers one JSON request; see the SDK's crate documentation for the protocol.
        ///
        /// # Safety
        ///
        /// `req` must be valid for reading `len` bytes (or `len` must be 0), and `out` must be
        /// null or valid for writing one `MmBuffer`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn mailmend_plugin_call(
            req: *const u8,
            len: usize,
            out: *mut $crate::MmBuffer,
        ) -> i32 {
            unsafe { $crate::__export::call::<$plugin>(req, len, out) }
        }

        /// Frees a buffer this plugin wrote into an `out` parameter.
        ///
        /// # Safety
        ///
        /// `buf` must be a buffer this plugin returned and that was not freed before.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn mailmend_plugin_free(buf: $crate::MmBuffer) {
            unsafe { $crate::__export::free(buf) }
        }

        // The exports must have exactly the types the host looks them up with.
        const _: $crate::AbiVersionFn = mailmend_plugin_abi_version;
        const _: $crate::ManifestFn = mailmend_plugin_manifest;
        const _: $crate::CallFn = mailmend_plugin_call;
        const _: $crate::FreeFn = mailmend_plugin_free;
    };
}
