//! A small HTTPS client for fetching settings documents (autoconfig, Autodiscover): https URLs
//! only, full certificate verification with the prober's trust roots, at most
//! [`MAX_REDIRECTS`] redirects (https only), and hard limits on the size of the answer and on
//! the time it takes. The response parser ([`parse_response`]) and the URL handling
//! ([`HttpsUrl`]) are pure, for fuzzing.
//!
//! Plain HTTP is deliberately absent: an unauthenticated answer must never be able to name the
//! server an account is moved to.

use crate::conn::Io;
use crate::dns::{self, NameServers};
use crate::tcp;
use crate::tls::TlsContext;
use mailmend_core::{DnsOutcome, TcpOutcome, TlsOutcome};
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// The most redirects followed for one request.
pub const MAX_REDIRECTS: usize = 3;
/// The largest response accepted, head and body together.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// The largest response head (status line and headers) accepted.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// The most header lines accepted.
pub const MAX_HEADERS: usize = 100;
/// How many `io_timeout`s a fetch may take after its connect: TLS, request, the whole answer.
pub const FETCH_IO_TIMEOUTS: u32 = 2;

/// An `https://` URL, split into what a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsUrl {
    /// Lower-case host name or IP literal (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`; the fragment is dropped.
    pub path: String,
}

/// Why a URL was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// Not `https://` (plain `http://` included): only authenticated answers are fetched.
    #[error("not an https url: {0:?}")]
    NotHttps(String),
    /// The URL carries a user name or password, which this client never sends.
    #[error("url carries user information")]
    UserInfo,
    /// The host is empty or not a valid host name or address.
    #[error("invalid host in url: {0:?}")]
    BadHost(String),
    /// The port is not a number from 1 to 65535.
    #[error("invalid port in url: {0:?}")]
    BadPort(String),
    /// Control characters or spaces, which would let a URL smuggle request lines.
    #[error("url contains control characters or spaces")]
    BadCharacters,
}

impl HttpsUrl {
    /// Parses an absolute `https://host[:port][/path][?query][#fragment]` URL.
    pub fn parse(url: &str) -> Result<HttpsUrl, UrlError> {
        // A URL on the wire is ASCII without spaces or controls; anything else (a Unicode space
        // such as U+0085, an unencoded non-ASCII path) would end up raw in the request line.
        if url.bytes().any(|b| !(b'!'..0x7f).contains(&b)) {
            return Err(UrlError::BadCharacters);
        }
        let rest = match url.get(..8) {
            Some(scheme) if scheme.eq_ignore_ascii_case("https://") => &url[8..],
            _ => return Err(UrlError::NotHttps(crate::replies::excerpt(url))),
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.contains('@') {
            return Err(UrlError::UserInfo);
        }
        let (host, port) = split_authority(authority)?;
        let tail = tail.split('#').next().unwrap_or("");
        let path = if tail.starts_with('/') {
            tail.to_string()
        } else {
            format!("/{tail}")
        };
        Ok(HttpsUrl { host, port, path })
    }

    /// The URL a `Location` header names, relative to this one.
    pub fn join(&self, location: &str) -> Result<HttpsUrl, UrlError> {
        let location = location.trim();
        if location.bytes().any(|b| !(b' '..0x7f).contains(&b)) {
            return Err(UrlError::BadCharacters);
        }
        if location.contains("://") {
            return HttpsUrl::parse(location);
        }
        if let Some(rest) = location.strip_prefix("//") {
            return HttpsUrl::parse(&format!("https://{rest}"));
        }
        if location.contains(' ') {
            return Err(UrlError::BadCharacters);
        }
        let path = if location.starts_with('/') {
            location.to_string()
        } else {
            // Relative to the directory of the current path, without its query.
            let current = self.path.split('?').next().unwrap_or("/");
            let dir = &current[..current.rfind('/').map_or(0, |i| i + 1)];
            format!("{}{location}", if dir.is_empty() { "/" } else { dir })
        };
        let path = path.split('#').next().unwrap_or("/").to_string();
        Ok(HttpsUrl {
            host: self.host.clone(),
            port: self.port,
            path,
        })
    }

    /// The `Host` header's value.
    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 443 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl fmt::Display for HttpsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "https://{}{}", self.host_header(), self.path)
    }
}

