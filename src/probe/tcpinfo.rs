//! The TCP socket table from the kernel's socket diagnostics, both
//! address families in one walk, and with it the bytes per connection
//! without event capture: the kernel's own counters (`tcp_info`: bytes
//! acknowledged by the peer, bytes received). Any user may ask (as
//! unprivileged `ss -ti` does); nothing leaves the machine.
//!
//! Only connections open at the moment are counted: one that opened and
//! closed between two samples is seen by capture alone.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;

use crate::model::{Protocol, RawSocket, SockState};

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto,
    setsockopt, socket, sockopt,
};
use nix::sys::time::TimeVal;

/// The older request (the newer is `SOCK_DIAG_BY_FAMILY`, 20): it dumps
/// IPv4 and IPv6 sockets in one walk of the
/// kernel's TCP tables (the newer one walks them once per family, and the
/// walk is most of a dump's cost on a busy machine).
const TCPDIAG_GETSOCK: u16 = 18;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
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

/// Every TCP socket of this network namespace (listening, connected,
/// closing, time-wait), IPv4 and IPv6, from one dump. With `bytes`, each
/// open connection carries its `tcp_info` counters.
pub fn tcp_sockets(bytes: bool) -> nix::Result<Vec<RawSocket>> {
    let mut out = Vec::new();
    dump(&request_both(bytes), TCPDIAG_GETSOCK, |m| {
        if let Some(s) = socket_of(m, bytes) {
            out.push(s);
        }
    })?;
    Ok(out)
}

/// `TCPDIAG_GETSOCK` with the old `inet_diag_req`: family (ignored by a
/// dump), address lengths, extensions, the 48-byte id, every state, no
/// hash-table filter.
fn request_both(info: bool) -> Vec<u8> {
    let mut m = Vec::with_capacity(76);
    m.extend_from_slice(&76u32.to_ne_bytes()); // nlmsg_len
    m.extend_from_slice(&TCPDIAG_GETSOCK.to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // pid
    let ext = if info { 1 << (INET_DIAG_INFO - 1) } else { 0 };
    m.extend_from_slice(&[libc_af::INET, 0, 0, ext]);
    m.extend_from_slice(&[0u8; 48]);
    m.extend_from_slice(&u32::MAX.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m
}

/// One `inet_diag_msg` as a socket of the table (no owners yet).
fn socket_of(m: &[u8], bytes: bool) -> Option<RawSocket> {
    if m.len() < DIAG_MSG_LEN {
        return None;
    }
    let ip = |at: usize| -> Option<IpAddr> {
        match m[0] {
            libc_af::INET => Some(IpAddr::V4(Ipv4Addr::from(
                <[u8; 4]>::try_from(m.get(at..at + 4)?).ok()?,
            ))),
            libc_af::INET6 => Some(IpAddr::V6(Ipv6Addr::from(
                <[u8; 16]>::try_from(m.get(at..at + 16)?).ok()?,
            ))),
            _ => None,
        }
    };
    let port = |at: usize| u16::from_be_bytes([m[at], m[at + 1]]);
    let local = SocketAddr::new(ip(8)?, port(4));
    let (peer, peer_port) = (ip(24)?, port(6));
    let remote =
        (peer_port != 0 || !peer.is_unspecified()).then(|| SocketAddr::new(peer, peer_port));
    let counted = if bytes {
        diag_message(m).map(|(_, b)| b)
    } else {
        None
    };
    Some(RawSocket {
        protocol: Protocol::Tcp,
        local,
        remote,
        state: SockState::from_linux_tcp(m[1]),
        pids: Vec::new(),
        uid: Some(u32_at(m, 64)?),
        inode: u64::from(u32_at(m, INODE_AT)?),
        bytes_sent: counted.map(|b| b.0),
        bytes_received: counted.map(|b| b.1),
        opened: None,
    })
}

/// Address family numbers (Linux).
mod libc_af {
    pub const INET: u8 = 2;
    pub const INET6: u8 = 10;
}

/// Sends one dump request and hands each answer of type `kind` to `each`.
/// An error the kernel answers with is returned.
fn dump(req: &[u8], kind: u16, mut each: impl FnMut(&[u8])) -> nix::Result<()> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )?;
    setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::new(1, 0))?;
    sendto(
        fd.as_raw_fd(),
        req,
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
        match read_messages(&buf[..n], kind, &mut each) {
            Step::More(k) => {
                seen += k;
                if seen > MAX_MESSAGES {
                    return Ok(());
                }
            }
            Step::Done => return Ok(()),
            Step::Refused(errno) => return Err(nix::errno::Errno::from_raw(errno)),
        }
    }
}

