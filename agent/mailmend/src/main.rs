//! The `mailmend` binary: turns flags into settings once, then runs one command.

mod agent;
mod cli;
mod commands;
mod credentials;
#[cfg(any(windows, test))]
mod eventlog;
mod homes;
#[cfg(any(windows, target_os = "macos", test))]
mod logtext;
#[cfg(target_os = "macos")]
mod oslog;
mod output;
mod sdnotify;
mod service;
#[cfg(windows)]
mod stop;
mod watch;
#[cfg(windows)]
mod winsvc;

use anyhow::Context;
use clap::Parser;
use cli::{Cli, Command};
use mailmend_policy::Policy;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit codes that scripts and monitoring rely on (`mailmend check` as an Intune detection).
pub mod exit {
    pub const HEALTHY: u8 = 0;
    pub const FINDINGS: u8 = 1;
    pub const COULD_NOT_CHECK: u8 = 2;
}

/// Everything the commands need, decided once from the flags.
pub struct Settings {
    pub policy: Policy,
    /// The policy file actually used, for reloads (`None`: the embedded default).
    pub policy_path: Option<PathBuf>,
    pub state_dir: PathBuf,
    pub home: Option<PathBuf>,
    pub verbose: u8,
    pub quiet: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("mailmend: {e:#}");
            ExitCode::from(exit::COULD_NOT_CHECK)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    let command = cli.command.unwrap_or(Command::Fix {
        dry_run: false,
        json: false,
    });
    // `policy check FILE` validates a file that need not be the one in force.
    if let Command::Policy {
        command: cli::PolicyCommand::Check { file },
    } = &command
    {
        return commands::policy_check(file);
    }
    let (policy, policy_path) = load_policy(cli.global.policy.as_deref())?;
    let is_service = matches!(command, Command::Run);
    let filter = log_filter(&policy, cli.global.verbose, cli.global.quiet, is_service);
    let state_dir_given = cli.global.state_dir.is_some();
    let settings = Settings {
        state_dir: cli.global.state_dir.unwrap_or_else(default_state_dir),
        home: cli.global.home,
        verbose: cli.global.verbose,
        quiet: cli.global.quiet,
        policy,
        policy_path,
    };
    // On Windows, `run` may be the service control manager's: the service module decides
    // where to log once it knows.
    #[cfg(windows)]
    if is_service {
        return winsvc::run(settings, filter);
    }
    init_stderr_logging(filter, is_service);
    if let Command::Service { command } = command {
        return service_command(&settings, command, state_dir_given);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        match command {
            Command::Accounts { json } => commands::accounts(&settings, json),
            Command::Check { json } => commands::check(&settings, json).await,
            Command::Fix { dry_run, json } => commands::fix(&settings, dry_run, json).await,
            Command::Run => commands::run_service(settings).await,
            Command::Audit { command } => commands::audit(&settings, command),
            Command::Rollback { fix_id, json } => commands::rollback(&settings, &fix_id, json),
            Command::Uninstall { json } => commands::uninstall(&settings, json),
            Command::Policy { command } => commands::policy(&settings, command),
            Command::Plugins { command } => commands::plugins(&settings, command),
            Command::Service { .. } => unreachable!("handled before the runtime starts"),
        }
    })
}

/// `mailmend service install|uninstall`: the Windows service; elsewhere the platform's own
/// files do this job.
fn service_command(
    s: &Settings,
    command: cli::ServiceCommand,
    state_dir_given: bool,
) -> anyhow::Result<u8> {
    #[cfg(windows)]
    {
        match command {
            cli::ServiceCommand::Install => winsvc::install(s, state_dir_given),
            cli::ServiceCommand::Uninstall => winsvc::uninstall(),
        }
    }
    #[cfg(not(windows))]
    {
        let _ = (s, command, state_dir_given);
        anyhow::bail!(
            "`mailmend service` manages the Windows service; on Linux install the systemd unit, \
             on macOS installer/macos/com.mailmend.agent.plist"
        )
    }
}

/// The policy in force: `--policy FILE`, else the platform's policy file when it exists, else
/// the embedded default. A bad policy stops the agent with the file, line and column.
pub fn load_policy(
    explicit: Option<&std::path::Path>,
) -> anyhow::Result<(Policy, Option<PathBuf>)> {
    if let Some(path) = explicit {
        let p = Policy::load(path).map_err(|e| anyhow::anyhow!("{e}"))?;
        return Ok((p, Some(path.to_path_buf())));
    }
    let path = Policy::default_path();
    if path.exists() {
        let p = Policy::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
        return Ok((p, Some(path)));
    }
    Ok((Policy::embedded_default(), None))
}

