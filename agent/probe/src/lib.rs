//! Network probes: DNS, TCP, TLS and the IMAP, POP3 and SMTP greetings, bounded in size and time.
