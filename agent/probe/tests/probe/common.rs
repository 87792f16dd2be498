//! Test fixtures: a test PKI made with rcgen, and real servers on 127.0.0.1 (well-behaved
//! minimal IMAP, POP3 and SMTP servers, and hostile ones) run in-process with Tokio.

use mailmend_core::{ProbeTarget, Protocol, Security};
use mailmend_probe::{ProbeConfig, RealProber};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// A certificate chain and its key, as a TLS server presents them.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    pub fn acceptor(&self) -> TlsAcceptor {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .unwrap();
        TlsAcceptor::from(Arc::new(cfg))
    }
}

/// A certificate authority for tests.
pub struct Ca {
    pub cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// An intermediate CA signed by this one.
    pub fn intermediate(&self, name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Ca { cert, key }
    }

    /// A leaf for `names`, valid between the two times, optionally naming where its issuer's
    /// certificate can be fetched (AIA caIssuers).
    pub fn leaf_with(
        &self,
        names: &[&str],
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
        ca_issuers_url: Option<&str>,
    ) -> Identity {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
        params.not_before = not_before;
        params.not_after = not_after;
        if let Some(url) = ca_issuers_url {
            params.custom_extensions.push(aia_ca_issuers(url));
        }
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Identity {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }

    pub fn leaf(&self, names: &[&str]) -> Identity {
        let now = OffsetDateTime::now_utc();
        self.leaf_with(
            names,
            now - time::Duration::days(1),
            now + time::Duration::days(30),
            None,
        )
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }
}

/// An AIA extension with one caIssuers URL, DER-encoded by hand (rcgen has no helper).
fn aia_ca_issuers(url: &str) -> CustomExtension {
    let mut general_name = vec![0x86, url.len() as u8];
    general_name.extend_from_slice(url.as_bytes());
    // id-ad-caIssuers, 1.3.6.1.5.5.7.48.2
    let mut description = vec![0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02];
    description.extend_from_slice(&general_name);
    let mut access = vec![0x30, description.len() as u8];
    access.extend_from_slice(&description);
    let mut seq = vec![0x30, access.len() as u8];
    seq.extend_from_slice(&access);
    CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], seq)
}

/// A self-signed leaf for `names`.
pub fn self_signed(names: &[&str]) -> Identity {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, names[0]);
    let cert = params.self_signed(&key).unwrap();
    Identity {
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

/// The test PKI: a CA trusted through `extra_ca_files`, its file kept alive here.
pub struct Pki {
    pub ca: Ca,
    pub ca_file: tempfile::NamedTempFile,
}

impl Pki {
    pub fn new() -> Pki {
        let ca = Ca::new("mailmend test CA");
        let mut ca_file = tempfile::NamedTempFile::new().unwrap();
        ca_file.write_all(ca.pem().as_bytes()).unwrap();
        ca_file.flush().unwrap();
        Pki { ca, ca_file }
    }

    /// A prober trusting the test CA, with short timeouts.
    pub fn prober(&self, connect: Duration, io: Duration) -> RealProber {
        RealProber::new(ProbeConfig {
            connect_timeout: connect,
            io_timeout: io,
            extra_ca_files: vec![self.ca_file.path().to_path_buf()],
            ..ProbeConfig::default()
        })
        .unwrap()
    }

    pub fn quick_prober(&self) -> RealProber {
        self.prober(Duration::from_secs(2), Duration::from_secs(2))
    }
}

pub fn target(protocol: Protocol, port: u16, security: Security) -> ProbeTarget {
    ProbeTarget {
        protocol,
        host: "localhost".into(),
        port,
        security,
    }
}

/// Runs `handler` for every connection to a fresh listener on 127.0.0.1; returns the port.
pub async fn serve<F, Fut>(handler: F) -> u16
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move { handler(stream).await });
        }
    });
    port
}

/// A port on 127.0.0.1 where nothing listens.
pub async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}

pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Which mail protocol a [`MailServer`] speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Speak {
    Imap,
    Pop3,
    Smtp,
}

