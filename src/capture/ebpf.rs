//! Loads `bpf/kizuki.bpf.o` (built by `bpf/build.sh`, committed) with the
//! pure-Rust loader aya: nothing is compiled or installed at run time. The
//! programs attach through BTF (fentry/fexit and BTF tracepoints), so
//! tracefs need not be mounted.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use aya::maps::{Array, HashMap as BpfHashMap, MapData, RingBuf};
use aya::programs::{BtfTracePoint, FEntry, FExit};
use aya::{Btf, Ebpf};

use super::wire::{self, FLOW_LEN};
use super::{CaptureError, CaptureSource, Event, EventKind};

static OBJECT: &[u8] = aya::include_bytes_aligned!("bpf/kizuki.bpf.o");

#[derive(Clone, Copy)]
enum Kind {
    FEntry,
    FExit,
    TpBtf,
}

/// (program, kernel function or tracepoint, how it attaches, required).
/// Without a required one capture would miss what it promises; the others
/// add coverage where the kernel has them.
const PROGRAMS: &[(&str, &str, Kind, bool)] = &[
    ("sched_process_exec", "sched_process_exec", Kind::TpBtf, true),
    ("sched_process_exit", "sched_process_exit", Kind::TpBtf, true),
    ("tcp_v4_connect_exit", "tcp_v4_connect", Kind::FExit, true),
    ("tcp_v6_connect_exit", "tcp_v6_connect", Kind::FExit, false),
    ("inet_csk_accept_exit", "inet_csk_accept", Kind::FExit, true),
    ("inet_sock_set_state", "inet_sock_set_state", Kind::TpBtf, false),
    ("inet_sendmsg_exit", "inet_sendmsg", Kind::FExit, true),
    ("inet6_sendmsg_exit", "inet6_sendmsg", Kind::FExit, false),
    ("inet_recvmsg_exit", "inet_recvmsg", Kind::FExit, true),
    ("inet6_recvmsg_exit", "inet6_recvmsg", Kind::FExit, false),
    ("packet_sendmsg_exit", "packet_sendmsg", Kind::FExit, false),
    ("packet_recvmsg_exit", "packet_recvmsg", Kind::FExit, false),
    ("inet_release_entry", "inet_release", Kind::FEntry, true),
    ("packet_release_entry", "packet_release", Kind::FEntry, false),
];

/// Events waiting for [`CaptureSource::drain`]; beyond this many they are
/// counted as lost instead of growing without bound.
const MAX_QUEUED: usize = 1_000_000;

type Flows = BpfHashMap<MapData, u64, [u64; FLOW_LEN / 8]>;

struct Shared {
    queue: Mutex<Vec<Event>>,
    stop: AtomicBool,
    dropped: AtomicU64,
}

/// The loaded programs, a thread that empties the kernel's ring buffer
/// into a queue, and the flow table for live byte counts.
pub struct EbpfCapture {
    // Detaches every program when dropped.
    _ebpf: Ebpf,
    flows: Flows,
    lost: Array<MapData, u64>,
    shared: Arc<Shared>,
    reader: Option<JoinHandle<()>>,
    /// Flows open as far as the events told (for their live counts).
    open: HashSet<u64>,
    /// Optional programs the kernel did not have.
    missing: Vec<String>,
}

fn load_err(what: &str, e: impl std::fmt::Display) -> CaptureError {
    CaptureError::Load(format!("{what}: {e}"))
}

