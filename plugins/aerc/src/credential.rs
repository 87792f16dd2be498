//! The password inside an aerc URL (`imaps://user:PASSWORD@host`), read only when the agent asks
//! for the account's credential, the way Go's `net/url` reads it (user information up to the
//! last `@` of the authority, password after its first `:`, percent-decoded). Pure.

use zeroize::Zeroizing;

/// The percent-decoded password of a URL's user information, when it has a non-empty one.
/// The buffers that hold it are zeroed when dropped.
pub fn url_password(url: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
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

    fn pw(url: &str) -> Option<String> {
        url_password(url.as_bytes()).map(|p| String::from_utf8(p.to_vec()).unwrap())
    }

    #[test]
    fn passwords_are_found_and_decoded_like_go_does() {
        assert_eq!(
            pw("imaps://ann:s3cret@h.example").as_deref(),
            Some("s3cret")
        );
        assert_eq!(
            pw("smtp+plain://ann%40x.example:p%40ss%3Aw@h.example:587/x?y=z").as_deref(),
            Some("p@ss:w")
        );
        // The user information ends at the last @, the password starts at the first colon.
        assert_eq!(pw("imap://a:b:c@d@h.example").as_deref(), Some("b:c@d"));
        // A malformed escape stays as written.
        assert_eq!(pw("imap://a:100%@h").as_deref(), Some("100%"));
        assert_eq!(pw("imap://a:%4@h").as_deref(), Some("%4"));
    }

    #[test]
    fn urls_without_a_password_have_none() {
        assert_eq!(pw("imaps://ann@h.example"), None);
        assert_eq!(pw("imaps://ann:@h.example"), None);
        assert_eq!(pw("imaps://h.example"), None);
        assert_eq!(pw("maildir://~/Mail"), None);
        assert_eq!(pw("/usr/bin/msmtp"), None);
        // A colon after the authority (a path or query) is no password.
        assert_eq!(pw("imaps://h.example/a:b@c"), None);
        assert_eq!(pw("imaps://h.example?x=a:b@c"), None);
    }
}
