//! Plain data shared by every layer: what the probe saw, what the monitor
//! tracked, and what the UI and CLI show. No behaviour beyond small helpers.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Transport protocol of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    /// ICMP "ping" sockets (unprivileged ICMP echo).
    Icmp,
    /// Raw IP sockets (any IP protocol, built by the program itself).
    Raw,
    /// `AF_PACKET` sockets: whole frames, below IP.
    Packet,
    Sctp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
            Protocol::Raw => "raw",
            Protocol::Packet => "packet",
            Protocol::Sctp => "sctp",
        }
    }

    /// The protocol named as [`Protocol::as_str`] names it.
    pub fn parse(s: &str) -> Option<Protocol> {
        [
            Protocol::Tcp,
            Protocol::Udp,
            Protocol::Icmp,
            Protocol::Raw,
            Protocol::Packet,
            Protocol::Sctp,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Socket state, named as `ss` and the contract name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SockState {
    Established,
    SynSent,
    SynRecv,
    FinWait1,
    FinWait2,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    Closing,
    /// A UDP socket bound without a peer (UDP has no connection state).
    Unconn,
    Unknown,
}

impl SockState {
    /// The Linux kernel's TCP state number (`/proc/net/tcp`, the
    /// `inet_sock_set_state` tracepoint).
    pub fn from_linux_tcp(n: u8) -> SockState {
        match n {
            1 => SockState::Established,
            2 => SockState::SynSent,
            3 => SockState::SynRecv,
            4 => SockState::FinWait1,
            5 => SockState::FinWait2,
            6 => SockState::TimeWait,
            7 => SockState::Close,
            8 => SockState::CloseWait,
            9 => SockState::LastAck,
            10 => SockState::Listen,
            11 => SockState::Closing,
            _ => SockState::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SockState::Established => "ESTABLISHED",
            SockState::SynSent => "SYN_SENT",
            SockState::SynRecv => "SYN_RECV",
            SockState::FinWait1 => "FIN_WAIT1",
            SockState::FinWait2 => "FIN_WAIT2",
            SockState::TimeWait => "TIME_WAIT",
            SockState::Close => "CLOSE",
            SockState::CloseWait => "CLOSE_WAIT",
            SockState::LastAck => "LAST_ACK",
            SockState::Listen => "LISTEN",
            SockState::Closing => "CLOSING",
            SockState::Unconn => "UNCONN",
            SockState::Unknown => "UNKNOWN",
        }
    }
}

impl fmt::Display for SockState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One process as the probe saw it. Strings are kept as the OS gave them
/// (lossy only where the OS API itself is); escaping happens at output.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProcess {
    pub pid: u32,
    pub parent: Option<u32>,
    pub name: String,
    /// The executable's path without the kernel's " (deleted)" suffix.
    #[serde(with = "crate::pathser::option")]
    pub exe: Option<PathBuf>,
    pub exe_deleted: bool,
    pub cmdline: Vec<String>,
    pub uid: Option<u32>,
    pub user: Option<String>,
    /// Seconds since the Unix epoch.
    pub start_time: u64,
    /// (device, inode) of the running image when the probe looked; a change
    /// means the process called `exec` (or the file was swapped) and its
    /// SHA-256 must be taken again. `None` when it cannot be read.
    pub exe_stamp: Option<(u64, u64)>,
    /// The script an interpreter runs (`bash /tmp/update.sh`), when the
    /// executable is a known interpreter; see [`ScriptRun`].
    pub script: Option<ScriptRun>,
    /// Socket inodes on descriptors 0, 1 and 2 (stdin, stdout, stderr).
    pub std_sockets: Vec<u64>,
    /// Files the process holds open that name Tor's data directory
    /// (`cached-consensus`, …) under its working directory or descriptors.
    pub tor_data: bool,
}

/// A script run by an interpreter: the program a user should judge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptRun {
    /// The script's path as the interpreter was given it, made absolute.
    #[serde(with = "crate::pathser")]
    pub path: PathBuf,
    /// Where to read the script from: an open descriptor
    /// (`/proc/PID/fd/255` for bash) when there is one, else `path`.
    #[serde(with = "crate::pathser")]
    pub read_from: PathBuf,
    /// The script file is gone or is no longer the one that runs.
    pub deleted: bool,
    /// (device, inode) of the script when the probe looked.
    pub stamp: Option<(u64, u64)>,
}

