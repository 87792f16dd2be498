//! The credentials diagnostic: for an endpoint that works and is encrypted, asks the prober for
//! one login with the password the mail client stores, and translates what the server said into
//! a finding (`auth.failed`, `auth.locked`, …, `smtp.sender_rejected`).
//!
//! Whether a login may be tried at all is not decided here: the prober (the agent's, which holds
//! the policy's `[credentials]` settings and the lockout ledger) refuses unless the policy names
//! a credential source, the same password was not refused before and the interval has passed.
//! The password never passes through this diagnostic; it only sees the translated reply. A
//! refusal remembered from an earlier attempt is reported again, with the time of that attempt,
//! so the problem stays visible without another login.
//!
//! Every finding proposes only `notify_user`: a wrong, locked or expired password needs the
//! user or IT, and nothing here changes the account.

use crate::causes;
use crate::codes;
use crate::join::join_all;
use crate::text::{client_name, protocol_name, target_text};
use mailmend_core::{
    Account, Action, AuthMethod, BoxFuture, Diagnostic, Endpoint, Evidence, Finding, LoginOutcome,
    LoginReport, PluginInfo, Prober, Role, SenderCheck, Severity,
};

/// Whether one password login to each working, encrypted endpoint is accepted.
#[derive(Debug, Clone, Copy, Default)]
pub struct Credentials;

impl Diagnostic for Credentials {
    fn info(&self) -> PluginInfo {
        PluginInfo::builtin("credentials")
    }

    fn diagnose<'a>(
        &'a self,
        account: &'a Account,
        prober: &'a dyn Prober,
    ) -> BoxFuture<'a, Vec<Finding>> {
        Box::pin(async move {
            let checks: Vec<BoxFuture<'a, Vec<Finding>>> = causes::endpoints(account)
                .into_iter()
                .filter(|(_, ep, _)| logs_in_with_password(&ep.auth))
                .map(|(role, ep, target)| -> BoxFuture<'a, Vec<Finding>> {
                    Box::pin(async move {
                        let report = prober.probe(&target).await;
                        if !causes::login_owned(&report) {
                            return Vec::new();
                        }
                        let login = prober.try_login(account, role).await;
                        findings(account, role, ep, &login)
                    })
                })
                .collect();
            join_all(checks).await.into_iter().flatten().collect()
        })
    }
}

/// Whether the endpoint logs in with a password (which PLAIN over TLS can check).
fn logs_in_with_password(auth: &AuthMethod) -> bool {
    matches!(
        auth,
        AuthMethod::PasswordCleartext | AuthMethod::PasswordEncrypted | AuthMethod::Any
    )
}

/// The code, severity and the words for one login outcome.
struct Meaning {
    code: &'static str,
    severity: Severity,
    /// For the helpdesk: what the server said, in its terms.
    summary: String,
    /// For the user: what to do.
    message: String,
}

