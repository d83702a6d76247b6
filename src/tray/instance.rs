//! One kizuki per user and data folder: the first instance listens on a
//! Unix domain socket (in `$XDG_RUNTIME_DIR`, else the data folder); a
//! second launch connects, asks it to show its window, and exits. Local
//! socket only: nothing touches the network.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The message a second launch sends.
#[cfg(unix)]
const SHOW: &str = "show";

/// Where the socket of `data_dir` lives: one per data folder, since two
/// instances on one folder would fight over its files.
pub fn socket_path(runtime_dir: Option<&Path>, data_dir: Option<&Path>) -> Option<PathBuf> {
    let id = match data_dir {
        Some(d) => {
            let digest = Sha256::digest(crate::escape::os_lossless(d.as_os_str()).as_bytes());
            digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
        }
        None => "default".to_string(),
    };
    let name = format!("kizuki-{id}.sock");
    match (runtime_dir, data_dir) {
        (Some(r), _) if r.is_dir() => Some(r.join(name)),
        (_, Some(d)) => Some(d.join("kizuki.sock")),
        _ => None,
    }
}

/// `$XDG_RUNTIME_DIR`, when set.
pub fn runtime_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

#[cfg(unix)]
pub use unix::{Claim, Guard, Listener, claim};

#[cfg(unix)]
mod unix {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::os::unix::fs::FileTypeExt;
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::SHOW;
    use crate::tray::{EventSink, TrayEvent};

    /// The outcome of trying to be the one instance.
    pub enum Claim {
        /// This process is the first: it keeps the socket.
        Primary(Listener),
        /// Another instance runs and was asked to show its window.
        Secondary,
    }

    /// The bound socket, not yet answering.
    pub struct Listener {
        listener: UnixListener,
        path: PathBuf,
    }

    /// Answers second launches on a thread (`kizuki-instance`) until
    /// dropped; then the socket file is removed.
    pub struct Guard {
        path: PathBuf,
        stop: Arc<AtomicBool>,
    }

    const TIMEOUT: Duration = Duration::from_secs(2);

    /// Becomes the one instance at `path`, or asks the running one to show
    /// itself.
    pub fn claim(path: &Path) -> std::io::Result<Claim> {
        for _ in 0..2 {
            match UnixStream::connect(path) {
                Ok(stream) => {
                    ask_to_show(stream)?;
                    return Ok(Claim::Secondary);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
                    ) =>
                {
                    // Left behind by an instance that crashed: only ever
                    // remove a socket, never another kind of file.
                    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
                        std::fs::remove_file(path)?;
                    }
                }
                Err(e) => return Err(e),
            }
            match UnixListener::bind(path) {
                Ok(listener) => {
                    return Ok(Claim::Primary(Listener {
                        listener,
                        path: path.to_path_buf(),
                    }));
                }
                // Another instance bound it between our two steps: ask it.
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "another kizuki is starting",
        ))
    }

    fn ask_to_show(mut stream: UnixStream) -> std::io::Result<()> {
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        stream.write_all(format!("{SHOW}\n").as_bytes())?;
        let mut reply = String::new();
        // The reply only confirms; a running instance that is busy may
        // still show its window, so a timeout is not an error here.
        let _ = stream.take(16).read_to_string(&mut reply);
        Ok(())
    }

    impl Listener {
        /// Starts answering: each "show" becomes [`TrayEvent::Open`].
        pub fn spawn(self, events: EventSink) -> std::io::Result<Guard> {
            let stop = Arc::new(AtomicBool::new(false));
            let stop_thread = stop.clone();
            let Listener { listener, path } = self;
            std::thread::Builder::new()
                .name("kizuki-instance".into())
                .spawn(move || {
                    for stream in listener.incoming() {
                        if stop_thread.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(stream) = stream else { continue };
                        if answer(stream) {
                            events.send(TrayEvent::Open);
                        }
                    }
                })?;
            Ok(Guard { path, stop })
        }
    }

    /// Reads one short line; true when it asked to show the window.
    fn answer(mut stream: UnixStream) -> bool {
        if stream.set_read_timeout(Some(TIMEOUT)).is_err() {
            return false;
        }
        let mut line = String::new();
        let read = BufReader::new((&stream).take(64)).read_line(&mut line);
        let show = read.is_ok() && line.trim() == SHOW;
        if show {
            let _ = stream.write_all(b"ok\n");
        }
        show
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            // Wake the accepting thread so it sees the stop.
            let _ = UnixStream::connect(&self.path);
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The name of the Windows event a second launch signals: per user
/// session (`Local\`) and per data folder, like the socket on Unix.
pub fn event_name(path: &Path) -> String {
    let digest = Sha256::digest(crate::escape::os_lossless(path.as_os_str()).to_lowercase());
    let id: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!(r"Local\jp.kizuki.Kizuki.show.{id}")
}

#[cfg(windows)]
pub use windows::{Claim, Guard, Listener, claim};

#[cfg(windows)]
mod windows {
    use std::path::Path;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use crate::platform::win::NamedEvent;
    use crate::tray::{EventSink, TrayEvent};

    /// The outcome of trying to be the one instance.
    pub enum Claim {
        /// This process made the event first and keeps it.
        Primary(Listener),
        /// Another instance runs and was asked to show its window.
        Secondary,
    }

    /// The event, not yet waited on.
    pub struct Listener {
        event: Arc<NamedEvent>,
    }

    /// Answers second launches on a thread (`kizuki-instance`) until
    /// dropped. The event goes with the last handle, so a crashed
    /// instance leaves nothing stale behind.
    pub struct Guard {
        event: Arc<NamedEvent>,
        stop: Arc<AtomicBool>,
    }

    /// Becomes the one instance for `path`, or asks the running one to
    /// show itself.
    pub fn claim(path: &Path) -> std::io::Result<Claim> {
        let (event, existed) = NamedEvent::create(&super::event_name(path))?;
        if existed {
            event.set()?;
            return Ok(Claim::Secondary);
        }
        Ok(Claim::Primary(Listener {
            event: Arc::new(event),
        }))
    }

    impl Listener {
        pub fn spawn(self, events: EventSink) -> std::io::Result<Guard> {
            let stop = Arc::new(AtomicBool::new(false));
            let (event, flag) = (self.event.clone(), stop.clone());
            std::thread::Builder::new()
                .name("kizuki-instance".into())
                .spawn(move || {
                    while event.wait().is_ok() && !flag.load(Ordering::SeqCst) {
                        events.send(TrayEvent::Open);
                    }
                })?;
            Ok(Guard {
                event: self.event,
                stop,
            })
        }
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            // Wake the waiting thread so it sees the stop.
            let _ = self.event.set();
        }
    }
}

