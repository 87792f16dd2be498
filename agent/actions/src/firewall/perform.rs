//! The `nftables` performer: reads the ruleset, inserts an accept before the first blocking rule
//! of every blocking output chain, and removes exactly the rules a fix tagged. Falls back to
//! iptables on machines whose firewall is iptables only.

use super::model::{analyse, plan, Finding, Insert, Outcome, Ruleset};
use super::{comment_for, detect_manager, iptables, nft, valid_fix_id, COMMENT_PREFIX};
use crate::exec::{find_program, run_or_fail, Cmd};
use mailmend_core::Action;
use mailmend_executor::{PerformError, Performer};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The firewall exception performer. See the crate documentation for what it changes.
#[derive(Debug, Clone)]
pub struct NftablesFirewall {
    netns: Option<String>,
    nft: String,
    iptables: String,
    ip6tables: String,
    timeout: Duration,
}

impl Default for NftablesFirewall {
    fn default() -> Self {
        NftablesFirewall::new()
    }
}

/// What the firewall looks like, read from the backend in use.
enum View {
    Nft(Ruleset),
    Iptables {
        v4: Option<Ruleset>,
        v6: Option<Ruleset>,
    },
}

impl View {
    fn backend(&self) -> &'static str {
        match self {
            View::Nft(_) => "nftables",
            View::Iptables { .. } => "iptables",
        }
    }

    fn findings(&self, addresses: &[IpAddr], port: u16) -> Vec<Finding> {
        match self {
            View::Nft(rs) => analyse(rs, addresses, port),
            View::Iptables { v4, v6 } => {
                let (a6, a4): (Vec<IpAddr>, Vec<IpAddr>) =
                    addresses.iter().partition(|a| a.is_ipv6());
                let mut f = Vec::new();
                if let Some(rs) = v4 {
                    f.extend(analyse(rs, &a4, port));
                }
                if let Some(rs) = v6 {
                    f.extend(analyse(rs, &a6, port));
                }
                f
            }
        }
    }
}

impl NftablesFirewall {
    /// Acts on this machine's firewall with `nft`, or `iptables`/`ip6tables` where nftables has
    /// no tables.
    pub fn new() -> NftablesFirewall {
        NftablesFirewall {
            netns: None,
            nft: "nft".into(),
            iptables: "iptables".into(),
            ip6tables: "ip6tables".into(),
            timeout: Duration::from_secs(20),
        }
    }

    /// Acts on the firewall of network namespace `name` (every command runs under
    /// `ip netns exec name`); for tests and for agents that manage a namespace.
    pub fn in_netns(name: &str) -> NftablesFirewall {
        NftablesFirewall {
            netns: Some(name.to_string()),
            ..NftablesFirewall::new()
        }
    }

    /// Uses this nft program (a name looked up in PATH, or a path).
    pub fn with_nft(mut self, program: &str) -> NftablesFirewall {
        self.nft = program.to_string();
        self
    }

    /// Uses these iptables programs (for example `iptables-legacy`, `ip6tables-legacy`).
    pub fn with_iptables(mut self, v4: &str, v6: &str) -> NftablesFirewall {
        self.iptables = v4.to_string();
        self.ip6tables = v6.to_string();
        self
    }

    /// Removes every rule whose comment starts with `mailmend:` (for uninstall); returns how
    /// many were removed.
    pub fn remove_all_mailmend_rules(&self) -> Result<usize, PerformError> {
        self.remove_tagged(&|c| c.starts_with(COMMENT_PREFIX))
    }

    fn cmd(&self, program: PathBuf, args: Vec<String>) -> Result<Cmd, PerformError> {
        let mut c = match &self.netns {
            None => Cmd::new(program, args),
            Some(ns) => {
                let ip = find_program("ip").ok_or_else(|| {
                    PerformError::Unavailable("ip (iproute2) is not installed".into())
                })?;
                let mut a = vec!["netns".into(), "exec".into(), ns.clone()];
                a.push(program.display().to_string());
                a.extend(args);
                Cmd::new(ip, a)
            }
        };
        c.timeout = self.timeout;
        // Fixed-format output, whatever the agent's locale.
        c.env.push(("LC_ALL".into(), "C".into()));
        Ok(c)
    }

    /// `nft -j list ruleset`, or None when nft is not installed.
    fn nft_list(&self) -> Result<Option<String>, PerformError> {
        let Some(nft) = find_program(&self.nft) else {
            return Ok(None);
        };
        let out = run_or_fail(&self.cmd(nft, args(&["-j", "list", "ruleset"]))?)?;
        if !out.success() {
            return Err(PerformError::Failed(format!(
                "nft list ruleset failed: {}",
                out.failure()
            )));
        }
        Ok(Some(out.stdout))
    }

