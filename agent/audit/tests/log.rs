//! Behaviour of the audit log on disk: chaining, tamper detection, rotation, crash repair,
//! concurrency, redaction, filtering and the table admins read.

use mailmend_audit::{
    filter, read_all, read_since, render_table, verify, AuditError, AuditLog, Event, EventKind,
    Filter, Mode, Outcome, Record, VerifyReport, GENESIS,
};
use mailmend_core::{AccountId, Action, EndpointChange, Evidence, Role, Security};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

fn event(i: usize) -> Event {
    Event {
        kind: EventKind::Notice,
        account_id: Some(format!("thunderbird-{i:012}")),
        message: format!("event number {i}"),
        ..Event::default()
    }
}

fn write_many(dir: &Path, n: usize) -> AuditLog {
    let mut log = AuditLog::open(dir).unwrap();
    for i in 1..=n {
        log.append(event(i)).unwrap();
    }
    log
}

fn live(dir: &Path) -> PathBuf {
    dir.join("audit.jsonl")
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

fn broken(report: VerifyReport) -> (PathBuf, usize, Option<u64>, String) {
    match report {
        VerifyReport::Broken {
            file,
            line,
            seq,
            problem,
        } => (file, line, seq, problem),
        other => panic!("expected a broken log, got {other:?}"),
    }
}

fn sha_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn a_long_chain_verifies_intact_and_reads_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    write_many(dir.path(), 150);
    assert_eq!(
        verify(dir.path()).unwrap(),
        VerifyReport::Intact { records: 150 }
    );
    let records = read_all(dir.path()).unwrap();
    assert_eq!(records.len(), 150);
    let raw = lines(&live(dir.path()));
    assert_eq!(records[0].prev, GENESIS);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.seq, i as u64 + 1);
        assert_eq!(r.event.message, format!("event number {}", i + 1));
        if i > 0 {
            assert_eq!(
                r.prev,
                sha_hex(raw[i - 1].as_bytes()),
                "prev of seq {}",
                r.seq
            );
        }
    }
}

#[test]
fn records_carry_host_user_and_an_rfc3339_utc_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = AuditLog::open(dir.path()).unwrap();
    let r = log.append(event(1)).unwrap();
    assert!(
        !r.host.is_empty() && r.host != "unknown",
        "host {:?}",
        r.host
    );
    assert!(!r.os_user.is_empty(), "os_user {:?}", r.os_user);
    let t = time::OffsetDateTime::parse(&r.time, &time::format_description::well_known::Rfc3339)
        .unwrap();
    assert_eq!(t.offset(), time::UtcOffset::UTC);
    assert!(r.time.ends_with('Z'), "{}", r.time);
    assert_eq!(read_all(dir.path()).unwrap(), vec![r]);
}

#[test]
fn an_edited_record_is_reported_as_altered_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    write_many(dir.path(), 10);
    let mut l = lines(&live(dir.path()));
    l[4] = l[4].replace("event number 5", "event number 6");
    write_lines(&live(dir.path()), &l);
    let (file, line, seq, problem) = broken(verify(dir.path()).unwrap());
    assert_eq!(file, live(dir.path()));
    assert_eq!(line, 5);
    assert_eq!(seq, Some(5));
    assert!(problem.starts_with("altered:"), "{problem}");
    assert!(
        problem.contains("seq 6"),
        "names the record that vouches: {problem}"
    );
}

#[test]
fn a_deleted_middle_record_is_reported_as_removed() {
    let dir = tempfile::tempdir().unwrap();
    write_many(dir.path(), 10);
    let mut l = lines(&live(dir.path()));
    l.remove(4);
    write_lines(&live(dir.path()), &l);
    let (_, line, seq, problem) = broken(verify(dir.path()).unwrap());
    assert_eq!((line, seq), (5, Some(6)));
    assert!(
        problem.starts_with("removed: expected seq 5, found seq 6"),
        "{problem}"
    );
}

