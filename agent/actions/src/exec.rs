//! The thin process-running layer: find a program, run it with a time limit, optionally as
//! another user, and collect what it printed. Everything that decides what to run is elsewhere.

use mailmend_executor::PerformError;
use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Where system tools live even when the agent runs with a short PATH (a service unit's).
const SYSTEM_DIRS: [&str; 6] = [
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// The PATH given to commands run with a cleared environment.
pub(crate) const SAFE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Finds an executable: a name with a slash is taken as a path, a bare name is looked up in
/// PATH and then in the usual system directories.
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
    pub user: Option<(u32, u32)>,
    pub timeout: Duration,
}

impl Cmd {
    pub fn new(program: PathBuf, args: Vec<String>) -> Cmd {
        Cmd {
            program,
            args,
            stdin: None,
            env: Vec::new(),
            clean_env: false,
            user: None,
            timeout: Duration::from_secs(20),
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
        .stderr(Stdio::piped())
        .current_dir("/");
    if cmd.clean_env {
        c.env_clear().env("PATH", SAFE_PATH);
    }
    for (k, v) in &cmd.env {
        c.env(k, v);
    }
    if let Some((uid, gid)) = cmd.user {
        c.uid(uid).gid(gid);
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
    let out_reader = thread::spawn(move || read_all(out_pipe.as_mut()));
    let err_reader = thread::spawn(move || read_all(err_pipe.as_mut()));
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

fn read_all<R: Read>(r: Option<&mut R>) -> String {
    let mut buf = Vec::new();
    if let Some(r) = r {
        let _ = r.read_to_end(&mut buf);
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

#[cfg(test)]
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
    fn missing_programs_are_not_found() {
        assert!(find_program("mailmend-no-such-tool").is_none());
        assert!(find_program("/nonexistent/nft").is_none());
        assert!(find_program("sh").is_some());
    }
}
