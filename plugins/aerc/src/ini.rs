//! A lossless reader for aerc's `accounts.conf`, an INI file read by go-ini with
//! `KeyValueDelimiters: "="`.
//!
//! The grammar is go-ini's, as aerc configures it:
//!
//! - Lines end at `\n` (a `\r` before it belongs to the line ending); leading white space is
//!   ignored; a UTF-8 byte order mark may lead; blank lines and lines starting with `#` or `;`
//!   are comments.
//! - `[name]` starts a section (the name runs to the line's *last* `]`); sections with the same
//!   name are one section; keys before the first section belong to `DEFAULT`, which aerc skips.
//! - `key = value`: the key runs to the first `=` (or is quoted with `"` or `` ` ``) and is
//!   trimmed. The value is trimmed, then cut at its first `#` or `;` (an inline comment, whatever
//!   precedes it), then loses one pair of surrounding `"` or `'` quotes. A value starting with
//!   `` ` `` or `"""` is quoted to the matching quote. A later value of a key wins.
//!
//! go-ini's multi-line values (an unclosed `` ` `` or `"""`, a trailing `\`) are rejected with a
//! [`SyntaxError`], like a line without `=`: mailmend must never rewrite a file it does not
//! fully understand.
//!
//! Secrets: only the values mailmend uses are kept. `source` and `outgoing` are kept as a
//! [`Url`] without its password or query, `from` and `smtp-starttls` as text, and every other
//! value (a `*-cred-cmd` command included) is dropped after its syntax was checked.

use crate::url::{Url, UrlError};
use std::fmt;
use std::ops::Range;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The keys whose text mailmend keeps.
const TEXT_KEYS: [&str; 2] = ["from", "smtp-starttls"];
/// The keys that hold a server URL.
const URL_KEYS: [&str; 2] = ["source", "outgoing"];

/// A value, as far as mailmend keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// The text of a key mailmend uses (`from`, `smtp-starttls`).
    Text(String),
    /// A `source` or `outgoing` URL, without its password and query.
    Url(Url),
    /// A `source` or `outgoing` value that is not a URL (a sendmail command, a path).
    NotUrl,
    /// A `source` or `outgoing` value with `://` that aerc could not use.
    BadUrl(UrlError),
    /// Any other key's value: checked for syntax, not kept.
    Omitted,
}

/// One `key = value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: Value,
    /// The bytes of the value as go-ini reads it (without quotes or comment); empty, at the end
    /// of the key's line, for an empty value.
    pub value_span: Range<usize>,
    /// The bytes between the key and the value (`" = "`), to copy when a key is added.
    pub separator: Range<usize>,
    /// The line's leading white space.
    pub indent: Range<usize>,
    /// The line without its line ending.
    pub line_span: Range<usize>,
    /// The line ending (`\n`, `\r\n`, or empty on a last line without one).
    pub eol: Range<usize>,
    /// The 1-based line number.
    pub line: usize,
}

/// One `[name]` block and its entries (keys before any section form a `DEFAULT` block).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub name: String,
    /// The 1-based line of the header; 0 for the implicit `DEFAULT` block.
    pub line: usize,
    pub entries: Vec<Entry>,
}

/// A syntax error, at a 1-based line and column (columns count characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// A parsed accounts.conf: its exact bytes and its blocks.
#[derive(Clone, PartialEq, Eq)]
pub struct AccountsFile {
    bytes: Vec<u8>,
    blocks: Vec<Block>,
}

// The bytes may hold passwords, so the debug form shows only their shape.
impl fmt::Debug for AccountsFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountsFile")
            .field("len", &self.bytes.len())
            .field("blocks", &self.blocks.len())
            .finish()
    }
}

