//! Whether the local firewall lets outbound TCP to one address and port through: a pure
//! evaluator of nftables' JSON ruleset (`nft -j list ruleset`) and of `iptables -S` output.
//!
//! The packet evaluated is the first of a new connection from this host: a TCP SYN in conntrack
//! state `new` to `addr:port`, from an unknown source port, leaving through `lo` exactly when
//! `addr` is a loopback address. Conditions on anything else (source address, other interface
//! names, marks, the socket's owner, rate limits, iptables extensions) cannot be decided here:
//! such a rule *may* match. A verdict is claimed only when it holds whichever way those rules
//! go; otherwise the evaluation is [`Evaluation::Uncertain`] and says which rules made it so.
//!
//! nftables semantics kept (nft(8), and LAB-NOTES pitfall 8): every base chain on the output
//! hook of the families `ip`, `ip6` and `inet` sees the packet, in priority order; `accept`
//! ends only its own base chain, so a drop in any table blocks even when another table
//! accepts; `jump` comes back, `goto` does not; a base chain's policy applies when its rules
//! end without a verdict. iptables (`-S` listing of the filter table) has one base chain,
//! `OUTPUT`.

use mailmend_core::FirewallRule;
use serde_json::Value;
use std::collections::HashMap;
use std::net::IpAddr;

/// How deep jumps may nest: the kernel's own limit for nftables.
const MAX_DEPTH: usize = 16;

/// What the ruleset does with the packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evaluation {
    /// No rule drops or rejects it.
    Allowed,
    /// This rule (or this chain's policy, with no handle) drops or rejects it.
    Blocked(FirewallRule),
    /// Some rule may drop it, depending on what cannot be known here (the detail says which).
    Uncertain(String),
}

/// Why a listing could not be evaluated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FirewallError {
    /// The output is not JSON: nft printed an error or a warning instead, or was cut short.
    #[error("nft output is not valid json: {0}")]
    Json(String),
    /// The JSON is not an nftables ruleset: an nft version with another schema.
    #[error("nft output is not a ruleset: {0}")]
    NotRuleset(String),
}

// ---- the evaluation, common to both backends ----

/// Whether a condition holds for the packet.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tri {
    Yes,
    No,
    /// It depends on something unknown, named here.
    Maybe(String),
}

impl Tri {
    fn and(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::No, _) | (_, Tri::No) => Tri::No,
            (Tri::Maybe(why), _) | (_, Tri::Maybe(why)) => Tri::Maybe(why),
            (Tri::Yes, Tri::Yes) => Tri::Yes,
        }
    }

    fn not(self) -> Tri {
        match self {
            Tri::Yes => Tri::No,
            Tri::No => Tri::Yes,
            maybe => maybe,
        }
    }

    fn from_bool(b: bool) -> Tri {
        if b {
            Tri::Yes
        } else {
            Tri::No
        }
    }

    /// Yes when any is yes, else maybe when any is maybe, else no.
    fn any(items: impl IntoIterator<Item = Tri>) -> Tri {
        let mut result = Tri::No;
        for item in items {
            match item {
                Tri::Yes => return Tri::Yes,
                Tri::Maybe(why) => result = Tri::Maybe(why),
                Tri::No => {}
            }
        }
        result
    }
}

/// What a rule does when it matches.
#[derive(Debug, Clone)]
enum Verdict {
    /// No verdict: go on with the next rule.
    Next,
    Accept,
    /// `drop` or `reject`.
    Drop(&'static str),
    Return,
    Jump(String),
    Goto(String),
    /// A verdict this evaluator cannot follow (a queue to user space).
    Unknown(String),
    /// A verdict map: the first entry whose key matches decides; none matching goes on.
    Map(Vec<(Tri, Verdict)>),
}

#[derive(Debug, Clone)]
struct Rule {
    cond: Tri,
    verdict: Verdict,
    info: FirewallRule,
}

struct BaseChain {
    id: String,
    prio: i64,
    policy_drop: bool,
    policy: FirewallRule,
}

/// Every way evaluation from some point may end.
#[derive(Debug, Clone, Default)]
struct Outcomes {
    accept: bool,
    /// Falls off the end (or returns): back to the caller, or the base chain's policy.
    pass: bool,
    /// The first rule that may drop.
    drop: Option<FirewallRule>,
    /// Why evaluation could not be followed.
    unknown: Vec<String>,
    /// What the possible outcomes depend on.
    doubts: Vec<String>,
}

impl Outcomes {
    fn union(mut self, other: Outcomes) -> Outcomes {
        self.accept |= other.accept;
        self.pass |= other.pass;
        if self.drop.is_none() {
            self.drop = other.drop;
        }
        for u in other.unknown {
            if !self.unknown.contains(&u) {
                self.unknown.push(u);
            }
        }
        for d in other.doubts {
            if !self.doubts.contains(&d) {
                self.doubts.push(d);
            }
        }
        self
    }

    fn pass() -> Outcomes {
        Outcomes {
            pass: true,
            ..Outcomes::default()
        }
    }
}

struct Program {
    chains: HashMap<String, Vec<Rule>>,
    bases: Vec<BaseChain>,
}

impl Program {
    fn evaluate(mut self) -> Evaluation {
        self.bases.sort_by_key(|b| b.prio);
        let mut memo = HashMap::new();
        let mut doubtful = Vec::new();
        for base in &self.bases {
            let mut out = self.eval(&base.id, 0, &mut memo);
            if out.pass {
                if base.policy_drop {
                    if out.drop.is_none() {
                        out.drop = Some(base.policy.clone());
                    }
                } else {
                    out.accept = true;
                }
            }
            match &out.drop {
                Some(rule) if !out.accept && out.unknown.is_empty() => {
                    return Evaluation::Blocked(rule.clone())
                }
                Some(rule) => doubtful.push(format!(
                    "{} may drop it, depending on {}",
                    describe(rule),
                    reasons(&out)
                )),
                None if !out.unknown.is_empty() => doubtful.push(format!(
                    "chain {} cannot be followed: {}",
                    base.policy.chain,
                    out.unknown.join("; ")
                )),
                None => {}
            }
        }
        if doubtful.is_empty() {
            Evaluation::Allowed
        } else {
            Evaluation::Uncertain(doubtful.join("; "))
        }
    }

