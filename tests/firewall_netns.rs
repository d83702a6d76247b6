//! The nftables backend for real, as root, in a pair of network namespaces
//! this test creates (joined by a veth pair with addresses of its own
//! choosing; no traffic leaves them). `nft` runs inside the client
//! namespace through `nsenter --net=` (not `ip netns exec`, which remounts
//! /sys and hides the cgroup mount), so kizuki's table lives there too.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

use kizuki::firewall::cgroup::CgroupLayout;
use kizuki::firewall::nft::NftBackend;
use kizuki::firewall::{BlockedProgram, FirewallBackend, PLAN_VERSION, Plan};

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Deletes the namespace (and with it its veth end and nft tables).
struct Netns(String);

impl Netns {
    fn new(name: String) -> Netns {
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        sh(&["ip", "netns", "add", &name]);
        Netns(name)
    }
    fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.0))
    }
    fn nsenter(&self) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path().display()));
        c
    }
    fn ip(&self, args: &[&str]) {
        sh(&[&["ip", "-n", &self.0], args].concat());
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// Kills a child process when the test ends, however it ends.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Removes kizuki's table in the client namespace and this run's cgroups,
/// after the clients are gone (declared first, dropped last).
struct Cleanup(NftBackend);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = self.0.clear();
    }
}

/// Binds a listener inside a namespace: a helper thread enters it, binds,
/// and hands the socket back (a socket stays in the namespace it was made in).
fn listen_in(netns: &Path, addr: SocketAddr) -> TcpListener {
    let path = netns.to_path_buf();
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).unwrap();
        nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        TcpListener::bind(addr).unwrap()
    })
    .join()
    .unwrap()
}

type Counts = Arc<Mutex<HashMap<String, u64>>>;

/// Counts the lines each client sends ("old TAG" on its long-lived
/// connection, "new TAG" on fresh ones).
fn serve(l: TcpListener) -> Counts {
    let counts: Counts = Arc::default();
    let c = counts.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(conn) = conn else { continue };
            let c = c.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(conn).lines() {
                    let Ok(line) = line else { break };
                    *c.lock().unwrap().entry(line).or_default() += 1;
                }
            });
        }
    });
    counts
}

