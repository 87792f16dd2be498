//! TCP connect over all of a host's addresses, "happy eyeballs" style (RFC 8305, simplified).
//!
//! Addresses are interleaved by family, IPv6 first. The first attempt starts at once; the next
//! one starts when the previous attempt failed or after [`ATTEMPT_DELAY`], whichever comes first;
//! the first success wins and the other attempts are dropped. All attempts together are bounded
//! by one `connect_timeout`, not by the sum.
//!
//! When every attempt fails, the most informative outcome is reported, in this order:
//! `Refused` (the host answered, definitely: nothing listens, or a REJECT rule), then `TimedOut`
//! (what a DROP firewall looks like), then `Unreachable` (most often just a missing IPv6 route
//! on an IPv4-only network, so it must not hide an IPv4 timeout), then `Failed`. Among equals the
//! address tried first wins.

use mailmend_core::TcpOutcome;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How long an attempt gets before the next address is tried in parallel (RFC 8305 section 5).
pub(crate) const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Orders addresses for connecting: IPv6 and IPv4 alternate, IPv6 first, each family in the
/// resolver's order.
pub(crate) fn interleave(addresses: &[IpAddr], port: u16) -> Vec<SocketAddr> {
    let v6: Vec<&IpAddr> = addresses.iter().filter(|a| a.is_ipv6()).collect();
    let v4: Vec<&IpAddr> = addresses.iter().filter(|a| a.is_ipv4()).collect();
    let mut out = Vec::with_capacity(addresses.len());
    for i in 0..v6.len().max(v4.len()) {
        if let Some(a) = v6.get(i) {
            out.push(SocketAddr::new(**a, port));
        }
        if let Some(a) = v4.get(i) {
            out.push(SocketAddr::new(**a, port));
        }
    }
    out
}

/// How informative a failed outcome is; higher wins.
fn rank(outcome: &TcpOutcome) -> u8 {
    match outcome {
        TcpOutcome::Refused { .. } => 4,
        TcpOutcome::TimedOut { .. } => 3,
        TcpOutcome::Unreachable { .. } => 2,
        TcpOutcome::Failed { .. } => 1,
        TcpOutcome::Connected { .. } | TcpOutcome::NotResolved => 0,
    }
}

/// Maps a connect error to an outcome.
pub(crate) fn classify(address: SocketAddr, e: &io::Error) -> TcpOutcome {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => TcpOutcome::Refused { address },
        io::ErrorKind::TimedOut => TcpOutcome::TimedOut { address },
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
            TcpOutcome::Unreachable {
                address,
                detail: e.to_string(),
            }
        }
        // No local address of that family (IPv6 disabled): the address cannot be reached from
        // here, which is what Unreachable means to the user.
        io::ErrorKind::AddrNotAvailable => TcpOutcome::Unreachable {
            address,
            detail: e.to_string(),
        },
        _ => TcpOutcome::Failed {
            detail: format!("{address}: {e}"),
        },
    }
}

