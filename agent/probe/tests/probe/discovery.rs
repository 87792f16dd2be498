//! `discover_settings` against a real NSD and Unbound (see `lab_dns`) serving SRV records, and
//! HTTPS servers run in-process on 127.77.n.3:443 with test-CA certificates: the well-behaved
//! autoconfig and Autodiscover answers, and hostile ones (endless bodies, slow drips, redirects
//! to plain HTTP or in circles, plaintext on the TLS port, an untrusted certificate), which must
//! cost bounded time and memory and name nothing.

use crate::common::{self_signed, Identity, Pki};
use crate::lab_dns::DnsLab;
use mailmend_core::{
    DiscoveredSettings, DiscoveryMethod, LookupOutcome, Prober, Protocol, Security,
};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

const EMAIL: &str = "ann@example.test";

/// One request a test web server received.
#[derive(Debug, Clone)]
struct Seen {
    host: String,
    method: String,
    path: String,
    body: String,
}

/// What a test web server does with one request.
enum Reply {
    /// Send these bytes and close.
    Bytes(Vec<u8>),
    /// A 200 with an endless body.
    Endless,
    /// A head, then one byte a second.
    Drip,
}

type Router = dyn Fn(&Seen) -> Reply + Send + Sync;

/// An HTTPS (or, with no identity, plaintext) server on `ip:443`; records every request.
async fn web(
    ip: Ipv4Addr,
    identity: Option<Identity>,
    route: Arc<Router>,
) -> Arc<Mutex<Vec<Seen>>> {
    let listener = TcpListener::bind((ip, 443))
        .await
        .expect("bind 443 (root needed)");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let acceptor = identity.map(|i| i.acceptor());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (route, log, acceptor) = (route.clone(), log.clone(), acceptor.clone());
            tokio::spawn(async move {
                match acceptor {
                    Some(a) => {
                        if let Ok(tls) = a.accept(tcp).await {
                            handle(tls, &*route, &log).await;
                        }
                    }
                    None => handle(tcp, &*route, &log).await,
                }
            });
        }
    });
    seen
}

