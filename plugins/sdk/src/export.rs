//! The plugin side of the ABI: the `Plugin` trait and the panic-safe bodies of the exports
//! that `export_plugin!` generates.

use crate::abi::{MmBuffer, STATUS_ERROR, STATUS_OK, STATUS_PANIC};
use crate::protocol::{DiagnoseRequest, Manifest, Reply, Request};
use mailmend_core::Finding;
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A dynamic diagnostic plugin. Implement it on a unit struct and pass the struct to
/// [`export_plugin!`](crate::export_plugin).
pub trait Plugin {
    /// Who the plugin is and which endpoints the host must probe before calling it.
    fn manifest() -> Manifest;

    /// Turns an account and its probe reports into findings. An `Err` reaches the agent as a
    /// `plugin.failed` finding carrying the message.
    fn diagnose(request: DiagnoseRequest) -> Result<Vec<Finding>, String>;
}

/// The body of `mailmend_plugin_manifest`.
///
/// # Safety
///
/// `out` must be null or valid for writing one `MmBuffer`.
pub unsafe fn manifest<P: Plugin>(out: *mut MmBuffer) -> i32 {
    // SAFETY: forwarded from the caller.
    unsafe {
        answer(out, || {
            serde_json::to_vec(&P::manifest()).map_err(|e| e.to_string())
        })
    }
}

/// The body of `mailmend_plugin_call`.
///
/// # Safety
///
/// `req` must be valid for reading `len` bytes (or `len` must be 0), and `out` must be null
/// or valid for writing one `MmBuffer`.
pub unsafe fn call<P: Plugin>(req: *const u8, len: usize, out: *mut MmBuffer) -> i32 {
    let body = || {
        let bytes: &[u8] = if len == 0 {
            &[]
        } else if req.is_null() {
            return Err("the request pointer is null".to_string());
        } else {
            // SAFETY: the caller promises `req` is valid for `len` bytes during the call.
            unsafe { std::slice::from_raw_parts(req, len) }
        };
        let request: Request = serde_json::from_slice(bytes)
            .map_err(|e| format!("the request is not valid plugin json: {e}"))?;
        match request {
            Request::Diagnose(request) => {
                let findings = P::diagnose(request)?;
                serde_json::to_vec(&Reply { findings })
                    .map_err(|e| format!("cannot serialise the findings: {e}"))
            }
        }
    };
    // SAFETY: forwarded from the caller.
    unsafe { answer(out, body) }
}

/// The body of `mailmend_plugin_free`.
///
/// # Safety
///
/// `buf` must be a buffer this library returned and that was not freed before.
pub unsafe fn free(buf: MmBuffer) {
    // Freeing cannot panic in practice, but nothing may unwind out of an export.
    // SAFETY: the caller promises the buffer is ours and live.
    let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { buf.into_vec() })));
}

/// Runs an export's body with panics caught and writes its answer or error into `*out`.
///
/// # Safety
///
/// `out` must be null or valid for writing one `MmBuffer`.
unsafe fn answer(out: *mut MmBuffer, body: impl FnOnce() -> Result<Vec<u8>, String>) -> i32 {
    if out.is_null() {
        return STATUS_ERROR;
    }
    let (status, bytes) = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(bytes)) => (STATUS_OK, bytes),
        Ok(Err(message)) => (STATUS_ERROR, message.into_bytes()),
        Err(payload) => (STATUS_PANIC, panic_message(payload).into_bytes()),
    };
    // SAFETY: `out` is not null and the caller promises it is valid for writing.
    unsafe { out.write(MmBuffer::from_vec(bytes)) };
    status
}

