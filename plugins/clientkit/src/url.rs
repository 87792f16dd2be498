//! The parts of a server URL (`imaps://user:secret@host:993/…`) that mutt's and aerc's grammars
//! read alike: the user information, the port, percent escapes, and a host's text inside a URL.
//!
//! Where the authority ends, and how the host and port are told apart, differ between the
//! clients (mutt follows its `url_parse`, aerc Go's `net/url`), so each adapter keeps its own
//! parser and calls these pieces on the bytes it has cut out. The password is never kept: a
//! [`UserInfo`] only records that there was one.

use zeroize::Zeroizing;
/// The user information at the start of a URL's authority, without its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The percent-decoded user name, when the authority names one.
    pub user: Option<String>,
    /// Whether the authority holds a password (which is not kept).
    pub has_password: bool,
    /// Where the host starts, as an offset into the authority (0 when there is no user).
    pub host_start: usize,
}

/// Splits the user information off `authority` (the bytes after `//`, up to where the grammar
/// ends it): it ends at the *last* `@`, so that a user name may hold one, and its password
/// starts at its first `:`.
pub fn user_info(authority: &[u8]) -> UserInfo {
    let Some(at) = authority.iter().rposition(|&b| b == b'@') else {
        return UserInfo {
            user: None,
            has_password: false,
            host_start: 0,
        };
    };
    let userinfo = &authority[..at];
    let (name, has_password) = match userinfo.iter().position(|&b| b == b':') {
        Some(c) => (&userinfo[..c], true),
        None => (userinfo, false),
    };
    UserInfo {
        user: Some(percent_decode(name)),
        has_password,
        host_start: at + 1,
    }
}

/// A port number: 1 to 65535, digits only.
pub fn parse_port(digits: &[u8]) -> Option<u16> {
    if digits.is_empty() || digits.len() > 5 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u32 = digits.iter().fold(0, |n, &d| n * 10 + u32::from(d - b'0'));
    u16::try_from(n).ok().filter(|&p| p != 0)
}

/// Decodes `%XX` escapes; anything else, a malformed escape included, stays as it is.
pub fn percent_decode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                // Two hex digits fit in a byte.
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `host` can be written into a URL as is: a DNS name or an address, nothing that would
/// change the URL's structure, need quoting in a configuration file, or end the value early
/// (`#` and `;` start a comment in some of them).
pub fn is_plain_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:_".contains(&b))
}

/// The text of a host inside a URL: an IPv6 address goes in brackets.
pub fn host_in_url(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// The percent-decoded password of a mail URL's user information (`imaps://user:PASSWORD@host`),
/// when it has a non-empty one, read the way Go's `net/url` and mutt read it: user information
/// up to the last `@` of the authority, password after its first `:`.
/// The buffers that hold it are zeroed when dropped.
pub fn password(url: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let colon = url.iter().position(|&c| c == b':')?;
    let rest = url.get(colon..)?.strip_prefix(b"://")?;
    let end = rest
        .iter()
        .position(|&c| c == b'/' || c == b'?')
        .unwrap_or(rest.len());
    let authority = &rest[..end];
    let at = authority.iter().rposition(|&c| c == b'@')?;
    let userinfo = &authority[..at];
    let sep = userinfo.iter().position(|&c| c == b':')?;
    let encoded = &userinfo[sep + 1..];
    let mut out = Zeroizing::new(Vec::with_capacity(encoded.len()));
    let mut i = 0;
    while i < encoded.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if encoded[i] == b'%' && i + 2 < encoded.len() {
            if let (Some(h), Some(l)) = (hex(encoded[i + 1]), hex(encoded[i + 2])) {
                // Two hex digits fit in a byte.
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(encoded[i]);
        i += 1;
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_at_sign_ends_the_user_and_the_password_is_dropped() {
        let info = user_info(b"a%40b:p@ss@host:993");
        assert_eq!(info.user.as_deref(), Some("a@b"));
        assert!(info.has_password);
        assert_eq!(info.host_start, 11);
        assert!(!format!("{info:?}").contains("p@ss"));
        let info = user_info(b"host:993");
        assert_eq!(
            (info.user, info.has_password, info.host_start),
            (None, false, 0)
        );
    }

    #[test]
    fn ports_are_one_to_65535_in_digits_only() {
        assert_eq!(parse_port(b"993"), Some(993));
        assert_eq!(parse_port(b"65535"), Some(65535));
        for bad in [&b""[..], b"0", b"65536", b"99a", b"+25", b"000001"] {
            assert_eq!(parse_port(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn malformed_escapes_stay_as_they_are() {
        assert_eq!(percent_decode(b"ann%40corp"), "ann@corp");
        assert_eq!(percent_decode(b"100%"), "100%");
        assert_eq!(percent_decode(b"%zz%4"), "%zz%4");
    }

    #[test]
    fn ipv6_hosts_go_in_brackets_and_odd_hosts_are_not_plain() {
        assert_eq!(host_in_url("::1"), "[::1]");
        assert_eq!(host_in_url("mail.example.com"), "mail.example.com");
        assert!(is_plain_host("mail.example.com"));
        assert!(!is_plain_host("mail.example.com #work"));
        assert!(!is_plain_host("a/b"));
        assert!(!is_plain_host(""));
    }

    fn pw(url: &str) -> Option<String> {
        password(url.as_bytes()).map(|p| String::from_utf8(p.to_vec()).unwrap())
    }

    #[test]
    fn url_passwords_are_found_and_decoded_like_go_does() {
        assert_eq!(
            pw("imaps://ann:s3cret@h.example").as_deref(),
            Some("s3cret")
        );
        assert_eq!(
            pw("imaps://ann:s%40cret@h.example/INBOX").as_deref(),
            Some("s@cret")
        );
        assert_eq!(
            pw("smtp+plain://ann%40x.example:p%40ss%3Aw@h.example:587/x?y=z").as_deref(),
            Some("p@ss:w")
        );
        // The user information ends at the last @, the password starts at the first colon.
        assert_eq!(pw("imap://a:b:c@d@h.example").as_deref(), Some("b:c@d"));
        // A malformed escape stays as written.
        assert_eq!(pw("imap://a:100%@h").as_deref(), Some("100%"));
        assert_eq!(pw("imaps://ann@h.example"), None);
        assert_eq!(pw("imaps://ann:@h.example"), None);
        // A colon and @ in the path are not user information.
        assert_eq!(pw("imaps://h.example/a:b@c"), None);
        // A mutt folder shortcut is no URL.
        assert_eq!(pw("+INBOX"), None);
    }
}
