//! The Windows `windows_firewall` performer: reads Windows Firewall through `INetFwPolicy2`,
//! decides with `crate::firewall::winfw`, adds the agent's allow rule named `mailmend <fix id>`
//! and, only when the policy allows it, disables the block rules that stop the mail
//! connection. Undo re-enables those rules and deletes exactly the agent's rule of the fix.
//!
//! Order matters for crash safety: the agent's rule (whose description lists the rules to be
//! disabled) is added before anything is disabled, and undo re-enables before it deletes, so
//! that at every moment the firewall itself says what the fix changed.

use super::with_com;
use crate::firewall::valid_fix_id;
use crate::firewall::winfw::{
    allow_rule, assess, decide, description, disabled_in_description, rule_name, FwPlan, FwRule,
    FwState,
};
use mailmend_core::Action;
use mailmend_executor::{PerformError, Performer};
use serde_json::{json, Value};
use std::net::IpAddr;
use windows::core::{Interface, BSTR};
use windows::Win32::Foundation::{VARIANT_FALSE, VARIANT_TRUE};
use windows::Win32::NetworkManagement::WindowsFirewall::{
    INetFwPolicy2, INetFwRule, NetFwPolicy2, NetFwRule, NET_FW_ACTION_ALLOW, NET_FW_ACTION_BLOCK,
    NET_FW_PROFILE_TYPE2, NET_FW_RULE_DIR_OUT,
};
use windows::Win32::System::Com::{CoCreateInstance, IDispatch, CLSCTX_INPROC_SERVER};
use windows::Win32::System::Ole::IEnumVARIANT;
use windows::Win32::System::Variant::{VariantClear, VARIANT, VT_DISPATCH};

/// The Windows Firewall exception performer.
#[derive(Debug, Clone, Default)]
pub struct WindowsFirewall {
    disable_blocking_rules: bool,
}

impl WindowsFirewall {
    /// Never touches an administrator's rule (the default policy).
    pub fn new() -> WindowsFirewall {
        WindowsFirewall {
            disable_blocking_rules: false,
        }
    }

    /// Lets the agent disable the block rules that stop the mail connection (the policy option
    /// `firewall.windows_disable_blocking_rules`).
    pub fn disabling_blocking_rules(mut self, allowed: bool) -> WindowsFirewall {
        self.disable_blocking_rules = allowed;
        self
    }

    /// Reads the firewall: the active profiles, their state and every rule.
    pub fn read_state() -> Result<FwState, PerformError> {
        with_com(|| {
            let policy = policy()?;
            let (state, _) = read(&policy)?;
            Ok(state)
        })
        .map_err(PerformError::Failed)
    }

    /// Deletes every rule the agent added, re-enabling first the rules each one's description
    /// says it disabled (for uninstall); returns how many of the agent's rules were deleted.
    pub fn remove_all_mailmend_rules(&self) -> Result<usize, PerformError> {
        with_com(|| {
            let policy = policy()?;
            remove_where(&policy, &|r: &FwRule| r.is_mailmends(), &[])
        })
        .map_err(PerformError::Failed)
    }
}

fn com_err(what: &str) -> impl Fn(windows::core::Error) -> String + '_ {
    move |e| format!("{what}: {} ({:#010x})", e.message().trim(), e.code().0)
}

fn policy() -> Result<INetFwPolicy2, String> {
    // SAFETY: COM is initialised on this thread by with_com.
    unsafe { CoCreateInstance(&NetFwPolicy2, None, CLSCTX_INPROC_SERVER) }.map_err(com_err(
        "cannot open the Windows Firewall policy (INetFwPolicy2)",
    ))
}

fn bstr(r: windows::core::Result<BSTR>) -> String {
    r.map(|b| b.to_string()).unwrap_or_default()
}

/// One rule's fields (the getters that may fail on some rules read as empty) and its
/// description.
fn read_rule(rule: &INetFwRule) -> Result<(FwRule, String), String> {
    // SAFETY: plain property getters of a live COM object.
    unsafe {
        let name = rule.Name().map_err(com_err("cannot read a rule's name"))?;
        Ok((
            FwRule {
                name: name.to_string(),
                enabled: rule.Enabled().map_err(com_err("cannot read a rule"))?.0 != 0,
                outbound: rule.Direction().map_err(com_err("cannot read a rule"))?
                    == NET_FW_RULE_DIR_OUT,
                block: rule.Action().map_err(com_err("cannot read a rule"))? == NET_FW_ACTION_BLOCK,
                protocol: rule.Protocol().unwrap_or(0),
                local_addresses: bstr(rule.LocalAddresses()),
                local_ports: bstr(rule.LocalPorts()),
                remote_addresses: bstr(rule.RemoteAddresses()),
                remote_ports: bstr(rule.RemotePorts()),
                profiles: rule.Profiles().unwrap_or(0),
                application: bstr(rule.ApplicationName()),
                service: bstr(rule.ServiceName()),
                grouping: bstr(rule.Grouping()),
            },
            bstr(rule.Description()),
        ))
    }
}