fn split_authority(authority: &str) -> Result<(String, u16), UrlError> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let close = rest
            .find(']')
            .ok_or_else(|| UrlError::BadHost(authority.to_string()))?;
        let host = &rest[..close];
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(UrlError::BadHost(authority.to_string()));
        }
        let after = &rest[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(UrlError::BadHost(authority.to_string())),
        };
        (host.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    let port = match port {
        None => 443,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err(UrlError::BadPort(p.to_string())),
        },
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.parse::<IpAddr>().is_err() && !is_host_name(&host) {
        return Err(UrlError::BadHost(host));
    }
    Ok((host, port))
}

/// Whether `name` is a syntactically valid DNS host name (letters, digits, hyphens and
/// underscores in labels of 1 to 63 characters, at most 253 in all).
pub fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A complete HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Header names lower-cased, values trimmed, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`, joined with `, ` (as HTTP allows for list headers).
    pub fn header_list(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }

    /// The authentication schemes of `WWW-Authenticate` (`Basic, NTLM`), never their
    /// parameters: a challenge may carry data not meant for logs.
    pub fn auth_schemes(&self) -> Option<String> {
        let mut schemes: Vec<String> = Vec::new();
        for (_, value) in self.headers.iter().filter(|(n, _)| n == "www-authenticate") {
            // A scheme is a token at the start of the value or after a comma that is not
            // itself a `name=value` parameter.
            for part in value.split(',') {
                let token = part.split_whitespace().next().unwrap_or("");
                let is_scheme = !token.is_empty()
                    && !token.contains('=')
                    && token
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if is_scheme && !schemes.iter().any(|s| s.eq_ignore_ascii_case(token)) {
                    schemes.push(token.chars().take(32).collect());
                }
            }
        }
        (!schemes.is_empty()).then(|| schemes.join(", "))
    }
}

/// How far a response has arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Complete(Response),
    /// More bytes are needed.
    Incomplete,
}

/// Why a response was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The server answered with something that is not HTTP/1.x.
    #[error("malformed http response: {0}")]
    Malformed(String),
    /// The answer is larger than the limit: a hostile or misconfigured server.
    #[error("the http response is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// The URL cannot be fetched (not https, bad host).
    #[error(transparent)]
    Url(#[from] UrlError),
    /// The name does not exist or has no address: nothing is published there.
    #[error("{host}: {detail}")]
    NoSuchHost { host: String, detail: String },
    /// The name could not be looked up (no resolver answered, SERVFAIL).
    #[error("{host}: {detail}")]
    Dns { host: String, detail: String },
    /// No connection: refused, timed out, unreachable.
    #[error("{host}:{port}: {detail}")]
    Connect {
        host: String,
        port: u16,
        detail: String,
    },
    /// The TLS handshake failed; the detail names the certificate problem.
    #[error("{host}:{port}: tls: {detail}")]
    Tls {
        host: String,
        port: u16,
        detail: String,
    },
    /// The server did not finish answering in time.
    #[error("no complete answer within {0} ms")]
    TimedOut(u128),
    /// The connection broke while sending or receiving.
    #[error("connection error: {0}")]
    Io(String),
    /// More than [`MAX_REDIRECTS`] redirects.
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
    /// A redirect without a usable `Location` (or to a plain http URL).
    #[error("redirect refused: {0}")]
    BadRedirect(String),
}

/// Parses a response from the bytes received so far; `eof` says the server closed the
/// connection. Interim (1xx) responses are skipped. Bodies are framed by `Transfer-Encoding:
/// chunked`, by `Content-Length`, or by the end of the connection.
pub fn parse_response(buf: &[u8], eof: bool) -> Result<Parsed, HttpError> {
    let mut start = 0;
    loop {
        let rest = &buf[start..];
        let Some((head_len, body_start)) = head_end(rest) else {
            if rest.len() > MAX_HEAD_BYTES {
                return Err(HttpError::TooLarge {
                    limit: MAX_HEAD_BYTES,
                });
            }
            if eof {
                return Err(HttpError::Malformed(if rest.is_empty() {
                    "the server closed the connection without an answer".into()
                } else {
                    "the connection closed in the middle of the response head".into()
                }));
            }
            return Ok(Parsed::Incomplete);
        };
        if head_len > MAX_HEAD_BYTES {
            return Err(HttpError::TooLarge {
                limit: MAX_HEAD_BYTES,
            });
        }
        let head = std::str::from_utf8(&rest[..head_len])
            .map_err(|_| HttpError::Malformed("the response head is not text".into()))?;
        let mut lines = head.split('\n').map(|l| l.trim_end_matches('\r'));
        let status = parse_status_line(lines.next().unwrap_or(""))?;
        let mut headers = Vec::new();
        for line in lines.filter(|l| !l.is_empty()) {
            if headers.len() >= MAX_HEADERS {
                return Err(HttpError::Malformed(format!(
                    "more than {MAX_HEADERS} header lines"
                )));
            }
            let (name, value) = line.split_once(':').ok_or_else(|| {
                HttpError::Malformed(format!(
                    "header line without a colon: {:?}",
                    crate::replies::excerpt(line)
                ))
            })?;
            if name.is_empty() || name.bytes().any(|b| b <= b' ' || b >= 0x7f) {
                return Err(HttpError::Malformed("invalid header name".into()));
            }
            headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
        let body_bytes = &rest[body_start..];
        if (100..200).contains(&status) {
            // An interim answer (100 Continue): the real one follows.
            start += body_start;
            continue;
        }
        let response = |body: Vec<u8>| Response {
            status,
            headers: headers.clone(),
            body,
        };
        if status == 204 || status == 304 {
            return Ok(Parsed::Complete(response(Vec::new())));
        }
        let chunked = headers.iter().any(|(n, v)| {
            n == "transfer-encoding"
                && v.rsplit(',')
                    .next()
                    .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
        });
        if chunked {
            return match dechunk(body_bytes)? {
                Some(body) => Ok(Parsed::Complete(response(body))),
                None if eof => Err(HttpError::Malformed(
                    "the connection closed in the middle of a chunked body".into(),
                )),
                None => Ok(Parsed::Incomplete),
            };
        }
        let lengths: Vec<&str> = headers
            .iter()
            .filter(|(n, _)| n == "content-length")
            .map(|(_, v)| v.as_str())
            .collect();
        if let Some(first) = lengths.first() {
            if lengths.iter().any(|l| l != first) {
                return Err(HttpError::Malformed(
                    "conflicting Content-Length headers".into(),
                ));
            }
            let len: usize = first
                .parse()
                .ok()
                .filter(|_| first.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| HttpError::Malformed("invalid Content-Length".into()))?;
            if len > MAX_RESPONSE_BYTES {
                return Err(HttpError::TooLarge {
                    limit: MAX_RESPONSE_BYTES,
                });
            }
            if body_bytes.len() >= len {
                return Ok(Parsed::Complete(response(body_bytes[..len].to_vec())));
            }
            if eof {
                return Err(HttpError::Malformed(format!(
                    "the connection closed after {} of {len} body bytes",
                    body_bytes.len()
                )));
            }
            return Ok(Parsed::Incomplete);
        }
        // No framing: the body runs to the end of the connection.
        return if eof {
            Ok(Parsed::Complete(response(body_bytes.to_vec())))
        } else {
            Ok(Parsed::Incomplete)
        };
    }
}

/// The length of the head (without the blank line) and where the body starts.
fn head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while let Some(pos) = buf[i..].iter().position(|&b| b == b'\n') {
        let nl = i + pos;
        let next = nl + 1;
        if buf.get(next) == Some(&b'\n') {
            return Some((nl, next + 1));
        }
        if buf.get(next) == Some(&b'\r') && buf.get(next + 1) == Some(&b'\n') {
            return Some((nl, next + 2));
        }
        i = next;
    }
    None
}

