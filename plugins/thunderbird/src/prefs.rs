//! A lossless parser and editor for Thunderbird's `prefs.js` and `user.js`.
//!
//! The grammar is the one of Mozilla's libpref parser for user preference files:
//!
//! ```text
//! <file>   = <pref>*
//! <pref>   = ("user_pref" | "pref" | "sticky_pref" | "lock_pref") "(" <string> "," <value> ")" ";"
//! <value>  = <string> | "true" | "false" | ("+" | "-")? <digits>    (a signed 32-bit integer)
//! <string> = '"' … '"' | "'" … "'"   with escapes \" \' \\ \n \r \xNN \uNNNN (never NUL)
//! ```
//!
//! Comments are `# …`, `// …` and `/* … */`; whitespace is space, tab, `\v`, `\f` and the line
//! endings `\n`, `\r\n` and a lone `\r`; a UTF-8 byte order mark may lead.
//!
//! The parser keeps the file's bytes and the byte span of every value token, so that
//! [`PrefsFile::set`] rewrites exactly those bytes and every other byte (comments, order, blank
//! lines, the escapes of other values, line endings, the BOM) stays as it was. Thunderbird skips a
//! broken statement and goes on; this parser instead rejects the whole file with a
//! [`SyntaxError`], because mailmend must never rewrite a file it does not fully understand.
//!
//! Prefs whose name contains `password` (in any case) are syntax-checked but their values are
//! never kept: they read as [`PrefValue::Withheld`] and cannot be set.

use std::fmt;
use std::ops::Range;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Whether a pref name marks its value as a secret that mailmend must never read, keep or log.
pub fn is_secret_name(name: &str) -> bool {
    name.to_ascii_lowercase().contains("password")
}

/// The value of one pref.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PrefValue {
    /// A string. Escapes that decode to bytes which are not UTF-8 (a Latin-1 `\xE9`) read as
    /// U+FFFD here; the file's bytes are kept as they are unless this very pref is set.
    String(String),
    Int(i32),
    Bool(bool),
    /// The value of a pref whose name marks it as a secret: checked for syntax, never kept.
    Withheld,
}

impl PrefValue {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            PrefValue::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i32> {
        match self {
            PrefValue::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            PrefValue::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

/// The statement a pref came from. Only `user_pref` sets the user value; the others set the
/// default, which any `user_pref` of the same name overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrefKind {
    /// `user_pref(…)`.
    User,
    /// `pref(…)`.
    Default,
    /// `sticky_pref(…)`.
    Sticky,
    /// `lock_pref(…)`.
    Locked,
}

/// One statement of a prefs file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pref {
    pub kind: PrefKind,
    pub name: String,
    pub value: PrefValue,
    /// The bytes of the value token (a sign and its digits, a keyword, or a quoted string).
    pub value_span: Range<usize>,
    /// The bytes of the whole statement, from its keyword to its `;`.
    pub span: Range<usize>,
    /// The 1-based line the statement starts on.
    pub line: usize,
}

/// A syntax error, at a 1-based line and column (columns count characters; a leading BOM is not
/// counted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Why [`PrefsFile::set`] refused a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SetError {
    /// The caller asked to write a pref whose name marks it as a secret (a password).
    #[error("refusing to write {name}: its name marks it as a secret")]
    Secret { name: String },
    /// The value cannot be written in a prefs file, e.g. a string holding a NUL character.
    #[error("cannot write {name}: {reason}")]
    InvalidValue { name: String, reason: &'static str },
    /// The edited file did not read back as intended; this is a bug in the writer, and the file
    /// was left unchanged.
    #[error("writing {name} did not read back: {detail}")]
    WriteCheck { name: String, detail: String },
}

/// The line ending a file mostly uses; appended lines use it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnding {
    Lf,
    CrLf,
    Cr,
}

impl LineEnding {
    pub fn as_str(self) -> &'static str {
        match self {
            LineEnding::Lf => "\n",
            LineEnding::CrLf => "\r\n",
            LineEnding::Cr => "\r",
        }
    }
}

