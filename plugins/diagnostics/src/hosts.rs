//! Host-name reasoning: which names belong to the account's email domain, the standard mail host
//! names of a domain, and near-miss (typo) candidates for a name that does not exist.

use mailmend_core::Protocol;
use std::collections::HashMap;

/// The most edits between a configured name's registrable part and the email domain for the name
/// still to count as a typo of it.
pub const MAX_TYPO_DISTANCE: usize = 2;

/// The form host names are compared in: trimmed, without a final dot, lower-case.
pub fn normalize(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `host` is `domain` or one of its subdomains (`mail.example.com` is in `example.com`,
/// `evilexample.com` is not).
pub fn in_domain(host: &str, domain: &str) -> bool {
    let host = normalize(host);
    let domain = normalize(domain);
    !domain.is_empty() && (host == domain || host.ends_with(&format!(".{domain}")))
}

/// The standard host names a client tries for `protocol` in `domain`, in the order it tries them
/// (Thunderbird's guess).
pub fn standard_hosts(protocol: Protocol, domain: &str) -> Vec<String> {
    let d = normalize(domain);
    let prefixes: &[&str] = match protocol {
        Protocol::Imap => &["imap", "mail"],
        Protocol::Pop3 => &["pop3", "pop", "mail"],
        Protocol::Smtp => &["smtp", "mail"],
        Protocol::Exchange => &["mail"],
    };
    let mut hosts: Vec<String> = prefixes.iter().map(|p| format!("{p}.{d}")).collect();
    hosts.push(d);
    hosts
}

/// Every standard mail host name of `domain`, whatever the protocol.
fn all_standard_hosts(domain: &str) -> Vec<String> {
    let d = normalize(domain);
    let mut hosts = vec![format!("imap.{d}"), format!("mail.{d}"), d.clone()];
    for p in ["smtp", "pop", "pop3"] {
        hosts.push(format!("{p}.{d}"));
    }
    hosts
}

/// Names inside `domain` that `host` (which does not exist) was probably meant to be, best first.
///
/// The host's registrable part (its last labels, as many as the email domain has) must be within
/// [`MAX_TYPO_DISTANCE`] Damerau-Levenshtein edits of the email domain; otherwise the name is not
/// a typo of the account's domain and nothing is suggested. The candidates are the host's own
/// leading labels on the email domain (`imap.exmaple.com` → `imap.example.com`), then the
/// domain's standard mail host names, nearest to the configured name first.
pub fn typo_candidates(host: &str, domain: &str) -> Vec<String> {
    let host = normalize(host);
    let domain = normalize(domain);
    if host.is_empty() || domain.is_empty() {
        return Vec::new();
    }
    let host_labels: Vec<&str> = host.split('.').collect();
    let n = domain.split('.').count();
    let (prefix, registrable) = if host_labels.len() > n {
        let split = host_labels.len() - n;
        (
            host_labels[..split].join("."),
            host_labels[split..].join("."),
        )
    } else {
        (String::new(), host.clone())
    };
    if damerau_levenshtein(&registrable, &domain) > MAX_TYPO_DISTANCE {
        return Vec::new();
    }
    let mut candidates = Vec::new();
    if !prefix.is_empty() {
        candidates.push(format!("{prefix}.{domain}"));
    }
    let mut standard = all_standard_hosts(&domain);
    // A stable sort keeps the standard order between names equally near the configured one.
    standard.sort_by_key(|name| damerau_levenshtein(name, &host));
    candidates.extend(standard);
    let mut seen = Vec::new();
    candidates.retain(|c| {
        if *c == host || seen.contains(c) {
            return false;
        }
        seen.push(c.clone());
        true
    });
    candidates
}

/// The (unrestricted) Damerau-Levenshtein distance: insertions, deletions, substitutions and
/// transpositions of adjacent characters, each counting one edit.
pub fn damerau_levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (n, m) = (a.len(), b.len());
    let max = n + m;
    // The table has an extra border row and column holding `max`, as in Lowrance and Wagner.
    let mut d = vec![vec![0usize; m + 2]; n + 2];
    d[0][0] = max;
    for i in 0..=n {
        d[i + 1][0] = max;
        d[i + 1][1] = i;
    }
    for j in 0..=m {
        d[0][j + 1] = max;
        d[1][j + 1] = j;
    }
    let mut last_row: HashMap<char, usize> = HashMap::new();
    for i in 1..=n {
        let mut last_match_col = 0;
        for j in 1..=m {
            let i1 = last_row.get(&b[j - 1]).copied().unwrap_or(0);
            let j1 = last_match_col;
            let cost = if a[i - 1] == b[j - 1] {
                last_match_col = j;
                0
            } else {
                1
            };
            d[i + 1][j + 1] = (d[i][j] + cost)
                .min(d[i + 1][j] + 1)
                .min(d[i][j + 1] + 1)
                .min(d[i1][j1] + (i - i1 - 1) + 1 + (j - j1 - 1));
        }
        last_row.insert(a[i - 1], i);
    }
    d[n + 1][m + 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_a_transposition_as_one_edit() {
        assert_eq!(damerau_levenshtein("exmaple.com", "example.com"), 1);
        assert_eq!(damerau_levenshtein("example.com", "example.com"), 0);
        assert_eq!(damerau_levenshtein("kitten", "sitting"), 3);
        assert_eq!(damerau_levenshtein("", "abc"), 3);
        // The unrestricted distance edits a transposed pair again; the restricted one gives 3.
        assert_eq!(damerau_levenshtein("ca", "abc"), 2);
    }

    #[test]
    fn typo_in_the_domain_keeps_the_hosts_own_prefix_first() {
        let c = typo_candidates("imap.exmaple.com", "example.com");
        assert_eq!(c[0], "imap.example.com");
        assert!(c.contains(&"mail.example.com".to_string()));
        assert!(c.contains(&"example.com".to_string()));
        assert!(c.iter().all(|h| in_domain(h, "example.com")));
    }

    #[test]
    fn typo_in_the_prefix_suggests_the_nearest_standard_name_first() {
        let c = typo_candidates("imapp.example.com", "Example.COM");
        assert_eq!(c[0], "imap.example.com");
        assert!(!c.contains(&"imapp.example.com".to_string()));
    }

    #[test]
    fn a_name_of_another_domain_is_no_typo() {
        assert!(typo_candidates("imap.totally-different.org", "example.com").is_empty());
        assert!(typo_candidates("imap.example.com", "").is_empty());
    }

    #[test]
    fn in_domain_is_by_label_not_by_suffix() {
        assert!(in_domain("mail.example.com", "example.com"));
        assert!(in_domain("EXAMPLE.com.", "example.com"));
        assert!(!in_domain("evilexample.com", "example.com"));
        assert!(!in_domain("example.com.evil.net", "example.com"));
    }

    #[test]
    fn standard_hosts_follow_the_protocol() {
        assert_eq!(
            standard_hosts(Protocol::Smtp, "example.com"),
            ["smtp.example.com", "mail.example.com", "example.com"]
        );
        assert_eq!(
            standard_hosts(Protocol::Pop3, "example.com")[..2],
            ["pop3.example.com", "pop.example.com"]
        );
    }
}
