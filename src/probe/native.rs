//! The real probe: sysinfo for processes, netstat2 for the socket table.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use netstat2::{AddressFamilyFlags, ProtocolFlags, ProtocolSocketInfo, TcpState};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind, Users};

use super::{Probe, ProbeError};
use crate::escape;
use crate::model::{Protocol, RawProcess, RawSample, RawSocket, SockState};

/// What one sample read of the processes' descriptors (Linux), shared by
/// the owner search and the per-process looks.
#[cfg(target_os = "linux")]
type Fds = super::linux::FdTables;
#[cfg(not(target_os = "linux"))]
type Fds = ();

/// Samples the running machine.
pub struct NativeProbe {
    sys: System,
    users: Users,
    #[cfg(target_os = "linux")]
    owners: super::linux::SocketOwners,
    /// Processes already described, by PID with their start marker: only
    /// new ones are asked of sysinfo (Linux). `None` marks kernel threads,
    /// remembered so they are not asked about again.
    #[cfg(target_os = "linux")]
    known: HashMap<u32, (u64, Option<RawProcess>)>,
    samples: u64,
    /// The processes event capture saw open a socket or start a program
    /// since the last sample (`None`: no capture, every process is looked
    /// at fully each sample).
    #[cfg(target_os = "linux")]
    active: Option<std::collections::HashSet<u32>>,
    /// Read each open TCP connection's bytes from the kernel (`tcp_info`)
    /// when no capture counts them: a run that keeps watching.
    tcp_bytes: bool,
}

/// Samples between two complete process refreshes (command lines that a
/// program rewrote, users renamed).
#[cfg(target_os = "linux")]
const FULL_REFRESH_EVERY: u64 = 60;

/// Samples between two looks for Tor's data files in a process's working
/// folder.
#[cfg(target_os = "linux")]
const TOR_RECHECK_EVERY: u64 = 3;

