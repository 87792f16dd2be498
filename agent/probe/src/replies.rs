//! Pure parsers for what IMAP, POP3 and SMTP servers say: greetings, status lines and capability
//! lists. No I/O here, so that hostile input can be fuzzed (see `fuzz/`) and unit-tested.
//!
//! Every function takes one line without its CRLF (or a slice of such lines) and never panics,
//! whatever the bytes: servers are untrusted.

use mailmend_core::Capabilities;

/// The longest excerpt of a server line that goes into reports and errors.
pub const EXCERPT_CHARS: usize = 120;

/// A server line that does not fit the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// The line is not what the protocol requires at this point: the port speaks another
    /// protocol, or the server is broken.
    #[error("expected {expected}, got {excerpt:?}")]
    Unexpected {
        expected: &'static str,
        excerpt: String,
    },
}

impl ReplyError {
    fn unexpected(expected: &'static str, line: &str) -> ReplyError {
        ReplyError::Unexpected {
            expected,
            excerpt: excerpt(line),
        }
    }
}

/// A server line made safe to show: control characters replaced, cut to [`EXCERPT_CHARS`].
pub fn excerpt(line: &str) -> String {
    let mut out = String::new();
    for (i, c) in line.chars().enumerate() {
        if i == EXCERPT_CHARS {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { '?' } else { c });
    }
    out
}

/// What a server offers, before it is paired with the greeting into [`Capabilities`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapabilitySet {
    /// Capability words, upper-cased, in the server's order, without duplicates.
    pub words: Vec<String>,
    /// SASL mechanisms, upper-cased, without duplicates.
    pub auth_mechanisms: Vec<String>,
    pub starttls: bool,
    pub login_disabled: bool,
}

impl CapabilitySet {
    fn add_word(&mut self, word: &str) {
        push_unique(&mut self.words, word.to_ascii_uppercase());
    }

    fn add_mechanism(&mut self, mech: &str) {
        if !mech.is_empty() {
            push_unique(&mut self.auth_mechanisms, mech.to_ascii_uppercase());
        }
    }

    /// Pairs the set with the greeting line, which is shown as an excerpt.
    pub fn into_capabilities(self, greeting: &str) -> Capabilities {
        Capabilities {
            greeting: excerpt(greeting),
            words: self.words,
            auth_mechanisms: self.auth_mechanisms,
            starttls: self.starttls,
            login_disabled: self.login_disabled,
        }
    }
}

fn push_unique(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

// ---------------------------------------------------------------------------------------------
// IMAP (RFC 9051, RFC 3501)
// ---------------------------------------------------------------------------------------------

/// An IMAP server greeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImapGreeting {
    /// `* OK`: ready, not authenticated.
    Ok {
        /// Capabilities from a `[CAPABILITY ...]` response code, when the greeting carries one.
        capabilities: Option<CapabilitySet>,
    },
    /// `* PREAUTH`: the connection is already authenticated, so STARTTLS is no longer possible.
    Preauth { capabilities: Option<CapabilitySet> },
    /// `* BYE`: the server refuses the connection.
    Bye { text: String },
}

/// Parses the first line of an IMAP session.
pub fn parse_imap_greeting(line: &str) -> Result<ImapGreeting, ReplyError> {
    let rest = line
        .strip_prefix("* ")
        .ok_or_else(|| ReplyError::unexpected("an IMAP greeting (\"* OK\")", line))?;
    let (status, text) = split_word(rest);
    if status.eq_ignore_ascii_case("OK") {
        Ok(ImapGreeting::Ok {
            capabilities: capability_response_code(text),
        })
    } else if status.eq_ignore_ascii_case("PREAUTH") {
        Ok(ImapGreeting::Preauth {
            capabilities: capability_response_code(text),
        })
    } else if status.eq_ignore_ascii_case("BYE") {
        Ok(ImapGreeting::Bye {
            text: excerpt(text),
        })
    } else {
        Err(ReplyError::unexpected("an IMAP greeting (\"* OK\")", line))
    }
}

/// Splits off the first space-separated word.
fn split_word(s: &str) -> (&str, &str) {
    match s.split_once(' ') {
        Some((w, rest)) => (w, rest.trim_start_matches(' ')),
        None => (s, ""),
    }
}

