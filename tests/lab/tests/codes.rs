//! One real-fault test per finding code that had none: each breaks the real lab (Dovecot,
//! Postfix, Unbound, NSD, the KDC, nftables in namespaces) the way the code's documentation in
//! `plugins/diagnostics/src/codes.rs` describes, runs the real `mailmend check --json` (or
//! `fix --json` where the repair matters), and asserts that exactly that code, and no other, is
//! reported for the broken endpoint, and what is proposed: a change only where the code's
//! documentation names one, never a silent change for what needs a person.
//!
//! Codes tested by other files: settings.*, firewall.blocked_locally,
//! kerberos.ticket_expiring, dns.nxdomain, dns.stale_cache, tls.certificate_expired,
//! tls.certificate_self_signed and tls.name_mismatch (scenarios.rs), dns.resolver_unreachable
//! (resolver.rs), autodiscover.not_found (exchange.rs).

mod common;

use common::*;
use mailmend_lab::{CertKind, OutputExt, ALICE};
use std::fs;
use std::time::Duration;

// ---- reading mailmend's output ----

/// Every finding of a `check --json` run, over all accounts.
fn findings(check: &Value) -> Vec<&Value> {
    check["accounts"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["findings"].as_array().into_iter().flatten())
        .collect()
}

/// (code, role) of every finding of a check; the role is `-` for account-wide findings.
fn check_code_roles(check: &Value) -> Vec<(String, String)> {
    code_roles(findings(check))
}

/// Runs `check` and asserts that exactly `expected` is reported, each finding proposing no
/// change.
fn assert_reported_only(s: &Scenario, expected: &[(&str, &str)]) {
    let (status, check, text) = check(s);
    assert_exactly(&check, status, &text, expected);
    for f in findings(&check) {
        assert_changes_nothing(f, &text);
    }
}

/// Runs `mailmend check --json`.
fn check(s: &Scenario) -> (Option<i32>, Value, String) {
    s.mailmend(&["check", "--json"])
}

/// Asserts that the findings are exactly `expected` ((code, role or `-`), in any order), that
/// no configuration problem was reported, and that the exit status says "findings"; returns
/// the finding with the first expected code.
fn assert_exactly<'a>(
    check: &'a Value,
    status: Option<i32>,
    text: &str,
    expected: &[(&str, &str)],
) -> &'a Value {
    let mut want: Vec<(String, String)> = expected
        .iter()
        .map(|(c, r)| (c.to_string(), r.to_string()))
        .collect();
    want.sort();
    assert_eq!(
        check_code_roles(check),
        want,
        "wrong findings (code, role)\n{text}"
    );
    assert!(
        check["problems"].as_array().is_none_or(|p| p.is_empty()),
        "configuration problems reported\n{text}"
    );
    assert_eq!(status, Some(1), "a finding must give exit status 1\n{text}");
    findings(check)
        .into_iter()
        .find(|f| f["code"] == expected[0].0)
        .expect("the expected finding is there")
}

/// The kinds of the actions a finding proposes.
fn proposal_kinds(finding: &Value) -> Vec<String> {
    finding["proposed"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["kind"].as_str().map(str::to_string))
        .collect()
}

/// What only a person can fix: the user is told (one `notify_user` about this very code) and
/// nothing is changed.
fn assert_person_is_told(finding: &Value, text: &str) {
    let code = finding["code"].as_str().unwrap_or_default();
    assert_eq!(
        proposal_kinds(finding),
        vec!["notify_user".to_string()],
        "{code}: only a notification may be proposed\n{text}"
    );
    let action = &finding["proposed"][0];
    assert_eq!(action["problem"], code, "{text}");
    assert!(
        action["message"]
            .as_str()
            .is_some_and(|m| !m.trim().is_empty()),
        "{code}: the notification says nothing\n{text}"
    );
}

