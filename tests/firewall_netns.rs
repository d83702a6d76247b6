//! Blocking for real, as root, in a pair of network namespaces this test
//! creates (joined by a veth pair with addresses of its own choosing; no
//! traffic leaves them). The kizuki binary runs inside the client namespace
//! through `nsenter --net=` (not `ip netns exec`, which remounts /sys and
//! hides the cgroup mount), so its nftables table lives there too.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kizuki::firewall::Backend;
use kizuki::firewall::nft::NftBackend;

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

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

/// Removes kizuki's table in the client namespace and kizuki's cgroups,
/// after the clients are gone (declared first, dropped last).
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = NftBackend::in_netns(&self.0).clear();
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

fn kizuki(ns: &Netns, data: &Path, args: &[&str]) -> Output {
    let out = ns
        .nsenter()
        .arg(env!("CARGO_BIN_EXE_kizuki"))
        .args(["--lang", "en", "--data-dir"])
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    eprintln!(
        "kizuki {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn nft_tables(ns: &Netns) -> String {
    let out = ns
        .nsenter()
        .args(["nft", "list", "tables"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn blocked_program_loses_the_network_and_panic_stops_all_but_loopback() {
    if !is_root() {
        common::skip(
            "blocked_program_loses_the_network_and_panic_stops_all_but_loopback",
            "needs root",
        );
        return;
    }
    for tool in ["ip", "nft", "nsenter", "ss", "bash"] {
        if !have(tool) {
            common::skip(
                "blocked_program_loses_the_network",
                &format!("needs {tool}"),
            );
            return;
        }
    }
    let id = std::process::id() % 100_000;
    let server_ns = Netns::new(format!("kzk-srv-{id}"));
    let client_ns = Netns::new(format!("kzk-cli-{id}"));
    let _cleanup = Cleanup(client_ns.path());
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

    // Two programs: copies of bash under their own names.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
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
    let _bad = start(&bad, "bad");
    let _good = start(&good, "good");
    let secs = Duration::from_secs;
    wait_until("both clients connected", secs(10), || {
        count(&remote, "old bad") > 0 && count(&remote, "new good") > 0
    });

    // Block: the running program loses its open connection and cannot
    // open new ones; the other program is untouched.
    let out = kizuki(
        &client_ns,
        &data,
        &["mark", bad.to_str().unwrap(), "blocked"],
    );
    assert!(out.status.success());
    assert!(nft_tables(&client_ns).contains("table inet kizuki"));
    std::thread::sleep(Duration::from_millis(300)); // lines already in flight
    assert!(
        !grows(&remote, "old bad", secs(2)),
        "existing connection must be cut"
    );
    assert!(
        !grows(&remote, "new bad", secs(1)),
        "new connections must fail"
    );
    assert!(
        grows(&remote, "new good", secs(3)),
        "other program keeps the network"
    );
    assert!(grows(&remote, "old good", secs(3)));

    // A process of the blocked program started later is caught by the
    // next reconcile (the monitor does this every tick as root).
    let _bad2 = start(&bad, "bad2");
    wait_until("second process connected", secs(10), || {
        count(&remote, "old bad2") > 0
    });
    let out = kizuki(&client_ns, &data, &["firewall", "apply"]);
    assert!(out.status.success());
    std::thread::sleep(Duration::from_millis(300));
    assert!(!grows(&remote, "new bad2", secs(1)));
    assert!(!grows(&remote, "old bad2", secs(1)));

    let status = kizuki(&client_ns, &data, &["firewall", "status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("bad-tool: enforced"), "{text}");

    // Unblocking restores it.
    let out = kizuki(
        &client_ns,
        &data,
        &["mark", bad.to_str().unwrap(), "trusted"],
    );
    assert!(out.status.success());
    assert!(
        grows(&remote, "new bad", secs(5)),
        "unblocked program connects again"
    );
    assert!(
        !nft_tables(&client_ns).contains("kizuki"),
        "nothing left to enforce"
    );

    // Panic: only loopback works; undo restores.
    let out = kizuki(&client_ns, &data, &["firewall", "panic"]);
    assert!(out.status.success());
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
    let out = kizuki(&client_ns, &data, &["firewall", "unpanic"]);
    assert!(out.status.success());
    assert!(grows(&remote, "new good", secs(5)), "undo restores traffic");

    // Block again, then clear: no kizuki table is left, nor cgroups.
    assert!(
        kizuki(
            &client_ns,
            &data,
            &["mark", bad.to_str().unwrap(), "blocked"]
        )
        .status
        .success()
    );
    assert!(
        kizuki(&client_ns, &data, &["firewall", "clear"])
            .status
            .success()
    );
    assert!(!nft_tables(&client_ns).contains("kizuki"));
    let layout = NftBackend::in_netns(&client_ns.path())
        .cgroups()
        .cloned()
        .unwrap();
    assert!(layout.existing().is_empty(), "cgroups removed");
    assert!(
        grows(&remote, "new bad", secs(5)),
        "cleared: the program connects again"
    );
}
