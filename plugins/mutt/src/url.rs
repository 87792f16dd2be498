//! Mailbox and server URLs the way mutt reads them (`imaps://user@host:993/INBOX`), with the
//! byte span in the configuration file of each part that mailmend may rewrite.
//!
//! The grammar follows mutt's `url_parse`: the scheme runs up to `:`, the authority after `//`
//! runs up to the first `/`, the user information ends at the *last* `@` of the authority and
//! its password starts at its first `:`, an IPv6 literal sits in brackets, and the port is the
//! digits after the host's `:`. The password is never kept: a [`Url`] only records that there
//! was one, and no part of it is ever rewritten, so its bytes stay in the file as they were.

use mailmend_clientkit::url::{parse_port, user_info};
// Whether a host can be written into a URL, and how: shared with the other adapters.
pub use mailmend_clientkit::url::{host_in_url, is_plain_host};
use std::ops::Range;

/// A URL without its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// The scheme, lower-cased (`imaps`, `smtp`, …).
    pub scheme: String,
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

/// The file bytes of a URL's rewritable parts. A part is `None` when its bytes are not
/// written literally in one run (an escape sequence or a quote inside it): mailmend then does not
/// rewrite it, rather than guess how to re-quote it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlSpans {
    pub scheme: Option<Range<usize>>,
    /// The host, brackets of an IPv6 literal included.
    pub host: Option<Range<usize>>,
    /// The port's digits.
    pub port: Option<Range<usize>>,
}

/// Why a text with `://` is not a URL mutt could use. The text itself is not quoted in
/// messages: it may hold a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// No `scheme://` at the start: a path, or a typo in the scheme.
    #[error("no scheme:// at the start")]
    BadScheme,
    /// Text after an IPv6 literal's `]` that is not a port, usually a typo.
    #[error("unexpected text after the host")]
    BadHost,
    /// A port that is not 1 to 65535: an empty `:`, letters, or a typo.
    #[error("the port is not a number from 1 to 65535")]
    BadPort,
}

impl Url {
    /// Parses a URL written literally (every byte at its own offset, from 0).
    pub fn parse(text: &str) -> Result<Url, UrlError> {
        let src: Vec<Option<usize>> = (0..text.len()).map(Some).collect();
        parse_with_offsets(text.as_bytes(), &src)
    }
}

/// The file span of decoded bytes `range`, when they all come literally from consecutive file
/// bytes.
pub(crate) fn literal_span(src: &[Option<usize>], range: Range<usize>) -> Option<Range<usize>> {
    if range.is_empty() {
        return None;
    }
    let first = src.get(range.start).copied().flatten()?;
    for (k, i) in range.clone().enumerate() {
        if src.get(i).copied().flatten()? != first + k {
            return None;
        }
    }
    Some(first..first + range.len())
}

