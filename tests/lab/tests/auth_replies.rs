//! Real-fault tests for the credential replies that no other file produces from real servers:
//! `auth.locked`, `auth.password_expired`, `auth.app_password_required`,
//! `auth.temporary_failure`, `smtp.sender_rejected` and `auth.encryption_required` (from the
//! capabilities behind a TLS terminator Dovecot does not trust, where no login is ever tried).
//! Each test sets the fault up in the lab's real Dovecot or Postfix (or nginx in front of it)
//! the way an administrator would (a passwd-file `nologin`, a Lua or checkpassword passdb, a
//! proxy, Postfix's sender login maps, a TLS terminator), runs the real `mailmend check --json`
//! and `fix --json` with `[credentials] source = "client"` and the password stored in the
//! client's configuration, and asserts: exactly that code for the broken endpoint and no other,
//! the server's own reply in the evidence, only a notification proposed and applied, the
//! configuration byte for byte unchanged, exactly one login in the server's own log (none where
//! the server offers no way to log in), and the password nowhere in mailmend's output, audit
//! log or state.
//!
//! What Dovecot 2.3 and Postfix 3.7 really answer (read from these tests' evidence) decided how
//! each fault is made; see the comment on each test.

mod common;

use common::*;
use mailmend_lab::{OutputExt, Tls, ALICE};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

// ---- clients and scenarios ----

/// A lab, alice's home with the client configurations asked for (each holding her right
/// password), and a policy that lets mailmend log in once with it.
struct Case {
    s: Scenario,
    /// Every client configuration written, to prove none changed.
    configs: Vec<PathBuf>,
}

impl Case {
    fn new(imap: bool, smtp_from: Option<&str>) -> Case {
        let s = Scenario::with_file(if imap { ".mbsyncrc" } else { ".msmtprc" }, "");
        let ca = s.lab.ca_pem_path();
        let mut configs = Vec::new();
        if imap {
            let maildir = s.home.join("Mail");
            fs::create_dir_all(&maildir).unwrap();
            let path = s.home.join(".mbsyncrc");
            fs::write(&path, mbsyncrc(&ca, &maildir, ALICE.password)).unwrap();
            configs.push(path);
        }
        if let Some(from) = smtp_from {
            let path = s.home.join(".msmtprc");
            fs::write(&path, msmtprc(&ca, 465, false, from, ALICE.password)).unwrap();
            configs.push(path);
        }
        // Replies get 20 s, as in auth.rs: a reply that comes late is no answer.
        fs::write(
            &s.policy,
            format!(
                "[tls]\nextra_ca_files = [\"{}\"]\n[probes]\nconnect_timeout_ms = 2000\n\
                 io_timeout_ms = 20000\n[credentials]\nsource = \"client\"\n",
                ca.display()
            ),
        )
        .unwrap();
        Case { s, configs }
    }

    fn snapshot(&self) -> Vec<Vec<u8>> {
        self.configs.iter().map(|p| fs::read(p).unwrap()).collect()
    }

    fn log(&self, file: &str) -> String {
        fs::read_to_string(self.s.lab.dir().join("logs").join(file)).unwrap_or_default()
    }

    /// IMAP sessions in which alice tried to log in, from imap-login's one line per session
    /// (`Login:`, `Disconnected: … (auth failed …)`, `(internal failure, 1 successful auths)`,
    /// …): each names the user and the mechanism only when a login was tried.
    /// A session can log more than one line (a proxy's error, then its disconnect): one line
    /// per `session=<…>` id is kept.
    fn imap_logins(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.log("dovecot.log")
            .lines()
            .filter(|l| {
                l.contains("imap-login:")
                    && l.contains("user=<alice@example.com>")
                    && l.contains("method=")
            })
            .filter(|l| {
                let id = l.split("session=<").nth(1).unwrap_or(l);
                seen.insert(id.split('>').next().unwrap_or(id).to_string())
            })
            .map(str::to_string)
            .collect()
    }

    /// Postfix sessions that tried SMTP AUTH, from their `disconnect from` summaries.
    fn smtp_auth_sessions(&self) -> Vec<String> {
        self.log("postfix.log")
            .lines()
            .filter(|l| l.contains("disconnect from") && l.contains(" auth="))
            .map(str::to_string)
            .collect()
    }
}

// ---- reading mailmend's output ----

