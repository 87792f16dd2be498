//! macOS pf: the text of the exception rules, the reading of `pfctl` output, and the choice of
//! the anchor the exceptions live in. Pure; the performer is `pf_perform` (macOS only).
//!
//! The exceptions live in an anchor of the agent's own, so that the administrator's ruleset is
//! never rewritten: each is a `pass out quick` rule per address carrying `label
//! "mailmend:<fix id>"`; undo reloads the anchor without that fix's rules, uninstall flushes the
//! anchor. An anchor's rules only count when the main ruleset evaluates the anchor, and with
//! `quick` a match there ends the evaluation, so the exception wins over a block rule that
//! comes later in the main ruleset. The stock `/etc/pf.conf` of macOS evaluates
//! `anchor "com.apple/*"` near its top and nothing else, so the anchor used is:
//! - `mailmend`, when the administrator's ruleset references it (`anchor "mailmend"` in
//!   pf.conf, the documented way to give the agent a place);
//! - otherwise `com.apple/mailmend`, a sub-anchor that the stock `anchor "com.apple/*"` already
//!   evaluates (pf.conf is left alone: macOS updates rewrite it);
//! - otherwise none: the performer refuses and says what to add to pf.conf.
//!
//! A `block ... quick` rule that comes *before* the anchor point still wins; the executor's
//! re-check after the change catches that and the change is undone.

use std::net::IpAddr;

/// The anchor an administrator can reference in pf.conf for the agent.
pub const OWN_ANCHOR: &str = "mailmend";
/// The sub-anchor evaluated by the stock macOS ruleset's `anchor "com.apple/*"`.
pub const APPLE_SUB_ANCHOR: &str = "com.apple/mailmend";
/// Every anchor the agent may have put rules in (uninstall flushes each).
pub const ANCHORS: [&str; 2] = [OWN_ANCHOR, APPLE_SUB_ANCHOR];

/// The anchor names `pfctl -sr` shows as evaluated by the main ruleset.
pub fn referenced_anchors(main_rules: &str) -> Vec<String> {
    main_rules
        .lines()
        .filter_map(|l| {
            let rest = l.trim_start().strip_prefix("anchor ")?;
            let rest = rest.trim_start().strip_prefix('"')?;
            let end = rest.find('"')?;
            Some(rest[..end].to_string())
        })
        .collect()
}

/// Which anchor the exceptions go in, given the main ruleset (`pfctl -sr`); None when the main
/// ruleset evaluates no anchor the agent can use.
pub fn choose_anchor(main_rules: &str) -> Option<&'static str> {
    let refs = referenced_anchors(main_rules);
    if refs.iter().any(|a| a == OWN_ANCHOR || a == "mailmend/*") {
        return Some(OWN_ANCHOR);
    }
    if refs.iter().any(|a| a == "com.apple/*") {
        return Some(APPLE_SUB_ANCHOR);
    }
    None
}

/// What to tell the administrator when no anchor can be used.
pub const NO_ANCHOR_ADVICE: &str = "the main pf ruleset evaluates neither anchor \"mailmend\" nor \"com.apple/*\"; add `anchor \"mailmend\"` to /etc/pf.conf before its block rules and reload it";

/// The label that tags the rules of one fix.
pub fn label_for(fix_id: &str) -> String {
    super::comment_for(fix_id)
}

/// The pass rules of one exception: one per address, outbound TCP to that address and port
/// only, `quick` so that a later block rule does not override them.
pub fn pass_rules(addresses: &[IpAddr], port: u16, fix_id: &str) -> Vec<String> {
    let label = label_for(fix_id);
    addresses
        .iter()
        .map(|a| {
            let family = if a.is_ipv6() { "inet6" } else { "inet" };
            format!(
                "pass out quick {family} proto tcp from any to {a} port = {port} flags S/SA keep state label \"{label}\""
            )
        })
        .collect()
}

