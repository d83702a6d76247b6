//! The client side of the guard's live view: [`GuardProbe`] is a
//! [`Probe`] whose samples come from the guard (its event capture, its
//! names), so an ordinary user's window, `scan` and `watch` see short
//! connections, bytes and names without root, and without scanning
//! `/proc` themselves. One connection is kept open and asked again each
//! sample with the cursor of the last answer.

// The socket half is Unix-only until a Windows service answers.
#![cfg_attr(not(unix), allow(dead_code, unused_imports))]

use std::collections::HashMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::api::{API_VERSION, Reply, Request};
use super::client::{LinkError, SocketLink};
use super::live::{
    CompactHeader, LiveCapture, LiveSample, MAX_SAMPLE_LINE, ProcHash, compact_body_len,
    decode_compact, learn_names,
};
use crate::identity::ExeHasher;
use crate::model::{CaptureMode, RawSample};
use crate::names::NameCache;
use crate::probe::{Probe, ProbeError};

/// Samples from the guard.
pub struct GuardProbe {
    link: SocketLink,
    #[cfg(unix)]
    conn: Option<BufReader<std::os::unix::net::UnixStream>>,
    cursor: Option<u64>,
    mode: CaptureMode,
    names: Arc<NameCache>,
    /// The guard's hashes of the latest answer's processes, by PID.
    hashes: Arc<Mutex<HashMap<u32, ProcHash>>>,
    /// The answer to the first question, returned by the first sample.
    first: Option<RawSample>,
    /// The client's own probe while the guard does not answer (it
    /// stopped or restarted); the guard is asked again now and then.
    fallback: Option<Box<dyn Probe>>,
    since_fallback: u32,
    /// The last answer and when it came: asked again sooner than
    /// [`MIN_GAP`] (a fast `watch`), it is given again without what ended,
    /// so the guard's per-user budget is not spent.
    last: Option<(std::time::Instant, RawSample)>,
    /// Ask for the compact binary form (until a guard refuses it).
    compact: bool,
    /// Keep a copy of each answer for [`MIN_GAP`] (off for a one-shot
    /// look, which samples once: [`GuardProbe::one_shot`]).
    keep_last: bool,
}

/// What [`GuardProbe::ask`] says when the guard's per-user budget is
/// spent: the last answer is given again, the guard is not given up.
const BUSY: &str = "busy";

/// The guard samples once a second; asking more often than this gains
/// nothing.
const MIN_GAP: std::time::Duration = std::time::Duration::from_millis(300);

/// `{"reply":"sample","live":{…}}`, read without buffering.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SampleLine {
    #[allow(dead_code)]
    reply: SampleTag,
    live: Box<LiveSample>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
enum SampleTag {
    Sample,
}

/// Samples on the client's own probe before the guard is asked again.
const RETRY_EVERY: u32 = 10;

impl GuardProbe {
    /// Asks the guard at `socket` once; `Err` when no guard answers there
    /// (or it answers no live view), so the caller samples by itself.
    pub fn connect(socket: PathBuf) -> Result<GuardProbe, LinkError> {
        let mut p = GuardProbe {
            link: SocketLink::new(socket),
            #[cfg(unix)]
            conn: None,
            cursor: None,
            mode: CaptureMode::GuardPolling,
            names: Arc::new(NameCache::new()),
            hashes: Arc::default(),
            first: None,
            fallback: None,
            since_fallback: 0,
            last: None,
            compact: true,
            keep_last: true,
        };
        let first = p.ask()?;
        p.first = Some(first);
        Ok(p)
    }

    /// For a caller that samples once (`scan`, `report`): no copy of the
    /// answer is kept to be given again to a fast second ask.
    pub fn one_shot(mut self) -> Self {
        self.keep_last = false;
        self
    }

    /// The cache the guard's names go into: give it to the monitor
    /// (`MonitorCore::set_names`).
    pub fn names(&self) -> Arc<NameCache> {
        self.names.clone()
    }

    /// A hasher that takes the guard's hash of a process's image when it
    /// has one (the guard read it as root while the process ran), else
    /// asks `fallback`.
    pub fn hasher(&self, fallback: Box<dyn ExeHasher>) -> GuardHasher {
        GuardHasher {
            hashes: self.hashes.clone(),
            fallback,
        }
    }

