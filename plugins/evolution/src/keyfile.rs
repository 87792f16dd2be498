//! A lossless parser and editor for GLib key files (`GKeyFile`), the format of Evolution's
//! `.source` files, following how GLib reads them.
//!
//! - Lines end at `\n`; a `\r` before it belongs to the line ending.
//! - After leading whitespace, a line is empty, a comment (`#`), a group (`[Name]`, optionally
//!   followed by blanks), or an entry `Key=Value`. Blanks before `=` and after it are not part
//!   of the key or the value. A key may carry a locale, `Name[de]`, and is then another key.
//! - Every entry belongs to the group above it; an entry before the first group is an error. A
//!   group named twice is one group; a key set twice takes the last value.
//! - String values escape `\s` (space), `\n`, `\t`, `\r` and `\\`.
//! - Like GLib, the parser accepts any bytes but NUL; a value that is not UTF-8 fails only when
//!   it is read as a string.
//!
//! The parser keeps the file's bytes and the span of every key and value, so that
//! [`KeyFile::set`] rewrites exactly one value or inserts exactly one line (or, for a missing
//! group, appends the group with its entry), and every other byte (comments, order, blank lines,
//! CRLF, unknown keys) stays as it was. Values are decoded only when asked for.

use std::fmt;
use std::ops::Range;

/// A syntax error, at a 1-based line and column (columns count characters). The message never
/// quotes the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Why [`KeyFile::set`] refused a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SetError {
    /// The group or key name cannot be written (brackets, `=`, control characters).
    #[error("cannot write [{group}] {key}: {reason}")]
    InvalidName {
        group: String,
        key: String,
        reason: &'static str,
    },
    /// The edited file did not read back; this is a bug in the writer, and the file was left
    /// unchanged.
    #[error("writing [{group}] {key} did not read back: {detail}")]
    WriteCheck {
        group: String,
        key: String,
        detail: String,
    },
}

/// What a line holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineKind {
    /// Empty, only whitespace, or a `#` comment.
    Comment,
    /// `[Name]`: the span of the name.
    Group(Range<usize>),
    /// `Key=Value`: the spans of the key and of the value (blanks around `=` excluded).
    Entry {
        key: Range<usize>,
        value: Range<usize>,
    },
}

/// One line of the file.
#[derive(Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number.
    pub number: usize,
    /// The line's bytes without its line ending.
    pub span: Range<usize>,
    /// Where the next line starts.
    pub next: usize,
    pub kind: LineKind,
    /// The group the line belongs to (an index into [`KeyFile::groups`]).
    pub group: Option<usize>,
}

// Spans only: the value might be something private.
impl fmt::Debug for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Line")
            .field("number", &self.number)
            .field("span", &self.span)
            .finish()
    }
}

/// One group header of the file (a group named twice has two).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The name, with bytes that are not UTF-8 replaced.
    pub name: String,
    /// The bytes of the name.
    pub raw: Range<usize>,
    /// The header line.
    pub header: usize,
    /// The header and the lines up to the next header.
    pub lines: Range<usize>,
    /// The group's last entry, after which new entries go.
    pub last_entry: Option<usize>,
}

/// The line ending a file mostly uses; inserted lines use it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnding {
    Lf,
    CrLf,
}

impl LineEnding {
    pub fn as_str(self) -> &'static str {
        match self {
            LineEnding::Lf => "\n",
            LineEnding::CrLf => "\r\n",
        }
    }
}

/// A parsed key file.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyFile {
    bytes: Vec<u8>,
    lines: Vec<Line>,
    groups: Vec<Group>,
}

