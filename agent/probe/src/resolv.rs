//! The name servers listed in a resolv.conf, read as text (a pure parser).

use std::net::{IpAddr, SocketAddr};

/// The port name servers listen on; resolv.conf cannot name another.
pub const DNS_PORT: u16 = 53;

/// The `nameserver` entries of a resolv.conf, in order, without duplicates.
///
/// Comments (`#` or `;`), other options and malformed addresses are skipped, as the C library
/// skips them. An IPv6 zone (`fe80::1%eth0`) is dropped: the address is kept without it.
pub fn name_servers(text: &str) -> Vec<SocketAddr> {
    let mut servers: Vec<SocketAddr> = Vec::new();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or_default();
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let Some(address) = words.next() else {
            continue;
        };
        let address = address.split('%').next().unwrap_or_default();
        let Ok(ip) = address.parse::<IpAddr>() else {
            tracing::debug!(address, "ignoring a malformed nameserver entry");
            continue;
        };
        let server = SocketAddr::new(ip, DNS_PORT);
        if !servers.contains(&server) {
            servers.push(server);
        }
    }
    servers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameservers_are_listed_in_order_with_port_53() {
        let text = "# generated\nsearch corp.example\nnameserver 10.0.0.1\nnameserver  ::1 \noptions ndots:2\nnameserver 10.0.0.2 # second\n";
        assert_eq!(
            name_servers(text),
            vec![
                "10.0.0.1:53".parse().unwrap(),
                "[::1]:53".parse().unwrap(),
                "10.0.0.2:53".parse().unwrap()
            ]
        );
    }

    #[test]
    fn comments_duplicates_and_garbage_are_skipped() {
        let text = "; nameserver 10.9.9.9\n#nameserver 10.8.8.8\nnameserver\nnameserver not-an-ip\nnameserver 10.0.0.1\nnameserver 10.0.0.1\nnameservers 10.0.0.3\n";
        assert_eq!(name_servers(text), vec!["10.0.0.1:53".parse().unwrap()]);
    }

    #[test]
    fn ipv6_zone_is_dropped() {
        assert_eq!(
            name_servers("nameserver fe80::1%eth0\n"),
            vec!["[fe80::1]:53".parse().unwrap()]
        );
    }

    #[test]
    fn an_empty_file_has_no_servers() {
        assert!(name_servers("").is_empty());
    }
}