enum Step {
    More(usize),
    Done,
    /// The kernel answered with this error number.
    Refused(i32),
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
fn read_messages(mut b: &[u8], want: u16, each: &mut impl FnMut(&[u8])) -> Step {
    let mut count = 0;
    while b.len() >= 16 {
        let (Some(len), Some(kind)) = (u32_at(b, 0), u16_at(b, 4)) else {
            break;
        };
        let len = len as usize;
        if len < 16 || len > b.len() {
            break;
        }
        if kind == NLMSG_ERROR {
            // nlmsgerr: a negative errno, 0 for an acknowledgement.
            return match u32_at(b, 16).map(|e| e as i32) {
                Some(e) if e < 0 => Step::Refused(-e),
                _ => Step::Done,
            };
        }
        if kind == NLMSG_DONE {
            return Step::Done;
        }
        if kind == want {
            each(&b[16..len]);
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

    /// One dump lists IPv4 and IPv6 sockets alike, with their addresses,
    /// state, owner and inode, and the bytes of an open connection.
    #[test]
    fn one_dump_lists_both_families_with_their_bytes() {
        let l4 = TcpListener::bind("127.0.0.1:0").unwrap();
        // A kernel without IPv6 still lists IPv4.
        let l6 = TcpListener::bind("[::1]:0").ok();
        let mut c = TcpStream::connect(l4.local_addr().unwrap()).unwrap();
        let (mut s, _) = l4.accept().unwrap();
        c.write_all(&[7u8; 1200]).unwrap();
        let mut got = vec![0u8; 1200];
        s.read_exact(&mut got).unwrap();
        let inode = |fd: i32| {
            std::fs::metadata(format!("/proc/self/fd/{fd}"))
                .unwrap()
                .ino()
        };
        let all = tcp_sockets(true).unwrap();
        let find = |ino: u64| all.iter().find(|x| x.inode == ino).cloned();
        let client = find(inode(c.as_raw_fd())).expect("the client socket");
        assert_eq!(client.local, c.local_addr().unwrap());
        assert_eq!(client.remote, Some(l4.local_addr().unwrap()));
        assert_eq!(client.state, SockState::Established);
        assert_eq!(client.uid, Some(nix::unistd::geteuid().as_raw()));
        assert!(
            client
                .bytes_sent
                .is_some_and(|b| (1200..=1201).contains(&b)),
            "{client:?}"
        );
        let listener = find(inode(l4.as_raw_fd())).expect("the IPv4 listener");
        assert_eq!(listener.state, SockState::Listen);
        assert_eq!(listener.remote, None);
        if let Some(l6) = l6 {
            let l = find(inode(l6.as_raw_fd())).expect("the IPv6 listener, same dump");
            assert_eq!(l.local, l6.local_addr().unwrap());
        }
        // Without bytes asked, none are given (not zero).
        let plain = tcp_sockets(false).unwrap();
        let c2 = plain.iter().find(|x| x.inode == client.inode).unwrap();
        assert_eq!(c2.bytes_sent, None);
    }

    #[test]
    fn short_and_junk_messages_are_skipped() {
        let mut n = 0;
        let mut each = |_: &[u8]| n += 1;
        let want = TCPDIAG_GETSOCK;
        assert!(matches!(
            read_messages(&[0u8; 10], want, &mut each),
            Step::More(0)
        ));
        let mut bogus = vec![0u8; 40];
        bogus[0..4].copy_from_slice(&400u32.to_ne_bytes());
        assert!(matches!(
            read_messages(&bogus, want, &mut each),
            Step::More(0)
        ));
        assert!(diag_message(&[0u8; 20]).is_none());
        assert!(socket_of(&[0u8; 20], true).is_none());
        // An error answer is told apart from the end of the dump.
        let mut err = vec![0u8; 36];
        err[0..4].copy_from_slice(&36u32.to_ne_bytes());
        err[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        err[16..20].copy_from_slice(&(-22i32).to_ne_bytes());
        assert!(matches!(
            read_messages(&err, want, &mut each),
            Step::Refused(22)
        ));
        assert_eq!(n, 0);
    }
}
