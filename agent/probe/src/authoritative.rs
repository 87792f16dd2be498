//! What a name's authoritative servers say right now, bypassing every cache on the way: the
//! zone is found by asking the system's name servers for NS records (walking up the labels, and
//! taking the zone an SOA in a negative answer names), the zone's servers are found through the
//! system resolver (or the glue), and they are asked directly, without recursion.
//!
//! Everything together ends within the caller's timeout. Each single query may take a quarter
//! of it, so that one dead server leaves time for the next.

use crate::dns::{self, NameServers};
use crate::wire::{self, QueryError};
use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use mailmend_core::DnsOutcome;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How many CNAMEs leading into other zones are followed.
const MAX_CNAME_ZONES: usize = 4;
/// How many CNAMEs inside one answer are followed.
const MAX_CNAME_CHAIN: usize = 8;
/// How many of a zone's name server names are looked up.
const MAX_NS_NAMES: usize = 4;
/// How many authoritative server addresses are tried, at most.
const MAX_SERVER_ADDRESSES: usize = 6;
/// The shortest time given to one query, whatever the overall timeout.
const MIN_ATTEMPT: Duration = Duration::from_millis(100);

/// Where to ask and how long to take.
pub(crate) struct Lookup<'a> {
    /// The system resolver, for NS names' addresses.
    pub name_servers: &'a NameServers,
    /// The recursive servers asked for the zone's NS records.
    pub recursive: Vec<SocketAddr>,
    /// The port authoritative servers are asked on (53 except in tests).
    pub port: u16,
    pub timeout: Duration,
}

/// A zone and its name servers, as a recursive server told.
struct Zone {
    name: Name,
    ns: Vec<Name>,
    glue: Vec<(Name, IpAddr)>,
}

/// What one authoritative server answered.
enum Answer {
    Addresses(Vec<IpAddr>),
    NxDomain,
    /// The name is an alias for a name in another zone, to be asked there.
    Alias(Name),
}

/// Resolves `host` through its zone's authoritative servers.
pub(crate) async fn resolve(lookup: &Lookup<'_>, host: &str) -> DnsOutcome {
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return DnsOutcome::Resolved {
            addresses: vec![ip],
        };
    }
    let mut name = match Name::from_ascii(host) {
        Ok(name) if !host.is_empty() => name,
        _ => {
            return DnsOutcome::Failed {
                detail: format!("{host:?} is not a valid host name"),
            }
        }
    };
    name.set_fqdn(true);
    let deadline = Instant::now() + lookup.timeout;
    match tokio::time::timeout_at(deadline, lookup.run(name, deadline)).await {
        Ok(outcome) => outcome,
        Err(_) => DnsOutcome::ResolverUnreachable {
            detail: format!(
                "no authoritative answer within {} ms",
                lookup.timeout.as_millis()
            ),
        },
    }
}

