//! A lossless reader and writer of `.reg` export files, as `reg export` and `regedit /e` write
//! them: UTF-16LE with a byte-order mark and "Windows Registry Editor Version 5.00", or the older
//! 8-bit "REGEDIT4" (UTF-8 or ANSI code page 1252); CRLF or LF line endings; `[key]` and
//! `[-key]` lines; `"name"=` and `@=` values as quoted strings, `dword:`, `hex:` and `hex(N):`
//! with `\` line continuations, and `"name"=-` deletions; `;` comment lines.
//!
//! The file keeps its bytes: [`RegFile::as_bytes`] of an unchanged file is the input, byte for
//! byte, and a change of one value rewrites only the text of that value's data (its own lines),
//! in the file's encoding and line endings. Everything here is pure; the store in
//! [`crate::store`] does the reading and writing of files.
//!
//! What the file *means* follows `reg import`: lines apply in order, `[key]` creates the key and
//! its parents, `[-key]` removes the key and everything below it, and a later value line for the
//! same name wins.

use mailmend_core::registry::{names_equal, REG_BINARY, REG_EXPAND_SZ, REG_MULTI_SZ, REG_SZ};
use mailmend_core::{RegPath, RegValue};
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

/// The header of a version 5 file (UTF-16LE, Windows 2000 and later).
pub const HEADER_V5: &str = "Windows Registry Editor Version 5.00";
/// The header of a version 4 file (8-bit, Windows 95/NT4, still accepted by `reg import`).
pub const HEADER_V4: &str = "REGEDIT4";

/// Where regedit breaks a long hex value: once a line reaches this many characters.
const MAX_HEX_CHARS: usize = 77;

/// How the file's text is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-16LE after the byte-order mark FF FE, as every Windows export since 2000.
    Utf16Le,
    /// UTF-8, with or without the byte-order mark EF BB BF.
    Utf8 { bom: bool },
    /// Windows code page 1252 (an 8-bit REGEDIT4 file that is not valid UTF-8).
    Ansi,
}

/// Which header the file starts with; it decides how `hex(2)`/`hex(7)` strings are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// "Windows Registry Editor Version 5.00": strings in `hex(N)` data are UTF-16LE.
    V5,
    /// "REGEDIT4": strings in `hex(N)` data are 8-bit ANSI.
    V4,
}

/// A syntax error with its place (1-based line and column, columns counted in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for SyntaxError {}

/// Why a value could not be written into the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EditError {
    /// An 8-bit file cannot hold a character of the name or value (outside code page 1252).
    #[error("the file's encoding cannot hold {0:?}")]
    Unrepresentable(char),
    /// A REGEDIT4 file writes `hex(N)` strings as 8-bit text, which cannot hold raw UTF-16 data.
    #[error("a REGEDIT4 file cannot hold raw data of type {0}")]
    RawStringInV4(u32),
    /// The rewritten file did not read back as written: a bug, and nothing is written.
    #[error("the rewritten file does not read back as written: {0}")]
    ReadBack(String),
}

/// One logical line (a value with continuations is one entry) and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The bytes of the entry, including its line ending(s).
    pub span: Range<usize>,
    /// The line the entry starts on (1-based).
    pub line: usize,
    pub kind: EntryKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Header,
    Blank,
    Comment,
    /// `[key]`, or `[-key]` when `delete`.
    Key {
        path: RegPath,
        delete: bool,
    },
    Value(ValueEntry),
}

/// A `"name"=data` line.
#[derive(Clone, PartialEq, Eq)]
pub struct ValueEntry {
    /// The key the value belongs to (the last `[key]` above it).
    pub key: RegPath,
    /// The value's name; `""` for `@`.
    pub name: String,
    /// The value; `None` for `"name"=-`.
    pub data: Option<RegValue>,
    /// The bytes of the data text (after `=`, up to the end of its last line, line ending
    /// excluded).
    pub data_span: Range<usize>,
    /// Characters on the line before the data (`"name"=`), for regedit's line breaking.
    prefix_chars: usize,
    /// For `hex` data: the byte offset of every two-digit byte, so that a value of the same
    /// length can be rewritten digit for digit.
    hex_digits: Vec<usize>,
}

// Value data may be a password blob; Debug shows the name and type, never the data.
impl fmt::Debug for ValueEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValueEntry")
            .field("key", &self.key)
            .field("name", &self.name)
            .field("kind", &self.data.as_ref().map(RegValue::kind))
            .field("data_span", &self.data_span)
            .finish_non_exhaustive()
    }
}

/// A parsed `.reg` file.
#[derive(Clone, PartialEq, Eq)]
pub struct RegFile {
    bytes: Vec<u8>,
    encoding: Encoding,
    version: Version,
    newline: &'static str,
    entries: Vec<Entry>,
}

// The bytes may hold password blobs; Debug shows the shape only.
impl fmt::Debug for RegFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegFile")
            .field("len", &self.bytes.len())
            .field("encoding", &self.encoding)
            .field("version", &self.version)
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

