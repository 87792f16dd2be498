//! A backend-neutral model of the output-hook firewall, and the evaluation of one new outbound
//! TCP connection against it: which base chains block it, and before which rule.
//!
//! Both the nftables JSON ruleset and `iptables -S` output are translated into this model, so the
//! decision of where an exception must go is made once, purely, and unit-tested without a kernel.

use serde::Serialize;
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

/// Jumps nested deeper than this are not followed; the jump is then treated as possibly blocking.
const MAX_DEPTH: usize = 16;

/// The protocol number of TCP, the only protocol an exception is made for.
pub const TCP: u8 = 6;

/// The address family of a table: which packets its chains see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Ip,
    Ip6,
    Inet,
}

impl Family {
    pub fn parse(s: &str) -> Option<Family> {
        match s {
            "ip" => Some(Family::Ip),
            "ip6" => Some(Family::Ip6),
            "inet" => Some(Family::Inet),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
            Family::Inet => "inet",
        }
    }

    /// Whether chains of this family see packets to `addr`.
    pub fn sees(self, addr: IpAddr) -> bool {
        matches!(
            (self, addr),
            (Family::Inet, _) | (Family::Ip, IpAddr::V4(_)) | (Family::Ip6, IpAddr::V6(_))
        )
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Names one chain: family, table and chain name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ChainId {
    pub family: Family,
    pub table: String,
    pub chain: String,
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.family, self.table, self.chain)
    }
}

/// One chain. `base` is set for chains attached to the output hook; only those are evaluated
/// directly, the others only through jumps.
#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    pub id: ChainId,
    pub base: bool,
    /// The chain's policy drops what no rule accepted.
    pub policy_drop: bool,
    pub rules: Vec<Rule>,
}

/// One rule: all its conditions must hold for its verdict to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The nftables handle, or for iptables the 1-based position in its chain.
    pub handle: u64,
    pub conds: Vec<Cond>,
    pub verdict: Verdict,
    pub comment: Option<String>,
}

/// What a rule does when it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No verdict (counter, log, mark): evaluation goes on with the next rule.
    Continue,
    Accept,
    Drop,
    Reject,
    Jump(String),
    Goto(String),
    Return,
}

impl Verdict {
    fn blocks(&self) -> bool {
        matches!(self, Verdict::Drop | Verdict::Reject)
    }
}

/// One address or network in an address match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrItem {
    Net(IpAddr, u8),
    Range(IpAddr, IpAddr),
}

impl AddrItem {
    fn contains(self, a: IpAddr) -> bool {
        match self {
            AddrItem::Net(net, len) => in_prefix(net, len, a),
            AddrItem::Range(lo, hi) => match (lo, hi, a) {
                (IpAddr::V4(l), IpAddr::V4(h), IpAddr::V4(x)) => l <= x && x <= h,
                (IpAddr::V6(l), IpAddr::V6(h), IpAddr::V6(x)) => l <= x && x <= h,
                _ => false,
            },
        }
    }
}

fn in_prefix(net: IpAddr, len: u8, a: IpAddr) -> bool {
    match (net, a) {
        (IpAddr::V4(n), IpAddr::V4(x)) => {
            let len = u32::from(len.min(32));
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(n) & mask == u32::from(x) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(x)) => {
            let len = u32::from(len.min(128));
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(n) & mask == u128::from(x) & mask
        }
        _ => false,
    }
}

/// One condition of a rule, in the terms that matter for a new outbound TCP connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// `ip daddr` (v6 false) or `ip6 daddr` (v6 true); never matches the other family.
    Daddr {
        v6: bool,
        negate: bool,
        items: Vec<AddrItem>,
    },
    /// A destination port match on `proto` (None: any transport header, nft's `th`); a port
    /// match on another protocol than TCP never matches.
    Dport {
        proto: Option<u8>,
        negate: bool,
        ranges: Vec<(u16, u16)>,
    },
    /// The transport protocol (`meta l4proto`, `ip protocol`, `-p`).
    L4Proto { negate: bool, protos: Vec<u8> },
    /// The network family (`meta nfproto`), or the implied family of another match.
    NfProto { negate: bool, v4: bool, v6: bool },
    /// Connection tracking state; a new connection is in state `new`.
    CtState { negate: bool, includes_new: bool },
    /// Something this model cannot evaluate (an interface, a source, a mark); the text says what.
    Unknown(String),
}