/// Samples between two full reads of a running process's descriptors for
/// what the cheaper looks in between skip (Tor's files among them, a
/// script's descriptor opened late), spread over the samples by PID so a
/// machine with thousands of descriptors is not read all at once.
#[cfg(target_os = "linux")]
const FD_RECHECK_EVERY: u64 = 15;

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
            #[cfg(target_os = "linux")]
            known: HashMap::new(),
            samples: 0,
            #[cfg(target_os = "linux")]
            active: None,
            tcp_bytes: false,
        })
    }

    /// Also reads the bytes of open TCP connections from the kernel's
    /// counters (Linux; a watching run, not a one-shot scan).
    pub fn with_tcp_bytes(mut self) -> Self {
        self.tcp_bytes = true;
        self
    }

    /// Only what kizuki shows: no memory, CPU, disk or thread lists. The
    /// command line is read anew whenever a process is refreshed, since
    /// `exec` replaces it without changing the PID.
    fn refresh_kind() -> ProcessRefreshKind {
        ProcessRefreshKind::nothing()
            .with_user(UpdateKind::Always)
            .with_cmd(UpdateKind::Always)
            .with_exe(if cfg!(target_os = "linux") {
                UpdateKind::Never
            } else {
                UpdateKind::OnlyIfNotSet
            })
    }

    /// Every process, refreshed completely.
    fn refresh_all(&mut self, fds: &Fds) -> Vec<RawProcess> {
        Self::refresh_sys_all(&mut self.sys);
        self.describe_all(fds)
    }

    /// sysinfo's view of every process, read anew.
    fn refresh_sys_all(sys: &mut System) {
        sys.refresh_processes_specifics(ProcessesToUpdate::All, true, Self::refresh_kind());
    }

    /// Every process sysinfo holds, described.
    fn describe_all(&mut self, fds: &Fds) -> Vec<RawProcess> {
        let mut out: Vec<RawProcess> = self
            .sys
            .processes()
            .iter()
            .filter_map(|(pid, p)| describe(&mut self.users, *pid, p, fds))
            .collect();
        out.sort_unstable_by_key(|p| p.pid);
        out
    }

    /// Linux: asks sysinfo only about processes that started or exited since
    /// the last sample; the rest are known. Executable links are checked
    /// every time, since a file can be deleted while its process runs.
    #[cfg(target_os = "linux")]
    /// `sys_fresh`: sysinfo was already refreshed for a complete pass
    /// during this sample.
    fn refresh_changed(
        &mut self,
        pids: &[(u32, u64)],
        fds: &Fds,
        sys_fresh: bool,
    ) -> Vec<RawProcess> {
        let full = self.samples.is_multiple_of(FULL_REFRESH_EVERY);
        if full {
            let all = if sys_fresh {
                self.describe_all(fds)
            } else {
                self.refresh_all(fds)
            };
            let described: HashMap<u32, &RawProcess> = all.iter().map(|p| (p.pid, p)).collect();
            self.known = pids
                .iter()
                .filter(|(_, marker)| *marker != 0)
                .map(|(pid, marker)| (*pid, (*marker, described.get(pid).map(|p| (*p).clone()))))
                .collect();
            return all;
        }
        let current: HashMap<u32, u64> = pids.iter().copied().collect();
        let mut ask: Vec<Pid> = Vec::new();
        self.known.retain(|pid, (marker, _)| {
            let same = current.get(pid) == Some(marker);
            if !same {
                ask.push(Pid::from_u32(*pid));
            }
            same
        });
        let fresh: Vec<u32> = pids
            .iter()
            .filter(|(pid, marker)| *marker != 0 && !self.known.contains_key(pid))
            .map(|(pid, _)| *pid)
            .collect();
        ask.extend(fresh.iter().map(|p| Pid::from_u32(*p)));
        if !ask.is_empty() {
            self.sys.refresh_processes_specifics(
                ProcessesToUpdate::Some(&ask),
                true,
                Self::refresh_kind(),
            );
        }
        for pid in fresh {
            let marker = current.get(&pid).copied().unwrap_or(0);
            let described = self
                .sys
                .process(Pid::from_u32(pid))
                .and_then(|p| describe(&mut self.users, Pid::from_u32(pid), p, fds));
            self.known.insert(pid, (marker, described));
        }
        let mut execed = Vec::new();
        let recheck_tor = self.samples.is_multiple_of(TOR_RECHECK_EVERY);
        let samples = self.samples;
        let active = self.active.take();
        let mut out: Vec<RawProcess> = self
            .known
            .values_mut()
            .filter_map(|(_, raw)| raw.as_mut())
            .map(|raw| {
                let (exe, deleted) = super::linux::exe_of(raw.pid);
                if exe.is_some() {
                    if exe != raw.exe && !deleted && !raw.exe_deleted {
                        // Same PID, new program: it called exec.
                        execed.push(raw.pid);
                    }
                    raw.exe = exe;
                    raw.exe_deleted = deleted;
                }
                let walk = (samples + u64::from(raw.pid)).is_multiple_of(FD_RECHECK_EVERY);
                // Capture saw it open a socket or start a program (always
                // true without capture): its standard streams are read.
                let busy = active.as_ref().is_none_or(|a| a.contains(&raw.pid));
                // Names and arguments change without a new PID (`exec`, a
                // program renaming itself): read them every sample.
                refresh_linux_details(raw, fds, !walk, walk || busy);
                // Tor under another name opens its data files once it runs;
                // look again now and then until they are seen.
                let look_tor = walk || if active.is_some() { busy } else { recheck_tor };
                if !raw.tor_data && look_tor {
                    raw.tor_data = super::linux::tor_data_of(raw.pid, fds, walk);
                }
                raw.clone()
            })
            .collect();
        // Described again next time, with the new name and command line.
        for pid in execed {
            self.known.remove(&pid);
        }
        out.sort_unstable_by_key(|p| p.pid);
        out
    }
}

/// Describes one process; `None` for kernel threads and threads, which are
/// not programs.
fn describe(users: &mut Users, pid: Pid, p: &sysinfo::Process, fds: &Fds) -> Option<RawProcess> {
    let pid_n = pid.as_u32();
    let parent = p.parent().map(|pp| pp.as_u32());
    #[cfg(target_os = "linux")]
    if super::linux::is_kernel_thread(pid_n, parent) {
        return None;
    }
    if p.thread_kind().is_some() {
        return None;
    }
    #[cfg(target_os = "linux")]
    let (exe, exe_deleted) = super::linux::exe_of(pid_n);
    #[cfg(not(target_os = "linux"))]
    let (exe, exe_deleted) = {
        let exe = p.exe().map(|e| e.to_path_buf());
        let deleted = exe.as_ref().is_some_and(|e| !e.exists());
        (exe, deleted)
    };
    let user = p.user_id().and_then(|uid| {
        if users.get_user_by_id(uid).is_none() {
            // An account created since start: reread the list.
            users.refresh();
        }
        users.get_user_by_id(uid).map(|u| u.name().to_string())
    });
    // sysinfo keeps the name from before an `exec`; the kernel's is current.
    #[cfg(target_os = "linux")]
    let name = super::linux::comm_of(pid_n).unwrap_or_else(|| escape::os_lossless(p.name()));
    #[cfg(not(target_os = "linux"))]
    let name = escape::os_lossless(p.name());
    let cmdline: Vec<String> = p.cmd().iter().map(|a| escape::os_lossless(a)).collect();
    #[allow(unused_mut)]
    let mut raw = RawProcess {
        pid: pid_n,
        parent,
        name,
        exe,
        exe_deleted,
        cmdline,
        uid: uid_number(p.user_id()),
        user,
        start_time: p.start_time(),
        ..RawProcess::default()
    };
    #[cfg(target_os = "linux")]
    {
        refresh_linux_details(&mut raw, fds, false, true);
        raw.tor_data = super::linux::tor_data_of(pid_n, fds, true);
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = fds;
        raw.script = script_from_args(&raw);
    }
    Some(raw)
}

