//! A lossless parser and editor for msmtp configuration files (`~/.msmtprc`,
//! `~/.config/msmtp/config`), following how msmtp 1.8 reads them.
//!
//! The rules, checked against the real `msmtp -P` in this crate's tests:
//!
//! - One command per line: blanks (space, tab), a command word, blanks, an argument. Empty lines
//!   and lines whose first non-blank character is `#` are ignored. A `#` later in a line is part
//!   of the argument, not a comment.
//! - The argument has its leading and trailing blanks removed, then one pair of double quotes
//!   when it both starts and ends with `"`. There are no escapes.
//! - A line ends at `\n`; a `\r` right before it belongs to the line ending. msmtp refuses lines
//!   of 500 bytes or more.
//! - `defaults` starts the block of default values; every `account` defined *after* it starts
//!   from the defaults as they are at that point.
//! - `account NAME : P1,P2` starts an account from the current defaults, then copies every
//!   setting that P1, then P2, set themselves (in their own block or by their own parents); the
//!   parents must be defined earlier. A parent's values that came from the defaults are *not*
//!   copied. Commands before any `account` or `defaults` form an account named `default`.
//!
//! The parser keeps the file's bytes and the byte span of every command and argument, so that
//! [`MsmtpFile::set`] rewrites exactly one argument or inserts exactly one line, and every other
//! byte (comments, order, blank lines, CRLF) stays as it was. Unknown commands are kept as they
//! are, so that a newer msmtp's commands do not make a file unreadable. The arguments of
//! `password`, `passwordeval` and `eval` are never decoded into any value.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;

/// The longest line msmtp reads, in bytes, without its `\n`.
pub const MAX_LINE: usize = 499;

/// The authentication methods msmtp 1.8 accepts after `auth`, besides `on` and `off`.
pub const AUTH_METHODS: [&str; 11] = [
    "plain",
    "scram-sha-1",
    "scram-sha-256",
    "cram-md5",
    "digest-md5",
    "gssapi",
    "external",
    "login",
    "ntlm",
    "oauthbearer",
    "xoauth2",
];

/// A syntax error, at a 1-based line and column (columns count characters). The message never
/// quotes the file, which may hold a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Why [`MsmtpFile::set`] refused a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SetError {
    /// The account is not (or no longer) defined in the file.
    #[error("account {0} not found")]
    NoAccount(String),
    /// The value cannot be written as an msmtp argument (a line break, surrounding blanks or
    /// quotes, or a line that would grow past msmtp's limit).
    #[error("cannot write {command}: {reason}")]
    InvalidValue {
        command: &'static str,
        reason: &'static str,
    },
    /// The edited file did not read back as intended; this is a bug in the writer, and the file
    /// was left unchanged.
    #[error("writing {command} did not read back: {detail}")]
    WriteCheck {
        command: &'static str,
        detail: String,
    },
}

/// The settings mailmend reads. Every other command is kept but not interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    Host,
    Port,
    Tls,
    TlsStartTls,
    Auth,
    User,
    From,
    Protocol,
    Socket,
    /// An `eval` line: its output, which mailmend never runs, may set anything.
    Eval,
    /// `password`: only its position is kept; the value is read on request
    /// ([`MsmtpFile::password`]) and never decoded otherwise.
    Password,
    /// `passwordeval`: a command mailmend never runs.
    PasswordEval,
}

impl Field {
    pub const ALL: [Field; 12] = [
        Field::Host,
        Field::Port,
        Field::Tls,
        Field::TlsStartTls,
        Field::Auth,
        Field::User,
        Field::From,
        Field::Protocol,
        Field::Socket,
        Field::Eval,
        Field::Password,
        Field::PasswordEval,
    ];

