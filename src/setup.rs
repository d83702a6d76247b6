//! Wiring: builds the monitor with the real probe, hasher and stages for a
//! data folder. The CLI and the GUI both start from here.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::analysis::{AnalysisStage, TempDirs};
use crate::clock::SystemClock;
use crate::guard::blocked::GuardBlocks;
use crate::identity::NativeHasher;
use crate::journal::JournalStage;
use crate::marks::{MarkStore, MarksStage};
use crate::monitor::{MonitorCore, Pipeline, Stage};
use crate::probe::{NativeProbe, Probe, ProbeError};

/// Settings that shape a monitor.
#[derive(Debug, Clone)]
pub struct Options {
    pub data_dir: Option<PathBuf>,
    pub interval: Duration,
    /// Keep the evidence journal while running (the window and `watch`).
    /// A one-shot look (`scan`, `report`, a firewall plan) does not record:
    /// that would cost a write per open connection for a single glance.
    pub record: bool,
}

/// The hash cache's file inside the data folder.
pub fn hash_cache_path(data_dir: &Path) -> PathBuf {
    data_dir.join("hash-cache.json")
}

/// The marks of the data folder (kept in memory only without one). Read
/// [`MarkStore::take_warnings`] afterwards: the CLI prints them, the GUI
/// shows a banner.
pub fn open_marks(opts: &Options) -> Arc<MarkStore> {
    Arc::new(match &opts.data_dir {
        Some(d) => MarkStore::open(d, Arc::new(SystemClock)),
        None => MarkStore::in_memory(Arc::new(SystemClock)),
    })
}

/// A monitor over the real machine, with the data folder's marks.
pub fn native_monitor(opts: &Options) -> Result<MonitorCore, ProbeError> {
    let marks = open_marks(opts);
    let blocks = guard_blocks_now(opts, marks.clone());
    native_monitor_with(opts, marks, blocks)
}

/// What the guard blocks now, asked once (the CLI; the window keeps its
/// handle up to date from its `kizuki-guard` thread). No guard: nothing.
pub fn guard_blocks_now(opts: &Options, marks: Arc<MarkStore>) -> GuardBlocks {
    let blocks = GuardBlocks::default();
    if let Ok(status) = crate::guard::local::default_link(opts.data_dir.as_deref(), marks).status()
    {
        blocks.update(&status);
    }
    blocks
}

/// [`guard_blocks_now`] asked on its own thread (a one-shot look asks the
/// guard for its live sample meanwhile): join the handle before the
/// first sample's stages read the blocks.
pub fn guard_blocks_ahead(
    opts: &Options,
    marks: Arc<MarkStore>,
) -> (GuardBlocks, Option<std::thread::JoinHandle<()>>) {
    let blocks = GuardBlocks::default();
    let (theirs, dir) = (blocks.clone(), opts.data_dir.clone());
    let ask = move || {
        if let Ok(status) = crate::guard::local::default_link(dir.as_deref(), marks).status() {
            theirs.update(&status);
        }
    };
    let handle = std::thread::Builder::new()
        .name("kizuki-blocks".into())
        .spawn(ask)
        .ok();
    (blocks, handle)
}

