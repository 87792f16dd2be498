//! Thunderbird autoconfig (config-v1.1.xml): where a domain publishes it and a parser for the
//! document, with the `%EMAILADDRESS%`, `%EMAILLOCALPART%` and `%EMAILDOMAIN%` placeholders
//! filled in. The parser is pure (no I/O), never expands entities beyond XML's five and
//! character references, and bounds how many servers it returns.

use crate::http::is_host_name;
use mailmend_core::{Protocol, Security};
use quick_xml::events::Event;
use quick_xml::Reader;

/// The most servers taken from one document.
pub const MAX_SERVERS: usize = 32;
/// The longest document accepted (after the HTTP limit, a second line of defence).
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// The deepest element nesting accepted; real documents have five levels.
const MAX_DEPTH: usize = 64;

/// One server a settings document names: an autoconfig document or an Autodiscover answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedServer {
    pub protocol: Protocol,
    /// Lower-case host name (autoconfig placeholders filled in).
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// For Exchange servers: the EWS (or MAPI over HTTP) URL the host came from, when given.
    pub url: Option<String>,
}

/// Why a document was not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AutoconfigError {
    /// Not well-formed XML (or an unknown entity); the server sent something else.
    #[error("malformed autoconfig document: {0}")]
    Malformed(String),
    /// Well-formed, but not a `clientConfig` document (an HTML error page, say).
    #[error("not an autoconfig document (root element {0:?})")]
    NotAutoconfig(String),
    /// Larger than [`MAX_DOCUMENT_BYTES`].
    #[error("autoconfig document larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
}

/// The two HTTPS URLs Thunderbird asks, in its order: `autoconfig.<domain>` (with the address,
/// when known) and the domain's `.well-known` path.
pub fn urls(domain: &str, email: Option<&str>) -> [String; 2] {
    let query = email
        .map(|e| format!("?emailaddress={}", percent_encode(e)))
        .unwrap_or_default();
    [
        format!("https://autoconfig.{domain}/mail/config-v1.1.xml{query}"),
        format!("https://{domain}/.well-known/autoconfig/mail/config-v1.1.xml"),
    ]
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The server being read: its type attribute and the child values seen so far.
#[derive(Default)]
struct Pending {
    protocol: Option<Protocol>,
    hostname: Option<String>,
    port: Option<String>,
    socket_type: Option<String>,
    ews_url: Option<String>,
}

/// Reads the incoming and outgoing servers of `xml`, in document order. Servers whose type is
/// unknown, whose host name is not a valid name after placeholder substitution, or whose port
/// or socket type cannot be understood are left out; a document that is not XML is an error.
pub fn parse(
    xml: &str,
    domain: &str,
    email: Option<&str>,
) -> Result<Vec<NamedServer>, AutoconfigError> {
    if xml.len() > MAX_DOCUMENT_BYTES {
        return Err(AutoconfigError::TooLarge);
    }
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    // The element path from the root, local names only (namespaces are not used by
    // config-v1.1, and a prefix must not hide an element).
    let mut path: Vec<String> = Vec::new();
    let mut root_seen = false;
    let mut pending: Option<Pending> = None;
    let mut servers = Vec::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| AutoconfigError::Malformed(e.to_string()))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if path.len() > MAX_DEPTH {
                    return Err(AutoconfigError::Malformed(
                        "elements nested too deeply".into(),
                    ));
                }
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if !root_seen {
                    root_seen = true;
                    if name != "clientConfig" {
                        return Err(AutoconfigError::NotAutoconfig(name));
                    }
                }
                let is_server = (name == "incomingServer" || name == "outgoingServer")
                    && path.len() == 2
                    && path[1] == "emailProvider";
                if is_server {
                    let mut p = Pending::default();
                    for attr in e.attributes().flatten() {
                        if attr.key.local_name().as_ref() == b"type" {
                            let value = attr
                                .unescape_value()
                                .map_err(|e| AutoconfigError::Malformed(e.to_string()))?;
                            p.protocol = match value.trim().to_ascii_lowercase().as_str() {
                                "imap" => Some(Protocol::Imap),
                                "pop3" => Some(Protocol::Pop3),
                                "smtp" => Some(Protocol::Smtp),
                                "exchange" => Some(Protocol::Exchange),
                                _ => None,
                            };
                        }
                    }
                    pending = Some(p);
                }
                if matches!(event, Event::Start(_)) {
                    path.push(name);
                } else if is_server {
                    // An empty server element names nothing.
                    pending = None;
                }
            }
            Event::End(_) => {
                let closed = path.pop();
                let closes_server = path.len() == 2
                    && matches!(closed.as_deref(), Some("incomingServer" | "outgoingServer"));
                if closes_server {
                    if let Some(p) = pending.take() {
                        if let Some(server) = finish(p, domain, email) {
                            if servers.len() < MAX_SERVERS {
                                servers.push(server);
                            }
                        }
                    }
                }
            }
            Event::Text(t) => {
                let text = t
                    .unescape()
                    .map_err(|e| AutoconfigError::Malformed(e.to_string()))?;
                record(&path, &mut pending, text.trim());
            }
            Event::CData(c) => {
                let bytes = c.into_inner();
                let text = String::from_utf8_lossy(&bytes);
                record(&path, &mut pending, text.trim());
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !root_seen {
        return Err(AutoconfigError::Malformed("no root element".into()));
    }
    Ok(servers)
}