fn check_findings(check: &Value) -> Vec<Value> {
    check["accounts"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["findings"].as_array().cloned().unwrap_or_default())
        .collect()
}

fn fix_findings(fix: &Value) -> Vec<Value> {
    fix["remaining"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["findings"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// The result text of the finding's evidence from `probe` (`auth.login`, `smtp.mail_from`).
fn evidence(finding: &Value, probe: &str) -> String {
    finding["evidence"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["probe"] == probe)
        .filter_map(|e| e["result"].as_str().map(str::to_string))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One fault, checked end to end.
struct Expect<'a> {
    /// The code every broken endpoint must get.
    code: &'a str,
    /// The roles of the endpoints that must get it.
    roles: &'a [&'a str],
    /// The evidence probe that carries the server's reply, and what that reply must contain
    /// for each role, in the order of `roles`.
    probe: &'a str,
    replies: &'a [&'a str],
    /// Login sessions the servers must log: (IMAP, SMTP).
    logins: (usize, usize),
}

/// Runs `check --json` and `fix --json` against the broken lab and asserts everything the
/// module comment lists. Returns the findings of the check for more specific assertions.
fn assert_told_only(c: &Case, want: &Expect) -> Vec<Value> {
    let s = &c.s;
    let before = c.snapshot();
    let imap_before = c.imap_logins().len();
    let smtp_before = c.smtp_auth_sessions().len();

    let (status, check, check_text) = s.mailmend(&["check", "--json"]);
    let findings = check_findings(&check);
    let mut expected: Vec<(String, String)> = want
        .roles
        .iter()
        .map(|r| (want.code.to_string(), r.to_string()))
        .collect();
    expected.sort();
    assert_eq!(
        code_roles(&findings),
        expected,
        "wrong findings (code, role)\n{check_text}\n--- server logs\n{}",
        s.lab.logs()
    );
    assert!(
        check["problems"].as_array().is_none_or(|p| p.is_empty()),
        "configuration problems reported\n{check_text}"
    );
    assert_eq!(
        status,
        Some(1),
        "a finding gives exit status 1\n{check_text}"
    );
    for (role, reply) in want.roles.iter().zip(want.replies) {
        let f = findings
            .iter()
            .find(|f| f["role"] == *role)
            .expect("a finding per role");
        let ev = evidence(f, want.probe);
        assert!(
            ev.contains(reply),
            "the {role} evidence must carry the server's reply {reply:?}, got {ev:?}\n{check_text}"
        );
        // Only a person can fix any of these: the user is told, nothing else is proposed.
        let kinds: Vec<&str> = f["proposed"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["kind"].as_str())
            .collect();
        assert_eq!(kinds, ["notify_user"], "{check_text}");
        assert_eq!(f["proposed"][0]["problem"], want.code, "{check_text}");
        assert!(
            f["proposed"][0]["message"]
                .as_str()
                .is_some_and(|m| !m.trim().is_empty()),
            "{check_text}"
        );
    }
    // Exactly one login per protocol reached the servers.
    let (imap_n, smtp_n) = want.logins;
    assert_eq!(
        settle(imap_before + imap_n, || c.imap_logins().len()),
        imap_before + imap_n,
        "IMAP logins:\n{:#?}",
        c.imap_logins()
    );
    assert_eq!(
        settle(smtp_before + smtp_n, || c.smtp_auth_sessions().len()),
        smtp_before + smtp_n,
        "SMTP AUTH sessions:\n{:#?}",
        c.smtp_auth_sessions()
    );

    // The fix pass: the same findings, from the ledger (no second login), and only the
    // notices, applied.
    let (status, fix, fix_text) = s.mailmend(&["fix", "--json"]);
    assert_eq!(status, Some(1), "{fix_text}");
    assert_eq!(code_roles(&fix_findings(&fix)), expected, "{fix_text}");
    let reports = fix["reports"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        reports.len(),
        want.roles.len(),
        "only the notices\n{fix_text}"
    );
    for r in &reports {
        assert_eq!(r["finding_code"], want.code, "{fix_text}");
        assert_eq!(r["action"]["kind"], "notify_user", "{fix_text}");
        assert_eq!(r["outcome"], "applied", "{fix_text}");
    }
    assert_eq!(
        c.snapshot(),
        before,
        "the client configurations must stay byte for byte"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        c.imap_logins().len(),
        imap_before + imap_n,
        "retried over IMAP"
    );
    assert_eq!(
        c.smtp_auth_sessions().len(),
        smtp_before + smtp_n,
        "retried over SMTP"
    );

    // The password is nowhere but in the client's files.
    let pw = ALICE.password;
    assert!(!check_text.contains(pw), "password in check output");
    assert!(!fix_text.contains(pw), "password in fix output");
    let audit = s.audit();
    assert!(
        audit.iter().any(|r| r["finding_code"] == want.code
            && r["action"]["kind"] == "notify_user"
            && r["outcome"] == "applied"),
        "no applied notify_user in the audit log\n{audit:#?}"
    );
    assert!(!serde_json::to_string(&audit).unwrap().contains(pw));
    for entry in fs::read_dir(s.lab.state_dir()).unwrap().flatten() {
        if entry.path().is_file() {
            let bytes = fs::read(entry.path()).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(pw),
                "{} holds the password",
                entry.path().display()
            );
        }
    }
    findings
}

