//! End-to-end credential checks against the lab's real Dovecot and Postfix, proven from the
//! servers' own logs: a wrong password in a client's settings is reported as `auth.failed` and
//! told to the user, the configuration is left byte for byte, and the same password is never
//! tried again; the default policy never logs in at all; a right password gives no finding; a
//! password the user corrected is checked at the next run.
//!
//! Attempts are counted where the servers record them: Postfix's `disconnect from` line carries
//! `auth=1` (accepted) or `auth=0/1` (refused) for every session that tried AUTH, and Dovecot's
//! imap-login logs `Login:` or `auth failed` for every IMAP login.

mod common;

use common::*;
use mailmend_lab::ALICE;
use std::fs;
use std::path::Path;
use std::time::Duration;

const WRONG: &str = "not-alices-password-CANARY-7c1d";
const CLIENT_SOURCE: &str = "[credentials]\nsource = \"client\"\n";

/// msmtp on the submission port 587 with STARTTLS, sending as alice.
fn msmtprc_587(ca: &Path, password: &str) -> String {
    msmtprc(ca, 587, true, "alice@example.com", password) + "\naccount default : work\n"
}

/// One daemon's log, from the lab's collected logs.
fn log(s: &Scenario, file: &str) -> String {
    let all = s.lab.logs();
    let header = format!("==== {file} ====\n");
    match all.find(&header) {
        Some(start) => {
            let body = &all[start + header.len()..];
            body[..body.find("\n==== ").unwrap_or(body.len())].to_string()
        }
        None => String::new(),
    }
}

/// Postfix sessions that tried SMTP AUTH, from their `disconnect from` summaries.
fn smtp_auth_sessions(s: &Scenario) -> Vec<String> {
    log(s, "postfix.log")
        .lines()
        .filter(|l| l.contains("disconnect from") && l.contains(" auth="))
        .map(str::to_string)
        .collect()
}

/// Dovecot IMAP logins, accepted or refused.
fn imap_logins(s: &Scenario) -> Vec<String> {
    log(s, "dovecot.log")
        .lines()
        .filter(|l| {
            l.contains("imap-login:") && (l.contains("Login: user=<") || l.contains("auth failed"))
        })
        .map(str::to_string)
        .collect()
}

/// The count once a run that should have added nothing has had time to show anything it did.
fn quiet(count: impl Fn() -> usize) -> usize {
    std::thread::sleep(Duration::from_secs(3));
    count()
}