#[test]
fn swapped_records_are_reported_as_reordered() {
    let dir = tempfile::tempdir().unwrap();
    write_many(dir.path(), 10);
    let mut l = lines(&live(dir.path()));
    l.swap(3, 4);
    write_lines(&live(dir.path()), &l);
    let (_, line, seq, problem) = broken(verify(dir.path()).unwrap());
    assert_eq!((line, seq), (4, Some(5)));
    assert!(problem.starts_with("reordered:"), "{problem}");
    assert!(problem.contains("seq 4 comes later"), "{problem}");
}

#[test]
fn a_deleted_last_record_is_caught_by_the_head() {
    let dir = tempfile::tempdir().unwrap();
    write_many(dir.path(), 10);
    let mut l = lines(&live(dir.path()));
    l.pop();
    write_lines(&live(dir.path()), &l);
    let (file, line, seq, problem) = broken(verify(dir.path()).unwrap());
    assert_eq!(file, live(dir.path()));
    assert_eq!((line, seq), (10, Some(10)));
    assert!(
        problem.starts_with("truncated: the log ends at seq 9 but audit.head records seq 10"),
        "{problem}"
    );
}

#[test]
fn an_altered_last_record_is_caught_by_the_head() {
    let dir = tempfile::tempdir().unwrap();
    write_many(dir.path(), 4);
    let mut l = lines(&live(dir.path()));
    l[3] = l[3].replace("notice", "intent");
    write_lines(&live(dir.path()), &l);
    let (_, line, seq, problem) = broken(verify(dir.path()).unwrap());
    assert_eq!((line, seq), (4, Some(4)));
    assert!(problem.starts_with("altered: the last record"), "{problem}");
}

#[test]
fn appending_after_the_last_record_was_deleted_keeps_the_damage_visible() {
    let dir = tempfile::tempdir().unwrap();
    write_many(dir.path(), 5);
    let mut l = lines(&live(dir.path()));
    l.pop();
    write_lines(&live(dir.path()), &l);

    let mut log = AuditLog::open(dir.path()).unwrap();
    let r = log.append(event(6)).unwrap();
    // A recovery record took seq 6, continuing from the head's seq 5 (which is gone).
    assert_eq!(r.seq, 7);
    let (_, line, seq, problem) = broken(verify(dir.path()).unwrap());
    assert_eq!((line, seq), (5, Some(6)));
    assert!(
        problem.starts_with("removed: expected seq 5, found seq 6"),
        "{problem}"
    );
    let recovery = read_all(dir.path())
        .unwrap()
        .into_iter()
        .find(|r| r.event.kind == EventKind::Recovery)
        .expect("a recovery record explains the gap");
    assert!(
        recovery.event.message.contains("audit.head records seq 5"),
        "{}",
        recovery.event.message
    );
}

#[test]
fn a_line_that_is_not_json_is_reported_at_its_line_and_refused_by_read_all() {
    let dir = tempfile::tempdir().unwrap();
    write_many(dir.path(), 3);
    let mut l = lines(&live(dir.path()));
    l[1] = "{oops".to_string();
    write_lines(&live(dir.path()), &l);
    let (_, line, seq, problem) = broken(verify(dir.path()).unwrap());
    assert_eq!((line, seq), (2, None));
    assert!(problem.starts_with("not JSON:"), "{problem}");
    match read_all(dir.path()) {
        Err(e @ AuditError::Parse { line: 2, .. }) => {
            assert!(e.to_string().contains("audit.jsonl:2:"), "{e}")
        }
        other => panic!("expected a parse error at line 2, got {other:?}"),
    }
}