    /// Every way evaluation of `chain` may end. Rules are walked in a loop (a chain may hold
    /// thousands), and only jumps recurse, at most [`MAX_DEPTH`] deep.
    fn eval(&self, chain: &str, depth: usize, memo: &mut HashMap<String, Outcomes>) -> Outcomes {
        if depth > MAX_DEPTH {
            return Outcomes {
                unknown: vec!["jumps nest too deep".into()],
                ..Outcomes::default()
            };
        }
        if let Some(done) = memo.get(chain) {
            return done.clone();
        }
        let Some(rules) = self.chains.get(chain) else {
            return Outcomes {
                unknown: vec![format!(
                    "a jump to a chain that is not listed ({})",
                    chain.replace('\u{0}', " ")
                )],
                ..Outcomes::default()
            };
        };
        // The outcomes of the paths that have ended so far; one path goes on down the chain.
        let mut ended = Outcomes::default();
        let mut goes_on = true;
        for rule in rules {
            let (out, continues) = match &rule.cond {
                Tri::No => continue,
                Tri::Yes => self.apply(&rule.verdict, rule, depth, memo),
                Tri::Maybe(why) => {
                    let (mut out, _) = self.apply(&rule.verdict, rule, depth, memo);
                    let doubt = format!("{why} ({})", describe(&rule.info));
                    if !out.doubts.contains(&doubt) {
                        out.doubts.insert(0, doubt);
                    }
                    // Whether or not it matched, a path goes on: the one where it did not.
                    (out, true)
                }
            };
            ended = ended.union(out);
            if !continues {
                goes_on = false;
                break;
            }
        }
        if goes_on {
            ended = ended.union(Outcomes::pass());
        }
        memo.insert(chain.to_string(), ended.clone());
        ended
    }