fn parse_status_line(line: &str) -> Result<u16, HttpError> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !(version == "HTTP/1.1" || version == "HTTP/1.0") {
        return Err(HttpError::Malformed(format!(
            "not an HTTP/1.x status line: {:?}",
            crate::replies::excerpt(line)
        )));
    }
    let code = parts.next().unwrap_or("");
    match code.parse::<u16>() {
        Ok(c) if code.len() == 3 && (100..600).contains(&c) => Ok(c),
        _ => Err(HttpError::Malformed(format!(
            "invalid status code {:?}",
            crate::replies::excerpt(code)
        ))),
    }
}

/// Decodes a chunked body; `None` when it is not complete yet.
fn dechunk(mut data: &[u8]) -> Result<Option<Vec<u8>>, HttpError> {
    let mut body = Vec::new();
    loop {
        let Some(nl) = data.iter().position(|&b| b == b'\n') else {
            return if data.len() > 1024 {
                Err(HttpError::Malformed("chunk size line too long".into()))
            } else {
                Ok(None)
            };
        };
        let line = std::str::from_utf8(&data[..nl])
            .map_err(|_| HttpError::Malformed("chunk size is not text".into()))?
            .trim_end_matches('\r');
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .ok()
            .filter(|_| !size_text.is_empty() && size_text.len() <= 8)
            .ok_or_else(|| {
                HttpError::Malformed(format!(
                    "invalid chunk size {:?}",
                    crate::replies::excerpt(size_text)
                ))
            })?;
        data = &data[nl + 1..];
        if size == 0 {
            // Trailers, then a blank line.
            loop {
                let Some(nl) = data.iter().position(|&b| b == b'\n') else {
                    return Ok(None);
                };
                let line = &data[..nl];
                data = &data[nl + 1..];
                if line.is_empty() || line == b"\r" {
                    return Ok(Some(body));
                }
            }
        }
        if body.len() + size > MAX_RESPONSE_BYTES {
            return Err(HttpError::TooLarge {
                limit: MAX_RESPONSE_BYTES,
            });
        }
        if data.len() < size + 1 {
            return Ok(None);
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size..];
        match data {
            [b'\r', b'\n', rest @ ..] => data = rest,
            [b'\n', rest @ ..] => data = rest,
            [b'\r'] => return Ok(None),
            _ => {
                return Err(HttpError::Malformed(
                    "chunk not followed by a line end".into(),
                ))
            }
        }
    }
}

