//! The byte layout of the records `bpf/kizuki.bpf.c` writes (ring buffer
//! events and the FLOWS map's values). Everything here is checked against
//! the length it reads: a short or odd record is skipped, never trusted.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use super::{Direction, Event, EventKind, ExecInfo, Flow};
use crate::model::{Protocol, SockState};

pub const EV_EXEC: u32 = 1;
pub const EV_EXIT: u32 = 2;
pub const EV_OPEN: u32 = 3;
pub const EV_CLOSE: u32 = 4;

/// `struct flow`: 96 bytes.
pub const FLOW_LEN: usize = 96;
/// `struct flow_event`: a 24-byte head, then `struct flow`.
const FLOW_EVENT_LEN: usize = 24 + FLOW_LEN;
const PATH_DEPTH: usize = 16;
const NAME_LEN: usize = 128;
const FILENAME_LEN: usize = 256;
/// `struct exec_event`.
const EXEC_EVENT_LEN: usize = 56 + FILENAME_LEN + PATH_DEPTH * NAME_LEN;
/// `struct exit_event`.
const EXIT_EVENT_LEN: usize = 16;

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// A NUL-terminated C string in a fixed field, as raw bytes.
fn c_bytes(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..end]
}

fn c_string(b: &[u8]) -> String {
    crate::escape::bytes_lossless(c_bytes(b))
}

fn ip_of(family: u8, raw: &[u8]) -> Option<IpAddr> {
    match family {
        AF_INET => Some(IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]))),
        AF_INET6 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&raw[..16]);
            Some(IpAddr::V6(Ipv6Addr::from(a)))
        }
        _ => None,
    }
}

/// Decodes `struct flow` of socket `id`; `None` for a protocol kizuki does
/// not know. Also returns the owning process (tgid).
pub fn parse_flow(id: u64, b: &[u8]) -> Option<(u32, Flow)> {
    if b.len() < FLOW_LEN {
        return None;
    }
    let tgid = u32_at(b, 24);
    let uid = u32_at(b, 28);
    let netns = u32_at(b, 32);
    let sport = u16_at(b, 36);
    let dport = u16_at(b, 38);
    let family = b[73];
    let protocol = match b[72] {
        1 => Protocol::Tcp,
        2 => Protocol::Udp,
        3 => Protocol::Icmp,
        4 => Protocol::Raw,
        5 => Protocol::Packet,
        6 => Protocol::Sctp,
        _ => return None,
    };
    let direction = match b[74] {
        1 => Direction::Outgoing,
        2 => Direction::Incoming,
        _ => Direction::Unknown,
    };
    let (local, remote) = if protocol == Protocol::Packet {
        (SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), sport), None)
    } else {
        let lip = ip_of(family, &b[40..56])?;
        let rip = ip_of(family, &b[56..72])?;
        let local = SocketAddr::new(lip, sport);
        let remote = if rip.is_unspecified() && dport == 0 {
            None
        } else {
            Some(SocketAddr::new(rip, dport))
        };
        (local, remote)
    };
    let state = (protocol == Protocol::Tcp).then(|| SockState::from_linux_tcp(b[75]));
    Some((
        tgid,
        Flow {
            id,
            protocol,
            local,
            remote,
            direction,
            state,
            netns,
            uid,
            comm: c_string(&b[80..96]),
            bytes_sent: u64_at(b, 0),
            bytes_received: u64_at(b, 8),
        },
    ))
}

