//! The stable finding codes of the built-in diagnostics: what each means and what fixes it.
//!
//! Codes are part of mailmend's interface: policies, the audit log, notifications (one per
//! problem) and the documentation refer to them, so a code is never renamed or reused.
//!
//! One root cause gets one code: which diagnostic owns which cause is written down in the
//! crate's `causes` module.

/// The configured port does not work, but another port with the same security does on the same
/// host (e.g. IMAP with SSL/TLS on 143 instead of 993). Fixed by setting the port.
pub const SETTINGS_WRONG_PORT: &str = "settings.wrong_port";

/// The configured port works with a different security only (e.g. 143 set to SSL/TLS where the
/// server speaks STARTTLS). Fixed by setting the security; never to plaintext.
pub const SETTINGS_WRONG_SECURITY: &str = "settings.wrong_security";

/// Neither the configured port nor its security work, but another encrypted pair does on the same
/// host (e.g. 143 STARTTLS refused, 993 SSL/TLS accepted). Fixed by setting both.
pub const SETTINGS_WRONG_PORT_SECURITY: &str = "settings.wrong_port_security";

/// The configured host does not serve mail any more, but a server the email domain's SRV
/// records, autoconfig or Autodiscover name, or a standard mail host name of the domain, does (a
/// moved server); the evidence says which record named it. Fixed by setting the host (and
/// port/security when those differ too). For Exchange accounts, whose server Outlook takes from
/// Autodiscover, nothing is rewritten: the user is told to let Outlook repeat Autodiscover.
pub const SETTINGS_WRONG_HOST: &str = "settings.wrong_host";

/// The email domain's Autodiscover service wants a login (HTTP 401 or 403) before it names the
/// account's servers, so mailmend (which never sends a password to it) cannot read the settings
/// there. Reported once per account, when the server had to be looked up (the configured one
/// does not work, or an Exchange account names none) and nothing else named a working one.
/// Fixed by IT: anonymous POX Autodiscover for the domain, SRV or autoconfig records, or the
/// right server settings given to the user.
pub const AUTODISCOVER_UNAUTHORIZED: &str = "autodiscover.unauthorized";

/// An Exchange account names no working server, and the email domain's Autodiscover (and
/// autoconfig) name none either: Outlook cannot find its mailbox server. Fixed by IT in the
/// domain's Autodiscover DNS records or service.
pub const AUTODISCOVER_NOT_FOUND: &str = "autodiscover.not_found";

/// The server name does not exist in DNS (NXDOMAIN), usually a typo or a retired name. Fixed by
/// setting the host when a near name inside the email domain works; otherwise IT must give the
/// right name.
pub const DNS_NXDOMAIN: &str = "dns.nxdomain";

/// The server name exists but has no address records. Fixed by IT in the domain's DNS zone.
pub const DNS_NO_RECORDS: &str = "dns.no_records";

/// A configured DNS server does not answer. Reported by the DNS diagnostic, once per account
/// (no role: the resolver is the computer's). A Warning when another configured server answers
/// (mail works, lookups are slowed by the wait for the dead one; IT must fix or remove it); an
/// Error when none answers, which the user is told about when the domain's own servers are
/// reachable (then only the resolver is broken: a VPN or network setting to check).
pub const DNS_RESOLVER_UNREACHABLE: &str = "dns.resolver_unreachable";

/// This computer's DNS cache still gives the server's old address, which no longer answers,
/// while the domain's authoritative servers give a new address that does (a moved server).
/// Reported by the DNS diagnostic, only for an endpoint that failed at the TCP level. Fixed by
/// flushing the DNS cache.
pub const DNS_STALE_CACHE: &str = "dns.stale_cache";

/// A rule of this computer's firewall (nftables or iptables) drops or rejects connections to the
/// configured server and port. Reported by the firewall diagnostic with the rule as evidence.
/// Fixed by a firewall exception for the server's addresses and port, where the policy allows.
pub const FIREWALL_BLOCKED_LOCALLY: &str = "firewall.blocked_locally";

/// The account logs in with Kerberos, but the user has no ticket-granting ticket. The user must
/// log in to Kerberos again (`kinit`, or unlock the session).
pub const KERBEROS_NO_TICKET: &str = "kerberos.no_ticket";

/// The user's ticket-granting ticket has expired. Kerberos cannot renew a ticket after its end
/// time, so the user must log in to Kerberos again.
pub const KERBEROS_TICKET_EXPIRED: &str = "kerberos.ticket_expired";

/// The user's ticket-granting ticket expires within the hour. Renewed by mailmend when it is
/// renewable beyond its current end; otherwise the user is told to log in again soon.
pub const KERBEROS_TICKET_EXPIRING: &str = "kerberos.ticket_expiring";

/// The user's credential cache could not be read (a cache type other than FILE, no permission,
/// a corrupt file); nothing is concluded about the tickets.
pub const KERBEROS_CACHE_UNREADABLE: &str = "kerberos.cache_unreadable";

