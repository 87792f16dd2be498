//! The agent's wiring: client adapters, diagnostics (built-in and dynamic) and the prober, put
//! together for one run; it is also the executor's `Host`.

use futures_util::future::join_all;
use mailmend_core::{
    Account, BoxFuture, ClientAdapter, ClientKind, Diagnostic, Finding, Home, PluginInfo,
};
use mailmend_executor::{Host, Performer, Recheck};
use mailmend_plugin_host::Refusal;
use mailmend_policy::Policy;
use mailmend_probe::{ProbeConfig, RealProber};

/// One account's diagnosis: its findings, each with the plugin that produced it.
#[derive(Debug, Clone)]
pub struct Diagnosis {
    pub account: Account,
    pub findings: Vec<(Finding, PluginInfo)>,
}

impl Diagnosis {
    pub fn plain_findings(&self) -> Vec<Finding> {
        self.findings.iter().map(|(f, _)| f.clone()).collect()
    }
}

/// What discovery found over every home.
#[derive(Debug, Default)]
pub struct Scan {
    pub accounts: Vec<Account>,
    /// Configuration that could not be read (`config.unreadable`), as findings.
    pub problems: Vec<(Finding, PluginInfo)>,
}

pub struct Agent {
    policy: Policy,
    homes: Vec<Home>,
    adapters: Vec<Box<dyn ClientAdapter>>,
    diagnostics: Vec<Box<dyn Diagnostic>>,
    prober: RealProber,
    performers: Vec<Box<dyn Performer>>,
    refused: Vec<Refusal>,
}

impl Agent {
    pub fn new(policy: Policy, homes: Vec<Home>) -> anyhow::Result<Agent> {
        let prober = RealProber::new(ProbeConfig {
            connect_timeout: policy.connect_timeout(),
            io_timeout: policy.io_timeout(),
            extra_ca_files: policy.extra_ca_files().to_vec(),
            ..ProbeConfig::default()
        })?;
        let mut diagnostics = mailmend_diagnostics::builtin();
        let loaded = mailmend_plugin_host::load_dir(
            policy.plugin_dir(),
            &policy.allowed_plugin_hashes(),
            policy.io_timeout(),
        );
        for d in loaded.loaded {
            diagnostics.push(Box::new(d));
        }
        Ok(Agent {
            policy,
            homes,
            adapters: adapters(),
            diagnostics,
            prober,
            performers: mailmend_actions::performers(),
            refused: loaded.refused,
        })
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Dynamic plugins that were refused, with the reason; the caller audits them.
    pub fn refused_plugins(&self) -> &[Refusal] {
        &self.refused
    }

    pub fn adapter_infos(&self) -> Vec<PluginInfo> {
        self.adapters.iter().map(|a| a.info()).collect()
    }

    pub fn diagnostic_infos(&self) -> Vec<PluginInfo> {
        self.diagnostics.iter().map(|d| d.info()).collect()
    }

    /// Finds every account of every client in every home.
    pub fn discover(&self) -> Scan {
        let mut scan = Scan::default();
        for home in &self.homes {
            for adapter in &self.adapters {
                let d = adapter.discover(home);
                scan.accounts.extend(d.accounts);
                let info = adapter.info();
                scan.problems
                    .extend(d.findings.into_iter().map(|f| (f, info.clone())));
            }
        }
        scan
    }

    /// Every file and directory, over every home, whose change may change what `discover`
    /// finds; the service watches them.
    pub fn config_paths(&self) -> Vec<std::path::PathBuf> {
        let mut paths: Vec<std::path::PathBuf> = self
            .homes
            .iter()
            .flat_map(|h| self.adapters.iter().flat_map(move |a| a.config_paths(h)))
            .collect();
        paths.sort();
        paths.dedup();
        paths
    }

    /// Runs every diagnostic on one account, concurrently.
    pub async fn diagnose(&self, account: &Account) -> Diagnosis {
        let runs = self.diagnostics.iter().map(|d| async move {
            let info = d.info();
            d.diagnose(account, &self.prober)
                .await
                .into_iter()
                .map(move |f| (f, info.clone()))
                .collect::<Vec<_>>()
        });
        let findings = join_all(runs).await.into_iter().flatten().collect();
        Diagnosis {
            account: account.clone(),
            findings,
        }
    }

    /// Diagnoses every account concurrently.
    pub async fn diagnose_all(&self, accounts: &[Account]) -> Vec<Diagnosis> {
        join_all(accounts.iter().map(|a| self.diagnose(a))).await
    }
}

impl Host for Agent {
    fn adapter(&self, client: ClientKind) -> Option<&dyn ClientAdapter> {
        self.adapters
            .iter()
            .find(|a| a.client() == client)
            .map(|a| a.as_ref())
    }

    fn performer(&self, action: &mailmend_core::Action) -> Option<&dyn Performer> {
        self.performers
            .iter()
            .find(|p| p.handles(action))
            .map(|p| p.as_ref())
    }

    fn recheck<'a>(&'a self, account: &'a Account) -> BoxFuture<'a, Recheck> {
        Box::pin(async move {
            let Some(adapter) = Host::adapter(self, account.client) else {
                return Recheck::Gone {
                    reason: format!("no adapter for {}", account.client),
                };
            };
            for home in &self.homes {
                let d = adapter.discover(home);
                if let Some(bad) = d.findings.iter().find(|f| f.account == account.id) {
                    return Recheck::Gone {
                        reason: bad.summary.clone(),
                    };
                }
                if let Some(fresh) = d.accounts.into_iter().find(|a| a.id == account.id) {
                    let diagnosis = self.diagnose(&fresh).await;
                    return Recheck::Checked {
                        findings: diagnosis.plain_findings(),
                    };
                }
            }
            Recheck::Gone {
                reason: "the account is no longer in its configuration".to_string(),
            }
        })
    }
}

/// The built-in client adapters available on this platform.
fn adapters() -> Vec<Box<dyn ClientAdapter>> {
    vec![Box::new(mailmend_thunderbird::ThunderbirdAdapter::new())]
}