/// GET, or POST with a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
}

/// One request to make.
#[derive(Debug, Clone)]
pub(crate) struct Request<'a> {
    pub method: Method,
    pub url: HttpsUrl,
    /// For POST: the content type and body.
    pub body: Option<(&'a str, &'a [u8])>,
}

/// What the network needs for a fetch: the prober's resolver, trust roots and time limits.
#[derive(Clone)]
pub(crate) struct Net {
    pub tls: TlsContext,
    pub name_servers: NameServers,
    pub connect_timeout: Duration,
    pub io_timeout: Duration,
}

impl Net {
    /// How long one fetch may take, redirects included.
    pub fn fetch_budget(&self) -> Duration {
        self.connect_timeout + self.io_timeout * (FETCH_IO_TIMEOUTS + 1)
    }
}

/// A response and the URL it finally came from.
#[derive(Debug, Clone)]
pub(crate) struct Fetched {
    pub url: HttpsUrl,
    pub response: Response,
}

/// Makes the request, following up to [`MAX_REDIRECTS`] https redirects, all before `deadline`.
/// A POST stays a POST across redirects (Autodiscover servers expect the request again).
pub(crate) async fn fetch(
    net: &Net,
    request: &Request<'_>,
    deadline: Instant,
) -> Result<Fetched, HttpError> {
    let started = Instant::now();
    let mut url = request.url.clone();
    for _ in 0..=MAX_REDIRECTS {
        let response = match tokio::time::timeout_at(deadline, once(net, request, &url)).await {
            Ok(r) => r?,
            Err(_) => return Err(HttpError::TimedOut(started.elapsed().as_millis())),
        };
        if matches!(response.status, 301 | 302 | 303 | 307 | 308) {
            let location = response
                .header("location")
                .ok_or_else(|| HttpError::BadRedirect("no Location header".into()))?;
            url = url.join(location).map_err(|e| {
                HttpError::BadRedirect(format!("{}: {e}", crate::replies::excerpt(location)))
            })?;
            tracing::debug!(%url, "following redirect");
            continue;
        }
        return Ok(Fetched { url, response });
    }
    Err(HttpError::TooManyRedirects)
}

