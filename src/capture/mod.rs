//! Event capture: the kernel tells kizuki about every connect, accept,
//! send, receive and close of every socket (TCP, UDP, ICMP, raw, packet,
//! SCTP) and every exec and exit, as they happen. Polling the socket table
//! once a second misses a connection that lives 5 ms; capture does not.
//!
//! [`CaptureSource`] is the seam: [`open_native`] loads the eBPF programs
//! of `bpf/` (Linux, as root), [`FakeCapture`] replays events in tests.
//! [`CaptureProbe`] merges the events into the samples of a polling
//! [`crate::probe::Probe`], so the monitor sees short connections, their
//! owners (even after they exited) and their bytes.

#[cfg(target_os = "linux")]
mod ebpf;
mod fake;
mod merge;
#[cfg(target_os = "linux")]
mod wire;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use fake::FakeCapture;
pub use merge::CaptureProbe;

use crate::model::{Protocol, SockState};

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("event capture is not available on this system")]
    Unsupported,
    #[error("event capture needs administrator rights")]
    NotAdmin,
    #[error("the kernel refused the capture programs: {0}")]
    Load(String),
    #[error("could not read captured events: {0}")]
    Read(String),
}

/// Who started a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// This machine's program connected (or sent first).
    Outgoing,
    /// A program accepted a connection from elsewhere.
    Incoming,
    /// Already open when capture started, or a datagram received first.
    Unknown,
}

/// One socket's conversation with one peer.
///
/// For ICMP sockets the port is the echo identifier; for raw sockets it is
/// the IP protocol number; a packet socket has no addresses: `local` is
/// `0.0.0.0:<Ethernet protocol>` and `remote` is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// The kernel's socket (its cookie: an opaque number, never reused).
    pub id: u64,
    pub protocol: Protocol,
    pub local: SocketAddr,
    /// `None` while a connectionless socket has no peer yet.
    pub remote: Option<SocketAddr>,
    pub direction: Direction,
    /// TCP state as last seen; `None` for other protocols.
    pub state: Option<SockState>,
    /// Network namespace (inode of `/proc/PID/ns/net`).
    pub netns: u32,
    pub uid: u32,
    /// The kernel's process name when the flow began (15 bytes at most).
    pub comm: String,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

/// A program image started by `exec`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecInfo {
    pub parent: u32,
    pub uid: u32,
    pub comm: String,
    /// The executable's path as the kernel resolved it (symbolic links and
    /// relative names already followed); `None` when it was too deep.
    pub exe: Option<PathBuf>,
    /// The name given to `exec`, as given.
    pub filename: String,
    /// Start time, nanoseconds since boot (the kernel's boottime clock).
    pub start_boottime_ns: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    Exec(ExecInfo),
    Exit,
    /// A flow began: connect (`Outgoing`), accept (`Incoming`), or the
    /// first send or receive of a socket.
    Open(Flow),
    /// A flow ended (the socket was closed, or a connectionless socket
    /// moved on to another peer), with its final byte counts.
    Close(Flow),
    /// The current byte counts of a flow that is still open.
    Bytes(Flow),
}

/// Something that happened to process `pid` at `at_ns` (boottime clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub at_ns: u64,
    pub pid: u32,
    pub kind: EventKind,
}

/// A stream of capture events.
pub trait CaptureSource: Send {
    /// Every event since the last call, oldest first, followed by a
    /// [`EventKind::Bytes`] for each flow still open.
    fn drain(&mut self) -> Result<Vec<Event>, CaptureError>;

    /// Events lost so far (the kernel's buffer was full).
    fn lost(&self) -> u64 {
        0
    }

    /// A shared count of the events read so far, when the source keeps
    /// one: a reader can tell that something happened without draining.
    fn events_read(&self) -> Option<std::sync::Arc<std::sync::atomic::AtomicU64>> {
        None
    }
}

/// Loads the eBPF capture (Linux, as administrator).
pub fn open_native() -> Result<Box<dyn CaptureSource>, CaptureError> {
    #[cfg(target_os = "linux")]
    {
        if !crate::probe::running_as_admin() {
            return Err(CaptureError::NotAdmin);
        }
        Ok(Box::new(ebpf::EbpfCapture::open()?))
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err(CaptureError::Unsupported)
    }
}
