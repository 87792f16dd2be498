//! Behaviour tests for parsing, validation, decisions and rendering; all pure.

use crate::*;
use mailmend_core::{
    Account, AccountId, Action, ActionKind, AuthMethod, ClientKind, Endpoint, EndpointChange,
    Location, Protocol, Role, Security,
};
use std::net::IpAddr;

/// Parses text that must be rejected and returns (line, column, message, hint).
fn reject(text: &str) -> (usize, usize, String, String) {
    match Policy::parse(text, "/etc/mailmend/policy.toml") {
        Ok(_) => panic!("policy unexpectedly accepted:\n{text}"),
        Err(PolicyError::Invalid {
            origin,
            line,
            column,
            message,
            hint,
        }) => {
            assert_eq!(origin, "/etc/mailmend/policy.toml");
            (line, column, message, hint)
        }
        Err(e) => panic!("unexpected error kind: {e}"),
    }
}

fn accept(text: &str) -> Policy {
    Policy::parse(text, "test.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn endpoint(protocol: Protocol, host: &str, port: u16, security: Security) -> Endpoint {
    Endpoint {
        protocol,
        host: host.into(),
        port,
        security,
        auth: AuthMethod::PasswordCleartext,
        username: Some("ann".into()),
    }
}

/// An account ann@example.com with IMAP on imap.example.com and SMTP on smtp.example.com.
fn account(client: ClientKind, email: Option<&str>, incoming_security: Security) -> Account {
    Account {
        id: AccountId("acc-1".into()),
        client,
        os_user: "ann".into(),
        email: email.map(str::to_string),
        location: Location::File {
            path: "/home/ann/.thunderbird/x/prefs.js".into(),
        },
        key: "server1".into(),
        incoming: Some(endpoint(
            Protocol::Imap,
            "imap.example.com",
            993,
            incoming_security,
        )),
        outgoing: Some(endpoint(
            Protocol::Smtp,
            "smtp.example.com",
            587,
            Security::StartTls,
        )),
    }
}

fn tb() -> Account {
    account(
        ClientKind::Thunderbird,
        Some("ann@example.com"),
        Security::Tls,
    )
}

fn set(role: Role, change: EndpointChange) -> Action {
    Action::SetEndpoint {
        account: AccountId("acc-1".into()),
        role,
        change,
    }
}

fn host(h: &str) -> Action {
    set(
        Role::Incoming,
        EndpointChange {
            host: Some(h.into()),
            ..Default::default()
        },
    )
}

fn security(s: Security) -> Action {
    set(
        Role::Incoming,
        EndpointChange {
            security: Some(s),
            ..Default::default()
        },
    )
}

fn firewall(h: &str, port: u16) -> Action {
    Action::AddFirewallException {
        account: AccountId("acc-1".into()),
        host: h.into(),
        addresses: vec!["127.0.0.1".parse::<IpAddr>().unwrap()],
        port,
    }
}

fn notify() -> Action {
    Action::NotifyUser {
        account: AccountId("acc-1".into()),
        problem: "auth.rejected".into(),
        message: "Your password was rejected.".into(),
    }
}

fn all_auto() -> Policy {
    let kinds: Vec<String> = ActionKind::ALL
        .iter()
        .map(|k| format!("{k} = \"auto\""))
        .collect();
    accept(&format!("[actions]\n{}\n", kinds.join("\n")))
}

fn ctx() -> DecisionContext {
    DecisionContext::default()
}

// ---------------------------------------------------------------- errors with positions

#[test]
fn syntax_error_names_line_and_column() {
    let (line, col, msg, hint) = reject("dry_run = false\nlog_level = = \"info\"\n");
    assert_eq!((line, col), (2, 13));
    assert!(msg.contains("invalid string"), "{msg}");
    assert!(hint.contains("TOML syntax"), "{hint}");
}

#[test]
fn unclosed_table_header_is_a_syntax_error_at_its_end() {
    let (line, col, _, _) = reject("[actions\nset_host = \"auto\"\n");
    assert_eq!((line, col), (1, 9));
}

#[test]
fn unknown_top_level_key_points_at_the_key_and_suggests_the_spelling() {
    let (line, col, msg, hint) = reject("dry_run = false\ndryrun = true\n");
    assert_eq!((line, col), (2, 1));
    assert!(msg.contains("unknown field `dryrun`"), "{msg}");
    assert!(hint.contains("did you mean `dry_run`"), "{hint}");
}

#[test]
fn unknown_top_level_table_is_rejected() {
    let (line, col, msg, _) = reject("\n[action]\nset_host = \"auto\"\n");
    assert_eq!((line, col), (2, 2));
    assert!(msg.contains("`action`"), "{msg}");
}

#[test]
fn unknown_nested_key_points_at_the_key() {
    let (line, col, msg, hint) = reject("[probes]\nconnect_timeout_ms = 100\n  conect = 3\n");
    assert_eq!((line, col), (3, 3));
    assert!(msg.contains("unknown field `conect`"), "{msg}");
    // The message lists the keys the table accepts.
    assert!(msg.contains("`connect_timeout_ms`"), "{msg}");
    assert!(hint.contains("policies/default.toml"), "{hint}");
}

#[test]
fn unknown_key_inside_a_plugin_entry_points_at_the_key() {
    let text = "[plugins]\nallowed = [\n  { name = \"x\", sha256 = \"abc\", extra = 1 },\n]\n";
    let (line, col, msg, _) = reject(text);
    assert_eq!((line, col), (3, 33));
    assert!(msg.contains("`extra`"), "{msg}");
}

#[test]
fn unknown_action_kind_is_named_with_the_known_ones() {
    let (line, col, msg, hint) = reject("[actions]\nset_host = \"auto\"\nset_prot = \"auto\"\n");
    assert_eq!((line, col), (3, 1));
    assert_eq!(
        msg,
        "unknown action kind \"set_prot\" (expected one of set_host, set_port, set_security, \
         set_auth_method, flush_dns, renew_kerberos, add_firewall_exception, notify_user)"
    );
    assert_eq!(hint, "did you mean \"set_port\"?");
}

#[test]
fn display_has_the_file_line_column_prefix() {
    let err = Policy::parse(
        "[actions]\nset_prot = \"auto\"\n",
        "/etc/mailmend/policy.toml",
    )
    .unwrap_err();
    assert!(err
        .to_string()
        .starts_with("/etc/mailmend/policy.toml:2:1: unknown action kind \"set_prot\""));
    assert_eq!(err.position(), Some((2, 1)));
    assert_eq!(err.origin(), "/etc/mailmend/policy.toml");
}

#[test]
fn bad_mode_value_points_at_the_value() {
    let (line, col, msg, _) = reject("[actions]\nset_port = \"sometimes\"\n");
    assert_eq!((line, col), (2, 12));
    assert!(
        msg.contains("unknown mode \"sometimes\" for actions.set_port"),
        "{msg}"
    );
    assert!(msg.contains("auto, recommend, deny"), "{msg}");
}

#[test]
fn mode_with_wrong_case_suggests_the_lower_case_spelling() {
    let (_, _, _, hint) = reject("[actions]\nset_port = \"Auto\"\n");
    assert_eq!(hint, "did you mean \"auto\"?");
}

#[test]
fn mode_that_is_not_a_string_is_a_type_error_at_the_value() {
    let (line, col, msg, _) = reject("[actions]\nset_port = true\n");
    assert_eq!((line, col), (2, 12));
    assert!(msg.contains("invalid type"), "{msg}");
}

#[test]
fn bad_sha256_points_at_the_hash() {
    let text = "[plugins]\nallowed = [ { name = \"example\", sha256 = \"abc123\" } ]\n";
    let (line, col, msg, hint) = reject(text);
    assert_eq!((line, col), (2, 42));
    assert!(msg.contains("must be 64 hexadecimal digits"), "{msg}");
    assert!(hint.contains("sha256sum"), "{hint}");
}

#[test]
fn sha256_with_non_hex_digits_is_rejected() {
    let bad = "g".repeat(64);
    let text = format!("[plugins]\nallowed = [ {{ name = \"example\", sha256 = \"{bad}\" }} ]\n");
    let (line, _, msg, _) = reject(&text);
    assert_eq!(line, 2);
    assert!(msg.contains("64 hexadecimal digits"), "{msg}");
}

#[test]
fn plugin_entry_without_hash_is_rejected() {
    let (line, col, msg, _) = reject("[plugins]\nallowed = [ { name = \"x\" } ]\n");
    assert_eq!((line, col), (2, 13));
    assert!(msg.contains("missing field `sha256`"), "{msg}");
}

#[test]
fn duplicate_plugin_names_are_rejected() {
    let h = "a".repeat(64);
    let text = format!(
        "[plugins]\nallowed = [\n {{ name = \"x\", sha256 = \"{h}\" }},\n {{ name = \"x\", sha256 = \"{h}\" }},\n]\n"
    );
    let (line, col, msg, _) = reject(&text);
    assert_eq!((line, col), (4, 11));
    assert!(msg.contains("listed twice"), "{msg}");
}

#[test]
fn zero_timeout_points_at_the_value() {
    let (line, col, msg, hint) = reject("[probes]\nconnect_timeout_ms = 0\n");
    assert_eq!((line, col), (2, 22));
    assert_eq!(
        msg,
        "probes.connect_timeout_ms must be between 1 and 600000, not 0"
    );
    assert!(hint.contains("milliseconds"), "{hint}");
}

#[test]
fn absurd_timeout_over_ten_minutes_is_rejected() {
    let (line, col, msg, _) = reject("[probes]\nio_timeout_ms = 600001\n");
    assert_eq!((line, col), (2, 17));
    assert!(msg.contains("not 600001"), "{msg}");
    accept("[probes]\nio_timeout_ms = 600000\n");
}

#[test]
fn negative_and_textual_durations_are_rejected() {
    let (_, _, msg, _) = reject("[probes]\ncheck_interval_secs = -5\n");
    assert!(msg.contains("not -5"), "{msg}");
    let (line, col, msg, _) = reject("[probes]\nconnect_timeout_ms = \"5s\"\n");
    assert_eq!((line, col), (2, 22));
    assert!(msg.contains("expected a whole number"), "{msg}");
    let (_, _, msg, _) = reject("[probes]\ncheck_interval_secs = 0\n");
    assert!(msg.contains("check_interval_secs"), "{msg}");
}

#[test]
fn quarantine_after_zero_is_rejected() {
    let (line, col, msg, _) = reject("[limits]\nquarantine_after = 0\n");
    assert_eq!((line, col), (2, 20));
    assert!(msg.contains("limits.quarantine_after"), "{msg}");
}

#[test]
fn relative_ca_path_is_rejected() {
    let (line, col, msg, hint) = reject("[tls]\nextra_ca_files = [\"/ok.pem\", \"corp-ca.pem\"]\n");
    assert_eq!((line, col), (2, 30));
    assert!(msg.contains("\"corp-ca.pem\" is a relative path"), "{msg}");
    assert!(hint.contains("full path"), "{hint}");
}

#[test]
fn relative_plugin_directory_is_rejected() {
    let (line, _, msg, _) = reject("[plugins]\ndirectory = \"plugins\"\n");
    assert_eq!(line, 2);
    assert!(msg.contains("plugins.directory"), "{msg}");
}

#[test]
fn unknown_log_level_is_rejected_with_a_suggestion() {
    let (line, col, msg, hint) = reject("log_level = \"warning\"\n");
    assert_eq!((line, col), (1, 13));
    assert!(msg.contains("error, warn, info, debug, trace"), "{msg}");
    assert_eq!(hint, "did you mean \"warn\"?");
}

#[test]
fn overly_broad_or_malformed_allowed_domains_are_rejected() {
    let (line, col, msg, _) = reject("[hosts]\nallowed_domains = [\"example.net\", \"com\"]\n");
    assert_eq!((line, col), (2, 35));
    assert!(msg.contains("\"com\""), "{msg}");
    let (_, _, _, hint) = reject("[hosts]\nallowed_domains = [\"*.example.net\"]\n");
    assert!(hint.contains("\"example.net\""), "{hint}");
    let (_, _, msg, _) = reject("[hosts]\nallowed_domains = [\"https://example.net/\"]\n");
    assert!(msg.contains("not a domain name"), "{msg}");
    let (_, _, msg, _) = reject("[hosts]\nallowed_domains = [\"10.0.0.1\"]\n");
    assert!(msg.contains("not a registrable domain"), "{msg}");
}

#[test]
fn allowed_domains_are_normalised() {
    let p = accept("[hosts]\nallowed_domains = [\"Example.NET.\", \"example.net\"]\n");
    assert_eq!(p.allowed_domains(), ["example.net"]);
}

#[test]
fn override_without_match_points_at_its_header() {
    let (line, col, msg, _) =
        reject("dry_run = true\n[[override]]\nactions = { set_host = \"deny\" }\n");
    assert_eq!((line, col), (2, 1));
    assert!(msg.contains("override[0] has no match"), "{msg}");
}

#[test]
fn override_with_empty_match_or_unknown_client_is_rejected() {
    let (line, _, msg, _) = reject("[[override]]\nmatch = {}\nactions = { set_host = \"deny\" }\n");
    assert_eq!(line, 2);
    assert!(msg.contains("neither a client nor a domain"), "{msg}");
    let (line, col, msg, hint) = reject(
        "[[override]]\nmatch = { client = \"thunderbrid\" }\nactions = { set_host = \"deny\" }\n",
    );
    assert_eq!((line, col), (2, 20));
    assert!(msg.contains("unknown client \"thunderbrid\""), "{msg}");
    assert_eq!(hint, "did you mean \"thunderbird\"?");
}

#[test]
fn override_with_unknown_action_kind_names_the_override() {
    let (line, col, msg, _) = reject(
        "[[override]]\nmatch = { domain = \"example.com\" }\nactions = { set_hots = \"deny\" }\n",
    );
    assert_eq!((line, col), (3, 13));
    assert!(msg.contains("unknown action kind \"set_hots\""), "{msg}");
}

#[test]
fn override_without_actions_is_rejected() {
    let (_, _, msg, _) = reject("[[override]]\nmatch = { domain = \"example.com\" }\n");
    assert!(msg.contains("has no actions"), "{msg}");
    let (_, _, msg, _) =
        reject("[[override]]\nmatch = { domain = \"example.com\" }\nactions = {}\n");
    assert!(msg.contains("is empty"), "{msg}");
}

#[test]
fn load_reports_a_missing_file_as_io_and_falls_back_only_then() {
    let dir = tempfile_dir();
    let missing = dir.join("policy.toml");
    let err = Policy::load(&missing).unwrap_err();
    assert!(err.is_not_found());
    assert!(err.to_string().starts_with(&missing.display().to_string()));
    let p = Policy::load_or_default(&missing).unwrap();
    assert_eq!(p.origin(), EMBEDDED_ORIGIN);

    std::fs::write(&missing, "dry_run = maybe\n").unwrap();
    let err = Policy::load_or_default(&missing).unwrap_err();
    assert_eq!(err.position(), Some((1, 11)));

    std::fs::write(&missing, b"dry_run = true\n# \xff\n").unwrap();
    let err = Policy::load(&missing).unwrap_err();
    assert_eq!(err.position(), Some((2, 3)));
    assert!(err.to_string().contains("not valid UTF-8"));

    std::fs::write(&missing, "dry_run = true\n").unwrap();
    let p = Policy::load(&missing).unwrap();
    assert!(p.dry_run());
    assert_eq!(p.origin(), missing.display().to_string());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A fresh directory under the system temp dir, without a tempfile dependency.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "mailmend-policy-test-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---------------------------------------------------------------- the shipped files

#[test]
fn embedded_default_parses() {
    let p = Policy::parse(EMBEDDED_DEFAULT, EMBEDDED_ORIGIN).unwrap();
    assert_eq!(p.origin(), EMBEDDED_ORIGIN);
    assert_eq!(p, Policy::embedded_default());
}

#[test]
fn embedded_default_states_the_documented_defaults() {
    let p = Policy::embedded_default();
    assert!(!p.dry_run());
    assert_eq!(p.log_level(), "info");
    assert_eq!(p.fixes_per_account_per_hour(), 3);
    assert_eq!(p.quarantine_after(), 3);
    assert_eq!(p.connect_timeout(), std::time::Duration::from_secs(5));
    assert_eq!(p.io_timeout(), std::time::Duration::from_secs(5));
    assert_eq!(p.check_interval(), std::time::Duration::from_secs(900));
    assert!(p.extra_ca_files().is_empty());
    assert!(p.allowed_plugin_hashes().is_empty());
    assert_eq!(p.mode_for(ActionKind::SetHost, None).0, Mode::Auto);
    assert_eq!(
        p.mode_for(ActionKind::SetAuthMethod, None).0,
        Mode::Recommend
    );
    assert_eq!(
        p.mode_for(ActionKind::AddFirewallException, None).0,
        Mode::Recommend
    );
    // The shipped file and the values used for keys it omits agree, so deleting a key from a
    // copy of default.toml never changes behaviour.
    assert_eq!(p, accept(""));
}

#[test]
fn embedded_default_explain_mentions_every_action_kind() {
    let text = Policy::embedded_default().explain();
    for k in ActionKind::ALL {
        assert!(
            text.contains(&format!("actions.{k}")),
            "{k} missing:\n{text}"
        );
    }
    assert!(text.contains("embedded:default.toml"));
}

#[test]
fn explain_tells_file_values_from_defaults() {
    let p = Policy::parse(
        "\n[actions]\nset_port = \"deny\"\n",
        "/etc/mailmend/policy.toml",
    )
    .unwrap();
    let text = p.explain();
    let line = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("{key} missing:\n{text}"))
            .to_string()
    };
    let port = line("actions.set_port");
    assert!(
        port.contains("deny") && port.contains("/etc/mailmend/policy.toml:3"),
        "{port}"
    );
    let host = line("actions.set_host");
    assert!(
        host.contains("auto") && host.contains("built-in default"),
        "{host}"
    );
    assert!(line("probes.connect_timeout_ms").contains("5000 ms"));
}

