//! Discovery over homes: start-up files, `source` includes (relative, `~`, cycles, depth,
//! outside the home), account grouping and scoping, security rules, unreadable files.

// Some imports serve only the unix-only tests (symlinks, owners by uid).
#![cfg_attr(not(unix), allow(unused_imports))]

mod common;

use common::{ann, by_key, canonical, crlf, fixture, home, rene, write};
use mailmend_core::{
    AccountId, AuthMethod, ClientAdapter, ClientKind, Endpoint, Location, Protocol, Security,
    Severity,
};
use mailmend_mutt::{MuttAdapter, CONFIG_UNREADABLE, INCLUDE_OUTSIDE_HOME, MAX_INCLUDE_DEPTH};

fn endpoint(
    protocol: Protocol,
    host: &str,
    port: u16,
    security: Security,
    auth: AuthMethod,
    user: Option<&str>,
) -> Endpoint {
    Endpoint {
        protocol,
        host: host.into(),
        port,
        security,
        auth,
        username: user.map(Into::into),
    }
}

#[test]
fn one_file_per_account_gives_each_account_its_own_settings() {
    for crlf_endings in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let h = rene(tmp.path(), crlf_endings);
        let d = MuttAdapter::new().discover(&h);
        assert!(d.findings.is_empty(), "{:?}", d.findings);
        let keys: Vec<&str> = d.accounts.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(keys, ["folder@3", "folder@4"]);

        let work_file = canonical(&h.path.join(".mutt/accounts/work"));
        let work = by_key(&d, "folder@4");
        let location = Location::File {
            path: work_file.clone(),
        };
        assert_eq!(work.location, location);
        assert_eq!(
            work.id,
            AccountId::derive(ClientKind::Mutt, &location, "folder@4")
        );
        assert_eq!(work.client, ClientKind::Mutt);
        assert_eq!(work.os_user, "rene");
        assert_eq!(work.email.as_deref(), Some("rene.dupont@corp.example"));
        assert_eq!(
            work.incoming,
            Some(endpoint(
                Protocol::Imap,
                "imap.corp.example",
                993,
                Security::Tls,
                AuthMethod::Gssapi,
                Some("rene.dupont@corp.example")
            ))
        );
        // ssl_starttls is off globally, but ssl_force_tls makes mutt require STARTTLS.
        assert_eq!(
            work.outgoing,
            Some(endpoint(
                Protocol::Smtp,
                "smtp.corp.example",
                587,
                Security::StartTls,
                AuthMethod::Any,
                Some("rene.dupont@corp.example")
            ))
        );

        let personal = by_key(&d, "folder@3");
        assert_eq!(
            personal.location,
            Location::File {
                path: canonical(&h.path.join(".mutt/accounts/personal"))
            }
        );
        assert_eq!(personal.email.as_deref(), Some("rene@example.net"));
        assert_eq!(
            personal.incoming,
            Some(endpoint(
                Protocol::Imap,
                "mail.example.net",
                143,
                Security::StartTls,
                AuthMethod::Any,
                Some("rene")
            ))
        );
        assert_eq!(
            personal.outgoing,
            Some(endpoint(
                Protocol::Smtp,
                "mail.example.net",
                465,
                Security::Tls,
                AuthMethod::Any,
                Some("rene")
            ))
        );
    }
}

#[test]
fn two_homes_are_discovered_separately_with_their_users() {
    let tmp = tempfile::tempdir().unwrap();
    let r = rene(tmp.path(), false);
    let a = ann(tmp.path());
    let adapter = MuttAdapter::new();
    let dr = adapter.discover(&r);
    let da = adapter.discover(&a);
    assert_eq!(dr.accounts.len(), 2);
    assert!(dr.accounts.iter().all(|x| x.os_user == "rene"));
    assert_eq!(da.accounts.len(), 1);
    let acc = &da.accounts[0];
    assert_eq!(acc.os_user, "ann");
    assert_eq!(acc.key, "folder@3");
    assert_eq!(acc.email.as_deref(), Some("ann@example.org"));
    assert_eq!(
        acc.incoming,
        Some(endpoint(
            Protocol::Imap,
            "imap.example.org",
            993,
            Security::Tls,
            AuthMethod::Any,
            Some("ann")
        ))
    );
    assert_eq!(acc.outgoing.as_ref().unwrap().security, Security::Tls);
    // The config paths name every start-up file and every included file.
    let paths = adapter.config_paths(&r);
    assert!(paths.contains(&r.path.join(".muttrc")));
    assert!(paths.contains(&canonical(&r.path.join(".mutt/accounts/work"))));
    assert!(paths.contains(&canonical(&r.path.join(".mutt/accounts/personal"))));
    assert!(!paths.iter().any(|p| p.starts_with(&a.path)));
}

#[test]
fn a_home_without_mutt_has_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home(tmp.path(), "nobody");
    let d = MuttAdapter::new().discover(&h);
    assert!(d.accounts.is_empty() && d.findings.is_empty());
}