    /// The command that sets this field.
    pub fn command(self) -> &'static str {
        match self {
            Field::Host => "host",
            Field::Port => "port",
            Field::Tls => "tls",
            Field::TlsStartTls => "tls_starttls",
            Field::Auth => "auth",
            Field::User => "user",
            Field::From => "from",
            Field::Protocol => "protocol",
            Field::Socket => "socket",
            Field::Eval => "eval",
            Field::Password => "password",
            Field::PasswordEval => "passwordeval",
        }
    }

    pub fn from_command(cmd: &[u8]) -> Option<Field> {
        Field::ALL
            .into_iter()
            .find(|f| f.command().as_bytes() == cmd)
    }
}

/// A value together with the line (an index into [`MsmtpFile::lines`]) that set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
    pub line: usize,
}

/// The values of the fields mailmend reads, as msmtp holds them for one account (or for the
/// defaults) at some point of the file. `None` means "never set".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub host: Option<Setting<String>>,
    pub port: Option<Setting<u16>>,
    pub tls: Option<Setting<bool>>,
    pub tls_starttls: Option<Setting<bool>>,
    /// `None` inside for `auth off`, `Some("")` for `auth on`, else the lower-case method.
    pub auth: Option<Setting<Option<String>>>,
    /// `None` inside for an empty `user`, which unsets it.
    pub user: Option<Setting<Option<String>>>,
    pub from: Option<Setting<String>>,
    /// Whether `protocol lmtp` is selected.
    pub lmtp: Option<Setting<bool>>,
    /// `None` inside for an empty `socket`, which unsets it.
    pub socket: Option<Setting<Option<String>>>,
    pub eval: Option<Setting<()>>,
    /// Where the password's value is (`None` inside for an empty `password`, which unsets it).
    /// A span, never the bytes, so that no debug output or copy of the settings shows them.
    pub password: Option<Setting<Option<Range<usize>>>>,
    /// Whether `passwordeval` is set (`false` inside for an empty one, which unsets it).
    pub password_eval: Option<Setting<bool>>,
}

impl Settings {
    /// The line that decided `field`, if any did.
    pub fn origin(&self, field: Field) -> Option<usize> {
        match field {
            Field::Host => self.host.as_ref().map(|s| s.line),
            Field::Port => self.port.as_ref().map(|s| s.line),
            Field::Tls => self.tls.as_ref().map(|s| s.line),
            Field::TlsStartTls => self.tls_starttls.as_ref().map(|s| s.line),
            Field::Auth => self.auth.as_ref().map(|s| s.line),
            Field::User => self.user.as_ref().map(|s| s.line),
            Field::From => self.from.as_ref().map(|s| s.line),
            Field::Protocol => self.lmtp.as_ref().map(|s| s.line),
            Field::Socket => self.socket.as_ref().map(|s| s.line),
            Field::Eval => self.eval.as_ref().map(|s| s.line),
            Field::Password => self.password.as_ref().map(|s| s.line),
            Field::PasswordEval => self.password_eval.as_ref().map(|s| s.line),
        }
    }

    /// Copies `field` from `other`, as msmtp's `override_account` does for a parent's setting.
    fn copy_field(&mut self, other: &Settings, field: Field) {
        match field {
            Field::Host => self.host.clone_from(&other.host),
            Field::Port => self.port.clone_from(&other.port),
            Field::Tls => self.tls.clone_from(&other.tls),
            Field::TlsStartTls => self.tls_starttls.clone_from(&other.tls_starttls),
            Field::Auth => self.auth.clone_from(&other.auth),
            Field::User => self.user.clone_from(&other.user),
            Field::From => self.from.clone_from(&other.from),
            Field::Protocol => self.lmtp.clone_from(&other.lmtp),
            Field::Socket => self.socket.clone_from(&other.socket),
            Field::Eval => self.eval.clone_from(&other.eval),
            Field::Password => self.password.clone_from(&other.password),
            Field::PasswordEval => self.password_eval.clone_from(&other.password_eval),
        }
    }
}

