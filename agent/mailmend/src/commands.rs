//! One function per command. Each returns the process exit code.

use crate::agent::{Agent, Diagnosis};
use crate::cli::{AuditCommand, PluginsCommand, PolicyCommand};
use crate::output::{endpoint, table};
use crate::{exit, homes, Settings};
use anyhow::Context;
use mailmend_audit::{AuditLog, Event, EventKind, Filter, Outcome, VerifyReport};
use mailmend_core::{Finding, Location, Severity};
use mailmend_executor::{Executor, Proposal, Report, StateDir};
use mailmend_policy::Policy;
use serde_json::json;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Version of the `--json` output documents; bumped only on incompatible changes.
const JSON_VERSION: u32 = 1;

fn new_agent(s: &Settings) -> anyhow::Result<Agent> {
    Ok(Agent::new(s.policy.clone(), homes::homes(s.home.as_deref()))?.with_state_dir(&s.state_dir))
}

fn open_state(s: &Settings) -> anyhow::Result<StateDir> {
    StateDir::open(&s.state_dir)
        .with_context(|| format!("cannot open state directory {}", s.state_dir.display()))
}

/// Writes an audit record for every refused dynamic plugin.
pub fn audit_refusals(audit: &mut AuditLog, agent: &Agent) -> anyhow::Result<()> {
    for r in agent.refused_plugins() {
        tracing::warn!("plugin refused: {r}");
        audit.append(Event {
            kind: EventKind::PluginRefused,
            policy_hash: Some(agent.policy().hash().to_string()),
            outcome: Some(Outcome::Denied),
            message: r.to_string(),
            ..Event::default()
        })?;
    }
    Ok(())
}

pub fn accounts(s: &Settings, json_out: bool) -> anyhow::Result<u8> {
    let agent = new_agent(s)?;
    let scan = agent.discover();
    if json_out {
        let problems: Vec<&Finding> = scan.problems.iter().map(|(f, _)| f).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "version": JSON_VERSION,
                "accounts": scan.accounts,
                "problems": problems,
            }))?
        );
    } else {
        let rows: Vec<Vec<String>> = scan
            .accounts
            .iter()
            .map(|a| {
                vec![
                    a.id.to_string(),
                    a.os_user.clone(),
                    a.email.clone().unwrap_or_else(|| "-".into()),
                    endpoint(a.incoming.as_ref()),
                    endpoint(a.outgoing.as_ref()),
                ]
            })
            .collect();
        if rows.is_empty() {
            println!("no mail accounts found");
        } else {
            print!(
                "{}",
                table(&["ACCOUNT", "USER", "EMAIL", "INCOMING", "OUTGOING"], &rows)
            );
        }
        for (f, _) in &scan.problems {
            println!("unreadable: {}", f.summary);
        }
    }
    Ok(exit::HEALTHY)
}

fn findings_rows(diagnoses: &[Diagnosis], problems: &[Finding]) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for d in diagnoses {
        for (f, _) in &d.findings {
            rows.push(vec![
                d.account.id.to_string(),
                f.role.map(|r| r.to_string()).unwrap_or_else(|| "-".into()),
                f.severity.to_string(),
                f.code.clone(),
                f.summary.clone(),
            ]);
        }
    }
    for f in problems {
        rows.push(vec![
            f.account.to_string(),
            "-".into(),
            f.severity.to_string(),
            f.code.clone(),
            f.summary.clone(),
        ]);
    }
    rows
}

const FINDING_HEADERS: [&str; 5] = ["ACCOUNT", "ROLE", "SEVERITY", "FINDING", "SUMMARY"];

pub async fn check(s: &Settings, json_out: bool) -> anyhow::Result<u8> {
    let agent = new_agent(s)?;
    if !agent.refused_plugins().is_empty() {
        // Refusals are audited even by a read-only check, so an admin sees them; a check run by
        // an unprivileged user that cannot write the state directory still reports them.
        match open_state(s).and_then(|st| Ok(AuditLog::open(&st.audit_dir())?)) {
            Ok(mut audit) => audit_refusals(&mut audit, &agent)?,
            Err(e) => tracing::warn!("plugin refusals not audited: {e:#}"),
        }
    }
    let scan = agent.discover();
    let diagnoses = agent.diagnose_all(&scan.accounts).await;
    let problems: Vec<Finding> = scan.problems.iter().map(|(f, _)| f.clone()).collect();
    let count = diagnoses.iter().map(|d| d.findings.len()).sum::<usize>() + problems.len();
    let code = if count == 0 {
        exit::HEALTHY
    } else {
        exit::FINDINGS
    };
    if json_out {
        let accounts: Vec<_> = diagnoses
            .iter()
            .map(|d| json!({ "account": d.account, "findings": d.plain_findings() }))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "version": JSON_VERSION,
                "status": if count == 0 { "healthy" } else { "findings" },
                "accounts": accounts,
                "problems": problems,
            }))?
        );
    } else if count == 0 {
        println!(
            "healthy: {} account(s) checked, no findings",
            diagnoses.len()
        );
    } else {
        print!(
            "{}",
            table(&FINDING_HEADERS, &findings_rows(&diagnoses, &problems))
        );
    }
    Ok(code)
}

