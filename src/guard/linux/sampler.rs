//! The guard's live view: one thread samples about once a second with
//! the native probe, event capture merged in where eBPF loads (polling
//! otherwise, said so), and the names reader; each sample goes into a
//! bounded [`LiveStore`] that clients read (`Request::Sample`).
//!
//! The probe is wrapped in a [`Tee`], so a [`MonitorCore`] can run here on
//! the very same samples: [`start`] takes its extra stages (a journal
//! kept by root, for one). Without stages no monitor runs: sampling is
//! all the guard does. With capture, a second in which nothing happened
//! is not sampled ([`super::activity`]).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::clock::SystemClock;
use std::collections::HashSet;

use crate::guard::live::{HashMapByProc, LiveCapture, LiveStore, ProcHash};
use crate::identity::{ExeHasher, NativeHasher};
use crate::model::{CaptureMode, RawSample};
use crate::monitor::{MonitorCore, Stage};
use crate::names::NameCache;
use crate::probe::{NativeProbe, Probe, ProbeError};

/// How often the guard samples.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// The live view, shared by the sampler thread and the connections.
#[derive(Clone)]
pub struct LiveState {
    store: Arc<Mutex<LiveStore>>,
    pub names: Arc<NameCache>,
    pub capture: LiveCapture,
    pub names_read: bool,
}

impl LiveState {
    pub fn store(&self) -> std::sync::MutexGuard<'_, LiveStore> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn interval(&self) -> Duration {
        INTERVAL
    }
}

/// A probe that takes the SHA-256 of each new process's image into the
/// live store on the sample's way; the sample itself is published once
/// its reader is done with it ([`publish`]), moved, not copied.
struct Tee {
    inner: Box<dyn Probe>,
    store: Arc<Mutex<LiveStore>>,
    hasher: NativeHasher,
    /// Shared with the store as it is: copied only when it changes.
    hashes: Arc<HashMapByProc>,
}

/// Hashes of processes gone longer than this are forgotten.
const HASH_KEEP: usize = 2;

impl Tee {
    fn new(inner: Box<dyn Probe>, store: Arc<Mutex<LiveStore>>) -> Tee {
        Tee {
            inner,
            store,
            hasher: NativeHasher::new(None),
            hashes: Arc::default(),
        }
    }

    /// Hashes the images of processes not hashed yet (or whose image
    /// changed: `exec`), through `/proc/PID/exe`, kept only when the
    /// image is still the one the probe saw after reading it.
    fn hash_new(&mut self, s: &RawSample) {
        let listed: HashSet<(u32, u64)> =
            s.processes.iter().map(|p| (p.pid, p.start_time)).collect();
        for p in &s.processes {
            let (Some(_), None, Some(stamp)) = (&p.exe, &p.script, p.exe_stamp) else {
                continue;
            };
            let key = (p.pid, p.start_time);
            if self.hashes.get(&key).is_some_and(|h| h.stamp == stamp) {
                continue;
            }
            let image = std::path::PathBuf::from(format!("/proc/{}/exe", p.pid));
            let same = || crate::probe::file_stamp(&image) == Some(stamp);
            if !same() {
                continue;
            }
            if let Some(sha256) = self.hasher.hash_path(&image)
                && same()
            {
                Arc::make_mut(&mut self.hashes).insert(
                    key,
                    ProcHash {
                        pid: p.pid,
                        start_time: p.start_time,
                        stamp,
                        sha256,
                    },
                );
            }
        }
        // Bounded: the listed processes, and a few times as many gone ones.
        if self.hashes.len() > HASH_KEEP * listed.len() + 1024 {
            Arc::make_mut(&mut self.hashes).retain(|k, _| listed.contains(k));
        }
    }
}

impl Probe for Tee {
    fn sample(&mut self) -> Result<RawSample, ProbeError> {
        let s = self.inner.sample()?;
        self.hash_new(&s);
        let hashes = Arc::clone(&self.hashes);
        self.store
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .set_hashes(hashes);
        Ok(s)
    }

    fn capture_mode(&self) -> CaptureMode {
        self.inner.capture_mode()
    }
}

/// Hands a sample to the live store (after the monitor, if any, read it).
fn publish(store: &Mutex<LiveStore>, sample: RawSample) {
    store
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .publish(sample);
}

