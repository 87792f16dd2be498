//! A lossless parser and editor for mbsync (isync) configuration files (`~/.mbsyncrc`,
//! `~/.config/isyncrc`), following how isync 1.4 reads them.
//!
//! The rules, from isync's `config.c` and `drv_imap.c` and checked against the real mbsync in
//! this crate's tests:
//!
//! - A line is a keyword and its arguments. Arguments are separated by whitespace; `"` starts
//!   and ends quoting anywhere in an argument, and `\` takes the next character literally. A `#`
//!   at the start of an argument comments out the rest of the line. Keywords are
//!   case-insensitive.
//! - A section starts with `IMAPAccount`, `IMAPStore`, `MaildirStore`, `Channel` or `Group` and
//!   ends at the next line that is empty or holds only whitespace. Comment lines do not end it.
//! - An `IMAPAccount` (or an `IMAPStore` without `Account`) holds the server: `Host` (the
//!   deprecated `imaps:` prefix selects TLS), `Port` (0 or absent: 993 for IMAPS, else 143),
//!   `User`, `SSLType` (1.5: `TLSType`) `None|STARTTLS|IMAPS` (default STARTTLS, or None with a
//!   `Tunnel`), the deprecated `UseIMAPS`/`RequireSSL`/`UseTLSv1*` (which must not be mixed
//!   with `SSLType`), and `AuthMechs` (default `*`).
//!
//! The parser keeps the file's bytes and the span of every argument, so that
//! [`MbsyncFile::set`] rewrites exactly one line's arguments or inserts exactly one line, and
//! every other byte (comments, order, blank lines, CRLF) stays as it was. Unknown keywords are
//! kept as they are, so that a newer isync's options do not make a file unreadable. The
//! arguments of `Pass`, `PassCmd` and every other keyword mailmend does not interpret are never
//! decoded into any value.

use std::fmt;
use std::ops::Range;

/// The longest line mbsync reads whole (its buffer holds 1023 bytes and the terminating nul).
pub const MAX_LINE: usize = 1022;

/// A syntax error, at a 1-based line and column (columns count characters). The message never
/// quotes the file, which may hold a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Why [`MbsyncFile::set`] refused a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SetError {
    /// The section is not (or no longer) in the file.
    #[error("section {0} not found")]
    NoSection(String),
    /// The value cannot be written as mbsync arguments (a line break, a quote, a backslash or a
    /// leading `#`), or the keyword is one mailmend never writes.
    #[error("cannot write {keyword}: {reason}")]
    InvalidValue {
        keyword: String,
        reason: &'static str,
    },
    /// The edited file did not read back; this is a bug in the writer, and the file was left
    /// unchanged.
    #[error("writing {keyword} did not read back: {detail}")]
    WriteCheck { keyword: String, detail: String },
}

/// One argument: its bytes as written (quotes and escapes included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub raw: Range<usize>,
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
    /// The keyword and its arguments; empty for an empty or comment line.
    pub tokens: Vec<Token>,
    /// Whether the line is only a comment (which, unlike an empty line, does not end a section).
    pub comment: bool,
}

// Spans only: an argument may be a password.
impl fmt::Debug for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Line")
            .field("number", &self.number)
            .field("span", &self.span)
            .field("tokens", &self.tokens.len())
            .finish()
    }
}

impl Line {
    /// Whether the line ends a section: nothing but whitespace.
    pub fn is_blank(&self) -> bool {
        self.tokens.is_empty() && !self.comment
    }
}

/// Connection security as mbsync names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    None,
    StartTls,
    Imaps,
}

impl TlsMode {
    pub fn keyword(self) -> &'static str {
        match self {
            TlsMode::None => "None",
            TlsMode::StartTls => "STARTTLS",
            TlsMode::Imaps => "IMAPS",
        }
    }
}

/// The kind of a section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionKind {
    ImapAccount,
    ImapStore,
    /// `Group`, whose `Channel` lines name its members.
    Group,
    /// `MaildirStore`, `Channel`: kept, not interpreted.
    Other,
}

