//! Kerberos ticket renewal: reading `klist` output and deciding whether a ticket can be renewed,
//! and on Linux the `kerberos_renew` performer.
//!
//! Times come from `klist -f` run with `LC_ALL=C` and `TZ=UTC`, so they are printed in the C
//! locale's format in UTC; the parser also accepts the other formats MIT klist falls back to.
//! The ccache file itself is never read: it holds the session keys.

#[cfg(target_os = "linux")]
mod perform;

#[cfg(target_os = "linux")]
pub use perform::KerberosRenew;

use crate::ParseError;
use serde::Serialize;

/// What klist shows of the ticket-granting ticket; no ticket or key material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ticket {
    pub cache: String,
    pub principal: String,
    pub service: String,
    /// Seconds since the Unix epoch, UTC.
    pub starts: i64,
    pub expires: i64,
    pub renew_until: Option<i64>,
    pub renewable: bool,
}

/// Parses `klist -f` output and returns the ticket-granting ticket of the default principal's
/// realm (or the first `krbtgt/` ticket when the cache has none for that realm).
pub fn parse_klist(text: &str) -> Result<Ticket, ParseError> {
    let err = |detail: &str| ParseError::Klist {
        detail: detail.to_string(),
    };
    let mut cache = String::new();
    let mut principal = String::new();
    let mut tickets: Vec<Ticket> = Vec::new();
    let mut in_list = false;
    for line in text.lines() {
        if let Some(c) = line.strip_prefix("Ticket cache:") {
            cache = c.trim().to_string();
            continue;
        }
        if let Some(p) = line.strip_prefix("Default principal:") {
            principal = p.trim().to_string();
            continue;
        }
        if line.starts_with("Valid starting") {
            in_list = true;
            continue;
        }
        if !in_list || line.trim().is_empty() {
            continue;
        }
        if line.starts_with(char::is_whitespace) {
            // A detail line of the ticket above: `renew until T`, `Flags: X`, or both.
            let Some(t) = tickets.last_mut() else {
                continue;
            };
            let l = line.trim();
            let (renew, flags) = match l.find("Flags:") {
                Some(i) => (&l[..i], Some(l[i + "Flags:".len()..].trim())),
                None => (l, None),
            };
            if let Some(r) = renew
                .trim()
                .trim_end_matches(',')
                .strip_prefix("renew until")
            {
                t.renew_until = parse_time(r.trim());
                if t.renew_until.is_none() {
                    return Err(err(&format!("unreadable renew-until time {:?}", r.trim())));
                }
                t.renewable = true;
            }
            if let Some(f) = flags {
                t.renewable = f.contains('R');
            }
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((service, times)) = words.split_last() else {
            continue;
        };
        let Some((starts, expires)) = split_times(times) else {
            return Err(err(&format!("unreadable ticket line {line:?}")));
        };
        tickets.push(Ticket {
            cache: cache.clone(),
            principal: principal.clone(),
            service: service.to_string(),
            starts,
            expires,
            renew_until: None,
            renewable: false,
        });
    }
    if principal.is_empty() {
        return Err(err(
            "no default principal (an empty or missing credential cache)",
        ));
    }
    let realm = principal.rsplit('@').next().unwrap_or_default();
    let tgt = format!("krbtgt/{realm}@{realm}");
    let pick = tickets.iter().position(|t| t.service == tgt).or_else(|| {
        tickets
            .iter()
            .position(|t| t.service.starts_with("krbtgt/"))
    });
    match pick {
        Some(i) => Ok(tickets.swap_remove(i)),
        None => Err(err(&format!(
            "no ticket-granting ticket for {principal} in the cache"
        ))),
    }
}

/// Splits the words before the service name into the start and end times.
fn split_times(words: &[&str]) -> Option<(i64, i64)> {
    let n = words.len();
    // Both columns use the same format, so try the even split first, then any other.
    let mut splits: Vec<usize> = vec![n / 2];
    splits.extend((1..n).filter(|i| *i != n / 2));
    for i in splits.into_iter().filter(|i| *i > 0 && *i < n) {
        if let (Some(a), Some(b)) = (
            parse_time(&words[..i].join(" ")),
            parse_time(&words[i..].join(" ")),
        ) {
            return Some((a, b));
        }
    }
    None
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// Parses one klist time, taken as UTC: `11/22/26 19:34:42`, `11/22/2026 19:34:42`,
/// `2026-11-22 19:34:42`, `2026-11-22T19:34:42`, `Sun Nov 22 19:34:42 2026`, `22 Nov 2026 19:34:42`.
pub fn parse_time(s: &str) -> Option<i64> {
    // An ISO date and time joined by `T` is two words; a weekday such as `Tue` is left alone.
    let words: Vec<&str> = s
        .split_whitespace()
        .flat_map(|w| match w.split_once('T') {
            Some((d, t)) if d.contains('-') => vec![d, t],
            _ => vec![w],
        })
        .collect();
    let time = words.iter().find(|w| w.contains(':'))?;
    let hms: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let (h, mi, sec) = match hms.as_slice() {
        [h, m] => (*h, *m, 0),
        [h, m, s] => (*h, *m, *s),
        _ => return None,
    };
    let rest: Vec<&str> = words.iter().filter(|w| !w.contains(':')).copied().collect();
    let (y, mo, d) = if let Some(w) = rest.iter().find(|w| w.contains('/')) {
        let p: Vec<i64> = w
            .split('/')
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        let [m, d, y] = p.as_slice() else { return None };
        (*y, *m, *d)
    } else if let Some(w) = rest.iter().find(|w| w.matches('-').count() == 2) {
        let p: Vec<i64> = w
            .split('-')
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        let [y, m, d] = p.as_slice() else { return None };
        (*y, *m, *d)
    } else {
        let month = rest.iter().find_map(|w| {
            let lw = w.to_ascii_lowercase();
            MONTHS.iter().position(|m| lw.starts_with(m))
        })?;
        let nums: Vec<i64> = rest.iter().filter_map(|w| w.parse().ok()).collect();
        let [a, b] = nums.as_slice() else { return None };
        // The year is the number above 31.
        let (d, y) = if *a > 31 { (*b, *a) } else { (*a, *b) };
        (y, month as i64 + 1, d)
    };
    let y = match y {
        0..=69 => 2000 + y,
        70..=99 => 1900 + y,
        _ => y,
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats epoch seconds as RFC 3339 UTC, for the audit record.
pub fn format_time(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Inverse of days_from_civil.
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Why the ticket cannot be renewed at `now`, if it cannot.
pub fn check_renewable(t: &Ticket, now: i64) -> Result<(), String> {
    if !t.renewable {
        return Err(format!(
            "the ticket of {} is not renewable (it was not obtained with kinit -r, or the realm does not allow renewal); the user must sign in again with kinit",
            t.principal
        ));
    }
    if now >= t.expires {
        return Err(format!(
            "the ticket of {} expired at {}; an expired ticket cannot be renewed, the user must sign in again with kinit",
            t.principal,
            format_time(t.expires)
        ));
    }
    if let Some(r) = t.renew_until {
        if now >= r {
            return Err(format!(
                "the renewable lifetime of the ticket of {} ended at {}; the user must sign in again with kinit",
                t.principal,
                format_time(r)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What MIT klist 1.20 printed with `-f`, `LC_ALL=C`, `TZ=UTC`.
    const RENEWABLE: &str = "Ticket cache: FILE:/tmp/cc1\nDefault principal: alice@MMACT.TEST\n\n\
Valid starting     Expires            Service principal\n\
11/22/26 19:34:42  11/22/26 20:34:42  krbtgt/MMACT.TEST@MMACT.TEST\n\
\trenew until 11/24/26 19:34:42, Flags: RI\n";

    const NOT_RENEWABLE: &str =
        "Ticket cache: FILE:/tmp/cc3\nDefault principal: alice@MMACT.TEST\n\n\
Valid starting     Expires            Service principal\n\
11/22/26 19:34:57  11/22/26 20:34:57  krbtgt/MMACT.TEST@MMACT.TEST\n\
\tFlags: I\n";

    #[test]
    fn a_renewable_tgt_is_read_with_its_times() {
        let t = parse_klist(RENEWABLE).unwrap();
        assert_eq!(t.principal, "alice@MMACT.TEST");
        assert_eq!(t.cache, "FILE:/tmp/cc1");
        assert_eq!(format_time(t.starts), "2026-11-22T19:34:42Z");
        assert_eq!(format_time(t.expires), "2026-11-22T20:34:42Z");
        assert_eq!(
            t.renew_until.map(format_time).as_deref(),
            Some("2026-11-24T19:34:42Z")
        );
        assert!(t.renewable);
        assert_eq!(check_renewable(&t, t.starts + 10), Ok(()));
    }

    #[test]
    fn a_ticket_without_the_renewable_flag_cannot_be_renewed() {
        let t = parse_klist(NOT_RENEWABLE).unwrap();
        assert!(!t.renewable);
        assert!(check_renewable(&t, t.starts)
            .unwrap_err()
            .contains("not renewable"));
    }

    #[test]
    fn an_expired_ticket_cannot_be_renewed() {
        let t = parse_klist(RENEWABLE).unwrap();
        let e = check_renewable(&t, t.expires).unwrap_err();
        assert!(e.contains("expired at 2026-11-22T20:34:42Z"), "{e}");
        let mut t2 = t.clone();
        t2.expires = t2.renew_until.unwrap() + 10;
        assert!(check_renewable(&t2, t2.renew_until.unwrap())
            .unwrap_err()
            .contains("renewable lifetime"));
    }

    #[test]
    fn the_tgt_of_the_principals_realm_is_picked_among_service_tickets() {
        let text =
            "Ticket cache: KEYRING:persistent:1000:1000\nDefault principal: bob@EXAMPLE.COM\n\n\
Valid starting       Expires              Service principal\n\
Sun Nov 22 19:34:42 2026  Sun Nov 22 20:34:42 2026  imap/mail.example.com@EXAMPLE.COM\n\
\tFlags: FA\n\
Sun Nov 22 19:00:00 2026  Mon Nov 23 05:00:00 2026  krbtgt/EXAMPLE.COM@EXAMPLE.COM\n\
\trenew until Sun Nov 29 19:00:00 2026, Flags: FRIA\n";
        let t = parse_klist(text).unwrap();
        assert_eq!(t.service, "krbtgt/EXAMPLE.COM@EXAMPLE.COM");
        assert_eq!(format_time(t.expires), "2026-11-23T05:00:00Z");
        assert!(t.renewable);
    }

    #[test]
    fn other_klist_time_formats_are_understood() {
        let want = parse_time("11/22/26 19:34:42").unwrap();
        assert_eq!(parse_time("11/22/2026 19:34:42"), Some(want));
        assert_eq!(parse_time("2026-11-22 19:34:42"), Some(want));
        assert_eq!(parse_time("2026-11-22T19:34:42"), Some(want));
        assert_eq!(parse_time("22 Nov 2026 19:34:42"), Some(want));
        assert_eq!(parse_time("Sun Nov 22 19:34:42 2026"), Some(want));
        assert_eq!(parse_time("tomorrow"), None);
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_time(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn an_empty_cache_is_a_clear_error() {
        let e = parse_klist("klist: No credentials cache found (filename: /tmp/x)\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no default principal"), "{e}");
        let e = parse_klist("Ticket cache: FILE:/x\nDefault principal: a@B\n\nValid starting  Expires  Service principal\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no ticket-granting ticket"), "{e}");
    }
}
