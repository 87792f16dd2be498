//! A lossless reader for mutt and neomutt configuration files (muttrc).
//!
//! The grammar is the one of mutt's `mutt_read_line`, `parse_rc_line` and `mutt_extract_token`:
//!
//! - A line ends at `\n` (a `\r` before it is dropped). A line whose last character is `\`
//!   continues on the next line, even inside a comment or a quoted string.
//! - A line holds commands separated by `;`. An unquoted `#` ends the line (a comment), also in
//!   the middle of a word.
//! - A command is words separated by white space. In a word, `'…'` is literal, `"…"` allows
//!   escapes, and outside single quotes `\` escapes the next character (`\n`, `\t`, `\r`, `\f`,
//!   `\e`, `\cX`, three octal digits, or the character itself). Outside single quotes
//!   `` `command` `` and `$name` / `${name}` are expanded by mutt while it reads: mailmend
//!   never runs or expands them, and marks such a value [`Value::Dynamic`].
//! - `set name=value …`, `set name`, `set noname`, `set invname`, `set &name`, `set ?name`,
//!   `unset`, `reset` and `toggle` may change several variables in one command; spaces around
//!   `=` are allowed; neomutt's `+=` and `-=` make a value [`Value::Dynamic`].
//!
//! The parser keeps the file's bytes and, for every URL value, the byte span of its scheme, host
//! and port, so that an edit rewrites exactly those bytes and every other byte stays as it was.
//! Mutt reads past an unterminated quote; this parser rejects it (and a NUL byte, an
//! unterminated backtick or `${`, and a backslash with nothing to escape) with a [`SyntaxError`],
//! because mailmend must never rewrite a file it does not fully understand.
//!
//! Secrets: the value of a variable whose name marks it as one (`imap_pass`, `smtp_pass`, …,
//! see [`is_secret_name`]) is checked for syntax but never kept, and the password of a URL is
//! dropped while it is parsed. Only [`MuttFile::assigned_word`], which the agent calls when it
//! needs an account's credential, reads such a word, into a buffer zeroed on drop. Commands mailmend does not use (hooks, macros, …) are checked for
//! syntax and dropped whole, since their arguments may hold anything.

use crate::url::{parse_with_offsets, Url};
use std::fmt;
use zeroize::Zeroizing;

/// Whether a variable's name marks its value as a secret that mailmend must never read, keep or
/// log: passwords, and anything naming a secret, token or OAuth command.
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["pass", "secret", "token", "oauth"]
        .iter()
        .any(|s| n.contains(s))
}

/// What a setting or argument holds, as far as mailmend can tell without running mutt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Text known from the file alone.
    Text(String),
    /// A URL (the value holds `://`), without its password.
    Url(Url),
    /// The value of a secret variable: checked for syntax, never kept.
    Withheld,
    /// A value mutt computes while it reads (`$name`, `` `command` ``, `+=`, `-=`).
    Dynamic,
    /// Text holding `://` that is not a URL mutt could use.
    BadUrl,
}

impl Value {
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_url(&self) -> Option<&Url> {
        match self {
            Value::Url(u) => Some(u),
            _ => None,
        }
    }
}

/// What a `set`-family command does to one variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetOp {
    /// `set name=value`.
    Assign(Value),
    /// `set name` (true), `set noname` or `unset name` (false).
    Bool(bool),
    /// `toggle name` or `set invname`.
    Toggle,
    /// `reset name` or `set &name`: back to the default.
    Reset,
}

/// A command mailmend uses. One `set a=b c=d` gives one statement per variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatementKind {
    Set {
        name: String,
        op: SetOp,
    },
    /// One argument of `source`.
    Source {
        file: Value,
    },
    /// One mailbox of `mailboxes` or `named-mailboxes`.
    Mailbox {
        mailbox: Value,
    },
    /// A hook (`account-hook`, `folder-hook`, …) or conditional (`ifdef`, `ifndef`): its
    /// commands run only in some situations, so mailmend does not evaluate them.
    Skipped {
        command: String,
    },
}

