//! A test-only dynamic plugin that misbehaves as its cargo features choose (`panic`, `bad-abi`,
//! `slow`); without features it answers with one `testkit.called` finding.
#![cfg_attr(feature = "bad-abi", allow(dead_code))]

use mailmend_plugin_sdk::core::{Finding, Severity};
use mailmend_plugin_sdk::{DiagnoseRequest, Manifest, Plugin};

/// How long a `slow` plugin's diagnose takes; the host tests use a far shorter time limit.
pub const SLOW_SECONDS: u64 = 2;

pub struct Testkit;

impl Plugin for Testkit {
    fn manifest() -> Manifest {
        Manifest::diagnostic("testkit", env!("CARGO_PKG_VERSION"), &[])
    }

    fn diagnose(request: DiagnoseRequest) -> Result<Vec<Finding>, String> {
        if cfg!(feature = "panic") {
            panic!("testkit plugin panics on purpose");
        }
        if cfg!(feature = "slow") {
            std::thread::sleep(std::time::Duration::from_secs(SLOW_SECONDS));
        }
        Ok(vec![Finding::new(
            "testkit.called",
            Severity::Info,
            request.account.id,
            None,
            "The testkit plugin was called",
        )])
    }
}

#[cfg(not(feature = "bad-abi"))]
mailmend_plugin_sdk::export_plugin!(Testkit);

/// A plugin built for some future ABI: the host must refuse it before looking for anything else.
#[cfg(feature = "bad-abi")]
#[unsafe(no_mangle)]
pub extern "C" fn mailmend_plugin_abi_version() -> u32 {
    999
}
