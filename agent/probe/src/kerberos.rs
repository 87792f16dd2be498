//! An OS user's default Kerberos credential cache: where it is (krb5.conf's
//! `default_ccache_name`, else `FILE:/tmp/krb5cc_<uid>`), and its tickets' times, read with the
//! pure [`crate::ccache`] parser. `KRB5CCNAME` is the user's own environment, which the agent
//! cannot see, so it is not consulted. Only FILE caches are read; DIR, KEYRING, KCM and other
//! types are reported as unsupported.

use crate::ccache::{self, MAX_CCACHE_BYTES};
use mailmend_core::{KerberosReport, KerberosTicket};
use std::path::{Path, PathBuf};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// MIT's built-in default when krb5.conf names no cache.
pub const DEFAULT_CCACHE_NAME: &str = "FILE:/tmp/krb5cc_%{uid}";

/// `default_ccache_name` from the `[libdefaults]` section of a krb5.conf, if set.
///
/// Relations inside `{ }` groups (realms) are skipped; `include` directives are not followed.
pub fn default_ccache_name(krb5_conf: &str) -> Option<String> {
    let mut section = String::new();
    let mut depth = 0usize;
    for line in krb5_conf.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if depth == 0 && line.starts_with('[') {
            section = line
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string();
            continue;
        }
        if line.ends_with('{') {
            depth += 1;
            continue;
        }
        if line.starts_with('}') {
            depth = depth.saturating_sub(1);
            continue;
        }
        if depth > 0 || section != "libdefaults" {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.trim() == "default_ccache_name" {
            let value = value.trim();
            // A trailing `*` marks a relation as final in MIT's profile syntax.
            let value = value.strip_suffix('*').map(str::trim_end).unwrap_or(value);
            if !value.is_empty() {
                return Some(value.to_string());
            }
        }
    }
    None
}