/// A finding that changes nothing on this computer: no settings, DNS, firewall or ticket
/// action (a notification is allowed).
fn assert_changes_nothing(finding: &Value, text: &str) {
    let code = finding["code"].as_str().unwrap_or_default();
    let changes: Vec<String> = proposal_kinds(finding)
        .into_iter()
        .filter(|k| k != "notify_user")
        .collect();
    assert!(
        changes.is_empty(),
        "{code}: nothing may be changed for this, proposed {changes:?}\n{text}"
    );
}

/// The evidence of a finding as one string, for "the evidence says why" checks.
fn evidence_text(finding: &Value) -> String {
    finding["evidence"].to_string()
}

/// The lab works before it is broken: the test's fault is what makes the code appear.
fn assert_healthy(s: &Scenario) {
    let (status, check, text) = check(s);
    assert_eq!(
        check_code_roles(&check),
        vec![],
        "the lab must start healthy\n{text}"
    );
    assert_eq!(status, Some(0), "{text}");
}

// ---- setting faults up ----

/// Replaces `from` (which must be there) by `to` in the Thunderbird prefs.js.
fn edit_prefs(s: &Scenario, from: &str, to: &str) {
    let prefs = fs::read_to_string(&s.prefs).unwrap();
    assert!(prefs.contains(from), "{from:?} not in prefs.js");
    fs::write(&s.prefs, prefs.replace(from, to)).unwrap();
}

/// Sets the incoming server's Thunderbird `authMethod` (3 normal password, 4 encrypted
/// password, 5 Kerberos).
fn set_incoming_auth(s: &Scenario, method: u8) {
    edit_prefs(
        s,
        "mail.server.server1.authMethod\", 3",
        &format!("mail.server.server1.authMethod\", {method}"),
    );
}

/// A policy with the probe time limits given, trusting the lab CA or not.
fn write_policy(s: &Scenario, trust_lab_ca: bool, connect_timeout_ms: u32) {
    let tls = if trust_lab_ca {
        format!(
            "[tls]\nextra_ca_files = [\"{}\"]\n",
            s.lab.ca_pem_path().display()
        )
    } else {
        String::new()
    };
    fs::write(
        &s.policy,
        format!("{tls}[probes]\nconnect_timeout_ms = {connect_timeout_ms}\nio_timeout_ms = 3000\n"),
    )
    .unwrap();
}

/// A Kerberos (GSSAPI) IMAP account against a server that offers GSSAPI, so that only the
/// ticket can be wrong.
fn kerberos_scenario() -> Scenario {
    let s = Scenario::new(&HEALTHY);
    s.lab.enable_gssapi().unwrap();
    set_incoming_auth(&s, 5);
    s
}

/// The ticket cache mailmend reads for the home's owner (root): the lab's krb5.conf keeps
/// default caches in the lab directory.
fn root_ccache(s: &Scenario) -> std::path::PathBuf {
    s.lab.dir().join("krb5cc/krb5cc_0")
}

// ---- DNS ----

#[test]
fn a_mail_host_name_with_only_a_txt_record_is_dns_no_records() {
    let s = Scenario::new(&HEALTHY);
    assert_healthy(&s);
    // The name stays in the zone (a TXT record), but its address record is gone.
    s.lab.set_records("imap", "A", &[]).unwrap();
    s.lab
        .set_records("imap", "TXT", &["\"retired mail host\""])
        .unwrap();
    assert!(s.lab.dig("imap.example.com", "A").unwrap().is_empty());

    let (status, check, text) = check(&s);
    let f = assert_exactly(&check, status, &text, &[("dns.no_records", "incoming")]);
    assert_changes_nothing(f, &text);
    assert!(
        f["summary"].as_str().unwrap().contains("imap.example.com"),
        "{text}"
    );
}

