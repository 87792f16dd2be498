//! The macOS routing socket (`PF_ROUTE`), parsed without I/O: the messages `NetWatch` reads on
//! macOS and the `sysctl` dumps (`NET_RT_IFLIST`, `NET_RT_DUMP`) that seed its state, turned
//! into address, route and link events, and the state that tells a real change from a refresh.
//!
//! Layouts are Darwin's (`net/route.h`, `net/if.h`, `net/if_var.h`): every message starts with
//! `u16 msglen, u8 version, u8 type`; an `rt_msghdr` (92 bytes), `ifa_msghdr` (20) or
//! `if_msghdr` (112) follows, then the sockaddrs named by the header's `addrs` bit mask in
//! `RTAX_*` order, each padded to 4 bytes (`ROUNDUP32` in xnu's rtsock.c; a zero `sa_len`
//! takes 4). Integers are in the host's byte order. Where the crate is compiled for macOS,
//! `watch.rs` checks these numbers against the libc crate's Darwin definitions.
//!
//! This file is also compiled by the fuzz target (`agent/mailmend/fuzz`), so it uses nothing
//! outside std.

use std::collections::{HashMap, HashSet};

/// `RTM_VERSION`: messages of any other version are skipped, as route(4) asks.
pub const RTM_VERSION: u8 = 5;
pub const RTM_ADD: u8 = 0x1;
pub const RTM_DELETE: u8 = 0x2;
pub const RTM_CHANGE: u8 = 0x3;
pub const RTM_GET: u8 = 0x4;
pub const RTM_NEWADDR: u8 = 0xc;
pub const RTM_DELADDR: u8 = 0xd;
pub const RTM_IFINFO: u8 = 0xe;

/// `sizeof(struct rt_msghdr)`: 36 bytes of header, then `struct rt_metrics` (14 × u32).
pub const RT_MSGHDR_LEN: usize = 92;
/// `sizeof(struct ifa_msghdr)`.
pub const IFA_MSGHDR_LEN: usize = 20;
/// `sizeof(struct if_msghdr)`: 16 bytes of header, then `struct if_data` (96).
pub const IF_MSGHDR_LEN: usize = 112;
/// Offsets in `rt_msghdr`.
pub const RTM_INDEX_AT: usize = 4;
pub const RTM_FLAGS_AT: usize = 8;
pub const RTM_ADDRS_AT: usize = 12;
pub const RTM_ERRNO_AT: usize = 24;
/// Offsets in `ifa_msghdr` and `if_msghdr` (the same for both).
pub const IFM_ADDRS_AT: usize = 4;
pub const IFM_FLAGS_AT: usize = 8;
pub const IFM_INDEX_AT: usize = 12;

pub const RTF_HOST: u32 = 0x4;
pub const RTF_DYNAMIC: u32 = 0x10;
pub const RTF_LLINFO: u32 = 0x400;
pub const RTF_WASCLONED: u32 = 0x20000;
pub const RTF_LOCAL: u32 = 0x20_0000;
pub const RTF_BROADCAST: u32 = 0x40_0000;
pub const RTF_MULTICAST: u32 = 0x80_0000;
pub const RTF_IFSCOPE: u32 = 0x100_0000;
/// Routes that come and go with the traffic rather than with the network: clones made for
/// each destination contacted (the agent's own probes make them), ARP and neighbour entries,
/// ICMP redirects, and the host routes of local, broadcast and multicast addresses.
const TRAFFIC_ROUTES: u32 =
    RTF_WASCLONED | RTF_LLINFO | RTF_DYNAMIC | RTF_LOCAL | RTF_BROADCAST | RTF_MULTICAST;

/// `RTAX_*` positions of the sockaddrs after a header.
pub const RTAX_DST: usize = 0;
pub const RTAX_GATEWAY: usize = 1;
pub const RTAX_NETMASK: usize = 2;
pub const RTAX_IFA: usize = 5;
pub const RTAX_MAX: usize = 8;

pub const IFF_UP: u32 = 0x1;
pub const IFF_RUNNING: u32 = 0x40;

