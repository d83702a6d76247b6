//! `kizuki scan` against real processes and sockets on this machine.

// These tests drive real Linux processes, sockets and /proc.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{Children, python, scan_json};

/// A Python child that runs `code` and prints one line when ready.
fn spawn_py(kids: &mut Children, code: &str) -> (u32, String) {
    let child = kids.push(
        Command::new(python())
            .args(["-c", code])
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("python starts"),
    );
    let pid = child.id();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    (pid, line.trim().to_string())
}

const CLIENT: &str = r#"
import socket, sys, time
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print(c.getsockname()[1], flush=True)
time.sleep(120)
"#;

#[test]
fn each_loopback_connection_is_attributed_to_its_process() {
    let data = tempfile::tempdir().unwrap();
    let mut kids = Children::default();
    let (server_pid, port) = spawn_py(&mut kids, common::PY_SERVER);
    let port: u16 = port.parse().unwrap();
    let mut clients = Vec::new();
    for _ in 0..3 {
        let child = kids.push(
            Command::new(python())
                .args(["-c", CLIENT, &port.to_string()])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let pid = child.id();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        clients.push((pid, line.trim().parse::<u16>().unwrap()));
    }

    let scan = scan_json(data.path());
    let conns = common::all_connections(&scan);
    let find = |pid: u32, local: &str, remote: Option<&str>| {
        conns.iter().find(|(_, c)| {
            c["pid"] == pid
                && c["local"] == local
                && c["remote"].as_str() == remote
                && c["protocol"] == "tcp"
        })
    };

    let listen = find(server_pid, &format!("127.0.0.1:{port}"), None)
        .unwrap_or_else(|| panic!("listener of {server_pid} on {port} missing"));
    assert_eq!(listen.1["state"], "LISTEN");

    for (pid, cport) in &clients {
        let client_side = find(
            *pid,
            &format!("127.0.0.1:{cport}"),
            Some(&format!("127.0.0.1:{port}")),
        )
        .unwrap_or_else(|| panic!("client {pid} connection missing"));
        assert_eq!(client_side.1["state"], "ESTABLISHED");
        let server_side = find(
            server_pid,
            &format!("127.0.0.1:{port}"),
            Some(&format!("127.0.0.1:{cport}")),
        )
        .unwrap_or_else(|| panic!("server side of {cport} missing"));
        assert_eq!(server_side.1["state"], "ESTABLISHED");
        // Each program lists its PIDs; the client's PID belongs to python.
        let prog = scan["programs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["pids"].as_array().unwrap().contains(&(*pid).into()))
            .unwrap();
        assert!(prog["name"].as_str().unwrap().starts_with("python"));
        assert!(prog["sha256"].as_str().is_some_and(|h| h.len() == 64));
    }
    // Contract fields exist with the right types.
    assert!(scan["taken_at"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn a_deleted_running_executable_is_reported_with_its_original_hash() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::canonicalize("/bin/sleep").unwrap();
    let copy = dir.path().join("freetool");
    std::fs::copy(&original, &copy).unwrap();
    let mut kids = Children::default();
    let pid = kids
        .push(Command::new(&copy).arg("120").spawn().unwrap())
        .id();
    // The process must have exec'd before the file goes away.
    for _ in 0..200 {
        if std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p == copy) {
            break;
        }
        std::thread::yield_now();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::fs::remove_file(&copy).unwrap();

    let scan = scan_json(data.path());
    let prog = scan["programs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pids"].as_array().unwrap().contains(&pid.into()))
        .expect("the deleted program is listed");
    assert_eq!(
        prog["exe"],
        copy.to_str().unwrap(),
        "no ' (deleted)' suffix"
    );
    assert_eq!(prog["exe_deleted"], true);
    let want = kizuki::identity::sha256_file(&original).unwrap();
    assert_eq!(prog["sha256"], want.as_str());
}

#[test]
fn human_table_lists_programs_and_polling_note() {
    let data = tempfile::tempdir().unwrap();
    let out = common::run_kizuki(data.path(), &["scan"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("PROGRAM"));
    assert!(text.contains("can be missed"));
}

#[test]
fn bad_usage_exits_2_and_version_works() {
    let out = Command::new(common::kizuki())
        .args(["scan", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(common::kizuki())
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

/// Holds one loopback connection that moved known bytes both ways.
const HOLDER: &str = r#"
import socket, time
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen()
c = socket.create_connection(l.getsockname())
s, _ = l.accept()
c.sendall(b"x" * 4000)
got = 0
while got < 4000:
    got += len(s.recv(65536))
s.sendall(b"y" * 700)
got = 0
while got < 700:
    got += len(c.recv(65536))
print(c.getsockname()[1], flush=True)
time.sleep(120)
"#;

/// Without event capture (no root, no guard, or capture turned off),
/// an open TCP connection still shows what it sent and received: the
/// kernel's own counters.
#[test]
fn without_capture_an_open_connection_still_counts_its_bytes() {
    let data = tempfile::tempdir().unwrap();
    let mut kids = Children::default();
    let (pid, cport) = spawn_py(&mut kids, HOLDER);
    let out = Command::new(common::kizuki())
        .env("KIZUKI_CAPTURE", "polling")
        .env("KIZUKI_GUARD_SOCKET", data.path().join("no-guard.sock"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["--lang", "en", "watch", "--seconds", "2", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let conns = common::all_connections(&doc);
    let (_, c) = conns
        .iter()
        .find(|(_, c)| c["pid"] == pid && c["local"] == format!("127.0.0.1:{cport}"))
        .unwrap_or_else(|| panic!("the holder's connection is missing"));
    let sent = c["bytes_sent"].as_u64().expect("bytes_sent counted");
    // The kernel counts the SYN among the acknowledged bytes.
    assert!((4000..=4001).contains(&sent), "sent {sent}");
    assert_eq!(c["bytes_received"].as_u64(), Some(700));
}