#[test]
fn a_lame_delegation_that_servfails_is_dns_failed() {
    // mail.broken.example.com lives in a subzone delegated to a name server that refuses to
    // answer for it (the lab's recursive resolver, which refuses non-recursive queries): a
    // lame delegation, for which the resolver answers SERVFAIL.
    let s = Scenario::new(&Tb {
        imap_host: "mail.broken.example.com",
        ..HEALTHY
    });
    s.lab
        .set_records("broken.example.com", "NS", &["ns.broken.example.com."])
        .unwrap();
    let lame = s.lab.resolver_ip().to_string();
    s.lab
        .set_records("ns.broken.example.com", "A", &[&lame])
        .unwrap();
    let dig = s.lab.dig_full("mail.broken.example.com", "A").unwrap();
    assert!(
        dig.stdout_text().contains("status: SERVFAIL"),
        "the fault must be a SERVFAIL: {}",
        dig.stdout_text()
    );

    let (status, check, text) = check(&s);
    let f = assert_exactly(&check, status, &text, &[("dns.failed", "incoming")]);
    assert_changes_nothing(f, &text);
    assert!(
        evidence_text(f).contains("Server Failure"),
        "the evidence must name the SERVFAIL\n{text}"
    );
}

// ---- Kerberos ----

#[test]
fn a_kerberos_account_without_a_ticket_is_kerberos_no_ticket() {
    let s = kerberos_scenario();
    assert!(!root_ccache(&s).exists());

    let (status, check, text) = check(&s);
    let f = assert_exactly(&check, status, &text, &[("kerberos.no_ticket", "-")]);
    assert_person_is_told(f, &text);

    // With a ticket the same account is healthy: the server offers GSSAPI, so the missing
    // ticket was the only fault.
    s.lab
        .kinit(
            &ALICE,
            Duration::from_secs(3600),
            Duration::from_secs(7200),
            0,
        )
        .unwrap();
    assert_healthy(&s);
}

#[test]
fn an_expired_kerberos_ticket_is_kerberos_ticket_expired() {
    let s = kerberos_scenario();
    let ccache = s
        .lab
        .kinit(&ALICE, Duration::from_secs(2), Duration::from_secs(600), 0)
        .unwrap();
    assert_eq!(ccache, root_ccache(&s));
    // Wait the two-second ticket out.
    std::thread::sleep(Duration::from_secs(3));

    let (status, check, text) = check(&s);
    let f = assert_exactly(&check, status, &text, &[("kerberos.ticket_expired", "-")]);
    // An expired ticket cannot be renewed: the user must log in again.
    assert_person_is_told(f, &text);
    assert!(evidence_text(f).contains("krbtgt/"), "{text}");
}

#[test]
fn a_corrupt_credential_cache_is_kerberos_cache_unreadable() {
    let s = kerberos_scenario();
    let ccache = s
        .lab
        .kinit(
            &ALICE,
            Duration::from_secs(3600),
            Duration::from_secs(7200),
            0,
        )
        .unwrap();
    // A cache cut short (a full disk, a crash while kinit wrote it).
    let bytes = fs::read(&ccache).unwrap();
    fs::write(&ccache, &bytes[..bytes.len() / 3]).unwrap();

    let (status, check, text) = check(&s);
    let f = assert_exactly(&check, status, &text, &[("kerberos.cache_unreadable", "-")]);
    // Nothing is concluded about the tickets, so nothing is proposed.
    assert_eq!(proposal_kinds(f), Vec::<String>::new(), "{text}");
    assert_eq!(f["severity"], "info", "{text}");
}

// ---- TLS ----

#[test]
fn a_certificate_from_a_ca_this_computer_does_not_trust_is_certificate_untrusted() {
    let s = Scenario::new(&HEALTHY);
    assert_healthy(&s);
    // The company CA is not distributed to this computer: the policy names no extra CA.
    write_policy(&s, false, 2000);

    let (status, check, text) = check(&s);
    let f = assert_exactly(
        &check,
        status,
        &text,
        &[
            ("tls.certificate_untrusted", "incoming"),
            ("tls.certificate_untrusted", "outgoing"),
        ],
    );
    for f in findings(&check) {
        assert_person_is_told(f, &text);
    }
    assert!(
        evidence_text(f).contains("mailmend lab"),
        "the issuer is named\n{text}"
    );
}

