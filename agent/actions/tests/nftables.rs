//! The nftables performer against real nftables and iptables in network namespaces made by the
//! test: the exception lets a blocked connection through, goes before the blocking rule in every
//! blocking chain, is applied once however often asked, and undo removes exactly it.

#![cfg(target_os = "linux")]

mod common;

use common::{python, run, spawn_until_ready, ChildGuard, Netns};
use mailmend_actions::{NftablesFirewall, PerformError, Performer};
use mailmend_core::{AccountId, Action};
use serde_json::Value;
use std::io::Write;
use std::net::IpAddr;
use std::process::Stdio;

const SERVER: &str = "127.0.0.2";
const PORT: u16 = 993;

/// A drop in inet filter, a reject in another table's output chain, and an unrelated table
/// with a set, an input chain and an accept that must all stay as they are.
const RULESET: &str = r#"
table inet filter {
  chain output {
    type filter hook output priority 0; policy accept;
    ct state established,related accept
    tcp dport 25 drop
    ip daddr 127.0.0.2 tcp dport 993 drop
    ip daddr 127.0.0.9 drop
  }
}
table ip legacy {
  chain out {
    type filter hook output priority 10; policy accept;
    ip daddr 127.0.0.0/24 tcp dport 990-999 reject with tcp reset
  }
}
table inet unrelated {
  set web { type ipv4_addr; elements = { 127.0.0.50 } }
  chain input {
    type filter hook input priority 0; policy accept;
    tcp dport 22 accept
  }
  chain out {
    type filter hook output priority 5; policy accept;
    ip daddr @web tcp dport 80 accept
  }
}
"#;

fn load(ns: &Netns, ruleset: &str) {
    let mut child = ns
        .cmd("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(ruleset.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "nft -f failed");
}

/// The ruleset as nft prints it, without the metainfo header.
fn ruleset(ns: &Netns) -> Vec<Value> {
    let out = run(ns.cmd("nft").args(["-j", "list", "ruleset"]));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i.get("metainfo").is_none())
        .cloned()
        .collect()
}

fn without_comment(items: &[Value], comment: &str) -> Vec<Value> {
    items
        .iter()
        .filter(|i| i["rule"]["comment"] != comment)
        .cloned()
        .collect()
}

/// A TCP listener on the server address inside the namespace.
fn listener(ns: &Netns) -> ChildGuard {
    let script = format!(
        "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
         s.bind(('{SERVER}',{PORT}))\ns.listen(16)\nprint('ready',flush=True)\n\
         while True:\n    c,_=s.accept()\n    c.close()\n"
    );
    spawn_until_ready(ns.cmd(python()).args(["-c", &script]), "ready")
}

/// Whether a TCP connection from inside the namespace to the server succeeds within a second.
fn connects(ns: &Netns) -> bool {
    let script = format!(
        "import socket,sys\ntry:\n    socket.create_connection(('{SERVER}',{PORT}),timeout=1).close()\nexcept OSError:\n    sys.exit(1)\n"
    );
    ns.cmd(python())
        .args(["-c", &script])
        .status()
        .unwrap()
        .success()
}

fn exception(addresses: &[&str]) -> Action {
    Action::AddFirewallException {
        account: AccountId("acct".into()),
        host: "imap.lab.test".into(),
        addresses: addresses
            .iter()
            .map(|a| a.parse::<IpAddr>().unwrap())
            .collect(),
        port: PORT,
    }
}

/// The position of a rule in its chain's listing.
fn index_of(items: &[Value], table: &str, pred: impl Fn(&Value) -> bool) -> usize {
    items
        .iter()
        .filter(|i| i["rule"]["table"] == table)
        .position(|i| pred(&i["rule"]))
        .unwrap_or_else(|| panic!("no such rule in {table}: {items:#?}"))
}

