//! The probe benchmark's arithmetic, as pure functions: statistics over runs, mailmend's own
//! timings read from its `-vv` log, the finding codes of its `--json` output, the issue's
//! targets, and the table.

use serde_json::Value;

/// Median, minimum and maximum of a set of timings, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

impl Stats {
    /// `None` for an empty set.
    pub fn of(values: &[f64]) -> Option<Stats> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Stats {
            median,
            min: v[0],
            max: v[n - 1],
            n,
        })
    }
}

/// One line of mailmend's log (tracing's default format), placed in time.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEvent {
    /// Microseconds since the Unix epoch.
    pub unix_us: u64,
    pub level: String,
    /// The message and its fields, as printed.
    pub text: String,
}

/// Reads `2025-01-02T03:04:05.123456Z  DEBUG message k=v` lines; other lines give `None`.
/// Terminal colour sequences are ignored.
pub fn parse_log_line(line: &str) -> Option<LogEvent> {
    let line = strip_ansi(line);
    let mut parts = line.trim_start().splitn(2, char::is_whitespace);
    let stamp = parts.next()?;
    let rest = parts.next()?.trim_start();
    let unix_us = parse_rfc3339_utc(stamp)?;
    let mut parts = rest.splitn(2, char::is_whitespace);
    let level = parts.next()?.to_string();
    if !["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level.as_str()) {
        return None;
    }
    let text = parts.next().unwrap_or("").trim().to_string();
    Some(LogEvent {
        unix_us,
        level,
        text,
    })
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI sequences end with a letter.
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `YYYY-MM-DDTHH:MM:SS[.frac]Z` to microseconds since the Unix epoch.
fn parse_rfc3339_utc(s: &str) -> Option<u64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|x| x.parse::<i64>().ok());
    let (y, mo, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = match time.split_once('.') {
        Some((a, b)) => (a, b),
        None => (time, ""),
    };
    let mut t = hms.splitn(3, ':').map(|x| x.parse::<i64>().ok());
    let (h, mi, sec) = (t.next()??, t.next()??, t.next()??);
    let mut micros: i64 = 0;
    for (i, c) in frac.chars().take(6).enumerate() {
        micros += i64::from(c.to_digit(10)?) * 10_i64.pow(5 - i as u32);
    }
    let days = days_from_civil(y, mo, day);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec;
    u64::try_from(secs * 1_000_000 + micros).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The value of field `key` in a log line's text: up to the next ` word=` or the end.
pub fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("{key}=");
    let start = text
        .match_indices(&pat)
        .find(|(i, _)| *i == 0 || text.as_bytes()[i - 1] == b' ')?
        .0
        + pat.len();
    let rest = &text[start..];
    let end = rest
        .match_indices(' ')
        .map(|(i, _)| i)
        .find(|&i| {
            let tail = &rest[i + 1..];
            let word: String = tail
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
                .collect();
            !word.is_empty() && tail[word.len()..].starts_with('=')
        })
        .unwrap_or(rest.len());
    Some(rest[..end].trim_matches('"'))
}

/// The message part of a log line's text: what comes before its first `key=value` field,
/// without a span prefix (`span{..}: `).
pub fn message(text: &str) -> &str {
    let text = match text.rfind("}: ") {
        Some(i) => &text[i + 3..],
        None => text,
    };
    let end = text
        .match_indices(' ')
        .map(|(i, _)| i)
        .find(|&i| {
            let tail = &text[i + 1..];
            tail.split_once('=').is_some_and(|(k, _)| {
                !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            })
        })
        .unwrap_or(text.len());
    text[..end].trim()
}

/// One probe of one target, as mailmend logged it.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeSpan {
    pub target: String,
    /// Milliseconds after the process was started.
    pub start_ms: f64,
    pub end_ms: f64,
    /// What mailmend measured itself (`elapsed_ms`).
    pub elapsed_ms: Option<u64>,
    pub healthy: Option<bool>,
}

/// What one `-vv` run says about where its time went.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timeline {
    /// Milliseconds from spawn to the first log line (process start-up, policy, discovery).
    pub first_log_ms: Option<f64>,
    pub probes: Vec<ProbeSpan>,
    /// Every log line as (milliseconds after spawn, level, text).
    pub events: Vec<(f64, String, String)>,
}