#[test]
fn strict_policy_recommends_everything() {
    let p = Policy::parse(include_str!("../../../policies/strict.toml"), "strict.toml").unwrap();
    for k in ActionKind::ALL {
        assert_eq!(p.mode_for(k, Some(&tb())).0, Mode::Recommend, "{k}");
    }
}

#[test]
fn enterprise_example_parses_with_ca_domains_and_plugin() {
    let p = Policy::parse(
        include_str!("../../../policies/example-enterprise.toml"),
        "example-enterprise.toml",
    )
    .unwrap();
    assert!(!p.extra_ca_files().is_empty());
    assert!(!p.allowed_domains().is_empty());
    assert_eq!(p.allowed_plugin_hashes().len(), 1);
    assert!(!p.overrides().is_empty());
}

// ---------------------------------------------------------------- decide: built-in rules

#[test]
fn downgrade_to_plaintext_is_denied_even_when_policy_says_auto() {
    let d = all_auto().decide(&security(Security::None), Some(&tb()), &ctx());
    assert_eq!(d.verdict, Mode::Deny);
    assert_eq!(d.rule, "builtin.no_downgrade");
}

#[test]
fn downgrade_from_starttls_to_plaintext_is_denied() {
    let acc = account(
        ClientKind::Thunderbird,
        Some("ann@example.com"),
        Security::StartTls,
    );
    let d = all_auto().decide(&security(Security::None), Some(&acc), &ctx());
    assert_eq!(d.rule, "builtin.no_downgrade");
}

