//! Client adapter for evolution.
