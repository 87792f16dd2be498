//! The Kerberos diagnostic: for accounts that log in with Kerberos (GSSAPI), whether the user
//! has a ticket-granting ticket, and whether it is expired or about to expire.
//!
//! Times are judged against the moment the cache was read (`checked_at`), never the clock at
//! diagnosis time, so that a report means the same thing whenever it is looked at. "About to
//! expire" is within [`EXPIRING_WITHIN_SECS`] or half the ticket's lifetime, whichever is
//! shorter (see `expiring_threshold`). A ticket is renewed only when it is renewable
//! beyond its current end time: MIT Kerberos cannot renew after the end time, and a renewal that
//! does not reach past it gains nothing.

use crate::codes;
use mailmend_core::{
    Account, Action, AuthMethod, BoxFuture, Diagnostic, Evidence, Finding, KerberosReport,
    KerberosTicket, PluginInfo, Prober, Severity,
};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// How close to its end a ticket counts as expiring: one hour.
pub const EXPIRING_WITHIN_SECS: i64 = 3600;

/// Seconds before its end at which a ticket counts as expiring: an hour, or half its lifetime
/// when that is shorter. A fixed hour would call every ticket of an hour or less "expiring" even
/// right after a renewal, so the agent would renew, fail to verify and roll back at every pass.
fn expiring_threshold(ticket: &KerberosTicket, expires: OffsetDateTime) -> i64 {
    let lifetime = parse(&ticket.starts).map(|starts| (expires - starts).whole_seconds());
    match lifetime {
        Some(l) if l > 0 => EXPIRING_WITHIN_SECS.min(l / 2),
        _ => EXPIRING_WITHIN_SECS,
    }
}

/// Whether the Kerberos tickets a Kerberos-authenticated account needs are there and valid.
#[derive(Debug, Clone, Copy, Default)]
pub struct Kerberos;

impl Diagnostic for Kerberos {
    fn info(&self) -> PluginInfo {
        PluginInfo::builtin("kerberos")
    }

    fn diagnose<'a>(
        &'a self,
        account: &'a Account,
        prober: &'a dyn Prober,
    ) -> BoxFuture<'a, Vec<Finding>> {
        Box::pin(async move {
            let uses_kerberos = [account.incoming.as_ref(), account.outgoing.as_ref()]
                .into_iter()
                .flatten()
                .any(|ep| ep.auth == AuthMethod::Gssapi);
            if !uses_kerberos {
                return Vec::new();
            }
            let report = prober.kerberos_tickets(&account.os_user).await;
            judge(account, &report).into_iter().collect()
        })
    }
}

fn parse(t: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(t, &Rfc3339).ok()
}

/// The realm of `user@REALM`.
fn realm(principal: &str) -> Option<&str> {
    principal.rsplit_once('@').map(|(_, realm)| realm)
}

/// The ticket-granting ticket for the cache's principal's realm (any TGT when the principal is
/// unknown).
fn tgt(report: &KerberosReport) -> Option<&KerberosTicket> {
    let wanted = report
        .principal
        .as_deref()
        .and_then(realm)
        .map(|r| format!("krbtgt/{r}@{r}"));
    report.tickets.iter().find(|t| match &wanted {
        Some(name) => t.server == *name,
        None => t.server.starts_with("krbtgt/"),
    })
}

fn cache_name(report: &KerberosReport) -> String {
    report
        .ccache
        .clone()
        .unwrap_or_else(|| "the default credential cache".to_string())
}

/// The one finding (or none) a ticket report gives.
fn judge(account: &Account, report: &KerberosReport) -> Option<Finding> {
    let user = &account.os_user;
    let notify = |code: &str, summary: &str, advice: &str| Action::NotifyUser {
        account: account.id.clone(),
        problem: code.to_string(),
        message: format!("{summary}; {advice}"),
    };
    let finding = |code: &str, severity: Severity, summary: String, evidence: String| {
        Finding::new(code, severity, account.id.clone(), None, summary).with_evidence(
            Evidence::new("kerberos.ccache", cache_name(report), evidence),
        )
    };
    let relogin = "log in to Kerberos again (kinit, or lock and unlock the session)";
    if let Some(error) = &report.error {
        let summary = format!(
            "The Kerberos tickets of {user} could not be read, so their validity is unknown"
        );
        return Some(finding(
            codes::KERBEROS_CACHE_UNREADABLE,
            Severity::Info,
            summary,
            error.clone(),
        ));
    }
    let Some(ticket) = tgt(report) else {
        let code = codes::KERBEROS_NO_TICKET;
        let summary =
            format!("The account logs in with Kerberos, but {user} has no Kerberos ticket");
        let evidence = if report.tickets.is_empty() {
            "no tickets".to_string()
        } else {
            format!(
                "no ticket-granting ticket among {} tickets",
                report.tickets.len()
            )
        };
        return Some(
            finding(code, Severity::Error, summary.clone(), evidence)
                .proposing(notify(code, &summary, relogin)),
        );
    };
    let (Some(now), Some(expires)) = (parse(&report.checked_at), parse(&ticket.expires)) else {
        let summary = format!("The Kerberos ticket times of {user} cannot be read");
        return Some(finding(
            codes::KERBEROS_CACHE_UNREADABLE,
            Severity::Info,
            summary,
            format!(
                "checked at {:?}, expires {:?}",
                report.checked_at, ticket.expires
            ),
        ));
    };
    let principal = report.principal.clone().unwrap_or_default();
    let evidence = format!(
        "{} valid from {} until {}{}{}",
        ticket.server,
        ticket.starts,
        ticket.expires,
        match &ticket.renew_until {
            Some(until) => format!(", renewable until {until}"),
            None => String::new(),
        },
        if ticket.renewable {
            ""
        } else {
            ", not renewable"
        },
    );
    if expires <= now {
        let code = codes::KERBEROS_TICKET_EXPIRED;
        let summary = format!(
            "The Kerberos ticket of {principal} expired at {}",
            ticket.expires
        );
        return Some(
            finding(code, Severity::Error, summary.clone(), evidence).proposing(notify(
                code,
                &summary,
                &format!("an expired ticket cannot be renewed: {relogin}"),
            )),
        );
    }
    if (expires - now).whole_seconds() > expiring_threshold(ticket, expires) {
        return None;
    }
    let code = codes::KERBEROS_TICKET_EXPIRING;
    let renew_until = ticket.renew_until.as_deref().and_then(parse);
    let renewable = ticket.renewable && renew_until.is_some_and(|until| until > expires);
    let summary = format!(
        "The Kerberos ticket of {principal} expires at {}, within the hour",
        ticket.expires
    );
    let f = finding(code, Severity::Warning, summary.clone(), evidence);
    Some(if renewable {
        f.proposing(Action::RenewKerberos {
            os_user: user.clone(),
            principal: report.principal.clone(),
            ccache: report.ccache.clone(),
        })
    } else {
        f.proposing(notify(
            code,
            &summary,
            &format!("it cannot be renewed: {relogin} soon"),
        ))
    })
}
