//! Property tests of the readers and quoting of the macOS, Windows and notification code on
//! thousands of pseudo-random inputs: nothing panics, quoting round-trips, pf anchors keep every
//! rule but the removed fix's, and the Windows rule description gives back the rules it lists.
//! Runs on every platform (the code under test is pure).

use mailmend_actions::credman::target_names_host;
use mailmend_actions::firewall::pf;
use mailmend_actions::firewall::winfw::{
    addresses_contain, description, disabled_in_description, ports_contain, FwRule,
};
use mailmend_actions::notify::{
    applescript_string, clean_text, gvariant_string, parse_console_uid, parse_gdbus_reply,
};
use std::net::IpAddr;

/// xorshift64*: a small deterministic generator, so that a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A string of 0..max pieces from `pieces`.
    fn text(&mut self, pieces: &[&str], max: usize) -> String {
        (0..self.below(max + 1))
            .map(|_| *self.pick(pieces))
            .collect()
    }
}

const PIECES: &[&str] = &[
    "a",
    "Z",
    "0",
    "9",
    ".",
    "-",
    "_",
    ":",
    "/",
    ",",
    ";",
    " ",
    "\"",
    "'",
    "\\",
    "\n",
    "\r",
    "\t",
    "\u{0}",
    "\u{7}",
    "\u{1b}",
    "é",
    "…",
    "\u{202e}",
    "imap",
    "example",
    "com",
    "*",
    "192.0.2.1",
    "2001:db8::1",
    "/24",
    "/255.255.255.0",
    "-",
    "993",
    "label \"",
    "mailmend:",
    "pass out",
    "block",
    "port = ",
    "anchor \"",
    "(uint32 ",
    ",)",
    "; disabled: ",
    "[",
    "]",
    "{",
    "}",
];

#[test]
fn credential_target_matching_never_panics_and_only_matches_what_contains_the_host() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for _ in 0..20_000 {
        let target = rng.text(PIECES, 8);
        let host = rng.text(&["imap", ".", "example", "com", "-", "é", "a"], 5);
        if target_names_host(&target, &host) {
            let h = host.trim_end_matches('.').to_ascii_lowercase();
            assert!(
                target.to_ascii_lowercase().contains(&h),
                "{target:?} / {host:?}"
            );
        }
    }
}

#[test]
fn firewall_address_and_port_lists_never_panic() {
    let mut rng = Rng(0xdead_beef_0bad_f00d);
    let addrs: [IpAddr; 3] = [
        "192.0.2.1".parse().unwrap(),
        "2001:db8::1".parse().unwrap(),
        "0.0.0.0".parse().unwrap(),
    ];
    for _ in 0..20_000 {
        let list = rng.text(PIECES, 6);
        for a in addrs {
            let _ = addresses_contain(&list, a);
        }
        let _ = ports_contain(&list, *rng.pick(&[0, 25, 993, 65535]));
    }
}

/// Undoes `gvariant_string`.
fn gvariant_decode(lit: &str) -> String {
    let inner = &lit[1..lit.len() - 1];
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            assert_ne!(c, '\'', "an unescaped quote in {lit:?}");
            out.push(c);
            continue;
        }
        match chars.next().unwrap() {
            'n' => out.push('\n'),
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
            }
            other => out.push(other),
        }
    }
    out
}

/// Undoes `applescript_string` (control characters other than a newline became spaces).
fn applescript_decode(lit: &str) -> String {
    let inner = &lit[1..lit.len() - 1];
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            assert_ne!(c, '"', "an unescaped quote in {lit:?}");
            out.push(c);
            continue;
        }
        match chars.next().unwrap() {
            'n' => out.push('\n'),
            other => out.push(other),
        }
    }
    out
}