fn codes(fix: &Value) -> Vec<String> {
    fix["remaining"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["findings"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f["code"].as_str().map(str::to_string))
        .collect()
}

fn auth_codes(fix: &Value) -> Vec<String> {
    codes(fix)
        .into_iter()
        .filter(|c| c.starts_with("auth.") || c.starts_with("smtp."))
        .collect()
}

/// A scenario with msmtp holding `password` (two accounts, `work` and `default` inheriting it:
/// one server login), logins allowed by the policy when `allow`.
///
/// The policy gives replies 20 s: after a refused password Dovecot delays every further login
/// from the same address (2 s, then doubling up to 15 s), and a reply that comes late is no
/// answer.
fn msmtp_scenario(password: &str, allow: bool) -> Scenario {
    let s = Scenario::with_file(".msmtprc", "");
    fs::write(&s.prefs, msmtprc_587(&s.lab.ca_pem_path(), password)).unwrap();
    fs::write(
        &s.policy,
        format!(
            "[tls]\nextra_ca_files = [\"{}\"]\n[probes]\nconnect_timeout_ms = 2000\nio_timeout_ms = 20000\n{}",
            s.lab.ca_pem_path().display(),
            if allow { CLIENT_SOURCE } else { "" }
        ),
    )
    .unwrap();
    s
}

/// Adds an mbsync configuration holding `password` to the scenario's home.
fn add_mbsync(s: &Scenario, password: &str) -> std::path::PathBuf {
    let maildir = s.home.join("Mail");
    fs::create_dir_all(&maildir).unwrap();
    let path = s.home.join(".mbsyncrc");
    fs::write(&path, mbsyncrc(&s.lab.ca_pem_path(), &maildir, password)).unwrap();
    path
}

#[test]
fn a_wrong_password_is_reported_once_told_to_the_user_and_never_retried() {
    let s = msmtp_scenario(WRONG, true);
    let before = fs::read(&s.prefs).unwrap();
    let sessions_before = smtp_auth_sessions(&s).len();

    let (status, fix, text) = s.fix();
    assert_eq!(
        status,
        Some(1),
        "the wrong password must remain a finding\n{text}"
    );
    // Both msmtp accounts (work, and default inheriting it) log in as alice: both are told,
    // from one login.
    assert_eq!(auth_codes(&fix), ["auth.failed", "auth.failed"], "{text}");
    let findings: Vec<Value> = fix["remaining"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["findings"].as_array().cloned().unwrap_or_default())
        .filter(|f| f["code"] == "auth.failed")
        .collect();
    for finding in &findings {
        assert_eq!(finding["role"], "outgoing");
        let evidence = finding["evidence"][0]["result"].as_str().unwrap();
        assert!(
            evidence.starts_with("rejected (PLAIN): 535 5.7.8"),
            "the server's own reply is the evidence: {evidence}\n{text}"
        );
    }
    let remembered = findings
        .iter()
        .filter(|f| f["evidence"].to_string().contains("auth.ledger"))
        .count();
    assert_eq!(
        remembered, 1,
        "the second account reuses the first one's answer\n{text}"
    );

    // Exactly one AUTH reached Postfix, and Postfix refused it.
    let sessions = smtp_auth_sessions(&s);
    let n = settle(sessions_before + 1, || smtp_auth_sessions(&s).len());
    assert_eq!(n, sessions_before + 1, "{sessions:#?}\n{}", s.lab.logs());
    let last = smtp_auth_sessions(&s).pop().unwrap();
    assert!(last.contains("auth=0/1"), "{last}");
    assert!(
        !last.contains("mail=") && !last.contains("data="),
        "nothing after a refused login: {last}"
    );

    // The user is told, through the policy's decision, and nothing else is done.
    let report = reports(&fix, "auth.failed");
    assert_eq!(report.len(), 2, "{text}");
    for r in &report {
        assert_eq!(r["action"]["kind"], "notify_user");
        assert_eq!(r["outcome"], "applied", "{text}");
    }
    assert_eq!(
        fix["reports"].as_array().unwrap().len(),
        2,
        "nothing but the notices\n{text}"
    );
    let audit = s.audit();
    let notified: Vec<&Value> = audit
        .iter()
        .filter(|r| {
            r["finding_code"] == "auth.failed"
                && r["action"]["kind"] == "notify_user"
                && r["rule"] == "actions.notify_user"
                && r["outcome"] == "applied"
        })
        .collect();
    assert!(!notified.is_empty(), "no notify_user decision\n{audit:#?}");
    assert_eq!(
        fs::read(&s.prefs).unwrap(),
        before,
        "the configuration must stay byte for byte"
    );

    // A second run, at trace level: the same finding from the ledger, no new login.
    let (status, fix, text) = s.mailmend(&["-vvv", "fix", "--json"]);
    assert_eq!(status, Some(1), "{text}");
    assert_eq!(auth_codes(&fix), ["auth.failed", "auth.failed"], "{text}");
    assert!(
        text.contains("auth.ledger"),
        "the finding says it is remembered\n{text}"
    );
    let n = quiet(|| smtp_auth_sessions(&s).len());
    assert_eq!(
        n,
        sessions_before + 1,
        "the refused password was tried again:\n{}",
        log(&s, "postfix.log")
    );
    // The user was already told today.
    for r in reports(&fix, "auth.failed") {
        assert_eq!(r["outcome"], "skipped", "{text}");
    }
    assert_eq!(fs::read(&s.prefs).unwrap(), before);

    // The password is nowhere but in the client's file: not in output, logs, audit or state.
    assert!(!text.contains(WRONG), "password in mailmend's output");
    let audit_text = serde_json::to_string(&s.audit()).unwrap();
    assert!(!audit_text.contains(WRONG));
    let ledger_path = s.lab.state_dir().join("credentials.json");
    let ledger = fs::read_to_string(&ledger_path).unwrap();
    assert!(
        !ledger.contains(WRONG) && ledger.contains("\"rejected\""),
        "{ledger}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(&ledger_path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    for entry in fs::read_dir(s.lab.state_dir()).unwrap().flatten() {
        if entry.path().is_file() {
            let bytes = fs::read(entry.path()).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(WRONG),
                "{} holds the password",
                entry.path().display()
            );
        }
    }
}

