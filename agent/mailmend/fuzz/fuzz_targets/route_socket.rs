//! Fuzz target: the macOS routing-socket parser never panics, yields at most one message per
//! four bytes, and its state stays bounded whatever messages it is fed, dumps and reads alike.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../src/watch/route_socket.rs"]
#[allow(dead_code)]
mod route_socket;

use route_socket::{parse, NetState, MAX_KNOWN};

fuzz_target!(|data: &[u8]| {
    let msgs = parse(data);
    assert!(msgs.len() <= data.len() / 4);
    let mut state = NetState::default();
    for msg in msgs {
        state.apply(msg);
    }
    // The same bytes again, as a refresh of what was just learnt, in pieces as reads come.
    for chunk in data.chunks(97) {
        for msg in parse(chunk) {
            state.apply(msg);
        }
    }
    assert!(state.len() <= 3 * MAX_KNOWN);
});