pub const AF_INET: u8 = 2;
pub const AF_LINK: u8 = 18;
pub const AF_INET6: u8 = 30;

/// How many addresses, routes or links the state remembers; past that, a new one still counts
/// as a change but is not remembered (a routing table this large is not a laptop's).
pub const MAX_KNOWN: usize = 4096;

/// A sockaddr, reduced to what identifies it: the address bytes for IPv4 and IPv6 (short
/// sockaddrs padded with zeros), the interface index and hardware address of a link address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Sockaddr {
    V4([u8; 4]),
    V6([u8; 16]),
    Link {
        index: u16,
        lladdr: Vec<u8>,
    },
    /// Another family: its bytes after `sa_len` and `sa_family`, trailing zeros trimmed.
    Other {
        family: u8,
        bytes: Vec<u8>,
    },
}

impl Sockaddr {
    /// Whether this address never carries the way to a mail server: IPv4 and IPv6 link-local
    /// (AWDL and the system's utun interfaces come and go with only those), multicast and the
    /// limited broadcast.
    pub fn is_local_only(&self) -> bool {
        match self {
            Sockaddr::V4(a) => {
                (a[0] == 169 && a[1] == 254) || (a[0] & 0xf0) == 224 || *a == [255; 4]
            }
            Sockaddr::V6(a) => (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) || a[0] == 0xff,
            Sockaddr::Link { .. } | Sockaddr::Other { .. } => false,
        }
    }

    fn is_ip(&self) -> bool {
        matches!(self, Sockaddr::V4(_) | Sockaddr::V6(_))
    }
}

/// An interface address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AddrKey {
    pub index: u16,
    pub addr: Sockaddr,
    /// The netmask's address bytes, trailing zeros trimmed.
    pub mask: Vec<u8>,
}

/// What identifies a route in the table: its destination, and the interface it is scoped to
/// (`RTF_IFSCOPE`; 0 when unscoped). Where it leads is [`Via`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteKey {
    pub dst: Sockaddr,
    /// The netmask's address bytes, trailing zeros trimmed: empty for a default route and for
    /// a host route.
    pub mask: Vec<u8>,
    pub host: bool,
    pub scope: u16,
}

impl RouteKey {
    /// Whether this is a default route (IPv4 or IPv6).
    pub fn is_default(&self) -> bool {
        let zero = match &self.dst {
            Sockaddr::V4(a) => a.iter().all(|b| *b == 0),
            Sockaddr::V6(a) => a.iter().all(|b| *b == 0),
            Sockaddr::Link { .. } | Sockaddr::Other { .. } => false,
        };
        zero && !self.host && self.mask.is_empty()
    }
}

/// Where a route leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    pub gateway: Option<Sockaddr>,
    /// The interface; 0 when the message did not say (a request echoed from another process).
    pub index: u16,
}

impl Via {
    fn same(&self, other: &Via) -> bool {
        self.gateway == other.gateway
            && (self.index == other.index || self.index == 0 || other.index == 0)
    }
}

/// One message of a read or a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// `RTM_NEWADDR`: an address was added (or listed by `NET_RT_IFLIST`).
    AddrAdded(AddrKey),
    /// `RTM_DELADDR`.
    AddrRemoved(AddrKey),
    /// `RTM_ADD` or `RTM_CHANGE`: a route was added or now leads elsewhere.
    RouteSet { route: RouteKey, via: Via },
    /// `RTM_GET`: a route as `NET_RT_DUMP` lists it, or another process's lookup answered on
    /// the socket. Learnt, never a change.
    RouteListed { route: RouteKey, via: Via },
    /// `RTM_DELETE`.
    RouteRemoved(RouteKey),
    /// `RTM_IFINFO`: an interface's flags; `up` when both `IFF_UP` and `IFF_RUNNING` are set.
    Link { index: u16, up: bool },
    /// Anything else: other types and versions, failed requests, traffic routes, link-local
    /// addresses, messages shorter than their header or whose sockaddrs overrun them.
    Ignored,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// Copies the bytes of `sa` from `at` into a zeroed array (Darwin shortens sockaddrs, netmasks
