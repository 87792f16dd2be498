//! The password inside an aerc URL (`imaps://user:PASSWORD@host`), read only when the agent asks
//! for the account's credential, the way Go's `net/url` reads it (user information up to the
//! last `@` of the authority, password after its first `:`, percent-decoded).

// The reading is the same in every client that keeps a password in a URL.
pub use mailmend_clientkit::url::password as url_password;