/// What the STARTTLS command gets.
#[derive(Clone)]
pub enum StartTls {
    /// Accepted: the handshake follows with this acceptor.
    Accept(TlsAcceptor),
    /// Refused with an error reply.
    Refuse,
    /// Accepted, with plaintext pipelined right behind the "go ahead" (an injection).
    AcceptWithTrailingData(TlsAcceptor),
}

/// A minimal, well-behaved mail server: greeting, capability listing, STARTTLS, goodbye.
/// It records every command line it receives.
#[derive(Clone)]
pub struct MailServer {
    pub speak: Speak,
    /// TLS from the first byte.
    pub implicit: Option<TlsAcceptor>,
    pub starttls: Option<StartTls>,
    /// The greeting line(s), without CRLF.
    pub greeting: Vec<String>,
    /// Capabilities before TLS (IMAP atoms, POP3 CAPA lines, SMTP EHLO keyword lines).
    pub caps_plain: Vec<String>,
    /// Capabilities after TLS.
    pub caps_tls: Vec<String>,
    /// Delay before every reply, greeting included.
    pub delay: Duration,
    /// Extra delay before the greeting only.
    pub greeting_delay: Duration,
    pub log: Arc<Mutex<Vec<String>>>,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

impl MailServer {
    pub fn new(speak: Speak) -> MailServer {
        let greeting = match speak {
            Speak::Imap => vec!["* OK test IMAP ready".to_string()],
            Speak::Pop3 => vec!["+OK test POP3 ready".to_string()],
            Speak::Smtp => vec!["220 localhost ESMTP test".to_string()],
        };
        MailServer {
            speak,
            implicit: None,
            starttls: None,
            greeting,
            caps_plain: Vec::new(),
            caps_tls: Vec::new(),
            delay: Duration::ZERO,
            greeting_delay: Duration::ZERO,
            log: Arc::new(Mutex::new(Vec::new())),
        }
    }

    pub fn caps(mut self, plain: &[&str], tls: &[&str]) -> MailServer {
        self.caps_plain = strings(plain);
        self.caps_tls = strings(tls);
        self
    }

    pub fn greeting(mut self, lines: &[&str]) -> MailServer {
        self.greeting = strings(lines);
        self
    }

