//! The macOS `pf_firewall` performer: exceptions as labelled `pass out quick` rules in the
//! agent's own pf anchor (see `pf` for the anchor choice); undo reloads the anchor without the
//! fix's rules, uninstall flushes it. pf is never enabled or disabled by the agent.

use super::pf::{
    choose_anchor, label_for, parse_enabled, parse_rules, pass_rules, possible_blockers,
    with_added, without, ANCHORS, NO_ANCHOR_ADVICE,
};
use super::{valid_fix_id, COMMENT_PREFIX};
use crate::exec::{find_program, run_or_fail, Cmd, Output};
use mailmend_core::Action;
use mailmend_executor::{PerformError, Performer};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::time::Duration;

/// The pf exception performer.
#[derive(Debug, Clone)]
pub struct PfFirewall {
    pfctl: String,
    timeout: Duration,
}

impl Default for PfFirewall {
    fn default() -> Self {
        PfFirewall::new()
    }
}

impl PfFirewall {
    pub fn new() -> PfFirewall {
        PfFirewall {
            pfctl: "/sbin/pfctl".into(),
            timeout: Duration::from_secs(20),
        }
    }

    fn pfctl(&self, args: &[&str], stdin: Option<String>) -> Result<Output, PerformError> {
        let program = find_program(&self.pfctl)
            .ok_or_else(|| PerformError::Unavailable(format!("{} is missing", self.pfctl)))?;
        let mut c = Cmd::new(program, args.iter().map(|s| s.to_string()).collect());
        c.stdin = stdin.map(String::into_bytes);
        c.timeout = self.timeout;
        let out = run_or_fail(&c)?;
        if !out.success() {
            return Err(PerformError::Failed(format!(
                "{} failed: {}",
                c.describe(),
                out.failure()
            )));
        }
        Ok(out)
    }

    fn enabled(&self) -> Result<bool, PerformError> {
        let out = self.pfctl(&["-s", "info"], None)?;
        parse_enabled(&out.stdout).ok_or_else(|| {
            PerformError::Failed("cannot tell from pfctl -s info whether pf is enabled".into())
        })
    }

    fn main_rules(&self) -> Result<String, PerformError> {
        Ok(self.pfctl(&["-s", "rules"], None)?.stdout)
    }

    fn anchor_rules(&self, anchor: &str) -> Result<Vec<super::pf::PfRule>, PerformError> {
        Ok(parse_rules(
            &self.pfctl(&["-a", anchor, "-s", "rules"], None)?.stdout,
        ))
    }

    fn load(&self, anchor: &str, rules: String) -> Result<(), PerformError> {
        if rules.trim().is_empty() {
            self.pfctl(&["-a", anchor, "-F", "rules"], None)?;
        } else {
            self.pfctl(&["-a", anchor, "-f", "-"], Some(rules))?;
        }
        Ok(())
    }

    /// Removes the rules whose label `pred` accepts from every anchor the agent uses; returns
    /// how many were removed.
    fn remove_labelled(&self, pred: &dyn Fn(&str) -> bool) -> Result<usize, PerformError> {
        let mut removed = 0;
        for anchor in ANCHORS {
            let current = match self.anchor_rules(anchor) {
                Ok(c) => c,
                // pfctl cannot list an anchor that was never loaded: it holds nothing of ours.
                Err(PerformError::Failed(m)) if m.contains("DIOCGETRULES") => Vec::new(),
                Err(e) => return Err(e),
            };
            let (text, n) = without(&current, pred);
            if n > 0 {
                self.load(anchor, text)?;
                removed += n;
            }
        }
        Ok(removed)
    }

    /// Removes every rule the agent added (for uninstall); returns how many.
    pub fn remove_all_mailmend_rules(&self) -> Result<usize, PerformError> {
        self.remove_labelled(&|l| l.starts_with(COMMENT_PREFIX))
    }
}

fn target(action: &Action) -> Result<(&[IpAddr], u16), PerformError> {
    match action {
        Action::AddFirewallException {
            addresses, port, ..
        } if !addresses.is_empty() => Ok((addresses, *port)),
        Action::AddFirewallException { .. } => Err(PerformError::Failed(
            "the firewall exception names no address; the diagnostic must resolve the host first"
                .into(),
        )),
        other => Err(PerformError::Failed(format!(
            "the pf performer cannot {}",
            other.describe()
        ))),
    }
}

fn check_fix_id(fix_id: &str) -> Result<(), PerformError> {
    if valid_fix_id(fix_id) {
        Ok(())
    } else {
        Err(PerformError::Failed(format!(
            "fix id {fix_id:?} cannot label a pf rule (letters, digits, '-', '_' and '.' only)"
        )))
    }
}

impl Performer for PfFirewall {
    fn name(&self) -> &'static str {
        "pf_firewall"
    }

    fn handles(&self, action: &Action) -> bool {
        matches!(action, Action::AddFirewallException { .. })
    }

    fn snapshot(&self, action: &Action) -> Result<Value, PerformError> {
        let (_, port) = target(action)?;
        let enabled = self.enabled()?;
        let main = self.main_rules()?;
        let anchor = choose_anchor(&main);
        let anchor_rules = match anchor {
            Some(a) => self
                .anchor_rules(a)?
                .into_iter()
                .map(|r| r.text)
                .collect::<Vec<_>>(),
            None => Vec::new(),
        };
        Ok(json!({
            "pf_enabled": enabled,
            "anchor": anchor,
            "anchor_rules": anchor_rules,
            "possible_blockers": possible_blockers(&main, port),
        }))
    }

    fn apply(&self, fix_id: &str, action: &Action) -> Result<Value, PerformError> {
        check_fix_id(fix_id)?;
        let (addresses, port) = target(action)?;
        if !self.enabled()? {
            return Err(PerformError::Failed(
                "pf is disabled, so no pf rule blocks this connection; no exception is needed"
                    .into(),
            ));
        }
        let main = self.main_rules()?;
        let anchor = choose_anchor(&main)
            .ok_or_else(|| PerformError::Unavailable(NO_ANCHOR_ADVICE.into()))?;
        let current = self.anchor_rules(anchor)?;
        let added = pass_rules(addresses, port, fix_id);
        let Some(text) = with_added(&current, &added, fix_id) else {
            return Ok(json!({
                "anchor": anchor,
                "added": [],
                "note": "the rules of this fix are already in the anchor; nothing changed",
            }));
        };
        self.load(anchor, text)?;
        let label = label_for(fix_id);
        let now: Vec<String> = self
            .anchor_rules(anchor)?
            .into_iter()
            .filter(|r| r.label.as_deref() == Some(&label))
            .map(|r| r.text)
            .collect();
        if now.len() != added.len() {
            return Err(PerformError::Failed(format!(
                "pf shows {} of the {} rules loaded into anchor {anchor}",
                now.len(),
                added.len()
            )));
        }
        Ok(json!({ "anchor": anchor, "added": now }))
    }

    fn undo(&self, fix_id: &str, action: &Action, before: &Value) -> Result<(), PerformError> {
        let _ = (action, before);
        check_fix_id(fix_id)?;
        let label = label_for(fix_id);
        self.remove_labelled(&|l| l == label).map(|_| ())
    }
}

/// Removes every rule the agent added to pf (for uninstall); returns how many.
pub fn remove_all_mailmend_rules() -> Result<usize, PerformError> {
    PfFirewall::new().remove_all_mailmend_rules()
}
