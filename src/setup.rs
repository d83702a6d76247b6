//! Wiring: builds the monitor with the real probe, hasher and stages for a
//! data folder. The CLI and the GUI both start from here.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::SystemClock;
use crate::identity::NativeHasher;
use crate::journal::JournalStage;
use crate::monitor::MonitorCore;
use crate::probe::{NativeProbe, ProbeError};

/// Settings that shape a monitor.
#[derive(Debug, Clone)]
pub struct Options {
    pub data_dir: Option<PathBuf>,
    pub interval: Duration,
}

/// The hash cache's file inside the data folder.
pub fn hash_cache_path(data_dir: &Path) -> PathBuf {
    data_dir.join("hash-cache.json")
}

/// A monitor over the real machine.
pub fn native_monitor(opts: &Options) -> Result<MonitorCore, ProbeError> {
    let probe = NativeProbe::new()?;
    let hasher = NativeHasher::new(opts.data_dir.as_deref().map(hash_cache_path));
    let mut core = MonitorCore::new(
        Box::new(probe),
        Box::new(hasher),
        Arc::new(SystemClock),
        opts.interval,
    );
    // The journal runs last: it records what the other stages decided.
    // Its handle: `journal::live_handle(&journal::path_in(data_dir))`.
    if let Some(dir) = opts.data_dir.as_deref() {
        core.add_stage(Box::new(JournalStage::open(dir, Arc::new(SystemClock))));
    }
    Ok(core)
}