    /// What a matching rule's verdict leads to, and whether evaluation may go on with the next
    /// rule of the same chain.
    fn apply(
        &self,
        verdict: &Verdict,
        rule: &Rule,
        depth: usize,
        memo: &mut HashMap<String, Outcomes>,
    ) -> (Outcomes, bool) {
        match verdict {
            Verdict::Next => (Outcomes::default(), true),
            Verdict::Accept => (
                Outcomes {
                    accept: true,
                    ..Outcomes::default()
                },
                false,
            ),
            Verdict::Drop(action) => {
                let mut info = rule.info.clone();
                info.action = (*action).to_string();
                (
                    Outcomes {
                        drop: Some(info),
                        ..Outcomes::default()
                    },
                    false,
                )
            }
            Verdict::Return => (Outcomes::pass(), false),
            Verdict::Jump(target) => {
                let mut sub = self.eval(target, depth + 1, memo);
                let comes_back = std::mem::take(&mut sub.pass);
                (sub, comes_back)
            }
            Verdict::Goto(target) => (self.eval(target, depth + 1, memo), false),
            Verdict::Unknown(what) => (
                Outcomes {
                    unknown: vec![format!("{what} ({})", describe(&rule.info))],
                    ..Outcomes::default()
                },
                false,
            ),
            Verdict::Map(entries) => {
                let mut out = Outcomes::default();
                let mut goes_on = false;
                for (cond, verdict) in entries {
                    match cond {
                        Tri::No => {}
                        Tri::Yes => {
                            let (o, c) = self.apply(verdict, rule, depth, memo);
                            return (out.union(o), goes_on || c);
                        }
                        Tri::Maybe(why) => {
                            let (o, c) = self.apply(verdict, rule, depth, memo);
                            out = out.union(o);
                            out.doubts.push(why.clone());
                            goes_on |= c;
                        }
                    }
                }
                // No entry matched for sure: the path where none matched goes on.
                (out, true)
            }
        }
    }
}

fn describe(rule: &FirewallRule) -> String {
    match rule.handle {
        Some(handle) => format!(
            "`{}` ({} {} {}, handle {handle})",
            rule.text, rule.family, rule.table, rule.chain
        ),
        None => format!(
            "`{}` ({} {} {})",
            rule.text, rule.family, rule.table, rule.chain
        ),
    }
}

fn reasons(out: &Outcomes) -> String {
    let mut all: Vec<String> = out.doubts.clone();
    all.extend(out.unknown.iter().cloned());
    if all.is_empty() {
        "rules that accept it first".to_string()
    } else {
        all.join(", ")
    }
}

// ---- what the packet is ----

/// A value of the packet, for comparing with a rule's right-hand side.
#[derive(Debug, Clone, Copy)]
enum Field {
    Ip(IpAddr),
    Port(u16),
    /// The layer-4 protocol: TCP.
    L4,
    /// `meta nfproto`: ipv4 or ipv6.
    NfProto(&'static str),
    /// `meta protocol` (the ether type): ip or ip6.
    EtherType(&'static str),
    /// `ct state`: new.
    CtState,
    /// The output interface: `lo` when true, some other interface when false.
    OutLoopback(bool),
}

/// What the left-hand side of a match is, for this packet.
enum Left {
    Known(Field),
    /// The packet has no such header (an `ip daddr` of an IPv6 packet, a `udp dport`).
    Absent,
    /// Something this evaluator cannot know, named.
    Unknown(String),
}

struct Packet {
    addr: IpAddr,
    port: u16,
}

impl Packet {
    fn v4(&self) -> bool {
        self.addr.is_ipv4()
    }

    fn loopback(&self) -> bool {
        self.addr.is_loopback()
    }
}

/// Well-known service names nft or iptables may print instead of a port number.
fn service_port(name: &str) -> Option<u16> {
    Some(match name {
        "smtp" => 25,
        "pop3" => 110,
        "imap" | "imap2" => 143,
        "submissions" | "smtps" | "urd" => 465,
        "submission" => 587,
        "imaps" => 993,
        "pop3s" => 995,
        "domain" => 53,
        "http" => 80,
        "https" => 443,
        "ssh" => 22,
        _ => return None,
    })
}

fn tcp_name(name: &str) -> Option<bool> {
    match name {
        "tcp" | "6" => Some(true),
        "udp" | "17" | "icmp" | "1" | "icmpv6" | "ipv6-icmp" | "58" | "sctp" | "132" | "esp"
        | "50" | "ah" | "51" | "gre" | "47" | "udplite" | "136" | "dccp" | "33" => Some(false),
        _ => None,
    }
}

/// Whether `ip` is within `network/len`.
fn in_prefix(ip: IpAddr, network: IpAddr, len: u32) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(net)) if len <= 32 => {
            let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) if len <= 128 => {
            let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

// ---- nftables ----

/// Evaluates `nft -j list ruleset` output for outbound TCP to `addr:port`.
pub fn evaluate_nft(json: &str, addr: IpAddr, port: u16) -> Result<Evaluation, FirewallError> {
    let value: Value =
        serde_json::from_str(json).map_err(|e| FirewallError::Json(e.to_string()))?;
    let items = value
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or_else(|| FirewallError::NotRuleset("no \"nftables\" array at the top".into()))?;
    let packet = Packet { addr, port };
    let families: &[&str] = if packet.v4() {
        &["ip", "inet"]
    } else {
        &["ip6", "inet"]
    };
    let mut nft = Nft {
        packet,
        sets: HashMap::new(),
    };
    // Sets and maps first: rules refer to them by name.
    for item in items {
        for kind in ["set", "map"] {
            if let Some(set) = item.get(kind) {
                let (Some(family), Some(table), Some(name)) = (
                    set.get("family").and_then(Value::as_str),
                    set.get("table").and_then(Value::as_str),
                    set.get("name").and_then(Value::as_str),
                ) else {
                    continue;
                };
                let elems = set
                    .get("elem")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                nft.sets.insert(chain_id(family, table, name), elems);
            }
        }
    }
    let mut program = Program {
        chains: HashMap::new(),
        bases: Vec::new(),
    };
    for item in items {
        if let Some(chain) = item.get("chain") {
            let family = str_of(chain, "family");
            if !families.contains(&family) {
                continue;
            }
            let (table, name) = (str_of(chain, "table"), str_of(chain, "name"));
            let id = chain_id(family, table, name);
            program.chains.entry(id.clone()).or_default();
            if chain.get("hook").and_then(Value::as_str) == Some("output") {
                let prio = chain.get("prio").and_then(Value::as_i64).unwrap_or(0);
                let policy = chain
                    .get("policy")
                    .and_then(Value::as_str)
                    .unwrap_or("accept");
                program.bases.push(BaseChain {
                    id,
                    prio,
                    policy_drop: policy == "drop",
                    policy: FirewallRule {
                        family: family.to_string(),
                        table: table.to_string(),
                        chain: name.to_string(),
                        handle: None,
                        action: "drop".into(),
                        text: format!("policy {policy} (hook output, priority {prio})"),
                    },
                });
            }
        } else if let Some(rule) = item.get("rule") {
            let family = str_of(rule, "family");
            if !families.contains(&family) {
                continue;
            }
            let (table, chain) = (str_of(rule, "table"), str_of(rule, "chain"));
            let exprs = rule
                .get("expr")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let converted = nft.rule(family, table, chain, rule.get("handle"), exprs);
            program
                .chains
                .entry(chain_id(family, table, chain))
                .or_default()
                .push(converted);
        }
    }
    Ok(program.evaluate())
}

fn chain_id(family: &str, table: &str, name: &str) -> String {
    format!("{family}\u{0}{table}\u{0}{name}")
}

fn str_of<'v>(v: &'v Value, key: &str) -> &'v str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The single key of an nft JSON object such as `{"match": {...}}`.
fn single(v: &Value) -> Option<(&str, &Value)> {
    let obj = v.as_object()?;
    if obj.len() != 1 {
        return None;
    }
    obj.iter().next().map(|(k, v)| (k.as_str(), v))
}

struct Nft {
    packet: Packet,
    /// Named sets' and maps' elements, by chain_id-style key.
    sets: HashMap<String, Vec<Value>>,
}

impl Nft {
    fn rule(
        &self,
        family: &str,
        table: &str,
        chain: &str,
        handle: Option<&Value>,
        exprs: &[Value],
    ) -> Rule {
        let mut cond = Tri::Yes;
        let mut verdict = Verdict::Next;
        for expr in exprs {
            let Some((key, body)) = single(expr) else {
                cond = cond.and(Tri::Maybe("an unreadable expression".into()));
                continue;
            };
            let target = |body: &Value| chain_id(family, table, str_of(body, "target"));
            match key {
                "match" => cond = cond.and(self.matches(body, family, table)),
                "accept" => verdict = Verdict::Accept,
                "drop" => verdict = Verdict::Drop("drop"),
                "reject" => verdict = Verdict::Drop("reject"),
                "return" => verdict = Verdict::Return,
                "continue" => verdict = Verdict::Next,
                "jump" => verdict = Verdict::Jump(target(body)),
                "goto" => verdict = Verdict::Goto(target(body)),
                "queue" => verdict = Verdict::Unknown("a queue to user space".into()),
                "vmap" => verdict = self.vmap(body, family, table),
                // Statements that do not change the verdict.
                "counter" | "log" | "mangle" | "notrack" | "comment" => continue,
                "limit" => cond = cond.and(Tri::Maybe("a rate limit".into())),
                "quota" => cond = cond.and(Tri::Maybe("a quota".into())),
                "xt" => cond = cond.and(Tri::Maybe("an iptables extension".into())),
                other => cond = cond.and(Tri::Maybe(format!("the statement {other}"))),
            }
            if !matches!(verdict, Verdict::Next) || key == "continue" {
                break;
            }
        }
        Rule {
            cond,
            verdict,
            info: FirewallRule {
                family: family.to_string(),
                table: table.to_string(),
                chain: chain.to_string(),
                handle: handle.and_then(Value::as_u64),
                action: String::new(),
                text: render_rule(exprs),
            },
        }
    }

