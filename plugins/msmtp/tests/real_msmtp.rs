//! The reading of defaults, inheritance, quoting and default ports, and every planned edit,
//! checked against the real msmtp: `msmtp -C FILE -a NAME -P` prints the configuration msmtp
//! would use for an account, without sending anything. Needs msmtp installed
//! (`tests/install-deps.sh` installs it).

// Unix only: the oracle is the Linux msmtp program (`msmtp -P`), which a Windows test binary
// under Wine cannot run.
#![cfg(unix)]

mod common;

use common::{account, apply, crlf, file_edits, fixture, home_with, write};
use mailmend_core::{AuthMethod, ClientAdapter, Endpoint, EndpointChange, Role, Security};
use mailmend_msmtp::accounts::{auth_of, endpoint};
use mailmend_msmtp::{MsmtpAdapter, MsmtpFile};
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

/// What `msmtp -P` printed, or its error.
fn msmtp_print(path: &Path, account: &str) -> Result<HashMap<String, String>, String> {
    let out = Command::new("msmtp")
        .args(["-C"])
        .arg(path)
        .args(["-a", account, "-P"])
        .env("USER", "rene")
        .output()
        .expect("msmtp must be installed for this test (see tests/install-deps.sh)");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// The endpoint msmtp printed.
fn msmtp_endpoint(p: &HashMap<String, String>) -> Endpoint {
    let on = |k: &str| p[k] == "on";
    let security = match (on("tls"), on("tls_starttls")) {
        (false, _) => Security::None,
        (true, true) => Security::StartTls,
        (true, false) => Security::Tls,
    };
    let auth = match p["auth"].as_str() {
        "none" => AuthMethod::None,
        "choose" => AuthMethod::Any,
        m => auth_of(Some(&m.to_ascii_lowercase())),
    };
    let user = &p["user"];
    Endpoint {
        protocol: mailmend_core::Protocol::Smtp,
        host: p["host"].clone(),
        port: p["port"].parse().unwrap(),
        security,
        auth,
        username: (user != "(not set)").then(|| user.clone()),
    }
}

/// Every account of the file reads as msmtp reads it; accounts mailmend skips are ones msmtp
/// cannot send with either.
fn agrees_with_msmtp(path: &Path) -> usize {
    let file = MsmtpFile::parse(&std::fs::read(path).unwrap()).unwrap();
    let mut checked = 0;
    for entry in file.accounts() {
        let printed = msmtp_print(path, &entry.name);
        match endpoint(entry) {
            Some(ours) => {
                let p = printed.unwrap_or_else(|e| panic!("{}: msmtp failed: {e}", entry.name));
                assert_eq!(ours, msmtp_endpoint(&p), "account {}", entry.name);
                let from = entry.from().map(|f| f.replace("%U", "rene"));
                assert_eq!(
                    from.unwrap_or_else(|| "(not set)".into()),
                    p["from"],
                    "account {}",
                    entry.name
                );
                checked += 1;
            }
            None => assert!(printed.is_err(), "msmtp accepts {}", entry.name),
        }
    }
    checked
}

#[test]
fn the_fixture_reads_as_msmtp_reads_it() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, bytes) in [fixture("msmtprc"), crlf(&fixture("msmtprc"))]
        .into_iter()
        .enumerate()
    {
        let path = tmp.path().join(format!("rc{i}"));
        write(&path, &bytes);
        assert_eq!(agrees_with_msmtp(&path), 5);
    }
}

#[test]
fn defaults_parents_quotes_and_ports_read_as_msmtp_reads_them() {
    let text = "\
defaults
port 2525
tls on
tls_starttls off
auth on

account base
host base.example.com
from base@example.com
user \"  spaced user  \"

account child : base
tls_starttls on

account late
host late.example.com
tls off
port 0x24b

# defaults changed later apply only to accounts defined later
defaults
port 1000

account after : late
host after.example.com
account quoted
host \"quoted.example.com\" # trailing
tls_starttls
auth scram-sha-256
from x@y # z

account multi : child , late
user multi

account noport
host noport.example.com
tls
tls_starttls off
port \"465\"

account default : child
";
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("rc");
    write(&path, text.as_bytes());
    assert_eq!(agrees_with_msmtp(&path), 8);
}

#[test]
fn planned_edits_read_back_in_msmtp_as_planned() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home_with(tmp.path(), "rene", &fixture("msmtprc"));
    let path = h.path.join(".msmtprc");
    let changes: [(&str, EndpointChange); 6] = [
        (
            "private-alias",
            EndpointChange {
                port: Some(587),
                security: Some(Security::StartTls),
                ..Default::default()
            },
        ),
        (
            "private",
            EndpointChange {
                auth: Some(AuthMethod::PasswordEncrypted),
                ..Default::default()
            },
        ),
        (
            "work",
            EndpointChange {
                security: Some(Security::Tls),
                port: Some(465),
                ..Default::default()
            },
        ),
        (
            "legacy",
            EndpointChange {
                host: Some("mx2.legacy.example".into()),
                security: Some(Security::StartTls),
                auth: Some(AuthMethod::Any),
                ..Default::default()
            },
        ),
        (
            "default",
            EndpointChange {
                port: Some(2525),
                ..Default::default()
            },
        ),
        (
            "private",
            EndpointChange {
                security: Some(Security::StartTls),
                ..Default::default()
            },
        ),
    ];
    for (key, change) in changes {
        let a = account(&h, key);
        let mut expected = a.outgoing.clone().unwrap();
        let others: Vec<_> = MsmtpAdapter
            .discover(&h)
            .accounts
            .into_iter()
            .filter(|o| o.key != key)
            .collect();
        let edits = file_edits(MsmtpAdapter.plan(&a, Role::Outgoing, &change).unwrap());
        apply(&edits);
        expected.host = change.host.clone().unwrap_or(expected.host);
        expected.port = change.port.unwrap_or(expected.port);
        expected.security = change.security.unwrap_or(expected.security);
        expected.auth = change.auth.clone().unwrap_or(expected.auth);
        let p = msmtp_print(&path, key).unwrap();
        assert_eq!(msmtp_endpoint(&p), expected, "after changing {key}");
        agrees_with_msmtp(&path);
        // Accounts that do not inherit from the changed one keep what they had.
        for o in others {
            let inherits = (key == "work" && o.key == "default")
                || (key == "private" && o.key == "private-alias");
            if !inherits {
                let now = msmtp_endpoint(&msmtp_print(&path, &o.key).unwrap());
                assert_eq!(Some(now), o.outgoing, "{} changed with {key}", o.key);
            }
        }
    }
}
