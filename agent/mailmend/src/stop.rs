//! A stop asked for by something other than a signal: the Windows service control manager's
//! Stop and Shutdown controls. `mailmend run` treats it exactly as SIGTERM on Linux: the fix in
//! flight is finished (kept or rolled back) and the agent stops between fixes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use tokio::sync::Notify;

static REQUESTED: AtomicBool = AtomicBool::new(false);

fn notify() -> &'static Notify {
    static NOTIFY: OnceLock<Notify> = OnceLock::new();
    NOTIFY.get_or_init(Notify::new)
}

/// Asks the running agent to stop. Safe to call from any thread, any number of times.
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
    // notify_waiters wakes whoever waits now; the flag catches a waiter that starts later.
    notify().notify_waiters();
}

/// Whether a stop was asked for.
pub fn is_requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Returns once a stop is asked for (at once when one already was).
pub async fn requested() {
    loop {
        let woken = notify().notified();
        if is_requested() {
            return;
        }
        woken.await;
    }
}
