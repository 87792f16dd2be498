//! A line-oriented connection to an untrusted server: every read is bounded in time, line length
//! and total bytes, so that a hostile server costs bounded memory and time.

use std::fmt;
use std::io;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// A byte stream: plain TCP, or TLS over it.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Bounds that apply to a whole connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub io_timeout: Duration,
    pub max_line_bytes: usize,
    pub max_total_bytes: usize,
}

/// Why a line could not be read or written.
#[derive(Debug)]
pub(crate) enum ConnError {
    /// No complete line arrived in time: within one `io_timeout`, or before the whole
    /// session's deadline when `session_limit` is set.
    TimedOut {
        timeout: Duration,
        received: usize,
        session_limit: bool,
    },
    /// The server sent a line longer than the limit.
    LineTooLong {
        limit: usize,
    },
    /// The server sent more than the connection's byte budget.
    TooMuchData {
        limit: usize,
    },
    /// The server closed the connection.
    Closed {
        received: usize,
    },
    Io(io::Error),
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnError::TimedOut {
                received,
                session_limit: true,
                ..
            } => write!(
                f,
                "no complete reply before the session's time limit ({received} bytes of it received)"
            ),
            ConnError::TimedOut {
                timeout, received, ..
            } => write!(
                f,
                "no complete reply within {} ms ({received} bytes of it received)",
                timeout.as_millis()
            ),
            ConnError::LineTooLong { limit } => {
                write!(f, "server sent a line longer than {limit} bytes")
            }
            ConnError::TooMuchData { limit } => {
                write!(f, "server sent more than {limit} bytes on one connection")
            }
            ConnError::Closed { received: 0 } => {
                f.write_str("server closed the connection without a reply")
            }
            ConnError::Closed { received } => write!(
                f,
                "server closed the connection in the middle of a line ({received} bytes of it received)"
            ),
            ConnError::Io(e) => write!(f, "connection error: {e}"),
        }
    }
}

/// A connection read line by line.
pub(crate) struct LineConn {
    io: Option<Box<dyn Io>>,
    /// Bytes received and not yet returned as lines.
    buf: Vec<u8>,
    /// Protocol bytes received on this connection so far, across a STARTTLS upgrade.
    total: usize,
    limits: Limits,
    /// When the whole session must end.
    deadline: Instant,
}

impl LineConn {
    pub fn new(io: Box<dyn Io>, limits: Limits, deadline: Instant) -> LineConn {
        LineConn {
            io: Some(io),
            buf: Vec::new(),
            total: 0,
            limits,
            deadline,
        }
    }

    /// When the next step (one complete reply, one handshake) must be done: one `io_timeout`
    /// from now, but never past the session's deadline.
    pub fn step_deadline(&self) -> Instant {
        (Instant::now() + self.limits.io_timeout).min(self.deadline)
    }

    pub fn session_deadline(&self) -> Instant {
        self.deadline
    }

    pub fn io_timeout(&self) -> Duration {
        self.limits.io_timeout
    }