/// A rule as listed: its fields, its description and its COM object for changes.
struct Listed {
    rule: FwRule,
    description: String,
    object: INetFwRule,
}

/// Every rule, with its COM object for changes.
fn list_rules(policy: &INetFwPolicy2) -> Result<Vec<Listed>, String> {
    // SAFETY: COM calls on live objects; every VARIANT fetched is cleared.
    unsafe {
        let rules = policy
            .Rules()
            .map_err(com_err("cannot list firewall rules (INetFwPolicy2::Rules)"))?;
        let enumerator: IEnumVARIANT = rules
            ._NewEnum()
            .map_err(com_err(
                "cannot enumerate firewall rules (INetFwRules::_NewEnum)",
            ))?
            .cast()
            .map_err(com_err("the rule enumerator is not an IEnumVARIANT"))?;
        let mut out = Vec::new();
        loop {
            let mut item = [VARIANT::default()];
            let mut fetched = 0u32;
            let hr = enumerator.Next(&mut item, &mut fetched);
            if hr.is_err() {
                return Err(com_err("cannot enumerate firewall rules")(hr.into()));
            }
            if fetched == 0 {
                break;
            }
            let v = &item[0].Anonymous.Anonymous;
            let rule = if v.vt == VT_DISPATCH {
                let disp: Option<&IDispatch> = v.Anonymous.pdispVal.as_ref();
                disp.and_then(|d| d.cast::<INetFwRule>().ok())
            } else {
                None
            };
            let _ = VariantClear(&mut item[0]);
            if let Some(rule) = rule {
                let (fields, desc) = read_rule(&rule)?;
                out.push(Listed {
                    rule: fields,
                    description: desc,
                    object: rule,
                });
            }
        }
        Ok(out)
    }
}

fn read(policy: &INetFwPolicy2) -> Result<(FwState, Vec<Listed>), String> {
    // SAFETY: property getters of a live COM object.
    let (active, enabled, default_block) = unsafe {
        let active = policy
            .CurrentProfileTypes()
            .map_err(com_err("cannot read the active firewall profiles"))?;
        let mut enabled = false;
        let mut default_block = false;
        for bit in [1, 2, 4] {
            if active & bit == 0 {
                continue;
            }
            let profile = NET_FW_PROFILE_TYPE2(bit);
            if policy
                .get_FirewallEnabled(profile)
                .map_err(com_err("cannot read whether the firewall is on"))?
                .0
                != 0
            {
                enabled = true;
                if policy
                    .get_DefaultOutboundAction(profile)
                    .map_err(com_err("cannot read the default outbound action"))?
                    == NET_FW_ACTION_BLOCK
                {
                    default_block = true;
                }
            }
        }
        (active, enabled, default_block)
    };
    let rules = list_rules(policy)?;
    Ok((
        FwState {
            active_profiles: active,
            enabled,
            default_outbound_block: default_block,
            rules: rules.iter().map(|l| l.rule.clone()).collect(),
        },
        rules,
    ))
}

fn set_enabled(rule: &INetFwRule, on: bool) -> Result<(), String> {
    // SAFETY: a property setter of a live COM object.
    unsafe { rule.SetEnabled(if on { VARIANT_TRUE } else { VARIANT_FALSE }) }
        .map_err(com_err("cannot change a rule's state"))
}

/// Re-enables the rules equal to one of `saved` that are disabled now; returns their names.
fn reenable(rules: &[Listed], saved: &[FwRule]) -> Result<Vec<String>, String> {
    let mut done = Vec::new();
    for l in rules {
        if !l.rule.enabled && saved.iter().any(|s| s.same_rule(&l.rule)) {
            set_enabled(&l.object, true)?;
            done.push(l.rule.name.clone());
        }
    }
    Ok(done)
}

