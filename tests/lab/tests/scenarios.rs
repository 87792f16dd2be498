//! End-to-end scenarios: break a real mail setup in the lab, run the real `mailmend fix`, assert
//! what the audit log says, then check with a real client (curl, swaks) that mail works again —
//! or, for what must never be "fixed" silently, that nothing was changed.

mod common;

use common::*;
use mailmend_lab::{CertKind, Tls, ALICE};
use std::fs;
use std::path::Path;

#[test]
fn wrong_imap_port_is_corrected_and_mail_is_readable_again() {
    let tb = Tb {
        imap_port: 1993,
        ..HEALTHY
    };
    let s = Scenario::new(&tb);
    let before = prefs_js(&tb);
    assert!(!s.incoming_works_on(1993));
    assert_fixed(&s, "settings.wrong_port");
    // Exactly the port line changed.
    assert_eq!(
        changed_lines(&before, &s.prefs),
        vec![(
            "user_pref(\"mail.server.server1.port\", 1993);".to_string(),
            "user_pref(\"mail.server.server1.port\", 993);".to_string()
        )]
    );
    assert!(s.incoming_works(), "IMAP login fails after the fix");
}

#[test]
fn ssl_configured_on_the_starttls_port_moves_to_implicit_tls() {
    let s = Scenario::new(&Tb {
        imap_port: 143,
        imap_socket: 3,
        ..HEALTHY
    });
    assert_fixed(&s, "settings.wrong_port");
    let a = s.account();
    assert_eq!(
        (port_of(&a["incoming"]), a["incoming"]["security"].as_str()),
        (993, Some("tls"))
    );
    assert!(s.incoming_works());
}

#[test]
fn starttls_configured_on_the_implicit_tls_port_becomes_tls() {
    let s = Scenario::new(&Tb {
        imap_port: 993,
        imap_socket: 2,
        ..HEALTHY
    });
    assert_fixed(&s, "settings.wrong_security");
    let a = s.account();
    assert_eq!(
        (port_of(&a["incoming"]), a["incoming"]["security"].as_str()),
        (993, Some("tls"))
    );
    assert!(s.incoming_works());
}

#[test]
fn smtp_on_port_25_moves_to_a_port_that_accepts_authentication() {
    let s = Scenario::new(&Tb {
        smtp_port: 25,
        smtp_socket: 2,
        ..HEALTHY
    });
    // Both port and security change: 25 with STARTTLS becomes 465 with implicit TLS.
    assert_fixed(&s, "settings.wrong_port_security");
    let a = s.account();
    assert_eq!(
        (port_of(&a["outgoing"]), a["outgoing"]["security"].as_str()),
        (465, Some("tls"))
    );
    assert!(s.outgoing_works(), "sending fails after the fix");
}

#[test]
fn a_host_typo_is_corrected_to_the_host_in_the_accounts_domain() {
    let s = Scenario::new(&Tb {
        imap_host: "imap.exmaple.com",
        ..HEALTHY
    });
    let fixed = assert_fixed(&s, "dns.nxdomain");
    assert_eq!(fixed["action"]["change"]["host"], "imap.example.com");
    assert!(s.incoming_works());
}

#[test]
fn a_server_that_moved_is_found_under_the_domains_standard_name() {
    // mail2 was the server; its address is gone after a migration.
    let s = Scenario::new(&Tb {
        imap_host: "mail2.example.com",
        ..HEALTHY
    });
    s.lab.take_down_address(s.lab.new_mail_ip()).unwrap();
    assert_fixed(&s, "settings.wrong_host");
    assert!(s.incoming_works());
}

#[test]
fn bad_server_certificates_are_reported_and_never_worked_around() {
    let s = Scenario::new(&HEALTHY);
    let before = prefs_js(&HEALTHY);
    for (kind, code) in [
        (CertKind::Expired, "tls.certificate_expired"),
        (CertKind::SelfSigned, "tls.certificate_self_signed"),
        (CertKind::WrongHost, "tls.name_mismatch"),
    ] {
        s.lab.switch_cert(kind).unwrap();
        let (status, fix, text) = s.fix();
        assert_eq!(status, Some(1), "{code}: findings must remain\n{text}");
        let codes: Vec<&str> = fix["remaining"][0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["code"].as_str())
            .collect();
        assert!(
            codes.contains(&code),
            "{code} not found in {codes:?}\n{text}"
        );
        // Only notifications, never a settings change.
        for r in fix["reports"].as_array().unwrap() {
            assert_eq!(r["action"]["kind"], "notify_user", "{code}: {r}\n{text}");
        }
        assert!(
            reports(&fix, code)
                .iter()
                .any(|r| r["outcome"] == "applied"),
            "{code}: the user must be notified\n{text}"
        );
        assert_unchanged(&s, &before);
    }
}