/// The message of a caught panic; payloads are `&str` or `String` unless someone used
/// `panic_any`.
fn panic_message(payload: Box<dyn Any + Send>) -> String {
    let message = if let Some(s) = payload.downcast_ref::<&str>() {
        format!("plugin panicked: {s}")
    } else if let Some(s) = payload.downcast_ref::<String>() {
        format!("plugin panicked: {s}")
    } else {
        "plugin panicked with a non-text payload".to_string()
    };
    // A payload whose destructor panics would unwind out of the export; leaking it is safer.
    std::mem::forget(payload);
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tests::account;
    use mailmend_core::{Role, Severity};

    struct Echo;
    impl Plugin for Echo {
        fn manifest() -> Manifest {
            Manifest::diagnostic("echo", "1.2.3", &[Role::Outgoing])
        }
        fn diagnose(request: DiagnoseRequest) -> Result<Vec<Finding>, String> {
            if request.account.os_user == "fail" {
                return Err("cannot diagnose this one".into());
            }
            if request.account.os_user == "panic" {
                panic!("boom {}", 42);
            }
            Ok(vec![Finding::new(
                "echo.seen",
                Severity::Info,
                request.account.id,
                None,
                "seen",
            )])
        }
    }

    fn call_echo(request: &[u8]) -> (i32, Vec<u8>) {
        let mut out = MmBuffer::empty();
        let status = unsafe { call::<Echo>(request.as_ptr(), request.len(), &mut out) };
        let bytes = unsafe { out.as_slice() }.unwrap().to_vec();
        unsafe { free(out) };
        (status, bytes)
    }

    fn request_for(os_user: &str) -> Vec<u8> {
        let mut acc = account();
        acc.os_user = os_user.into();
        serde_json::to_vec(&Request::Diagnose(DiagnoseRequest {
            account: acc,
            probes: Vec::new(),
        }))
        .unwrap()
    }

    #[test]
    fn the_manifest_export_writes_the_manifest_json() {
        let mut out = MmBuffer::empty();
        let status = unsafe { manifest::<Echo>(&mut out) };
        assert_eq!(status, STATUS_OK);
        let parsed: Manifest = serde_json::from_slice(unsafe { out.as_slice() }.unwrap()).unwrap();
        unsafe { free(out) };
        assert_eq!(parsed, Echo::manifest());
    }

    #[test]
    fn a_diagnose_request_round_trips_to_a_reply() {
        let (status, bytes) = call_echo(&request_for("ann"));
        assert_eq!(status, STATUS_OK);
        let reply: Reply = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(reply.findings.len(), 1);
        assert_eq!(reply.findings[0].code, "echo.seen");
        assert_eq!(reply.findings[0].account, account().id);
    }

    #[test]
    fn a_plugin_error_comes_back_as_status_1_with_its_message() {
        let (status, bytes) = call_echo(&request_for("fail"));
        assert_eq!(status, STATUS_ERROR);
        assert_eq!(bytes, b"cannot diagnose this one");
    }

    #[test]
    fn a_panicking_plugin_returns_status_2_instead_of_unwinding_into_the_host() {
        let (status, bytes) = call_echo(&request_for("panic"));
        assert_eq!(status, STATUS_PANIC);
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "plugin panicked: boom 42"
        );
    }

    #[test]
    fn malformed_request_json_is_an_error_not_a_panic() {
        let (status, bytes) = call_echo(b"{\"op\":\"diagnose\"");
        assert_eq!(status, STATUS_ERROR);
        let message = String::from_utf8(bytes).unwrap();
        assert!(
            message.starts_with("the request is not valid plugin json"),
            "{message}"
        );

        let (status, _) = call_echo(b"{\"op\":\"reboot\"}");
        assert_eq!(status, STATUS_ERROR);
    }

    #[test]
    fn an_empty_or_null_request_is_an_error() {
        let mut out = MmBuffer::empty();
        let status = unsafe { call::<Echo>(std::ptr::null(), 0, &mut out) };
        assert_eq!(status, STATUS_ERROR);
        unsafe { free(out) };

        let mut out = MmBuffer::empty();
        let status = unsafe { call::<Echo>(std::ptr::null(), 5, &mut out) };
        assert_eq!(status, STATUS_ERROR);
        assert_eq!(
            unsafe { out.as_slice() }.unwrap(),
            b"the request pointer is null"
        );
        unsafe { free(out) };
    }

    #[test]
    fn a_null_out_pointer_is_reported_without_writing() {
        let request = request_for("ann");
        let status = unsafe { call::<Echo>(request.as_ptr(), request.len(), std::ptr::null_mut()) };
        assert_eq!(status, STATUS_ERROR);
        assert_eq!(
            unsafe { manifest::<Echo>(std::ptr::null_mut()) },
            STATUS_ERROR
        );
    }

    #[test]
    fn freeing_the_empty_buffer_is_harmless() {
        unsafe { free(MmBuffer::empty()) };
    }
}