#[test]
fn plaintext_when_current_security_is_unknown_is_denied() {
    let d = all_auto().decide(&security(Security::None), None, &ctx());
    assert_eq!(
        (d.verdict, d.rule.as_str()),
        (Mode::Deny, "builtin.no_downgrade")
    );
    let mut acc = tb();
    acc.incoming = None;
    let d = all_auto().decide(&security(Security::None), Some(&acc), &ctx());
    assert_eq!(d.rule, "builtin.no_downgrade");
}

#[test]
fn tls_to_starttls_is_not_a_downgrade() {
    let d = all_auto().decide(&security(Security::StartTls), Some(&tb()), &ctx());
    assert_eq!(
        (d.verdict, d.rule.as_str()),
        (Mode::Auto, "actions.set_security")
    );
}

#[test]
fn plaintext_on_an_already_plaintext_endpoint_is_not_a_downgrade() {
    let acc = account(
        ClientKind::Thunderbird,
        Some("ann@example.com"),
        Security::None,
    );
    let d = all_auto().decide(&security(Security::None), Some(&acc), &ctx());
    assert_eq!(d.verdict, Mode::Auto);
}

#[test]
fn cleartext_password_without_encryption_is_denied() {
    let acc = account(
        ClientKind::Thunderbird,
        Some("ann@example.com"),
        Security::None,
    );
    let change = EndpointChange {
        auth: Some(AuthMethod::PasswordCleartext),
        ..Default::default()
    };
    let d = all_auto().decide(&set(Role::Incoming, change.clone()), Some(&acc), &ctx());
    assert_eq!(d.rule, "builtin.no_downgrade");
    // The same change with the connection upgraded in the same step is fine.
    let upgraded = EndpointChange {
        security: Some(Security::Tls),
        ..change
    };
    let d = all_auto().decide(&set(Role::Incoming, upgraded), Some(&acc), &ctx());
    assert_eq!(d.verdict, Mode::Auto);
}

