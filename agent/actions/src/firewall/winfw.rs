//! Windows Firewall: the rule model read through `INetFwPolicy2`, whether a rule applies to
//! outbound TCP to an address and port, and what the agent does about it. Pure; the performer
//! is `crate::win::firewall` (Windows only).
//!
//! # What the agent does about a blocking rule
//!
//! In Windows Firewall a matching *block* rule beats every *allow* rule (only an IPsec
//! "override block rules" allow, which needs authenticated connections, beats it), so an
//! exception cannot be added in front of a block rule the way nftables allows. Therefore:
//!
//! - **By default the agent never touches an administrator's rule.** When an enabled outbound
//!   block rule applies to the mail host's address and port, the action is refused as
//!   unavailable with the names of the blocking rules, and becomes a recommendation for the
//!   administrator.
//! - **With the policy option `firewall.windows_disable_blocking_rules = true`** the agent
//!   disables exactly the enabled block rules that apply unconditionally to that address and
//!   port (not rules limited to a program or service, nor rules whose addresses are keywords
//!   like `LocalSubnet` that cannot be evaluated here): their identity (name and every matching
//!   field) is in the snapshot, and undo re-enables them. The agent's own allow rule carries
//!   the same list in its description, so that uninstall can re-enable them too.
//! - When the firewall's default outbound action of an active profile is *block* (rare; set by
//!   hardened policies), an allow rule is what lets the connection out.
//!
//! The agent's rule: outbound, allow, TCP, remote addresses = the mail host's addresses, remote
//! port = the mail port, all profiles, named `mailmend <fix id>`, grouping `mailmend`. Undo
//! deletes the rules with exactly that name; uninstall deletes every rule with grouping
//! `mailmend` whose name starts with `mailmend `. Rules that Group Policy pushes are not in the
//! local store the COM API edits; a GPO block rule is therefore seen by the re-check only, and
//! the fix is undone.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// The grouping of every rule the agent adds.
pub const GROUPING: &str = "mailmend";
/// The prefix of the name of every rule the agent adds.
pub const NAME_PREFIX: &str = "mailmend ";

/// `NET_FW_IP_PROTOCOL_TCP`.
pub const PROTOCOL_TCP: i32 = 6;
/// `NET_FW_IP_PROTOCOL_ANY`.
pub const PROTOCOL_ANY: i32 = 256;
/// `NET_FW_PROFILE2_ALL`.
pub const PROFILES_ALL: i32 = 0x7fff_ffff;

/// The name of the allow rule of one fix.
pub fn rule_name(fix_id: &str) -> String {
    format!("{NAME_PREFIX}{fix_id}")
}

/// One firewall rule, with the fields that decide whether it applies to a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FwRule {
    pub name: String,
    pub enabled: bool,
    pub outbound: bool,
    /// The rule blocks (otherwise it allows).
    pub block: bool,
    pub protocol: i32,
    pub local_addresses: String,
    pub local_ports: String,
    pub remote_addresses: String,
    pub remote_ports: String,
    pub profiles: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub application: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub grouping: String,
}

impl FwRule {
    /// What identifies the rule when names repeat (they may): every field but `enabled`.
    pub fn same_rule(&self, other: &FwRule) -> bool {
        let mut a = self.clone();
        a.enabled = other.enabled;
        a == *other
    }

    /// Whether the agent added this rule.
    pub fn is_mailmends(&self) -> bool {
        self.grouping == GROUPING && self.name.starts_with(NAME_PREFIX)
    }
}

/// Whether a condition holds for a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Applies {
    Yes,
    No,
    /// Depends on something not known here: the program, the service, a keyword address.
    Maybe,
}

impl Applies {
    fn and(self, other: Applies) -> Applies {
        match (self, other) {
            (Applies::No, _) | (_, Applies::No) => Applies::No,
            (Applies::Maybe, _) | (_, Applies::Maybe) => Applies::Maybe,
            _ => Applies::Yes,
        }
    }
}

