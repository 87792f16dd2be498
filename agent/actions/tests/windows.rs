//! The Windows performers, run for real on Windows and under Wine. Wine implements only parts of
//! the APIs: where it does not, the test asserts the exact, clear error the performer gives
//! there (so a regression in error reporting fails), and on Windows it asserts the real effect.
//!
//! What Wine 8.0 (Debian 12) does, as these tests pin it:
//! - Credential Manager (CredWriteW/CredEnumerateW/CredDeleteW/CredReadW) and DPAPI work: the
//!   credential round trip runs for real, in the current user's and the impersonated console
//!   user's scope.
//! - `DnsFlushResolverCache` exists but is a stub; `ipconfig` has no `/flushdns`.
//! - `INetFwPolicy2::CurrentProfileTypes` and `INetFwRules::_NewEnum` return E_NOTIMPL.
//! - `WTSSendMessageW` fails ("Invalid handle").

#![cfg(windows)]

use mailmend_actions::credman::{to_hex, TYPE_GENERIC};
use mailmend_actions::notify::Notifier;
use mailmend_actions::win::credentials::{CredentialCache, Scope};
use mailmend_actions::win::dns::DnsFlush;
use mailmend_actions::win::running_under_wine;
use mailmend_actions::{PerformError, Performer, WindowsFirewall};
use mailmend_core::{AccountId, Action};
use serde_json::Value;
use windows::core::{PCWSTR, PWSTR};
use windows::Win32::Security::Credentials::{
    CredDeleteW, CredFree, CredReadW, CredWriteW, CREDENTIALW, CRED_PERSIST_LOCAL_MACHINE,
    CRED_TYPE, CRED_TYPE_GENERIC,
};

/// Wine keeps credentials in the registry, and enumerating there while another thread deletes
/// fails ("Key deleted") or skips entries; the credential tests therefore take turns.
static CREDENTIAL_STORE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn store_lock() -> std::sync::MutexGuard<'static, ()> {
    // A test that panicked while holding the lock left the store as any failed test does.
    CREDENTIAL_STORE.lock().unwrap_or_else(|p| p.into_inner())
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// Stores a generic credential, as a mail client would.
fn write_credential(target: &str, user: &str, secret: &[u8]) {
    let mut t = wide(target);
    let mut u = wide(user);
    let mut blob = secret.to_vec();
    let cred = CREDENTIALW {
        Type: CRED_TYPE_GENERIC,
        TargetName: PWSTR(t.as_mut_ptr()),
        UserName: PWSTR(u.as_mut_ptr()),
        CredentialBlobSize: blob.len() as u32,
        CredentialBlob: blob.as_mut_ptr(),
        Persist: CRED_PERSIST_LOCAL_MACHINE,
        ..Default::default()
    };
    // SAFETY: every pointer refers to a buffer alive during the call.
    unsafe { CredWriteW(&cred, 0) }.expect("CredWriteW");
}

/// The (user, secret) of a generic credential, or None when there is none.
fn read_credential(target: &str) -> Option<(String, Vec<u8>)> {
    let t = wide(target);
    let mut out: *mut CREDENTIALW = std::ptr::null_mut();
    // SAFETY: a NUL-terminated name and an out-pointer; freed below.
    unsafe {
        CredReadW(PCWSTR(t.as_ptr()), CRED_TYPE_GENERIC, None, &mut out).ok()?;
        let c = &*out;
        let user = c.UserName.to_string().unwrap_or_default();
        let secret =
            std::slice::from_raw_parts(c.CredentialBlob, c.CredentialBlobSize as usize).to_vec();
        CredFree(out as *const _);
        Some((user, secret))
    }
}

fn delete_credential(target: &str) {
    let t = wide(target);
    // SAFETY: a NUL-terminated name.
    let _ = unsafe { CredDeleteW(PCWSTR(t.as_ptr()), CRED_TYPE(TYPE_GENERIC), None) };
}

/// A host name unique to this test run, so that runs never see each other's credentials.
fn unique_host(tag: &str) -> String {
    format!("{tag}-{}.mailmend-test.example", std::process::id())
}

