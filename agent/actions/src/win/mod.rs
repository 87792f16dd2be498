//! The Windows performers and what they share: COM on a thread of its own, UTF-16 strings.
//!
//! - `dns` (`DnsFlush`): `DnsFlushResolverCache` from dnsapi.dll, `ipconfig /flushdns` when
//!   that is missing or fails; nothing to restore.
//! - `firewall` (`WindowsFirewall`): Windows Firewall through `INetFwPolicy2` (see
//!   `crate::firewall::winfw` for what the agent does about block rules).
//! - `credentials` (`CredentialCache`): stale mail credentials in Credential Manager (see
//!   `crate::credman` for the snapshot decision).
//! - the notifier is `crate::notify::Notifier` (`WTSSendMessageW`).
//!
//! Not built: purging the mail service's Kerberos ticket (`klist purge`'s
//! `KerbPurgeTicketCacheMessage` through `LsaCallAuthenticationPackage`); Windows renews
//! ticket-granting tickets itself, and `renew_kerberos` has no performer on Windows.

pub mod credentials;
pub mod dns;
pub mod firewall;

use windows::core::{s, PCWSTR};
use windows::Win32::System::Com::{CoInitializeEx, CoUninitialize, COINIT_MULTITHREADED};
use windows::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};

/// Whether this process runs under Wine (ntdll exports `wine_get_version`): Wine implements
/// only parts of the APIs the performers use, and the audit record says so.
pub fn running_under_wine() -> bool {
    let ntdll = wide("ntdll.dll");
    // SAFETY: a NUL-terminated name; ntdll is always loaded, and the handle is not freed.
    unsafe {
        GetModuleHandleW(PCWSTR(ntdll.as_ptr()))
            .map(|m| GetProcAddress(m, s!("wine_get_version")).is_some())
            .unwrap_or(false)
    }
}

/// A NUL-terminated UTF-16 copy of `s`.
pub(crate) fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// Runs `f` on a new thread inside a multithreaded COM apartment, so that the caller's thread
/// (a tokio worker) keeps whatever COM state it had.
pub(crate) fn with_com<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    std::thread::spawn(move || {
        // SAFETY: plain COM initialisation of this new thread, balanced below.
        let hr = unsafe { CoInitializeEx(None, COINIT_MULTITHREADED) };
        if hr.is_err() {
            return Err(format!("cannot initialise COM: {}", hr.message()));
        }
        let result = f();
        // SAFETY: balances the successful CoInitializeEx above on the same thread.
        unsafe { CoUninitialize() };
        result
    })
    .join()
    .unwrap_or_else(|_| Err("the COM worker thread panicked".to_string()))
}