/// A monitor over the real machine sharing `marks` with the caller (the
/// GUI sets marks through the same store the monitor reads). A program
/// shows as blocked only when `blocks` (what the guard reads back) says so.
pub fn native_monitor_with(
    opts: &Options,
    marks: Arc<MarkStore>,
    blocks: GuardBlocks,
) -> Result<MonitorCore, ProbeError> {
    // With the guard running, its live view (capture and names, for
    // everyone) is read instead of sampling here.
    let guard = guard_probe();
    let guard_names = guard.as_ref().map(|g| g.names());
    let own_hasher = NativeHasher::new(opts.data_dir.as_deref().map(hash_cache_path));
    // Sampling here lists kizuki itself, whose image is one of the largest
    // a sample hashes: start on it now. The guard's sample was taken
    // before this process started, and has the hashes it lists.
    let own_hasher = match guard {
        Some(_) => own_hasher,
        None => own_hasher.with_own_image_ahead(),
    };
    let hasher: Box<dyn crate::identity::ExeHasher> = match &guard {
        Some(g) => Box::new(g.hasher(Box::new(own_hasher))),
        None => Box::new(own_hasher),
    };
    let probe: Box<dyn Probe> = match guard {
        Some(g) if opts.record => Box::new(g),
        Some(g) => Box::new(g.one_shot()),
        // A run that keeps watching (the window, `watch`) sees every
        // connection through event capture when it can load; a one-shot
        // look would capture nothing in its single sample.
        None if opts.record => with_capture(NativeProbe::new()?),
        None => Box::new(NativeProbe::new()?.with_tcp_bytes()),
    };
    let mut core = MonitorCore::new(probe, hasher, Arc::new(SystemClock), opts.interval);
    match guard_names {
        Some(cache) => core.set_names(cache, None),
        // A one-shot look would read no traffic in its single sample.
        None if opts.record => add_names(&mut core),
        None => {}
    }
    let (analysis, warnings) = AnalysisStage::open(
        opts.data_dir.as_deref(),
        TempDirs::detect(),
        std::time::SystemTime::now(),
    );
    for w in warnings {
        log::warn!("{w}");
    }
    // The order and what each stage reads and writes: [`Pipeline`].
    // The journal's handle: `journal::live_handle(&journal::path_in(data_dir))`.
    let journal = opts.data_dir.as_deref().filter(|_| opts.record);
    Pipeline {
        marks: Some(Box::new(MarksStage::new(marks).with_guard(blocks))),
        analysis: Some(Box::new(analysis)),
        journal: journal.map(|dir| {
            // A program opening thousands of sockets a second is counted
            // per remote, not written (or dropped) one by one.
            let stage = JournalStage::open(dir, Arc::new(SystemClock)).with_flood_limit(Some((
                crate::journal::flood::DEFAULT_LIMIT,
                crate::journal::flood::DEFAULT_WINDOW,
            )));
            Box::new(stage) as Box<dyn Stage>
        }),
        extra: Vec::new(),
    }
    .install(&mut core);
    Ok(core)
}

/// The guard's live view, when the guard named by `KIZUKI_GUARD_SOCKET`
/// (else the installed one) answers with one.
pub fn guard_probe() -> Option<crate::guard::live_probe::GuardProbe> {
    match crate::guard::live_probe::GuardProbe::connect(crate::guard::client::socket_path()) {
        Ok(p) => Some(p),
        Err(crate::guard::client::LinkError::NotRunning { .. }) => None,
        Err(e) => {
            log::info!("the guard's live view is not used: {e}");
            None
        }
    }
}

/// With administrator rights, reads remote names from the machine's own
/// traffic (DNS answers, TLS server names, HTTP Host) while the core runs.
/// Without them names stay absent, silently: the window says why.
pub fn add_names(core: &mut MonitorCore) {
    let cache = Arc::new(crate::names::NameCache::new());
    match crate::names::capture::start(cache.clone(), Arc::new(SystemClock)) {
        Ok(capture) => core.set_names(cache, Some(Box::new(capture))),
        Err(
            crate::names::capture::CaptureError::NotPermitted
            | crate::names::capture::CaptureError::Unsupported,
        ) => {}
        Err(e) => log::warn!("{e}"),
    }
}

/// Unpacks the country/AS data on its own thread, before it is first
/// asked for (the window, when it opens; `watch`). A scan unpacks it only
/// when it lists an internet address, and the app hidden in the tray never
/// holds it.
pub fn prewarm_geo() {
    let _ = std::thread::Builder::new()
        .name("kizuki-geo".into())
        .spawn(|| crate::names::geo::GeoDb::bundled().is_some());
}

/// `probe` with event capture merged in (as administrator, where the
/// kernel allows it); else `probe` as it is, with the reason logged
/// when capture was possible in principle. `KIZUKI_CAPTURE=polling` turns
/// capture off (to compare, or if it misbehaves).
/// Without capture, open TCP connections still get their bytes from the
/// kernel's counters (`tcp_info`).
pub fn with_capture(probe: NativeProbe) -> Box<dyn Probe> {
    if std::env::var_os("KIZUKI_CAPTURE").is_some_and(|v| v == "polling")
        || !crate::probe::running_as_admin()
    {
        return Box::new(probe.with_tcp_bytes());
    }
    match crate::capture::open_native() {
        Ok(source) => Box::new(crate::capture::CaptureProbe::new(Box::new(probe), source)),
        Err(e) => {
            log::warn!(
                "{}",
                crate::i18n::tr_args("capture.unavailable", &[("error", &e.to_string())])
            );
            Box::new(probe.with_tcp_bytes())
        }
    }
}
