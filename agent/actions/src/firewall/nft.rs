//! The nftables side of the firewall model: `nft -j list ruleset` into [`Ruleset`], and the JSON
//! batches that insert and delete exception rules.
//!
//! JSON is used in both directions so that no table or chain name, and no comment, ever needs
//! quoting on an nft command line.

use super::model::{AddrItem, Chain, ChainId, Cond, Family, Insert, Rule, Ruleset, Verdict, TCP};
use crate::ParseError;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::IpAddr;

/// Parses the output of `nft -j list ruleset`. Families other than ip, ip6 and inet are skipped.
pub fn parse_ruleset(text: &str) -> Result<Ruleset, ParseError> {
    let v: Value = serde_json::from_str(text).map_err(|e| ParseError::NftJson {
        detail: format!("line {}, column {}: {e}", e.line(), e.column()),
    })?;
    let items = v
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or_else(|| ParseError::NftJson {
            detail: "no top-level \"nftables\" array".into(),
        })?;
    let mut sets: HashMap<(Family, String, String), Value> = HashMap::new();
    let mut chains: Vec<Chain> = Vec::new();
    for item in items {
        if let Some(s) = item.get("set") {
            if let Some((fam, table, name)) = names(s, "name") {
                let elems = s.get("elem").cloned().unwrap_or(Value::Array(Vec::new()));
                sets.insert((fam, table, name), elems);
            }
        }
        if let Some(c) = item.get("chain") {
            if let Some((family, table, chain)) = names(c, "name") {
                chains.push(Chain {
                    id: ChainId {
                        family,
                        table,
                        chain,
                    },
                    base: c.get("hook").and_then(Value::as_str) == Some("output"),
                    policy_drop: c.get("policy").and_then(Value::as_str) == Some("drop"),
                    rules: Vec::new(),
                });
            }
        }
    }
    for item in items {
        let Some(r) = item.get("rule") else { continue };
        let Some((family, table, chain)) = names(r, "chain") else {
            continue;
        };
        let handle = r.get("handle").and_then(Value::as_u64).unwrap_or(0);
        let comment = r.get("comment").and_then(Value::as_str).map(str::to_string);
        let exprs = r
            .get("expr")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let lookup = |name: &str| {
            sets.get(&(family, table.clone(), name.to_string()))
                .cloned()
        };
        let (conds, verdict) = parse_exprs(&exprs, &lookup);
        if let Some(c) = chains
            .iter_mut()
            .find(|c| c.id.family == family && c.id.table == table && c.id.chain == chain)
        {
            c.rules.push(Rule {
                handle,
                conds,
                verdict,
                comment,
            });
        }
    }
    Ok(Ruleset { chains })
}

/// Family, table and the name under `key` of a chain, set or rule object.
fn names(o: &Value, key: &str) -> Option<(Family, String, String)> {
    let family = Family::parse(o.get("family")?.as_str()?)?;
    let table = o.get("table")?.as_str()?.to_string();
    let name = o.get(key)?.as_str()?.to_string();
    Some((family, table, name))
}