#[test]
fn cleartext_password_with_unknown_security_is_denied() {
    let change = EndpointChange {
        auth: Some(AuthMethod::PasswordCleartext),
        ..Default::default()
    };
    let d = all_auto().decide(&set(Role::Outgoing, change), None, &ctx());
    assert_eq!(d.rule, "builtin.no_downgrade");
}

#[test]
fn host_in_the_email_domain_or_a_subdomain_is_allowed() {
    let p = all_auto();
    for h in ["example.com", "mail.example.com", "IMAP2.Example.com."] {
        let d = p.decide(&host(h), Some(&tb()), &ctx());
        assert_eq!(
            (d.verdict, d.rule.as_str()),
            (Mode::Auto, "actions.set_host"),
            "{h}"
        );
    }
}

#[test]
fn host_that_merely_ends_with_the_domain_is_denied() {
    let d = all_auto().decide(&host("evilexample.com"), Some(&tb()), &ctx());
    assert_eq!(
        (d.verdict, d.rule.as_str()),
        (Mode::Deny, "hosts.allowed_domains")
    );
    let d = all_auto().decide(&host("mail.evilexample.com"), Some(&tb()), &ctx());
    assert_eq!(d.rule, "hosts.allowed_domains");
}

#[test]
fn host_with_url_characters_cannot_smuggle_the_domain_suffix() {
    let d = all_auto().decide(&host("evil.com#.example.com"), Some(&tb()), &ctx());
    assert_eq!(
        (d.verdict, d.rule.as_str()),
        (Mode::Deny, "builtin.host_syntax")
    );
}