/// A raw (`SOCK_RAW`) or packet (`AF_PACKET`) socket and who holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RawSpecialSocket {
    /// `"raw"`, `"raw6"` or `"packet"`.
    pub family: &'static str,
    pub inode: u64,
    pub pids: Vec<u32>,
}

/// One socket from the kernel's table, with the PIDs that hold it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSocket {
    pub protocol: Protocol,
    pub local: SocketAddr,
    /// `None` for listening TCP sockets and unconnected UDP sockets.
    pub remote: Option<SocketAddr>,
    pub state: SockState,
    pub pids: Vec<u32>,
    /// Owning user as the kernel reports it (Linux), even when PIDs are hidden.
    pub uid: Option<u32>,
    /// Kernel socket inode (Linux); 0 when the socket is no longer owned.
    pub inode: u64,
    /// Bytes the socket's program sent and received, when known (event
    /// capture); `None` when nobody counted.
    pub bytes_sent: Option<u64>,
    pub bytes_received: Option<u64>,
    /// When the connection began, where event capture saw it begin (a
    /// beacon's rhythm is read from these, not from sampling times).
    #[serde(default)]
    pub opened: Option<SystemTime>,
}

/// A special socket as read back: its family must be one of the known
/// names.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecialSocketWire {
    family: String,
    inode: u64,
    pids: Vec<u32>,
}

impl<'de> Deserialize<'de> for RawSpecialSocket {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = SpecialSocketWire::deserialize(d)?;
        let family = ["raw", "raw6", "packet"]
            .into_iter()
            .find(|f| *f == w.family)
            .ok_or_else(|| serde::de::Error::custom("unknown special socket family"))?;
        Ok(RawSpecialSocket {
            family,
            inode: w.inode,
            pids: w.pids,
        })
    }
}

/// Everything one probe call returns. The guard sends it to its clients
/// (`guard::live`), so it is serde data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSample {
    pub processes: Vec<RawProcess>,
    pub sockets: Vec<RawSocket>,
    /// False when some owners could not be seen (not running as administrator).
    pub complete: bool,
    /// Raw and packet sockets (Linux), for the `raw-socket` finding.
    pub special_sockets: Vec<RawSpecialSocket>,
    /// PIDs the OS reports as stopped (suspended), where it can tell.
    pub suspended: Vec<u32>,
    /// Processes listed above that had already exited when the sample was
    /// taken (event capture saw them): shown, but not as running.
    pub exited: Vec<u32>,
    /// Sockets that closed since the last sample without being in it
    /// (event capture): recorded as sessions that already ended.
    pub ended: Vec<RawSocket>,
}

/// How much a finding matters to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

/// The fixed vocabulary of findings (see docs/CLI.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    NewProgram,
    ExeDeleted,
    ExeChanged,
    RunsFromTemp,
    Listening,
    Tor,
    Beaconing,
    BlockedRunning,
    RemoteShell,
    RawSocket,
    Disguised,
}

impl FindingKind {
    pub const ALL: [FindingKind; 11] = [
        FindingKind::NewProgram,
        FindingKind::ExeDeleted,
        FindingKind::ExeChanged,
        FindingKind::RunsFromTemp,
        FindingKind::Listening,
        FindingKind::Tor,
        FindingKind::Beaconing,
        FindingKind::BlockedRunning,
        FindingKind::RemoteShell,
        FindingKind::RawSocket,
        FindingKind::Disguised,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::NewProgram => "new-program",
            FindingKind::ExeDeleted => "exe-deleted",
            FindingKind::ExeChanged => "exe-changed",
            FindingKind::RunsFromTemp => "runs-from-temp",
            FindingKind::Listening => "listening",
            FindingKind::Tor => "tor",
            FindingKind::Beaconing => "beaconing",
            FindingKind::BlockedRunning => "blocked-running",
            FindingKind::RemoteShell => "remote-shell",
            FindingKind::RawSocket => "raw-socket",
            FindingKind::Disguised => "disguised",
        }
    }
}