#[cfg(not(any(unix, windows)))]
pub use other::{Claim, Guard, Listener, claim};

#[cfg(not(any(unix, windows)))]
mod other {
    use std::path::Path;

    use crate::tray::EventSink;

    /// Without a local channel every launch is its own instance.
    pub enum Claim {
        Primary(Listener),
        Secondary,
    }

    pub struct Listener;
    pub struct Guard;

    pub fn claim(_path: &Path) -> std::io::Result<Claim> {
        Ok(Claim::Primary(Listener))
    }

    impl Listener {
        pub fn spawn(self, _events: EventSink) -> std::io::Result<Guard> {
            Ok(Guard)
        }
    }
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn windows_event_names_are_per_folder_and_ignore_case() {
        let a = event_name(Path::new(r"C:\Users\Taro\AppData\Roaming\kizuki\data"));
        let b = event_name(Path::new(r"c:\users\taro\appdata\roaming\kizuki\data"));
        let c = event_name(Path::new(r"D:\portable\kizuki-data"));
        assert_eq!(a, b, "Windows paths are case-insensitive");
        assert_ne!(a, c);
        assert!(a.starts_with(r"Local\jp.kizuki.Kizuki.show."));
        // Kernel object names may not contain backslashes after the prefix.
        assert!(!a["Local\\".len()..].contains('\\'), "{a}");
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::tray::{EventSink, TrayEvent};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_second_launch_asks_the_first_to_show_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = socket_path(Some(dir.path()), Some(Path::new("/home/a/data"))).unwrap();
        let Claim::Primary(listener) = claim(&path).unwrap() else {
            panic!("the first claim is primary");
        };
        let (sink, rx) = EventSink::new(Arc::new(|| {}));
        let guard = listener.spawn(sink).unwrap();
        assert!(matches!(claim(&path).unwrap(), Claim::Secondary));
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)).unwrap(),
            TrayEvent::Open
        );
        drop(guard);
        assert!(!path.exists(), "the socket goes with the instance");
        assert!(matches!(claim(&path).unwrap(), Claim::Primary(_)));
    }

    #[test]
    fn a_stale_socket_is_taken_over_and_other_files_are_not_touched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kizuki-x.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(matches!(claim(&path).unwrap(), Claim::Primary(_)));

        let plain = dir.path().join("kizuki-y.sock");
        std::fs::write(&plain, "keep me").unwrap();
        assert!(claim(&plain).is_err());
        assert_eq!(std::fs::read_to_string(&plain).unwrap(), "keep me");
    }

    #[test]
    fn one_socket_per_data_folder() {
        let run = tempfile::tempdir().unwrap();
        let a = socket_path(Some(run.path()), Some(Path::new("/a"))).unwrap();
        let b = socket_path(Some(run.path()), Some(Path::new("/b"))).unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(run.path()));
        let fallback = socket_path(None, Some(Path::new("/data"))).unwrap();
        assert_eq!(fallback, Path::new("/data/kizuki.sock"));
        assert_eq!(socket_path(None, None), None);
    }
}

#[cfg(all(test, windows))]
mod windows_tests {
    use super::*;
    use crate::tray::{EventSink, TrayEvent};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_second_launch_asks_the_first_to_show_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kizuki.sock");
        let Claim::Primary(listener) = claim(&path).unwrap() else {
            panic!("the first launch is the primary");
        };
        let (events, rx) = EventSink::new(Arc::new(|| {}));
        let guard = listener.spawn(events).unwrap();
        assert!(matches!(claim(&path).unwrap(), Claim::Secondary));
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(10)),
            Ok(TrayEvent::Open)
        );
        drop(guard);
    }
}