/// The names of every table in the ruleset, any family (to tell whether nftables is in use and
/// by whom).
pub fn table_names(text: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    v.get("nftables")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.get("table")?.get("name")?.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The names of every chain in the ruleset, any family.
pub fn chain_names(text: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    v.get("nftables")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.get("chain")?.get("name")?.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn parse_exprs(exprs: &[Value], sets: &dyn Fn(&str) -> Option<Value>) -> (Vec<Cond>, Verdict) {
    let mut conds = Vec::new();
    let mut verdict = Verdict::Continue;
    for e in exprs {
        let Some((key, body)) = e.as_object().and_then(|o| o.iter().next()) else {
            conds.push(Cond::Unknown("malformed expression".into()));
            continue;
        };
        match key.as_str() {
            "match" => conds.push(parse_match(body, sets)),
            "accept" => verdict = Verdict::Accept,
            "drop" => verdict = Verdict::Drop,
            "reject" => verdict = Verdict::Reject,
            "return" => verdict = Verdict::Return,
            "continue" => verdict = Verdict::Continue,
            "jump" | "goto" => {
                let target = body
                    .get("target")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                verdict = if key == "jump" {
                    Verdict::Jump(target)
                } else {
                    Verdict::Goto(target)
                };
            }
            "vmap" => {
                // A verdict map picks its verdict by a key this model does not evaluate; it may
                // block only if one of its verdicts does.
                conds.push(Cond::Unknown("verdict map".into()));
                let text = body.to_string();
                if text.contains("\"drop\"") || text.contains("\"reject\"") {
                    verdict = Verdict::Drop;
                }
            }
            // Statements that neither test the packet nor decide its fate.
            "counter" | "log" | "notrack" | "mangle" => {}
            other => conds.push(Cond::Unknown(other.to_string())),
        }
    }
    (conds, verdict)
}

fn parse_match(m: &Value, sets: &dyn Fn(&str) -> Option<Value>) -> Cond {
    let op = m.get("op").and_then(Value::as_str).unwrap_or("==");
    let left = m.get("left").cloned().unwrap_or(Value::Null);
    let right = m.get("right").cloned().unwrap_or(Value::Null);
    let unknown = || Cond::Unknown(describe(&left));
    // A named set (`@name`) is replaced by its elements when the ruleset holds them.
    let right = match right.as_str().and_then(|s| s.strip_prefix('@')) {
        Some(name) => match sets(name) {
            Some(elems) => json!({ "set": elems }),
            None => return unknown(),
        },
        None => right,
    };
    let negate = match op {
        "==" | "in" => false,
        "!=" => true,
        "<" | ">" | "<=" | ">=" => false,
        _ => return unknown(),
    };
    let ordered = matches!(op, "<" | ">" | "<=" | ">=");
    if let Some(pl) = left.get("payload") {
        let proto = pl.get("protocol").and_then(Value::as_str).unwrap_or("");
        let field = pl.get("field").and_then(Value::as_str).unwrap_or("");
        return match (proto, field) {
            ("ip", "daddr") | ("ip6", "daddr") if !ordered => match addr_items(&right) {
                Some(items) => Cond::Daddr {
                    v6: proto == "ip6",
                    negate,
                    items,
                },
                None => unknown(),
            },
            ("tcp" | "th", "dport") => {
                let ranges = if ordered {
                    right.as_u64().and_then(|n| ordered_range(op, n))
                } else {
                    port_ranges(&right)
                };
                match ranges {
                    Some(ranges) => Cond::Dport {
                        proto: (proto == "tcp").then_some(TCP),
                        negate,
                        ranges,
                    },
                    None => unknown(),
                }
            }
            ("ip", "protocol") | ("ip6", "nexthdr") if !ordered => match protos(&right) {
                Some(protos) => Cond::L4Proto { negate, protos },
                None => unknown(),
            },
            // Any other field of a transport header that is not TCP implies that protocol, so
            // the rule never matches a TCP connection.
            ("udp" | "udplite" | "sctp" | "dccp" | "icmp" | "icmpv6", _) => Cond::L4Proto {
                negate: false,
                protos: vec![proto_number(proto).unwrap_or(0)],
            },
            _ => unknown(),
        };
    }
    if let Some(meta) = left.get("meta") {
        let key = meta.get("key").and_then(Value::as_str).unwrap_or("");
        return match key {
            "l4proto" if !ordered => match protos(&right) {
                Some(protos) => Cond::L4Proto { negate, protos },
                None => unknown(),
            },
            "nfproto" | "protocol" if !ordered => {
                let fams = strings(&right);
                if fams.is_empty() {
                    return unknown();
                }
                Cond::NfProto {
                    negate,
                    v4: fams.iter().any(|f| f == "ipv4" || f == "ip"),
                    v6: fams.iter().any(|f| f == "ipv6" || f == "ip6"),
                }
            }
            _ => unknown(),
        };
    }
    if left
        .get("ct")
        .and_then(|c| c.get("key"))
        .and_then(Value::as_str)
        == Some("state")
        && !ordered
    {
        let states = strings(&right);
        if states.is_empty() {
            return unknown();
        }
        return Cond::CtState {
            negate,
            includes_new: states.iter().any(|s| s == "new"),
        };
    }
    unknown()
}

/// A short name of what a match tests, for the note on a rule that could not be evaluated.
fn describe(left: &Value) -> String {
    if let Some(pl) = left.get("payload") {
        let p = pl.get("protocol").and_then(Value::as_str).unwrap_or("?");
        let f = pl.get("field").and_then(Value::as_str).unwrap_or("?");
        return format!("{p} {f}");
    }
    if let Some(o) = left.as_object() {
        if let Some((k, v)) = o.iter().next() {
            if let Some(key) = v.get("key").and_then(Value::as_str) {
                return format!("{k} {key}");
            }
            return k.clone();
        }
    }
    left.to_string()
}

/// The elements of a set, or the value itself when it is not a set; set elements written as
/// `{"elem": {"val": ...}}` are unwrapped.
fn elements(v: &Value) -> Vec<Value> {
    let list = match v.get("set") {
        Some(Value::Array(a)) => a.clone(),
        Some(other) => vec![other.clone()],
        None => match v {
            Value::Array(a) => a.clone(),
            _ => vec![v.clone()],
        },
    };
    list.into_iter()
        .map(|e| match e.get("elem").and_then(|el| el.get("val")) {
            Some(val) => val.clone(),
            None => e,
        })
        .collect()
}

fn addr_items(v: &Value) -> Option<Vec<AddrItem>> {
    elements(v)
        .iter()
        .map(|e| {
            if let Some(s) = e.as_str() {
                let a: IpAddr = s.parse().ok()?;
                let len = if a.is_ipv4() { 32 } else { 128 };
                return Some(AddrItem::Net(a, len));
            }
            if let Some(p) = e.get("prefix") {
                let a: IpAddr = p.get("addr")?.as_str()?.parse().ok()?;
                let len = u8::try_from(p.get("len")?.as_u64()?).ok()?;
                return Some(AddrItem::Net(a, len));
            }
            if let Some(r) = e.get("range").and_then(Value::as_array) {
                let lo: IpAddr = r.first()?.as_str()?.parse().ok()?;
                let hi: IpAddr = r.get(1)?.as_str()?.parse().ok()?;
                return Some(AddrItem::Range(lo, hi));
            }
            None
        })
        .collect()
}

fn port_ranges(v: &Value) -> Option<Vec<(u16, u16)>> {
    elements(v)
        .iter()
        .map(|e| {
            if let Some(n) = e.as_u64() {
                let p = u16::try_from(n).ok()?;
                return Some((p, p));
            }
            let r = e.get("range")?.as_array()?;
            let lo = u16::try_from(r.first()?.as_u64()?).ok()?;
            let hi = u16::try_from(r.get(1)?.as_u64()?).ok()?;
            Some((lo, hi))
        })
        .collect()
}

fn ordered_range(op: &str, n: u64) -> Option<Vec<(u16, u16)>> {
    let n = u16::try_from(n).ok()?;
    let r = match op {
        "<" => (0, n.checked_sub(1)?),
        "<=" => (0, n),
        ">" => (n.checked_add(1)?, u16::MAX),
        ">=" => (n, u16::MAX),
        _ => return None,
    };
    Some(vec![r])
}

fn proto_number(name: &str) -> Option<u8> {
    Some(match name {
        "tcp" => 6,
        "udp" => 17,
        "udplite" => 136,
        "sctp" => 132,
        "dccp" => 33,
        "icmp" => 1,
        "icmpv6" | "ipv6-icmp" => 58,
        "esp" => 50,
        "ah" => 51,
        "gre" => 47,
        _ => return None,
    })
}

fn protos(v: &Value) -> Option<Vec<u8>> {
    elements(v)
        .iter()
        .map(|e| match e {
            Value::Number(n) => n.as_u64().and_then(|n| u8::try_from(n).ok()),
            Value::String(s) => proto_number(s),
            _ => None,
        })
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    elements(v)
        .iter()
        .filter_map(|e| e.as_str().map(str::to_string))
        .collect()
}

/// The expression list of an exception: TCP to `address` port `port`, accepted.
fn exception_expr(address: IpAddr, port: u16) -> Value {
    let proto = if address.is_ipv6() { "ip6" } else { "ip" };
    json!([
        {"match": {"op": "==", "left": {"payload": {"protocol": proto, "field": "daddr"}}, "right": address.to_string()}},
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": port}},
        {"accept": null}
    ])
}

/// One nft transaction that inserts every exception of the plan, each tagged with `comment`.
/// An insert with a handle goes right before that rule; one without is appended.
pub fn insert_batch(inserts: &[Insert], port: u16, comment: &str) -> Value {
    let cmds: Vec<Value> = inserts
        .iter()
        .map(|i| {
            let mut rule = json!({
                "family": i.chain.family.as_str(),
                "table": i.chain.table,
                "chain": i.chain.chain,
                "comment": comment,
                "expr": exception_expr(i.address, port),
            });
            match i.before {
                Some(h) => {
                    rule["handle"] = json!(h);
                    json!({"insert": {"rule": rule}})
                }
                None => json!({"add": {"rule": rule}}),
            }
        })
        .collect();
    json!({ "nftables": cmds })
}

/// The nft command line equivalent to one insert, for people reading the audit log.
pub fn insert_command(i: &Insert, port: u16, comment: &str) -> String {
    let proto = if i.address.is_ipv6() { "ip6" } else { "ip" };
    let head = match i.before {
        Some(h) => format!("nft insert rule {} position {h}", i.chain),
        None => format!("nft add rule {}", i.chain),
    };
    format!(
        "{head} {proto} daddr {} tcp dport {port} accept comment \"{comment}\"",
        i.address
    )
}

/// A rule found by its comment, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TaggedRule {
    #[serde(flatten)]
    pub chain: ChainId,
    pub handle: u64,
    pub comment: String,
}

/// Every rule, in any chain of the ip, ip6 and inet families, whose comment satisfies `pred`.
pub fn tagged_rules(rs: &Ruleset, pred: &dyn Fn(&str) -> bool) -> Vec<TaggedRule> {
    rs.rules()
        .filter_map(|(chain, r)| {
            let c = r.comment.as_deref()?;
            pred(c).then(|| TaggedRule {
                chain: chain.clone(),
                handle: r.handle,
                comment: c.to_string(),
            })
        })
        .collect()
}

/// One nft transaction that deletes the given rules by handle.
pub fn delete_batch(rules: &[TaggedRule]) -> Value {
    let cmds: Vec<Value> = rules
        .iter()
        .map(|r| {
            json!({"delete": {"rule": {
                "family": r.chain.family.as_str(),
                "table": r.chain.table,
                "chain": r.chain.chain,
                "handle": r.handle,
            }}})
        })
        .collect();
    json!({ "nftables": cmds })
}

#[cfg(test)]
mod tests {
    use super::super::model::{analyse, plan, Outcome};
    use super::*;

    /// The JSON nft 1.0.6 printed for a ruleset of the kinds this parser must understand.
    const RULESET: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
 {"table": {"family": "inet", "name": "filter", "handle": 1}},
 {"chain": {"family": "inet", "table": "filter", "name": "output", "handle": 1, "type": "filter", "hook": "output", "prio": 0, "policy": "accept"}},
 {"chain": {"family": "inet", "table": "filter", "name": "foo", "handle": 2}},
 {"set": {"family": "inet", "name": "blocked", "table": "filter", "type": "ipv4_addr", "handle": 5, "elem": ["127.0.0.7", {"prefix": {"addr": "127.0.9.0", "len": 24}}]}},
 {"rule": {"family": "inet", "table": "filter", "chain": "output", "handle": 3, "expr": [{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "established"}}, {"accept": null}]}},
 {"rule": {"family": "inet", "table": "filter", "chain": "output", "handle": 4, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "127.0.0.2"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 993}}, {"drop": null}]}},
 {"rule": {"family": "inet", "table": "filter", "chain": "output", "handle": 7, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": {"set": ["127.0.0.3", "127.0.0.4"]}}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": {"set": [993, 995]}}}, {"reject": {"type": "icmp", "expr": "port-unreachable"}}]}},
 {"rule": {"family": "inet", "table": "filter", "chain": "output", "handle": 8, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": {"prefix": {"addr": "127.0.1.0", "len": 24}}}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": {"range": [990, 999]}}}, {"drop": null}]}},
 {"rule": {"family": "inet", "table": "filter", "chain": "output", "handle": 9, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": 993}}, {"drop": null}]}},
 {"rule": {"family": "inet", "table": "filter", "chain": "output", "handle": 10, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "@blocked"}}, {"drop": null}]}},
 {"rule": {"family": "inet", "table": "filter", "chain": "output", "handle": 11, "comment": "hello", "expr": [{"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "eth0"}}, {"counter": {"packets": 0, "bytes": 0}}, {"drop": null}]}},
 {"rule": {"family": "inet", "table": "filter", "chain": "output", "handle": 13, "expr": [{"jump": {"target": "foo"}}]}},
 {"rule": {"family": "inet", "table": "filter", "chain": "foo", "handle": 14, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "th", "field": "dport"}}, "right": 143}}, {"reject": null}]}},
 {"table": {"family": "ip", "name": "other", "handle": 2}},
 {"chain": {"family": "ip", "table": "other", "name": "out", "handle": 1, "type": "filter", "hook": "output", "prio": 10, "policy": "drop"}},
 {"table": {"family": "bridge", "name": "br", "handle": 3}},
 {"chain": {"family": "bridge", "table": "br", "name": "out", "handle": 1, "type": "filter", "hook": "output", "prio": 0, "policy": "drop"}}
]}"#;

    fn blocked_before(rs: &Ruleset, addr: &str, port: u16) -> Vec<(String, Option<u64>, bool)> {
        analyse(rs, &[addr.parse().unwrap()], port)
            .into_iter()
            .filter_map(|f| match f.outcome {
                Outcome::Blocked {
                    before, certain, ..
                } => Some((f.chain.table, before, certain)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_first_blocking_rule_of_each_chain_is_found_by_address_port_set_prefix_and_range() {
        let rs = parse_ruleset(RULESET).unwrap();
        assert_eq!(
            rs.chains.len(),
            3,
            "the bridge family is not part of the model"
        );
        assert_eq!(
            blocked_before(&rs, "127.0.0.2", 993),
            vec![
                ("filter".into(), Some(4), true),
                ("other".into(), None, true)
            ]
        );
        assert_eq!(
            blocked_before(&rs, "127.0.0.4", 995)[0],
            ("filter".into(), Some(7), true)
        );
        assert_eq!(
            blocked_before(&rs, "127.0.1.77", 990)[0],
            ("filter".into(), Some(8), true)
        );
        assert_eq!(
            blocked_before(&rs, "127.0.9.1", 25)[0],
            ("filter".into(), Some(10), true)
        );
    }

    #[test]
    fn a_rule_on_an_interface_is_reported_as_a_possible_blocker() {
        let rs = parse_ruleset(RULESET).unwrap();
        assert_eq!(
            blocked_before(&rs, "127.0.0.5", 993)[0],
            ("filter".into(), Some(11), false)
        );
        let f = analyse(&rs, &["127.0.0.5".parse().unwrap()], 993);
        let Outcome::Blocked { reason, .. } = &f[0].outcome else {
            panic!("{f:?}")
        };
        assert!(reason.contains("meta oifname"), "{reason}");
    }

    #[test]
    fn a_udp_rule_never_blocks_tcp() {
        let rs = parse_ruleset(RULESET).unwrap();
        let r = rs.chains[0].rules.iter().find(|r| r.handle == 9).unwrap();
        let p = super::super::model::Packet {
            daddr: "127.0.0.5".parse().unwrap(),
            dport: 993,
        };
        assert_eq!(r.matches(&p), super::super::model::Tri::No);
    }

    #[test]
    fn ipv6_traffic_is_not_blocked_by_ip_family_chains() {
        let rs = parse_ruleset(RULESET).unwrap();
        // Only the inet chain sees ::1, and its first possible blocker is the oifname rule.
        assert_eq!(
            blocked_before(&rs, "::1", 993),
            vec![("filter".into(), Some(11), false)]
        );
    }

    #[test]
    fn inserts_become_one_json_transaction_with_handles_and_comments() {
        let rs = parse_ruleset(RULESET).unwrap();
        let p = plan(&analyse(&rs, &["127.0.0.2".parse().unwrap()], 993));
        let b = insert_batch(&p.inserts, 993, "mailmend:fx-1");
        let cmds = b["nftables"].as_array().unwrap();
        assert_eq!(cmds.len(), 2);
        assert_eq!(cmds[0]["insert"]["rule"]["handle"], 4);
        assert_eq!(cmds[0]["insert"]["rule"]["comment"], "mailmend:fx-1");
        assert_eq!(
            cmds[0]["insert"]["rule"]["expr"][0]["match"]["right"],
            "127.0.0.2"
        );
        assert_eq!(cmds[1]["add"]["rule"]["table"], "other");
        assert_eq!(
            insert_command(&p.inserts[0], 993, "mailmend:fx-1"),
            "nft insert rule inet filter output position 4 ip daddr 127.0.0.2 tcp dport 993 accept comment \"mailmend:fx-1\""
        );
    }

    #[test]
    fn an_inserted_exception_parses_back_as_an_accept_that_allows_the_traffic() {
        let mut v: Value = serde_json::from_str(RULESET).unwrap();
        let ins = insert_batch(
            &[Insert {
                chain: ChainId {
                    family: Family::Inet,
                    table: "filter".into(),
                    chain: "output".into(),
                },
                address: "127.0.0.2".parse().unwrap(),
                before: Some(4),
            }],
            993,
            "mailmend:fx-1",
        );
        let mut rule = ins["nftables"][0]["insert"]["rule"].clone();
        rule["handle"] = json!(40);
        v["nftables"]
            .as_array_mut()
            .unwrap()
            .insert(5, json!({ "rule": rule }));
        let rs = parse_ruleset(&v.to_string()).unwrap();
        let f = analyse(&rs, &["127.0.0.2".parse().unwrap()], 993);
        assert_eq!(f[0].outcome, Outcome::Allowed { handle: 40 });
        let tagged = tagged_rules(&rs, &|c| c == "mailmend:fx-1");
        assert_eq!(tagged.len(), 1);
        assert_eq!(tagged[0].handle, 40);
        assert!(tagged_rules(&rs, &|c| c == "mailmend:fx-2").is_empty());
        let d = delete_batch(&tagged);
        assert_eq!(d["nftables"][0]["delete"]["rule"]["handle"], 40);
    }

    #[test]
    fn bad_json_is_a_clear_error_with_its_position() {
        let e = parse_ruleset("{\"nftables\": [").unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
        assert!(parse_ruleset("{}").is_err());
    }

    #[test]
    fn table_and_chain_names_are_listed_for_manager_detection() {
        assert_eq!(table_names(RULESET), vec!["filter", "other", "br"]);
        assert!(chain_names(RULESET).contains(&"foo".to_string()));
    }
}
