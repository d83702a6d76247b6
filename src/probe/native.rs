//! The real probe: sysinfo for processes, netstat2 for the socket table.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use netstat2::{AddressFamilyFlags, ProtocolFlags, ProtocolSocketInfo, TcpState};
use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind, Users};

use super::{Probe, ProbeError};
use crate::escape;
use crate::model::{Protocol, RawProcess, RawSample, RawSocket, SockState};

/// Samples the running machine.
pub struct NativeProbe {
    sys: System,
    users: Users,
    #[cfg(target_os = "linux")]
    owners: super::linux::SocketOwners,
}

impl NativeProbe {
    /// A probe that resolves socket owners incrementally (for a monitor
    /// that samples again and again).
    pub fn new() -> Result<Self, ProbeError> {
        Self::with_attribution(super::Attribution::Incremental)
    }

    /// A probe with the chosen owner resolution; `Full` is the plain
    /// method kept for comparison.
    pub fn with_attribution(mode: super::Attribution) -> Result<Self, ProbeError> {
        let sys = System::new().map_err(|e| ProbeError::Processes(e.to_string()))?;
        let users =
            Users::new_with_refreshed_list().map_err(|e| ProbeError::Processes(e.to_string()))?;
        #[cfg(not(target_os = "linux"))]
        let _ = mode;
        Ok(NativeProbe {
            sys,
            users,
            #[cfg(target_os = "linux")]
            owners: super::linux::SocketOwners::new(mode),
        })
    }

    fn refresh_processes(&mut self) -> Vec<RawProcess> {
        // Only what kizuki shows: no memory, CPU, disk or thread lists.
        let kind = ProcessRefreshKind::nothing()
            .with_user(UpdateKind::OnlyIfNotSet)
            .with_cmd(UpdateKind::OnlyIfNotSet)
            .with_exe(if cfg!(target_os = "linux") {
                UpdateKind::Never
            } else {
                UpdateKind::OnlyIfNotSet
            });
        self.sys
            .refresh_processes_specifics(ProcessesToUpdate::All, true, kind);
        let mut unknown_user = false;
        let mut out = Vec::with_capacity(self.sys.processes().len());
        for (pid, p) in self.sys.processes() {
            let pid = pid.as_u32();
            let parent = p.parent().map(|pp| pp.as_u32());
            #[cfg(target_os = "linux")]
            if super::linux::is_kernel_thread(pid, parent) {
                continue;
            }
            // Threads show up as tasks of their process, never as programs.
            if p.thread_kind().is_some() {
                continue;
            }
            #[cfg(target_os = "linux")]
            let (exe, exe_deleted) = super::linux::exe_of(pid);
            #[cfg(not(target_os = "linux"))]
            let (exe, exe_deleted) = {
                let exe = p.exe().map(|e| e.to_path_buf());
                let deleted = exe.as_ref().is_some_and(|e| !e.exists());
                (exe, deleted)
            };
            let user = p.user_id().and_then(|uid| {
                let name = self.users.get_user_by_id(uid).map(|u| u.name().to_string());
                if name.is_none() {
                    unknown_user = true;
                }
                name
            });
            out.push(RawProcess {
                pid,
                parent,
                name: escape::os_lossless(p.name()),
                exe,
                exe_deleted,
                cmdline: p.cmd().iter().map(|a| escape::os_lossless(a)).collect(),
                uid: uid_number(p.user_id()),
                user,
                start_time: p.start_time(),
            });
        }
        if unknown_user {
            // A user account created since start: reread the list once.
            self.users.refresh();
        }
        out.sort_unstable_by_key(|p| p.pid);
        out
    }
}

#[cfg(unix)]
fn uid_number(uid: Option<&sysinfo::Uid>) -> Option<u32> {
    uid.map(|u| **u)
}

#[cfg(not(unix))]
fn uid_number(_uid: Option<&sysinfo::Uid>) -> Option<u32> {
    None
}