/// Parses decoded bytes whose file offsets are `src` (one per byte; `None` for a byte that an
/// escape sequence produced).
pub(crate) fn parse_with_offsets(bytes: &[u8], src: &[Option<usize>]) -> Result<Url, UrlError> {
    let colon = bytes
        .iter()
        .position(|&b| b == b':')
        .ok_or(UrlError::BadScheme)?;
    let scheme = &bytes[..colon];
    let valid_scheme = scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !valid_scheme || !bytes[colon..].starts_with(b"://") {
        return Err(UrlError::BadScheme);
    }
    let auth_start = colon + 3;
    let auth_end = bytes[auth_start..]
        .iter()
        .position(|&b| b == b'/')
        .map_or(bytes.len(), |i| auth_start + i);
    let authority = &bytes[auth_start..auth_end];

    let info = user_info(authority);
    let (user, has_password) = (info.user, info.has_password);
    let host_start = auth_start + info.host_start;

    // An IPv6 literal may hold colons, so the port search starts after its bracket.
    let (host, host_end, port_search) = if bytes.get(host_start) == Some(&b'[') {
        match bytes[host_start..auth_end].iter().position(|&b| b == b']') {
            Some(close) => {
                let close = host_start + close;
                // Mutt ignores text between `]` and the port; it is refused here, since a
                // rewrite of the host could not keep its meaning.
                if close + 1 < auth_end && bytes[close + 1] != b':' {
                    return Err(UrlError::BadHost);
                }
                (&bytes[host_start + 1..close], close + 1, close + 1)
            }
            None => (&bytes[host_start..auth_end], auth_end, auth_end),
        }
    } else {
        (&bytes[host_start..auth_end], auth_end, host_start)
    };
    let (host, host_end, port) = match bytes[port_search..auth_end].iter().position(|&b| b == b':')
    {
        Some(c) => {
            let c = port_search + c;
            let digits = &bytes[c + 1..auth_end];
            let port = parse_port(digits).ok_or(UrlError::BadPort)?;
            let host = if host_end > c {
                &bytes[host_start..c]
            } else {
                host
            };
            (host, host_end.min(c), Some((port, c + 1..auth_end)))
        }
        None => (host, host_end, None),
    };
    let host_range = host_start..host_end;
    Ok(Url {
        scheme: String::from_utf8_lossy(scheme).to_ascii_lowercase(),
        user,
        has_password,
        host: String::from_utf8_lossy(host).into_owned(),
        port: port.as_ref().map(|(p, _)| *p),
        spans: UrlSpans {
            scheme: literal_span(src, 0..colon),
            host: literal_span(src, host_range),
            port: port.and_then(|(_, r)| literal_span(src, r)),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parts_and_their_spans_are_found() {
        let u = Url::parse("imaps://ann%40corp@imap.example.com:993/INBOX").unwrap();
        assert_eq!(u.scheme, "imaps");
        assert_eq!(u.user.as_deref(), Some("ann@corp"));
        assert!(!u.has_password);
        assert_eq!(u.host, "imap.example.com");
        assert_eq!(u.port, Some(993));
        assert_eq!(u.spans.scheme, Some(0..5));
        assert_eq!(u.spans.host, Some(19..35));
        assert_eq!(u.spans.port, Some(36..39));
    }

    #[test]
    fn the_password_is_dropped_and_the_last_at_sign_ends_the_user() {
        let u = Url::parse("smtps://a@b:p@ss@smtp.example.com/").unwrap();
        assert_eq!(u.user.as_deref(), Some("a@b"));
        assert!(u.has_password);
        assert_eq!(u.host, "smtp.example.com");
        assert!(!format!("{u:?}").contains("p@ss"));
    }

    #[test]
    fn ipv6_literals_keep_their_colons() {
        let u = Url::parse("imap://[::1]:1143").unwrap();
        assert_eq!(u.host, "::1");
        assert_eq!(u.port, Some(1143));
        assert_eq!(u.spans.host, Some(7..12));
        let u = Url::parse("imap://[::1]/").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", None));
    }

    #[test]
    fn bad_ports_and_schemes_are_rejected() {
        assert_eq!(Url::parse("imap://h:/"), Err(UrlError::BadPort));
        assert_eq!(Url::parse("imap://h:0/"), Err(UrlError::BadPort));
        assert_eq!(Url::parse("imap://h:70000/"), Err(UrlError::BadPort));
        assert_eq!(Url::parse("imap://h:99a/"), Err(UrlError::BadPort));
        assert_eq!(Url::parse("~/Mail"), Err(UrlError::BadScheme));
        assert_eq!(Url::parse("1map://h"), Err(UrlError::BadScheme));
        assert_eq!(Url::parse("imap:/h"), Err(UrlError::BadScheme));
        assert_eq!(Url::parse("imap://[::1]x/"), Err(UrlError::BadHost));
    }

    #[test]
    fn spans_are_withheld_for_escaped_bytes() {
        let src = [Some(0), Some(1), None, Some(5)];
        assert_eq!(literal_span(&src, 0..2), Some(0..2));
        assert_eq!(literal_span(&src, 1..3), None);
        assert_eq!(literal_span(&src, 2..4), None);
        let gap = [Some(0), Some(2)];
        assert_eq!(literal_span(&gap, 0..2), None);
    }
}