/// Reads a `[CAPABILITY ...]` response code at the start of a status text.
fn capability_response_code(text: &str) -> Option<CapabilitySet> {
    let inner = text.strip_prefix('[')?;
    let end = inner.find(']')?;
    let code = &inner[..end];
    let atoms = strip_prefix_ci(code, "CAPABILITY ")?;
    Some(imap_capabilities(atoms))
}

/// Interprets the atoms of an IMAP capability list (`IMAP4rev1 STARTTLS AUTH=PLAIN ...`).
pub fn imap_capabilities(atoms: &str) -> CapabilitySet {
    let mut set = CapabilitySet::default();
    for atom in atoms.split_ascii_whitespace() {
        set.add_word(atom);
        if let Some(mech) = strip_prefix_ci(atom, "AUTH=") {
            set.add_mechanism(mech);
        } else if atom.eq_ignore_ascii_case("STARTTLS") {
            set.starttls = true;
        } else if atom.eq_ignore_ascii_case("LOGINDISABLED") {
            set.login_disabled = true;
        }
    }
    set
}

/// The status of a tagged IMAP response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImapStatus {
    Ok,
    No,
    Bad,
}

/// One line of an IMAP server response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImapLine<'a> {
    /// `* CAPABILITY ...`: the capability list.
    Capability(CapabilitySet),
    /// Any other untagged response (`* OK`, `* BYE`, `* 3 EXISTS`, ...).
    Untagged(&'a str),
    /// A continuation request (`+ ...`).
    Continuation(&'a str),
    /// The tagged completion of a command.
    Tagged {
        tag: &'a str,
        status: ImapStatus,
        text: &'a str,
    },
}

/// Parses one line of an IMAP response.
pub fn parse_imap_line(line: &str) -> Result<ImapLine<'_>, ReplyError> {
    if let Some(rest) = line.strip_prefix("* ") {
        let (word, text) = split_word(rest);
        if word.eq_ignore_ascii_case("CAPABILITY") {
            return Ok(ImapLine::Capability(imap_capabilities(text)));
        }
        return Ok(ImapLine::Untagged(rest));
    }
    if line == "+" {
        return Ok(ImapLine::Continuation(""));
    }
    if let Some(rest) = line.strip_prefix("+ ") {
        return Ok(ImapLine::Continuation(rest));
    }
    let (tag, rest) = split_word(line);
    let (status, text) = split_word(rest);
    let status = if status.eq_ignore_ascii_case("OK") {
        ImapStatus::Ok
    } else if status.eq_ignore_ascii_case("NO") {
        ImapStatus::No
    } else if status.eq_ignore_ascii_case("BAD") {
        ImapStatus::Bad
    } else {
        return Err(ReplyError::unexpected("an IMAP response line", line));
    };
    if tag.is_empty() {
        return Err(ReplyError::unexpected("an IMAP response line", line));
    }
    Ok(ImapLine::Tagged { tag, status, text })
}

// ---------------------------------------------------------------------------------------------
// POP3 (RFC 1939, RFC 2449, RFC 2595)
// ---------------------------------------------------------------------------------------------

/// A POP3 status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pop3Status<'a> {
    Ok(&'a str),
    Err(&'a str),
}

/// Parses a POP3 status line (`+OK ...` or `-ERR ...`).
pub fn parse_pop3_status(line: &str) -> Result<Pop3Status<'_>, ReplyError> {
    if let Some(rest) = strip_prefix_ci(line, "+OK") {
        if rest.is_empty() || rest.starts_with(' ') {
            return Ok(Pop3Status::Ok(rest.trim_start_matches(' ')));
        }
    }
    if let Some(rest) = strip_prefix_ci(line, "-ERR") {
        if rest.is_empty() || rest.starts_with(' ') {
            return Ok(Pop3Status::Err(rest.trim_start_matches(' ')));
        }
    }
    Err(ReplyError::unexpected(
        "a POP3 status (\"+OK\" or \"-ERR\")",
        line,
    ))
}

/// What one line of a POP3 multi-line response is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pop3DataLine<'a> {
    /// A line of the response, dot-unstuffed.
    Data(&'a str),
    /// The terminating `.`.
    End,
}

