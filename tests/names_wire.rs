//! Names from the wire, for real, as root on loopback: a tiny DNS server
//! answers `board.example.jp` with a loopback address where a listener
//! runs, a client resolves it through that server and connects, and
//! `kizuki watch --json` names the connection with source `dns`. The same
//! for a TLS ClientHello with a server name and no DNS answer. Nothing
//! leaves this PC (every address is 127.x).
//!
//! Needs root (a packet socket). Skips otherwise, and fails instead when
//! `KIZUKI_REQUIRE_PRIVILEGED=1` (CI).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Children, kizuki, python};

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// `true` when the test can run; panics when it must run and cannot.
fn privileged(test: &str) -> bool {
    if is_root() {
        return true;
    }
    assert!(
        std::env::var("KIZUKI_REQUIRE_PRIVILEGED").as_deref() != Ok("1"),
        "{test} needs root (KIZUKI_REQUIRE_PRIVILEGED=1)"
    );
    eprintln!("skipping {test}: needs root");
    false
}

fn helper() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/names_wire.py"))
}

/// Starts the helper in `mode` and waits for its "ready" line; returns the
/// rest of the line.
fn start(kids: &mut Children, args: &[&str]) -> String {
    let child = kids.push(
        Command::new(python())
            .arg(helper())
            .args(args)
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("python starts"),
    );
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("ready"), "{args:?} said {line:?}");
    line.trim_start_matches("ready").trim().to_string()
}

/// Loopback addresses of this test run, so parallel runs do not meet.
fn addrs(salt: u8) -> (String, String) {
    let id = std::process::id();
    let (a, b) = ((id >> 8) as u8, id as u8);
    (
        format!("127.53.{salt}.{b}"),
        format!("127.{}.{a}.{b}", 60 + salt),
    )
}

/// Runs `kizuki watch` for `seconds`, calling `during` once its packet
/// reader runs. The window is long: the first sample hashes every running
/// program (a cold cache on a busy machine takes seconds), and a later
/// sample must see the connection.
fn watch_while(seconds: u64, during: impl FnOnce(&mut Children)) -> serde_json::Value {
    let data = tempfile::tempdir().unwrap();
    let mut kids = Children::default();
    let w = kids.push(
        Command::new(kizuki())
            .arg("--data-dir")
            .arg(data.path())
            .args(["--lang", "en", "watch", "--json", "--seconds"])
            .arg(seconds.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let _ = w;
    // The packet reader starts before the first sample.
    std::thread::sleep(Duration::from_millis(1500));
    during(&mut kids);
    let out = kids.0.remove(0).wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "watch failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("watch prints JSON")
}

fn connection_to<'a>(v: &'a serde_json::Value, remote: &str) -> &'a serde_json::Value {
    v["programs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["connections"].as_array().unwrap())
        .find(|c| c["remote"] == remote)
        .unwrap_or_else(|| panic!("no connection to {remote} in {v:#}"))
}

#[test]
fn a_name_from_a_dns_answer() {
    if !privileged("a_name_from_a_dns_answer") {
        return;
    }
    let (dns, target) = addrs(1);
    let mut kids = Children::default();
    start(&mut kids, &["listen", &target, "8000"]);
    start(
        &mut kids,
        &["dns-server", &dns, "board.example.jp", &target],
    );
    let v = watch_while(12, |k| {
        start(k, &["dns-client", &dns, "board.example.jp", "8000"]);
    });
    let c = connection_to(&v, &format!("{target}:8000"));
    assert_eq!(c["remote_name"], "board.example.jp", "{c:#}");
    assert_eq!(c["remote_name_source"], "dns");
    assert_eq!(c["remote_scope"], "this-pc");
    assert_eq!(c["remote_country"], serde_json::Value::Null);
}

#[test]
fn a_name_from_a_tls_server_name() {
    if !privileged("a_name_from_a_tls_server_name") {
        return;
    }
    let (_, target) = addrs(2);
    let mut kids = Children::default();
    start(&mut kids, &["listen", &target, "8443"]);
    let v = watch_while(12, |k| {
        start(k, &["tls-client", &target, "8443", "tls.example.jp"]);
    });
    let c = connection_to(&v, &format!("{target}:8443"));
    assert_eq!(c["remote_name"], "tls.example.jp", "{c:#}");
    assert_eq!(c["remote_name_source"], "sni");
    assert_eq!(c["remote_scope"], "this-pc");
}