/// A parsed prefs file: its exact bytes and the statements found in them.
#[derive(Clone, PartialEq, Eq)]
pub struct PrefsFile {
    bytes: Vec<u8>,
    prefs: Vec<Pref>,
}

// The bytes may hold a password pref's value, so the debug form shows only their shape.
impl fmt::Debug for PrefsFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrefsFile")
            .field("len", &self.bytes.len())
            .field("prefs", &self.prefs.len())
            .finish()
    }
}

impl PrefsFile {
    /// Parses a whole file. Any syntax error rejects the file.
    pub fn parse(bytes: &[u8]) -> Result<PrefsFile, SyntaxError> {
        let prefs = Parser::new(bytes).parse()?;
        Ok(PrefsFile {
            bytes: bytes.to_vec(),
            prefs,
        })
    }

    /// The file's bytes, including every edit made so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Every statement, in file order.
    pub fn prefs(&self) -> &[Pref] {
        &self.prefs
    }

    pub fn has_bom(&self) -> bool {
        self.bytes.starts_with(BOM)
    }

    /// The statement that decides `name`'s value within this file: the last `user_pref`, or
    /// failing that the last default-setting statement.
    pub fn find(&self, name: &str) -> Option<&Pref> {
        self.find_index(name).map(|i| &self.prefs[i])
    }

    fn find_index(&self, name: &str) -> Option<usize> {
        let mut fallback = None;
        for (i, p) in self.prefs.iter().enumerate().rev() {
            if p.name != name {
                continue;
            }
            if p.kind == PrefKind::User {
                return Some(i);
            }
            fallback.get_or_insert(i);
        }
        fallback
    }

    /// `name`'s value within this file (see [`PrefsFile::find`]).
    pub fn get(&self, name: &str) -> Option<&PrefValue> {
        self.find(name).map(|p| &p.value)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.find_index(name).is_some()
    }

    /// The line ending used most in the file; `\n` when it has none or on a tie.
    pub fn line_ending(&self) -> LineEnding {
        let (mut lf, mut crlf, mut cr) = (0usize, 0usize, 0usize);
        let b = &self.bytes;
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'\n' => lf += 1,
                b'\r' if b.get(i + 1) == Some(&b'\n') => {
                    crlf += 1;
                    i += 1;
                }
                b'\r' => cr += 1,
                _ => {}
            }
            i += 1;
        }
        if crlf > lf && crlf >= cr {
            LineEnding::CrLf
        } else if cr > lf && cr > crlf {
            LineEnding::Cr
        } else {
            LineEnding::Lf
        }
    }

    /// Sets `name` to `value`. An existing pref has only its value token rewritten; a missing
    /// one is appended as `user_pref("name", value);` and the file's line ending. Returns whether
    /// the bytes changed: setting a pref to the value it has is a no-op that keeps its spelling.
    pub fn set(&mut self, name: &str, value: &PrefValue) -> Result<bool, SetError> {
        if is_secret_name(name) {
            return Err(SetError::Secret { name: name.into() });
        }
        let text = encode_value(value).map_err(|reason| SetError::InvalidValue {
            name: name.into(),
            reason,
        })?;
        let mut bytes = self.bytes.clone();
        match self.find(name) {
            Some(p) if &p.value == value => return Ok(false),
            Some(p) => {
                bytes.splice(p.value_span.clone(), text.into_bytes());
            }
            None => {
                let quoted_name = encode_string(name).map_err(|reason| SetError::InvalidValue {
                    name: name.into(),
                    reason,
                })?;
                let eol = self.line_ending().as_str();
                let last_line_start = bytes
                    .iter()
                    .rposition(|&c| c == b'\n' || c == b'\r')
                    .map_or(0, |i| i + 1);
                let last_line = &bytes[last_line_start..];
                // A last line without its line ending (perhaps a `//` comment) must be ended,
                // or the new statement would join it.
                if !last_line.is_empty() && last_line != BOM {
                    bytes.extend_from_slice(eol.as_bytes());
                }
                bytes.extend_from_slice(
                    format!("user_pref({quoted_name}, {text});{eol}").as_bytes(),
                );
            }
        }
        let reparsed = PrefsFile::parse(&bytes).map_err(|e| SetError::WriteCheck {
            name: name.into(),
            detail: e.to_string(),
        })?;
        if reparsed.get(name) != Some(value) {
            return Err(SetError::WriteCheck {
                name: name.into(),
                detail: "the value read back differs".into(),
            });
        }
        *self = reparsed;
        Ok(true)
    }
}