/// Stores the text of a direct child of the server being read.
fn record(path: &[String], pending: &mut Option<Pending>, text: &str) {
    let Some(p) = pending.as_mut() else {
        return;
    };
    // clientConfig / emailProvider / xServer / child
    if path.len() != 4 {
        return;
    }
    let value = Some(text.to_string());
    match path[3].as_str() {
        "hostname" => p.hostname = value,
        "port" => p.port = value,
        "socketType" => p.socket_type = value,
        "ewsURL" => p.ews_url = value,
        _ => {}
    }
}

fn finish(p: Pending, domain: &str, email: Option<&str>) -> Option<NamedServer> {
    let protocol = p.protocol?;
    let host = fill(p.hostname.as_deref()?, domain, email)?
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if !is_host_name(&host) {
        return None;
    }
    let security = match p.socket_type.as_deref().map(str::to_ascii_uppercase) {
        Some(s) if s == "SSL" || s == "TLS" => Security::Tls,
        Some(s) if s == "STARTTLS" => Security::StartTls,
        Some(s) if s == "PLAIN" => Security::None,
        // Thunderbird reads a missing socketType as plaintext.
        None if protocol != Protocol::Exchange => Security::None,
        None => Security::Tls,
        Some(_) => return None,
    };
    let port = match p.port.as_deref() {
        Some(text) => match text.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return None,
        },
        None => protocol.default_port(security),
    };
    let url = p
        .ews_url
        .filter(|u| crate::http::HttpsUrl::parse(u).is_ok());
    Some(NamedServer {
        protocol,
        host,
        port,
        security,
        url,
    })
}