fn map_state(s: TcpState) -> SockState {
    match s {
        TcpState::Established => SockState::Established,
        TcpState::SynSent => SockState::SynSent,
        TcpState::SynReceived => SockState::SynRecv,
        TcpState::FinWait1 => SockState::FinWait1,
        TcpState::FinWait2 => SockState::FinWait2,
        TcpState::TimeWait => SockState::TimeWait,
        TcpState::Closed => SockState::Close,
        TcpState::CloseWait => SockState::CloseWait,
        TcpState::LastAck => SockState::LastAck,
        TcpState::Listen => SockState::Listen,
        TcpState::Closing => SockState::Closing,
        TcpState::DeleteTcb | TcpState::Unknown => SockState::Unknown,
    }
}

fn is_unspecified_peer(ip: IpAddr, port: u16) -> bool {
    port == 0 && ip.is_unspecified()
}

/// Converts netstat2's record to ours (without owners).
fn convert(si: &netstat2::SocketInfo) -> RawSocket {
    let (protocol, local, remote, state) = match &si.protocol_socket_info {
        ProtocolSocketInfo::Tcp(t) => {
            let remote = if is_unspecified_peer(t.remote_addr, t.remote_port) {
                None
            } else {
                Some(SocketAddr::new(t.remote_addr, t.remote_port))
            };
            (
                Protocol::Tcp,
                SocketAddr::new(t.local_addr, t.local_port),
                remote,
                map_state(t.state),
            )
        }
        ProtocolSocketInfo::Udp(u) => (
            Protocol::Udp,
            SocketAddr::new(u.local_addr, u.local_port),
            None,
            SockState::Unconn,
        ),
    };
    #[cfg(target_os = "linux")]
    let (uid, inode) = (Some(si.uid), u64::from(si.inode));
    #[cfg(not(target_os = "linux"))]
    let (uid, inode) = (None, 0);
    RawSocket {
        protocol,
        local,
        remote,
        state,
        pids: si.associated_pids.clone(),
        uid,
        inode,
    }
}

impl Probe for NativeProbe {
    fn sample(&mut self) -> Result<RawSample, ProbeError> {
        let af = AddressFamilyFlags::IPV4 | AddressFamilyFlags::IPV6;
        let proto = ProtocolFlags::TCP | ProtocolFlags::UDP;

        // Sockets first, then owners, then processes: a process that starts
        // in between is then still listed for the sockets it owns.
        #[cfg(target_os = "linux")]
        let mut sockets: Vec<RawSocket> = netstat2::iterate_sockets_info_without_pids(af, proto)
            .map_err(|e| ProbeError::Sockets(e.to_string()))?
            .filter_map(|r| r.ok())
            .map(|si| convert(&si))
            .collect();
        #[cfg(not(target_os = "linux"))]
        let mut sockets: Vec<RawSocket> = netstat2::get_sockets_info(af, proto)
            .map_err(|e| ProbeError::Sockets(e.to_string()))?
            .iter()
            .map(convert)
            .collect();

        #[cfg(target_os = "linux")]
        let owners_complete = self.owners.attribute(&mut sockets);
        #[cfg(not(target_os = "linux"))]
        let owners_complete = true;

        let processes = self.refresh_processes();

        // Drop owners that vanished between the two reads (a PID that exited).
        let alive: HashMap<u32, ()> = processes.iter().map(|p| (p.pid, ())).collect();
        for s in &mut sockets {
            s.pids.retain(|pid| alive.contains_key(pid));
        }

        Ok(RawSample {
            processes,
            sockets,
            // As administrator every owner is readable; what stays unowned
            // then is not hidden from us (TIME_WAIT, other namespaces).
            complete: owners_complete || super::running_as_admin(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn sees_own_listener_with_own_pid() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let mut probe = NativeProbe::new().unwrap();
        let s = probe.sample().unwrap();
        let me = std::process::id();
        let sock = s
            .sockets
            .iter()
            .find(|x| x.local.port() == port && x.state == SockState::Listen)
            .expect("listener present");
        assert_eq!(sock.pids, vec![me]);
        assert_eq!(sock.remote, None);
        let p = s
            .processes
            .iter()
            .find(|p| p.pid == me)
            .expect("self listed");
        assert!(!p.exe_deleted);
        assert!(p.exe.is_some());
    }
}
