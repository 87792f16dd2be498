//! `mailmend run`: the long-running agent. One instance per state directory; a fix pass at start
//! and then every policy interval (with jitter, so that a fleet does not probe in step); SIGHUP
//! reloads the policy; SIGTERM/SIGINT stop after the fix in flight has finished.

use crate::agent::Agent;
use crate::commands::fix_pass;
use crate::{homes, load_policy, Settings};
use anyhow::Context;
use mailmend_audit::{Event, EventKind, Outcome};
use mailmend_executor::{Executor, StateDir};
use mailmend_policy::Policy;
use std::fs::File;
use std::time::Duration;

/// Holds the single-instance lock for as long as it lives.
pub struct InstanceLock {
    #[cfg(unix)]
    _lock: nix::fcntl::Flock<File>,
    #[cfg(not(unix))]
    _file: File,
}

/// Takes the state directory's instance lock, or says which process holds it.
pub fn lock_instance(state: &StateDir) -> anyhow::Result<InstanceLock> {
    use std::io::{Read, Seek, Write};
    let path = state.root().join("agent.lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    #[cfg(unix)]
    {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let mut lock =
            match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
                Ok(l) => l,
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => anyhow::bail!(
                    "another mailmend is already running with state directory {} (pid {})",
                    state.root().display(),
                    holder.trim()
                ),
                Err((_, e)) => return Err(e).context("cannot lock the state directory"),
            };
        lock.set_len(0)?;
        lock.rewind()?;
        write!(lock, "{}", std::process::id())?;
        Ok(InstanceLock { _lock: lock })
    }
    #[cfg(not(unix))]
    {
        let _ = (&mut file).read(&mut [0u8; 0]);
        file.set_len(0)?;
        file.rewind()?;
        write!(file, "{}", std::process::id())?;
        Ok(InstanceLock { _file: file })
    }
}

fn policy_event(kind: EventKind, policy: Option<&Policy>, message: String) -> Event {
    Event {
        kind,
        policy_hash: policy.map(|p| p.hash().to_string()),
        outcome: (kind == EventKind::PolicyRejected).then_some(Outcome::Denied),
        message,
        ..Event::default()
    }
}

/// A delay of `base` plus up to a tenth of it, drawn from the clock: enough to spread a fleet.
fn jittered(base: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tenth = base / 10;
    base + tenth.mul_f64(f64::from(nanos % 1000) / 1000.0)
}

pub async fn run(s: Settings) -> anyhow::Result<u8> {
    let state = StateDir::open(&s.state_dir)
        .with_context(|| format!("cannot open state directory {}", s.state_dir.display()))?;
    let _lock = lock_instance(&state)?;
    let mut policy = s.policy.clone();
    let mut agent = Agent::new(policy.clone(), homes::homes(s.home.as_deref()))?;
    let mut executor = Executor::new(state, policy.clone(), false)?;
    executor.audit().append(policy_event(
        EventKind::PolicyLoaded,
        Some(&policy),
        format!("agent started with policy {}", policy.origin()),
    ))?;
    crate::commands::audit_refusals(executor.audit(), &agent)?;
    tracing::info!("mailmend agent running; policy {}", policy.origin());

    let mut signals = Signals::new()?;
    let mut seen = std::collections::HashSet::new();
    loop {
        let pass = fix_pass(&agent, &mut executor, &mut seen).await?;
        for r in &pass.reports {
            tracing::info!(
                "{} {} {}: {}",
                r.account_id,
                r.finding_code,
                r.outcome.as_str(),
                r.reason
            );
        }
        let wait = jittered(policy.check_interval());
        match signals.next(wait).await {
            Wake::Timer => {}
            Wake::Stop => break,
            Wake::Reload => match load_policy(s.policy_path.as_deref()) {
                Ok((p, _)) => {
                    executor.audit().append(policy_event(
                        EventKind::PolicyLoaded,
                        Some(&p),
                        format!("policy reloaded from {}", p.origin()),
                    ))?;
                    agent = Agent::new(p.clone(), homes::homes(s.home.as_deref()))?;
                    executor.set_policy(p.clone());
                    policy = p;
                }
                Err(e) => {
                    tracing::error!("policy reload refused, keeping the last good one: {e:#}");
                    executor.audit().append(policy_event(
                        EventKind::PolicyRejected,
                        Some(&policy),
                        format!("reload refused, last good policy kept: {e:#}"),
                    ))?;
                }
            },
        }
    }
    executor.audit().append(policy_event(
        EventKind::Notice,
        Some(&policy),
        "agent stopped".to_string(),
    ))?;
    Ok(crate::exit::HEALTHY)
}

enum Wake {
    Timer,
    Reload,
    Stop,
}

struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
                hup: signal(SignalKind::hangup())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    /// Waits for the timer or a signal. Signals are only looked at between fix passes, so a fix
    /// in flight always finishes (or is reverted) before the agent stops.
    async fn next(&mut self, wait: Duration) -> Wake {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = tokio::time::sleep(wait) => Wake::Timer,
                _ = self.hup.recv() => Wake::Reload,
                _ = self.term.recv() => Wake::Stop,
                _ = self.int.recv() => Wake::Stop,
            }
        }
        #[cfg(not(unix))]
        {
            tokio::select! {
                _ = tokio::time::sleep(wait) => Wake::Timer,
                _ = tokio::signal::ctrl_c() => Wake::Stop,
            }
        }
    }
}