async fn once(net: &Net, request: &Request<'_>, url: &HttpsUrl) -> Result<Response, HttpError> {
    let addresses = match dns::resolve(
        &net.name_servers,
        &url.host,
        net.io_timeout,
        dns::Mode::System,
    )
    .await
    {
        DnsOutcome::Resolved { addresses } => addresses,
        DnsOutcome::NxDomain => {
            return Err(HttpError::NoSuchHost {
                host: url.host.clone(),
                detail: "no such name".into(),
            })
        }
        DnsOutcome::NoRecords => {
            return Err(HttpError::NoSuchHost {
                host: url.host.clone(),
                detail: "no address records".into(),
            })
        }
        DnsOutcome::ResolverUnreachable { detail } | DnsOutcome::Failed { detail } => {
            return Err(HttpError::Dns {
                host: url.host.clone(),
                detail,
            })
        }
    };
    let (stream, outcome) =
        tcp::connect(tcp::interleave(&addresses, url.port), net.connect_timeout).await;
    let Some(stream) = stream else {
        let detail = match outcome {
            TcpOutcome::Refused { address } => format!("connection refused by {address}"),
            TcpOutcome::TimedOut { address } => format!("no answer from {address}"),
            TcpOutcome::Unreachable { address, detail } => {
                format!("no route to {address}: {detail}")
            }
            TcpOutcome::NotResolved => "no address".into(),
            TcpOutcome::Failed { detail } => detail,
            TcpOutcome::Connected { .. } => "connected without a stream".into(),
        };
        return Err(HttpError::Connect {
            host: url.host.clone(),
            port: url.port,
            detail,
        });
    };
    let session_deadline = Instant::now() + net.io_timeout * FETCH_IO_TIMEOUTS;
    let step = |now: Instant| (now + net.io_timeout).min(session_deadline);
    let io: Box<dyn Io> = Box::new(stream);
    let (mut io, _established): (Box<dyn Io>, TlsOutcome) = net
        .tls
        .handshake(io, &url.host, step(Instant::now()))
        .await
        .map_err(|failure| HttpError::Tls {
            host: url.host.clone(),
            port: url.port,
            detail: tls_detail(&failure),
        })?;
    let bytes = request_bytes(request, url);
    let written = tokio::time::timeout_at(step(Instant::now()), async {
        io.write_all(&bytes).await?;
        io.flush().await
    })
    .await;
    match written {
        Err(_) => return Err(HttpError::TimedOut(net.io_timeout.as_millis())),
        Ok(Err(e)) => return Err(HttpError::Io(e.to_string())),
        Ok(Ok(())) => {}
    }
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let budget = MAX_RESPONSE_BYTES + MAX_HEAD_BYTES - buf.len();
        if budget == 0 {
            return Err(HttpError::TooLarge {
                limit: MAX_RESPONSE_BYTES + MAX_HEAD_BYTES,
            });
        }
        let want = budget.min(chunk.len());
        let read = tokio::time::timeout_at(step(Instant::now()), io.read(&mut chunk[..want])).await;
        let (n, eof) = match read {
            Err(_) => return Err(HttpError::TimedOut(net.io_timeout.as_millis())),
            // Many servers close without TLS close_notify; what arrived still counts.
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => (0, true),
            Ok(Err(e)) => return Err(HttpError::Io(e.to_string())),
            Ok(Ok(0)) => (0, true),
            Ok(Ok(n)) => (n, false),
        };
        buf.extend_from_slice(&chunk[..n]);
        match parse_response(&buf, eof)? {
            Parsed::Complete(response) => {
                let _ = tokio::time::timeout(Duration::from_millis(100), io.shutdown()).await;
                return Ok(response);
            }
            Parsed::Incomplete if eof => {
                return Err(HttpError::Malformed("incomplete response".into()))
            }
            Parsed::Incomplete => {}
        }
    }
}

