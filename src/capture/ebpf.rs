//! Loads `bpf/kizuki.bpf.o` (built by `bpf/build.sh`, committed) with the
//! pure-Rust loader aya: nothing is compiled or installed at run time. The
//! programs attach through BTF (fentry/fexit and BTF tracepoints), so
//! tracefs need not be mounted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
    "net_dev_queue",
];

/// Where the kernel publishes its own BTF (what `Btf::from_sys_fs` reads).
const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

/// A connectionless flow (UDP, ICMP, raw, packet) has no close the kernel
/// announces: it ends when its process exits, or after this many drains
/// without a byte moving (it starts anew if the socket is used again).
const IDLE_DRAINS: u32 = 2;

/// Events waiting for [`CaptureSource::drain`]; beyond this many they are
/// counted as lost instead of growing without bound.
const MAX_QUEUED: usize = 1_000_000;

/// The kernel's ring buffer (the object says 8 MiB). Each of its pages is
/// mapped twice into the guard and counts twice in its resident memory;
/// the reader empties it within [`BATCH_PAUSE`] of an event, and a flood
/// of 20,000 short connections a second writes about 5 MB a second, so a
/// quarter of a second of that fits.
const RING_BYTES: u32 = 2 << 20;

/// After emptying the ring the reader waits this long before it sleeps
/// on it again: a flood is read in batches, not one wake-up per event.
const BATCH_PAUSE: Duration = Duration::from_millis(10);

type Flows = BpfHashMap<MapData, u64, [u64; FLOW_LEN / 8]>;

struct Shared {
    queue: Mutex<Vec<Event>>,
    stop: AtomicBool,
    dropped: AtomicU64,
    /// Events read from the kernel so far.
    read: Arc<AtomicU64>,
}

/// The loaded programs, a thread that empties the kernel's ring buffer
/// into a queue, and the flow table for live byte counts.
pub struct EbpfCapture {
    // Detaches every program when dropped.
    _ebpf: Ebpf,
    flows: Flows,
    lost: Array<MapData, u64>,
    shared: Arc<Shared>,
    /// Written to (or closed) to wake the reader when it must stop.
    wake: std::os::unix::net::UnixStream,
    reader: Option<JoinHandle<()>>,
    /// Flows open as far as the events told (for their live counts).
    open: HashMap<u64, OpenFlow>,
}

fn load_err(what: &str, e: impl std::fmt::Display) -> CaptureError {
    CaptureError::Load(format!("{what}: {e}"))
}

impl EbpfCapture {
    pub fn open() -> Result<Self, CaptureError> {
        // The kernel's BTF (a 5 MB file, parsed into ~16 MB of heap) is
        // needed twice: by the loader, for the object's CO-RE relocations,
        // and here, to find each tracepoint. The loader reads its own copy
        // in `EbpfLoader::new` (handing it ours would not stop that), so
        // the two copies are made one after the other, never both held:
        // the heap's high-water mark, which glibc keeps, is one copy.
        if !std::path::Path::new(KERNEL_BTF).exists() {
            return Err(load_err("kernel BTF", format!("{KERNEL_BTF} is missing")));
        }
        let mut ebpf = aya::EbpfLoader::new()
            .map_max_entries("EVENTS", RING_BYTES)
            .load(OBJECT)
            .map_err(|e| load_err("object", e))?;
        let btf = Btf::from_sys_fs().map_err(|e| load_err("kernel BTF", e))?;
        for name in PROGRAMS {
            attach(&mut ebpf, &btf, name)?;
        }
        drop(btf);
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
            read: Arc::new(AtomicU64::new(0)),
        });
        let s = Arc::clone(&shared);
        let (wake, woken) =
            std::os::unix::net::UnixStream::pair().map_err(|e| load_err("reader thread", e))?;
        let reader = std::thread::Builder::new()
            .name("kizuki-capture".into())
            .spawn(move || read_ring(ring, &woken, &s))
            .map_err(|e| load_err("reader thread", e))?;
        Ok(EbpfCapture {
            _ebpf: ebpf,
            flows,
            lost,
            shared,
            wake,
            reader: Some(reader),
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

/// Empties the ring buffer whenever the kernel says it holds events
/// (sleeping in `poll` meanwhile: no wake-ups on an idle machine), at
/// most once per [`BATCH_PAUSE`], until told to stop through `stop`.
fn read_ring(mut ring: RingBuf<MapData>, stop: &std::os::unix::net::UnixStream, shared: &Shared) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut batch = Vec::new();
    while !shared.stop.load(Ordering::Relaxed) {
        while let Some(item) = ring.next() {
            if let Some(e) = wire::parse_event(&item) {
                batch.push(e);
            }
        }
        if !batch.is_empty() {
            shared.read.fetch_add(batch.len() as u64, Ordering::Relaxed);
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
            std::thread::sleep(BATCH_PAUSE);
            continue;
        }
        let mut fds = [
            PollFd::new(ring.as_fd(), PollFlags::POLLIN),
            PollFd::new(stop.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            // Cannot wait: fall back to looking every few milliseconds.
            Err(_) => std::thread::sleep(BATCH_PAUSE),
        }
        let stopping = fds[1].revents().is_some_and(|r| !r.is_empty());
        if stopping {
            break;
        }
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

    fn events_read(&self) -> Option<Arc<AtomicU64>> {
        Some(Arc::clone(&self.shared.read))
    }

    fn lost(&self) -> u64 {
        let kernel: u64 = (0..2).filter_map(|i| self.lost.get(&i, 0).ok()).sum();
        kernel + self.shared.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for EbpfCapture {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let _ = self.wake.shutdown(std::net::Shutdown::Both);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}
