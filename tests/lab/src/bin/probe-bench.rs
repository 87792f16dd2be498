//! `probe-bench`: issue 4's performance benchmark. Times the real `mailmend check` in the lab
//! with an emulated network delay and prints each figure against the round-trip time and the
//! issue's targets. It reports and never gates: it exits 0 whenever it could measure.

#[path = "../delay/mod.rs"]
mod delay;

use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use mailmend_lab::Lab;
use serde_json::Value;

use delay::report::{self, Stats, Target, Timeline};
use delay::runner::{self, Run};
use delay::NetDelay;

const LONG_ABOUT: &str = "\
Issue 4's performance benchmark: times the real `mailmend check --json` in the lab, with an
emulated network delay on the client → server path, and prints each figure against the
round-trip time (RTT) and the issue's targets.

Run it as root, after building mailmend in release mode:

  cargo build --release -p mailmend
  cargo run --release -p mailmend-lab --bin probe-bench

Scenarios (one Thunderbird account, IMAP + SMTP, the lab CA trusted by the policy):
  healthy   IMAP 993 + SMTP 465, both fine
  broken    IMAP configured on port 1993, where nothing listens: the working settings must be
            discovered
  dropped   the healthy account with an nft rule in the client namespace silently dropping
            port 993; the policy's connect_timeout_ms is --connect-timeout-ms

Targets (issue 4):
  healthy   at most 5×RTT + 50 ms
  broken    at most 6×RTT + 100 ms (discovery probes in parallel, not one after another)
  dropped   one connect timeout, never the sum of several: at most 1×timeout + 6×RTT + 100 ms

How the delay is made: this kernel has no netem, so the client namespace gets
`iptables -t mangle -A OUTPUT -d <lab /24> -j NFQUEUE --queue-num N`, and this same binary,
re-executed inside the namespace as a hidden `delayer` subcommand (nfq crate), holds each packet
for the delay and then accepts it, in order. Server → client is not delayed, so one round trip
costs the delay once. The RTT is the median TCP connect time to the mail server (SYN, SYN-ACK)
from the client namespace.

Timing: each run is timed from inside the client namespace (a hidden `in-ns run` helper), so
`ip netns exec` is not counted, but mailmend's own start-up is: that is what a user waits for.
First every scenario runs without the added delay (the baseline, unless --no-baseline), then
with it; `RTTs` is (wall with delay − wall without) / (RTT with − RTT without): the number of
round trips the check waits for one after another. One more run with -vv gives mailmend's own
figures: when its first log line appeared, each probe's start, end and elapsed_ms, and how many
probes ran at once.

The exit status is 0 whenever measuring worked, also when a target is missed (marked FAIL);
it is 1 when the lab or the delay could not be set up. A full run takes about 40 s;
`mailmend-lab cleanup` removes what an interrupted run left behind.";

#[derive(Parser, Debug)]
#[command(name = "probe-bench", about = "Time mailmend check in the lab against issue 4's targets", long_about = LONG_ABOUT)]
struct Cli {
    #[command(subcommand)]
    helper: Option<Helper>,
    /// Delay added to every client → server packet, in milliseconds (1-2000)
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=2000))]
    delay_ms: u64,
    /// Timed runs per scenario (median, min and max are reported)
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// The policy's probes.connect_timeout_ms in every scenario
    #[arg(long, default_value_t = 2000)]
    connect_timeout_ms: u64,
    /// TCP connects used to measure the round-trip time (the median is used)
    #[arg(long, default_value_t = 10)]
    rtt_samples: usize,
    /// NFQUEUE queue number inside the client namespace
    #[arg(long, default_value_t = 7)]
    queue_num: u16,
    /// The mailmend binary (default: MAILMEND_BIN, else the mailmend beside this binary)
    #[arg(long, value_name = "PATH")]
    mailmend: Option<PathBuf>,
    /// Skip the runs without added delay
    #[arg(long)]
    no_baseline: bool,
    /// Only these scenarios (healthy, broken, dropped); repeatable
    #[arg(long = "scenario", value_name = "NAME")]
    scenarios: Vec<String>,
    /// Also print mailmend's -vv log (its own lines and rustls', not hickory's) of each run
    /// with -vv
    #[arg(long)]
    log: bool,
}