/// One command line: the byte spans of its parts.
#[derive(Clone, PartialEq, Eq)]
pub struct Command {
    /// The field it sets, when mailmend reads it.
    pub field: Option<Field>,
    /// Leading blanks.
    pub indent: Range<usize>,
    /// The command word.
    pub name: Range<usize>,
    /// The argument with blanks trimmed and its quotes, if any (empty at the end of the name
    /// when there is no argument).
    pub arg: Range<usize>,
    /// The argument without its enclosing quotes.
    pub value: Range<usize>,
}

// Spans only: the argument may be a password.
impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Command")
            .field("field", &self.field)
            .field("name", &self.name)
            .field("arg", &self.arg)
            .finish()
    }
}

/// One line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number.
    pub number: usize,
    /// The line's bytes without its line ending.
    pub span: Range<usize>,
    /// Where the next line starts (after this line's ending).
    pub next: usize,
    /// `None` for an empty or comment line.
    pub command: Option<Command>,
}

/// An account as msmtp resolves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountEntry {
    pub name: String,
    /// The `account` line, or `None` for the implicit `default` account of old files.
    pub header: Option<usize>,
    /// The lines of its block: from its header (or the file's start) to the next `account` or
    /// `defaults` line.
    pub block: Range<usize>,
    /// The last command line of its block, after which new settings are inserted.
    pub last_command: Option<usize>,
    /// The effective settings: defaults, parents, own block.
    pub settings: Settings,
    /// The fields the account set itself or copied from its parents (msmtp's mask); a child
    /// that names this account as a parent copies exactly these.
    pub mask: BTreeSet<Field>,
}

impl AccountEntry {
    /// Whether TLS is on (`tls`, off by default).
    pub fn tls(&self) -> bool {
        self.settings.tls.as_ref().is_some_and(|s| s.value)
    }

    /// Whether TLS starts with STARTTLS (`tls_starttls`, on by default).
    pub fn starttls(&self) -> bool {
        self.settings.tls_starttls.as_ref().is_none_or(|s| s.value)
    }

    /// The port written somewhere that applies to this account.
    pub fn explicit_port(&self) -> Option<u16> {
        self.settings.port.as_ref().map(|s| s.value)
    }

    /// msmtp's default port: 465 for TLS without STARTTLS, else 25.
    pub fn default_port(tls: bool, starttls: bool) -> u16 {
        if tls && !starttls {
            465
        } else {
            25
        }
    }

    /// The port msmtp connects to.
    pub fn port(&self) -> u16 {
        self.explicit_port()
            .unwrap_or_else(|| Self::default_port(self.tls(), self.starttls()))
    }

    pub fn host(&self) -> Option<&str> {
        self.settings.host.as_ref().map(|s| s.value.as_str())
    }

    pub fn user(&self) -> Option<&str> {
        self.settings.user.as_ref().and_then(|s| s.value.as_deref())
    }

    pub fn from(&self) -> Option<&str> {
        self.settings.from.as_ref().map(|s| s.value.as_str())
    }

    /// `None` for no authentication, `Some("")` for "msmtp chooses", else the method.
    pub fn auth(&self) -> Option<&str> {
        self.settings.auth.as_ref().and_then(|s| s.value.as_deref())
    }

    pub fn is_lmtp(&self) -> bool {
        self.settings.lmtp.as_ref().is_some_and(|s| s.value)
    }

    pub fn socket(&self) -> Option<&str> {
        self.settings
            .socket
            .as_ref()
            .and_then(|s| s.value.as_deref())
    }

