//! End-to-end scenarios of a server that moved to another domain, where only the email
//! domain's published settings (RFC 6186/8314 SRV records, autoconfig over HTTPS) say where:
//! the real `mailmend fix` follows them, the audit record names the record, and real clients
//! (curl's IMAP and SMTP) work afterwards. Hosts named only over plain HTTP or by another
//! domain's records are never taken, and an Autodiscover that wants a login is reported as
//! such.
//!
//! The move, in every scenario: the old names (imap, smtp, pop, mail) now point at an address
//! where nothing serves mail (the client's own, which refuses every port at once), the web
//! server (example.com itself) refuses mail as a web host does, and the mailbox lives on at
//! `mail.hosting.test` (the second mail address), a name outside example.com that no standard
//! host name reaches.

mod common;

use common::*;
use mailmend_lab::{Mail, OutputExt, Tls, ALICE, HOSTING_DOMAIN};

const MOVED: &str = "mail.hosting.test";

/// The account's old servers stop serving mail: their names now lead to an address that
/// refuses every mail port.
fn retire_old_servers(s: &Scenario) {
    let nowhere = s.lab.client_ip().to_string();
    for name in ["imap", "smtp", "pop", "mail"] {
        s.lab.set_records(name, "A", &[&nowhere]).unwrap();
    }
    s.lab.web_refuses_mail().unwrap();
}

/// Autoconfig naming `host` with implicit TLS for IMAP and SMTP.
fn autoconfig_naming(host: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="example.com">
    <domain>example.com</domain>
    <incomingServer type="imap">
      <hostname>{host}</hostname>
      <port>993</port>
      <socketType>SSL</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>{host}</hostname>
      <port>465</port>
      <socketType>SSL</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </outgoingServer>
  </emailProvider>
</clientConfig>
"#
    )
}

