//! What the guard reads about processes, itself, from `/proc`: which file a
//! process runs (device and inode, path), when it started, its cgroup, and
//! the connections of its own sockets. Nothing here comes from a client.

use std::collections::HashSet;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use super::check::Ident;
use crate::firewall::Flow;
use crate::model::Protocol;

/// Kernel threads carry this flag in /proc/PID/stat.
const PF_KTHREAD: u64 = 0x0020_0000;

/// Every PID now.
pub fn all_pids() -> Vec<u32> {
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// Device and inode of the file the process runs.
pub fn exe_ident(pid: u32) -> Option<Ident> {
    fs::metadata(format!("/proc/{pid}/exe"))
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// The path of the file the process runs, without " (deleted)".
pub fn exe_path(pid: u32) -> Option<PathBuf> {
    let p = fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let bytes = crate::pathser::path_bytes(&p);
    let stripped = bytes.strip_suffix(b" (deleted)").unwrap_or(&bytes).to_vec();
    crate::pathser::path_from_bytes(stripped)
}

/// Fields of /proc/PID/stat after the command name (field 3 onwards).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Start time in clock ticks after boot (field 22).
pub fn start_time(pid: u32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// Kernel threads, init, and the guard itself are never moved.
pub fn untouchable(pid: u32) -> bool {
    if pid <= 1 || pid == std::process::id() || i32::try_from(pid).is_err() {
        return true;
    }
    match stat_fields(pid).and_then(|f| f.get(6)?.parse::<u64>().ok()) {
        Some(flags) => flags & PF_KTHREAD != 0,
        // Gone or unreadable: nothing to move.
        None => true,
    }
}

/// The process's cgroup v2 path (relative to the mount), e.g.
/// `/user.slice/user-1000.slice/session-2.scope`.
pub fn cgroup_of(pid: u32) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_string)
}

/// Inodes of the process's sockets.
pub fn socket_inodes(pid: u32) -> HashSet<u64> {
    let mut out = HashSet::new();
    let Ok(rd) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return out;
    };
    for e in rd.flatten() {
        if let Ok(t) = fs::read_link(e.path())
            && let Some(ino) = t
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse().ok())
        {
            out.insert(ino);
        }
    }
    out
}

fn parse_addr(hex: &str) -> Option<SocketAddr> {
    let (ip, port) = hex.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        Some(
            u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16)
                .ok()?
                .to_le_bytes(),
        )
    };
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Connections (TCP established, connected UDP) of the sockets in
/// `inodes`, from a /proc/net table's text.
pub fn flows_in(table: &str, protocol: Protocol, inodes: &HashSet<u64>) -> Vec<Flow> {
    let mut out = Vec::new();
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(remote), Some(st), Some(ino)) = (
            f.get(1).and_then(|a| parse_addr(a)),
            f.get(2).and_then(|a| parse_addr(a)),
            f.get(3),
            f.get(9).and_then(|i| i.parse::<u64>().ok()),
        ) else {
            continue;
        };
        // TCP: 01 = ESTABLISHED; UDP: a connected socket has a peer.
        let live = match protocol {
            Protocol::Tcp => *st == "01",
            Protocol::Udp => remote.port() != 0,
            // Only TCP and UDP tables are read here.
            Protocol::Icmp | Protocol::Raw | Protocol::Packet | Protocol::Sctp => false,
        };
        if !live || !inodes.contains(&ino) {
            continue;
        }
        if let Ok(flow) = crate::firewall::plan::normalize_flow(&Flow {
            protocol,
            local,
            remote,
        }) {
            out.push(flow);
        }
    }
    out
}

/// The connections of the process's own sockets.
pub fn flows_of(pid: u32) -> Vec<Flow> {
    let inodes = socket_inodes(pid);
    if inodes.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (file, proto) in [
        ("tcp", Protocol::Tcp),
        ("tcp6", Protocol::Tcp),
        ("udp", Protocol::Udp),
        ("udp6", Protocol::Udp),
    ] {
        if let Ok(t) = fs::read_to_string(format!("/proc/{pid}/net/{file}")) {
            out.extend(flows_in(&t, proto, &inodes));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_lines_become_flows_of_the_owners_sockets_only() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1
   1: 0207E70A:9C40 0107E70A:1F90 01 00000000:00000000 00:00000000 00000000     0        0 222 1
   2: 0207E70A:9C41 0107E70A:1F90 01 00000000:00000000 00:00000000 00000000     0        0 333 1
";
        let mine: HashSet<u64> = [111, 222].into();
        let flows = flows_in(table, Protocol::Tcp, &mine);
        assert_eq!(
            flows.len(),
            1,
            "listening and other owners' sockets are not cut"
        );
        assert_eq!(flows[0].local, "10.231.7.2:40000".parse().unwrap());
        assert_eq!(flows[0].remote, "10.231.7.1:8080".parse().unwrap());
        let v6 = parse_addr("00000000000000000000000001000000:0035").unwrap();
        assert_eq!(v6, "[::1]:53".parse().unwrap());
    }

    #[test]
    fn init_kernel_threads_and_the_guard_are_untouchable() {
        assert!(untouchable(0));
        assert!(untouchable(1));
        assert!(untouchable(std::process::id()));
        assert!(untouchable(2), "kthreadd");
        let child = std::process::Command::new("sleep").arg("5").spawn();
        if let Ok(mut c) = child {
            assert!(!untouchable(c.id()));
            assert!(start_time(c.id()).is_some());
            assert!(cgroup_of(c.id()).is_some());
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
