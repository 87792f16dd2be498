//! `mailmend run` under the Windows service control manager, and `mailmend service
//! install|uninstall`, which create and delete the service the way `sc create` and `sc delete`
//! do (plus the Event Log source).
//!
//! The service runs `mailmend.exe [--policy FILE] [--state-dir DIR] run` as LocalSystem, starts
//! automatically and is restarted by the system after a crash. Stop and Shutdown controls ask the
//! agent to stop exactly as SIGTERM does on Linux: the fix in flight is finished or rolled back
//! first (the service reports StopPending meanwhile). Started from a console instead, `mailmend
//! run` notices that no service control manager is there and runs in the console until Ctrl+C.

use crate::Settings;
use anyhow::Context;
use std::ffi::OsString;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use tracing_subscriber::EnvFilter;
use windows_service::service::{
    ServiceAccess, ServiceAction, ServiceActionType, ServiceControl, ServiceControlAccept,
    ServiceErrorControl, ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_dispatcher;
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};

/// The service's name (`sc start mailmend`).
pub const SERVICE_NAME: &str = "mailmend";
const DISPLAY_NAME: &str = "mailmend mail repair agent";
const DESCRIPTION: &str = "Finds the mail accounts on this computer, diagnoses why mail does not \
     connect and applies the fixes the policy allows, recording each decision in an audit log.";

/// How long the service control manager should wait for a stop: a fix in flight is verified
/// (probes with their own time limits) or rolled back before the agent stops.
const STOP_WAIT_HINT: Duration = Duration::from_secs(60);

/// What `service_main` needs, handed over from `main` (the dispatcher calls `service_main` on
/// a thread of its own, with no way to pass arguments).
struct Pending {
    settings: Settings,
    filter: EnvFilter,
}

static PENDING: Mutex<Option<Pending>> = Mutex::new(None);
static RESULT: Mutex<Option<anyhow::Result<u8>>> = Mutex::new(None);

/// ERROR_FAILED_SERVICE_CONTROLLER_CONNECT: the process was not started by the service
/// control manager.
const NOT_A_SERVICE: i32 = 1063;
/// ERROR_SERVICE_DOES_NOT_EXIST.
const NO_SUCH_SERVICE: i32 = 1060;

windows_service::define_windows_service!(ffi_service_main, service_main);

/// `mailmend run` on Windows: as a service when the service control manager started it,
/// otherwise in the console.
pub fn run(settings: Settings, filter: EnvFilter) -> anyhow::Result<u8> {
    *lock(&PENDING) = Some(Pending { settings, filter });
    match service_dispatcher::start(SERVICE_NAME, ffi_service_main) {
        Ok(()) => lock(&RESULT)
            .take()
            .unwrap_or_else(|| Err(anyhow::anyhow!("the service stopped without a result"))),
        Err(windows_service::Error::Winapi(e)) if e.raw_os_error() == Some(NOT_A_SERVICE) => {
            let Some(p) = lock(&PENDING).take() else {
                anyhow::bail!("the service settings were already taken");
            };
            crate::init_stderr_logging(p.filter, true);
            runtime()?.block_on(crate::commands::run_service(p.settings))
        }
        Err(e) => Err(e).context("cannot connect to the service control manager"),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means a thread panicked while holding it; the value is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn service_main(_arguments: Vec<OsString>) {
    let result = run_as_service();
    if let Err(e) = &result {
        tracing::error!("mailmend service failed: {e:#}");
    }
    *lock(&RESULT) = Some(result);
}

fn status(state: ServiceState, exit: ServiceExitCode, wait: Duration) -> ServiceStatus {
    ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted: if state == ServiceState::Running {
            ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN
        } else {
            ServiceControlAccept::empty()
        },
        exit_code: exit,
        checkpoint: 0,
        wait_hint: wait,
        process_id: None,
    }
}

fn run_as_service() -> anyhow::Result<u8> {
    let Some(p) = lock(&PENDING).take() else {
        anyhow::bail!("the service settings were already taken");
    };
    init_service_logging(p.filter);
    let handle_cell: &'static OnceLock<service_control_handler::ServiceStatusHandle> =
        Box::leak(Box::new(OnceLock::new()));
    let handler = move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            tracing::info!("stop requested by the service control manager");
            crate::stop::request();
            if let Some(h) = handle_cell.get() {
                let _ = h.set_service_status(status(
                    ServiceState::StopPending,
                    ServiceExitCode::NO_ERROR,
                    STOP_WAIT_HINT,
                ));
            }
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let handle = service_control_handler::register(SERVICE_NAME, handler)
        .context("cannot register the service control handler")?;
    let _ = handle_cell.set(handle);
    handle
        .set_service_status(status(
            ServiceState::Running,
            ServiceExitCode::NO_ERROR,
            Duration::ZERO,
        ))
        .context("cannot report the service as running")?;
    let result = runtime().and_then(|rt| rt.block_on(crate::commands::run_service(p.settings)));
    let exit = match &result {
        Ok(0) => ServiceExitCode::NO_ERROR,
        Ok(code) => ServiceExitCode::ServiceSpecific(u32::from(*code)),
        Err(_) => ServiceExitCode::ServiceSpecific(u32::from(crate::exit::COULD_NOT_CHECK)),
    };
    let _ = handle.set_service_status(status(ServiceState::Stopped, exit, Duration::ZERO));
    result
}

/// Under the service control manager stderr goes nowhere: log to the Event Log (and stderr,
/// which costs nothing and helps when the binary is started by hand with the same name).
fn init_service_logging(filter: EnvFilter) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false);
    match crate::eventlog::EventLogLayer::open() {
        Ok(layer) => {
            let _ = tracing_subscriber::registry()
                .with(filter)
                .with(fmt)
                .with(layer)
                .try_init();
        }
        Err(e) => {
            let _ = tracing_subscriber::registry()
                .with(filter)
                .with(fmt)
                .try_init();
            tracing::warn!("the Event Log is unavailable, logging to stderr only: {e}");
        }
    }
}

