//! `exchange-check`: runs mailmend's built-in diagnostics, with the real prober, on the accounts
//! the Outlook adapter reads from a `.reg` export, and prints them as JSON.
//!
//! Exchange accounts exist only in Outlook for Windows, whose registry the `mailmend` binary
//! reads only on Windows; the Windows leg under Wine has no lab to talk to. This helper is the
//! Linux way for an Exchange account to meet the lab's real DNS, nginx (Autodiscover) and mail
//! servers: the same adapter over a `.reg` file mounted as the user's `HKEY_CURRENT_USER`, the
//! same diagnostics, the same `RealProber` the agent uses. Run it inside the lab's client
//! namespace (`ip netns exec`), as the lab tests do.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use mailmend_core::{ClientAdapter, Hive, Home, RegPath};
use mailmend_outlook::{MountedRegistry, OutlookAdapter, ProfileListHives, RegFileStore};
use mailmend_probe::{ProbeConfig, RealProber};
use serde_json::json;

#[derive(Parser, Debug)]
#[command(
    name = "exchange-check",
    about = "Diagnose the Outlook accounts of a .reg export with mailmend's diagnostics"
)]
struct Cli {
    /// The user's HKEY_CURRENT_USER export (regedit 5 UTF-16 or REGEDIT4)
    #[arg(long, value_name = "FILE")]
    reg: PathBuf,
    /// The user's profile directory, which the export belongs to
    #[arg(long, value_name = "DIR")]
    home: PathBuf,
    /// The name server to use instead of the system's (repeatable)
    #[arg(long = "nameserver", value_name = "IP:PORT")]
    name_servers: Vec<SocketAddr>,
    /// A CA file to trust in addition to the system's (repeatable)
    #[arg(long = "ca", value_name = "FILE")]
    ca_files: Vec<PathBuf>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let registry = MountedRegistry::new().mount(
        RegPath::new(Hive::CurrentUser, ""),
        Arc::new(RegFileStore::open(&cli.reg)),
        RegPath::new(Hive::CurrentUser, ""),
    );
    let hives = ProfileListHives {
        own_profile: Some(cli.home.clone()),
        system_drive: "C:".into(),
    };
    let adapter = OutlookAdapter::new(Arc::new(registry), Arc::new(hives));
    let home = Home {
        user: "alice".into(),
        path: cli.home.clone(),
        uid: None,
        gid: None,
    };
    let discovery = adapter.discover(&home);

    let config = ProbeConfig {
        extra_ca_files: cli.ca_files.clone(),
        ..ProbeConfig::default()
    };
    let mut prober = RealProber::new(config).context("cannot set up the prober")?;
    if !cli.name_servers.is_empty() {
        prober = prober.with_name_servers(cli.name_servers.clone());
    }
    let diagnostics = mailmend_diagnostics::builtin();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let accounts: Vec<serde_json::Value> = runtime.block_on(async {
        let mut out = Vec::new();
        for account in &discovery.accounts {
            let runs = diagnostics.iter().map(|d| d.diagnose(account, &prober));
            let findings: Vec<_> = futures_util::future::join_all(runs)
                .await
                .into_iter()
                .flatten()
                .collect();
            out.push(json!({ "account": account, "findings": findings }));
        }
        out
    });
    let report = json!({ "accounts": accounts, "adapter_findings": discovery.findings });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
