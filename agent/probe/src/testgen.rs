//! Test-only generators shared by the settings-document parsers' round-trip and mutation tests.

/// A xorshift64 generator: reproducible pseudo-random numbers from a fixed seed.
pub(crate) struct XorShift(pub u64);

impl XorShift {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Damages `data` in one to six places: a byte replaced, one of `specials` inserted, or a byte
/// removed.
pub(crate) fn mutate(data: &mut Vec<u8>, next: &mut impl FnMut() -> u64, specials: &[u8]) {
    for _ in 0..1 + next() % 6 {
        let at = (next() % (data.len() as u64 + 1)) as usize;
        match next() % 3 {
            0 if at < data.len() => data[at] = next() as u8,
            1 => data.insert(at, specials[(next() % specials.len() as u64) as usize]),
            _ if at < data.len() => {
                data.remove(at);
            }
            _ => {}
        }
    }
}
