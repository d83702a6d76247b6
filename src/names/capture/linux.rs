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
// Classic BPF opcodes for the filter below.
const LD_B_ABS: u16 = 0x30;
const LD_H_ABS: u16 = 0x28;
const LD_B_IND: u16 = 0x50;
const LD_H_IND: u16 = 0x48;
/// `ldxb 4*([k]&0xf)`: X = an IPv4 header's length.
const LDX_MSH: u16 = 0xb1;
const RSH_K: u16 = 0x74;
const LSH_K: u16 = 0x64;
const ADD_X: u16 = 0x0c;
const JEQ_K: u16 = 0x15;
/// `jgt x`: jump when A > X.
const JGT_X: u16 = 0x2d;
const TAX: u16 = 0x07;
/// `ret #k`: accept the packet, at most k bytes of it (0: drop it).
const RET_K: u16 = 0x06;

/// The kernel hands the reader only what can carry a name: UDP from port
/// 53, and TCP segments that carry data (IPv4 and IPv6). Everything else,
/// above all the SYNs, ACKs and FINs of every connection, is dropped in
/// the kernel before it is copied or wakes the reader: without this, a
/// loopback connect/close loop ran a fifth slower while kizuki listened.
/// Whether a segment carries data is read from the IP length against the
/// headers' lengths, so every load stays inside the headers (a load past
/// the end also drops, but through the kernel's slow path: it was 3 % of
/// that loop).
const FILTER: [(u16, u8, u8, u32); 32] = [
    (LD_B_ABS, 0, 0, 0), // 0: version
    (RSH_K, 0, 0, 4),
    (JEQ_K, 0, 15, 4),   // 2: IPv4, else 18
    (LD_B_ABS, 0, 0, 9), // 3: protocol
    (JEQ_K, 0, 3, 17),   // 4: UDP, else 8
    (LDX_MSH, 0, 0, 0),
    (LD_H_IND, 0, 0, 0), // 6: source port
    (JEQ_K, 9, 23, 53),  // 7: accept (17) or drop (31)
    (JEQ_K, 0, 22, 6),   // 8: TCP, else drop
    (LDX_MSH, 0, 0, 0),
    (LD_B_IND, 0, 0, 12), // 10: data offset
    (RSH_K, 0, 0, 4),
    (LSH_K, 0, 0, 2),
    (ADD_X, 0, 0, 0),
    (TAX, 0, 0, 0),      // 14: X = IP and TCP header lengths
    (LD_H_ABS, 0, 0, 2), // 15: total length
    (JGT_X, 0, 14, 0),   // 16: data, else drop
    (RET_K, 0, 0, SNAP_LEN),
    (JEQ_K, 0, 12, 6),   // 18: IPv6, else drop
    (LD_B_ABS, 0, 0, 6), // 19: next header
    (JEQ_K, 0, 2, 17),   // 20: UDP, else 23
    (LD_H_ABS, 0, 0, 40),
    (JEQ_K, 7, 8, 53),    // 22: accept (30) or drop (31)
    (JEQ_K, 0, 7, 6),     // 23: TCP, else drop
    (LD_B_ABS, 0, 0, 52), // 24: data offset
    (RSH_K, 0, 0, 4),
    (LSH_K, 0, 0, 2),
    (TAX, 0, 0, 0),      // 27: X = TCP header length
    (LD_H_ABS, 0, 0, 4), // 28: payload length
    (JGT_X, 0, 1, 0),    // 29: data, else drop
    (RET_K, 0, 0, SNAP_LEN),
    (RET_K, 0, 0, 0), // 31: drop
];