/// A value and the line (an index into [`MbsyncFile::lines`]) that set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
    pub line: usize,
}

/// The server settings of an `IMAPAccount`, or of an `IMAPStore` that holds them itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Server {
    /// The host name without any `imap:`/`imaps:` and `//` prefix.
    pub host: Option<Setting<String>>,
    /// How many bytes of the `Host` argument's value are a URL prefix.
    pub host_prefix: usize,
    /// `Port`; 0 means the default.
    pub port: Option<Setting<u16>>,
    pub user: Option<Setting<String>>,
    pub user_cmd: bool,
    pub pass: bool,
    pub pass_cmd: bool,
    /// The security chosen by `SSLType`/`TLSType` or an `imaps:` host, whichever came last.
    pub ssl_type: Option<Setting<TlsMode>>,
    /// Whether `SSLVersions`/`TLSVersions` (or an `imaps:` host) set the TLS versions.
    pub ssl_versions: bool,
    pub use_imaps: Option<Setting<bool>>,
    pub require_ssl: Option<Setting<bool>>,
    /// `UseTLSv1`, `UseTLSv1.1`, `UseTLSv1.2`, `UseTLSv1.3`.
    pub use_tls: [Option<bool>; 4],
    /// Every mechanism of every `AuthMech(s)` line, upper-cased, in order.
    pub auth_mechs: Vec<String>,
    /// The `AuthMech(s)` lines.
    pub auth_lines: Vec<usize>,
    pub require_cram: Option<Setting<bool>>,
    pub tunnel: bool,
}

impl Server {
    /// Whether any deprecated security option is used.
    pub fn legacy(&self) -> bool {
        self.use_imaps.is_some()
            || self.require_ssl.is_some()
            || self.use_tls.iter().any(Option::is_some)
    }

    /// The security mbsync uses, or why mbsync refuses the section.
    pub fn security(&self) -> Result<TlsMode, &'static str> {
        if !self.legacy() {
            return Ok(match &self.ssl_type {
                Some(s) => s.value,
                None if self.tunnel => TlsMode::None,
                None => TlsMode::StartTls,
            });
        }
        if self.ssl_type.is_some() || self.ssl_versions {
            return Err(
                "the deprecated UseIMAPS, RequireSSL and UseTLS options cannot be mixed \
                        with SSLType or SSLVersions",
            );
        }
        let on = |v: Option<bool>| v == Some(true);
        let versions = self.use_tls[0] != Some(false)
            || on(self.use_tls[1])
            || on(self.use_tls[2])
            || on(self.use_tls[3]);
        let mode = if on(self.use_imaps.as_ref().map(|s| s.value)) {
            TlsMode::Imaps
        } else if self.require_ssl.as_ref().is_none_or(|s| s.value) {
            // Unset, RequireSSL counts as yes.
            TlsMode::StartTls
        } else if !versions {
            TlsMode::None
        } else {
            // mbsync: "'RequireSSL no' is being ignored".
            TlsMode::StartTls
        };
        if mode != TlsMode::None && !versions {
            return Err("the section requires TLS but enables no TLS version");
        }
        Ok(mode)
    }

    /// The port written in the section, when not 0.
    pub fn explicit_port(&self) -> Option<u16> {
        self.port.as_ref().map(|p| p.value).filter(|&p| p != 0)
    }

    pub fn default_port(mode: TlsMode) -> u16 {
        if mode == TlsMode::Imaps {
            993
        } else {
            143
        }
    }
}

/// A section of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub kind: SectionKind,
    pub name: String,
    /// The section's first line.
    pub header: usize,
    /// Its lines, from the header to the line before the empty line (or the end) closing it.
    pub lines: Range<usize>,
    /// The last line holding a keyword, after which new settings are inserted.
    pub last_command: usize,
    /// For an `IMAPStore`: the account named by `Account`.
    pub account: Option<String>,
    /// The server settings (`IMAPAccount`, or an `IMAPStore` holding them itself).
    pub server: Server,
    /// Whether the section sets server options itself (always for an `IMAPAccount`).
    pub has_server_options: bool,
}

