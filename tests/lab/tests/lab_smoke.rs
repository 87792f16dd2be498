//! Smoke tests of the lab itself: every service answers for real from the client namespace,
//! the knobs (certificates, DNS, addresses, firewall, Kerberos) do what scenario tests rely
//! on, and teardown and stale cleanup leave nothing behind.
//!
//! Labs run one at a time (a file-lock slot, see MAILMEND_LAB_PARALLEL), so these tests may
//! run on cargo's parallel test threads without overloading a two-core machine.

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mailmend_lab::{
    cleanup_stale, lab_root, reserve_slot, CertKind, Lab, Mail, OutputExt, Tls, ALICE, BOB,
};

fn lab() -> Lab {
    let lab = Lab::start().expect("the lab starts");
    eprintln!("lab {} started in {:?}", lab.id(), lab.startup_time());
    lab
}

fn ns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat[stat.rfind(')').unwrap() + 1..].trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}

#[test]
fn imaps_login_accepts_the_right_password_and_rejects_a_wrong_one() {
    let lab = lab();
    let ok = lab
        .imap_login(
            "imap.example.com",
            ALICE.login,
            ALICE.password,
            993,
            Tls::Implicit,
        )
        .unwrap();
    assert!(ok.status.success(), "{}", ok.describe());
    assert!(ok.stdout_text().contains("INBOX"), "{}", ok.describe());

    let bad = lab
        .imap_login(
            "imap.example.com",
            ALICE.login,
            "not-the-password",
            993,
            Tls::Implicit,
        )
        .unwrap();
    assert!(!bad.status.success(), "{}", bad.describe());
    assert!(
        bad.stderr_text().contains("[AUTHENTICATIONFAILED]"),
        "{}",
        bad.describe()
    );
}

#[test]
fn imap_starttls_pop3s_and_pop3_stls_logins_work_and_plaintext_login_is_refused() {
    let lab = lab();
    assert!(lab
        .imap_login_works(ALICE.login, ALICE.password, 143, Tls::StartTls)
        .unwrap());
    let pop3s = lab
        .pop3_login(
            "pop.example.com",
            BOB.login,
            BOB.password,
            995,
            Tls::Implicit,
        )
        .unwrap();
    assert!(pop3s.status.success(), "{}", pop3s.describe());
    let stls = lab
        .pop3_login(
            "pop.example.com",
            BOB.login,
            BOB.password,
            110,
            Tls::StartTls,
        )
        .unwrap();
    assert!(stls.status.success(), "{}", stls.describe());
    assert!(stls.stderr_text().contains("STLS"), "{}", stls.describe());
    let pop_bad = lab
        .pop3_login("pop.example.com", BOB.login, "wrong", 995, Tls::Implicit)
        .unwrap();
    assert!(!pop_bad.status.success(), "{}", pop_bad.describe());

    // disable_plaintext_auth: without TLS the server advertises LOGINDISABLED and no login
    // succeeds, even with the right password.
    let plain = lab
        .imap_login(
            "imap.example.com",
            ALICE.login,
            ALICE.password,
            143,
            Tls::Plain,
        )
        .unwrap();
    assert!(!plain.status.success(), "{}", plain.describe());
    assert!(
        plain.stderr_text().contains("LOGINDISABLED"),
        "{}",
        plain.describe()
    );
}

#[test]
fn submission_587_with_starttls_and_auth_delivers_a_message_readable_over_imap() {
    let lab = lab();
    let mail = Mail {
        from: ALICE.login,
        to: BOB.login,
        subject: "lab smoke 587",
        body: "delivered through submission and LMTP",
    };
    let sent = lab
        .smtp_send(
            "smtp.example.com",
            587,
            Tls::StartTls,
            Some((ALICE.login, ALICE.password)),
            &mail,
        )
        .unwrap();
    assert!(sent.status.success(), "{}", sent.describe());
    assert!(
        sent.stderr_text().contains("AUTH PLAIN"),
        "{}",
        sent.describe()
    );
    let msg = lab
        .wait_for_message(
            BOB.login,
            BOB.password,
            "lab smoke 587",
            Duration::from_secs(15),
        )
        .unwrap();
    assert!(
        msg.contains("delivered through submission and LMTP"),
        "{msg}"
    );

    // Without STARTTLS the submission port refuses mail (smtpd_tls_security_level=encrypt)
    // and hides AUTH (smtpd_tls_auth_only).
    let plain = lab
        .smtp_send("smtp.example.com", 587, Tls::Plain, None, &mail)
        .unwrap();
    assert!(!plain.status.success(), "{}", plain.describe());
    assert!(
        !plain.stderr_text().contains("250-AUTH"),
        "{}",
        plain.describe()
    );
    assert!(
        plain.stderr_text().contains("STARTTLS"),
        "{}",
        plain.describe()
    );
}