fn filter() -> Vec<SockFilter> {
    FILTER
        .iter()
        .map(|&(code, jt, jf, k)| SockFilter::new(code, jt, jf, k))
        .collect()
}
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
        sock.attach_filter(&filter())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the classic BPF program as the kernel does (a load past the
    /// end drops the packet). The packet's IP length fields are set first,
    /// as the kernel's would be.
    fn run(p: &[u8]) -> u32 {
        let mut p = p.to_vec();
        match p.first().map(|b| b >> 4) {
            Some(4) if p.len() >= 20 => {
                let n = u16::try_from(p.len()).unwrap().to_be_bytes();
                p[2..4].copy_from_slice(&n);
            }
            Some(6) if p.len() >= 40 => {
                let n = u16::try_from(p.len() - 40).unwrap().to_be_bytes();
                p[4..6].copy_from_slice(&n);
            }
            _ => {}
        }
        run_raw(&p)
    }

    /// The filter over the bytes as they are.
    fn run_raw(p: &[u8]) -> u32 {
        let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
        let byte = |i: u32| p.get(i as usize).map(|&b| u32::from(b));
        let half = |i: u32| Some(byte(i)? << 8 | byte(i + 1)?);
        loop {
            let (code, jt, jf, k) = FILTER[pc];
            pc += 1;
            let loaded = match code {
                LD_B_ABS => byte(k),
                LD_H_ABS => half(k),
                LD_B_IND => byte(x + k),
                LD_H_IND => half(x + k),
                _ => Some(a),
            };
            let Some(v) = loaded else { return 0 };
            a = v;
            match code {
                LDX_MSH => match byte(k) {
                    Some(b) => x = 4 * (b & 0xf),
                    None => return 0,
                },
                RSH_K => a >>= k,
                LSH_K => a <<= k,
                ADD_X => a += x,
                TAX => x = a,
                JEQ_K => pc += usize::from(if a == k { jt } else { jf }),
                JGT_X => pc += usize::from(if a > x { jt } else { jf }),
                RET_K => return k,
                _ => {}
            }
        }
    }

    fn v4(proto: u8, l4: &[u8]) -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0, 127, 0, 0, 1, 127, 0, 0, 2,
        ];
        p.extend_from_slice(l4);
        p
    }

    fn v6(next: u8, l4: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0, 0, 0, next, 64];
        p.extend_from_slice(&[0; 32]);
        p.extend_from_slice(l4);
        p
    }

    /// A TCP header (20 bytes) from `sport` and its data.
    fn tcp(sport: u16, data: &[u8]) -> Vec<u8> {
        let mut t = vec![0; 20];
        t[..2].copy_from_slice(&sport.to_be_bytes());
        t[2..4].copy_from_slice(&443u16.to_be_bytes());
        t[12] = 5 << 4;
        t.extend_from_slice(data);
        t
    }

    fn udp(sport: u16, data: &[u8]) -> Vec<u8> {
        let mut u = vec![0; 8];
        u[..2].copy_from_slice(&sport.to_be_bytes());
        u.extend_from_slice(data);
        u
    }

    #[test]
    fn only_dns_answers_and_tcp_data_reach_the_reader() {
        let hello = [0x16, 3, 1, 0, 5];
        for ip in [v4 as fn(u8, &[u8]) -> Vec<u8>, v6] {
            // Kept: a DNS answer, TLS and HTTP data, any later data segment
            // (a ClientHello split over segments), DNS over TCP.
            assert_eq!(run(&ip(17, &udp(53, b"answer"))), SNAP_LEN);
            assert_eq!(run(&ip(6, &tcp(40000, &hello))), SNAP_LEN);
            assert_eq!(run(&ip(6, &tcp(40000, b"GET / HTTP/1.1"))), SNAP_LEN);
            assert_eq!(run(&ip(6, &tcp(40000, b"\x01rest"))), SNAP_LEN);
            assert_eq!(run(&ip(6, &tcp(53, b"\x00\x20"))), SNAP_LEN);
            // Dropped: SYN/ACK/FIN without data, other UDP, ICMP.
            assert_eq!(run(&ip(6, &tcp(40000, b""))), 0);
            assert_eq!(run(&ip(17, &udp(40000, b"query"))), 0);
            assert_eq!(run(&ip(1, &[8, 0, 0, 0])), 0);
        }
        // IPv4 options: the data is found past them.
        let mut opts = v4(6, &[0, 0, 0, 0]);
        opts[0] = 0x46;
        opts.extend_from_slice(&tcp(40000, b""));
        assert_eq!(run(&opts), 0);
        opts.extend_from_slice(&hello);
        assert_eq!(run(&opts), SNAP_LEN);
        // Ethernet padding after a bare ACK is not data: the IP length
        // says where the packet ends.
        let mut ack = v4(6, &tcp(40000, b""));
        ack[2..4].copy_from_slice(&40u16.to_be_bytes());
        ack.extend_from_slice(&[0; 6]);
        assert_eq!(run_raw(&ack), 0);
        // Cut short, or not IP at all.
        assert_eq!(run(&[0x45, 0]), 0);
        assert_eq!(run(&[0x20; 60]), 0);
    }
}