/// What a detector noticed about one program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: Severity,
    /// One sentence a home user understands, in the current language.
    pub summary: String,
    /// Machine-readable facts behind the finding (endpoint, counts, …).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub evidence: serde_json::Map<String, serde_json::Value>,
    pub first_raised: SystemTime,
}

/// The user's decision about a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mark {
    Trusted,
    Unknown,
    Blocked,
}

impl Mark {
    pub fn as_str(self) -> &'static str {
        match self {
            Mark::Trusted => "trusted",
            Mark::Unknown => "unknown",
            Mark::Blocked => "blocked",
        }
    }
}

/// Groups processes into programs: by executable when it is known, else by
/// name (other users' processes without administrator rights, kernel helpers).
/// A script run by a known interpreter is its own program, keyed by the
/// script with the interpreter beside it: `bash /tmp/update.sh` is not
/// `/usr/bin/bash`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProgramKey {
    Exe(PathBuf),
    Name(String),
    Script {
        script: PathBuf,
        interpreter: PathBuf,
    },
}

impl ProgramKey {
    /// The file that is the program: the executable, or the script.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            ProgramKey::Exe(p) => Some(p),
            ProgramKey::Script { script, .. } => Some(script),
            ProgramKey::Name(_) => None,
        }
    }
}

/// A connection session: one socket of one process, from first to last sight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub pid: Option<u32>,
    pub protocol: Protocol,
    pub local: SocketAddr,
    pub remote: Option<SocketAddr>,
    pub state: SockState,
    pub first_seen: SystemTime,
    pub last_seen: SystemTime,
    /// Still present in the latest sample.
    pub live: bool,
    /// Owning user from the kernel, for sockets whose process is hidden.
    pub uid: Option<u32>,
    /// The remote's host name as the machine learnt it (DNS, SNI, Host),
    /// when kizuki saw it; never looked up.
    /// Shared: snapshots copy every connection each tick.
    pub remote_name: Option<Arc<crate::names::RemoteName>>,
    /// Bytes sent and received, when counted (event capture).
    pub bytes_sent: Option<u64>,
    pub bytes_received: Option<u64>,
}

/// One process of a program, for the details view and reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: u32,
    pub parent: Option<u32>,
    pub name: String,
    pub cmdline: Vec<String>,
    pub user: Option<String>,
    pub uid: Option<u32>,
    pub start_time: u64,
    /// Still running at the latest sample.
    pub alive: bool,
    /// The image was deleted or replaced while this process runs.
    pub exe_deleted: bool,
    pub sha256: Option<String>,
}

/// A program: every process that runs the same executable, or the same
/// script under an interpreter ([`ProgramKey::Script`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    pub key: ProgramKey,
    pub name: String,
    /// The file that is the program: the executable, or for a script
    /// program the script (the interpreter is in the key). Location,
    /// baseline, marks and reports all judge this file.
    pub exe: Option<PathBuf>,
    /// That file is gone or replaced while the program runs.
    pub exe_deleted: bool,
    /// SHA-256 of that file (of the script, for a script program).
    pub sha256: Option<String>,
    pub processes: Vec<ProcessInfo>,
    pub connections: Vec<Connection>,
    pub findings: Vec<Finding>,
    pub mark: Option<Mark>,
    /// A mark the user gave an earlier version of this executable (another
    /// SHA-256 at the same path). It does not apply until the user decides
    /// again; analysis reports the change.
    pub stale_mark: Option<Mark>,
    /// When kizuki first saw this program (this run).
    pub first_seen: SystemTime,
}

