//! probe_all: concurrency and order.

use crate::common::*;
use mailmend_core::{Prober, Protocol, Security, TcpOutcome};
use std::time::{Duration, Instant};

#[tokio::test]
async fn probe_all_runs_targets_concurrently_in_input_order() {
    let pki = Pki::new();
    let mut slow = MailServer::new(Speak::Imap).greeting(&["* OK [CAPABILITY IMAP4rev1] slow"]);
    slow.greeting_delay = Duration::from_millis(1000);
    let first = slow.clone().start().await;
    let second = slow.start().await;
    let closed = closed_port().await;
    let targets = vec![
        target(Protocol::Imap, first, Security::None),
        target(Protocol::Imap, closed, Security::None),
        target(Protocol::Imap, second, Security::None),
    ];
    let prober = pki.prober(Duration::from_secs(3), Duration::from_secs(3));
    let started = Instant::now();
    let reports = prober.probe_all(&targets).await;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(1800), "{elapsed:?}");
    assert_eq!(reports.len(), 3);
    for (report, target) in reports.iter().zip(&targets) {
        assert_eq!(&report.target, target);
    }
    assert!(reports[0].is_healthy(), "{:?}", reports[0]);
    assert!(matches!(reports[1].tcp, TcpOutcome::Refused { .. }));
    assert!(reports[2].is_healthy(), "{:?}", reports[2]);
    assert!(reports[0].elapsed_ms >= 1000);
    assert!(reports[1].elapsed_ms < 1000);
}

#[tokio::test]
async fn probe_all_of_nothing_is_empty() {
    let pki = Pki::new();
    assert!(pki.quick_prober().probe_all(&[]).await.is_empty());
}
