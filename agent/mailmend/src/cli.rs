//! Command-line flags, parsed once; `Settings` is what the rest of the binary reads.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// mailmend finds the mail accounts on this machine, diagnoses why mail does not connect, and
/// applies the fixes the admin's policy allows, recording every decision in an audit log.
#[derive(Debug, Parser)]
#[command(name = "mailmend", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Policy file (default: the platform's policy path, else the embedded default policy)
    #[arg(long, global = true, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// State directory: audit log, intents and snapshots
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Scan only this home directory (default: every user's home when root, else your own)
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug, -vvv trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the mail accounts found on this machine
    Accounts {
        #[arg(long)]
        json: bool,
    },
    /// Diagnose every account; exit 0 healthy, 1 findings, 2 could not check
    Check {
        #[arg(long)]
        json: bool,
    },
    /// One diagnose → decide → apply → verify pass (the default command)
    Fix {
        /// Decide and audit, change nothing
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Run as a long-running service
    Run,
    /// Read or verify the audit log
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Undo a past fix by its id (see `mailmend audit show`)
    Rollback {
        fix_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Before removing mailmend: delete every firewall rule it ever added (and nothing else),
    /// and say how many; the package's removal script runs this
    Uninstall {
        #[arg(long)]
        json: bool,
    },
    /// Validate or show the policy
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// List built-in and dynamic plugins, and refused ones with the reason
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// Install or remove the Windows service (elsewhere: the systemd unit or launchd plist)
    Service {
        #[command(subcommand)]
        command: ServiceCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Create the `mailmend` service (automatic start, LocalSystem) and its Event Log source;
    /// --policy and --state-dir given here are passed to the service
    Install,
    /// Stop and delete the service and its Event Log source
    Uninstall,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Print audit records as a table (or JSON Lines)
    Show {
        #[arg(long)]
        json: bool,
        /// Only records at or after this RFC 3339 time
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only records of this account (id or email address)
        #[arg(long, value_name = "ACCOUNT")]
        account: Option<String>,
        /// Only records with this outcome (applied, rolled_back, failed, denied, recommended, deferred, reverted, skipped)
        #[arg(long, value_name = "OUTCOME")]
        outcome: Option<String>,
    },
    /// Check the hash chain; names the first altered, removed or reordered record
    Verify,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file and explain what it does
    Check { file: PathBuf },
    /// Print the effective policy
    Show,
}

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// List plugins
    List {
        #[arg(long)]
        json: bool,
    },
}