    fn vmap(&self, body: &Value, family: &str, table: &str) -> Verdict {
        let data = body.get("data").unwrap_or(&Value::Null);
        let entries: Vec<Value> = match data {
            Value::String(s) if s.starts_with('@') => self
                .sets
                .get(&chain_id(family, table, &s[1..]))
                .cloned()
                .unwrap_or_default(),
            other => other
                .get("set")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        };
        let left = self.left(body.get("key").unwrap_or(&Value::Null));
        let mut out = Vec::new();
        for entry in &entries {
            let Some([key, verdict]) = entry.as_array().map(Vec::as_slice) else {
                continue;
            };
            let cond = match &left {
                Left::Absent => Tri::No,
                Left::Unknown(what) => Tri::Maybe(what.clone()),
                Left::Known(field) => self.member(*field, key, family, table),
            };
            let verdict = match single(verdict) {
                Some(("accept", _)) => Verdict::Accept,
                Some(("drop", _)) => Verdict::Drop("drop"),
                Some(("reject", _)) => Verdict::Drop("reject"),
                Some(("return", _)) => Verdict::Return,
                Some(("continue", _)) => Verdict::Next,
                Some(("jump", b)) => Verdict::Jump(chain_id(family, table, str_of(b, "target"))),
                Some(("goto", b)) => Verdict::Goto(chain_id(family, table, str_of(b, "target"))),
                _ => Verdict::Unknown(format!("the map verdict {verdict}")),
            };
            out.push((cond, verdict));
        }
        Verdict::Map(out)
    }

    fn matches(&self, body: &Value, family: &str, table: &str) -> Tri {
        let op = body.get("op").and_then(Value::as_str).unwrap_or("==");
        let right = body.get("right").unwrap_or(&Value::Null);
        let field = match self.left(body.get("left").unwrap_or(&Value::Null)) {
            Left::Absent => return Tri::No,
            Left::Unknown(what) => return Tri::Maybe(what),
            Left::Known(field) => field,
        };
        match op {
            "==" | "in" => self.member(field, right, family, table),
            "!=" => self.member(field, right, family, table).not(),
            "<" | ">" | "<=" | ">=" => match (field, right.as_u64()) {
                (Field::Port(port), Some(bound)) => {
                    let port = u64::from(port);
                    Tri::from_bool(match op {
                        "<" => port < bound,
                        ">" => port > bound,
                        "<=" => port <= bound,
                        _ => port >= bound,
                    })
                }
                _ => Tri::Maybe(format!("a comparison {op} {right}")),
            },
            other => Tri::Maybe(format!("the operator {other}")),
        }
    }

    fn left(&self, left: &Value) -> Left {
        let p = &self.packet;
        let Some((kind, body)) = single(left) else {
            return Left::Unknown(format!("the expression {left}"));
        };
        match kind {
            "payload" => {
                let protocol = str_of(body, "protocol");
                let field = str_of(body, "field");
                match (protocol, field) {
                    ("ip", _) if !p.v4() => Left::Absent,
                    ("ip6", _) if p.v4() => Left::Absent,
                    ("ip", "daddr") | ("ip6", "daddr") => Left::Known(Field::Ip(p.addr)),
                    ("ip", "protocol") | ("ip6", "nexthdr") => Left::Known(Field::L4),
                    ("tcp", "dport") | ("th", "dport") => Left::Known(Field::Port(p.port)),
                    ("tcp", "sport") | ("th", "sport") => Left::Unknown("the source port".into()),
                    ("ip", "saddr") | ("ip6", "saddr") => {
                        Left::Unknown("the source address".into())
                    }
                    (
                        "udp" | "udplite" | "sctp" | "dccp" | "icmp" | "icmpv6" | "esp" | "ah"
                        | "comp" | "gre",
                        _,
                    ) => Left::Absent,
                    _ => Left::Unknown(format!("{protocol} {field}")),
                }
            }
            "meta" => match str_of(body, "key") {
                "l4proto" => Left::Known(Field::L4),
                "nfproto" => Left::Known(Field::NfProto(if p.v4() { "ipv4" } else { "ipv6" })),
                "protocol" => Left::Known(Field::EtherType(if p.v4() { "ip" } else { "ip6" })),
                "oifname" | "oif" => Left::Known(Field::OutLoopback(p.loopback())),
                key => Left::Unknown(format!("meta {key}")),
            },
            "ct" => match str_of(body, "key") {
                "state" => Left::Known(Field::CtState),
                key => Left::Unknown(format!("ct {key}")),
            },
            _ => Left::Unknown(format!("the expression {}", render(left))),
        }
    }

    /// Whether the packet's `field` is (in) `right`.
    fn member(&self, field: Field, right: &Value, family: &str, table: &str) -> Tri {
        match right {
            Value::String(s) if s.starts_with('@') => {
                match self.sets.get(&chain_id(family, table, &s[1..])) {
                    Some(elems) => Tri::any(
                        elems
                            .iter()
                            .map(|e| self.member(field, set_key(e), family, table)),
                    ),
                    None => Tri::Maybe(format!("the set {s}, which is not listed")),
                }
            }
            Value::Array(items) => {
                Tri::any(items.iter().map(|e| self.member(field, e, family, table)))
            }
            Value::Object(_) => match single(right) {
                Some(("set", Value::Array(items))) => Tri::any(
                    items
                        .iter()
                        .map(|e| self.member(field, set_key(e), family, table)),
                ),
                Some(("prefix", body)) => match (field, str_of(body, "addr").parse::<IpAddr>()) {
                    (Field::Ip(ip), Ok(net)) => {
                        let len = body.get("len").and_then(Value::as_u64).unwrap_or(0);
                        Tri::from_bool(in_prefix(ip, net, u32::try_from(len).unwrap_or(u32::MAX)))
                    }
                    _ => Tri::Maybe(format!("the prefix {}", render(right))),
                },
                Some(("range", Value::Array(bounds))) if bounds.len() == 2 => {
                    match (field, &bounds[0], &bounds[1]) {
                        (Field::Port(port), lo, hi) => match (port_of(lo), port_of(hi)) {
                            (Some(lo), Some(hi)) => Tri::from_bool(lo <= port && port <= hi),
                            _ => Tri::Maybe(format!("the range {}", render(right))),
                        },
                        (Field::Ip(ip), Value::String(lo), Value::String(hi)) => {
                            match (lo.parse::<IpAddr>(), hi.parse::<IpAddr>()) {
                                (Ok(lo), Ok(hi)) if lo.is_ipv4() == ip.is_ipv4() => {
                                    Tri::from_bool(lo <= ip && ip <= hi)
                                }
                                (Ok(_), Ok(_)) => Tri::No,
                                _ => Tri::Maybe(format!("the range {}", render(right))),
                            }
                        }
                        _ => Tri::Maybe(format!("the range {}", render(right))),
                    }
                }
                _ => Tri::Maybe(format!("the value {}", render(right))),
            },
            scalar => equals(field, scalar),
        }
    }
}

/// A set element's key: elements may carry options (`{"elem": {"val": ..., "timeout": ..}}`).
fn set_key(e: &Value) -> &Value {
    match single(e) {
        Some(("elem", body)) => body.get("val").unwrap_or(e),
        _ => e,
    }
}

fn port_of(v: &Value) -> Option<u16> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => s.parse().ok().or_else(|| service_port(s)),
        _ => None,
    }
}