#[test]
fn recommend_deny_and_dry_run_leave_the_configuration_alone() {
    let tb = Tb {
        imap_port: 1993,
        ..HEALTHY
    };
    let s = Scenario::new(&tb);
    let before = prefs_js(&tb);
    for (policy, args, outcome, mode) in [
        (
            "[actions]\nset_port = \"recommend\"\n",
            vec!["fix", "--json"],
            "recommended",
            "real",
        ),
        (
            "[actions]\nset_port = \"deny\"\n",
            vec!["fix", "--json"],
            "denied",
            "real",
        ),
        (
            "dry_run = true\n",
            vec!["fix", "--json"],
            "recommended",
            "dry_run",
        ),
        (
            "",
            vec!["fix", "--dry-run", "--json"],
            "recommended",
            "dry_run",
        ),
    ] {
        s.set_policy(policy);
        let (status, fix, text) = s.mailmend(&args);
        assert_eq!(status, Some(1), "{policy:?}\n{text}");
        let r = reports(&fix, "settings.wrong_port");
        assert_eq!(r.len(), 1, "{policy:?}\n{text}");
        assert_eq!(r[0]["outcome"], outcome, "{policy:?}\n{text}");
        assert_eq!(r[0]["mode"], mode, "{policy:?}\n{text}");
        assert_unchanged(&s, &before);
    }
    let audit = s.audit();
    let outcomes: Vec<&str> = outcome_records(&audit, "settings.wrong_port")
        .iter()
        .filter_map(|r| r["outcome"].as_str())
        .collect();
    assert_eq!(
        outcomes,
        vec!["recommended", "denied", "recommended", "recommended"]
    );
}

impl Scenario {
    fn incoming_works_on(&self, port: u16) -> bool {
        self.lab
            .imap_login_works(ALICE.login, ALICE.password, port, Tls::Implicit)
            .unwrap()
    }
}

const AUTO_FIREWALL: &str = "[actions]\nadd_firewall_exception = \"auto\"\n";