    fn take(&mut self, live: LiveSample) -> Result<RawSample, LinkError> {
        if live.api_version != API_VERSION {
            return Err(LinkError::Protocol(format!(
                "guard speaks API version {}, this client {API_VERSION}",
                live.api_version
            )));
        }
        self.cursor = Some(live.cursor);
        self.mode = match live.capture {
            LiveCapture::Ebpf => CaptureMode::GuardEbpf,
            LiveCapture::Polling => CaptureMode::GuardPolling,
        };
        if live.lost {
            log::warn!(
                "the guard's ring no longer held every ended connection since the last sample"
            );
        }
        learn_names(&self.names, &live.names);
        *self.hashes.lock().unwrap_or_else(|e| e.into_inner()) =
            live.hashes.into_iter().map(|h| (h.pid, h)).collect();
        Ok(live.sample)
    }

    #[cfg(unix)]
    fn ask_once(&mut self) -> Result<LiveSample, LinkError> {
        use std::io::Write;
        if self.conn.is_none() {
            let s = self.link.connect()?;
            s.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
            self.conn = Some(BufReader::new(s));
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(LinkError::Protocol("no connection".into()));
        };
        let req = Request::Sample {
            since: self.cursor,
            compact: self.compact,
        };
        super::client::send(conn.get_mut(), &req)?;
        conn.get_mut().flush()?;
        let line = super::client::read_line_max(conn, MAX_SAMPLE_LINE)?.ok_or_else(|| {
            LinkError::Protocol("the guard closed the connection without answering".into())
        })?;
        // The compact form: a header line, then its bytes.
        if let Ok(header) = serde_json::from_str::<CompactHeader>(&line) {
            use std::io::Read;
            let n = compact_body_len(&header).map_err(|e| LinkError::Protocol(e.to_string()))?;
            let mut body = vec![0; n];
            conn.read_exact(&mut body)?;
            return decode_compact(&body).map_err(|e| LinkError::Protocol(e.to_string()));
        }
        // A sample is megabytes: read straight into its struct (the
        // tagged `Reply` would first buffer the whole tree); anything else
        // is an answer in words.
        if let Ok(s) = serde_json::from_str::<SampleLine>(&line) {
            return Ok(*s.live);
        }
        match serde_json::from_str::<Reply>(&line) {
            Ok(Reply::Sample { live }) => Ok(*live),
            Ok(Reply::Refused { detail, .. }) if detail.starts_with("busy") => {
                Err(LinkError::Protocol(BUSY.into()))
            }
            // A guard from before the compact form refuses the field:
            // ask again in JSON.
            Ok(Reply::Refused { detail, .. })
                if self.compact && detail.starts_with("not a request") =>
            {
                self.compact = false;
                self.ask_once()
            }
            Ok(Reply::Refused { detail, .. } | Reply::Failed { detail, .. }) => Err(
                LinkError::Protocol(format!("the guard gave no live sample: {detail}")),
            ),
            Ok(_) => Err(LinkError::Protocol(
                "the guard answered a sample with something else".into(),
            )),
            Err(e) => Err(LinkError::Protocol(e.to_string())),
        }
    }

    /// One question; a broken connection (the guard restarted, or closed
    /// an idle one) is opened again once.
    #[cfg(unix)]
    fn ask(&mut self) -> Result<RawSample, LinkError> {
        let live = match self.ask_once() {
            Ok(l) => l,
            Err(LinkError::Io(_)) => {
                self.conn = None;
                self.ask_once()?
            }
            Err(e) => {
                self.conn = None;
                return Err(e);
            }
        };
        self.take(live)
    }

    #[cfg(not(unix))]
    fn ask(&mut self) -> Result<RawSample, LinkError> {
        Err(LinkError::NotRunning {
            socket: self.link.socket().to_path_buf(),
        })
    }
}