#[test]
fn a_certificate_valid_only_in_the_future_is_certificate_not_yet_valid() {
    let s = Scenario::new(&HEALTHY);
    assert_healthy(&s);
    s.lab.switch_cert(CertKind::NotYetValid).unwrap();

    let (status, check, text) = check(&s);
    assert_exactly(
        &check,
        status,
        &text,
        &[
            ("tls.certificate_not_yet_valid", "incoming"),
            ("tls.certificate_not_yet_valid", "outgoing"),
        ],
    );
    for f in findings(&check) {
        assert_person_is_told(f, &text);
    }
}

#[test]
fn a_server_speaking_only_tls_1_1_is_tls_protocol_mismatch() {
    let s = Scenario::new(&HEALTHY);
    assert_healthy(&s);
    // A very old SMTP server: TLS 1.0 and 1.1 only (with the old ciphers OpenSSL allows only
    // at security level 0), where rustls speaks TLS 1.2 and 1.3. Postfix, because it answers a
    // failed handshake with a TLS alert; Dovecot closes the connection without one, which
    // leaves a client nothing to tell a mismatch from any other failure.
    s.lab
        .reconfigure_postfix(
            "smtpd_tls_protocols = >=TLSv1, <=TLSv1.1\n\
             smtpd_tls_mandatory_protocols = >=TLSv1, <=TLSv1.1\n\
             tls_medium_cipherlist = DEFAULT:@SECLEVEL=0\n",
        )
        .unwrap();
    // An old client still gets through: the server works, only not with this computer.
    let connect = format!("{}:465", s.lab.mail_ip());
    let old = s
        .lab
        .client_exec(
            "timeout",
            [
                "5",
                "openssl",
                "s_client",
                "-tls1_1",
                "-cipher",
                "DEFAULT:@SECLEVEL=0",
                "-connect",
                connect.as_str(),
            ],
        )
        .unwrap();
    assert!(
        old.stdout_text().contains("Protocol  : TLSv1.1"),
        "a TLS 1.1 client must get through: {}",
        old.describe()
    );

    let (status, check, text) = check(&s);
    let f = assert_exactly(
        &check,
        status,
        &text,
        &[("tls.protocol_mismatch", "outgoing")],
    );
    assert_person_is_told(f, &text);
}

#[test]
fn a_certificate_for_client_authentication_only_is_tls_handshake_failed() {
    let s = Scenario::new(&HEALTHY);
    assert_healthy(&s);
    // Right CA, names and dates, but issued for the wrong purpose (clientAuth, no serverAuth).
    s.lab.switch_cert(CertKind::ClientAuthOnly).unwrap();

    let (status, check, text) = check(&s);
    let f = assert_exactly(
        &check,
        status,
        &text,
        &[
            ("tls.handshake_failed", "incoming"),
            ("tls.handshake_failed", "outgoing"),
        ],
    );
    for f in findings(&check) {
        assert_person_is_told(f, &text);
    }
    assert!(
        evidence_text(f).contains("Purpose"),
        "the evidence must say why the handshake failed\n{text}"
    );
}

// ---- network ----

#[test]
fn a_mail_host_that_drops_everything_is_network_unreachable_host() {
    let s = Scenario::new(&HEALTHY);
    // A web host answers no mail port (in the lab Postfix listens on every address).
    s.lab.web_refuses_mail().unwrap();
    assert_healthy(&s);
    // A firewall in front of the mail host silently drops every packet to it.
    s.lab
        .nft_server(&format!("ip daddr {} drop", s.lab.mail_ip()))
        .unwrap();
    assert!(
        s.lab.client_ruleset_is_empty(),
        "the drop must not be local"
    );

    let (status, check, text) = check(&s);
    let f = assert_exactly(
        &check,
        status,
        &text,
        &[
            ("network.unreachable_host", "incoming"),
            ("network.unreachable_host", "outgoing"),
        ],
    );
    for f in findings(&check) {
        assert_changes_nothing(f, &text);
    }
    assert!(evidence_text(f).contains("993"), "{text}");
}

