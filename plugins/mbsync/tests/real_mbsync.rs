//! The reading of security options, default ports and planned edits, checked against the real
//! mbsync. mbsync has no mode that prints its configuration, so the test watches what it does:
//! `mbsync -V` prints the address and port it connects to, and a listener on 127.0.0.1 sees
//! whether it starts with a TLS handshake (IMAPS), asks for STARTTLS after the greeting, or
//! neither (no TLS). The listener only observes; it serves no mail. Needs mbsync installed
//! (`tests/install-deps.sh` installs it).

// Unix only: the oracle is the Linux mbsync program, which a Windows test binary under Wine
// cannot run.
#![cfg(unix)]

mod common;

use common::{adapter, apply, file_edits};
use mailmend_core::{ClientAdapter, EndpointChange, Home, Role, Security};
use mailmend_mbsync::accounts::endpoint;
use mailmend_mbsync::{installed_version, MbsyncFile};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What mbsync was seen to do.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    port: u16,
    /// `None` when nothing listened on the port, so the security could not be seen.
    security: Option<Security>,
}

/// The rest of a configuration that makes `mbsync -l ch` open the server section `store`.
fn tail(dir: &Path, store: &str) -> String {
    let maildir = dir.join("mail");
    std::fs::create_dir_all(&maildir).unwrap();
    format!(
        "\nMaildirStore local\nPath {0}/\nInbox {0}/INBOX\n\nChannel ch\nFar :{store}:\nNear :local:\n",
        maildir.display()
    )
}

/// Classifies the first bytes of the connection: a TLS record, or (after our greeting) a
/// STARTTLS command, or anything else.
fn classify(listener: &TcpListener) -> Option<Security> {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut conn = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("mbsync never connected: {e}"),
        }
    };
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(1000)))
        .unwrap();
    let mut buf = [0u8; 512];
    match conn.read(&mut buf) {
        Ok(n) if n > 0 && buf[0] == 0x16 => return Some(Security::Tls),
        Ok(n) if n > 0 => panic!("unexpected first bytes {:?}", &buf[..n]),
        _ => {}
    }
    conn.write_all(b"* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] ready\r\n")
        .unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let n = conn.read(&mut buf).unwrap_or(0);
    let said = String::from_utf8_lossy(&buf[..n]).to_ascii_uppercase();
    Some(if said.contains("STARTTLS") {
        Security::StartTls
    } else {
        Security::None
    })
}

/// Runs `mbsync -V -l ch` on `config` and watches it.
fn watch(dir: &Path, config: &str, listener: Option<&TcpListener>) -> Seen {
    let cfg = dir.join("rc");
    std::fs::write(&cfg, config).unwrap();
    let log_path = dir.join("log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new("mbsync")
        .arg("-c")
        .arg(&cfg)
        .args(["-V", "-l", "ch"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("mbsync must be installed for this test (see tests/install-deps.sh)");
    let security = listener.and_then(classify);
    let deadline = Instant::now() + Duration::from_secs(10);
    let port = loop {
        let out = std::fs::read_to_string(&log_path).unwrap();
        let port = out.lines().find_map(|l| {
            let rest = l.strip_prefix("Connecting to 127.0.0.1 (127.0.0.1:")?;
            rest.split(')').next()?.parse().ok()
        });
        if let Some(p) = port {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "mbsync printed no connection: {out}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    Seen { port, security }
}

/// What mailmend reads from the file.
fn ours(config: &str, key: &str) -> (u16, Security) {
    let f = MbsyncFile::parse(config.as_bytes()).unwrap();
    let e = endpoint(f.server(key).unwrap()).unwrap();
    (e.port, e.security)
}

#[test]
fn security_options_read_as_mbsync_uses_them() {
    let cases: [(&str, &str); 9] = [
        ("", "Host 127.0.0.1\n"),
        ("SSLType None", "Host 127.0.0.1\n"),
        ("SSLType STARTTLS", "Host 127.0.0.1\n"),
        ("sslType imaps", "Host 127.0.0.1\n"),
        ("UseIMAPS yes", "Host 127.0.0.1\n"),
        ("UseIMAPS no", "Host 127.0.0.1\n"),
        ("RequireSSL no\nUseTLSv1 no", "Host 127.0.0.1\n"),
        ("RequireSSL no", "Host \"127.0.0.1\"\n"),
        ("", "Host imaps://127.0.0.1\n"),
    ];
    for (i, (options, host)) in cases.into_iter().enumerate() {
        let tmp = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let config = format!(
            "IMAPAccount a\n{host}Port {port}\nUser u\nPass p\n{options}\n\nIMAPStore s\nAccount a\n{}",
            tail(tmp.path(), "s")
        );
        let seen = watch(tmp.path(), &config, Some(&listener));
        let (p, s) = ours(&config, "a");
        assert_eq!(
            Seen {
                port: p,
                security: Some(s)
            },
            seen,
            "case {i}: {options:?}"
        );
    }
}

#[test]
fn default_ports_read_as_mbsync_uses_them() {
    for (options, expected) in [("SSLType IMAPS", 993), ("", 143), ("Port 0", 143)] {
        let tmp = tempfile::tempdir().unwrap();
        // An IMAPStore holding its server itself, as older configurations do.
        let config = format!(
            "IMAPStore s\nHost 127.0.0.1\nUser u\nPass p\n{options}\n{}",
            tail(tmp.path(), "s")
        );
        let seen = watch(tmp.path(), &config, None);
        assert_eq!(seen.port, expected, "{options:?}");
        assert_eq!(ours(&config, "store:s").0, expected, "{options:?}");
    }
}

#[test]
fn planned_edits_take_effect_in_mbsync() {
    let cases: [(&str, Security); 4] = [
        ("SSLType STARTTLS\n", Security::Tls),
        ("UseIMAPS yes\n", Security::StartTls),
        ("", Security::Tls),
        ("SSLType IMAPS\nAuthMechs PLAIN\n", Security::StartTls),
    ];
    for (options, target) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let home = Home {
            user: "rene".into(),
            path: tmp.path().join("home"),
            uid: None,
            gid: None,
        };
        std::fs::create_dir_all(&home.path).unwrap();
        let old = TcpListener::bind("127.0.0.1:0").unwrap();
        let new = TcpListener::bind("127.0.0.1:0").unwrap();
        let (old_port, new_port) = (
            old.local_addr().unwrap().port(),
            new.local_addr().unwrap().port(),
        );
        let config = format!(
            "IMAPAccount a\nHost 127.0.0.1\nPort {old_port}\nUser u\nPass p\n{options}\nIMAPStore s\nAccount a\n{}",
            tail(tmp.path(), "s")
        );
        let path = home.path.join(".mbsyncrc");
        std::fs::write(&path, &config).unwrap();
        let a = adapter().discover(&home).accounts.remove(0);
        let change = EndpointChange {
            port: Some(new_port),
            security: Some(target),
            ..Default::default()
        };
        apply(&file_edits(
            adapter().plan(&a, Role::Incoming, &change).unwrap(),
        ));
        let edited = std::fs::read_to_string(&path).unwrap();
        let seen = watch(tmp.path(), &edited, Some(&new));
        assert_eq!(
            seen,
            Seen {
                port: new_port,
                security: Some(target)
            },
            "{options:?} -> {target:?}"
        );
    }
}

#[test]
fn the_installed_isync_version_is_read() {
    let v = installed_version().expect("mbsync --version must print its version");
    assert!((v.major, v.minor) >= (1, 3), "{v:?}");
}
