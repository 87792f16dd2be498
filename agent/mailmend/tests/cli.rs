//! The command-line contract admins and scripts rely on: exit codes, error positions, the audit
//! trail and the absence of secrets, driven through the real binary.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CANARY: &str = "CANARY-7f3a9c-do-not-log";

fn mailmend(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailmend"))
        .args(args)
        .env_remove("MAILMEND_LOG")
        .output()
        .expect("run mailmend")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A home with one Thunderbird profile whose servers refuse connections (port 1 and 2 on
/// loopback), and a password pref, a user.js and a signons-like file holding the canary.
fn home_with_broken_account(dir: &Path) -> PathBuf {
    let home = dir.join("home");
    let profile = home.join(".thunderbird/abc.default");
    fs::create_dir_all(&profile).unwrap();
    fs::write(
        home.join(".thunderbird/profiles.ini"),
        "[Profile0]\nName=default\nIsRelative=1\nPath=abc.default\nDefault=1\n",
    )
    .unwrap();
    fs::write(
        profile.join("prefs.js"),
        format!(
            r#"// Mozilla User Preferences
user_pref("mail.accountmanager.accounts", "account1");
user_pref("mail.account.account1.server", "server1");
user_pref("mail.account.account1.identities", "id1");
user_pref("mail.identity.id1.useremail", "alice@example.com");
user_pref("mail.identity.id1.smtpServer", "smtp1");
user_pref("mail.server.server1.hostname", "127.0.0.1");
user_pref("mail.server.server1.port", 1);
user_pref("mail.server.server1.socketType", 3);
user_pref("mail.server.server1.type", "imap");
user_pref("mail.server.server1.userName", "alice");
user_pref("mail.server.server1.password", "{CANARY}");
user_pref("mail.smtpservers", "smtp1");
user_pref("mail.smtpserver.smtp1.hostname", "127.0.0.1");
user_pref("mail.smtpserver.smtp1.port", 2);
user_pref("mail.smtpserver.smtp1.try_ssl", 3);
user_pref("mail.smtpserver.smtp1.password", "{CANARY}");
"#
        ),
    )
    .unwrap();
    fs::write(
        profile.join("user.js"),
        format!("user_pref(\"mail.server.server1.password\", \"{CANARY}\");\n"),
    )
    .unwrap();
    fs::write(
        profile.join("logins.json"),
        format!("{{\"logins\":[{{\"password\":\"{CANARY}\"}}]}}"),
    )
    .unwrap();
    home
}

fn all_files_text(dir: &Path) -> String {
    let mut out = String::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.push_str(&all_files_text(&p));
        } else if let Ok(bytes) = fs::read(&p) {
            out.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    out
}

#[test]
fn the_canary_password_never_reaches_output_logs_or_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let home = home_with_broken_account(dir.path());
    let state = dir.path().join("state");
    let policy = dir.path().join("policy.toml");
    fs::write(
        &policy,
        format!("# admin note: the shared password is {CANARY}\ndry_run = false\n"),
    )
    .unwrap();
    let (h, s, p) = (
        home.to_str().unwrap(),
        state.to_str().unwrap(),
        policy.to_str().unwrap(),
    );
    let mut seen = String::new();
    for args in [
        vec!["accounts", "--json"],
        vec!["check", "--json", "-vvv"],
        vec!["check", "-vvv"],
        vec!["fix", "-vvv"],
        vec!["fix", "--json", "-vvv"],
        vec!["policy", "show"],
        vec!["audit", "show", "--json"],
        vec!["audit", "show"],
    ] {
        let mut full = vec!["--home", h, "--state-dir", s, "--policy", p];
        full.extend(args);
        let o = mailmend(&full);
        seen.push_str(&text(&o));
    }
    // The runs really read the account and audited what they found.
    assert!(seen.contains("alice@example.com"), "{seen}");
    assert!(seen.contains("network.service_down"), "{seen}");
    let audit = all_files_text(&state.join("audit"));
    assert!(audit.contains("network.service_down"));
    assert!(!seen.contains(CANARY), "canary in command output");
    assert!(!audit.contains(CANARY), "canary in the audit log");
}

#[test]
fn a_policy_mistake_is_reported_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    fs::write(&policy, "dry_run = false\n[actions]\nset_prot = \"auto\"\n").unwrap();
    let p = policy.to_str().unwrap();

    let check = mailmend(&["policy", "check", p]);
    assert_eq!(check.status.code(), Some(1));
    let out = text(&check);
    assert!(out.contains(&format!("{p}:3:1")), "{out}");
    assert!(out.contains("set_prot"), "{out}");

    // The same policy stops the agent at start-up, exit 2, with the same position.
    let state = dir.path().join("state");
    let run = mailmend(&[
        "--policy",
        p,
        "--state-dir",
        state.to_str().unwrap(),
        "check",
    ]);
    assert_eq!(run.status.code(), Some(2));
    assert!(text(&run).contains(&format!("{p}:3:1")), "{}", text(&run));
}

#[test]
fn a_valid_policy_is_explained() {
    let check = mailmend(&[
        "policy",
        "check",
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies/strict.toml"),
    ]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    assert!(text(&check).contains("set_port"));
}

#[test]
fn check_exits_1_with_findings_and_0_with_nothing_to_find() {
    let dir = tempfile::tempdir().unwrap();
    let home = home_with_broken_account(dir.path());
    let state = dir.path().join("state");
    let o = mailmend(&[
        "--home",
        home.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "check",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["status"], "findings");
    assert_eq!(v["accounts"][0]["account"]["email"], "alice@example.com");

    let empty = dir.path().join("empty-home");
    fs::create_dir_all(&empty).unwrap();
    let o = mailmend(&[
        "--home",
        empty.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "check",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn audit_verify_names_an_edited_record() {
    let dir = tempfile::tempdir().unwrap();
    let home = home_with_broken_account(dir.path());
    let state = dir.path().join("state");
    let (h, s) = (home.to_str().unwrap(), state.to_str().unwrap());
    assert_eq!(
        mailmend(&["--home", h, "--state-dir", s, "fix"])
            .status
            .code(),
        Some(1)
    );
    let ok = mailmend(&["--state-dir", s, "audit", "verify"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert!(text(&ok).contains("intact"));

    // An admin-visible record is rewritten to hide what happened.
    let log = state.join("audit/audit.jsonl");
    let original = fs::read_to_string(&log).unwrap();
    let edited = original.replacen("network.service_down", "network.all_fine", 1);
    assert_ne!(original, edited);
    fs::write(&log, edited).unwrap();
    let bad = mailmend(&["--state-dir", s, "audit", "verify"]);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    let out = text(&bad);
    assert!(
        out.contains("BROKEN") && out.contains("audit.jsonl:1"),
        "{out}"
    );
}

#[test]
fn rollback_of_an_unknown_fix_says_where_to_find_ids() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let o = mailmend(&[
        "--state-dir",
        state.to_str().unwrap(),
        "--home",
        dir.path().to_str().unwrap(),
        "rollback",
        "fx-20260101T000000Z-000000",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("audit show"), "{}", text(&o));
}

#[test]
fn audit_show_rejects_an_unknown_outcome_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let o = mailmend(&[
        "--state-dir",
        dir.path().to_str().unwrap(),
        "audit",
        "show",
        "--outcome",
        "fixed",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("unknown outcome \"fixed\""),
        "{}",
        text(&o)
    );
}