/// Regression: the executor read the whole log, every rotated file since installation, at
/// every start, to count the last day's fixes.
#[test]
fn read_since_skips_rotated_files_last_written_before_the_time_and_never_the_live_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = AuditLog::open(dir.path()).unwrap().with_max_bytes(1200);
    for i in 1..=40 {
        log.append(event(i)).unwrap();
    }
    let rotated: Vec<PathBuf> = (1..)
        .map(|n| dir.path().join(format!("audit.{n}.jsonl")))
        .take_while(|p| p.exists())
        .collect();
    assert!(rotated.len() >= 3, "expected several rotations");
    let now = std::time::SystemTime::now();
    let day = std::time::Duration::from_secs(24 * 3600);
    // All but the newest rotated file were last written two days ago; the live file too.
    let set_mtime = |p: &Path, t: std::time::SystemTime| {
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(t)
            .unwrap();
    };
    for p in &rotated[..rotated.len() - 1] {
        set_mtime(p, now - 2 * day);
    }
    set_mtime(&live(dir.path()), now - 2 * day);
    let newest_rotated: Vec<u64> = lines(rotated.last().unwrap())
        .iter()
        .map(|l| serde_json::from_str::<Record>(l).unwrap().seq)
        .collect();
    let in_live: Vec<u64> = lines(&live(dir.path()))
        .iter()
        .map(|l| serde_json::from_str::<Record>(l).unwrap().seq)
        .collect();

    let recent = read_since(dir.path(), now - day).unwrap();
    let seqs: Vec<u64> = recent.iter().map(|r| r.seq).collect();
    let expected: Vec<u64> = newest_rotated.iter().chain(&in_live).copied().collect();
    assert_eq!(
        seqs, expected,
        "the newest rotated file, then the live file"
    );
    assert!(seqs.len() < 40);
    // From the beginning of time, it is read_all.
    let all = read_since(dir.path(), std::time::SystemTime::UNIX_EPOCH).unwrap();
    assert_eq!(all, read_all(dir.path()).unwrap());
    assert_eq!(all.len(), 40);
}

#[test]
fn rotation_keeps_the_chain_across_files_and_read_all_follows_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = AuditLog::open(dir.path()).unwrap().with_max_bytes(1200);
    for i in 1..=40 {
        log.append(event(i)).unwrap();
    }
    let mut rotated: Vec<PathBuf> = (1..)
        .map(|n| dir.path().join(format!("audit.{n}.jsonl")))
        .take_while(|p| p.exists())
        .collect();
    assert!(rotated.len() >= 5, "expected several rotations");
    for p in &rotated {
        let len = std::fs::metadata(p).unwrap().len();
        assert!(len <= 1200, "{} is {len} bytes", p.display());
    }
    assert_eq!(
        verify(dir.path()).unwrap(),
        VerifyReport::Intact { records: 40 }
    );
    let records = read_all(dir.path()).unwrap();
    let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=40).collect::<Vec<_>>());

    // The first record of each file links to the last line of the file before it.
    rotated.push(live(dir.path()));
    for pair in rotated.windows(2) {
        let last_of_previous = lines(&pair[0]).pop().unwrap();
        let first: Record = serde_json::from_str(&lines(&pair[1])[0]).unwrap();
        assert_eq!(first.prev, sha_hex(last_of_previous.as_bytes()));
    }

    // Damage inside a rotated file is reported against that file.
    let second = dir.path().join("audit.2.jsonl");
    let mut l = lines(&second);
    l[0] = l[0].replace("event number", "Event number");
    write_lines(&second, &l);
    let (file, line, _, problem) = broken(verify(dir.path()).unwrap());
    assert_eq!((file, line), (second, 1));
    assert!(problem.starts_with("altered:"), "{problem}");
}

#[test]
fn a_deleted_rotated_file_is_reported_as_removed_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = AuditLog::open(dir.path()).unwrap().with_max_bytes(1200);
    for i in 1..=30 {
        log.append(event(i)).unwrap();
    }
    std::fs::remove_file(dir.path().join("audit.1.jsonl")).unwrap();
    let (file, line, _, problem) = broken(verify(dir.path()).unwrap());
    assert_eq!((file, line), (dir.path().join("audit.2.jsonl"), 1));
    assert!(
        problem.starts_with("removed: expected seq 1") && problem.contains("first line"),
        "{problem}"
    );
}

