//! Configuration text for every lab daemon, generated from the lab's directory layout and
//! addresses: Dovecot, Postfix, NSD, the two Unbounds, the MIT KDC and nginx, plus the
//! autoconfig and autodiscover documents nginx serves.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::{User, REALM};

/// The lab's network: 10.213.<id>.0/24, with fixed host numbers per role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addrs {
    /// The third octet, equal to the lab id.
    pub id: u8,
}

impl Addrs {
    /// Address `host` in this lab's /24.
    pub fn ip(self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.id, host)
    }
    /// The client namespace's address.
    pub fn client(self) -> Ipv4Addr {
        self.ip(100)
    }
    /// NSD, authoritative for example.com (ns1.example.com).
    pub fn ns(self) -> Ipv4Addr {
        self.ip(2)
    }
    /// The caching resolver the client's resolv.conf names.
    pub fn resolver(self) -> Ipv4Addr {
        self.ip(3)
    }
    /// The Kerberos KDC.
    pub fn kdc(self) -> Ipv4Addr {
        self.ip(4)
    }
    /// The mail server (Dovecot and Postfix), "the old server" in migration scenarios.
    pub fn mail(self) -> Ipv4Addr {
        self.ip(10)
    }
    /// The second mail server address, "the new server after a migration".
    pub fn new_mail(self) -> Ipv4Addr {
        self.ip(11)
    }
    /// nginx with autoconfig and autodiscover.
    pub fn web(self) -> Ipv4Addr {
        self.ip(20)
    }
    /// Every server-side address, the first one being the interface's primary address.
    pub fn server_side(self) -> [Ipv4Addr; 6] {
        [
            self.ns(),
            self.resolver(),
            self.kdc(),
            self.mail(),
            self.new_mail(),
            self.web(),
        ]
    }
}

/// Where each daemon's files live inside the lab directory.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The lab directory.
    pub root: PathBuf,
}