fn client_ruleset(s: &Scenario) -> String {
    let out = s.lab.client_exec("nft", ["list", "ruleset"]).unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_local_nftables_drop_of_993_gets_an_exception_that_rollback_removes() {
    let s = Scenario::with_policy(&HEALTHY, AUTO_FIREWALL);
    s.lab.nft_client("tcp dport 993 drop").unwrap();
    let blocked_ruleset = client_ruleset(&s);
    assert!(!s.incoming_works(), "the drop rule must break IMAP first");

    let fixed = assert_fixed(&s, "firewall.blocked_locally");
    assert_eq!(fixed["action"]["kind"], "add_firewall_exception");
    assert!(s.incoming_works(), "IMAP still blocked after the exception");
    let ruleset = client_ruleset(&s);
    let fix_id = fixed["fix_id"].as_str().unwrap();
    assert!(ruleset.contains(&format!("mailmend:{fix_id}")), "{ruleset}");

    // Rollback removes exactly the agent's rule: the ruleset is as the admin left it.
    let out = s
        .lab
        .run_mailmend(
            &s.home,
            ["--policy", s.policy.to_str().unwrap(), "rollback", fix_id],
        )
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(client_ruleset(&s), blocked_ruleset);
    assert!(!s.incoming_works());
}

#[test]
fn uninstall_removes_every_exception_the_agent_added_and_nothing_else() {
    let s = Scenario::with_policy(&HEALTHY, AUTO_FIREWALL);
    s.lab.nft_client("tcp dport 993 drop").unwrap();
    s.lab.nft_client("tcp dport 465 drop").unwrap();
    let blocked_ruleset = client_ruleset(&s);
    let (_, fix, text) = s.fix();
    let applied = reports(&fix, "firewall.blocked_locally")
        .into_iter()
        .filter(|r| r["outcome"] == "applied")
        .count();
    assert_eq!(applied, 2, "one exception per blocked port\n{text}");
    assert!(s.incoming_works() && s.outgoing_works());

    let (status, out, text) = s.mailmend(&["uninstall", "--json"]);
    assert_eq!(status, Some(0), "{text}");
    assert_eq!(out["removed_rules"], 2, "{text}");
    // Exactly the admin's rules are left: the exceptions are gone, the drops are untouched.
    assert_eq!(client_ruleset(&s), blocked_ruleset);
    assert!(!s.incoming_works());
    let audit = s.audit();
    assert!(
        audit.iter().any(|r| r["kind"] == "rollback"
            && r["message"].as_str().unwrap_or("").contains("removed 2")),
        "{audit:#?}"
    );
    // A second uninstall finds nothing of the agent's left.
    let (_, again, text) = s.mailmend(&["uninstall", "--json"]);
    assert_eq!(again["removed_rules"], 0, "{text}");
}

#[test]
fn a_local_nftables_reject_of_587_is_excepted_for_the_mail_host_only() {
    let tb = Tb {
        smtp_port: 587,
        smtp_socket: 2,
        ..HEALTHY
    };
    let s = Scenario::with_policy(&tb, AUTO_FIREWALL);
    s.lab.nft_client("tcp dport 587 reject").unwrap();
    let fixed = assert_fixed(&s, "firewall.blocked_locally");
    assert_eq!(fixed["action"]["port"], 587);
    assert!(
        s.outgoing_works(),
        "sending still blocked after the exception"
    );
    // The exception names the mail server's address and port, nothing broader.
    let ruleset = client_ruleset(&s);
    let rule = ruleset
        .lines()
        .find(|l| l.contains("mailmend:"))
        .unwrap_or_else(|| panic!("no mailmend rule in\n{ruleset}"));
    assert!(
        rule.contains(&s.lab.mail_ip().to_string())
            && rule.contains("587")
            && rule.contains("accept"),
        "{rule}"
    );
}

#[test]
fn a_firewall_block_is_only_recommended_under_the_default_policy() {
    let s = Scenario::new(&HEALTHY);
    s.lab.nft_client("tcp dport 993 drop").unwrap();
    let before = client_ruleset(&s);
    let (status, fix, text) = s.fix();
    assert_eq!(status, Some(1), "{text}");
    let r = reports(&fix, "firewall.blocked_locally");
    assert_eq!(r.len(), 1, "{text}");
    assert_eq!(r[0]["outcome"], "recommended", "{text}");
    assert_eq!(client_ruleset(&s), before, "the ruleset must not change");
}

#[test]
fn a_stale_local_dns_cache_after_a_migration_is_flushed() {
    let s = Scenario::new(&HEALTHY);
    s.lab.use_local_cache(true).unwrap();
    // The local cache learns the old address while the account works.
    let (status, _, text) = s.mailmend(&["check", "--json"]);
    assert_eq!(status, Some(0), "{text}");
    // The servers move to the new address and the old one disappears.
    s.lab.set_a_record("imap", s.lab.new_mail_ip()).unwrap();
    s.lab.set_a_record("smtp", s.lab.new_mail_ip()).unwrap();
    s.lab.take_down_address(s.lab.mail_ip()).unwrap();

    let (_, fix, text) = s.fix();
    let flushed: Vec<&Value> = fix["reports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["finding_code"] == "dns.stale_cache" && r["outcome"] == "applied")
        .collect();
    assert!(!flushed.is_empty(), "no applied flush\n{text}");
    assert_eq!(flushed[0]["action"]["kind"], "flush_dns", "{text}");
    assert!(
        fix["remaining"][0]["findings"]
            .as_array()
            .unwrap()
            .is_empty(),
        "problems remain after the flush\n{text}"
    );
    // The configuration was never touched: the name was right, the cache was wrong.
    assert_unchanged(&s, &prefs_js(&HEALTHY));
    assert!(s.incoming_works(), "IMAP does not work after the flush");
}

const MUTTRC: &str = "# Alice's mutt\n\
set realname = \"Alice Liddell\"\n\
set from = \"alice@example.com\"\n\
set imap_user = \"alice@example.com\"\n\
set imap_pass = \"kept-out-of-logs\"\n\
set folder = \"imaps://imap.example.com:1993/\"\n\
set spoolfile = \"+INBOX\"\n\
set smtp_url = \"smtps://alice@smtp.example.com:465/\"\n\
set ssl_force_tls = yes\n";

#[test]
fn mutt_with_a_wrong_imap_port_is_corrected() {
    let s = Scenario::with_file(".muttrc", MUTTRC);
    assert_fixed(&s, "settings.wrong_port");
    assert_eq!(
        changed_lines(MUTTRC, &s.prefs),
        vec![(
            "set folder = \"imaps://imap.example.com:1993/\"".to_string(),
            "set folder = \"imaps://imap.example.com:993/\"".to_string()
        )]
    );
    assert!(s.incoming_works());
}

const AERC: &str = "# aerc accounts\n\
[Work]\n\
source = imaps://alice@imap.example.com:1993\n\
outgoing = smtps://alice@smtp.example.com:465\n\
from = Alice Liddell <alice@example.com>\n\
default = INBOX\n";

#[test]
fn aerc_with_a_wrong_imap_port_is_corrected() {
    let s = Scenario::with_file(".config/aerc/accounts.conf", AERC);
    assert_fixed(&s, "settings.wrong_port");
    assert_eq!(
        changed_lines(AERC, &s.prefs),
        vec![(
            "source = imaps://alice@imap.example.com:1993".to_string(),
            "source = imaps://alice@imap.example.com:993".to_string()
        )]
    );
    assert!(s.incoming_works());
}

fn msmtprc(ca: &Path) -> String {
    format!(
        "# msmtp configuration\n\
defaults\n\
auth           on\n\
tls            on\n\
tls_trust_file {ca}\n\
logfile        ~/.msmtp.log\n\
\n\
# Work mail\n\
account        work\n\
host           smtp.example.com\n\
port           25\n\
tls_starttls   on\n\
from           alice@example.com\n\
user           alice@example.com\n\
password       {pw}\n\
\n\
account default : work\n",
        ca = ca.display(),
        pw = ALICE.password,
    )
}

#[test]
fn msmtp_on_port_25_is_moved_and_the_real_msmtp_sends_again() {
    // The lab's CA path is only known once the lab runs.
    let s = Scenario::with_file(".msmtprc", "");
    let content = msmtprc(&s.lab.ca_pem_path());
    fs::write(&s.prefs, &content).unwrap();
    let fixed = assert_fixed(&s, "settings.wrong_port_security");
    assert_eq!(fixed["action"]["change"]["port"], 465);
    let after = fs::read_to_string(&s.prefs).unwrap();
    assert!(
        after.contains("port           465") || after.contains("port 465"),
        "{after}"
    );
    assert!(
        after.contains("tls_starttls   off") || after.contains("tls_starttls off"),
        "{after}"
    );

    // The real msmtp, with the repaired file, delivers through Postfix.
    let subject = format!("mailmend msmtp scenario {}", s.lab.id());
    let script = format!(
        "printf 'From: alice@example.com\\nTo: alice@example.com\\nSubject: {subject}\\n\\nhello\\n' | msmtp -C {} -a work alice@example.com",
        s.prefs.display()
    );
    let out = s.lab.client_exec("sh", ["-c", script.as_str()]).unwrap();
    assert!(
        out.status.success(),
        "msmtp failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.lab
        .wait_for_message(
            ALICE.login,
            ALICE.password,
            &subject,
            std::time::Duration::from_secs(15),
        )
        .unwrap();
    // The password msmtp needs never reached the audit log.
    let audit = serde_json::to_string(&s.audit()).unwrap();
    assert!(!audit.contains(ALICE.password));
}

fn mbsyncrc(ca: &Path, maildir: &Path) -> String {
    format!(
        "# isync configuration\n\
IMAPAccount work\n\
Host imap.example.com\n\
Port 1993\n\
User alice@example.com\n\
Pass {pw}\n\
SSLType IMAPS\n\
CertificateFile {ca}\n\
\n\
IMAPStore work-remote\n\
Account work\n\
\n\
MaildirStore work-local\n\
Path {md}/\n\
Inbox {md}/INBOX\n\
\n\
Channel work\n\
Far :work-remote:\n\
Near :work-local:\n\
Patterns INBOX\n\
Create Near\n\
SyncState *\n",
        pw = ALICE.password,
        ca = ca.display(),
        md = maildir.display(),
    )
}

#[test]
fn mbsync_with_a_wrong_port_is_corrected_and_the_real_mbsync_syncs_again() {
    let s = Scenario::with_file(".mbsyncrc", "");
    let maildir = s.home.join("Mail");
    fs::create_dir_all(&maildir).unwrap();
    let content = mbsyncrc(&s.lab.ca_pem_path(), &maildir);
    fs::write(&s.prefs, &content).unwrap();
    let mbsync = |s: &Scenario| {
        s.lab
            .client_exec("mbsync", ["-c", s.prefs.to_str().unwrap(), "work"])
            .unwrap()
    };
    assert!(
        !mbsync(&s).status.success(),
        "mbsync must fail on the wrong port first"
    );
    assert_fixed(&s, "settings.wrong_port");
    assert_eq!(
        changed_lines(&content, &s.prefs),
        vec![("Port 1993".to_string(), "Port 993".to_string())]
    );
    let out = mbsync(&s);
    assert!(
        out.status.success(),
        "mbsync failed after the fix: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(maildir.join("INBOX/cur").is_dir() || maildir.join("INBOX/new").is_dir());
}

#[test]
fn an_expiring_renewable_kerberos_ticket_is_renewed_before_it_ends() {
    // An account that logs in with Kerberos (Thunderbird authMethod 5).
    let s = Scenario::new(&HEALTHY);
    let prefs = fs::read_to_string(&s.prefs).unwrap().replace(
        "mail.server.server1.authMethod\", 3",
        "mail.server.server1.authMethod\", 5",
    );
    fs::write(&s.prefs, prefs).unwrap();
    // A 20-second ticket renewable for 10 minutes, in the default cache of the home's owner
    // (root here; the lab's krb5.conf keeps default caches in the lab directory).
    let ccache = s
        .lab
        .kinit(
            &ALICE,
            std::time::Duration::from_secs(20),
            std::time::Duration::from_secs(600),
            0,
        )
        .unwrap();
    let before = String::from_utf8_lossy(&s.lab.klist(&ccache).unwrap().stdout).into_owned();
    // Wait until less than half its lifetime is left: now it is "expiring".
    std::thread::sleep(std::time::Duration::from_secs(11));

    let (_, fix, text) = s.fix();
    let renewed: Vec<&Value> = reports(&fix, "kerberos.ticket_expiring");
    assert_eq!(renewed.len(), 1, "{text}");
    assert_eq!(renewed[0]["action"]["kind"], "renew_kerberos", "{text}");
    assert_eq!(renewed[0]["outcome"], "applied", "{text}");
    let after = String::from_utf8_lossy(&s.lab.klist(&ccache).unwrap().stdout).into_owned();
    assert_ne!(before, after, "the ticket's times did not change");
    let (_, check, text) = s.mailmend(&["check", "--json"]);
    let codes: Vec<&str> = check["accounts"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["code"].as_str())
        .collect();
    assert!(!codes.iter().any(|c| c.starts_with("kerberos.")), "{text}");
}

const EVOLUTION_ACCOUNT: &str = "[Data Source]\n\
DisplayName=alice@example.com\n\
Enabled=true\n\
Parent=\n\
\n\
[Mail Account]\n\
BackendName=imapx\n\
IdentityUid=alice-identity\n\
NeedsInitialSetup=false\n\
\n\
[Authentication]\n\
Host=imap.example.com\n\
Method=PLAIN\n\
Port=1993\n\
RememberPassword=true\n\
User=alice@example.com\n\
\n\
[Security]\n\
Method=ssl-on-alternate-port\n";

const EVOLUTION_IDENTITY: &str = "[Data Source]\n\
DisplayName=Alice Liddell\n\
Enabled=true\n\
Parent=alice-account\n\
\n\
[Mail Identity]\n\
Address=alice@example.com\n\
Name=Alice Liddell\n\
\n\
[Mail Submission]\n\
TransportUid=alice-transport\n";

const EVOLUTION_TRANSPORT: &str = "[Data Source]\n\
DisplayName=alice@example.com\n\
Enabled=true\n\
Parent=alice-account\n\
\n\
[Mail Transport]\n\
BackendName=smtp\n\
\n\
[Authentication]\n\
Host=smtp.example.com\n\
Method=PLAIN\n\
Port=465\n\
User=alice@example.com\n\
\n\
[Security]\n\
Method=ssl-on-alternate-port\n";

#[test]
fn evolution_with_a_wrong_imap_port_is_corrected() {
    let sources = ".config/evolution/sources";
    let s = Scenario::with_file(
        &format!("{sources}/alice-account.source"),
        EVOLUTION_ACCOUNT,
    );
    fs::write(
        s.home.join(sources).join("alice-identity.source"),
        EVOLUTION_IDENTITY,
    )
    .unwrap();
    fs::write(
        s.home.join(sources).join("alice-transport.source"),
        EVOLUTION_TRANSPORT,
    )
    .unwrap();
    assert_fixed(&s, "settings.wrong_port");
    assert_eq!(
        changed_lines(EVOLUTION_ACCOUNT, &s.prefs),
        vec![("Port=1993".to_string(), "Port=993".to_string())]
    );
    assert_eq!(
        fs::read_to_string(s.home.join(sources).join("alice-transport.source")).unwrap(),
        EVOLUTION_TRANSPORT,
        "the healthy transport must not change"
    );
    assert!(s.incoming_works());
}