/// The result of one fix pass.
pub struct FixPass {
    pub reports: Vec<Report>,
    pub remaining: Vec<Diagnosis>,
    pub problems: Vec<Finding>,
}

/// Diagnose → decide → apply → verify, for every account; an account that got a fix is
/// diagnosed again (at most three rounds), so that a second problem behind the first is seen.
///
/// Findings that propose nothing are audited as `finding` records, each once for as long as it
/// persists: `seen` carries the problems of the previous pass, so the service does not repeat
/// them every interval.
pub async fn fix_pass(
    agent: &Agent,
    executor: &mut Executor,
    seen: &mut HashSet<String>,
) -> anyhow::Result<FixPass> {
    fix_pass_scoped(agent, executor, seen, None).await
}

/// [`fix_pass`] limited, when `only` is given, to the accounts stored in one of those files: the
/// service answers an edit of one file by looking at that file's accounts alone. Unreadable
/// configuration (`config.unreadable`) is always reported, as it names no account to match;
/// `seen` keeps its entries for the accounts outside the scope.
pub async fn fix_pass_scoped(
    agent: &Agent,
    executor: &mut Executor,
    seen: &mut HashSet<String>,
    only: Option<&HashSet<PathBuf>>,
) -> anyhow::Result<FixPass> {
    const ROUNDS: usize = 3;
    let mut reports = executor.recover(agent)?;
    let mut scan = agent.discover();
    if let Some(only) = only {
        scan.accounts
            .retain(|a| matches!(&a.location, Location::File { path } if only.contains(path)));
    }
    let mut diagnoses = agent.diagnose_all(&scan.accounts).await;
    let unfixable =
        scan.problems
            .iter()
            .map(|(f, i)| (f, i, None))
            .chain(diagnoses.iter().flat_map(|d| {
                d.findings
                    .iter()
                    .map(move |(f, i)| (f, i, d.account.email.clone()))
            }));
    let mut now_seen = HashSet::new();
    for (f, info, email) in unfixable.filter(|(f, _, _)| f.proposed.is_empty()) {
        now_seen.insert(f.problem_key());
        if seen.contains(&f.problem_key()) {
            continue;
        }
        executor.audit().append(Event {
            kind: EventKind::Finding,
            account_id: Some(f.account.0.clone()),
            email,
            finding_code: Some(f.code.clone()),
            evidence: f.evidence.clone(),
            plugin: Some(info.clone()),
            policy_hash: Some(agent.policy().hash().to_string()),
            message: f.summary.clone(),
            ..Event::default()
        })?;
    }
    match only {
        None => *seen = now_seen,
        Some(_) => {
            // Only the scoped accounts were looked at: forget their old entries, keep the rest.
            let scoped: Vec<String> = scan.accounts.iter().map(|a| format!("{}/", a.id)).collect();
            seen.retain(|k| !scoped.iter().any(|p| k.starts_with(p.as_str())));
            seen.extend(now_seen);
        }
    }
    for _ in 0..ROUNDS {
        let mut changed = Vec::new();
        // Accounts can share a file (an msmtp account inheriting from another): once one is
        // changed, the others' diagnoses are stale, so they wait for the next round.
        let mut changed_files = Vec::new();
        for (i, d) in diagnoses.iter().enumerate() {
            if changed_files.contains(&d.account.location) {
                changed.push(i);
                continue;
            }
            let plain = d.plain_findings();
            let mut ordered: Vec<&(Finding, mailmend_core::PluginInfo)> =
                d.findings.iter().collect();
            // The worst problem first: fixing it may make the others disappear.
            ordered.sort_by_key(|f| std::cmp::Reverse(f.0.severity));
            'account: for (finding, plugin) in ordered {
                for action in &finding.proposed {
                    let r = executor
                        .handle(
                            agent,
                            Proposal {
                                account: &d.account,
                                findings: &plain,
                                finding,
                                action,
                                plugin,
                            },
                        )
                        .await?;
                    let applied_change = r.outcome == Outcome::Applied
                        && !matches!(action, mailmend_core::Action::NotifyUser { .. });
                    reports.push(r);
                    if applied_change {
                        changed.push(i);
                        changed_files.push(d.account.location.clone());
                        break 'account;
                    }
                }
            }
        }
        if changed.is_empty() {
            break;
        }
        // Re-read and re-diagnose only the accounts that changed.
        let fresh = agent.discover();
        for i in changed {
            let id = diagnoses[i].account.id.clone();
            if let Some(acc) = fresh.accounts.iter().find(|a| a.id == id) {
                diagnoses[i] = agent.diagnose(acc).await;
            }
        }
    }
    Ok(FixPass {
        reports,
        remaining: diagnoses,
        problems: scan.problems.into_iter().map(|(f, _)| f).collect(),
    })
}

