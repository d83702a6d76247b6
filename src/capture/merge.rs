//! Merges capture events into a polling probe's samples.
//!
//! Each sample: first the events so far are taken in, then the socket
//! table is read. A flow the table also lists lends it its owner (a
//! TIME_WAIT socket no process holds any more) and its bytes; a flow the
//! table does not list (it lived and died between two samples, or lives
//! in another network namespace) is added as a socket of its own, once
//! after it ended. A process that exited before the sample is added from
//! what was last known of it (the previous sample, or its exec), marked
//! as exited.
//!
//! `KIZUKI_CAPTURE_DEBUG=1` prints every event on stderr.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{CaptureSource, Event, EventKind, ExecInfo, Flow};
use crate::model::{CaptureMode, Protocol, RawProcess, RawSample, RawSocket, SockState};
use crate::probe::{Probe, ProbeError};

/// Maps and sets rebuilt or searched every tick over every socket:
/// foldhash (seeded at random per run) rather than SipHash.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// Upper bound on ended flows kept (a flood of short connections).
const MAX_ENDED: usize = 100_000;

#[derive(Debug, Clone)]
struct FlowRec {
    pid: u32,
    flow: Flow,
    /// Already put into a sample.
    shown: bool,
    /// The owner as first resolved: the same process in every sample
    /// while the flow is shown, even after it exited.
    process: Option<Arc<RawProcess>>,
    /// When the flow began (boottime nanoseconds), if its start was seen.
    opened_ns: Option<u64>,
}

/// A [`Probe`] that polls with `inner` and fills in what capture saw.
pub struct CaptureProbe {
    inner: Box<dyn Probe>,
    source: Box<dyn CaptureSource>,
    open: HashMap<u64, FlowRec>,
    ended: Vec<FlowRec>,
    execs: HashMap<u32, ExecInfo>,
    /// Processes of the previous sample, by PID.
    last_procs: HashMap<u32, RawProcess>,
    /// Seconds since the epoch at boot (for exec start times).
    boot_epoch: Option<u64>,
    /// The wall-clock time of boot, to the nanosecond where the clock can
    /// be read (for connection start times).
    boot_wall: Option<SystemTime>,
    lost_reported: u64,
}

impl CaptureProbe {
    pub fn new(inner: Box<dyn Probe>, source: Box<dyn CaptureSource>) -> Self {
        CaptureProbe {
            inner,
            source,
            open: HashMap::default(),
            ended: Vec::new(),
            execs: HashMap::default(),
            last_procs: HashMap::default(),
            boot_epoch: crate::probe::boot_time(),
            boot_wall: boot_wall(),
            lost_reported: 0,
        }
    }

    fn take_in(&mut self, events: Vec<Event>) {
        for e in events {
            match e.kind {
                EventKind::Exec(x) => {
                    self.execs.insert(e.pid, x);
                }
                EventKind::Exit => {}
                EventKind::Open(flow) => {
                    let rec = FlowRec {
                        pid: e.pid,
                        flow,
                        shown: false,
                        process: None,
                        opened_ns: Some(e.at_ns),
                    };
                    // A socket that moved on to another peer: the old flow
                    // ended (one that never moved a byte is just replaced).
                    if let Some(old) = self.open.insert(rec.flow.id, rec)
                        && old.flow.bytes_sent + old.flow.bytes_received > 0
                    {
                        self.ended.push(old);
                    }
                }
                EventKind::Close(flow) => {
                    let mut rec = self.open.remove(&flow.id).unwrap_or(FlowRec {
                        pid: e.pid,
                        flow: flow.clone(),
                        shown: false,
                        process: None,
                        opened_ns: None,
                    });
                    rec.flow = Flow {
                        // The open record knows where it began.
                        direction: rec.flow.direction,
                        ..flow
                    };
                    // Shown once more, as ended, with its final bytes.
                    rec.shown = false;
                    self.ended.push(rec);
                }
                EventKind::Bytes(flow) => match self.open.get_mut(&flow.id) {
                    Some(rec) => {
                        rec.flow.bytes_sent = flow.bytes_sent;
                        rec.flow.bytes_received = flow.bytes_received;
                        rec.flow.state = flow.state;
                        rec.flow.remote = flow.remote;
                        rec.flow.local = flow.local;
                    }
                    None => {
                        self.open.insert(
                            flow.id,
                            FlowRec {
                                pid: e.pid,
                                flow,
                                shown: false,
                                process: None,
                                // Seen only by its counts: began unseen.
                                opened_ns: None,
                            },
                        );
                    }
                },
            }
        }
        if self.ended.len() > MAX_ENDED {
            let excess = self.ended.len() - MAX_ENDED;
            self.ended.drain(..excess);
        }
    }