/// The text of the file as characters, each with the byte offset it starts at.
struct Decoded {
    chars: Vec<char>,
    /// `offs[i]` is where `chars[i]` starts; `offs[chars.len()]` is the end of the file.
    offs: Vec<usize>,
}

fn decode(bytes: &[u8]) -> Result<(Encoding, Decoded), SyntaxError> {
    let mut chars = Vec::new();
    let mut offs = Vec::new();
    if let Some(body) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        let mut units = Vec::with_capacity(body.len() / 2);
        for c in body.chunks(2) {
            if c.len() != 2 {
                let (line, column) = position(&chars, chars.len());
                return Err(SyntaxError {
                    line,
                    column,
                    message: "the file ends in the middle of a UTF-16 character".into(),
                });
            }
            units.push(u16::from_le_bytes([c[0], c[1]]));
        }
        let mut at = 2;
        for r in char::decode_utf16(units.iter().copied()) {
            match r {
                Ok(c) => {
                    chars.push(c);
                    offs.push(at);
                    at += c.len_utf16() * 2;
                }
                Err(_) => {
                    let (line, column) = position(&chars, chars.len());
                    return Err(SyntaxError {
                        line,
                        column,
                        message: "invalid UTF-16 (an unpaired surrogate)".into(),
                    });
                }
            }
        }
        offs.push(at);
        return Ok((Encoding::Utf16Le, Decoded { chars, offs }));
    }
    let (bom, body) = match bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        Some(b) => (3, b),
        None => (0, bytes),
    };
    match std::str::from_utf8(body) {
        Ok(s) => {
            for (i, c) in s.char_indices() {
                chars.push(c);
                offs.push(bom + i);
            }
            offs.push(bytes.len());
            Ok((Encoding::Utf8 { bom: bom != 0 }, Decoded { chars, offs }))
        }
        Err(e) if bom != 0 => {
            let valid = std::str::from_utf8(&body[..e.valid_up_to()]).unwrap_or_default();
            let (line, column) =
                position(&valid.chars().collect::<Vec<_>>(), valid.chars().count());
            Err(SyntaxError {
                line,
                column,
                message: "invalid UTF-8 after a UTF-8 byte-order mark".into(),
            })
        }
        Err(_) => {
            for (i, &b) in body.iter().enumerate() {
                chars.push(cp1252_decode(b));
                offs.push(i);
            }
            offs.push(bytes.len());
            Ok((Encoding::Ansi, Decoded { chars, offs }))
        }
    }
}

/// Line and column (1-based, in characters) of character index `at`.
fn position(chars: &[char], at: usize) -> (usize, usize) {
    let before = &chars[..at.min(chars.len())];
    let line = before.iter().filter(|&&c| c == '\n').count() + 1;
    let column = before.iter().rev().take_while(|&&c| c != '\n').count() + 1;
    (line, column)
}

/// The bytes 0x80–0x9F of code page 1252; the five it leaves undefined map to the C1 controls,
/// as Windows' MultiByteToWideChar does.
const CP1252_HIGH: [char; 32] = [
    '\u{20AC}', '\u{81}', '\u{201A}', '\u{192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{2C6}', '\u{2030}', '\u{160}', '\u{2039}', '\u{152}', '\u{8D}', '\u{17D}', '\u{8F}',
    '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{2DC}', '\u{2122}', '\u{161}', '\u{203A}', '\u{153}', '\u{9D}', '\u{17E}', '\u{178}',
];

fn cp1252_decode(b: u8) -> char {
    match b {
        0x80..=0x9F => CP1252_HIGH[usize::from(b - 0x80)],
        _ => char::from(b),
    }
}

fn cp1252_encode(c: char) -> Option<u8> {
    match u32::from(c) {
        n @ (0..=0x7F | 0xA0..=0xFF) => u8::try_from(n).ok(),
        _ => CP1252_HIGH
            .iter()
            .position(|&h| h == c)
            .and_then(|i| u8::try_from(0x80 + i).ok()),
    }
}

/// One physical line: character range of its content and of its line ending.
#[derive(Debug, Clone, Copy)]
struct Line {
    start: usize,
    /// End of the content (line ending excluded).
    end: usize,
    /// End including the line ending.
    next: usize,
}

fn split_lines(chars: &[char]) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut start = 0;
    for (i, &c) in chars.iter().enumerate() {
        if c == '\n' {
            let end = if i > start && chars[i - 1] == '\r' {
                i - 1
            } else {
                i
            };
            lines.push(Line {
                start,
                end,
                next: i + 1,
            });
            start = i + 1;
        }
    }
    if start < chars.len() {
        lines.push(Line {
            start,
            end: chars.len(),
            next: chars.len(),
        });
    }
    lines
}

struct Parser<'a> {
    d: &'a Decoded,
    lines: Vec<Line>,
    version: Version,
}

