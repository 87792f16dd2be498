//! The userspace half of the emulated delay: bound to an NFQUEUE queue, it holds every packet
//! the kernel hands it for a fixed time and then accepts it, in arrival order.

use std::collections::VecDeque;
use std::fs;
use std::io::ErrorKind;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nfq::{Message, Queue, Verdict};

/// Longest the kernel may keep packets waiting for this program; far above what a benchmark
/// sends within one delay, so nothing is dropped for lack of room.
const QUEUE_MAX_LEN: u32 = 8192;

/// Binds queue `queue_num` in the current network namespace, calls `ready` once packets are
/// being taken, and then delays each packet by `delay` forever (until killed).
pub fn run(queue_num: u16, delay: Duration, ready: impl FnOnce()) -> Result<()> {
    let before = socket_fds()?;
    let mut queue = Queue::open().context("open a netfilter queue socket (needs root)")?;
    // The nfq crate does not expose its socket, and the loop below must sleep on it until
    // either a packet arrives or the oldest held packet is due: the socket opened just now is
    // the one descriptor that was not there before.
    let fd = new_socket_fd(&before, &socket_fds()?)?;
    queue.bind(queue_num).with_context(|| {
        format!(
            "bind NFQUEUE {queue_num} (is nfnetlink_queue available? `modprobe nfnetlink_queue`; \
             is another program bound to this queue?)"
        )
    })?;
    // Only the verdict matters, so the kernel need not copy packet contents to us.
    queue.set_copy_range(queue_num, 0)?;
    queue.set_queue_max_len(queue_num, QUEUE_MAX_LEN)?;
    queue.set_nonblocking(true);
    ready();

    let mut held: VecDeque<(Instant, Message)> = VecDeque::new();
    loop {
        loop {
            match queue.recv() {
                Ok(msg) => held.push_back((Instant::now() + delay, msg)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).context("receive from the netfilter queue"),
            }
        }
        let now = Instant::now();
        // The delay is the same for every packet, so the first held is always the first due
        // and order is kept.
        while held.front().is_some_and(|(due, _)| *due <= now) {
            if let Some((_, mut msg)) = held.pop_front() {
                msg.set_verdict(Verdict::Accept);
                queue.verdict(msg).context("send a verdict")?;
            }
        }
        let wait = held
            .front()
            .map(|(due, _)| due.saturating_duration_since(Instant::now()));
        wait_readable(fd, wait)?;
    }
}

/// Sleeps until `fd` is readable or `timeout` has passed (forever when `None`).
fn wait_readable(fd: libc::c_int, timeout: Option<Duration>) -> Result<()> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs() as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: pfd and ts outlive the call; a null signal mask pointer means "unchanged".
    let r = unsafe { libc::ppoll(&mut pfd, 1, ts_ptr, std::ptr::null()) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() != ErrorKind::Interrupted {
            return Err(e).context("wait on the netfilter queue socket");
        }
    }
    Ok(())
}

/// The open descriptors of this process that are sockets.
fn socket_fds() -> Result<Vec<libc::c_int>> {
    let mut fds = Vec::new();
    for entry in fs::read_dir("/proc/self/fd").context("list /proc/self/fd")? {
        let entry = entry?;
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if fs::read_link(entry.path()).is_ok_and(|t| t.to_string_lossy().starts_with("socket:")) {
            fds.push(fd);
        }
    }
    Ok(fds)
}

fn new_socket_fd(before: &[libc::c_int], after: &[libc::c_int]) -> Result<libc::c_int> {
    let new: Vec<libc::c_int> = after
        .iter()
        .copied()
        .filter(|fd| !before.contains(fd))
        .collect();
    match new.as_slice() {
        [fd] => Ok(*fd),
        _ => bail!("cannot tell the netfilter queue socket among new descriptors {new:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_socket_is_the_one_new_descriptor() {
        assert_eq!(new_socket_fd(&[3, 4], &[3, 4, 7]).unwrap(), 7);
        assert!(new_socket_fd(&[3], &[3]).is_err());
        assert!(new_socket_fd(&[3], &[3, 5, 6]).is_err());
    }
}