#[test]
fn an_include_cycle_is_read_once() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home(tmp.path(), "cy");
    write(
        &h.path.join(".muttrc"),
        b"source ~/.mutt/a\nsource .muttrc\nset folder=imaps://a@one.example/\n",
    );
    write(
        &h.path.join(".mutt/a"),
        b"source b\nset spoolfile=imaps://a@one.example/INBOX\n",
    );
    write(
        &h.path.join(".mutt/b"),
        b"source ~/.mutt/a\nsource ../.muttrc\n",
    );
    let d = MuttAdapter::new().discover(&h);
    assert!(d.findings.is_empty(), "{:?}", d.findings);
    assert_eq!(d.accounts.len(), 1);
    assert_eq!(d.accounts[0].key, "spoolfile@2");
}

#[test]
fn includes_nest_only_to_the_depth_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home(tmp.path(), "deep");
    let total = MAX_INCLUDE_DEPTH + 4;
    write(
        &h.path.join(".muttrc"),
        b"source inc/f1\nmailboxes imaps://h0.example/\n",
    );
    for k in 1..=total {
        write(
            &h.path.join(format!("inc/f{k}")),
            format!("source f{}\nmailboxes imaps://h{k}.example/\n", k + 1).as_bytes(),
        );
    }
    let d = MuttAdapter::new().discover(&h);
    // The root is depth 0; files down to MAX_INCLUDE_DEPTH are read, deeper ones are not.
    assert_eq!(d.accounts.len(), MAX_INCLUDE_DEPTH + 1);
    let hosts: Vec<String> = d
        .accounts
        .iter()
        .map(|a| a.incoming.as_ref().unwrap().host.clone())
        .collect();
    assert!(hosts.contains(&format!("h{MAX_INCLUDE_DEPTH}.example")));
    assert!(!hosts.contains(&format!("h{}.example", MAX_INCLUDE_DEPTH + 1)));
}

// Unix only: the test makes a symbolic link with std::os::unix; on Windows a symlink needs
// the SeCreateSymbolicLink privilege and is a different API, so the Windows leg skips it.
#[cfg(unix)]
#[test]
fn an_include_outside_the_home_is_reported_and_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home(tmp.path(), "out");
    let outside = tmp.path().join("shared/muttrc");
    write(&outside, b"set folder=imaps://evil.example/\n");
    write(
        &h.path.join(".muttrc"),
        format!(
            "source {}\nset spoolfile=imaps://me@imap.example.com/\n",
            outside.display()
        )
        .as_bytes(),
    );
    // A link inside the home that points outside is outside too.
    std::os::unix::fs::symlink(&outside, h.path.join("link")).unwrap();
    write(&h.path.join(".neomuttrc"), b"source ~/link\n");
    let d = MuttAdapter::new().discover(&h);
    let hosts: Vec<&str> = d
        .accounts
        .iter()
        .map(|a| a.incoming.as_ref().unwrap().host.as_str())
        .collect();
    assert_eq!(hosts, ["imap.example.com"]);
    assert_eq!(d.findings.len(), 2, "{:?}", d.findings);
    for f in &d.findings {
        assert_eq!(f.code, INCLUDE_OUTSIDE_HOME);
        assert_eq!(f.severity, Severity::Warning);
        assert!(f
            .summary
            .contains(&canonical(&outside).display().to_string()));
    }
    assert_eq!(
        d.findings[0].evidence[0].target,
        format!("{}:1", h.path.join(".muttrc").display())
    );
    assert!(!MuttAdapter::new()
        .config_paths(&h)
        .contains(&canonical(&outside)));
}

#[test]
fn a_malformed_file_is_a_finding_with_its_position_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home(tmp.path(), "bob");
    write(&h.path.join(".muttrc"), &fixture("muttrc-broken"));
    let d = MuttAdapter::new().discover(&h);
    assert!(d.accounts.is_empty());
    assert_eq!(d.findings.len(), 1);
    let f = &d.findings[0];
    assert_eq!(f.code, CONFIG_UNREADABLE);
    assert_eq!(f.severity, Severity::Error);
    let path = canonical(&h.path.join(".muttrc"));
    assert_eq!(f.evidence[0].target, format!("{}:3:16", path.display()));
    assert!(f.evidence[0].result.contains("unterminated quote"));
    assert!(f.summary.contains("line 3, column 16"), "{}", f.summary);
}

#[test]
fn a_malformed_include_makes_its_whole_configuration_unreadable() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home(tmp.path(), "inc");
    write(
        &h.path.join(".muttrc"),
        b"set folder=imaps://me@imap.example.com/\nsource ~/.mutt/colors\n",
    );
    write(
        &h.path.join(".mutt/colors"),
        b"color index red default `open\n",
    );
    let d = MuttAdapter::new().discover(&h);
    assert!(d.accounts.is_empty());
    assert_eq!(d.findings.len(), 1);
    let colors = canonical(&h.path.join(".mutt/colors"));
    assert_eq!(
        d.findings[0].evidence[0].target,
        format!("{}:1:25", colors.display())
    );
}