impl Parser<'_> {
    fn err(&self, at: usize, message: impl Into<String>) -> SyntaxError {
        let (line, column) = position(&self.d.chars, at);
        SyntaxError {
            line,
            column,
            message: message.into(),
        }
    }

    fn ch(&self, at: usize) -> Option<char> {
        self.d.chars.get(at).copied()
    }

    fn skip_ws(&self, mut at: usize, end: usize) -> usize {
        while at < end && matches!(self.d.chars[at], ' ' | '\t') {
            at += 1;
        }
        at
    }

    /// Parses a quoted string starting at the opening quote; returns the text and the index
    /// after the closing quote.
    fn quoted(&self, at: usize, end: usize) -> Result<(String, usize), SyntaxError> {
        let mut out = String::new();
        let mut i = at + 1;
        while i < end {
            match self.d.chars[i] {
                '"' => return Ok((out, i + 1)),
                '\\' => {
                    let esc = if i + 1 < end { self.ch(i + 1) } else { None };
                    match esc {
                        Some('\\') => out.push('\\'),
                        Some('"') => out.push('"'),
                        Some('n') => out.push('\n'),
                        Some('r') => out.push('\r'),
                        Some('0') => out.push('\0'),
                        Some(c) => {
                            return Err(self.err(
                                i,
                                format!("unknown escape \\{c} (a backslash is written \\\\)"),
                            ))
                        }
                        None => return Err(self.err(i, "a string ends in a lone backslash")),
                    }
                    i += 2;
                }
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        Err(self.err(at, "this string has no closing quote on its line"))
    }

    fn rest_is_blank(&self, at: usize, end: usize, what: &str) -> Result<(), SyntaxError> {
        let after = self.skip_ws(at, end);
        if after < end {
            return Err(self.err(after, format!("unexpected text after {what}")));
        }
        Ok(())
    }

    fn key_line(&self, line: Line, at: usize) -> Result<EntryKind, SyntaxError> {
        let content: String = self.d.chars[at..line.end].iter().collect();
        let trimmed = content.trim_end_matches([' ', '\t']);
        let Some(inner) = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) else {
            return Err(self.err(line.end, "a key line must end with ]"));
        };
        let (delete, path) = match inner.strip_prefix('-') {
            Some(p) => (true, p),
            None => (false, inner),
        };
        let hive = path.split('\\').next().unwrap_or("");
        if mailmend_core::Hive::parse(hive).is_none() {
            return Err(self.err(
                at + 1 + usize::from(delete),
                format!("{hive:?} is not a registry hive (HKEY_CURRENT_USER, HKEY_USERS, …)"),
            ));
        }
        let path = RegPath::parse(path).map_err(|e| self.err(at + 1, e.to_string()))?;
        Ok(EntryKind::Key { path, delete })
    }

    /// Parses a value starting on line `li` at `at`; returns the entry kind and the index of the
    /// last physical line it occupies.
    fn value_line(
        &self,
        li: usize,
        at: usize,
        key: &RegPath,
    ) -> Result<(ValueEntry, usize), SyntaxError> {
        let line = self.lines[li];
        let (name, after_name) = if self.ch(at) == Some('@') {
            (String::new(), at + 1)
        } else {
            self.quoted(at, line.end)?
        };
        let eq = self.skip_ws(after_name, line.end);
        if self.ch(eq) != Some('=') || eq >= line.end {
            return Err(self.err(eq, "expected = after the value name"));
        }
        let data_at = self.skip_ws(eq + 1, line.end);
        let prefix_chars = data_at - line.start;
        let word: String = self.d.chars[data_at..line.end]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '(' | ')'))
            .collect::<String>()
            .to_ascii_lowercase();
        let mut entry = ValueEntry {
            key: key.clone(),
            name,
            data: None,
            data_span: 0..0,
            prefix_chars,
            hex_digits: Vec::new(),
        };
        let mut last_line = li;
        let data_end;
        match self.ch(data_at) {
            _ if data_at >= line.end => return Err(self.err(data_at, "a value needs data after =")),
            Some('-') => {
                self.rest_is_blank(data_at + 1, line.end, "-")?;
                data_end = data_at + 1;
            }
            Some('"') => {
                let (s, end) = self.quoted(data_at, line.end)?;
                self.rest_is_blank(end, line.end, "the string")?;
                entry.data = Some(RegValue::String(s));
                data_end = end;
            }
            _ if word.starts_with("dword") && self.ch(data_at + 5) == Some(':') => {
                let digits_at = data_at + 6;
                let mut i = digits_at;
                while i < line.end && self.d.chars[i].is_ascii_hexdigit() {
                    i += 1;
                }
                if i == digits_at || i - digits_at > 8 {
                    return Err(self.err(digits_at, "dword: needs one to eight hex digits"));
                }
                self.rest_is_blank(i, line.end, "the dword")?;
                let text: String = self.d.chars[digits_at..i].iter().collect();
                // Eight hex digits or fewer always fit in a u32.
                let n = u32::from_str_radix(&text, 16)
                    .map_err(|e| self.err(digits_at, e.to_string()))?;
                entry.data = Some(RegValue::Dword(n));
                data_end = i;
            }
            _ if word.starts_with("hex") => {
                let (kind, after_type) = self.hex_type(data_at, line.end)?;
                let (bytes, digits, end, end_line) = self.hex_bytes(li, after_type)?;
                last_line = end_line;
                entry.hex_digits = digits;
                entry.data = Some(self.typed(kind, &bytes));
                data_end = end;
            }
            _ => {
                return Err(self.err(
                    data_at,
                    "unknown value data (expected \"string\", dword:, hex:, hex(N): or -)",
                ))
            }
        }
        entry.data_span = self.d.offs[data_at]..self.d.offs[data_end];
        Ok((entry, last_line))
    }

    /// `hex:` or `hex(N):` at `at`; returns the type and the index after the colon.
    fn hex_type(&self, at: usize, end: usize) -> Result<(u32, usize), SyntaxError> {
        let mut i = at + 3;
        let kind = if self.ch(i) == Some('(') {
            let start = i + 1;
            i = start;
            while i < end && self.d.chars[i].is_ascii_hexdigit() {
                i += 1;
            }
            let text: String = self.d.chars[start..i].iter().collect();
            if text.is_empty() || text.len() > 8 || self.ch(i) != Some(')') {
                return Err(self.err(start, "hex(N): needs a hex type number"));
            }
            i += 1;
            u32::from_str_radix(&text, 16).map_err(|e| self.err(start, e.to_string()))?
        } else {
            REG_BINARY
        };
        if self.ch(i) != Some(':') || i >= end {
            return Err(self.err(i, "expected : after hex"));
        }
        Ok((kind, i + 1))
    }

    /// The comma-separated bytes from `at` on line `li`, following `\` continuations. Returns
    /// the bytes, where each byte's digits start (in bytes of the file), the character index
    /// where the data ends, and the last line it occupies.
    #[allow(clippy::type_complexity)]
    fn hex_bytes(
        &self,
        mut li: usize,
        at: usize,
    ) -> Result<(Vec<u8>, Vec<usize>, usize, usize), SyntaxError> {
        let mut bytes = Vec::new();
        let mut digits = Vec::new();
        let mut i = at;
        let mut end = self.lines[li].end;
        // Whether a byte may come next (at the start, and after a comma).
        let mut want_byte = true;
        let mut data_end = at;
        loop {
            i = self.skip_ws(i, end);
            if i >= end {
                if want_byte && !bytes.is_empty() {
                    return Err(self.err(i, "expected a byte after ,"));
                }
                return Ok((bytes, digits, data_end, li));
            }
            let c = self.d.chars[i];
            if c == '\\' && want_byte {
                self.rest_is_blank(i + 1, end, "a \\ continuation")?;
                li += 1;
                let Some(next) = self.lines.get(li) else {
                    return Err(self.err(i, "a \\ continuation at the end of the file"));
                };
                i = next.start;
                end = next.end;
                continue;
            }
            if !want_byte {
                if c != ',' {
                    return Err(self.err(i, "expected , between bytes"));
                }
                want_byte = true;
                i += 1;
                data_end = i;
                continue;
            }
            let hi = self.ch(i).and_then(|c| c.to_digit(16));
            let lo = if i + 1 < end {
                self.ch(i + 1).and_then(|c| c.to_digit(16))
            } else {
                None
            };
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(self.err(i, "expected a byte as two hex digits"));
            };
            // Two hex digits are at most 0xFF.
            bytes.push(u8::try_from(hi * 16 + lo).unwrap_or(0));
            digits.push(self.d.offs[i]);
            i += 2;
            data_end = i;
            want_byte = false;
        }
    }

    /// The typed value for `hex(N)` data, reading strings as this file version writes them.
    fn typed(&self, kind: u32, bytes: &[u8]) -> RegValue {
        let stringy = matches!(kind, REG_SZ | REG_EXPAND_SZ | REG_MULTI_SZ);
        if self.version == Version::V4 && stringy {
            // 8-bit text: each byte is one character of code page 1252.
            let wide: Vec<u8> = bytes
                .iter()
                .flat_map(|&b| {
                    let mut buf = [0u16; 2];
                    let units = cp1252_decode(b).encode_utf16(&mut buf).to_vec();
                    units.into_iter().flat_map(u16::to_le_bytes)
                })
                .collect();
            return match RegValue::from_raw(kind, &wide) {
                RegValue::Other { .. } => RegValue::Other {
                    kind,
                    data: bytes.to_vec(),
                },
                v => v,
            };
        }
        RegValue::from_raw(kind, bytes)
    }
}

