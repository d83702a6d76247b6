//! The client side of the guard: one small trait the window, tray and CLI
//! ask through, the real Unix-socket link, and a fake for tests above the
//! OS seam. (A Windows service could later answer the same API over a named
//! pipe behind the same trait.)

// The socket half is Unix-only until a Windows service answers.
#![cfg_attr(not(unix), allow(dead_code, unused_imports))]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::api::{
    API_VERSION, Authority, BlockStatus, DEFAULT_SOCKET, Event, ExecCatch, GuardStatus, MAX_LINE,
    Refusal, Reply, Request, SOCKET_ENV,
};

/// Why the guard could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// No guard answers at this socket (not installed, not running).
    #[error("no guard answers at {}", .socket.display())]
    NotRunning { socket: PathBuf },
    #[error("talking to the guard failed: {0}")]
    Io(#[from] io::Error),
    /// The guard answered something this client does not understand.
    #[error("the guard's answer was not understood: {0}")]
    Protocol(String),
}

/// A way to ask the guard.
pub trait GuardLink: Send {
    fn call(&mut self, req: &Request) -> Result<Reply, LinkError>;

    /// The state the guard reads back from the kernel.
    fn status(&mut self) -> Result<GuardStatus, LinkError> {
        match self.call(&Request::Status)? {
            Reply::Ok { status } => Ok(status),
            other => other
                .status()
                .cloned()
                .ok_or_else(|| LinkError::Protocol(format!("status answered {other:?}"))),
        }
    }
}

/// The socket named by `KIZUKI_GUARD_SOCKET`, else the installed default.
pub fn socket_path() -> PathBuf {
    std::env::var_os(SOCKET_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))
}

/// How long a client waits for an answer. Changing enforcement can wait
/// for a person to type a password.
const REPLY_TIMEOUT: Duration = Duration::from_secs(300);

/// Reads one line of at most [`MAX_LINE`] bytes (`None` at end of stream).
pub fn read_line(r: &mut impl BufRead) -> io::Result<Option<String>> {
    read_line_max(r, MAX_LINE)
}

/// Reads one line of at most `max` bytes (`None` at end of stream).
pub fn read_line_max(r: &mut impl BufRead, max: usize) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = r.take(max as u64).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "line too long or cut short",
        ));
    }
    buf.pop();
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "line is not UTF-8"))
}

/// The real guard, over its Unix socket.
#[derive(Debug, Clone)]
pub struct SocketLink {
    socket: PathBuf,
    reply_timeout: Duration,
}

impl SocketLink {
    pub fn new(socket: PathBuf) -> Self {
        SocketLink {
            socket,
            reply_timeout: REPLY_TIMEOUT,
        }
    }

    /// Waits at most `t` for each answer: for reads that no person has to
    /// approve, so a stuck guard cannot hold the window.
    pub fn with_reply_timeout(mut self, t: Duration) -> Self {
        self.reply_timeout = t;
        self
    }

    /// The guard named by the environment or the installed default.
    pub fn from_env() -> Self {
        Self::new(socket_path())
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    #[cfg(unix)]
    pub(crate) fn connect(&self) -> Result<std::os::unix::net::UnixStream, LinkError> {
        match std::os::unix::net::UnixStream::connect(&self.socket) {
            Ok(s) => {
                check_peer(&s, &self.socket)?;
                Ok(s)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                ) =>
            {
                Err(LinkError::NotRunning {
                    socket: self.socket.clone(),
                })
            }
            Err(e) => Err(LinkError::Io(e)),
        }
    }

    /// Subscribes: an iterator of state changes until the guard goes away.
    #[cfg(unix)]
    pub fn subscribe(&self) -> Result<impl Iterator<Item = Result<Event, LinkError>>, LinkError> {
        let mut stream = self.connect()?;
        send(&mut stream, &Request::Subscribe)?;
        let mut reader = BufReader::new(stream);
        Ok(std::iter::from_fn(move || match read_line(&mut reader) {
            Ok(Some(line)) => Some(
                serde_json::from_str::<Event>(&line)
                    .map_err(|e| LinkError::Protocol(e.to_string())),
            ),
            Ok(None) => None,
            Err(e) => Some(Err(LinkError::Io(e))),
        }))
    }
}

/// Only root can be the guard: a program of the user listening at a socket
/// path it managed to point us at must not be believed. Debug builds (the
/// tests' fake guards) also accept a guard of the user's own uid.
#[cfg(unix)]
fn check_peer(s: &std::os::unix::net::UnixStream, socket: &Path) -> Result<(), LinkError> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    let cred = getsockopt(s, PeerCredentials).map_err(|e| LinkError::Io(e.into()))?;
    let own = nix::unistd::geteuid().as_raw();
    if cred.uid() == 0 || (cfg!(debug_assertions) && cred.uid() == own) {
        Ok(())
    } else {
        Err(LinkError::Protocol(format!(
            "the program behind {} runs as uid {}, not root: it is not kizuki's guard",
            socket.display(),
            cred.uid()
        )))
    }
}

pub(crate) fn send(w: &mut impl Write, req: &Request) -> Result<(), LinkError> {
    let mut line = serde_json::to_vec(req).map_err(|e| LinkError::Protocol(e.to_string()))?;
    line.push(b'\n');
    w.write_all(&line)?;
    w.flush()?;
    Ok(())
}

