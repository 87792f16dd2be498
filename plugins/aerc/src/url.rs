//! aerc's `source` and `outgoing` URLs (`imaps://user@host:993`, `smtp+plain://user@host`),
//! read the way Go's `net/url` and aerc's `auth.ParseScheme` read them, with the byte span in
//! the file of each part mailmend may rewrite.
//!
//! - The scheme is `<protocol>[+<part>…]`; a part `insecure` turns STARTTLS off (`imap`,
//!   `smtp`) or certificate checks off (`imaps`), and the other parts name the authentication
//!   mechanism (`plain`, `login`, `none`, `oauthbearer`, `xoauth2`).
//! - The query (`?client_id=…&client_secret=…`) starts at the first `?`; the authority after
//!   `//` ends at the first `/` or `?`; the user information ends at the *last* `@`, and its
//!   password starts at its first `:`; the port is what follows the host's last `:` (after `]`
//!   for an IPv6 literal).
//!
//! Neither the password nor the query is ever kept: a [`Url`] records only that there was a
//! password, and no edit touches either, so their bytes stay in the file as they were.

use mailmend_clientkit::url::{parse_port, user_info};
// Whether a host can be written into a URL, and how: shared with the other adapters.
pub use mailmend_clientkit::url::{host_in_url, is_plain_host};
use std::ops::Range;

/// A URL without its password and query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// The first part of the scheme, lower-cased: `imap`, `imaps`, `smtp`, `smtps`, `maildir`, …
    pub protocol: String,
    /// The other parts of the scheme, lower-cased, in order (`insecure`, `plain`, …).
    pub parts: Vec<String>,
    /// The percent-decoded user name, when the URL names one.
    pub user: Option<String>,
    /// Whether the URL holds a password (which is not kept).
    pub has_password: bool,
    /// The host, without the brackets of an IPv6 literal.
    pub host: String,
    /// The explicit port, when the URL names one.
    pub port: Option<u16>,
    /// Where the parts are in the file.
    pub spans: UrlSpans,
}

/// The file bytes of a URL's rewritable parts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlSpans {
    pub scheme: Range<usize>,
    /// The host, brackets of an IPv6 literal included.
    pub host: Range<usize>,
    /// The port's digits.
    pub port: Option<Range<usize>>,
}

/// Why a text with `://` is not a URL aerc could use. The text is never quoted: it may hold a
/// password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// No `scheme://` at the start: a path, or a typo in the scheme.
    #[error("no scheme:// at the start")]
    BadScheme,
    /// A host with characters Go's URL parser refuses (a space before an inline comment is the
    /// usual cause), or text after an IPv6 literal.
    #[error("the host holds characters a URL cannot hold")]
    BadHost,
    /// A port that is not 1 to 65535: an empty `:`, letters, or a typo.
    #[error("the port is not a number from 1 to 65535")]
    BadPort,
    /// Bytes that are not UTF-8, from an editor saving in another encoding.
    #[error("the URL is not UTF-8")]
    Encoding,
}

impl Url {
    /// Whether the scheme has the `insecure` part.
    pub fn insecure(&self) -> bool {
        self.parts.iter().any(|p| p == "insecure")
    }

    /// The authentication mechanism the scheme names, if any (`plain`, `oauthbearer`, …).
    pub fn mechanism(&self) -> Option<String> {
        let mech: Vec<&str> = self
            .parts
            .iter()
            .map(String::as_str)
            .filter(|&p| p != "insecure")
            .collect();
        (!mech.is_empty()).then(|| mech.join("+"))
    }

    /// Parses `text`, which starts at byte `base` of the file.
    pub fn parse(text: &str, base: usize) -> Result<Url, UrlError> {
        let b = text.as_bytes();
        let colon = b
            .iter()
            .position(|&c| c == b':')
            .ok_or(UrlError::BadScheme)?;
        let scheme = &text[..colon];
        let valid = scheme
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(&c));
        if !valid || !text[colon..].starts_with("://") {
            return Err(UrlError::BadScheme);
        }
        let scheme = scheme.to_ascii_lowercase();
        let mut parts = scheme.split('+').map(str::to_string);
        let protocol = parts.next().unwrap_or_default();
        let parts: Vec<String> = parts.collect();