impl EbpfCapture {
    pub fn open() -> Result<Self, CaptureError> {
        let btf = Btf::from_sys_fs().map_err(|e| load_err("kernel BTF", e))?;
        let mut ebpf = Ebpf::load(OBJECT).map_err(|e| load_err("object", e))?;
        let mut missing = Vec::new();
        for &(name, target, kind, required) in PROGRAMS {
            match attach(&mut ebpf, &btf, name, target, kind) {
                Ok(()) => {}
                Err(e) if required => return Err(e),
                Err(_) => missing.push(target.to_string()),
            }
        }
        let take = |ebpf: &mut Ebpf, name: &str| {
            ebpf.take_map(name)
                .ok_or_else(|| load_err(name, "map missing"))
        };
        let ring = RingBuf::try_from(take(&mut ebpf, "EVENTS")?)
            .map_err(|e| load_err("EVENTS", e))?;
        let flows = Flows::try_from(take(&mut ebpf, "FLOWS")?).map_err(|e| load_err("FLOWS", e))?;
        let lost = Array::try_from(take(&mut ebpf, "LOST")?).map_err(|e| load_err("LOST", e))?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        });
        let s = Arc::clone(&shared);
        let reader = std::thread::Builder::new()
            .name("kizuki-capture".into())
            .spawn(move || read_ring(ring, &s))
            .map_err(|e| load_err("reader thread", e))?;
        Ok(EbpfCapture {
            _ebpf: ebpf,
            flows,
            lost,
            shared,
            reader: Some(reader),
            open: HashSet::new(),
            missing,
        })
    }
}

fn attach(ebpf: &mut Ebpf, btf: &Btf, name: &str, target: &str, kind: Kind) -> Result<(), CaptureError> {
    let prog = ebpf
        .program_mut(name)
        .ok_or_else(|| load_err(name, "not in the object"))?;
    let r = match kind {
        Kind::FEntry => {
            let p: &mut FEntry = prog.try_into().map_err(|e| load_err(name, e))?;
            p.load(target, btf).and_then(|()| p.attach().map(|_| ()))
        }
        Kind::FExit => {
            let p: &mut FExit = prog.try_into().map_err(|e| load_err(name, e))?;
            p.load(target, btf).and_then(|()| p.attach().map(|_| ()))
        }
        Kind::TpBtf => {
            let p: &mut BtfTracePoint = prog.try_into().map_err(|e| load_err(name, e))?;
            p.load(target, btf).and_then(|()| p.attach().map(|_| ()))
        }
    };
    r.map_err(|e| load_err(target, e))
}

/// Empties the ring buffer every few milliseconds until told to stop.
fn read_ring(mut ring: RingBuf<MapData>, shared: &Shared) {
    let mut batch = Vec::new();
    while !shared.stop.load(Ordering::Relaxed) {
        while let Some(item) = ring.next() {
            if let Some(e) = wire::parse_event(&item) {
                batch.push(e);
            }
        }
        if !batch.is_empty() {
            if let Ok(mut q) = shared.queue.lock() {
                let room = MAX_QUEUED.saturating_sub(q.len());
                if batch.len() > room {
                    let over = (batch.len() - room) as u64;
                    shared.dropped.fetch_add(over, Ordering::Relaxed);
                    batch.truncate(room);
                }
                q.append(&mut batch);
            }
            batch.clear();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

impl CaptureSource for EbpfCapture {
    fn drain(&mut self) -> Result<Vec<Event>, CaptureError> {
        let mut events = match self.shared.queue.lock() {
            Ok(mut q) => std::mem::take(&mut *q),
            Err(_) => return Err(CaptureError::Read("the reader stopped".into())),
        };
        for e in &events {
            match &e.kind {
                EventKind::Open(f) => {
                    self.open.insert(f.id);
                }
                EventKind::Close(f) => {
                    self.open.remove(&f.id);
                }
                _ => {}
            }
        }
        let mut gone = Vec::new();
        for id in &self.open {
            match self.flows.get(id, 0) {
                Ok(words) => {
                    if let Some((pid, flow)) = wire::parse_flow(*id, &wire::flow_bytes(&words)) {
                        events.push(Event {
                            at_ns: 0,
                            pid,
                            kind: EventKind::Bytes(flow),
                        });
                    }
                }
                Err(_) => gone.push(*id),
            }
        }
        for id in gone {
            self.open.remove(&id);
        }
        Ok(events)
    }

    fn lost(&self) -> u64 {
        let kernel: u64 = (0..2).filter_map(|i| self.lost.get(&i, 0).ok()).sum();
        kernel + self.shared.dropped.load(Ordering::Relaxed)
    }

    fn not_covered(&self) -> Vec<String> {
        self.missing.clone()
    }
}

impl Drop for EbpfCapture {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}
