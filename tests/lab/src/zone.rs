//! The zones the lab's NSD serves, example.com (the users' mail domain) and hosting.test (a
//! mail provider in another domain): records kept as data, rendered to a zone file with a fresh
//! serial on every change.

use std::net::Ipv4Addr;

/// The mail provider's domain (another domain than the users' example.com).
pub const HOSTING_DOMAIN: &str = "hosting.test";

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

    /// hosting.test, a mail provider in another domain that example.com's mail may move to:
    /// `mail.hosting.test` is the second mail address (the same Dovecot and Postfix), and the
    /// provider publishes its own SRV records for it. Those are hosting.test's records, not
    /// example.com's: they must never be taken as naming example.com's servers.
    pub fn hosting(a: ZoneAddrs) -> Zone {
        let mut z = Zone {
            origin: HOSTING_DOMAIN.into(),
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
        add("mail", "A", a.new_mail.to_string());
        for (svc, port) in [("_imaps._tcp", 993), ("_submissions._tcp", 465)] {
            add(svc, "SRV", format!("0 1 {port} mail.{HOSTING_DOMAIN}."));
        }
        z
    }

    /// Whether `name` (absolute, any case, with or without the final dot) is this zone's apex
    /// or inside it.
    pub fn contains(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        name == self.origin || name.ends_with(&format!(".{}", self.origin))
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
    fn the_provider_zone_names_its_own_mail_host_by_srv() {
        let ip = |d| Ipv4Addr::new(10, 213, 7, d);
        let z = Zone::hosting(ZoneAddrs {
            ns: ip(2),
            mail: ip(10),
            new_mail: ip(11),
            web: ip(20),
            kdc: ip(4),
        });
        assert!(z.contains("_imaps._tcp.hosting.test."));
        assert!(!z.contains("imap.example.com"));
        assert_eq!(z.get("mail", "A"), vec!["10.213.7.11".to_string()]);
        assert!(z
            .render()
            .contains("_imaps._tcp IN SRV 0 1 993 mail.hosting.test.\n"));
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