/// Whether an address list (`RemoteAddresses`: `*`, or a comma list of addresses, `a/len`,
/// `a/mask`, `a-b` ranges and keywords) contains `addr`.
pub fn addresses_contain(list: &str, addr: IpAddr) -> Applies {
    let list = list.trim();
    if list.is_empty() || list == "*" {
        return Applies::Yes;
    }
    let mut result = Applies::No;
    for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        match address_item_contains(item, addr) {
            Some(true) => return Applies::Yes,
            Some(false) => {}
            None => result = Applies::Maybe,
        }
    }
    result
}

/// Some(contains) for an address, network or range; None for a keyword or anything unreadable.
fn address_item_contains(item: &str, addr: IpAddr) -> Option<bool> {
    if let Ok(a) = item.parse::<IpAddr>() {
        return Some(a == addr);
    }
    if let Some((lo, hi)) = item.split_once('-') {
        let (lo, hi) = (
            lo.trim().parse::<IpAddr>().ok()?,
            hi.trim().parse::<IpAddr>().ok()?,
        );
        return Some(match (lo, hi, addr) {
            (IpAddr::V4(l), IpAddr::V4(h), IpAddr::V4(x)) => l <= x && x <= h,
            (IpAddr::V6(l), IpAddr::V6(h), IpAddr::V6(x)) => l <= x && x <= h,
            _ => false,
        });
    }
    if let Some((net, len)) = item.split_once('/') {
        let net: IpAddr = net.trim().parse().ok()?;
        let bits = match len.trim().parse::<u8>() {
            Ok(b) => b,
            // The mask form Windows itself prints: 192.0.2.0/255.255.255.0.
            Err(_) => mask_bits(len.trim().parse().ok()?)?,
        };
        return Some(in_prefix(net, bits, addr));
    }
    None
}

fn mask_bits(mask: IpAddr) -> Option<u8> {
    let bits = match mask {
        IpAddr::V4(m) => {
            let v = u32::from(m);
            let n = v.leading_ones();
            (v.checked_shl(n).unwrap_or(0) == 0).then_some(n)?
        }
        IpAddr::V6(m) => {
            let v = u128::from(m);
            let n = v.leading_ones();
            (v.checked_shl(n).unwrap_or(0) == 0).then_some(n)?
        }
    };
    u8::try_from(bits).ok()
}