/// especially, to their last non-zero byte).
fn padded<const N: usize>(sa: &[u8], at: usize) -> [u8; N] {
    let mut out = [0; N];
    for (o, b) in out.iter_mut().zip(sa.iter().skip(at)) {
        *o = *b;
    }
    out
}

fn trimmed(bytes: &[u8]) -> Vec<u8> {
    let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    bytes[..end].to_vec()
}

/// A sockaddr of `sa_len` bytes (possibly none).
fn sockaddr(sa: &[u8]) -> Sockaddr {
    let family = sa.get(1).copied().unwrap_or(0);
    match family {
        AF_INET => Sockaddr::V4(padded(sa, 4)),
        AF_INET6 => Sockaddr::V6(padded(sa, 8)),
        AF_LINK => {
            // sockaddr_dl: len, family, u16 index, type, nlen, alen, slen, then the name
            // and the hardware address in sdl_data.
            let index = u16_at(sa, 2).unwrap_or(0);
            let nlen = usize::from(sa.get(5).copied().unwrap_or(0));
            let alen = usize::from(sa.get(6).copied().unwrap_or(0));
            let start = (8 + nlen).min(sa.len());
            let end = (start + alen).min(sa.len());
            Sockaddr::Link {
                index,
                lladdr: sa[start..end].to_vec(),
            }
        }
        _ => Sockaddr::Other {
            family,
            bytes: trimmed(sa.get(2..).unwrap_or_default()),
        },
    }
}

/// A netmask, read as an address of `family` (the kernel leaves a netmask's own family unset
/// or odd): its address bytes, trailing zeros trimmed.
fn netmask(sa: &[u8], family: u8) -> Vec<u8> {
    match family {
        AF_INET => trimmed(&padded::<4>(sa, 4)),
        AF_INET6 => trimmed(&padded::<16>(sa, 8)),
        _ => trimmed(sa.get(2..).unwrap_or_default()),
    }
}

/// The sockaddrs after a header, by `RTAX_*` position; `None` when one overruns the message.
/// The last one may lack its padding (the kernel's `msglen` ends at its last byte), and one
/// of length zero may be absent altogether for the same reason.
fn sockaddrs(mut b: &[u8], addrs: u32) -> Option<[Option<&[u8]>; RTAX_MAX]> {
    let mut out = [None; RTAX_MAX];
    for (i, slot) in out.iter_mut().enumerate() {
        if addrs & (1 << i) == 0 {
            continue;
        }
        let len = usize::from(b.first().copied().unwrap_or(0));
        *slot = Some(b.get(..len)?);
        let step = if len == 0 { 4 } else { (len + 3) & !3 };
        b = b.get(step..).unwrap_or_default();
    }
    Some(out)
}

fn route_msg(m: &[u8], kind: u8) -> Option<Msg> {
    if m.len() < RT_MSGHDR_LEN {
        return None;
    }
    let index = u16_at(m, RTM_INDEX_AT)?;
    let flags = u32_at(m, RTM_FLAGS_AT)?;
    let addrs = u32_at(m, RTM_ADDRS_AT)?;
    // A request another process made that failed is echoed with its errno: nothing changed.
    if u32_at(m, RTM_ERRNO_AT)? != 0 || flags & TRAFFIC_ROUTES != 0 {
        return None;
    }
    let sas = sockaddrs(&m[RT_MSGHDR_LEN..], addrs)?;
    let dst_sa = sas[RTAX_DST]?;
    let dst = sockaddr(dst_sa);
    if dst.is_local_only() {
        return None;
    }
    let host = flags & RTF_HOST != 0;
    let family = dst_sa.get(1).copied().unwrap_or(0);
    let mask = match sas[RTAX_NETMASK] {
        Some(sa) if !host => netmask(sa, family),
        _ => Vec::new(),
    };
    let route = RouteKey {
        dst,
        mask,
        host,
        scope: if flags & RTF_IFSCOPE != 0 { index } else { 0 },
    };
    let via = Via {
        gateway: sas[RTAX_GATEWAY].map(sockaddr),
        index,
    };
    Some(match kind {
        RTM_ADD | RTM_CHANGE => Msg::RouteSet { route, via },
        RTM_GET => Msg::RouteListed { route, via },
        _ => Msg::RouteRemoved(route),
    })
}