pub async fn fix(s: &Settings, dry_run: bool, json_out: bool) -> anyhow::Result<u8> {
    let agent = new_agent(s)?;
    let mut executor = Executor::new(open_state(s)?, s.policy.clone(), dry_run)?;
    audit_refusals(executor.audit(), &agent)?;
    let pass = fix_pass(&agent, &mut executor, &mut HashSet::new()).await?;
    print_fix_pass(&pass, json_out)?;
    Ok(fix_exit_code(&pass))
}

fn fix_exit_code(pass: &FixPass) -> u8 {
    let left = pass
        .remaining
        .iter()
        .flat_map(|d| d.findings.iter())
        .filter(|(f, _)| f.severity >= Severity::Warning)
        .count()
        + pass.problems.len();
    if left == 0 {
        exit::HEALTHY
    } else {
        exit::FINDINGS
    }
}

fn print_fix_pass(pass: &FixPass, json_out: bool) -> anyhow::Result<()> {
    if json_out {
        let remaining: Vec<_> = pass
            .remaining
            .iter()
            .map(|d| json!({ "account": d.account, "findings": d.plain_findings() }))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "version": JSON_VERSION,
                "reports": pass.reports,
                "remaining": remaining,
                "problems": pass.problems,
            }))?
        );
        return Ok(());
    }
    if pass.reports.is_empty() {
        println!("no fixes proposed");
    } else {
        let rows: Vec<Vec<String>> = pass
            .reports
            .iter()
            .map(|r| {
                vec![
                    r.fix_id.clone().unwrap_or_else(|| "-".into()),
                    r.account_id.clone(),
                    r.finding_code.clone(),
                    r.action.describe(),
                    r.outcome.as_str().to_string(),
                    r.reason.clone(),
                ]
            })
            .collect();
        print!(
            "{}",
            table(
                &["FIX", "ACCOUNT", "FINDING", "ACTION", "OUTCOME", "WHY"],
                &rows
            )
        );
    }
    let rows = findings_rows(&pass.remaining, &pass.problems);
    if rows.is_empty() {
        println!("all accounts healthy");
    } else {
        println!("\nstill found:");
        print!("{}", table(&FINDING_HEADERS, &rows));
    }
    Ok(())
}

pub async fn run_service(s: Settings) -> anyhow::Result<u8> {
    crate::service::run(s).await
}

pub fn audit(s: &Settings, cmd: AuditCommand) -> anyhow::Result<u8> {
    let dir = s.state_dir.join("audit");
    match cmd {
        AuditCommand::Show {
            json: json_out,
            since,
            account,
            outcome,
        } => {
            let outcome = match outcome {
                Some(o) => Some(Outcome::parse(&o).ok_or_else(|| {
                    anyhow::anyhow!(
                        "unknown outcome {o:?} (expected applied, rolled_back, failed, denied, recommended, deferred, reverted or skipped)"
                    )
                })?),
                None => None,
            };
            if !dir.exists() {
                anyhow::bail!(
                    "no audit log in {} (wrong --state-dir?)",
                    s.state_dir.display()
                );
            }
            let records = mailmend_audit::read_all(&dir)?;
            let chosen = mailmend_audit::filter(
                &records,
                &Filter {
                    since,
                    account,
                    outcome,
                },
            )?;
            if json_out {
                for r in chosen {
                    println!("{}", serde_json::to_string(r)?);
                }
            } else {
                print!("{}", mailmend_audit::render_table(&chosen));
            }
            Ok(exit::HEALTHY)
        }
        AuditCommand::Verify => match mailmend_audit::verify(&dir)? {
            VerifyReport::Intact { records } => {
                println!("audit log intact: {records} records");
                Ok(exit::HEALTHY)
            }
            VerifyReport::Broken {
                file,
                line,
                seq,
                problem,
            } => {
                let seq = seq.map(|s| format!(" (record {s})")).unwrap_or_default();
                println!(
                    "audit log BROKEN at {}:{line}{seq}: {problem}",
                    file.display()
                );
                Ok(exit::FINDINGS)
            }
        },
    }
}