/// Classifies a line of a POP3 multi-line response (RFC 1939 section 3 byte-stuffing).
pub fn parse_pop3_data_line(line: &str) -> Pop3DataLine<'_> {
    if line == "." {
        Pop3DataLine::End
    } else if let Some(rest) = line.strip_prefix('.') {
        Pop3DataLine::Data(rest)
    } else {
        Pop3DataLine::Data(line)
    }
}

/// Interprets the lines of a POP3 `CAPA` response (between `+OK` and `.`).
pub fn pop3_capabilities<S: AsRef<str>>(lines: &[S]) -> CapabilitySet {
    let mut set = CapabilitySet::default();
    for line in lines {
        let mut parts = line.as_ref().split_ascii_whitespace();
        let Some(word) = parts.next() else { continue };
        set.add_word(word);
        if word.eq_ignore_ascii_case("STLS") {
            set.starttls = true;
        } else if word.eq_ignore_ascii_case("SASL") {
            for mech in parts {
                set.add_mechanism(mech);
            }
        }
    }
    set
}

// ---------------------------------------------------------------------------------------------
// SMTP (RFC 5321, RFC 3207, RFC 4954)
// ---------------------------------------------------------------------------------------------

/// One line of an SMTP reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmtpLine<'a> {
    /// The three-digit reply code.
    pub code: u16,
    /// Whether this is the reply's last line (`250 ` rather than `250-`).
    pub last: bool,
    pub text: &'a str,
}

/// Parses one line of an SMTP reply (`250-text`, `250 text` or a bare `250`).
pub fn parse_smtp_line(line: &str) -> Result<SmtpLine<'_>, ReplyError> {
    let bytes = line.as_bytes();
    let digits_ok = bytes.len() >= 3
        && (b'2'..=b'5').contains(&bytes[0])
        && bytes[1].is_ascii_digit()
        && bytes[2].is_ascii_digit();
    if !digits_ok {
        return Err(ReplyError::unexpected("an SMTP reply (\"220 ...\")", line));
    }
    let code = u16::from(bytes[0] - b'0') * 100
        + u16::from(bytes[1] - b'0') * 10
        + u16::from(bytes[2] - b'0');
    match bytes.get(3) {
        None => Ok(SmtpLine {
            code,
            last: true,
            text: "",
        }),
        Some(b' ') => Ok(SmtpLine {
            code,
            last: true,
            text: &line[4..],
        }),
        Some(b'-') => Ok(SmtpLine {
            code,
            last: false,
            text: &line[4..],
        }),
        Some(_) => Err(ReplyError::unexpected("an SMTP reply (\"220 ...\")", line)),
    }
}