/// The lab's right password works with a real IMAP client before the fault: the fault, not
/// the password, is what the test's finding is about.
fn assert_imap_works(c: &Case) {
    assert!(
        c.s.lab
            .imap_login_works(ALICE.login, ALICE.password, 993, Tls::Implicit)
            .unwrap(),
        "alice's password must work before the fault"
    );
    // Counted before mailmend runs, not as mailmend's attempt.
    assert!(settle(1, || c.imap_logins().len()) >= 1);
}

/// A Dovecot Lua passdb (package dovecot-auth-lua) with `script`, answering for alice once she
/// is taken out of the passwd-file.
fn use_lua_passdb(c: &Case, script: &str) {
    assert!(
        Path::new("/usr/lib/dovecot/modules/auth/libauthdb_lua.so").exists(),
        "Dovecot's Lua passdb is missing: run tests/install-deps.sh (dovecot-auth-lua)"
    );
    let path = c.s.lab.dir().join("dovecot/directory.lua");
    fs::write(&path, script).unwrap();
    c.s.lab
        .reconfigure_dovecot(
            &format!(
                "passdb {{\n  driver = lua\n  args = file={} blocking=yes\n}}\n",
                path.display()
            ),
            &[143, 993, 110, 995],
        )
        .unwrap();
    c.s.lab.set_passdb_fields(&ALICE, None).unwrap();
    // Postfix's smtpd processes keep their connection to Dovecot's auth process, and the old
    // one answers until Dovecot ends it: a reload gives them new ones.
    c.s.lab.restore_postfix().unwrap();
}

// ---- the faults ----

/// The passwd-file admin's way to disable an account: the `nologin` extra field. Dovecot 2.3
/// then refuses even the right password with `NO [CONTACTADMIN] Login disabled for this user`
/// (with a `reason=` it sends the reason after `[CONTACTADMIN]`). Postfix's Dovecot SASL does
/// not look at `nologin` (it still accepts the login), so the account here is IMAP only.
#[test]
fn an_account_disabled_with_dovecot_nologin_is_auth_locked() {
    let c = Case::new(true, None);
    assert_imap_works(&c);
    c.s.lab.set_passdb_fields(&ALICE, Some("nologin")).unwrap();
    let f = assert_told_only(
        &c,
        &Expect {
            code: "auth.locked",
            roles: &["incoming"],
            probe: "auth.login",
            replies: &["NO [CONTACTADMIN] Login disabled for this user"],
            logins: (1, 0),
        },
    );
    assert_eq!(f[0]["severity"], "error", "{f:#?}");
    let last = c.imap_logins().pop().unwrap();
    assert!(last.contains("1 successful auths"), "{last}");
}