fn count(c: &Counts, line: &str) -> u64 {
    c.lock().unwrap().get(line).copied().unwrap_or(0)
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// True when `line` keeps arriving (it grows within `within`).
fn grows(c: &Counts, line: &str, within: Duration) -> bool {
    let before = count(c, line);
    let start = Instant::now();
    while start.elapsed() < within {
        std::thread::sleep(Duration::from_millis(50));
        if count(c, line) > before {
            return true;
        }
    }
    false
}

/// A client: a long-lived connection it writes to, plus a fresh connection
/// every round. SIGPIPE is ignored so a cut connection is not fatal.
const CLIENT: &str = r#"trap '' PIPE
exec 3<>"/dev/tcp/$1/$2" || exit 1
while :; do
  echo "old $3" >&3
  { echo "new $3" >&4; } 4<>"/dev/tcp/$1/$2"
  sleep 0.1
done 2>/dev/null"#;

fn nft_tables(ns: &Netns) -> String {
    let out = ns
        .nsenter()
        .args(["nft", "list", "tables"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn plan(blocked: Vec<BlockedProgram>, panic: bool) -> Plan {
    Plan {
        version: PLAN_VERSION,
        panic,
        blocked,
    }
}

/// The nftables backend itself (what the guard builds on), in a network
/// namespace, with a parent cgroup of this run's own. The guard's whole
/// flow (every start caught, reboot, authorization) is tests/guard_netns.rs.
#[test]
fn backend_blocks_a_program_and_panic_stops_all_but_loopback() {
    let name = "backend_blocks_a_program_and_panic_stops_all_but_loopback";
    if !common::privileged(
        name,
        common::lacks_root_or(&["ip", "nft", "nsenter", "ss", "bash"]),
    ) {
        return;
    }
    let id = std::process::id() % 100_000;
    let server_ns = Netns::new(format!("kzk-srv-{id}"));
    let client_ns = Netns::new(format!("kzk-cli-{id}"));
    let layout = CgroupLayout::detect()
        .unwrap()
        .with_parent(&format!("kizuki-fwtest-{id}"))
        .unwrap();
    let backend = || NftBackend::in_netns(&client_ns.path()).with_layout(Some(layout.clone()));
    let _cleanup = Cleanup(backend());
    let (va, vb) = (format!("kzka{id}"), format!("kzkb{id}"));
    sh(&[
        "ip",
        "link",
        "add",
        &va,
        "netns",
        &server_ns.0,
        "type",
        "veth",
        "peer",
        "name",
        &vb,
        "netns",
        &client_ns.0,
    ]);
    server_ns.ip(&["addr", "add", "10.231.7.1/30", "dev", &va]);
    client_ns.ip(&["addr", "add", "10.231.7.2/30", "dev", &vb]);
    for (ns, dev) in [(&server_ns, &va), (&client_ns, &vb)] {
        ns.ip(&["link", "set", dev, "up"]);
        ns.ip(&["link", "set", "lo", "up"]);
    }
    let remote = serve(listen_in(
        &server_ns.path(),
        "10.231.7.1:8080".parse().unwrap(),
    ));
    let local = serve(listen_in(
        &client_ns.path(),
        "127.0.0.1:8081".parse().unwrap(),
    ));

    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad-tool");
    let good = tmp.path().join("good-tool");
    std::fs::copy("/bin/bash", &bad).unwrap();
    std::fs::copy("/bin/bash", &good).unwrap();
    let start = |exe: &Path, tag: &str| {
        Reap(
            client_ns
                .nsenter()
                .arg(exe)
                .args(["-c", CLIENT, "client", "10.231.7.1", "8080", tag])
                .spawn()
                .unwrap(),
        )
    };
    let bad_proc = start(&bad, "bad");
    let _good = start(&good, "good");
    let secs = Duration::from_secs;
    wait_until("both clients connected", secs(10), || {
        count(&remote, "new bad") > 0 && count(&remote, "new good") > 0
    });

    // Block: the program's process joins its cgroup, whose sockets are
    // dropped; the other program is untouched.
    let blocked = BlockedProgram {
        exe: bad.clone(),
        sha256: kizuki::identity::sha256_file(&bad).unwrap(),
        pids: vec![bad_proc.0.id()],
        flows: vec![],
    };
    let applied = backend()
        .apply(&plan(vec![blocked.clone()], false))
        .unwrap();
    assert_eq!(applied.moved, vec![bad_proc.0.id()]);
    assert!(nft_tables(&client_ns).contains("table inet kizuki"));
    assert_eq!(layout.pids(&blocked.id()), vec![bad_proc.0.id()]);
    std::thread::sleep(Duration::from_millis(300)); // lines already in flight
    assert!(
        !grows(&remote, "new bad", secs(1)),
        "new connections must fail"
    );
    assert!(
        grows(&remote, "new good", secs(3)),
        "other program keeps the network"
    );
    let enforced = backend().status().unwrap();
    assert!(enforced.blocks(&bad) && !enforced.blocks(&good) && !enforced.panic);

    // Panic: only loopback works.
    backend().apply(&plan(vec![], true)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !grows(&remote, "new good", secs(1)),
        "panic stops other traffic"
    );
    let lo = client_ns
        .nsenter()
        .args(["bash", "-c", "echo 'new lo' > /dev/tcp/127.0.0.1/8081"])
        .status()
        .unwrap();
    assert!(lo.success(), "loopback still works under panic");
    wait_until("loopback line arrives", secs(5), || {
        count(&local, "new lo") > 0
    });
    assert!(backend().status().unwrap().panic);

    // Clear: no table, no cgroups, and everything connects again.
    backend().clear().unwrap();
    assert!(!nft_tables(&client_ns).contains("kizuki"));
    assert!(layout.existing().is_empty(), "cgroups removed");
    assert!(grows(&remote, "new good", secs(5)));
    assert!(
        grows(&remote, "new bad", secs(5)),
        "cleared: the program connects again"
    );
}