impl RegFile {
    /// Parses a `.reg` file. Anything the grammar does not allow is an error with its line and
    /// column; nothing is guessed.
    pub fn parse(bytes: &[u8]) -> Result<RegFile, SyntaxError> {
        let (encoding, d) = decode(bytes)?;
        let lines = split_lines(&d.chars);
        let Some(first) = lines.first().copied() else {
            return Err(SyntaxError {
                line: 1,
                column: 1,
                message: format!("empty file; a .reg file starts with \"{HEADER_V5}\""),
            });
        };
        let head: String = d.chars[first.start..first.end].iter().collect();
        let version = match head.trim_end_matches([' ', '\t']) {
            HEADER_V5 => Version::V5,
            HEADER_V4 => Version::V4,
            _ => {
                return Err(SyntaxError {
                    line: 1,
                    column: 1,
                    message: format!("expected the header \"{HEADER_V5}\" or \"{HEADER_V4}\""),
                })
            }
        };
        // New lines follow the header's line ending (CRLF when it has none).
        let newline = if first.next == first.end + 1 {
            "\n"
        } else {
            "\r\n"
        };
        let p = Parser {
            d: &d,
            lines,
            version,
        };
        let span = |from: Line, to: Line| p.d.offs[from.start]..p.d.offs[to.next];
        let mut entries = vec![Entry {
            span: span(first, first),
            line: 1,
            kind: EntryKind::Header,
        }];
        // The key that value lines belong to; `Err` after `[-key]` (values there mean nothing).
        let mut current: Option<Result<RegPath, usize>> = None;
        let mut li = 1;
        while li < p.lines.len() {
            let line = p.lines[li];
            let at = p.skip_ws(line.start, line.end);
            let (kind, last) = match p.ch(at) {
                _ if at >= line.end => (EntryKind::Blank, li),
                Some(';') => (EntryKind::Comment, li),
                Some('[') => {
                    let kind = p.key_line(line, at)?;
                    if let EntryKind::Key { path, delete } = &kind {
                        current = Some(if *delete { Err(at) } else { Ok(path.clone()) });
                    }
                    (kind, li)
                }
                Some('"') | Some('@') => {
                    let key = match &current {
                        Some(Ok(k)) => k.clone(),
                        Some(Err(_)) => {
                            return Err(p.err(at, "a value under a deleted [-key] means nothing"))
                        }
                        None => return Err(p.err(at, "a value before any [key] line")),
                    };
                    let (v, last) = p.value_line(li, at, &key)?;
                    (EntryKind::Value(v), last)
                }
                _ => {
                    return Err(p.err(at, "expected [key], \"name\"=value, @=value or a ; comment"))
                }
            };
            entries.push(Entry {
                span: span(line, p.lines[last]),
                line: li + 1,
                kind,
            });
            li = last + 1;
        }
        Ok(RegFile {
            bytes: bytes.to_vec(),
            encoding,
            version,
            newline,
            entries,
        })
    }