fn meaning(account: &Account, ep: &Endpoint, outcome: &LoginOutcome) -> Option<Meaning> {
    let client = client_name(account.client);
    let proto = protocol_name(ep.protocol);
    let host = &ep.host;
    let user = ep.username.as_deref().unwrap_or("the account");
    let m = |code, severity, summary: String, message: String| {
        Some(Meaning {
            code,
            severity,
            summary,
            message,
        })
    };
    match outcome {
        LoginOutcome::Rejected => m(
            codes::AUTH_FAILED,
            Severity::Error,
            format!(
                "{proto} server {host} rejected the password {client} has for {user} (wrong user name or password)"
            ),
            format!(
                "The mail server {host} does not accept the password {client} has for {user}. \
                 Enter your current password in {client}'s settings."
            ),
        ),
        LoginOutcome::Locked => m(
            codes::AUTH_LOCKED,
            Severity::Error,
            format!("{proto} server {host} says the account {user} is locked or disabled"),
            format!(
                "Your mail account {user} on {host} is locked or disabled. Please contact your \
                 IT helpdesk; entering the password again will not help."
            ),
        ),
        LoginOutcome::PasswordExpired => m(
            codes::AUTH_PASSWORD_EXPIRED,
            Severity::Error,
            format!("{proto} server {host} says the password of {user} has expired"),
            format!(
                "The password of your mail account {user} has expired. Change it the way your \
                 organisation provides, then enter the new password in {client}."
            ),
        ),
        LoginOutcome::AppPasswordRequired => m(
            codes::AUTH_APP_PASSWORD_REQUIRED,
            Severity::Error,
            format!(
                "{proto} server {host} does not accept a plain password for {user}: it requires an app password, a sign-in in a web browser or multi-factor authentication"
            ),
            format!(
                "The mail server {host} no longer accepts your normal password in {client}. \
                 Create an app password in your account's security settings (or ask IT how to \
                 sign in with multi-factor authentication) and enter it in {client}."
            ),
        ),
        LoginOutcome::EncryptionRequired => m(
            codes::AUTH_ENCRYPTION_REQUIRED,
            Severity::Error,
            format!(
                "{proto} server {host} refused to check the password of {user} on this encrypted connection, asking for (more) encryption"
            ),
            format!(
                "The mail server {host} refuses {client}'s login on this connection. Please \
                 contact your IT helpdesk."
            ),
        ),
        LoginOutcome::TemporaryFailure => m(
            codes::AUTH_TEMPORARY_FAILURE,
            Severity::Warning,
            format!(
                "{proto} server {host} could not check the password of {user} right now (a temporary failure)"
            ),
            format!(
                "The mail server {host} could not check your login just now. If mail keeps \
                 failing, contact your IT helpdesk."
            ),
        ),
        LoginOutcome::Accepted | LoginOutcome::NotAttempted { .. } => None,
    }
}