impl Timeline {
    /// From the first probe's start to the last probe's end, in milliseconds.
    pub fn probe_span_ms(&self) -> Option<f64> {
        let start = self.probes.iter().map(|p| p.start_ms).reduce(f64::min)?;
        let end = self.probes.iter().map(|p| p.end_ms).reduce(f64::max)?;
        Some(end - start)
    }

    /// The sum of the probes' own durations divided by their span: 1 means one after another,
    /// more means that many at once on average.
    pub fn parallelism(&self) -> Option<f64> {
        let span = self.probe_span_ms()?;
        let sum: f64 = self.probes.iter().map(|p| p.end_ms - p.start_ms).sum();
        (span > 0.0).then(|| sum / span)
    }
}

/// Reads the probe sequence out of a `-vv` log; `start_unix_us` is when the process was
/// spawned. A `probing` line opens a probe of its target and the next `probed` line of the same
/// target closes it.
pub fn timeline(stderr: &str, start_unix_us: u64) -> Timeline {
    let mut t = Timeline::default();
    let mut open: Vec<(String, f64)> = Vec::new();
    for ev in stderr.lines().filter_map(parse_log_line) {
        let at = (ev.unix_us as f64 - start_unix_us as f64) / 1000.0;
        t.first_log_ms.get_or_insert(at);
        let msg = message(&ev.text);
        let target = field(&ev.text, "target").map(str::to_string);
        match (msg, target) {
            ("probing", Some(target)) => open.push((target, at)),
            ("probed", Some(target)) => {
                let start = open
                    .iter()
                    .position(|(t, _)| *t == target)
                    .map(|i| open.remove(i).1)
                    .unwrap_or(at);
                t.probes.push(ProbeSpan {
                    elapsed_ms: field(&ev.text, "elapsed_ms").and_then(|v| v.parse().ok()),
                    healthy: field(&ev.text, "healthy").and_then(|v| v.parse().ok()),
                    target,
                    start_ms: start,
                    end_ms: at,
                });
            }
            _ => {}
        }
        t.events.push((at, ev.level, ev.text));
    }
    t
}

/// The finding codes of a `check --json` document.
pub fn finding_codes(v: &Value) -> Vec<String> {
    let mut codes = Vec::new();
    for a in v["accounts"].as_array().into_iter().flatten() {
        for f in a["findings"].as_array().into_iter().flatten() {
            if let Some(c) = f["code"].as_str() {
                codes.push(c.to_string());
            }
        }
    }
    for f in v["problems"].as_array().into_iter().flatten() {
        if let Some(c) = f["code"].as_str() {
            codes.push(c.to_string());
        }
    }
    codes
}

/// An issue-4 target: at most `rtts` round trips plus `plus_ms`, plus `timeouts` connect
/// timeouts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Target {
    pub rtts: f64,
    pub plus_ms: f64,
    pub timeouts: f64,
}

impl Target {
    /// The allowed wall time for round-trip time `rtt_ms` and connect timeout `timeout_ms`.
    pub fn budget_ms(&self, rtt_ms: f64, timeout_ms: f64) -> f64 {
        self.timeouts * timeout_ms + self.rtts * rtt_ms + self.plus_ms
    }

    /// How the target reads, e.g. `1×timeout + 6×RTT + 100 ms`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.timeouts > 0.0 {
            parts.push(format!("{}×timeout", self.timeouts));
        }
        parts.push(format!("{}×RTT", self.rtts));
        parts.push(format!("{} ms", self.plus_ms));
        parts.join(" + ")
    }
}