    /// The file's bytes: the input, unless values were changed.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    pub fn version(&self) -> Version {
        self.version
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// What the file means once imported: its keys and their values.
    pub fn state(&self) -> State {
        State::of(self)
    }

    /// The value `name` of `key` as the file means it; `None` when absent.
    pub fn get(&self, key: &RegPath, name: &str) -> Option<RegValue> {
        self.get_in(&self.state(), key, name)
    }

    /// [`RegFile::get`] with the file's [`State`] computed once by the caller.
    pub fn get_in(&self, st: &State, key: &RegPath, name: &str) -> Option<RegValue> {
        let (_, idx, present) = st.value_entry(key, name)?;
        if !present {
            return None;
        }
        match &self.entries[idx].kind {
            EntryKind::Value(v) => v.data.clone(),
            _ => None,
        }
    }

    /// Makes `name` of `key` hold `value`: the value's own data text is rewritten when the file
    /// has a line for it; otherwise a line is added at the end of the key's section, or a new
    /// section at the end of the file. Nothing else changes.
    pub fn set(&mut self, key: &RegPath, name: &str, value: &RegValue) -> Result<(), EditError> {
        let st = self.state();
        let bytes = match st.value_entry(key, name) {
            Some((_, idx, _)) => {
                let EntryKind::Value(v) = &self.entries[idx].kind else {
                    return Err(EditError::ReadBack("a value entry is not a value".into()));
                };
                match self.in_place_hex(v, value)? {
                    Some(b) => b,
                    None => {
                        let text = self.format_data(v.prefix_chars, value)?;
                        self.splice(v.data_span.clone(), &self.encode(&text)?)
                    }
                }
            }
            None => {
                let line = self.value_line_text(name, value)?;
                match self.section_end(&st, key) {
                    Some(at) => {
                        self.splice(at..at, &self.encode(&format!("{line}{}", self.newline))?)
                    }
                    None => {
                        let at = self.bytes.len();
                        let text =
                            self.append_text(&format!("[{key}]{nl}{line}{nl}", nl = self.newline));
                        self.splice(at..at, &self.encode(&text)?)
                    }
                }
            }
        };
        self.replace_checked(bytes, key, name, Some(value))
    }

    /// Removes `name` from `key`: its lines go when nothing earlier in the file would then give
    /// it a value again; otherwise its data becomes `-`. An absent value is left alone.
    pub fn delete(&mut self, key: &RegPath, name: &str) -> Result<(), EditError> {
        let st = self.state();
        let Some((_, idx, true)) = st.value_entry(key, name) else {
            return Ok(());
        };
        let entry = &self.entries[idx];
        let removed = self.splice(entry.span.clone(), &[]);
        if let Ok(f) = RegFile::parse(&removed) {
            if f.get(key, name).is_none() {
                return self.replace_checked(removed, key, name, None);
            }
        }
        let EntryKind::Value(v) = &entry.kind else {
            return Err(EditError::ReadBack("a value entry is not a value".into()));
        };
        let bytes = self.splice(v.data_span.clone(), &self.encode("-")?);
        self.replace_checked(bytes, key, name, None)
    }

