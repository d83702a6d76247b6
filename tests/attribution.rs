//! The incremental owner resolution must agree with the plain full scan on
//! the same machine state: new sockets in running processes, new processes,
//! and processes that exit.

// These tests drive real Linux processes, sockets and /proc.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, ChildStdout, Command, Stdio};

use kizuki::model::RawSample;
use kizuki::probe::{Attribution, NativeProbe, Probe};

/// Opens one more connection to the port each time a line arrives.
const DIALER: &str = r#"
import socket, sys
port = int(sys.argv[1]); held = []
for line in sys.stdin:
    c = socket.create_connection(("127.0.0.1", port)); held.append(c)
    print(c.getsockname()[1], flush=True)
"#;

struct Dialer {
    pid: u32,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Dialer {
    fn dial(&mut self) -> u16 {
        self.stdin.write_all(b"go\n").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim().parse().unwrap()
    }
}

/// (local, remote) → owners, for sockets touching `port` only.
fn owners(sample: &RawSample, port: u16) -> BTreeMap<String, Vec<u32>> {
    sample
        .sockets
        .iter()
        .filter(|s| s.local.port() == port || s.remote.is_some_and(|r| r.port() == port))
        .map(|s| {
            let mut p = s.pids.clone();
            p.sort_unstable();
            (format!("{}>{:?}", s.local, s.remote), p)
        })
        .collect()
}

#[test]
fn incremental_and_full_attribution_agree() {
    let mut kids = common::Children::default();
    let server = kids.push(
        Command::new(common::python())
            .args(["-c", common::PY_SERVER])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(server.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().unwrap();

    let spawn_dialer = |kids: &mut common::Children| {
        let c = kids.push(
            Command::new(common::python())
                .args(["-c", DIALER, &port.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        Dialer {
            pid: c.id(),
            stdin: c.stdin.take().unwrap(),
            stdout: BufReader::new(c.stdout.take().unwrap()),
        }
    };
    let mut a = spawn_dialer(&mut kids);
    let mut b = spawn_dialer(&mut kids);
    a.dial();
    b.dial();

    let mut incremental = NativeProbe::with_attribution(Attribution::Incremental).unwrap();
    let mut full = NativeProbe::with_attribution(Attribution::Full).unwrap();
    let check = |inc: &mut NativeProbe, full: &mut NativeProbe, what: &str| {
        // The server accepts in its own time; wait until every socket of
        // the test has its owner before comparing.
        for _ in 0..500 {
            if owners(&full.sample().unwrap(), port)
                .values()
                .all(|p| !p.is_empty())
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let i = owners(&inc.sample().unwrap(), port);
        let f = owners(&full.sample().unwrap(), port);
        assert_eq!(i, f, "attribution differs after {what}");
        i
    };

    let first = check(&mut incremental, &mut full, "the first sample");
    assert!(first.values().all(|p| !p.is_empty()), "every socket owned");

    // Running processes open new sockets: the incremental probe must find
    // them without a new process appearing.
    let pa = a.dial();
    let pb = b.dial();
    let after = check(&mut incremental, &mut full, "new sockets in old processes");
    let key = |lp: u16| format!("127.0.0.1:{lp}>Some(127.0.0.1:{port})");
    assert_eq!(after[&key(pa)], vec![a.pid]);
    assert_eq!(after[&key(pb)], vec![b.pid]);

    // A new process with its own connection.
    let mut c = spawn_dialer(&mut kids);
    let pc = c.dial();
    let after = check(&mut incremental, &mut full, "a new process");
    assert_eq!(after[&key(pc)], vec![c.pid]);

    // A process exits: its sockets go with it.
    let dead = a.pid;
    kids.0.retain_mut(|k| {
        if k.id() == dead {
            let _ = k.kill();
            let _ = k.wait();
            false
        } else {
            true
        }
    });
    let after = check(&mut incremental, &mut full, "a process exit");
    assert!(after.values().all(|p| !p.contains(&dead)));
}

/// A process that calls `exec` keeps its PID but becomes another program:
/// the probe must describe it anew (name, executable, command line).
#[test]
fn exec_in_a_running_process_is_noticed() {
    let mut kids = common::Children::default();
    let child = kids.push(
        Command::new(common::python())
            .args([
                "-c",
                "import os,sys\nprint('ready',flush=True)\nsys.stdin.readline()\nos.execv('/bin/sleep',['sleep','60'])",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let pid = child.id();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mut probe = NativeProbe::new().unwrap();
    let before = probe.sample().unwrap();
    let p = before.processes.iter().find(|p| p.pid == pid).unwrap();
    assert!(p.name.starts_with("python"));

    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    child.stdin.as_mut().unwrap().flush().unwrap();
    let sleep = std::fs::canonicalize("/bin/sleep").unwrap();
    let mut seen = None;
    for _ in 0..500 {
        let s = probe.sample().unwrap();
        let p = s.processes.iter().find(|p| p.pid == pid).cloned().unwrap();
        if p.cmdline.first().map(String::as_str) == Some("sleep") {
            seen = Some(p);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let p = seen.expect("the new command line shows within a few samples");
    assert_eq!(p.exe.as_deref(), Some(sleep.as_path()));
    assert_eq!(p.name, "sleep");
}

/// A new process that holds a copy of another's socket and drops it right
/// after it was first read (what a child does between `fork` and `exec`;
/// found while building the churn soak). The next sample must no longer
/// name it as the socket's owner, although its PID and start time did not
/// change.
#[test]
fn a_young_process_that_drops_an_inherited_socket_is_no_longer_its_owner() {
    const FORKER: &str = r#"
import os, socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
pid = os.fork()
if pid == 0:
    time.sleep(60); os._exit(0)
print(s.getsockname()[1], pid, flush=True)
sys.stdin.readline()
s.close()
print("closed", flush=True)
sys.stdin.readline()
"#;
    let mut kids = common::Children::default();
    // A first sample before the process exists: it is then new to the
    // incremental probe, as a freshly forked child is.
    let mut probe = NativeProbe::with_attribution(Attribution::Incremental).unwrap();
    probe.sample().unwrap();

    let parent = kids.push(
        Command::new(common::python())
            .args(["-c", FORKER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let parent_pid = parent.id();
    let mut out = BufReader::new(parent.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let mut it = line.split_whitespace();
    let port: u16 = it.next().unwrap().parse().unwrap();
    let child_pid: u32 = it.next().unwrap().parse().unwrap();
    let listener = |s: &RawSample| {
        let mut p = s
            .sockets
            .iter()
            .find(|x| x.local.port() == port && x.remote.is_none())
            .map(|x| x.pids.clone())
            .unwrap_or_default();
        p.sort_unstable();
        p
    };
    let mut both = vec![parent_pid, child_pid];
    both.sort_unstable();
    assert_eq!(listener(&probe.sample().unwrap()), both, "both hold it");

    let stdin = parent.stdin.as_mut().unwrap();
    stdin.write_all(b"close\n").unwrap();
    stdin.flush().unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "closed");
    assert_eq!(
        listener(&probe.sample().unwrap()),
        vec![child_pid],
        "the process that closed its copy is not named any more"
    );
    // The forked child is not a child of the test: end it by its PID.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child_pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
}