/// What can change while a process runs, read again: its name, arguments,
/// the image's (device, inode), the script it runs and its standard streams.
/// `known_script`: the script found at the last sample is looked for only
/// where it was read from then (see `linux::script_again`); without
/// `streams` the standard streams stay as last read.
#[cfg(target_os = "linux")]
fn refresh_linux_details(raw: &mut RawProcess, fds: &Fds, known_script: bool, streams: bool) {
    use super::linux;
    let pid = raw.pid;
    if let Some(n) = linux::comm_of(pid) {
        raw.name = n;
    }
    if let Some(c) = linux::cmdline_of(pid) {
        raw.cmdline = c;
    }
    raw.exe_stamp = linux::stamp_of(std::path::Path::new(&format!("/proc/{pid}/exe")));
    let prev = raw.script.take().filter(|_| known_script);
    raw.script = raw.exe.as_deref().and_then(|exe| match &prev {
        Some(prev) => linux::script_again(pid, exe, &raw.cmdline, fds, prev),
        None => linux::script_with(pid, exe, &raw.cmdline, fds),
    });
    if streams {
        raw.std_sockets = linux::std_sockets(pid, fds);
    }
}

/// Elsewhere the script comes from the command line alone, when absolute.
#[cfg(not(target_os = "linux"))]
fn script_from_args(raw: &RawProcess) -> Option<crate::model::ScriptRun> {
    let exe = raw.exe.as_ref()?;
    let kind = super::script::interpreter_of(&exe.file_name()?.to_string_lossy())?;
    let arg = super::script::script_arg(kind, &raw.cmdline)?;
    let path = std::path::PathBuf::from(arg);
    if !path.is_absolute() {
        return None;
    }
    Some(crate::model::ScriptRun {
        deleted: !path.exists(),
        read_from: path.clone(),
        path,
        stamp: None,
    })
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
        bytes_received: None,
        bytes_sent: None,
        protocol,
        local,
        remote,
        state,
        pids: si.associated_pids.clone(),
        uid,
        inode,
        opened: None,
    }
}

impl Probe for NativeProbe {
    fn note_active(&mut self, pids: std::collections::HashSet<u32>) {
        #[cfg(target_os = "linux")]
        {
            self.active = Some(pids);
        }
        #[cfg(not(target_os = "linux"))]
        let _ = pids;
    }

