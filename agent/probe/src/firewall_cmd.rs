//! Reading the local firewall: runs `nft -j list ruleset` (or, without nftables, `iptables -S`
//! / `ip6tables -S`) with a time limit and hands the listing to the pure evaluator.

use crate::firewall::{self, Evaluation};
use mailmend_core::FirewallVerdict;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// The most output read from a firewall tool; a real ruleset is far smaller.
const MAX_OUTPUT_BYTES: usize = 16 << 20;

/// What the local firewall does with outbound TCP to `addr:port`.
pub(crate) async fn verdict(addr: IpAddr, port: u16, timeout: Duration) -> FirewallVerdict {
    let nft_problem = match run("nft", &["-j", "list", "ruleset"], timeout).await {
        Ok(json) => match firewall::evaluate_nft(&json, addr, port) {
            Ok(evaluation) => return to_verdict("nftables", evaluation),
            Err(e) => e.to_string(),
        },
        Err(e) => e,
    };
    let tool = if addr.is_ipv4() {
        "iptables"
    } else {
        "ip6tables"
    };
    match run(tool, &["-w", "2", "-S"], timeout).await {
        Ok(listing) => to_verdict(
            tool,
            firewall::evaluate_iptables(&listing, tool, addr, port),
        ),
        Err(ipt_problem) => FirewallVerdict::Unknown {
            detail: format!("{nft_problem}; {ipt_problem}"),
        },
    }
}

fn to_verdict(backend: &str, evaluation: Evaluation) -> FirewallVerdict {
    match evaluation {
        Evaluation::Allowed => FirewallVerdict::Allowed {
            backend: backend.to_string(),
        },
        Evaluation::Blocked(rule) => FirewallVerdict::Blocked {
            backend: backend.to_string(),
            rule,
        },
        Evaluation::Uncertain(detail) => FirewallVerdict::Unknown {
            detail: format!("{backend}: {detail}"),
        },
    }
}

/// The tool's path: the usual system directories first, as the agent may run with a short
/// PATH, then PATH itself.
fn tool_path(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        let path = PathBuf::from(dir).join(name);
        if path.is_file() {
            return path;
        }
    }
    PathBuf::from(name)
}

/// Runs a tool and returns its standard output, or why that failed, in words.
async fn run(name: &str, args: &[&str], timeout: Duration) -> Result<String, String> {
    let mut command = Command::new(tool_path(name));
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = match tokio::time::timeout(timeout, command.output()).await {
        Err(_) => {
            return Err(format!(
                "{name} did not finish within {} ms",
                timeout.as_millis()
            ))
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("{name} is not installed"))
        }
        Ok(Err(e)) => return Err(format!("cannot run {name}: {e}")),
        Ok(Ok(output)) => output,
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = stderr.lines().next().unwrap_or_default().trim();
        return Err(format!("{name} failed ({}): {first}", output.status));
    }
    if output.stdout.len() > MAX_OUTPUT_BYTES {
        return Err(format!("{name} printed more than {MAX_OUTPUT_BYTES} bytes"));
    }
    String::from_utf8(output.stdout).map_err(|_| format!("{name} printed invalid UTF-8"))
}
