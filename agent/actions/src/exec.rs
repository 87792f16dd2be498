//! The thin process-running layer: find a program, run it with a time limit, optionally (on
//! Unix) as another user, and collect what it printed. Everything that decides what to run is
//! elsewhere.

// Not every platform's performers use every helper (Windows runs no command as another user).
#![allow(dead_code)]

use mailmend_executor::PerformError;
use std::io::{self, Read, Write};
#[cfg(unix)]
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Where system tools live even when the agent runs with a short PATH (a service unit's).
#[cfg(unix)]
const SYSTEM_DIRS: [&str; 6] = [
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// The PATH given to commands run with a cleared environment.
#[cfg(unix)]
pub(crate) const SAFE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Finds an executable: a name with a slash is taken as a path, a bare name is looked up in
/// PATH and then in the usual system directories.
#[cfg(unix)]
pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exec = |p: &Path| {
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_exec(&p).then_some(p);
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .filter(|d| !d.is_empty())
        .chain(SYSTEM_DIRS)
        .map(|d| Path::new(d).join(name))
        .find(|p| is_exec(p));
    found
}

/// Finds an executable: a name with a path separator is taken as a path; a bare name (`.exe`
/// added when it has no extension) is looked up in the system directory first, so that a
/// program of the same name earlier in PATH cannot stand in for a system tool, and then in PATH.
#[cfg(windows)]
pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    let is_file = |p: &Path| p.metadata().map(|m| m.is_file()).unwrap_or(false);
    if name.contains(['\\', '/']) {
        let p = PathBuf::from(name);
        return is_file(&p).then_some(p);
    }
    let file = if Path::new(name).extension().is_some() {
        name.to_string()
    } else {
        format!("{name}.exe")
    };
    let system_root = std::env::var("SystemRoot").unwrap_or_else(|_| r"C:\Windows".to_string());
    let system32 = Path::new(&system_root).join("System32");
    let path = std::env::var("PATH").unwrap_or_default();
    let found = std::iter::once(system32)
        .chain(path.split(';').filter(|d| !d.is_empty()).map(PathBuf::from))
        .map(|d| d.join(&file))
        .find(|p| is_file(p));
    found
}

/// One command to run.
#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub stdin: Option<Vec<u8>>,
    /// Variables to set; with `clean_env` the only ones besides PATH.
    pub env: Vec<(String, String)>,
    pub clean_env: bool,
    /// Run as this uid and gid (supplementary groups are dropped by the standard library when
    /// root sets a uid).
    #[cfg(unix)]
    pub user: Option<(u32, u32)>,
    pub timeout: Duration,
    /// Bytes kept of stdout and of stderr each; the rest is read and dropped, so that a
    /// program run as a user (who controls what it talks to) cannot fill the agent's memory.
    pub max_output: usize,
}

impl Cmd {
    pub fn new(program: PathBuf, args: Vec<String>) -> Cmd {
        Cmd {
            program,
            args,
            stdin: None,
            env: Vec::new(),
            clean_env: false,
            #[cfg(unix)]
            user: None,
            timeout: Duration::from_secs(20),
            max_output: 64 << 20,
        }
    }

    /// The command line, for error messages.
    pub fn describe(&self) -> String {
        let mut s = self.program.display().to_string();
        for a in &self.args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }
}

/// What a command printed and how it ended.
#[derive(Debug, Clone)]
pub(crate) struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// A short description of a failure: the exit code and the first lines of stderr.
    pub fn failure(&self) -> String {
        let mut err: String = self.stderr.trim().chars().take(600).collect();
        if err.is_empty() {
            err = self.stdout.trim().chars().take(300).collect();
        }
        match self.code {
            Some(c) => format!("exit status {c}: {err}"),
            None => format!("killed by a signal: {err}"),
        }
    }
}

