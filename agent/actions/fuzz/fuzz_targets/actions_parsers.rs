//! Fuzz target: the readers of tool output and of user-controlled names in mailmend-actions
//! never panic (nft JSON, iptables -S, klist, pfctl, Windows Firewall address and port lists,
//! Credential Manager target names, gdbus replies, notification text), and the pf anchor
//! rewrite keeps every rule but the removed fix's.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailmend_actions::credman::target_names_host;
use mailmend_actions::firewall::{iptables, nft, pf, winfw};
use mailmend_actions::kerberos::parse_klist;
use mailmend_actions::notify::{clean_text, gvariant_string, parse_gdbus_reply};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = nft::parse_ruleset(&text);
    let _ = iptables::parse_rules(&text, false);
    let _ = parse_klist(&text);
    let _ = parse_gdbus_reply(&text);
    let _ = winfw::ports_contain(&text, 993);
    let _ = winfw::addresses_contain(&text, "192.0.2.1".parse().unwrap());
    let _ = winfw::disabled_in_description(&text);
    let (host, target) = text.split_once('\n').unwrap_or((&text, ""));
    let _ = target_names_host(target, host);
    let cleaned = clean_text(&text, 600);
    assert!(cleaned.chars().count() <= 600);
    let lit = gvariant_string(&cleaned);
    assert!(lit.starts_with('\'') && lit.ends_with('\''));

    let rules = pf::parse_rules(&text);
    let _ = pf::choose_anchor(&text);
    let label = pf::label_for("fx-fuzz");
    let (kept, removed) = pf::without(&rules, &|l| l == label);
    let back = pf::parse_rules(&kept);
    assert_eq!(back.len() + removed, rules.len());
});