/// Connects to the first address that answers, within `timeout` for all of them.
pub(crate) async fn connect(
    addresses: Vec<SocketAddr>,
    timeout: Duration,
) -> (Option<TcpStream>, TcpOutcome) {
    if addresses.is_empty() {
        return (None, TcpOutcome::NotResolved);
    }
    let deadline = Instant::now() + timeout;
    let mut attempts: JoinSet<(SocketAddr, io::Result<TcpStream>)> = JoinSet::new();
    let mut next = 0usize;
    let mut next_start = Instant::now();
    // The best failure so far, with the index of its address for tie-breaking.
    let mut best: Option<(usize, TcpOutcome)> = None;
    // Which attempts have finished (failed), to know which ones the deadline cut short.
    let mut finished = vec![false; addresses.len()];
    let index_of = |a: SocketAddr| addresses.iter().position(|x| *x == a).unwrap_or(usize::MAX);

    loop {
        if next < addresses.len() && (attempts.is_empty() || Instant::now() >= next_start) {
            let addr = addresses[next];
            tracing::debug!(%addr, "tcp connect attempt");
            attempts.spawn(async move { (addr, TcpStream::connect(addr).await) });
            next += 1;
            next_start = Instant::now() + ATTEMPT_DELAY;
        }
        if attempts.is_empty() {
            // Every address was tried and failed.
            break;
        }
        let wait_next = next < addresses.len();
        tokio::select! {
            joined = attempts.join_next() => {
                match joined {
                    Some(Ok((addr, Ok(stream)))) => {
                        tracing::debug!(%addr, "tcp connected");
                        // A probe sends a few small writes and waits for each answer: without
                        // NODELAY, Nagle holds rustls' Finished until the server's delayed ACK,
                        // a round trip plus ~40 ms on every TLS handshake (probe-bench).
                        if let Err(e) = stream.set_nodelay(true) {
                            tracing::debug!(%addr, error = %e, "cannot set TCP_NODELAY");
                        }
                        // Dropping the set aborts the attempts still running.
                        return (Some(stream), TcpOutcome::Connected { address: addr });
                    }
                    Some(Ok((addr, Err(e)))) => {
                        tracing::debug!(%addr, error = %e, "tcp connect failed");
                        let i = index_of(addr);
                        if let Some(f) = finished.get_mut(i) {
                            *f = true;
                        }
                        consider(&mut best, i, classify(addr, &e));
                        // A failure lets the next address start at once.
                        next_start = Instant::now();
                    }
                    Some(Err(join_error)) => {
                        consider(&mut best, usize::MAX, TcpOutcome::Failed {
                            detail: format!("connect task failed: {join_error}"),
                        });
                        next_start = Instant::now();
                    }
                    None => {}
                }
            }
            _ = tokio::time::sleep_until(next_start), if wait_next => {}
            _ = tokio::time::sleep_until(deadline) => {
                // Every attempt still running timed out; the first of them stands for all.
                let pending = (0..next).find(|&i| !finished[i]).map(|i| (i, addresses[i]));
                if let Some((i, address)) = pending {
                    consider(&mut best, i, TcpOutcome::TimedOut { address });
                }
                break;
            }
        }
    }
    let outcome = best.map(|(_, o)| o).unwrap_or(TcpOutcome::Failed {
        detail: "no connect attempt finished".into(),
    });
    (None, outcome)
}

fn consider(best: &mut Option<(usize, TcpOutcome)>, index: usize, outcome: TcpOutcome) {
    let better = match best {
        None => true,
        Some((bi, bo)) => rank(&outcome) > rank(bo) || (rank(&outcome) == rank(bo) && index < *bi),
    };
    if better {
        *best = Some((index, outcome));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_alternate_families_ipv6_first() {
        let addrs: Vec<IpAddr> = ["192.0.2.1", "192.0.2.2", "2001:db8::1", "192.0.2.3"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let got: Vec<String> = interleave(&addrs, 993)
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(
            got,
            vec![
                "[2001:db8::1]:993",
                "192.0.2.1:993",
                "192.0.2.2:993",
                "192.0.2.3:993"
            ]
        );
    }

    #[test]
    fn refusal_outranks_timeout_and_timeout_outranks_unreachable() {
        let a: SocketAddr = "192.0.2.1:1".parse().unwrap();
        let mut best = None;
        consider(
            &mut best,
            0,
            TcpOutcome::Unreachable {
                address: a,
                detail: String::new(),
            },
        );
        consider(&mut best, 1, TcpOutcome::TimedOut { address: a });
        assert!(matches!(best, Some((1, TcpOutcome::TimedOut { .. }))));
        consider(&mut best, 2, TcpOutcome::Refused { address: a });
        assert!(matches!(best, Some((2, TcpOutcome::Refused { .. }))));
        consider(&mut best, 0, TcpOutcome::TimedOut { address: a });
        assert!(matches!(best, Some((2, TcpOutcome::Refused { .. }))));
    }
}