    /// Takes `bytes` as the new file after checking that it parses and that the value reads
    /// back as intended.
    fn replace_checked(
        &mut self,
        bytes: Vec<u8>,
        key: &RegPath,
        name: &str,
        want: Option<&RegValue>,
    ) -> Result<(), EditError> {
        let f = RegFile::parse(&bytes).map_err(|e| EditError::ReadBack(e.to_string()))?;
        if f.get(key, name).as_ref() != want {
            return Err(EditError::ReadBack(format!(
                "{name:?} of {key} reads back differently"
            )));
        }
        *self = f;
        Ok(())
    }

    fn splice(&self, range: Range<usize>, with: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bytes.len() + with.len());
        out.extend_from_slice(&self.bytes[..range.start]);
        out.extend_from_slice(with);
        out.extend_from_slice(&self.bytes[range.end..]);
        out
    }

    /// New bytes with the hex digits of `v` replaced, when the new value has the same type and
    /// length and the old one was written as hex: the layout stays exactly as it was.
    fn in_place_hex(&self, v: &ValueEntry, value: &RegValue) -> Result<Option<Vec<u8>>, EditError> {
        let Some(old) = &v.data else {
            return Ok(None);
        };
        if v.hex_digits.is_empty()
            || old.kind() != value.kind()
            || matches!(old, RegValue::Dword(_))
        {
            return Ok(None);
        }
        let raw = self.hex_payload(value)?;
        if raw.len() != v.hex_digits.len() {
            return Ok(None);
        }
        let mut out = self.bytes.clone();
        for (&at, b) in v.hex_digits.iter().zip(&raw) {
            let digits = self.encode(&format!("{b:02x}"))?;
            out[at..at + digits.len()].copy_from_slice(&digits);
        }
        Ok(Some(out))
    }

    /// Text appended at the end of the file, separated from what is there as regedit separates
    /// sections: by one blank line.
    fn append_text(&self, section: &str) -> String {
        let nl = self.newline;
        let ends_blank = matches!(self.entries.last().map(|e| &e.kind), Some(EntryKind::Blank));
        let ends_newline = self.ends_line(self.bytes.len());
        let mut text = String::new();
        if !ends_newline {
            text.push_str(nl);
        }
        if !ends_blank {
            text.push_str(nl);
        }
        text.push_str(section);
        if ends_blank {
            text.push_str(nl);
        }
        text
    }

    /// Where a new value of `key` goes: after the last value line of the key's last section,
    /// when that section is still in force (no `[-key]` of it or a parent follows).
    fn section_end(&self, st: &State, key: &RegPath) -> Option<usize> {
        st.key(key)?;
        let header = self.entries.iter().rposition(
            |e| matches!(&e.kind, EntryKind::Key { path, delete: false } if path == key),
        )?;
        let deleted_later = self.entries[header + 1..].iter().any(
            |e| matches!(&e.kind, EntryKind::Key { path, delete: true } if key.starts_with(path)),
        );
        if deleted_later {
            return None;
        }
        let mut end = self.entries[header].span.end;
        for e in &self.entries[header + 1..] {
            match &e.kind {
                EntryKind::Key { .. } => break,
                EntryKind::Value(_) => end = e.span.end,
                _ => {}
            }
        }
        // A section whose last line has no line ending (the end of the file) cannot take a line
        // after it without one; the caller then appends a new section instead.
        self.ends_line(end).then_some(end)
    }

    /// Whether the text before byte `at` (a character boundary) ends with a line feed.
    fn ends_line(&self, at: usize) -> bool {
        match self.encoding {
            Encoding::Utf16Le => at >= 4 && self.bytes[at - 2..at] == [b'\n', 0],
            Encoding::Utf8 { .. } | Encoding::Ansi => self.bytes[..at].ends_with(b"\n"),
        }
    }

    fn encode(&self, text: &str) -> Result<Vec<u8>, EditError> {
        match self.encoding {
            Encoding::Utf16Le => Ok(text.encode_utf16().flat_map(u16::to_le_bytes).collect()),
            Encoding::Utf8 { .. } => Ok(text.as_bytes().to_vec()),
            Encoding::Ansi => text
                .chars()
                .map(|c| cp1252_encode(c).ok_or(EditError::Unrepresentable(c)))
                .collect(),
        }
    }

    /// `"name"=data` for a new line.
    fn value_line_text(&self, name: &str, value: &RegValue) -> Result<String, EditError> {
        let prefix = if name.is_empty() {
            "@=".to_string()
        } else {
            format!("\"{}\"=", escape(name))
        };
        let data = self.format_data(prefix.chars().count(), value)?;
        Ok(format!("{prefix}{data}"))
    }

    /// The bytes that follow `hex(N):` for a value in this file's version.
    fn hex_payload(&self, value: &RegValue) -> Result<Vec<u8>, EditError> {
        let stringy = matches!(value.kind(), REG_SZ | REG_EXPAND_SZ | REG_MULTI_SZ);
        if self.version == Version::V4 && stringy {
            let text: String = match value {
                RegValue::String(s) | RegValue::ExpandString(s) => format!("{s}\0"),
                RegValue::MultiString(v) => {
                    let mut t: String = v.iter().map(|s| format!("{s}\0")).collect();
                    t.push('\0');
                    t
                }
                other => return Err(EditError::RawStringInV4(other.kind())),
            };
            return text
                .chars()
                .map(|c| cp1252_encode(c).ok_or(EditError::Unrepresentable(c)))
                .collect();
        }
        Ok(value.to_raw())
    }

    /// The data text for `value` as regedit writes it, with `prefix_chars` characters before it
    /// on its line (regedit breaks hex lines once they reach 77 characters).
    fn format_data(&self, prefix_chars: usize, value: &RegValue) -> Result<String, EditError> {
        match value {
            RegValue::String(s) if !s.contains('\0') => return Ok(format!("\"{}\"", escape(s))),
            RegValue::Dword(n) => return Ok(format!("dword:{n:08x}")),
            _ => {}
        }
        let kind = value.kind();
        let mut text = if kind == REG_BINARY {
            "hex:".to_string()
        } else {
            format!("hex({kind:x}):")
        };
        let raw = self.hex_payload(value)?;
        let mut line_len = prefix_chars + text.len();
        for (i, b) in raw.iter().enumerate() {
            text.push_str(&format!("{b:02x}"));
            if i + 1 == raw.len() {
                break;
            }
            text.push(',');
            line_len += 3;
            if line_len >= MAX_HEX_CHARS {
                text.push('\\');
                text.push_str(self.newline);
                text.push_str("  ");
                line_len = 2;
            }
        }
        Ok(text)
    }
}