#[derive(Subcommand, Debug)]
enum Helper {
    /// Hold every packet of NFQUEUE --queue for --delay-ms, then accept it (runs in the
    /// client namespace)
    #[command(hide = true)]
    Delayer {
        #[arg(long)]
        queue: u16,
        #[arg(long)]
        delay_ms: u64,
    },
    /// Measuring helpers run inside the client namespace
    #[command(hide = true, subcommand)]
    InNs(InNs),
}

#[derive(Subcommand, Debug)]
enum InNs {
    /// Run a command --runs times and print each run's timing and output as a JSON line
    Run {
        #[arg(long)]
        runs: usize,
        /// KEY=VALUE set in the command's environment; repeatable
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Print --count TCP connect times to --addr, in milliseconds
    Rtt {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long)]
        count: usize,
    },
}

fn main() {
    let cli = Cli::parse();
    let result = match &cli.helper {
        Some(Helper::Delayer { queue, delay_ms }) => run_delayer(*queue, *delay_ms),
        Some(Helper::InNs(InNs::Run { runs, env, command })) => {
            runner::print_timed_runs(&command[0], &command[1..], env, *runs)
        }
        Some(Helper::InNs(InNs::Rtt { addr, count })) => runner::print_connect_rtts(*addr, *count),
        None => bench(&cli),
    };
    if let Err(e) = result {
        eprintln!("probe-bench: {e:#}");
        std::process::exit(1);
    }
}

fn run_delayer(queue: u16, delay_ms: u64) -> Result<()> {
    // The delayer must not outlive the benchmark that started it, even one killed outright.
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and has no memory arguments.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    delay::queue::run(queue, Duration::from_millis(delay_ms), || {
        println!("{}", delay::READY_LINE);
    })
}

/// The log filter of the -vv run: debug, but not the DNS library's per-message lines.
const TRACE_FILTER: &str = "MAILMEND_LOG=debug,hickory_proto=info,hickory_resolver=info";

// ---- Scenarios ----

/// Thunderbird settings for the one account.
#[derive(Clone, Copy)]
struct Tb {
    imap_port: u16,
    /// Thunderbird's socketType: 3 is SSL/TLS.
    imap_socket: u8,
    smtp_port: u16,
    smtp_socket: u8,
}

const HEALTHY: Tb = Tb {
    imap_port: 993,
    imap_socket: 3,
    smtp_port: 465,
    smtp_socket: 3,
};

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Healthy,
    Broken,
    Dropped,
}

struct Scenario {
    name: &'static str,
    kind: Kind,
    tb: Tb,
    /// nft rule for the client's output chain while the scenario runs.
    nft: Option<&'static str>,
    target: Target,
    /// The exit status mailmend check should give (0 healthy, 1 findings).
    expect_code: i32,
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "healthy",
            kind: Kind::Healthy,
            tb: HEALTHY,
            nft: None,
            target: Target {
                rtts: 5.0,
                plus_ms: 50.0,
                timeouts: 0.0,
            },
            expect_code: 0,
        },
        Scenario {
            name: "broken",
            kind: Kind::Broken,
            tb: Tb {
                imap_port: 1993,
                ..HEALTHY
            },
            nft: None,
            target: Target {
                rtts: 6.0,
                plus_ms: 100.0,
                timeouts: 0.0,
            },
            expect_code: 1,
        },
        Scenario {
            name: "dropped",
            kind: Kind::Dropped,
            tb: HEALTHY,
            nft: Some("tcp dport 993 drop"),
            target: Target {
                rtts: 6.0,
                plus_ms: 100.0,
                timeouts: 1.0,
            },
            expect_code: 1,
        },
    ]
}

