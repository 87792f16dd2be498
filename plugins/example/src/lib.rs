//! An example dynamic plugin: flags SMTP submission on port 25.