#[test]
fn submissions_465_delivers_and_port_25_offers_no_auth() {
    let lab = lab();
    assert!(lab
        .smtp_send_works(ALICE.login, ALICE.password, 465, Tls::Implicit)
        .unwrap());
    lab.wait_for_message(
        ALICE.login,
        ALICE.password,
        "mailmend lab send check",
        Duration::from_secs(15),
    )
    .unwrap();

    // Port 25 is the MX: it takes mail for example.com without authentication and never
    // advertises AUTH, with or without TLS.
    let mail = Mail {
        from: "someone@example.net",
        to: BOB.login,
        subject: "lab smoke 25",
        body: "inbound over port 25",
    };
    for tls in [Tls::Plain, Tls::StartTls] {
        let out = lab
            .smtp_send("mail.example.com", 25, tls, None, &mail)
            .unwrap();
        assert!(out.status.success(), "{tls:?}: {}", out.describe());
        assert!(
            !out.stderr_text().contains("AUTH"),
            "{tls:?}: {}",
            out.describe()
        );
    }
    lab.wait_for_message(
        BOB.login,
        BOB.password,
        "lab smoke 25",
        Duration::from_secs(15),
    )
    .unwrap();
}

#[test]
fn expired_self_signed_and_wrong_host_certificates_are_rejected_by_curl() {
    let lab = lab();
    let cases = [
        (CertKind::Expired, "certificate has expired"),
        (CertKind::SelfSigned, "self-signed certificate"),
        (
            CertKind::WrongHost,
            "no alternative certificate subject name matches target host name 'imap.example.com'",
        ),
    ];
    for (kind, message) in cases {
        lab.switch_cert(kind).unwrap();
        for (port, tls) in [(993, Tls::Implicit), (143, Tls::StartTls)] {
            let out = lab
                .imap_login("imap.example.com", ALICE.login, ALICE.password, port, tls)
                .unwrap();
            assert_eq!(
                out.status.code(),
                Some(60),
                "{kind:?} {port}: {}",
                out.describe()
            );
            assert!(
                out.stderr_text().contains(message),
                "{kind:?} {port}: {}",
                out.describe()
            );
        }
        let smtp = lab
            .smtp_send(
                "smtp.example.com",
                465,
                Tls::Implicit,
                Some((ALICE.login, ALICE.password)),
                &Mail {
                    from: ALICE.login,
                    to: ALICE.login,
                    subject: "never sent",
                    body: "never sent",
                },
            )
            .unwrap();
        assert_eq!(
            smtp.status.code(),
            Some(60),
            "{kind:?} 465: {}",
            smtp.describe()
        );
    }
    lab.switch_cert(CertKind::Good).unwrap();
    assert!(lab
        .imap_login_works(ALICE.login, ALICE.password, 993, Tls::Implicit)
        .unwrap());
    assert!(lab
        .smtp_send_works(ALICE.login, ALICE.password, 587, Tls::StartTls)
        .unwrap());
}