/// A name or string as regedit quotes it.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out
}

/// The keys and values a file holds once imported, in the order they first appear.
#[derive(Debug, Clone, Default)]
pub struct State {
    keys: Vec<Option<KeyState>>,
    index: HashMap<RegPath, usize>,
}

#[derive(Debug, Clone)]
struct KeyState {
    path: RegPath,
    /// Name, the entry that last set or deleted it, and whether it is present.
    values: Vec<(String, usize, bool)>,
}

impl State {
    fn of(file: &RegFile) -> State {
        let mut st = State::default();
        for (i, e) in file.entries.iter().enumerate() {
            match &e.kind {
                EntryKind::Key {
                    path,
                    delete: false,
                } => st.create(path),
                EntryKind::Key { path, delete: true } => st.remove(path),
                EntryKind::Value(v) => {
                    let Some(&k) = st.index.get(&v.key) else {
                        continue;
                    };
                    let Some(ks) = st.keys[k].as_mut() else {
                        continue;
                    };
                    let present = v.data.is_some();
                    match ks
                        .values
                        .iter_mut()
                        .find(|(n, _, _)| names_equal(n, &v.name))
                    {
                        Some(slot) => {
                            slot.1 = i;
                            slot.2 = present;
                        }
                        None => ks.values.push((v.name.clone(), i, present)),
                    }
                }
                _ => {}
            }
        }
        st
    }

    fn create(&mut self, path: &RegPath) {
        if self.index.contains_key(path) {
            return;
        }
        if let Some(parent) = path.parent() {
            self.create(&parent);
        }
        self.index.insert(path.clone(), self.keys.len());
        self.keys.push(Some(KeyState {
            path: path.clone(),
            values: Vec::new(),
        }));
    }

    fn remove(&mut self, path: &RegPath) {
        let gone: Vec<RegPath> = self
            .index
            .keys()
            .filter(|k| k.starts_with(path))
            .cloned()
            .collect();
        for k in gone {
            if let Some(i) = self.index.remove(&k) {
                self.keys[i] = None;
            }
        }
    }

    fn key(&self, path: &RegPath) -> Option<&KeyState> {
        self.keys[*self.index.get(path)?].as_ref()
    }

    /// Whether the key exists (a hive always does).
    pub fn has_key(&self, path: &RegPath) -> bool {
        path.path().is_empty() || self.key(path).is_some()
    }

    /// The names of the key's direct subkeys, in the order they first appear.
    pub fn subkeys(&self, path: &RegPath) -> Vec<String> {
        self.keys
            .iter()
            .flatten()
            .filter(|k| k.path.parent().as_ref() == Some(path))
            .map(|k| k.path.name().to_string())
            .collect()
    }

