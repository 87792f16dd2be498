//! Client adapter for msmtp.
