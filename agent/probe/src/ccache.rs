//! A parser of MIT Kerberos FILE credential caches (format versions 3 and 4, big-endian) that
//! keeps only names, times and flags: key and ticket bytes are skipped over, never copied.
//!
//! Layout (MIT krb5 "Credential cache file format"): a version (`0x0503` or `0x0504`); in
//! version 4 a header of tagged fields; the default principal; then credentials to the end of
//! the file, each: client and server principals, a keyblock, four 32-bit times (auth, start,
//! end, renew-till), an is-session-key byte, 32-bit ticket flags, addresses, authorization
//! data, the ticket and the second ticket. Entries whose server realm is `X-CACHECONF:` are
//! cache configuration, not tickets.

use std::fmt;

/// The `renewable` ticket flag (MIT's `TKT_FLG_RENEWABLE`).
pub const TKT_FLG_RENEWABLE: u32 = 0x0080_0000;

/// The largest cache read; real caches are a few kilobytes.
pub const MAX_CCACHE_BYTES: usize = 1 << 20;

/// The realm MIT uses for configuration entries stored in a cache.
const CONFIG_REALM: &str = "X-CACHECONF:";

/// The most components a principal may have here (real ones have one to three).
const MAX_COMPONENTS: u32 = 64;

/// A Kerberos principal name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name_type: u32,
    pub realm: String,
    pub components: Vec<String>,
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.components.join("/"), self.realm)
    }
}

/// One credential's names, times (seconds since the epoch, UTC) and flags; nothing secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub client: Principal,
    pub server: Principal,
    pub auth_time: u32,
    /// Zero when the ticket is valid from `auth_time`.
    pub start_time: u32,
    pub end_time: u32,
    /// Zero when the ticket is not renewable.
    pub renew_till: u32,
    pub flags: u32,
}

impl Credential {
    pub fn renewable(&self) -> bool {
        self.flags & TKT_FLG_RENEWABLE != 0
    }

    /// Whether this entry is cache configuration rather than a ticket.
    pub fn is_config(&self) -> bool {
        self.server.realm == CONFIG_REALM
    }

    /// Whether this is a ticket-granting ticket for `realm` (`krbtgt/REALM@REALM`).
    pub fn is_tgt_for(&self, realm: &str) -> bool {
        self.server.realm == realm
            && self.server.components.len() == 2
            && self.server.components[0] == "krbtgt"
            && self.server.components[1] == realm
    }
}

/// A parsed cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ccache {
    pub version: u16,
    pub default_principal: Principal,
    /// The KDC time offset from a version 4 header (seconds, microseconds), when present.
    pub time_offset: Option<(i32, i32)>,
    /// Tickets, in file order; configuration entries are left out.
    pub credentials: Vec<Credential>,
}

/// Why a cache could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CcacheError {
    /// The file ends inside a field: it was cut short, or is being written right now.
    #[error("credential cache truncated at byte {offset} (reading {what})")]
    Truncated { offset: usize, what: &'static str },
    /// Not a FILE cache of a version this parser reads: versions 1 and 2 (native byte order,
    /// from very old MIT releases) or not a credential cache at all.
    #[error("unsupported credential cache version 0x{0:04x}")]
    UnsupportedVersion(u16),
    /// Larger than any real cache; refused rather than read.
    #[error("credential cache is {len} bytes, more than the {max} accepted")]
    TooLarge { len: usize, max: usize },
    /// A count or length that cannot be right: the file is corrupt.
    #[error("credential cache corrupt at byte {offset}: {detail}")]
    Corrupt { offset: usize, detail: String },
}