/// Fills the placeholders in; `None` when one is needed but the address is unknown.
fn fill(text: &str, domain: &str, email: Option<&str>) -> Option<String> {
    let mut out = text.replace("%EMAILDOMAIN%", domain);
    if out.contains("%EMAILADDRESS%") || out.contains("%EMAILLOCALPART%") {
        let email = email?;
        let local = email.rsplit_once('@').map_or(email, |(l, _)| l);
        out = out
            .replace("%EMAILADDRESS%", email)
            .replace("%EMAILLOCALPART%", local);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testgen::{mutate, XorShift};

    /// Shaped like an ISPDB entry (Thunderbird's database), with both kinds of server, every
    /// socket type, a placeholder host and decoration the parser must skip.
    const ISPDB_STYLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- https://wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat -->
<clientConfig version="1.1">
  <emailProvider id="example.com">
    <domain>example.com</domain>
    <domain>example.net</domain>
    <displayName>Example Mail</displayName>
    <displayShortName>Example</displayShortName>
    <incomingServer type="imap">
      <hostname>imap.example.com</hostname>
      <port>993</port>
      <socketType>SSL</socketType>
      <authentication>password-cleartext</authentication>
      <authentication>OAuth2</authentication>
      <username>%EMAILADDRESS%</username>
    </incomingServer>
    <incomingServer type="imap">
      <hostname>imap.example.com</hostname>
      <port>143</port>
      <socketType>STARTTLS</socketType>
      <username>%EMAILLOCALPART%</username>
    </incomingServer>
    <incomingServer type="pop3">
      <hostname>pop.%EMAILDOMAIN%</hostname>
      <port>995</port>
      <socketType>SSL</socketType>
      <pop3>
        <leaveMessagesOnServer>true</leaveMessagesOnServer>
      </pop3>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>SMTP.Example.COM</hostname>
      <port>587</port>
      <socketType>STARTTLS</socketType>
      <authentication>password-cleartext</authentication>
    </outgoingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.example.com</hostname>
      <port>25</port>
      <socketType>plain</socketType>
    </outgoingServer>
    <documentation url="https://example.com/help">
      <descr lang="en">Generic settings page</descr>
    </documentation>
  </emailProvider>
  <webMail>
    <loginPage url="https://webmail.example.com/" />
  </webMail>
  <oAuth2>
    <issuer>accounts.example.com</issuer>
    <scope>https://mail.example.com/</scope>
  </oAuth2>
</clientConfig>
"#;

    #[test]
    fn an_ispdb_style_document_yields_every_server_in_order() {
        let servers = parse(ISPDB_STYLE, "example.com", Some("ann@example.com")).unwrap();
        let got: Vec<(Protocol, &str, u16, Security)> = servers
            .iter()
            .map(|s| (s.protocol, s.host.as_str(), s.port, s.security))
            .collect();
        assert_eq!(
            got,
            vec![
                (Protocol::Imap, "imap.example.com", 993, Security::Tls),
                (Protocol::Imap, "imap.example.com", 143, Security::StartTls),
                (Protocol::Pop3, "pop.example.com", 995, Security::Tls),
                (Protocol::Smtp, "smtp.example.com", 587, Security::StartTls),
                (Protocol::Smtp, "smtp.example.com", 25, Security::None),
            ]
        );
    }

    #[test]
    fn placeholders_need_the_address_and_produce_valid_host_names_only() {
        let xml = r#"<clientConfig version="1.1"><emailProvider id="x">
            <incomingServer type="imap"><hostname>%EMAILLOCALPART%.mail.example.com</hostname><port>993</port><socketType>SSL</socketType></incomingServer>
            <incomingServer type="imap"><hostname>%EMAILADDRESS%</hostname><port>993</port><socketType>SSL</socketType></incomingServer>
        </emailProvider></clientConfig>"#;
        let with = parse(xml, "example.com", Some("ann@example.com")).unwrap();
        // `ann@example.com` is no host name, so the second server is left out.
        assert_eq!(with.len(), 1);
        assert_eq!(with[0].host, "ann.mail.example.com");
        assert!(parse(xml, "example.com", None).unwrap().is_empty());
    }

    #[test]
    fn servers_outside_email_provider_or_of_unknown_types_are_ignored() {
        let xml = r#"<clientConfig version="1.1">
            <incomingServer type="imap"><hostname>stray.example.com</hostname></incomingServer>
            <emailProvider id="x">
              <incomingServer type="carrier-pigeon"><hostname>a.example.com</hostname></incomingServer>
              <incomingServer type="imap"><hostname>b.example.com</hostname><port>99999</port><socketType>SSL</socketType></incomingServer>
              <incomingServer type="imap"><hostname>c.example.com</hostname><socketType>quantum</socketType></incomingServer>
              <incomingServer type="exchange"><hostname>outlook.example.com</hostname><ewsURL>https://outlook.example.com/EWS/Exchange.asmx</ewsURL></incomingServer>
            </emailProvider></clientConfig>"#;
        let servers = parse(xml, "example.com", None).unwrap();
        assert_eq!(
            servers,
            vec![NamedServer {
                protocol: Protocol::Exchange,
                host: "outlook.example.com".into(),
                port: 443,
                security: Security::Tls,
                url: Some("https://outlook.example.com/EWS/Exchange.asmx".into()),
            }]
        );
    }

    #[test]
    fn html_error_pages_and_garbage_are_errors() {
        assert!(matches!(
            parse("<html><body>404</body></html>", "example.com", None),
            Err(AutoconfigError::NotAutoconfig(_))
        ));
        assert!(matches!(
            parse("<clientConfig><emailProvider>", "example.com", None),
            Err(AutoconfigError::Malformed(_)) | Ok(_)
        ));
        assert!(matches!(
            parse("", "example.com", None),
            Err(AutoconfigError::Malformed(_))
        ));
        assert!(matches!(
            parse(
                "<clientConfig><emailProvider><incomingServer type=\"imap\"><hostname>&xxe;</hostname></incomingServer></emailProvider></clientConfig>",
                "example.com",
                None
            ),
            Err(AutoconfigError::Malformed(_))
        ));
    }

    fn render(servers: &[NamedServer]) -> String {
        let mut xml = String::from(
            "<?xml version=\"1.0\"?>\n<clientConfig version=\"1.1\"><emailProvider id=\"x\">\n",
        );
        for s in servers {
            let (element, kind) = match s.protocol {
                Protocol::Imap => ("incomingServer", "imap"),
                Protocol::Pop3 => ("incomingServer", "pop3"),
                Protocol::Exchange => ("incomingServer", "exchange"),
                Protocol::Smtp => ("outgoingServer", "smtp"),
            };
            let socket = match s.security {
                Security::Tls => "SSL",
                Security::StartTls => "STARTTLS",
                Security::None => "plain",
            };
            xml.push_str(&format!(
                "<{element} type=\"{kind}\"><hostname>{}</hostname><port>{}</port><socketType>{socket}</socketType>",
                s.host, s.port
            ));
            if let Some(url) = &s.url {
                xml.push_str(&format!("<ewsURL>{}</ewsURL>", url.replace('&', "&amp;")));
            }
            xml.push_str(&format!("</{element}>\n"));
        }
        xml.push_str("</emailProvider></clientConfig>\n");
        xml
    }

    #[test]
    fn rendered_documents_parse_back_to_their_servers() {
        let mut rng = XorShift(0x1234_5678_9abc_def1u64);
        let mut next = || rng.next();
        for _ in 0..200 {
            let count = (next() % 6) as usize;
            let servers: Vec<NamedServer> = (0..count)
                .map(|i| {
                    let protocol = [
                        Protocol::Imap,
                        Protocol::Pop3,
                        Protocol::Smtp,
                        Protocol::Exchange,
                    ][(next() % 4) as usize];
                    let security =
                        [Security::Tls, Security::StartTls, Security::None][(next() % 3) as usize];
                    NamedServer {
                        protocol,
                        host: format!("h{i}-{}.example.com", next() % 1000),
                        port: 1 + (next() % 65535) as u16,
                        security,
                        url: (protocol == Protocol::Exchange)
                            .then(|| format!("https://h{i}.example.com/EWS/Exchange.asmx?a=1&b=2")),
                    }
                })
                .collect();
            assert_eq!(
                parse(&render(&servers), "example.com", None).unwrap(),
                servers
            );
        }
    }

    #[test]
    fn mutated_documents_never_panic_and_name_only_valid_hosts() {
        let mut rng = XorShift(0xfeed_face_dead_beefu64);
        let mut next = || rng.next();
        let seed = ISPDB_STYLE.as_bytes();
        for _ in 0..5_000 {
            let mut data = seed.to_vec();
            mutate(&mut data, &mut next, b"<>/&;%\"'");
            let text = String::from_utf8_lossy(&data);
            if let Ok(servers) = parse(&text, "example.com", Some("ann@example.com")) {
                assert!(servers.len() <= MAX_SERVERS);
                assert!(servers.iter().all(|s| is_host_name(&s.host) && s.port > 0));
            }
        }
    }

    #[test]
    fn urls_are_thunderbirds_two_https_locations() {
        let [a, b] = urls("example.com", Some("ann+x@example.com"));
        assert_eq!(
            a,
            "https://autoconfig.example.com/mail/config-v1.1.xml?emailaddress=ann%2Bx%40example.com"
        );
        assert_eq!(
            b,
            "https://example.com/.well-known/autoconfig/mail/config-v1.1.xml"
        );
    }
}