fn equals(field: Field, scalar: &Value) -> Tri {
    let text = match scalar {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => return Tri::Maybe(format!("the value {other}")),
    };
    match field {
        Field::Ip(ip) => match text.parse::<IpAddr>() {
            Ok(other) => Tri::from_bool(other == ip),
            Err(_) => Tri::Maybe(format!("the address {text}")),
        },
        Field::Port(port) => match port_of(scalar) {
            Some(other) => Tri::from_bool(other == port),
            None => Tri::Maybe(format!("the port {text}")),
        },
        Field::L4 => match tcp_name(&text) {
            Some(is_tcp) => Tri::from_bool(is_tcp),
            None => Tri::Maybe(format!("the protocol {text}")),
        },
        Field::NfProto(ours) | Field::EtherType(ours) => Tri::from_bool(text == ours),
        Field::CtState => Tri::from_bool(text == "new"),
        Field::OutLoopback(loopback) => {
            if text == "lo" {
                Tri::from_bool(loopback)
            } else if loopback {
                Tri::No
            } else {
                Tri::Maybe(format!("the outgoing interface {text}"))
            }
        }
    }
}

// ---- rendering rules as nft prints them, for the evidence ----

fn render_rule(exprs: &[Value]) -> String {
    let parts: Vec<String> = exprs.iter().map(render_statement).collect();
    parts.join(" ")
}

fn render_statement(expr: &Value) -> String {
    let Some((key, body)) = single(expr) else {
        return expr.to_string();
    };
    match key {
        "match" => {
            let left = render(body.get("left").unwrap_or(&Value::Null));
            let right = render(body.get("right").unwrap_or(&Value::Null));
            match body.get("op").and_then(Value::as_str).unwrap_or("==") {
                "==" | "in" => format!("{left} {right}"),
                op => format!("{left} {op} {right}"),
            }
        }
        "accept" | "drop" | "return" | "continue" | "notrack" => key.to_string(),
        "reject" => match body.get("type").and_then(Value::as_str) {
            Some(kind) => match body.get("expr").and_then(Value::as_str) {
                Some(what) => format!("reject with {kind} {what}"),
                None => format!("reject with {kind}"),
            },
            None => "reject".into(),
        },
        "jump" | "goto" => format!("{key} {}", str_of(body, "target")),
        "counter" | "log" | "limit" | "quota" | "queue" => key.to_string(),
        "vmap" => format!(
            "{} vmap {}",
            render(body.get("key").unwrap_or(&Value::Null)),
            render(body.get("data").unwrap_or(&Value::Null))
        ),
        _ => expr.to_string(),
    }
}

fn render(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => items.iter().map(render).collect::<Vec<_>>().join(","),
        Value::Object(_) => match single(v) {
            Some(("payload", b)) => format!("{} {}", str_of(b, "protocol"), str_of(b, "field")),
            Some(("meta", b)) => match str_of(b, "key") {
                k @ ("oifname" | "oif" | "iifname" | "iif" | "mark") => k.to_string(),
                k => format!("meta {k}"),
            },
            Some(("ct", b)) => format!("ct {}", str_of(b, "key")),
            Some(("prefix", b)) => format!(
                "{}/{}",
                str_of(b, "addr"),
                b.get("len").map(render).unwrap_or_default()
            ),
            Some(("range", Value::Array(b))) if b.len() == 2 => {
                format!("{}-{}", render(&b[0]), render(&b[1]))
            }
            Some(("set", Value::Array(items))) => {
                let inner: Vec<String> = items
                    .iter()
                    .map(|e| match e.as_array() {
                        Some(pair) if pair.len() == 2 => {
                            format!("{} : {}", render(&pair[0]), render_statement(&pair[1]))
                        }
                        _ => render(e),
                    })
                    .collect();
                format!("{{ {} }}", inner.join(", "))
            }
            _ => v.to_string(),
        },
    }
}

// ---- iptables ----

/// Evaluates `iptables -S` (or `ip6tables -S`) output of the filter table for outbound TCP to
/// `addr:port`. `family` names the tool in the reported rule (`iptables` or `ip6tables`).
pub fn evaluate_iptables(listing: &str, family: &str, addr: IpAddr, port: u16) -> Evaluation {
    let packet = Packet { addr, port };
    let mut declared: Vec<String> = vec!["OUTPUT".into()];
    let mut policy = "ACCEPT".to_string();
    let lines: Vec<Vec<String>> = listing.lines().map(shell_words).collect();
    for words in &lines {
        match words.as_slice() {
            [flag, chain, ..] if flag == "-N" => declared.push(chain.clone()),
            [flag, chain, target, ..] if flag == "-P" && chain == "OUTPUT" => {
                policy = target.clone()
            }
            _ => {}
        }
    }
    let mut program = Program {
        chains: HashMap::new(),
        bases: vec![BaseChain {
            id: "OUTPUT".into(),
            prio: 0,
            policy_drop: policy == "DROP",
            policy: FirewallRule {
                family: family.to_string(),
                table: "filter".into(),
                chain: "OUTPUT".into(),
                handle: None,
                action: "drop".into(),
                text: format!("-P OUTPUT {policy}"),
            },
        }],
    };
    for name in &declared {
        program.chains.entry(name.clone()).or_default();
    }
    for (words, line) in lines.iter().zip(listing.lines()) {
        let [flag, chain, rest @ ..] = words.as_slice() else {
            continue;
        };
        if flag != "-A" {
            continue;
        }
        let rules = program.chains.entry(chain.clone()).or_default();
        let number = rules.len() as u64 + 1;
        let (cond, verdict) = iptables_rule(&packet, rest, &declared);
        rules.push(Rule {
            cond,
            verdict,
            info: FirewallRule {
                family: family.to_string(),
                table: "filter".into(),
                chain: chain.clone(),
                handle: Some(number),
                action: String::new(),
                text: line.trim().to_string(),
            },
        });
    }
    program.evaluate()
}