#[test]
fn host_in_an_allowed_domain_is_allowed() {
    let p = accept("[hosts]\nallowed_domains = [\"mailprovider.net\"]\n");
    let d = p.decide(&host("imap.eu.mailprovider.net"), Some(&tb()), &ctx());
    assert_eq!(d.verdict, Mode::Auto);
    let d = p.decide(&host("imap.notmailprovider.net"), Some(&tb()), &ctx());
    assert_eq!(d.rule, "hosts.allowed_domains");
}

#[test]
fn host_named_by_dns_records_is_allowed_exactly() {
    let c = DecisionContext {
        extra_allowed_hosts: vec!["Outlook.Office365.com.".into()],
        ..Default::default()
    };
    let d = all_auto().decide(&host("outlook.office365.com"), Some(&tb()), &c);
    assert_eq!(d.verdict, Mode::Auto);
    let d = all_auto().decide(&host("x.outlook.office365.com"), Some(&tb()), &c);
    assert_eq!(d.rule, "hosts.allowed_domains");
}

#[test]
fn host_without_email_domain_or_match_is_denied() {
    let acc = account(ClientKind::Msmtp, None, Security::Tls);
    let d = all_auto().decide(&host("imap.example.com"), Some(&acc), &ctx());
    assert_eq!(
        (d.verdict, d.rule.as_str()),
        (Mode::Deny, "hosts.allowed_domains")
    );
    let d = all_auto().decide(&host("imap.example.com"), None, &ctx());
    assert_eq!(d.rule, "hosts.allowed_domains");
}

#[test]
fn firewall_exception_only_for_mail_ports() {
    let p = all_auto();
    for port in MAIL_PORTS {
        let d = p.decide(&firewall("imap.example.com", port), Some(&tb()), &ctx());
        assert_eq!(d.verdict, Mode::Auto, "{port}");
    }
    let d = p.decide(&firewall("imap.example.com", 22), Some(&tb()), &ctx());
    assert_eq!(
        (d.verdict, d.rule.as_str()),
        (Mode::Deny, "builtin.firewall_ports")
    );
}

#[test]
fn firewall_exception_only_for_the_accounts_hosts() {
    let p = all_auto();
    let acc = account(ClientKind::Msmtp, None, Security::Tls);
    // Without an email domain only the account's current hosts qualify.
    let d = p.decide(&firewall("SMTP.example.com.", 587), Some(&acc), &ctx());
    assert_eq!(d.verdict, Mode::Auto);
    let d = p.decide(&firewall("other.example.org", 993), Some(&acc), &ctx());
    assert_eq!(
        (d.verdict, d.rule.as_str()),
        (Mode::Deny, "hosts.allowed_domains")
    );
    // With one, hosts in the domain pass rule 2.
    let d = p.decide(&firewall("imap2.example.com", 993), Some(&tb()), &ctx());
    assert_eq!(d.verdict, Mode::Auto);
}

#[test]
fn firewall_exception_for_a_wildcard_address_is_denied() {
    let a = Action::AddFirewallException {
        account: AccountId("acc-1".into()),
        host: "imap.example.com".into(),
        addresses: vec!["0.0.0.0".parse().unwrap()],
        port: 993,
    };
    let d = all_auto().decide(&a, Some(&tb()), &ctx());
    assert_eq!(d.rule, "builtin.firewall_addresses");
}

#[test]
fn action_decided_against_another_account_is_denied() {
    let mut other = tb();
    other.id = AccountId("acc-2".into());
    let d = all_auto().decide(&host("imap.example.com"), Some(&other), &ctx());
    assert_eq!(d.rule, "builtin.account_mismatch");
}