#[test]
fn an_interrupted_write_is_reported_as_truncated_then_set_aside_by_open() {
    let dir = tempfile::tempdir().unwrap();
    drop(write_many(dir.path(), 3));
    // A crash mid-write: part of a line, no newline, head not yet updated.
    let partial = r#"{"seq":4,"time":"2024-05-01T10:00:00Z","host":"h","os_us"#;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(live(dir.path()))
        .unwrap();
    std::io::Write::write_all(&mut f, partial.as_bytes()).unwrap();
    drop(f);

    let (_, line, _, problem) = broken(verify(dir.path()).unwrap());
    assert_eq!(line, 4);
    assert!(problem.starts_with("truncated:"), "{problem}");
    // read_all skips the incomplete write rather than failing.
    assert_eq!(read_all(dir.path()).unwrap().len(), 3);

    let mut log = AuditLog::open(dir.path()).unwrap();
    assert_eq!(
        verify(dir.path()).unwrap(),
        VerifyReport::Intact { records: 4 }
    );
    let r = log.append(event(5)).unwrap();
    assert_eq!(r.seq, 5);
    assert_eq!(
        verify(dir.path()).unwrap(),
        VerifyReport::Intact { records: 5 }
    );
    let records = read_all(dir.path()).unwrap();
    let recovery = &records[3];
    assert_eq!(recovery.event.kind, EventKind::Recovery);
    assert_eq!(recovery.event.before.as_ref().unwrap()["partial"], partial);
}

#[test]
fn a_committed_record_cut_short_is_left_in_place_as_evidence() {
    let dir = tempfile::tempdir().unwrap();
    drop(write_many(dir.path(), 3));
    let text = std::fs::read(live(dir.path())).unwrap();
    std::fs::write(live(dir.path()), &text[..text.len() - 20]).unwrap();

    let mut log = AuditLog::open(dir.path()).unwrap();
    log.append(event(4)).unwrap();
    let (_, line, _, problem) = broken(verify(dir.path()).unwrap());
    assert_eq!(line, 3);
    assert!(problem.starts_with("not JSON:"), "{problem}");
    let cut = &lines(&live(dir.path()))[2];
    assert_eq!(
        cut.as_bytes(),
        &text[text.len() - cut.len() - 20..text.len() - 20]
    );
}

#[test]
fn a_crash_between_the_line_and_the_head_is_not_reported_as_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = write_many(dir.path(), 3);
    let old_head = std::fs::read(dir.path().join("audit.head")).unwrap();
    log.append(event(4)).unwrap();
    std::fs::write(dir.path().join("audit.head"), old_head).unwrap();
    assert_eq!(
        verify(dir.path()).unwrap(),
        VerifyReport::Intact { records: 4 }
    );
    log.append(event(5)).unwrap();
    let records = read_all(dir.path()).unwrap();
    assert!(records.iter().all(|r| r.event.kind != EventKind::Recovery));
    assert_eq!(
        verify(dir.path()).unwrap(),
        VerifyReport::Intact { records: 5 }
    );
}

#[test]
fn a_missing_head_is_reported_and_an_empty_directory_is_intact() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        verify(dir.path()).unwrap(),
        VerifyReport::Intact { records: 0 }
    );
    write_many(dir.path(), 3);
    std::fs::remove_file(dir.path().join("audit.head")).unwrap();
    let (file, _, _, problem) = broken(verify(dir.path()).unwrap());
    assert_eq!(file, dir.path().join("audit.head"));
    assert!(
        problem.starts_with("removed: audit.head is missing"),
        "{problem}"
    );
}

#[test]
fn verify_of_a_missing_directory_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = verify(&missing).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    assert!(read_all(&missing).is_err());
}

