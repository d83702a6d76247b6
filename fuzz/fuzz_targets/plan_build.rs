//! The plan builder on arbitrary marks and running programs: what it
//! builds always passes the validator, and the validator's round trip.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::SystemTime;

use arbitrary::Arbitrary;
use kizuki::firewall::Plan;
use kizuki::marks::{MarkEntry, Until};
use kizuki::model::{
    Connection, Mark, ProcessInfo, Program, ProgramKey, Protocol, Snapshot, SockState,
};
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/hostile/plan.rs"]
mod plan;

#[derive(Debug, Arbitrary)]
struct Addr {
    v6: bool,
    v4: u32,
    v6bits: u128,
    port: u16,
}

impl Addr {
    fn get(&self) -> SocketAddr {
        let ip = if self.v6 {
            IpAddr::V6(Ipv6Addr::from(self.v6bits))
        } else {
            IpAddr::V4(Ipv4Addr::from(self.v4))
        };
        SocketAddr::new(ip, self.port)
    }
}

#[derive(Debug, Arbitrary)]
struct Conn {
    udp: bool,
    local: Addr,
    remote: Option<Addr>,
    live: bool,
}

#[derive(Debug, Arbitrary)]
struct Running {
    exe: Vec<u8>,
    pids: Vec<(u32, bool)>,
    conns: Vec<Conn>,
}

#[derive(Debug, Arbitrary)]
struct Input {
    blocked: Vec<(Vec<u8>, bool)>,
    running: Vec<Running>,
    panic: bool,
}

fn path(bytes: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(bytes.to_vec()))
}

fuzz_target!(|i: Input| {
    let t = SystemTime::UNIX_EPOCH;
    let marks: Vec<MarkEntry> = i
        .blocked
        .iter()
        .map(|(exe, hex_ok)| MarkEntry {
            exe: path(exe),
            sha256: if *hex_ok {
                "ab".repeat(32)
            } else {
                "zz".into()
            },
            mark: Mark::Blocked,
            set_at: t,
            until: Until::Always,
        })
        .collect();
    let mut snap = Snapshot::empty();
    for r in &i.running {
        let exe = path(&r.exe);
        snap.programs.push(Program {
            key: ProgramKey::Exe(exe.clone()),
            name: "p".into(),
            exe: Some(exe),
            exe_deleted: false,
            sha256: None,
            processes: r
                .pids
                .iter()
                .map(|&(pid, alive)| ProcessInfo {
                    pid,
                    parent: None,
                    name: "p".into(),
                    cmdline: vec![],
                    user: None,
                    uid: None,
                    start_time: 0,
                    alive,
                    exe_deleted: false,
                    sha256: None,
                })
                .collect(),
            connections: r
                .conns
                .iter()
                .map(|c| Connection {
                    pid: None,
                    protocol: if c.udp { Protocol::Udp } else { Protocol::Tcp },
                    local: c.local.get(),
                    remote: c.remote.as_ref().map(Addr::get),
                    state: SockState::Established,
                    first_seen: t,
                    last_seen: t,
                    live: c.live,
                    uid: None,
                    bytes_sent: None,
                    bytes_received: None,
                })
                .collect(),
            findings: vec![],
            mark: None,
            stale_mark: None,
            first_seen: t,
        });
    }
    let built = Plan::build(&marks, Some(&snap), i.panic);
    // Limits are the one thing the builder does not enforce: a plan that
    // large is refused as a whole, on purpose.
    if let Err(e) = built.validate() {
        panic!("builder made a plan the validator refuses: {e}\n{built:?}");
    }
    if let Err(e) = plan::check_accepted(&built) {
        panic!("{e}");
    }
});