impl fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFile")
            .field("len", &self.bytes.len())
            .field(
                "groups",
                &self.groups.iter().map(|g| &g.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// GLib's `g_key_file_is_group_name`: non-empty, without brackets or ASCII control characters.
fn valid_group(name: &[u8]) -> bool {
    !name.is_empty()
        && !name
            .iter()
            .any(|&b| b == b'[' || b == b']' || b < 0x20 || b == 0x7f)
}

/// GLib's `g_key_file_is_key_name`: a non-empty name without `=` or brackets and without a
/// blank at either end, optionally followed by a locale `[xx_YY.enc@mod]` (which may be empty).
fn valid_key(key: &[u8]) -> bool {
    let base_end = key
        .iter()
        .position(|&b| b == b'=' || b == b'[' || b == b']')
        .unwrap_or(key.len());
    let base = &key[..base_end];
    if base.is_empty() || base.starts_with(b" ") || base.ends_with(b" ") {
        return false;
    }
    let rest = &key[base_end..];
    if rest.is_empty() {
        return true;
    }
    let Some(locale) = rest.strip_prefix(b"[") else {
        return false;
    };
    let close = locale.iter().position(|&b| b == b']');
    let Some(close) = close.filter(|&c| c + 1 == locale.len()) else {
        return false;
    };
    std::str::from_utf8(&locale[..close]).is_ok_and(|l| {
        l.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
    })
}

/// Decodes a string value's escapes; `Err` holds the byte offset of a bad escape.
pub fn unescape(raw: &str) -> Result<String, usize> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.char_indices();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some((_, 's')) => out.push(' '),
            Some((_, 'n')) => out.push('\n'),
            Some((_, 't')) => out.push('\t'),
            Some((_, 'r')) => out.push('\r'),
            Some((_, '\\')) => out.push('\\'),
            _ => return Err(i),
        }
    }
    Ok(out)
}

/// Encodes a string value as GLib's writer does: a leading blank as `\s`, line breaks, tabs
/// and backslashes escaped.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        match c {
            ' ' if i == 0 => out.push_str("\\s"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out
}

/// Splits a file into lines at `\n`; a `\r` before it belongs to the line ending.
fn split_lines(bytes: &[u8]) -> Vec<(Range<usize>, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < bytes.len() {
        match bytes[start..].iter().position(|&b| b == b'\n') {
            Some(i) => {
                let nl = start + i;
                let end = if nl > start && bytes[nl - 1] == b'\r' {
                    nl - 1
                } else {
                    nl
                };
                out.push((start..end, nl + 1));
                start = nl + 1;
            }
            None => {
                out.push((start..bytes.len(), bytes.len()));
                start = bytes.len();
            }
        }
    }
    out
}

fn column(bytes: &[u8], line: &Range<usize>, offset: usize) -> usize {
    let end = offset.clamp(line.start, line.end);
    String::from_utf8_lossy(&bytes[line.start..end])
        .chars()
        .count()
        + 1
}

/// GLib's `g_key_file_line_is_group`: `[`, a name up to the first `]`, then only blanks. Returns
/// the position of that `]`.
fn group_line(b: &[u8], start: usize, end: usize) -> Option<usize> {
    if b[start] != b'[' {
        return None;
    }
    let close = start + b[start..end].iter().position(|&c| c == b']')?;
    b[close + 1..end]
        .iter()
        .all(|&c| c == b' ' || c == b'\t')
        .then_some(close)
}

