//! The text of a log event for system logs that take one string per entry (the Windows Event
//! Log, the macOS unified log): the message, then the other fields as `key=value`.

use std::fmt::Write as _;
use tracing::field::{Field, Visit};
use tracing::Event;

/// The longest text written; the Event Log refuses strings longer than 31,839 characters.
pub const MAX_CHARS: usize = 31_000;

/// The text of one event: the message, then the other fields as `key=value`, cut to what
/// ReportEventW accepts.
pub fn event_text(event: &Event<'_>) -> String {
    let mut v = TextVisitor::default();
    event.record(&mut v);
    let mut text = v.message;
    if !v.fields.is_empty() {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&v.fields);
    }
    cut(text)
}

/// `text`, cut to [`MAX_CHARS`] characters with an ellipsis when longer.
pub fn cut(mut text: String) -> String {
    if text.chars().count() > MAX_CHARS {
        text = text.chars().take(MAX_CHARS).collect();
        text.push('…');
    }
    text
}

#[derive(Default)]
struct TextVisitor {
    message: String,
    fields: String,
}

impl Visit for TextVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.add(field, format_args!("{value:?}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            self.add(field, format_args!("{value:?}"));
        }
    }
}

impl TextVisitor {
    fn add(&mut self, field: &Field, value: std::fmt::Arguments<'_>) {
        if !self.fields.is_empty() {
            self.fields.push(' ');
        }
        let _ = write!(self.fields, "{}={value}", field.name());
    }
}
