//! Linux: one AF_PACKET socket (all protocols, every interface, loopback
//! included) in cooked mode, so each packet starts at its IP header. It
//! only receives; kizuki sends nothing.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockFilter, Socket, Type};

use super::CaptureError;
use crate::clock::Clock;
use crate::names::cache::NameCache;
use crate::names::packet::{Observation, PacketReader};

/// ETH_P_ALL in network byte order.
const ETH_P_ALL_BE: i32 = 0x0300;
const READ_TIMEOUT: Duration = Duration::from_millis(250);
/// Bytes kept of each packet (the kernel cuts the rest before copying):
/// enough for DNS answers and ClientHellos, not for bulk data.
const SNAP_LEN: u32 = 8192;
/// Classic BPF `ret #k`: accept the packet, at most k bytes of it.
const BPF_RET_K: u16 = 0x06;
/// Socket-table look-ups for the asking process, at most this often, and
/// never more than a tenth of the time (a look-up reads every process's
/// open files: ~10 ms idle, ~100 ms with 10,000 sockets).
const ASKER_EVERY: Duration = Duration::from_millis(100);
const ASKER_SHARE: u32 = 10;

pub struct Capture {
    stop: Arc<AtomicBool>,
    _thread: JoinHandle<()>,
    /// systemd-resolved's answers, for lookups that never cross the wire.
    _resolved: Option<super::resolved::Monitor>,
}

impl Capture {
    pub fn start(cache: Arc<NameCache>, clock: Arc<dyn Clock>) -> Result<Capture, CaptureError> {
        let sock = Socket::new(
            Domain::PACKET,
            Type::DGRAM,
            Some(Protocol::from(ETH_P_ALL_BE)),
        )
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::PermissionDenied => CaptureError::NotPermitted,
            _ => CaptureError::Io(e),
        })?;
        sock.attach_filter(&[SockFilter::new(BPF_RET_K, 0, 0, SNAP_LEN)])?;
        sock.set_read_timeout(Some(READ_TIMEOUT))?;
        // A burst of traffic should not push DNS answers out.
        let _ = sock.set_recv_buffer_size(4 << 20);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let join = std::thread::Builder::new()
            .name("kizuki-names".into())
            .spawn({
                let cache = cache.clone();
                let clock = clock.clone();
                move || run(sock, &cache, clock.as_ref(), &flag)
            })?;
        let resolved =
            super::resolved::Monitor::start(super::resolved::SOCKET.into(), cache, clock)
                .inspect_err(|e| log::warn!("systemd-resolved monitor thread: {e}"))
                .ok();
        Ok(Capture {
            stop,
            _thread: join,
            _resolved: resolved,
        })
    }
}

/// Stopping does not wait: the thread ends at its next read timeout, so a
/// one-shot `scan` exits at once.
impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn run(sock: Socket, cache: &NameCache, clock: &dyn Clock, stop: &AtomicBool) {
    let mut buf = vec![0u8; 65_536];
    let mut reader = PacketReader::new();
    let mut next_lookup = Instant::now();
    let mut last_prune = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let n = match (&sock).read(&mut buf) {
            Ok(n) => n,
            Err(e) if super::read_again(&e) => {
                continue;
            }
            Err(_) => {
                std::thread::sleep(READ_TIMEOUT);
                continue;
            }
        };
        let now = clock.now();
        let Some(packet) = buf.get(..n) else { continue };
        match reader.read(packet, now) {
            Some(Observation::Dns { client, answers }) => {
                let asker = if Instant::now() >= next_lookup {
                    let started = Instant::now();
                    let pid = asking_process(client);
                    next_lookup = started + ASKER_EVERY.max(started.elapsed() * ASKER_SHARE);
                    pid
                } else {
                    None
                };
                for a in answers {
                    cache.record_dns(a.addr, &a.name, asker, now);
                }
            }
            Some(Observation::Flow {
                local,
                remote,
                name,
                source,
            }) => cache.record_flow(local, remote, &name, source, now),
            None => {}
        }
        if last_prune.elapsed() >= Duration::from_secs(60) {
            cache.prune(now);
            last_prune = Instant::now();
        }
    }
}

/// The process holding the socket a DNS answer went to (UDP or TCP,
/// bound to that port), if the socket still exists.
fn asking_process(client: SocketAddr) -> Option<u32> {
    use netstat2::{AddressFamilyFlags, ProtocolFlags, ProtocolSocketInfo};
    let af = if client.is_ipv4() {
        // An IPv6 socket can receive IPv4 answers too.
        AddressFamilyFlags::IPV4 | AddressFamilyFlags::IPV6
    } else {
        AddressFamilyFlags::IPV6
    };
    let sockets = netstat2::get_sockets_info(af, ProtocolFlags::UDP | ProtocolFlags::TCP).ok()?;
    sockets.into_iter().find_map(|s| {
        let (addr, port) = match &s.protocol_socket_info {
            ProtocolSocketInfo::Udp(u) => (u.local_addr, u.local_port),
            ProtocolSocketInfo::Tcp(t) => (t.local_addr, t.local_port),
        };
        let same_addr = addr.is_unspecified() || addr.to_canonical() == client.ip().to_canonical();
        (port == client.port() && same_addr)
            .then(|| s.associated_pids.iter().min().copied())
            .flatten()
    })
}