impl KeyFile {
    /// Parses a whole file. Anything GLib would refuse rejects it, and so does a NUL byte
    /// (where GLib would silently drop the rest of the line).
    pub fn parse(bytes: &[u8]) -> Result<KeyFile, SyntaxError> {
        let b = bytes;
        let mut lines = Vec::new();
        let mut groups: Vec<Group> = Vec::new();
        for (i, (span, next)) in split_lines(b).into_iter().enumerate() {
            let err = |offset: usize, message: &str| SyntaxError {
                line: i + 1,
                column: column(b, &span, offset),
                message: message.to_string(),
            };
            if let Some(p) = b[span.clone()].iter().position(|&c| c == 0) {
                return Err(err(span.start + p, "nul byte"));
            }
            let mut p = span.start;
            while p < span.end && is_space(b[p]) {
                p += 1;
            }
            let kind = if p == span.end || b[p] == b'#' {
                LineKind::Comment
            } else if let Some(close) = group_line(b, p, span.end) {
                let name = &b[p + 1..close];
                if !valid_group(name) {
                    return Err(err(p + 1, "invalid group name"));
                }
                if let Some(last) = groups.last_mut() {
                    last.lines.end = i;
                }
                groups.push(Group {
                    name: String::from_utf8_lossy(name).into_owned(),
                    raw: p + 1..close,
                    header: i,
                    lines: i..i + 1,
                    last_entry: None,
                });
                LineKind::Group(p + 1..close)
            } else {
                let eq = b[p..span.end]
                    .iter()
                    .position(|&c| c == b'=')
                    .map(|e| p + e)
                    .ok_or_else(|| {
                        err(
                            p,
                            "a line that is neither a key=value pair, a group nor a comment",
                        )
                    })?;
                let mut key_end = eq;
                while key_end > p && is_space(b[key_end - 1]) {
                    key_end -= 1;
                }
                if !valid_key(&b[p..key_end]) {
                    return Err(err(p, "invalid key name"));
                }
                if groups.is_empty() {
                    return Err(err(p, "the file does not start with a group"));
                }
                let mut value_start = eq + 1;
                while value_start < span.end && is_space(b[value_start]) {
                    value_start += 1;
                }
                if &b[p..key_end] == b"Encoding"
                    && !b[value_start..span.end].eq_ignore_ascii_case(b"UTF-8")
                {
                    return Err(err(value_start, "unsupported encoding"));
                }
                LineKind::Entry {
                    key: p..key_end,
                    value: value_start..span.end,
                }
            };
            let group = groups.len().checked_sub(1);
            if let (LineKind::Entry { .. }, Some(g)) = (&kind, group) {
                groups[g].last_entry = Some(i);
            }
            lines.push(Line {
                number: i + 1,
                span,
                next,
                kind,
                group,
            });
        }
        if let Some(last) = groups.last_mut() {
            last.lines.end = lines.len();
        }
        Ok(KeyFile {
            bytes: bytes.to_vec(),
            lines,
            groups,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    pub fn has_group(&self, group: &str) -> bool {
        self.groups
            .iter()
            .any(|g| &self.bytes[g.raw.clone()] == group.as_bytes())
    }

    /// The bytes of the key on an entry line.
    pub fn key(&self, line: usize) -> Option<&[u8]> {
        match &self.lines.get(line)?.kind {
            LineKind::Entry { key, .. } => Some(&self.bytes[key.clone()]),
            _ => None,
        }
    }

    /// The line of the entry that decides `[group] key`: the last one.
    pub fn find(&self, group: &str, key: &str) -> Option<usize> {
        self.find_raw(group.as_bytes(), key.as_bytes())
    }

    fn find_raw(&self, group: &[u8], key: &[u8]) -> Option<usize> {
        self.lines.iter().rposition(|l| match (&l.kind, l.group) {
            (LineKind::Entry { key: k, .. }, Some(g)) => {
                &self.bytes[self.groups[g].raw.clone()] == group && &self.bytes[k.clone()] == key
            }
            _ => false,
        })
    }

    /// The raw (still escaped) value of the entry on `line`.
    pub fn raw_value(&self, line: usize) -> Option<&[u8]> {
        match &self.lines.get(line)?.kind {
            LineKind::Entry { value, .. } => Some(&self.bytes[value.clone()]),
            _ => None,
        }
    }

    /// The decoded string value of `[group] key`; a value that is not UTF-8 or holds an invalid
    /// escape is a syntax error at that spot, as GLib refuses to read it.
    pub fn get(&self, group: &str, key: &str) -> Result<Option<String>, SyntaxError> {
        self.get_raw(group.as_bytes(), key.as_bytes())
    }

    /// [`KeyFile::get`] for names given as bytes.
    pub fn get_raw(&self, group: &[u8], key: &[u8]) -> Result<Option<String>, SyntaxError> {
        let Some(i) = self.find_raw(group, key) else {
            return Ok(None);
        };
        let line = &self.lines[i];
        let LineKind::Entry { value, .. } = &line.kind else {
            return Ok(None);
        };
        let at = |offset: usize, message: String| SyntaxError {
            line: line.number,
            column: column(&self.bytes, &line.span, value.start + offset),
            message,
        };
        let name = String::from_utf8_lossy(key);
        let text = std::str::from_utf8(&self.bytes[value.clone()])
            .map_err(|e| at(e.valid_up_to(), format!("the value of {name} is not UTF-8")))?;
        unescape(text)
            .map(Some)
            .map_err(|o| at(o, format!("invalid escape sequence in the value of {name}")))
    }

    /// A syntax error pointing at the value of `[group] key`, for a value of the wrong kind.
    pub fn value_error(&self, group: &str, key: &str, message: &str) -> SyntaxError {
        let (number, col) = match self.find(group, key) {
            Some(i) => {
                let line = &self.lines[i];
                let at = match &line.kind {
                    LineKind::Entry { value, .. } => value.start,
                    _ => line.span.start,
                };
                (line.number, column(&self.bytes, &line.span, at))
            }
            None => (1, 1),
        };
        SyntaxError {
            line: number,
            column: col,
            message: message.to_string(),
        }
    }

    /// The line ending used most in the file; `\n` when it has none or on a tie.
    pub fn line_ending(&self) -> LineEnding {
        let b = &self.bytes;
        let crlf = b.windows(2).filter(|w| w == b"\r\n").count();
        let lf = b.iter().filter(|&&c| c == b'\n').count() - crlf;
        if crlf > lf {
            LineEnding::CrLf
        } else {
            LineEnding::Lf
        }
    }

    /// Sets `[group] key` to the string `value`: the deciding entry has its value rewritten, or
    /// one line `key=value` is inserted after the group's last entry (of its last header), or,
    /// when the group is missing, the group and its entry are appended after a blank line.
    /// Returns whether the bytes changed.
    pub fn set(&mut self, group: &str, key: &str, value: &str) -> Result<bool, SetError> {
        let invalid = |reason| SetError::InvalidName {
            group: group.to_string(),
            key: key.to_string(),
            reason,
        };
        if !valid_group(group.as_bytes()) {
            return Err(invalid("invalid group name"));
        }
        if !valid_key(key.as_bytes()) {
            return Err(invalid("invalid key name"));
        }
        let encoded = escape(value);
        let eol = self.line_ending().as_str();
        let mut bytes = self.bytes.clone();
        match self.find(group, key) {
            Some(i) => {
                let LineKind::Entry { value: v, .. } = &self.lines[i].kind else {
                    return Err(invalid("the deciding line is no entry"));
                };
                if self.bytes[v.clone()] == *encoded.as_bytes() {
                    return Ok(false);
                }
                bytes.splice(v.clone(), encoded.bytes());
            }
            None => match self
                .groups
                .iter()
                .rev()
                .find(|g| &self.bytes[g.raw.clone()] == group.as_bytes())
            {
                Some(g) => {
                    let after = &self.lines[g.last_entry.unwrap_or(g.header)];
                    let insert = if after.next == after.span.end {
                        format!("{eol}{key}={encoded}")
                    } else {
                        format!("{key}={encoded}{eol}")
                    };
                    bytes.splice(after.next..after.next, insert.into_bytes());
                }
                None => {
                    let lead = match (bytes.is_empty(), bytes.ends_with(b"\n")) {
                        (true, _) => String::new(),
                        (false, true) => eol.to_string(),
                        (false, false) => format!("{eol}{eol}"),
                    };
                    bytes.extend_from_slice(
                        format!("{lead}[{group}]{eol}{key}={encoded}{eol}").as_bytes(),
                    );
                }
            },
        }
        let check = |detail: String| SetError::WriteCheck {
            group: group.to_string(),
            key: key.to_string(),
            detail,
        };
        let reparsed = KeyFile::parse(&bytes).map_err(|e| check(e.to_string()))?;
        match reparsed.get(group, key) {
            Ok(Some(v)) if v == value => {}
            _ => return Err(check("the value read back differs".into())),
        }
        *self = reparsed;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_round_trip() {
        for v in [" lead", "a\\b", "tab\there", "line\nbreak", "plain", ""] {
            assert_eq!(unescape(&escape(v)).unwrap(), v);
        }
        assert_eq!(unescape("a\\sb").unwrap(), "a b");
        assert_eq!(unescape("bad\\q"), Err(3));
        assert_eq!(unescape("end\\"), Err(3));
    }

    #[test]
    fn keys_follow_glib_rules() {
        assert!(valid_key(b"Name"));
        assert!(valid_key(b"Name[de]"));
        assert!(valid_key(b"Name[sr@latin]"));
        assert!(valid_key(b"With space"));
        assert!(!valid_key(b" Name"));
        assert!(!valid_key(b"Name[de"));
        assert!(!valid_key(b"Na]me"));
        assert!(!valid_key(b"[de]"));
        assert!(!valid_key(b"Name[d e]"));
        assert!(!valid_key(b"Name[de]x"));
        assert!(valid_key(b"Name[]"));
        assert!(!valid_key(b""));
    }

    #[test]
    fn duplicate_groups_merge_and_the_last_value_wins() {
        let f = KeyFile::parse(b"[A]\nk=1\n[B]\nk=2\n[A]\nk = 3 \nj=4\n").unwrap();
        assert_eq!(f.get("A", "k").unwrap().as_deref(), Some("3 "));
        assert_eq!(f.get("B", "k").unwrap().as_deref(), Some("2"));
        assert_eq!(f.get("A", "j").unwrap().as_deref(), Some("4"));
    }
}
