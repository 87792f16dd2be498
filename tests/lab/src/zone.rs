//! The example.com zone the lab's NSD serves: records kept as data, rendered to a zone file
//! with a fresh serial on every change.

use std::net::Ipv4Addr;

/// One resource record: owner relative to the zone (`@` for the apex), type and rdata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Owner name relative to example.com, `@` for the apex.
    pub owner: String,
    /// Record type, upper case (`A`, `MX`, `SRV`, ...).
    pub rtype: String,
    /// Record data as written in a zone file.
    pub rdata: String,
}

/// The zone's records and its SOA serial.
#[derive(Clone, Debug)]
pub struct Zone {
    /// Zone name without the final dot.
    pub origin: String,
    /// SOA serial, bumped by every change.
    pub serial: u32,
    /// TTL of every record, in seconds.
    pub ttl: u32,
    records: Vec<Record>,
}

/// Addresses the initial zone points at.
#[derive(Clone, Copy, Debug)]
pub struct ZoneAddrs {
    /// NSD itself (ns1).
    pub ns: Ipv4Addr,
    /// The (old) mail server.
    pub mail: Ipv4Addr,
    /// The new mail server after a migration.
    pub new_mail: Ipv4Addr,
    /// The web server with autoconfig and autodiscover.
    pub web: Ipv4Addr,
    /// The Kerberos KDC.
    pub kdc: Ipv4Addr,
}

impl Zone {
    /// The lab's example.com: hosts, MX, and RFC 6186/8314 SRV records.
    pub fn example(a: ZoneAddrs) -> Zone {
        let mut z = Zone {
            origin: "example.com".into(),
            serial: 1,
            ttl: 300,
            records: Vec::new(),
        };
        let mut add = |o: &str, t: &str, d: String| {
            z.records.push(Record {
                owner: o.into(),
                rtype: t.into(),
                rdata: d,
            })
        };
        add("@", "NS", "ns1.example.com.".into());
        add("@", "MX", "10 mail.example.com.".into());
        // The apex serves the web site with /.well-known/autoconfig.
        add("@", "A", a.web.to_string());
        add("ns1", "A", a.ns.to_string());
        for host in ["mail", "imap", "pop", "smtp"] {
            add(host, "A", a.mail.to_string());
        }
        add("mail2", "A", a.new_mail.to_string());
        add("autoconfig", "A", a.web.to_string());
        add("autodiscover", "A", a.web.to_string());
        add("kdc", "A", a.kdc.to_string());
        for (svc, port, host) in [
            ("_imaps._tcp", 993, "imap"),
            ("_imap._tcp", 143, "imap"),
            ("_pop3s._tcp", 995, "pop"),
            ("_pop3._tcp", 110, "pop"),
            ("_submissions._tcp", 465, "smtp"),
            ("_submission._tcp", 587, "smtp"),
            ("_autodiscover._tcp", 443, "autodiscover"),
            ("_kerberos._udp", 88, "kdc"),
            ("_kerberos._tcp", 88, "kdc"),
        ] {
            add(svc, "SRV", format!("0 1 {port} {host}.example.com."));
        }
        z
    }

    /// The owner relative to the zone, accepting `imap`, `imap.example.com` or
    /// `imap.example.com.`; `None` for names outside the zone.
    pub fn relative(&self, name: &str) -> Option<String> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if name == self.origin || name == "@" {
            return Some("@".into());
        }
        match name.strip_suffix(&format!(".{}", self.origin)) {
            Some(rel) => Some(rel.to_string()),
            None if !name.contains('.') || name.starts_with('_') => Some(name),
            None => None,
        }
    }

    /// Replaces every record of `rtype` at `owner` with one record per item of `rdata`
    /// (none removes them) and bumps the serial.
    pub fn set(&mut self, owner: &str, rtype: &str, rdata: &[String]) {
        let rtype = rtype.to_ascii_uppercase();
        self.records
            .retain(|r| !(r.owner == owner && r.rtype == rtype));
        for d in rdata {
            self.records.push(Record {
                owner: owner.into(),
                rtype: rtype.clone(),
                rdata: d.clone(),
            });
        }
        self.serial += 1;
    }

    /// The records of `rtype` at `owner`.
    pub fn get(&self, owner: &str, rtype: &str) -> Vec<String> {
        self.records
            .iter()
            .filter(|r| r.owner == owner && r.rtype.eq_ignore_ascii_case(rtype))
            .map(|r| r.rdata.clone())
            .collect()
    }

    /// The zone file text.
    pub fn render(&self) -> String {
        let mut s = format!(
            "$ORIGIN {o}.\n$TTL {t}\n@ IN SOA ns1.{o}. hostmaster.{o}. ( {serial} 3600 600 86400 60 )\n",
            o = self.origin,
            t = self.ttl,
            serial = self.serial
        );
        for r in &self.records {
            s.push_str(&format!("{} IN {} {}\n", r.owner, r.rtype, r.rdata));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> Zone {
        let ip = |d| Ipv4Addr::new(10, 213, 7, d);
        Zone::example(ZoneAddrs {
            ns: ip(2),
            mail: ip(10),
            new_mail: ip(11),
            web: ip(20),
            kdc: ip(4),
        })
    }

    #[test]
    fn names_are_made_relative_to_the_zone() {
        let z = zone();
        assert_eq!(z.relative("imap.example.com").as_deref(), Some("imap"));
        assert_eq!(z.relative("IMAP.example.com.").as_deref(), Some("imap"));
        assert_eq!(z.relative("imap").as_deref(), Some("imap"));
        assert_eq!(z.relative("example.com").as_deref(), Some("@"));
        assert_eq!(z.relative("_imaps._tcp").as_deref(), Some("_imaps._tcp"));
        assert_eq!(z.relative("imap.example.org"), None);
    }

    #[test]
    fn setting_a_record_replaces_the_old_one_and_bumps_the_serial() {
        let mut z = zone();
        assert_eq!(z.get("imap", "A"), vec!["10.213.7.10".to_string()]);
        z.set("imap", "a", &["10.213.7.11".to_string()]);
        assert_eq!(z.get("imap", "A"), vec!["10.213.7.11".to_string()]);
        assert_eq!(z.serial, 2);
        let text = z.render();
        assert!(text.contains("imap IN A 10.213.7.11\n"));
        assert!(!text.contains("imap IN A 10.213.7.10\n"));
        assert!(text.contains("( 2 3600"));
    }
}