/// A password older than the directory's maximum age, from a Dovecot Lua passdb returning
/// `PASSDB_RESULT_PASS_EXPIRED` (the result PAM's "new authentication token required" gives
/// too): imap-login answers `NO [EXPIRED] Password expired`, and Postfix, through Dovecot's
/// SASL, `535 5.7.8 Error: authentication failed: Password expired`.
#[test]
fn a_password_past_its_maximum_age_is_auth_password_expired() {
    let c = Case::new(true, Some("alice@example.com"));
    assert_imap_works(&c);
    use_lua_passdb(
        &c,
        &format!(
            r#"-- The organisation's account directory: passwords expire after max_age_days.
local max_age_days = 90
local users = {{
  ["alice@example.com"] = {{ password = "{pw}", changed = os.time() - 120 * 86400 }},
}}
function auth_password_verify(req, pass)
  local u = users[req.user]
  if u == nil then
    return dovecot.auth.PASSDB_RESULT_USER_UNKNOWN, "no such user"
  end
  if pass ~= u.password then
    return dovecot.auth.PASSDB_RESULT_PASSWORD_MISMATCH, "password mismatch"
  end
  if os.time() - u.changed > max_age_days * 86400 then
    return dovecot.auth.PASSDB_RESULT_PASS_EXPIRED, "password older than " .. max_age_days .. " days"
  end
  return dovecot.auth.PASSDB_RESULT_OK, {{}}
end
"#,
            pw = ALICE.password
        ),
    );
    assert_told_only(
        &c,
        &Expect {
            code: "auth.password_expired",
            roles: &["incoming", "outgoing"],
            probe: "auth.login",
            replies: &[
                "NO [EXPIRED] Password expired",
                "535 5.7.8 Error: authentication failed: Password expired",
            ],
            logins: (1, 1),
        },
    );
    assert!(
        c.imap_logins()
            .pop()
            .unwrap()
            .contains("(password expired)"),
        "{:#?}",
        c.imap_logins()
    );
    assert!(
        c.log("postfix.log")
            .contains("SASL PLAIN authentication failed: Password expired"),
        "{}",
        c.log("postfix.log")
    );
}

/// An account with two-step verification that takes only app passwords for mail: the Lua passdb
/// accepts the main password but refuses the mail login with `nologin` and a reason, the only
/// way Dovecot 2.3 shows a text of the administrator's to an IMAP client. imap-login sends it as
/// `NO [CONTACTADMIN] Application-specific password required: …`. (Postfix's Dovecot SASL
/// ignores `nologin`, so the account here is IMAP only.)
#[test]
fn a_main_password_refused_for_an_app_password_is_auth_app_password_required() {
    let c = Case::new(true, None);
    assert_imap_works(&c);
    use_lua_passdb(
        &c,
        &format!(
            r#"-- The organisation's account directory: with two-step verification on, mail clients
-- must use an app password; the main password is for the web sign-in only.
local users = {{
  ["alice@example.com"] = {{ password = "{pw}", two_step = true, app_passwords = {{}} }},
}}
function auth_password_verify(req, pass)
  local u = users[req.user]
  if u == nil then
    return dovecot.auth.PASSDB_RESULT_USER_UNKNOWN, "no such user"
  end
  for _, p in ipairs(u.app_passwords) do
    if pass == p then
      return dovecot.auth.PASSDB_RESULT_OK, {{}}
    end
  end
  if pass == u.password and u.two_step then
    return dovecot.auth.PASSDB_RESULT_OK, {{
      nologin = "y",
      reason = "Application-specific password required: create one at https://account.example.com/app-passwords",
    }}
  end
  return dovecot.auth.PASSDB_RESULT_PASSWORD_MISMATCH, "password mismatch"
end
"#,
            pw = ALICE.password
        ),
    );
    assert_told_only(
        &c,
        &Expect {
            code: "auth.app_password_required",
            roles: &["incoming"],
            probe: "auth.login",
            replies: &["Application-specific password required"],
            logins: (1, 0),
        },
    );
}