/// Writes a value as a prefs file token. Fails for a string holding NUL, which prefs files
/// cannot express, and for [`PrefValue::Withheld`], which has no value to write.
pub fn encode_value(value: &PrefValue) -> Result<String, &'static str> {
    match value {
        PrefValue::String(s) => encode_string(s),
        PrefValue::Int(i) => Ok(i.to_string()),
        PrefValue::Bool(b) => Ok(b.to_string()),
        PrefValue::Withheld => Err("a withheld value cannot be written"),
    }
}

/// Writes a double-quoted string literal the way Mozilla's writer does: `"` `\` and line breaks
/// escaped, other control characters as `\xNN`, everything else (UTF-8 included) as is.
pub fn encode_string(s: &str) -> Result<String, &'static str> {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\0' => return Err("strings in prefs files cannot hold a nul character"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyword {
    Pref,
    UserPref,
    StickyPref,
    LockPref,
    True,
    False,
    Sticky,
    Locked,
}

const KEYWORDS: [(&[u8], Keyword); 8] = [
    (b"pref", Keyword::Pref),
    (b"user_pref", Keyword::UserPref),
    (b"sticky_pref", Keyword::StickyPref),
    (b"lock_pref", Keyword::LockPref),
    (b"true", Keyword::True),
    (b"false", Keyword::False),
    (b"sticky", Keyword::Sticky),
    (b"locked", Keyword::Locked),
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    LParen,
    RParen,
    Comma,
    Semi,
    Plus,
    Minus,
    Keyword(Keyword),
    /// A string literal's decoded bytes.
    Str(Vec<u8>),
    Int(u32),
    Eof,
}

impl Tok {
    fn describe(&self) -> &'static str {
        match self {
            Tok::LParen => "'('",
            Tok::RParen => "')'",
            Tok::Comma => "','",
            Tok::Semi => "';'",
            Tok::Plus => "'+'",
            Tok::Minus => "'-'",
            Tok::Keyword(Keyword::Pref) => "'pref'",
            Tok::Keyword(Keyword::UserPref) => "'user_pref'",
            Tok::Keyword(Keyword::StickyPref) => "'sticky_pref'",
            Tok::Keyword(Keyword::LockPref) => "'lock_pref'",
            Tok::Keyword(Keyword::True) => "'true'",
            Tok::Keyword(Keyword::False) => "'false'",
            Tok::Keyword(Keyword::Sticky) => "'sticky'",
            Tok::Keyword(Keyword::Locked) => "'locked'",
            Tok::Str(_) => "a string",
            Tok::Int(_) => "a number",
            Tok::Eof => "the end of the file",
        }
    }
}

struct Token {
    tok: Tok,
    start: usize,
    end: usize,
}

/// An error found at a byte offset; turned into a line and column once, when it is reported.
struct ErrAt {
    offset: usize,
    message: String,
}

fn err(offset: usize, message: impl Into<String>) -> ErrAt {
    ErrAt {
        offset,
        message: message.into(),
    }
}