    /// What is known of `pid` when the sample does not list it.
    fn remembered(&self, pid: u32, flow: &Flow) -> RawProcess {
        let polled = self.last_procs.get(&pid);
        if let Some(x) = self.execs.get(&pid) {
            // Start time as the probe computes it (boot time plus whole
            // seconds since boot), so it is the same process to the tracker.
            let start_time = self
                .boot_epoch
                .map(|b| b + x.start_boottime_ns / 1_000_000_000)
                .unwrap_or(0);
            let exe_is_known = x.exe.is_some();
            let base = polled.filter(|p| p.start_time == start_time);
            return RawProcess {
                pid,
                parent: Some(x.parent),
                name: x.comm.clone(),
                // An exec after the last sample replaced the image.
                exe: if exe_is_known {
                    x.exe.clone()
                } else {
                    base.and_then(|p| p.exe.clone())
                },
                exe_deleted: false,
                cmdline: base.map(|p| p.cmdline.clone()).unwrap_or_default(),
                uid: Some(x.uid),
                user: base.and_then(|p| p.user.clone()),
                start_time,
                exe_stamp: base.and_then(|p| p.exe_stamp),
                script: base.and_then(|p| p.script.clone()),
                std_sockets: base.map(|p| p.std_sockets.clone()).unwrap_or_default(),
                tor_data: base.is_some_and(|p| p.tor_data),
            };
        }
        if let Some(p) = polled {
            return p.clone();
        }
        RawProcess {
            pid,
            parent: None,
            name: flow.comm.clone(),
            exe: None,
            exe_deleted: false,
            cmdline: Vec::new(),
            uid: Some(flow.uid),
            user: None,
            start_time: 0,
            exe_stamp: None,
            script: None,
            std_sockets: Vec::new(),
            tor_data: false,
        }
    }

    fn merge(&mut self, sample: &mut RawSample) {
        type Key = (Protocol, SocketAddr, Option<SocketAddr>);
        let mut index: HashMap<Key, Vec<usize>> =
            HashMap::with_capacity_and_hasher(sample.sockets.len(), Default::default());
        for (i, s) in sample.sockets.iter().enumerate() {
            index
                .entry((s.protocol, s.local, s.remote))
                .or_default()
                .push(i);
        }
        let polled: HashMap<u32, usize> = sample
            .processes
            .iter()
            .enumerate()
            .map(|(i, p)| (p.pid, i))
            .collect();
        let mut added: HashSet<u32> = HashSet::default();
        let mut shared: Vec<Option<Arc<RawProcess>>> = vec![None; sample.processes.len()];
        let mut extra_sockets = Vec::new();
        let mut ended_sockets = Vec::new();
        let mut extra_procs = Vec::new();

        let mut ended = std::mem::take(&mut self.ended);
        let mut open = std::mem::take(&mut self.open);
        let mut keep_ended = Vec::with_capacity(ended.len());
        let recs = open
            .values_mut()
            .map(|r| (r, true))
            .chain(ended.iter_mut().map(|r| (r, false)));
        let mut kept_flags = Vec::new();
        for (rec, live) in recs {
            let key = (rec.flow.protocol, rec.flow.local, rec.flow.remote);
            let matched: &[usize] = index.get(&key).map_or(&[], Vec::as_slice);
            let matched_any = !matched.is_empty();
            // Resolve the owner once: the polled process while it runs,
            // else what was known of it.
            match polled.get(&rec.pid) {
                Some(&i) => {
                    // One shared copy per process and sample, not per flow.
                    let p = match &mut shared[i] {
                        Some(p) => Arc::clone(p),
                        slot => Arc::clone(slot.insert(Arc::new(sample.processes[i].clone()))),
                    };
                    rec.process = Some(p);
                }
                None => {
                    let p = match rec.process.take() {
                        Some(p) => p,
                        None => Arc::new(self.remembered(rec.pid, &rec.flow)),
                    };
                    if added.insert(rec.pid) {
                        extra_procs.push((*p).clone());
                    }
                    rec.process = Some(p);
                }
            }
            let show = live || matched_any || !rec.shown;
            if matched_any {
                for &i in matched {
                    let s = &mut sample.sockets[i];
                    if s.pids.is_empty() {
                        s.pids.push(rec.pid);
                        // The kernel reports a TIME_WAIT socket as root's
                        // (it keeps no owner): the flow knows whose it was,
                        // and the journal and live view show it only to them.
                        s.uid = Some(rec.flow.uid);
                    }
                    if s.pids.contains(&rec.pid) {
                        s.bytes_sent = Some(rec.flow.bytes_sent);
                        s.bytes_received = Some(rec.flow.bytes_received);
                        s.opened = opened_at(self.boot_wall, rec);
                    }
                }
            } else if live && rec.flow.protocol == Protocol::Tcp && rec.flow.local.port() == 0 {
                // Still connecting: its local port is not known yet.
            } else if show {
                let mut s = socket_of(rec, live);
                s.opened = opened_at(self.boot_wall, rec);
                if live {
                    extra_sockets.push(s);
                } else {
                    ended_sockets.push(s);
                }
            }
            rec.shown = true;
            if !live {
                // An ended flow stays while the table still lists it.
                kept_flags.push(matched_any);
            }
        }
        for (rec, keep) in ended.drain(..).zip(kept_flags) {
            if keep {
                keep_ended.push(rec);
            }
        }
        self.open = open;
        self.ended = keep_ended;

        for p in extra_procs {
            sample.exited.push(p.pid);
            sample.processes.push(p);
        }
        sample.sockets.extend(extra_sockets);
        sample.ended.extend(ended_sockets);
        // Exec records are needed only until their flows resolved them.
        self.execs.retain(|pid, _| polled.contains_key(pid));
    }
}

