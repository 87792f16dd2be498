//! Which plugin files the host loads and which it refuses, with real plugin libraries.
#![cfg(unix)]

mod common;

use common::{example_library, lib_name, sha256_file, testkit_library, PluginDir};
use mailmend_core::{Diagnostic, Role};
use mailmend_plugin_host::{load_dir, LoadOutcome, RefusalReason};
use std::path::Path;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(5);

fn only_refusal(outcome: &LoadOutcome) -> &mailmend_plugin_host::Refusal {
    assert!(
        outcome.loaded.is_empty(),
        "loaded {:?} but expected a refusal",
        outcome.loaded
    );
    assert_eq!(outcome.refused.len(), 1, "{:?}", outcome.refused);
    &outcome.refused[0]
}

#[test]
fn the_example_plugin_loads_with_the_name_version_and_hash_of_its_file() {
    let dir = PluginDir::new();
    let file = dir.add(&example_library(), &lib_name("example"));
    let sha = sha256_file(&file);
    let outcome = load_dir(dir.path(), std::slice::from_ref(&sha), LIMIT);
    assert!(outcome.refused.is_empty(), "{:?}", outcome.refused);
    assert_eq!(outcome.loaded.len(), 1);
    let plugin = &outcome.loaded[0];
    let info = plugin.info();
    assert_eq!(info.name, "example");
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(info.origin, sha);
    assert_eq!(plugin.manifest().probes, vec![Role::Outgoing]);
    assert_eq!(plugin.path(), dir.canonical().join(lib_name("example")));
}

#[test]
fn allowlisted_hashes_match_regardless_of_case_and_surrounding_spaces() {
    let dir = PluginDir::new();
    let file = dir.add(&example_library(), &lib_name("example"));
    let listed = format!("  {}\n", sha256_file(&file).to_ascii_uppercase());
    let outcome = load_dir(dir.path(), &[listed], LIMIT);
    assert_eq!(outcome.loaded.len(), 1, "{:?}", outcome.refused);
}

#[test]
fn a_plugin_file_owned_by_another_user_is_refused() {
    let dir = PluginDir::new();
    let file = dir.add(&example_library(), &lib_name("example"));
    let sha = sha256_file(&file);
    std::os::unix::fs::chown(&file, Some(65534), None).unwrap();
    let outcome = load_dir(dir.path(), std::slice::from_ref(&sha), LIMIT);
    let refusal = only_refusal(&outcome);
    assert_eq!(refusal.reason, RefusalReason::WrongOwner { uid: 65534 });
    assert_eq!(refusal.sha256.as_deref(), Some(sha.as_str()));
    assert!(refusal.to_string().contains("chown root"), "{refusal}");
}

#[test]
fn a_plugin_file_writable_by_group_or_others_is_refused() {
    for mode in [0o664, 0o646, 0o666] {
        let dir = PluginDir::new();
        let file = dir.add(&example_library(), &lib_name("example"));
        let sha = sha256_file(&file);
        dir.chmod(&file, mode);
        let outcome = load_dir(dir.path(), &[sha], LIMIT);
        let refusal = only_refusal(&outcome);
        assert_eq!(refusal.reason, RefusalReason::WritableByOthers { mode });
        assert!(refusal.to_string().contains("chmod go-w"), "{refusal}");
    }
}

#[test]
fn a_writable_plugin_directory_is_refused_and_nothing_in_it_is_loaded() {
    let dir = PluginDir::new();
    let file = dir.add(&example_library(), &lib_name("example"));
    let sha = sha256_file(&file);
    dir.chmod(dir.path(), 0o775);
    let outcome = load_dir(dir.path(), &[sha], LIMIT);
    let refusal = only_refusal(&outcome);
    match &refusal.reason {
        RefusalReason::DirectoryNotSecure { dir: bad, problem } => {
            assert_eq!(bad, &dir.canonical());
            assert!(problem.contains("0775"), "{problem}");
        }
        other => panic!("unexpected reason {other:?}"),
    }
    assert_eq!(refusal.path, dir.canonical());
}

#[test]
fn a_plugin_directory_owned_by_another_user_is_refused() {
    let dir = PluginDir::new();
    let file = dir.add(&example_library(), &lib_name("example"));
    let sha = sha256_file(&file);
    std::os::unix::fs::chown(dir.path(), Some(65534), None).unwrap();
    let outcome = load_dir(dir.path(), &[sha], LIMIT);
    let refusal = only_refusal(&outcome);
    assert!(
        matches!(&refusal.reason, RefusalReason::DirectoryNotSecure { problem, .. }
            if problem.contains("uid 65534")),
        "{refusal}"
    );
}