#[test]
fn a_firewall_dropping_993_before_a_server_without_143_is_network_blocked_upstream() {
    let s = Scenario::new(&HEALTHY);
    assert_healthy(&s);
    // The server offers IMAP on 993 only (143 is closed: refused), and a firewall on the way
    // silently drops 993. The host answers, the configured port does not.
    s.lab
        .reconfigure_dovecot(
            "service imap-login {\n  inet_listener imap {\n    port = 0\n  }\n}\n",
            &[993, 110, 995],
        )
        .unwrap();
    assert_healthy(&s);
    s.lab
        .nft_server(&format!("ip daddr {} tcp dport 993 drop", s.lab.mail_ip()))
        .unwrap();
    assert!(
        s.lab.client_ruleset_is_empty(),
        "the drop must not be local"
    );

    assert_reported_only(&s, &[("network.blocked_upstream", "incoming")]);
}

#[test]
fn imap_ports_dropped_while_smtp_on_the_same_host_answers_is_network_blocked_upstream() {
    let s = Scenario::new(&HEALTHY);
    assert_healthy(&s);
    // A firewall on the way drops both IMAP ports of the mail host; its SMTP ports (the
    // account's outgoing server, the same address) still answer, so the host is up and not
    // every mail port times out: `network.unreachable_host` would send IT looking for a dead
    // host.
    s.lab
        .nft_server(&format!(
            "ip daddr {} tcp dport {{ 143, 993 }} drop",
            s.lab.mail_ip()
        ))
        .unwrap();

    assert_reported_only(&s, &[("network.blocked_upstream", "incoming")]);
}

#[test]
fn a_mail_host_not_running_imap_is_network_service_down() {
    let s = Scenario::new(&HEALTHY);
    assert_healthy(&s);
    // Dovecot runs POP3 and LMTP only: every IMAP port of every mail address refuses.
    s.lab
        .reconfigure_dovecot("protocols = pop3 lmtp\n", &[110, 995])
        .unwrap();

    assert_reported_only(&s, &[("network.service_down", "incoming")]);
}

#[test]
fn a_mail_host_gone_from_the_network_is_network_no_route() {
    let s = Scenario::new(&HEALTHY);
    s.lab.web_refuses_mail().unwrap();
    assert_healthy(&s);
    // The policy's default connect timeout (5 s): the kernel reports "no route to host" after
    // about 3 s of unanswered ARP, which a shorter timeout would cut off as a plain timeout.
    write_policy(&s, true, 5000);
    s.lab.take_down_address(s.lab.mail_ip()).unwrap();

    assert_reported_only(
        &s,
        &[
            ("network.no_route", "incoming"),
            ("network.no_route", "outgoing"),
        ],
    );
}

#[test]
fn an_icmp_protocol_unreachable_answer_is_network_connect_failed() {
    let s = Scenario::new(&HEALTHY);
    assert_healthy(&s);
    // A firewall in front of the mail host answers IMAP connections with ICMP "protocol
    // unreachable": the connection fails, neither refused, nor timed out, nor without route.
    s.lab
        .nft_server(&format!(
            "ip daddr {} tcp dport {{ 143, 993 }} reject with icmp type prot-unreachable",
            s.lab.mail_ip()
        ))
        .unwrap();

    assert_reported_only(&s, &[("network.connect_failed", "incoming")]);
}

// ---- security, authentication, protocol ----