/// Runs the command to completion or until its time limit, when it is killed.
pub(crate) fn run(cmd: &Cmd) -> io::Result<Output> {
    let mut c = Command::new(&cmd.program);
    c.args(&cmd.args)
        .stdin(if cmd.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    {
        c.current_dir("/");
        if cmd.clean_env {
            c.env_clear().env("PATH", SAFE_PATH);
        }
        if let Some((uid, gid)) = cmd.user {
            c.uid(uid).gid(gid);
        }
    }
    #[cfg(windows)]
    {
        use std::os::windows::process::CommandExt;
        /// No console window flashes up on the user's desktop.
        const CREATE_NO_WINDOW: u32 = 0x0800_0000;
        c.creation_flags(CREATE_NO_WINDOW);
        if cmd.clean_env {
            // Windows programs need SystemRoot to start at all.
            let keep: Vec<(String, String)> = ["SystemRoot", "windir", "PATH"]
                .iter()
                .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
                .collect();
            c.env_clear().envs(keep);
        }
    }
    for (k, v) in &cmd.env {
        c.env(k, v);
    }
    let mut child = c.spawn()?;
    let stdin = child.stdin.take();
    let input = cmd.stdin.clone();
    let writer = thread::spawn(move || {
        if let (Some(mut w), Some(data)) = (stdin, input) {
            // A command that exits without reading its input closes the pipe; its exit status
            // tells what went wrong, so a write error here adds nothing.
            let _ = w.write_all(&data);
        }
    });
    let mut out_pipe = child.stdout.take();
    let mut err_pipe = child.stderr.take();
    let max = cmd.max_output;
    let out_reader = thread::spawn(move || read_all(out_pipe.as_mut(), max));
    let err_reader = thread::spawn(move || read_all(err_pipe.as_mut(), max));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break Some(s);
        }
        if start.elapsed() >= cmd.timeout {
            // Our own child, ended by its handle.
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(5));
    };
    let _ = writer.join();
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    match status {
        Some(s) => Ok(Output {
            code: s.code(),
            stdout,
            stderr,
        }),
        None => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{} did not finish within {:?}", cmd.describe(), cmd.timeout),
        )),
    }
}

fn read_all<R: Read>(r: Option<&mut R>, max: usize) -> String {
    let mut buf = Vec::new();
    if let Some(r) = r {
        let mut chunk = [0u8; 8192];
        loop {
            match r.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    let room = max.saturating_sub(buf.len());
                    buf.extend_from_slice(&chunk[..n.min(room)]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Runs a command and turns a spawn error or time-out into a performer error.
pub(crate) fn run_or_fail(cmd: &Cmd) -> Result<Output, PerformError> {
    run(cmd).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => {
            PerformError::Unavailable(format!("{} is not installed", cmd.program.display()))
        }
        _ => PerformError::Failed(format!("cannot run {}: {e}", cmd.describe())),
    })
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_command_that_hangs_is_killed_at_its_time_limit() {
        let mut c = Cmd::new(find_program("sleep").unwrap(), vec!["5".into()]);
        c.timeout = Duration::from_millis(200);
        let t = Instant::now();
        let e = run(&c).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(t.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn input_is_written_and_output_collected() {
        let mut c = Cmd::new(find_program("cat").unwrap(), vec![]);
        c.stdin = Some(b"hello".to_vec());
        let o = run(&c).unwrap();
        assert!(o.success());
        assert_eq!(o.stdout, "hello");
    }

    #[test]
    fn a_cleared_environment_keeps_only_path_and_what_is_set() {
        let mut c = Cmd::new(find_program("env").unwrap(), vec![]);
        c.clean_env = true;
        c.env.push(("KRB5CCNAME".into(), "FILE:/x".into()));
        let o = run(&c).unwrap();
        let mut lines: Vec<&str> = o.stdout.lines().collect();
        lines.sort();
        assert_eq!(
            lines,
            vec!["KRB5CCNAME=FILE:/x", &format!("PATH={SAFE_PATH}")]
        );
    }

    #[test]
    fn output_beyond_the_limit_is_dropped_and_the_program_still_finishes() {
        let mut c = Cmd::new(
            find_program("sh").unwrap(),
            vec![
                "-c".into(),
                "head -c 1000000 /dev/zero | tr '\\0' x; echo done >&2".into(),
            ],
        );
        c.max_output = 1000;
        let o = run(&c).unwrap();
        assert!(o.success());
        assert_eq!(o.stdout.len(), 1000);
        assert_eq!(o.stderr, "done\n");
    }

    #[test]
    fn missing_programs_are_not_found() {
        assert!(find_program("mailmend-no-such-tool").is_none());
        assert!(find_program("/nonexistent/nft").is_none());
        assert!(find_program("sh").is_some());
    }
}