fn prefs_js(tb: &Tb) -> String {
    format!(
        r#"// Mozilla User Preferences

user_pref("mail.accountmanager.accounts", "account1,account2");
user_pref("mail.accountmanager.localfoldersserver", "server2");
user_pref("mail.account.account1.identities", "id1");
user_pref("mail.account.account1.server", "server1");
user_pref("mail.account.account2.server", "server2");
user_pref("mail.identity.id1.fullName", "Alice Liddell");
user_pref("mail.identity.id1.smtpServer", "smtp1");
user_pref("mail.identity.id1.useremail", "alice@example.com");
user_pref("mail.server.server1.authMethod", 3);
user_pref("mail.server.server1.hostname", "imap.example.com");
user_pref("mail.server.server1.name", "alice@example.com");
user_pref("mail.server.server1.port", {ip});
user_pref("mail.server.server1.socketType", {is});
user_pref("mail.server.server1.type", "imap");
user_pref("mail.server.server1.userName", "alice@example.com");
user_pref("mail.server.server2.hostname", "Local Folders");
user_pref("mail.server.server2.type", "none");
user_pref("mail.smtpserver.smtp1.authMethod", 3);
user_pref("mail.smtpserver.smtp1.hostname", "smtp.example.com");
user_pref("mail.smtpserver.smtp1.port", {sp});
user_pref("mail.smtpserver.smtp1.try_ssl", {ss});
user_pref("mail.smtpserver.smtp1.username", "alice@example.com");
user_pref("mail.smtpservers", "smtp1");
"#,
        ip = tb.imap_port,
        is = tb.imap_socket,
        sp = tb.smtp_port,
        ss = tb.smtp_socket,
    )
}

// ---- Measuring ----

/// Everything measured for one scenario at one delay.
struct Measured {
    runs: Vec<Run>,
    wall: Stats,
    /// The -vv run.
    traced: Run,
    timeline: Timeline,
    codes: Vec<String>,
}

/// One pass over the scenarios at one delay.
struct Phase {
    delay_ms: u64,
    rtt: Stats,
    results: Vec<Measured>,
}

struct Bench<'a> {
    lab: &'a Lab,
    exe: PathBuf,
    mailmend: PathBuf,
    home: PathBuf,
    prefs: PathBuf,
    policy: PathBuf,
    cli: &'a Cli,
}

impl Bench<'_> {
    fn mailmend_args(&self, verbose: bool) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "--home".into(),
            self.home.display().to_string(),
            "--state-dir".into(),
            self.lab.state_dir().display().to_string(),
            "--policy".into(),
            self.policy.display().to_string(),
        ];
        if verbose {
            a.push("-vv".into());
        }
        a.extend(["check".into(), "--json".into()]);
        a
    }

    fn rtt(&self) -> Result<Stats> {
        let addr = SocketAddr::from((self.lab.mail_ip(), 993));
        let v = runner::connect_rtts_in(
            &self.exe,
            self.lab.client_ns(),
            addr,
            self.cli.rtt_samples.max(1),
        )?;
        Stats::of(&v).context("no round-trip sample")
    }

    fn measure(&self, s: &Scenario) -> Result<Measured> {
        fs::write(&self.prefs, prefs_js(&s.tb))
            .with_context(|| format!("write {}", self.prefs.display()))?;
        if let Some(rule) = s.nft {
            self.lab.nft_client(rule)?;
        }
        let result = (|| {
            let ns = self.lab.client_ns();
            let runs = runner::timed_runs_in(
                &self.exe,
                ns,
                self.cli.runs.max(1),
                &[],
                &self.mailmend,
                &self.mailmend_args(false),
            )?;
            let traced = runner::timed_runs_in(
                &self.exe,
                ns,
                1,
                // The DNS library's per-message chatter would bury the probe sequence.
                &[TRACE_FILTER.to_string()],
                &self.mailmend,
                &self.mailmend_args(true),
            )?
            .remove(0);
            Ok::<_, anyhow::Error>((runs, traced))
        })();
        if s.nft.is_some() {
            self.lab.nft_client_flush()?;
        }
        let (runs, traced) = result?;
        let walls: Vec<f64> = runs.iter().map(Run::wall_ms).collect();
        let json: Value = runs
            .last()
            .and_then(|r| serde_json::from_str(&r.stdout).ok())
            .unwrap_or(Value::Null);
        Ok(Measured {
            wall: Stats::of(&walls).context("no run")?,
            timeline: report::timeline(&traced.stderr, traced.start_unix_us),
            codes: report::finding_codes(&json),
            traced,
            runs,
        })
    }

    fn phase(&self, delay_ms: u64, list: &[Scenario]) -> Result<Phase> {
        let rtt = self.rtt()?;
        eprintln!(
            "probe-bench: added delay {delay_ms} ms: RTT median {:.2} ms",
            rtt.median
        );
        let mut results = Vec::new();
        for s in list {
            let t0 = Instant::now();
            let m = self.measure(s)?;
            eprintln!(
                "probe-bench:   {:<8} wall median {:>8.1} ms ({} runs + 1 traced, {:.1} s)",
                s.name,
                m.wall.median,
                m.runs.len(),
                t0.elapsed().as_secs_f64()
            );
            results.push(m);
        }
        Ok(Phase {
            delay_ms,
            rtt,
            results,
        })
    }
}