/// Deletes the rules `pred` accepts, after re-enabling what their descriptions (and `also`)
/// list as disabled; returns how many rules were deleted.
fn remove_where(
    policy: &INetFwPolicy2,
    pred: &dyn Fn(&FwRule) -> bool,
    also: &[FwRule],
) -> Result<usize, String> {
    let rules = list_rules(policy)?;
    let mut saved: Vec<FwRule> = also.to_vec();
    for l in &rules {
        if pred(&l.rule) {
            saved.extend(disabled_in_description(&l.description));
        }
    }
    reenable(&rules, &saved)?;
    let names: Vec<String> = rules
        .iter()
        .filter(|l| pred(&l.rule))
        .map(|l| l.rule.name.clone())
        .collect();
    // SAFETY: COM calls on a live object.
    let collection = unsafe { policy.Rules() }.map_err(com_err("cannot list firewall rules"))?;
    for name in &names {
        // SAFETY: see above.
        unsafe { collection.Remove(&BSTR::from(name.as_str())) }
            .map_err(com_err("cannot delete a firewall rule"))?;
    }
    // Remove deletes one rule of a name; names may repeat, so check none is left.
    let left = list_rules(policy)?
        .into_iter()
        .filter(|l| pred(&l.rule))
        .count();
    if left > 0 {
        return Err(format!(
            "{left} of the agent's firewall rules are still there after deleting them"
        ));
    }
    Ok(names.len())
}

fn add_rule(policy: &INetFwPolicy2, rule: &FwRule, desc: &str) -> Result<(), String> {
    // SAFETY: COM calls on live objects; the protocol is set before the ports, as the API
    // requires.
    unsafe {
        let r: INetFwRule = CoCreateInstance(&NetFwRule, None, CLSCTX_INPROC_SERVER)
            .map_err(com_err("cannot create a firewall rule (NetFwRule)"))?;
        let set = com_err("cannot set up the firewall rule");
        r.SetName(&BSTR::from(rule.name.as_str())).map_err(&set)?;
        r.SetDescription(&BSTR::from(desc)).map_err(&set)?;
        r.SetGrouping(&BSTR::from(rule.grouping.as_str()))
            .map_err(&set)?;
        r.SetDirection(NET_FW_RULE_DIR_OUT).map_err(&set)?;
        r.SetAction(NET_FW_ACTION_ALLOW).map_err(&set)?;
        r.SetProtocol(rule.protocol).map_err(&set)?;
        r.SetRemotePorts(&BSTR::from(rule.remote_ports.as_str()))
            .map_err(&set)?;
        r.SetRemoteAddresses(&BSTR::from(rule.remote_addresses.as_str()))
            .map_err(&set)?;
        r.SetProfiles(rule.profiles).map_err(&set)?;
        r.SetEnabled(VARIANT_TRUE).map_err(&set)?;
        policy
            .Rules()
            .map_err(com_err("cannot list firewall rules"))?
            .Add(&r)
            .map_err(com_err("cannot add the firewall rule (INetFwRules::Add)"))
    }
}

fn target(action: &Action) -> Result<(&str, &[IpAddr], u16), PerformError> {
    match action {
        Action::AddFirewallException {
            host,
            addresses,
            port,
            ..
        } if !addresses.is_empty() => Ok((host, addresses, *port)),
        Action::AddFirewallException { .. } => Err(PerformError::Failed(
            "the firewall exception names no address; the diagnostic must resolve the host first"
                .into(),
        )),
        other => Err(PerformError::Failed(format!(
            "the windows_firewall performer cannot {}",
            other.describe()
        ))),
    }
}

fn check_fix_id(fix_id: &str) -> Result<(), PerformError> {
    if valid_fix_id(fix_id) {
        Ok(())
    } else {
        Err(PerformError::Failed(format!(
            "fix id {fix_id:?} cannot name a firewall rule (letters, digits, '-', '_' and '.' only)"
        )))
    }
}

/// How an apply ended, inside the COM thread.
enum Outcome {
    Done(Value),
    NotNeeded(String),
    LeftToAdmin(Vec<String>),
}

fn left_to_admin(blocking: &[String]) -> PerformError {
    PerformError::Unavailable(format!(
        "Windows Firewall rule(s) {blocking:?} block this connection, and a block rule beats any allow rule; the agent leaves administrators' rules alone unless the policy sets firewall.windows_disable_blocking_rules"
    ))
}

