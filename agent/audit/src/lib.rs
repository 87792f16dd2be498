//! The append-only, hash-chained audit log: write, read, filter and verify.