#[test]
fn a_plugin_directory_below_a_writable_directory_is_refused() {
    let parent = PluginDir::new();
    parent.chmod(parent.path(), 0o777);
    let plugins = parent.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let outcome = load_dir(&plugins, &[], LIMIT);
    let refusal = only_refusal(&outcome);
    assert!(
        matches!(&refusal.reason, RefusalReason::DirectoryNotSecure { dir, .. }
            if *dir == parent.canonical()),
        "{refusal}"
    );
}

#[test]
fn a_plugin_whose_hash_is_not_in_the_allowlist_is_refused() {
    let dir = PluginDir::new();
    let file = dir.add(&example_library(), &lib_name("example"));
    let sha = sha256_file(&file);
    let other = "0".repeat(64);
    let outcome = load_dir(dir.path(), &[other], LIMIT);
    let refusal = only_refusal(&outcome);
    assert_eq!(refusal.reason, RefusalReason::NotInAllowlist);
    assert_eq!(refusal.sha256.as_deref(), Some(sha.as_str()));
    // The admin can copy the hash to approve from the message.
    assert!(refusal.to_string().contains(&sha), "{refusal}");
}

#[test]
fn a_plugin_built_for_another_abi_version_is_refused() {
    let dir = PluginDir::new();
    let file = dir.add(&testkit_library("bad-abi"), &lib_name("future"));
    let outcome = load_dir(dir.path(), &[sha256_file(&file)], LIMIT);
    let refusal = only_refusal(&outcome);
    assert_eq!(
        refusal.reason,
        RefusalReason::AbiMismatch {
            found: 999,
            expected: mailmend_plugin_sdk::ABI_VERSION
        }
    );
}

#[test]
fn a_library_that_is_not_a_mailmend_plugin_is_refused() {
    let dir = PluginDir::new();
    let file = dir.add(Path::new("/bin/true"), &lib_name("true"));
    let outcome = load_dir(dir.path(), &[sha256_file(&file)], LIMIT);
    let refusal = only_refusal(&outcome);
    assert!(
        matches!(refusal.reason, RefusalReason::LoadFailed(_)),
        "{refusal}"
    );
}

#[test]
fn files_without_the_library_extension_are_ignored() {
    let dir = PluginDir::new();
    let file = dir.add(&example_library(), &format!("{}.bak", lib_name("example")));
    std::fs::write(dir.path().join("README.txt"), "not a plugin").unwrap();
    let outcome = load_dir(dir.path(), &[sha256_file(&file)], LIMIT);
    assert!(outcome.loaded.is_empty());
    assert!(outcome.refused.is_empty(), "{:?}", outcome.refused);
}

#[test]
fn a_missing_plugin_directory_means_no_plugins_and_no_refusals() {
    let dir = PluginDir::new();
    let outcome = load_dir(&dir.path().join("nope"), &[], LIMIT);
    assert!(outcome.loaded.is_empty());
    assert!(outcome.refused.is_empty());
}

#[test]
fn a_symlink_leaving_the_plugin_directory_is_refused() {
    let elsewhere = PluginDir::new();
    let real = elsewhere.add(&example_library(), &lib_name("example"));
    let dir = PluginDir::new();
    let link = dir.path().join(lib_name("example"));
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let outcome = load_dir(dir.path(), &[sha256_file(&real)], LIMIT);
    let refusal = only_refusal(&outcome);
    assert_eq!(
        refusal.reason,
        RefusalReason::SymlinkLeavesDirectory {
            target: std::fs::canonicalize(&real).unwrap()
        }
    );
}

#[test]
fn a_symlink_inside_the_directory_does_not_load_the_plugin_twice() {
    let dir = PluginDir::new();
    let real = dir.add(&example_library(), &lib_name("example-0.1"));
    std::os::unix::fs::symlink(&real, dir.path().join(lib_name("example"))).unwrap();
    let outcome = load_dir(dir.path(), &[sha256_file(&real)], LIMIT);
    assert_eq!(outcome.loaded.len(), 1, "{:?}", outcome.refused);
    assert_eq!(outcome.refused.len(), 1);
    assert!(
        matches!(&outcome.refused[0].reason, RefusalReason::DuplicateName { name, .. }
            if name == "example"),
        "{}",
        outcome.refused[0]
    );
}

#[test]
fn one_refused_file_does_not_stop_the_others_from_loading() {
    let dir = PluginDir::new();
    let good = dir.add(&example_library(), &lib_name("example"));
    dir.add(&testkit_library("bad-abi"), &lib_name("future"));
    let outcome = load_dir(dir.path(), &[sha256_file(&good)], LIMIT);
    assert_eq!(outcome.loaded.len(), 1);
    assert_eq!(outcome.refused.len(), 1);
    assert_eq!(outcome.refused[0].reason, RefusalReason::NotInAllowlist);
}
