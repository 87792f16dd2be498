//! The password inside a mutt URL (`imaps://user:PASSWORD@host/`), read only when the agent asks
//! for an account's credential, the way mutt's `url_parse` reads it (user information up to the
//! last `@` of the authority, password after its first `:`, percent-decoded).

// The reading is the same in every client that keeps a password in a URL.
pub use mailmend_clientkit::url::password as url_password;