impl Program {
    pub fn pids(&self) -> Vec<u32> {
        self.processes.iter().map(|p| p.pid).collect()
    }

    /// The user running it; several are joined with commas.
    pub fn user(&self) -> Option<String> {
        let mut users: Vec<&str> = self
            .processes
            .iter()
            .filter_map(|p| p.user.as_deref())
            .collect();
        users.sort_unstable();
        users.dedup();
        if users.is_empty() {
            None
        } else {
            Some(users.join(","))
        }
    }

    pub fn live_connections(&self) -> impl Iterator<Item = &Connection> {
        self.connections.iter().filter(|c| c.live)
    }

    pub fn uses_network(&self) -> bool {
        self.connections.iter().any(|c| c.live)
    }

    /// The interpreter that runs this program's script, for a script
    /// program (whose `exe` is then the script).
    pub fn interpreter(&self) -> Option<&std::path::Path> {
        match &self.key {
            ProgramKey::Script { interpreter, .. } => Some(interpreter),
            _ => None,
        }
    }

    /// The script this program is, when an interpreter runs it.
    pub fn script(&self) -> Option<&std::path::Path> {
        match &self.key {
            ProgramKey::Script { script, .. } => Some(script),
            _ => None,
        }
    }

    /// The most serious finding, if any.
    pub fn top_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

/// An immutable picture of the machine, published by the monitor.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Increases by one per published snapshot; the UI drops older ones.
    pub generation: u64,
    pub taken_at: SystemTime,
    /// When the monitor's window began (for `watch`).
    pub since: SystemTime,
    pub interval: std::time::Duration,
    pub programs: Vec<Program>,
    /// Sockets whose owning process could not be seen (other users without
    /// administrator rights, or sockets in TIME_WAIT that no process holds).
    pub unattributed: Vec<Connection>,
    pub complete: bool,
    /// Findings raised for the first time in this snapshot (program, kind),
    /// for notifications and the journal; a finding that stays raised is
    /// not listed again.
    pub newly_raised: Vec<(ProgramKey, FindingKind)>,
    /// PIDs the OS reported as stopped (suspended) at this sample: what
    /// the window shows as 一時停止中, never what was only asked for.
    pub suspended: Vec<u32>,
    /// How connections were seen: every one (event capture) or by
    /// sampling at the interval.
    pub capture_mode: CaptureMode,
}

/// How connections are seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptureMode {
    /// Looking at the socket table at each interval: a connection shorter
    /// than the interval can be missed, and bytes are not counted.
    #[default]
    Polling,
    /// The kernel reports every connect, accept, send, receive, close,
    /// exec and exit (eBPF): nothing is missed, bytes are counted.
    Ebpf,
    /// The guard (root) captures every event with eBPF and reads names;
    /// this client reads its live state (`guard-ebpf`).
    #[serde(rename = "guard-ebpf")]
    GuardEbpf,
    /// The guard answers but its capture could not load: it polls at its
    /// interval, as a client would, for everyone (`guard-polling`).
    #[serde(rename = "guard-polling")]
    GuardPolling,
}

impl CaptureMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CaptureMode::Polling => "polling",
            CaptureMode::Ebpf => "ebpf",
            CaptureMode::GuardEbpf => "guard-ebpf",
            CaptureMode::GuardPolling => "guard-polling",
        }
    }
}

impl Snapshot {
    pub fn empty() -> Self {
        Snapshot {
            generation: 0,
            taken_at: SystemTime::UNIX_EPOCH,
            since: SystemTime::UNIX_EPOCH,
            interval: std::time::Duration::from_secs(1),
            programs: Vec::new(),
            unattributed: Vec::new(),
            complete: true,
            newly_raised: Vec::new(),
            suspended: Vec::new(),
            capture_mode: CaptureMode::Polling,
        }
    }

    pub fn program(&self, key: &ProgramKey) -> Option<&Program> {
        self.programs.iter().find(|p| &p.key == key)
    }
}

pub type SharedSnapshot = Arc<Snapshot>;