/// Parses a FILE credential cache.
pub fn parse(bytes: &[u8]) -> Result<Ccache, CcacheError> {
    if bytes.len() > MAX_CCACHE_BYTES {
        return Err(CcacheError::TooLarge {
            len: bytes.len(),
            max: MAX_CCACHE_BYTES,
        });
    }
    let mut r = Reader { bytes, pos: 0 };
    let version = r.u16("version")?;
    if version != 0x0503 && version != 0x0504 {
        return Err(CcacheError::UnsupportedVersion(version));
    }
    let mut time_offset = None;
    if version == 0x0504 {
        let header_len = usize::from(r.u16("header length")?);
        let header = r.take(header_len, "header")?;
        let mut h = Reader {
            bytes: header,
            pos: 0,
        };
        while h.pos < header.len() {
            let tag = h.u16("header tag")?;
            let len = usize::from(h.u16("header tag length")?);
            let data = h.take(len, "header tag data")?;
            if tag == 1 && len == 8 {
                let mut d = Reader {
                    bytes: data,
                    pos: 0,
                };
                time_offset = Some((d.u32("time offset")? as i32, d.u32("usec offset")? as i32));
            }
        }
    }
    let default_principal = r.principal()?;
    let mut credentials = Vec::new();
    while r.pos < bytes.len() {
        let credential = r.credential(version)?;
        if !credential.is_config() {
            credentials.push(credential);
        }
    }
    Ok(Ccache {
        version,
        default_principal,
        time_offset,
        credentials,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], CcacheError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(CcacheError::Truncated {
                offset: self.pos,
                what,
            })?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, CcacheError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, CcacheError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, CcacheError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A 32-bit length and that many bytes; `take` refuses lengths beyond the file's end.
    fn counted(&mut self, what: &'static str) -> Result<&'a [u8], CcacheError> {
        let len = self.u32(what)?;
        let len = usize::try_from(len).map_err(|_| CcacheError::Truncated {
            offset: self.pos,
            what,
        })?;
        self.take(len, what)
    }

    /// Skips counted data without looking at it: keys and tickets pass through here.
    fn skip_counted(&mut self, what: &'static str) -> Result<(), CcacheError> {
        self.counted(what).map(|_| ())
    }

    fn string(&mut self, what: &'static str) -> Result<String, CcacheError> {
        Ok(String::from_utf8_lossy(self.counted(what)?).into_owned())
    }

    fn principal(&mut self) -> Result<Principal, CcacheError> {
        let name_type = self.u32("principal name type")?;
        let count = self.u32("principal component count")?;
        if count > MAX_COMPONENTS {
            return Err(CcacheError::Corrupt {
                offset: self.pos,
                detail: format!("a principal with {count} components"),
            });
        }
        let realm = self.string("principal realm")?;
        let mut components = Vec::with_capacity(count as usize);
        for _ in 0..count {
            components.push(self.string("principal component")?);
        }
        Ok(Principal {
            name_type,
            realm,
            components,
        })
    }

    /// Skips a counted list of (16-bit type, counted data) entries: addresses, authdata.
    fn skip_typed_list(&mut self, what: &'static str) -> Result<(), CcacheError> {
        let count = self.u32(what)?;
        // Each entry takes at least six bytes: a count the rest of the file cannot hold is a
        // truncation, found before looping four billion times.
        let left = self.bytes.len() - self.pos;
        if u64::from(count) * 6 > left as u64 {
            return Err(CcacheError::Truncated {
                offset: self.pos,
                what,
            });
        }
        for _ in 0..count {
            self.u16(what)?;
            self.skip_counted(what)?;
        }
        Ok(())
    }

    fn credential(&mut self, version: u16) -> Result<Credential, CcacheError> {
        let client = self.principal()?;
        let server = self.principal()?;
        self.u16("key type")?;
        // Version 3 stores the key type twice.
        if version == 0x0503 {
            self.u16("key type")?;
        }
        self.skip_counted("key")?;
        let auth_time = self.u32("auth time")?;
        let start_time = self.u32("start time")?;
        let end_time = self.u32("end time")?;
        let renew_till = self.u32("renew-till time")?;
        self.u8("session key flag")?;
        let flags = self.u32("ticket flags")?;
        self.skip_typed_list("addresses")?;
        self.skip_typed_list("authorization data")?;
        self.skip_counted("ticket")?;
        self.skip_counted("second ticket")?;
        Ok(Credential {
            client,
            server,
            auth_time,
            start_time,
            end_time,
            renew_till,
            flags,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds caches byte by byte, as MIT's library writes them.
    pub(crate) struct Builder {
        pub bytes: Vec<u8>,
        version: u16,
    }

    impl Builder {
        pub fn new(version: u16, default: (&str, &[&str])) -> Builder {
            let mut b = Builder {
                bytes: version.to_be_bytes().to_vec(),
                version,
            };
            if version == 0x0504 {
                // One DeltaTime tag: offset 5 s, 7 µs.
                b.u16(12);
                b.u16(1);
                b.u16(8);
                b.u32(5);
                b.u32(7);
            }
            b.principal(default.0, default.1);
            b
        }

        fn u16(&mut self, v: u16) {
            self.bytes.extend_from_slice(&v.to_be_bytes());
        }

        fn u32(&mut self, v: u32) {
            self.bytes.extend_from_slice(&v.to_be_bytes());
        }

        fn counted(&mut self, data: &[u8]) {
            self.u32(data.len() as u32);
            self.bytes.extend_from_slice(data);
        }

        fn principal(&mut self, realm: &str, components: &[&str]) {
            self.u32(1);
            self.u32(components.len() as u32);
            self.counted(realm.as_bytes());
            for c in components {
                self.counted(c.as_bytes());
            }
        }

        /// A credential with a recognisable key and ticket, to check they are never copied.
        #[allow(clippy::too_many_arguments)]
        pub fn credential(
            mut self,
            client: (&str, &[&str]),
            server: (&str, &[&str]),
            times: [u32; 4],
            flags: u32,
        ) -> Builder {
            self.principal(client.0, client.1);
            self.principal(server.0, server.1);
            self.u16(18);
            if self.version == 0x0503 {
                self.u16(18);
            }
            self.counted(b"SECRET-KEY-BYTES-0123456789abcdef");
            for t in times {
                self.u32(t);
            }
            self.bytes.push(0);
            self.u32(flags);
            self.u32(1);
            self.u16(2);
            self.counted(&[127, 0, 0, 1]);
            self.u32(0);
            self.counted(b"SECRET-TICKET-BYTES");
            self.counted(b"");
            self
        }
    }

    const REALM: &str = "EXAMPLE.TEST";

    fn tgt_cache(version: u16) -> Vec<u8> {
        Builder::new(version, (REALM, &["ann"]))
            .credential(
                (REALM, &["ann"]),
                ("X-CACHECONF:", &["krb5_ccache_conf_data", "pa_type"]),
                [0, 0, 0, 0],
                0,
            )
            .credential(
                (REALM, &["ann"]),
                (REALM, &["krbtgt", REALM]),
                [1_700_000_000, 1_700_000_001, 1_700_036_000, 1_700_600_000],
                TKT_FLG_RENEWABLE | 0x0040_0000,
            )
            .credential(
                (REALM, &["ann"]),
                (REALM, &["imap", "mail.example.test"]),
                [1_700_000_000, 1_700_000_100, 1_700_036_000, 0],
                0,
            )
            .bytes
    }

    #[test]
    fn version_4_cache_yields_principal_times_and_flags() {
        let cache = parse(&tgt_cache(0x0504)).unwrap();
        assert_eq!(cache.version, 0x0504);
        assert_eq!(cache.default_principal.to_string(), "ann@EXAMPLE.TEST");
        assert_eq!(cache.time_offset, Some((5, 7)));
        assert_eq!(cache.credentials.len(), 2, "the config entry is left out");
        let tgt = &cache.credentials[0];
        assert!(tgt.is_tgt_for(REALM));
        assert!(tgt.renewable());
        assert_eq!(tgt.start_time, 1_700_000_001);
        assert_eq!(tgt.end_time, 1_700_036_000);
        assert_eq!(tgt.renew_till, 1_700_600_000);
        let service = &cache.credentials[1];
        assert_eq!(
            service.server.to_string(),
            "imap/mail.example.test@EXAMPLE.TEST"
        );
        assert!(!service.renewable());
        assert!(!service.is_tgt_for(REALM));
    }

    #[test]
    fn version_3_cache_with_its_doubled_key_type_is_read() {
        let cache = parse(&tgt_cache(0x0503)).unwrap();
        assert_eq!(cache.time_offset, None);
        assert_eq!(cache.credentials.len(), 2);
        assert!(cache.credentials[0].renewable());
    }

    #[test]
    fn parsed_cache_holds_no_key_or_ticket_bytes() {
        let cache = parse(&tgt_cache(0x0504)).unwrap();
        let debug = format!("{cache:?}");
        assert!(!debug.contains("SECRET"), "{debug}");
    }

    #[test]
    fn cache_without_credentials_is_empty_not_an_error() {
        let bytes = Builder::new(0x0504, (REALM, &["ann"])).bytes;
        assert!(parse(&bytes).unwrap().credentials.is_empty());
    }

    #[test]
    fn old_and_foreign_versions_are_refused_by_number() {
        assert_eq!(
            parse(&[0x05, 0x01, 0, 0]),
            Err(CcacheError::UnsupportedVersion(0x0501))
        );
        assert_eq!(
            parse(b"<html>"),
            Err(CcacheError::UnsupportedVersion(0x3c68))
        );
    }

    #[test]
    fn every_truncation_is_an_error_naming_its_offset() {
        let bytes = tgt_cache(0x0504);
        for len in 0..bytes.len() {
            match parse(&bytes[..len]) {
                Err(CcacheError::Truncated { offset, .. }) => assert!(offset <= len),
                Err(e) => panic!("cut at {len}: unexpected {e}"),
                // A cut exactly between two credentials is a shorter valid cache.
                Ok(cache) => assert!(cache.credentials.len() < 2, "cut at {len}"),
            }
        }
    }

    #[test]
    fn absurd_counts_are_corrupt_not_allocations() {
        let mut b = Builder::new(0x0504, (REALM, &["ann"])).bytes;
        // A client principal claiming four billion components.
        b.extend_from_slice(&1u32.to_be_bytes());
        b.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(parse(&b), Err(CcacheError::Corrupt { .. })));
    }

    #[test]
    fn oversized_input_is_refused() {
        let bytes = vec![0u8; MAX_CCACHE_BYTES + 1];
        assert!(matches!(parse(&bytes), Err(CcacheError::TooLarge { .. })));
    }

    /// A small xorshift generator, so the fuzz-style test needs no crate and is reproducible.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn random_and_mutated_input_never_panics() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let valid = tgt_cache(0x0504);
        for round in 0..20_000 {
            let bytes: Vec<u8> = if round % 2 == 0 {
                // Mutations of a valid cache reach deep into the format.
                let mut b = valid.clone();
                for _ in 0..(1 + rng.next() % 4) {
                    let i = (rng.next() as usize) % b.len();
                    b[i] = rng.next() as u8;
                }
                let cut = (rng.next() as usize) % (b.len() + 1);
                b.truncate(cut.max(b.len() / 2));
                b
            } else {
                let len = (rng.next() % 96) as usize;
                let mut b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                if b.len() >= 2 {
                    b[0] = 5;
                    b[1] = 4;
                }
                b
            };
            let _ = parse(&bytes);
        }
    }
}
