//! Client adapter for mutt.