fn credential_round_trip(cache: &CredentialCache, tag: &str) {
    let _turn = store_lock();
    let host = unique_host(tag);
    let outlook = format!("MicrosoftOffice16_Data:{host}");
    let plain = host.clone();
    let other = format!("smtp.{host}");
    let secret = b"hunter2-secret";
    write_credential(&outlook, "alice@example.com", secret);
    write_credential(&plain, "alice", b"second-secret");
    write_credential(&other, "bob", b"other-secret");

    let before = cache.snapshot(&host).unwrap();
    let targets: Vec<&str> = before["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["target_name"].as_str().unwrap())
        .collect();
    assert_eq!(targets.len(), 2, "{before}");
    assert!(targets.contains(&outlook.as_str()) && targets.contains(&plain.as_str()));
    // The secret is only in the DPAPI-protected part, never in clear or plain hex.
    let text = before.to_string();
    assert!(
        !text.contains("hunter2") && !text.contains(&to_hex(secret)),
        "{text}"
    );
    assert!(!before["protected"].as_str().unwrap().is_empty());

    let purged = cache.purge(&before).unwrap();
    assert_eq!(purged["deleted"].as_array().unwrap().len(), 2, "{purged}");
    assert_eq!(read_credential(&outlook), None);
    assert_eq!(read_credential(&plain), None);
    // Nothing else touched.
    assert_eq!(
        read_credential(&other),
        Some(("bob".to_string(), b"other-secret".to_vec()))
    );

    let restored = cache.restore(&before).unwrap();
    assert_eq!(
        restored["restored"].as_array().unwrap().len(),
        2,
        "{restored}"
    );
    assert_eq!(
        read_credential(&outlook),
        Some(("alice@example.com".to_string(), secret.to_vec()))
    );
    assert_eq!(
        read_credential(&plain),
        Some(("alice".to_string(), b"second-secret".to_vec()))
    );
    // Restoring again changes nothing: the credentials are there, so they are kept.
    let again = cache.restore(&before).unwrap();
    assert_eq!(again["restored"], serde_json::json!([]));
    assert_eq!(again["newer_kept"].as_array().unwrap().len(), 2);

    // A credential the user typed anew after the purge is newer and survives an undo.
    cache.purge(&before).unwrap();
    write_credential(&outlook, "alice@example.com", b"new-password");
    let undo = cache.restore(&before).unwrap();
    assert_eq!(undo["restored"].as_array().unwrap().len(), 1, "{undo}");
    assert_eq!(
        read_credential(&outlook),
        Some(("alice@example.com".to_string(), b"new-password".to_vec()))
    );

    for t in [&outlook, &plain, &other] {
        delete_credential(t);
    }
}

#[test]
fn stale_mail_credentials_are_removed_kept_encrypted_and_restored() {
    credential_round_trip(&CredentialCache::new(Scope::CurrentUser), "current");
}

#[test]
fn the_console_users_credentials_are_reached_by_impersonation() {
    let cache = CredentialCache::new(Scope::ConsoleUser);
    if running_under_wine() {
        // Wine hands out the console user's token to anyone; the user is the test's own.
        credential_round_trip(&cache, "console");
    } else {
        // Outside a service (SYSTEM), WTSQueryUserToken is refused: a clear failure.
        let _turn = store_lock();
        match cache.snapshot(&unique_host("console")) {
            Err(PerformError::Failed(m)) => assert!(
                m.contains("console user") || m.contains("nobody is logged in"),
                "{m}"
            ),
            Ok(v) => panic!("impersonation worked outside a service: {v}"),
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn a_snapshot_without_matching_credentials_keeps_nothing_and_purges_nothing() {
    let _turn = store_lock();
    let cache = CredentialCache::new(Scope::CurrentUser);
    let before = cache.snapshot(&unique_host("none")).unwrap();
    assert_eq!(before["credentials"], serde_json::json!([]));
    assert_eq!(before["protected"], "");
    assert_eq!(
        cache.purge(&before).unwrap()["deleted"],
        serde_json::json!([])
    );
    let damaged = serde_json::json!({ "host": "h", "protected": "zz" });
    assert!(
        matches!(cache.restore(&damaged), Err(PerformError::Failed(m)) if m.contains("damaged"))
    );
}

fn flush(host: &str) -> Action {
    Action::FlushDns { host: host.into() }
}

#[test]
fn the_dns_cache_is_flushed_through_dnsapi() {
    let d = DnsFlush::new();
    d.snapshot(&flush("imap.example.com")).unwrap();
    let after = d.apply("fx-1", &flush("imap.example.com")).unwrap();
    // Under Wine the export exists (a stub); on Windows it empties the DNS Client cache.
    assert_eq!(after["flushed_by"], "DnsFlushResolverCache", "{after}");
    assert!(matches!(
        d.apply("fx-1", &flush("-x")),
        Err(PerformError::Failed(m)) if m.contains("not a host name")
    ));
    d.undo("fx-1", &flush("imap.example.com"), &Value::Null)
        .unwrap();
}

#[test]
fn the_ipconfig_fallback_reports_what_ipconfig_said() {
    let result = DnsFlush::command_only().apply("fx-1", &flush("imap.example.com"));
    if running_under_wine() {
        match result {
            Err(PerformError::Failed(m)) => {
                assert!(m.contains("ipconfig.exe /flushdns failed"), "{m}");
                assert!(m.contains("Usage: ipconfig"), "{m}");
            }
            other => panic!("Wine's ipconfig has no /flushdns, yet: {other:?}"),
        }
    } else {
        let v = result.unwrap();
        assert!(v["flushed_by"].as_str().unwrap().contains("/flushdns"));
    }
}

fn exception(addresses: &[&str]) -> Action {
    Action::AddFirewallException {
        account: AccountId("outlook-test".into()),
        host: "imap.example.com".into(),
        addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
        port: 993,
    }
}

#[test]
fn a_firewall_exception_is_added_and_removed_exactly_or_fails_naming_the_com_call() {
    if !running_under_wine() {
        // On Windows the real round trip below runs instead.
        return windows_firewall_round_trip();
    }
    let fw = WindowsFirewall::new();
    match fw.snapshot(&exception(&["203.0.113.7"])) {
        Err(PerformError::Failed(m)) => {
            assert!(
                m.contains("cannot read the active firewall profiles"),
                "{m}"
            );
            assert!(m.contains("0x80004001"), "{m}");
        }
        other => panic!("Wine's INetFwPolicy2 is said to lack CurrentProfileTypes: {other:?}"),
    }
    match fw.remove_all_mailmend_rules() {
        Err(PerformError::Failed(m)) => assert!(m.contains("INetFwRules::_NewEnum"), "{m}"),
        other => panic!("{other:?}"),
    }
    match fw.undo("fx-1", &exception(&["203.0.113.7"]), &Value::Null) {
        Err(PerformError::Failed(m)) => assert!(m.contains("0x80004001"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        fw.apply("bad id\"", &exception(&["203.0.113.7"])),
        Err(PerformError::Failed(m)) if m.contains("cannot name a firewall rule")
    ));
}

/// Runs netsh (real Windows only): the test's own block rule, made and removed the way an
/// administrator would.
fn netsh(args: &[&str]) -> std::process::Output {
    std::process::Command::new("netsh")
        .args(["advfirewall", "firewall"])
        .args(args)
        .output()
        .expect("netsh")
}

/// On real Windows (as administrator): a block rule of the test's own is left alone by
/// default, disabled and re-enabled with the policy option, and the agent's rule is removed
/// exactly. Not run under Wine.
fn windows_firewall_round_trip() {
    let block_name = format!("mailmend-test-block-{}", std::process::id());
    let add = netsh(&[
        "add",
        "rule",
        &format!("name={block_name}"),
        "dir=out",
        "action=block",
        "protocol=TCP",
        "remoteip=203.0.113.7",
        "remoteport=993",
    ]);
    assert!(add.status.success(), "netsh add rule: {add:?}");
    let a = exception(&["203.0.113.7"]);
    let result = std::panic::catch_unwind(|| {
        match WindowsFirewall::new().snapshot(&a) {
            Err(PerformError::Unavailable(m)) => assert!(m.contains(&block_name), "{m}"),
            other => panic!("the block rule was not reported: {other:?}"),
        }
        let fw = WindowsFirewall::new().disabling_blocking_rules(true);
        let before = fw.snapshot(&a).unwrap();
        let after = fw.apply("fx-wintest", &a).unwrap();
        assert_eq!(after["rule"], "mailmend fx-wintest");
        let state = WindowsFirewall::read_state().unwrap();
        let ours = state
            .rules
            .iter()
            .find(|r| r.name == "mailmend fx-wintest")
            .unwrap();
        assert_eq!((ours.remote_ports.as_str(), ours.protocol), ("993", 6));
        assert!(state
            .rules
            .iter()
            .any(|r| r.name == block_name && !r.enabled));
        // Applying again changes nothing.
        assert!(fw.apply("fx-wintest", &a).unwrap()["note"].is_string());
        fw.undo("fx-wintest", &a, &before).unwrap();
        let state = WindowsFirewall::read_state().unwrap();
        assert!(!state.rules.iter().any(|r| r.name == "mailmend fx-wintest"));
        assert!(state
            .rules
            .iter()
            .any(|r| r.name == block_name && r.enabled));
        fw.undo("fx-wintest", &a, &before).unwrap();
    });
    netsh(&["delete", "rule", &format!("name={block_name}")]);
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

fn notify() -> Action {
    Action::NotifyUser {
        account: AccountId("outlook-test".into()),
        problem: "tls.cert_expired".into(),
        message: "The certificate of imap.example.com expired".into(),
    }
}

#[test]
fn a_notification_that_cannot_be_shown_falls_back_to_the_audit_log() {
    let n = Notifier::new();
    let result = n.apply("fx-1", &notify());
    if running_under_wine() {
        assert_eq!(Notifier::console_session(), Some(1));
        match result {
            Err(PerformError::Unavailable(m)) => {
                assert!(m.contains("WTSSendMessageW to session 1 failed"), "{m}");
                assert!(m.contains("audit log"), "{m}");
            }
            other => panic!("Wine's WTSSendMessageW is said to fail: {other:?}"),
        }
    } else {
        match result {
            Ok(v) => assert_eq!(v["via"], "WTSSendMessageW"),
            Err(PerformError::Unavailable(m)) => assert!(m.contains("no user session"), "{m}"),
            Err(e) => panic!("{e}"),
        }
    }
    n.undo("fx-1", &notify(), &Value::Null).unwrap();
}

/// Regression: every logged-in user was told about any account. The console session shows a
/// notification only when its user is the account's own.
#[test]
fn a_notification_for_another_users_account_is_not_shown_at_the_console() {
    let n = Notifier::new();
    let Some(console) = Notifier::console_session() else {
        // A machine with nobody at the console: nothing to compare, and apply says so.
        match n.apply_for_user("fx-2", &notify(), "someone-else-x") {
            Err(PerformError::Unavailable(m)) => assert!(m.contains("console"), "{m}"),
            other => panic!("{other:?}"),
        }
        return;
    };
    let user = Notifier::session_user(console).expect("the console session's user");
    assert!(!user.is_empty(), "session {console} has a user");
    match n.apply_for_user("fx-2", &notify(), "someone-else-x") {
        Err(PerformError::Unavailable(m)) => {
            assert!(m.contains("not someone-else-x's"), "{m}");
            assert!(m.contains("audit log"), "{m}");
        }
        other => panic!("another user's account reached the console: {other:?}"),
    }
    // The console user's own account (named in another case) goes on to the message box,
    // which Wine does not implement.
    let own = n.apply_for_user("fx-2", &notify(), &user.to_uppercase());
    if running_under_wine() {
        match own {
            Err(PerformError::Unavailable(m)) => {
                assert!(m.contains("WTSSendMessageW to session"), "{m}")
            }
            other => panic!("Wine's WTSSendMessageW is said to fail: {other:?}"),
        }
    } else {
        match own {
            Ok(v) => assert_eq!(v["via"], "WTSSendMessageW"),
            Err(PerformError::Unavailable(m)) => assert!(m.contains("no user session"), "{m}"),
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn wine_is_recognised() {
    // Whoever runs these tests under Wine sets WINEPREFIX, and the Unix environment reaches the
    // Windows process: a silent misdetection would turn the Wine branches above into the
    // Windows ones and fail there, but this names the cause.
    if std::env::var_os("WINEPREFIX").is_some() {
        assert!(
            running_under_wine(),
            "WINEPREFIX is set, yet Wine is not detected"
        );
    }
}