    /// Whether an `eval` line may have set any of its values.
    pub fn uses_eval(&self) -> bool {
        self.settings.eval.is_some()
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

/// A parsed msmtp configuration file.
#[derive(Clone, PartialEq, Eq)]
pub struct MsmtpFile {
    bytes: Vec<u8>,
    lines: Vec<Line>,
    accounts: Vec<AccountEntry>,
}

// The bytes may hold a password, so the debug form shows only their shape.
impl fmt::Debug for MsmtpFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MsmtpFile")
            .field("len", &self.bytes.len())
            .field("lines", &self.lines.len())
            .field(
                "accounts",
                &self.accounts.iter().map(|a| &a.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// msmtp's `trim_string`: the argument without surrounding blanks, and without one pair of
/// enclosing double quotes.
fn trim(bytes: &[u8], range: Range<usize>) -> (Range<usize>, Range<usize>) {
    let mut start = range.start;
    while start < range.end && is_blank(bytes[start]) {
        start += 1;
    }
    let mut end = range.end;
    while end > start && is_blank(bytes[end - 1]) {
        end -= 1;
    }
    let quoted = end - start >= 2 && bytes[start] == b'"' && bytes[end - 1] == b'"';
    let value = if quoted {
        start + 1..end - 1
    } else {
        start..end
    };
    (start..end, value)
}

/// The 1-based character column of byte `offset` within `line`.
fn column(bytes: &[u8], line: &Line, offset: usize) -> usize {
    let end = offset.clamp(line.span.start, line.span.end.max(line.span.start));
    String::from_utf8_lossy(&bytes[line.span.start..end])
        .chars()
        .count()
        + 1
}

/// Splits a file into lines: each ends at `\n`, and a `\r` before the `\n` belongs to the ending.
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

/// Where settings go while the file is read.
#[derive(Clone, Copy)]
enum Target {
    Defaults,
    Account(usize),
}

/// msmtp's `get_pos_int`: `strtol(s, &end, 0)` accepting a whole string that is a positive
/// number, written in decimal, octal (leading `0`) or hex (leading `0x`).
fn pos_int(s: &[u8]) -> Option<u64> {
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let mut negative = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        negative = s[i] == b'-';
        i += 1;
    }
    let (radix, digits_start) =
        if s.len() > i + 2 && s[i] == b'0' && (s[i + 1] == b'x' || s[i + 1] == b'X') {
            if s[i + 2].is_ascii_hexdigit() {
                (16, i + 2)
            } else {
                // strtol reads just the "0" and leaves "x…" as trailing garbage.
                return None;
            }
        } else if s.len() > i && s[i] == b'0' {
            (8, i)
        } else {
            (10, i)
        };
    let digits = &s[digits_start..];
    if digits.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for &d in digits {
        let v = (d as char).to_digit(radix)?;
        value = value
            .saturating_mul(u64::from(radix))
            .saturating_add(u64::from(v));
    }
    (!negative && value > 0).then_some(value)
}

fn on_off(arg: &[u8]) -> Option<bool> {
    match arg {
        b"" | b"on" => Some(true),
        b"off" => Some(false),
        _ => None,
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

struct Parser<'a> {
    bytes: &'a [u8],
    lines: Vec<Line>,
    accounts: Vec<AccountEntry>,
    defaults: Settings,
    target: Option<Target>,
}

impl<'a> Parser<'a> {
    fn error(&self, line: &Line, offset: usize, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            line: line.number,
            column: column(self.bytes, line, offset),
            message: message.into(),
        }
    }

    fn close_block(&mut self, end: usize) {
        if let Some(Target::Account(a)) = self.target {
            self.accounts[a].block.end = end;
        }
    }

    fn parse(mut self) -> Result<(Vec<Line>, Vec<AccountEntry>), SyntaxError> {
        for (i, (span, next)) in split_lines(self.bytes).into_iter().enumerate() {
            let mut line = Line {
                number: i + 1,
                span,
                next,
                command: None,
            };
            // msmtp reads lines with fgets into a 501-byte buffer, so the `\n` must fit too.
            let raw_end = if next > line.span.end && self.bytes[next - 1] == b'\n' {
                next - 1
            } else {
                next
            };
            if raw_end - line.span.start > MAX_LINE {
                return Err(self.error(
                    &line,
                    line.span.start + MAX_LINE,
                    format!("line longer than {MAX_LINE} bytes; msmtp refuses such a file"),
                ));
            }
            if let Some(p) = self.bytes[line.span.clone()].iter().position(|&b| b == 0) {
                return Err(self.error(
                    &line,
                    line.span.start + p,
                    "nul byte; msmtp would ignore the rest of the line",
                ));
            }
            let b = self.bytes;
            let mut p = line.span.start;
            while p < line.span.end && is_blank(b[p]) {
                p += 1;
            }
            if p < line.span.end && b[p] != b'#' {
                let name_start = p;
                while p < line.span.end && !is_blank(b[p]) {
                    p += 1;
                }
                let (arg, value) = trim(b, p..line.span.end);
                let arg = if arg.is_empty() { p..p } else { arg };
                let value = if value.is_empty() && arg.is_empty() {
                    p..p
                } else {
                    value
                };
                line.command = Some(Command {
                    field: Field::from_command(&b[name_start..p]),
                    indent: line.span.start..name_start,
                    name: name_start..p,
                    arg,
                    value,
                });
                self.command(i, &line)?;
            }
            self.lines.push(line);
        }
        let end = self.lines.len();
        self.close_block(end);
        Ok((self.lines, self.accounts))
    }

    fn command(&mut self, index: usize, line: &Line) -> Result<(), SyntaxError> {
        let Some(cmd) = line.command.as_ref() else {
            return Ok(());
        };
        let b = self.bytes;
        let name = &b[cmd.name.clone()];
        let value = &b[cmd.value.clone()];
        if self.target.is_none() && name != b"account" && name != b"defaults" {
            // Old files without any `account` line: the first commands form account "default".
            self.accounts.push(AccountEntry {
                name: "default".into(),
                header: None,
                block: 0..0,
                last_command: None,
                settings: self.defaults.clone(),
                mask: BTreeSet::new(),
            });
            self.target = Some(Target::Account(self.accounts.len() - 1));
        }
        match name {
            b"defaults" => {
                if !value.is_empty() {
                    return Err(self.error(
                        line,
                        cmd.arg.start,
                        "command defaults does not take an argument",
                    ));
                }
                self.close_block(index);
                self.target = Some(Target::Defaults);
                return Ok(());
            }
            b"account" => return self.account(index, line, cmd),
            _ => {}
        }
        let Some(field) = cmd.field else {
            // Unknown or uninterpreted (password, passwordeval, tls_trust_file, …): kept as is.
            self.note_command(index);
            return Ok(());
        };
        let setting = self.value_of(line, cmd, field, value)?;
        let settings = match self.target {
            Some(Target::Account(a)) => {
                self.accounts[a].mask.insert(field);
                &mut self.accounts[a].settings
            }
            _ => &mut self.defaults,
        };
        apply(settings, field, setting, index);
        self.note_command(index);
        Ok(())
    }

    fn note_command(&mut self, index: usize) {
        if let Some(Target::Account(a)) = self.target {
            self.accounts[a].last_command = Some(index);
        }
    }

    fn value_of(
        &self,
        line: &Line,
        cmd: &Command,
        field: Field,
        value: &[u8],
    ) -> Result<Parsed, SyntaxError> {
        let invalid = || {
            self.error(
                line,
                cmd.arg.start,
                format!("invalid argument for command {}", field.command()),
            )
        };
        let needs = || {
            self.error(
                line,
                cmd.arg.start,
                format!("command {} needs an argument", field.command()),
            )
        };
        Ok(match field {
            Field::Host => {
                if value.is_empty() {
                    return Err(needs());
                }
                Parsed::Text(text(value))
            }
            Field::Port => {
                if value.is_empty() {
                    return Err(needs());
                }
                match pos_int(value) {
                    Some(p @ 1..=65535) => Parsed::Port(p as u16),
                    _ => return Err(invalid()),
                }
            }
            Field::Tls | Field::TlsStartTls => Parsed::Flag(on_off(value).ok_or_else(invalid)?),
            Field::Auth => match value {
                b"" | b"on" => Parsed::Auth(Some(String::new())),
                b"off" => Parsed::Auth(None),
                m if AUTH_METHODS.iter().any(|k| k.as_bytes() == m) => Parsed::Auth(Some(text(m))),
                _ => return Err(invalid()),
            },
            Field::User | Field::Socket => {
                Parsed::Optional((!value.is_empty()).then(|| text(value)))
            }
            Field::From => Parsed::Text(text(value)),
            Field::Protocol => match value {
                b"smtp" => Parsed::Flag(false),
                b"lmtp" => Parsed::Flag(true),
                b"" => return Err(needs()),
                _ => return Err(invalid()),
            },
            Field::Eval => Parsed::Unit,
            Field::Password => Parsed::Span((!value.is_empty()).then(|| cmd.value.clone())),
            Field::PasswordEval => Parsed::Flag(!value.is_empty()),
        })
    }

    fn account(&mut self, index: usize, line: &Line, cmd: &Command) -> Result<(), SyntaxError> {
        let b = self.bytes;
        let value = cmd.value.clone();
        let colon = b[value.clone()].iter().position(|&c| c == b':');
        let (name_range, parents) = match colon {
            Some(c) => {
                let mut parents = Vec::new();
                let mut start = value.start + c + 1;
                loop {
                    let end = b[start..value.end]
                        .iter()
                        .position(|&c| c == b',')
                        .map_or(value.end, |p| start + p);
                    let (_, parent) = trim(b, start..end);
                    if parent.is_empty() {
                        return Err(self.error(line, start, "missing account name"));
                    }
                    let parent_name = text(&b[parent.clone()]);
                    let Some(p) = self.accounts.iter().position(|a| a.name == parent_name) else {
                        return Err(self.error(
                            line,
                            parent.start,
                            "account named as parent is not (yet) defined",
                        ));
                    };
                    parents.push(p);
                    if end == value.end {
                        break;
                    }
                    start = end + 1;
                }
                (trim(b, value.start..value.start + c).1, parents)
            }
            None => (value, Vec::new()),
        };
        if name_range.is_empty() {
            return Err(self.error(line, cmd.arg.start, "missing account name"));
        }
        let name_bytes = &b[name_range.clone()];
        if name_bytes.contains(&b',') || name_bytes.contains(&b':') {
            return Err(self.error(
                line,
                name_range.start,
                "an account name must not contain colons or commas",
            ));
        }
        let name = text(name_bytes);
        if self.accounts.iter().any(|a| a.name == name) {
            return Err(self.error(
                line,
                name_range.start,
                "account was already defined in this file",
            ));
        }
        self.close_block(index);
        let mut entry = AccountEntry {
            name,
            header: Some(index),
            block: index..index,
            last_command: Some(index),
            settings: self.defaults.clone(),
            mask: BTreeSet::new(),
        };
        for p in parents {
            let parent = &self.accounts[p];
            for &field in &parent.mask {
                entry.settings.copy_field(&parent.settings, field);
            }
            entry.mask.extend(parent.mask.iter().copied());
        }
        self.accounts.push(entry);
        self.target = Some(Target::Account(self.accounts.len() - 1));
        Ok(())
    }
}

/// A value read from a command's argument.
enum Parsed {
    Text(String),
    Optional(Option<String>),
    Port(u16),
    Flag(bool),
    Auth(Option<String>),
    Span(Option<Range<usize>>),
    Unit,
}

fn apply(settings: &mut Settings, field: Field, value: Parsed, line: usize) {
    match (field, value) {
        (Field::Host, Parsed::Text(v)) => settings.host = Some(Setting { value: v, line }),
        (Field::From, Parsed::Text(v)) => settings.from = Some(Setting { value: v, line }),
        (Field::Port, Parsed::Port(v)) => settings.port = Some(Setting { value: v, line }),
        (Field::Tls, Parsed::Flag(v)) => settings.tls = Some(Setting { value: v, line }),
        (Field::TlsStartTls, Parsed::Flag(v)) => {
            settings.tls_starttls = Some(Setting { value: v, line })
        }
        (Field::Protocol, Parsed::Flag(v)) => settings.lmtp = Some(Setting { value: v, line }),
        (Field::Auth, Parsed::Auth(v)) => settings.auth = Some(Setting { value: v, line }),
        (Field::User, Parsed::Optional(v)) => settings.user = Some(Setting { value: v, line }),
        (Field::Socket, Parsed::Optional(v)) => settings.socket = Some(Setting { value: v, line }),
        (Field::Eval, _) => settings.eval = Some(Setting { value: (), line }),
        (Field::Password, Parsed::Span(v)) => settings.password = Some(Setting { value: v, line }),
        (Field::PasswordEval, Parsed::Flag(v)) => {
            settings.password_eval = Some(Setting { value: v, line })
        }
        // `value_of` returns the variant that belongs to each field, so nothing else occurs.
        _ => {}
    }
}

impl MsmtpFile {
    /// Parses a whole file. Any syntax error msmtp itself would refuse rejects the file.
    pub fn parse(bytes: &[u8]) -> Result<MsmtpFile, SyntaxError> {
        let parser = Parser {
            bytes,
            lines: Vec::new(),
            accounts: Vec::new(),
            defaults: Settings::default(),
            target: None,
        };
        let (lines, accounts) = parser.parse()?;
        Ok(MsmtpFile {
            bytes: bytes.to_vec(),
            lines,
            accounts,
        })
    }

    /// The file's bytes, including every edit made so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// Every account, in the order the file defines them.
    pub fn accounts(&self) -> &[AccountEntry] {
        &self.accounts
    }

    pub fn account(&self, name: &str) -> Option<&AccountEntry> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// The password msmtp uses for `account`, read from the file only now: the argument of the
    /// `password` line that applies (own block, parents, defaults), unless a `passwordeval`
    /// applies, whose command mailmend never runs. `None` too when no password is set (msmtp
    /// then asks a keyring or `~/.netrc`, which mailmend does not read).
    pub fn password(&self, account: &str) -> Option<mailmend_core::Secret> {
        let entry = self.account(account)?;
        if entry.uses_eval()
            || entry
                .settings
                .password_eval
                .as_ref()
                .is_some_and(|s| s.value)
        {
            return None;
        }
        let span = entry.settings.password.as_ref()?.value.clone()?;
        let bytes = self.bytes.get(span)?;
        Some(mailmend_core::Secret::new(bytes.to_vec()))
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

    /// Whether `field` is set by a line in `account`'s own block, and which line decides.
    pub fn own_line(&self, account: &AccountEntry, field: Field) -> Option<usize> {
        account
            .block
            .clone()
            .rev()
            .find(|&i| self.lines[i].command.as_ref().and_then(|c| c.field) == Some(field))
    }

    /// Sets `field` of `account` to `value` in that account's own block: the deciding line of
    /// its block has its argument rewritten, or, when the value comes from the defaults or a
    /// parent, one line is inserted after the block's last command, so that other accounts
    /// keep what they had. Returns whether the bytes changed.
    pub fn set(&mut self, account: &str, field: Field, value: &str) -> Result<bool, SetError> {
        let command = field.command();
        let invalid = |reason| SetError::InvalidValue { command, reason };
        if field == Field::Eval {
            return Err(invalid("mailmend never writes eval lines"));
        }
        if matches!(field, Field::Password | Field::PasswordEval) {
            return Err(invalid("mailmend never writes credentials"));
        }
        if value.bytes().any(|b| b == b'\n' || b == b'\r' || b == 0) {
            return Err(invalid("a value cannot hold a line break or nul"));
        }
        if value.starts_with(is_blank_char) || value.ends_with(is_blank_char) {
            return Err(invalid("a value cannot start or end with a blank"));
        }
        if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
            return Err(invalid("a value cannot be enclosed in quotes"));
        }
        let entry = self
            .account(account)
            .ok_or_else(|| SetError::NoAccount(account.to_string()))?;
        let mut bytes = self.bytes.clone();
        match self.own_line(entry, field) {
            Some(i) => {
                let cmd = self.lines[i]
                    .command
                    .as_ref()
                    .ok_or_else(|| invalid("the deciding line has no command"))?;
                if &self.bytes[cmd.value.clone()] == value.as_bytes() {
                    return Ok(false);
                }
                if cmd.arg.is_empty() {
                    bytes.splice(cmd.arg.clone(), format!(" {value}").into_bytes());
                } else {
                    bytes.splice(cmd.value.clone(), value.bytes());
                }
            }
            None => {
                let after = entry.last_command.or(entry.header);
                let line = self.new_line(entry, command, value);
                match after {
                    Some(i) => {
                        let l = &self.lines[i];
                        let eol = self.line_ending().as_str();
                        if l.next == l.span.end {
                            // The last line has no line ending; end it before the new line.
                            bytes.splice(l.next..l.next, format!("{eol}{line}").into_bytes());
                        } else {
                            bytes.splice(l.next..l.next, format!("{line}{eol}").into_bytes());
                        }
                    }
                    None => {
                        let eol = self.line_ending().as_str();
                        bytes.splice(0..0, format!("{line}{eol}").into_bytes());
                    }
                }
            }
        }
        let reparsed = MsmtpFile::parse(&bytes).map_err(|e| SetError::WriteCheck {
            command,
            detail: e.to_string(),
        })?;
        let reads_back = reparsed
            .account(account)
            .and_then(|a| {
                let line = a.settings.origin(field)?;
                let cmd = reparsed.lines[line].command.as_ref()?;
                Some(&reparsed.bytes[cmd.value.clone()] == value.as_bytes())
            })
            .unwrap_or(false);
        if !reads_back {
            return Err(SetError::WriteCheck {
                command,
                detail: "the value read back differs".into(),
            });
        }
        *self = reparsed;
        Ok(true)
    }

    /// A new setting line shaped like the block's last setting: same indentation, and the
    /// argument in the same column when that line aligns its argument with several spaces.
    fn new_line(&self, entry: &AccountEntry, command: &str, value: &str) -> String {
        let reference = entry
            .block
            .clone()
            .rev()
            .filter(|&i| Some(i) != entry.header)
            .find_map(|i| self.lines[i].command.as_ref());
        let Some(r) = reference else {
            return format!("{command} {value}");
        };
        let indent = text(&self.bytes[r.indent.clone()]);
        let gap = &self.bytes[r.name.end..r.arg.start];
        let sep = if r.arg.is_empty() || gap.is_empty() {
            " ".to_string()
        } else if gap.len() > 1 && gap.iter().all(|&b| b == b' ') {
            let column = r.arg.start - r.name.start;
            " ".repeat(column.saturating_sub(command.len()).max(1))
        } else {
            text(gap)
        };
        format!("{indent}{command}{sep}{value}")
    }
}

fn is_blank_char(c: char) -> bool {
    c == ' ' || c == '\t'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_read_like_strtol_with_base_zero() {
        assert_eq!(pos_int(b"587"), Some(587));
        assert_eq!(pos_int(b"0x24b"), Some(587));
        assert_eq!(pos_int(b"+587"), Some(587));
        assert_eq!(pos_int(b" 587"), Some(587));
        assert_eq!(pos_int(b"010"), Some(8));
        assert_eq!(pos_int(b"0587"), None);
        assert_eq!(pos_int(b"0"), None);
        assert_eq!(pos_int(b"-5"), None);
        assert_eq!(pos_int(b"5 8"), None);
        assert_eq!(pos_int(b"0x"), None);
        assert_eq!(pos_int(b""), None);
    }

    #[test]
    fn quotes_are_removed_only_when_they_enclose_the_whole_argument() {
        let f = MsmtpFile::parse(b"account a\nhost \"q.example\" # x\nfrom \"a@b\"\n").unwrap();
        let a = f.account("a").unwrap();
        assert_eq!(a.host(), Some("\"q.example\" # x"));
        assert_eq!(a.from(), Some("a@b"));
    }
}
