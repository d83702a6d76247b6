//! Loads `bpf/kizuki.bpf.o` (built by `bpf/build.sh`, committed) with the
//! pure-Rust loader aya: nothing is compiled or installed at run time. The
//! programs attach through BTF (fentry/fexit and BTF tracepoints), so
//! tracefs need not be mounted.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use aya::maps::{Array, HashMap as BpfHashMap, MapData, RingBuf};
use aya::programs::BtfTracePoint;
use aya::{Btf, Ebpf};

use super::wire::{self, FLOW_LEN};
use super::{CaptureError, CaptureSource, Event, EventKind, Flow};
use crate::model::Protocol;

static OBJECT: &[u8] = aya::include_bytes_aligned!("bpf/kizuki.bpf.o");

/// The BTF tracepoints of `bpf/kizuki.bpf.c` (program name = tracepoint).
/// fentry/fexit and kprobes are not used: some kernels lack kprobes or
/// refuse fentry, while tracepoints are always there.
const PROGRAMS: &[&str] = &[
    "sched_process_exec",
    "sched_process_exit",
    "inet_sock_set_state",
    "tcp_destroy_sock",
    "tcp_rcv_space_adjust",
    "sock_send_length",
    "sock_recv_length",
    "sys_enter",
];

/// A connectionless flow (UDP, ICMP, raw, packet) has no close the kernel
/// announces: it ends when its process exits, or after this many drains
/// without a byte moving (it starts anew if the socket is used again).
const IDLE_DRAINS: u32 = 2;

/// `drain` waits at most this long for the reader's pass.
const NOW_WAIT: Duration = Duration::from_millis(200);

/// The reader looks at the ring at least this often; the kernel wakes it
/// sooner once a batch is waiting. Samples are a second apart.
const LOOK_EVERY: Duration = Duration::from_millis(100);

/// Events waiting for [`CaptureSource::drain`]; beyond this many they are
/// counted as lost instead of growing without bound.
const MAX_QUEUED: usize = 1_000_000;

type Flows = BpfHashMap<MapData, u64, [u64; FLOW_LEN / 8]>;

struct Shared {
    queue: Mutex<Vec<Event>>,
    stop: AtomicBool,
    dropped: AtomicU64,
    /// Passes asked for by `drain` and passes done (the number asked for
    /// when each began): `drain` waits until the ring was read after it
    /// asked, so every event before it is in its batch.
    asked: AtomicU64,
    served: Mutex<u64>,
    served_cv: Condvar,
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
    /// Wakes the reader for a pass now (`drain`, `drop`).
    poke: UnixStream,
    /// Flows open as far as the events told (for their live counts).
    open: HashMap<u64, OpenFlow>,
}

fn load_err(what: &str, e: impl std::fmt::Display) -> CaptureError {
    CaptureError::Load(format!("{what}: {e}"))
}

impl EbpfCapture {
    pub fn open() -> Result<Self, CaptureError> {
        let btf = Btf::from_sys_fs().map_err(|e| load_err("kernel BTF", e))?;
        let mut ebpf = Ebpf::load(OBJECT).map_err(|e| load_err("object", e))?;
        for name in PROGRAMS {
            attach(&mut ebpf, &btf, name)?;
        }
        let take = |ebpf: &mut Ebpf, name: &str| {
            ebpf.take_map(name)
                .ok_or_else(|| load_err(name, "map missing"))
        };
        let ring =
            RingBuf::try_from(take(&mut ebpf, "EVENTS")?).map_err(|e| load_err("EVENTS", e))?;
        let flows = Flows::try_from(take(&mut ebpf, "FLOWS")?).map_err(|e| load_err("FLOWS", e))?;
        let lost = Array::try_from(take(&mut ebpf, "LOST")?).map_err(|e| load_err("LOST", e))?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            asked: AtomicU64::new(0),
            served: Mutex::new(0),
            served_cv: Condvar::new(),
        });
        let (poke, poked) = UnixStream::pair().map_err(|e| load_err("reader wake-up", e))?;
        poked
            .set_nonblocking(true)
            .map_err(|e| load_err("reader wake-up", e))?;
        let s = Arc::clone(&shared);
        let reader = std::thread::Builder::new()
            .name("kizuki-capture".into())
            .spawn(move || read_ring(ring, &s, poked))
            .map_err(|e| load_err("reader thread", e))?;
        Ok(EbpfCapture {
            _ebpf: ebpf,
            flows,
            lost,
            shared,
            reader: Some(reader),
            poke,
            open: HashMap::new(),
        })
    }
}

fn attach(ebpf: &mut Ebpf, btf: &Btf, name: &str) -> Result<(), CaptureError> {
    let prog = ebpf
        .program_mut(name)
        .ok_or_else(|| load_err(name, "not in the object"))?;
    let p: &mut BtfTracePoint = prog.try_into().map_err(|e| load_err(name, e))?;
    p.load(name, btf).map_err(|e| load_err(name, e))?;
    p.attach().map_err(|e| load_err(name, e))?;
    Ok(())
}