/// The applied host changes of a fix run, as (role, host).
fn applied_hosts(fix: &Value) -> Vec<(String, String)> {
    fix["reports"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter(|r| r["outcome"] == "applied")
                .filter_map(|r| {
                    Some((
                        r["action"]["role"].as_str()?.to_string(),
                        r["action"]["change"]["host"].as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The codes of the findings left after a fix run.
fn remaining_codes(fix: &Value) -> Vec<String> {
    fix["remaining"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["findings"].as_array().into_iter().flatten())
        .filter_map(|f| f["code"].as_str().map(str::to_string))
        .collect()
}

/// Asserts that `fix` moved both endpoints to `MOVED`, that the audit log has intent and
/// applied outcome with the evidence line of `probe` naming one of `records`, and that a
/// second run has nothing left to do.
fn assert_moved(
    s: &Scenario,
    fix: &Value,
    status: Option<i32>,
    text: &str,
    probe: &str,
    records: &[&str],
) {
    let mut moved = applied_hosts(fix);
    moved.sort();
    assert_eq!(
        moved,
        vec![
            ("incoming".to_string(), MOVED.to_string()),
            ("outgoing".to_string(), MOVED.to_string())
        ],
        "{text}"
    );
    assert_eq!(
        status,
        Some(0),
        "the account should be healthy after the fix\n{text}"
    );
    let audit = s.audit();
    let outcomes = outcome_records(&audit, "settings.wrong_host");
    let applied: Vec<&&Value> = outcomes
        .iter()
        .filter(|r| r["outcome"] == "applied")
        .collect();
    assert_eq!(applied.len(), 2, "{audit:#?}");
    for r in &applied {
        let fix_id = r["fix_id"].as_str().unwrap();
        assert!(
            audit
                .iter()
                .any(|i| i["kind"] == "intent" && i["fix_id"] == fix_id),
            "no intent record for {fix_id}"
        );
        let why = r["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["probe"] == probe)
            .unwrap_or_else(|| panic!("no {probe} evidence in {r:#}"));
        let target = why["target"].as_str().unwrap();
        assert!(records.contains(&target), "{why}");
        assert!(
            why["result"]
                .as_str()
                .unwrap()
                .starts_with(&format!("names {MOVED}:")),
            "{why}"
        );
    }
    let (again, fix2, text2) = s.fix();
    assert_eq!(again, Some(0), "second run:\n{text2}");
    assert!(
        fix2["reports"].as_array().is_none_or(|r| r.is_empty()),
        "second run changed something\n{text2}"
    );
}

/// A real IMAP login and a real SMTP submission with the account's settings as mailmend now
/// reads them.
fn assert_mail_works(s: &Scenario) {
    let account = s.account();
    let (inc, out) = (&account["incoming"], &account["outgoing"]);
    assert_eq!(inc["host"], MOVED, "{account}");
    assert_eq!(out["host"], MOVED, "{account}");
    let login = s
        .lab
        .imap_login(
            MOVED,
            ALICE.login,
            ALICE.password,
            port_of(inc),
            tls_of(&inc["security"]),
        )
        .unwrap();
    assert!(
        login.status.success(),
        "IMAP login after the fix: {}",
        login.describe()
    );
    let subject = "moved to the provider";
    let mail = Mail {
        from: ALICE.login,
        to: ALICE.login,
        subject,
        body: "sent through the server the domain's records name",
    };
    let sent = s
        .lab
        .smtp_send(
            MOVED,
            port_of(out),
            tls_of(&out["security"]),
            Some((ALICE.login, ALICE.password)),
            &mail,
        )
        .unwrap();
    assert!(
        sent.status.success(),
        "SMTP after the fix: {}",
        sent.describe()
    );
    // Read back from the new server over IMAPS.
    let userpass = format!("{}:{}", ALICE.login, ALICE.password);
    let search = format!("UID SEARCH SUBJECT \"{subject}\"");
    let url = format!("imaps://{MOVED}:993/INBOX");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let out = s
            .lab
            .curl([
                "--user",
                userpass.as_str(),
                url.as_str(),
                "-X",
                search.as_str(),
            ])
            .unwrap();
        assert!(out.status.success(), "IMAP search: {}", out.describe());
        let found = out
            .stdout_text()
            .lines()
            .filter_map(|l| l.trim().strip_prefix("* SEARCH"))
            .any(|rest| !rest.trim().is_empty());
        if found {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the message sent through {MOVED} never arrived"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_server_moved_to_another_domain_that_only_the_srv_records_name_is_followed() {
    let s = Scenario::new(&HEALTHY);
    let before = prefs_js(&HEALTHY);
    retire_old_servers(&s);
    s.lab
        .set_records("_imaps._tcp", "SRV", &["0 1 993 mail.hosting.test."])
        .unwrap();
    s.lab
        .set_records("_submissions._tcp", "SRV", &["0 1 465 mail.hosting.test."])
        .unwrap();
    assert!(!s
        .lab
        .imap_login_works(ALICE.login, ALICE.password, 993, Tls::Implicit)
        .unwrap());

    let (status, fix, text) = s.fix();
    assert_moved(
        &s,
        &fix,
        status,
        &text,
        "discovery.srv",
        &["_imaps._tcp.example.com", "_submissions._tcp.example.com"],
    );
    // Exactly the two host names changed.
    let changed = changed_lines(&before, &s.prefs);
    assert_eq!(
        changed,
        vec![
            (
                "user_pref(\"mail.server.server1.hostname\", \"imap.example.com\");".to_string(),
                "user_pref(\"mail.server.server1.hostname\", \"mail.hosting.test\");".to_string()
            ),
            (
                "user_pref(\"mail.smtpserver.smtp1.hostname\", \"smtp.example.com\");".to_string(),
                "user_pref(\"mail.smtpserver.smtp1.hostname\", \"mail.hosting.test\");".to_string()
            ),
        ]
    );
    assert_mail_works(&s);
}

#[test]
fn a_server_moved_to_another_domain_that_only_autoconfig_names_is_followed() {
    let s = Scenario::new(&HEALTHY);
    retire_old_servers(&s);
    // SRV and Autodiscover still name the retired hosts; only autoconfig knows the move.
    s.lab.write_autoconfig(&autoconfig_naming(MOVED)).unwrap();

    let (status, fix, text) = s.fix();
    assert_moved(
        &s,
        &fix,
        status,
        &text,
        "discovery.autoconfig",
        &["https://autoconfig.example.com/mail/config-v1.1.xml?emailaddress=alice%40example.com"],
    );
    assert_mail_works(&s);
    // The documents were fetched over HTTPS only.
    let requests = s.lab.web_requests();
    assert!(
        requests.iter().any(|r| r.scheme == "https"),
        "{requests:#?}"
    );
    assert!(
        requests.iter().all(|r| r.scheme == "https"),
        "{requests:#?}"
    );
}

#[test]
fn a_host_named_only_over_plain_http_or_by_another_domains_records_is_never_taken() {
    let s = Scenario::new(&HEALTHY);
    let before = prefs_js(&HEALTHY);
    retire_old_servers(&s);
    // The move is announced over plain HTTP only, which anyone on the path could have
    // written; and the provider's own zone names its server, which says nothing about
    // example.com. (hosting.test's SRV records are in the lab zone from the start.)
    s.lab
        .write_autoconfig_http_only(&autoconfig_naming(MOVED))
        .unwrap();
    assert_eq!(
        s.lab
            .dig(&format!("_imaps._tcp.{HOSTING_DOMAIN}"), "SRV")
            .unwrap(),
        vec!["0 1 993 mail.hosting.test.".to_string()]
    );

    let (status, fix, text) = s.fix();
    assert_eq!(status, Some(1), "the account is still broken\n{text}");
    assert!(applied_hosts(&fix).is_empty(), "{text}");
    for r in fix["reports"].as_array().into_iter().flatten() {
        // Anything that names the provider's host may only have been refused.
        if r["action"]["change"]["host"] == MOVED {
            assert_eq!(r["outcome"], "denied", "{r}\n{text}");
        }
    }
    assert!(!text.contains("names mail.hosting.test"), "{text}");
    assert_unchanged(&s, &before);
    let codes = remaining_codes(&fix);
    assert!(
        codes.iter().any(|c| c == "network.service_down"),
        "{codes:?}\n{text}"
    );
    // mailmend never asked for the plain HTTP document.
    let requests = s.lab.web_requests();
    assert!(
        requests.iter().any(|r| r.scheme == "https"),
        "{requests:#?}"
    );
    assert!(
        requests.iter().all(|r| r.scheme == "https"),
        "plain HTTP was fetched: {requests:#?}"
    );
}

#[test]
fn an_account_configured_at_the_provider_does_not_follow_the_providers_own_records() {
    // alice@example.com is configured with an old host of the provider; the provider's zone
    // names its new server, but the account's domain, example.com, names nothing that works.
    let s = Scenario::new(&Tb {
        imap_host: "old.hosting.test",
        ..HEALTHY
    });
    let before = prefs_js(&Tb {
        imap_host: "old.hosting.test",
        ..HEALTHY
    });
    s.lab
        .set_records("old.hosting.test", "A", &[&s.lab.client_ip().to_string()])
        .unwrap();
    retire_old_servers(&s);
    let (status, fix, text) = s.fix();
    assert_eq!(status, Some(1), "{text}");
    assert!(applied_hosts(&fix).is_empty(), "{text}");
    assert_unchanged(&s, &before);
}

#[test]
fn an_autodiscover_that_wants_a_login_is_a_clear_finding_and_nothing_is_changed() {
    let s = Scenario::new(&HEALTHY);
    let before = prefs_js(&HEALTHY);
    retire_old_servers(&s);
    s.lab.remove_autoconfig().unwrap();
    for status in [401u16, 403] {
        s.lab.set_autodiscover_refusal(Some(status)).unwrap();
        let (code, fix, text) = s.fix();
        assert_eq!(code, Some(1), "{text}");
        assert!(applied_hosts(&fix).is_empty(), "{text}");
        let findings: Vec<&Value> = fix["remaining"][0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["code"] == "autodiscover.unauthorized")
            .collect();
        assert_eq!(findings.len(), 1, "one finding per account\n{text}");
        let f = findings[0];
        assert!(f["role"].is_null(), "{f}");
        let summary = f["summary"].as_str().unwrap();
        assert!(summary.contains(&format!("HTTP {status}")), "{summary}");
        assert!(
            summary.contains("/autodiscover/autodiscover.xml"),
            "{summary}"
        );
        // Both Autodiscover URLs refused, and both are in the evidence.
        let walls: Vec<&str> = f["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                e["result"]
                    .as_str()
                    .unwrap_or("")
                    .contains(&format!("HTTP {status}"))
            })
            .filter_map(|e| e["target"].as_str())
            .collect();
        assert_eq!(
            walls,
            vec![
                "https://example.com/autodiscover/autodiscover.xml",
                "https://autodiscover.example.com/autodiscover/autodiscover.xml"
            ],
            "{f}"
        );
        // The failing endpoints keep their own explanation.
        assert!(
            remaining_codes(&fix)
                .iter()
                .any(|c| c == "network.service_down"),
            "{text}"
        );
        assert_unchanged(&s, &before);
    }
    // mailmend asked Autodiscover (it never sends a password there) and was refused.
    let posts: Vec<_> = s
        .lab
        .web_requests()
        .into_iter()
        .filter(|r| r.request.starts_with("POST /autodiscover/"))
        .collect();
    assert!(!posts.is_empty());
    assert!(
        posts
            .iter()
            .all(|r| r.status == 401 || r.status == 403 || r.status == 404),
        "{posts:#?}"
    );
}