#[test]
fn a_cleartext_password_on_plain_imap_is_moved_to_implicit_tls() {
    let tb = Tb {
        imap_port: 143,
        imap_socket: 0,
        ..HEALTHY
    };
    let s = Scenario::new(&tb);
    let (status, check, text) = check(&s);
    let f = assert_exactly(
        &check,
        status,
        &text,
        &[("security.plaintext_password", "incoming")],
    );
    // The server offers both STARTTLS on 143 and TLS on 993: implicit TLS is proposed.
    assert_eq!(
        proposal_kinds(f),
        vec!["set_endpoint".to_string()],
        "{text}"
    );
    let change = &f["proposed"][0]["change"];
    assert_eq!(change["port"], 993, "{text}");
    assert_eq!(change["security"], "tls", "{text}");
    assert!(change.get("host").is_none(), "{text}");

    assert_fixed(&s, "security.plaintext_password");
    assert!(s.incoming_works(), "IMAP login fails after the fix");
}

#[test]
fn a_server_without_tls_is_security_tls_unavailable_and_never_plaintext() {
    let tb = Tb {
        imap_port: 143,
        imap_socket: 2,
        ..HEALTHY
    };
    let s = Scenario::new(&tb);
    let before = prefs_js(&tb);
    assert_healthy(&s);
    // Dovecot without TLS: no STARTTLS on 143, no 993 or 995 at all.
    s.lab
        .reconfigure_dovecot(
            "ssl = no\n\
             service imap-login {\n  inet_listener imaps {\n    port = 0\n  }\n}\n\
             service pop3-login {\n  inet_listener pop3s {\n    port = 0\n  }\n}\n",
            &[143, 110],
        )
        .unwrap();

    let (status, check, text) = check(&s);
    let f = assert_exactly(
        &check,
        status,
        &text,
        &[("security.tls_unavailable", "incoming")],
    );
    assert_person_is_told(f, &text);
    // A fix run tells the user and leaves the account encrypted.
    let (_, fix, text) = s.fix();
    assert!(
        fix["reports"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["action"]["kind"] == "notify_user"),
        "{text}"
    );
    assert_unchanged(&s, &before);
}

#[test]
fn an_encrypted_password_the_server_does_not_offer_is_auth_method_not_offered() {
    let s = Scenario::new(&HEALTHY);
    assert_healthy(&s);
    // Thunderbird's "encrypted password" (CRAM-MD5 and the like); Dovecot offers PLAIN and
    // LOGIN only, and a cleartext password would be weaker, so it is not proposed.
    set_incoming_auth(&s, 4);

    let (status, check, text) = check(&s);
    let f = assert_exactly(
        &check,
        status,
        &text,
        &[("auth.method_not_offered", "incoming")],
    );
    assert_person_is_told(f, &text);
    assert!(f["summary"].as_str().unwrap().contains("PLAIN"), "{text}");
}

#[test]
fn an_imap_server_set_to_a_web_server_is_protocol_unexpected_reply() {
    // The IMAP server is set to the web host's HTTPS port (a webmail address copied into the
    // account). The account's mail domain is hosted elsewhere and publishes no settings, so
    // no other server can be offered (with example.com the domain's own IMAP server would be
    // found and proposed instead, as settings.wrong_host).
    let s = Scenario::new(&Tb {
        imap_host: "autoconfig.example.com",
        imap_port: 443,
        imap_socket: 3,
        ..HEALTHY
    });
    edit_prefs(
        &s,
        "mail.identity.id1.useremail\", \"alice@example.com\"",
        "mail.identity.id1.useremail\", \"alice@example.net\"",
    );

    let (status, check, text) = check(&s);
    let f = assert_exactly(
        &check,
        status,
        &text,
        &[("protocol.unexpected_reply", "incoming")],
    );
    assert_person_is_told(f, &text);
}

/// Whether the client namespace's firewall has no blocking rule (the faults here are
/// server-side: a local rule would be `firewall.blocked_locally`).
trait ClientRuleset {
    fn client_ruleset_is_empty(&self) -> bool;
}

impl ClientRuleset for mailmend_lab::Lab {
    fn client_ruleset_is_empty(&self) -> bool {
        let out = self.client_exec("nft", ["list", "ruleset"]).unwrap();
        let text = out.stdout_text();
        !text.contains("drop") && !text.contains("reject")
    }
}
