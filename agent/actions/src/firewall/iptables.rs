//! The iptables side of the firewall model, for machines without nftables tables: `iptables -S`
//! output into [`Ruleset`], and the argument lists that insert and delete exception rules.

use super::model::{AddrItem, Chain, ChainId, Cond, Family, Rule, Ruleset, Verdict, TCP};
use std::net::IpAddr;

/// The chain locally generated packets pass through in the filter table.
pub const OUTPUT: &str = "OUTPUT";

/// Splits one line of `iptables -S` output into words, honouring the double quotes and
/// backslash escapes iptables uses around values with spaces.
pub fn tokenize(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// Parses `iptables -S` (or `ip6tables -S`, with `v6`) output of the filter table. Only OUTPUT
/// is a base chain; user chains are kept for jumps.
pub fn parse_rules(text: &str, v6: bool) -> Ruleset {
    let family = if v6 { Family::Ip6 } else { Family::Ip };
    let mut chains: Vec<Chain> = Vec::new();
    let chain_mut = |chains: &mut Vec<Chain>, name: &str| -> usize {
        if let Some(i) = chains.iter().position(|c| c.id.chain == name) {
            return i;
        }
        chains.push(Chain {
            id: ChainId {
                family,
                table: "filter".into(),
                chain: name.into(),
            },
            base: name == OUTPUT,
            policy_drop: false,
            rules: Vec::new(),
        });
        chains.len() - 1
    };
    for line in text.lines() {
        let t = tokenize(line);
        match t.first().map(String::as_str) {
            Some("-P") if t.len() >= 3 => {
                let i = chain_mut(&mut chains, &t[1]);
                chains[i].policy_drop = t[2] == "DROP";
            }
            Some("-N") if t.len() >= 2 => {
                chain_mut(&mut chains, &t[1]);
            }
            Some("-A") if t.len() >= 2 => {
                let i = chain_mut(&mut chains, &t[1]);
                let handle = chains[i].rules.len() as u64 + 1;
                let mut rule = parse_spec(&t[2..], v6);
                rule.handle = handle;
                chains[i].rules.push(rule);
            }
            _ => {}
        }
    }
    Ruleset { chains }
}

/// The names of every chain in `iptables -S` output (firewalld and ufw name theirs).
pub fn chain_names(text: &str) -> Vec<String> {
    text.lines()
        .map(tokenize)
        .filter(|t| t.len() >= 2 && (t[0] == "-N" || t[0] == "-P"))
        .map(|t| t[1].clone())
        .collect()
}

fn parse_addrs(s: &str, v6: bool) -> Option<Vec<AddrItem>> {
    s.split(',')
        .map(|part| {
            let (a, len) = match part.split_once('/') {
                Some((a, l)) => (a, Some(l)),
                None => (part, None),
            };
            let addr: IpAddr = a.parse().ok()?;
            if addr.is_ipv6() != v6 {
                return None;
            }
            let max = if v6 { 128 } else { 32 };
            let len = match len {
                None => max,
                Some(l) => match l.parse::<u8>() {
                    Ok(n) => n,
                    // iptables-legacy may print a dotted mask for non-contiguous masks.
                    Err(_) => {
                        let m: std::net::Ipv4Addr = l.parse().ok()?;
                        let bits = u32::from(m);
                        if bits.leading_ones() + bits.trailing_zeros() != 32 {
                            return None;
                        }
                        bits.leading_ones() as u8
                    }
                },
            };
            Some(AddrItem::Net(addr, len))
        })
        .collect()
}

fn parse_ports(s: &str) -> Option<Vec<(u16, u16)>> {
    s.split(',')
        .map(|p| match p.split_once(':') {
            Some((lo, hi)) => {
                let lo = if lo.is_empty() { 0 } else { lo.parse().ok()? };
                let hi = if hi.is_empty() {
                    u16::MAX
                } else {
                    hi.parse().ok()?
                };
                Some((lo, hi))
            }
            None => p.parse().ok().map(|n| (n, n)),
        })
        .collect()
}

fn proto_number(s: &str) -> Option<u8> {
    match s.to_ascii_lowercase().as_str() {
        "tcp" => Some(6),
        "udp" => Some(17),
        "icmp" => Some(1),
        "ipv6-icmp" | "icmpv6" => Some(58),
        "sctp" => Some(132),
        "udplite" => Some(136),
        "dccp" => Some(33),
        "esp" => Some(50),
        "ah" => Some(51),
        "gre" => Some(47),
        n => n.parse().ok(),
    }
}

/// Parses the words of one rule after `-A CHAIN`.
fn parse_spec(t: &[String], v6: bool) -> Rule {
    let mut conds = Vec::new();
    let mut verdict = Verdict::Continue;
    let mut comment = None;
    let mut proto: Option<u8> = None;
    let mut negate = false;
    let mut i = 0;
    while i < t.len() {
        let opt = t[i].as_str();
        let val = t.get(i + 1).map(String::as_str);
        let mut used = 2;
        match (opt, val) {
            ("!", _) => {
                negate = true;
                i += 1;
                continue;
            }
            ("-d" | "--destination", Some(v)) => conds.push(match parse_addrs(v, v6) {
                Some(items) => Cond::Daddr { v6, negate, items },
                None => Cond::Unknown(format!("-d {v}")),
            }),
            ("-p" | "--protocol", Some(v)) => {
                if v != "all" && v != "0" {
                    match proto_number(v) {
                        Some(n) => {
                            if !negate {
                                proto = Some(n);
                            }
                            conds.push(Cond::L4Proto {
                                negate,
                                protos: vec![n],
                            });
                        }
                        None => conds.push(Cond::Unknown(format!("-p {v}"))),
                    }
                }
            }
            ("-m" | "--match", Some(_)) => {}
            ("--dport" | "--destination-port" | "--dports" | "--destination-ports", Some(v)) => {
                conds.push(match parse_ports(v) {
                    Some(ranges) => Cond::Dport {
                        proto: Some(proto.unwrap_or(TCP)),
                        negate,
                        ranges,
                    },
                    None => Cond::Unknown(format!("{opt} {v}")),
                })
            }
            ("--ctstate" | "--state", Some(v)) => conds.push(Cond::CtState {
                negate,
                includes_new: v.split(',').any(|s| s.eq_ignore_ascii_case("NEW")),
            }),
            ("--comment", Some(v)) => comment = Some(v.to_string()),
            ("-j" | "--jump", Some(v)) => {
                verdict = match v {
                    "ACCEPT" => Verdict::Accept,
                    "DROP" => Verdict::Drop,
                    "REJECT" => Verdict::Reject,
                    "RETURN" => Verdict::Return,
                    // A user chain, or a non-terminating target (LOG, MARK) that names no chain
                    // and so is skipped by the evaluation.
                    v => Verdict::Jump(v.to_string()),
                }
            }
            ("-g" | "--goto", Some(v)) => verdict = Verdict::Goto(v.to_string()),
            ("--reject-with", Some(_)) => {}
            (o, _) if o.starts_with('-') => {
                // An option this model does not know: note it and skip its values.
                conds.push(Cond::Unknown(o.to_string()));
                used = 1;
                while i + used < t.len() && !t[i + used].starts_with('-') && t[i + used] != "!" {
                    used += 1;
                }
            }
            _ => used = 1,
        }
        negate = false;
        i += used;
    }
    Rule {
        handle: 0,
        conds,
        verdict,
        comment,
    }
}

/// The arguments that insert one exception into OUTPUT at 1-based `position` (None: append).
pub fn insert_args(
    position: Option<u64>,
    address: IpAddr,
    port: u16,
    comment: &str,
) -> Vec<String> {
    let mut a: Vec<String> = match position {
        Some(p) => vec!["-I".into(), OUTPUT.into(), p.to_string()],
        None => vec!["-A".into(), OUTPUT.into()],
    };
    a.extend(
        [
            "-d",
            &address.to_string(),
            "-p",
            "tcp",
            "--dport",
            &port.to_string(),
            "-m",
            "comment",
            "--comment",
            comment,
            "-j",
            "ACCEPT",
        ]
        .map(str::to_string),
    );
    a
}

/// The `-D` argument lists that delete every rule (of any chain) whose comment satisfies
/// `pred`, rebuilt from the rules' own specification as `iptables -S` printed it.
pub fn delete_args(text: &str, pred: &dyn Fn(&str) -> bool) -> Vec<Vec<String>> {
    text.lines()
        .map(tokenize)
        .filter(|t| t.len() >= 2 && t[0] == "-A")
        .filter(|t| {
            t.windows(2)
                .any(|w| w[0] == "--comment" && pred(w[1].as_str()))
        })
        .map(|mut t| {
            t[0] = "-D".into();
            t
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::model::{analyse, plan, Outcome};
    use super::*;

    const SAVE: &str = "-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n-N mail\n\
-A OUTPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
-A OUTPUT -p udp -m udp --dport 993 -j DROP\n\
-A OUTPUT -o eth9 -j LOG --log-prefix \"out going\"\n\
-A OUTPUT -d 127.0.0.2/32 -p tcp -m tcp --dport 993 -m comment --comment \"no imaps\" -j DROP\n\
-A OUTPUT -j mail\n\
-A mail -d 127.0.3.0/24 -p tcp -m multiport --dports 25,587,990:999 -j REJECT --reject-with icmp-port-unreachable\n";

    #[test]
    fn words_keep_quoted_spaces_and_escapes() {
        assert_eq!(
            tokenize(r#"-A OUTPUT -m comment --comment "a \"b\" c" -j DROP"#),
            vec![
                "-A",
                "OUTPUT",
                "-m",
                "comment",
                "--comment",
                "a \"b\" c",
                "-j",
                "DROP"
            ]
        );
    }

    #[test]
    fn iptables_drop_and_a_reject_in_a_user_chain_are_found() {
        let rs = parse_rules(SAVE, false);
        let f = analyse(&rs, &["127.0.0.2".parse().unwrap()], 993);
        assert_eq!(f.len(), 1, "only OUTPUT is a base chain");
        assert!(
            matches!(
                f[0].outcome,
                Outcome::Blocked {
                    before: Some(4),
                    certain: true,
                    ..
                }
            ),
            "{f:?}"
        );
        let f = analyse(&rs, &["127.0.3.9".parse().unwrap()], 995);
        assert!(
            matches!(
                f[0].outcome,
                Outcome::Blocked {
                    before: Some(5),
                    certain: true,
                    ..
                }
            ),
            "{f:?}"
        );
        let f = analyse(&rs, &["127.0.3.9".parse().unwrap()], 143);
        assert_eq!(f[0].outcome, Outcome::Passes);
        let output = rs.chains.iter().find(|c| c.id.chain == OUTPUT).unwrap();
        assert_eq!(output.rules[3].comment.as_deref(), Some("no imaps"));
    }

    #[test]
    fn a_drop_policy_on_output_is_a_blocker_at_the_end() {
        let rs = parse_rules(
            "-P OUTPUT DROP\n-A OUTPUT -p tcp --dport 25 -j ACCEPT\n",
            false,
        );
        let p = plan(&analyse(&rs, &["127.0.0.2".parse().unwrap()], 993));
        assert_eq!(p.inserts.len(), 1);
        assert_eq!(p.inserts[0].before, None);
    }

    #[test]
    fn negated_and_ipv6_matches_are_understood() {
        let rs = parse_rules(
            "-P OUTPUT ACCEPT\n-A OUTPUT ! -d ::1/128 -p tcp --dport 993 -j DROP\n",
            true,
        );
        assert_eq!(
            analyse(&rs, &["::1".parse().unwrap()], 993)[0].outcome,
            Outcome::Passes
        );
        assert!(matches!(
            analyse(&rs, &["::2".parse().unwrap()], 993)[0].outcome,
            Outcome::Blocked {
                before: Some(1),
                ..
            }
        ));
    }

    #[test]
    fn insert_and_delete_use_the_same_specification() {
        let a = insert_args(Some(4), "127.0.0.2".parse().unwrap(), 993, "mailmend:fx-1");
        assert_eq!(
            a.join(" "),
            "-I OUTPUT 4 -d 127.0.0.2 -p tcp --dport 993 -m comment --comment mailmend:fx-1 -j ACCEPT"
        );
        let listed = "-P OUTPUT ACCEPT\n-A OUTPUT -d 127.0.0.2/32 -p tcp -m tcp --dport 993 -m comment --comment mailmend:fx-1 -j ACCEPT\n-A OUTPUT -d 127.0.0.2/32 -p tcp -m tcp --dport 993 -m comment --comment mailmend:fx-10 -j ACCEPT\n";
        let d = delete_args(listed, &|c| c == "mailmend:fx-1");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0][0], "-D");
        assert_eq!(d[0].last().unwrap(), "ACCEPT");
        assert_eq!(
            delete_args(listed, &|c| c.starts_with("mailmend:")).len(),
            2
        );
        // The inserted rule, as listed, is an accept that allows the traffic.
        let rs = parse_rules(listed, false);
        assert_eq!(
            analyse(&rs, &["127.0.0.2".parse().unwrap()], 993)[0].outcome,
            Outcome::Allowed { handle: 1 }
        );
    }
}
