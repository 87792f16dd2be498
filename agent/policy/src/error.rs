//! Policy errors, and turning byte offsets in the policy text into 1-based lines and columns.

use std::fmt;
use std::ops::Range;

/// Why a policy could not be loaded. Every variant names the file it is about.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file is not valid TOML, has a key this version does not know, or a value is out of
    /// range; usually a typo or a setting copied from a newer version's documentation.
    #[error("{origin}:{line}:{column}: {message}{}", Hint(hint))]
    Invalid {
        /// The file path, or `embedded:default.toml`.
        origin: String,
        /// 1-based line of the offending text.
        line: usize,
        /// 1-based column (in characters) of the offending text.
        column: usize,
        /// What is wrong, lower-case and without a final period.
        message: String,
        /// What to do about it; may be empty.
        hint: String,
    },
    /// The policy file could not be read: it does not exist, or the agent lacks permission.
    #[error("{origin}: cannot read the policy file: {source}")]
    Io {
        origin: String,
        #[source]
        source: std::io::Error,
    },
}

impl PolicyError {
    /// The file path or `embedded:default.toml` the error is about.
    pub fn origin(&self) -> &str {
        match self {
            PolicyError::Invalid { origin, .. } | PolicyError::Io { origin, .. } => origin,
        }
    }

    /// The 1-based line and column, when the error points into the text.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            PolicyError::Invalid { line, column, .. } => Some((*line, *column)),
            PolicyError::Io { .. } => None,
        }
    }

    /// What to do about the error, when there is advice.
    pub fn hint(&self) -> Option<&str> {
        match self {
            PolicyError::Invalid { hint, .. } if !hint.is_empty() => Some(hint),
            _ => None,
        }
    }

    /// Whether the error means the policy file does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, PolicyError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Formats a non-empty hint as `; hint` so that a one-line message carries the advice.
struct Hint<'a>(&'a str);

impl fmt::Display for Hint<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, "; {}", self.0)
        }
    }
}

/// A 1-based line and column in the policy text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` in `text`; offsets past the end or inside a character
    /// are clamped rather than trusted, because they come from the parser's error.
    pub fn of(text: &str, offset: usize) -> Position {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Position {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

/// Builds [`PolicyError::Invalid`] for a span of `text`.
pub(crate) fn invalid_at(
    origin: &str,
    text: &str,
    span: Range<usize>,
    message: impl Into<String>,
    hint: impl Into<String>,
) -> PolicyError {
    let pos = Position::of(text, span.start);
    PolicyError::Invalid {
        origin: origin.to_string(),
        line: pos.line,
        column: pos.column,
        message: message.into(),
        hint: hint.into(),
    }
}

/// Converts the TOML parser's error, which knows the span but not the file, and adds advice
/// for the usual causes.
pub(crate) fn from_toml(origin: &str, text: &str, err: &toml::de::Error) -> PolicyError {
    let message = err
        .message()
        .trim()
        .trim_end_matches('.')
        .replace("expected i64", "expected a whole number")
        .replace('\n', " ");
    let hint = if message.starts_with("unknown field") {
        unknown_field_hint(&message)
    } else if message.starts_with("missing field") {
        "add the missing key".to_string()
    } else if message.starts_with("invalid type") {
        "check the value's type: strings are quoted, numbers and true/false are not, lists use [ ]"
            .to_string()
    } else if message.contains("duplicate key") {
        "a key may appear only once in each table; delete one of them".to_string()
    } else {
        "fix the TOML syntax here (see https://toml.io)".to_string()
    };
    invalid_at(origin, text, err.span().unwrap_or(0..0), message, hint)
}

/// For serde's "unknown field `x`, expected one of `a`, `b`": suggest the closest known key.
fn unknown_field_hint(message: &str) -> String {
    // The back-quoted words are the unknown key, then the keys allowed in that table.
    let quoted: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    let suggestion = quoted
        .split_first()
        .and_then(|(bad, known)| crate::settings::closest(bad, known.iter().copied()));
    match suggestion {
        Some(s) => format!("did you mean `{s}`? policies/default.toml documents every key"),
        None => "remove the key or check its spelling; policies/default.toml documents every key"
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(Position::of(text, 0), Position { line: 1, column: 1 });
        assert_eq!(Position::of(text, 6), Position { line: 2, column: 1 });
        // "bé " is four bytes but three characters, so the '=' after it is in column 4.
        assert_eq!(Position::of(text, 10), Position { line: 2, column: 4 });
    }

    #[test]
    fn positions_inside_a_character_or_past_the_end_do_not_panic() {
        let text = "é";
        assert_eq!(Position::of(text, 1), Position { line: 1, column: 1 });
        assert_eq!(Position::of(text, 99), Position { line: 1, column: 2 });
    }

    #[test]
    fn display_names_file_line_column_and_hint() {
        let e = PolicyError::Invalid {
            origin: "/etc/mailmend/policy.toml".into(),
            line: 12,
            column: 17,
            message: "unknown action kind \"set_prot\"".into(),
            hint: "check the spelling".into(),
        };
        assert_eq!(
            e.to_string(),
            "/etc/mailmend/policy.toml:12:17: unknown action kind \"set_prot\"; check the spelling"
        );
    }
}