impl AccountsFile {
    /// Parses a whole file. Any syntax error rejects the file.
    pub fn parse(bytes: &[u8]) -> Result<AccountsFile, SyntaxError> {
        let blocks = parse_blocks(bytes).map_err(|(offset, message)| {
            let (line, column) = position(bytes, offset);
            SyntaxError {
                line,
                column,
                message: message.to_string(),
            }
        })?;
        Ok(AccountsFile {
            bytes: bytes.to_vec(),
            blocks,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// The section names, in order of first appearance, `DEFAULT` left out.
    pub fn sections(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for b in &self.blocks {
            if b.name != "DEFAULT" && !names.contains(&b.name.as_str()) {
                names.push(&b.name);
            }
        }
        names
    }

    /// The entry that decides `key` in `section`: the last one.
    pub fn get(&self, section: &str, key: &str) -> Option<&Entry> {
        self.blocks
            .iter()
            .rev()
            .filter(|b| b.name == section)
            .flat_map(|b| b.entries.iter().rev())
            .find(|e| e.key == key)
    }

    /// The line ending used most; `\n` on a tie or when there is none.
    pub fn line_ending(&self) -> &'static str {
        let lf = self.bytes.iter().filter(|&&b| b == b'\n').count();
        let crlf = self.bytes.windows(2).filter(|w| w == b"\r\n").count();
        if crlf * 2 > lf {
            "\r\n"
        } else {
            "\n"
        }
    }
}

type Err = (usize, &'static str);

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c)
}

fn parse_blocks(buf: &[u8]) -> Result<Vec<Block>, Err> {
    if let Some(nul) = buf.iter().position(|&b| b == 0) {
        return Err((nul, "unexpected nul byte"));
    }
    let mut blocks = vec![Block {
        name: "DEFAULT".into(),
        line: 0,
        entries: Vec::new(),
    }];
    let mut start = if buf.starts_with(BOM) { BOM.len() } else { 0 };
    let mut number = 0;
    while start < buf.len() {
        number += 1;
        let nl = buf[start..].iter().position(|&b| b == b'\n');
        let (content_end, line_end) = match nl {
            Some(i) => {
                let end = start + i;
                let ce = if end > start && buf[end - 1] == b'\r' {
                    end - 1
                } else {
                    end
                };
                (ce, end + 1)
            }
            None => (buf.len(), buf.len()),
        };
        let line = start..content_end;
        let eol = content_end..line_end;
        start = line_end;

        let first = (line.start..line.end).find(|&i| !is_space(buf[i]));
        let Some(first) = first else {
            continue;
        };
        match buf[first] {
            b'#' | b';' => continue,
            b'[' => {
                let Some(close) = (first..line.end).rev().find(|&i| buf[i] == b']') else {
                    return Err((first, "unclosed section header: expected ']'"));
                };
                if close == first + 1 {
                    return Err((first, "empty section name"));
                }
                blocks.push(Block {
                    name: String::from_utf8_lossy(&buf[first + 1..close]).into_owned(),
                    line: number,
                    entries: Vec::new(),
                });
            }
            _ => {
                let entry = entry(buf, first, line, eol, number)?;
                // A block always exists: the DEFAULT one is created first.
                if let Some(block) = blocks.last_mut() {
                    block.entries.push(entry);
                }
            }
        }
    }
    Ok(blocks)
}

fn trim(buf: &[u8], mut r: Range<usize>) -> Range<usize> {
    while r.start < r.end && is_space(buf[r.start]) {
        r.start += 1;
    }
    while r.end > r.start && is_space(buf[r.end - 1]) {
        r.end -= 1;
    }
    r
}

fn entry(
    buf: &[u8],
    first: usize,
    line: Range<usize>,
    eol: Range<usize>,
    number: usize,
) -> Result<Entry, Err> {
    // The key: quoted with ` or ", or up to the first `=`.
    let (key, after_key) = match buf[first] {
        q @ (b'"' | b'`') => {
            let close = (first + 1..line.end)
                .find(|&i| buf[i] == q)
                .ok_or((first, "unclosed quote in key name"))?;
            let eq = (close + 1..line.end)
                .find(|&i| buf[i] == b'=')
                .ok_or((close + 1, "expected '=' after the key"))?;
            (first + 1..close, eq)
        }
        _ => {
            let eq = (first..line.end)
                .find(|&i| buf[i] == b'=')
                .ok_or((first, "expected 'key = value' (no '=' on this line)"))?;
            (trim(buf, first..eq), eq)
        }
    };
    if key.is_empty() {
        return Err((first, "empty key name"));
    }
    let key_text = String::from_utf8_lossy(&buf[key.clone()]).into_owned();
    let rest = trim(buf, after_key + 1..line.end);
    let separator = key.end..rest.start.max(after_key + 1);
    let value_span = if rest.is_empty() {
        line.end..line.end
    } else if buf[rest.clone()].starts_with(b"\"\"\"") || buf[rest.start] == b'`' {
        let quote: &[u8] = if buf[rest.start] == b'`' {
            b"`"
        } else {
            b"\"\"\""
        };
        let inner = rest.start + quote.len()..rest.end;
        let close = buf[inner.clone()]
            .windows(quote.len())
            .rposition(|w| w == quote)
            .ok_or((rest.start, "multi-line values are not supported"))?;
        inner.start..inner.start + close
    } else {
        if buf[rest.end - 1] == b'\\' {
            return Err((rest.end - 1, "line continuation with '\\' is not supported"));
        }
        let mut v = rest.clone();
        if let Some(c) = buf[v.clone()].iter().position(|&b| b == b'#' || b == b';') {
            v.end = v.start + c;
        }
        let s = &buf[v.clone()];
        let surrounded = |q: u8| {
            s.len() >= 2 && s[0] == q && s[s.len() - 1] == q && !s[1..s.len() - 1].contains(&q)
        };
        if surrounded(b'"') || surrounded(b'\'') {
            v.start += 1;
            v.end -= 1;
        }
        v
    };
    let raw = &buf[value_span.clone()];
    let value = if URL_KEYS.contains(&key_text.as_str()) {
        match std::str::from_utf8(raw) {
            Ok(text) if text.contains("://") => match Url::parse(text, value_span.start) {
                Ok(u) => Value::Url(u),
                Err(e) => Value::BadUrl(e),
            },
            // Spans are byte offsets, so a URL is only read from text that is UTF-8 as is.
            Err(_) if raw.windows(3).any(|w| w == b"://") => Value::BadUrl(UrlError::Encoding),
            _ => Value::NotUrl,
        }
    } else if TEXT_KEYS.contains(&key_text.as_str()) {
        Value::Text(String::from_utf8_lossy(raw).into_owned())
    } else {
        Value::Omitted
    };
    let indent = line.start..first;
    Ok(Entry {
        key: key_text,
        value,
        value_span,
        separator,
        indent,
        line_span: line,
        eol,
        line: number,
    })
}

/// The 1-based line and column of a byte offset; a leading BOM is not counted.
fn position(buf: &[u8], offset: usize) -> (usize, usize) {
    let offset = offset.min(buf.len());
    let line = 1 + buf[..offset].iter().filter(|&&b| b == b'\n').count();
    let mut start = buf[..offset]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    if start == 0 && buf.starts_with(BOM) && offset >= BOM.len() {
        start = BOM.len();
    }
    let column = 1 + buf[start..offset]
        .iter()
        .filter(|&&b| (b & 0xc0) != 0x80)
        .count();
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value_text(f: &AccountsFile, e: &Entry) -> String {
        String::from_utf8_lossy(&f.as_bytes()[e.value_span.clone()]).into_owned()
    }

    #[test]
    fn go_ini_value_rules_are_followed() {
        let src = "top = 1\n[A]\nfrom = \"Ann <a@b.c>\"\n  default=INBOX ; note\nx = 'q' # c\ny = a\"b\"\nz =\nw = `v;#`\nk = \"\"\"t\"\"\"\n";
        let f = AccountsFile::parse(src.as_bytes()).unwrap();
        assert_eq!(f.sections(), ["A"]);
        let texts: Vec<(String, String)> = f
            .blocks()
            .iter()
            .flat_map(|b| &b.entries)
            .map(|e| (e.key.clone(), value_text(&f, e)))
            .collect();
        let want = [
            ("top", "1"),
            ("from", "Ann <a@b.c>"),
            ("default", "INBOX "),
            ("x", "'q' "),
            ("y", "a\"b\""),
            ("z", ""),
            ("w", "v;#"),
            ("k", "t"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(texts, want);
        assert_eq!(
            f.get("A", "from").unwrap().value,
            Value::Text("Ann <a@b.c>".into())
        );
    }

    #[test]
    fn sections_merge_and_the_last_value_wins() {
        let f = AccountsFile::parse(b"[A]\nfrom = 1\n[B]\nfrom = 2\n[A]\nfrom = 3\n").unwrap();
        assert_eq!(f.sections(), ["A", "B"]);
        assert_eq!(f.get("A", "from").unwrap().value, Value::Text("3".into()));
        assert_eq!(f.get("A", "from").unwrap().line, 6);
    }

    #[test]
    fn urls_are_kept_without_password_and_other_values_are_dropped() {
        let f = AccountsFile::parse(
            b"[A]\nsource = imaps://a:secret@h.example\nsource-cred-cmd = pass show x\noutgoing = /usr/bin/msmtp -a x\n",
        )
        .unwrap();
        assert!(
            matches!(&f.get("A", "source").unwrap().value, Value::Url(u) if u.host == "h.example" && u.has_password)
        );
        assert_eq!(f.get("A", "source-cred-cmd").unwrap().value, Value::Omitted);
        assert_eq!(f.get("A", "outgoing").unwrap().value, Value::NotUrl);
        let dump = format!("{f:?} {:?}", f.blocks());
        assert!(!dump.contains("secret") && !dump.contains("pass show"));
    }

    #[test]
    fn errors_carry_line_and_column() {
        let cases: [(&[u8], (usize, usize), &str); 6] = [
            (b"[A]\nsource imaps://h\n", (2, 1), "no '='"),
            (b"\xEF\xBB\xBF[A\n", (1, 1), "unclosed section"),
            (b"[A]\r\n  k = `open\r\n", (2, 7), "multi-line"),
            (b"[A]\nk = a \\\n", (2, 7), "continuation"),
            (b"[]\n", (1, 1), "empty section"),
            (b"[A]\n = x\n", (2, 2), "empty key"),
        ];
        for (src, pos, needle) in cases {
            let e = AccountsFile::parse(src).unwrap_err();
            assert_eq!((e.line, e.column), pos, "{e}");
            assert!(e.message.contains(needle), "{e}");
        }
    }
}