impl GuardLink for SocketLink {
    #[cfg(unix)]
    fn call(&mut self, req: &Request) -> Result<Reply, LinkError> {
        let mut stream = self.connect()?;
        stream.set_read_timeout(Some(self.reply_timeout))?;
        send(&mut stream, req)?;
        let mut reader = BufReader::new(stream);
        let line = read_line(&mut reader)?.ok_or_else(|| {
            LinkError::Protocol("the guard closed the connection without answering".into())
        })?;
        let reply: Reply =
            serde_json::from_str(&line).map_err(|e| LinkError::Protocol(e.to_string()))?;
        if let Some(s) = reply.status()
            && s.api_version != API_VERSION
        {
            return Err(LinkError::Protocol(format!(
                "guard speaks API version {}, this client {API_VERSION}",
                s.api_version
            )));
        }
        Ok(reply)
    }

    #[cfg(not(unix))]
    fn call(&mut self, _req: &Request) -> Result<Reply, LinkError> {
        Err(LinkError::NotRunning {
            socket: self.socket.clone(),
        })
    }
}

/// What the fake guard holds and how it misbehaves.
#[derive(Debug, Clone)]
pub struct FakeState {
    pub status: GuardStatus,
    /// Refuse every changing request with this reason.
    pub refuse: Option<Refusal>,
    /// Fail every changing request with this detail (the state stays).
    pub fail: Option<String>,
    /// Answer nothing at all, as when no guard is installed.
    pub absent: bool,
    /// Every request, in order.
    pub requests: Vec<Request>,
}

/// A guard in memory for tests above the OS seam: it does what a guard
/// would do to its state, or refuses/fails as told. Clones share state.
#[derive(Debug, Clone)]
pub struct FakeGuard(pub Arc<Mutex<FakeState>>);

impl Default for FakeGuard {
    fn default() -> Self {
        FakeGuard(Arc::new(Mutex::new(FakeState {
            status: GuardStatus {
                api_version: API_VERSION,
                panic: false,
                table: false,
                exec_catch: ExecCatch::Fanotify,
                blocked: Vec::new(),
                problems: Vec::new(),
            },
            refuse: None,
            fail: None,
            absent: false,
            requests: Vec::new(),
        })))
    }
}

impl FakeGuard {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl GuardLink for FakeGuard {
    fn call(&mut self, req: &Request) -> Result<Reply, LinkError> {
        let mut st = self.lock();
        st.requests.push(req.clone());
        if st.absent {
            return Err(LinkError::NotRunning {
                socket: PathBuf::from(DEFAULT_SOCKET),
            });
        }
        if req.changes_enforcement() {
            if let Some(reason) = st.refuse {
                return Ok(Reply::Refused {
                    reason,
                    detail: "refused by the fake guard".into(),
                    status: Some(st.status.clone()),
                });
            }
            if let Some(detail) = st.fail.clone() {
                return Ok(Reply::Failed {
                    detail,
                    status: Some(st.status.clone()),
                });
            }
        }
        let s = &mut st.status;
        match req {
            Request::Status | Request::Subscribe => {}
            Request::History { .. } | Request::HistoryVerify { .. } => {
                return Ok(Reply::Refused {
                    reason: Refusal::BadRequest,
                    detail: "the fake guard keeps no journal".into(),
                    status: None,
                });
            }
            Request::Sample { .. } => {
                return Ok(Reply::Failed {
                    detail: "the fake guard has no live view".into(),
                    status: None,
                });
            }
            Request::Block { exe } => {
                if s.block(exe).is_none() {
                    s.blocked.push(BlockStatus {
                        exe: exe.clone(),
                        sha256: "0".repeat(64),
                        since: "2026-11-30T00:00:00Z".into(),
                        by_uid: 1000,
                        authority: Authority::Polkit,
                        enforced: true,
                        pids_blocked: Vec::new(),
                        pids_outside: Vec::new(),
                    });
                }
                s.table = true;
            }
            Request::Unblock { exe } => {
                if s.block(exe).is_none() {
                    return Ok(Reply::Refused {
                        reason: Refusal::NotBlocked,
                        detail: String::new(),
                        status: Some(s.clone()),
                    });
                }
                s.blocked.retain(|b| &b.exe != exe);
            }
            Request::Panic => {
                s.panic = true;
                s.table = true;
            }
            Request::Resume => s.panic = false,
            Request::Clear => {
                s.panic = false;
                s.blocked.clear();
                s.table = false;
            }
        }
        s.table = s.panic || !s.blocked.is_empty();
        Ok(Reply::Ok { status: s.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fake_refuses_without_changing_state() {
        let mut g = FakeGuard::default();
        g.lock().refuse = Some(Refusal::NotAuthorized);
        let r = g
            .call(&Request::Block {
                exe: "/tmp/x".into(),
            })
            .unwrap();
        assert!(matches!(r, Reply::Refused { .. }));
        assert!(!g.status().unwrap().blocks(Path::new("/tmp/x")));
        g.lock().refuse = None;
        g.call(&Request::Block {
            exe: "/tmp/x".into(),
        })
        .unwrap();
        assert!(g.status().unwrap().blocks(Path::new("/tmp/x")));
    }

    #[test]
    fn long_lines_are_refused() {
        let long = vec![b'a'; MAX_LINE + 10];
        let mut r = BufReader::new(&long[..]);
        assert!(read_line(&mut r).is_err());
        let mut ok = BufReader::new(&b"{}\nrest"[..]);
        assert_eq!(read_line(&mut ok).unwrap().as_deref(), Some("{}"));
        assert!(read_line(&mut ok).is_err(), "no newline: cut short");
    }

    #[test]
    fn no_guard_is_a_clear_error() {
        let mut l = SocketLink::new(PathBuf::from("/nonexistent/kizuki/guard.sock"));
        assert!(matches!(
            l.call(&Request::Status),
            Err(LinkError::NotRunning { .. })
        ));
    }
}