#[test]
fn the_default_policy_never_logs_in() {
    let s = msmtp_scenario(WRONG, false);
    add_mbsync(&s, WRONG);
    let smtp_before = smtp_auth_sessions(&s).len();
    let imap_before = imap_logins(&s).len();
    let (status, fix, text) = s.fix();
    assert_eq!(
        status,
        Some(0),
        "without logins both accounts look healthy\n{text}"
    );
    assert!(auth_codes(&fix).is_empty(), "{text}");
    assert_eq!(
        fix["remaining"].as_array().map(Vec::len),
        Some(3),
        "every account was checked (two msmtp, one mbsync)\n{text}"
    );
    assert_eq!(quiet(|| smtp_auth_sessions(&s).len()), smtp_before);
    assert_eq!(quiet(|| imap_logins(&s).len()), imap_before);
    assert!(!s.lab.state_dir().join("credentials.json").exists());
}

#[test]
fn the_right_password_gives_no_finding_and_sends_no_mail() {
    let s = msmtp_scenario(ALICE.password, true);
    add_mbsync(&s, ALICE.password);
    let smtp_before = smtp_auth_sessions(&s).len();
    let imap_before = imap_logins(&s).len();
    let (status, fix, text) = s.fix();
    assert_eq!(status, Some(0), "{text}");
    assert!(auth_codes(&fix).is_empty(), "{text}");
    assert_eq!(
        settle(smtp_before + 1, || smtp_auth_sessions(&s).len()),
        smtp_before + 1
    );
    let smtp = smtp_auth_sessions(&s).pop().unwrap();
    // Accepted, the sender checked (with itself as the recipient, where servers judge it),
    // and undone: no data, so no mail.
    assert!(smtp.contains(" auth=1 "), "{smtp}");
    assert!(
        smtp.contains(" mail=1 ") && smtp.contains(" rcpt=1 ") && smtp.contains(" rset=1 "),
        "{smtp}"
    );
    assert!(!smtp.contains("data="), "{smtp}");
    assert_eq!(
        settle(imap_before + 1, || imap_logins(&s).len()),
        imap_before + 1
    );
    let imap = imap_logins(&s).pop().unwrap();
    assert!(imap.contains("Login: user=<alice@example.com>"), "{imap}");
    assert!(imap.contains("method=PLAIN"), "{imap}");

    // Within the interval, an accepted password is not checked again.
    let (status, _, text) = s.fix();
    assert_eq!(status, Some(0), "{text}");
    assert_eq!(quiet(|| smtp_auth_sessions(&s).len()), smtp_before + 1);
    assert_eq!(quiet(|| imap_logins(&s).len()), imap_before + 1);
}

#[test]
fn a_password_the_user_corrected_is_checked_at_the_next_run() {
    let s = msmtp_scenario(WRONG, true);
    let mbsync = add_mbsync(&s, WRONG);
    let smtp_before = smtp_auth_sessions(&s).len();
    let imap_before = imap_logins(&s).len();
    let (status, fix, text) = s.fix();
    assert_eq!(status, Some(1), "{text}");
    assert_eq!(
        auth_codes(&fix),
        ["auth.failed", "auth.failed", "auth.failed"],
        "{text}"
    );
    assert_eq!(
        settle(smtp_before + 1, || smtp_auth_sessions(&s).len()),
        smtp_before + 1
    );
    assert_eq!(
        settle(imap_before + 1, || imap_logins(&s).len()),
        imap_before + 1
    );
    assert!(imap_logins(&s).pop().unwrap().contains("auth failed"));

    // The user enters the right password in both clients.
    fs::write(&s.prefs, msmtprc_587(&s.lab.ca_pem_path(), ALICE.password)).unwrap();
    let maildir = s.home.join("Mail");
    fs::write(
        &mbsync,
        mbsyncrc(&s.lab.ca_pem_path(), &maildir, ALICE.password),
    )
    .unwrap();
    let (status, fix, text) = s.fix();
    assert_eq!(status, Some(0), "the corrected password works\n{text}");
    assert!(auth_codes(&fix).is_empty(), "{text}");
    assert_eq!(
        settle(smtp_before + 2, || smtp_auth_sessions(&s).len()),
        smtp_before + 2
    );
    assert!(smtp_auth_sessions(&s).pop().unwrap().contains(" auth=1 "));
    assert_eq!(
        settle(imap_before + 2, || imap_logins(&s).len()),
        imap_before + 2
    );
    assert!(imap_logins(&s)
        .pop()
        .unwrap()
        .contains("Login: user=<alice@example.com>"));
    // And mail really works with it.
    assert!(s
        .lab
        .imap_login_works(
            ALICE.login,
            ALICE.password,
            993,
            mailmend_lab::Tls::Implicit
        )
        .unwrap());
}
