//! Bytes per TCP connection without event capture: the kernel's own
//! counters (`tcp_info`: bytes acknowledged by the peer, bytes received)
//! from one socket-diagnostics dump per address family. Any user may ask
//! (as unprivileged `ss -ti` does); nothing leaves the machine.
//!
//! Only connections open at the moment are counted: one that opened and
//! closed between two samples is seen by capture alone.

use std::collections::HashMap;
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto,
    setsockopt, socket, sockopt,
};
use nix::sys::time::TimeVal;

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const IPPROTO_TCP: u8 = 6;
const INET_DIAG_INFO: u16 = 2;
/// `inet_diag_msg`: family, state, timer, retrans, the 48-byte id,
/// expires, rqueue, wqueue, uid, inode.
const DIAG_MSG_LEN: usize = 72;
const INODE_AT: usize = 68;
/// `tcp_info`'s `tcpi_bytes_acked` and `tcpi_bytes_received` (u64 each).
const ACKED_AT: usize = 120;
const RECEIVED_AT: usize = 128;
/// A dump longer than this many messages is cut (a bound, not a limit
/// a desktop reaches).
const MAX_MESSAGES: usize = 1 << 20;

/// Sent and received bytes of every open TCP socket, by socket inode.
/// Empty when the kernel could not be asked (never an error: the bytes
/// are then unknown, as before).
pub fn tcp_bytes() -> HashMap<u64, (u64, u64)> {
    let mut out = HashMap::new();
    for family in [libc_af::INET, libc_af::INET6] {
        if let Err(e) = dump(family, &mut out) {
            log::debug!("tcp_info dump for family {family}: {e}");
        }
    }
    out
}

/// Address family numbers (Linux).
mod libc_af {
    pub const INET: u8 = 2;
    pub const INET6: u8 = 10;
}

fn request(family: u8) -> Vec<u8> {
    let mut m = Vec::with_capacity(72);
    m.extend_from_slice(&72u32.to_ne_bytes()); // nlmsg_len
    m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // pid
    // inet_diag_req_v2: family, protocol, extensions (INET_DIAG_INFO),
    // pad, every state, an empty socket id.
    m.extend_from_slice(&[family, IPPROTO_TCP, 1 << (INET_DIAG_INFO - 1), 0]);
    m.extend_from_slice(&u32::MAX.to_ne_bytes());
    m.extend_from_slice(&[0u8; 48]);
    m
}

fn dump(family: u8, out: &mut HashMap<u64, (u64, u64)>) -> nix::Result<()> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )?;
    setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::new(1, 0))?;
    sendto(
        fd.as_raw_fd(),
        &request(family),
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut seen = 0usize;
    loop {
        let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty())?;
        if n == 0 {
            return Ok(());
        }
        match read_messages(&buf[..n], out) {
            Step::More(k) => {
                seen += k;
                if seen > MAX_MESSAGES {
                    return Ok(());
                }
            }
            Step::Done => return Ok(()),
        }
    }
}

enum Step {
    More(usize),
    Done,
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(i..i + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], i: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(i..i + 8)?.try_into().ok()?))
}

/// The netlink messages of one datagram.
fn read_messages(mut b: &[u8], out: &mut HashMap<u64, (u64, u64)>) -> Step {
    let mut count = 0;
    while b.len() >= 16 {
        let (Some(len), Some(kind)) = (u32_at(b, 0), u16_at(b, 4)) else {
            break;
        };
        let len = len as usize;
        if len < 16 || len > b.len() {
            break;
        }
        if kind == NLMSG_DONE || kind == NLMSG_ERROR {
            return Step::Done;
        }
        if kind == SOCK_DIAG_BY_FAMILY
            && let Some((inode, bytes)) = diag_message(&b[16..len])
        {
            out.insert(inode, bytes);
        }
        count += 1;
        b = &b[align(len).min(b.len())..];
    }
    Step::More(count)
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// One socket's inode and (acked, received) bytes from its `tcp_info`.
fn diag_message(m: &[u8]) -> Option<(u64, (u64, u64))> {
    let inode = u64::from(u32_at(m, INODE_AT)?);
    if inode == 0 || m.len() < DIAG_MSG_LEN {
        return None;
    }
    let mut attrs = &m[DIAG_MSG_LEN..];
    while attrs.len() >= 4 {
        let len = usize::from(u16_at(attrs, 0)?);
        let kind = u16_at(attrs, 2)?;
        if len < 4 || len > attrs.len() {
            return None;
        }
        if kind == INET_DIAG_INFO {
            let info = &attrs[4..len];
            return Some((inode, (u64_at(info, ACKED_AT)?, u64_at(info, RECEIVED_AT)?)));
        }
        attrs = &attrs[align(len).min(attrs.len())..];
    }
    None
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::unix::fs::MetadataExt;

    use super::*;

    /// A loopback connection that moved known bytes: the dump reports them
    /// for the client's socket, found by its inode.
    #[test]
    fn an_open_connection_reports_its_bytes() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        c.write_all(&[7u8; 3000]).unwrap();
        let mut got = vec![0u8; 3000];
        s.read_exact(&mut got).unwrap();
        s.write_all(&[9u8; 500]).unwrap();
        let mut back = vec![0u8; 500];
        c.read_exact(&mut back).unwrap();
        let inode = std::fs::metadata(format!("/proc/self/fd/{}", c.as_raw_fd()))
            .unwrap()
            .ino();
        let all = tcp_bytes();
        let (acked, received) = all.get(&inode).copied().expect("the client socket");
        // The kernel counts the SYN among the acknowledged bytes.
        assert!((3000..=3001).contains(&acked), "acked {acked}");
        assert_eq!(received, 500);
    }

    #[test]
    fn short_and_junk_messages_are_skipped() {
        let mut out = HashMap::new();
        assert!(matches!(read_messages(&[0u8; 10], &mut out), Step::More(0)));
        let mut bogus = vec![0u8; 40];
        bogus[0..4].copy_from_slice(&400u32.to_ne_bytes());
        assert!(matches!(read_messages(&bogus, &mut out), Step::More(0)));
        assert!(diag_message(&[0u8; 20]).is_none());
        assert!(out.is_empty());
    }
}
