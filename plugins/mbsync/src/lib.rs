//! Client adapter for mbsync.