/// The lookup failed in another way (SERVFAIL, a malformed answer). Usually a broken zone or
/// DNSSEC problem at the domain; fixed by IT.
pub const DNS_FAILED: &str = "dns.failed";

/// The server's certificate has expired. Only the server's administrator can fix it (renew the
/// certificate); mailmend notifies the user and never turns certificate checks off.
pub const TLS_CERTIFICATE_EXPIRED: &str = "tls.certificate_expired";

/// The server's certificate is not valid yet: the server's or this machine's clock is wrong, or
/// the certificate was installed too early. Fixed by correcting the clock or the certificate.
pub const TLS_CERTIFICATE_NOT_YET_VALID: &str = "tls.certificate_not_yet_valid";

/// The server presents a self-signed certificate. Fixed by a certificate from a trusted authority
/// on the server, or by IT distributing the company CA (policy `[tls] extra_ca_files`).
pub const TLS_CERTIFICATE_SELF_SIGNED: &str = "tls.certificate_self_signed";

/// The certificate's issuer is not trusted or the server sends an incomplete chain. Fixed by the
/// server sending its intermediates, or by IT trusting the company CA; possibly an interception.
pub const TLS_CERTIFICATE_UNTRUSTED: &str = "tls.certificate_untrusted";

/// The certificate does not name the configured host. When it names a working host inside the
/// account's email domain (a moved or aliased server) that host is proposed; otherwise IT must
/// fix the certificate or give the right name.
pub const TLS_NAME_MISMATCH: &str = "tls.name_mismatch";

/// Client and server share no TLS version or cipher suite (a very old or very strict server).
/// Fixed on the server; mailmend never weakens TLS.
pub const TLS_PROTOCOL_MISMATCH: &str = "tls.protocol_mismatch";

/// The TLS handshake failed for another reason. Fixed by IT after reading the evidence.
pub const TLS_HANDSHAKE_FAILED: &str = "tls.handshake_failed";

/// Every mail port of the host times out: the host is down or the path to it drops everything
/// (a local firewall rule or a stale DNS cache is reported by the firewall or DNS diagnostic
/// instead).
pub const NETWORK_UNREACHABLE_HOST: &str = "network.unreachable_host";

/// The configured port times out while other ports of the same host answer, no other port
/// works with an acceptable security, and no local firewall rule is the cause: a firewall on
/// the way drops that port. Reported by the connectivity diagnostic (a local rule is the
/// firewall diagnostic's `firewall.blocked_locally` instead). Fixed by the network's
/// administrator.
pub const NETWORK_BLOCKED_UPSTREAM: &str = "network.blocked_upstream";

/// The host refuses the configured port and no other mail port works: the mail service is down
/// or not listening. Fixed by the server's administrator.
pub const NETWORK_SERVICE_DOWN: &str = "network.service_down";

/// There is no route to the host (no network, a VPN not connected, or an ICMP reject rule).
/// Fixed by restoring the network path.
pub const NETWORK_NO_ROUTE: &str = "network.no_route";

/// Connecting failed for another reason (the evidence says which). Fixed by IT.
pub const NETWORK_CONNECT_FAILED: &str = "network.connect_failed";

/// The account sends its password unencrypted (plaintext connection with a cleartext password).
/// Fixed by switching to STARTTLS or SSL/TLS when the server offers it; otherwise IT must enable
/// TLS on the server. mailmend never sets up the reverse.
pub const SECURITY_PLAINTEXT_PASSWORD: &str = "security.plaintext_password";

/// The server only offers unencrypted connections where encryption is configured. mailmend will
/// not switch the account to plaintext; IT must enable TLS on the server.
pub const SECURITY_TLS_UNAVAILABLE: &str = "security.tls_unavailable";

/// The configured authentication method is not offered by the server on the encrypted
/// connection (e.g. Kerberos configured but no AUTH=GSSAPI, or SMTP without AUTH while the
/// account logs in). IMAP `LOGINDISABLED` with no password mechanism after TLS is
/// `auth.encryption_required` instead. Fixed by a not weaker method of the same kind when the server offers one;
/// otherwise IT must enable the method or give the right one.
pub const AUTH_METHOD_NOT_OFFERED: &str = "auth.method_not_offered";

/// The server rejected the password the mail client stores (IMAP `[AUTHENTICATIONFAILED]`,
/// SMTP 535 5.7.8, POP3 `-ERR [AUTH]`): a wrong user name or password. Reported by the
/// credentials diagnostic from one login, only when the policy's `[credentials] source` allows
/// logins; the same password is never tried again. The user must enter the current password.
pub const AUTH_FAILED: &str = "auth.failed";

/// The server says the account is locked or disabled (IMAP `[CONTACTADMIN]`, POP3
/// `[SYS/PERM]`, a refusal that says so). Only IT can unlock it; mailmend never retries.
pub const AUTH_LOCKED: &str = "auth.locked";