/// The command line the service runs: the global flags given to `service install`, then `run`.
pub fn service_arguments(s: &Settings, state_dir_given: bool) -> Vec<OsString> {
    let mut args = Vec::new();
    if let Some(p) = &s.policy_path {
        args.push(OsString::from("--policy"));
        args.push(p.as_os_str().to_owned());
    }
    if state_dir_given {
        args.push(OsString::from("--state-dir"));
        args.push(s.state_dir.as_os_str().to_owned());
    }
    args.push(OsString::from("run"));
    args
}

/// `mailmend service install`: creates the service (automatic start, LocalSystem, restart
/// after a crash) and registers the Event Log source.
pub fn install(s: &Settings, state_dir_given: bool) -> anyhow::Result<u8> {
    let exe = std::env::current_exe().context("cannot tell where mailmend.exe is")?;
    let manager = ServiceManager::local_computer(
        None::<&str>,
        ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
    )
    .context("cannot open the service control manager (run as administrator)")?;
    let info = ServiceInfo {
        name: SERVICE_NAME.into(),
        display_name: DISPLAY_NAME.into(),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: exe.clone(),
        launch_arguments: service_arguments(s, state_dir_given),
        dependencies: vec![],
        account_name: None,
        account_password: None,
    };
    let service = manager
        .create_service(&info, ServiceAccess::CHANGE_CONFIG)
        .context("cannot create the mailmend service")?;
    service
        .set_description(DESCRIPTION)
        .context("cannot set the service description")?;
    let restart = |secs| ServiceAction {
        action_type: ServiceActionType::Restart,
        delay: Duration::from_secs(secs),
    };
    let actions = ServiceFailureActions {
        reset_period: ServiceFailureResetPeriod::After(Duration::from_secs(24 * 3600)),
        reboot_msg: None,
        command: None,
        actions: Some(vec![restart(5), restart(30), restart(300)]),
    };
    // Restart-after-crash is a convenience; the service works without it.
    if let Err(e) = service.update_failure_actions(actions) {
        eprintln!("mailmend: warning: cannot set restart-after-failure: {e}");
    }
    crate::eventlog::register_source().context("cannot register the Event Log source")?;
    println!(
        "installed service {SERVICE_NAME} ({}); start it with: sc start {SERVICE_NAME}",
        exe.display()
    );
    Ok(crate::exit::HEALTHY)
}

/// `mailmend service uninstall`: stops the service (waiting for the fix in flight), deletes it
/// and removes the Event Log source. Uninstalling what is not installed is no error.
pub fn uninstall() -> anyhow::Result<u8> {
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
        .context("cannot open the service control manager (run as administrator)")?;
    let access = ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE;
    match manager.open_service(SERVICE_NAME, access) {
        Ok(service) => {
            let state = service.query_status()?.current_state;
            if state != ServiceState::Stopped {
                if state != ServiceState::StopPending {
                    service.stop().context("cannot stop the mailmend service")?;
                }
                let deadline = std::time::Instant::now() + STOP_WAIT_HINT;
                while service.query_status()?.current_state != ServiceState::Stopped {
                    if std::time::Instant::now() > deadline {
                        anyhow::bail!(
                            "the mailmend service did not stop within {}s",
                            STOP_WAIT_HINT.as_secs()
                        );
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
            service
                .delete()
                .context("cannot delete the mailmend service")?;
            println!("uninstalled service {SERVICE_NAME}");
        }
        Err(windows_service::Error::Winapi(e)) if e.raw_os_error() == Some(NO_SUCH_SERVICE) => {
            println!("service {SERVICE_NAME} is not installed");
        }
        Err(e) => return Err(e).context("cannot open the mailmend service"),
    }
    crate::eventlog::deregister_source().context("cannot remove the Event Log source")?;
    Ok(crate::exit::HEALTHY)
}
