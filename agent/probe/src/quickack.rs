//! A TCP stream that acknowledges every segment at once instead of delaying the ACK.
//!
//! Many mail servers (Postfix among them) write with Nagle's algorithm on. After a TLS 1.3
//! handshake such a server sends its session tickets and then its greeting as two small writes;
//! Nagle holds the greeting until the tickets are acknowledged, and Linux delays that ACK by up
//! to 40 ms because the client has just sent data (its Finished). A probe waits for every reply
//! in turn, so each such stall adds to the check. `TCP_QUICKACK` is cleared by the kernel after
//! use, so it is set again before every read; one cheap syscall per read.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Wraps a connected stream; reads re-arm `TCP_QUICKACK` (Linux) and are otherwise unchanged.
pub(crate) struct QuickAck(pub TcpStream);

impl QuickAck {
    #[cfg(target_os = "linux")]
    fn arm(&self) {
        use std::os::fd::AsRawFd;
        let on: libc::c_int = 1;
        // SAFETY: the descriptor is a live TCP socket owned by `self.0`, and the option value
        // is a c_int of the size passed. A failure only means delayed ACKs stay on.
        unsafe {
            libc::setsockopt(
                self.0.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_QUICKACK,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn arm(&self) {}
}

impl AsyncRead for QuickAck {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.arm();
        Pin::new(&mut this.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for QuickAck {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}
