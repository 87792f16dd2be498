//! End-to-end scenarios for a configured DNS server that is down: mailmend names the dead
//! server, blames DNS and not the account's settings, and changes nothing in the mail
//! configuration, because the fix (the computer's DNS settings, a VPN) is not the mail client's.

mod common;

use common::*;
use std::fs;

/// The remaining findings of a `fix --json` run with this code.
fn remaining<'a>(fix: &'a Value, code: &str) -> Vec<&'a Value> {
    fix["remaining"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|d| d["findings"].as_array().into_iter().flatten())
        .filter(|f| f["code"] == code)
        .collect()
}

/// Every finding code of a `fix --json` run, for failure messages and wrong-layer checks.
fn all_codes(fix: &Value) -> Vec<String> {
    fix["remaining"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|d| d["findings"].as_array().into_iter().flatten())
        .filter_map(|f| f["code"].as_str().map(str::to_string))
        .collect()
}

fn finding_records<'a>(audit: &'a [Value], code: &str) -> Vec<&'a Value> {
    audit
        .iter()
        .filter(|r| r["kind"] == "finding" && r["finding_code"] == code)
        .collect()
}

#[test]
fn a_dead_first_dns_server_is_reported_and_mail_keeps_working_through_the_second() {
    let s = Scenario::new(&HEALTHY);
    let before = prefs_js(&HEALTHY);
    let dead = s.lab.unused_ip();
    s.lab
        .set_client_nameservers(&[dead, s.lab.resolver_ip()])
        .unwrap();

    let (status, fix, text) = s.fix();
    let found = remaining(&fix, "dns.resolver_unreachable");
    assert_eq!(
        found.len(),
        1,
        "expected one dns.resolver_unreachable\n{text}"
    );
    let f = found[0];
    assert_eq!(f["severity"], "warning", "{text}");
    let summary = f["summary"].as_str().unwrap();
    assert!(
        summary.contains(&dead.to_string()) && summary.contains(&s.lab.resolver_ip().to_string()),
        "the summary must name the dead and the live server: {summary}"
    );
    // The mail servers answer: nothing about the account's settings or its host is reported.
    let codes = all_codes(&fix);
    assert!(
        codes
            .iter()
            .all(|c| c == "dns.resolver_unreachable" || c.starts_with("kerberos.")),
        "only the dead resolver may be reported, got {codes:?}\n{text}"
    );
    assert_eq!(status, Some(1), "a warning is a finding: {text}");
    assert!(
        fix["reports"].as_array().is_none_or(|r| r.is_empty()),
        "nothing may be changed\n{text}"
    );
    assert_unchanged(&s, &before);

    // The admin reads the dead server's address in the audit log.
    let audit = s.audit();
    let records = finding_records(&audit, "dns.resolver_unreachable");
    assert_eq!(records.len(), 1, "{audit:#?}");
    let evidence = records[0]["evidence"].to_string();
    assert!(evidence.contains(&dead.to_string()), "{evidence}");

    // Real clients still read and send, through the second server.
    assert!(
        s.incoming_works(),
        "IMAP must work through the live DNS server"
    );
    assert!(
        s.outgoing_works(),
        "SMTP must work through the live DNS server"
    );

    // A second run reports the same problem without a second audit record.
    let (_, again, text2) = s.fix();
    assert_eq!(
        remaining(&again, "dns.resolver_unreachable").len(),
        1,
        "{text2}"
    );
    // Each `mailmend fix` is a new process; it audits a standing problem again, once per run.
    let audit = s.audit();
    assert_eq!(
        finding_records(&audit, "dns.resolver_unreachable").len(),
        2,
        "{audit:#?}"
    );
}

#[test]
fn when_no_dns_server_answers_the_settings_are_not_blamed_and_nothing_is_rewritten() {
    let s = Scenario::new(&HEALTHY);
    let before = prefs_js(&HEALTHY);
    let dead = s.lab.unused_ip();
    s.lab.set_client_nameservers(&[dead]).unwrap();

    let (status, fix, text) = s.fix();
    assert_eq!(status, Some(1), "{text}");
    let found = remaining(&fix, "dns.resolver_unreachable");
    assert!(
        !found.is_empty(),
        "expected dns.resolver_unreachable\n{text}"
    );
    assert!(
        found.iter().all(|f| f["severity"] == "error"),
        "no server answers: an error\n{text}"
    );
    assert!(
        found
            .iter()
            .any(|f| f["summary"].as_str().unwrap().contains(&dead.to_string())),
        "the dead server must be named\n{text}"
    );
    // Never the wrong layer: a name that cannot be looked up is not a typo, a moved server or
    // a wrong port, and no host or port is proposed.
    let codes = all_codes(&fix);
    for wrong in [
        "dns.nxdomain",
        "settings.wrong_host",
        "settings.wrong_port",
        "settings.wrong_port_security",
        "network.unreachable_host",
    ] {
        assert!(
            !codes.iter().any(|c| c == wrong),
            "{wrong} reported\n{text}"
        );
    }
    assert!(
        fix["reports"].as_array().is_none_or(|r| r
            .iter()
            .all(|r| r["finding_code"] == "dns.resolver_unreachable")),
        "no fix other than telling the user\n{text}"
    );
    assert_unchanged(&s, &before);
    let audit = s.audit();
    assert!(
        audit
            .iter()
            .any(|r| r["finding_code"] == "dns.resolver_unreachable"),
        "{audit:#?}"
    );

    // The DNS server comes back: the same configuration is healthy again, untouched.
    s.lab
        .set_client_nameservers(&[s.lab.resolver_ip()])
        .unwrap();
    let (status, _, text) = s.mailmend(&["check", "--json"]);
    assert_eq!(status, Some(0), "{text}");
    assert_eq!(fs::read_to_string(&s.prefs).unwrap(), before);
    assert!(s.incoming_works());
}
