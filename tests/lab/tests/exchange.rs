//! Exchange accounts against the lab's real DNS and Autodiscover (nginx): an Outlook account
//! of kind Exchange names no server in the registry, so its server must come from the email
//! domain's Autodiscover. When the domain's Autodiscover names none, or none that answers, that
//! is `autodiscover.not_found` and nothing else; when it names one that answers, there is no
//! finding at all.
//!
//! Exchange accounts live only in Outlook for Windows, whose registry the `mailmend` binary
//! reads only on Windows. These tests use the lab's `exchange-check` helper instead: the same
//! Outlook adapter over a `.reg` export of the user's `HKEY_CURRENT_USER`, the same built-in
//! diagnostics and the agent's real prober, run in the client namespace.

use mailmend_lab::Lab;
use serde_json::Value;
use std::fs;
use std::path::PathBuf;

/// Outlook's registry strings are REG_BINARY UTF-16LE with a terminating NUL.
fn utf16_hex(text: &str) -> String {
    text.encode_utf16()
        .chain([0])
        .flat_map(u16::to_le_bytes)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A REGEDIT4 export of a profile whose only account is an Exchange (MSEMS) account for
/// `email`, as Outlook 2016 writes it: no server anywhere, Autodiscover finds it.
fn exchange_profile(email: &str) -> String {
    format!(
        "REGEDIT4\r\n\r\n\
[HKEY_CURRENT_USER\\Software\\Microsoft\\Office\\16.0\\Outlook\\Profiles\\Outlook\\9375CFF0413111d3B88A00104B2A6676]\r\n\
\"NextAccountID\"=dword:00000002\r\n\r\n\
[HKEY_CURRENT_USER\\Software\\Microsoft\\Office\\16.0\\Outlook\\Profiles\\Outlook\\9375CFF0413111d3B88A00104B2A6676\\00000001]\r\n\
\"clsid\"=\"{{ED475414-B0D6-11D2-8C3B-00104B2A6676}}\"\r\n\
\"Service Name\"=hex:{service}\r\n\
\"Account Name\"=hex:{name}\r\n\
\"Display Name\"=hex:{display}\r\n\
\"Mini UID\"=dword:0012d687\r\n\r\n",
        service = utf16_hex("MSEMS"),
        name = utf16_hex(email),
        display = utf16_hex("Alice Example"),
    )
}

/// An Autodiscover answer naming an Exchange server (EXPR, Outlook Anywhere, with its EWS URL),
/// as an on-premises Exchange sends it.
fn autodiscover_naming(host: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
  <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">
    <User>
      <DisplayName>Alice Example</DisplayName>
    </User>
    <Account>
      <AccountType>email</AccountType>
      <Action>settings</Action>
      <Protocol>
        <Type>EXPR</Type>
        <Server>{host}</Server>
        <SSL>On</SSL>
        <AuthPackage>Ntlm</AuthPackage>
        <EwsUrl>https://{host}/EWS/Exchange.asmx</EwsUrl>
      </Protocol>
    </Account>
  </Response>
</Autodiscover>
"#
    )
}

struct ExchangeLab {
    lab: Lab,
    home: PathBuf,
    reg: PathBuf,
}

impl ExchangeLab {
    fn new() -> ExchangeLab {
        let lab = Lab::start().expect("start the lab");
        let home = lab.home("alice").unwrap();
        let reg = lab.dir().join("alice-hkcu.reg");
        fs::write(&reg, exchange_profile("alice@example.com")).unwrap();
        ExchangeLab { lab, home, reg }
    }