#[test]
fn resolver_answers_lab_records_and_names_outside_the_lab_do_not_exist() {
    let lab = lab();
    let mail_ip = lab.mail_ip().to_string();
    assert_eq!(
        lab.dig("imap.example.com", "A").unwrap(),
        vec![mail_ip.clone()]
    );
    assert_eq!(lab.dig("smtp.example.com", "A").unwrap(), vec![mail_ip]);
    assert_eq!(
        lab.dig("autoconfig.example.com", "A").unwrap(),
        vec![lab.web_ip().to_string()]
    );
    assert_eq!(
        lab.dig("example.com", "MX").unwrap(),
        vec!["10 mail.example.com.".to_string()]
    );
    assert_eq!(
        lab.dig("_imaps._tcp.example.com", "SRV").unwrap(),
        vec!["0 1 993 imap.example.com.".to_string()]
    );
    assert_eq!(
        lab.dig("_submission._tcp.example.com", "SRV").unwrap(),
        vec!["0 1 587 smtp.example.com.".to_string()]
    );
    assert_eq!(
        lab.dig("_submissions._tcp.example.com", "SRV").unwrap(),
        vec!["0 1 465 smtp.example.com.".to_string()]
    );
    let nx = lab.dig_full("nosuchhost.example.com", "A").unwrap();
    assert!(
        nx.stdout_text().contains("status: NXDOMAIN"),
        "{}",
        nx.describe()
    );
    // Outside the lab every name is NXDOMAIN, as a real resolver answers a typo'd domain, and
    // nothing is ever looked up beyond the lab.
    let outside = lab.dig_full("example.org", "A").unwrap();
    assert!(
        outside.stdout_text().contains("status: NXDOMAIN"),
        "{}",
        outside.describe()
    );
}

#[test]
fn set_a_record_moves_imap_to_the_new_server_and_the_old_address_can_be_taken_down() {
    let lab = lab();
    let new_ip = lab.new_mail_ip();
    lab.set_a_record("imap.example.com", new_ip).unwrap();
    assert_eq!(
        lab.dig("imap.example.com", "A").unwrap(),
        vec![new_ip.to_string()]
    );
    assert_eq!(lab.zone_records("imap", "A"), vec![new_ip.to_string()]);

    lab.take_down_address(lab.mail_ip()).unwrap();
    let login = lab
        .imap_login(
            "imap.example.com",
            ALICE.login,
            ALICE.password,
            993,
            Tls::Implicit,
        )
        .unwrap();
    assert!(login.status.success(), "{}", login.describe());
    assert!(
        login.stderr_text().contains(&format!("({new_ip})")),
        "curl should have connected to the new address: {}",
        login.describe()
    );
    // mail.example.com still points at the old, now absent, address.
    let old = lab
        .curl(["--connect-timeout", "2", "imaps://mail.example.com:993/"])
        .unwrap();
    assert!(
        matches!(old.status.code(), Some(7 | 28)),
        "a connect to a removed address must fail: {}",
        old.describe()
    );

    lab.bring_up_address(lab.mail_ip()).unwrap();
    assert!(lab
        .imap_login(
            "mail.example.com",
            ALICE.login,
            ALICE.password,
            993,
            Tls::Implicit
        )
        .unwrap()
        .status
        .success());
}

#[test]
fn local_cache_returns_the_stale_answer_until_flushed() {
    let lab = lab();
    let (old_ip, new_ip) = (lab.mail_ip().to_string(), lab.new_mail_ip());
    lab.use_local_cache(true).unwrap();
    let resolv = lab.client_exec("cat", ["/etc/resolv.conf"]).unwrap();
    assert_eq!(resolv.stdout_text().trim(), "nameserver 127.0.0.1");
    assert_eq!(
        lab.dig("imap.example.com", "A").unwrap(),
        vec![old_ip.clone()]
    );

    lab.set_a_record("imap", new_ip).unwrap();
    // The local cache keeps the old answer; the lab resolver already has the new one.
    assert_eq!(lab.dig("imap.example.com", "A").unwrap(), vec![old_ip]);
    let direct = lab
        .client_exec(
            "dig",
            [
                "+short",
                &format!("@{}", lab.resolver_ip()),
                "imap.example.com",
                "A",
            ],
        )
        .unwrap();
    assert_eq!(direct.stdout_text().trim(), new_ip.to_string());

    // A plain `unbound-control` inside the client namespace reaches the local cache, as an
    // agent's DNS flush would.
    let flush = lab
        .client_exec("unbound-control", ["flush_zone", "example.com"])
        .unwrap();
    assert!(flush.status.success(), "{}", flush.describe());
    assert_eq!(
        lab.dig("imap.example.com", "A").unwrap(),
        vec![new_ip.to_string()]
    );

    lab.set_a_record("imap", lab.mail_ip()).unwrap();
    lab.flush_local_cache().unwrap();
    assert_eq!(
        lab.dig("imap.example.com", "A").unwrap(),
        vec![lab.mail_ip().to_string()]
    );
    lab.use_local_cache(false).unwrap();
}

