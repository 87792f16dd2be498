//! Built-in diagnostics: settings, DNS, TLS, authentication and network findings about mail
//! accounts, with the fixes they propose.
//!
//! Diagnostics only reason: they see the network through [`mailmend_core::Prober`] and return
//! [`mailmend_core::Finding`]s whose proposals the policy and the executor decide on. The finding
//! codes they use, with what each means and what fixes it, are in [`codes`].

mod auth;
mod causes;
pub mod codes;
mod connectivity;
mod credentials;
mod discovered;
mod dns;
mod firewall;
mod hosts;
mod join;
mod kerberos;
mod matrix;
mod text;

pub use connectivity::Connectivity;
pub use credentials::Credentials;
pub use dns::Dns;
pub use firewall::Firewall;
pub use kerberos::{Kerberos, EXPIRING_WITHIN_SECS};

/// Every built-in diagnostic, in the order the agent runs and reports them. Together they give
/// one code per root cause (see `causes` for which owns what).
pub fn builtin() -> Vec<Box<dyn mailmend_core::Diagnostic>> {
    vec![
        Box::new(Connectivity),
        Box::new(Dns),
        Box::new(Firewall),
        Box::new(Kerberos),
        Box::new(Credentials),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_diagnostics_have_unique_builtin_names() {
        let all = builtin();
        let names: Vec<String> = all.iter().map(|d| d.info().name).collect();
        assert_eq!(
            names,
            ["connectivity", "dns", "firewall", "kerberos", "credentials"]
        );
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        assert!(all.iter().all(|d| d.info().origin == "builtin"));
    }
}