impl Section {
    /// The key mailmend knows this server by: the account's name, or `store:NAME` for an
    /// `IMAPStore` holding its server settings itself.
    pub fn key(&self) -> String {
        match self.kind {
            SectionKind::ImapStore => format!("store:{}", self.name),
            _ => self.name.clone(),
        }
    }

    /// Whether the section defines a server mailmend can check.
    pub fn is_server(&self) -> bool {
        match self.kind {
            SectionKind::ImapAccount => true,
            SectionKind::ImapStore => self.account.is_none(),
            SectionKind::Group | SectionKind::Other => false,
        }
    }
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

/// A parsed mbsync configuration file.
#[derive(Clone, PartialEq, Eq)]
pub struct MbsyncFile {
    bytes: Vec<u8>,
    lines: Vec<Line>,
    sections: Vec<Section>,
}

// The bytes may hold a password, so the debug form shows only their shape.
impl fmt::Debug for MbsyncFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MbsyncFile")
            .field("len", &self.bytes.len())
            .field("lines", &self.lines.len())
            .field(
                "sections",
                &self.sections.iter().map(|s| s.key()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// C's `isspace` in the C locale.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Decodes an argument as mbsync's `get_arg` does: quotes removed, escapes resolved.
pub fn decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut escaped = false;
    for &c in raw {
        if escaped && c >= 32 {
            escaped = false;
            out.push(c);
        } else if c == b'\\' {
            escaped = true;
        } else if c != b'"' {
            out.push(c);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// [`decode`] into a buffer that is zeroed on drop, for a password. Not lossy: the bytes are
/// sent as written.
fn decode_secret(raw: &[u8]) -> zeroize::Zeroizing<Vec<u8>> {
    let mut out = zeroize::Zeroizing::new(Vec::with_capacity(raw.len()));
    let mut escaped = false;
    for &c in raw {
        if escaped && c >= 32 {
            escaped = false;
            out.push(c);
        } else if c == b'\\' {
            escaped = true;
        } else if c != b'"' {
            out.push(c);
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

/// The keywords that start a section.
fn section_kind(keyword: &str) -> Option<SectionKind> {
    match keyword {
        "imapaccount" => Some(SectionKind::ImapAccount),
        "imapstore" => Some(SectionKind::ImapStore),
        "group" => Some(SectionKind::Group),
        "maildirstore" | "channel" => Some(SectionKind::Other),
        _ => None,
    }
}

/// The keywords of a server (`IMAPAccount`, or an `IMAPStore` holding its server itself).
const SERVER_KEYWORDS: &[&str] = &[
    "host",
    "port",
    "timeout",
    "user",
    "usercmd",
    "pass",
    "passcmd",
    "usekeychain",
    "tunnel",
    "authmech",
    "authmechs",
    "requirecram",
    "ssltype",
    "tlstype",
    "sslversion",
    "sslversions",
    "tlsversions",
    "useimaps",
    "requiressl",
    "usesslv2",
    "usesslv3",
    "usetlsv1",
    "usetlsv1.1",
    "usetlsv1.2",
    "usetlsv1.3",
    "certificatefile",
    "systemcertificates",
    "clientcertificate",
    "clientkey",
    "cipherstring",
    "pipelinedepth",
    "disableextension",
    "disableextensions",
];

fn parse_bool(v: &str) -> Option<bool> {
    let l = v.to_ascii_lowercase();
    match l.as_str() {
        "yes" | "true" | "on" | "1" => Some(true),
        "no" | "false" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// mbsync's `parse_int` for a port: `strtol(s, &end, 10)` with nothing after the number.
fn parse_port(v: &str) -> Option<u16> {
    let t = v.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let digits = t.strip_prefix('+').unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u16>().ok()
}

struct Parser<'a> {
    bytes: &'a [u8],
    lines: Vec<Line>,
    sections: Vec<Section>,
    /// The section being read.
    open: Option<usize>,
}

impl<'a> Parser<'a> {
    fn error(&self, line: &Line, offset: usize, message: impl Into<String>) -> SyntaxError {
        let end = offset.clamp(line.span.start, line.span.end);
        SyntaxError {
            line: line.number,
            column: String::from_utf8_lossy(&self.bytes[line.span.start..end])
                .chars()
                .count()
                + 1,
            message: message.into(),
        }
    }

    /// Splits a line into arguments as `get_arg` does.
    fn tokens(&self, line: &Line) -> Result<(Vec<Token>, bool), SyntaxError> {
        let b = self.bytes;
        let mut tokens = Vec::new();
        let mut p = line.span.start;
        let end = line.span.end;
        loop {
            while p < end && is_space(b[p]) {
                p += 1;
            }
            if p >= end {
                return Ok((tokens, false));
            }
            if b[p] == b'#' {
                return Ok((tokens, true));
            }
            let start = p;
            let (mut escaped, mut quoted) = (false, false);
            while p < end {
                let c = b[p];
                if escaped && c >= 32 {
                    escaped = false;
                } else if c == b'\\' {
                    escaped = true;
                } else if c == b'"' {
                    quoted = !quoted;
                } else if !quoted && is_space(c) {
                    break;
                }
                p += 1;
            }
            if escaped {
                return Err(self.error(line, start, "unterminated escape sequence"));
            }
            if quoted {
                return Err(self.error(line, start, "missing closing quote"));
            }
            tokens.push(Token { raw: start..p });
        }
    }

    fn parse(mut self) -> Result<(Vec<Line>, Vec<Section>), SyntaxError> {
        for (i, (span, next)) in split_lines(self.bytes).into_iter().enumerate() {
            let mut line = Line {
                number: i + 1,
                span,
                next,
                tokens: Vec::new(),
                comment: false,
            };
            if line.span.end - line.span.start > MAX_LINE {
                return Err(self.error(
                    &line,
                    line.span.start + MAX_LINE,
                    format!("line longer than {MAX_LINE} bytes, which mbsync cannot read"),
                ));
            }
            if let Some(p) = self.bytes[line.span.clone()].iter().position(|&b| b == 0) {
                return Err(self.error(&line, line.span.start + p, "nul byte"));
            }
            let (tokens, comment) = self.tokens(&line)?;
            line.tokens = tokens;
            line.comment = comment && line.tokens.is_empty();
            self.line(i, &line)?;
            self.lines.push(line);
        }
        if let Some(s) = self.open.take() {
            self.close(s, self.lines.len())?;
        }
        Ok((self.lines, self.sections))
    }

    fn value(&self, t: &Token) -> String {
        decode(&self.bytes[t.raw.clone()])
    }

    fn line(&mut self, index: usize, line: &Line) -> Result<(), SyntaxError> {
        if line.is_blank() {
            if let Some(s) = self.open.take() {
                self.close(s, index)?;
            }
            return Ok(());
        }
        let Some(first) = line.tokens.first() else {
            return Ok(()); // a comment line
        };
        let keyword = self.value(first).to_ascii_lowercase();
        if line.tokens.len() < 2 {
            return Err(self.error(line, line.span.end, "parameter missing"));
        }
        let in_group = self
            .open
            .is_some_and(|s| self.sections[s].kind == SectionKind::Group);
        let member = in_group && (keyword == "channel" || keyword == "channels");
        if let Some(kind) = section_kind(&keyword).filter(|_| !member) {
            if self.open.is_some() {
                return Err(self.error(
                    line,
                    first.raw.start,
                    "a new section must be separated from the previous one by an empty line",
                ));
            }
            let name = self.value(&line.tokens[1]);
            self.sections.push(Section {
                kind,
                name,
                header: index,
                lines: index..index,
                last_command: index,
                account: None,
                server: Server::default(),
                has_server_options: kind == SectionKind::ImapAccount,
            });
            self.open = Some(self.sections.len() - 1);
            if matches!(kind, SectionKind::ImapAccount | SectionKind::ImapStore)
                && line.tokens.len() > 2
            {
                return Err(self.error(line, line.tokens[2].raw.start, "excess token"));
            }
            return Ok(());
        }
        let Some(s) = self.open else {
            if SERVER_KEYWORDS.contains(&keyword.as_str()) || keyword == "account" {
                return Err(self.error(
                    line,
                    first.raw.start,
                    "server option outside a section; an empty line ends a section",
                ));
            }
            return Ok(()); // a global option
        };
        self.sections[s].last_command = index;
        let kind = self.sections[s].kind;
        if matches!(kind, SectionKind::Group | SectionKind::Other) {
            return Ok(());
        }
        if kind == SectionKind::ImapStore && keyword == "account" {
            let name = self.value(&line.tokens[1]);
            let known = self
                .sections
                .iter()
                .any(|o| o.kind == SectionKind::ImapAccount && o.name == name);
            if !known {
                return Err(self.error(line, line.tokens[1].raw.start, "unknown IMAP account"));
            }
            self.sections[s].account = Some(name);
            return self.single(line);
        }
        if SERVER_KEYWORDS.contains(&keyword.as_str()) {
            self.sections[s].has_server_options = true;
        }
        self.server_option(s, index, line, &keyword)
    }

    /// Rejects arguments after the first, as mbsync does for single-valued options.
    fn single(&self, line: &Line) -> Result<(), SyntaxError> {
        match line.tokens.get(2) {
            Some(t) => Err(self.error(line, t.raw.start, "excess token")),
            None => Ok(()),
        }
    }

    fn server_option(
        &mut self,
        s: usize,
        index: usize,
        line: &Line,
        keyword: &str,
    ) -> Result<(), SyntaxError> {
        let arg = &line.tokens[1];
        let at = arg.raw.start;
        match keyword {
            "host" => {
                self.single(line)?;
                let v = self.value(arg);
                let mut prefix = 0;
                let mut imaps = false;
                if v.starts_with("imaps:") {
                    prefix = 6;
                    imaps = true;
                } else if v.starts_with("imap:") {
                    prefix = 5;
                }
                if v[prefix..].starts_with("//") {
                    prefix += 2;
                }
                let server = &mut self.sections[s].server;
                if imaps {
                    server.ssl_type = Some(Setting {
                        value: TlsMode::Imaps,
                        line: index,
                    });
                    server.ssl_versions = true;
                }
                server.host_prefix = prefix;
                server.host = Some(Setting {
                    value: v[prefix..].to_string(),
                    line: index,
                });
            }
            "port" => {
                self.single(line)?;
                let port = parse_port(&self.value(arg))
                    .ok_or_else(|| self.error(line, at, "invalid port number"))?;
                self.sections[s].server.port = Some(Setting {
                    value: port,
                    line: index,
                });
            }
            "user" => {
                self.single(line)?;
                let v = self.value(arg);
                self.sections[s].server.user = Some(Setting {
                    value: v,
                    line: index,
                });
            }
            "usercmd" => self.sections[s].server.user_cmd = true,
            "pass" => self.sections[s].server.pass = true,
            "passcmd" => self.sections[s].server.pass_cmd = true,
            "tunnel" => self.sections[s].server.tunnel = true,
            "ssltype" | "tlstype" => {
                self.single(line)?;
                let mode = match self.value(arg).to_ascii_lowercase().as_str() {
                    "none" => TlsMode::None,
                    "starttls" => TlsMode::StartTls,
                    "imaps" => TlsMode::Imaps,
                    _ => return Err(self.error(line, at, "invalid TLS type")),
                };
                self.sections[s].server.ssl_type = Some(Setting {
                    value: mode,
                    line: index,
                });
            }
            "sslversion" | "sslversions" | "tlsversions" => {
                self.sections[s].server.ssl_versions = true;
            }
            "useimaps" | "requiressl" | "usetlsv1" | "usetlsv1.1" | "usetlsv1.2" | "usetlsv1.3"
            | "requirecram" => {
                self.single(line)?;
                let v = parse_bool(&self.value(arg))
                    .ok_or_else(|| self.error(line, at, "invalid boolean value"))?;
                let server = &mut self.sections[s].server;
                match keyword {
                    "useimaps" => {
                        server.use_imaps = Some(Setting {
                            value: v,
                            line: index,
                        })
                    }
                    "requiressl" => {
                        server.require_ssl = Some(Setting {
                            value: v,
                            line: index,
                        })
                    }
                    "requirecram" => {
                        server.require_cram = Some(Setting {
                            value: v,
                            line: index,
                        })
                    }
                    "usetlsv1" => server.use_tls[0] = Some(v),
                    "usetlsv1.1" => server.use_tls[1] = Some(v),
                    "usetlsv1.2" => server.use_tls[2] = Some(v),
                    _ => server.use_tls[3] = Some(v),
                }
            }
            "authmech" | "authmechs" => {
                let mechs: Vec<String> = line.tokens[1..]
                    .iter()
                    .map(|t| self.value(t).to_ascii_uppercase())
                    .collect();
                let server = &mut self.sections[s].server;
                server.auth_mechs.extend(mechs);
                server.auth_lines.push(index);
            }
            // Everything else (certificates, timeouts, store options, a newer isync's options)
            // is kept as written.
            _ => {}
        }
        Ok(())
    }

    /// Checks a finished section as mbsync does once it has read it.
    fn close(&mut self, s: usize, end: usize) -> Result<(), SyntaxError> {
        self.sections[s].lines.end = end;
        let section = &self.sections[s];
        if matches!(section.kind, SectionKind::Group | SectionKind::Other) {
            return Ok(());
        }
        let header = &self.lines[section.header];
        let fail = |message: &str| self.error(header, header.span.start, message);
        if section.kind == SectionKind::ImapStore && section.account.is_some() {
            if section.has_server_options {
                return Err(fail("the store has both Account and server options"));
            }
            return Ok(());
        }
        let server = &section.server;
        let has_host = server.host.as_ref().is_some_and(|h| !h.value.is_empty());
        if !server.tunnel && !has_host {
            return Err(fail("the section has neither Tunnel nor Host"));
        }
        if server.user.is_some() && server.user_cmd {
            return Err(fail("the section has both User and UserCmd"));
        }
        if server.pass && server.pass_cmd {
            return Err(fail("the section has both Pass and PassCmd"));
        }
        if server.require_cram.is_some() && !server.auth_lines.is_empty() {
            return Err(fail(
                "the deprecated RequireCRAM cannot be mixed with AuthMechs",
            ));
        }
        server.security().map_err(fail)?;
        Ok(())
    }
}

impl MbsyncFile {
    /// Parses a whole file. Any error that makes mbsync refuse the file rejects it.
    pub fn parse(bytes: &[u8]) -> Result<MbsyncFile, SyntaxError> {
        let parser = Parser {
            bytes,
            lines: Vec::new(),
            sections: Vec::new(),
            open: None,
        };
        let (lines, sections) = parser.parse()?;
        Ok(MbsyncFile {
            bytes: bytes.to_vec(),
            lines,
            sections,
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

    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// The first section defining a server with this key (mbsync, too, uses the first of
    /// several sections with the same name).
    pub fn server(&self, key: &str) -> Option<&Section> {
        self.sections
            .iter()
            .find(|s| s.is_server() && s.key() == key)
    }

    /// The password mbsync uses for the server section `key`, read from the file only now: the
    /// argument of its last `Pass` line. `None` with `PassCmd` or `UseKeychain` (a command or a
    /// keychain, never used by mailmend) or without `Pass` (mbsync then asks the user).
    pub fn password(&self, key: &str) -> Option<mailmend_core::Secret> {
        let section = self.server(key)?;
        if section.server.pass_cmd || self.find(section, &["passcmd", "usekeychain"]).is_some() {
            return None;
        }
        let line = self.find(section, &["pass"])?;
        let token = self.lines.get(line)?.tokens.get(1)?;
        let value = decode_secret(self.bytes.get(token.raw.clone())?);
        (!value.is_empty()).then(|| mailmend_core::Secret::new(value.to_vec()))
    }

    /// The keyword of `line`, as written.
    pub fn keyword(&self, line: usize) -> Option<String> {
        let t = self.lines.get(line)?.tokens.first()?;
        Some(decode(&self.bytes[t.raw.clone()]))
    }

    /// Whether any server section of the file uses `keyword` (case-insensitive).
    pub fn uses_keyword(&self, keyword: &str) -> bool {
        self.sections.iter().filter(|s| s.is_server()).any(|s| {
            s.lines.clone().any(|i| {
                self.keyword(i)
                    .is_some_and(|k| k.eq_ignore_ascii_case(keyword))
            })
        })
    }

    /// The last line of the section whose keyword is one of `keywords`.
    pub fn find(&self, section: &Section, keywords: &[&str]) -> Option<usize> {
        section.lines.clone().rev().find(|&i| {
            self.keyword(i)
                .is_some_and(|k| keywords.iter().any(|w| k.eq_ignore_ascii_case(w)))
        })
    }

    /// The line ending used most in the file; `\n` when it has none or on a tie.
    pub fn line_ending(&self) -> LineEnding {
        let crlf = self.bytes.windows(2).filter(|w| w == b"\r\n").count();
        let lf = self.bytes.iter().filter(|&&b| b == b'\n').count() - crlf;
        if crlf > lf {
            LineEnding::CrLf
        } else {
            LineEnding::Lf
        }
    }

    /// Sets the server section `key`'s option to `value`: the last line whose keyword is one of
    /// `keywords` has its arguments rewritten (keeping the quotes of a quoted single argument),
    /// or a line `keywords[0] value` is inserted after the section's last line with a keyword.
    /// `value` may hold several space-separated arguments. Returns whether the bytes changed.
    pub fn set(&mut self, key: &str, keywords: &[&str], value: &str) -> Result<bool, SetError> {
        let keyword = keywords.first().copied().unwrap_or_default().to_string();
        let invalid = |reason| SetError::InvalidValue {
            keyword: keyword.clone(),
            reason,
        };
        let secret = ["pass", "passcmd", "usercmd"];
        if keywords
            .iter()
            .any(|k| secret.contains(&k.to_ascii_lowercase().as_str()))
        {
            return Err(invalid("mailmend never writes credentials"));
        }
        if value.is_empty() || value.split(' ').any(str::is_empty) {
            return Err(invalid(
                "arguments must be non-empty and separated by one space",
            ));
        }
        if value
            .chars()
            .any(|c| c == '"' || c == '\\' || c.is_control() || c == '\t')
            || value.split(' ').any(|t| t.starts_with('#'))
        {
            return Err(invalid(
                "an argument cannot hold quotes, backslashes or a leading #",
            ));
        }
        let section = self
            .server(key)
            .ok_or_else(|| SetError::NoSection(key.to_string()))?;
        let mut bytes = self.bytes.clone();
        match self.find(section, keywords) {
            Some(i) => {
                let line = &self.lines[i];
                let args = &line.tokens[1..];
                let (first, last) = (&args[0], &args[args.len() - 1]);
                let current: Vec<String> = args
                    .iter()
                    .map(|t| decode(&self.bytes[t.raw.clone()]))
                    .collect();
                if current.join(" ") == value {
                    return Ok(false);
                }
                let raw = &self.bytes[first.raw.clone()];
                let quoted = args.len() == 1
                    && raw.len() >= 2
                    && raw.starts_with(b"\"")
                    && raw.ends_with(b"\"")
                    && !raw[1..raw.len() - 1].contains(&b'"')
                    && !raw.contains(&b'\\');
                let text = if quoted && !value.contains(' ') {
                    format!("\"{value}\"")
                } else {
                    value.to_string()
                };
                bytes.splice(first.raw.start..last.raw.end, text.into_bytes());
            }
            None => {
                let line = self.new_line(section, &keyword, value);
                let after = &self.lines[section.last_command];
                let eol = self.line_ending().as_str();
                let insert = if after.next == after.span.end {
                    format!("{eol}{line}")
                } else {
                    format!("{line}{eol}")
                };
                bytes.splice(after.next..after.next, insert.into_bytes());
            }
        }
        let reparsed = MbsyncFile::parse(&bytes).map_err(|e| SetError::WriteCheck {
            keyword: keyword.clone(),
            detail: e.to_string(),
        })?;
        let reads_back = reparsed
            .server(key)
            .and_then(|s| reparsed.find(s, keywords))
            .map(|i| {
                reparsed.lines[i].tokens[1..]
                    .iter()
                    .map(|t| decode(&reparsed.bytes[t.raw.clone()]))
                    .collect::<Vec<_>>()
                    .join(" ")
                    == value
            })
            .unwrap_or(false);
        if !reads_back {
            return Err(SetError::WriteCheck {
                keyword,
                detail: "the value read back differs".into(),
            });
        }
        *self = reparsed;
        Ok(true)
    }

    /// A new option line shaped like the section's last option line: same indentation, and the
    /// argument in the same column when that line aligns it with several spaces.
    fn new_line(&self, section: &Section, keyword: &str, value: &str) -> String {
        let reference = section
            .lines
            .clone()
            .rev()
            .filter(|&i| i != section.header)
            .map(|i| &self.lines[i])
            .find(|l| l.tokens.len() >= 2);
        let Some(r) = reference else {
            return format!("{keyword} {value}");
        };
        let (k, a) = (&r.tokens[0], &r.tokens[1]);
        let indent = String::from_utf8_lossy(&self.bytes[r.span.start..k.raw.start]).into_owned();
        let gap = &self.bytes[k.raw.end..a.raw.start];
        let sep = if gap.len() > 1 && gap.iter().all(|&b| b == b' ') {
            " ".repeat(
                (a.raw.start - k.raw.start)
                    .saturating_sub(keyword.len())
                    .max(1),
            )
        } else {
            String::from_utf8_lossy(gap).into_owned()
        };
        format!("{indent}{keyword}{sep}{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_decode_like_get_arg() {
        assert_eq!(decode(br#""a b""#), "a b");
        assert_eq!(decode(br#"ab"c d"e"#), "abc de");
        assert_eq!(decode(br#"a\"b\\c"#), "a\"b\\c");
        assert_eq!(decode(br#"\x"#), "x");
    }

    #[test]
    fn ports_read_like_parse_int() {
        assert_eq!(parse_port("993"), Some(993));
        assert_eq!(parse_port("+993"), Some(993));
        assert_eq!(parse_port("0"), Some(0));
        assert_eq!(parse_port("0x3e1"), None);
        assert_eq!(parse_port("-1"), None);
        assert_eq!(parse_port("70000"), None);
        assert_eq!(parse_port(""), None);
    }

    #[test]
    fn deprecated_options_resolve_like_isync_1_4() {
        let mode = |text: &str| {
            let f = MbsyncFile::parse(format!("IMAPAccount a\nHost h\n{text}").as_bytes())
                .map_err(|e| e.message)?;
            f.sections()[0].server.security().map_err(str::to_string)
        };
        assert_eq!(mode(""), Ok(TlsMode::StartTls));
        assert_eq!(mode("Tunnel \"ssh h imapd\"\n"), Ok(TlsMode::None));
        assert_eq!(mode("UseIMAPS yes\n"), Ok(TlsMode::Imaps));
        assert_eq!(mode("UseIMAPS no\n"), Ok(TlsMode::StartTls));
        assert_eq!(mode("RequireSSL no\n"), Ok(TlsMode::StartTls));
        assert_eq!(mode("RequireSSL no\nUseTLSv1 no\n"), Ok(TlsMode::None));
        assert!(mode("UseIMAPS yes\nUseTLSv1 no\n").is_err());
        assert!(mode("UseIMAPS yes\nSSLType IMAPS\n").is_err());
        assert_eq!(mode("SSLType None\n"), Ok(TlsMode::None));
        assert_eq!(mode("tlstype imaps\n"), Ok(TlsMode::Imaps));
    }
}