/// Three-valued truth: a condition that cannot be evaluated may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tri {
    Yes,
    No,
    Maybe,
}

impl Tri {
    fn from_bool(b: bool, negate: bool) -> Tri {
        if b != negate {
            Tri::Yes
        } else {
            Tri::No
        }
    }
}

/// The traffic an exception is for: a new TCP connection to `daddr` port `dport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    pub daddr: IpAddr,
    pub dport: u16,
}

impl Cond {
    pub fn eval(&self, p: &Packet) -> Tri {
        match self {
            Cond::Daddr { v6, negate, items } => {
                if p.daddr.is_ipv6() != *v6 {
                    // The match implies its family, so a packet of the other family never
                    // matches, negated or not.
                    return Tri::No;
                }
                Tri::from_bool(items.iter().any(|i| i.contains(p.daddr)), *negate)
            }
            Cond::Dport {
                proto,
                negate,
                ranges,
            } => {
                if proto.is_some_and(|pr| pr != TCP) {
                    return Tri::No;
                }
                let hit = ranges
                    .iter()
                    .any(|(lo, hi)| *lo <= p.dport && p.dport <= *hi);
                Tri::from_bool(hit, *negate)
            }
            Cond::L4Proto { negate, protos } => Tri::from_bool(protos.contains(&TCP), *negate),
            Cond::NfProto { negate, v4, v6 } => {
                let hit = if p.daddr.is_ipv6() { *v6 } else { *v4 };
                Tri::from_bool(hit, *negate)
            }
            Cond::CtState {
                negate,
                includes_new,
            } => Tri::from_bool(*includes_new, *negate),
            Cond::Unknown(_) => Tri::Maybe,
        }
    }
}

impl Rule {
    /// Whether all conditions hold: No as soon as one does not, Maybe when one cannot be told.
    pub fn matches(&self, p: &Packet) -> Tri {
        let mut out = Tri::Yes;
        for c in &self.conds {
            match c.eval(p) {
                Tri::No => return Tri::No,
                Tri::Maybe => out = Tri::Maybe,
                Tri::Yes => {}
            }
        }
        out
    }