impl Layout {
    /// A path below the lab directory.
    pub fn p(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
    /// Daemon logs, one file per daemon.
    pub fn logs(&self) -> PathBuf {
        self.p("logs")
    }
    /// Dovecot's runtime directory with its sockets and pid file.
    pub fn dovecot_run(&self) -> PathBuf {
        self.p("dovecot/run")
    }
    /// Postfix's configuration directory.
    pub fn postfix_conf(&self) -> PathBuf {
        self.p("postfix/conf")
    }
    /// Postfix's queue directory.
    pub fn postfix_queue(&self) -> PathBuf {
        self.p("postfix/spool")
    }
}

fn d(p: &Path) -> String {
    p.display().to_string()
}

/// dovecot.conf: IMAP 143/993 and POP3 110/995 on both mail addresses, passwd-file users,
/// LMTP and auth sockets for Postfix, plaintext authentication refused without TLS.
pub fn dovecot(l: &Layout, a: Addrs, id: u8, mail_uid: u32, mail_gid: u32) -> String {
    let dh = if Path::new("/usr/share/dovecot/dh.pem").exists() {
        "ssl_dh = </usr/share/dovecot/dh.pem\n"
    } else {
        ""
    };
    format!(
        r#"# mailmend lab {id}: Dovecot
instance_name = mml{id}-dovecot
base_dir = {run}
state_dir = {state}
log_path = {logs}/dovecot.log
protocols = imap pop3 lmtp
listen = {mail}, {new_mail}
ssl = yes
ssl_cert = <{active}/cert.pem
ssl_key = <{active}/key.pem
{dh}disable_plaintext_auth = yes
auth_mechanisms = plain login
auth_verbose = yes
# Dovecot delays every failed login by two seconds by default; tests try wrong passwords.
auth_failure_delay = 0
login_greeting = mailmend lab IMAP ready
# The mail user (uid {mail_uid}) is below Dovecot's default first_valid_uid of 500.
first_valid_uid = {mail_uid}
first_valid_gid = {mail_gid}
mail_uid = {mail_uid}
mail_gid = {mail_gid}
mail_location = maildir:{mail_root}/%d/%n
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \Sent
    auto = subscribe
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {users}
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={mail_root}/%d/%n
}}
service imap-login {{
  inet_listener imap {{
    port = 143
  }}
  inet_listener imaps {{
    port = 993
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 110
  }}
  inet_listener pop3s {{
    port = 995
    ssl = yes
  }}
}}
service auth {{
  unix_listener auth-postfix {{
    mode = 0660
    user = postfix
    group = postfix
  }}
}}
service lmtp {{
  unix_listener lmtp-postfix {{
    mode = 0660
    user = postfix
    group = postfix
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@example.com
}}
"#,
        run = d(&l.dovecot_run()),
        state = d(&l.p("dovecot/state")),
        logs = d(&l.logs()),
        mail = a.mail(),
        new_mail = a.new_mail(),
        active = d(&l.p("certs/active")),
        mail_root = d(&l.p("mail")),
        users = d(&l.p("dovecot/users")),
    )
}

/// Dovecot's passwd-file: `user:{PLAIN}password` lines.
pub fn dovecot_users(users: &[User]) -> String {
    users
        .iter()
        .map(|u| format!("{}:{{PLAIN}}{}::::::\n", u.login, u.password))
        .collect()
}

/// Dovecot's passwd-file with `fields` as the passdb extra fields of the user `login`
/// (`nologin`, `reason=…`), or without that user at all when `fields` is `None` (another passdb
/// then answers for them).
pub fn dovecot_users_with_fields(users: &[User], login: &str, fields: Option<&str>) -> String {
    users
        .iter()
        .filter_map(|u| match (u.login == login, fields) {
            (false, _) => Some(format!("{}:{{PLAIN}}{}::::::\n", u.login, u.password)),
            (true, Some(f)) => Some(format!("{}:{{PLAIN}}{}::::::{f}\n", u.login, u.password)),
            (true, None) => None,
        })
        .collect()
}

/// Postfix main.cf: example.com delivered to Dovecot over LMTP, TLS everywhere it is asked
/// for, SASL through Dovecot only where master.cf enables it. Never put a `# comment` after a
/// value: Postfix would make it part of the value.
///
/// `inet_interfaces = all` rather than the two mail addresses: smtpd refuses to start when a
/// listed address is missing, so `take_down_address` (the old server gone after a migration)
/// would otherwise break mail on the address that remains. The server namespace holds only
/// lab addresses.
pub fn postfix_main(l: &Layout) -> String {
    let run = l.dovecot_run();
    format!(
        r#"compatibility_level = 3.6
myhostname = mail.example.com
mydomain = example.com
myorigin = example.com
mydestination =
inet_interfaces = all
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
queue_directory = {queue}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
maillog_file = {logs}/postfix.log
maillog_file_prefixes = {logs}
virtual_mailbox_domains = example.com
virtual_mailbox_maps = texthash:{conf}/vmailbox
virtual_transport = lmtp:unix:{run}/lmtp-postfix
alias_maps =
alias_database =
local_recipient_maps =
relay_domains =
biff = no
append_dot_mydomain = no
smtputf8_enable = no
smtpd_banner = $myhostname ESMTP mailmend lab
smtpd_tls_cert_file = {active}/cert.pem
smtpd_tls_key_file = {active}/key.pem
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtpd_tls_loglevel = 1
smtpd_sasl_type = dovecot
smtpd_sasl_path = {run}/auth-postfix
smtpd_sasl_auth_enable = no
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
service_throttle_time = 1s
"#,
        queue = d(&l.postfix_queue()),
        data = d(&l.p("postfix/data")),
        logs = d(&l.logs()),
        conf = d(&l.postfix_conf()),
        run = d(&run),
        active = d(&l.p("certs/active")),
    )
}

/// Postfix master.cf: every service unchrooted (a chrooted smtpd would lack resolv.conf and
/// Dovecot's auth socket); 25 without AUTH, 587 with STARTTLS required before AUTH, 465 with
/// implicit TLS.
pub fn postfix_master() -> String {
    let submission_opts = "  -o smtpd_sasl_auth_enable=yes\n  \
         -o smtpd_tls_auth_only=yes\n  \
         -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n  \
         -o smtpd_relay_restrictions=permit_sasl_authenticated,reject\n";
    format!(
        "smtp inet n - n - - smtpd\n\
         submission inet n - n - - smtpd\n  \
         -o syslog_name=postfix/submission\n  \
         -o smtpd_tls_security_level=encrypt\n\
         {submission_opts}\
         submissions inet n - n - - smtpd\n  \
         -o syslog_name=postfix/submissions\n  \
         -o smtpd_tls_wrappermode=yes\n\
         {submission_opts}\
         pickup unix n - n 60 1 pickup\n\
         cleanup unix n - n - 0 cleanup\n\
         qmgr unix n - n 300 1 qmgr\n\
         tlsmgr unix - - n 1000? 1 tlsmgr\n\
         rewrite unix - - n - - trivial-rewrite\n\
         bounce unix - - n - 0 bounce\n\
         defer unix - - n - 0 bounce\n\
         trace unix - - n - 0 bounce\n\
         verify unix - - n - 1 verify\n\
         flush unix n - n 1000? 0 flush\n\
         proxymap unix - - n - - proxymap\n\
         proxywrite unix - - n - 1 proxymap\n\
         smtp unix - - n - - smtp\n\
         relay unix - - n - - smtp\n\
         showq unix n - n - - showq\n\
         error unix - - n - - error\n\
         retry unix - - n - - error\n\
         discard unix - - n - - discard\n\
         local unix - n n - - local\n\
         virtual unix - n n - - virtual\n\
         lmtp unix - - n - - lmtp\n\
         anvil unix - - n - 1 anvil\n\
         scache unix - - n - 1 scache\n\
         postlog unix-dgram n - n - 1 postlogd\n"
    )
}

/// Postfix's texthash table of the mailboxes it accepts mail for.
pub fn postfix_vmailbox(users: &[User]) -> String {
    users.iter().map(|u| format!("{} ok\n", u.login)).collect()
}

/// nsd.conf: authoritative for example.com and hosting.test on ns1's address, controlled over
/// a unix socket.
pub fn nsd(l: &Layout, a: Addrs) -> String {
    format!(
        r#"server:
    ip-address: {ns}
    port: 53
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "{dir}"
    database: ""
    zonelistfile: "{dir}/zone.list"
    xfrdfile: "{dir}/xfrd.state"
    xfrdir: "{dir}/xfr"
    pidfile: "{dir}/nsd.pid"
    logfile: "{logs}/nsd.log"
    server-count: 1
    hide-version: yes
    verbosity: 1
remote-control:
    control-enable: yes
    control-interface: "{dir}/nsd.ctl"
zone:
    name: "example.com"
    zonefile: "example.com.zone"
zone:
    name: "hosting.test"
    zonefile: "hosting.test.zone"
"#,
        ns = a.ns(),
        dir = d(&l.p("nsd")),
        logs = d(&l.logs()),
    )
}

/// The lab resolver's unbound.conf: recursion for example.com and hosting.test through stub
/// zones to NSD, every other name NXDOMAIN (nothing may leave the lab), no DNSSEC validation (no trust
/// anchor can be fetched here).
pub fn unbound_resolver(l: &Layout, a: Addrs) -> String {
    let dir = l.p("unbound");
    format!(
        r#"server:
    interface: {ip}
    port: 53
    do-ip6: no
    access-control: 10.213.{id}.0/24 allow
    access-control: 127.0.0.0/8 allow
    username: ""
    chroot: ""
    directory: "{dir}"
    pidfile: "{dir}/unbound.pid"
    logfile: "{logs}/unbound.log"
    use-syslog: no
    verbosity: 1
    num-threads: 1
    so-reuseport: no
    module-config: "iterator"
    local-zone: "." static
    local-zone: "example.com." transparent
    local-zone: "hosting.test." transparent
    domain-insecure: "example.com"
    domain-insecure: "hosting.test"
stub-zone:
    name: "example.com"
    stub-addr: {ns}
stub-zone:
    name: "hosting.test"
    stub-addr: {ns}
remote-control:
    control-enable: yes
    control-interface: "{dir}/control.sock"
    control-use-cert: no
"#,
        ip = a.resolver(),
        id = a.id,
        dir = d(&dir),
        logs = d(&l.logs()),
        ns = a.ns(),
    )
}

/// The client's local caching unbound.conf on 127.0.0.1: forwards to the lab resolver and
/// keeps every answer for a day whatever its TTL, so a stale cache can be shown and flushed.
pub fn unbound_local(l: &Layout, a: Addrs) -> String {
    let dir = l.p("unbound-local");
    format!(
        r#"server:
    interface: 127.0.0.1
    port: 53
    do-ip6: no
    access-control: 127.0.0.0/8 allow
    username: ""
    chroot: ""
    directory: "{dir}"
    pidfile: "{dir}/unbound.pid"
    logfile: "{logs}/unbound-local.log"
    use-syslog: no
    verbosity: 1
    num-threads: 1
    so-reuseport: no
    module-config: "iterator"
    cache-min-ttl: 86400
    domain-insecure: "example.com"
    domain-insecure: "hosting.test"
    # Unbound answers test. itself (RFC 6761) unless told otherwise.
    local-zone: "hosting.test." transparent
forward-zone:
    name: "."
    forward-addr: {resolver}
remote-control:
    control-enable: yes
    control-interface: "{dir}/control.sock"
    control-use-cert: no
"#,
        dir = d(&dir),
        logs = d(&l.logs()),
        resolver = a.resolver(),
    )
}

/// krb5.conf for the KDC tools and, through /etc/netns, for the client namespace.
///
/// Default credential caches live in the lab directory (`krb5cc/krb5cc_<uid>`), so that the
/// agent finds a user's tickets where `Lab::kinit` puts them and nothing lands in the host's
/// shared /tmp.
pub fn krb5_conf(l: &Layout, a: Addrs) -> String {
    format!(
        r#"[libdefaults]
    default_realm = {REALM}
    default_ccache_name = FILE:{cc}/krb5cc_%{{uid}}
    dns_lookup_realm = false
    dns_lookup_kdc = false
    rdns = false
    dns_canonicalize_hostname = false
[realms]
    {REALM} = {{
        kdc = {kdc}
        admin_server = {kdc}
    }}
[domain_realm]
    .example.com = {REALM}
    example.com = {REALM}
"#,
        kdc = a.kdc(),
        cc = d(&l.p("krb5cc")),
    )
}

/// kdc.conf: the realm database in the lab directory, renewable tickets up to seven days.
pub fn kdc_conf(l: &Layout, a: Addrs) -> String {
    let dir = l.p("krb5");
    format!(
        r#"[kdcdefaults]
    kdc_listen = {kdc}:88
    kdc_tcp_listen = {kdc}:88
[realms]
    {REALM} = {{
        database_name = {dir}/principal
        key_stash_file = {dir}/stash
        acl_file = {dir}/kadm5.acl
        admin_keytab = FILE:{dir}/kadm5.keytab
        max_life = 1d
        max_renewable_life = 7d
        master_key_type = aes256-cts-hmac-sha1-96
        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
        kdc_listen = {kdc}:88
        kdc_tcp_listen = {kdc}:88
    }}
[logging]
    kdc = FILE:{logs}/krb5kdc.log
    default = FILE:{logs}/krb5-tools.log
"#,
        kdc = a.kdc(),
        dir = d(&dir),
        logs = d(&l.logs()),
    )
}

/// kadmin.local commands: renewable limits on krbtgt and one principal per user (LAB-NOTES 7:
/// renewal needs a limit on the realm, on krbtgt and on the principal).
pub fn kadmin_script(users: &[User]) -> String {
    let mut s = format!("modprinc -maxrenewlife 7d krbtgt/{REALM}\n");
    for u in users {
        s.push_str(&format!(
            "addprinc -pw {} -maxrenewlife 7d {}\n",
            u.password, u.principal
        ));
    }
    s
}

/// nginx.conf: autoconfig and autodiscover over HTTPS (root `www/`) and plain HTTP (root
/// `www-http/`, falling back to `www/`, so that a document can be served over plain HTTP only)
/// on the web address. Autodiscover answers 401 or 403 while the flag file
/// `nginx/autodiscover-401` or `-403` exists. The access log records the scheme of each request.
pub fn nginx(l: &Layout, a: Addrs) -> String {
    let dir = l.p("nginx");
    format!(
        r#"daemon off;
master_process on;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {logs}/nginx-error.log info;
events {{
    worker_connections 64;
}}
http {{
    log_format lab '$remote_addr $scheme $host "$request" $status';
    access_log {logs}/nginx-access.log lab;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    types {{
        application/xml xml;
        text/html html;
    }}
    default_type application/octet-stream;
    server {{
        listen {web}:443 ssl;
        server_name autoconfig.example.com autodiscover.example.com example.com;
        ssl_certificate {certs}/good.pem;
        ssl_certificate_key {certs}/server.key;
        root {www};
        # Outlook POSTs its autodiscover request; answer it with the static file (an error
        # page redirect turns the method into GET).
        location ~* ^/autodiscover/autodiscover\.xml$ {{
            if (-f {dir}/autodiscover-401) {{
                add_header WWW-Authenticate 'Basic realm="mailmend lab"' always;
                return 401;
            }}
            if (-f {dir}/autodiscover-403) {{
                return 403;
            }}
            error_page 405 =200 /autodiscover/autodiscover.xml;
            default_type application/xml;
        }}
    }}
    server {{
        listen {web}:80;
        server_name autoconfig.example.com autodiscover.example.com example.com;
        root {www_http};
        location / {{
            try_files $uri @shared;
        }}
        location @shared {{
            root {www};
        }}
        location ~* ^/autodiscover/autodiscover\.xml$ {{
            root {www};
            error_page 405 =200 /autodiscover/autodiscover.xml;
            default_type application/xml;
        }}
    }}
}}
"#,
        dir = d(&dir),
        logs = d(&l.logs()),
        web = a.web(),
        certs = d(&l.p("certs")),
        www = d(&l.p("www")),
        www_http = d(&l.p("www-http")),
    )
}

/// Thunderbird autoconfig (config-v1.1.xml) for example.com: IMAP 993, POP3 995 and SMTP 465,
/// all with implicit TLS.
pub fn autoconfig_xml() -> String {
    r#"<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="example.com">
    <domain>example.com</domain>
    <displayName>Example Mail (mailmend lab)</displayName>
    <displayShortName>Example</displayShortName>
    <incomingServer type="imap">
      <hostname>imap.example.com</hostname>
      <port>993</port>
      <socketType>SSL</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </incomingServer>
    <incomingServer type="pop3">
      <hostname>pop.example.com</hostname>
      <port>995</port>
      <socketType>SSL</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.example.com</hostname>
      <port>465</port>
      <socketType>SSL</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </outgoingServer>
  </emailProvider>
</clientConfig>
"#
    .to_string()
}

/// A static Autodiscover POX answer (Outlook's 2006a response schema) for example.com.
pub fn autodiscover_xml() -> String {
    r#"<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
  <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">
    <Account>
      <AccountType>email</AccountType>
      <Action>settings</Action>
      <Protocol>
        <Type>IMAP</Type>
        <Server>imap.example.com</Server>
        <Port>993</Port>
        <DomainRequired>off</DomainRequired>
        <SPA>off</SPA>
        <SSL>on</SSL>
        <AuthRequired>on</AuthRequired>
      </Protocol>
      <Protocol>
        <Type>SMTP</Type>
        <Server>smtp.example.com</Server>
        <Port>465</Port>
        <DomainRequired>off</DomainRequired>
        <SPA>off</SPA>
        <SSL>on</SSL>
        <AuthRequired>on</AuthRequired>
      </Protocol>
    </Account>
  </Response>
</Autodiscover>
"#
    .to_string()
}
