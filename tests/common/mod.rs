//! Shared helpers for integration tests: run the real binary with a private
//! data folder, and make sure child processes never outlive a test.

#![allow(dead_code)]

pub mod window;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

pub fn kizuki() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kizuki"))
}

/// Runs `kizuki --data-dir <dir> --lang en <args>` and returns its output.
pub fn run_kizuki(data: &Path, args: &[&str]) -> Output {
    Command::new(kizuki())
        .arg("--data-dir")
        .arg(data)
        .args(["--lang", "en"])
        .args(args)
        .output()
        .expect("kizuki runs")
}

/// `kizuki scan --json`, parsed; panics with stderr when it fails.
pub fn scan_json(data: &Path) -> serde_json::Value {
    let out = run_kizuki(data, &["scan", "--json"]);
    assert!(
        out.status.success(),
        "scan failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("scan prints valid JSON")
}

/// A Python server on a free loopback port: prints the port, then accepts
/// and holds every connection.
pub const PY_SERVER: &str = r#"
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64)
print(s.getsockname()[1], flush=True)
held = []
while True:
    c, _ = s.accept(); held.append(c)
"#;

/// The system's Python, not a virtualenv or pyenv shim.
pub fn python() -> PathBuf {
    for p in ["/usr/bin/python3", "/usr/local/bin/python3"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    PathBuf::from("python3")
}

/// Kills and reaps its children when dropped, even when a test panics.
#[derive(Default)]
pub struct Children(pub Vec<Child>);

impl Children {
    pub fn push(&mut self, c: Child) -> &mut Child {
        self.0.push(c);
        self.0.last_mut().expect("just pushed")
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// All connections of all programs, each with its program's exe.
pub fn all_connections(scan: &serde_json::Value) -> Vec<(Option<String>, serde_json::Value)> {
    let mut out = Vec::new();
    for p in scan["programs"].as_array().expect("programs array") {
        for c in p["connections"].as_array().expect("connections array") {
            out.push((p["exe"].as_str().map(str::to_string), c.clone()));
        }
    }
    out
}

/// The "free tool" of the home PC below: in a cache folder, like the 2012
/// trojan in a download folder.
pub const TOOL: &str = "/tmp/.cache/tool";
pub const TOOL_SHA: &str = "5f1d7a3b9c0e2d4f6a8b0c1d3e5f7a9b1c3d5e7f9a0b2c4d6e8f0a1b3c5d7e9f";

/// A monitor over a home PC where Firefox and the free tool each talk to
/// a server, on `clock`; every tick sees the same sample.
pub fn home_pc(clock: std::sync::Arc<kizuki::clock::FakeClock>) -> kizuki::monitor::MonitorCore {
    use kizuki::model::{RawProcess, RawSample, RawSocket};
    let probe = kizuki::probe::FakeProbe::new(vec![RawSample::of(
        vec![
            RawProcess::fake(200, "/usr/bin/firefox"),
            RawProcess::fake(400, TOOL),
        ],
        vec![
            RawSocket::tcp(200, "10.0.0.2:40001", "198.51.100.1:443"),
            RawSocket::tcp(400, "10.0.0.2:40100", "203.0.113.7:8080"),
        ],
    )]);
    kizuki::monitor::MonitorCore::new(
        Box::new(probe),
        Box::new(kizuki::identity::FakeHasher::with(&[(TOOL, TOOL_SHA)])),
        clock,
        std::time::Duration::from_secs(1),
    )
}

/// Set by CI: a test that cannot run on this machine fails instead of
/// skipping, so a CI that loses root or a tool does not stay green.
pub const REQUIRE_ENV: &str = "KIZUKI_REQUIRE_PRIVILEGED";

/// Whether tests must not skip here.
pub fn skips_forbidden() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

/// Says why `test` does not run here, or fails it when skipping is
/// forbidden. The caller returns right after.
pub fn skip(test: &str, why: &str) {
    assert!(
        !skips_forbidden(),
        "{test} cannot run here ({why}) and {REQUIRE_ENV}=1 forbids skipping"
    );
    eprintln!("skipping {test}: {why}");
}

/// Whether a privileged test can run: `missing` names what it lacks (root,
/// a tool). With `KIZUKI_REQUIRE_PRIVILEGED=1` (CI) a missing requirement
/// fails the test instead of skipping it.
pub fn privileged(test: &str, missing: Option<String>) -> bool {
    let Some(what) = missing else { return true };
    if skips_forbidden() {
        panic!("{test} must run (KIZUKI_REQUIRE_PRIVILEGED=1) but needs {what}");
    }
    eprintln!("skipping {test}: needs {what}");
    false
}

/// What a privileged network test lacks here: root, or one of `tools`.
pub fn lacks_root_or(tools: &[&str]) -> Option<String> {
    if !kizuki::probe::running_as_admin() {
        return Some("root".into());
    }
    tools
        .iter()
        .find(|t| {
            Command::new(t)
                .arg("--version")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_err()
        })
        .map(|t| t.to_string())
}