pub fn rollback(s: &Settings, fix_id: &str, json_out: bool) -> anyhow::Result<u8> {
    let agent = new_agent(s)?;
    let mut executor = Executor::new(open_state(s)?, s.policy.clone(), false)?;
    let report = executor.rollback(&agent, fix_id)?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", report.reason);
    }
    Ok(exit::HEALTHY)
}

/// `mailmend uninstall`: removes every firewall rule the agent added on this machine (each is
/// tagged with its fix id; rules of anyone else are never touched) and audits how many. Run by
/// the package's removal script, so that no exception outlives the agent. Other changes (a
/// client's port, a flushed cache, a renewed ticket) are the user's settings now and stay.
pub fn uninstall(s: &Settings, json_out: bool) -> anyhow::Result<u8> {
    let removed = mailmend_actions::remove_all_mailmend_rules();
    let (status, message) = match &removed {
        Ok(n) => (
            exit::HEALTHY,
            format!("removed {n} firewall rule(s) that mailmend had added"),
        ),
        Err(e) => (
            exit::COULD_NOT_CHECK,
            format!("could not remove mailmend's firewall rules: {e}"),
        ),
    };
    // The audit is best effort here: an uninstall must not stop at a missing state directory.
    match open_state(s).and_then(|st| Ok(AuditLog::open(&st.audit_dir())?)) {
        Ok(mut audit) => {
            audit.append(Event {
                kind: EventKind::Rollback,
                message: message.clone(),
                ..Event::default()
            })?;
        }
        Err(e) => tracing::warn!("uninstall not audited: {e:#}"),
    }
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "version": JSON_VERSION,
                "removed_rules": removed.as_ref().ok(),
                "message": message,
            }))?
        );
    } else {
        println!("{message}");
    }
    Ok(status)
}

pub fn policy_check(file: &Path) -> anyhow::Result<u8> {
    match Policy::load(file) {
        Ok(p) => {
            println!("{}: valid\n", file.display());
            print!("{}", p.explain());
            Ok(exit::HEALTHY)
        }
        Err(e) => {
            println!("{e}");
            Ok(exit::FINDINGS)
        }
    }
}

pub fn policy(s: &Settings, cmd: PolicyCommand) -> anyhow::Result<u8> {
    match cmd {
        PolicyCommand::Check { file } => policy_check(&file),
        PolicyCommand::Show => {
            println!("# effective policy from {}", s.policy.origin());
            println!("# sha256 {}", s.policy.hash());
            print!("{}", s.policy.to_effective_toml());
            Ok(exit::HEALTHY)
        }
    }
}

pub fn plugins(s: &Settings, cmd: PluginsCommand) -> anyhow::Result<u8> {
    let PluginsCommand::List { json: json_out } = cmd;
    let agent = new_agent(s)?;
    let adapters = agent.adapter_infos();
    let diagnostics = agent.diagnostic_infos();
    let refused: Vec<String> = agent
        .refused_plugins()
        .iter()
        .map(|r| r.to_string())
        .collect();
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "version": JSON_VERSION,
                "adapters": adapters,
                "diagnostics": diagnostics,
                "refused": refused,
            }))?
        );
    } else {
        let mut rows = Vec::new();
        for (role, list) in [("adapter", &adapters), ("diagnostic", &diagnostics)] {
            for p in list {
                rows.push(vec![
                    p.name.clone(),
                    role.to_string(),
                    p.version.clone(),
                    p.origin.clone(),
                ]);
            }
        }
        print!("{}", table(&["PLUGIN", "ROLE", "VERSION", "ORIGIN"], &rows));
        println!("plugin directory: {}", s.policy.plugin_dir().display());
        for r in refused {
            println!("refused: {r}");
        }
    }
    Ok(exit::HEALTHY)
}