#[test]
fn empty_endpoint_change_is_denied() {
    let d = all_auto().decide(
        &set(Role::Incoming, EndpointChange::default()),
        Some(&tb()),
        &ctx(),
    );
    assert_eq!(d.rule, "builtin.empty_change");
}

// ---------------------------------------------------------------- decide: limits

#[test]
fn quarantine_after_recurrences_denies() {
    let p = accept("[limits]\nquarantine_after = 2\n");
    let port = set(
        Role::Incoming,
        EndpointChange {
            port: Some(993),
            ..Default::default()
        },
    );
    let c = DecisionContext {
        recurrences: 1,
        ..Default::default()
    };
    assert_eq!(p.decide(&port, Some(&tb()), &c).verdict, Mode::Auto);
    let c = DecisionContext {
        recurrences: 2,
        ..Default::default()
    };
    let d = p.decide(&port, Some(&tb()), &c);
    assert_eq!(
        (d.verdict, d.rule.as_str()),
        (Mode::Deny, "limits.quarantine_after")
    );
}

#[test]
fn rate_limit_per_account_per_hour_denies() {
    let p = accept("[limits]\nfixes_per_account_per_hour = 2\n");
    let dns = Action::FlushDns {
        host: "imap.example.com".into(),
    };
    let c = DecisionContext {
        fixes_in_last_hour: 1,
        ..Default::default()
    };
    assert_eq!(p.decide(&dns, Some(&tb()), &c).verdict, Mode::Auto);
    let c = DecisionContext {
        fixes_in_last_hour: 2,
        ..Default::default()
    };
    let d = p.decide(&dns, Some(&tb()), &c);
    assert_eq!(
        (d.verdict, d.rule.as_str()),
        (Mode::Deny, "limits.fixes_per_account_per_hour")
    );
}

#[test]
fn notify_user_is_exempt_from_rate_limit_and_quarantine() {
    let c = DecisionContext {
        fixes_in_last_hour: 100,
        recurrences: 100,
        ..Default::default()
    };
    let d = all_auto().decide(&notify(), Some(&tb()), &c);
    assert_eq!(
        (d.verdict, d.rule.as_str()),
        (Mode::Auto, "actions.notify_user")
    );
}

#[test]
fn builtin_rules_come_before_limits() {
    let c = DecisionContext {
        fixes_in_last_hour: 100,
        ..Default::default()
    };
    let d = all_auto().decide(&security(Security::None), Some(&tb()), &c);
    assert_eq!(d.rule, "builtin.no_downgrade");
}

// ---------------------------------------------------------------- decide: modes and overrides

#[test]
fn combined_port_and_security_takes_the_stricter_mode() {
    let p = accept("[actions]\nset_port = \"auto\"\nset_security = \"recommend\"\n");
    let both = set(
        Role::Incoming,
        EndpointChange {
            port: Some(993),
            security: Some(Security::Tls),
            ..Default::default()
        },
    );
    let d = p.decide(&both, Some(&tb()), &ctx());
    assert_eq!(
        (d.verdict, d.rule.as_str()),
        (Mode::Recommend, "actions.set_security")
    );

    let p = accept("[actions]\nset_port = \"deny\"\nset_security = \"recommend\"\n");
    let d = p.decide(&both, Some(&tb()), &ctx());
    assert_eq!(
        (d.verdict, d.rule.as_str()),
        (Mode::Deny, "actions.set_port")
    );
}

#[test]
fn dry_run_does_not_change_decisions() {
    let p = accept("dry_run = true\n");
    assert!(p.dry_run());
    let d = p.decide(&security(Security::StartTls), Some(&tb()), &ctx());
    assert_eq!(d.verdict, Mode::Auto);
}

const OVERRIDES: &str = r#"
[actions]
set_host = "auto"
set_port = "auto"
"#;

const OVERRIDE_TABLES: &str = r#"
[[override]]
match = { domain = "example.com" }
actions = { set_host = "recommend" }

[[override]]
match = { client = "thunderbird" }
actions = { set_host = "deny", set_port = "deny" }

[[override]]
match = { client = "msmtp", domain = "corp.example.org" }
actions = { set_port = "recommend" }
"#;

#[test]
fn override_matches_by_domain_and_first_match_wins_per_kind() {
    let p = accept(&format!("{OVERRIDES}{OVERRIDE_TABLES}"));
    let acc = tb();
    assert_eq!(
        p.mode_for(ActionKind::SetHost, Some(&acc)),
        (Mode::Recommend, "override[0].actions.set_host".to_string())
    );
    // override[0] does not name set_port, so the next matching override decides it.
    assert_eq!(
        p.mode_for(ActionKind::SetPort, Some(&acc)),
        (Mode::Deny, "override[1].actions.set_port".to_string())
    );
    let d = p.decide(&host("imap.example.com"), Some(&acc), &ctx());
    assert_eq!(
        (d.verdict, d.rule.as_str()),
        (Mode::Recommend, "override[0].actions.set_host")
    );
}

#[test]
fn override_matches_by_client() {
    let p = accept(&format!("{OVERRIDES}{OVERRIDE_TABLES}"));
    let acc = account(
        ClientKind::Thunderbird,
        Some("ann@other.org"),
        Security::Tls,
    );
    assert_eq!(
        p.mode_for(ActionKind::SetHost, Some(&acc)),
        (Mode::Deny, "override[1].actions.set_host".to_string())
    );
    let evo = account(ClientKind::Evolution, Some("ann@other.org"), Security::Tls);
    assert_eq!(
        p.mode_for(ActionKind::SetHost, Some(&evo)),
        (Mode::Auto, "actions.set_host".to_string())
    );
}