struct Parser<'a> {
    buf: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn new(buf: &'a [u8]) -> Parser<'a> {
        let i = if buf.starts_with(BOM) { BOM.len() } else { 0 };
        Parser { buf, i }
    }

    fn parse(mut self) -> Result<Vec<Pref>, SyntaxError> {
        let mut prefs = Vec::new();
        let result = self.statements(&mut prefs);
        match result {
            Ok(()) => {
                let lines = LineIndex::new(self.buf);
                for p in &mut prefs {
                    p.line = lines.position(p.span.start).0;
                }
                Ok(prefs)
            }
            Err(e) => {
                let (line, column) = LineIndex::new(self.buf).position(e.offset);
                Err(SyntaxError {
                    line,
                    column,
                    message: e.message,
                })
            }
        }
    }

    fn statements(&mut self, prefs: &mut Vec<Pref>) -> Result<(), ErrAt> {
        loop {
            let first = self.token()?;
            let kind = match first.tok {
                Tok::Keyword(Keyword::UserPref) => PrefKind::User,
                Tok::Keyword(Keyword::Pref) => PrefKind::Default,
                Tok::Keyword(Keyword::StickyPref) => PrefKind::Sticky,
                Tok::Keyword(Keyword::LockPref) => PrefKind::Locked,
                Tok::Eof => return Ok(()),
                ref t => {
                    return Err(err(
                        first.start,
                        format!(
                            "expected 'user_pref' at start of pref definition, found {}",
                            t.describe()
                        ),
                    ))
                }
            };
            self.expect(Tok::LParen, "expected '(' after pref specifier")?;
            let name_tok = self.token()?;
            let name_bytes = match name_tok.tok {
                Tok::Str(b) => b,
                t => {
                    return Err(err(
                        name_tok.start,
                        format!("expected pref name after '(', found {}", t.describe()),
                    ))
                }
            };
            let name = String::from_utf8_lossy(&name_bytes).into_owned();
            self.expect(Tok::Comma, "expected ',' after pref name")?;
            let (value, value_span) = self.value()?;
            self.expect(Tok::RParen, "expected ')' after pref value")?;
            let semi = self.expect(Tok::Semi, "expected ';' after ')'")?;
            let value = if is_secret_name(&name) {
                PrefValue::Withheld
            } else {
                value
            };
            prefs.push(Pref {
                kind,
                name,
                value,
                value_span,
                span: first.start..semi.end,
                line: 0,
            });
        }
    }

    fn expect(&mut self, want: Tok, message: &str) -> Result<Token, ErrAt> {
        let t = self.token()?;
        if t.tok == want {
            Ok(t)
        } else {
            Err(err(
                t.start,
                format!("{message}, found {}", t.tok.describe()),
            ))
        }
    }

    fn value(&mut self) -> Result<(PrefValue, Range<usize>), ErrAt> {
        let t = self.token()?;
        let overflow = |start| err(start, "integer literal overflowed");
        match t.tok {
            Tok::Keyword(Keyword::True) => Ok((PrefValue::Bool(true), t.start..t.end)),
            Tok::Keyword(Keyword::False) => Ok((PrefValue::Bool(false), t.start..t.end)),
            Tok::Str(b) => Ok((
                PrefValue::String(String::from_utf8_lossy(&b).into_owned()),
                t.start..t.end,
            )),
            Tok::Int(u) => {
                let v = i32::try_from(u).map_err(|_| overflow(t.start))?;
                Ok((PrefValue::Int(v), t.start..t.end))
            }
            Tok::Minus | Tok::Plus => {
                let negative = t.tok == Tok::Minus;
                let n = self.token()?;
                let Tok::Int(u) = n.tok else {
                    let sign = if negative { '-' } else { '+' };
                    return Err(err(
                        n.start,
                        format!(
                            "expected integer literal after '{sign}', found {}",
                            n.tok.describe()
                        ),
                    ));
                };
                let v = if negative {
                    i32::try_from(-i64::from(u)).map_err(|_| overflow(n.start))?
                } else {
                    i32::try_from(u).map_err(|_| overflow(n.start))?
                };
                Ok((PrefValue::Int(v), t.start..n.end))
            }
            t2 => Err(err(
                t.start,
                format!("expected pref value after ',', found {}", t2.describe()),
            )),
        }
    }

    fn token(&mut self) -> Result<Token, ErrAt> {
        let buf = self.buf;
        loop {
            let start = self.i;
            let Some(&c) = buf.get(start) else {
                return Ok(Token {
                    tok: Tok::Eof,
                    start,
                    end: start,
                });
            };
            let single = |tok| {
                Ok(Token {
                    tok,
                    start,
                    end: start + 1,
                })
            };
            match c {
                b'(' => {
                    self.i += 1;
                    return single(Tok::LParen);
                }
                b')' => {
                    self.i += 1;
                    return single(Tok::RParen);
                }
                b',' => {
                    self.i += 1;
                    return single(Tok::Comma);
                }
                b';' => {
                    self.i += 1;
                    return single(Tok::Semi);
                }
                b'+' => {
                    self.i += 1;
                    return single(Tok::Plus);
                }
                b'-' => {
                    self.i += 1;
                    return single(Tok::Minus);
                }
                b' ' | b'\t' | 0x0b | 0x0c | b'\n' | b'\r' => self.i += 1,
                b'#' => self.line_comment(start + 1)?,
                b'/' => match buf.get(start + 1) {
                    Some(b'/') => self.line_comment(start + 2)?,
                    Some(b'*') => self.block_comment(start)?,
                    _ => return Err(err(start + 1, "expected '/' or '*' after '/'")),
                },
                b'"' | b'\'' => return self.string(c),
                b'0'..=b'9' => return self.int(),
                c if is_keyword_byte(c) => {
                    let end = (start..buf.len())
                        .find(|&j| !is_keyword_byte(buf[j]))
                        .unwrap_or(buf.len());
                    let word = &buf[start..end];
                    // The word is not quoted in the message: it could be an unquoted secret.
                    let Some(&(_, kw)) = KEYWORDS.iter().find(|(w, _)| *w == word) else {
                        return Err(err(
                            start,
                            "unknown keyword (expected user_pref, pref, true, false or a quoted string)",
                        ));
                    };
                    self.i = end;
                    return Ok(Token {
                        tok: Tok::Keyword(kw),
                        start,
                        end,
                    });
                }
                0 => return Err(nul_error(start)),
                _ => return Err(err(start, "unexpected character")),
            }
        }
    }

    /// Skips a `#` or `//` comment whose text starts at `from`, up to (not over) its line end.
    fn line_comment(&mut self, from: usize) -> Result<(), ErrAt> {
        let buf = self.buf;
        let mut j = from;
        while j < buf.len() && buf[j] != b'\n' && buf[j] != b'\r' {
            if buf[j] == 0 {
                return Err(nul_error(j));
            }
            j += 1;
        }
        self.i = j;
        Ok(())
    }

    fn block_comment(&mut self, start: usize) -> Result<(), ErrAt> {
        let buf = self.buf;
        let mut j = start + 2;
        while j < buf.len() {
            match buf[j] {
                0 => return Err(nul_error(j)),
                b'*' if buf.get(j + 1) == Some(&b'/') => {
                    self.i = j + 2;
                    return Ok(());
                }
                _ => j += 1,
            }
        }
        Err(err(start, "unterminated /* comment"))
    }

    fn int(&mut self) -> Result<Token, ErrAt> {
        let buf = self.buf;
        let start = self.i;
        let mut value: Option<u32> = Some(0);
        let mut j = start;
        while j < buf.len() && buf[j].is_ascii_digit() {
            value = value
                .and_then(|v| v.checked_mul(10))
                .and_then(|v| v.checked_add(u32::from(buf[j] - b'0')));
            j += 1;
        }
        if j < buf.len() && is_keyword_byte(buf[j]) {
            return Err(err(j, "unexpected character in integer literal"));
        }
        let Some(v) = value else {
            return Err(err(start, "integer literal overflowed"));
        };
        self.i = j;
        Ok(Token {
            tok: Tok::Int(v),
            start,
            end: j,
        })
    }

    fn string(&mut self, quote: u8) -> Result<Token, ErrAt> {
        let buf = self.buf;
        let start = self.i;
        let mut j = start + 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = buf.get(j) else {
                return Err(err(start, "unterminated string literal"));
            };
            match c {
                0 => return Err(nul_error(j)),
                c if c == quote => {
                    j += 1;
                    break;
                }
                b'\\' => {
                    let esc = j;
                    j += 1;
                    match buf.get(j) {
                        Some(b'"') => out.push(b'"'),
                        Some(b'\'') => out.push(b'\''),
                        Some(b'\\') => out.push(b'\\'),
                        Some(b'n') => out.push(b'\n'),
                        Some(b'r') => out.push(b'\r'),
                        Some(b'x') => {
                            let Some(v) = hex(buf, j + 1, 2) else {
                                return Err(err(esc, "malformed \\x escape sequence"));
                            };
                            if v == 0 {
                                return Err(err(esc, "\\x00 is not allowed"));
                            }
                            // Two hex digits cannot exceed 0xff.
                            out.push(v as u8);
                            j += 2;
                        }
                        Some(b'u') => {
                            let Some(v) = hex(buf, j + 1, 4) else {
                                return Err(err(esc, "malformed \\u escape sequence"));
                            };
                            j += 4;
                            let ch = if (0xd800..0xdc00).contains(&v) {
                                let lo = if buf.get(j + 1) == Some(&b'\\')
                                    && buf.get(j + 2) == Some(&b'u')
                                {
                                    hex(buf, j + 3, 4)
                                } else {
                                    None
                                };
                                match lo {
                                    Some(lo) if (0xdc00..0xe000).contains(&lo) => {
                                        j += 6;
                                        0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00)
                                    }
                                    Some(_) => {
                                        return Err(err(
                                            esc,
                                            "invalid low surrogate after high surrogate",
                                        ))
                                    }
                                    None => {
                                        return Err(err(
                                            esc,
                                            "expected low surrogate after high surrogate",
                                        ))
                                    }
                                }
                            } else if (0xdc00..0xe000).contains(&v) {
                                return Err(err(
                                    esc,
                                    "expected high surrogate before low surrogate",
                                ));
                            } else if v == 0 {
                                return Err(err(esc, "\\u0000 is not allowed"));
                            } else {
                                v
                            };
                            let Some(ch) = char::from_u32(ch) else {
                                return Err(err(esc, "malformed \\u escape sequence"));
                            };
                            let mut utf8 = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut utf8).as_bytes());
                        }
                        _ => {
                            return Err(err(esc, "unexpected escape sequence character after '\\'"))
                        }
                    }
                    j += 1;
                }
                c => {
                    out.push(c);
                    j += 1;
                }
            }
        }
        self.i = j;
        Ok(Token {
            tok: Tok::Str(out),
            start,
            end: j,
        })
    }
}