fn find_mailmend(cli: &Cli) -> Result<PathBuf> {
    let candidate = cli
        .mailmend
        .clone()
        .or_else(|| std::env::var_os("MAILMEND_BIN").map(PathBuf::from))
        .or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|e| e.parent().map(|d| d.join("mailmend")))
        })
        .context("cannot tell where mailmend is: pass --mailmend PATH")?;
    if !candidate.is_file() {
        bail!(
            "no mailmend binary at {}: build it first (cargo build --release -p mailmend) or pass \
             --mailmend PATH",
            candidate.display()
        );
    }
    Ok(candidate)
}

fn bench(cli: &Cli) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("probe-bench needs root (network namespaces, iptables, NFQUEUE)");
    }
    let all = scenarios();
    for name in &cli.scenarios {
        if !all.iter().any(|s| s.name == name) {
            bail!("unknown scenario {name:?}: use healthy, broken or dropped");
        }
    }
    let list: Vec<Scenario> = all
        .into_iter()
        .filter(|s| cli.scenarios.is_empty() || cli.scenarios.iter().any(|n| n == s.name))
        .collect();
    let mailmend = find_mailmend(cli)?;
    let exe = std::env::current_exe().context("find this benchmark's own binary")?;
    let t_total = Instant::now();

    let lab = Lab::start().context("start the lab")?;
    let home = lab.home("alice")?;
    let profile = home.join(".thunderbird/k3x9.default-release");
    fs::create_dir_all(&profile)?;
    fs::write(
        home.join(".thunderbird/profiles.ini"),
        "[Profile0]\nName=default-release\nIsRelative=1\nPath=k3x9.default-release\nDefault=1\n\n\
         [General]\nStartWithLastProfile=1\nVersion=2\n",
    )?;
    let policy = lab.dir().join("policy.toml");
    fs::write(
        &policy,
        format!(
            "[tls]\nextra_ca_files = [\"{}\"]\n[probes]\nconnect_timeout_ms = {}\n",
            lab.ca_pem_path().display(),
            cli.connect_timeout_ms
        ),
    )?;
    let b = Bench {
        lab: &lab,
        exe: exe.clone(),
        mailmend: mailmend.clone(),
        prefs: profile.join("prefs.js"),
        home,
        policy,
        cli,
    };
    eprintln!(
        "probe-bench: lab {} started in {:.2} s; mailmend is {}",
        lab.id(),
        lab.startup_time().as_secs_f64(),
        mailmend.display()
    );

    let baseline = if cli.no_baseline {
        None
    } else {
        Some(b.phase(0, &list)?)
    };
    let net = lab_net(lab.mail_ip());
    let delayed = {
        let d = NetDelay::start(&exe, lab.client_ns(), net, cli.queue_num, cli.delay_ms)
            .context("set up the delay (NFQUEUE + delayer)")?;
        eprintln!(
            "probe-bench: delaying client → {net}/24 by {} ms (NFQUEUE {}, delayer pid {})",
            cli.delay_ms,
            cli.queue_num,
            d.pid()
        );
        let phase = b.phase(cli.delay_ms, &list);
        drop(d);
        phase?
    };
    // A delayer that let packets through unheld would make every figure look good.
    if delayed.rtt.median < cli.delay_ms as f64 * 0.9 {
        bail!(
            "the delay is not in force: RTT {:.2} ms with {} ms added; nothing measured is valid",
            delayed.rtt.median,
            cli.delay_ms
        );
    }
    let text = render(
        cli,
        &mailmend,
        &list,
        baseline.as_ref(),
        &delayed,
        t_total.elapsed(),
    );
    print!("{text}");
    Ok(())
}