fn request_bytes(request: &Request<'_>, url: &HttpsUrl) -> Vec<u8> {
    let method = match request.method {
        Method::Get => "GET",
        Method::Post => "POST",
    };
    let mut head = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: mailmend/{}\r\nAccept: text/xml, application/xml\r\nConnection: close\r\n",
        url.path,
        url.host_header(),
        env!("CARGO_PKG_VERSION"),
    );
    let mut body: &[u8] = &[];
    if let (Method::Post, Some((content_type, b))) = (request.method, request.body) {
        head.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            b.len()
        ));
        body = b;
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A TLS failure in words, for a lookup's evidence.
pub(crate) fn tls_detail(failure: &mailmend_core::TlsFailure) -> String {
    use mailmend_core::TlsFailure as F;
    match failure {
        F::CertificateExpired { .. } => "certificate expired".into(),
        F::CertificateNotYetValid { .. } => "certificate not valid yet".into(),
        F::SelfSigned => "self-signed certificate".into(),
        F::UntrustedIssuer { .. } => "certificate issuer not trusted".into(),
        F::IncompleteChain => "certificate chain incomplete".into(),
        F::NameMismatch { presented } => format!("certificate is for {}", presented.join(", ")),
        F::ProtocolMismatch { detail }
        | F::NotTls { detail }
        | F::StartTlsUnavailable { detail }
        | F::Other { detail } => detail.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(bytes: &[u8]) -> Response {
        match parse_response(bytes, false).unwrap() {
            Parsed::Complete(r) => r,
            Parsed::Incomplete => panic!("incomplete"),
        }
    }

    #[test]
    fn a_content_length_body_is_complete_only_when_all_of_it_arrived() {
        let full = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/xml\r\n\r\nhello";
        for cut in 0..full.len() {
            assert_eq!(
                parse_response(&full[..cut], false).unwrap(),
                Parsed::Incomplete,
                "cut at {cut}"
            );
        }
        let r = complete(full);
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"hello");
        assert_eq!(r.header("content-type"), Some("text/xml"));
    }

    #[test]
    fn chunked_bodies_are_decoded_with_extensions_and_trailers() {
        let r = complete(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n<a/>\r\n3\r\nxyz\r\n0\r\nX-T: 1\r\n\r\n",
        );
        assert_eq!(r.body, b"<a/>xyz");
        assert_eq!(
            parse_response(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n<a",
                false
            )
            .unwrap(),
            Parsed::Incomplete
        );
    }

    #[test]
    fn a_body_without_framing_ends_with_the_connection() {
        let bytes = b"HTTP/1.0 200 OK\r\n\r\n<clientConfig/>";
        assert_eq!(parse_response(bytes, false).unwrap(), Parsed::Incomplete);
        match parse_response(bytes, true).unwrap() {
            Parsed::Complete(r) => assert_eq!(r.body, b"<clientConfig/>"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn interim_continue_answers_are_skipped() {
        let r = complete(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\nWWW-Authenticate: NTLM\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(r.status, 401);
        assert_eq!(r.auth_schemes().as_deref(), Some("Basic, NTLM"));
    }

    #[test]
    fn auth_schemes_leave_out_challenge_parameters() {
        let r = complete(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"x\", error=\"invalid_token\", Negotiate abcdef==\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(r.auth_schemes().as_deref(), Some("Bearer, Negotiate"));
    }

    #[test]
    fn hostile_responses_are_refused_with_a_reason() {
        assert!(matches!(
            parse_response(b"SSH-2.0-OpenSSH\r\n\r\n", false),
            Err(HttpError::Malformed(_))
        ));
        assert!(matches!(
            parse_response(
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n",
                false
            ),
            Err(HttpError::TooLarge { .. })
        ));
        assert!(matches!(
            parse_response(
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
                false
            ),
            Err(HttpError::Malformed(_))
        ));
        let endless_head = vec![b'a'; MAX_HEAD_BYTES + 10];
        assert!(matches!(
            parse_response(&endless_head, false),
            Err(HttpError::TooLarge { .. })
        ));
        assert!(matches!(
            parse_response(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                false
            ),
            Err(HttpError::Malformed(_))
        ));
        assert!(matches!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab", true),
            Err(HttpError::Malformed(_))
        ));
    }

    #[test]
    fn only_https_urls_without_user_information_are_accepted() {
        let u = HttpsUrl::parse(
            "https://AutoConfig.Example.com/mail/config-v1.1.xml?emailaddress=a%40example.com#x",
        )
        .unwrap();
        assert_eq!(u.host, "autoconfig.example.com");
        assert_eq!(u.port, 443);
        assert_eq!(u.path, "/mail/config-v1.1.xml?emailaddress=a%40example.com");
        assert_eq!(
            u.to_string(),
            "https://autoconfig.example.com/mail/config-v1.1.xml?emailaddress=a%40example.com"
        );
        assert!(matches!(
            HttpsUrl::parse("http://autoconfig.example.com/"),
            Err(UrlError::NotHttps(_))
        ));
        assert!(matches!(
            HttpsUrl::parse("https://user:pw@example.com/"),
            Err(UrlError::UserInfo)
        ));
        assert!(matches!(
            HttpsUrl::parse("https://example.com:0/"),
            Err(UrlError::BadPort(_))
        ));
        assert!(matches!(
            HttpsUrl::parse("https://exa mple.com/"),
            Err(UrlError::BadCharacters)
        ));
        assert!(matches!(
            HttpsUrl::parse("https://example.com/a\r\nHost: evil"),
            Err(UrlError::BadCharacters)
        ));
        let v6 = HttpsUrl::parse("https://[2001:db8::1]:8443").unwrap();
        assert_eq!(
            (v6.host.as_str(), v6.port, v6.path.as_str()),
            ("2001:db8::1", 8443, "/")
        );
        assert_eq!(v6.to_string(), "https://[2001:db8::1]:8443/");
    }

    #[test]
    fn redirects_resolve_against_the_current_url_and_never_to_plain_http() {
        let base = HttpsUrl::parse("https://example.com/autodiscover/autodiscover.xml").unwrap();
        assert_eq!(
            base.join("/other/a.xml").unwrap().to_string(),
            "https://example.com/other/a.xml"
        );
        assert_eq!(
            base.join("b.xml").unwrap().to_string(),
            "https://example.com/autodiscover/b.xml"
        );
        assert_eq!(
            base.join("//autodiscover.example.com/x").unwrap().host,
            "autodiscover.example.com"
        );
        assert!(matches!(
            base.join("http://example.com/x"),
            Err(UrlError::NotHttps(_))
        ));
    }

    /// A deterministic xorshift generator, so that the no-panic tests are reproducible.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    fn render(r: &Response, chunks: Option<&[usize]>) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} Whatever\r\n", r.status).into_bytes();
        for (n, v) in &r.headers {
            out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        match chunks {
            None => {
                out.extend_from_slice(
                    format!("Content-Length: {}\r\n\r\n", r.body.len()).as_bytes(),
                );
                out.extend_from_slice(&r.body);
            }
            Some(sizes) => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                let mut rest: &[u8] = &r.body;
                for size in sizes.iter().cycle() {
                    if rest.is_empty() {
                        break;
                    }
                    let n = (*size).clamp(1, rest.len());
                    out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
                    out.extend_from_slice(&rest[..n]);
                    out.extend_from_slice(b"\r\n");
                    rest = &rest[n..];
                }
                out.extend_from_slice(b"0\r\n\r\n");
            }
        }
        out
    }

    #[test]
    fn rendered_responses_parse_back_to_themselves_in_either_framing() {
        let mut rng = XorShift(0x5eed_1234_abcd_0001);
        for i in 0..200 {
            let len = rng.below(3000);
            let body: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let r = Response {
                status: [200, 401, 403, 404, 500][i % 5],
                headers: vec![
                    ("content-type".into(), "text/xml; charset=utf-8".into()),
                    ("x-request".into(), format!("{i}")),
                ],
                body,
            };
            let sizes: Vec<usize> = (0..4).map(|_| 1 + rng.below(700)).collect();
            for chunks in [None, Some(sizes.as_slice())] {
                let bytes = render(&r, chunks);
                let framing = if chunks.is_some() {
                    "transfer-encoding"
                } else {
                    "content-length"
                };
                match parse_response(&bytes, false).unwrap() {
                    Parsed::Complete(got) => {
                        assert_eq!((got.status, &got.body), (r.status, &r.body));
                        let mut expected = r.headers.clone();
                        expected.push((
                            framing.into(),
                            if chunks.is_some() {
                                "chunked".into()
                            } else {
                                r.body.len().to_string()
                            },
                        ));
                        assert_eq!(got.headers, expected);
                    }
                    Parsed::Incomplete => panic!("complete response read as incomplete"),
                }
            }
        }
    }

    #[test]
    fn mutated_responses_and_urls_never_panic() {
        let seeds: [&[u8]; 4] = [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n<a/>\r\n0\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 401 X\r\nWWW-Authenticate: Basic a=b, NTLM\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 302 Found\r\nLocation: https://[::1]:8443/x?y#z\r\nContent-Length: 2\r\n\r\nok",
            b"https://autoconfig.example.com:443/mail/config-v1.1.xml?emailaddress=a%40b",
        ];
        let base = HttpsUrl::parse("https://example.com/a/b.xml").unwrap();
        let mut rng = XorShift(0x0dd_ba11_cafe_f00d);
        for _ in 0..20_000 {
            let mut data = seeds[rng.below(seeds.len())].to_vec();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(data.len() + 1);
                match rng.below(3) {
                    0 if at < data.len() => data[at] = rng.next() as u8,
                    1 => data.insert(
                        at,
                        [b'\r', b'\n', b':', b'0', b'/', b'[', 0xff][rng.below(7)],
                    ),
                    _ if at < data.len() => {
                        data.remove(at);
                    }
                    _ => {}
                }
            }
            for eof in [false, true] {
                if let Ok(Parsed::Complete(r)) = parse_response(&data, eof) {
                    assert!(r.body.len() <= MAX_RESPONSE_BYTES);
                    let _ = r.auth_schemes();
                }
            }
            let text = String::from_utf8_lossy(&data);
            if let Ok(u) = HttpsUrl::parse(&text) {
                assert_eq!(HttpsUrl::parse(&u.to_string()), Ok(u.clone()));
            }
            let _ = base.join(&text);
        }
    }

    #[test]
    fn post_requests_carry_their_body_and_length() {
        let url =
            HttpsUrl::parse("https://autodiscover.example.com:8443/autodiscover/autodiscover.xml")
                .unwrap();
        let req = Request {
            method: Method::Post,
            url: url.clone(),
            body: Some(("text/xml; charset=utf-8", b"<x/>")),
        };
        let text = String::from_utf8(request_bytes(&req, &url)).unwrap();
        assert!(text.starts_with("POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: autodiscover.example.com:8443\r\n"));
        assert!(text.ends_with("Content-Length: 4\r\n\r\n<x/>"));
    }

    #[test]
    fn a_url_with_a_unicode_space_or_raw_non_ascii_is_refused() {
        // Found by the http_response fuzz target: U+0085 (NEL) passed the ASCII-only check.
        for url in [
            "https://example.com/a\u{85}b",
            "https://example.com/caf\u{e9}",
            "https://ex\u{e4}mple.com/",
        ] {
            assert_eq!(
                HttpsUrl::parse(url),
                Err(UrlError::BadCharacters),
                "{url:?}"
            );
        }
        let base = HttpsUrl::parse("https://example.com/x").unwrap();
        assert_eq!(base.join("/a\u{85}b"), Err(UrlError::BadCharacters));
    }
}