/// The account directory behind Dovecot's checkpassword passdb is down: the script cannot
/// reach the directory server and exits 111, checkpassword's "temporary problem". imap-login
/// answers `NO [UNAVAILABLE] Temporary authentication failure. [host:time]`. (Postfix, through
/// Dovecot's SASL, answers the same fault with `535 5.7.8 … (reason unavailable)`, which says
/// "wrong password"; so the account here is IMAP only.)
#[test]
fn an_unreachable_account_directory_is_auth_temporary_failure() {
    let c = Case::new(true, None);
    assert_imap_works(&c);
    let lab = &c.s.lab;
    // Nothing listens on LDAPS at the web address: the connection is refused at once.
    let script = lab.dir().join("dovecot/check-directory.sh");
    fs::write(
        &script,
        format!(
            "#!/bin/bash\n\
             # checkpassword front end of the account directory (ldaps://{dir}:636).\n\
             if ! timeout 2 bash -c 'exec 9<>/dev/tcp/{dir}/636' 2>/dev/null; then\n\
             \techo \"account directory {dir}:636 unreachable\" >&2\n\
             \texit 111\n\
             fi\n\
             exit 1\n",
            dir = lab.web_ip()
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    }
    lab.reconfigure_dovecot(
        &format!(
            "passdb {{\n  driver = checkpassword\n  args = {}\n}}\n",
            script.display()
        ),
        &[143, 993, 110, 995],
    )
    .unwrap();
    lab.set_passdb_fields(&ALICE, None).unwrap();
    let f = assert_told_only(
        &c,
        &Expect {
            code: "auth.temporary_failure",
            roles: &["incoming"],
            probe: "auth.login",
            replies: &["NO [UNAVAILABLE] Temporary authentication failure"],
            logins: (1, 0),
        },
    );
    assert_eq!(f[0]["severity"], "warning", "{f:#?}");
    assert!(
        c.log("dovecot.log").contains("unreachable"),
        "the checkpassword script ran:\n{}",
        c.log("dovecot.log")
    );
}

/// Dovecot 2.3 and Postfix 3.7 never answer a login with `[PRIVACYREQUIRED]` or 530: they hide
/// the mechanisms they would refuse (IMAP `LOGINDISABLED` without `AUTH=`, EHLO without AUTH),
/// and mailmend's login honours that (`auth.encryption_required` comes from those capabilities
/// instead: `a_tls_proxy_that_dovecot_does_not_trust_is_auth_encryption_required`). A Dovecot
/// front end (proxy) passing logins to the mailbox server over plaintext while that server
/// refuses plaintext logins from hosts it does not trust gets from the proxy `NO [SERVERBUG] Account is temporarily
/// unavailable.` (it logs "LOGINDISABLED advertised, but SSL/TLS not enabled"). That is a
/// server fault, not a wrong password: it must not be `auth.failed`, which would make mailmend
/// remember the right password as refused and never try it again; the nearest code is
/// `auth.temporary_failure` (IT must fix the server; the next check tries again).
///
/// Front end and back end are the lab's one Dovecot: alice's passdb fields proxy connections
/// to the mail address on to the second mail address (port 143, from the mail address, so not
/// from the back end's own address, which Dovecot would trust), and `proxy_maybe` would log in
/// locally there.
#[test]
fn a_proxy_whose_back_end_refuses_plaintext_is_not_a_wrong_password() {
    let c = Case::new(true, None);
    assert_imap_works(&c);
    let lab = &c.s.lab;
    lab.set_passdb_fields(
        &ALICE,
        Some(&format!(
            "proxy_maybe=y host={} port=143 source_ip={}",
            lab.new_mail_ip(),
            lab.mail_ip()
        )),
    )
    .unwrap();
    assert_told_only(
        &c,
        &Expect {
            code: "auth.temporary_failure",
            roles: &["incoming"],
            probe: "auth.login",
            replies: &["NO [SERVERBUG] Account is temporarily unavailable."],
            logins: (1, 0),
        },
    );
    assert!(
        c.log("dovecot.log")
            .contains("LOGINDISABLED advertised, but SSL/TLS not enabled"),
        "{}",
        c.log("dovecot.log")
    );
}

/// Postfix refuses a sender address the login does not own (`smtpd_sender_login_maps` with
/// `reject_sender_login_mismatch`), on the lab's submission port 465 and with Postfix's default
/// `smtpd_delay_reject = yes`, which judges the sender only once a recipient is named: alice
/// sends as the shared address sales@example.com, which IT gave to bob only, and gets
/// `553 5.7.1 <sales@example.com>: Sender address rejected: not owned by user alice@example.com`
/// at `RCPT TO`. Regression: the check stopped at `MAIL FROM` and never saw that refusal.
#[test]
fn a_sender_address_the_login_does_not_own_is_smtp_sender_rejected() {
    let c = Case::new(false, Some("sales@example.com"));
    let lab = &c.s.lab;
    let table = lab
        .write_postfix_table(
            "sender_logins",
            "alice@example.com alice@example.com\n\
             bob@example.com bob@example.com\n\
             sales@example.com bob@example.com\n",
        )
        .unwrap();
    let maps = format!("texthash:{}", table.display());
    lab.replace_postfix_params(&[
        ("smtpd_sender_login_maps", &maps),
        ("smtpd_sender_restrictions", "reject_sender_login_mismatch"),
    ])
    .unwrap();
    // The fault is the sender, not the login: alice's own address still sends.
    let works = lab
        .smtp_send_works(ALICE.login, ALICE.password, 465, Tls::Implicit)
        .unwrap();
    assert!(works, "alice must still send as herself\n{}", lab.logs());
    // Postfix logs that session's summary a moment after the client left; wait for it, so that
    // it is not counted as mailmend's.
    assert_eq!(
        settle(1, || c.smtp_auth_sessions().len()),
        1,
        "{}",
        lab.logs()
    );
    assert_told_only(
        &c,
        &Expect {
            code: "smtp.sender_rejected",
            roles: &["outgoing"],
            probe: "smtp.mail_from",
            replies: &[
                "RCPT TO:<sales@example.com>: 553 5.7.1 <sales@example.com>: Sender address rejected: not owned by user alice@example.com",
            ],
            logins: (0, 1),
        },
    );
    let last = c.smtp_auth_sessions().pop().unwrap();
    assert!(
        last.contains(" auth=1 ") && last.contains(" mail=1 ") && last.contains(" rcpt=0/1 "),
        "accepted login and sender, refused at the recipient: {last}"
    );
    assert!(!last.contains("data="), "nothing was ever sent: {last}");
}

/// A TLS terminator in front of Dovecot that Dovecot does not trust (a load balancer or an
/// nginx `stream` proxy IT added, not in `login_trusted_networks`, no PROXY protocol): the
/// client's link to imap.example.com:993 is encrypted and its certificate verified, but Dovecot
/// sees plaintext from an address that is not its own and answers `LOGINDISABLED` with no
/// `AUTH=` mechanism, asking for encryption on an encrypted connection. No client can log in
/// there and no setting of the client's fixes it (STARTTLS through the terminator would only be
/// answered by Dovecot, behind it): IT must fix the server. mailmend must say so from the
/// capabilities alone, never sending the password (no login at all), and must not blame the
/// account's login method (`auth.method_not_offered`) or move the account elsewhere.
#[test]
fn a_tls_proxy_that_dovecot_does_not_trust_is_auth_encryption_required() {
    let c = Case::new(true, None);
    let lab = &c.s.lab;
    lab.start_imaps_terminator().unwrap();
    // The fault, seen by a real IMAP client: through the terminator the server refuses every
    // login before one is tried ...
    let through = lab
        .imap_login(
            "imap.example.com",
            ALICE.login,
            ALICE.password,
            993,
            Tls::Implicit,
        )
        .unwrap();
    assert!(
        !through.status.success() && through.stderr_text().contains("LOGINDISABLED"),
        "a login through the terminator must be refused with LOGINDISABLED:\n{}",
        through.stderr_text()
    );
    // ... while directly, with STARTTLS on 143, the same password works.
    assert!(
        lab.imap_login_works(ALICE.login, ALICE.password, 143, Tls::StartTls)
            .unwrap(),
        "alice's password must work directly\n{}",
        lab.logs()
    );
    // Counted before mailmend runs, not as mailmend's attempt.
    assert!(settle(1, || c.imap_logins().len()) >= 1);

    let f = assert_told_only(
        &c,
        &Expect {
            code: "auth.encryption_required",
            roles: &["incoming"],
            probe: "imap.capability",
            replies: &["LOGINDISABLED"],
            logins: (0, 0),
        },
    );
    assert_eq!(f[0]["severity"], "error", "{f:#?}");
    assert!(
        f[0]["summary"]
            .as_str()
            .is_some_and(|t| t.contains("LOGINDISABLED")),
        "{f:#?}"
    );
    // mailmend's connections really went through the terminator to Dovecot's plaintext port.
    let mail = lab.mail_ip().to_string();
    let access = c.log("tls-terminator-access.log");
    assert!(
        access
            .lines()
            .any(|l| l.starts_with(&lab.client_ip().to_string())),
        "{access}"
    );
    assert!(
        c.log("dovecot.log")
            .lines()
            .any(|l| l.contains("imap-login:")
                && l.contains(&format!("rip={mail},"))
                && l.contains("no auth attempts")),
        "{}",
        c.log("dovecot.log")
    );
}