#[test]
fn two_handles_appending_alternately_keep_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let mut service = AuditLog::open(dir.path()).unwrap();
    let mut fix_run = AuditLog::open(dir.path()).unwrap().with_max_bytes(2000);
    for i in 1..=30 {
        let log = if i % 2 == 0 {
            &mut service
        } else {
            &mut fix_run
        };
        let r = log.append(event(i)).unwrap();
        assert_eq!(r.seq, i as u64);
    }
    assert_eq!(
        verify(dir.path()).unwrap(),
        VerifyReport::Intact { records: 30 }
    );
}

#[test]
fn concurrent_writers_in_separate_threads_never_fork_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let dir = dir.path().to_path_buf();
            std::thread::spawn(move || {
                let mut log = AuditLog::open(&dir).unwrap().with_max_bytes(4000);
                for i in 0..25 {
                    log.append(event(t * 100 + i)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        verify(dir.path()).unwrap(),
        VerifyReport::Intact { records: 100 }
    );
}

/// Set in a child copy of this test binary to make it append as a second process.
const CHILD_DIR: &str = "MAILMEND_AUDIT_TEST_CHILD_DIR";

#[test]
fn two_processes_appending_at_once_keep_one_chain() {
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        // This is the child: append as a separate process and exit.
        let mut log = AuditLog::open(Path::new(&dir))
            .unwrap()
            .with_max_bytes(3000);
        for i in 0..40 {
            log.append(event(1000 + i)).unwrap();
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(&exe)
                .args(["--exact", "two_processes_appending_at_once_keep_one_chain"])
                .env(CHILD_DIR, dir.path())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut log = AuditLog::open(dir.path()).unwrap().with_max_bytes(3000);
    for i in 0..40 {
        log.append(event(i)).unwrap();
    }
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    assert_eq!(
        verify(dir.path()).unwrap(),
        VerifyReport::Intact { records: 120 }
    );
    assert_eq!(read_all(dir.path()).unwrap().len(), 120);
}

#[test]
fn every_append_is_fsynced_and_creating_or_rotating_syncs_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = AuditLog::open(&dir.path().join("log"))
        .unwrap()
        .with_max_bytes(600);
    let opened = log.sync_stats();
    assert_eq!(
        opened.dir_syncs, 1,
        "creating the directory syncs its parent"
    );

    log.append(event(1)).unwrap();
    let first = log.sync_stats();
    // The line and the head's temporary file; the directory for the new live file and the head.
    assert_eq!(first.file_syncs - opened.file_syncs, 2);
    assert_eq!(first.dir_syncs - opened.dir_syncs, 2);

    log.append(event(2)).unwrap();
    let plain = log.sync_stats();
    assert_eq!(plain.file_syncs - first.file_syncs, 2);
    assert_eq!(
        plain.dir_syncs - first.dir_syncs,
        1,
        "only the head's rename"
    );

    // Appends until one rotates: rename and re-create each sync the directory.
    let mut before = plain;
    loop {
        log.append(event(3)).unwrap();
        let now = log.sync_stats();
        assert_eq!(now.file_syncs - before.file_syncs, 2);
        if dir.path().join("log/audit.1.jsonl").exists() {
            assert_eq!(now.dir_syncs - before.dir_syncs, 3);
            break;
        }
        assert_eq!(now.dir_syncs - before.dir_syncs, 1);
        before = now;
    }
}

#[cfg(unix)]
#[test]
fn the_directory_is_private_and_every_file_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let logdir = dir.path().join("audit");
    let mut log = AuditLog::open(&logdir).unwrap().with_max_bytes(300);
    for i in 1..=5 {
        log.append(event(i)).unwrap();
    }
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&logdir), 0o700);
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&logdir).unwrap() {
        let p = entry.unwrap().path();
        assert_eq!(mode(&p), 0o600, "{}", p.display());
        names.push(p.file_name().unwrap().to_string_lossy().into_owned());
    }
    names.sort();
    assert!(names.contains(&"audit.head".to_string()));
    assert!(names.contains(&"audit.lock".to_string()));
    assert!(names.contains(&"audit.1.jsonl".to_string()));
}

