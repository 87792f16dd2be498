//! Performers that make non-settings fixes real: firewall exceptions, DNS cache flushes, Kerberos renewals.
