//! Fuzz target: `Policy::parse` must return a value or an error for any UTF-8 text, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailmend_policy::Policy;

fuzz_target!(|text: &str| {
    if let Ok(policy) = Policy::parse(text, "fuzz.toml") {
        // Whatever parses must also render and re-parse to the same policy.
        let effective = policy.to_effective_toml();
        let back = Policy::parse(&effective, "effective.toml")
            .unwrap_or_else(|e| panic!("effective policy does not parse: {e}\n{effective}"));
        assert_eq!(back, policy);
        let _ = policy.explain();
    }
});