#[test]
fn override_with_client_and_domain_needs_both_and_matches_subdomains() {
    let p = accept(&format!("{OVERRIDES}{OVERRIDE_TABLES}"));
    let both = account(
        ClientKind::Msmtp,
        Some("ann@eu.corp.example.org"),
        Security::Tls,
    );
    assert_eq!(
        p.mode_for(ActionKind::SetPort, Some(&both)).1,
        "override[2].actions.set_port"
    );
    let wrong_domain = account(
        ClientKind::Msmtp,
        Some("ann@notcorp.example.org"),
        Security::Tls,
    );
    assert_eq!(
        p.mode_for(ActionKind::SetPort, Some(&wrong_domain)).1,
        "actions.set_port"
    );
    let wrong_client = account(
        ClientKind::Mutt,
        Some("ann@corp.example.org"),
        Security::Tls,
    );
    assert_eq!(
        p.mode_for(ActionKind::SetPort, Some(&wrong_client)).1,
        "actions.set_port"
    );
}

#[test]
fn overrides_do_not_apply_without_an_account() {
    let p = accept(&format!("{OVERRIDES}{OVERRIDE_TABLES}"));
    assert_eq!(
        p.mode_for(ActionKind::SetHost, None),
        (Mode::Auto, "actions.set_host".to_string())
    );
}

// ---------------------------------------------------------------- hash and round trip

