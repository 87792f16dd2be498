//! Built-in diagnostics: settings, DNS, TLS, authentication and firewall findings.
