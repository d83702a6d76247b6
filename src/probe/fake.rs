//! Scripted samples for tests of every layer above the OS.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::{Probe, ProbeError};
use crate::lock::MutexExt;
use crate::model::{Protocol, RawProcess, RawSample, RawSocket, SockState};

/// Replays samples in order; after the script ends it keeps returning the
/// last one. Tests can push more samples through a clone while a monitor
/// owns the probe.
#[derive(Debug, Clone, Default)]
pub struct FakeProbe {
    queue: Arc<Mutex<VecDeque<RawSample>>>,
    last: Arc<Mutex<RawSample>>,
}

impl FakeProbe {
    pub fn new(samples: Vec<RawSample>) -> Self {
        FakeProbe {
            queue: Arc::new(Mutex::new(samples.into())),
            last: Arc::new(Mutex::new(RawSample {
                complete: true,
                ..RawSample::default()
            })),
        }
    }

    pub fn push(&self, sample: RawSample) {
        self.queue.locked().push_back(sample);
    }
}

impl Probe for FakeProbe {
    fn sample(&mut self) -> Result<RawSample, ProbeError> {
        let next = self.queue.locked().pop_front();
        let mut last = self.last.locked();
        if let Some(s) = next {
            *last = s;
        }
        Ok(last.clone())
    }
}

/// Test helpers to write samples briefly.
impl RawProcess {
    pub fn fake(pid: u32, exe: &str) -> RawProcess {
        let path = PathBuf::from(exe);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| exe.to_string());
        RawProcess {
            pid,
            parent: Some(1),
            name,
            exe: Some(path),
            exe_deleted: false,
            cmdline: vec![exe.to_string()],
            uid: Some(1000),
            user: Some("alice".into()),
            start_time: 1_795_600_000,
            ..RawProcess::default()
        }
    }
}

impl RawSocket {
    fn parse(addr: &str) -> SocketAddr {
        addr.parse()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// An established TCP connection held by `pid`.
    pub fn tcp(pid: u32, local: &str, remote: &str) -> RawSocket {
        RawSocket {
            bytes_received: None,
            opened: None,
            bytes_sent: None,
            protocol: Protocol::Tcp,
            local: Self::parse(local),
            remote: Some(Self::parse(remote)),
            state: SockState::Established,
            pids: vec![pid],
            uid: Some(1000),
            inode: 1,
        }
    }

    /// A TCP listener held by `pid`.
    pub fn listen(pid: u32, local: &str) -> RawSocket {
        RawSocket {
            bytes_received: None,
            opened: None,
            bytes_sent: None,
            protocol: Protocol::Tcp,
            local: Self::parse(local),
            remote: None,
            state: SockState::Listen,
            pids: vec![pid],
            uid: Some(1000),
            inode: 1,
        }
    }

    /// A bound UDP socket held by `pid`.
    pub fn udp(pid: u32, local: &str) -> RawSocket {
        RawSocket {
            bytes_received: None,
            opened: None,
            bytes_sent: None,
            protocol: Protocol::Udp,
            local: Self::parse(local),
            remote: None,
            state: SockState::Unconn,
            pids: vec![pid],
            uid: Some(1000),
            inode: 1,
        }
    }
}

impl RawSample {
    pub fn of(processes: Vec<RawProcess>, sockets: Vec<RawSocket>) -> RawSample {
        RawSample {
            ended: Vec::new(),
            exited: Vec::new(),
            processes,
            sockets,
            complete: true,
            special_sockets: Vec::new(),
            suspended: Vec::new(),
        }
    }
}

impl crate::model::ProcessInfo {
    /// A live process `pid` named `name`, with nothing else known; tests
    /// set what they need with `..ProcessInfo::fake(pid, name)`.
    pub fn fake(pid: u32, name: &str) -> crate::model::ProcessInfo {
        crate::model::ProcessInfo {
            pid,
            parent: None,
            name: name.into(),
            cmdline: vec![],
            user: None,
            uid: None,
            start_time: 0,
            alive: true,
            exe_deleted: false,
            sha256: None,
        }
    }
}

impl crate::model::Program {
    /// A program at `/tmp/<name>` with these findings (each summary reads
    /// "<kind> said"), for tests of what is shown and notified.
    pub fn fake(
        name: &str,
        findings: &[(crate::model::FindingKind, crate::model::Severity)],
    ) -> crate::model::Program {
        use std::time::UNIX_EPOCH;
        crate::model::Program {
            key: crate::model::ProgramKey::Exe(format!("/tmp/{name}").into()),
            name: name.into(),
            exe: Some(format!("/tmp/{name}").into()),
            exe_deleted: false,
            sha256: Some("ab".repeat(32)),
            processes: vec![],
            connections: vec![],
            findings: findings
                .iter()
                .map(|(kind, severity)| crate::model::Finding {
                    kind: *kind,
                    severity: *severity,
                    summary: format!("{} said", kind.as_str()),
                    evidence: Default::default(),
                    first_raised: UNIX_EPOCH,
                })
                .collect(),
            mark: None,
            stale_mark: None,
            first_seen: UNIX_EPOCH,
        }
    }
}