    /// The commands the server received. The probe closes right after its LOGOUT/QUIT without
    /// waiting for the answer, so the server may still be reading the last one: wait (bounded)
    /// until it has seen a goodbye or the client's close.
    pub async fn commands(&self) -> Vec<String> {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            let log = self.log.lock().unwrap().clone();
            let said_goodbye = log
                .last()
                .is_some_and(|c| c.ends_with("LOGOUT") || c == "QUIT");
            if said_goodbye || std::time::Instant::now() >= until {
                return log;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    pub async fn start(self) -> u16 {
        serve(move |tcp| {
            let server = self.clone();
            async move {
                let stream: Box<dyn Stream> = match &server.implicit {
                    Some(acceptor) => match acceptor.accept(tcp).await {
                        Ok(tls) => Box::new(tls),
                        Err(_) => return,
                    },
                    None => Box::new(tcp),
                };
                let tls = server.implicit.is_some();
                let _ = server.session(stream, tls).await;
            }
        })
        .await
    }

    async fn send(
        &self,
        w: &mut BufReader<Box<dyn Stream>>,
        lines: &[String],
    ) -> std::io::Result<()> {
        tokio::time::sleep(self.delay).await;
        let mut out = String::new();
        for l in lines {
            out.push_str(l);
            out.push_str("\r\n");
        }
        w.get_mut().write_all(out.as_bytes()).await?;
        w.get_mut().flush().await
    }

    async fn session(&self, stream: Box<dyn Stream>, mut tls: bool) -> std::io::Result<()> {
        let mut conn = BufReader::new(stream);
        tokio::time::sleep(self.greeting_delay).await;
        self.send(&mut conn, &self.greeting).await?;
        loop {
            let mut line = String::new();
            if conn.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let line = line.trim_end().to_string();
            self.log.lock().unwrap().push(line.clone());
            let caps = if tls {
                &self.caps_tls
            } else {
                &self.caps_plain
            };
            let (tag, cmd) = match self.speak {
                Speak::Imap => match line.split_once(' ') {
                    Some((t, c)) => (t.to_string(), c.to_ascii_uppercase()),
                    None => (line.clone(), String::new()),
                },
                _ => (String::new(), line.to_ascii_uppercase()),
            };
            let verb = cmd.split(' ').next().unwrap_or("").to_string();
            let reply: Vec<String> = match (self.speak, verb.as_str()) {
                (Speak::Imap, "CAPABILITY") => vec![
                    format!("* CAPABILITY {}", caps.join(" ")),
                    format!("{tag} OK CAPABILITY completed"),
                ],
                (Speak::Imap, "LOGOUT") => {
                    self.send(
                        &mut conn,
                        &[
                            "* BYE logging out".to_string(),
                            format!("{tag} OK LOGOUT completed"),
                        ],
                    )
                    .await?;
                    return Ok(());
                }
                (Speak::Pop3, "CAPA") => {
                    let mut r = vec!["+OK capability list follows".to_string()];
                    r.extend(caps.iter().cloned());
                    r.push(".".into());
                    r
                }
                (Speak::Pop3, "QUIT") | (Speak::Smtp, "QUIT") => {
                    let bye = if self.speak == Speak::Pop3 {
                        "+OK bye"
                    } else {
                        "221 bye"
                    };
                    self.send(&mut conn, &[bye.to_string()]).await?;
                    return Ok(());
                }
                (Speak::Smtp, "EHLO") => {
                    let mut r = vec![format!("localhost Hello {}", &cmd[5.min(cmd.len())..])];
                    r.extend(caps.iter().cloned());
                    let n = r.len();
                    r.iter()
                        .enumerate()
                        .map(|(i, t)| format!("250{}{t}", if i + 1 == n { ' ' } else { '-' }))
                        .collect()
                }
                (Speak::Smtp, "HELO") => vec!["250 localhost".to_string()],
                (_, "STARTTLS") | (Speak::Pop3, "STLS") if !tls => {
                    let ok = match self.speak {
                        Speak::Imap => format!("{tag} OK begin TLS"),
                        Speak::Pop3 => "+OK begin TLS".to_string(),
                        Speak::Smtp => "220 ready to start TLS".to_string(),
                    };
                    match self.starttls.clone() {
                        Some(StartTls::Accept(acceptor)) => {
                            self.send(&mut conn, &[ok]).await?;
                            let inner = conn.into_inner();
                            let upgraded = acceptor.accept(inner).await?;
                            conn = BufReader::new(Box::new(upgraded));
                            tls = true;
                            continue;
                        }
                        Some(StartTls::AcceptWithTrailingData(acceptor)) => {
                            let injected = match self.speak {
                                Speak::Imap => "* OK injected",
                                Speak::Pop3 => "+OK injected",
                                Speak::Smtp => "250 injected",
                            };
                            self.send(&mut conn, &[ok, injected.to_string()]).await?;
                            let inner = conn.into_inner();
                            let upgraded = acceptor.accept(inner).await?;
                            conn = BufReader::new(Box::new(upgraded));
                            tls = true;
                            continue;
                        }
                        Some(StartTls::Refuse) | None => match self.speak {
                            Speak::Imap => vec![format!("{tag} NO STARTTLS not available now")],
                            Speak::Pop3 => vec!["-ERR not now".to_string()],
                            Speak::Smtp => {
                                vec!["454 TLS not available due to temporary reason".to_string()]
                            }
                        },
                    }
                }
                (Speak::Imap, _) => vec![format!("{tag} BAD unknown command")],
                (Speak::Pop3, _) => vec!["-ERR unknown command".to_string()],
                (Speak::Smtp, _) => vec!["502 command not implemented".to_string()],
            };
            self.send(&mut conn, &reply).await?;
        }
    }
}

/// Fails when a server saw anything but the lockout-safe commands.
pub fn assert_lockout_safe(commands: &[String]) {
    const ALLOWED: &[&str] = &[
        "CAPABILITY",
        "STARTTLS",
        "LOGOUT",
        "CAPA",
        "STLS",
        "QUIT",
        "EHLO",
        "HELO",
    ];
    for c in commands {
        let words: Vec<&str> = c.split(' ').collect();
        let verb = words
            .iter()
            .find(|w| ALLOWED.iter().any(|a| a.eq_ignore_ascii_case(w)))
            .copied();
        assert!(
            verb.is_some(),
            "probe sent a command outside the lockout-safe set: {c:?}"
        );
        for forbidden in ["LOGIN", "AUTH", "AUTHENTICATE", "USER", "PASS", "APOP"] {
            assert!(
                !words.iter().any(|w| w.eq_ignore_ascii_case(forbidden)),
                "probe sent credentials-related command {c:?}"
            );
        }
    }
}

/// The bound on a whole probe the crate documents, plus slack for a loaded test machine.
pub fn probe_bound(connect: Duration, io: Duration) -> Duration {
    connect + io * 4 + Duration::from_millis(750)
}

pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// What the fake name server answers.
#[derive(Clone, Debug)]
pub enum DnsAnswer {
    /// These A records (and an empty answer to AAAA queries).
    A(Vec<std::net::Ipv4Addr>),
    NxDomain,
    /// NOERROR without records.
    NoData,
    ServFail,
    Refused,
    /// No answer at all.
    Silent,
}

/// A minimal DNS server over UDP on 127.0.0.1, answering every query as told.
pub struct FakeDns {
    pub addr: SocketAddr,
    pub answer: Arc<Mutex<DnsAnswer>>,
}

impl FakeDns {
    pub async fn start(answer: DnsAnswer) -> FakeDns {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let answer = Arc::new(Mutex::new(answer));
        let shared = answer.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
                let current = shared.lock().unwrap().clone();
                if let Some(reply) = dns_reply(&buf[..n], &current) {
                    let _ = socket.send_to(&reply, peer).await;
                }
            }
        });
        FakeDns { addr, answer }
    }

