//! The policy engine: parses policy TOML with positions and decides every proposed action.