/// Starts sampling on a thread named `guard-live`; `extra_stages`, if any,
/// run in a [`MonitorCore`] over the same samples. `None` when not even
/// the native probe could start (said on stderr).
pub fn start(extra_stages: Vec<Box<dyn Stage>>) -> Option<LiveState> {
    let probe = match NativeProbe::new() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("kizuki guard: no live view: {e}");
            return None;
        }
    };
    // With capture, the count of its events (see `activity`).
    let mut events = None;
    let (probe, capture): (Box<dyn Probe>, LiveCapture) = if std::env::var_os("KIZUKI_CAPTURE")
        .is_some_and(|v| v == "polling")
    {
        (Box::new(probe.with_tcp_bytes()), LiveCapture::Polling)
    } else {
        match crate::capture::open_native() {
            Ok(source) => {
                events = source.events_read();
                (
                    Box::new(crate::capture::CaptureProbe::new(Box::new(probe), source)),
                    LiveCapture::Ebpf,
                )
            }
            Err(e) => {
                eprintln!("kizuki guard: event capture could not load ({e}): polling every second");
                (Box::new(probe.with_tcp_bytes()), LiveCapture::Polling)
            }
        }
    };
    let names = Arc::new(NameCache::new());
    let reader = match crate::names::capture::start(names.clone(), Arc::new(SystemClock)) {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("kizuki guard: names are not read: {e}");
            None
        }
    };
    let store = Arc::new(Mutex::new(LiveStore::default()));
    let live = LiveState {
        store: store.clone(),
        names: names.clone(),
        capture,
        names_read: reader.is_some(),
    };
    let tee = Tee::new(probe, store);
    let spawned = std::thread::Builder::new()
        .name("guard-live".into())
        .spawn(move || {
            let _reader = reader;
            run(tee, names, extra_stages, events);
        });
    if let Err(e) = spawned {
        eprintln!("kizuki guard: no live view: {e}");
        return None;
    }
    Some(live)
}

/// The guard's own monitor (its journal) takes the hash the tee took of
/// the same image this tick, so each image is read once; it reads the
/// file itself only where the tee had none.
struct StoreHasher {
    store: Arc<Mutex<LiveStore>>,
    fallback: NativeHasher,
}

impl ExeHasher for StoreHasher {
    fn hash(&mut self, pid: u32, exe: &std::path::Path) -> Option<String> {
        let hashes = self
            .store
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .hashes();
        let stamp = crate::probe::file_stamp(&crate::identity::image_path(pid, exe));
        let known = hashes
            .values()
            .find(|h| h.pid == pid && Some(h.stamp) == stamp)
            .map(|h| h.sha256.clone());
        known.or_else(|| self.fallback.hash(pid, exe))
    }
}

/// Samples every [`INTERVAL`]; with capture (`events`), only when
/// something happened or [`super::activity::QUIET_MAX`] passed.
fn run(
    tee: Tee,
    names: Arc<NameCache>,
    extra_stages: Vec<Box<dyn Stage>>,
    events: Option<Arc<std::sync::atomic::AtomicU64>>,
) {
    let mut activity = events.map(super::activity::Activity::new);
    // With stages, a monitor samples through the tee; without, the tee
    // alone.
    let store = Arc::clone(&tee.store);
    let mut step: Box<dyn FnMut() -> Result<(), ProbeError>> = if extra_stages.is_empty() {
        let mut tee = tee;
        Box::new(move || tee.sample().map(|s| publish(&store, s)))
    } else {
        let hasher = StoreHasher {
            store: Arc::clone(&tee.store),
            fallback: NativeHasher::new(None),
        };
        let mut core = MonitorCore::new(
            Box::new(tee),
            Box::new(hasher),
            Arc::new(SystemClock),
            INTERVAL,
        )
        // The journal reads programs, processes and session events only:
        // no connection lists, and ended sessions are forgotten at once
        // (a flood's 50,000 kept for 15 minutes took ~16 MB).
        .without_connections()
        .keep_ended_sessions(Duration::ZERO);
        core.set_names(names, None);
        for s in extra_stages {
            core.add_stage(s);
        }
        core.hand_on_samples(Box::new(move |s| publish(&store, s)));
        Box::new(move || core.tick().map(|_| ()))
    };
    let mut last_error: Option<String> = None;
    loop {
        let started = Instant::now();
        if activity.as_mut().is_some_and(|a| !a.due(started)) {
            std::thread::sleep(INTERVAL.saturating_sub(started.elapsed()));
            continue;
        }
        match step() {
            Ok(()) => last_error = None,
            Err(e) => {
                let e = e.to_string();
                if last_error.as_deref() != Some(e.as_str()) {
                    eprintln!("kizuki guard: sampling: {e}");
                }
                last_error = Some(e);
            }
        }
        std::thread::sleep(INTERVAL.saturating_sub(started.elapsed()));
    }
}
