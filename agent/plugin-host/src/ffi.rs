//! The host side of the C ABI: calling a loaded plugin's exports and taking its buffers.

use mailmend_plugin_sdk::{
    CallFn, FreeFn, ManifestFn, MmBuffer, STATUS_ERROR, STATUS_OK, STATUS_PANIC,
};

/// The largest answer the host accepts from a plugin; anything larger is a broken plugin.
pub const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// What one export call gave back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Status 0: the JSON answer.
    Ok(Vec<u8>),
    /// Status 1: the plugin's error message.
    Error(String),
    /// Status 2: the plugin panicked and caught it; the panic message.
    Panic(String),
    /// The plugin broke the ABI (unknown status, bad buffer).
    Broken(String),
}

/// The exports of a loaded plugin, past the ABI handshake.
#[derive(Clone, Copy)]
pub(crate) struct Exports {
    pub manifest: ManifestFn,
    pub call: CallFn,
    pub free: FreeFn,
}

impl Exports {
    /// Asks for the manifest.
    pub fn manifest(&self) -> Answer {
        let mut out = MmBuffer::empty();
        // SAFETY: the symbol was looked up under its ABI name after the version handshake, so
        // it has the `ManifestFn` type, and `out` is valid for writing.
        let status = unsafe { (self.manifest)(&mut out) };
        self.answer(status, out)
    }

    /// Makes one request; blocks for as long as the plugin takes.
    pub fn call(&self, request: &[u8]) -> Answer {
        let mut out = MmBuffer::empty();
        // SAFETY: as for `manifest`; the request outlives the call, which only borrows it.
        let status = unsafe { (self.call)(request.as_ptr(), request.len(), &mut out) };
        self.answer(status, out)
    }

    fn answer(&self, status: i32, out: MmBuffer) -> Answer {
        let bytes = match self.take(out) {
            Ok(bytes) => bytes,
            Err(problem) => return Answer::Broken(problem),
        };
        match status {
            STATUS_OK => Answer::Ok(bytes),
            STATUS_ERROR => Answer::Error(String::from_utf8_lossy(&bytes).into_owned()),
            STATUS_PANIC => Answer::Panic(String::from_utf8_lossy(&bytes).into_owned()),
            other => Answer::Broken(format!("the plugin returned unknown status {other}")),
        }
    }

    /// Copies a plugin's buffer and hands it back to the plugin's allocator.
    fn take(&self, out: MmBuffer) -> Result<Vec<u8>, String> {
        if out.ptr.is_null() {
            return match out.len {
                0 => Ok(Vec::new()),
                len => Err(format!("the plugin returned a null buffer of {len} bytes")),
            };
        }
        let copied = {
            // SAFETY: a non-null buffer from the plugin is valid for `len` bytes until freed.
            let bytes = unsafe { out.as_slice() }.unwrap_or_default();
            if bytes.len() > MAX_ANSWER_BYTES {
                Err(format!(
                    "the plugin returned {} bytes, more than the {MAX_ANSWER_BYTES} accepted",
                    bytes.len()
                ))
            } else {
                Ok(bytes.to_vec())
            }
        };
        // SAFETY: the plugin allocated this buffer and it is freed exactly once, here.
        unsafe { (self.free)(out) };
        copied
    }
}
