//! Small builders for detector tests.

use std::time::{Duration, SystemTime};

use crate::clock::{Clock, FakeClock};
use crate::model::{Connection, ProcessInfo, Program, ProgramKey, Protocol, SockState};

pub fn noon() -> SystemTime {
    FakeClock::at_noon().now()
}

/// A program of one live process (pid 1, uid 1000) at `exe`.
pub fn program(exe: &str, connections: Vec<Connection>) -> Program {
    let name = exe.rsplit(['/', '\\']).next().unwrap_or(exe).to_string();
    Program {
        key: ProgramKey::Exe(exe.into()),
        name: name.clone(),
        exe: Some(exe.into()),
        exe_deleted: false,
        sha256: Some("aa".into()),
        processes: vec![ProcessInfo {
            pid: 1,
            parent: Some(1),
            name,
            cmdline: vec![exe.into()],
            user: Some("alice".into()),
            uid: Some(1000),
            start_time: 0,
            alive: true,
            exe_deleted: false,
            sha256: Some("aa".into()),
        }],
        connections,
        findings: vec![],
        mark: None,
        stale_mark: None,
        first_seen: noon(),
    }
}

fn conn(local: &str, remote: Option<&str>, state: SockState) -> Connection {
    Connection {
        bytes_received: None,
        bytes_sent: None,
        pid: Some(1),
        protocol: Protocol::Tcp,
        local: local.parse().unwrap(),
        remote: remote.map(|r| r.parse().unwrap()),
        state,
        first_seen: noon(),
        last_seen: noon() + Duration::from_secs(1),
        live: true,
        uid: Some(1000),
        remote_name: None,
    }
}

/// A live outgoing TCP connection to `remote`.
pub fn outgoing(remote: &str) -> Connection {
    let local = if remote.starts_with('[') {
        "[::1]:40000"
    } else {
        "10.0.0.2:40000"
    };
    conn(local, Some(remote), SockState::Established)
}

/// A live TCP listener on `local`.
pub fn listen(local: &str) -> Connection {
    conn(local, None, SockState::Listen)
}