#[test]
fn hash_is_stable_and_differs_for_different_text() {
    let a = accept("dry_run = true\n");
    let b = accept("dry_run = true\n");
    let c = accept("dry_run = true \n");
    assert_eq!(a.hash(), b.hash());
    assert_ne!(a.hash(), c.hash());
    assert_eq!(a.hash().len(), 64);
    assert!(a
        .hash()
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    // The hash is of the bytes: the SHA-256 of the empty string is well known.
    assert_eq!(
        accept("").hash(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn effective_toml_round_trips_to_an_equal_policy() {
    let h = "AB".repeat(32);
    let text = format!(
        r#"
dry_run = true
log_level = "debug"
[actions]
set_host = "deny"
notify_user = "recommend"
[hosts]
allowed_domains = ["mailprovider.net", "Corp.Example.ORG"]
[limits]
fixes_per_account_per_hour = 5
quarantine_after = 4
[probes]
connect_timeout_ms = 1500
io_timeout_ms = 20000
check_interval_secs = 60
[tls]
extra_ca_files = ["/etc/mailmend/corp \"ca\".pem", 'C:\ProgramData\mailmend\ca.pem']
[plugins]
directory = "/opt/mailmend/plugins"
allowed = [ {{ name = "example", sha256 = "{h}" }}, {{ name = "other", sha256 = "{}" }} ]
[credentials]
source = "client"
min_interval_secs = 7200
check_sender = false
{OVERRIDE_TABLES}"#,
        "0".repeat(64)
    );
    let p = accept(&text);
    assert_eq!(p.allowed_plugin_hashes()[0], "ab".repeat(32));
    assert_eq!(p.credential_source(), CredentialSource::Client);
    let effective = p.to_effective_toml();
    let back =
        Policy::parse(&effective, "effective.toml").unwrap_or_else(|e| panic!("{e}\n{effective}"));
    assert_eq!(back, p);
    // A second round trip is textually identical apart from the source/hash comments.
    let again = back.to_effective_toml();
    let body = |s: &str| {
        s.lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(body(&again), body(&effective));

    let d = Policy::embedded_default();
    assert_eq!(accept(&d.to_effective_toml()), d);
}

#[test]
fn policies_with_different_settings_are_not_equal() {
    assert_ne!(accept("dry_run = true\n"), accept("dry_run = false\n"));
    assert_eq!(accept("dry_run = false\n"), accept(""));
}

// ---------------------------------------------------------------- robustness

/// xorshift64*, enough to produce varied inputs without a dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn parse_never_panics_on_random_input() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    // Fragments of valid policy text make the random input reach validation, not only the
    // TOML lexer.
    let fragments: &[&[u8]] = &[
        b"[actions]\n",
        b"set_host = \"auto\"\n",
        b"[[override]]\n",
        b"match = { client = \"",
        b"domain = \"",
        b"\" }\n",
        b"[probes]\nconnect_timeout_ms = ",
        b"[plugins]\nallowed = [ { name = \"x\", sha256 = \"",
        b"[tls]\nextra_ca_files = [\"",
        b"\xc3\xa9",
        b"\xff",
        b"\n",
        b"=",
        b"\"",
        b"[",
        b"]",
        b"{",
        b"}",
        b"[hosts]\nallowed_domains = [\"",
        b"actions = { set_port = \"deny\" }\n",
        b"quarantine_after = ",
        b"9999999999999999999999",
        b"-1",
        b"0",
        b"dry_run = ",
        b"true",
    ];
    let mut accepted = 0;
    for _ in 0..4000 {
        let len = (rng.next() % 24) as usize;
        let mut bytes = Vec::new();
        for _ in 0..len {
            let r = rng.next();
            // One part in three is a raw byte, the rest policy fragments.
            match r % 3 {
                0 => bytes.push((r >> 8) as u8),
                _ => bytes.extend_from_slice(fragments[(r >> 8) as usize % fragments.len()]),
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        match Policy::parse(&text, "fuzz.toml") {
            Ok(p) => {
                accepted += 1;
                assert_eq!(accept(&p.to_effective_toml()), p);
            }
            Err(e) => {
                // Every rejection still carries a position inside the text.
                let (line, column) = e.position().unwrap();
                assert!(line >= 1 && column >= 1);
                assert!(line <= text.lines().count().max(1) + 1, "{e}");
            }
        }
    }
    // Some inputs must get through validation, or the test only exercised the TOML lexer.
    assert!(accepted > 0);
}

// ---------------------------------------------------------------- [firewall]

#[test]
fn windows_block_rules_are_left_alone_unless_the_policy_says_otherwise() {
    for p in [Policy::embedded_default(), accept("")] {
        assert!(!p.windows_disable_blocking_rules());
    }
    let p = accept("[firewall]\nwindows_disable_blocking_rules = true\n");
    assert!(p.windows_disable_blocking_rules());
}

#[test]
fn a_misspelt_firewall_key_is_an_error_with_its_position() {
    let (line, column, message, _) = reject("[firewall]\nwindows_disable_blocking_rule = true\n");
    assert_eq!((line, column), (2, 1), "{message}");
    assert!(
        message.contains("windows_disable_blocking_rule"),
        "{message}"
    );
}

// ---------------------------------------------------------------- [credentials]

#[test]
fn credentials_default_to_never_logging_in() {
    for p in [Policy::embedded_default(), accept("")] {
        assert_eq!(p.credential_source(), CredentialSource::None);
        assert_eq!(
            p.credential_min_interval(),
            std::time::Duration::from_secs(86_400)
        );
        assert!(p.credential_check_sender());
    }
}

#[test]
fn credentials_section_is_read() {
    let p = accept(
        "[credentials]\nsource = \"client\"\nmin_interval_secs = 3600\ncheck_sender = false\n",
    );
    assert_eq!(p.credential_source(), CredentialSource::Client);
    assert_eq!(
        p.credential_min_interval(),
        std::time::Duration::from_secs(3600)
    );
    assert!(!p.credential_check_sender());
}

#[test]
fn unknown_credential_source_points_at_the_value_and_suggests_the_spelling() {
    let (line, column, message, hint) = reject("\n[credentials]\nsource = \"clients\"\n");
    assert_eq!((line, column), (3, 10));
    assert!(
        message.contains("unknown credentials.source \"clients\""),
        "{message}"
    );
    assert!(message.contains("none, client"), "{message}");
    assert_eq!(hint, "did you mean \"client\"?");
    let (_, _, _, hint) = reject("[credentials]\nsource = \"keychain\"\n");
    assert!(hint.contains("never run"), "{hint}");
}

#[test]
fn credential_interval_out_of_range_is_rejected_at_the_value() {
    let (line, column, message, _) = reject("[credentials]\nmin_interval_secs = 60\n");
    assert_eq!((line, column), (2, 21));
    assert!(
        message.contains("credentials.min_interval_secs must be between 3600 and 2592000, not 60"),
        "{message}"
    );
    let (_, _, message, _) = reject("[credentials]\nmin_interval_secs = 99999999\n");
    assert!(message.contains("not 99999999"), "{message}");
    let (_, _, message, _) = reject("[credentials]\nmin_interval_secs = \"1d\"\n");
    assert!(message.contains("invalid type"), "{message}");
}

#[test]
fn unknown_key_in_credentials_points_at_the_key() {
    let (line, column, message, hint) =
        reject("[credentials]\nsource = \"none\"\npasword = \"x\"\n");
    assert_eq!((line, column), (3, 1));
    assert!(message.contains("unknown field `pasword`"), "{message}");
    assert!(hint.contains("policies/default.toml"), "{hint}");
    let (_, _, message, hint) = reject("[credentials]\nmin_interval_sec = 3600\n");
    assert!(
        message.contains("unknown field `min_interval_sec`"),
        "{message}"
    );
    assert!(hint.contains("did you mean `min_interval_secs`?"), "{hint}");
}

#[test]
fn credential_source_of_the_wrong_type_is_a_type_error() {
    let (line, _, message, _) = reject("[credentials]\nsource = true\n");
    assert_eq!(line, 2);
    assert!(message.contains("invalid type"), "{message}");
}

#[test]
fn explain_and_effective_toml_show_the_credential_settings() {
    let p = Policy::parse(
        "[credentials]\nsource = \"client\"\n",
        "/etc/mailmend/policy.toml",
    )
    .unwrap();
    let text = p.explain();
    let source = text
        .lines()
        .find(|l| l.starts_with("credentials.source"))
        .unwrap_or_else(|| panic!("credentials.source missing:\n{text}"));
    assert!(
        source.contains("client") && source.contains("/etc/mailmend/policy.toml:2"),
        "{source}"
    );
    let interval = text
        .lines()
        .find(|l| l.starts_with("credentials.min_interval_secs"))
        .unwrap();
    assert!(
        interval.contains("86400 s") && interval.contains("built-in default"),
        "{interval}"
    );
    let toml = p.to_effective_toml();
    assert!(
        toml.contains(
            "[credentials]\nsource = \"client\"\nmin_interval_secs = 86400\ncheck_sender = true\n"
        ),
        "{toml}"
    );
    let default_text = Policy::embedded_default().explain();
    assert!(
        default_text.contains("none (never logs in)"),
        "{default_text}"
    );
}
