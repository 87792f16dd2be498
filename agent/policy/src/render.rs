//! Human and TOML renderings of the effective policy, for `mailmend policy check/show`.

use crate::settings::{Mode, MAIL_PORTS};
use crate::Policy;
use mailmend_core::ActionKind;
use std::fmt::Write as _;
use std::path::PathBuf;

/// A TOML string literal, escaped by the TOML serialiser itself so any value round-trips.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn quote_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.into_iter().map(quote).collect();
    format!("[{}]", items.join(", "))
}

fn path_list(paths: &[PathBuf]) -> Vec<String> {
    paths.iter().map(|p| p.display().to_string()).collect()
}

/// Comment lines cannot contain line breaks; an origin with one is shown with it escaped.
fn one_line(s: &str) -> String {
    s.replace('\r', "\\r").replace('\n', "\\n")
}

fn actions_inline(actions: &std::collections::BTreeMap<ActionKind, Mode>) -> String {
    let parts: Vec<String> = actions
        .iter()
        .map(|(k, m)| format!("{k} = {}", quote(m.as_str())))
        .collect();
    format!("{{ {} }}", parts.join(", "))
}

pub(crate) fn to_effective_toml(p: &Policy) -> String {
    let s = &p.settings;
    let mut out = String::new();
    // Writing to a String cannot fail, so the fmt::Results below are ignored.
    let _ = writeln!(out, "# effective mailmend policy");
    let _ = writeln!(out, "# source: {}", one_line(p.origin()));
    let _ = writeln!(out, "# sha256: {}", p.hash());
    let _ = writeln!(out, "dry_run = {}", s.dry_run);
    let _ = writeln!(out, "log_level = {}", quote(&s.log_level));
    let _ = writeln!(out, "\n[actions]");
    for (k, m) in &s.actions {
        let _ = writeln!(out, "{k} = {}", quote(m.as_str()));
    }
    let _ = writeln!(out, "\n[hosts]");
    let _ = writeln!(
        out,
        "allowed_domains = {}",
        quote_list(s.allowed_domains.iter().map(String::as_str))
    );
    let _ = writeln!(out, "\n[limits]");
    let _ = writeln!(
        out,
        "fixes_per_account_per_hour = {}",
        s.fixes_per_account_per_hour
    );
    let _ = writeln!(out, "quarantine_after = {}", s.quarantine_after);
    let _ = writeln!(out, "\n[probes]");
    let _ = writeln!(out, "connect_timeout_ms = {}", s.connect_timeout_ms);
    let _ = writeln!(out, "io_timeout_ms = {}", s.io_timeout_ms);
    let _ = writeln!(out, "check_interval_secs = {}", s.check_interval_secs);
    let _ = writeln!(out, "\n[tls]");
    let cas = path_list(&s.extra_ca_files);
    let _ = writeln!(
        out,
        "extra_ca_files = {}",
        quote_list(cas.iter().map(String::as_str))
    );
    let _ = writeln!(out, "\n[plugins]");
    let _ = writeln!(
        out,
        "directory = {}",
        quote(&s.plugin_dir.display().to_string())
    );
    if s.plugins.is_empty() {
        let _ = writeln!(out, "allowed = []");
    } else {
        let _ = writeln!(out, "allowed = [");
        for a in &s.plugins {
            let _ = writeln!(
                out,
                "  {{ name = {}, sha256 = {} }},",
                quote(&a.name),
                quote(&a.sha256)
            );
        }
        let _ = writeln!(out, "]");
    }
    let _ = writeln!(out, "\n[credentials]");
    let _ = writeln!(out, "source = {}", quote(s.credential_source.as_str()));
    let _ = writeln!(
        out,
        "min_interval_secs = {}",
        s.credential_min_interval_secs
    );
    let _ = writeln!(out, "check_sender = {}", s.credential_check_sender);
    let _ = writeln!(out, "\n[firewall]");
    let _ = writeln!(
        out,
        "windows_disable_blocking_rules = {}",
        s.windows_disable_blocking_rules
    );
    for o in &s.overrides {
        let mut m = Vec::new();
        if let Some(c) = o.client {
            m.push(format!("client = {}", quote(c.as_str())));
        }
        if let Some(d) = &o.domain {
            m.push(format!("domain = {}", quote(d)));
        }
        let _ = writeln!(out, "\n[[override]]");
        let _ = writeln!(out, "match = {{ {} }}", m.join(", "));
        let _ = writeln!(out, "actions = {}", actions_inline(&o.actions));
    }
    out
}