/// When `rec` began on the wall clock, where its start was seen.
fn opened_at(boot_wall: Option<SystemTime>, rec: &FlowRec) -> Option<SystemTime> {
    Some(boot_wall? + Duration::from_nanos(rec.opened_ns?))
}

/// The wall-clock time of boot: now, less the time since boot.
#[cfg(target_os = "linux")]
fn boot_wall() -> Option<SystemTime> {
    use nix::time::{ClockId, clock_gettime};
    let wall = SystemTime::now();
    let since = Duration::from(clock_gettime(ClockId::CLOCK_BOOTTIME).ok()?);
    wall.checked_sub(since)
}

#[cfg(not(target_os = "linux"))]
fn boot_wall() -> Option<SystemTime> {
    None
}

/// A socket for a flow the socket table did not list.
fn socket_of(rec: &FlowRec, live: bool) -> RawSocket {
    let f = &rec.flow;
    let state = match (f.protocol, f.state) {
        (Protocol::Tcp, Some(s)) if live => s,
        (Protocol::Tcp, _) => SockState::Close,
        _ if f.remote.is_some() => SockState::Established,
        _ => SockState::Unconn,
    };
    RawSocket {
        protocol: f.protocol,
        local: f.local,
        remote: f.remote,
        state,
        pids: vec![rec.pid],
        uid: Some(f.uid),
        inode: 0,
        bytes_sent: Some(f.bytes_sent),
        bytes_received: Some(f.bytes_received),
        opened: None,
    }
}

