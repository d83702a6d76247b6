//! End to end with real processes on loopback: a stand-in for the 2012
//! trojan (a copied interpreter run from a temp folder that deletes its own
//! file, listens on a port, and reconnects to a server at a steady rhythm)
//! must be reported by `kizuki watch --json` with exe-deleted,
//! runs-from-temp, listening and beaconing, while the ordinary local server
//! it talks to gets nothing high.

// These tests drive real Linux processes, sockets and /proc.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Kills and reaps every child, also when an assertion fails.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The stand-in. Contacts every 2 s, each held 1.5 s: a 1-s poll sees each
/// one even when a sample comes up to half a second late.
const STAND_IN: &str = r#"
import os, socket, sys, time
os.unlink(os.readlink("/proc/self/exe"))
port = int(sys.argv[1])
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.bind(("127.0.0.1", 0))
ls.listen(5)
print("ready", ls.getsockname()[1], flush=True)
nxt = time.monotonic()
while True:
    try:
        c = socket.create_connection(("127.0.0.1", port), timeout=5)
        time.sleep(1.5)
        c.close()
    except OSError as e:
        print("stand-in: connect failed:", e, file=sys.stderr, flush=True)
    nxt += 2.0
    time.sleep(max(0.0, nxt - time.monotonic()))
"#;

const WATCH_SECONDS: &str = "14";

fn findings(p: &Value) -> Vec<(String, String)> {
    p["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn program_of(snap: &Value, pid: u32) -> Option<&Value> {
    snap["programs"].as_array().unwrap().iter().find(|p| {
        p["pids"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x.as_u64() == Some(u64::from(pid)))
    })
}

#[test]
fn trojan_stand_in_is_noticed_and_its_server_is_not_accused() {
    let Ok(python) = std::fs::canonicalize("/usr/bin/python3") else {
        common::skip(
            "trojan_e2e",
            "needs /usr/bin/python3 (apt-get install python3)",
        );
        return;
    };

    // The ordinary server: a thread of this test process.
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let server_port = server.local_addr().unwrap().port();
    std::thread::Builder::new()
        .name("e2e-server".into())
        .spawn(move || {
            for mut conn in server.incoming().flatten() {
                let mut sink = Vec::new();
                let _ = conn.read_to_end(&mut sink);
            }
        })
        .unwrap();

    // The "free tool": a copied interpreter in a fresh folder under /tmp.
    let dropped = tempfile::Builder::new()
        .prefix("kizuki-e2e-")
        .tempdir_in("/tmp")
        .unwrap();
    let tool = dropped.path().join("freetool");
    std::fs::copy(&python, &tool).unwrap();
    let data = tempfile::tempdir().unwrap();

    let mut children = Children(Vec::new());
    children.0.push(
        Command::new(&tool)
            .arg("-c")
            .arg(STAND_IN)
            .arg(server_port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stand_in_pid = children.0[0].id();
    let mut ready = String::new();
    BufReader::new(children.0[0].stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert!(
        ready.starts_with("ready "),
        "stand-in did not start: {ready:?}"
    );
    assert!(!tool.exists(), "the stand-in deleted its own file");

    // A first `scan` records the baseline and fills the hash cache, so the
    // watch below samples at its normal pace from its first second however
    // many large executables this machine runs.
    let scan = Command::new(env!("CARGO_BIN_EXE_kizuki"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["--lang", "en", "scan", "--json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        scan.status.success(),
        "{}",
        String::from_utf8_lossy(&scan.stderr)
    );

    children.0.push(
        Command::new(env!("CARGO_BIN_EXE_kizuki"))
            .arg("--data-dir")
            .arg(data.path())
            .args([
                "--lang",
                "en",
                "watch",
                "--seconds",
                WATCH_SECONDS,
                "--json",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut out = children.0[1].stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).map(|_| s)
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(st) = children.0[1].try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "kizuki watch did not finish");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    if let Some(mut e) = children.0[1].stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(status.success(), "kizuki failed: {status}: {err}");
    let text = reader.join().unwrap().unwrap();
    let snap: Value = serde_json::from_str(&text).unwrap();

    let samples = snap["generation"].as_u64().unwrap();
    assert!(
        samples >= 8,
        "kizuki took only {samples} samples in {WATCH_SECONDS} s: the machine is too busy"
    );

    let stand_in = program_of(&snap, stand_in_pid).expect("the stand-in is listed");
    let got = findings(stand_in);
    eprintln!("stand-in findings: {got:?}");
    for kind in ["exe-deleted", "runs-from-temp", "listening", "beaconing"] {
        assert!(
            got.iter().any(|(k, _)| k == kind),
            "missing {kind} for the stand-in: {}",
            serde_json::to_string_pretty(stand_in).unwrap()
        );
    }
    assert!(
        got.contains(&("exe-deleted".into(), "high".into())),
        "a program that deleted itself from /tmp is high: {got:?}"
    );
    assert_eq!(stand_in["exe_deleted"], true);
    let exe = stand_in["exe"].as_str().unwrap();
    assert_eq!(Path::new(exe), tool.as_path());
    let beacon = stand_in["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "beaconing")
        .unwrap();
    let ev = &beacon["evidence"];
    eprintln!("beaconing evidence: {ev}");
    assert_eq!(ev["endpoint"], format!("127.0.0.1:{server_port}"));
    assert!(ev["contacts"].as_u64().unwrap() >= 4, "{ev}");
    let mean = ev["mean_interval_s"].as_f64().unwrap();
    assert!((1.5..=2.6).contains(&mean), "mean interval {mean}");
    assert!(ev["jitter_s"].is_number());
    assert!(!beacon["summary"].as_str().unwrap().is_empty());

    let server = program_of(&snap, std::process::id()).expect("the server is listed");
    let server_findings = findings(server);
    eprintln!("server findings: {server_findings:?}");
    assert!(
        server_findings.iter().all(|(_, s)| s != "high"),
        "the ordinary server must not be accused: {server_findings:?}"
    );
    assert!(
        !server_findings.iter().any(|(k, _)| k == "beaconing"),
        "answering a client is not beaconing: {server_findings:?}"
    );
    assert!(data.path().join("baseline.json").exists());
}