fn iptables_rule(packet: &Packet, words: &[String], chains: &[String]) -> (Tri, Verdict) {
    let mut cond = Tri::Yes;
    let mut verdict = Verdict::Next;
    let mut i = 0;
    let mut negate = false;
    // The value after an option, if there is one.
    let arg = |i: usize| words.get(i + 1).map(String::as_str).unwrap_or_default();
    while i < words.len() {
        let word = words[i].as_str();
        if word == "!" {
            negate = true;
            i += 1;
            continue;
        }
        let (test, used) = match word {
            "-d" | "--destination" => (iptables_addr(packet.addr, arg(i)), 1),
            "-s" | "--source" => match arg(i) {
                "0.0.0.0/0" | "::/0" => (Tri::Yes, 1),
                _ => (Tri::Maybe("the source address".into()), 1),
            },
            "-p" | "--protocol" => match arg(i) {
                "all" | "0" => (Tri::Yes, 1),
                p => match tcp_name(p) {
                    Some(is_tcp) => (Tri::from_bool(is_tcp), 1),
                    None => (Tri::Maybe(format!("the protocol {p}")), 1),
                },
            },
            "-o" | "--out-interface" => {
                let name = arg(i);
                let lo = match name.strip_suffix('+') {
                    Some(prefix) => "lo".starts_with(prefix),
                    None => name == "lo",
                };
                let test = if packet.loopback() {
                    Tri::from_bool(lo)
                } else if name == "lo" {
                    Tri::No
                } else {
                    Tri::Maybe(format!("the outgoing interface {name}"))
                };
                (test, 1)
            }
            "-m" | "--match" => match arg(i) {
                "tcp" | "comment" | "multiport" | "state" | "conntrack" => (Tri::Yes, 1),
                other => (Tri::Maybe(format!("the match -m {other}")), 1),
            },
            "--dport" | "--destination-port" => (port_range_list(packet.port, arg(i)), 1),
            "--dports" | "--destination-ports" => (port_range_list(packet.port, arg(i)), 1),
            "--ports" => match port_range_list(packet.port, arg(i)) {
                Tri::Yes => (Tri::Yes, 1),
                _ => (Tri::Maybe("the source port".into()), 1),
            },
            "--sport" | "--source-port" | "--sports" | "--source-ports" => {
                (Tri::Maybe("the source port".into()), 1)
            }
            "--state" | "--ctstate" => (
                Tri::from_bool(arg(i).split(',').any(|s| s.eq_ignore_ascii_case("NEW"))),
                1,
            ),
            "--comment" => (Tri::Yes, 1),
            "--syn" => (Tri::Yes, 0),
            "--tcp-flags" => (Tri::Maybe("tcp flags".into()), 2),
            "-j" | "--jump" | "-g" | "--goto" => {
                let target = arg(i);
                verdict = match target {
                    "ACCEPT" => Verdict::Accept,
                    "DROP" => Verdict::Drop("drop"),
                    "REJECT" => Verdict::Drop("reject"),
                    "RETURN" => Verdict::Return,
                    "LOG" | "NFLOG" | "CONNMARK" | "MARK" => Verdict::Next,
                    chain if chains.iter().any(|c| c == chain) => {
                        if word.starts_with("-g") || word == "--goto" {
                            Verdict::Goto(chain.to_string())
                        } else {
                            Verdict::Jump(chain.to_string())
                        }
                    }
                    other => Verdict::Unknown(format!("the target {other}")),
                };
                // Whatever follows are the target's own options.
                break;
            }
            other => {
                // An option of a match this evaluator does not know: skip its values.
                let mut used = 0;
                while words
                    .get(i + 1 + used)
                    .is_some_and(|w| !w.starts_with('-') && w != "!")
                {
                    used += 1;
                }
                (Tri::Maybe(format!("the option {other}")), used)
            }
        };
        let test = if std::mem::take(&mut negate) {
            test.not()
        } else {
            test
        };
        cond = cond.and(test);
        i += 1 + used;
    }
    (cond, verdict)
}

/// `-d 10.0.0.0/8`, `-d 10.1.2.3/32`, `-d 10.0.0.0/255.0.0.0` or a bare address.
fn iptables_addr(ip: IpAddr, spec: &str) -> Tri {
    let (addr, mask) = spec.split_once('/').unwrap_or((spec, ""));
    let Ok(network) = addr.parse::<IpAddr>() else {
        return Tri::Maybe(format!("the address {spec}"));
    };
    if network.is_ipv4() != ip.is_ipv4() {
        return Tri::No;
    }
    let full = if network.is_ipv4() { 32 } else { 128 };
    let len = if mask.is_empty() {
        full
    } else if let Ok(len) = mask.parse::<u32>() {
        len
    } else if let Ok(IpAddr::V4(m)) = mask.parse::<IpAddr>() {
        u32::from(m).count_ones()
    } else {
        return Tri::Maybe(format!("the address {spec}"));
    };
    Tri::from_bool(in_prefix(ip, network, len))
}

/// `25`, `1000:2000`, `:1024`, `8000:`, or a comma list of those.
fn port_range_list(port: u16, spec: &str) -> Tri {
    Tri::any(spec.split(',').map(|item| {
        let parse = |s: &str, default: u16| {
            if s.is_empty() {
                Some(default)
            } else {
                s.parse::<u16>().ok().or_else(|| service_port(s))
            }
        };
        let (lo, hi) = match item.split_once(':') {
            Some((lo, hi)) => (parse(lo, 0), parse(hi, u16::MAX)),
            None => (parse(item, 0), parse(item, 0)),
        };
        match (lo, hi) {
            (Some(lo), Some(hi)) => Tri::from_bool(lo <= port && port <= hi),
            _ => Tri::Maybe(format!("the port {item}")),
        }
    }))
}

