//! Settings discovery for one email domain: the six RFC 6186/8314 SRV lookups, both autoconfig
//! URLs and the Autodiscover URLs (the domain, `autodiscover.<domain>`, then the host an
//! `_autodiscover._tcp` SRV record names) all at once, within one overall deadline of
//! `io_timeout` plus one fetch budget (`connect_timeout + 3 × io_timeout`), so that the SRV →
//! Autodiscover chain fits too. Whatever has not answered by then is reported as failed.
//!
//! Only HTTPS with a verified certificate is fetched, and only the account's own domain is
//! asked: no other domain's records and no plain HTTP can name a server here.

use crate::autoconfig::{self, NamedServer};
use crate::autodiscover::{self, PoxAnswer};
use crate::http::{self, HttpError, HttpsUrl, Method, Net, Request};
use crate::srv::{self, Service, SrvAnswer};
use mailmend_core::{
    DiscoveredServer, DiscoveredSettings, DiscoveryLookup, DiscoveryMethod, DiscoverySource,
    LookupOutcome,
};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// What one concurrent lookup produced.
enum Part {
    Srv(Service, SrvAnswer),
    Found(Vec<DiscoveryLookup>, Vec<DiscoveredServer>),
}

/// Where each part goes in the result, so that the result does not depend on timing.
const SLOT_AUTODISCOVER_SRV: usize = 40;
const SLOT_AUTOCONFIG: usize = 20;
const SLOT_AUTODISCOVER: usize = 30;

/// Looks everything up for `domain` (and `email`, which autoconfig and Autodiscover ask for).
pub(crate) async fn discover(net: Net, domain: &str, email: Option<&str>) -> DiscoveredSettings {
    let started = Instant::now();
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let mut settings = DiscoveredSettings::empty(&domain);
    if !http::is_host_name(&domain) || !domain.contains('.') {
        settings.lookups.push(DiscoveryLookup {
            source: DiscoverySource {
                method: DiscoveryMethod::Srv,
                location: domain.clone(),
            },
            outcome: LookupOutcome::Failed {
                detail: "not a valid mail domain".into(),
            },
        });
        return settings;
    }
    // An address that could smuggle anything into a URL or a request body is not sent.
    let email = email
        .map(str::trim)
        .filter(|e| e.len() <= 254 && e.contains('@') && !e.chars().any(char::is_control))
        .map(str::to_string);
    let deadline = started + net.io_timeout + net.fetch_budget();

    let mut tasks: JoinSet<(usize, Part)> = JoinSet::new();
    for (i, service) in srv::MAIL_SERVICES.iter().copied().enumerate() {
        let (net, name) = (net.clone(), srv::owner(service.label, &domain));
        tasks.spawn(async move {
            let answer = srv::lookup(&net.name_servers, &name, net.io_timeout).await;
            (i, Part::Srv(service, answer))
        });
    }
    {
        let (net, domain, email) = (net.clone(), domain.clone(), email.clone());
        tasks.spawn(async move {
            let part = autodiscover_via_srv(&net, &domain, email.as_deref(), deadline).await;
            (SLOT_AUTODISCOVER_SRV, part)
        });
    }
    for (i, url) in autoconfig::urls(&domain, email.as_deref())
        .into_iter()
        .enumerate()
    {
        let (net, domain, email) = (net.clone(), domain.clone(), email.clone());
        tasks.spawn(async move {
            let part = fetch_autoconfig(&net, url, &domain, email.as_deref(), deadline).await;
            (SLOT_AUTOCONFIG + i, part)
        });
    }
    if let Some(email) = &email {
        for (i, url) in autodiscover::urls(&domain).into_iter().enumerate() {
            let (net, email) = (net.clone(), email.clone());
            tasks.spawn(async move {
                let part = fetch_autodiscover(&net, url, &email, deadline).await;
                (SLOT_AUTODISCOVER + i, part)
            });
        }
    }

    let mut parts: Vec<(usize, Part)> = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(Some(Ok(done))) => parts.push(done),
            Ok(Some(Err(e))) => tracing::debug!(error = %e, "a discovery task failed"),
            Ok(None) => break,
            Err(_) => {
                // Each part bounds itself by the deadline; this only guards against a bug.
                tasks.abort_all();
                break;
            }
        }
    }
    parts.sort_by_key(|(slot, _)| *slot);

    let mut srv_answers = Vec::new();
    let mut found: Vec<(Vec<DiscoveryLookup>, Vec<DiscoveredServer>)> = Vec::new();
    for (_, part) in parts {
        match part {
            Part::Srv(service, answer) => srv_answers.push((service, answer)),
            Part::Found(lookups, servers) => found.push((lookups, servers)),
        }
    }
    let (srv_servers, srv_lookups) = srv::order(&domain, &srv_answers);
    settings.lookups = srv_lookups;
    let mut servers = srv_servers;
    for (lookups, more) in found {
        settings.lookups.extend(lookups);
        servers.extend(more);
    }
    // The first (best) source of a setting stands for it.
    let mut unique: Vec<DiscoveredServer> = Vec::new();
    for s in servers {
        let same = |u: &DiscoveredServer| {
            u.protocol == s.protocol
                && u.host == s.host
                && u.port == s.port
                && u.security == s.security
        };
        if !unique.iter().any(same) {
            unique.push(s);
        }
    }
    settings.servers = unique;
    settings.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    tracing::debug!(
        domain = %settings.domain,
        servers = settings.servers.len(),
        elapsed_ms = settings.elapsed_ms,
        "settings discovered"
    );
    settings
}