#[test]
fn no_secret_reaches_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = AuditLog::open(dir.path()).unwrap();
    let r = log
        .append(Event {
            kind: EventKind::Intent,
            before: Some(serde_json::json!({"port": 143, "password": "hunter2"})),
            after: Some(serde_json::json!({"port": 993, "oauth": {"refresh_token": "rt-xyz"}})),
            evidence: vec![Evidence::new(
                "auth",
                "imap.example.com:993",
                "login failed for user=bob passwd=s3cr3t!",
            )],
            message: "switch port".into(),
            ..Event::default()
        })
        .unwrap();
    assert_eq!(r.event.before.as_ref().unwrap()["password"], "[redacted]");
    let text = std::fs::read_to_string(live(dir.path())).unwrap();
    for secret in ["hunter2", "rt-xyz", "s3cr3t"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    assert!(text.contains("\"port\":143"), "other values stay: {text}");
}

fn record(seq: u64, time: &str, event: Event) -> Record {
    Record {
        seq,
        time: time.into(),
        host: "laptop".into(),
        os_user: "alice".into(),
        event,
        prev: GENESIS.into(),
    }
}

fn sample() -> Vec<Record> {
    let set_port = Action::SetEndpoint {
        account: AccountId("thunderbird-0a1b2c3d4e5f".into()),
        role: Role::Incoming,
        change: EndpointChange {
            port: Some(993),
            security: Some(Security::Tls),
            ..Default::default()
        },
    };
    vec![
        record(
            1,
            "2024-05-01T08:59:59Z",
            Event {
                kind: EventKind::PolicyLoaded,
                policy_hash: Some("ab12".into()),
                message: "policy loaded from /etc/mailmend/policy.toml".into(),
                ..Event::default()
            },
        ),
        record(
            2,
            "2024-05-01T09:00:00Z",
            Event {
                kind: EventKind::Intent,
                account_id: Some("thunderbird-0a1b2c3d4e5f".into()),
                email: Some("alice@example.com".into()),
                finding_code: Some("settings.wrong_port".into()),
                rule: Some("fix-ports".into()),
                action: Some(set_port.clone()),
                mode: Some(Mode::Real),
                message: "about to change incoming settings".into(),
                ..Event::default()
            },
        ),
        record(
            3,
            "2024-05-01T09:00:02.5+00:00",
            Event {
                kind: EventKind::Outcome,
                account_id: Some("thunderbird-0a1b2c3d4e5f".into()),
                email: Some("alice@example.com".into()),
                finding_code: Some("settings.wrong_port".into()),
                rule: Some("fix-ports".into()),
                action: Some(set_port),
                outcome: Some(Outcome::Applied),
                verification: Some("imap login probe succeeded".into()),
                message: "incoming server now reachable on 993 with tls".into(),
                ..Event::default()
            },
        ),
        record(
            4,
            "2024-05-02T11:30:00Z",
            Event {
                kind: EventKind::Outcome,
                account_id: Some("msmtp-77aa88bb99cc".into()),
                finding_code: Some("tls.certificate_expired".into()),
                rule: Some("notify-only-for-certificates".into()),
                outcome: Some(Outcome::Recommended),
                message: "the server's certificate expired on 2024-04-30; the admin must renew it, the agent will not turn checks off".into(),
                ..Event::default()
            },
        ),
    ]
}