/// Lays out rows under headers, columns padded to their widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let w = widths.get(i).copied().unwrap_or(0);
                format!("{c}{}", " ".repeat(w.saturating_sub(c.chars().count())))
            })
            .collect::<Vec<_>>()
            .join("  ");
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        out.push_str(&line(r.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_sets_and_none_for_empty() {
        let s = Stats::of(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (3.0, 1.0, 5.0, 3));
        assert_eq!(Stats::of(&[4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
        assert!(Stats::of(&[]).is_none());
    }

    #[test]
    fn tracing_timestamps_are_placed_in_unix_time() {
        let e = parse_log_line("2024-02-29T12:00:01.250000Z DEBUG probing target=x").unwrap();
        // 2024-02-29T12:00:01Z is 1709208001.
        assert_eq!(e.unix_us, 1_709_208_001_250_000);
        assert_eq!(e.level, "DEBUG");
        assert_eq!(e.text, "probing target=x");
        assert!(parse_log_line("not a log line").is_none());
        assert!(parse_log_line("").is_none());
    }

    #[test]
    fn coloured_log_lines_parse_like_plain_ones() {
        let line = "\u{1b}[2m2024-01-01T00:00:00.000100Z\u{1b}[0m \u{1b}[34mDEBUG\u{1b}[0m probed";
        let e = parse_log_line(line).unwrap();
        assert_eq!(
            (e.unix_us, e.text.as_str()),
            (1_704_067_200_000_100, "probed")
        );
    }

    #[test]
    fn a_target_with_spaces_is_read_whole_from_its_field() {
        let text = "probed target=imap://imap.example.com:993 (tls) healthy=true elapsed_ms=203";
        assert_eq!(
            field(text, "target"),
            Some("imap://imap.example.com:993 (tls)")
        );
        assert_eq!(field(text, "healthy"), Some("true"));
        assert_eq!(field(text, "elapsed_ms"), Some("203"));
        assert_eq!(field(text, "missing"), None);
        assert_eq!(message(text), "probed");
        assert_eq!(
            message("check{account=a}: tcp connect attempt addr=1.2.3.4:993"),
            "tcp connect attempt"
        );
    }

    #[test]
    fn probes_are_paired_by_target_and_their_overlap_is_measured() {
        let log = "\
2024-01-01T00:00:00.100000Z DEBUG probing target=imap://h:993 (tls)
2024-01-01T00:00:00.101000Z DEBUG probing target=smtp://h:465 (tls)
2024-01-01T00:00:00.300000Z DEBUG probed target=smtp://h:465 (tls) healthy=true elapsed_ms=199
2024-01-01T00:00:00.301000Z DEBUG probed target=imap://h:993 (tls) healthy=false elapsed_ms=201
";
        let t = timeline(log, 1_704_067_200_000_000);
        assert_eq!(t.first_log_ms, Some(100.0));
        assert_eq!(t.probes.len(), 2);
        assert_eq!(t.probes[0].target, "smtp://h:465 (tls)");
        assert_eq!(t.probes[1].healthy, Some(false));
        assert_eq!(t.probes[1].elapsed_ms, Some(201));
        assert!((t.probe_span_ms().unwrap() - 201.0).abs() < 1e-9);
        // Two probes of about 200 ms within 201 ms: about two at once.
        assert!((t.parallelism().unwrap() - 400.0 / 201.0).abs() < 1e-9);
        assert_eq!(t.events.len(), 4);
    }

    #[test]
    fn finding_codes_come_from_accounts_and_problems() {
        let v: Value = serde_json::json!({
            "accounts": [{"findings": [{"code": "settings.wrong_port"}]}, {"findings": []}],
            "problems": [{"code": "config.unreadable"}]
        });
        assert_eq!(
            finding_codes(&v),
            vec!["settings.wrong_port", "config.unreadable"]
        );
        assert!(finding_codes(&Value::Null).is_empty());
    }

    #[test]
    fn a_target_budget_adds_round_trips_timeouts_and_slack() {
        let healthy = Target {
            rtts: 5.0,
            plus_ms: 50.0,
            timeouts: 0.0,
        };
        assert_eq!(healthy.budget_ms(50.0, 2000.0), 300.0);
        assert_eq!(healthy.describe(), "5×RTT + 50 ms");
        let dropped = Target {
            rtts: 6.0,
            plus_ms: 100.0,
            timeouts: 1.0,
        };
        assert_eq!(dropped.budget_ms(50.0, 2000.0), 2400.0);
        assert_eq!(dropped.describe(), "1×timeout + 6×RTT + 100 ms");
    }

    #[test]
    fn table_columns_are_aligned() {
        let t = table(&["A", "BB"], &[vec!["xyz".into(), "1".into()]]);
        assert_eq!(t, "A    BB\nxyz  1\n");
    }
}