fn lookup(method: DiscoveryMethod, location: String, outcome: LookupOutcome) -> DiscoveryLookup {
    DiscoveryLookup {
        source: DiscoverySource { method, location },
        outcome,
    }
}

/// The outcome of a failed fetch: a name that does not exist means nothing is published.
fn fetch_failure(e: &HttpError) -> LookupOutcome {
    match e {
        HttpError::NoSuchHost { .. } => LookupOutcome::NotFound {
            detail: e.to_string(),
        },
        _ => LookupOutcome::Failed {
            detail: e.to_string(),
        },
    }
}

/// The outcome of an HTTP status other than 200 and redirects.
fn status_outcome(response: &http::Response) -> LookupOutcome {
    match response.status {
        401 | 403 => LookupOutcome::Unauthorized {
            status: response.status,
            schemes: response.auth_schemes(),
        },
        404 | 405 | 410 => LookupOutcome::NotFound {
            detail: format!("HTTP {}", response.status),
        },
        status => LookupOutcome::Failed {
            detail: format!("HTTP {status}"),
        },
    }
}

async fn fetch_autoconfig(
    net: &Net,
    url: String,
    domain: &str,
    email: Option<&str>,
    deadline: Instant,
) -> Part {
    let method = DiscoveryMethod::Autoconfig;
    let parsed = match HttpsUrl::parse(&url) {
        Ok(u) => u,
        Err(e) => {
            let outcome = LookupOutcome::Failed {
                detail: e.to_string(),
            };
            return Part::Found(vec![lookup(method, url, outcome)], Vec::new());
        }
    };
    let request = Request {
        method: Method::Get,
        url: parsed,
        body: None,
    };
    let fetched = match http::fetch(net, &request, deadline).await {
        Ok(f) => f,
        Err(e) => return Part::Found(vec![lookup(method, url, fetch_failure(&e))], Vec::new()),
    };
    let location = fetched.url.to_string();
    if fetched.response.status != 200 {
        let outcome = status_outcome(&fetched.response);
        return Part::Found(vec![lookup(method, location, outcome)], Vec::new());
    }
    let text = String::from_utf8_lossy(&fetched.response.body);
    let source = DiscoverySource {
        method,
        location: location.clone(),
    };
    match autoconfig::parse(&text, domain, email) {
        Ok(found) => {
            let (outcome, servers) = named(found, &source, "the document names no usable server");
            Part::Found(vec![lookup(method, location, outcome)], servers)
        }
        Err(autoconfig::AutoconfigError::NotAutoconfig(root)) => {
            let outcome = LookupOutcome::NotFound {
                detail: format!("not an autoconfig document (a <{root}> document)"),
            };
            Part::Found(vec![lookup(method, location, outcome)], Vec::new())
        }
        Err(e) => {
            let outcome = LookupOutcome::Failed {
                detail: e.to_string(),
            };
            Part::Found(vec![lookup(method, location, outcome)], Vec::new())
        }
    }
}