async fn handle<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    route: &Router,
    log: &Mutex<Vec<Seen>>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let (method, path) = (
        first.next().unwrap_or("").to_string(),
        first.next().unwrap_or("").to_string(),
    );
    let mut host = String::new();
    let mut length = 0usize;
    for l in lines {
        if let Some((n, v)) = l.split_once(':') {
            match n.trim().to_ascii_lowercase().as_str() {
                "host" => host = v.trim().to_string(),
                "content-length" => length = v.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    let req = Seen {
        host,
        method,
        path,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    log.lock().unwrap().push(req.clone());
    match route(&req) {
        Reply::Bytes(b) => {
            let _ = s.write_all(&b).await;
        }
        Reply::Endless => {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n\r\n")
                .await;
            let block = vec![b'x'; 16 * 1024];
            // Bounded so that the test ends even if the client never stops reading.
            for _ in 0..4096 {
                if s.write_all(&block).await.is_err() {
                    return;
                }
            }
        }
        Reply::Drip => {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                .await;
            for _ in 0..60 {
                if s.write_all(b"x").await.is_err() {
                    return;
                }
                let _ = s.flush().await;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    let _ = s.shutdown().await;
}

fn ok(xml: &str) -> Reply {
    Reply::Bytes(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{xml}",
            xml.len()
        )
        .into_bytes(),
    )
}

fn status(code: u16, extra: &str) -> Reply {
    Reply::Bytes(format!("HTTP/1.1 {code} X\r\n{extra}Content-Length: 0\r\n\r\n").into_bytes())
}

fn web_ip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 77, n, 3)
}

fn zone_for_web(n: u8, extra: &str) -> String {
    let ip = web_ip(n);
    format!("@ IN A {ip}\nautoconfig IN A {ip}\nautodiscover IN A {ip}\nad IN A {ip}\n{extra}")
}

fn prober(pki: &Pki, lab: &DnsLab) -> mailmend_probe::RealProber {
    pki.prober(Duration::from_secs(1), Duration::from_millis(800))
        .with_name_servers(vec![lab.resolver])
}

/// Discovery's documented bound, `connect + 4 × io`, plus scheduling slack.
fn bound() -> Duration {
    Duration::from_secs(1) + Duration::from_millis(800) * 4 + Duration::from_millis(700)
}

fn outcome(s: &DiscoveredSettings, location: &str) -> LookupOutcome {
    s.lookups
        .iter()
        .find(|l| l.source.location == location)
        .unwrap_or_else(|| panic!("no lookup of {location} in {:#?}", s.lookups))
        .outcome
        .clone()
}

const AUTOCONFIG: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="example.test">
    <domain>example.test</domain>
    <incomingServer type="imap">
      <hostname>imap.hosting.test</hostname>
      <port>993</port>
      <socketType>SSL</socketType>
      <username>%EMAILADDRESS%</username>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.%EMAILDOMAIN%</hostname>
      <port>587</port>
      <socketType>STARTTLS</socketType>
    </outgoingServer>
  </emailProvider>
</clientConfig>"#;

const POX: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
  <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">
    <Account>
      <AccountType>email</AccountType>
      <Action>settings</Action>
      <Protocol><Type>IMAP</Type><Server>imap.hosting.test</Server><Port>993</Port><SSL>on</SSL></Protocol>
      <Protocol><Type>EXCH</Type><Server>guid@example.test</Server><EwsUrl>https://ews.hosting.test/EWS/Exchange.asmx</EwsUrl></Protocol>
    </Account>
  </Response>
</Autodiscover>"#;

#[tokio::test]
async fn srv_records_come_in_client_order_and_a_dot_target_means_not_offered() {
    let records = "_imaps._tcp IN SRV 10 0 993 backup.hosting.test.\n\
                   _imaps._tcp IN SRV 0 5 993 mail.hosting.test.\n\
                   _imap._tcp IN SRV 0 90 143 starttls.hosting.test.\n\
                   _pop3s._tcp IN SRV 0 0 0 .\n\
                   _submissions._tcp IN SRV 0 1 465 smtp.hosting.test.";
    let lab = DnsLab::start(40, records).await;
    let pki = Pki::new();
    let started = Instant::now();
    let s = prober(&pki, &lab)
        .discover_settings("example.test", Some(EMAIL))
        .await;
    assert!(started.elapsed() < bound(), "took {:?}", started.elapsed());
    let got: Vec<(Protocol, &str, u16, Security)> = s
        .servers
        .iter()
        .map(|x| (x.protocol, x.host.as_str(), x.port, x.security))
        .collect();
    assert_eq!(
        got,
        vec![
            (Protocol::Imap, "mail.hosting.test", 993, Security::Tls),
            (
                Protocol::Imap,
                "starttls.hosting.test",
                143,
                Security::StartTls
            ),
            (Protocol::Imap, "backup.hosting.test", 993, Security::Tls),
            (Protocol::Smtp, "smtp.hosting.test", 465, Security::Tls),
        ]
    );
    assert!(s
        .servers
        .iter()
        .all(|x| x.source.method == DiscoveryMethod::Srv));
    assert_eq!(
        outcome(&s, "_pop3s._tcp.example.test"),
        LookupOutcome::NotOffered
    );
    assert!(matches!(
        outcome(&s, "_pop3._tcp.example.test"),
        LookupOutcome::NotFound { .. }
    ));
    // Nothing is published over HTTPS: the names do not exist.
    assert!(matches!(
        outcome(
            &s,
            "https://autoconfig.example.test/mail/config-v1.1.xml?emailaddress=ann%40example.test"
        ),
        LookupOutcome::NotFound { .. }
    ));
    assert_eq!(
        s.named_hosts(),
        vec![
            "mail.hosting.test",
            "starttls.hosting.test",
            "backup.hosting.test",
            "smtp.hosting.test"
        ]
    );
}

#[tokio::test]
async fn autoconfig_and_autodiscover_over_https_name_servers_and_a_login_wall_is_reported() {
    let n = 41;
    let lab = DnsLab::start(n, &zone_for_web(n, "")).await;
    let pki = Pki::new();
    let identity = pki.ca.leaf(&[
        "example.test",
        "autoconfig.example.test",
        "autodiscover.example.test",
    ]);
    let seen = web(
        web_ip(n),
        Some(identity),
        Arc::new(|r: &Seen| match (r.host.as_str(), r.method.as_str()) {
            ("autoconfig.example.test", "GET") => ok(AUTOCONFIG),
            ("autodiscover.example.test", "POST") => ok(POX),
            ("example.test", "POST") => status(
                401,
                "WWW-Authenticate: Negotiate\r\nWWW-Authenticate: NTLM\r\nWWW-Authenticate: Basic realm=\"example\"\r\n",
            ),
            _ => status(404, ""),
        }),
    )
    .await;
    let s = prober(&pki, &lab)
        .discover_settings("example.test", Some(EMAIL))
        .await;
    let got: Vec<(Protocol, &str, u16, Security, DiscoveryMethod)> = s
        .servers
        .iter()
        .map(|x| {
            (
                x.protocol,
                x.host.as_str(),
                x.port,
                x.security,
                x.source.method,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                Protocol::Imap,
                "imap.hosting.test",
                993,
                Security::Tls,
                DiscoveryMethod::Autoconfig
            ),
            (
                Protocol::Smtp,
                "smtp.example.test",
                587,
                Security::StartTls,
                DiscoveryMethod::Autoconfig
            ),
            (
                Protocol::Exchange,
                "ews.hosting.test",
                443,
                Security::Tls,
                DiscoveryMethod::Autodiscover
            ),
        ]
    );
    assert_eq!(
        outcome(&s, "https://example.test/autodiscover/autodiscover.xml"),
        LookupOutcome::Unauthorized {
            status: 401,
            schemes: Some("Negotiate, NTLM, Basic".into())
        }
    );
    assert_eq!(s.unauthorized().count(), 1);
    assert!(matches!(
        outcome(
            &s,
            "https://example.test/.well-known/autoconfig/mail/config-v1.1.xml"
        ),
        LookupOutcome::NotFound { .. }
    ));
    let seen = seen.lock().unwrap().clone();
    let get = seen
        .iter()
        .find(|r| r.method == "GET" && r.host == "autoconfig.example.test")
        .unwrap();
    assert_eq!(
        get.path,
        "/mail/config-v1.1.xml?emailaddress=ann%40example.test"
    );
    let post = seen.iter().find(|r| r.method == "POST").unwrap();
    assert!(
        post.body
            .contains("<EMailAddress>ann@example.test</EMailAddress>"),
        "{}",
        post.body
    );
    // Nothing but the address is sent: no credential of any kind.
    assert!(seen
        .iter()
        .all(|r| !r.body.to_ascii_lowercase().contains("password")));
}

#[tokio::test]
async fn autodiscover_is_also_asked_where_its_srv_record_points() {
    let n = 42;
    let lab = DnsLab::start(
        n,
        &zone_for_web(n, "_autodiscover._tcp IN SRV 0 0 443 ad.example.test."),
    )
    .await;
    let pki = Pki::new();
    let identity = pki.ca.leaf(&["ad.example.test"]);
    let seen = web(
        web_ip(n),
        Some(identity),
        Arc::new(|r: &Seen| match (r.host.as_str(), r.method.as_str()) {
            ("ad.example.test", "POST") => ok(POX),
            _ => status(404, ""),
        }),
    )
    .await;
    let s = prober(&pki, &lab)
        .discover_settings("example.test", Some(EMAIL))
        .await;
    assert_eq!(
        outcome(&s, "_autodiscover._tcp.example.test"),
        LookupOutcome::Points {
            to: "https://ad.example.test/autodiscover/autodiscover.xml".into()
        }
    );
    assert_eq!(
        outcome(&s, "https://ad.example.test/autodiscover/autodiscover.xml"),
        LookupOutcome::Found { servers: 2 }
    );
    assert_eq!(s.servers[0].host, "imap.hosting.test");
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .any(|r| r.host == "ad.example.test"));
}

#[tokio::test]
async fn hostile_web_servers_cost_bounded_time_and_memory_and_name_nothing() {
    let n = 43;
    let lab = DnsLab::start(n, &zone_for_web(n, "")).await;
    let pki = Pki::new();
    let identity = pki.ca.leaf(&[
        "example.test",
        "autoconfig.example.test",
        "autodiscover.example.test",
    ]);
    web(
        web_ip(n),
        Some(identity),
        Arc::new(|r: &Seen| match (r.host.as_str(), r.path.as_str()) {
            ("autoconfig.example.test", _) => Reply::Endless,
            ("example.test", p) if p.starts_with("/.well-known") => Reply::Drip,
            // A redirect to plain HTTP, and one in circles.
            ("autodiscover.example.test", _) => status(
                302,
                "Location: http://autodiscover.example.test/autodiscover/autodiscover.xml\r\n",
            ),
            ("example.test", _) => status(307, "Location: /autodiscover/autodiscover.xml\r\n"),
            _ => status(404, ""),
        }),
    )
    .await;
    let started = Instant::now();
    let s = prober(&pki, &lab)
        .discover_settings("example.test", Some(EMAIL))
        .await;
    let took = started.elapsed();
    assert!(took < bound(), "took {took:?}");
    assert!(s.servers.is_empty(), "{:#?}", s.servers);
    let failed = |location: &str, words: &str| match outcome(&s, location) {
        LookupOutcome::Failed { detail } => {
            assert!(detail.contains(words), "{location}: {detail}")
        }
        other => panic!("{location}: {other:?}"),
    };
    failed(
        "https://autoconfig.example.test/mail/config-v1.1.xml?emailaddress=ann%40example.test",
        "larger than",
    );
    failed(
        "https://example.test/.well-known/autoconfig/mail/config-v1.1.xml",
        "no complete answer",
    );
    failed(
        "https://autodiscover.example.test/autodiscover/autodiscover.xml",
        "not an https url",
    );
    failed(
        "https://example.test/autodiscover/autodiscover.xml",
        "redirects",
    );
}

#[tokio::test]
async fn plaintext_on_the_https_port_and_an_untrusted_certificate_are_not_believed() {
    let n = 44;
    let other = Ipv4Addr::new(127, 77, n, 4);
    let zone = format!(
        "@ IN A {}\nautoconfig IN A {other}\nautodiscover IN A {other}\n",
        web_ip(n)
    );
    let lab = DnsLab::start(n, &zone).await;
    let pki = Pki::new();
    // The apex answers in plain HTTP on 443; autoconfig and autodiscover present a
    // self-signed certificate. Both serve documents that would name a server.
    let plain: Arc<Router> = Arc::new(|_: &Seen| ok(AUTOCONFIG));
    web(web_ip(n), None, plain).await;
    let forged: Arc<Router> = Arc::new(|r: &Seen| {
        if r.method == "POST" {
            ok(POX)
        } else {
            ok(AUTOCONFIG)
        }
    });
    web(
        other,
        Some(self_signed(&[
            "autoconfig.example.test",
            "autodiscover.example.test",
        ])),
        forged,
    )
    .await;
    let s = prober(&pki, &lab)
        .discover_settings("example.test", Some(EMAIL))
        .await;
    assert!(s.servers.is_empty(), "{:#?}", s.servers);
    match outcome(
        &s,
        "https://autoconfig.example.test/mail/config-v1.1.xml?emailaddress=ann%40example.test",
    ) {
        LookupOutcome::Failed { detail } => assert!(detail.contains("self-signed"), "{detail}"),
        other => panic!("{other:?}"),
    }
    match outcome(
        &s,
        "https://example.test/.well-known/autoconfig/mail/config-v1.1.xml",
    ) {
        LookupOutcome::Failed { detail } => assert!(detail.contains("tls"), "{detail}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn without_an_address_autodiscover_is_not_asked_and_a_bad_domain_asks_nothing() {
    let n = 45;
    let lab = DnsLab::start(n, &zone_for_web(n, "")).await;
    let pki = Pki::new();
    let identity = pki.ca.leaf(&[
        "example.test",
        "autoconfig.example.test",
        "autodiscover.example.test",
    ]);
    let seen = web(
        web_ip(n),
        Some(identity),
        Arc::new(|_: &Seen| status(404, "")),
    )
    .await;
    let p = prober(&pki, &lab);
    let s = p.discover_settings("example.test", None).await;
    assert!(s
        .lookups
        .iter()
        .all(|l| l.source.method != DiscoveryMethod::Autodiscover));
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .all(|r| r.method == "GET" && !r.path.contains('?')));
    let bad = p.discover_settings("exa mple/../test", Some(EMAIL)).await;
    assert!(bad.servers.is_empty());
    assert!(matches!(
        bad.lookups[0].outcome,
        LookupOutcome::Failed { .. }
    ));
}