/// Empties the ring buffer every few milliseconds until told to stop.
fn read_ring(mut ring: RingBuf<MapData>, shared: &Shared, mut poked: UnixStream) {
    let mut batch = Vec::new();
    while !shared.stop.load(Ordering::Relaxed) {
        let asked = shared.asked.load(Ordering::Acquire);
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
        if let Ok(mut served) = shared.served.lock() {
            *served = (*served).max(asked);
            shared.served_cv.notify_all();
        }
        wait_for_events(&ring, &poked);
        // Empty the wake-up pipe (it is non-blocking).
        let mut sink = [0u8; 64];
        while matches!(poked.read(&mut sink), Ok(n) if n > 0) {}
    }
}

/// Sleeps until the kernel wakes the reader (a batch is waiting: see
/// `wake_flag` in kizuki.bpf.c), `drain` asks for a pass, or
/// [`LOOK_EVERY`] passed.
fn wait_for_events(ring: &RingBuf<MapData>, poked: &UnixStream) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut fds = [
        PollFd::new(ring.as_fd(), PollFlags::POLLIN),
        PollFd::new(poked.as_fd(), PollFlags::POLLIN),
    ];
    let timeout = PollTimeout::try_from(LOOK_EVERY).unwrap_or(PollTimeout::NONE);
    if poll(&mut fds, timeout).is_err() {
        // Interrupted: look again after a short pause, never spin.
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[derive(Debug, Clone, Copy)]
struct OpenFlow {
    pid: u32,
    /// TCP: the kernel announces its close.
    tcp: bool,
    total: u64,
    idle: u32,
}

impl EbpfCapture {
    /// Has the reader read the ring once more, now, so the batch holds
    /// every event the kernel wrote before this call (at most [`NOW_WAIT`]).
    fn read_ring_now(&mut self) {
        let ask = self.shared.asked.fetch_add(1, Ordering::AcqRel) + 1;
        if self.poke.write(&[1]).is_err() {
            return;
        }
        let Ok(served) = self.shared.served.lock() else {
            return;
        };
        let _ = self
            .shared
            .served_cv
            .wait_timeout_while(served, NOW_WAIT, |s| *s < ask);
    }

    /// The flow's current record, or `None` when the kernel dropped it.
    fn read_flow(&self, id: u64) -> Option<(u32, Flow)> {
        let words = self.flows.get(&id, 0).ok()?;
        wire::parse_flow(id, &wire::flow_bytes(&words))
    }

    /// Ends a connectionless flow here (the kernel has no close for it).
    fn end_flow(&mut self, id: u64, at_ns: u64, out: &mut Vec<Event>) {
        self.open.remove(&id);
        if let Some((pid, flow)) = self.read_flow(id) {
            out.push(Event {
                at_ns,
                pid,
                kind: EventKind::Close(flow),
            });
        }
        let _ = self.flows.remove(&id);
    }
}

impl CaptureSource for EbpfCapture {
    fn drain(&mut self) -> Result<Vec<Event>, CaptureError> {
        self.read_ring_now();
        let events = match self.shared.queue.lock() {
            Ok(mut q) => std::mem::take(&mut *q),
            Err(_) => return Err(CaptureError::Read("the reader stopped".into())),
        };
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            match &e.kind {
                EventKind::Open(f) => {
                    self.open.insert(
                        f.id,
                        OpenFlow {
                            pid: e.pid,
                            tcp: f.protocol == Protocol::Tcp,
                            total: f.bytes_sent + f.bytes_received,
                            idle: 0,
                        },
                    );
                }
                EventKind::Close(f) => {
                    self.open.remove(&f.id);
                }
                _ => {}
            }
            let exit = matches!(e.kind, EventKind::Exit).then_some((e.pid, e.at_ns));
            out.push(e);
            if let Some((pid, at)) = exit {
                let ended: Vec<u64> = self
                    .open
                    .iter()
                    .filter(|(_, o)| o.pid == pid && !o.tcp)
                    .map(|(id, _)| *id)
                    .collect();
                for id in ended {
                    self.end_flow(id, at, &mut out);
                }
            }
        }
        let ids: Vec<u64> = self.open.keys().copied().collect();
        for id in ids {
            let Some((pid, flow)) = self.read_flow(id) else {
                self.open.remove(&id);
                continue;
            };
            let total = flow.bytes_sent + flow.bytes_received;
            let idle = match self.open.get_mut(&id) {
                Some(o) if !o.tcp => {
                    o.idle = if total == o.total { o.idle + 1 } else { 0 };
                    o.total = total;
                    o.idle
                }
                _ => 0,
            };
            out.push(Event {
                at_ns: 0,
                pid,
                kind: EventKind::Bytes(flow),
            });
            if idle >= IDLE_DRAINS {
                self.end_flow(id, 0, &mut out);
            }
        }
        Ok(out)
    }

    fn lost(&self) -> u64 {
        let kernel: u64 = (0..2).filter_map(|i| self.lost.get(&i, 0).ok()).sum();
        kernel + self.shared.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for EbpfCapture {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let _ = self.poke.write(&[1]);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}