    fn sample(&mut self) -> Result<RawSample, ProbeError> {
        let af = AddressFamilyFlags::IPV4 | AddressFamilyFlags::IPV6;
        let proto = ProtocolFlags::TCP | ProtocolFlags::UDP;

        // Sockets first, then owners, then processes: a process that starts
        // in between is then still listed for the sockets it owns.
        // TCP from one dump of both families (with the bytes when asked);
        // netstat2's asks once per family, and each walks every socket.
        #[cfg(target_os = "linux")]
        let mut sockets: Vec<RawSocket> = {
            let (mut tcp, rest) = match super::tcpinfo::tcp_sockets(self.tcp_bytes) {
                Ok(tcp) => (tcp, ProtocolFlags::UDP),
                Err(e) => {
                    log::debug!("TCP socket dump: {e}; asking per family");
                    (Vec::new(), proto)
                }
            };
            tcp.extend(
                netstat2::iterate_sockets_info_without_pids(af, rest)
                    .map_err(|e| ProbeError::Sockets(e.to_string()))?
                    .filter_map(|r| r.ok())
                    .map(|si| convert(&si)),
            );
            tcp
        };
        #[cfg(not(target_os = "linux"))]
        let mut sockets: Vec<RawSocket> = netstat2::get_sockets_info(af, proto)
            .map_err(|e| ProbeError::Sockets(e.to_string()))?
            .iter()
            .map(convert)
            .collect();

        #[cfg(target_os = "linux")]
        let (owners_complete, processes, mut special_sockets, stopped) = {
            let (pids, stopped) = super::linux::list_pids();
            // Other namespaces' tables are read on a thread while the
            // descriptor tables are read here (a full owner search reads
            // them all; an incremental one reads few, later).
            // A complete process refresh (sysinfo reads every
            // `/proc/PID`) runs meanwhile too: it needs no descriptors.
            // It starts after `list_pids`, as before, so every PID listed
            // there is in it unless it exited.
            let mut fds = Fds::default();
            let full_refresh = self.samples.is_multiple_of(FULL_REFRESH_EVERY);
            let mut sys_fresh = false;
            let extra = if self.owners.reads_all() {
                let sys = &mut self.sys;
                let (pids_ref, fds_ref, fresh) = (&pids, &mut fds, &mut sys_fresh);
                std::thread::scope(|scope| {
                    let netns = std::thread::Builder::new()
                        .name("kizuki-netns".into())
                        .spawn_scoped(scope, || super::linux::extra_sockets(pids_ref));
                    let procs = full_refresh
                        .then(|| {
                            std::thread::Builder::new()
                                .name("kizuki-procs".into())
                                .spawn_scoped(scope, || Self::refresh_sys_all(sys))
                        })
                        .and_then(Result::ok);
                    fds_ref.read_all(pids_ref);
                    *fresh = procs.is_some_and(|h| h.join().is_ok());
                    match netns {
                        Ok(h) => h
                            .join()
                            .unwrap_or_else(|_| super::linux::extra_sockets(pids_ref)),
                        Err(_) => super::linux::extra_sockets(pids_ref),
                    }
                })
            } else {
                super::linux::extra_sockets(&pids)
            };
            sockets.extend(extra);
            // Raw and packet sockets ride along in the owner search as
            // placeholders, then leave the table (they are not TCP or UDP).
            let special = super::linux::special_socket_inodes();
            let n = sockets.len();
            sockets.extend(special.iter().map(|(_, inode)| RawSocket {
                protocol: Protocol::Udp,
                local: SocketAddr::from(([0, 0, 0, 0], 0)),
                remote: None,
                state: SockState::Unknown,
                pids: Vec::new(),
                uid: None,
                inode: *inode,
                bytes_sent: None,
                bytes_received: None,
                opened: None,
            }));
            let complete = self.owners.attribute(&pids, &mut sockets, &mut fds);
            let special: Vec<crate::model::RawSpecialSocket> = sockets
                .drain(n..)
                .zip(special)
                .map(|(s, (family, inode))| crate::model::RawSpecialSocket {
                    family,
                    inode,
                    pids: s.pids,
                })
                .collect();
            (
                complete,
                self.refresh_changed(&pids, &fds, sys_fresh),
                special,
                stopped,
            )
        };
        #[cfg(not(target_os = "linux"))]
        let (owners_complete, processes, mut special_sockets, stopped) = (
            true,
            self.refresh_all(&()),
            Vec::<crate::model::RawSpecialSocket>::new(),
            std::collections::HashSet::<u32>::new(),
        );
        self.samples += 1;
        // Drop owners that vanished between the two reads (a PID that exited).
        let alive: HashMap<u32, ()> = processes.iter().map(|p| (p.pid, ())).collect();
        for s in &mut sockets {
            s.pids.retain(|pid| alive.contains_key(pid));
        }
        for s in &mut special_sockets {
            s.pids.retain(|pid| alive.contains_key(pid));
        }

        // Windows suspends threads, which no cheap call reports: nothing
        // is shown as suspended there rather than a guess.
        let suspended = processes
            .iter()
            .map(|p| p.pid)
            .filter(|pid| stopped.contains(pid))
            .collect();
        Ok(RawSample {
            suspended,
            ended: Vec::new(),
            exited: Vec::new(),
            processes,
            sockets,
            // As administrator every owner is readable; what stays unowned
            // then is not hidden from us (TIME_WAIT, other namespaces).
            complete: owners_complete || super::running_as_admin(),
            special_sockets,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A process that renames itself after start is seen under its new
    /// name and arguments at the next sample (they were read once before).
    #[cfg(target_os = "linux")]
    #[test]
    fn names_and_arguments_are_read_again_each_sample() {
        if !std::path::Path::new("/usr/bin/perl").exists() {
            eprintln!("skipping: needs perl");
            return;
        }
        let mut child = std::process::Command::new("/usr/bin/perl")
            .args(["-e", "sleep 1; $0 = 'tor'; sleep 20"])
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut probe = NativeProbe::new().unwrap();
        let find = |s: &RawSample| s.processes.iter().find(|p| p.pid == pid).cloned();
        let before = find(&probe.sample().unwrap()).expect("perl listed");
        std::thread::sleep(std::time::Duration::from_millis(1600));
        let after = find(&probe.sample().unwrap()).expect("still listed");
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(before.name, "perl");
        assert_eq!(after.name, "tor");
        assert_eq!(after.cmdline.first().map(String::as_str), Some("tor"));
        assert!(after.exe_stamp.is_some());
    }

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
        if crate::testing::under_wine() {
            eprintln!("skipping the owner check: Wine reports no socket owners");
        } else {
            assert_eq!(sock.pids, vec![me]);
        }
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