/// The account's password has expired (IMAP `[EXPIRED]`, SMTP 432 4.7.12). The user must change
/// it and enter the new one in the client.
pub const AUTH_PASSWORD_EXPIRED: &str = "auth.password_expired";

/// The server no longer accepts the plain password: it wants an app password, a web sign-in or
/// multi-factor authentication (SMTP 534 5.7.9 / 5.7.14, 535 5.7.139, an IMAP `[ALERT]` asking
/// for an application-specific password). The user must create an app password or IT must set
/// up modern authentication.
pub const AUTH_APP_PASSWORD_REQUIRED: &str = "auth.app_password_required";

/// The server refused to check the password on the verified TLS connection, asking for
/// encryption (SMTP 530 5.7.0 or 538, IMAP `[PRIVACYREQUIRED]`), or already said so before any
/// login: IMAP `LOGINDISABLED` with no password mechanism in the capabilities read after TLS
/// (implicit or STARTTLS), reported by the connectivity diagnostic for an account that logs in
/// with a password, which then never sends it. A server whose TLS policy does not match what
/// it offers, typically because a TLS terminator (load balancer, nginx stream, stunnel) in
/// front of it is not trusted (Dovecot `login_trusted_networks`, the PROXY protocol), so the
/// server sees plaintext. No client setting fixes it: the user is told; fixed by IT.
pub const AUTH_ENCRYPTION_REQUIRED: &str = "auth.encryption_required";

/// The server could not check the password now (IMAP `[UNAVAILABLE]`, SMTP 454 4.7.0, POP3
/// `[SYS/TEMP]` or `[IN-USE]`), or its answer to the login could not be read. A Warning: the
/// next check (after the policy's interval) tries again.
pub const AUTH_TEMPORARY_FAILURE: &str = "auth.temporary_failure";

/// The SMTP server accepts the login but refuses the account's own address as sender
/// (`MAIL FROM`, or `RCPT TO` that address, answered 550/553 5.7.1 or another 5xx naming the
/// sender; nothing is ever sent). The user must fix the sender address, or IT must allow it for
/// that login.
pub const SMTP_SENDER_REJECTED: &str = "smtp.sender_rejected";

/// The server answers on the configured port but not in the configured protocol (say an SMTP
/// banner on an IMAP port) and no other mail port works. IT must give the right settings.
pub const PROTOCOL_UNEXPECTED_REPLY: &str = "protocol.unexpected_reply";

/// Every code above, for documentation and for checks that a finding's code is known.
pub const ALL: &[&str] = &[
    SETTINGS_WRONG_PORT,
    SETTINGS_WRONG_SECURITY,
    SETTINGS_WRONG_PORT_SECURITY,
    SETTINGS_WRONG_HOST,
    AUTODISCOVER_UNAUTHORIZED,
    AUTODISCOVER_NOT_FOUND,
    DNS_NXDOMAIN,
    DNS_NO_RECORDS,
    DNS_RESOLVER_UNREACHABLE,
    DNS_FAILED,
    DNS_STALE_CACHE,
    FIREWALL_BLOCKED_LOCALLY,
    KERBEROS_NO_TICKET,
    KERBEROS_TICKET_EXPIRED,
    KERBEROS_TICKET_EXPIRING,
    KERBEROS_CACHE_UNREADABLE,
    TLS_CERTIFICATE_EXPIRED,
    TLS_CERTIFICATE_NOT_YET_VALID,
    TLS_CERTIFICATE_SELF_SIGNED,
    TLS_CERTIFICATE_UNTRUSTED,
    TLS_NAME_MISMATCH,
    TLS_PROTOCOL_MISMATCH,
    TLS_HANDSHAKE_FAILED,
    NETWORK_UNREACHABLE_HOST,
    NETWORK_BLOCKED_UPSTREAM,
    NETWORK_SERVICE_DOWN,
    NETWORK_NO_ROUTE,
    NETWORK_CONNECT_FAILED,
    SECURITY_PLAINTEXT_PASSWORD,
    SECURITY_TLS_UNAVAILABLE,
    AUTH_METHOD_NOT_OFFERED,
    AUTH_FAILED,
    AUTH_LOCKED,
    AUTH_PASSWORD_EXPIRED,
    AUTH_APP_PASSWORD_REQUIRED,
    AUTH_ENCRYPTION_REQUIRED,
    AUTH_TEMPORARY_FAILURE,
    SMTP_SENDER_REJECTED,
    PROTOCOL_UNEXPECTED_REPLY,
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_dotted_snake_case() {
        let mut seen = HashSet::new();
        for code in ALL {
            assert!(seen.insert(code), "duplicate code {code}");
            let (area, name) = code.split_once('.').expect("dotted");
            for part in [area, name] {
                assert!(!part.is_empty());
                assert!(
                    part.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                    "{code} is not snake_case"
                );
            }
        }
    }
}
