//! Client adapter for aerc.