impl Performer for WindowsFirewall {
    fn name(&self) -> &'static str {
        "windows_firewall"
    }

    fn handles(&self, action: &Action) -> bool {
        matches!(action, Action::AddFirewallException { .. })
    }

    fn snapshot(&self, action: &Action) -> Result<Value, PerformError> {
        let (_, addresses, port) = target(action)?;
        let state = WindowsFirewall::read_state()?;
        let a = assess(&state, addresses, port);
        let plan = decide(&state, &a, self.disable_blocking_rules);
        if let FwPlan::LeftToAdmin { blocking } = &plan {
            return Err(left_to_admin(blocking));
        }
        let disable = match &plan {
            FwPlan::Change { disable } => disable.clone(),
            _ => Vec::new(),
        };
        Ok(json!({
            "firewall_on": state.enabled,
            "active_profiles": state.active_profiles,
            "default_outbound_block": state.default_outbound_block,
            "maybe_blocking": a.maybe_blocking,
            "plan": plan,
            "disable": disable,
        }))
    }

    fn apply(&self, fix_id: &str, action: &Action) -> Result<Value, PerformError> {
        check_fix_id(fix_id)?;
        let (host, addresses, port) = target(action)?;
        let addresses = addresses.to_vec();
        let host = host.to_string();
        let fix_id = fix_id.to_string();
        let may_disable = self.disable_blocking_rules;
        let outcome = with_com(move || {
            let policy = policy()?;
            let (state, rules) = read(&policy)?;
            let name = rule_name(&fix_id);
            if rules
                .iter()
                .any(|l| l.rule.name == name && l.rule.is_mailmends()) {
                return Ok(Outcome::Done(json!({
                    "rule": name,
                    "note": "the rule of this fix is already there; nothing changed",
                })));
            }
            let a = assess(&state, &addresses, port);
            let disable = match decide(&state, &a, may_disable) {
                FwPlan::NothingBlocks => {
                    return Ok(Outcome::NotNeeded(format!(
                        "no Windows Firewall rule blocks tcp to {host} port {port} (and outbound is allowed by default); no exception is needed"
                    )))
                }
                FwPlan::AlreadyAllowed => {
                    return Ok(Outcome::Done(json!({
                        "allowed_by": a.allowing,
                        "note": "allow rules already cover every address; nothing changed",
                    })))
                }
                FwPlan::LeftToAdmin { blocking } => return Ok(Outcome::LeftToAdmin(blocking)),
                FwPlan::Change { disable } => disable,
            };
            let rule = allow_rule(&fix_id, &addresses, port);
            add_rule(&policy, &rule, &description(&fix_id, &host, &disable))?;
            let mut disabled = Vec::new();
            for l in &rules {
                if l.rule.enabled && disable.iter().any(|d| d.same_rule(&l.rule)) {
                    set_enabled(&l.object, false)?;
                    disabled.push(l.rule.name.clone());
                }
            }
            let (after, after_rules) = read(&policy)?;
            if !after_rules.iter().any(|l| l.rule.name == name) {
                return Err(format!(
                    "the firewall does not show the rule {name:?} after adding it"
                ));
            }
            let still = assess(&after, &addresses, port);
            if !still.blocking.is_empty() {
                return Err(format!(
                    "tcp to {host} port {port} is still blocked by {:?}",
                    still.blocking.iter().map(|r| &r.name).collect::<Vec<_>>()
                ));
            }
            Ok(Outcome::Done(json!({ "rule": name, "disabled": disabled })))
        })
        .map_err(PerformError::Failed)?;
        match outcome {
            Outcome::Done(result) => Ok(result),
            Outcome::NotNeeded(msg) => Err(PerformError::Failed(msg)),
            Outcome::LeftToAdmin(blocking) => Err(left_to_admin(&blocking)),
        }
    }

    fn undo(&self, fix_id: &str, action: &Action, before: &Value) -> Result<(), PerformError> {
        let _ = action;
        check_fix_id(fix_id)?;
        let name = rule_name(fix_id);
        let saved: Vec<FwRule> = before
            .get("disable")
            .and_then(|d| serde_json::from_value(d.clone()).ok())
            .unwrap_or_default();
        with_com(move || {
            let policy = policy()?;
            remove_where(
                &policy,
                &|r: &FwRule| r.name == name && r.is_mailmends(),
                &saved,
            )
        })
        .map(|_| ())
        .map_err(PerformError::Failed)
    }
}

/// Removes every rule the agent added to Windows Firewall (for uninstall), re-enabling the
/// rules they record as disabled; returns how many of the agent's rules were deleted.
pub fn remove_all_mailmend_rules() -> Result<usize, PerformError> {
    WindowsFirewall::new().remove_all_mailmend_rules()
}