#[test]
fn plain_urls_follow_ssl_starttls_and_ssl_force_tls() {
    let cases: [(&str, Security); 5] = [
        ("", Security::StartTls),
        ("set ssl_starttls=no\n", Security::StartTls),
        ("set ssl_starttls=no\nunset ssl_force_tls\n", Security::None),
        ("unset ssl_force_tls\n", Security::StartTls),
        (
            "set nossl_force_tls ssl_starttls=ask-no\n",
            Security::StartTls,
        ),
    ];
    for (settings, want) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let h = home(tmp.path(), "s");
        write(
            &h.path.join(".muttrc"),
            format!("{settings}set folder=imap://me@imap.example.com/ smtp_url=smtp://me@smtp.example.com/\nset spoolfile=pops://me@pop.example.com/\n").as_bytes(),
        );
        let d = MuttAdapter::new().discover(&h);
        assert_eq!(d.accounts.len(), 2, "{settings}");
        let imap = &d.accounts[0];
        assert_eq!(imap.incoming.as_ref().unwrap().security, want, "{settings}");
        assert_eq!(imap.incoming.as_ref().unwrap().port, 143);
        let smtp = imap.outgoing.as_ref().unwrap();
        assert_eq!((smtp.security, smtp.port), (want, 25), "{settings}");
        let pop = d.accounts[1].incoming.as_ref().unwrap();
        assert_eq!(
            (pop.protocol, pop.port, pop.security),
            (Protocol::Pop3, 995, Security::Tls)
        );
    }
}

#[test]
fn an_account_reached_from_mutt_and_neomutt_files_is_reported_once() {
    let tmp = tempfile::tempdir().unwrap();
    let h = ann(tmp.path());
    write(
        &h.path.join(".config/neomutt/neomuttrc"),
        b"source ~/.muttrc\nset sidebar_visible\n",
    );
    let d = MuttAdapter::new().discover(&h);
    assert_eq!(d.accounts.len(), 1);
    assert!(d.findings.is_empty());
}

#[test]
fn neomutt_names_of_variables_are_understood() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home(tmp.path(), "neo");
    write(
        &h.path.join(".config/neomutt/neomuttrc"),
        b"set real_name='N' from=n@example.com\nset spool_file=\"imaps://n@imap.example.com/INBOX\"\n",
    );
    let d = MuttAdapter::new().discover(&h);
    assert_eq!(d.accounts.len(), 1);
    assert_eq!(d.accounts[0].key, "spoolfile@2");
    assert_eq!(d.accounts[0].email.as_deref(), Some("n@example.com"));
}

#[test]
fn local_mail_with_smtp_gives_an_outgoing_only_account() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home(tmp.path(), "local");
    write(
        &h.path.join(".muttrc"),
        b"set mbox_type=Maildir folder=~/Mail spoolfile=+INBOX\nset smtp_url=\"smtps://me@smtp.example.com:465\"\nset from=me@example.com\n",
    );
    let d = MuttAdapter::new().discover(&h);
    assert_eq!(d.accounts.len(), 1);
    let a = &d.accounts[0];
    assert_eq!(a.key, "smtp_url@2");
    assert!(a.incoming.is_none());
    assert_eq!(
        a.outgoing,
        Some(endpoint(
            Protocol::Smtp,
            "smtp.example.com",
            465,
            Security::Tls,
            AuthMethod::Any,
            Some("me")
        ))
    );
}

#[test]
fn computed_values_and_hooks_are_not_evaluated() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home(tmp.path(), "dyn");
    write(
        &h.path.join(".muttrc"),
        concat!(
            "set my_server=imap.example.com\n",
            "set folder=\"imaps://$my_server/\"\n",
            "set spoolfile=`echo imaps://x.example/`\n",
            "account-hook . 'set folder=imaps://hooked.example/'\n",
            "source \"gpg -d ~/.mutt/secrets.gpg |\"\n",
            "source $HOME/.mutt/other\n",
        )
        .as_bytes(),
    );
    let d = MuttAdapter::new().discover(&h);
    assert!(d.accounts.is_empty(), "{:?}", d.accounts);
    assert!(d.findings.is_empty());
}

#[test]
fn a_missing_include_is_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home(tmp.path(), "miss");
    write(
        &h.path.join(".muttrc"),
        b"source ~/.mutt/nothing-here\nset folder=imaps://me@imap.example.com/\n",
    );
    let d = MuttAdapter::new().discover(&h);
    assert_eq!(d.accounts.len(), 1);
    assert!(d.findings.is_empty());
}

#[test]
fn crlf_files_read_like_lf_files() {
    let tmp = tempfile::tempdir().unwrap();
    let h = home(tmp.path(), "c");
    write(&h.path.join(".muttrc"), &crlf(&fixture("muttrc-simple")));
    let d = MuttAdapter::new().discover(&h);
    let tmp2 = tempfile::tempdir().unwrap();
    let d2 = MuttAdapter::new().discover(&ann(tmp2.path()));
    assert_eq!(d.accounts[0].incoming, d2.accounts[0].incoming);
    assert_eq!(d.accounts[0].outgoing, d2.accounts[0].outgoing);
    assert_eq!(d.accounts[0].email, d2.accounts[0].email);
}