/// One rule of an anchor as `pfctl -a <anchor> -sr` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PfRule {
    pub text: String,
    pub label: Option<String>,
}

/// The rules in `pfctl -sr` output (the indented statistics lines of `-v` are skipped).
pub fn parse_rules(text: &str) -> Vec<PfRule> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with(char::is_whitespace))
        // pfctl warnings ("No ALTQ support in kernel") go to stderr, but be safe.
        .filter(|l| !l.starts_with("No ALTQ") && !l.starts_with("ALTQ"))
        .map(|l| PfRule {
            text: l.trim_end().to_string(),
            label: rule_label(l),
        })
        .collect()
}

/// The value of a rule's `label "..."`.
pub fn rule_label(line: &str) -> Option<String> {
    let i = line.find(" label \"")?;
    let rest = &line[i + " label \"".len()..];
    let end = rest.find('"')?;
    Some(rest[..end].to_string())
}

/// The ruleset to load into the anchor so that it holds `current` plus `added`; None when the
/// fix's rules are already there (applying twice changes nothing).
pub fn with_added(current: &[PfRule], added: &[String], fix_id: &str) -> Option<String> {
    let label = label_for(fix_id);
    if current.iter().any(|r| r.label.as_deref() == Some(&label)) {
        return None;
    }
    let mut lines: Vec<&str> = current.iter().map(|r| r.text.as_str()).collect();
    lines.extend(added.iter().map(String::as_str));
    Some(join_lines(&lines))
}

/// The ruleset to load so that the anchor keeps everything but the rules whose label `pred`
/// accepts, and how many rules that removes (zero: nothing to load).
pub fn without(current: &[PfRule], pred: &dyn Fn(&str) -> bool) -> (String, usize) {
    let kept: Vec<&str> = current
        .iter()
        .filter(|r| !r.label.as_deref().is_some_and(pred))
        .map(|r| r.text.as_str())
        .collect();
    (join_lines(&kept), current.len() - kept.len())
}