        let auth_start = colon + 3;
        let auth_end = b[auth_start..]
            .iter()
            .position(|&c| c == b'/' || c == b'?')
            .map_or(b.len(), |i| auth_start + i);
        let authority = &b[auth_start..auth_end];
        let info = user_info(authority);
        let (user, has_password) = (info.user, info.has_password);
        let host_start = auth_start + info.host_start;
        let hostport = &b[host_start..auth_end];
        let (host_range, port_range) = if hostport.first() == Some(&b'[') {
            let close = hostport
                .iter()
                .position(|&c| c == b']')
                .ok_or(UrlError::BadHost)?;
            let after = host_start + close + 1;
            match b.get(after) {
                _ if after == auth_end => (host_start..after, None),
                Some(b':') => (host_start..after, Some(after + 1..auth_end)),
                _ => return Err(UrlError::BadHost),
            }
        } else {
            match hostport.iter().rposition(|&c| c == b':') {
                Some(c) => (
                    host_start..host_start + c,
                    Some(host_start + c + 1..auth_end),
                ),
                None => (host_start..auth_end, None),
            }
        };
        let host_text = &text[host_range.clone()];
        let host = host_text
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host_text);
        // Go refuses spaces and control characters in a host.
        if host.bytes().any(|c| c <= b' ' || c == 0x7f) {
            return Err(UrlError::BadHost);
        }
        let port = match &port_range {
            Some(r) => Some(parse_port(&b[r.clone()]).ok_or(UrlError::BadPort)?),
            None => None,
        };
        Ok(Url {
            protocol,
            parts,
            user,
            has_password,
            host: host.to_string(),
            port,
            spans: UrlSpans {
                scheme: base..base + colon,
                host: base + host_range.start..base + host_range.end,
                port: port_range.map(|r| base + r.start..base + r.end),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_parts_user_host_and_port_are_read() {
        let text = "smtp+insecure+login://ann%40corp:pw@smtp.example.com:2525?x=1";
        let u = Url::parse(text, 10).unwrap();
        assert_eq!(u.protocol, "smtp");
        assert_eq!(u.parts, ["insecure", "login"]);
        assert!(u.insecure());
        assert_eq!(u.mechanism().as_deref(), Some("login"));
        assert_eq!(u.user.as_deref(), Some("ann@corp"));
        assert!(u.has_password);
        assert_eq!(u.host, "smtp.example.com");
        assert_eq!(u.port, Some(2525));
        assert_eq!(u.spans.scheme, 10..29);
        assert_eq!(
            &text[u.spans.host.start - 10..u.spans.host.end - 10],
            "smtp.example.com"
        );
        assert!(!format!("{u:?}").contains("pw"));
    }

    #[test]
    fn the_query_and_the_last_at_sign_bound_the_parts() {
        let u = Url::parse(
            "imaps+oauthbearer://a@b.c@imap.example.com?client_secret=s@x:1",
            0,
        )
        .unwrap();
        assert_eq!(u.user.as_deref(), Some("a@b.c"));
        assert_eq!(u.host, "imap.example.com");
        assert_eq!(u.port, None);
        assert_eq!(u.mechanism().as_deref(), Some("oauthbearer"));
    }

    #[test]
    fn ipv6_literals_and_bad_urls() {
        let u = Url::parse("IMAP://[::1]:1143", 0).unwrap();
        assert_eq!(
            (u.protocol.as_str(), u.host.as_str(), u.port),
            ("imap", "::1", Some(1143))
        );
        assert_eq!(u.spans.host, 7..12);
        assert_eq!(Url::parse("imap://[::1]x", 0), Err(UrlError::BadHost));
        assert_eq!(Url::parse("imap://h :1", 0), Err(UrlError::BadHost));
        assert_eq!(Url::parse("imap://h:", 0), Err(UrlError::BadPort));
        assert_eq!(Url::parse("imap://h:65536", 0), Err(UrlError::BadPort));
        assert_eq!(Url::parse("/usr/bin/sendmail", 0), Err(UrlError::BadScheme));
    }
}