pub(crate) fn explain(p: &Policy) -> String {
    let s = &p.settings;
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let source = |key: &str| -> String {
        match p.provenance.get(key) {
            Some(pos) => format!("{}:{}", p.origin(), pos.line),
            None => "built-in default".to_string(),
        }
    };
    let mut row = |key: String, value: String| {
        let src = source(&key);
        rows.push((key, value, src));
    };
    row("dry_run".into(), s.dry_run.to_string());
    row("log_level".into(), s.log_level.clone());
    for (k, m) in &s.actions {
        row(format!("actions.{k}"), m.to_string());
    }
    row(
        "hosts.allowed_domains".into(),
        list_or_none(s.allowed_domains.clone()),
    );
    row(
        "limits.fixes_per_account_per_hour".into(),
        s.fixes_per_account_per_hour.to_string(),
    );
    row(
        "limits.quarantine_after".into(),
        format!("{} recurrences in 24 h", s.quarantine_after),
    );
    row(
        "probes.connect_timeout_ms".into(),
        format!("{} ms", s.connect_timeout_ms),
    );
    row(
        "probes.io_timeout_ms".into(),
        format!("{} ms", s.io_timeout_ms),
    );
    row(
        "probes.check_interval_secs".into(),
        format!("{} s", s.check_interval_secs),
    );
    row(
        "tls.extra_ca_files".into(),
        list_or_none(path_list(&s.extra_ca_files)),
    );
    row(
        "plugins.directory".into(),
        s.plugin_dir.display().to_string(),
    );
    row(
        "plugins.allowed".into(),
        list_or_none(
            s.plugins
                .iter()
                .map(|a| format!("{} (sha256 {})", a.name, a.sha256))
                .collect(),
        ),
    );
    row(
        "credentials.source".into(),
        match s.credential_source {
            crate::CredentialSource::None => "none (never logs in)".to_string(),
            crate::CredentialSource::Client => {
                "client (the password in the client's settings file; commands never run)"
                    .to_string()
            }
        },
    );
    row(
        "credentials.min_interval_secs".into(),
        format!("{} s", s.credential_min_interval_secs),
    );
    row(
        "credentials.check_sender".into(),
        s.credential_check_sender.to_string(),
    );
    row(
        "firewall.windows_disable_blocking_rules".into(),
        if s.windows_disable_blocking_rules {
            "true (an exception may disable the block rules that stop it; undo re-enables them)"
                .to_string()
        } else {
            "false (block rules are left alone and named; the exception is only recommended)"
                .to_string()
        },
    );

    let key_width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let value_width = rows
        .iter()
        .map(|r| r.1.chars().count())
        .max()
        .unwrap_or(0)
        .min(40);
    let mut out = String::new();
    let _ = writeln!(out, "policy: {}", p.origin());
    let _ = writeln!(out, "sha256: {}", p.hash());
    if s.dry_run {
        let _ = writeln!(out, "dry run: decisions are audited, nothing is changed");
    }
    let _ = writeln!(out);
    for (k, v, src) in &rows {
        let _ = writeln!(out, "{k:key_width$}  {v:value_width$}  ({src})");
    }
    let _ = writeln!(out);
    if s.overrides.is_empty() {
        let _ = writeln!(out, "overrides: none");
    } else {
        let _ = writeln!(
            out,
            "overrides (for each action kind the first matching override that names it wins):"
        );
        for (i, o) in s.overrides.iter().enumerate() {
            let mut m = Vec::new();
            if let Some(c) = o.client {
                m.push(format!("client {c}"));
            }
            if let Some(d) = &o.domain {
                m.push(format!("email domain {d} or its subdomains"));
            }
            let _ = writeln!(
                out,
                "  override[{i}] ({}): accounts of {}",
                source(&format!("override[{i}]")),
                m.join(" and ")
            );
            for (k, mode) in &o.actions {
                let _ = writeln!(out, "    actions.{k} = {mode}");
            }
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "built-in rules (no policy can relax them):");
    let _ = writeln!(
        out,
        "  builtin.no_downgrade: never TLS/STARTTLS -> plaintext, never a cleartext password without encryption"
    );
    let _ = writeln!(
        out,
        "  hosts.allowed_domains: a new host must be in the account's email domain, hosts.allowed_domains, or named by the domain's MX/SRV/autoconfig records"
    );
    let _ = writeln!(
        out,
        "  builtin.firewall_ports: firewall exceptions only for ports {} to the account's own mail hosts",
        MAIL_PORTS.map(|p| p.to_string()).join(", ")
    );
    let _ = writeln!(
        out,
        "  limits: notifications to the user are exempt from fixes_per_account_per_hour and quarantine_after"
    );
    let _ = writeln!(
        out,
        "  credentials: a password is only ever sent over a verified TLS connection to a healthy endpoint, at most once per min_interval_secs, and never again after the server refused it"
    );
    out
}

fn list_or_none(items: Vec<String>) -> String {
    if items.is_empty() {
        "(none)".to_string()
    } else {
        items.join(", ")
    }
}
