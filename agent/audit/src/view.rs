//! What admins look at: filtering records and printing them as a table that fits a 100-column
//! terminal.

use crate::error::AuditError;
use crate::event::{Outcome, Record};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

/// Which records to show; every field that is set must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// RFC 3339 (`2024-05-01T09:30:00Z`), or a date (`2024-05-01`, midnight UTC): records at or
    /// after that time.
    pub since: Option<String>,
    /// An account id or e-mail address, compared exactly.
    pub account: Option<String>,
    pub outcome: Option<Outcome>,
}

/// Parses a `since` value: RFC 3339, or a bare date meaning midnight UTC.
pub fn parse_since(value: &str) -> Result<OffsetDateTime, AuditError> {
    let trimmed = value.trim();
    if let Ok(t) = OffsetDateTime::parse(trimmed, &Rfc3339) {
        return Ok(t);
    }
    match Date::parse(trimmed, format_description!("[year]-[month]-[day]")) {
        Ok(d) => Ok(d.midnight().assume_utc()),
        Err(e) => Err(AuditError::BadSince {
            value: value.to_string(),
            reason: e.to_string(),
        }),
    }
}

/// The records that pass `f`, in their original order.
pub fn filter<'a>(records: &'a [Record], f: &Filter) -> Result<Vec<&'a Record>, AuditError> {
    let since = f.since.as_deref().map(parse_since).transpose()?;
    let mut out = Vec::new();
    for r in records {
        if let Some(since) = since {
            let t = OffsetDateTime::parse(&r.time, &Rfc3339).map_err(|_| {
                AuditError::BadRecordTime {
                    seq: r.seq,
                    value: r.time.clone(),
                }
            })?;
            if t < since {
                continue;
            }
        }
        if let Some(account) = &f.account {
            let action_account = r.event.action.as_ref().and_then(|a| a.account());
            let matches = r.event.account_id.as_deref() == Some(account.as_str())
                || r.event.email.as_deref() == Some(account.as_str())
                || action_account.is_some_and(|a| a.0 == *account);
            if !matches {
                continue;
            }
        }
        if f.outcome.is_some() && r.event.outcome != f.outcome {
            continue;
        }
        out.push(r);
    }
    Ok(out)
}

/// The table's total width.
pub const TABLE_WIDTH: usize = 100;
const GAP: &str = "  ";

struct Column {
    title: &'static str,
    cap: usize,
    min: usize,
}

// The minimums add up to 96 columns with the gaps, so shrinking always fits 100.
const COLUMNS: [Column; 6] = [
    Column {
        title: "TIME",
        cap: 19,
        min: 19,
    },
    Column {
        title: "ACCOUNT",
        cap: 30,
        min: 18,
    },
    Column {
        title: "FINDING",
        cap: 28,
        min: 16,
    },
    Column {
        title: "ACTION",
        cap: 24,
        min: 12,
    },
    Column {
        title: "RULE",
        cap: 16,
        min: 8,
    },
    Column {
        title: "OUTCOME",
        cap: 15,
        min: 13,
    },
];

/// Renders records as a table of TIME (UTC), ACCOUNT (e-mail, else id), FINDING, ACTION (the
/// policy's kinds, e.g. `set_port+set_security`), RULE and OUTCOME (the outcome, or the record's
/// kind when it has none). Each row is followed by an indented line with the action described in
/// words and the message. Seven columns cannot share 100 columns readably, so the message
/// gets a line of its own. Columns are as wide as their contents up to a cap, the columns where
/// that cuts the fewest values shrink first when a row would pass 100 columns, and long values are cut with `…`.
pub fn render_table(records: &[&Record]) -> String {
    let rows: Vec<([String; 6], String)> = records.iter().map(|r| row(r)).collect();
    let mut widths: Vec<usize> = COLUMNS
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let widest = rows.iter().map(|(r, _)| width(&r[i])).max().unwrap_or(0);
            widest.max(c.title.len()).min(c.cap)
        })
        .collect();
    let total = |widths: &[usize]| widths.iter().sum::<usize>() + GAP.len() * (COLUMNS.len() - 1);
    // Shrink one column by one character at a time, choosing the column where that cuts the
    // fewest values (so one long outlier is cut before many ordinary values), and among those
    // the one with the most room above its minimum.
    while total(&widths) > TABLE_WIDTH {
        let Some(i) = (0..COLUMNS.len())
            .filter(|&i| widths[i] > COLUMNS[i].min)
            .min_by_key(|&i| {
                let cut = rows
                    .iter()
                    .filter(|(r, _)| width(&r[i]) >= widths[i])
                    .count();
                (cut, std::cmp::Reverse(widths[i] - COLUMNS[i].min), i)
            })
        else {
            break;
        };
        widths[i] -= 1;
    }
    // The message line starts under ACCOUNT.
    let indent = widths[0] + GAP.len();
    let message_width = TABLE_WIDTH - indent;

    let mut out = String::new();
    push_row(&mut out, &COLUMNS.map(|c| c.title.to_string()), &widths);
    for (cells, message) in &rows {
        push_row(&mut out, cells, &widths);
        if !message.is_empty() {
            out.extend(std::iter::repeat_n(' ', indent));
            out.push_str(&fit(message, message_width));
            out.push('\n');
        }
    }
    if rows.is_empty() {
        out.push_str("(no records)\n");
    }
    out
}

fn row(r: &Record) -> ([String; 6], String) {
    let dash = || "-".to_string();
    let time = OffsetDateTime::parse(&r.time, &Rfc3339)
        .ok()
        .and_then(|t| {
            t.to_offset(time::UtcOffset::UTC)
                .format(format_description!(
                    "[year]-[month]-[day] [hour]:[minute]:[second]"
                ))
                .ok()
        })
        .unwrap_or_else(|| r.time.clone());
    let outcome = r.event.outcome.map_or_else(
        || r.event.kind.as_str().to_string(),
        |o| o.as_str().to_string(),
    );
    let cells = [
        time,
        r.account_label().unwrap_or_else(dash),
        r.event.finding_code.clone().unwrap_or_else(dash),
        r.event.action.as_ref().map_or_else(dash, |a| {
            let kinds: Vec<&str> = a.kinds().iter().map(|k| k.as_str()).collect();
            kinds.join("+")
        }),
        r.event.rule.clone().unwrap_or_else(dash),
        outcome,
    ];
    let message = match &r.event.action {
        Some(a) if r.event.message.is_empty() => a.describe(),
        Some(a) => format!("{}: {}", a.describe(), r.event.message),
        None => r.event.message.clone(),
    };
    // The fix id leads the detail line: it is what `mailmend rollback` takes.
    let message = match &r.event.fix_id {
        Some(id) => format!("[{id}] {message}"),
        None => message,
    };
    (cells, one_line(&message))
}

/// Control characters (a newline in a message) would break the table's rows.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn width(s: &str) -> usize {
    s.chars().count()
}

fn fit(s: &str, w: usize) -> String {
    let s = one_line(s);
    if width(&s) <= w {
        return s;
    }
    if w == 0 {
        return String::new();
    }
    let mut cut: String = s.chars().take(w - 1).collect();
    cut.push('…');
    cut
}

fn push_row(out: &mut String, cells: &[String; 6], widths: &[usize]) {
    let mut line = String::new();
    for (cell, &w) in cells.iter().zip(widths) {
        let text = fit(cell, w);
        let pad = w - width(&text);
        line.push_str(&text);
        line.extend(std::iter::repeat_n(' ', pad));
        line.push_str(GAP);
    }
    out.push_str(line.trim_end());
    out.push('\n');
}