/// One statement, at the 1-based line and column of its variable name or argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub line: usize,
    pub column: usize,
    pub kind: StatementKind,
}

/// A syntax error, at a 1-based line and column (columns count characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// The line ending a file mostly uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnding {
    Lf,
    CrLf,
}

/// A parsed muttrc: its exact bytes and the statements mailmend uses.
#[derive(Clone, PartialEq, Eq)]
pub struct MuttFile {
    bytes: Vec<u8>,
    statements: Vec<Statement>,
}

// The bytes may hold a password, so the debug form shows only their shape.
impl fmt::Debug for MuttFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MuttFile")
            .field("len", &self.bytes.len())
            .field("statements", &self.statements.len())
            .finish()
    }
}

impl MuttFile {
    /// Parses a whole file. Any syntax error rejects the file.
    pub fn parse(bytes: &[u8]) -> Result<MuttFile, SyntaxError> {
        let index = LineIndex::new(bytes);
        let statements = parse_statements(bytes, false).map_err(|e| {
            let (line, column) = index.position(e.offset);
            SyntaxError {
                line,
                column,
                message: e.message.to_string(),
            }
        })?;
        let statements = statements
            .into_iter()
            .map(|(offset, kind, _)| {
                let (line, column) = index.position(offset);
                Statement { line, column, kind }
            })
            .collect();
        Ok(MuttFile {
            bytes: bytes.to_vec(),
            statements,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }

    /// The literal word that statement `stmt` (an index into [`MuttFile::statements`])
    /// assigns, read from the file only now: the value of a `set name=value`, or a mailbox.
    /// This is how a password (`imap_pass`, or a URL holding one) is read when the agent asks
    /// for an account's credential, and only then. `None` when mutt would compute the value
    /// while reading (`$name`, `` `command` ``, `+=`), which mailmend never does, or when the
    /// statement assigns no word.
    pub fn assigned_word(&self, stmt: usize) -> Option<Zeroizing<Vec<u8>>> {
        // The file parsed before, so it parses again the same way, statement for statement.
        let mut parsed = parse_statements(&self.bytes, true).ok()?;
        if parsed.len() != self.statements.len() {
            return None;
        }
        parsed.get_mut(stmt)?.2.take()
    }

    /// The line ending used most; `\n` on a tie or when there is none.
    pub fn line_ending(&self) -> LineEnding {
        let lf = self.bytes.iter().filter(|&&b| b == b'\n').count();
        let crlf = self.bytes.windows(2).filter(|w| w == b"\r\n").count();
        if crlf * 2 > lf {
            LineEnding::CrLf
        } else {
            LineEnding::Lf
        }
    }
}

/// An error at a byte offset; turned into a line and column when reported.
struct ErrAt {
    offset: usize,
    message: &'static str,
}

fn err(offset: usize, message: &'static str) -> ErrAt {
    ErrAt { offset, message }
}

/// A word as mutt reads it: the decoded bytes and, for each, its offset in the file (`None` for
/// a byte an escape sequence produced). Not `Debug`: it may hold a password.
struct Word {
    bytes: Vec<u8>,
    src: Vec<Option<usize>>,
    /// The offset of the word's first byte (perhaps a quote).
    start: usize,
    /// Whether mutt would expand a variable or run a command while reading it.
    dynamic: bool,
}

impl Word {
    fn text(&self) -> Option<String> {
        (!self.dynamic).then(|| String::from_utf8_lossy(&self.bytes).into_owned())
    }
}

/// The value of a word assigned to `name` (or given as an argument when `name` is empty).
fn value_of(name: &str, word: &Word) -> Value {
    if is_secret_name(name) {
        return Value::Withheld;
    }
    if word.dynamic {
        return Value::Dynamic;
    }
    if word.bytes.windows(3).any(|w| w == b"://") {
        return match parse_with_offsets(&word.bytes, &word.src) {
            Ok(u) => Value::Url(u),
            Err(_) => Value::BadUrl,
        };
    }
    Value::Text(String::from_utf8_lossy(&word.bytes).into_owned())
}

/// Mutt's `ISSPACE`.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Joins physical lines into the logical lines mutt reads, keeping each byte's file offset.
fn logical_lines(buf: &[u8]) -> Vec<Vec<(u8, usize)>> {
    let mut lines = Vec::new();
    let mut current = Vec::new();
    let mut start = 0;
    while start < buf.len() {
        let end = buf[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(buf.len(), |i| start + i);
        let mut content_end = end;
        if content_end > start && buf[content_end - 1] == b'\r' {
            content_end -= 1;
        }
        let continued = content_end > start && buf[content_end - 1] == b'\\';
        let keep_end = if continued {
            content_end - 1
        } else {
            content_end
        };
        current.extend((start..keep_end).map(|i| (buf[i], i)));
        if !continued {
            lines.push(std::mem::take(&mut current));
        }
        start = end + 1;
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

/// A statement at its offset, with the literal word it assigns when the parse captures words
/// (see [`MuttFile::assigned_word`]).
type Parsed = (usize, StatementKind, Option<Zeroizing<Vec<u8>>>);

fn parse_statements(buf: &[u8], capture: bool) -> Result<Vec<Parsed>, ErrAt> {
    if let Some(nul) = buf.iter().position(|&b| b == 0) {
        return Err(err(
            nul,
            "unexpected nul byte (mutt stops reading the line there)",
        ));
    }
    let mut out = Vec::new();
    for line in logical_lines(buf) {
        let end = line.last().map_or(0, |&(_, o)| o + 1);
        Line {
            chars: &line,
            p: 0,
            end,
            capture,
        }
        .commands(&mut out)?;
    }
    Ok(out)
}

/// What a `set`-family command does by default.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SetMode {
    Set,
    Unset,
    Reset,
    Toggle,
}

/// A cursor over one logical line.
struct Line<'a> {
    chars: &'a [(u8, usize)],
    p: usize,
    /// The file offset just after the line, for errors at its end.
    end: usize,
    /// Whether assigned words are kept (only when a credential is asked for).
    capture: bool,
}

impl Line<'_> {
    fn peek(&self) -> Option<u8> {
        self.chars.get(self.p).map(|&(c, _)| c)
    }

    fn peek_at(&self, k: usize) -> Option<u8> {
        self.chars.get(self.p + k).map(|&(c, _)| c)
    }

    fn offset(&self) -> usize {
        self.chars.get(self.p).map_or(self.end, |&(_, o)| o)
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.p += 1;
        }
    }

    /// Mutt's `MoreArgs`: the command goes on until `;`, `#` or the end of the line.
    fn more_args(&self) -> bool {
        self.peek().is_some_and(|c| c != b';' && c != b'#')
    }

    /// The word, when words are captured and mutt would not compute it while reading.
    fn keep(&self, word: &mut Word) -> Option<Zeroizing<Vec<u8>>> {
        (self.capture && !word.dynamic).then(|| Zeroizing::new(std::mem::take(&mut word.bytes)))
    }

    fn commands(&mut self, out: &mut Vec<Parsed>) -> Result<(), ErrAt> {
        loop {
            self.skip_ws();
            match self.peek() {
                None | Some(b'#') => return Ok(()),
                Some(b';') => {
                    self.p += 1;
                    continue;
                }
                Some(_) => {}
            }
            let name = self.word(false)?;
            let command = name.text().unwrap_or_default();
            match command.as_str() {
                "set" => self.set(SetMode::Set, out)?,
                "unset" => self.set(SetMode::Unset, out)?,
                "reset" => self.set(SetMode::Reset, out)?,
                "toggle" => self.set(SetMode::Toggle, out)?,
                "source" => {
                    while self.more_args() {
                        let w = self.word(false)?;
                        out.push((
                            w.start,
                            StatementKind::Source {
                                file: value_of("", &w),
                            },
                            None,
                        ));
                    }
                }
                "mailboxes" => self.mailboxes(false, out)?,
                "named-mailboxes" => self.mailboxes(true, out)?,
                c if c.ends_with("-hook") || c == "ifdef" || c == "ifndef" => {
                    self.rest()?;
                    out.push((name.start, StatementKind::Skipped { command }, None));
                }
                _ => self.rest()?,
            }
        }
    }

    /// Reads the arguments of a command mailmend does not use, for their syntax only.
    fn rest(&mut self) -> Result<(), ErrAt> {
        while self.more_args() {
            self.word(false)?;
        }
        Ok(())
    }

    fn mailboxes(&mut self, named: bool, out: &mut Vec<Parsed>) -> Result<(), ErrAt> {
        while self.more_args() {
            let w = self.word(false)?;
            // neomutt's and mutt 2.2's flags: `-label NAME` takes an argument.
            match w.text().as_deref() {
                Some("-label") => {
                    if self.more_args() {
                        self.word(false)?;
                    }
                    continue;
                }
                Some(flag) if flag.starts_with('-') => continue,
                _ => {}
            }
            let mut mailbox = if named {
                // The description comes first, then the mailbox.
                if !self.more_args() {
                    break;
                }
                self.word(false)?
            } else {
                w
            };
            let kind = StatementKind::Mailbox {
                mailbox: value_of("", &mailbox),
            };
            out.push((mailbox.start, kind, self.keep(&mut mailbox)));
        }
        Ok(())
    }

    fn set(&mut self, mode: SetMode, out: &mut Vec<Parsed>) -> Result<(), ErrAt> {
        while self.more_args() {
            let start = self.offset();
            let (mut query, mut reset, mut invert, mut unset) = (
                false,
                mode == SetMode::Reset,
                mode == SetMode::Toggle,
                mode == SetMode::Unset,
            );
            let at = |line: &Self, s: &[u8]| {
                s.iter()
                    .enumerate()
                    .all(|(k, &b)| line.peek_at(k) == Some(b))
            };
            if self.peek() == Some(b'?') {
                query = true;
                self.p += 1;
            } else if at(self, b"no") {
                unset = !unset;
                self.p += 2;
            } else if at(self, b"inv") {
                invert = !invert;
                self.p += 3;
            } else if self.peek() == Some(b'&') {
                reset = true;
                self.p += 1;
            }
            let name_word = self.word(true)?;
            let name = name_word.text().unwrap_or_default();
            if name.is_empty() {
                return Err(err(start, "expected a variable name"));
            }
            let mut word = None;
            let op = match self.peek() {
                Some(b'?') => {
                    self.p += 1;
                    self.skip_ws();
                    None
                }
                Some(b'+' | b'-') if self.peek_at(1) == Some(b'=') => {
                    self.p += 2;
                    self.skip_ws();
                    self.word(false)?;
                    Some(SetOp::Assign(if is_secret_name(&name) {
                        Value::Withheld
                    } else {
                        Value::Dynamic
                    }))
                }
                Some(b'=') => {
                    if mode != SetMode::Set || query || reset || invert || unset {
                        return Err(err(
                            self.offset(),
                            "only a plain `set name=value` may assign a value",
                        ));
                    }
                    self.p += 1;
                    self.skip_ws();
                    let mut value = self.word(false)?;
                    let op = SetOp::Assign(value_of(&name, &value));
                    word = self.keep(&mut value);
                    Some(op)
                }
                _ if query => None,
                _ if reset => Some(SetOp::Reset),
                _ if invert => Some(SetOp::Toggle),
                _ => Some(SetOp::Bool(!unset)),
            };
            if let Some(op) = op {
                out.push((start, StatementKind::Set { name, op }, word));
            }
        }
        Ok(())
    }

    /// Mutt's `mutt_extract_token`. `name` also stops at `=`, `?`, `+=` and `-=`, as mutt does
    /// for a variable name.
    fn word(&mut self, name: bool) -> Result<Word, ErrAt> {
        let mut w = Word {
            bytes: Vec::new(),
            src: Vec::new(),
            start: self.offset(),
            dynamic: false,
        };
        let mut quote: Option<(u8, usize)> = None;
        while let Some(&(c, off)) = self.chars.get(self.p) {
            if quote.is_none() {
                let stops_name = name
                    && (c == b'='
                        || c == b'?'
                        || ((c == b'+' || c == b'-') && self.peek_at(1) == Some(b'=')));
                if is_space(c) || c == b'#' || c == b';' || stops_name {
                    break;
                }
            }
            self.p += 1;
            let in_single = matches!(quote, Some((b'\'', _)));
            match c {
                _ if quote.is_some_and(|(q, _)| q == c) => quote = None,
                b'\'' | b'"' if quote.is_none() => quote = Some((c, off)),
                b'\\' if !in_single => {
                    let Some(e) = self.peek() else {
                        return Err(err(off, "a backslash with nothing after it to escape"));
                    };
                    self.p += 1;
                    let decoded = match e {
                        b'c' | b'C' => {
                            let Some(x) = self.peek() else {
                                return Err(err(off, "\\c needs a character after it"));
                            };
                            self.p += 1;
                            x.to_ascii_uppercase().wrapping_sub(b'@') & 0x7f
                        }
                        b'e' | b'E' => 0x1b,
                        b'f' => 0x0c,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        d if d.is_ascii_digit()
                            && self.peek().is_some_and(|x| x.is_ascii_digit())
                            && self.peek_at(1).is_some_and(|x| x.is_ascii_digit()) =>
                        {
                            let (d1, d2) = (self.chars[self.p].0, self.chars[self.p + 1].0);
                            self.p += 2;
                            // Mutt stores the sum in a char, so it wraps the same way.
                            ((u32::from(d - b'0') << 6)
                                + (u32::from(d1 - b'0') << 3)
                                + u32::from(d2 - b'0')) as u8
                        }
                        other => other,
                    };
                    w.bytes.push(decoded);
                    w.src.push(None);
                }
                b'`' if !in_single => {
                    loop {
                        match self.peek() {
                            None => return Err(err(off, "unterminated backtick command")),
                            Some(b'\\') => self.p += 2,
                            Some(b'`') => {
                                self.p += 1;
                                break;
                            }
                            Some(_) => self.p += 1,
                        }
                    }
                    w.dynamic = true;
                }
                b'$' if !in_single
                    && self
                        .peek()
                        .is_some_and(|x| x == b'{' || x.is_ascii_alphabetic()) =>
                {
                    if self.peek() == Some(b'{') {
                        match self.chars[self.p..].iter().position(|&(x, _)| x == b'}') {
                            Some(k) => self.p += k + 1,
                            None => return Err(err(off, "unterminated ${ variable reference")),
                        }
                    } else {
                        while self
                            .peek()
                            .is_some_and(|x| x.is_ascii_alphanumeric() || x == b'_')
                        {
                            self.p += 1;
                        }
                    }
                    w.dynamic = true;
                }
                _ => {
                    w.bytes.push(c);
                    w.src.push(Some(off));
                }
            }
        }
        if let Some((_, at)) = quote {
            return Err(err(at, "unterminated quote"));
        }
        self.skip_ws();
        Ok(w)
    }
}

/// Line starts, for turning byte offsets into 1-based lines and columns; lines end at `\n`.
struct LineIndex<'a> {
    buf: &'a [u8],
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(buf: &'a [u8]) -> LineIndex<'a> {
        let mut starts = vec![0];
        starts.extend(
            buf.iter()
                .enumerate()
                .filter(|(_, &b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { buf, starts }
    }

    fn position(&self, offset: usize) -> (usize, usize) {
        let line = self.starts.partition_point(|&s| s <= offset);
        // `starts[0]` is 0, so `line` is at least 1.
        let start = self.starts[line - 1];
        let end = offset.min(self.buf.len());
        let chars = self.buf[start.min(end)..end]
            .iter()
            .filter(|&&b| (b & 0xc0) != 0x80)
            .count();
        (line, chars + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets(text: &str) -> Vec<(String, SetOp)> {
        MuttFile::parse(text.as_bytes())
            .unwrap()
            .statements()
            .iter()
            .filter_map(|s| match &s.kind {
                StatementKind::Set { name, op } => Some((name.clone(), op.clone())),
                _ => None,
            })
            .collect()
    }

    fn text(s: &str) -> SetOp {
        SetOp::Assign(Value::Text(s.into()))
    }

    fn parse_err(s: &str) -> SyntaxError {
        MuttFile::parse(s.as_bytes()).unwrap_err()
    }

    #[test]
    fn quoting_and_escapes_decode_as_mutt_does() {
        let got = sets(concat!(
            "set realname='Ann \"the\" O\\'",
            "\n",
            "set from=\"Ann \\\"A\\\" <a@b.c>\"\n",
            "set signature=a\\ b\\tc\\101\n",
            "set editor=\"vim\"' '\"+3\"\n",
        ));
        assert_eq!(
            got,
            vec![
                ("realname".into(), text("Ann \"the\" O\\")),
                ("from".into(), text("Ann \"A\" <a@b.c>")),
                ("signature".into(), text("a b\tcA")),
                ("editor".into(), text("vim +3")),
            ]
        );
    }

    #[test]
    fn several_variables_spaces_around_equals_and_prefixes() {
        let got = sets("set a = x  b=y nossl_force_tls invmarkers &sort c\nset ?folder; set spoolfile?\nunset d e; toggle f; reset g\n");
        assert_eq!(
            got,
            vec![
                ("a".into(), text("x")),
                ("b".into(), text("y")),
                ("ssl_force_tls".into(), SetOp::Bool(false)),
                ("markers".into(), SetOp::Toggle),
                ("sort".into(), SetOp::Reset),
                ("c".into(), SetOp::Bool(true)),
                ("d".into(), SetOp::Bool(false)),
                ("e".into(), SetOp::Bool(false)),
                ("f".into(), SetOp::Toggle),
                ("g".into(), SetOp::Reset),
            ]
        );
    }

    #[test]
    fn comments_end_words_and_lines_unless_quoted() {
        let got = sets("# set a=1\nset b=x#y c=z\nset d=\"p#q\" # e=1\n  # indented\n");
        assert_eq!(
            got,
            vec![("b".into(), text("x")), ("d".into(), text("p#q"))]
        );
    }

    #[test]
    fn a_backslash_at_the_end_of_a_line_continues_it_even_in_a_comment() {
        let got = sets("set a=\"x\\\ny\" b=1\r\n# comment \\\nset c=2\nset \\\r\nd=3\n");
        assert_eq!(
            got,
            vec![
                ("a".into(), text("xy")),
                ("b".into(), text("1")),
                ("d".into(), text("3")),
            ]
        );
    }

    #[test]
    fn variables_and_commands_make_a_value_dynamic() {
        let got =
            sets("set folder=\"imaps://$my_user@host/\" a=`pass x` b='$lit' c+=x d=${HOME}/m\n");
        assert_eq!(
            got,
            vec![
                ("folder".into(), SetOp::Assign(Value::Dynamic)),
                ("a".into(), SetOp::Assign(Value::Dynamic)),
                ("b".into(), text("$lit")),
                ("c".into(), SetOp::Assign(Value::Dynamic)),
                ("d".into(), SetOp::Assign(Value::Dynamic)),
            ]
        );
    }

    #[test]
    fn secret_values_are_withheld() {
        let f =
            MuttFile::parse(b"set imap_pass=\"hunter2\" smtp_pass='x' my_password=`p`\n").unwrap();
        for s in f.statements() {
            assert!(matches!(
                &s.kind,
                StatementKind::Set {
                    op: SetOp::Assign(Value::Withheld),
                    ..
                }
            ));
        }
    }

    #[test]
    fn url_spans_point_into_the_quoted_text() {
        let src = "set folder = \"imaps://ann@imap.example.com:993/\"\n";
        let f = MuttFile::parse(src.as_bytes()).unwrap();
        let StatementKind::Set {
            op: SetOp::Assign(Value::Url(u)),
            ..
        } = &f.statements()[0].kind
        else {
            panic!("no url")
        };
        assert_eq!(&src[u.spans.scheme.clone().unwrap()], "imaps");
        assert_eq!(&src[u.spans.host.clone().unwrap()], "imap.example.com");
        assert_eq!(&src[u.spans.port.clone().unwrap()], "993");
    }

    #[test]
    fn sources_mailboxes_and_hooks_are_statements() {
        let f = MuttFile::parse(
            b"source ~/.mutt/a 'b c'\nmailboxes -label x +INBOX imaps://h/L\nnamed-mailboxes Work imap://w/ Home =x\nfolder-hook . 'set imap_pass=x'\n",
        )
        .unwrap();
        let kinds: Vec<&StatementKind> = f.statements().iter().map(|s| &s.kind).collect();
        assert_eq!(kinds.len(), 7);
        assert_eq!(
            kinds[0],
            &StatementKind::Source {
                file: Value::Text("~/.mutt/a".into())
            }
        );
        assert_eq!(
            kinds[1],
            &StatementKind::Source {
                file: Value::Text("b c".into())
            }
        );
        assert_eq!(
            kinds[2],
            &StatementKind::Mailbox {
                mailbox: Value::Text("+INBOX".into())
            }
        );
        assert!(
            matches!(kinds[3], StatementKind::Mailbox { mailbox: Value::Url(u) } if u.host == "h")
        );
        assert!(
            matches!(kinds[4], StatementKind::Mailbox { mailbox: Value::Url(u) } if u.host == "w")
        );
        assert_eq!(
            kinds[5],
            &StatementKind::Mailbox {
                mailbox: Value::Text("=x".into())
            }
        );
        assert_eq!(
            kinds[6],
            &StatementKind::Skipped {
                command: "folder-hook".into()
            }
        );
    }

    #[test]
    fn errors_carry_line_and_column() {
        let e = parse_err("set a=1\nset b=\"open\n");
        assert_eq!((e.line, e.column), (2, 7));
        assert!(e.message.contains("unterminated quote"));
        let e = parse_err("set é=`cmd\n");
        assert_eq!((e.line, e.column), (1, 7));
        let e = parse_err("set a=1\r\nset b=${X\r\n");
        assert_eq!((e.line, e.column), (2, 7));
        let e = parse_err("set a=b\0\n");
        assert_eq!((e.line, e.column), (1, 8));
        let e = parse_err("unset a=b\n");
        assert!(e.message.contains("assign"));
        let e = parse_err("set =x\n");
        assert_eq!((e.line, e.column), (1, 5));
        let e = parse_err("set a=x\\\\\n");
        assert!(e.message.contains("backslash"));
    }

    #[test]
    fn statements_know_their_position() {
        let f = MuttFile::parse("# x\r\n  set a=1 b=2\r\n".as_bytes()).unwrap();
        let pos: Vec<(usize, usize)> = f.statements().iter().map(|s| (s.line, s.column)).collect();
        assert_eq!(pos, vec![(2, 7), (2, 11)]);
        assert_eq!(f.line_ending(), LineEnding::CrLf);
    }
}
