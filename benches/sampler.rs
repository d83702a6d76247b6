//! The monitor's cost per sample under a realistic load, next to `ss -tanup`.
//!
//!     cargo bench --bench sampler -- [--procs 200] [--conns 5000] [--rounds 15]
//!
//! Starts ../shared/bench/loadgen.py, then alternates one monitor tick
//! (sample + owners + sessions + stages) with one `ss -tanup`, for the
//! incremental probe (the app's) and the full-scan probe (the plain method),
//! and prints medians and ratios. Everything stays on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kizuki::clock::SystemClock;
use kizuki::identity::NativeHasher;
use kizuki::monitor::MonitorCore;
use kizuki::probe::{Attribution, NativeProbe};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn loadgen() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for up in [root.join("../shared"), root.join("../../shared")] {
        let p = up.join("bench/loadgen.py");
        if p.exists() {
            return p;
        }
    }
    panic!("loadgen.py not found in ../shared/bench");
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ss() -> Duration {
    let t = Instant::now();
    let out = Command::new("ss")
        .arg("-tanup")
        .stdout(Stdio::null())
        .status()
        .expect("ss runs");
    assert!(out.success());
    t.elapsed()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks; there is nothing to list.
    }
    let procs = arg("--procs", 200);
    let conns = arg("--conns", 5000);
    let rounds = arg("--rounds", 15);
    let mut load = Command::new("python3")
        .arg(loadgen())
        .args(["--procs", &procs.to_string(), "--conns", &conns.to_string()])
        .args(["--seconds", "600"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs the load generator");
    let mut line = String::new();
    BufReader::new(load.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("ready"), "load did not come up: {line}");
    println!("load: {}", line.trim());

    for (label, mode) in [
        ("incremental", Attribution::Incremental),
        ("full scan", Attribution::Full),
    ] {
        let mut core = MonitorCore::new(
            Box::new(NativeProbe::with_attribution(mode).unwrap()),
            Box::new(NativeHasher::new(None)),
            Arc::new(SystemClock),
            Duration::from_secs(1),
        );
        let first = core.tick().unwrap(); // baseline, hashes, first full scan
        let sockets: usize = first.programs.iter().map(|p| p.connections.len()).sum();
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let t = Instant::now();
            core.tick().unwrap();
            ours.push(t.elapsed());
            theirs.push(ss());
        }
        let (m, s) = (median(&mut ours), median(&mut theirs));
        println!(
            "{label:>12}: tick median {:>7.2} ms | ss -tanup median {:>7.2} ms | ratio {:.3} | {} sockets attributed",
            m.as_secs_f64() * 1e3,
            s.as_secs_f64() * 1e3,
            m.as_secs_f64() / s.as_secs_f64(),
            sockets
        );
    }
    // The probe alone (socket table + owners + processes), without the
    // tracker and stages, to show where a tick's time goes.
    let mut probe = NativeProbe::new().unwrap();
    use kizuki::probe::Probe;
    probe.sample().unwrap();
    let mut alone: Vec<Duration> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            probe.sample().unwrap();
            t.elapsed()
        })
        .collect();
    println!(
        "{:>12}: sample median {:>7.2} ms",
        "probe alone",
        median(&mut alone).as_secs_f64() * 1e3
    );
    let _ = load.kill();
    let _ = load.wait();
}