fn addr_msg(m: &[u8], added: bool) -> Option<Msg> {
    if m.len() < IFA_MSGHDR_LEN {
        return None;
    }
    let addrs = u32_at(m, IFM_ADDRS_AT)?;
    let index = u16_at(m, IFM_INDEX_AT)?;
    let sas = sockaddrs(&m[IFA_MSGHDR_LEN..], addrs)?;
    let ifa = sas[RTAX_IFA]?;
    let addr = sockaddr(ifa);
    if !addr.is_ip() || addr.is_local_only() {
        return None;
    }
    let family = ifa.get(1).copied().unwrap_or(0);
    let key = AddrKey {
        index,
        addr,
        mask: sas[RTAX_NETMASK]
            .map(|sa| netmask(sa, family))
            .unwrap_or_default(),
    };
    Some(if added {
        Msg::AddrAdded(key)
    } else {
        Msg::AddrRemoved(key)
    })
}

fn link_msg(m: &[u8]) -> Option<Msg> {
    if m.len() < IF_MSGHDR_LEN {
        return None;
    }
    let flags = u32_at(m, IFM_FLAGS_AT)?;
    Some(Msg::Link {
        index: u16_at(m, IFM_INDEX_AT)?,
        up: flags & (IFF_UP | IFF_RUNNING) == IFF_UP | IFF_RUNNING,
    })
}

/// One message (`m` is exactly `msglen` bytes long).
fn message(m: &[u8]) -> Msg {
    if m.get(2) != Some(&RTM_VERSION) {
        return Msg::Ignored;
    }
    let msg = match m.get(3).copied() {
        Some(k @ (RTM_ADD | RTM_CHANGE | RTM_GET | RTM_DELETE)) => route_msg(m, k),
        Some(RTM_NEWADDR) => addr_msg(m, true),
        Some(RTM_DELADDR) => addr_msg(m, false),
        Some(RTM_IFINFO) => link_msg(m),
        _ => None,
    };
    msg.unwrap_or(Msg::Ignored)
}

/// Parses the messages of one read or one dump, one [`Msg`] each. A message whose length is
/// impossible (under 4 bytes, or past the end of `buf`) ends the parse; what came before it is
/// kept. At most one message per 4 bytes of input.
pub fn parse(buf: &[u8]) -> Vec<Msg> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(len) = u16_at(buf, at) {
        let len = usize::from(len);
        let Some(m) = buf.get(at..at + len).filter(|_| len >= 4) else {
            break;
        };
        out.push(message(m));
        at += len;
    }
    out
}

/// The addresses, routes and interface states known so far; says whether a message changes
/// them. Bounded by [`MAX_KNOWN`] entries of each kind.
#[derive(Debug, Default)]
pub struct NetState {
    addrs: HashSet<AddrKey>,
    routes: HashMap<RouteKey, Via>,
    links: HashMap<u16, bool>,
}

