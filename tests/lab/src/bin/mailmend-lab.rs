//! `mailmend-lab`: start a lab by hand for debugging (`up`), or remove what killed test runs
//! left behind (`cleanup`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{bail, Result};
use mailmend_lab::{cleanup_stale, Lab};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

const USAGE: &str = "usage: mailmend-lab up      start a lab, print how to enter it, stop it on Ctrl-C/SIGTERM\n       \
                     mailmend-lab cleanup  remove leftovers of dead labs (also kept ones)";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("up") => up(),
        Some("cleanup") => {
            let done = cleanup_stale()?;
            if done.is_empty() {
                println!("nothing to clean");
            }
            for line in done {
                println!("{line}");
            }
            Ok(())
        }
        _ => bail!("{USAGE}"),
    }
}

fn up() -> Result<()> {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let lab = Lab::start()?;
    println!(
        "ready id={} dir={} startup_ms={}",
        lab.id(),
        lab.dir().display(),
        lab.startup_time().as_millis()
    );
    println!(
        "enter the client: ip netns exec {} bash\nenter the servers: ip netns exec {} bash\n\
         mail {} (imap/smtp/pop.example.com), new mail {}, resolver {}, CA {}\n\
         users: alice@example.com / {}   bob@example.com / {}\nCtrl-C stops and removes the lab",
        lab.client_ns(),
        lab.server_ns(),
        lab.mail_ip(),
        lab.new_mail_ip(),
        lab.resolver_ip(),
        lab.ca_pem_path().display(),
        mailmend_lab::ALICE.password,
        mailmend_lab::BOB.password,
    );
    while !STOP.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(lab);
    println!("lab stopped");
    Ok(())
}
