//! systemd integration without libsystemd: readiness, stopping, watchdog and status messages
//! sent as datagrams to `$NOTIFY_SOCKET` (the sd_notify(3) protocol), and log lines that the
//! journal files under the right priority when stderr is connected to it.

use std::time::Duration;

/// Sends sd_notify messages when the service manager asked for them; does nothing otherwise.
pub struct Notifier {
    #[cfg(unix)]
    target: Option<(
        std::os::unix::net::UnixDatagram,
        std::os::unix::net::SocketAddr,
    )>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID`.
    pub fn from_env() -> Notifier {
        let watchdog = watchdog_interval(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        );
        #[cfg(unix)]
        {
            let target = std::env::var_os("NOTIFY_SOCKET").and_then(|s| {
                let addr = match socket_addr(&s.to_string_lossy()) {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!("ignoring NOTIFY_SOCKET {s:?}: {e}");
                        return None;
                    }
                };
                // Non-blocking: a manager that does not read (a full queue) must cost a lost
                // status line, never a stuck agent.
                match std::os::unix::net::UnixDatagram::unbound()
                    .and_then(|sock| sock.set_nonblocking(true).map(|()| sock))
                {
                    Ok(sock) => Some((sock, addr)),
                    Err(e) => {
                        tracing::warn!("cannot create the notify socket: {e}");
                        None
                    }
                }
            });
            Notifier { target, watchdog }
        }
        #[cfg(not(unix))]
        {
            Notifier { watchdog }
        }
    }

    /// Sends one message (newline-separated `KEY=value` assignments). Failures are logged, never
    /// fatal: the agent works the same without a service manager.
    pub fn send(&self, message: &str) {
        #[cfg(unix)]
        if let Some((sock, addr)) = &self.target {
            if let Err(e) = sock.send_to_addr(message.as_bytes(), addr) {
                tracing::debug!("sd_notify failed: {e}");
            }
        }
        #[cfg(not(unix))]
        let _ = message;
    }

    /// The service is up; `status` is what `systemctl status` shows.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={}", one_line(status)));
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=stopping");
    }

    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    /// How often to send `WATCHDOG=1`: half the manager's timeout, or `None` when there is no
    /// watchdog for this process.
    pub fn watchdog_every(&self) -> Option<Duration> {
        self.watchdog
    }
}

/// Half of `WATCHDOG_USEC` when the watchdog is meant for process `own_pid` (`WATCHDOG_PID`
/// unset or equal to it).
pub fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok()? != own_pid {
            return None;
        }
    }
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    Some(Duration::from_micros(usec / 2))
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// The address in `$NOTIFY_SOCKET`: a path, or `@name` for a Linux abstract socket.
#[cfg(unix)]
fn socket_addr(s: &str) -> std::io::Result<std::os::unix::net::SocketAddr> {
    if let Some(name) = s.strip_prefix('@') {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            use std::os::linux::net::SocketAddrExt;
            return std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes());
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            let _ = name;
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "abstract sockets exist on Linux only",
            ));
        }
    }
    if !s.starts_with('/') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "neither an absolute path nor an abstract socket name",
        ));
    }
    std::os::unix::net::SocketAddr::from_pathname(s)
}

/// Whether stderr is the journal: systemd sets `$JOURNAL_STREAM` to the `device:inode` of the
/// stream it connected, which a redirected stderr no longer matches.
pub fn stderr_is_journal() -> bool {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt;
        let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
            return false;
        };
        // /proc/self/fd/2 stats the descriptor's target, sockets included.
        match std::fs::metadata("/proc/self/fd/2") {
            Ok(m) => journal_stream_is(&value.to_string_lossy(), m.dev(), m.ino()),
            Err(_) => false,
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// Whether a `$JOURNAL_STREAM` value names this device and inode.
#[cfg(any(target_os = "linux", test))]
pub fn journal_stream_is(value: &str, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = value.trim().split_once(':') else {
        return false;
    };
    d.parse::<u64>().ok() == Some(dev) && i.parse::<u64>().ok() == Some(ino)
}

/// Log lines for the journal: `<priority>message fields`, no timestamp (the journal adds one)
/// and no colour. The `<N>` prefix is the syslog priority the journal files the line under,
/// so `journalctl -p warning -u mailmend` finds the agent's warnings.
pub struct JournalFormat;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for JournalFormat
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        write!(writer, "<{}>", priority(*event.metadata().level()))?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// The syslog priority of a tracing level.
pub fn priority(level: tracing::Level) -> u8 {
    match level {
        tracing::Level::ERROR => 3,
        tracing::Level::WARN => 4,
        tracing::Level::INFO => 6,
        _ => 7,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_is_half_the_timeout_and_only_for_this_process() {
        assert_eq!(
            watchdog_interval(Some("30000000"), None, 42),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            watchdog_interval(Some("30000000"), Some("42"), 42),
            Some(Duration::from_secs(15))
        );
        assert_eq!(watchdog_interval(Some("30000000"), Some("41"), 42), None);
        assert_eq!(watchdog_interval(None, None, 42), None);
        assert_eq!(watchdog_interval(Some("0"), None, 42), None);
        assert_eq!(watchdog_interval(Some("soon"), None, 42), None);
    }

    #[test]
    fn journal_stream_must_match_device_and_inode() {
        assert!(journal_stream_is("8:12345", 8, 12345));
        assert!(!journal_stream_is("8:12345", 8, 1));
        assert!(!journal_stream_is("garbage", 8, 12345));
    }

    #[test]
    fn priorities_follow_syslog() {
        assert_eq!(priority(tracing::Level::ERROR), 3);
        assert_eq!(priority(tracing::Level::WARN), 4);
        assert_eq!(priority(tracing::Level::INFO), 6);
        assert_eq!(priority(tracing::Level::TRACE), 7);
    }

    #[cfg(unix)]
    #[test]
    fn notifier_sends_ready_and_status_as_one_datagram_each() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let rx = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        let n = Notifier {
            target: Some((
                std::os::unix::net::UnixDatagram::unbound().unwrap(),
                socket_addr(path.to_str().unwrap()).unwrap(),
            )),
            watchdog: None,
        };
        n.ready("watching\n2 accounts");
        n.stopping();
        let mut buf = [0u8; 256];
        let k = rx.recv(&mut buf).unwrap();
        assert_eq!(
            std::str::from_utf8(&buf[..k]).unwrap(),
            "READY=1\nSTATUS=watching 2 accounts"
        );
        let k = rx.recv(&mut buf).unwrap();
        assert_eq!(
            std::str::from_utf8(&buf[..k]).unwrap(),
            "STOPPING=1\nSTATUS=stopping"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_manager_that_does_not_read_never_blocks_the_agent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let _rx = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        std::env::set_var("NOTIFY_SOCKET", &path);
        let n = Notifier::from_env();
        std::env::remove_var("NOTIFY_SOCKET");
        let started = std::time::Instant::now();
        // Far more than the kernel queues for an unread datagram socket (10 by default).
        for i in 0..200 {
            n.status(&format!("pass {i}"));
        }
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[cfg(unix)]
    #[test]
    fn notify_socket_must_be_absolute_or_abstract() {
        assert!(socket_addr("relative/sock").is_err());
        assert!(socket_addr("/run/systemd/notify").is_ok());
        #[cfg(target_os = "linux")]
        assert!(socket_addr("@mailmend-test").is_ok());
    }
}