impl NetState {
    /// Applies a message; true when the network changed: an address or route appeared or went,
    /// a route now leads elsewhere, or an interface that holds an address went up or down.
    pub fn apply(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::AddrAdded(k) => {
                if self.addrs.contains(&k) {
                    return false;
                }
                if self.addrs.len() < MAX_KNOWN {
                    self.addrs.insert(k);
                }
                true
            }
            Msg::AddrRemoved(k) => self.addrs.remove(&k),
            Msg::RouteSet { route, via } => {
                if let Some(known) = self.routes.get_mut(&route) {
                    if known.same(&via) {
                        if known.index == 0 {
                            known.index = via.index;
                        }
                        return false;
                    }
                    *known = via;
                    return true;
                }
                if self.routes.len() < MAX_KNOWN {
                    self.routes.insert(route, via);
                }
                true
            }
            Msg::RouteListed { route, via } => {
                if self.routes.len() < MAX_KNOWN || self.routes.contains_key(&route) {
                    self.routes.insert(route, via);
                }
                false
            }
            Msg::RouteRemoved(route) => self.routes.remove(&route).is_some(),
            Msg::Link { index, up } => {
                let was = if self.links.len() < MAX_KNOWN || self.links.contains_key(&index) {
                    self.links.insert(index, up)
                } else {
                    self.links.get(&index).copied()
                };
                // An interface with no address of its own going up or down reaches nothing
                // new; when it gets an address, that is the change.
                was.unwrap_or(false) != up && self.addrs.iter().any(|a| a.index == index)
            }
            Msg::Ignored => false,
        }
    }

    /// How many addresses, routes and interfaces are known.
    pub fn len(&self) -> usize {
        self.addrs.len() + self.routes.len() + self.links.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(len: usize, kind: u8) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&(len as u16).to_ne_bytes());
        b.push(RTM_VERSION);
        b.push(kind);
        b
    }

    fn sin(a: [u8; 4]) -> Vec<u8> {
        let mut b = vec![16, AF_INET, 0, 0];
        b.extend_from_slice(&a);
        b.resize(16, 0);
        b
    }

    fn sin6(a: [u8; 16]) -> Vec<u8> {
        let mut b = vec![28, AF_INET6, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(&a);
        b.resize(28, 0);
        b
    }

    /// A netmask as Darwin writes it: cut after its last non-zero byte, family left unset.
    fn mask4(m: [u8; 4]) -> Vec<u8> {
        let end = m.iter().rposition(|b| *b != 0).map_or(0, |i| 4 + i + 1);
        let mut b = vec![end as u8, 0, 0, 0];
        b.extend_from_slice(&m);
        b.truncate(end);
        b
    }

    fn sdl(index: u16, name: &[u8], lladdr: &[u8]) -> Vec<u8> {
        let mut b = vec![0, AF_LINK];
        b.extend_from_slice(&index.to_ne_bytes());
        b.extend_from_slice(&[6, name.len() as u8, lladdr.len() as u8, 0]);
        b.extend_from_slice(name);
        b.extend_from_slice(lladdr);
        b.resize(b.len().max(20), 0);
        b[0] = b.len() as u8;
        b
    }

    /// Appends sockaddrs with ROUNDUP32 padding; the last one unpadded, as rt_msg1 sends it.
    fn with_sockaddrs(mut b: Vec<u8>, sas: &[Vec<u8>], pad_last: bool) -> Vec<u8> {
        for (i, sa) in sas.iter().enumerate() {
            b.extend_from_slice(sa);
            if pad_last || i + 1 < sas.len() {
                // ROUNDUP32: a zero-length sockaddr still takes 4 bytes.
                let step = if sa.is_empty() {
                    4
                } else {
                    (sa.len() + 3) & !3
                };
                b.resize(b.len() + step - sa.len(), 0);
            }
        }
        let len = b.len() as u16;
        b[..2].copy_from_slice(&len.to_ne_bytes());
        b
    }

    fn rt(kind: u8, index: u16, flags: u32, addrs: u32, errno: u32, sas: &[Vec<u8>]) -> Vec<u8> {
        let mut b = header(0, kind);
        b.extend_from_slice(&index.to_ne_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&flags.to_ne_bytes());
        b.extend_from_slice(&addrs.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes()); // pid
        b.extend_from_slice(&0u32.to_ne_bytes()); // seq
        b.extend_from_slice(&errno.to_ne_bytes());
        b.resize(RT_MSGHDR_LEN, 0);
        with_sockaddrs(b, sas, false)
    }

    const UP_GATEWAY_STATIC: u32 = 0x1 | 0x2 | 0x800;

    fn default_route(kind: u8, index: u16, gateway: [u8; 4]) -> Vec<u8> {
        // DST, GATEWAY, NETMASK (of length zero: the default route's).
        rt(
            kind,
            index,
            UP_GATEWAY_STATIC,
            0x7,
            0,
            &[sin([0; 4]), sin(gateway), vec![]],
        )
    }

    fn ifa(kind: u8, index: u16, addr: Vec<u8>, mask: Vec<u8>, ll: Vec<u8>) -> Vec<u8> {
        let mut b = header(0, kind);
        // NETMASK, IFP, IFA.
        b.extend_from_slice(&(0x4u32 | 0x10 | 0x20).to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(&index.to_ne_bytes());
        b.resize(IFA_MSGHDR_LEN, 0);
        with_sockaddrs(b, &[mask, ll, addr], false)
    }

    fn ifinfo(index: u16, flags: u32) -> Vec<u8> {
        let mut b = header(0, RTM_IFINFO);
        b.extend_from_slice(&0x10u32.to_ne_bytes());
        b.extend_from_slice(&flags.to_ne_bytes());
        b.extend_from_slice(&index.to_ne_bytes());
        b.resize(IF_MSGHDR_LEN, 0);
        with_sockaddrs(b, &[sdl(index, b"en0", &[2, 0, 0, 0, 0, 1])], true)
    }

    fn one(buf: &[u8]) -> Msg {
        let msgs = parse(buf);
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        msgs.into_iter().next().unwrap_or(Msg::Ignored)
    }

    #[test]
    fn route_socket_address_refreshes_are_no_change_but_new_and_removed_ones_are() {
        let mut state = NetState::default();
        let new = ifa(
            RTM_NEWADDR,
            4,
            sin([192, 168, 1, 7]),
            mask4([255, 255, 255, 0]),
            sdl(4, b"en0", &[2, 0, 0, 0, 0, 1]),
        );
        let msg = one(&new);
        assert_eq!(
            msg,
            Msg::AddrAdded(AddrKey {
                index: 4,
                addr: Sockaddr::V4([192, 168, 1, 7]),
                mask: vec![255, 255, 255],
            })
        );
        assert!(state.apply(msg));
        // The same address announced again changes nothing.
        assert!(!state.apply(one(&new)));
        let del = ifa(
            RTM_DELADDR,
            4,
            sin([192, 168, 1, 7]),
            mask4([255, 255, 255, 0]),
            sdl(4, b"en0", &[2, 0, 0, 0, 0, 1]),
        );
        assert!(state.apply(one(&del)));
        assert!(!state.apply(one(&del)));
    }

    #[test]
    fn route_socket_default_route_added_changed_and_deleted() {
        let mut state = NetState::default();
        let add = one(&default_route(RTM_ADD, 4, [192, 168, 1, 1]));
        let Msg::RouteSet { route, via } = &add else {
            panic!("{add:?}");
        };
        assert!(route.is_default());
        assert_eq!(via.gateway, Some(Sockaddr::V4([192, 168, 1, 1])));
        assert!(state.apply(add.clone()));
        assert!(!state.apply(add));
        // `route change default 10.0.0.1`, echoed to every routing socket.
        assert!(state.apply(one(&default_route(RTM_CHANGE, 4, [10, 0, 0, 1]))));
        assert!(!state.apply(one(&default_route(RTM_CHANGE, 4, [10, 0, 0, 1]))));
        // An echoed request that did not name the interface is the same route.
        assert!(!state.apply(one(&default_route(RTM_ADD, 0, [10, 0, 0, 1]))));
        assert!(state.apply(one(&default_route(RTM_DELETE, 4, [10, 0, 0, 1]))));
        assert!(!state.apply(one(&default_route(RTM_DELETE, 4, [10, 0, 0, 1]))));
    }

    #[test]
    fn route_socket_dump_seeds_the_state_without_counting_as_a_change() {
        let mut dump = Vec::new();
        dump.extend(ifinfo(4, IFF_UP | IFF_RUNNING | 0x2));
        dump.extend(ifa(
            RTM_NEWADDR,
            4,
            sin([192, 168, 1, 7]),
            mask4([255, 255, 255, 0]),
            vec![],
        ));
        dump.extend(default_route(RTM_GET, 4, [192, 168, 1, 1]));
        let msgs = parse(&dump);
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        let mut state = NetState::default();
        for m in msgs {
            state.apply(m);
        }
        assert_eq!(state.len(), 3);
        // The same default route announced by the kernel is no change; a lookup answer
        // naming another gateway is learnt but is not one either.
        assert!(!state.apply(one(&default_route(RTM_ADD, 4, [192, 168, 1, 1]))));
        assert!(!state.apply(one(&default_route(RTM_GET, 4, [192, 168, 1, 254]))));
        assert!(state.apply(one(&default_route(RTM_ADD, 4, [192, 168, 1, 1]))));
    }

    #[test]
    fn route_socket_link_up_and_down_count_only_on_interfaces_with_an_address() {
        let mut state = NetState::default();
        let up = IFF_UP | IFF_RUNNING;
        assert_eq!(one(&ifinfo(4, up)), Msg::Link { index: 4, up: true });
        assert_eq!(
            one(&ifinfo(4, IFF_UP)),
            Msg::Link {
                index: 4,
                up: false
            }
        );
        assert!(!state.apply(one(&ifinfo(4, up))));
        state.apply(one(&ifa(
            RTM_NEWADDR,
            4,
            sin([10, 1, 2, 3]),
            mask4([255, 0, 0, 0]),
            vec![],
        )));
        // A refresh with other flags (promiscuous mode) is no change; losing the link is.
        assert!(!state.apply(one(&ifinfo(4, up | 0x100))));
        assert!(state.apply(one(&ifinfo(4, IFF_UP))));
        assert!(!state.apply(one(&ifinfo(4, IFF_UP))));
        assert!(state.apply(one(&ifinfo(4, up))));
        // awdl0 going up and down all day, with no address but its link-local one.
        let awdl = 9;
        state.apply(one(&ifa(
            RTM_NEWADDR,
            awdl,
            sin6([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]),
            vec![],
            vec![],
        )));
        for _ in 0..10 {
            assert!(!state.apply(one(&ifinfo(awdl, up))));
            assert!(!state.apply(one(&ifinfo(awdl, 0))));
        }
    }

    #[test]
    fn route_socket_traffic_routes_and_failed_requests_are_ignored() {
        let clone = rt(
            RTM_ADD,
            4,
            0x1 | 0x4 | RTF_WASCLONED | RTF_LLINFO,
            0x3,
            0,
            &[sin([93, 184, 216, 34]), sdl(4, b"", &[1, 2, 3, 4, 5, 6])],
        );
        assert_eq!(one(&clone), Msg::Ignored);
        let redirect = rt(
            RTM_ADD,
            4,
            0x1 | 0x2 | 0x4 | RTF_DYNAMIC,
            0x3,
            0,
            &[sin([10, 9, 9, 9]), sin([10, 0, 0, 2])],
        );
        assert_eq!(one(&redirect), Msg::Ignored);
        let failed = rt(
            RTM_DELETE,
            4,
            UP_GATEWAY_STATIC,
            0x7,
            3,
            &[sin([0; 4]), sin([10, 0, 0, 1]), vec![]],
        );
        assert_eq!(one(&failed), Msg::Ignored);
        let link_local = rt(
            RTM_ADD,
            9,
            0x1,
            0x7,
            0,
            &[
                sin6([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
                sdl(9, b"awdl0", &[]),
                vec![],
            ],
        );
        assert_eq!(one(&link_local), Msg::Ignored);
        let mut old = default_route(RTM_ADD, 4, [10, 0, 0, 1]);
        old[2] = 4;
        assert_eq!(one(&old), Msg::Ignored);
        // Multicast membership and other types.
        let mut other = default_route(RTM_ADD, 4, [10, 0, 0, 1]);
        other[3] = 0xf;
        assert_eq!(one(&other), Msg::Ignored);
    }

    #[test]
    fn route_socket_scoped_and_network_routes_keep_their_netmask_and_scope() {
        let scoped = rt(
            RTM_ADD,
            7,
            UP_GATEWAY_STATIC | RTF_IFSCOPE,
            0x7,
            0,
            &[sin([0; 4]), sin([172, 16, 0, 1]), vec![]],
        );
        let Msg::RouteSet { route, .. } = one(&scoped) else {
            panic!("not a route");
        };
        assert_eq!(route.scope, 7);
        let net = rt(
            RTM_ADD,
            7,
            0x1 | 0x100,
            0x7,
            0,
            &[
                sin([172, 16, 0, 0]),
                sdl(7, b"utun3", &[]),
                mask4([255, 255, 0, 0]),
            ],
        );
        let Msg::RouteSet { route, via } = one(&net) else {
            panic!("not a route");
        };
        assert_eq!(route.mask, vec![255, 255]);
        assert!(!route.is_default());
        assert_eq!(
            via.gateway,
            Some(Sockaddr::Link {
                index: 7,
                lladdr: vec![]
            })
        );
        let v6 = rt(
            RTM_ADD,
            4,
            UP_GATEWAY_STATIC,
            0x7,
            0,
            &[
                sin6([0; 16]),
                sin6([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
                vec![],
            ],
        );
        let Msg::RouteSet { route, .. } = one(&v6) else {
            panic!("not a route");
        };
        assert!(route.is_default(), "{route:?}");
    }

    #[test]
    fn route_socket_parser_survives_truncated_and_garbage_input() {
        let mut good = ifa(
            RTM_NEWADDR,
            4,
            sin([10, 1, 1, 1]),
            mask4([255, 0, 0, 0]),
            vec![],
        );
        good.extend(default_route(RTM_ADD, 4, [10, 0, 0, 1]));
        for cut in 0..good.len() {
            assert!(parse(&good[..cut]).len() <= 1, "cut at {cut}");
        }
        assert_eq!(parse(&good).len(), 2);
        // A length past the end, or too short to advance, ends the parse.
        let mut lying = good.clone();
        lying[..2].copy_from_slice(&0xffffu16.to_ne_bytes());
        assert!(parse(&lying).is_empty());
        assert!(parse(&[0u8; 64]).is_empty());
        assert!(parse(&[3, 0, 5, 1, 0, 0]).is_empty());
        // A sockaddr longer than what is left of its message.
        let mut overrun = default_route(RTM_ADD, 4, [10, 0, 0, 1]);
        overrun[RT_MSGHDR_LEN] = 200;
        assert_eq!(parse(&overrun), vec![Msg::Ignored]);
        // Headers shorter than their type's.
        for kind in [RTM_ADD, RTM_NEWADDR, RTM_IFINFO] {
            let short = header(16, kind);
            let mut b = short.clone();
            b.resize(16, 0xff);
            assert_eq!(parse(&b), vec![Msg::Ignored], "{kind}");
        }
        // Every address bit set, every sockaddr of length 255.
        let mut b = header(0, RTM_ADD);
        b.resize(RT_MSGHDR_LEN, 0xff);
        b[2] = RTM_VERSION;
        b[3] = RTM_ADD;
        b[RTM_ERRNO_AT..RTM_ERRNO_AT + 4].copy_from_slice(&[0; 4]);
        b[RTM_FLAGS_AT..RTM_FLAGS_AT + 4].copy_from_slice(&0x3u32.to_ne_bytes());
        b.resize(RT_MSGHDR_LEN + 8 * 256, 0xff);
        let len = b.len() as u16;
        b[..2].copy_from_slice(&len.to_ne_bytes());
        assert_eq!(parse(&b).len(), 1);
    }

    #[test]
    fn route_socket_state_is_bounded() {
        let mut state = NetState::default();
        for i in 0..(MAX_KNOWN as u32 + 100) {
            let a = (0x0a00_0000 + i).to_be_bytes();
            let key = AddrKey {
                index: 4,
                addr: Sockaddr::V4(a),
                mask: vec![255],
            };
            assert!(state.apply(Msg::AddrAdded(key)));
        }
        assert_eq!(state.len(), MAX_KNOWN);
    }
}
