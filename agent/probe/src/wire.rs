//! One DNS query to one server over UDP (TCP when the answer is truncated), with or without
//! recursion: what the authoritative lookup needs and a stub resolver does not offer.

use hickory_resolver::proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_resolver::proto::rr::{Name, RecordType};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{timeout_at, Instant};

/// The largest UDP answer accepted (EDNS payload size advertised, as DNS flag day 2020 asks).
const UDP_PAYLOAD: u16 = 1232;

/// Why a query got no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum QueryError {
    /// The server did not answer before the deadline.
    Timeout,
    /// The server could not be reached (refused port, no route).
    Io(String),
    /// The server answered with bytes that are not a DNS answer to this query.
    Malformed(String),
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueryError::Timeout => f.write_str("no answer in time"),
            QueryError::Io(e) => write!(f, "unreachable: {e}"),
            QueryError::Malformed(e) => write!(f, "malformed answer: {e}"),
        }
    }
}

/// Asks `server` for `rtype` records of `name`, before `deadline`.
pub(crate) async fn query(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
    recursion_desired: bool,
    deadline: Instant,
) -> Result<Message, QueryError> {
    let id = random_id();
    let mut msg = Message::new();
    msg.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(recursion_desired)
        .add_query(Query::query(name.clone(), rtype));
    let mut edns = Edns::new();
    edns.set_max_payload(UDP_PAYLOAD);
    msg.set_edns(edns);
    let bytes = msg
        .to_vec()
        .map_err(|e| QueryError::Malformed(format!("cannot encode the query: {e}")))?;
    let answer = match timeout_at(deadline, udp(server, &bytes, id)).await {
        Err(_) => return Err(QueryError::Timeout),
        Ok(answer) => answer?,
    };
    if !answer.truncated() {
        return Ok(answer);
    }
    match timeout_at(deadline, tcp(server, &bytes, id)).await {
        Err(_) => Err(QueryError::Timeout),
        Ok(answer) => answer,
    }
}

async fn udp(server: SocketAddr, bytes: &[u8], id: u16) -> Result<Message, QueryError> {
    let local: SocketAddr = match server.ip() {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let io = |e: std::io::Error| QueryError::Io(e.to_string());
    let socket = UdpSocket::bind(local).await.map_err(io)?;
    // A connected socket only receives datagrams from the server, and gets ICMP errors.
    socket.connect(server).await.map_err(io)?;
    socket.send(bytes).await.map_err(io)?;
    let mut buf = vec![0u8; usize::from(UDP_PAYLOAD) + 512];
    loop {
        let n = socket.recv(&mut buf).await.map_err(io)?;
        // Anything that is not the answer to this query (a late answer to an earlier one, a
        // spoofing attempt) is ignored, and the wait goes on until the deadline.
        match Message::from_vec(&buf[..n]) {
            Ok(msg) if msg.id() == id && msg.message_type() == MessageType::Response => {
                return Ok(msg)
            }
            Ok(_) => continue,
            Err(e) => {
                tracing::debug!(%server, error = %e, "ignoring an undecodable datagram");
                continue;
            }
        }
    }
}

async fn tcp(server: SocketAddr, bytes: &[u8], id: u16) -> Result<Message, QueryError> {
    let io = |e: std::io::Error| QueryError::Io(e.to_string());
    let mut stream = TcpStream::connect(server).await.map_err(io)?;
    let len = u16::try_from(bytes.len())
        .map_err(|_| QueryError::Malformed("query too long for TCP".into()))?;
    let mut framed = Vec::with_capacity(bytes.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(bytes);
    stream.write_all(&framed).await.map_err(io)?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.map_err(io)?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).await.map_err(io)?;
    let msg = Message::from_vec(&buf).map_err(|e| QueryError::Malformed(e.to_string()))?;
    if msg.id() != id || msg.message_type() != MessageType::Response {
        return Err(QueryError::Malformed(
            "the answer is not for this query".into(),
        ));
    }
    Ok(msg)
}

/// A query id that an off-path attacker cannot guess easily: std's per-process random hash
/// keys, mixed with the time.
fn random_id() -> u16 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    // Truncation is the point: any 16 bits of the hash will do.
    h.finish() as u16
}
