//! The password inside a mutt URL (`imaps://user:PASSWORD@host/`), read only when the agent asks
//! for an account's credential, the way mutt's `url_parse` reads it (user information up to the
//! last `@` of the authority, password after its first `:`, percent-decoded). Pure.

use zeroize::Zeroizing;

/// The percent-decoded password of a URL's user information, when it has a non-empty one.
pub fn url_password(url: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let colon = url.iter().position(|&c| c == b':')?;
    let rest = url.get(colon..)?.strip_prefix(b"://")?;
    let end = rest.iter().position(|&c| c == b'/').unwrap_or(rest.len());
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
    fn url_passwords_are_found_and_decoded() {
        assert_eq!(
            pw("imaps://ann:s%40cret@h.example/INBOX").as_deref(),
            Some("s@cret")
        );
        assert_eq!(pw("smtp://a:b:c@d@h.example:587").as_deref(), Some("b:c@d"));
        assert_eq!(pw("imaps://ann@h.example/"), None);
        assert_eq!(pw("imaps://h.example/a:b@c"), None);
        assert_eq!(pw("+INBOX"), None);
    }
}