/// The lab's /24 network address.
fn lab_net(ip: Ipv4Addr) -> Ipv4Addr {
    let o = ip.octets();
    Ipv4Addr::new(o[0], o[1], o[2], 0)
}

// ---- Output ----

fn ms(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

fn render(
    cli: &Cli,
    mailmend: &Path,
    list: &[Scenario],
    base: Option<&Phase>,
    d: &Phase,
    total: Duration,
) -> String {
    let mut out = String::new();
    let timeout = cli.connect_timeout_ms as f64;
    let rtt = d.rtt.median;
    let _ = writeln!(
        out,
        "\nmailmend probe benchmark (issue 4)\n\
         mailmend binary: {}\n\
         added delay {} ms on client → server (NFQUEUE); RTT = median of {} TCP connects: {} ms \
         (min {}, max {}){}\n\
         connect timeout (policy): {} ms; {} timed runs per scenario (+1 with -vv)\n",
        mailmend.display(),
        d.delay_ms,
        d.rtt.n,
        ms(rtt),
        ms(d.rtt.min),
        ms(d.rtt.max),
        base.map(|b| format!("; without the delay {} ms", ms(b.rtt.median)))
            .unwrap_or_default(),
        cli.connect_timeout_ms,
        cli.runs.max(1),
    );

    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for (i, s) in list.iter().enumerate() {
        let m = &d.results[i];
        let budget = s.target.budget_ms(rtt, timeout);
        let pass = m.wall.median <= budget;
        let base_m = base.map(|b| &b.results[i]);
        let added_rtts = base.zip(base_m).and_then(|(b, bm)| {
            let drtt = rtt - b.rtt.median;
            // Below a millisecond the difference is noise, not a round trip.
            (drtt >= 1.0).then(|| (m.wall.median - bm.wall.median) / drtt)
        });
        let over = m.wall.median - budget;
        let result = if pass {
            "pass".to_string()
        } else {
            failed.push(s.name);
            format!("FAIL (+{} ms)", ms(over))
        };
        let ratio = match s.kind {
            Kind::Dropped => format!(
                "{:.1}× RTT = {:.2}× timeout",
                m.wall.median / rtt,
                m.wall.median / timeout
            ),
            _ => format!("{:.1}× RTT", m.wall.median / rtt),
        };
        rows.push(vec![
            s.name.to_string(),
            format!(
                "{} ({}–{})",
                ms(m.wall.median),
                ms(m.wall.min),
                ms(m.wall.max)
            ),
            base_m.map(|bm| ms(bm.wall.median)).unwrap_or("-".into()),
            ms(rtt),
            ratio,
            added_rtts.map(|x| format!("{x:.1}")).unwrap_or("-".into()),
            format!("{} = {}", s.target.describe(), ms(budget)),
            result,
        ]);
    }
    out.push_str(&report::table(
        &[
            "SCENARIO",
            "WALL ms median (min–max)",
            "NO-DELAY ms",
            "RTT ms",
            "WALL / RTT",
            "RTTs",
            "TARGET ms",
            "RESULT",
        ],
        &rows,
    ));
    out.push_str(
        "WALL: spawn to exit of `mailmend check --json`, start-up included. NO-DELAY: the same \
         without the added delay.\nRTTs: (WALL − NO-DELAY) / (RTT − RTT without delay), the \
         round trips the check waits for one after another.\n",
    );

    // What mailmend itself says, from the -vv run.
    let _ = writeln!(
        out,
        "\nmailmend's own figures (the -vv run with the delay, ms after spawn; its --json \
         evidence carries no timings, so they come from the `probing`/`probed` debug lines):"
    );
    let mut rows = Vec::new();
    for (i, s) in list.iter().enumerate() {
        let m = &d.results[i];
        let t = &m.timeline;
        let max_elapsed = t.probes.iter().filter_map(|p| p.elapsed_ms).max();
        let last_probe_end = t.probes.iter().map(|p| p.end_ms).reduce(f64::max);
        let first_probe = t.probes.iter().map(|p| p.start_ms).reduce(f64::min);
        rows.push(vec![
            s.name.to_string(),
            ms(m.traced.wall_ms()),
            t.first_log_ms.map(ms).unwrap_or("-".into()),
            first_probe.map(ms).unwrap_or("-".into()),
            last_probe_end.map(ms).unwrap_or("-".into()),
            t.probes.len().to_string(),
            t.probe_span_ms()
                .map(|x| format!("{} ({:.1}× RTT)", ms(x), x / rtt))
                .unwrap_or("-".into()),
            t.parallelism()
                .map(|x| format!("{x:.1}"))
                .unwrap_or("-".into()),
            max_elapsed.map(|x| x.to_string()).unwrap_or("-".into()),
        ]);
    }
    out.push_str(&report::table(
        &[
            "SCENARIO",
            "WALL",
            "1ST LOG",
            "1ST PROBE",
            "LAST PROBE END",
            "PROBES",
            "PROBE SPAN",
            "AT ONCE",
            "MAX elapsed_ms",
        ],
        &rows,
    ));

    let _ = writeln!(
        out,
        "\nwhat each check reported (exit status, finding codes):"
    );
    for (i, s) in list.iter().enumerate() {
        for (label, m) in base
            .map(|b| ("no delay", &b.results[i]))
            .into_iter()
            .chain([("delay", &d.results[i])])
        {
            let unexpected = m.runs.iter().any(|r| r.code != Some(s.expect_code));
            let codes: Vec<String> = m
                .runs
                .iter()
                .map(|r| r.code.map_or("signal".to_string(), |c| c.to_string()))
                .collect();
            let _ = writeln!(
                out,
                "  {:<8} {:<8} exit {}{}; findings: {}",
                s.name,
                label,
                codes.join(" "),
                if unexpected {
                    format!(
                        " UNEXPECTED (want {}): timing not meaningful",
                        s.expect_code
                    )
                } else {
                    String::new()
                },
                if m.codes.is_empty() {
                    "none".to_string()
                } else {
                    m.codes.join(", ")
                }
            );
        }
    }

    for (i, s) in list.iter().enumerate() {
        for (label, phase) in base
            .map(|b| ("without the delay", b))
            .into_iter()
            .chain([("with the delay", d)])
        {
            let t = &phase.results[i].timeline;
            let _ = writeln!(
                out,
                "\n{} {label}: probes (ms after spawn; RTT {} ms; exit after {} ms)",
                s.name,
                ms(phase.rtt.median),
                ms(phase.results[i].traced.wall_ms()),
            );
            let mut probes = t.probes.clone();
            probes.sort_by(|a, b| a.start_ms.total_cmp(&b.start_ms));
            for p in &probes {
                let _ = writeln!(
                    out,
                    "  {:>7} → {:>7}  {:>5} ms  {:<6}  {}",
                    ms(p.start_ms),
                    ms(p.end_ms),
                    p.elapsed_ms.map(|e| e.to_string()).unwrap_or("?".into()),
                    match p.healthy {
                        Some(true) => "ok",
                        Some(false) => "failed",
                        None => "?",
                    },
                    p.target
                );
            }
            if probes.is_empty() {
                let _ = writeln!(out, "  (no probe lines in the -vv log)");
            }
            if cli.log {
                let _ = writeln!(out, "  full -vv log:");
                for (at, level, text) in &t.events {
                    let _ = writeln!(out, "  {:>8}  {:<5} {}", ms(*at), level, text);
                }
            }
        }
    }

    let _ = writeln!(
        out,
        "\n{} (benchmark took {:.1} s)",
        if failed.is_empty() {
            "every target met".to_string()
        } else {
            format!("TARGET MISSED: {}", failed.join(", "))
        },
        total.as_secs_f64()
    );
    out
}
