//! Exchange Autodiscover, POX flavour (the Outlook 2006a response schema): where a domain
//! publishes it, the request Outlook POSTs, and a parser for the answer: IMAP, POP3 and SMTP
//! settings, the Exchange server (from `EXCH`, `EXPR`, `EXHTTP` or `mapiHttp` blocks), a
//! redirect, or an error. The parser is pure (no I/O) and expands no entities beyond XML's five
//! and character references.

use crate::autoconfig::NamedServer;
use crate::http::{is_host_name, HttpsUrl};
use mailmend_core::{Protocol, Security};
use quick_xml::events::Event;
use quick_xml::Reader;

/// The most servers taken from one answer.
pub const MAX_SERVERS: usize = 32;
/// The longest answer accepted (after the HTTP limit, a second line of defence).
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// The deepest element nesting accepted.
const MAX_DEPTH: usize = 64;
/// The response schema asked for.
pub const RESPONSE_SCHEMA: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";

/// What an Autodiscover server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoxAnswer {
    /// The account's settings; empty when the answer named nothing usable.
    Settings(Vec<NamedServer>),
    /// Ask again at this URL (`Action` `redirectUrl`).
    RedirectUrl(String),
    /// Ask again for this address (`Action` `redirectAddr`).
    RedirectAddr(String),
    /// The server answered with an `Error` element (e.g. 500: address not found).
    Error {
        code: Option<String>,
        message: Option<String>,
    },
}

/// Why an answer was not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AutodiscoverError {
    /// Not well-formed XML (or an unknown entity).
    #[error("malformed autodiscover answer: {0}")]
    Malformed(String),
    /// Well-formed, but not an `Autodiscover` document (an HTML page, say).
    #[error("not an autodiscover answer (root element {0:?})")]
    NotAutodiscover(String),
    /// Larger than [`MAX_DOCUMENT_BYTES`].
    #[error("autodiscover answer larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
}

/// The two HTTPS URLs Outlook POSTs to first, in its order.
pub fn urls(domain: &str) -> [String; 2] {
    [
        format!("https://{domain}/autodiscover/autodiscover.xml"),
        format!("https://autodiscover.{domain}/autodiscover/autodiscover.xml"),
    ]
}

/// The URL of the Autodiscover server an `_autodiscover._tcp` SRV record names.
pub fn srv_url(target: &str, port: u16) -> String {
    if port == 443 {
        format!("https://{target}/autodiscover/autodiscover.xml")
    } else {
        format!("https://{target}:{port}/autodiscover/autodiscover.xml")
    }
}

/// The POX request for `email`, as Outlook sends it.
pub fn request_body(email: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n\
         <Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\">\r\n\
         <Request>\r\n\
         <EMailAddress>{}</EMailAddress>\r\n\
         <AcceptableResponseSchema>{RESPONSE_SCHEMA}</AcceptableResponseSchema>\r\n\
         </Request>\r\n\
         </Autodiscover>\r\n",
        xml_escape(email)
    )
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

/// One `Protocol` block being read.
#[derive(Default)]
struct Block {
    kind: Option<String>,
    server: Option<String>,
    port: Option<String>,
    ssl: Option<String>,
    encryption: Option<String>,
    ews_url: Option<String>,
    external_url: Option<String>,
}