#[test]
fn kinit_gives_a_renewable_ticket_that_kinit_r_renews() {
    let lab = lab();
    let ccache = lab
        .kinit(
            &ALICE,
            Duration::from_secs(120),
            Duration::from_secs(3600),
            1000,
        )
        .unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&ccache).unwrap().uid(), 1000);
    let before = lab.klist(&ccache).unwrap();
    assert!(before.status.success(), "{}", before.describe());
    let text = before.stdout_text();
    assert!(text.contains("alice@EXAMPLE.COM"), "{text}");
    assert!(text.contains("krbtgt/EXAMPLE.COM@EXAMPLE.COM"), "{text}");
    assert!(text.contains("renew until"), "{text}");
    let flags = text
        .lines()
        .find_map(|l| l.split_once("Flags: ").map(|(_, f)| f.trim()))
        .unwrap_or_default()
        .to_string();
    assert!(flags.contains('R'), "ticket flags {flags:?} lack R: {text}");

    // klist prints times to the second: wait so the renewed ticket's start time differs.
    std::thread::sleep(Duration::from_millis(1100));
    let renew = lab.kinit_renew(&ccache).unwrap();
    assert!(renew.status.success(), "{}", renew.describe());
    let after = lab.klist(&ccache).unwrap().stdout_text();
    let start_line = |t: &str| {
        t.lines()
            .find(|l| l.contains("krbtgt/EXAMPLE.COM"))
            .unwrap_or_default()
            .to_string()
    };
    assert_ne!(
        start_line(&text),
        start_line(&after),
        "renewal changed nothing:\n{after}"
    );

    let wrong = lab
        .client_command("kinit")
        .args(["-c", "FILE:/dev/null/none", "alice@EXAMPLE.COM"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!wrong.status.success());
}

#[test]
fn nft_drop_makes_a_connect_time_out_and_reject_makes_it_refused() {
    let lab = lab();
    lab.nft_client("tcp dport 993 drop").unwrap();
    lab.nft_client("tcp dport 587 reject with tcp reset")
        .unwrap();

    let t = Instant::now();
    let dropped = lab
        .curl(["--connect-timeout", "2", "imaps://imap.example.com:993/"])
        .unwrap();
    let waited = t.elapsed();
    assert_eq!(dropped.status.code(), Some(28), "{}", dropped.describe());
    assert!(waited >= Duration::from_millis(1900), "{waited:?}");
    assert!(waited < Duration::from_secs(10), "{waited:?}");

    let rejected = lab
        .curl(["--connect-timeout", "2", "smtp://smtp.example.com:587/"])
        .unwrap();
    assert_eq!(rejected.status.code(), Some(7), "{}", rejected.describe());
    assert!(
        rejected.stderr_text().contains("Connection refused"),
        "{}",
        rejected.describe()
    );

    // Other ports are untouched, and flushing the chain restores 993.
    assert!(lab
        .imap_login_works(ALICE.login, ALICE.password, 143, Tls::StartTls)
        .unwrap());
    lab.nft_client_flush().unwrap();
    assert!(lab
        .imap_login_works(ALICE.login, ALICE.password, 993, Tls::Implicit)
        .unwrap());
}

#[test]
fn autoconfig_and_autodiscover_are_served_over_http_and_https() {
    let lab = lab();
    for url in [
        "http://autoconfig.example.com/mail/config-v1.1.xml",
        "https://autoconfig.example.com/mail/config-v1.1.xml",
        "http://example.com/.well-known/autoconfig/mail/config-v1.1.xml",
    ] {
        let out = lab.curl(["--fail", url]).unwrap();
        assert!(out.status.success(), "{url}: {}", out.describe());
        let xml = out.stdout_text();
        assert!(
            xml.contains("<clientConfig version=\"1.1\">"),
            "{url}: {xml}"
        );
        assert!(
            xml.contains("<hostname>imap.example.com</hostname>"),
            "{url}: {xml}"
        );
    }
    let request = "<?xml version=\"1.0\" encoding=\"utf-8\"?><Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\"><Request><EMailAddress>alice@example.com</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>";
    let out = lab
        .curl([
            "--fail",
            "-H",
            "Content-Type: text/xml",
            "--data",
            request,
            "https://autodiscover.example.com/autodiscover/autodiscover.xml",
        ])
        .unwrap();
    assert!(out.status.success(), "{}", out.describe());
    assert!(out
        .stdout_text()
        .contains("<Server>imap.example.com</Server>"));

    lab.write_autoconfig("<clientConfig version=\"1.1\"><changed/></clientConfig>\n")
        .unwrap();
    let changed = lab
        .curl([
            "--fail",
            "http://autoconfig.example.com/mail/config-v1.1.xml",
        ])
        .unwrap();
    assert!(changed.stdout_text().contains("<changed/>"));
}