    fn nft_batch(&self, batch: &Value) -> Result<(), PerformError> {
        let nft = find_program(&self.nft)
            .ok_or_else(|| PerformError::Unavailable(format!("{} is not installed", self.nft)))?;
        let mut c = self.cmd(nft, args(&["-j", "-f", "-"]))?;
        c.stdin = Some(batch.to_string().into_bytes());
        let out = run_or_fail(&c)?;
        if !out.success() {
            return Err(PerformError::Failed(format!(
                "nft failed: {}",
                out.failure()
            )));
        }
        Ok(())
    }

    fn ipt_program(&self, v6: bool) -> Option<PathBuf> {
        find_program(if v6 { &self.ip6tables } else { &self.iptables })
    }

    /// `iptables -S` of the filter table, or None when that program is not installed.
    fn ipt_list(&self, v6: bool) -> Result<Option<String>, PerformError> {
        let Some(p) = self.ipt_program(v6) else {
            return Ok(None);
        };
        let out = run_or_fail(&self.cmd(p, args(&["-w", "5", "-S"]))?)?;
        if !out.success() {
            return Err(PerformError::Failed(format!(
                "{} -S failed: {}",
                if v6 { &self.ip6tables } else { &self.iptables },
                out.failure()
            )));
        }
        Ok(Some(out.stdout))
    }

    fn ipt(&self, v6: bool, a: Vec<String>) -> Result<(), PerformError> {
        let p = self.ipt_program(v6).ok_or_else(|| {
            PerformError::Unavailable(format!(
                "{} is not installed",
                if v6 { &self.ip6tables } else { &self.iptables }
            ))
        })?;
        let mut full = args(&["-w", "5"]);
        full.extend(a);
        let c = self.cmd(p, full)?;
        let out = run_or_fail(&c)?;
        if !out.success() {
            return Err(PerformError::Failed(format!(
                "{} failed: {}",
                c.describe(),
                out.failure()
            )));
        }
        Ok(())
    }

    /// Reads the firewall from the backend in use, refusing when a manager owns it.
    fn inspect(&self) -> Result<View, PerformError> {
        let nft_text = self.nft_list()?;
        let tables = nft_text
            .as_deref()
            .map(nft::table_names)
            .unwrap_or_default();
        let mut chains = nft_text
            .as_deref()
            .map(nft::chain_names)
            .unwrap_or_default();
        let mut ipt_texts = (None, None);
        if tables.is_empty() {
            ipt_texts = (self.ipt_list(false)?, self.ipt_list(true)?);
            for t in [&ipt_texts.0, &ipt_texts.1].into_iter().flatten() {
                chains.extend(iptables::chain_names(t));
            }
        }
        let ufw = std::fs::read_to_string("/etc/ufw/ufw.conf").ok();
        if let Some(m) = detect_manager(&tables, &chains, ufw.as_deref(), &process_names()) {
            return Err(PerformError::Unavailable(m.advice().to_string()));
        }
        match (nft_text, ipt_texts) {
            (Some(text), _) if !tables.is_empty() => {
                let rs =
                    nft::parse_ruleset(&text).map_err(|e| PerformError::Failed(e.to_string()))?;
                Ok(View::Nft(rs))
            }
            (_, (v4, v6)) if v4.is_some() || v6.is_some() => Ok(View::Iptables {
                v4: v4.map(|t| iptables::parse_rules(&t, false)),
                v6: v6.map(|t| iptables::parse_rules(&t, true)),
            }),
            (Some(_), _) => Ok(View::Nft(Ruleset::default())),
            (None, _) => Err(PerformError::Unavailable(
                "neither nft (nftables) nor iptables is installed".into(),
            )),
        }
    }