impl Probe for GuardProbe {
    fn sample(&mut self) -> Result<RawSample, ProbeError> {
        if let Some(s) = self.first.take() {
            if self.keep_last {
                self.last = Some((std::time::Instant::now(), s.clone()));
            }
            return Ok(s);
        }
        if self.fallback.is_none()
            && let Some((at, s)) = &self.last
            && at.elapsed() < MIN_GAP
        {
            let mut again = s.clone();
            again.ended.clear();
            return Ok(again);
        }
        if self.fallback.is_none() || self.since_fallback >= RETRY_EVERY {
            match self.ask() {
                Ok(s) => {
                    if self.keep_last {
                        self.last = Some((std::time::Instant::now(), s.clone()));
                    }
                    if self.fallback.take().is_some() {
                        log::info!("the guard answers again: its live view is used");
                    }
                    return Ok(s);
                }
                Err(LinkError::Protocol(d)) if d == BUSY && self.fallback.is_none() => {
                    if let Some((_, s)) = &self.last {
                        let mut again = s.clone();
                        again.ended.clear();
                        return Ok(again);
                    }
                    return Err(ProbeError::Sockets("the guard is busy".into()));
                }
                Err(e) => {
                    // Seen again from scratch when the guard is back.
                    self.cursor = None;
                    self.since_fallback = 0;
                    if self.fallback.is_none() {
                        log::warn!("the guard stopped answering ({e}): sampling here instead");
                        self.fallback = Some(Box::new(crate::probe::NativeProbe::new()?));
                    }
                }
            }
        }
        self.since_fallback += 1;
        match self.fallback.as_mut() {
            Some(p) => p.sample(),
            None => Err(ProbeError::Sockets("no probe".into())),
        }
    }

    fn capture_mode(&self) -> CaptureMode {
        match &self.fallback {
            Some(p) => p.capture_mode(),
            None => self.mode,
        }
    }
}

/// Hashes from the guard, else from `fallback` (see [`GuardProbe::hasher`]).
pub struct GuardHasher {
    hashes: Arc<Mutex<HashMap<u32, ProcHash>>>,
    fallback: Box<dyn ExeHasher>,
}

impl ExeHasher for GuardHasher {
    fn hash(&mut self, pid: u32, exe: &Path) -> Option<String> {
        let known = self
            .hashes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&pid)
            .cloned();
        // Only while the image is still the one the guard read.
        let image = crate::identity::image_path(pid, exe);
        match known {
            Some(h) if crate::probe::file_stamp(&image) == Some(h.stamp) => Some(h.sha256),
            _ => self.fallback.hash(pid, exe),
        }
    }

    fn hash_file(&mut self, path: &Path) -> Option<String> {
        self.fallback.hash_file(path)
    }

    fn save(&mut self) {
        self.fallback.save();
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::identity::FakeHasher;

    #[test]
    fn the_guards_hash_is_taken_only_while_the_image_is_the_one_it_read() {
        let pid = std::process::id();
        let exe = std::env::current_exe().unwrap();
        let stamp = crate::probe::file_stamp(&crate::identity::image_path(pid, &exe)).unwrap();
        let hashes: Arc<Mutex<HashMap<u32, ProcHash>>> = Arc::default();
        let mut h = GuardHasher {
            hashes: hashes.clone(),
            fallback: Box::new(FakeHasher::with(&[(exe.to_str().unwrap(), "own")])),
        };
        let from_guard = |stamp| ProcHash {
            pid,
            start_time: 1,
            stamp,
            sha256: "guard".into(),
        };
        hashes.lock().unwrap().insert(pid, from_guard(stamp));
        assert_eq!(h.hash(pid, &exe).as_deref(), Some("guard"));
        // Another image under the same PID (exec): the guard's is stale.
        hashes
            .lock()
            .unwrap()
            .insert(pid, from_guard((stamp.0, stamp.1 + 1)));
        assert_eq!(h.hash(pid, &exe).as_deref(), Some("own"));
    }
}

#[cfg(test)]
mod wire_tests {
    use super::*;
    use crate::guard::live::LiveCapture;
    use crate::model::RawSample;