#[test]
fn quoting_for_gdbus_and_applescript_round_trips() {
    let mut rng = Rng(0x0f0f_0f0f_1234_4321);
    for _ in 0..20_000 {
        let s = rng.text(PIECES, 10);
        assert_eq!(gvariant_decode(&gvariant_string(&s)), s);
        let expected: String = s
            .chars()
            .map(|c| if c != '\n' && c.is_control() { ' ' } else { c })
            .collect();
        assert_eq!(applescript_decode(&applescript_string(&s)), expected);
    }
}

#[test]
fn cleaned_text_has_no_control_characters_and_a_bounded_length() {
    let mut rng = Rng(0x5555_aaaa_5555_aaaa);
    for _ in 0..20_000 {
        let s = rng.text(PIECES, 30);
        let max = 1 + rng.below(40);
        let c = clean_text(&s, max);
        assert!(c.chars().count() <= max, "{c:?}");
        assert!(c.chars().all(|x| x == '\n' || !x.is_control()), "{c:?}");
        assert!(!c.contains('\u{202e}'));
        let _ = parse_gdbus_reply(&s);
        let _ = parse_console_uid(&s);
    }
}

#[test]
fn pf_anchors_keep_every_rule_but_the_removed_fixes() {
    let mut rng = Rng(0x7777_1111_3333_9999);
    let ids = ["fx-1", "fx-2", "fx-3"];
    for _ in 0..5_000 {
        // An anchor built by successive fixes, plus noise lines pfctl might print.
        let mut current = pf::parse_rules(&rng.text(&["  [ Evaluations: 1 ]\n", "\n"], 2));
        let mut applied = Vec::new();
        for _ in 0..rng.below(4) {
            let id = *rng.pick(&ids);
            let addrs: Vec<IpAddr> = (0..1 + rng.below(2))
                .map(|i| {
                    format!("192.0.2.{}", 1 + i + rng.below(200))
                        .parse()
                        .unwrap()
                })
                .collect();
            let added = pf::pass_rules(&addrs, 993, id);
            match pf::with_added(&current, &added, id) {
                Some(text) => {
                    assert!(!applied.contains(&id));
                    applied.push(id);
                    current = pf::parse_rules(&text);
                }
                None => assert!(applied.contains(&id)),
            }
        }
        let gone = *rng.pick(&ids);
        let label = pf::label_for(gone);
        let (text, removed) = pf::without(&current, &|l| l == label);
        let kept = pf::parse_rules(&text);
        assert_eq!(kept.len() + removed, current.len());
        assert!(kept.iter().all(|r| r.label.as_deref() != Some(&label)));
        let others: Vec<_> = current
            .iter()
            .filter(|r| r.label.as_deref() != Some(&label))
            .cloned()
            .collect();
        assert_eq!(kept, others);
        // Random text never makes the readers panic.
        let noise = rng.text(PIECES, 12);
        let _ = pf::parse_rules(&noise);
        let _ = pf::choose_anchor(&noise);
        let _ = pf::possible_blockers(&noise, 993);
        let _ = pf::parse_enabled(&noise);
    }
}

#[test]
fn a_windows_rule_description_gives_back_the_rules_it_lists() {
    let mut rng = Rng(0x9999_2222_4444_6666);
    for _ in 0..5_000 {
        let rules: Vec<FwRule> = (0..rng.below(3))
            .map(|_| FwRule {
                name: rng.text(PIECES, 6),
                enabled: true,
                outbound: true,
                block: true,
                protocol: 6,
                local_addresses: "*".into(),
                local_ports: "*".into(),
                remote_addresses: rng.text(PIECES, 3),
                remote_ports: rng.text(PIECES, 2),
                profiles: 7,
                application: rng.text(PIECES, 2),
                service: String::new(),
                grouping: rng.text(PIECES, 2),
            })
            .collect();
        let host = rng.text(PIECES, 4);
        let d = description("fx-1", &host, &rules);
        assert_eq!(disabled_in_description(&d), rules, "{d}");
        let _ = disabled_in_description(&rng.text(PIECES, 10));
    }
}