/// Interprets the text of an EHLO reply's lines; the first line is the server's name and
/// greeting, each following line one extension keyword with its parameters.
pub fn smtp_ehlo_capabilities<S: AsRef<str>>(texts: &[S]) -> CapabilitySet {
    let mut set = CapabilitySet::default();
    for text in texts.iter().skip(1) {
        let mut parts = text.as_ref().split_ascii_whitespace();
        let Some(keyword) = parts.next() else {
            continue;
        };
        // Old servers (and Outlook-era clients' expectations) use `AUTH=LOGIN PLAIN`.
        if let Some(first) = strip_prefix_ci(keyword, "AUTH=") {
            set.add_word("AUTH");
            set.add_mechanism(first);
            for mech in parts {
                set.add_mechanism(mech);
            }
            continue;
        }
        set.add_word(keyword);
        if keyword.eq_ignore_ascii_case("AUTH") {
            for mech in parts {
                set.add_mechanism(mech);
            }
        } else if keyword.eq_ignore_ascii_case("STARTTLS") {
            set.starttls = true;
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imap_greeting_with_capability_code_is_read() {
        let g = parse_imap_greeting(
            "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN LOGINDISABLED] Dovecot ready.",
        )
        .unwrap();
        let ImapGreeting::Ok {
            capabilities: Some(caps),
        } = g
        else {
            panic!("unexpected {g:?}");
        };
        assert!(caps.starttls);
        assert!(caps.login_disabled);
        assert_eq!(caps.auth_mechanisms, vec!["PLAIN"]);
        assert_eq!(caps.words[0], "IMAP4REV1");
        assert!(caps.words.contains(&"AUTH=PLAIN".to_string()));
    }

    #[test]
    fn imap_greeting_without_code_has_no_capabilities() {
        assert_eq!(
            parse_imap_greeting("* OK IMAP4rev1 Service Ready").unwrap(),
            ImapGreeting::Ok { capabilities: None }
        );
        assert_eq!(
            parse_imap_greeting("* ok").unwrap(),
            ImapGreeting::Ok { capabilities: None }
        );
    }

    #[test]
    fn imap_preauth_and_bye_are_distinguished() {
        assert!(matches!(
            parse_imap_greeting("* PREAUTH [CAPABILITY IMAP4rev1] logged in as ann").unwrap(),
            ImapGreeting::Preauth {
                capabilities: Some(_)
            }
        ));
        assert_eq!(
            parse_imap_greeting("* BYE Too many connections").unwrap(),
            ImapGreeting::Bye {
                text: "Too many connections".into()
            }
        );
    }

    #[test]
    fn smtp_banner_is_not_an_imap_greeting() {
        let err = parse_imap_greeting("220 mail.example.com ESMTP").unwrap_err();
        assert!(err.to_string().contains("220 mail.example.com"), "{err}");
    }

    #[test]
    fn imap_auth_mechanisms_and_logindisabled_are_parsed() {
        let line =
            "* CAPABILITY IMAP4rev1 AUTH=PLAIN auth=gssapi AUTH=XOAUTH2 AUTH=PLAIN LOGINDISABLED";
        let ImapLine::Capability(caps) = parse_imap_line(line).unwrap() else {
            panic!("not a capability line");
        };
        assert_eq!(caps.auth_mechanisms, vec!["PLAIN", "GSSAPI", "XOAUTH2"]);
        assert!(caps.login_disabled);
        assert!(!caps.starttls);
    }

    #[test]
    fn imap_tagged_lines_carry_status() {
        assert_eq!(
            parse_imap_line("a1 OK CAPABILITY completed").unwrap(),
            ImapLine::Tagged {
                tag: "a1",
                status: ImapStatus::Ok,
                text: "CAPABILITY completed"
            }
        );
        assert!(matches!(
            parse_imap_line("a2 NO [PRIVACYREQUIRED] no").unwrap(),
            ImapLine::Tagged {
                status: ImapStatus::No,
                ..
            }
        ));
        assert!(matches!(
            parse_imap_line("a2 bad").unwrap(),
            ImapLine::Tagged {
                status: ImapStatus::Bad,
                ..
            }
        ));
        assert!(parse_imap_line("a2 WHAT").is_err());
        assert!(matches!(
            parse_imap_line("+ go ahead").unwrap(),
            ImapLine::Continuation("go ahead")
        ));
        assert!(matches!(
            parse_imap_line("* 3 EXISTS").unwrap(),
            ImapLine::Untagged("3 EXISTS")
        ));
    }

    #[test]
    fn pop3_status_requires_exact_keywords() {
        assert_eq!(
            parse_pop3_status("+OK Dovecot ready.").unwrap(),
            Pop3Status::Ok("Dovecot ready.")
        );
        assert_eq!(parse_pop3_status("+OK").unwrap(), Pop3Status::Ok(""));
        assert_eq!(
            parse_pop3_status("-ERR unknown command").unwrap(),
            Pop3Status::Err("unknown command")
        );
        assert!(parse_pop3_status("+OKAY").is_err());
        assert!(parse_pop3_status("* OK imap").is_err());
    }

    #[test]
    fn pop3_capa_lists_stls_and_sasl() {
        let lines = [
            "CAPA",
            "TOP",
            "UIDL",
            "RESP-CODES",
            "USER",
            "SASL PLAIN LOGIN",
            "STLS",
            "IMPLEMENTATION Dovecot",
        ];
        let caps = pop3_capabilities(&lines);
        assert!(caps.starttls);
        assert_eq!(caps.auth_mechanisms, vec!["PLAIN", "LOGIN"]);
        assert!(caps.words.contains(&"USER".to_string()));
        assert!(caps.words.contains(&"IMPLEMENTATION".to_string()));
        assert!(!caps.login_disabled);
    }

    #[test]
    fn pop3_data_lines_are_unstuffed() {
        assert_eq!(parse_pop3_data_line("."), Pop3DataLine::End);
        assert_eq!(parse_pop3_data_line("..x"), Pop3DataLine::Data(".x"));
        assert_eq!(parse_pop3_data_line("TOP"), Pop3DataLine::Data("TOP"));
    }

    #[test]
    fn smtp_lines_distinguish_continuation() {
        assert_eq!(
            parse_smtp_line("250-SIZE 10240000").unwrap(),
            SmtpLine {
                code: 250,
                last: false,
                text: "SIZE 10240000"
            }
        );
        assert_eq!(
            parse_smtp_line("250").unwrap(),
            SmtpLine {
                code: 250,
                last: true,
                text: ""
            }
        );
        assert!(parse_smtp_line("* OK imap").is_err());
        assert!(parse_smtp_line("25").is_err());
        assert!(parse_smtp_line("250x").is_err());
        assert!(parse_smtp_line("650 nope").is_err());
    }

    #[test]
    fn smtp_multiline_ehlo_gives_keywords_and_both_auth_forms() {
        let texts = [
            "mail.example.com Hello client",
            "PIPELINING",
            "SIZE 10240000",
            "STARTTLS",
            "AUTH PLAIN LOGIN",
            "AUTH=LOGIN CRAM-MD5",
            "8BITMIME",
        ];
        let caps = smtp_ehlo_capabilities(&texts);
        assert!(caps.starttls);
        assert_eq!(caps.auth_mechanisms, vec!["PLAIN", "LOGIN", "CRAM-MD5"]);
        assert_eq!(
            caps.words,
            vec!["PIPELINING", "SIZE", "STARTTLS", "AUTH", "8BITMIME"]
        );
    }

    #[test]
    fn smtp_first_ehlo_line_is_not_a_keyword() {
        // A server named "starttls.example" must not make STARTTLS look advertised.
        let caps = smtp_ehlo_capabilities(&["STARTTLS hello"]);
        assert!(!caps.starttls);
        assert!(caps.words.is_empty());
    }

    #[test]
    fn excerpt_hides_control_characters_and_truncates() {
        assert_eq!(excerpt("a\u{1b}[31mb"), "a?[31mb");
        let long = "x".repeat(500);
        let e = excerpt(&long);
        assert_eq!(e.chars().count(), EXCERPT_CHARS + 1);
        assert!(e.ends_with('…'));
    }

    /// A deterministic xorshift generator, so that the no-panic test is reproducible.
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
    }

    /// Feeds every parser the same input, as the fuzz target does.
    fn feed_all(data: &[u8]) {
        let text = String::from_utf8_lossy(data);
        let lines: Vec<&str> = text.split('\n').map(|l| l.trim_end_matches('\r')).collect();
        for line in &lines {
            let _ = parse_imap_greeting(line);
            let _ = parse_imap_line(line);
            let _ = imap_capabilities(line);
            let _ = parse_pop3_status(line);
            let _ = parse_pop3_data_line(line);
            let _ = parse_smtp_line(line);
            let _ = excerpt(line);
        }
        let _ = pop3_capabilities(&lines);
        let _ = smtp_ehlo_capabilities(&lines).into_capabilities(lines[0]);
    }

    #[test]
    fn random_bytes_never_panic_the_reply_parsers() {
        // Bytes are drawn from an alphabet rich in protocol punctuation, so that the parsers'
        // branches are reached, plus arbitrary bytes (invalid UTF-8 included).
        const ALPHABET: &[u8] = b"* +-.[]=0123459 OKNOBADAUTHCAPABILITYSTARTTLSLOGINDISABLEDPREAUTHBYEERRSASLSTLS\r\n\xc3\xa9\xff\x00";
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let len = (rng.next() % 200) as usize;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    let r = rng.next();
                    if r & 3 == 0 {
                        (r >> 8) as u8
                    } else {
                        ALPHABET[((r >> 8) % ALPHABET.len() as u64) as usize]
                    }
                })
                .collect();
            feed_all(&data);
        }
        // Multi-byte characters at the positions the parsers slice at.
        for s in [
            "é",
            "2é",
            "25é",
            "250é",
            "+O",
            "+OKé",
            "-ERé",
            "* é",
            "a é",
            "[é",
            "* OK [CAPABILITYé",
        ] {
            feed_all(s.as_bytes());
        }
    }
}