/// Splits a line as a POSIX shell would for the quoting iptables-save uses (double quotes with
/// backslash escapes).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            '\\' if quoted => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    const INET_FILTER: &str = include_str!("../tests/fixtures/firewall/nft-inet-filter.json");
    const TWO_TABLES: &str = include_str!("../tests/fixtures/firewall/nft-two-tables.json");
    const POLICY_DROP: &str = include_str!("../tests/fixtures/firewall/nft-policy-drop.json");
    const UNCERTAIN: &str = include_str!("../tests/fixtures/firewall/nft-uncertain.json");
    const EMPTY: &str = include_str!("../tests/fixtures/firewall/nft-empty.json");
    const IPT: &str = include_str!("../tests/fixtures/firewall/iptables-output.txt");
    const IPT_POLICY: &str = include_str!("../tests/fixtures/firewall/iptables-policy-drop.txt");

    fn nft(json: &str, addr: &str, port: u16) -> Evaluation {
        evaluate_nft(json, addr.parse().unwrap(), port).unwrap()
    }

    fn blocked(e: Evaluation) -> FirewallRule {
        match e {
            Evaluation::Blocked(rule) => rule,
            other => panic!("expected blocked, got {other:?}"),
        }
    }

    #[test]
    fn a_named_set_with_a_prefix_blocks_its_port() {
        let rule = blocked(nft(INET_FILTER, "10.1.2.3", 993));
        assert_eq!(rule.family, "inet");
        assert_eq!(rule.table, "filter");
        assert_eq!(rule.chain, "output");
        assert_eq!(rule.handle, Some(8));
        assert_eq!(rule.action, "drop");
        assert_eq!(rule.text, "ip daddr @blocked tcp dport 993 drop");
        assert_eq!(
            blocked(nft(INET_FILTER, "192.0.2.7", 993)).handle,
            Some(8),
            "a single address in the set"
        );
        assert_eq!(nft(INET_FILTER, "192.0.2.8", 993), Evaluation::Allowed);
        assert_eq!(nft(INET_FILTER, "10.1.2.3", 995), Evaluation::Allowed);
    }

    #[test]
    fn an_accept_earlier_in_the_same_chain_wins() {
        assert_eq!(nft(INET_FILTER, "198.51.100.1", 465), Evaluation::Allowed);
        // Loopback traffic is accepted by `oifname "lo" accept` before the jump that rejects.
        assert_eq!(nft(INET_FILTER, "127.0.0.1", 143), Evaluation::Allowed);
    }

    #[test]
    fn a_rejecting_rule_in_a_jumped_to_chain_is_reported_there() {
        let rule = blocked(nft(INET_FILTER, "10.1.2.3", 143));
        assert_eq!(rule.chain, "mychain");
        assert_eq!(rule.handle, Some(13));
        assert_eq!(rule.action, "reject");
        assert_eq!(
            rule.text,
            "ip daddr != 127.0.0.0/8 reject with icmp port-unreachable"
        );
    }

    #[test]
    fn verdict_maps_are_followed() {
        let rule = blocked(nft(INET_FILTER, "10.1.2.3", 110));
        assert_eq!(rule.handle, Some(12));
        assert_eq!(rule.text, "tcp dport vmap { 110 : drop, 995 : accept }");
        assert_eq!(nft(INET_FILTER, "10.1.2.3", 995), Evaluation::Allowed);
    }

    #[test]
    fn ipv6_prefixes_and_port_ranges_match_only_ipv6() {
        let rule = blocked(nft(INET_FILTER, "2001:db8::5", 1500));
        assert_eq!(rule.handle, Some(9));
        assert_eq!(rule.action, "reject");
        assert_eq!(nft(INET_FILTER, "2001:db8::5", 2001), Evaluation::Allowed);
        // The IPv4 set and the IPv4 jump condition never match an IPv6 packet.
        assert_eq!(nft(INET_FILTER, "2001:db9::5", 993), Evaluation::Allowed);
    }

    #[test]
    fn regression_a_drop_in_one_table_blocks_although_another_accepts() {
        // LAB-NOTES pitfall 8: accept ends only its own base chain.
        let rule = blocked(nft(TWO_TABLES, "192.0.2.10", 993));
        assert_eq!(rule.family, "ip");
        assert_eq!(rule.table, "block");
        assert_eq!(
            rule.text,
            "ip daddr 192.0.2.0/24 tcp dport { 993, 995 } counter drop"
        );
        assert_eq!(nft(TWO_TABLES, "192.0.3.10", 993), Evaluation::Allowed);
    }

    #[test]
    fn chain_policy_drop_blocks_what_no_rule_accepts() {
        let rule = blocked(nft(POLICY_DROP, "192.0.2.1", 993));
        assert_eq!(rule.handle, None);
        assert_eq!(rule.table, "strict");
        assert_eq!(rule.action, "drop");
        assert!(rule.text.starts_with("policy drop"), "{}", rule.text);
        assert_eq!(nft(POLICY_DROP, "192.0.2.1", 587), Evaluation::Allowed);
        // `ct state established,related` does not match the first packet of a connection.
        assert!(matches!(
            nft(POLICY_DROP, "2001:db8::1", 993),
            Evaluation::Blocked(_)
        ));
    }

    #[test]
    fn rules_on_unknowable_conditions_make_the_verdict_uncertain() {
        match nft(UNCERTAIN, "192.0.2.1", 25) {
            Evaluation::Uncertain(detail) => {
                assert!(detail.contains("eth0"), "{detail}");
                assert!(detail.contains("handle 2"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
        // Loopback traffic never leaves through eth0.
        assert_eq!(nft(UNCERTAIN, "127.0.0.1", 25), Evaluation::Allowed);
        // An accept for one socket owner before a drop for all: it depends on the user.
        match nft(UNCERTAIN, "192.0.2.1", 465) {
            Evaluation::Uncertain(detail) => assert!(detail.contains("skuid"), "{detail}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(nft(UNCERTAIN, "192.0.2.1", 993), Evaluation::Allowed);
    }

    #[test]
    fn an_empty_ruleset_allows_everything() {
        assert_eq!(nft(EMPTY, "192.0.2.1", 993), Evaluation::Allowed);
    }

    #[test]
    fn non_rulesets_are_errors_not_verdicts() {
        assert!(matches!(
            evaluate_nft(
                "Error: Could not process rule",
                "192.0.2.1".parse().unwrap(),
                1
            ),
            Err(FirewallError::Json(_))
        ));
        assert!(matches!(
            evaluate_nft("{\"x\": 1}", "192.0.2.1".parse().unwrap(), 1),
            Err(FirewallError::NotRuleset(_))
        ));
    }

    #[test]
    fn hand_written_anonymous_sets_ranges_and_negations() {
        let json = r#"{"nftables": [
          {"chain": {"family": "ip", "table": "t", "name": "o", "handle": 1, "type": "filter", "hook": "output", "prio": 0, "policy": "accept"}},
          {"rule": {"family": "ip", "table": "t", "chain": "o", "handle": 2, "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                       "right": {"set": [{"range": ["192.0.2.10", "192.0.2.20"]}, {"prefix": {"addr": "198.51.100.0", "len": 24}}]}}},
            {"match": {"op": "!=", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": {"set": [443, {"range": [8000, 8100]}]}}},
            {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}},
            {"reject": null}]}},
          {"rule": {"family": "ip", "table": "t", "chain": "o", "handle": 3, "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": 993}},
            {"drop": null}]}}
        ]}"#;
        assert_eq!(blocked(nft(json, "192.0.2.15", 993)).handle, Some(2));
        assert_eq!(blocked(nft(json, "198.51.100.200", 25)).handle, Some(2));
        assert_eq!(nft(json, "198.51.100.200", 443), Evaluation::Allowed);
        assert_eq!(nft(json, "198.51.100.200", 8050), Evaluation::Allowed);
        // A UDP rule never matches TCP.
        assert_eq!(nft(json, "192.0.2.21", 993), Evaluation::Allowed);
    }

    #[test]
    fn jump_loops_and_missing_chains_are_uncertain_not_a_crash() {
        let json = r#"{"nftables": [
          {"chain": {"family": "inet", "table": "t", "name": "o", "handle": 1, "type": "filter", "hook": "output", "prio": 0, "policy": "accept"}},
          {"chain": {"family": "inet", "table": "t", "name": "a", "handle": 2}},
          {"rule": {"family": "inet", "table": "t", "chain": "o", "handle": 3, "expr": [{"jump": {"target": "a"}}]}},
          {"rule": {"family": "inet", "table": "t", "chain": "a", "handle": 4, "expr": [{"jump": {"target": "a"}}]}},
          {"rule": {"family": "inet", "table": "t", "chain": "o", "handle": 5, "expr": [{"goto": {"target": "gone"}}]}}
        ]}"#;
        assert!(matches!(
            nft(json, "192.0.2.1", 993),
            Evaluation::Uncertain(_)
        ));
    }

    fn ipt(listing: &str, addr: &str, port: u16) -> Evaluation {
        evaluate_iptables(listing, "iptables", addr.parse().unwrap(), port)
    }

    #[test]
    fn iptables_destination_and_port_drop() {
        let rule = blocked(ipt(IPT, "203.0.113.9", 993));
        assert_eq!(rule.family, "iptables");
        assert_eq!(rule.chain, "OUTPUT");
        assert_eq!(rule.handle, Some(3));
        assert_eq!(
            rule.text,
            "-A OUTPUT -d 203.0.113.0/24 -p tcp -m tcp --dport 993 -j DROP"
        );
        assert_eq!(ipt(IPT, "203.0.114.9", 993), Evaluation::Allowed);
    }

    #[test]
    fn iptables_multiport_lists_ranges_and_quoted_comments() {
        let rule = blocked(ipt(IPT, "192.0.2.1", 1500));
        assert_eq!(rule.action, "reject");
        assert_eq!(rule.handle, Some(4));
        assert_eq!(blocked(ipt(IPT, "192.0.2.1", 110)).handle, Some(4));
        assert_eq!(ipt(IPT, "192.0.2.1", 995), Evaluation::Allowed);
    }

    #[test]
    fn iptables_user_chains_and_negated_destinations() {
        let rule = blocked(ipt(IPT, "192.0.2.1", 143));
        assert_eq!(rule.chain, "mailblock");
        assert_eq!(rule.handle, Some(1));
        assert_eq!(ipt(IPT, "10.2.3.4", 143), Evaluation::Allowed);
        assert_eq!(
            ipt(IPT, "127.0.0.1", 143),
            Evaluation::Allowed,
            "-o lo accepts"
        );
    }

    #[test]
    fn iptables_policy_drop() {
        let rule = blocked(ipt(IPT_POLICY, "192.0.2.1", 993));
        assert_eq!(rule.text, "-P OUTPUT DROP");
        assert_eq!(ipt(IPT_POLICY, "192.0.2.1", 587), Evaluation::Allowed);
    }

    #[test]
    fn iptables_ipv6_rules_do_not_match_ipv4_and_netmasks_work() {
        let listing = "-P OUTPUT ACCEPT\n-A OUTPUT -d 2001:db8::/32 -j DROP\n-A OUTPUT -d 10.0.0.0/255.255.0.0 -p 6 --dport 25 -j DROP\n";
        assert_eq!(ipt(listing, "192.0.2.1", 25), Evaluation::Allowed);
        assert_eq!(blocked(ipt(listing, "10.0.9.9", 25)).handle, Some(2));
        assert_eq!(ipt(listing, "10.1.9.9", 25), Evaluation::Allowed);
        assert_eq!(blocked(ipt(listing, "2001:db8::1", 25)).handle, Some(1));
    }

    #[test]
    fn iptables_unknown_matches_are_uncertain() {
        let listing = "-P OUTPUT ACCEPT\n-A OUTPUT -m owner --uid-owner 1000 -j DROP\n";
        assert!(matches!(
            ipt(listing, "192.0.2.1", 25),
            Evaluation::Uncertain(_)
        ));
    }

    #[test]
    fn regression_a_chain_of_many_thousand_rules_does_not_overflow_the_stack() {
        let mut listing = String::from("-P OUTPUT ACCEPT\n");
        for i in 0..50_000 {
            listing.push_str(&format!(
                "-A OUTPUT -d 10.{}.{}.1/32 -j ACCEPT\n",
                i / 256 % 256,
                i % 256
            ));
        }
        listing.push_str("-A OUTPUT -p tcp --dport 993 -j DROP\n");
        assert_eq!(
            blocked(ipt(&listing, "192.0.2.1", 993)).handle,
            Some(50_001)
        );
    }

    #[test]
    fn shell_words_keep_quoted_spaces() {
        assert_eq!(
            shell_words(r#"-A X -m comment --comment "a \"b\" c" -j DROP"#),
            vec![
                "-A",
                "X",
                "-m",
                "comment",
                "--comment",
                "a \"b\" c",
                "-j",
                "DROP"
            ]
        );
    }
}