#[test]
fn filters_select_by_since_account_and_outcome() {
    let records = sample();
    let seqs =
        |f: &Filter| -> Vec<u64> { filter(&records, f).unwrap().iter().map(|r| r.seq).collect() };
    assert_eq!(seqs(&Filter::default()), vec![1, 2, 3, 4]);
    let since = |s: &str| Filter {
        since: Some(s.into()),
        ..Filter::default()
    };
    assert_eq!(seqs(&since("2024-05-01T09:00:00Z")), vec![2, 3, 4]);
    assert_eq!(seqs(&since("2024-05-01T11:00:01+02:00")), vec![3, 4]);
    assert_eq!(seqs(&since("2024-05-02")), vec![4]);
    let account = |a: &str| Filter {
        account: Some(a.into()),
        ..Filter::default()
    };
    assert_eq!(seqs(&account("alice@example.com")), vec![2, 3]);
    assert_eq!(seqs(&account("msmtp-77aa88bb99cc")), vec![4]);
    assert_eq!(
        seqs(&account("alice")),
        Vec::<u64>::new(),
        "exact match only"
    );
    let both = Filter {
        account: Some("thunderbird-0a1b2c3d4e5f".into()),
        outcome: Some(Outcome::Applied),
        since: Some("2024-05-01T00:00:00Z".into()),
    };
    assert_eq!(seqs(&both), vec![3]);
}

#[test]
fn a_bad_since_value_is_an_error_naming_it() {
    let records = sample();
    let err = filter(
        &records,
        &Filter {
            since: Some("yesterday".into()),
            ..Filter::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, AuditError::BadSince { .. }));
    let text = err.to_string();
    assert!(text.contains("\"yesterday\""), "{text}");
    assert!(
        text.contains("2024-05-01T09:30:00Z"),
        "says what to type: {text}"
    );
}

#[test]
fn the_table_has_its_columns_and_rows_and_fits_100_columns() {
    let records = sample();
    let refs: Vec<&Record> = records.iter().collect();
    let table = render_table(&refs);
    println!("{table}");
    let lines: Vec<&str> = table.lines().collect();
    // A header, then each record's row followed by its message line.
    assert_eq!(lines.len(), 1 + 2 * records.len());
    let header = lines[0];
    let mut at = 0;
    for col in ["TIME", "ACCOUNT", "FINDING", "ACTION", "RULE", "OUTCOME"] {
        let i = header[at..]
            .find(col)
            .unwrap_or_else(|| panic!("{col} in {header}"));
        at += i + col.len();
    }
    for line in &lines {
        assert!(line.chars().count() <= 100, "too wide: {line:?}");
    }
    let (rows, messages): (Vec<&str>, Vec<&str>) = (
        lines[1..].iter().step_by(2).copied().collect(),
        lines[2..].iter().step_by(2).copied().collect(),
    );
    assert!(rows[0].starts_with("2024-05-01 08:59:59"));
    assert!(
        rows[0].ends_with("policy_loaded"),
        "the kind stands in for a missing outcome: {}",
        rows[0]
    );
    assert!(messages[0]
        .trim_start()
        .starts_with("policy loaded from /etc/mailmend"));
    assert!(rows[1].contains("alice@example.com  ") && rows[1].ends_with("intent"));
    assert!(rows[1].contains("settings.wrong_port") && rows[1].contains("fix-ports"));
    assert!(rows[2].starts_with("2024-05-01 09:00:02"));
    assert!(rows[2].ends_with("applied") && rows[2].contains("set_port+"));
    assert!(messages[2]
        .trim_start()
        .starts_with("set incoming port 993, security tls: incoming server now reachable"));
    assert!(rows[3].ends_with("recommended") && rows[3].contains("msmtp-77aa88bb99cc"));
    assert!(
        rows[3].contains('…'),
        "long values are cut visibly: {}",
        rows[3]
    );
    assert!(
        messages[3].ends_with('…'),
        "long messages too: {}",
        messages[3]
    );
    // Columns line up: every row has OUTCOME where the header has it.
    let outcome_col = header.find("OUTCOME").unwrap();
    for row in &rows {
        let prefix: String = row.chars().take(outcome_col).collect();
        assert!(prefix.ends_with("  "), "misaligned: {row}");
    }
    assert!(render_table(&[]).contains("(no records)"));
}