    /// Runs `exchange-check` in the client namespace; the JSON report and a text for failures.
    fn check(&self) -> (Value, String) {
        let out = self
            .lab
            .client_command(env!("CARGO_BIN_EXE_exchange-check"))
            .arg("--reg")
            .arg(&self.reg)
            .arg("--home")
            .arg(&self.home)
            .arg("--ca")
            .arg(self.lab.ca_pem_path())
            .output()
            .expect("run exchange-check");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let text = format!(
            "exchange-check exited {:?}\n--- stdout\n{stdout}\n--- stderr\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        let report: Value = serde_json::from_str(&stdout).expect(&text);
        (report, text)
    }
}

/// The one account's findings; fails unless the export gave exactly one Exchange account with
/// no server, and the adapter reported nothing about the file.
fn the_accounts_findings<'a>(report: &'a Value, text: &str) -> &'a [Value] {
    let accounts = report["accounts"].as_array().expect(text);
    assert_eq!(accounts.len(), 1, "{text}");
    assert_eq!(report["adapter_findings"], Value::Array(vec![]), "{text}");
    let incoming = &accounts[0]["account"]["incoming"];
    assert_eq!(incoming["protocol"], "exchange", "{text}");
    assert_eq!(incoming["host"], "", "Outlook names no server: {text}");
    accounts[0]["findings"].as_array().expect(text)
}

fn codes(findings: &[Value]) -> Vec<&str> {
    findings
        .iter()
        .map(|f| f["code"].as_str().unwrap_or("?"))
        .collect()
}

fn evidence_text(finding: &Value) -> String {
    finding["evidence"].to_string()
}

#[test]
fn an_exchange_account_whose_domain_autodiscover_names_no_exchange_server_is_autodiscover_not_found(
) {
    let x = ExchangeLab::new();
    // The lab domain's Autodiscover answers, but only with IMAP and SMTP settings (a domain
    // without Exchange, or one whose Exchange records were removed), and its autoconfig
    // likewise names no Exchange server.
    let (report, text) = x.check();
    let findings = the_accounts_findings(&report, &text);
    assert_eq!(codes(findings), vec!["autodiscover.not_found"], "{text}");
    let f = &findings[0];
    assert_eq!(f["severity"], "error", "{text}");
    let summary = f["summary"].as_str().unwrap();
    assert!(summary.contains("example.com"), "{summary}");
    assert!(summary.contains("names none"), "{summary}");
    // The evidence says where mailmend looked: the domain's Autodiscover.
    assert!(
        evidence_text(f).contains("autodiscover"),
        "the Autodiscover lookup is in the evidence: {text}"
    );
    // Nothing to change: what is missing is the domain's, not the computer's.
    for proposal in f["proposed"].as_array().into_iter().flatten() {
        assert_eq!(proposal["kind"], "notify_user", "{text}");
    }
    // mailmend asked the domain's Autodiscover over HTTPS and was answered.
    let asked: Vec<_> = x
        .lab
        .web_requests()
        .into_iter()
        .filter(|r| r.request.contains("/autodiscover/autodiscover.xml"))
        .collect();
    assert!(!asked.is_empty(), "Autodiscover was asked");
    assert!(asked.iter().all(|r| r.status == 200), "{asked:#?}");
}

#[test]
fn an_exchange_server_that_autodiscover_names_but_does_not_answer_is_autodiscover_not_found() {
    let x = ExchangeLab::new();
    // mail.example.com has no web server: its port 443 refuses.
    x.lab
        .write_autodiscover(&autodiscover_naming("mail.example.com"))
        .unwrap();
    let (report, text) = x.check();
    let findings = the_accounts_findings(&report, &text);
    assert_eq!(codes(findings), vec!["autodiscover.not_found"], "{text}");
    let f = &findings[0];
    let summary = f["summary"].as_str().unwrap();
    assert!(summary.contains("no server"), "{summary}");
    let evidence = evidence_text(f);
    assert!(
        evidence.contains("mail.example.com"),
        "the server Autodiscover named, and what it did, is in the evidence: {text}"
    );
}

#[test]
fn an_exchange_server_that_autodiscover_names_and_that_answers_gives_no_finding() {
    let x = ExchangeLab::new();
    // autodiscover.example.com is the lab's web server: TLS on 443 with a certificate for it.
    x.lab
        .write_autodiscover(&autodiscover_naming("autodiscover.example.com"))
        .unwrap();
    let (report, text) = x.check();
    let findings = the_accounts_findings(&report, &text);
    assert!(findings.is_empty(), "{text}");
}