    /// Whether the server sent bytes beyond the lines read so far.
    pub fn has_buffered(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Takes the stream out for a TLS upgrade; [`LineConn::put_io`] puts the upgraded one back.
    pub fn take_io(&mut self) -> Option<Box<dyn Io>> {
        self.io.take()
    }

    pub fn put_io(&mut self, io: Box<dyn Io>) {
        self.io = Some(io);
    }

    fn io_mut(&mut self) -> Result<&mut Box<dyn Io>, ConnError> {
        self.io.as_mut().ok_or_else(|| {
            ConnError::Io(io::Error::new(
                io::ErrorKind::NotConnected,
                "connection lost during a TLS upgrade",
            ))
        })
    }

    /// Reads one line, without its line ending, before `until`.
    pub async fn read_line(&mut self, until: Instant) -> Result<String, ConnError> {
        let timeout = self.limits.io_timeout;
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                if pos + 1 > self.limits.max_line_bytes {
                    return Err(ConnError::LineTooLong {
                        limit: self.limits.max_line_bytes,
                    });
                }
                let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            if self.buf.len() >= self.limits.max_line_bytes {
                return Err(ConnError::LineTooLong {
                    limit: self.limits.max_line_bytes,
                });
            }
            let budget = self.limits.max_total_bytes.saturating_sub(self.total);
            if budget == 0 {
                return Err(ConnError::TooMuchData {
                    limit: self.limits.max_total_bytes,
                });
            }
            // Never read more than the budget allows, so memory stays bounded by the limits.
            let mut chunk = [0u8; 4096];
            let want = budget.min(chunk.len());
            let received = self.buf.len();
            let io = self.io_mut()?;
            let n = match tokio::time::timeout_at(until, io.read(&mut chunk[..want])).await {
                Err(_) => {
                    return Err(ConnError::TimedOut {
                        timeout,
                        received,
                        session_limit: until >= self.deadline,
                    })
                }
                Ok(Err(e)) => return Err(ConnError::Io(e)),
                Ok(Ok(0)) => return Err(ConnError::Closed { received }),
                Ok(Ok(n)) => n,
            };
            self.total += n;
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends one command line (CRLF appended) before `until`.
    pub async fn write_line(&mut self, line: &str, until: Instant) -> Result<(), ConnError> {
        let timeout = self.limits.io_timeout;
        let mut data = Vec::with_capacity(line.len() + 2);
        data.extend_from_slice(line.as_bytes());
        data.extend_from_slice(b"\r\n");
        let io = self.io_mut()?;
        let write = async {
            io.write_all(&data).await?;
            io.flush().await
        };
        match tokio::time::timeout_at(until, write).await {
            Err(_) => Err(ConnError::TimedOut {
                timeout,
                received: 0,
                session_limit: until >= self.deadline,
            }),
            Ok(Err(e)) => Err(ConnError::Io(e)),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Sends one line that holds a secret (CRLF appended) before `until`. The copy made for the
    /// write is zeroed afterwards, and nothing about the line is logged or put in an error.
    pub async fn write_secret_line(
        &mut self,
        line: &[u8],
        until: Instant,
    ) -> Result<(), ConnError> {
        let timeout = self.limits.io_timeout;
        let mut data = zeroize::Zeroizing::new(Vec::with_capacity(line.len() + 2));
        data.extend_from_slice(line);
        data.extend_from_slice(b"\r\n");
        let io = self.io_mut()?;
        let write = async {
            io.write_all(&data).await?;
            io.flush().await
        };
        match tokio::time::timeout_at(until, write).await {
            Err(_) => Err(ConnError::TimedOut {
                timeout,
                received: 0,
                session_limit: until >= self.deadline,
            }),
            Ok(Err(e)) => Err(ConnError::Io(e)),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Closes the stream (sending TLS close_notify when it is TLS), waiting at most until `until`.
    pub async fn shutdown(&mut self, until: Instant) {
        if let Some(io) = self.io.as_mut() {
            let _ = tokio::time::timeout_at(until, io.shutdown()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn limits() -> Limits {
        Limits {
            io_timeout: Duration::from_millis(300),
            max_line_bytes: 16,
            max_total_bytes: 40,
        }
    }

    fn conn_with(data: &'static [u8]) -> LineConn {
        let (client, mut server) = tokio::io::duplex(1024);
        tokio::spawn(async move {
            server.write_all(data).await.unwrap();
            // Keep the server side open so that the client sees silence, not EOF.
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        LineConn::new(
            Box::new(client),
            limits(),
            Instant::now() + Duration::from_secs(5),
        )
    }

    #[tokio::test]
    async fn lines_are_split_on_crlf_and_lf() {
        let mut c = conn_with(b"one\r\ntwo\nthree\r\n");
        let until = c.step_deadline();
        assert_eq!(c.read_line(until).await.unwrap(), "one");
        assert_eq!(c.read_line(until).await.unwrap(), "two");
        assert_eq!(c.read_line(until).await.unwrap(), "three");
        assert!(!c.has_buffered());
    }

    #[tokio::test]
    async fn line_longer_than_limit_is_refused() {
        let mut c = conn_with(b"0123456789abcdefXYZ\r\n");
        let until = c.step_deadline();
        assert!(matches!(
            c.read_line(until).await,
            Err(ConnError::LineTooLong { limit: 16 })
        ));
    }

    #[tokio::test]
    async fn total_budget_is_enforced_across_lines() {
        let mut c = conn_with(b"0123456789\r\n0123456789\r\n0123456789\r\n0123456789\r\n");
        let until = c.step_deadline();
        let mut got = 0;
        let err = loop {
            match c.read_line(until).await {
                Ok(_) => got += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(got, 3);
        assert!(matches!(err, ConnError::TooMuchData { limit: 40 }));
    }

    #[tokio::test]
    async fn incomplete_line_times_out() {
        let mut c = conn_with(b"no newline");
        let until = c.step_deadline();
        match c.read_line(until).await {
            Err(ConnError::TimedOut { received, .. }) => assert_eq!(received, 10),
            other => panic!("unexpected {other:?}"),
        }
    }
}