#[test]
fn the_provider_zone_and_example_coms_srv_records_can_name_a_host_in_another_domain() {
    let lab = lab();
    let new_ip = lab.new_mail_ip().to_string();
    assert_eq!(
        lab.dig("mail.hosting.test", "A").unwrap(),
        vec![new_ip.clone()]
    );
    assert_eq!(
        lab.dig("_imaps._tcp.hosting.test", "SRV").unwrap(),
        vec!["0 1 993 mail.hosting.test.".to_string()]
    );
    // example.com's own record moves to the provider, and the provider's records can change.
    lab.set_records("_imaps._tcp", "SRV", &["0 1 993 mail.hosting.test."])
        .unwrap();
    assert_eq!(
        lab.dig("_imaps._tcp.example.com", "SRV").unwrap(),
        vec!["0 1 993 mail.hosting.test.".to_string()]
    );
    lab.set_records("_imaps._tcp.hosting.test", "SRV", &[])
        .unwrap();
    assert!(lab
        .dig("_imaps._tcp.hosting.test", "SRV")
        .unwrap()
        .is_empty());
    assert_eq!(
        lab.zone_records("mail.hosting.test", "A"),
        vec![new_ip.clone()]
    );
    // The lab CA's certificate covers the provider's name: a real client logs in there.
    let out = lab
        .imap_login(
            "mail.hosting.test",
            ALICE.login,
            ALICE.password,
            993,
            Tls::Implicit,
        )
        .unwrap();
    assert!(out.status.success(), "{}", out.describe());
    // The client's local cache resolves the provider too (Unbound answers test. itself
    // unless told otherwise).
    lab.use_local_cache(true).unwrap();
    assert_eq!(lab.dig("mail.hosting.test", "A").unwrap(), vec![new_ip]);
}

#[test]
fn autoconfig_can_be_served_over_plain_http_only_and_autodiscover_can_refuse_a_login() {
    let lab = lab();
    let https = "https://autoconfig.example.com/mail/config-v1.1.xml";
    let http = "http://autoconfig.example.com/mail/config-v1.1.xml";
    let http_wk = "http://example.com/.well-known/autoconfig/mail/config-v1.1.xml";
    lab.write_autoconfig_http_only("<clientConfig version=\"1.1\"><plain/></clientConfig>\n")
        .unwrap();
    let status = |url: &str| {
        let out = lab
            .curl(["-o", "/dev/null", "-w", "%{http_code}", url])
            .unwrap();
        out.stdout_text()
    };
    assert_eq!(status(https), "404");
    assert_eq!(status(http), "200");
    assert_eq!(status(http_wk), "200");
    assert!(lab.curl([http]).unwrap().stdout_text().contains("<plain/>"));
    lab.remove_autoconfig().unwrap();
    assert_eq!(status(http), "404");

    let post = |_: ()| {
        lab.curl([
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "Content-Type: text/xml",
            "--data",
            "<Autodiscover/>",
            "https://autodiscover.example.com/autodiscover/autodiscover.xml",
        ])
        .unwrap()
    };
    lab.set_autodiscover_refusal(Some(401)).unwrap();
    let refused = post(());
    assert_eq!(refused.stdout_text(), "401");
    assert!(
        refused
            .stderr_text()
            .contains("WWW-Authenticate: Basic realm=\"mailmend lab\""),
        "{}",
        refused.describe()
    );
    lab.set_autodiscover_refusal(Some(403)).unwrap();
    assert_eq!(post(()).stdout_text(), "403");
    lab.set_autodiscover_refusal(None).unwrap();
    assert_eq!(post(()).stdout_text(), "200");
    assert!(lab.set_autodiscover_refusal(Some(500)).is_err());

    let log = lab.web_requests();
    assert!(log
        .iter()
        .any(|r| r.scheme == "http" && r.host == "autoconfig.example.com" && r.status == 200));
    assert!(log.iter().any(|r| r.scheme == "https"
        && r.request.starts_with("POST /autodiscover/autodiscover.xml")
        && r.status == 401
        && r.client == lab.client_ip().to_string()));
}