/// The findings about one login report: none when the login worked (and the sender, when
/// checked, was accepted) or was not attempted.
pub(crate) fn findings(
    account: &Account,
    role: Role,
    ep: &Endpoint,
    login: &LoginReport,
) -> Vec<Finding> {
    let target = target_text(&login.target);
    let notify = |code: &str, message: String| Action::NotifyUser {
        account: account.id.clone(),
        problem: code.to_string(),
        message,
    };
    let mut out = Vec::new();
    if let Some(meaning) = meaning(account, ep, &login.outcome) {
        let reply = login
            .server_reply
            .clone()
            .unwrap_or_else(|| "no reply text".to_string());
        let mechanism = login.mechanism.as_deref().unwrap_or("-");
        let mut f = Finding::new(
            meaning.code,
            meaning.severity,
            account.id.clone(),
            Some(role),
            meaning.summary,
        )
        .with_evidence(Evidence::new(
            "auth.login",
            target.clone(),
            format!("{} ({mechanism}): {reply}", login.outcome.as_str()),
        ));
        if let Some(alert) = &login.alert {
            f = f.with_evidence(Evidence::new("imap.alert", target.clone(), alert.clone()));
        }
        if let Some(at) = &login.remembered_from {
            f = f.with_evidence(Evidence::new(
                "auth.ledger",
                target.clone(),
                format!(
                    "answer of the login at {at}; the same password is not tried again, so that the account is never locked by mailmend"
                ),
            ));
        }
        out.push(f.proposing(notify(meaning.code, meaning.message)));
    }
    if let Some(SenderCheck::Rejected { sender, reply }) = &login.sender {
        let client = client_name(account.client);
        let host = &ep.host;
        let user = ep.username.as_deref().unwrap_or("the account");
        let f = Finding::new(
            codes::SMTP_SENDER_REJECTED,
            Severity::Error,
            account.id.clone(),
            Some(role),
            format!("SMTP server {host} accepts the login {user} but refuses {sender} as sender"),
        )
        .with_evidence(Evidence::new(
            "smtp.mail_from",
            target,
            if reply.starts_with("RCPT TO:") {
                reply.clone()
            } else {
                format!("MAIL FROM:<{sender}>: {reply}")
            },
        ));
        out.push(f.proposing(notify(
            codes::SMTP_SENDER_REJECTED,
            format!(
                "The mail server {host} does not let {user} send mail as {sender}, so mail \
                 from {client} will bounce. Check the sender address in {client}, or ask IT to \
                 allow it."
            ),
        )));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailmend_core::{
        AccountId, Capabilities, ClientKind, DnsOutcome, DnsReport, Location, NotAttempted,
        ProbeReport, ProbeTarget, Protocol, Security, TcpOutcome, TlsOutcome,
    };
    use std::sync::Mutex;

    fn account(security: Security, auth: AuthMethod) -> Account {
        Account {
            id: AccountId("msmtp-1".into()),
            client: ClientKind::Msmtp,
            os_user: "ann".into(),
            email: Some("ann@example.com".into()),
            location: Location::File {
                path: "/home/ann/.msmtprc".into(),
            },
            key: "work".into(),
            incoming: None,
            outgoing: Some(Endpoint {
                protocol: Protocol::Smtp,
                host: "smtp.example.com".into(),
                port: 587,
                security,
                auth,
                username: Some("ann@example.com".into()),
            }),
        }
    }

    /// A network where the configured endpoint is healthy or not, and logins answer as told;
    /// it counts the logins asked for.
    struct Fake {
        healthy: bool,
        outcome: LoginOutcome,
        sender: Option<SenderCheck>,
        logins: Mutex<usize>,
    }

    impl Prober for Fake {
        fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, DnsReport> {
            Box::pin(async move {
                DnsReport {
                    host: host.into(),
                    outcome: DnsOutcome::NxDomain,
                    elapsed_ms: 0,
                }
            })
        }
        fn probe<'a>(&'a self, target: &'a ProbeTarget) -> BoxFuture<'a, ProbeReport> {
            Box::pin(async move {
                ProbeReport {
                    target: target.clone(),
                    dns: DnsOutcome::Resolved {
                        addresses: vec!["192.0.2.1".parse().unwrap()],
                    },
                    tcp: TcpOutcome::Connected {
                        address: "192.0.2.1:587".parse().unwrap(),
                    },
                    tls: (target.security != Security::None).then(|| {
                        if self.healthy {
                            TlsOutcome::Established {
                                version: "TLSv1.3".into(),
                                not_after: None,
                            }
                        } else {
                            TlsOutcome::Failed {
                                failure: mailmend_core::TlsFailure::SelfSigned,
                            }
                        }
                    }),
                    capabilities: Some(Capabilities::default()),
                    protocol_error: None,
                    elapsed_ms: 1,
                }
            })
        }
        fn probe_all<'a>(&'a self, _: &'a [ProbeTarget]) -> BoxFuture<'a, Vec<ProbeReport>> {
            Box::pin(async { Vec::new() })
        }
        fn try_login<'a>(&'a self, account: &'a Account, role: Role) -> BoxFuture<'a, LoginReport> {
            Box::pin(async move {
                *self.logins.lock().unwrap() += 1;
                let target = mailmend_core::credential::target_of(account.endpoint(role).unwrap());
                LoginReport {
                    target,
                    outcome: self.outcome.clone(),
                    mechanism: Some("PLAIN".into()),
                    server_reply: Some("535 5.7.8 Error: authentication failed".into()),
                    alert: None,
                    sender: self.sender.clone(),
                    remembered_from: None,
                    elapsed_ms: 3,
                }
            })
        }
    }

    fn fake(healthy: bool, outcome: LoginOutcome) -> Fake {
        Fake {
            healthy,
            outcome,
            sender: None,
            logins: Mutex::new(0),
        }
    }

    async fn run(acc: &Account, net: &Fake) -> Vec<Finding> {
        Credentials.diagnose(acc, net).await
    }

    #[tokio::test]
    async fn every_refusal_gets_its_code_and_only_a_notification() {
        for (outcome, code, severity) in [
            (LoginOutcome::Rejected, codes::AUTH_FAILED, Severity::Error),
            (LoginOutcome::Locked, codes::AUTH_LOCKED, Severity::Error),
            (
                LoginOutcome::PasswordExpired,
                codes::AUTH_PASSWORD_EXPIRED,
                Severity::Error,
            ),
            (
                LoginOutcome::AppPasswordRequired,
                codes::AUTH_APP_PASSWORD_REQUIRED,
                Severity::Error,
            ),
            (
                LoginOutcome::EncryptionRequired,
                codes::AUTH_ENCRYPTION_REQUIRED,
                Severity::Error,
            ),
            (
                LoginOutcome::TemporaryFailure,
                codes::AUTH_TEMPORARY_FAILURE,
                Severity::Warning,
            ),
        ] {
            let acc = account(Security::StartTls, AuthMethod::Any);
            let f = run(&acc, &fake(true, outcome.clone())).await;
            assert_eq!(f.len(), 1, "{outcome:?}: {f:?}");
            assert_eq!(f[0].code, code);
            assert_eq!(f[0].severity, severity);
            assert_eq!(f[0].role, Some(Role::Outgoing));
            assert!(codes::ALL.contains(&f[0].code.as_str()));
            assert_eq!(f[0].proposed.len(), 1);
            assert!(
                matches!(&f[0].proposed[0], Action::NotifyUser { problem, .. } if problem == code)
            );
            assert_eq!(f[0].evidence[0].probe, "auth.login");
            assert!(
                f[0].evidence[0].result.contains("535 5.7.8"),
                "{:?}",
                f[0].evidence
            );
        }
    }

    #[tokio::test]
    async fn an_accepted_login_is_no_finding_unless_the_sender_is_refused() {
        let acc = account(Security::Tls, AuthMethod::PasswordCleartext);
        assert!(run(&acc, &fake(true, LoginOutcome::Accepted))
            .await
            .is_empty());
        let mut net = fake(true, LoginOutcome::Accepted);
        net.sender = Some(SenderCheck::Rejected {
            sender: "ann@example.com".into(),
            reply: "550 5.7.1 Sender address rejected: not owned by user".into(),
        });
        let f = run(&acc, &net).await;
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].code, codes::SMTP_SENDER_REJECTED);
        assert!(f[0].evidence[0].result.contains("550 5.7.1"));
        assert!(matches!(f[0].proposed[..], [Action::NotifyUser { .. }]));
        net.sender = Some(SenderCheck::Accepted {
            sender: "ann@example.com".into(),
        });
        assert!(run(&acc, &net).await.is_empty());
    }

    #[tokio::test]
    async fn no_login_is_asked_for_a_broken_plaintext_or_non_password_endpoint() {
        let net = fake(false, LoginOutcome::Rejected);
        assert!(run(&account(Security::Tls, AuthMethod::Any), &net)
            .await
            .is_empty());
        let net = fake(true, LoginOutcome::Rejected);
        assert!(run(&account(Security::None, AuthMethod::Any), &net)
            .await
            .is_empty());
        assert!(run(&account(Security::Tls, AuthMethod::Gssapi), &net)
            .await
            .is_empty());
        assert!(run(&account(Security::Tls, AuthMethod::OAuth2), &net)
            .await
            .is_empty());
        assert!(run(&account(Security::Tls, AuthMethod::None), &net)
            .await
            .is_empty());
        assert_eq!(*net.logins.lock().unwrap(), 0);
        let acc = account(Security::Tls, AuthMethod::PasswordEncrypted);
        run(&acc, &net).await;
        assert_eq!(*net.logins.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn a_login_that_was_not_attempted_is_no_finding() {
        let acc = account(Security::Tls, AuthMethod::Any);
        for reason in [
            NotAttempted::Disabled,
            NotAttempted::NoCredential,
            NotAttempted::Unsupported,
            NotAttempted::Busy,
        ] {
            let net = fake(true, LoginOutcome::NotAttempted { reason });
            assert!(run(&acc, &net).await.is_empty());
        }
    }

    #[test]
    fn a_remembered_refusal_says_when_and_why_it_is_not_retried() {
        let acc = account(Security::Tls, AuthMethod::Any);
        let ep = acc.outgoing.clone().unwrap();
        let mut login = LoginReport::not_attempted(
            mailmend_core::credential::target_of(&ep),
            NotAttempted::Busy,
        );
        login.outcome = LoginOutcome::Rejected;
        login.remembered_from = Some("2024-05-01T10:00:00Z".into());
        login.alert = Some("Your password is wrong".into());
        let f = findings(&acc, Role::Outgoing, &ep, &login);
        assert_eq!(f[0].code, codes::AUTH_FAILED);
        let probes: Vec<&str> = f[0].evidence.iter().map(|e| e.probe.as_str()).collect();
        assert_eq!(probes, ["auth.login", "imap.alert", "auth.ledger"]);
        assert!(f[0].evidence[2].result.contains("2024-05-01T10:00:00Z"));
    }
}