impl Lookup<'_> {
    async fn run(&self, mut name: Name, deadline: Instant) -> DnsOutcome {
        if self.recursive.is_empty() {
            return DnsOutcome::ResolverUnreachable {
                detail: "no name server is configured to find the zone's servers".into(),
            };
        }
        for _ in 0..MAX_CNAME_ZONES {
            let zone = match self.find_zone(&name, deadline).await {
                Ok(zone) => zone,
                Err(outcome) => return outcome,
            };
            let servers = self.server_addresses(&zone, deadline).await;
            if servers.is_empty() {
                return DnsOutcome::Failed {
                    detail: format!("no address found for the name servers of {}", zone.name),
                };
            }
            match self.ask(&servers, &zone, &name, deadline).await {
                Ok(Answer::Addresses(addresses)) if addresses.is_empty() => {
                    return DnsOutcome::NoRecords
                }
                Ok(Answer::Addresses(addresses)) => return DnsOutcome::Resolved { addresses },
                Ok(Answer::NxDomain) => return DnsOutcome::NxDomain,
                Ok(Answer::Alias(target)) => name = target,
                Err(outcome) => return outcome,
            }
        }
        DnsOutcome::Failed {
            detail: format!("more than {MAX_CNAME_ZONES} aliases across zones"),
        }
    }

    /// The end of one query's time: a quarter of the total, within what is left.
    fn attempt_deadline(&self, deadline: Instant) -> Instant {
        let share = (self.timeout / 4).max(MIN_ATTEMPT);
        (Instant::now() + share).min(deadline)
    }

    /// Asks the recursive servers in turn until one answers.
    async fn ask_recursive(
        &self,
        name: &Name,
        rtype: RecordType,
        deadline: Instant,
    ) -> Result<Message, DnsOutcome> {
        let mut problems = Vec::new();
        let mut all_unreachable = true;
        for server in &self.recursive {
            match wire::query(*server, name, rtype, true, self.attempt_deadline(deadline)).await {
                Ok(msg)
                    if matches!(
                        msg.response_code(),
                        ResponseCode::NoError | ResponseCode::NXDomain
                    ) =>
                {
                    return Ok(msg)
                }
                Ok(msg) => {
                    all_unreachable &= msg.response_code() == ResponseCode::Refused;
                    problems.push(format!("{server} answered {}", msg.response_code()));
                }
                Err(e) => {
                    all_unreachable &= !matches!(e, QueryError::Malformed(_));
                    problems.push(format!("{server}: {e}"));
                }
            }
        }
        let detail = format!("finding the zone of {name}: {}", problems.join("; "));
        Err(if all_unreachable {
            DnsOutcome::ResolverUnreachable { detail }
        } else {
            DnsOutcome::Failed { detail }
        })
    }

    /// Walks up from `name` until a recursive server names the zone's NS records.
    async fn find_zone(&self, name: &Name, deadline: Instant) -> Result<Zone, DnsOutcome> {
        let mut candidate = name.clone();
        // Every step moves to a strict ancestor, so a name's label count bounds the walk.
        for _ in 0..=name.num_labels() {
            if candidate.is_root() {
                break;
            }
            let msg = self
                .ask_recursive(&candidate, RecordType::NS, deadline)
                .await?;
            let ns: Vec<Name> = msg
                .answers()
                .iter()
                .filter(|r| r.name() == &candidate)
                .filter_map(|r| match r.data() {
                    RData::NS(ns) => Some(ns.0.clone()),
                    _ => None,
                })
                .collect();
            if !ns.is_empty() {
                let glue = msg
                    .additionals()
                    .iter()
                    .filter_map(|r| match r.data() {
                        RData::A(a) => Some((r.name().clone(), IpAddr::V4(a.0))),
                        RData::AAAA(a) => Some((r.name().clone(), IpAddr::V6(a.0))),
                        _ => None,
                    })
                    .collect();
                return Ok(Zone {
                    name: candidate,
                    ns,
                    glue,
                });
            }
            // A negative answer carries the SOA of the zone the name is in.
            let soa_owner = msg
                .name_servers()
                .iter()
                .find(|r| r.record_type() == RecordType::SOA)
                .map(|r| r.name().clone());
            candidate = match soa_owner {
                Some(zone) if zone != candidate && zone.zone_of(&candidate) => zone,
                _ => candidate.base_name(),
            };
        }
        Err(DnsOutcome::Failed {
            detail: format!("no zone with name servers found above {name}"),
        })
    }

    /// The addresses of the zone's servers: glue first, then the system resolver's answers for
    /// the names without glue, looked up concurrently.
    async fn server_addresses(&self, zone: &Zone, deadline: Instant) -> Vec<SocketAddr> {
        let mut addresses: Vec<IpAddr> = Vec::new();
        let mut lookups = JoinSet::new();
        for (index, ns) in zone.ns.iter().take(MAX_NS_NAMES).enumerate() {
            let glue: Vec<IpAddr> = zone
                .glue
                .iter()
                .filter(|(owner, _)| owner == ns)
                .map(|(_, ip)| *ip)
                .collect();
            if glue.is_empty() {
                let servers = self.name_servers.clone();
                let host = ns.to_ascii();
                let timeout = deadline.saturating_duration_since(Instant::now());
                lookups.spawn(async move {
                    (
                        index,
                        dns::resolve(&servers, &host, timeout, dns::Mode::System).await,
                    )
                });
            } else {
                addresses.extend(glue);
            }
        }
        let mut looked_up = Vec::new();
        while let Some(done) = lookups.join_next().await {
            if let Ok((index, DnsOutcome::Resolved { addresses })) = done {
                looked_up.push((index, addresses));
            }
        }
        // The NS answer's order is kept, so that results do not depend on timing.
        looked_up.sort_by_key(|(index, _)| *index);
        addresses.extend(looked_up.into_iter().flat_map(|(_, a)| a));
        let mut unique: Vec<SocketAddr> = Vec::new();
        for ip in addresses {
            let server = SocketAddr::new(ip, self.port);
            if !unique.contains(&server) {
                unique.push(server);
            }
        }
        unique.truncate(MAX_SERVER_ADDRESSES);
        unique
    }

    /// Asks the zone's servers in turn, without recursion, for A and AAAA records of `name`;
    /// the first authoritative answer counts.
    async fn ask(
        &self,
        servers: &[SocketAddr],
        zone: &Zone,
        name: &Name,
        deadline: Instant,
    ) -> Result<Answer, DnsOutcome> {
        let mut problems = Vec::new();
        let mut all_unreachable = true;
        for server in servers {
            let until = self.attempt_deadline(deadline);
            let (a, aaaa) = tokio::join!(
                wire::query(*server, name, RecordType::A, false, until),
                wire::query(*server, name, RecordType::AAAA, false, until)
            );
            let mut answers = Vec::new();
            for result in [a, aaaa] {
                match result {
                    Ok(msg) if !msg.authoritative() => {
                        all_unreachable = false;
                        problems.push(format!("{server} is not authoritative for {}", zone.name));
                    }
                    Ok(msg)
                        if matches!(
                            msg.response_code(),
                            ResponseCode::NoError | ResponseCode::NXDomain
                        ) =>
                    {
                        answers.push(msg)
                    }
                    Ok(msg) => {
                        all_unreachable &= msg.response_code() == ResponseCode::Refused;
                        problems.push(format!("{server} answered {}", msg.response_code()));
                    }
                    Err(e) => {
                        all_unreachable &= !matches!(e, QueryError::Malformed(_));
                        problems.push(format!("{server}: {e}"));
                    }
                }
            }
            if !answers.is_empty() {
                return Ok(read_answer(&answers, name));
            }
        }
        let detail = format!(
            "the name servers of {} gave no authoritative answer for {name}: {}",
            zone.name,
            problems.join("; ")
        );
        Err(if all_unreachable {
            DnsOutcome::ResolverUnreachable { detail }
        } else {
            DnsOutcome::Failed { detail }
        })
    }
}