    #[test]
    fn a_sample_reply_reads_without_the_tagged_enum() {
        let live = LiveSample {
            api_version: API_VERSION,
            cursor: 7,
            lost: false,
            capture: LiveCapture::Ebpf,
            names_read: true,
            interval_ms: 1000,
            sample: RawSample::default(),
            names: Vec::new(),
            hashes: Vec::new(),
            restricted: true,
            truncated: false,
        };
        let line = serde_json::to_string(&Reply::Sample {
            live: Box::new(live.clone()),
        })
        .unwrap();
        assert_eq!(
            *serde_json::from_str::<SampleLine>(&line).unwrap().live,
            live
        );
        let refused = r#"{"reply":"refused","reason":"bad-request","detail":"busy","status":null}"#;
        assert!(serde_json::from_str::<SampleLine>(refused).is_err());
    }
}

/// The client against a stand-in guard on a real Unix socket: the compact
/// form is asked for first, and a guard from before it (which refuses the
/// field) is asked again in JSON on the same connection.
#[cfg(test)]
#[cfg(unix)]
mod compact_tests {
    use std::io::{BufRead, Write};
    use std::os::unix::net::UnixListener;

    use super::*;
    use crate::guard::live::{LiveCapture, encode_compact};
    use crate::model::RawSocket;

    fn live(cursor: u64) -> LiveSample {
        LiveSample {
            api_version: API_VERSION,
            cursor,
            lost: false,
            capture: LiveCapture::Ebpf,
            names_read: false,
            interval_ms: 1000,
            sample: RawSample {
                sockets: vec![RawSocket::tcp(7, "127.0.0.1:40000", "127.0.0.1:80")],
                ..RawSample::default()
            },
            names: Vec::new(),
            hashes: Vec::new(),
            restricted: false,
            truncated: false,
        }
    }

    /// Answers each request line with `answer(line)`; returns the lines.
    fn stand_in(
        dir: &Path,
        answer: impl Fn(&str) -> Vec<u8> + Send + 'static,
    ) -> (PathBuf, std::thread::JoinHandle<Vec<String>>) {
        let path = dir.join("guard.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let handle = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let mut w = s.try_clone().unwrap();
            let mut seen = Vec::new();
            for line in std::io::BufReader::new(s).lines() {
                let line = line.unwrap();
                w.write_all(&answer(&line)).unwrap();
                seen.push(line);
                if seen.len() == 2 {
                    break;
                }
            }
            seen
        });
        (path, handle)
    }

    #[test]
    fn the_compact_form_is_read_when_the_guard_gives_it() {
        let dir = tempfile::tempdir().unwrap();
        let (path, guard) = stand_in(dir.path(), |_| {
            let (mut header, body) = encode_compact(&live(5)).unwrap();
            header.extend(body);
            header
        });
        let mut p = GuardProbe::connect(path).unwrap().one_shot();
        let s = p.sample().unwrap();
        assert_eq!(s.sockets, live(5).sample.sockets);
        assert_eq!(p.capture_mode(), CaptureMode::GuardEbpf);
        drop(p);
        let asked = guard.join().unwrap();
        assert_eq!(asked, [r#"{"op":"sample","since":null,"compact":true}"#]);
    }

    #[test]
    fn a_guard_that_refuses_the_compact_form_is_asked_again_in_json() {
        let dir = tempfile::tempdir().unwrap();
        let (path, guard) = stand_in(dir.path(), |line| {
            let reply = if line.contains("compact") {
                r#"{"reply":"refused","reason":"bad-request","detail":"not a request of API version 1: unknown field `compact`","status":null}"#.to_string()
            } else {
                serde_json::to_string(&Reply::Sample {
                    live: Box::new(live(9)),
                })
                .unwrap()
            };
            format!("{reply}\n").into_bytes()
        });
        let mut p = GuardProbe::connect(path).unwrap();
        assert_eq!(p.sample().unwrap().sockets, live(9).sample.sockets);
        drop(p);
        let asked = guard.join().unwrap();
        assert_eq!(
            asked,
            [
                r#"{"op":"sample","since":null,"compact":true}"#,
                r#"{"op":"sample","since":null}"#
            ]
        );
    }

    #[test]
    fn a_compact_header_announcing_too_much_is_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _guard) = stand_in(dir.path(), |_| {
            format!(
                "{{\"reply\":\"sample-compact\",\"api_version\":{API_VERSION},\"bytes\":{}}}\n",
                u64::MAX
            )
            .into_bytes()
        });
        assert!(matches!(
            GuardProbe::connect(path),
            Err(LinkError::Protocol(_))
        ));
    }
}
