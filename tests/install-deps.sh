#!/bin/sh
# Installs the Debian packages the mailmend end-to-end lab (tests/lab) needs.
#
# Run as root on Debian 12. Idempotent: a second run changes nothing and takes a few seconds.
#
# Side effects, on purpose and left in place:
# - /usr/sbin/policy-rc.d is written to exit 101, so that package scripts never start Dovecot,
#   Postfix, Unbound, NSD, the KDC or nginx in the host namespace (the lab starts its own copies
#   inside network namespaces, and host copies would hold ports and files). If a policy-rc.d
#   already existed with other content, it is kept as /usr/sbin/policy-rc.d.mailmend-lab-saved
#   before being replaced; restore it by hand if the host needs its old behaviour back.
# - /etc/krb5.conf is created empty if missing: `ip netns exec` bind-mounts
#   /etc/netns/<ns>/krb5.conf only over a file that exists on the host.
# - debconf answers: Postfix "No configuration", krb5-config realm EXAMPLE.COM (the host
#   configuration is never used by the lab, which writes its own).
set -eu

if [ "$(id -u)" != 0 ]; then
    echo "install-deps.sh: run as root (the lab needs network namespaces and daemons)" >&2
    exit 1
fi

PACKAGES="dovecot-imapd dovecot-pop3d dovecot-lmtpd dovecot-gssapi dovecot-auth-lua postfix unbound nsd krb5-kdc
krb5-admin-server krb5-user nftables iptables openssl swaks libnet-ssleay-perl isync msmtp curl
dnsutils nginx-light libnginx-mod-stream iproute2 dbus libglib2.0-bin dunst xvfb"

# Keep package scripts from starting daemons in the host namespace.
POLICY=/usr/sbin/policy-rc.d
POLICY_TEXT='#!/bin/sh
# Written by mailmend tests/install-deps.sh: never start services from package scripts.
exit 101'
if [ -e "$POLICY" ] && [ "$(cat "$POLICY")" != "$POLICY_TEXT" ] \
    && [ ! -e "$POLICY.mailmend-lab-saved" ]; then
    cp -p "$POLICY" "$POLICY.mailmend-lab-saved"
fi
if [ ! -e "$POLICY" ] || [ "$(cat "$POLICY")" != "$POLICY_TEXT" ]; then
    printf '%s\n' "$POLICY_TEXT" > "$POLICY"
fi
chmod 0755 "$POLICY"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing="$missing $p"
    fi
done

if [ -n "$missing" ]; then
    echo "install-deps.sh: installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    # debconf-set-selections comes with debconf, which every Debian system has.
    debconf-set-selections <<'EOF'
postfix postfix/main_mailer_type select No configuration
postfix postfix/mailname string lab.invalid
krb5-config krb5-config/default_realm string EXAMPLE.COM
krb5-config krb5-config/kerberos_servers string
krb5-config krb5-config/admin_server string
krb5-config krb5-config/add_servers_realm string EXAMPLE.COM
krb5-config krb5-config/add_servers boolean false
krb5-config krb5-config/read_conf boolean true
krb5-admin-server krb5-admin-server/newrealm note
krb5-kdc krb5-kdc/debconf boolean false
EOF
    # Refresh the package lists only when they are missing or a day old; an install that
    # fails on stale lists is retried once after a refresh.
    if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null | head -n 1)" ]; then
        apt-get update -q
    fi
    # shellcheck disable=SC2086 # the package list is meant to split into words
    if ! apt-get install -y -q --no-install-recommends $missing; then
        apt-get update -q
        # shellcheck disable=SC2086
        apt-get install -y -q --no-install-recommends $missing
    fi
else
    echo "install-deps.sh: all lab packages are installed"
fi

if [ ! -e /etc/krb5.conf ]; then
    : > /etc/krb5.conf
fi

# The Debian packages may have started nothing (policy-rc.d), but a host that installed them
# before this script ran might still run them; the lab binds only its own namespace addresses,
# so host daemons do not conflict, and this script leaves them alone.
echo "install-deps.sh: done"