impl Probe for CaptureProbe {
    fn sample(&mut self) -> Result<RawSample, ProbeError> {
        // Events first, then the table: a flow seen here began before the
        // table was read, so its process is either listed or gone.
        let events = self
            .source
            .drain()
            .map_err(|e| ProbeError::Sockets(e.to_string()))?;
        if std::env::var_os("KIZUKI_CAPTURE_DEBUG").is_some() {
            for e in &events {
                eprintln!("capture: {e:?}");
            }
        }
        let active = events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Open(_) | EventKind::Exec(_)))
            .map(|e| e.pid)
            .collect();
        self.inner.note_active(active);
        self.take_in(events);
        let mut sample = self.inner.sample()?;
        let polled = sample
            .processes
            .iter()
            .map(|p| (p.pid, p.clone()))
            .collect();
        self.merge(&mut sample);
        self.last_procs = polled;
        let lost = self.source.lost();
        if lost > self.lost_reported {
            eprintln!(
                "kizuki: event capture lost {} events (too many at once)",
                lost - self.lost_reported
            );
            self.lost_reported = lost;
        }
        Ok(sample)
    }

    fn capture_mode(&self) -> CaptureMode {
        CaptureMode::Ebpf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{Direction, FakeCapture};
    use crate::clock::FakeClock;
    use crate::identity::FakeHasher;
    use crate::model::{ProgramKey, RawProcess, RawSample, RawSocket, SockState};
    use crate::monitor::MonitorCore;
    use crate::probe::FakeProbe;
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    const GEN: &str = "/tmp/gen";

    fn flow(id: u64, local: &str, bytes: (u64, u64)) -> Flow {
        Flow {
            id,
            protocol: Protocol::Tcp,
            local: local.parse().unwrap(),
            remote: Some("127.0.0.1:8080".parse().unwrap()),
            direction: Direction::Outgoing,
            state: Some(SockState::Established),
            netns: 1,
            uid: 1000,
            comm: "gen".into(),
            bytes_sent: bytes.0,
            bytes_received: bytes.1,
        }
    }

    fn exec(pid: u32) -> Event {
        Event {
            at_ns: 1,
            pid,
            kind: EventKind::Exec(ExecInfo {
                parent: 1,
                uid: 1000,
                comm: "gen".into(),
                exe: Some(GEN.into()),
                filename: "./gen".into(),
                start_boottime_ns: 5_000_000_000,
            }),
        }
    }

    fn ev(pid: u32, kind: EventKind) -> Event {
        Event {
            at_ns: 2,
            pid,
            kind,
        }
    }

    fn core(samples: Vec<RawSample>, capture: &FakeCapture) -> MonitorCore {
        let probe = CaptureProbe::new(Box::new(FakeProbe::new(samples)), Box::new(capture.clone()));
        MonitorCore::new(
            Box::new(probe),
            Box::new(FakeHasher::default()),
            Arc::new(FakeClock::new(
                SystemTime::UNIX_EPOCH + Duration::from_secs(1000),
            )),
            Duration::from_secs(1),
        )
    }

    #[test]
    fn a_connection_between_two_samples_is_shown_ended_with_its_program_and_bytes() {
        let capture = FakeCapture::new();
        let mut m = core(vec![RawSample::of(vec![], vec![])], &capture);
        m.tick().unwrap();
        capture.push(exec(77));
        let f = flow(9, "127.0.0.1:40000", (0, 0));
        capture.push(ev(77, EventKind::Open(f.clone())));
        capture.push(ev(
            77,
            EventKind::Close(flow(9, "127.0.0.1:40000", (5000, 1000))),
        ));
        capture.push(ev(77, EventKind::Exit));
        let snap = m.tick().unwrap();
        assert_eq!(snap.capture_mode, CaptureMode::Ebpf);
        let p = snap
            .program(&ProgramKey::Exe(GEN.into()))
            .expect("the exited program is listed");
        assert!(p.processes.iter().all(|x| !x.alive), "not shown running");
        let c = &p.connections[0];
        assert_eq!(c.pid, Some(77));
        assert!(!c.live, "an ended connection is not shown as open");
        assert_eq!((c.bytes_sent, c.bytes_received), (Some(5000), Some(1000)));
        // The next sample does not show it again as new.
        let snap = m.tick().unwrap();
        let p = snap.program(&ProgramKey::Exe(GEN.into())).unwrap();
        assert_eq!(p.connections.len(), 1);
    }

    #[test]
    fn an_ownerless_time_wait_socket_gets_its_owner_from_capture() {
        let capture = FakeCapture::new();
        let mut tw = RawSocket::tcp(0, "127.0.0.1:40000", "127.0.0.1:8080");
        tw.pids.clear();
        tw.inode = 0;
        tw.state = SockState::TimeWait;
        // As the kernel reports every TIME_WAIT socket.
        tw.uid = Some(0);
        let sample = RawSample::of(vec![RawProcess::fake(1, "/sbin/init")], vec![tw]);
        let mut m = core(vec![sample], &capture);
        capture.push(exec(77));
        capture.push(ev(77, EventKind::Open(flow(9, "127.0.0.1:40000", (0, 0)))));
        capture.push(ev(
            77,
            EventKind::Close(flow(9, "127.0.0.1:40000", (300, 20))),
        ));
        for _ in 0..2 {
            let snap = m.tick().unwrap();
            assert!(snap.unattributed.is_empty(), "{:?}", snap.unattributed);
            let p = snap.program(&ProgramKey::Exe(GEN.into())).unwrap();
            assert_eq!(p.connections.len(), 1);
            let c = &p.connections[0];
            assert_eq!(c.state, SockState::TimeWait);
            assert_eq!(c.bytes_sent, Some(300));
            assert_eq!(c.uid, Some(1000), "the owner's uid, not the kernel's 0");
        }
    }

    #[test]
    fn a_live_flow_the_table_lacks_is_shown_open_with_current_bytes() {
        // Another network namespace: the table of this one does not list it.
        let capture = FakeCapture::new();
        let sample = RawSample::of(vec![RawProcess::fake(77, GEN)], vec![]);
        let mut m = core(vec![sample], &capture);
        capture.push(ev(77, EventKind::Open(flow(9, "10.0.0.2:40000", (0, 0)))));
        capture.push(ev(
            77,
            EventKind::Bytes(flow(9, "10.0.0.2:40000", (10, 20))),
        ));
        let snap = m.tick().unwrap();
        let p = snap.program(&ProgramKey::Exe(GEN.into())).unwrap();
        let c = &p.connections[0];
        assert!(c.live);
        assert_eq!((c.bytes_sent, c.bytes_received), (Some(10), Some(20)));
        assert!(p.processes[0].alive);
    }
}