/// POSTs the Autodiscover request to `url`, following one `redirectUrl` answer (https only).
async fn fetch_autodiscover(net: &Net, url: String, email: &str, deadline: Instant) -> Part {
    let method = DiscoveryMethod::Autodiscover;
    let body = autodiscover::request_body(email);
    let mut lookups = Vec::new();
    let mut url = url;
    // The first request, and at most one more after a redirectUrl answer.
    for _ in 0..2 {
        let parsed = match HttpsUrl::parse(&url) {
            Ok(u) => u,
            Err(e) => {
                let outcome = LookupOutcome::Failed {
                    detail: e.to_string(),
                };
                lookups.push(lookup(method, url, outcome));
                return Part::Found(lookups, Vec::new());
            }
        };
        let request = Request {
            method: Method::Post,
            url: parsed,
            body: Some(("text/xml; charset=utf-8", body.as_bytes())),
        };
        let fetched = match http::fetch(net, &request, deadline).await {
            Ok(f) => f,
            Err(e) => {
                lookups.push(lookup(method, url, fetch_failure(&e)));
                return Part::Found(lookups, Vec::new());
            }
        };
        let location = fetched.url.to_string();
        if fetched.response.status != 200 {
            lookups.push(lookup(method, location, status_outcome(&fetched.response)));
            return Part::Found(lookups, Vec::new());
        }
        let text = String::from_utf8_lossy(&fetched.response.body);
        let answer = match autodiscover::parse(&text) {
            Ok(a) => a,
            Err(autodiscover::AutodiscoverError::NotAutodiscover(root)) => {
                let outcome = LookupOutcome::NotFound {
                    detail: format!("not an Autodiscover answer (a <{root}> document)"),
                };
                lookups.push(lookup(method, location, outcome));
                return Part::Found(lookups, Vec::new());
            }
            Err(e) => {
                let outcome = LookupOutcome::Failed {
                    detail: e.to_string(),
                };
                lookups.push(lookup(method, location, outcome));
                return Part::Found(lookups, Vec::new());
            }
        };
        match answer {
            PoxAnswer::Settings(found) => {
                let source = DiscoverySource {
                    method,
                    location: location.clone(),
                };
                let (outcome, servers) = named(found, &source, "the answer names no usable server");
                lookups.push(lookup(method, location, outcome));
                return Part::Found(lookups, servers);
            }
            PoxAnswer::RedirectUrl(next) => {
                lookups.push(lookup(
                    method,
                    location,
                    LookupOutcome::Points { to: next.clone() },
                ));
                url = next;
            }
            PoxAnswer::RedirectAddr(addr) => {
                // Another address may be of another domain, whose answers would not be the
                // account's own domain's: reported, not followed.
                lookups.push(lookup(method, location, LookupOutcome::Points { to: addr }));
                return Part::Found(lookups, Vec::new());
            }
            PoxAnswer::Error { code, message } => {
                let detail = match (code, message) {
                    (Some(c), Some(m)) => format!("Autodiscover error {c}: {m}"),
                    (Some(c), None) => format!("Autodiscover error {c}"),
                    (None, Some(m)) => format!("Autodiscover error: {m}"),
                    (None, None) => "Autodiscover error".to_string(),
                };
                lookups.push(lookup(method, location, LookupOutcome::NotFound { detail }));
                return Part::Found(lookups, Vec::new());
            }
        }
    }
    Part::Found(lookups, Vec::new())
}

/// Asks `_autodiscover._tcp.<domain>` and POSTs to the host it names.
async fn autodiscover_via_srv(
    net: &Net,
    domain: &str,
    email: Option<&str>,
    deadline: Instant,
) -> Part {
    let name = srv::owner(srv::AUTODISCOVER_LABEL, domain);
    let (outcome, record) = match srv::lookup(&net.name_servers, &name, net.io_timeout).await {
        SrvAnswer::Records(mut records) => {
            records.sort_by_key(|r| (r.priority, std::cmp::Reverse(r.weight)));
            match records.into_iter().next() {
                Some(r) => (
                    LookupOutcome::Points {
                        to: autodiscover::srv_url(&r.target, r.port),
                    },
                    Some(r),
                ),
                None => (
                    LookupOutcome::NotFound {
                        detail: "no usable SRV record".into(),
                    },
                    None,
                ),
            }
        }
        SrvAnswer::NotOffered => (LookupOutcome::NotOffered, None),
        SrvAnswer::NotFound(detail) => (LookupOutcome::NotFound { detail }, None),
        SrvAnswer::Failed(detail) => (LookupOutcome::Failed { detail }, None),
    };
    let mut lookups = vec![lookup(DiscoveryMethod::Srv, name.clone(), outcome)];
    let (Some(record), Some(email)) = (record, email) else {
        return Part::Found(lookups, Vec::new());
    };
    let url = autodiscover::srv_url(&record.target, record.port);
    match fetch_autodiscover(net, url, email, deadline).await {
        Part::Found(more, servers) => {
            lookups.extend(more);
            Part::Found(lookups, servers)
        }
        Part::Srv(..) => Part::Found(lookups, Vec::new()),
    }
}

/// The servers a settings document named, tagged with where they came from, and the outcome of
/// its lookup (`NotFound` with `empty` when it named none).
fn named(
    found: Vec<NamedServer>,
    source: &DiscoverySource,
    empty: &str,
) -> (LookupOutcome, Vec<DiscoveredServer>) {
    let servers: Vec<DiscoveredServer> = found
        .into_iter()
        .map(|s| DiscoveredServer {
            protocol: s.protocol,
            host: s.host,
            port: s.port,
            security: s.security,
            priority: None,
            weight: None,
            url: s.url,
            source: source.clone(),
        })
        .collect();
    let outcome = if servers.is_empty() {
        LookupOutcome::NotFound {
            detail: empty.into(),
        }
    } else {
        LookupOutcome::Found {
            servers: servers.len(),
        }
    };
    (outcome, servers)
}