fn join_lines(lines: &[&str]) -> String {
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

/// Whether pf is enabled, from `pfctl -s info`; None when the output says neither.
pub fn parse_enabled(info: &str) -> Option<bool> {
    info.lines().find_map(|l| {
        let rest = l.trim_start().strip_prefix("Status:")?.trim_start();
        if rest.starts_with("Enabled") {
            Some(true)
        } else if rest.starts_with("Disabled") {
            Some(false)
        } else {
            None
        }
    })
}

/// Main-ruleset block rules that may stop outbound TCP to `port`: every `block` rule that is
/// not inbound-only and names no other port. Evidence for the audit record, not a full pf
/// evaluation (the executor's re-check is what decides whether the exception helped).
pub fn possible_blockers(main_rules: &str, port: u16) -> Vec<String> {
    parse_rules(main_rules)
        .into_iter()
        .map(|r| r.text)
        .filter(|t| t.starts_with("block"))
        .filter(|t| {
            let words: Vec<&str> = t.split_whitespace().collect();
            let inbound_only = words.contains(&"in") && !words.contains(&"out");
            let other_port = words
                .windows(3)
                .find(|w| w[0] == "port" && w[1] == "=")
                .is_some_and(|w| w[2] != port.to_string());
            !inbound_only && !other_port
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pfctl -sr` of a stock macOS 14 ruleset with an administrator's block rule appended.
    const MAIN: &str = "scrub-anchor \"com.apple/*\" all fragment reassemble
anchor \"com.apple/*\" all
block drop out quick proto tcp from any to any port = 993
block drop in quick proto tcp from any to any port = 22
block return out proto tcp from any to any port = 25
";

    #[test]
    fn the_stock_ruleset_gets_the_apple_sub_anchor_and_an_own_reference_wins() {
        assert_eq!(referenced_anchors(MAIN), vec!["com.apple/*".to_string()]);
        assert_eq!(choose_anchor(MAIN), Some(APPLE_SUB_ANCHOR));
        let own = format!("anchor \"mailmend\" all\n{MAIN}");
        assert_eq!(choose_anchor(&own), Some(OWN_ANCHOR));
        assert_eq!(choose_anchor("block drop out all\n"), None);
        assert_eq!(choose_anchor(""), None);
    }

    #[test]
    fn pass_rules_allow_only_tcp_to_the_hosts_addresses_and_port_and_carry_the_fix_id() {
        let rules = pass_rules(
            &[
                "192.0.2.10".parse().unwrap(),
                "2001:db8::5".parse().unwrap(),
            ],
            993,
            "fx-1",
        );
        assert_eq!(
            rules,
            vec![
                "pass out quick inet proto tcp from any to 192.0.2.10 port = 993 flags S/SA keep state label \"mailmend:fx-1\"",
                "pass out quick inet6 proto tcp from any to 2001:db8::5 port = 993 flags S/SA keep state label \"mailmend:fx-1\"",
            ]
        );
    }

    /// `pfctl -a mailmend -sr -v` after two fixes: statistics lines are indented.
    const ANCHOR: &str = "pass out quick inet proto tcp from any to 192.0.2.10 port = 993 flags S/SA keep state label \"mailmend:fx-1\"
  [ Evaluations: 12        Packets: 0         Bytes: 0           States: 0     ]
  [ Inserted: uid 0 pid 421 State Creations: 0     ]
pass out quick inet proto tcp from any to 192.0.2.20 port = 587 flags S/SA keep state label \"mailmend:fx-2\"
";

    #[test]
    fn anchor_rules_are_read_with_their_labels() {
        let rules = parse_rules(ANCHOR);
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].label.as_deref(), Some("mailmend:fx-1"));
        assert_eq!(rules[1].label.as_deref(), Some("mailmend:fx-2"));
        assert_eq!(rule_label("pass out all"), None);
    }

    #[test]
    fn adding_twice_changes_nothing_the_second_time() {
        let rules = parse_rules(ANCHOR);
        assert_eq!(with_added(&rules, &["x".into()], "fx-1"), None);
        let added = pass_rules(&["192.0.2.30".parse().unwrap()], 465, "fx-3");
        let text = with_added(&rules, &added, "fx-3").unwrap();
        let back = parse_rules(&text);
        assert_eq!(back.len(), 3);
        assert_eq!(back[..2], rules[..]);
        assert_eq!(back[2].label.as_deref(), Some("mailmend:fx-3"));
    }

    #[test]
    fn undo_keeps_the_other_fixes_rules_and_uninstall_keeps_none() {
        let rules = parse_rules(ANCHOR);
        let (text, removed) = without(&rules, &|l| l == "mailmend:fx-1");
        assert_eq!(removed, 1);
        let kept = parse_rules(&text);
        assert_eq!(kept, rules[1..]);
        let (_, none) = without(&kept, &|l| l == "mailmend:fx-1");
        assert_eq!(none, 0);
        let (all, n) = without(&rules, &|l| l.starts_with("mailmend:"));
        assert_eq!((all.trim(), n), ("", 2));
    }

    #[test]
    fn pf_status_is_read_from_pfctl_info() {
        let info = "No ALTQ support in kernel\nStatus: Enabled for 0 days 00:10:02           Debug: Urgent\n";
        assert_eq!(parse_enabled(info), Some(true));
        assert_eq!(parse_enabled("Status: Disabled\n"), Some(false));
        assert_eq!(parse_enabled("garbage"), None);
    }

    #[test]
    fn block_rules_for_other_ports_or_inbound_only_are_not_blockers() {
        assert_eq!(
            possible_blockers(MAIN, 993),
            vec!["block drop out quick proto tcp from any to any port = 993"]
        );
        assert_eq!(
            possible_blockers(MAIN, 25),
            vec!["block return out proto tcp from any to any port = 25"]
        );
    }
}
