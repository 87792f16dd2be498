//! The C-level types and constants of the plugin ABI, shared by plugins and the host.

use std::mem::ManuallyDrop;
use std::ptr;

/// The ABI version this SDK implements. Bump it on any incompatible change of the symbols,
/// their signatures, the buffer rules or the JSON protocol.
pub const ABI_VERSION: u32 = 1;

/// The call succeeded; the output buffer holds the JSON answer.
pub const STATUS_OK: i32 = 0;
/// The plugin refused or failed; the output buffer holds a UTF-8 message.
pub const STATUS_ERROR: i32 = 1;
/// The plugin panicked and the panic was caught; the output buffer holds the panic message.
pub const STATUS_PANIC: i32 = 2;

/// `uint32_t mailmend_plugin_abi_version(void)`, nul-terminated for `dlsym`.
pub const SYMBOL_ABI_VERSION: &[u8] = b"mailmend_plugin_abi_version\0";
/// `int32_t mailmend_plugin_manifest(MmBuffer *out)`, nul-terminated for `dlsym`.
pub const SYMBOL_MANIFEST: &[u8] = b"mailmend_plugin_manifest\0";
/// `int32_t mailmend_plugin_call(const uint8_t *req, size_t len, MmBuffer *out)`.
pub const SYMBOL_CALL: &[u8] = b"mailmend_plugin_call\0";
/// `void mailmend_plugin_free(MmBuffer buf)`, nul-terminated for `dlsym`.
pub const SYMBOL_FREE: &[u8] = b"mailmend_plugin_free\0";

/// The type of `mailmend_plugin_abi_version`.
pub type AbiVersionFn = unsafe extern "C" fn() -> u32;
/// The type of `mailmend_plugin_manifest`.
pub type ManifestFn = unsafe extern "C" fn(out: *mut MmBuffer) -> i32;
/// The type of `mailmend_plugin_call`.
pub type CallFn = unsafe extern "C" fn(req: *const u8, len: usize, out: *mut MmBuffer) -> i32;
/// The type of `mailmend_plugin_free`.
pub type FreeFn = unsafe extern "C" fn(buf: MmBuffer);

/// A byte buffer allocated by a plugin and handed to the host: the parts of a `Vec<u8>`.
///
/// It is deliberately neither `Clone` nor `Copy`: each buffer must be freed exactly once, by
/// the library that allocated it, because the plugin and the host each have their own
/// allocator.
#[repr(C)]
#[derive(Debug)]
pub struct MmBuffer {
    pub ptr: *mut u8,
    pub len: usize,
    pub cap: usize,
}

impl MmBuffer {
    /// A buffer that holds nothing and needs no freeing; the host passes it as `*out`.
    pub const fn empty() -> MmBuffer {
        MmBuffer {
            ptr: ptr::null_mut(),
            len: 0,
            cap: 0,
        }
    }

    /// Hands a vector's allocation over to the buffer, without copying.
    pub fn from_vec(bytes: Vec<u8>) -> MmBuffer {
        let mut bytes = ManuallyDrop::new(bytes);
        MmBuffer {
            ptr: bytes.as_mut_ptr(),
            len: bytes.len(),
            cap: bytes.capacity(),
        }
    }

    /// Takes the allocation back as a vector.
    ///
    /// # Safety
    ///
    /// The buffer must be empty (null `ptr`) or come from [`MmBuffer::from_vec`] in this same
    /// library (the same allocator), unchanged and not taken back before.
    pub unsafe fn into_vec(self) -> Vec<u8> {
        if self.ptr.is_null() {
            return Vec::new();
        }
        // SAFETY: the caller promises these are the parts of a vector of this allocator.
        unsafe { Vec::from_raw_parts(self.ptr, self.len, self.cap) }
    }

    /// The bytes in the buffer, for the side that did not allocate it (the host).
    ///
    /// # Safety
    ///
    /// `ptr` must be null or valid for reading `len` bytes while the returned slice lives.
    pub unsafe fn as_slice(&self) -> Option<&[u8]> {
        if self.ptr.is_null() {
            return (self.len == 0).then_some(&[]);
        }
        // SAFETY: the caller promises `ptr` is valid for `len` bytes.
        Some(unsafe { std::slice::from_raw_parts(self.ptr, self.len) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vector_survives_the_round_trip_through_a_buffer() {
        let mut bytes = Vec::with_capacity(64);
        bytes.extend_from_slice(b"{\"findings\":[]}");
        let buf = MmBuffer::from_vec(bytes);
        assert_eq!(buf.len, 15);
        assert_eq!(buf.cap, 64);
        assert_eq!(unsafe { buf.as_slice() }, Some(&b"{\"findings\":[]}"[..]));
        let back = unsafe { buf.into_vec() };
        assert_eq!(back, b"{\"findings\":[]}");
        assert_eq!(back.capacity(), 64);
    }

    #[test]
    fn an_empty_vector_and_the_empty_buffer_both_read_as_no_bytes() {
        let buf = MmBuffer::from_vec(Vec::new());
        assert_eq!(unsafe { buf.as_slice() }, Some(&[][..]));
        assert!(unsafe { buf.into_vec() }.is_empty());

        let empty = MmBuffer::empty();
        assert_eq!(unsafe { empty.as_slice() }, Some(&[][..]));
        assert!(unsafe { empty.into_vec() }.is_empty());
    }

    #[test]
    fn a_null_buffer_claiming_bytes_is_rejected_rather_than_read() {
        let bogus = MmBuffer {
            ptr: ptr::null_mut(),
            len: 10,
            cap: 10,
        };
        assert_eq!(unsafe { bogus.as_slice() }, None);
    }

    #[test]
    fn the_buffer_has_the_c_layout_of_three_words() {
        assert_eq!(
            std::mem::size_of::<MmBuffer>(),
            3 * std::mem::size_of::<usize>()
        );
    }
}
