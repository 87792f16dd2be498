//! Calling real dynamic plugins through the Diagnostic trait: findings, panics, hangs.
#![cfg(unix)]

mod common;

use common::{
    account, example_library, lib_name, sha256_file, testkit_library, FakeProber, PluginDir,
};
use mailmend_core::{AuthMethod, Diagnostic, Evidence, Protocol, Role, Security, Severity};
use mailmend_plugin_host::{load_dir, DynamicDiagnostic, CODE_BUSY, CODE_FAILED, CODE_TIMEOUT};
use std::time::{Duration, Instant};

/// Loads one library into its own plugin directory and returns the plugin.
fn load_one(
    library: &std::path::Path,
    stem: &str,
    limit: Duration,
) -> (PluginDir, DynamicDiagnostic) {
    let dir = PluginDir::new();
    let file = dir.add(library, &lib_name(stem));
    let mut outcome = load_dir(dir.path(), &[sha256_file(&file)], limit);
    assert!(outcome.refused.is_empty(), "{:?}", outcome.refused);
    assert_eq!(outcome.loaded.len(), 1);
    (dir, outcome.loaded.remove(0))
}

#[tokio::test]
async fn the_example_plugin_flags_authenticated_smtp_on_port_25_with_the_probe_as_evidence() {
    let (_dir, plugin) = load_one(&example_library(), "example", Duration::from_secs(5));
    let prober = FakeProber::default();
    let acc = account(25, AuthMethod::PasswordCleartext);

    let findings = plugin.diagnose(&acc, &prober).await;

    assert_eq!(findings.len(), 1, "{findings:?}");
    let finding = &findings[0];
    assert_eq!(finding.code, "example.smtp_submission_port_25");
    assert_eq!(finding.severity, Severity::Warning);
    assert_eq!(finding.account, acc.id);
    assert_eq!(finding.role, Some(Role::Outgoing));
    assert!(finding.summary.contains("587"), "{}", finding.summary);
    assert!(finding.proposed.is_empty(), "{:?}", finding.proposed);
    assert!(
        finding.evidence.contains(&Evidence::new(
            "tcp",
            "smtp.example.com:25",
            "connected to 127.0.0.1:25"
        )),
        "{:?}",
        finding.evidence
    );
    // Only the endpoint the manifest asked for was probed, exactly as configured.
    let probed = prober.probed();
    assert_eq!(probed.len(), 1, "{probed:?}");
    assert_eq!(probed[0].protocol, Protocol::Smtp);
    assert_eq!(probed[0].host, "smtp.example.com");
    assert_eq!(probed[0].port, 25);
    assert_eq!(probed[0].security, Security::StartTls);
}

#[tokio::test]
async fn the_example_plugin_is_silent_for_the_submission_port_587() {
    let (_dir, plugin) = load_one(&example_library(), "example", Duration::from_secs(5));
    let acc = account(587, AuthMethod::PasswordCleartext);
    let findings = plugin.diagnose(&acc, &FakeProber::default()).await;
    assert!(findings.is_empty(), "{findings:?}");
}

#[tokio::test]
async fn a_panicking_plugin_yields_plugin_failed_and_the_agent_keeps_working() {
    let (_dir, panicky) = load_one(&testkit_library("panic"), "panicky", Duration::from_secs(5));
    let (_dir2, example) = load_one(&example_library(), "example", Duration::from_secs(5));
    let acc = account(25, AuthMethod::PasswordCleartext);
    let prober = FakeProber::default();

    for _ in 0..2 {
        let findings = panicky.diagnose(&acc, &prober).await;
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].code, CODE_FAILED);
        assert_eq!(findings[0].account, acc.id);
        assert!(
            findings[0].evidence[0]
                .result
                .contains("testkit plugin panics on purpose"),
            "{:?}",
            findings[0].evidence
        );
    }

    // The process survived, and other plugins still work.
    let findings = example.diagnose(&acc, &prober).await;
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].code, "example.smtp_submission_port_25");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_plugin_times_out_within_the_limit_and_is_skipped_until_its_call_returns() {
    let limit = Duration::from_millis(300);
    let (_dir, slow) = load_one(&testkit_library("slow"), "slow", limit);
    let acc = account(587, AuthMethod::PasswordCleartext);
    let prober = FakeProber::default();

    let started = Instant::now();
    let findings = slow.diagnose(&acc, &prober).await;
    let took = started.elapsed();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].code, CODE_TIMEOUT);
    assert!(took >= limit, "gave up early, after {took:?}");
    assert!(took < limit + Duration::from_secs(1), "took {took:?}");

    // The abandoned call is still running: the plugin is not called again.
    let started = Instant::now();
    let findings = slow.diagnose(&acc, &prober).await;
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].code, CODE_BUSY);
    assert!(
        started.elapsed() < limit,
        "busy took {:?}",
        started.elapsed()
    );

    // Once the stuck call has returned, the plugin is called again (and is slow again).
    tokio::time::sleep(Duration::from_secs(2) + Duration::from_millis(500)).await;
    let findings = slow.diagnose(&acc, &prober).await;
    assert_eq!(findings[0].code, CODE_TIMEOUT, "{findings:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_of_one_plugin_wait_their_turn_instead_of_failing() {
    // Each call takes about 2 s; the third caller waits about 4 s, longer than the limit,
    // which bounds each call and not the time spent queueing behind healthy calls.
    let (_dir, slow) = load_one(&testkit_library("slow"), "slow", Duration::from_secs(3));
    let acc = account(587, AuthMethod::PasswordCleartext);
    let prober = FakeProber::default();

    let started = Instant::now();
    let (a, b, c) = tokio::join!(
        slow.diagnose(&acc, &prober),
        slow.diagnose(&acc, &prober),
        slow.diagnose(&acc, &prober)
    );
    for findings in [a, b, c] {
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].code, "testkit.called", "{findings:?}");
    }
    // Serialised, not parallel.
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(6), "{took:?}");
}