    fn unknowns(&self) -> Vec<&str> {
        self.conds
            .iter()
            .filter_map(|c| match c {
                Cond::Unknown(s) => Some(s.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// Every chain of the firewall, as one backend shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ruleset {
    pub chains: Vec<Chain>,
}

impl Ruleset {
    fn find(&self, family: Family, table: &str, name: &str) -> Option<&Chain> {
        self.chains
            .iter()
            .find(|c| c.id.family == family && c.id.table == table && c.id.chain == name)
    }

    /// Every rule with its chain, in order.
    pub fn rules(&self) -> impl Iterator<Item = (&ChainId, &Rule)> {
        self.chains
            .iter()
            .flat_map(|c| c.rules.iter().map(move |r| (&c.id, r)))
    }
}

/// What one base chain does with the connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Outcome {
    /// Nothing in the chain stops it.
    Passes,
    /// A rule accepts it before anything blocks it (an admin's exception, or an earlier fix).
    Allowed { handle: u64 },
    /// The chain drops or rejects it. An exception must go before rule `before` (None: append,
    /// in front of the chain's drop policy). `certain` is false when a rule that could not be
    /// evaluated was taken as possibly matching; `reason` says which rule and why.
    Blocked {
        before: Option<u64>,
        certain: bool,
        reason: String,
    },
}

/// The outcome of one base chain for one destination address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    #[serde(flatten)]
    pub chain: ChainId,
    pub address: IpAddr,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// Evaluates every output-hook base chain that sees each address, for TCP to `port`.
pub fn analyse(rs: &Ruleset, addresses: &[IpAddr], port: u16) -> Vec<Finding> {
    let mut out = Vec::new();
    for &address in addresses {
        let p = Packet {
            daddr: address,
            dport: port,
        };
        for chain in rs
            .chains
            .iter()
            .filter(|c| c.base && c.id.family.sees(address))
        {
            out.push(Finding {
                chain: chain.id.clone(),
                address,
                outcome: eval_base(rs, chain, &p),
            });
        }
    }
    out
}

/// How evaluation of one chain ended.
enum Flow {
    Accept {
        handle: u64,
    },
    Block {
        at: u64,
        certain: bool,
        reason: String,
    },
    /// The chain returned to its caller: by a `return` rule (`at`), or by running out of rules.
    Return {
        at: Option<u64>,
        certain: bool,
    },
}

fn eval_base(rs: &Ruleset, chain: &Chain, p: &Packet) -> Outcome {
    match eval_chain(rs, chain, p, 0) {
        Flow::Accept { handle } => Outcome::Allowed { handle },
        Flow::Block {
            at,
            certain,
            reason,
        } => Outcome::Blocked {
            before: Some(at),
            certain,
            reason,
        },
        Flow::Return { at, certain } => {
            if chain.policy_drop {
                Outcome::Blocked {
                    before: at,
                    certain,
                    reason: format!("chain {} has policy drop", chain.id),
                }
            } else {
                Outcome::Passes
            }
        }
    }
}

fn eval_chain(rs: &Ruleset, chain: &Chain, p: &Packet, depth: usize) -> Flow {
    for rule in &chain.rules {
        let m = rule.matches(p);
        if m == Tri::No {
            continue;
        }
        let sure = m == Tri::Yes;
        match &rule.verdict {
            // An accept or return that only may match cannot be relied on: evaluation goes on.
            Verdict::Continue | Verdict::Accept | Verdict::Return if !sure => {}
            Verdict::Continue => {}
            Verdict::Accept => {
                return Flow::Accept {
                    handle: rule.handle,
                }
            }
            v if v.blocks() => {
                let reason = if sure {
                    format!("rule {} in {} drops or rejects it", rule.handle, chain.id)
                } else {
                    format!(
                        "rule {} in {} drops or rejects and may match (cannot evaluate: {})",
                        rule.handle,
                        chain.id,
                        rule.unknowns().join(", ")
                    )
                };
                return Flow::Block {
                    at: rule.handle,
                    certain: sure,
                    reason,
                };
            }
            Verdict::Return => {
                return Flow::Return {
                    at: Some(rule.handle),
                    certain: true,
                }
            }
            Verdict::Jump(target) | Verdict::Goto(target) => {
                let goto = matches!(rule.verdict, Verdict::Goto(_));
                let Some(sub) = rs.find(chain.id.family, &chain.id.table, target) else {
                    continue;
                };
                let flow = if depth >= MAX_DEPTH {
                    Flow::Block {
                        at: 0,
                        certain: false,
                        reason: format!("chains nest deeper than {MAX_DEPTH} below {target}"),
                    }
                } else {
                    eval_chain(rs, sub, p, depth + 1)
                };
                match flow {
                    Flow::Accept { .. } if sure => {
                        return Flow::Accept {
                            handle: rule.handle,
                        }
                    }
                    Flow::Accept { .. } => {}
                    Flow::Block {
                        certain, reason, ..
                    } => {
                        // The exception goes before the jump in this chain: an accept there ends
                        // this chain's evaluation before the jumped-to chain can drop.
                        return Flow::Block {
                            at: rule.handle,
                            certain: certain && sure,
                            reason: format!(
                                "rule {} in {} jumps to {target}: {reason}",
                                rule.handle, chain.id
                            ),
                        };
                    }
                    Flow::Return { certain, .. } => {
                        if goto && sure {
                            // A goto does not come back: this chain ends where the goto was.
                            return Flow::Return {
                                at: Some(rule.handle),
                                certain,
                            };
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Flow::Return {
        at: None,
        certain: true,
    }
}

/// Where one exception goes: an accept for `address` in `chain`, before rule `before` (None:
/// appended at the end).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Insert {
    #[serde(flatten)]
    pub chain: ChainId,
    pub address: IpAddr,
    pub before: Option<u64>,
}

/// The plan for an exception: the inserts needed, and the chains that already allow it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub inserts: Vec<Insert>,
    pub already_allowed: Vec<Finding>,
}

/// Turns findings into inserts: one before the first (possible) blocker of each blocking chain.
pub fn plan(findings: &[Finding]) -> Plan {
    let mut plan = Plan::default();
    let mut seen: HashMap<(ChainId, IpAddr), ()> = HashMap::new();
    for f in findings {
        match &f.outcome {
            Outcome::Blocked { before, .. } => {
                if seen.insert((f.chain.clone(), f.address), ()).is_none() {
                    plan.inserts.push(Insert {
                        chain: f.chain.clone(),
                        address: f.address,
                        before: *before,
                    });
                }
            }
            Outcome::Allowed { .. } => plan.already_allowed.push(f.clone()),
            Outcome::Passes => {}
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn chain(table: &str, name: &str, base: bool, policy_drop: bool, rules: Vec<Rule>) -> Chain {
        Chain {
            id: ChainId {
                family: Family::Inet,
                table: table.into(),
                chain: name.into(),
            },
            base,
            policy_drop,
            rules,
        }
    }

    fn rule(handle: u64, conds: Vec<Cond>, verdict: Verdict) -> Rule {
        Rule {
            handle,
            conds,
            verdict,
            comment: None,
        }
    }

    fn daddr(a: &str) -> Cond {
        Cond::Daddr {
            v6: false,
            negate: false,
            items: vec![AddrItem::Net(v4(a), 32)],
        }
    }

    fn dport(p: u16) -> Cond {
        Cond::Dport {
            proto: Some(TCP),
            negate: false,
            ranges: vec![(p, p)],
        }
    }

    #[test]
    fn a_drop_of_the_address_and_port_blocks_before_that_rule() {
        let rs = Ruleset {
            chains: vec![chain(
                "filter",
                "output",
                true,
                false,
                vec![
                    rule(3, vec![dport(25)], Verdict::Drop),
                    rule(4, vec![daddr("127.0.0.2"), dport(993)], Verdict::Drop),
                ],
            )],
        };
        let f = analyse(&rs, &[v4("127.0.0.2")], 993);
        assert_eq!(f.len(), 1);
        assert!(matches!(
            f[0].outcome,
            Outcome::Blocked {
                before: Some(4),
                certain: true,
                ..
            }
        ));
        assert_eq!(
            analyse(&rs, &[v4("127.0.0.3")], 993)[0].outcome,
            Outcome::Passes
        );
    }

    #[test]
    fn an_earlier_accept_means_the_chain_already_allows_it() {
        let rs = Ruleset {
            chains: vec![chain(
                "filter",
                "output",
                true,
                true,
                vec![
                    rule(9, vec![daddr("127.0.0.2"), dport(993)], Verdict::Accept),
                    rule(4, vec![dport(993)], Verdict::Drop),
                ],
            )],
        };
        let f = analyse(&rs, &[v4("127.0.0.2")], 993);
        assert_eq!(f[0].outcome, Outcome::Allowed { handle: 9 });
        let p = plan(&f);
        assert!(p.inserts.is_empty());
        assert_eq!(p.already_allowed.len(), 1);
    }

    #[test]
    fn an_unknown_condition_on_a_drop_is_a_possible_blocker_but_not_on_an_accept() {
        let rs = Ruleset {
            chains: vec![chain(
                "filter",
                "output",
                true,
                false,
                vec![
                    rule(2, vec![Cond::Unknown("meta skuid".into())], Verdict::Accept),
                    rule(3, vec![Cond::Unknown("oifname".into())], Verdict::Drop),
                ],
            )],
        };
        match &analyse(&rs, &[v4("127.0.0.2")], 993)[0].outcome {
            Outcome::Blocked {
                before,
                certain,
                reason,
            } => {
                assert_eq!(*before, Some(3));
                assert!(!certain);
                assert!(reason.contains("oifname"), "{reason}");
            }
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn a_drop_in_a_jumped_to_chain_blocks_at_the_jump() {
        let rs = Ruleset {
            chains: vec![
                chain(
                    "filter",
                    "output",
                    true,
                    false,
                    vec![rule(5, vec![], Verdict::Jump("sub".into()))],
                ),
                chain(
                    "filter",
                    "sub",
                    false,
                    false,
                    vec![rule(7, vec![dport(993)], Verdict::Reject)],
                ),
            ],
        };
        match &analyse(&rs, &[v4("127.0.0.2")], 993)[0].outcome {
            Outcome::Blocked {
                before, certain, ..
            } => {
                assert_eq!(*before, Some(5));
                assert!(certain);
            }
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn a_drop_policy_blocks_at_the_end_or_at_a_matching_return() {
        let mut c = chain(
            "filter",
            "output",
            true,
            true,
            vec![rule(2, vec![dport(25)], Verdict::Accept)],
        );
        let rs = Ruleset {
            chains: vec![c.clone()],
        };
        assert!(matches!(
            analyse(&rs, &[v4("127.0.0.2")], 993)[0].outcome,
            Outcome::Blocked { before: None, .. }
        ));
        c.rules.push(rule(3, vec![dport(993)], Verdict::Return));
        let rs = Ruleset { chains: vec![c] };
        assert!(matches!(
            analyse(&rs, &[v4("127.0.0.2")], 993)[0].outcome,
            Outcome::Blocked {
                before: Some(3),
                ..
            }
        ));
    }

    #[test]
    fn ip_chains_do_not_see_ipv6_and_address_matches_imply_their_family() {
        let mut ip = chain("t", "out", true, true, vec![]);
        ip.id.family = Family::Ip;
        let inet = chain(
            "t",
            "out",
            true,
            false,
            vec![rule(
                1,
                vec![Cond::Daddr {
                    v6: false,
                    negate: true,
                    items: vec![],
                }],
                Verdict::Drop,
            )],
        );
        let rs = Ruleset {
            chains: vec![ip, inet],
        };
        let f = analyse(&rs, &["::1".parse().unwrap()], 993);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].outcome, Outcome::Passes);
    }

    #[test]
    fn new_connections_are_in_ct_state_new() {
        let est = Cond::CtState {
            negate: false,
            includes_new: false,
        };
        let p = Packet {
            daddr: v4("127.0.0.2"),
            dport: 993,
        };
        assert_eq!(est.eval(&p), Tri::No);
        let not_new = Cond::CtState {
            negate: true,
            includes_new: true,
        };
        assert_eq!(not_new.eval(&p), Tri::No);
    }

    #[test]
    fn prefixes_and_ranges_contain_their_addresses() {
        assert!(AddrItem::Net(v4("127.0.1.0"), 24).contains(v4("127.0.1.200")));
        assert!(!AddrItem::Net(v4("127.0.1.0"), 24).contains(v4("127.0.2.1")));
        assert!(AddrItem::Net(v4("0.0.0.0"), 0).contains(v4("127.0.2.1")));
        assert!(AddrItem::Range(v4("127.0.0.1"), v4("127.0.0.9")).contains(v4("127.0.0.5")));
        assert!(AddrItem::Net("fd00::".parse().unwrap(), 8).contains("fd12::1".parse().unwrap()));
    }

    #[test]
    fn one_insert_per_chain_and_address() {
        let rs = Ruleset {
            chains: vec![
                chain(
                    "a",
                    "out",
                    true,
                    false,
                    vec![rule(4, vec![dport(993)], Verdict::Drop)],
                ),
                chain(
                    "b",
                    "out",
                    true,
                    false,
                    vec![rule(8, vec![dport(993)], Verdict::Reject)],
                ),
            ],
        };
        let p = plan(&analyse(&rs, &[v4("127.0.0.2"), v4("127.0.0.3")], 993));
        assert_eq!(p.inserts.len(), 4);
        assert!(p
            .inserts
            .iter()
            .any(|i| i.chain.table == "b" && i.before == Some(8)));
    }
}