fn is_keyword_byte(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn nul_error(offset: usize) -> ErrAt {
    err(
        offset,
        "unexpected nul byte (Thunderbird stops reading the file there)",
    )
}

/// Reads `n` hex digits at `at`.
fn hex(buf: &[u8], at: usize, n: usize) -> Option<u32> {
    let digits = buf.get(at..at + n)?;
    digits
        .iter()
        .try_fold(0u32, |acc, &d| Some(acc * 16 + (d as char).to_digit(16)?))
}

/// Line starts of a buffer, for turning byte offsets into 1-based lines and columns. A line
/// ends at `\n`, `\r\n` or a lone `\r`, as in Mozilla's parser.
struct LineIndex<'a> {
    buf: &'a [u8],
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(buf: &'a [u8]) -> LineIndex<'a> {
        let mut starts = vec![0];
        let mut i = 0;
        while i < buf.len() {
            match buf[i] {
                b'\n' => starts.push(i + 1),
                b'\r' if buf.get(i + 1) == Some(&b'\n') => {
                    i += 1;
                    starts.push(i + 1);
                }
                b'\r' => starts.push(i + 1),
                _ => {}
            }
            i += 1;
        }
        LineIndex { buf, starts }
    }

    fn position(&self, offset: usize) -> (usize, usize) {
        let line = self.starts.partition_point(|&s| s <= offset);
        // `starts[0]` is 0, so `line` is at least 1.
        let start = self.starts[line - 1];
        let from = if start == 0 && self.buf.starts_with(BOM) && offset >= BOM.len() {
            BOM.len()
        } else {
            start
        };
        let end = offset.min(self.buf.len());
        let chars = self.buf[from.min(end)..end]
            .iter()
            .filter(|&&b| (b & 0xc0) != 0x80)
            .count();
        (line, chars + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(s: &str) -> SyntaxError {
        PrefsFile::parse(s.as_bytes()).unwrap_err()
    }

    #[test]
    fn integers_cover_the_whole_i32_range_and_no_more() {
        let f = PrefsFile::parse(
            b"user_pref(\"a\", -2147483648);\nuser_pref(\"b\", +2147483647);\nuser_pref(\"c\", - 5);",
        )
        .unwrap();
        assert_eq!(f.get("a"), Some(&PrefValue::Int(i32::MIN)));
        assert_eq!(f.get("b"), Some(&PrefValue::Int(i32::MAX)));
        assert_eq!(f.get("c"), Some(&PrefValue::Int(-5)));
        let e = parse_err("user_pref(\"a\", 2147483648);");
        assert_eq!((e.line, e.column), (1, 16));
        assert!(e.message.contains("overflowed"));
        let e = parse_err("user_pref(\"a\", 99999999999);");
        assert!(e.message.contains("overflowed"));
    }

    #[test]
    fn a_number_glued_to_letters_is_rejected() {
        let e = parse_err("user_pref(\"a\", 123abc);");
        assert_eq!((e.line, e.column), (1, 19));
    }

    #[test]
    fn surrogate_pairs_decode_and_lone_surrogates_are_rejected() {
        let f = PrefsFile::parse(br#"user_pref("a", "\uD83D\uDE00");"#).unwrap();
        assert_eq!(f.get("a"), Some(&PrefValue::String("\u{1F600}".into())));
        assert!(parse_err(r#"user_pref("a", "\uD83D");"#)
            .message
            .contains("expected low surrogate"));
        assert!(parse_err(r#"user_pref("a", "\uDE00");"#)
            .message
            .contains("expected high surrogate"));
        assert!(parse_err(r#"user_pref("a", "\uD83D\u0041");"#)
            .message
            .contains("invalid low surrogate"));
    }

    #[test]
    fn nul_escapes_and_nul_bytes_are_rejected() {
        assert!(parse_err(r#"user_pref("a", "\x00");"#)
            .message
            .contains("\\x00"));
        assert!(parse_err(r#"user_pref("a", "\u0000");"#)
            .message
            .contains("\\u0000"));
        let e = PrefsFile::parse(b"user_pref(\"a\", 1);\n// x\0y\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 5));
    }

    #[test]
    fn columns_count_characters_and_skip_the_bom() {
        let e = PrefsFile::parse("\u{feff}user_pref(\"é\" 1);".as_bytes()).unwrap_err();
        assert_eq!((e.line, e.column), (1, 15));
        let e = PrefsFile::parse(b"\r\n\ruser_pref(\"a\", 1)  ,\r\n").unwrap_err();
        assert_eq!((e.line, e.column), (3, 20));
        assert!(e.message.contains("expected ';'"), "{}", e.message);
    }

    #[test]
    fn attributes_are_not_allowed_in_user_files() {
        let e = parse_err("pref(\"a\", 1, locked);");
        assert!(e.message.contains("expected ')'"), "{}", e.message);
    }

    #[test]
    fn a_user_pref_outranks_a_later_default_of_the_same_name() {
        let f = PrefsFile::parse(b"user_pref(\"a\", 1);\npref(\"a\", 2);\nsticky_pref(\"b\", 3);")
            .unwrap();
        assert_eq!(f.get("a"), Some(&PrefValue::Int(1)));
        assert_eq!(f.find("b").unwrap().kind, PrefKind::Sticky);
    }

    #[test]
    fn line_ending_prefers_the_majority_and_lf_on_ties() {
        let f = |s: &[u8]| PrefsFile::parse(s).unwrap().line_ending();
        assert_eq!(f(b"\r\n\r\n\n"), LineEnding::CrLf);
        assert_eq!(f(b"\r\n\n"), LineEnding::Lf);
        assert_eq!(f(b""), LineEnding::Lf);
        assert_eq!(f(b"\r\n\n\r"), LineEnding::Lf);
        assert_eq!(f(b"\r\r"), LineEnding::Cr);
    }
}
