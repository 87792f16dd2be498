//! Human output: short, aligned tables that fit a terminal.

/// Renders rows under headers, each column as wide as its widest cell (capped), two spaces apart.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    const MAX: usize = 48;
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count().min(MAX));
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<String>, out: &mut String| {
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.into_iter().enumerate() {
            let cell = clip(&cell, if i == last { 200 } else { MAX });
            if i == last {
                out.push_str(&cell);
            } else {
                out.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push('\n');
    };
    line(headers.iter().map(|h| h.to_string()).collect(), &mut out);
    for row in rows {
        line(row.clone(), &mut out);
    }
    out
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(max.saturating_sub(1)).collect();
        c.push('…');
        c
    }
}

/// `imap://host:993 (tls)` or `-`.
pub fn endpoint(e: Option<&mailmend_core::Endpoint>) -> String {
    match e {
        Some(e) => format!("{}://{}:{} ({})", e.protocol, e.host, e.port, e.security),
        None => "-".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["A", "LONGER"],
            &[
                vec!["x".into(), "y".into()],
                vec!["wide cell".into(), "z".into()],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "A          LONGER");
        assert_eq!(lines[2], "wide cell  z");
    }
}
