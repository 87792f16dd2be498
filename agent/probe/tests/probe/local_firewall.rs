//! The firewall evaluator against real nftables rulesets, loaded into a network namespace this
//! test creates (and deletes), and checked against what the kernel really does with a connect
//! inside that namespace. Also `RealProber::local_firewall` on this machine's own ruleset.

use mailmend_core::{FirewallVerdict, Prober};
use mailmend_probe::firewall::{evaluate_nft, Evaluation};
use mailmend_probe::{ProbeConfig, RealProber};
use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// A network namespace, deleted when dropped.
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "mmfw{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let out = run("ip", &["netns", "add", &name], None);
        assert!(out.status.success(), "ip netns add: {}", text(&out.stderr));
        let ns = Netns(name);
        ns.exec(&["ip", "link", "set", "lo", "up"], None);
        ns
    }

    fn exec(&self, args: &[&str], stdin: Option<&str>) -> String {
        let mut all = vec!["netns", "exec", self.0.as_str()];
        all.extend_from_slice(args);
        let out = run("ip", &all, stdin);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    }

    fn load(&self, ruleset: &str) -> String {
        self.exec(&["nft", "-f", "-"], Some(ruleset));
        self.exec(&["nft", "-j", "list", "ruleset"], None)
    }

    /// Whether a TCP connect from inside the namespace to `addr:port`, where a listener waits,
    /// completes within half a second: what the kernel really does.
    fn connects(&self, addr: &str, port: u16) -> bool {
        let script = format!(
            "import socket\nl = socket.socket()\nl.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\nl.bind(('{addr}', {port}))\nl.listen()\nc = socket.socket()\nc.settimeout(0.5)\ntry:\n    c.connect(('{addr}', {port}))\n    print('connected')\nexcept OSError as e:\n    print('failed', e)\n"
        );
        self.exec(&["python3", "-c", &script], None)
            .starts_with("connected")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "delete", &self.0], None);
    }
}

fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e} (iproute2 and nftables needed)"));
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn eval(json: &str, addr: &str, port: u16) -> Evaluation {
    evaluate_nft(json, addr.parse::<IpAddr>().unwrap(), port).unwrap()
}

/// Loopback traffic is what a test may send; the rules address it explicitly, without the
/// usual `oifname "lo" accept`.
const RULESET: &str = r#"
table inet mail {
  set blocked_hosts { type ipv4_addr; flags interval; elements = { 127.0.9.0/24 } }
  chain output {
    type filter hook output priority 0; policy accept;
    ip daddr 127.0.9.9 tcp dport 2993 accept
    ip daddr @blocked_hosts tcp dport { 2993, 2995 } drop
    ip daddr 127.0.8.8 tcp dport 2000-2100 reject with tcp reset
  }
}
table ip other {
  chain output {
    type filter hook output priority 10; policy accept;
    ip daddr 127.0.7.7 tcp dport 2465 counter drop
  }
}
table inet permissive {
  chain output {
    type filter hook output priority -10; policy accept;
    ip daddr 127.0.7.7 accept
  }
}
"#;

/// An address, a port, and the table and action expected to block it (none: allowed).
type Case = (&'static str, u16, Option<(&'static str, &'static str)>);

#[test]
fn the_evaluator_agrees_with_the_kernel_on_a_real_ruleset() {
    let ns = Netns::new();
    let json = ns.load(RULESET);
    let cases: [Case; 6] = [
        ("127.0.9.1", 2993, Some(("mail", "drop"))),
        ("127.0.9.9", 2993, None),
        ("127.0.9.9", 2995, Some(("mail", "drop"))),
        ("127.0.8.8", 2050, Some(("mail", "reject"))),
        // LAB-NOTES pitfall 8: the permissive table's accept does not save it.
        ("127.0.7.7", 2465, Some(("other", "drop"))),
        ("127.0.7.7", 2587, None),
    ];
    for (addr, port, expected) in cases {
        let evaluation = eval(&json, addr, port);
        let kernel_lets_through = ns.connects(addr, port);
        match expected {
            Some((table, action)) => {
                let Evaluation::Blocked(rule) = &evaluation else {
                    panic!("{addr}:{port}: expected blocked, got {evaluation:?}");
                };
                assert_eq!(rule.table, table, "{addr}:{port}");
                assert_eq!(rule.action, action, "{addr}:{port}");
                assert!(rule.handle.is_some());
                assert!(
                    !kernel_lets_through,
                    "{addr}:{port}: the kernel let it through"
                );
            }
            None => {
                assert_eq!(evaluation, Evaluation::Allowed, "{addr}:{port}");
                assert!(kernel_lets_through, "{addr}:{port}: the kernel blocked it");
            }
        }
    }
}

#[test]
fn the_reported_handle_is_the_rules_handle_in_nft_listing() {
    let ns = Netns::new();
    let json = ns.load(RULESET);
    let Evaluation::Blocked(rule) = eval(&json, "127.0.8.8", 2001) else {
        panic!("not blocked");
    };
    let listing = ns.exec(
        &["nft", "-a", "list", "chain", "inet", "mail", "output"],
        None,
    );
    let line = listing
        .lines()
        .find(|l| {
            l.trim_end()
                .ends_with(&format!("# handle {}", rule.handle.unwrap()))
        })
        .unwrap_or_else(|| panic!("handle {:?} not in\n{listing}", rule.handle));
    assert!(line.contains("reject with tcp reset"), "{line}");
    assert_eq!(
        rule.text,
        "ip daddr 127.0.8.8 tcp dport 2000-2100 reject with tcp reset"
    );
}

#[test]
fn a_policy_drop_chain_blocks_in_the_kernel_and_in_the_evaluator() {
    let ns = Netns::new();
    let json = ns.load(
        "table inet strict {
 chain output {
  type filter hook output priority 0; policy drop;
  ct state established,related accept
  tcp dport 2587 accept
 }
}
",
    );
    let Evaluation::Blocked(rule) = eval(&json, "127.0.0.1", 2993) else {
        panic!("not blocked");
    };
    assert_eq!(rule.handle, None);
    assert!(!ns.connects("127.0.0.1", 2993));
    assert_eq!(eval(&json, "127.0.0.1", 2587), Evaluation::Allowed);
    assert!(ns.connects("127.0.0.1", 2587));
}

#[tokio::test]
async fn real_prober_reads_this_machines_ruleset_with_nft() {
    let prober = RealProber::new(ProbeConfig::default()).unwrap();
    match prober
        .local_firewall("127.0.0.1".parse().unwrap(), 993)
        .await
    {
        FirewallVerdict::Allowed { backend } | FirewallVerdict::Blocked { backend, .. } => {
            assert_eq!(backend, "nftables")
        }
        FirewallVerdict::Unknown { detail } => panic!("the ruleset was not read: {detail}"),
    }
}