#[test]
fn teardown_leaves_no_namespaces_processes_links_or_files() {
    let lab = lab();
    let (cli, srv) = (lab.client_ns().to_string(), lab.server_ns().to_string());
    let dir = lab.dir().to_path_buf();
    let mut pids: Vec<i32> = lab.daemon_pids().into_iter().map(|(_, p)| p).collect();
    // A process a test left running inside the lab goes too.
    let mut straggler = lab.client_command("sleep").arg("600").spawn().unwrap();
    pids.push(straggler.id() as i32);
    assert!(ns_exists(&cli) && ns_exists(&srv));
    assert!(pids.iter().all(|p| alive(*p)));

    drop(lab);

    let status = straggler.wait().unwrap();
    assert!(
        !status.success(),
        "the straggler was ended, not left to finish"
    );
    assert!(!ns_exists(&cli) && !ns_exists(&srv));
    let listed = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let listed = listed.stdout_text();
    assert!(!listed.contains(&cli) && !listed.contains(&srv), "{listed}");
    let still: Vec<i32> = pids.iter().copied().filter(|p| alive(*p)).collect();
    assert!(still.is_empty(), "processes survived teardown: {still:?}");
    assert!(!Path::new("/etc/netns").join(&cli).exists());
    assert!(!Path::new("/etc/netns").join(&srv).exists());
    assert!(!dir.exists());
    let links = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .unwrap();
    let prefix = format!("{}:", cli.trim_end_matches("-cli"));
    assert!(
        !links.stdout_text().contains(&prefix),
        "{}",
        links.stdout_text()
    );
}

#[test]
fn cleanup_stale_removes_what_a_killed_run_left_behind() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailmend-lab"))
        .arg("up")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let id: u8 = first
        .split_whitespace()
        .find_map(|w| w.strip_prefix("id="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
    let dir = lab_root().join(id.to_string());
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("lab.json")).unwrap()).unwrap();
    let pids: Vec<i32> = info["pids"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_i64().unwrap() as i32)
        .collect();
    assert_eq!(pids.len(), 7, "{info}");

    // SIGKILL: no destructor runs, exactly like a test binary killed by a timeout.
    child.kill().unwrap();
    child.wait().unwrap();
    let (cli, srv) = (format!("mml{id}-cli"), format!("mml{id}-srv"));
    assert!(
        pids.iter().all(|p| alive(*p)),
        "daemons outlive their killed owner"
    );
    assert!(ns_exists(&cli));

    // Keep other tests' labs from starting (and perhaps reusing the freed id) until the
    // checks are done.
    let _slot = reserve_slot().unwrap();
    cleanup_stale().unwrap();
    assert!(!ns_exists(&cli) && !ns_exists(&srv));
    let still: Vec<i32> = pids.iter().copied().filter(|p| alive(*p)).collect();
    assert!(
        still.is_empty(),
        "stale daemons survived cleanup: {still:?}"
    );
    assert!(!dir.exists());
    assert!(!Path::new("/etc/netns").join(&cli).exists());
}

#[test]
fn two_labs_run_side_by_side_on_separate_networks_without_a_default_route() {
    let a = lab();
    let b = lab();
    assert_ne!(a.id(), b.id());
    assert_ne!(a.mail_ip(), b.mail_ip());
    for lab in [&a, &b] {
        assert!(lab
            .imap_login_works(ALICE.login, ALICE.password, 993, Tls::Implicit)
            .unwrap());
        for ns in [lab.client_ns(), lab.server_ns()] {
            let routes = Command::new("ip")
                .args(["-n", ns, "route", "show", "default"])
                .output()
                .unwrap();
            assert_eq!(routes.stdout_text().trim(), "", "{ns} has a default route");
        }
    }
    // The kernel has no route from one lab to the other: nothing is even sent.
    let route = Command::new("ip")
        .args([
            "-n",
            a.client_ns(),
            "route",
            "get",
            &b.mail_ip().to_string(),
        ])
        .output()
        .unwrap();
    assert!(!route.status.success(), "{}", route.describe());
    assert!(
        route.stderr_text().contains("unreachable"),
        "{}",
        route.describe()
    );
    assert_ne!(a.client_ip(), Ipv4Addr::UNSPECIFIED);
}