    /// Deletes every rule whose comment satisfies `pred`, in nftables and in iptables.
    fn remove_tagged(&self, pred: &dyn Fn(&str) -> bool) -> Result<usize, PerformError> {
        let mut removed = 0;
        let mut nft_in_use = false;
        if let Some(text) = self.nft_list()? {
            nft_in_use = !nft::table_names(&text).is_empty();
            let rs = nft::parse_ruleset(&text).map_err(|e| PerformError::Failed(e.to_string()))?;
            let tagged = nft::tagged_rules(&rs, pred);
            if !tagged.is_empty() {
                self.nft_batch(&nft::delete_batch(&tagged))?;
                removed += tagged.len();
            }
        }
        for v6 in [false, true] {
            let listed = match self.ipt_list(v6) {
                Ok(l) => l,
                // Where nftables is in use, iptables-nft may refuse to list tables it does not
                // understand; the rules were found and removed through nft above.
                Err(e) if nft_in_use => {
                    tracing::warn!("skipping iptables cleanup: {e}");
                    None
                }
                Err(e) => return Err(e),
            };
            if let Some(text) = listed {
                for a in iptables::delete_args(&text, pred) {
                    self.ipt(v6, a)?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    fn insert(
        &self,
        view: &View,
        inserts: &[Insert],
        port: u16,
        tag: &str,
    ) -> Result<(), PerformError> {
        match view {
            View::Nft(_) => self.nft_batch(&nft::insert_batch(inserts, port, tag)),
            View::Iptables { .. } => {
                // Highest position first, so that an insert does not move the rule another
                // insert must go before.
                let mut sorted: Vec<&Insert> = inserts.iter().collect();
                sorted.sort_by_key(|i| std::cmp::Reverse(i.before.unwrap_or(u64::MAX)));
                for i in sorted {
                    self.ipt(
                        i.address.is_ipv6(),
                        iptables::insert_args(i.before, i.address, port, tag),
                    )?;
                }
                Ok(())
            }
        }
    }
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// The command names of running processes (to notice firewalld).
fn process_names() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("comm")).ok())
        .map(|s| s.trim().to_string())
        .collect()
}

fn target(action: &Action) -> Result<(&[IpAddr], u16), PerformError> {
    match action {
        Action::AddFirewallException {
            addresses, port, ..
        } => {
            if addresses.is_empty() {
                return Err(PerformError::Failed(
                    "the firewall exception names no address; the diagnostic must resolve the host first".into(),
                ));
            }
            Ok((addresses, *port))
        }
        other => Err(PerformError::Failed(format!(
            "the nftables performer cannot {}",
            other.describe()
        ))),
    }
}

fn check_fix_id(fix_id: &str) -> Result<(), PerformError> {
    if valid_fix_id(fix_id) {
        Ok(())
    } else {
        Err(PerformError::Failed(format!(
            "fix id {fix_id:?} cannot tag a firewall rule (letters, digits, '-', '_' and '.' only)"
        )))
    }
}

impl Performer for NftablesFirewall {
    fn name(&self) -> &'static str {
        "nftables"
    }

    fn handles(&self, action: &Action) -> bool {
        matches!(action, Action::AddFirewallException { .. })
    }

    fn snapshot(&self, action: &Action) -> Result<Value, PerformError> {
        let (addresses, port) = target(action)?;
        let view = self.inspect()?;
        Ok(json!({
            "backend": view.backend(),
            "port": port,
            "findings": view.findings(addresses, port),
        }))
    }

    fn apply(&self, fix_id: &str, action: &Action) -> Result<Value, PerformError> {
        check_fix_id(fix_id)?;
        let (addresses, port) = target(action)?;
        let tag = comment_for(fix_id);
        let view = self.inspect()?;
        let findings = view.findings(addresses, port);
        let p = plan(&findings);
        if p.inserts.is_empty() {
            if p.already_allowed.is_empty() {
                return Err(PerformError::Failed(format!(
                    "no output rule blocks tcp to {} port {port}; no exception is needed",
                    join(addresses)
                )));
            }
            return Ok(json!({
                "backend": view.backend(),
                "inserted": [],
                "already_allowed": p.already_allowed,
                "note": "an accept rule already comes before every blocking rule; nothing changed",
            }));
        }
        self.insert(&view, &p.inserts, port, &tag)?;
        // Read the firewall back: report the rules as they are now, and make sure nothing still
        // blocks (the executor undoes the fix when this fails).
        let after = self.inspect()?;
        let after_findings = after.findings(addresses, port);
        let still: Vec<&Finding> = after_findings
            .iter()
            .filter(|f| matches!(f.outcome, Outcome::Blocked { .. }))
            .collect();
        let inserted: Vec<Value> = match &after {
            View::Nft(rs) => nft::tagged_rules(rs, &|c| c == tag)
                .into_iter()
                .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
                .collect(),
            View::Iptables { .. } => p
                .inserts
                .iter()
                .map(|i| {
                    json!({
                        "family": i.chain.family.as_str(),
                        "table": i.chain.table,
                        "chain": i.chain.chain,
                        "address": i.address,
                        "command": iptables::insert_args(i.before, i.address, port, &tag).join(" "),
                    })
                })
                .collect(),
        };
        if !still.is_empty() {
            return Err(PerformError::Failed(format!(
                "after inserting the exception tcp to {} port {port} is still blocked: {}",
                join(addresses),
                serde_json::to_string(&still).unwrap_or_default()
            )));
        }
        let commands: Vec<String> = match view {
            View::Nft(_) => p
                .inserts
                .iter()
                .map(|i| nft::insert_command(i, port, &tag))
                .collect(),
            View::Iptables { .. } => Vec::new(),
        };
        Ok(json!({
            "backend": after.backend(),
            "inserted": inserted,
            "commands": commands,
            "already_allowed": p.already_allowed,
        }))
    }

    fn undo(&self, fix_id: &str, action: &Action, before: &Value) -> Result<(), PerformError> {
        let _ = (action, before);
        check_fix_id(fix_id)?;
        let tag = comment_for(fix_id);
        self.remove_tagged(&|c| c == tag).map(|_| ())
    }
}

fn join(addresses: &[IpAddr]) -> String {
    addresses
        .iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Removes every rule whose comment starts with `mailmend:` from this machine's firewall (for
/// uninstall); returns how many were removed.
pub fn remove_all_mailmend_rules() -> Result<usize, PerformError> {
    NftablesFirewall::new().remove_all_mailmend_rules()
}