/// Reads an Autodiscover answer.
pub fn parse(xml: &str) -> Result<PoxAnswer, AutodiscoverError> {
    if xml.len() > MAX_DOCUMENT_BYTES {
        return Err(AutodiscoverError::TooLarge);
    }
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut path: Vec<String> = Vec::new();
    let mut root_seen = false;
    let mut block: Option<(usize, Block)> = None;
    let mut servers = Vec::new();
    let mut action: Option<String> = None;
    let mut redirect_url: Option<String> = None;
    let mut redirect_addr: Option<String> = None;
    let mut error_seen = false;
    let mut error_code: Option<String> = None;
    let mut error_message: Option<String> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| AutodiscoverError::Malformed(e.to_string()))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if path.len() > MAX_DEPTH {
                    return Err(AutodiscoverError::Malformed(
                        "elements nested too deeply".into(),
                    ));
                }
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if !root_seen {
                    root_seen = true;
                    if name != "Autodiscover" {
                        return Err(AutodiscoverError::NotAutodiscover(name));
                    }
                }
                if name == "Error" {
                    error_seen = true;
                }
                let opens_block = name == "Protocol" && block.is_none();
                if opens_block {
                    let mut b = Block::default();
                    // Newer answers name the type in an attribute (`Protocol Type="mapiHttp"`).
                    for attr in e.attributes().flatten() {
                        if attr.key.local_name().as_ref() == b"Type" {
                            let value = attr
                                .unescape_value()
                                .map_err(|e| AutodiscoverError::Malformed(e.to_string()))?;
                            b.kind = Some(value.trim().to_string());
                        }
                    }
                    if matches!(event, Event::Start(_)) {
                        block = Some((path.len(), b));
                    }
                }
                if matches!(event, Event::Start(_)) {
                    path.push(name);
                }
            }
            Event::End(_) => {
                path.pop();
                if let Some((depth, _)) = &block {
                    if path.len() == *depth {
                        if let Some((_, b)) = block.take() {
                            if let Some(s) = finish(b) {
                                if servers.len() < MAX_SERVERS {
                                    servers.push(s);
                                }
                            }
                        }
                    }
                }
            }
            Event::Text(t) => {
                let text = t
                    .unescape()
                    .map_err(|e| AutodiscoverError::Malformed(e.to_string()))?;
                let text = text.trim().to_string();
                let Some(element) = path.last().map(String::as_str) else {
                    continue;
                };
                match &mut block {
                    Some((depth, b)) => {
                        let direct = path.len() == *depth + 2;
                        match element {
                            "Type" if direct => b.kind = Some(text),
                            "Server" if direct => b.server = Some(text),
                            "Port" if direct => b.port = Some(text),
                            "SSL" if direct => b.ssl = Some(text),
                            "Encryption" if direct => b.encryption = Some(text),
                            "EwsUrl" if direct => b.ews_url = Some(text),
                            "ExternalUrl" if b.external_url.is_none() => {
                                b.external_url = Some(text)
                            }
                            _ => {}
                        }
                    }
                    None => match element {
                        "Action" => action = Some(text),
                        "RedirectUrl" => redirect_url = Some(text),
                        "RedirectAddr" => redirect_addr = Some(text),
                        "ErrorCode" if error_seen => error_code = Some(text),
                        "Message" if error_seen => error_message = Some(text),
                        _ => {}
                    },
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !root_seen {
        return Err(AutodiscoverError::Malformed("no root element".into()));
    }
    match action.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("redirecturl") => {
            if let Some(url) = redirect_url {
                return Ok(PoxAnswer::RedirectUrl(url));
            }
        }
        Some("redirectaddr") => {
            if let Some(addr) = redirect_addr {
                return Ok(PoxAnswer::RedirectAddr(addr));
            }
        }
        _ => {}
    }
    if error_seen && servers.is_empty() {
        return Ok(PoxAnswer::Error {
            code: error_code,
            message: error_message.map(|m| crate::replies::excerpt(&m)),
        });
    }
    Ok(PoxAnswer::Settings(servers))
}

fn finish(b: Block) -> Option<NamedServer> {
    let kind = b.kind?.to_ascii_uppercase();
    let on = |v: &Option<String>| v.as_deref().map(|s| s.eq_ignore_ascii_case("on"));
    match kind.as_str() {
        "IMAP" | "POP3" | "SMTP" => {
            let protocol = match kind.as_str() {
                "IMAP" => Protocol::Imap,
                "POP3" => Protocol::Pop3,
                _ => Protocol::Smtp,
            };
            let host = host_of(b.server.as_deref()?)?;
            let port = match b.port.as_deref() {
                Some(p) => match p.parse::<u16>() {
                    Ok(port) if port > 0 => Some(port),
                    _ => return None,
                },
                None => None,
            };
            let implicit_port = matches!(port, Some(993 | 995 | 465));
            let security = match b.encryption.as_deref().map(str::to_ascii_uppercase) {
                Some(e) if e == "SSL" => Security::Tls,
                Some(e) if e == "TLS" => Security::StartTls,
                Some(e) if e == "NONE" => Security::None,
                Some(e) if e == "AUTO" => {
                    if implicit_port {
                        Security::Tls
                    } else {
                        Security::StartTls
                    }
                }
                Some(_) => return None,
                // SSL is "on" when absent (MS-OXDSCLI); on a STARTTLS port it means STARTTLS.
                None => match on(&b.ssl) {
                    Some(false) => Security::None,
                    _ if port.is_none() || implicit_port => Security::Tls,
                    _ if matches!(port, Some(143 | 110 | 587 | 25)) => Security::StartTls,
                    _ => Security::Tls,
                },
            };
            Some(NamedServer {
                protocol,
                host,
                port: port.unwrap_or_else(|| protocol.default_port(security)),
                security,
                url: None,
            })
        }
        "EXCH" | "EXPR" | "EXHTTP" | "MAPIHTTP" => {
            let url = b
                .ews_url
                .iter()
                .chain(b.external_url.iter())
                .find(|u| HttpsUrl::parse(u).is_ok())
                .cloned();
            // A URL may name an address; only a host name can be a server to move to.
            let host = match &url {
                Some(u) => HttpsUrl::parse(u).ok().and_then(|u| host_of(&u.host)),
                None => None,
            }
            .or_else(|| b.server.as_deref().and_then(host_of))?;
            let security = if on(&b.ssl) == Some(false) && url.is_none() {
                Security::None
            } else {
                Security::Tls
            };
            Some(NamedServer {
                protocol: Protocol::Exchange,
                host,
                port: 443,
                security,
                url,
            })
        }
        _ => None,
    }
}