fn in_prefix(net: IpAddr, bits: u8, addr: IpAddr) -> bool {
    match (net, addr) {
        (IpAddr::V4(n), IpAddr::V4(a)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// Whether a port list (`*`, or a comma list of ports and `a-b` ranges; keywords such as `RPC`
/// name other services' ports) contains `port`.
pub fn ports_contain(list: &str, port: u16) -> bool {
    let list = list.trim();
    if list.is_empty() || list == "*" {
        return true;
    }
    list.split(',').map(str::trim).any(|item| {
        if let Some((lo, hi)) = item.split_once('-') {
            match (lo.trim().parse::<u16>(), hi.trim().parse::<u16>()) {
                (Ok(l), Ok(h)) => l <= port && port <= h,
                _ => false,
            }
        } else {
            item.parse::<u16>() == Ok(port)
        }
    })
}

/// Whether an enabled rule applies to outbound TCP from this machine to `addr`:`port` in one
/// of the active profiles.
pub fn applies(rule: &FwRule, addr: IpAddr, port: u16, active_profiles: i32) -> Applies {
    if !rule.enabled
        || !rule.outbound
        || rule.profiles & active_profiles == 0
        || !(rule.protocol == PROTOCOL_TCP || rule.protocol == PROTOCOL_ANY)
        || !ports_contain(&rule.remote_ports, port)
    {
        return Applies::No;
    }
    // A local port list other than `*` on an outbound rule names the source port, which is
    // ephemeral: the rule may or may not match.
    let local_ports = if rule.local_ports.trim().is_empty() || rule.local_ports.trim() == "*" {
        Applies::Yes
    } else {
        Applies::Maybe
    };
    let local_addresses =
        if rule.local_addresses.trim().is_empty() || rule.local_addresses.trim() == "*" {
            Applies::Yes
        } else {
            Applies::Maybe
        };
    let program = if rule.application.is_empty() && rule.service.is_empty() {
        Applies::Yes
    } else {
        Applies::Maybe
    };
    addresses_contain(&rule.remote_addresses, addr)
        .and(local_ports)
        .and(local_addresses)
        .and(program)
}

/// The firewall as the performer sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FwState {
    /// `CurrentProfileTypes`: the profiles of the connected networks.
    pub active_profiles: i32,
    /// The firewall is on in at least one active profile.
    pub enabled: bool,
    /// The default outbound action of at least one active profile is block.
    pub default_outbound_block: bool,
    pub rules: Vec<FwRule>,
}

/// What applies to the connection, rule by rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Assessment {
    /// Enabled block rules that apply unconditionally.
    pub blocking: Vec<FwRule>,
    /// Enabled block rules that may apply (program, service or keyword conditions).
    pub maybe_blocking: Vec<String>,
    /// Enabled allow rules that apply unconditionally to every address.
    pub allowing: Vec<String>,
    /// The addresses no allow rule covers.
    pub not_allowed: Vec<IpAddr>,
}

/// Looks at every rule for every address.
pub fn assess(state: &FwState, addresses: &[IpAddr], port: u16) -> Assessment {
    let mut a = Assessment::default();
    for rule in &state.rules {
        let per: Vec<Applies> = addresses
            .iter()
            .map(|x| applies(rule, *x, port, state.active_profiles))
            .collect();
        let any_yes = per.contains(&Applies::Yes);
        let any_maybe = per.contains(&Applies::Maybe);
        if rule.block {
            if any_yes {
                a.blocking.push(rule.clone());
            } else if any_maybe {
                a.maybe_blocking.push(rule.name.clone());
            }
        } else if any_yes {
            a.allowing.push(rule.name.clone());
        }
    }
    a.not_allowed = addresses
        .iter()
        .copied()
        .filter(|x| {
            !state
                .rules
                .iter()
                .any(|r| !r.block && applies(r, *x, port, state.active_profiles) == Applies::Yes)
        })
        .collect();
    a
}

/// What the performer will do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "plan", rename_all = "snake_case")]
pub enum FwPlan {
    /// The firewall is off, or nothing blocks and outbound is allowed by default.
    NothingBlocks,
    /// Outbound is blocked by default and allow rules already cover every address.
    AlreadyAllowed,
    /// Block rules apply and the policy does not let the agent disable them.
    LeftToAdmin { blocking: Vec<String> },
    /// Disable these block rules (policy allowed) and add the agent's allow rule.
    Change { disable: Vec<FwRule> },
}

/// Decides, from the assessment, what to do. `may_disable` is the policy option
/// `firewall.windows_disable_blocking_rules`.
pub fn decide(state: &FwState, a: &Assessment, may_disable: bool) -> FwPlan {
    if !state.enabled {
        return FwPlan::NothingBlocks;
    }
    if !a.blocking.is_empty() {
        if !may_disable {
            return FwPlan::LeftToAdmin {
                blocking: a.blocking.iter().map(|r| r.name.clone()).collect(),
            };
        }
        return FwPlan::Change {
            disable: a.blocking.clone(),
        };
    }
    if state.default_outbound_block {
        if a.not_allowed.is_empty() {
            return FwPlan::AlreadyAllowed;
        }
        return FwPlan::Change {
            disable: Vec::new(),
        };
    }
    FwPlan::NothingBlocks
}

/// The agent's allow rule for one fix.
pub fn allow_rule(fix_id: &str, addresses: &[IpAddr], port: u16) -> FwRule {
    FwRule {
        name: rule_name(fix_id),
        enabled: true,
        outbound: true,
        block: false,
        protocol: PROTOCOL_TCP,
        local_addresses: "*".into(),
        local_ports: "*".into(),
        remote_addresses: addresses
            .iter()
            .map(IpAddr::to_string)
            .collect::<Vec<_>>()
            .join(","),
        remote_ports: port.to_string(),
        profiles: PROFILES_ALL,
        application: String::new(),
        service: String::new(),
        grouping: GROUPING.into(),
    }
}

/// The description of the agent's rule: what it is for, and the rules the fix disabled (so
/// that uninstall can re-enable them without the state directory).
pub fn description(fix_id: &str, host: &str, disabled: &[FwRule]) -> String {
    // The host comes from a configuration file; one that is not a plain name could otherwise
    // forge the list of disabled rules.
    let host = if crate::dns::valid_host(host) {
        host
    } else {
        "(unnamed host)"
    };
    let mut d = format!("added by mailmend fix {fix_id}: outbound tcp to {host}");
    if !disabled.is_empty() {
        d.push_str("; disabled: ");
        // Serialising a plain struct of strings and numbers cannot fail.
        d.push_str(&serde_json::to_string(disabled).unwrap_or_default());
    }
    d
}

/// The rules a description written by [`description`] says were disabled.
pub fn disabled_in_description(d: &str) -> Vec<FwRule> {
    d.split_once("; disabled: ")
        .and_then(|(_, json)| serde_json::from_str(json).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn block(name: &str, addrs: &str, ports: &str) -> FwRule {
        FwRule {
            name: name.into(),
            enabled: true,
            outbound: true,
            block: true,
            protocol: PROTOCOL_TCP,
            local_addresses: "*".into(),
            local_ports: "*".into(),
            remote_addresses: addrs.into(),
            remote_ports: ports.into(),
            profiles: PROFILES_ALL,
            application: String::new(),
            service: String::new(),
            grouping: String::new(),
        }
    }

    #[test]
    fn address_lists_in_every_form_windows_prints() {
        let a = ip("192.0.2.10");
        assert_eq!(addresses_contain("*", a), Applies::Yes);
        assert_eq!(
            addresses_contain("192.0.2.10/255.255.255.255", a),
            Applies::Yes
        );
        assert_eq!(addresses_contain("192.0.2.0/24", a), Applies::Yes);
        assert_eq!(
            addresses_contain("192.0.2.0/255.255.255.0", a),
            Applies::Yes
        );
        assert_eq!(addresses_contain("192.0.2.1-192.0.2.20", a), Applies::Yes);
        assert_eq!(
            addresses_contain("198.51.100.0/24,192.0.2.11", a),
            Applies::No
        );
        assert_eq!(addresses_contain("LocalSubnet", a), Applies::Maybe);
        assert_eq!(addresses_contain("LocalSubnet,192.0.2.10", a), Applies::Yes);
        assert_eq!(
            addresses_contain("192.0.2.0/255.0.255.0", a),
            Applies::Maybe
        );
        let v6 = ip("2001:db8::5");
        assert_eq!(addresses_contain("2001:db8::/32", v6), Applies::Yes);
        assert_eq!(addresses_contain("192.0.2.0/24", v6), Applies::No);
    }

    #[test]
    fn port_lists_with_ranges_and_keywords() {
        assert!(ports_contain("*", 993));
        assert!(ports_contain("25,587,990-999", 993));
        assert!(!ports_contain("25,587", 993));
        assert!(!ports_contain("RPC", 993));
    }

    #[test]
    fn only_enabled_outbound_tcp_rules_of_an_active_profile_apply() {
        let a = ip("192.0.2.10");
        let r = block("b", "*", "993");
        assert_eq!(applies(&r, a, 993, 4), Applies::Yes);
        assert_eq!(
            applies(
                &FwRule {
                    enabled: false,
                    ..r.clone()
                },
                a,
                993,
                4
            ),
            Applies::No
        );
        assert_eq!(
            applies(
                &FwRule {
                    outbound: false,
                    ..r.clone()
                },
                a,
                993,
                4
            ),
            Applies::No
        );
        assert_eq!(
            applies(
                &FwRule {
                    protocol: 17,
                    ..r.clone()
                },
                a,
                993,
                4
            ),
            Applies::No
        );
        assert_eq!(
            applies(
                &FwRule {
                    profiles: 1,
                    ..r.clone()
                },
                a,
                993,
                4
            ),
            Applies::No
        );
        assert_eq!(
            applies(
                &FwRule {
                    application: r"C:\x\chrome.exe".into(),
                    ..r.clone()
                },
                a,
                993,
                4
            ),
            Applies::Maybe
        );
        assert_eq!(applies(&r, a, 995, 4), Applies::No);
    }

    fn state(rules: Vec<FwRule>, default_block: bool) -> FwState {
        FwState {
            active_profiles: 4,
            enabled: true,
            default_outbound_block: default_block,
            rules,
        }
    }

    #[test]
    fn a_blocking_rule_is_left_to_the_admin_unless_the_policy_allows_disabling_it() {
        let s = state(
            vec![
                block("Block IMAPS", "*", "993"),
                block("Chrome only", "*", "*")
                    .clone()
                    .with_app(r"C:\chrome.exe"),
                block("Other port", "*", "25"),
            ],
            false,
        );
        let addrs = [ip("192.0.2.10")];
        let a = assess(&s, &addrs, 993);
        assert_eq!(a.blocking.len(), 1);
        assert_eq!(a.maybe_blocking, vec!["Chrome only"]);
        assert_eq!(
            decide(&s, &a, false),
            FwPlan::LeftToAdmin {
                blocking: vec!["Block IMAPS".into()]
            }
        );
        match decide(&s, &a, true) {
            FwPlan::Change { disable } => {
                assert_eq!(disable.len(), 1);
                assert_eq!(disable[0].name, "Block IMAPS");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn with_outbound_blocked_by_default_an_allow_rule_is_the_exception() {
        let addrs = [ip("192.0.2.10"), ip("2001:db8::5")];
        let s = state(Vec::new(), true);
        let a = assess(&s, &addrs, 993);
        assert_eq!(a.not_allowed, addrs);
        assert_eq!(decide(&s, &a, false), FwPlan::Change { disable: vec![] });

        let mut allow = allow_rule("fx-1", &addrs, 993);
        let s2 = state(vec![allow.clone()], true);
        assert_eq!(
            decide(&s2, &assess(&s2, &addrs, 993), false),
            FwPlan::AlreadyAllowed
        );
        allow.remote_addresses = "192.0.2.10".into();
        let s3 = state(vec![allow], true);
        assert_eq!(
            assess(&s3, &addrs, 993).not_allowed,
            vec![ip("2001:db8::5")]
        );
    }

    #[test]
    fn nothing_blocks_when_the_firewall_is_off_or_outbound_is_allowed() {
        let addrs = [ip("192.0.2.10")];
        let s = state(vec![], false);
        assert_eq!(
            decide(&s, &assess(&s, &addrs, 993), true),
            FwPlan::NothingBlocks
        );
        let off = FwState {
            enabled: false,
            ..state(vec![block("b", "*", "*")], true)
        };
        assert_eq!(
            decide(&off, &assess(&off, &addrs, 993), true),
            FwPlan::NothingBlocks
        );
    }

    #[test]
    fn the_agents_rule_is_narrow_and_named_after_the_fix() {
        let r = allow_rule("fx-1", &[ip("192.0.2.10"), ip("2001:db8::5")], 993);
        assert_eq!(r.name, "mailmend fx-1");
        assert_eq!(r.remote_addresses, "192.0.2.10,2001:db8::5");
        assert_eq!(r.remote_ports, "993");
        assert_eq!(r.protocol, PROTOCOL_TCP);
        assert!(r.outbound && !r.block && r.is_mailmends());
        assert!(!block("mailmend fx-1", "*", "*").is_mailmends());
    }

    #[test]
    fn disabled_rules_round_trip_through_the_description() {
        let b = block("Block, \"IMAPS\"; disabled: x", "192.0.2.0/24", "993");
        let d = description("fx-1", "imap.example.com", std::slice::from_ref(&b));
        assert!(d.starts_with("added by mailmend fix fx-1: outbound tcp to imap.example.com"));
        assert_eq!(disabled_in_description(&d), vec![b]);
        assert!(disabled_in_description(&description("fx-2", "h", &[])).is_empty());
        assert!(disabled_in_description("an admin's text").is_empty());
        let forged = description("fx-3", "h; disabled: [{}]", &[]);
        assert!(forged.contains("(unnamed host)"));
        assert!(disabled_in_description(&forged).is_empty());
    }

    #[test]
    fn a_rule_is_recognised_by_every_field_but_its_state() {
        let b = block("b", "*", "993");
        assert!(b.same_rule(&FwRule {
            enabled: false,
            ..b.clone()
        }));
        assert!(!b.same_rule(&FwRule {
            remote_ports: "995".into(),
            ..b.clone()
        }));
    }

    impl FwRule {
        fn with_app(mut self, app: &str) -> FwRule {
            self.application = app.into();
            self
        }
    }
}