/// The addresses of `name` in authoritative answers, following CNAMEs inside them.
fn read_answer(answers: &[Message], name: &Name) -> Answer {
    if answers
        .iter()
        .any(|m| m.response_code() == ResponseCode::NXDomain)
    {
        return Answer::NxDomain;
    }
    let records = || answers.iter().flat_map(|m| m.answers());
    let mut current = name.clone();
    for _ in 0..=MAX_CNAME_CHAIN {
        let mut addresses: Vec<IpAddr> = Vec::new();
        for r in records().filter(|r| r.name() == &current) {
            let ip = match r.data() {
                RData::A(a) => IpAddr::V4(a.0),
                RData::AAAA(a) => IpAddr::V6(a.0),
                _ => continue,
            };
            if !addresses.contains(&ip) {
                addresses.push(ip);
            }
        }
        if !addresses.is_empty() {
            return Answer::Addresses(addresses);
        }
        let alias = records()
            .filter(|r| r.name() == &current)
            .find_map(|r| match r.data() {
                RData::CNAME(c) => Some(c.0.clone()),
                _ => None,
            });
        match alias {
            Some(target) => current = target,
            None => break,
        }
    }
    if &current == name {
        Answer::Addresses(Vec::new())
    } else {
        Answer::Alias(current)
    }
}