    pub fn set(&self, answer: DnsAnswer) {
        *self.answer.lock().unwrap() = answer;
    }
}

/// Builds the reply to one query: the header and question echoed, then the answer records.
fn dns_reply(query: &[u8], answer: &DnsAnswer) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    let mut i = 12;
    while *query.get(i)? != 0 {
        i += usize::from(query[i]) + 1;
    }
    i += 1;
    let qtype = u16::from_be_bytes([*query.get(i)?, *query.get(i + 1)?]);
    let question_end = i + 4;
    let question = query.get(12..question_end)?;
    let (rcode, records): (u8, Vec<std::net::Ipv4Addr>) = match answer {
        DnsAnswer::Silent => return None,
        DnsAnswer::A(ips) if qtype == 1 => (0, ips.clone()),
        DnsAnswer::A(_) | DnsAnswer::NoData => (0, Vec::new()),
        DnsAnswer::NxDomain => (3, Vec::new()),
        DnsAnswer::ServFail => (2, Vec::new()),
        DnsAnswer::Refused => (5, Vec::new()),
    };
    let mut out = Vec::new();
    out.extend_from_slice(&query[..2]);
    out.push(0x81 | (query[2] & 0x78)); // QR, opcode echoed, RD
    out.push(0x80 | rcode); // RA, rcode
    out.extend_from_slice(&[0, 1]);
    out.extend_from_slice(&(records.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(question);
    for ip in records {
        out.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4]);
        out.extend_from_slice(&ip.octets());
    }
    Some(out)
}

/// A listener on `ip:port` whose accept queue is full, so that the kernel drops further SYNs
/// and a connect to it hangs like one through a DROP firewall rule. The queue's real size
/// varies between kernels, so it is filled until a connect does not complete.
pub async fn full_backlog_listener(
    ip: std::net::Ipv4Addr,
    port: u16,
) -> (tokio::net::TcpListener, Vec<TcpStream>) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((ip, port))).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..64 {
        match tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => fillers.push(s),
            Ok(Err(e)) => panic!("filling the backlog of {addr} failed: {e}"),
            Err(_) => return (listener, fillers),
        }
    }
    panic!("the kernel accepted 64 connections to a listener with backlog 1; cannot simulate a dropping address");
}