/// A `Server` value as a host name; EXCH blocks may hold a mailbox GUID (`guid@domain`),
/// which is no host.
fn host_of(server: &str) -> Option<String> {
    let host = server.trim().trim_end_matches('.').to_ascii_lowercase();
    is_host_name(&host).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testgen::{mutate, XorShift};

    /// The example of an Outlook 2006a answer in Microsoft's POX Autodiscover reference, with
    /// EXCH, EXPR and WEB blocks, as an on-premises Exchange server sends it.
    const EXCHANGE_ONPREM: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
  <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">
    <User>
      <DisplayName>Mara Whitley</DisplayName>
      <LegacyDN>/o=contoso/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=mara</LegacyDN>
      <DeploymentId>644560b8-a1ce-429c-8ace-23395843f701</DeploymentId>
    </User>
    <Account>
      <AccountType>email</AccountType>
      <Action>settings</Action>
      <Protocol>
        <Type>EXCH</Type>
        <Server>MBX01.contoso.com</Server>
        <ServerDN>/o=contoso/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Configuration/cn=Servers/cn=MBX01</ServerDN>
        <ServerVersion>72008287</ServerVersion>
        <MdbDN>/o=contoso/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Configuration/cn=Servers/cn=MBX01/cn=Microsoft Private MDB</MdbDN>
        <ASUrl>https://mail.contoso.com/ews/exchange.asmx</ASUrl>
        <OOFUrl>https://mail.contoso.com/ews/exchange.asmx</OOFUrl>
        <UMUrl>https://mail.contoso.com/unifiedmessaging/service.asmx</UMUrl>
        <OABUrl>https://mail.contoso.com/OAB/d29844a9-724e-468c-8820-0f7b345b767b/</OABUrl>
        <EwsUrl>https://Mail.Contoso.com/EWS/Exchange.asmx</EwsUrl>
      </Protocol>
      <Protocol>
        <Type>EXPR</Type>
        <Server>outlook.contoso.com</Server>
        <SSL>On</SSL>
        <AuthPackage>Ntlm</AuthPackage>
      </Protocol>
      <Protocol>
        <Type>WEB</Type>
        <External>
          <OWAUrl AuthenticationMethod="Fba">https://mail.contoso.com/owa</OWAUrl>
        </External>
      </Protocol>
    </Account>
  </Response>
</Autodiscover>"#;

    /// An answer for a POP/IMAP/SMTP mailbox, as hosting providers serve it for Outlook.
    const HOSTED_POP_IMAP: &str = r#"<?xml version="1.0" encoding="utf-8" ?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
  <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">
    <Account>
      <AccountType>email</AccountType>
      <Action>settings</Action>
      <Protocol>
        <Type>IMAP</Type>
        <Server>imap.example.com</Server>
        <Port>993</Port>
        <DomainRequired>off</DomainRequired>
        <LoginName>ann@example.com</LoginName>
        <SPA>off</SPA>
        <SSL>on</SSL>
        <AuthRequired>on</AuthRequired>
      </Protocol>
      <Protocol>
        <Type>POP3</Type>
        <Server>pop.example.com</Server>
        <Port>110</Port>
        <SSL>on</SSL>
      </Protocol>
      <Protocol>
        <Type>SMTP</Type>
        <Server>smtp.example.com</Server>
        <Port>587</Port>
        <SPA>off</SPA>
        <Encryption>TLS</Encryption>
        <AuthRequired>on</AuthRequired>
        <UsePOPAuth>on</UsePOPAuth>
      </Protocol>
      <Protocol>
        <Type>SMTP</Type>
        <Server>relay.example.com</Server>
        <Port>25</Port>
        <SSL>off</SSL>
      </Protocol>
    </Account>
  </Response>
</Autodiscover>"#;

    #[test]
    fn an_on_premises_exchange_answer_names_the_ews_host() {
        let PoxAnswer::Settings(servers) = parse(EXCHANGE_ONPREM).unwrap() else {
            panic!("settings expected");
        };
        assert_eq!(
            servers,
            vec![
                NamedServer {
                    protocol: Protocol::Exchange,
                    host: "mail.contoso.com".into(),
                    port: 443,
                    security: Security::Tls,
                    url: Some("https://Mail.Contoso.com/EWS/Exchange.asmx".into()),
                },
                NamedServer {
                    protocol: Protocol::Exchange,
                    host: "outlook.contoso.com".into(),
                    port: 443,
                    security: Security::Tls,
                    url: None,
                },
            ]
        );
    }

    #[test]
    fn a_hosted_answer_maps_ssl_and_encryption_to_security() {
        let PoxAnswer::Settings(servers) = parse(HOSTED_POP_IMAP).unwrap() else {
            panic!("settings expected");
        };
        let got: Vec<(Protocol, &str, u16, Security)> = servers
            .iter()
            .map(|s| (s.protocol, s.host.as_str(), s.port, s.security))
            .collect();
        assert_eq!(
            got,
            vec![
                (Protocol::Imap, "imap.example.com", 993, Security::Tls),
                (Protocol::Pop3, "pop.example.com", 110, Security::StartTls),
                (Protocol::Smtp, "smtp.example.com", 587, Security::StartTls),
                (Protocol::Smtp, "relay.example.com", 25, Security::None),
            ]
        );
    }

    #[test]
    fn redirects_and_errors_are_answers_of_their_own() {
        let redirect = r#"<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"><Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"><Account><Action>redirectUrl</Action><RedirectUrl>https://autodiscover.contoso.net/autodiscover/autodiscover.xml</RedirectUrl></Account></Response></Autodiscover>"#;
        assert_eq!(
            parse(redirect).unwrap(),
            PoxAnswer::RedirectUrl(
                "https://autodiscover.contoso.net/autodiscover/autodiscover.xml".into()
            )
        );
        let addr = r#"<Autodiscover><Response><Account><Action>redirectAddr</Action><RedirectAddr>mara@contoso.net</RedirectAddr></Account></Response></Autodiscover>"#;
        assert_eq!(
            parse(addr).unwrap(),
            PoxAnswer::RedirectAddr("mara@contoso.net".into())
        );
        let error = r#"<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
  <Response>
    <Error Time="16:42:44.4573464" Id="1054084152">
      <ErrorCode>500</ErrorCode>
      <Message>The email address can't be found.</Message>
      <DebugData />
    </Error>
  </Response>
</Autodiscover>"#;
        assert_eq!(
            parse(error).unwrap(),
            PoxAnswer::Error {
                code: Some("500".into()),
                message: Some("The email address can't be found.".into())
            }
        );
    }

    #[test]
    fn a_mapi_http_block_names_its_external_url_host() {
        let xml = r#"<Autodiscover><Response><Account><Action>settings</Action>
            <Protocol Type="mapiHttp" Version="1"><MailStore><InternalUrl>https://internal.contoso.com/mapi/emsmdb/</InternalUrl><ExternalUrl>https://outlook.office365.com/mapi/emsmdb/?MailboxId=x@contoso.com</ExternalUrl></MailStore></Protocol>
            <Protocol><Type>EXCH</Type><Server>5d7c4ae0-0000-4000-8000-0123456789ab@contoso.com</Server></Protocol>
            </Account></Response></Autodiscover>"#;
        let PoxAnswer::Settings(servers) = parse(xml).unwrap() else {
            panic!("settings expected");
        };
        // The GUID "server" is no host; the MAPI URL is.
        assert_eq!(servers.len(), 1);
        assert_eq!(servers[0].host, "outlook.office365.com");
        assert_eq!(servers[0].protocol, Protocol::Exchange);
    }

    #[test]
    fn html_and_garbage_are_errors_and_entities_are_not_expanded() {
        assert!(matches!(
            parse("<html><head><title>401</title></head></html>"),
            Err(AutodiscoverError::NotAutodiscover(_))
        ));
        assert!(matches!(parse(""), Err(AutodiscoverError::Malformed(_))));
        let xxe = r#"<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><Autodiscover><Response><Account><Protocol><Type>IMAP</Type><Server>&x;</Server></Protocol></Account></Response></Autodiscover>"#;
        assert!(matches!(parse(xxe), Err(AutodiscoverError::Malformed(_))));
    }

    fn render(servers: &[NamedServer]) -> String {
        let mut xml = String::from("<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\"><Response xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a\"><Account><AccountType>email</AccountType><Action>settings</Action>");
        for s in servers {
            match s.protocol {
                Protocol::Exchange => xml.push_str(&format!(
                    "<Protocol><Type>EXCH</Type><Server>guid@example.com</Server><EwsUrl>{}</EwsUrl></Protocol>",
                    s.url.as_deref().unwrap_or_default()
                )),
                p => {
                    let encryption = match s.security {
                        Security::Tls => "SSL",
                        Security::StartTls => "TLS",
                        Security::None => "None",
                    };
                    xml.push_str(&format!(
                        "<Protocol><Type>{}</Type><Server>{}</Server><Port>{}</Port><Encryption>{encryption}</Encryption></Protocol>",
                        p.as_str().to_ascii_uppercase(),
                        s.host,
                        s.port
                    ));
                }
            }
        }
        xml.push_str("</Account></Response></Autodiscover>");
        xml
    }

    #[test]
    fn rendered_answers_parse_back_to_their_servers() {
        let mut rng = XorShift(0x0bad_c0de_1357_9bdfu64);
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
                    let host = format!("h{i}-{}.example.com", next() % 1000);
                    if protocol == Protocol::Exchange {
                        return NamedServer {
                            protocol,
                            url: Some(format!("https://{host}/EWS/Exchange.asmx")),
                            host,
                            port: 443,
                            security: Security::Tls,
                        };
                    }
                    NamedServer {
                        protocol,
                        host,
                        port: 1 + (next() % 65535) as u16,
                        security: [Security::Tls, Security::StartTls, Security::None]
                            [(next() % 3) as usize],
                        url: None,
                    }
                })
                .collect();
            assert_eq!(
                parse(&render(&servers)).unwrap(),
                PoxAnswer::Settings(servers)
            );
        }
    }

    #[test]
    fn mutated_answers_never_panic_and_name_only_valid_hosts() {
        let mut rng = XorShift(0x7777_1234_4321_aaaau64);
        let mut next = || rng.next();
        for seed in [EXCHANGE_ONPREM, HOSTED_POP_IMAP] {
            for _ in 0..3_000 {
                let mut data = seed.as_bytes().to_vec();
                mutate(&mut data, &mut next, b"<>/&;:@\"'");
                let text = String::from_utf8_lossy(&data);
                if let Ok(PoxAnswer::Settings(servers)) = parse(&text) {
                    assert!(servers.len() <= MAX_SERVERS);
                    assert!(servers.iter().all(|s| is_host_name(&s.host) && s.port > 0));
                }
            }
        }
    }

    #[test]
    fn the_request_escapes_the_address() {
        let body = request_body("a&b<c>@example.com");
        assert!(body.contains("<EMailAddress>a&amp;b&lt;c&gt;@example.com</EMailAddress>"));
        assert!(body.contains(RESPONSE_SCHEMA));
    }

    #[test]
    fn urls_are_outlooks_https_locations() {
        assert_eq!(
            urls("example.com"),
            [
                "https://example.com/autodiscover/autodiscover.xml".to_string(),
                "https://autodiscover.example.com/autodiscover/autodiscover.xml".to_string()
            ]
        );
        assert_eq!(
            srv_url("ad.hosting.test", 8443),
            "https://ad.hosting.test:8443/autodiscover/autodiscover.xml"
        );
    }
}
