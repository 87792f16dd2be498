//! Validation: turns the spanned TOML structs into checked settings, pointing every error at the
//! offending key or value.

use crate::error::{from_toml, invalid_at, PolicyError, Position};
use crate::raw::{RawActions, RawPolicy};
use crate::settings::{
    closest, is_absolute_path, is_dns_name, normalize_host, CredentialSource, Mode, Override,
    PluginAllow, Settings, CLIENTS, LOG_LEVELS, MAX_CHECK_INTERVAL_SECS,
    MAX_CREDENTIAL_INTERVAL_SECS, MAX_TIMEOUT_MS, MIN_CREDENTIAL_INTERVAL_SECS,
};
use mailmend_core::ActionKind;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use toml::Spanned;

/// Where each setting that the file sets was written, by dotted path (`actions.set_host`).
pub(crate) type Provenance = BTreeMap<String, Position>;

struct Parser<'a> {
    origin: &'a str,
    text: &'a str,
    provenance: Provenance,
}

impl Parser<'_> {
    fn err(&self, span: Range<usize>, message: String, hint: impl Into<String>) -> PolicyError {
        invalid_at(self.origin, self.text, span, message, hint)
    }

    fn note(&mut self, path: impl Into<String>, span: Range<usize>) {
        self.provenance
            .insert(path.into(), Position::of(self.text, span.start));
    }

    fn int_in(
        &mut self,
        value: &Spanned<i64>,
        path: &str,
        min: i64,
        max: i64,
        hint: &str,
    ) -> Result<i64, PolicyError> {
        let v = *value.get_ref();
        if v < min || v > max {
            return Err(self.err(
                value.span(),
                format!("{path} must be between {min} and {max}, not {v}"),
                hint,
            ));
        }
        self.note(path, value.span());
        Ok(v)
    }

    fn actions(
        &mut self,
        raw: &RawActions,
        prefix: &str,
    ) -> Result<BTreeMap<ActionKind, Mode>, PolicyError> {
        // Check in file order so the first mistake reported is the first one in the file.
        let mut entries: Vec<_> = raw.iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        let mut out = BTreeMap::new();
        for (key, value) in entries {
            let name = key.get_ref();
            let Some(kind) = ActionKind::parse(name) else {
                let names = ActionKind::ALL.map(|k| k.as_str());
                let hint = match closest(name, names) {
                    Some(s) => format!("did you mean \"{s}\"?"),
                    None => {
                        "use one of the action kinds listed; policies/default.toml documents each"
                            .to_string()
                    }
                };
                return Err(self.err(
                    key.span(),
                    format!(
                        "unknown action kind \"{name}\" (expected one of {})",
                        names.join(", ")
                    ),
                    hint,
                ));
            };
            let mode_str = value.get_ref();
            let Some(mode) = Mode::parse(mode_str) else {
                let hint = match closest(&mode_str.to_ascii_lowercase(), Mode::ALL.map(Mode::as_str)) {
                    Some(s) => format!("did you mean \"{s}\"?"),
                    None => "write \"auto\" to apply the fix, \"recommend\" to only report it, \"deny\" to drop it".to_string(),
                };
                return Err(self.err(
                    value.span(),
                    format!(
                        "unknown mode \"{mode_str}\" for {prefix}.{name} (expected one of auto, recommend, deny)"
                    ),
                    hint,
                ));
            };
            self.note(format!("{prefix}.{name}"), key.span());
            out.insert(kind, mode);
        }
        Ok(out)
    }

    fn domain(&self, value: &Spanned<String>, what: &str) -> Result<String, PolicyError> {
        let raw = value.get_ref();
        let d = normalize_host(raw);
        let problem = if d.is_empty() {
            Some((
                "is empty".to_string(),
                "write a domain such as \"example.com\"".to_string(),
            ))
        } else if d.contains('*') {
            let plain = d.trim_start_matches("*.");
            Some((
                "contains a wildcard".to_string(),
                format!("a domain already includes its subdomains; write \"{plain}\""),
            ))
        } else if d.contains("://") || d.contains('/') {
            Some((
                "is not a domain name".to_string(),
                "write only the domain, without scheme or path, e.g. \"example.com\"".to_string(),
            ))
        } else if d.contains('@') {
            Some((
                "is an email address, not a domain".to_string(),
                "write only the part after the @".to_string(),
            ))
        } else if !is_dns_name(&d) {
            Some((
                "is not a valid domain name".to_string(),
                "use letters, digits, hyphens and dots only (write international names in their xn-- form)".to_string(),
            ))
        } else if !d.contains('.')
            || d.rsplit('.')
                .next()
                .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            Some((
                "is not a registrable domain".to_string(),
                "a bare top-level domain or an IP address would allow far too many hosts; name the organisation's domain, e.g. \"example.com\"".to_string(),
            ))
        } else {
            None
        };
        match problem {
            Some((msg, hint)) => {
                Err(self.err(value.span(), format!("{what} \"{raw}\" {msg}"), hint))
            }
            None => Ok(d),
        }
    }

    fn abs_path(&self, value: &Spanned<String>, what: &str) -> Result<PathBuf, PolicyError> {
        let s = value.get_ref();
        if s.trim().is_empty() {
            return Err(self.err(
                value.span(),
                format!("{what} is empty"),
                "write an absolute path",
            ));
        }
        if s.contains('\0') {
            return Err(self.err(
                value.span(),
                format!("{what} contains a NUL character"),
                "remove the \\u0000 escape",
            ));
        }
        if !is_absolute_path(s) {
            return Err(self.err(
                value.span(),
                format!("{what} \"{s}\" is a relative path"),
                "the agent runs as a service with no meaningful working directory; write the full path, e.g. \"/etc/mailmend/corp-ca.pem\"",
            ));
        }
        Ok(PathBuf::from(s))
    }
}