    /// The names of the key's values that are present.
    pub fn value_names(&self, path: &RegPath) -> Vec<String> {
        self.key(path)
            .map(|k| {
                k.values
                    .iter()
                    .filter(|v| v.2)
                    .map(|v| v.0.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The entry that last set or deleted `name` of `key`: (name as written, entry index,
    /// present).
    fn value_entry(&self, path: &RegPath, name: &str) -> Option<(String, usize, bool)> {
        self.key(path)?
            .values
            .iter()
            .find(|(n, _, _)| names_equal(n, name))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(s: &str) -> Vec<u8> {
        let mut out = vec![0xFF, 0xFE];
        out.extend(s.encode_utf16().flat_map(u16::to_le_bytes));
        out
    }

    const SAMPLE: &str = concat!(
        "Windows Registry Editor Version 5.00\r\n\r\n",
        "[HKEY_CURRENT_USER\\Software\\Test]\r\n",
        "\"Name \\\"q\\\"\"=\"C:\\\\a\"\r\n",
        "\"Port\"=dword:000003e1\r\n",
        "\"IMAP Server\"=hex:69,00,6d,00,61,00,70,00,2e,00,65,00,78,00,61,00,6d,00,70,00,\\\r\n",
        "  6c,00,65,00,2e,00,63,00,6f,00,6d,00,00,00\r\n",
        "@=\"default\"\r\n\r\n",
    );

    #[test]
    fn a_utf16_export_parses_and_keeps_its_bytes() {
        let bytes = utf16(SAMPLE);
        let f = RegFile::parse(&bytes).unwrap();
        assert_eq!(f.as_bytes(), &bytes[..]);
        assert_eq!(f.encoding(), Encoding::Utf16Le);
        let key = RegPath::parse("HKCU\\Software\\Test").unwrap();
        assert_eq!(
            f.get(&key, "name \"q\""),
            Some(RegValue::String("C:\\a".into()))
        );
        assert_eq!(f.get(&key, "PORT"), Some(RegValue::Dword(993)));
        assert_eq!(f.get(&key, ""), Some(RegValue::String("default".into())));
        let Some(RegValue::Binary(b)) = f.get(&key, "imap server") else {
            panic!("binary expected")
        };
        assert_eq!(
            b,
            "imap.example.com\0"
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_dword_change_rewrites_only_its_digits() {
        let mut f = RegFile::parse(SAMPLE.as_bytes()).unwrap();
        let key = RegPath::parse("HKCU\\Software\\Test").unwrap();
        f.set(&key, "Port", &RegValue::Dword(143)).unwrap();
        let text = String::from_utf8(f.as_bytes().to_vec()).unwrap();
        assert_eq!(text, SAMPLE.replace("dword:000003e1", "dword:0000008f"));
    }

    #[test]
    fn hex_is_wrapped_as_regedit_wraps_it() {
        let f = RegFile::parse(SAMPLE.as_bytes()).unwrap();
        let v = RegValue::Binary(b"i\0m\0a\0p\0.\0e\0x\0a\0m\0p\0l\0e\0.\0c\0o\0m\0\0\0".to_vec());
        let text = f.format_data("\"IMAP Server\"=".len(), &v).unwrap();
        assert!(SAMPLE.contains(&text), "{text}");
    }

    #[test]
    fn errors_have_line_and_column() {
        let e = RegFile::parse(b"REGEDIT4\n[HKEY_CURRENT_USER\\x]\n\"a\"=hex:0g\n").unwrap_err();
        assert_eq!((e.line, e.column), (3, 9), "{e}");
        let e = RegFile::parse(b"REGEDIT4\n\"a\"=dword:1\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 1), "{e}");
        let e = RegFile::parse(b"hello\n").unwrap_err();
        assert_eq!((e.line, e.column), (1, 1));
        let e = RegFile::parse(b"REGEDIT4\n[HKEY_NOPE\\x]\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 2), "{e}");
    }

    #[test]
    fn ansi_files_keep_their_code_page() {
        let mut bytes = b"REGEDIT4\r\n\r\n[HKEY_CURRENT_USER\\T]\r\n\"caf".to_vec();
        bytes.extend([0xE9, b'"', b'=', b'"', 0x80, b'"', b'\r', b'\n']);
        let mut f = RegFile::parse(&bytes).unwrap();
        assert_eq!(f.encoding(), Encoding::Ansi);
        let key = RegPath::parse("HKCU\\T").unwrap();
        assert_eq!(f.get(&key, "café"), Some(RegValue::String("€".into())));
        f.set(&key, "café", &RegValue::String("œ".into())).unwrap();
        assert!(f.as_bytes().ends_with(&[b'"', 0x9C, b'"', b'\r', b'\n']));
        assert_eq!(
            f.set(&key, "x", &RegValue::String("ж".into())),
            Err(EditError::Unrepresentable('ж'))
        );
    }

    #[test]
    fn deleting_a_key_hides_its_values_and_subkeys() {
        let text = "REGEDIT4\n[HKEY_CURRENT_USER\\A\\B]\n\"x\"=dword:1\n[-HKEY_CURRENT_USER\\A]\n[HKEY_CURRENT_USER\\A]\n";
        let f = RegFile::parse(text.as_bytes()).unwrap();
        let st = f.state();
        let a = RegPath::parse("HKCU\\A").unwrap();
        assert!(st.has_key(&a));
        assert!(st.subkeys(&a).is_empty());
        assert_eq!(f.get(&a.join("B"), "x"), None);
        assert_eq!(st.subkeys(&RegPath::parse("HKCU").unwrap()), ["A"]);
    }
}