/// Expands MIT's path tokens in a cache name for one user: `%{uid}` and `%{euid}` (the
/// user's, as the user's own programs would see them), `%{username}`, `%{TEMP}` and `%{null}`.
pub fn expand_ccache_name(template: &str, uid: u32, user: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("%{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("unterminated token in cache name {template:?}"));
        };
        match &after[..end] {
            "uid" | "euid" => out.push_str(&uid.to_string()),
            "username" => out.push_str(user),
            "TEMP" => out.push_str("/tmp"),
            "null" => {}
            other => {
                return Err(format!(
                    "unsupported token %{{{other}}} in cache name {template:?}"
                ))
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Where a cache name points, when it is a file.
pub fn cache_file(name: &str) -> Result<PathBuf, String> {
    match name.split_once(':') {
        Some(("FILE", path)) => Ok(PathBuf::from(path)),
        // A name with no type, or a Windows drive letter, is a file name.
        None => Ok(PathBuf::from(name)),
        Some((kind, _)) if kind.len() == 1 => Ok(PathBuf::from(name)),
        Some((kind, _)) => Err(format!("unsupported cache type {kind}")),
    }
}

/// Turns a parsed cache into the report's tickets (never anything secret: the parser keeps
/// none).
pub fn tickets(cache: &ccache::Ccache) -> Vec<KerberosTicket> {
    cache
        .credentials
        .iter()
        .map(|c| KerberosTicket {
            server: c.server.to_string(),
            starts: rfc3339(if c.start_time == 0 {
                c.auth_time
            } else {
                c.start_time
            }),
            expires: rfc3339(c.end_time),
            renew_until: (c.renew_till != 0).then(|| rfc3339(c.renew_till)),
            renewable: c.renewable(),
        })
        .collect()
}

fn rfc3339(secs: u32) -> String {
    OffsetDateTime::from_unix_timestamp(i64::from(secs))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// The current time as the report states it.
pub fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Reads `user`'s default cache, with krb5.conf at `krb5_conf`.
pub(crate) async fn report(user: &str, krb5_conf: &Path) -> KerberosReport {
    let mut report = KerberosReport {
        os_user: user.to_string(),
        checked_at: now_rfc3339(),
        ccache: None,
        principal: None,
        tickets: Vec::new(),
        error: None,
    };
    let uid = match uid_of(user).await {
        Ok(uid) => uid,
        Err(e) => {
            report.error = Some(e);
            return report;
        }
    };
    // A missing or unreadable krb5.conf leaves MIT's default, as the library does.
    let template = match tokio::fs::read_to_string(krb5_conf).await {
        Ok(text) => default_ccache_name(&text),
        Err(_) => None,
    }
    .unwrap_or_else(|| DEFAULT_CCACHE_NAME.to_string());
    let name = match expand_ccache_name(&template, uid, user) {
        Ok(name) => name,
        Err(e) => {
            report.error = Some(e);
            return report;
        }
    };
    report.ccache = Some(name.clone());
    let path = match cache_file(&name) {
        Ok(path) => path,
        Err(e) => {
            report.error = Some(e);
            return report;
        }
    };
    let bytes = match read_bounded(&path).await {
        // No cache file means no ticket: the user has not logged in to Kerberos (or logged
        // out); that is what the report says, not an error.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return report,
        Err(e) => {
            report.error = Some(format!("cannot read {}: {e}", path.display()));
            return report;
        }
        Ok(bytes) => bytes,
    };
    match ccache::parse(&bytes) {
        Ok(cache) => {
            report.principal = Some(cache.default_principal.to_string());
            report.tickets = tickets(&cache);
        }
        Err(e) => report.error = Some(format!("{}: {e}", path.display())),
    }
    report
}

async fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(path).await?;
    let mut bytes = Vec::new();
    // One byte more than allowed, so that the parser sees (and names) an oversized file.
    file.take(MAX_CCACHE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .await?;
    Ok(bytes)
}

#[cfg(unix)]
async fn uid_of(user: &str) -> Result<u32, String> {
    let name = user.to_string();
    // getpwnam goes through NSS, which may ask a directory server: keep it off the runtime.
    let found = tokio::task::spawn_blocking(move || nix::unistd::User::from_name(&name))
        .await
        .map_err(|e| format!("looking up user {user} failed: {e}"))?;
    match found {
        Ok(Some(u)) => Ok(u.uid.as_raw()),
        Ok(None) => Err(format!("no such user {user}")),
        Err(e) => Err(format!("cannot look up user {user}: {e}")),
    }
}

#[cfg(not(unix))]
async fn uid_of(user: &str) -> Result<u32, String> {
    Err(format!(
        "reading kerberos caches of {user} is not supported on this platform"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ccache::tests::Builder;
    use crate::ccache::TKT_FLG_RENEWABLE;

    #[test]
    fn default_ccache_name_comes_from_libdefaults_only() {
        let conf = "\
[libdefaults]
  default_realm = EXAMPLE.TEST
  # default_ccache_name = FILE:/commented
  default_ccache_name = FILE:/run/user/%{uid}/krb5cc
[realms]
  EXAMPLE.TEST = {
    default_ccache_name = FILE:/not/here
  }
";
        assert_eq!(
            default_ccache_name(conf).as_deref(),
            Some("FILE:/run/user/%{uid}/krb5cc")
        );
        assert_eq!(
            default_ccache_name("[realms]\ndefault_ccache_name = X\n"),
            None
        );
        assert_eq!(default_ccache_name(""), None);
    }

    #[test]
    fn tokens_are_expanded_for_the_user() {
        assert_eq!(
            expand_ccache_name(DEFAULT_CCACHE_NAME, 1000, "ann").unwrap(),
            "FILE:/tmp/krb5cc_1000"
        );
        assert_eq!(
            expand_ccache_name("FILE:%{TEMP}/cc_%{username}_%{euid}%{null}", 7, "bob").unwrap(),
            "FILE:/tmp/cc_bob_7"
        );
        assert!(expand_ccache_name("FILE:/x/%{LIBDIR}", 1, "a")
            .unwrap_err()
            .contains("unsupported token"));
        assert!(expand_ccache_name("FILE:/x/%{uid", 1, "a").is_err());
    }

    #[test]
    fn only_file_caches_are_read() {
        assert_eq!(
            cache_file("FILE:/tmp/krb5cc_1").unwrap(),
            PathBuf::from("/tmp/krb5cc_1")
        );
        assert_eq!(
            cache_file("/tmp/krb5cc_1").unwrap(),
            PathBuf::from("/tmp/krb5cc_1")
        );
        for kind in ["DIR", "KEYRING", "KCM"] {
            assert_eq!(
                cache_file(&format!("{kind}:whatever")).unwrap_err(),
                format!("unsupported cache type {kind}")
            );
        }
    }

    #[test]
    fn tickets_carry_rfc3339_times_and_fall_back_to_the_auth_time() {
        let bytes = Builder::new(0x0504, ("EXAMPLE.TEST", &["ann"]))
            .credential(
                ("EXAMPLE.TEST", &["ann"]),
                ("EXAMPLE.TEST", &["krbtgt", "EXAMPLE.TEST"]),
                [1_700_000_000, 0, 1_700_036_000, 1_700_600_000],
                TKT_FLG_RENEWABLE,
            )
            .bytes;
        let t = &tickets(&ccache::parse(&bytes).unwrap())[0];
        assert_eq!(t.server, "krbtgt/EXAMPLE.TEST@EXAMPLE.TEST");
        assert_eq!(t.starts, "2023-11-14T22:13:20Z");
        assert_eq!(t.expires, "2023-11-15T08:13:20Z");
        assert_eq!(t.renew_until.as_deref(), Some("2023-11-21T20:53:20Z"));
        assert!(t.renewable);
    }
}