#[test]
fn an_exception_goes_before_the_blocker_in_every_blocking_chain_and_undo_removes_exactly_it() {
    let ns = Netns::new();
    load(&ns, RULESET);
    let _server = listener(&ns);
    assert!(!connects(&ns), "the ruleset must block the server first");
    let before = ruleset(&ns);

    let fw = NftablesFirewall::in_netns(&ns.name);
    let action = exception(&[SERVER]);
    assert!(fw.handles(&action));
    let snap = fw.snapshot(&action).unwrap();
    assert_eq!(snap["backend"], "nftables");
    let blocked: Vec<&Value> = snap["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["state"] == "blocked")
        .collect();
    assert_eq!(blocked.len(), 2, "{snap:#}");
    assert_eq!(ruleset(&ns), before, "snapshot changes nothing");

    let tag = "mailmend:fx-nft-1";
    let out = fw.apply("fx-nft-1", &action).unwrap();
    assert_eq!(out["inserted"].as_array().unwrap().len(), 2, "{out:#}");
    let after = ruleset(&ns);
    // In each blocking chain the exception sits right before the rule that blocked.
    let ours = index_of(&after, "filter", |r| r["comment"] == tag);
    let drop = index_of(&after, "filter", |r| {
        r["expr"][0]["match"]["right"] == SERVER
            && r["expr"].as_array().unwrap().len() == 3
            && r["expr"][2].get("drop").is_some()
    });
    assert_eq!(ours + 1, drop);
    let ours = index_of(&after, "legacy", |r| r["comment"] == tag);
    let reject = index_of(&after, "legacy", |r| r["expr"][2].get("reject").is_some());
    assert_eq!(ours + 1, reject);
    assert_eq!(
        without_comment(&after, tag),
        before,
        "the rest of the ruleset is untouched"
    );
    assert!(connects(&ns), "the exception lets the connection through");

    let again = fw.apply("fx-nft-1", &action).unwrap();
    assert_eq!(again["inserted"].as_array().unwrap().len(), 0, "{again:#}");
    assert_eq!(again["already_allowed"].as_array().unwrap().len(), 2);
    assert_eq!(ruleset(&ns), after, "a second apply changes nothing");

    fw.undo("fx-nft-1", &action, &snap).unwrap();
    assert_eq!(ruleset(&ns), before, "undo restores the ruleset exactly");
    assert!(!connects(&ns));
    fw.undo("fx-nft-1", &action, &snap).unwrap();
    assert_eq!(ruleset(&ns), before, "a second undo is a no-op");
}

#[test]
fn undo_removes_only_its_own_fix_and_uninstall_removes_every_mailmend_rule() {
    let ns = Netns::new();
    load(&ns, RULESET);
    let before = ruleset(&ns);
    let fw = NftablesFirewall::in_netns(&ns.name);
    fw.apply("fx-a", &exception(&[SERVER])).unwrap();
    // A fix for another address (blocked only by the legacy table's range), with an id that
    // starts like the first one.
    fw.apply("fx-ab", &exception(&["127.0.0.3"])).unwrap();
    // An administrator's rule that merely mentions mailmend stays through everything.
    run(ns.cmd("nft").args([
        "add rule inet unrelated out ip daddr 127.0.0.60 accept comment \"by hand, not mailmend:\"",
    ]));
    let with_admin = ruleset(&ns);

    fw.undo("fx-a", &exception(&[SERVER]), &Value::Null)
        .unwrap();
    let now = ruleset(&ns);
    assert_eq!(now, without_comment(&with_admin, "mailmend:fx-a"));
    assert_eq!(
        now.iter()
            .filter(|i| i["rule"]["comment"] == "mailmend:fx-ab")
            .count(),
        1
    );

    assert_eq!(fw.remove_all_mailmend_rules().unwrap(), 1);
    let left = ruleset(&ns);
    assert_eq!(left, without_comment(&now, "mailmend:fx-ab"));
    assert_eq!(
        left.len(),
        before.len() + 1,
        "only the administrator's rule was added"
    );
    assert_eq!(fw.remove_all_mailmend_rules().unwrap(), 0);
}

#[test]
fn nothing_blocking_is_a_failure_that_changes_nothing() {
    let ns = Netns::new();
    load(&ns, RULESET);
    let before = ruleset(&ns);
    let fw = NftablesFirewall::in_netns(&ns.name);
    let e = fw
        .apply("fx-none", &exception(&["127.0.1.77"]))
        .unwrap_err();
    assert!(
        matches!(&e, PerformError::Failed(m) if m.contains("no output rule blocks")),
        "{e}"
    );
    assert_eq!(ruleset(&ns), before);
}

#[test]
fn a_firewalld_ruleset_is_left_to_firewalld() {
    let ns = Netns::new();
    load(&ns, "table inet firewalld {\n chain filter_OUTPUT {\n  type filter hook output priority 10; policy accept;\n  tcp dport 993 drop\n }\n}\n");
    let before = ruleset(&ns);
    let fw = NftablesFirewall::in_netns(&ns.name);
    for r in [
        fw.snapshot(&exception(&[SERVER])).map(|_| ()),
        fw.apply("fx-fwd", &exception(&[SERVER])).map(|_| ()),
    ] {
        match r {
            Err(PerformError::Unavailable(m)) => assert!(m.contains("firewall-cmd"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(ruleset(&ns), before);
}

#[test]
fn without_nft_or_iptables_the_performer_is_unavailable() {
    let fw = NftablesFirewall::new()
        .with_nft("/nonexistent/nft")
        .with_iptables("/nonexistent/iptables", "/nonexistent/ip6tables");
    match fw.snapshot(&exception(&[SERVER])) {
        Err(PerformError::Unavailable(m)) => assert!(m.contains("nft"), "{m}"),
        other => panic!("{other:?}"),
    }
    fw.undo("fx-x", &exception(&[SERVER]), &Value::Null)
        .unwrap();
}

fn iptables_s(ns: &Netns) -> String {
    String::from_utf8(run(ns.cmd("iptables-legacy").args(["-S"])).stdout).unwrap()
}

#[test]
fn an_iptables_only_firewall_gets_the_same_exception() {
    let ns = Netns::new();
    run(ns
        .cmd("iptables-legacy")
        .args(["-A", "OUTPUT", "-p", "tcp", "--dport", "25", "-j", "DROP"]));
    run(ns.cmd("iptables-legacy").args([
        "-A",
        "OUTPUT",
        "-d",
        SERVER,
        "-p",
        "tcp",
        "--dport",
        "993",
        "-j",
        "REJECT",
        "--reject-with",
        "tcp-reset",
    ]));
    run(ns
        .cmd("iptables-legacy")
        .args(["-A", "OUTPUT", "-d", "127.0.0.9", "-j", "DROP"]));
    let _server = listener(&ns);
    assert!(!connects(&ns));
    let before = iptables_s(&ns);

    let fw =
        NftablesFirewall::in_netns(&ns.name).with_iptables("iptables-legacy", "ip6tables-legacy");
    let action = exception(&[SERVER]);
    let snap = fw.snapshot(&action).unwrap();
    assert_eq!(snap["backend"], "iptables", "{snap:#}");
    let out = fw.apply("fx-ipt-1", &action).unwrap();
    assert_eq!(out["inserted"].as_array().unwrap().len(), 1, "{out:#}");
    let after = iptables_s(&ns);
    let rules: Vec<&str> = after
        .lines()
        .filter(|l| l.starts_with("-A OUTPUT"))
        .collect();
    assert_eq!(rules.len(), 4);
    assert!(
        rules[1].contains("mailmend:fx-ipt-1") && rules[1].contains("-j ACCEPT"),
        "{after}"
    );
    assert!(rules[2].contains("REJECT"), "{after}");
    assert!(connects(&ns));

    let again = fw.apply("fx-ipt-1", &action).unwrap();
    assert_eq!(again["inserted"].as_array().unwrap().len(), 0);
    assert_eq!(iptables_s(&ns), after);

    fw.undo("fx-ipt-1", &action, &snap).unwrap();
    assert_eq!(iptables_s(&ns), before);
    assert!(!connects(&ns));
    fw.undo("fx-ipt-1", &action, &snap).unwrap();
    assert_eq!(iptables_s(&ns), before);
    let nft = run(ns.cmd("nft").args(["list", "ruleset"]));
    assert!(nft.stdout.is_empty(), "nothing was written to nftables");
}
