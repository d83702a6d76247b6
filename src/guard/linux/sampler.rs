//! The guard's live view: one thread samples about once a second with
//! the native probe, event capture merged in where eBPF loads (polling
//! otherwise, said so), and the names reader; each sample goes into a
//! bounded [`LiveStore`] that clients read (`Request::Sample`).
//!
//! The probe is wrapped in a [`Tee`], so a [`MonitorCore`] can run here on
//! the very same samples: [`start`] takes its extra stages (a journal
//! kept by root, for one). Without stages no monitor runs: sampling is
//! all the guard does.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::clock::SystemClock;
use crate::guard::live::{LiveCapture, LiveStore};
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

/// A probe that hands each sample to the live store on its way.
struct Tee {
    inner: Box<dyn Probe>,
    store: Arc<Mutex<LiveStore>>,
}

impl Probe for Tee {
    fn sample(&mut self) -> Result<RawSample, ProbeError> {
        let s = self.inner.sample()?;
        self.store
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .publish(s.clone());
        Ok(s)
    }

    fn capture_mode(&self) -> CaptureMode {
        self.inner.capture_mode()
    }
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
    let (probe, capture): (Box<dyn Probe>, LiveCapture) = if std::env::var_os("KIZUKI_CAPTURE")
        .is_some_and(|v| v == "polling")
    {
        (Box::new(probe), LiveCapture::Polling)
    } else {
        match crate::capture::open_native() {
            Ok(source) => (
                Box::new(crate::capture::CaptureProbe::new(Box::new(probe), source)),
                LiveCapture::Ebpf,
            ),
            Err(e) => {
                eprintln!("kizuki guard: event capture could not load ({e}): polling every second");
                (Box::new(probe), LiveCapture::Polling)
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
    let tee = Tee {
        inner: probe,
        store,
    };
    let spawned = std::thread::Builder::new()
        .name("guard-live".into())
        .spawn(move || {
            let _reader = reader;
            run(tee, names, extra_stages);
        });
    if let Err(e) = spawned {
        eprintln!("kizuki guard: no live view: {e}");
        return None;
    }
    Some(live)
}

fn run(tee: Tee, names: Arc<NameCache>, extra_stages: Vec<Box<dyn Stage>>) {
    // With stages, a monitor samples through the tee; without, the tee
    // alone.
    let mut step: Box<dyn FnMut() -> Result<(), ProbeError>> = if extra_stages.is_empty() {
        let mut tee = tee;
        Box::new(move || tee.sample().map(|_| ()))
    } else {
        let mut core = MonitorCore::new(
            Box::new(tee),
            Box::new(crate::identity::NativeHasher::new(None)),
            Arc::new(SystemClock),
            INTERVAL,
        );
        core.set_names(names, None);
        for s in extra_stages {
            core.add_stage(s);
        }
        Box::new(move || core.tick().map(|_| ()))
    };
    let mut last_error: Option<String> = None;
    loop {
        let started = Instant::now();
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