/// The machine's ProgramData folder as the shell knows it. The service, an admin's
/// `mailmend check` and the installer's `mailmend uninstall` must all find the same state
/// directory, and the `ProgramData` environment variable is not that: each process's
/// environment can differ (Wine's service manager gives services another value than msiexec's
/// custom actions get), and a user can set it.
#[cfg(windows)]
fn program_data() -> Option<PathBuf> {
    use std::os::windows::ffi::OsStringExt;
    use windows_sys::Win32::System::Com::CoTaskMemFree;
    use windows_sys::Win32::UI::Shell::{
        FOLDERID_ProgramData, SHGetKnownFolderPath, KF_FLAG_DEFAULT,
    };
    let mut path: windows_sys::core::PWSTR = std::ptr::null_mut();
    // SAFETY: the GUID is a static; `path` receives a buffer the shell allocates (also on
    // failure, possibly null), which is read up to its NUL and freed with CoTaskMemFree.
    let hr = unsafe {
        SHGetKnownFolderPath(
            &FOLDERID_ProgramData,
            KF_FLAG_DEFAULT as u32,
            std::ptr::null_mut(),
            &mut path,
        )
    };
    let result = if hr >= 0 && !path.is_null() {
        // SAFETY: on success `path` is a NUL-terminated UTF-16 string.
        let len = unsafe { (0..).take_while(|&i| *path.add(i) != 0).count() };
        // SAFETY: `len` units before the NUL are readable, as just counted.
        let units = unsafe { std::slice::from_raw_parts(path, len) };
        Some(PathBuf::from(std::ffi::OsString::from_wide(units)))
    } else {
        None
    };
    // SAFETY: `path` came from SHGetKnownFolderPath and is freed once; null is allowed.
    unsafe { CoTaskMemFree(path as *const core::ffi::c_void) };
    result
}

/// `/var/lib/mailmend` (or the platform's equivalent) for root; a per-user state directory
/// otherwise, so that `mailmend check` works for an unprivileged user too.
fn default_state_dir() -> PathBuf {
    #[cfg(windows)]
    {
        let base = program_data()
            .or_else(|| std::env::var_os("ProgramData").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("C:\\ProgramData"));
        base.join("mailmend").join("state")
    }
    #[cfg(target_os = "macos")]
    {
        if nix::unistd::geteuid().is_root() {
            return PathBuf::from("/Library/Application Support/mailmend/state");
        }
        let home = std::env::var_os("HOME").unwrap_or_default();
        PathBuf::from(home).join("Library/Application Support/mailmend")
    }
    #[cfg(all(unix, not(target_os = "macos")))]
    {
        if nix::unistd::geteuid().is_root() {
            return PathBuf::from("/var/lib/mailmend");
        }
        if let Some(x) = std::env::var_os("XDG_STATE_HOME") {
            return PathBuf::from(x).join("mailmend");
        }
        let home = std::env::var_os("HOME").unwrap_or_default();
        PathBuf::from(home).join(".local/state/mailmend")
    }
}

/// The log filter: `MAILMEND_LOG` when set, else from the flags, else the policy's level for
/// the service and warnings for one-shot commands.
fn log_filter(
    policy: &Policy,
    verbose: u8,
    quiet: bool,
    is_service: bool,
) -> tracing_subscriber::EnvFilter {
    let level = if quiet {
        "error"
    } else {
        match verbose {
            0 if is_service => policy.log_level(),
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    tracing_subscriber::EnvFilter::try_from_env("MAILMEND_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level))
}

/// Logging to stderr (the journal under systemd; plus the unified log for the macOS daemon).
pub(crate) fn init_stderr_logging(filter: tracing_subscriber::EnvFilter, is_service: bool) {
    #[cfg(target_os = "macos")]
    if is_service {
        oslog::init(filter);
        return;
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    // Under systemd, stderr is the journal: tag each line with its priority and leave the
    // timestamp to the journal.
    let _ = if is_service && sdnotify::stderr_is_journal() {
        builder
            .with_ansi(false)
            .event_format(sdnotify::JournalFormat)
            .try_init()
    } else {
        builder.try_init()
    };
}