/// The FLOWS map's value read as twelve words, back to its bytes.
pub fn flow_bytes(words: &[u64; FLOW_LEN / 8]) -> [u8; FLOW_LEN] {
    let mut out = [0u8; FLOW_LEN];
    for (i, w) in words.iter().enumerate() {
        out[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    out
}

/// The executable's path from the components the kernel walked (file
/// first, root last); `None` when the walk stopped early.
fn exe_path(b: &[u8], depth: usize, truncated: bool) -> Option<PathBuf> {
    if truncated || depth == 0 || depth > PATH_DEPTH {
        return None;
    }
    let mut path = Vec::new();
    for i in (0..depth).rev() {
        let at = 56 + FILENAME_LEN + i * NAME_LEN;
        let name = c_bytes(&b[at..at + NAME_LEN]);
        // A name that filled its field was cut: the path would be wrong.
        if name.is_empty() || name.len() >= NAME_LEN - 1 || name.contains(&b'/') {
            return None;
        }
        path.push(b'/');
        path.extend_from_slice(name);
    }
    Some(PathBuf::from(OsString::from_vec(path)))
}

/// Decodes one ring buffer record.
pub fn parse_event(b: &[u8]) -> Option<Event> {
    if b.len() < 8 {
        return None;
    }
    match u32_at(b, 0) {
        EV_EXEC if b.len() >= EXEC_EVENT_LEN => {
            let depth = u32_at(b, 48) as usize;
            let truncated = u32_at(b, 52) != 0;
            Some(Event {
                at_ns: u64_at(b, 16),
                pid: u32_at(b, 4),
                kind: EventKind::Exec(ExecInfo {
                    parent: u32_at(b, 8),
                    uid: u32_at(b, 12),
                    comm: c_string(&b[32..48]),
                    exe: exe_path(b, depth, truncated),
                    filename: c_string(&b[56..56 + FILENAME_LEN]),
                    start_boottime_ns: u64_at(b, 24),
                }),
            })
        }
        EV_EXIT if b.len() >= EXIT_EVENT_LEN => Some(Event {
            at_ns: u64_at(b, 8),
            pid: u32_at(b, 4),
            kind: EventKind::Exit,
        }),
        kind @ (EV_OPEN | EV_CLOSE) if b.len() >= FLOW_EVENT_LEN => {
            let (pid, flow) = parse_flow(u64_at(b, 8), &b[24..24 + FLOW_LEN])?;
            Some(Event {
                at_ns: u64_at(b, 16),
                pid,
                kind: if kind == EV_OPEN {
                    EventKind::Open(flow)
                } else {
                    EventKind::Close(flow)
                },
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow_record(proto: u8, family: u8) -> Vec<u8> {
        let mut b = vec![0u8; FLOW_EVENT_LEN];
        b[0..4].copy_from_slice(&EV_OPEN.to_le_bytes());
        b[8..16].copy_from_slice(&0xffff_8880_1234_5678u64.to_le_bytes());
        b[16..24].copy_from_slice(&77u64.to_le_bytes());
        let f = &mut b[24..];
        f[0..8].copy_from_slice(&1500u64.to_le_bytes());
        f[8..16].copy_from_slice(&42u64.to_le_bytes());
        f[24..28].copy_from_slice(&4321u32.to_le_bytes());
        f[28..32].copy_from_slice(&1000u32.to_le_bytes());
        f[32..36].copy_from_slice(&4026531840u32.to_le_bytes());
        f[36..38].copy_from_slice(&40000u16.to_le_bytes());
        f[38..40].copy_from_slice(&8080u16.to_le_bytes());
        f[40..44].copy_from_slice(&[127, 0, 0, 1]);
        f[56..60].copy_from_slice(&[127, 0, 0, 2]);
        f[72] = proto;
        f[73] = family;
        f[74] = 1;
        f[75] = 1;
        f[80..84].copy_from_slice(b"curl");
        b
    }

    #[test]
    fn a_tcp_open_record_decodes_to_its_flow() {
        let e = parse_event(&flow_record(1, AF_INET)).unwrap();
        assert_eq!(e.pid, 4321);
        assert_eq!(e.at_ns, 77);
        let EventKind::Open(f) = e.kind else {
            panic!("not an open: {e:?}")
        };
        assert_eq!(f.protocol, Protocol::Tcp);
        assert_eq!(f.local, "127.0.0.1:40000".parse().unwrap());
        assert_eq!(f.remote, Some("127.0.0.2:8080".parse().unwrap()));
        assert_eq!(f.direction, Direction::Outgoing);
        assert_eq!(f.state, Some(SockState::Established));
        assert_eq!((f.bytes_sent, f.bytes_received), (1500, 42));
        assert_eq!(f.comm, "curl");
        assert_eq!(f.netns, 4026531840);
    }

    #[test]
    fn short_unknown_and_foreign_records_are_skipped() {
        let full = flow_record(1, AF_INET);
        assert!(parse_event(&full[..FLOW_EVENT_LEN - 1]).is_none());
        assert!(parse_event(&[9, 0, 0, 0, 0, 0, 0, 0]).is_none());
        assert!(parse_event(&flow_record(99, AF_INET)).is_none());
        assert!(parse_event(&flow_record(1, 1)).is_none(), "AF_UNIX");
        assert!(parse_event(&[]).is_none());
    }

    #[test]
    fn packet_sockets_have_no_addresses() {
        let e = parse_event(&flow_record(5, 17)).unwrap();
        let EventKind::Open(f) = e.kind else { panic!() };
        assert_eq!(f.protocol, Protocol::Packet);
        assert_eq!(f.remote, None);
        assert_eq!(f.local.port(), 40000);
        assert_eq!(f.state, None);
    }

    fn exec_record(names: &[&[u8]], truncated: bool) -> Vec<u8> {
        let mut b = vec![0u8; EXEC_EVENT_LEN];
        b[0..4].copy_from_slice(&EV_EXEC.to_le_bytes());
        b[4..8].copy_from_slice(&99u32.to_le_bytes());
        b[8..12].copy_from_slice(&1u32.to_le_bytes());
        b[24..32].copy_from_slice(&5_000_000_000u64.to_le_bytes());
        b[32..36].copy_from_slice(b"gen\0");
        b[48..52].copy_from_slice(&(names.len() as u32).to_le_bytes());
        b[52..56].copy_from_slice(&u32::from(truncated).to_le_bytes());
        b[56..61].copy_from_slice(b"./gen");
        for (i, n) in names.iter().enumerate() {
            let at = 56 + FILENAME_LEN + i * NAME_LEN;
            b[at..at + n.len()].copy_from_slice(n);
        }
        b
    }

    #[test]
    fn exec_path_is_rebuilt_from_the_root() {
        let e = parse_event(&exec_record(&[b"gen", b"tmp"], false)).unwrap();
        let EventKind::Exec(x) = e.kind else { panic!() };
        assert_eq!(e.pid, 99);
        assert_eq!(x.exe, Some(PathBuf::from("/tmp/gen")));
        assert_eq!(x.filename, "./gen");
        assert_eq!(x.start_boottime_ns, 5_000_000_000);
    }

    #[test]
    fn a_cut_or_hostile_path_is_not_guessed() {
        let e = parse_event(&exec_record(&[b"gen", b"tmp"], true)).unwrap();
        let EventKind::Exec(x) = e.kind else { panic!() };
        assert_eq!(x.exe, None);
        let long = vec![b'a'; NAME_LEN - 1];
        let e = parse_event(&exec_record(&[&long, b"tmp"], false)).unwrap();
        let EventKind::Exec(x) = e.kind else { panic!() };
        assert_eq!(x.exe, None);
        let e = parse_event(&exec_record(&[b"a/b"], false)).unwrap();
        let EventKind::Exec(x) = e.kind else { panic!() };
        assert_eq!(x.exe, None);
    }
}