/// Parses and validates policy text. Returns the settings and where each was written.
pub(crate) fn parse(text: &str, origin: &str) -> Result<(Settings, Provenance), PolicyError> {
    let raw: RawPolicy = toml::from_str(text).map_err(|e| from_toml(origin, text, &e))?;
    let mut p = Parser {
        origin,
        text,
        provenance: Provenance::new(),
    };
    let mut s = Settings::default();

    if let Some(v) = &raw.dry_run {
        s.dry_run = *v.get_ref();
        p.note("dry_run", v.span());
    }
    if let Some(v) = &raw.log_level {
        let level = v.get_ref();
        if !LOG_LEVELS.contains(&level.as_str()) {
            let hint = match closest(&level.to_ascii_lowercase(), LOG_LEVELS) {
                Some(s) => format!("did you mean \"{s}\"?"),
                None => "\"info\" suits normal operation, \"debug\" troubleshooting".to_string(),
            };
            return Err(p.err(
                v.span(),
                format!(
                    "unknown log_level \"{level}\" (expected one of {})",
                    LOG_LEVELS.join(", ")
                ),
                hint,
            ));
        }
        s.log_level = level.clone();
        p.note("log_level", v.span());
    }
    if let Some(actions) = &raw.actions {
        let set = p.actions(actions, "actions")?;
        s.actions.extend(set);
    }
    if let Some(hosts) = &raw.hosts {
        if let Some(list) = &hosts.allowed_domains {
            let mut domains = Vec::new();
            for d in list.get_ref() {
                let d = p.domain(d, "hosts.allowed_domains entry")?;
                if !domains.contains(&d) {
                    domains.push(d);
                }
            }
            s.allowed_domains = domains;
            p.note("hosts.allowed_domains", list.span());
        }
    }
    if let Some(limits) = &raw.limits {
        if let Some(v) = &limits.fixes_per_account_per_hour {
            s.fixes_per_account_per_hour = p.int_in(
                v,
                "limits.fixes_per_account_per_hour",
                1,
                60,
                "3 suits most sites; to stop all fixes set the [actions] to \"recommend\" or use dry_run = true",
            )? as u32;
        }
        if let Some(v) = &limits.quarantine_after {
            s.quarantine_after = p.int_in(
                v,
                "limits.quarantine_after",
                1,
                100,
                "3 suits most sites; 0 would quarantine every account before its first fix",
            )? as u32;
        }
    }
    if let Some(probes) = &raw.probes {
        let timeout_hint =
            "a timeout is in milliseconds, from 1 to 600000 (10 minutes); 5000 suits most networks";
        if let Some(v) = &probes.connect_timeout_ms {
            s.connect_timeout_ms = p.int_in(
                v,
                "probes.connect_timeout_ms",
                1,
                MAX_TIMEOUT_MS,
                timeout_hint,
            )? as u64;
        }
        if let Some(v) = &probes.io_timeout_ms {
            s.io_timeout_ms =
                p.int_in(v, "probes.io_timeout_ms", 1, MAX_TIMEOUT_MS, timeout_hint)? as u64;
        }
        if let Some(v) = &probes.check_interval_secs {
            s.check_interval_secs = p.int_in(
                v,
                "probes.check_interval_secs",
                1,
                MAX_CHECK_INTERVAL_SECS,
                "the interval is in seconds, from 1 to 604800 (one week); 900 (15 minutes) suits most sites",
            )? as u64;
        }
    }
    if let Some(tls) = &raw.tls {
        if let Some(list) = &tls.extra_ca_files {
            let mut files = Vec::new();
            for f in list.get_ref() {
                files.push(p.abs_path(f, "tls.extra_ca_files entry")?);
            }
            s.extra_ca_files = files;
            p.note("tls.extra_ca_files", list.span());
        }
    }
    if let Some(plugins) = &raw.plugins {
        if let Some(dir) = &plugins.directory {
            s.plugin_dir = p.abs_path(dir, "plugins.directory")?;
            p.note("plugins.directory", dir.span());
        }
        if let Some(list) = &plugins.allowed {
            let mut allowed: Vec<PluginAllow> = Vec::new();
            for (i, entry) in list.get_ref().iter().enumerate() {
                let entry = entry.get_ref();
                let name = entry.name.get_ref();
                let name_ok = !name.is_empty()
                    && name.len() <= 64
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
                if !name_ok {
                    return Err(p.err(
                        entry.name.span(),
                        format!("plugins.allowed[{i}].name \"{name}\" is not a valid plugin name"),
                        "use the name the plugin reports: 1 to 64 letters, digits, '-', '_' or '.'",
                    ));
                }
                if allowed.iter().any(|a| &a.name == name) {
                    return Err(p.err(
                        entry.name.span(),
                        format!("plugin \"{name}\" is listed twice in plugins.allowed"),
                        "keep one entry per plugin, with the hash of the file you deploy",
                    ));
                }
                let hash = entry.sha256.get_ref().trim();
                if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(p.err(
                        entry.sha256.span(),
                        format!(
                            "plugins.allowed[{i}].sha256 must be 64 hexadecimal digits, not \"{}\" ({} characters)",
                            entry.sha256.get_ref(),
                            entry.sha256.get_ref().chars().count()
                        ),
                        "compute it from the plugin file with `sha256sum FILE` (Linux), `shasum -a 256 FILE` (macOS) or `Get-FileHash FILE` (Windows)",
                    ));
                }
                allowed.push(PluginAllow {
                    name: name.clone(),
                    sha256: hash.to_ascii_lowercase(),
                });
            }
            s.plugins = allowed;
            p.note("plugins.allowed", list.span());
        }
    }
    if let Some(creds) = &raw.credentials {
        if let Some(v) = &creds.source {
            let name = v.get_ref();
            let Some(source) = CredentialSource::parse(name) else {
                let names = CredentialSource::ALL.map(CredentialSource::as_str);
                let hint = match closest(&name.to_ascii_lowercase(), names) {
                    Some(s) => format!("did you mean \"{s}\"?"),
                    None => "\"none\" never logs in; \"client\" checks the password the mail client stores in its own settings file (commands such as passwordeval are never run)".to_string(),
                };
                return Err(p.err(
                    v.span(),
                    format!(
                        "unknown credentials.source \"{name}\" (expected one of {})",
                        names.join(", ")
                    ),
                    hint,
                ));
            };
            s.credential_source = source;
            p.note("credentials.source", v.span());
        }
        if let Some(v) = &creds.min_interval_secs {
            s.credential_min_interval_secs = p.int_in(
                v,
                "credentials.min_interval_secs",
                MIN_CREDENTIAL_INTERVAL_SECS,
                MAX_CREDENTIAL_INTERVAL_SECS,
                "the interval is in seconds, from 3600 (one hour) to 2592000 (30 days); 86400 (one day) keeps far below any server's lockout threshold",
            )? as u64;
        }
        if let Some(v) = &creds.check_sender {
            s.credential_check_sender = *v.get_ref();
            p.note("credentials.check_sender", v.span());
        }
    }
    if let Some(fw) = &raw.firewall {
        if let Some(v) = &fw.windows_disable_blocking_rules {
            s.windows_disable_blocking_rules = *v.get_ref();
            p.note("firewall.windows_disable_blocking_rules", v.span());
        }
    }
    for (i, o) in raw.overrides.iter().enumerate() {
        let prefix = format!("override[{i}]");
        let body = o.get_ref();
        let Some(matcher) = &body.matcher else {
            return Err(p.err(
                o.span(),
                format!("{prefix} has no match"),
                "add e.g. match = { client = \"thunderbird\", domain = \"example.com\" }",
            ));
        };
        let m = matcher.get_ref();
        if m.client.is_none() && m.domain.is_none() {
            return Err(p.err(
                matcher.span(),
                format!("{prefix}.match names neither a client nor a domain"),
                "an override for every account belongs in [actions]; add client = \"...\" or domain = \"...\"",
            ));
        }
        let client = match &m.client {
            None => None,
            Some(c) => {
                let name = c.get_ref();
                let Some(kind) = CLIENTS.into_iter().find(|k| k.as_str() == name) else {
                    let names = CLIENTS.map(|k| k.as_str());
                    let hint = match closest(&name.to_ascii_lowercase(), names) {
                        Some(s) => format!("did you mean \"{s}\"?"),
                        None => "client names are lower-case".to_string(),
                    };
                    return Err(p.err(
                        c.span(),
                        format!(
                            "unknown client \"{name}\" in {prefix}.match (expected one of {})",
                            names.join(", ")
                        ),
                        hint,
                    ));
                };
                Some(kind)
            }
        };
        let domain = match &m.domain {
            None => None,
            Some(d) => Some(p.domain(d, &format!("{prefix}.match.domain"))?),
        };
        let actions = match &body.actions {
            Some(a) => {
                let set = p.actions(a.get_ref(), &format!("{prefix}.actions"))?;
                if set.is_empty() {
                    return Err(p.err(
                        a.span(),
                        format!("{prefix}.actions is empty, so the override changes nothing"),
                        "name at least one action kind, e.g. actions = { set_host = \"recommend\" }",
                    ));
                }
                set
            }
            None => {
                return Err(p.err(
                    o.span(),
                    format!("{prefix} has no actions"),
                    "add e.g. actions = { set_host = \"recommend\" }",
                ))
            }
        };
        p.note(prefix, o.span());
        s.overrides.push(Override {
            client,
            domain,
            actions,
        });
    }
    Ok((s, p.provenance))
}
