//! Processes that start and exit while kizuki scans are normal events:
//! every scan succeeds and prints valid JSON.

// These tests drive real Linux processes, sockets and /proc.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[test]
fn scans_survive_process_churn() {
    let data = tempfile::tempdir().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicUsize::new(0));
    // About 100 short-lived processes a second, some holding a socket.
    let churner = {
        let stop = stop.clone();
        let started = started.clone();
        std::thread::spawn(move || {
            let mut running = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                for i in 0..10 {
                    let mut cmd = if i % 3 == 0 {
                        let mut c = Command::new(common::python());
                        c.args([
                            "-c",
                            "import socket,time;s=socket.socket();s.bind(('127.0.0.1',0));s.listen();time.sleep(0.05)",
                        ]);
                        c
                    } else {
                        Command::new("/bin/true")
                    };
                    if let Ok(c) = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn() {
                        running.push(c);
                        started.fetch_add(1, Ordering::Relaxed);
                    }
                }
                running.retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_))));
                std::thread::sleep(Duration::from_millis(100).saturating_sub(t.elapsed()));
            }
            for mut c in running {
                let _ = c.kill();
                let _ = c.wait();
            }
        })
    };

    let deadline = Instant::now() + Duration::from_secs(4);
    let mut scans = 0;
    while Instant::now() < deadline || scans < 3 {
        let out = common::run_kizuki(data.path(), &["scan", "--json"]);
        assert!(
            out.status.success(),
            "scan {scans} failed during churn: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("scan {scans} printed invalid JSON: {e}"));
        assert!(v["programs"].as_array().is_some_and(|p| !p.is_empty()));
        scans += 1;
    }
    stop.store(true, Ordering::Relaxed);
    churner.join().unwrap();
    assert!(
        started.load(Ordering::Relaxed) > 50,
        "the churn really happened"
    );
}
